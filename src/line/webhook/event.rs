//! The typed webhook model. LINE owns this input, so everything is lenient: optional fields are
//! `Option`, string enums end in `Unknown(String)`, unknown event / message / source types are
//! kept, and every event keeps its exact raw JSON (so unknown *fields* are never lost either).
//!
//! IDs that LINE assigns (user, group, room, message IDs, reply tokens) are kept as plain
//! `String`s: LINE owns their format and the official SDKs' fixtures show shortened or
//! placeholder IDs, so a format check here would only ever reject real traffic. Use
//! [`Source::line_user_id`] where a validated [`LineUserId`] is needed.

use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::{LineUserId, WebhookEventId};

/// A value visitor that accepts a string (borrowed or owned) and maps it.
struct StrVisitor<T>(fn(&str) -> T, &'static str);

impl<T> serde::de::Visitor<'_> for StrVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

/// Defines a forward-compatible string enum: known values plus `Unknown(String)`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version of enishi does not know, kept exactly as LINE sent it.
            Unknown(String),
        }

        impl $name {
            /// The value as LINE spells it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $s,)*
                    Self::Unknown(s) => s,
                }
            }

            pub(super) fn from_wire(s: &str) -> Self {
                match s {
                    $($s => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(StrVisitor(Self::from_wire, concat!("a string (", stringify!($name), ")")))
            }
        }
    };
}

string_enum!(
    /// The channel state an event was sent in (`mode`).
    Mode {
        /// The bot may reply and send.
        Active = "active",
        /// A module channel is active; this bot must not send (there is no reply token).
        Standby = "standby",
    }
);

string_enum!(
    /// Where a message's media is stored (`contentProvider.type`).
    ContentProviderType {
        /// On LINE's servers: download it with the message ID.
        Line = "line",
        /// At `originalContentUrl` (sent through the LIFF or another external provider).
        External = "external",
    }
);

string_enum!(
    /// The kind of a sticker (`stickerResourceType`).
    StickerResourceType {
        /// Still image.
        Static = "STATIC",
        /// Animated.
        Animation = "ANIMATION",
        /// With sound.
        Sound = "SOUND",
        /// Animated with sound.
        AnimationSound = "ANIMATION_SOUND",
        /// Pop-up.
        Popup = "POPUP",
        /// Pop-up with sound.
        PopupSound = "POPUP_SOUND",
        /// Custom sticker.
        Custom = "CUSTOM",
        /// Message sticker.
        Message = "MESSAGE",
        /// Name-text sticker.
        NameText = "NAME_TEXT",
        /// Per-sticker text.
        PerStickerText = "PER_STICKER_TEXT",
    }
);

string_enum!(
    /// What a mention points at (`mentionee.type`).
    MentioneeType {
        /// One user.
        User = "user",
        /// Everyone in the chat.
        All = "all",
    }
);

string_enum!(
    /// The kind of beacon event (`beacon.type`).
    BeaconType {
        /// The user entered the beacon's range.
        Enter = "enter",
        /// The user tapped a beacon banner.
        Banner = "banner",
        /// The user stays in range.
        Stay = "stay",
    }
);

string_enum!(
    /// The outcome of an account link (`link.result`).
    LinkResult {
        /// Linked: `link.nonce` identifies the shop account.
        Ok = "ok",
        /// Failed, e.g. someone other than the intended user opened the link (no `source`).
        Failed = "failed",
    }
);

string_enum!(
    /// What happened to a membership (`membership.type`).
    MembershipType {
        /// The user subscribed.
        Joined = "joined",
        /// The user unsubscribed.
        Left = "left",
        /// The membership was renewed.
        Renewed = "renewed",
    }
);

string_enum!(
    /// Why a module channel was detached (`module.reason`).
    DetachReason {
        /// The LINE Official Account was deleted.
        BotDeleted = "bot_deleted",
    }
);

string_enum!(
    /// The kind of a (historical) LINE Things event (`things.type`).
    ThingsType {
        /// A device was linked.
        Link = "link",
        /// A device was unlinked.
        Unlink = "unlink",
        /// An automatic-communication scenario ran.
        ScenarioResult = "scenarioResult",
    }
);

/// A webhook request body: the bot that should receive the events and the events themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WebhookPayload {
    /// The receiving bot's user ID. Absent in some older payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The events, in the order LINE sent them. Empty for the console's connectivity check.
    /// A malformed event appears as [`EventKind::Malformed`] without failing the others.
    pub events: Vec<Event>,
}

impl WebhookPayload {
    /// The events that could not be read ([`EventKind::Malformed`]).
    pub fn malformed(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.error().is_some())
    }
}

/// One webhook event: the fields every event shares, the type-specific [`EventKind`], and the
/// event's raw JSON exactly as received.
///
/// Serialising an event gives LINE's JSON shape again (for known kinds, the fields enishi models;
/// for unknown and malformed events, the raw JSON), and [`parse_event`](super::parse_event)
/// reads it back, so events can be queued or stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// `webhookEventId`: unique per event and unchanged on redelivery; the de-duplication key.
    pub webhook_event_id: Option<WebhookEventId>,
    /// `timestamp`: when the event happened, in milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// `mode`: `active`, or `standby` while a module channel is active.
    pub mode: Option<Mode>,
    /// `source`: who or which chat the event came from. Absent on e.g. failed account links.
    pub source: Option<Source>,
    /// `replyToken`: present only on events that can be replied to.
    pub reply_token: Option<String>,
    /// `deliveryContext`.
    pub delivery_context: Option<DeliveryContext>,
    /// The type-specific part.
    pub kind: EventKind,
    /// The event's JSON text exactly as received (always valid JSON).
    pub(super) raw: RawJson,
}

/// An event's JSON text: its byte range in the request body, which the events of one body share
/// (one allocation per body instead of one per event; an event kept alone keeps its body
/// alive). Derefs to the event's text.
#[derive(Clone)]
pub(super) struct RawJson {
    body: Arc<str>,
    start: usize,
    end: usize,
}

impl RawJson {
    /// `body[start..end]`, which must lie on character boundaries.
    pub(super) fn new(body: Arc<str>, start: usize, end: usize) -> Self {
        debug_assert!(body.get(start..end).is_some(), "event range off the body");
        Self { body, start, end }
    }
}

impl std::ops::Deref for RawJson {
    type Target = str;

    fn deref(&self) -> &str {
        // Ranges come from the parser's offsets; an impossible one reads as empty, not a panic.
        self.body.get(self.start..self.end).unwrap_or_default()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.webhook_event_id == other.webhook_event_id
            && self.timestamp == other.timestamp
            && self.mode == other.mode
            && self.source == other.source
            && self.reply_token == other.reply_token
            && self.delivery_context == other.delivery_context
            && self.kind == other.kind
            && self.raw == other.raw
    }
}

impl Event {
    /// The event's `type` exactly as LINE sent it (`""` for a malformed event without one).
    #[must_use]
    pub fn type_str(&self) -> &str {
        self.kind.type_str()
    }

    /// `deliveryContext.isRedelivery` (`false` when absent).
    #[must_use]
    pub fn is_redelivery(&self) -> bool {
        self.delivery_context.as_ref().is_some_and(|d| d.is_redelivery)
    }

    /// The event's JSON exactly as it appeared in the request body.
    #[must_use]
    pub fn raw_json(&self) -> &str {
        &self.raw
    }

    /// The event's JSON as a [`serde_json::Value`], including fields enishi does not model.
    #[must_use]
    pub fn to_value(&self) -> serde_json::Value {
        // The raw text was valid JSON when it was parsed, so this cannot fail.
        serde_json::from_str(&self.raw).unwrap_or(serde_json::Value::Null)
    }

    /// `timestamp` as a UTC date-time.
    #[must_use]
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.timestamp.and_then(chrono::DateTime::from_timestamp_millis)
    }

    /// The user the event came from (`source.userId`), when LINE sent one.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.source.as_ref().and_then(Source::user_id)
    }

    /// Why the event could not be read, for [`EventKind::Malformed`].
    #[must_use]
    pub fn error(&self) -> Option<&EventError> {
        match &self.kind {
            EventKind::Malformed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The type-specific part of an [`Event`], chosen by its `type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `message`: a user sent a message.
    Message(MessageContent),
    /// `messageEdited`: a user edited a message (the edited content). May arrive out of order.
    MessageEdited(MessageContent),
    /// `unsend`: a user unsent a message; delete any stored copy.
    Unsend(Unsend),
    /// `follow`: the account was added as a friend or unblocked.
    Follow(Follow),
    /// `unfollow`: the user blocked the account.
    Unfollow,
    /// `join`: the account joined a group or room.
    Join,
    /// `leave`: the account left (or was removed from) a group or room.
    Leave,
    /// `memberJoined`: users joined a group or room the account is in.
    MemberJoined(Members),
    /// `memberLeft`: users left a group or room the account is in.
    MemberLeft(Members),
    /// `postback`: a postback action (rich menu, buttons, date pickers).
    Postback(Postback),
    /// `videoPlayComplete`: a user watched a tracked video to the end.
    VideoPlayComplete(VideoPlayComplete),
    /// `beacon`: a LINE Beacon event.
    Beacon(Beacon),
    /// `accountLink`: the result of an account link.
    AccountLink(AccountLink),
    /// `membership`: a membership was joined, left or renewed.
    Membership(Membership),
    /// `module`: a module channel was attached or detached.
    Module(ModuleContent),
    /// `activated`: the module channel became the active channel.
    Activated(ChatControl),
    /// `deactivated`: the module channel became a standby channel.
    Deactivated,
    /// `botSuspended`: the LINE Official Account was suspended.
    BotSuspended,
    /// `botResumed`: the LINE Official Account was resumed.
    BotResumed,
    /// `delivery`: a LINE notification message (PnP) was delivered.
    Delivery(PnpDelivery),
    /// `things`: a LINE Things event (historical).
    Things(Things),
    /// An event type this version of enishi does not know (the type string). The common fields
    /// and [`Event::raw_json`] are still available.
    Unknown(String),
    /// The event could not be read. The common fields are filled in where they could be read,
    /// and [`Event::raw_json`] holds the event as sent.
    Malformed {
        /// The event's `type`, when it was a string.
        event_type: Option<String>,
        /// What was wrong.
        error: EventError,
    },
}

impl EventKind {
    /// The `type` string of this kind (`""` for a malformed event without one).
    #[must_use]
    pub fn type_str(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::MessageEdited(_) => "messageEdited",
            Self::Unsend(_) => "unsend",
            Self::Follow(_) => "follow",
            Self::Unfollow => "unfollow",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::MemberJoined(_) => "memberJoined",
            Self::MemberLeft(_) => "memberLeft",
            Self::Postback(_) => "postback",
            Self::VideoPlayComplete(_) => "videoPlayComplete",
            Self::Beacon(_) => "beacon",
            Self::AccountLink(_) => "accountLink",
            Self::Membership(_) => "membership",
            Self::Module(_) => "module",
            Self::Activated(_) => "activated",
            Self::Deactivated => "deactivated",
            Self::BotSuspended => "botSuspended",
            Self::BotResumed => "botResumed",
            Self::Delivery(_) => "delivery",
            Self::Things(_) => "things",
            Self::Unknown(t) => t,
            Self::Malformed { event_type, .. } => event_type.as_deref().unwrap_or(""),
        }
    }
}

/// Why one event of a payload could not be read. The rest of the payload is unaffected.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The event is not a JSON object.
    #[error("the event is not a JSON object")]
    NotAnObject,
    /// The event has no string `type`.
    #[error("the event has no string `type`")]
    MissingType,
    /// A field has the wrong shape (the error names the field and its position).
    #[error("invalid `{event_type}` event")]
    Invalid {
        /// The event type.
        event_type: String,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A field the event type requires is absent.
    #[error("the `{event_type}` event lacks `{field}`")]
    MissingField {
        /// The event type.
        event_type: String,
        /// The JSON path of the missing field, e.g. `message.text`.
        field: &'static str,
    },
}

impl PartialEq for EventError {
    fn eq(&self, other: &Self) -> bool {
        crate::error::chain_message(self) == crate::error::chain_message(other)
    }
}

/// `deliveryContext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeliveryContext {
    /// `true` when LINE redelivers the event (same `webhookEventId` and `replyToken`).
    #[serde(default)]
    pub is_redelivery: bool,
}

/// Where an event came from (`source`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Source {
    /// A one-to-one chat with a user.
    User {
        /// `userId` (present when the user consented).
        user_id: Option<String>,
    },
    /// A group chat.
    Group {
        /// `groupId`.
        group_id: String,
        /// `userId` of the user who caused the event (message events, with consent).
        user_id: Option<String>,
    },
    /// A multi-person chat (room).
    Room {
        /// `roomId`.
        room_id: String,
        /// `userId` of the user who caused the event (message events, with consent).
        user_id: Option<String>,
    },
    /// A source type this version of enishi does not know.
    Unknown {
        /// The `type` string.
        source_type: String,
        /// The whole source object.
        raw: serde_json::Value,
    },
}

impl Source {
    /// `userId`, when present.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::User { user_id } | Self::Group { user_id, .. } | Self::Room { user_id, .. } => {
                user_id.as_deref()
            }
            Self::Unknown { raw, .. } => raw.get("userId").and_then(serde_json::Value::as_str),
        }
    }

    /// `userId` as a validated [`LineUserId`]; `None` when absent or not in LINE's documented
    /// `U` + 32 hex format.
    #[must_use]
    pub fn line_user_id(&self) -> Option<LineUserId> {
        self.user_id().and_then(|u| LineUserId::new(u).ok())
    }

    /// The `type` string (`user`, `group`, `room`, or an unknown one).
    #[must_use]
    pub fn type_str(&self) -> &str {
        match self {
            Self::User { .. } => "user",
            Self::Group { .. } => "group",
            Self::Room { .. } => "room",
            Self::Unknown { source_type, .. } => source_type,
        }
    }

    /// The ID to push replies to: the group or room ID, else the user ID.
    #[must_use]
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Self::Group { group_id, .. } => Some(group_id),
            Self::Room { room_id, .. } => Some(room_id),
            _ => self.user_id(),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Self::Unknown { raw, .. } = self {
            return raw.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.type_str())?;
        match self {
            Self::Group { group_id, .. } => m.serialize_entry("groupId", group_id)?,
            Self::Room { room_id, .. } => m.serialize_entry("roomId", room_id)?,
            _ => {}
        }
        if let Some(u) = self.user_id() {
            m.serialize_entry("userId", u)?;
        }
        m.end()
    }
}

/// The content of a `message` or `messageEdited` event, chosen by `message.type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageContent {
    /// `text`.
    Text(TextMessage),
    /// `image`.
    Image(ImageMessage),
    /// `video`.
    Video(VideoMessage),
    /// `audio`.
    Audio(AudioMessage),
    /// `file`.
    File(FileMessage),
    /// `location`.
    Location(LocationMessage),
    /// `sticker`.
    Sticker(StickerMessage),
    /// A message type this version of enishi does not know.
    Unknown(UnknownMessage),
}

impl MessageContent {
    /// The message ID (`message.id`).
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Text(m) => m.id.as_deref(),
            Self::Image(m) => m.id.as_deref(),
            Self::Video(m) => m.id.as_deref(),
            Self::Audio(m) => m.id.as_deref(),
            Self::File(m) => m.id.as_deref(),
            Self::Location(m) => m.id.as_deref(),
            Self::Sticker(m) => m.id.as_deref(),
            Self::Unknown(m) => m.id.as_deref(),
        }
    }

    /// `message.type` as LINE sent it.
    #[must_use]
    pub fn type_str(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::File(_) => "file",
            Self::Location(_) => "location",
            Self::Sticker(_) => "sticker",
            Self::Unknown(m) => &m.message_type,
        }
    }

    /// The text of a text message.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(m) => Some(&m.text),
            _ => None,
        }
    }
}

/// Serialises `inner`'s fields after a `"type"` entry.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "type")]
    type_: &'a str,
    #[serde(flatten)]
    inner: &'a T,
}

impl Serialize for MessageContent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let type_ = self.type_str();
        match self {
            Self::Text(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Image(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Video(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Audio(m) => Tagged { type_, inner: m }.serialize(s),
            Self::File(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Location(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Sticker(m) => Tagged { type_, inner: m }.serialize(s),
            Self::Unknown(m) => m.raw.serialize(s),
        }
    }
}

/// A text message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TextMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The text.
    pub text: String,
    /// LINE emoji in the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emojis: Option<Vec<Emoji>>,
    /// Mentions in the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention: Option<Mention>,
    /// Token to quote this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// ID of the message this one quotes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_message_id: Option<String>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A LINE emoji inside a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Emoji {
    /// Position in the text (UTF-16 code units).
    pub index: u32,
    /// Length in the text (UTF-16 code units).
    pub length: u32,
    /// Emoji set ID.
    pub product_id: String,
    /// Emoji ID inside the set.
    pub emoji_id: String,
}

/// Mentions in a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Mention {
    /// The mentioned targets.
    pub mentionees: Vec<Mentionee>,
}

/// One mentioned target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Mentionee {
    /// `user` or `all`.
    #[serde(rename = "type")]
    pub mentionee_type: MentioneeType,
    /// Position in the text (UTF-16 code units).
    pub index: u32,
    /// Length in the text (UTF-16 code units).
    pub length: u32,
    /// The mentioned user's ID (with consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Whether the mentioned user is this bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_self: Option<bool>,
}

/// Where a media message's content is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContentProvider {
    /// `line` or `external`.
    #[serde(rename = "type")]
    pub provider_type: ContentProviderType,
    /// URL of the content (external only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_content_url: Option<String>,
    /// URL of the preview image (external only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_image_url: Option<String>,
}

/// Several images sent at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageSet {
    /// Image set ID.
    pub id: String,
    /// 1-based position in the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Number of images in the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
}

/// An image message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageMessage {
    /// Message ID (fetch the content with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the image is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_provider: Option<ContentProvider>,
    /// Set information when several images were sent at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set: Option<ImageSet>,
    /// Token to quote this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A video message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VideoMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Length in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Where the video is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_provider: Option<ContentProvider>,
    /// Token to quote this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// An audio message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudioMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Length in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Where the audio is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_provider: Option<ContentProvider>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A file message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// File name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A location message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A sticker message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StickerMessage {
    /// Message ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Sticker package ID.
    pub package_id: String,
    /// Sticker ID.
    pub sticker_id: String,
    /// Kind of sticker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticker_resource_type: Option<StickerResourceType>,
    /// Up to 15 keywords describing the sticker (experimental on LINE's side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    /// Text the user typed into a message sticker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Token to quote this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// ID of the message this one quotes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_message_id: Option<String>,
    /// Token to mark the message as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_as_read_token: Option<String>,
}

/// A message of a type this version of enishi does not know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UnknownMessage {
    /// Message ID, when it is a string.
    pub id: Option<String>,
    /// `message.type` as sent.
    pub message_type: String,
    /// The whole message object.
    pub raw: serde_json::Value,
}

/// `unsend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Unsend {
    /// ID of the unsent message.
    pub message_id: String,
}

/// `follow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Follow {
    /// `true` when the user unblocked the account rather than adding it (LINE does not
    /// guarantee its accuracy). `None` when LINE sent no `follow` object (older payloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_unblocked: Option<bool>,
}

/// `joined` / `left` of member events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Members {
    /// The users (user sources).
    pub members: Vec<Source>,
}

/// `postback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Postback {
    /// The action's `data`.
    pub data: String,
    /// Values chosen in a date/time picker or rich-menu switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<PostbackParams>,
}

/// `postback.params` (other keys LINE may add stay in [`Event::raw_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PostbackParams {
    /// Date picker: `yyyy-MM-dd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Time picker: `HH:mm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Date-time picker: `yyyy-MM-ddTHH:mm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// Rich-menu switch: the alias switched to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_rich_menu_alias_id: Option<String>,
    /// Rich-menu switch: `SUCCESS`, `RICHMENU_ALIAS_ID_NOTFOUND`, `RICHMENU_NOTFOUND` or `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `videoPlayComplete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VideoPlayComplete {
    /// The `trackingId` given to the video message.
    pub tracking_id: String,
}

/// `beacon`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Beacon {
    /// Hardware ID of the beacon.
    pub hwid: String,
    /// `enter`, `banner` or `stay`.
    #[serde(rename = "type")]
    pub beacon_type: BeaconType,
    /// Device message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm: Option<String>,
}

/// `link` of an `accountLink` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountLink {
    /// `ok` or `failed`.
    pub result: LinkResult,
    /// The nonce the shop issued for this link.
    pub nonce: String,
}

/// `membership`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Membership {
    /// `joined`, `left` or `renewed`.
    #[serde(rename = "type")]
    pub membership_type: MembershipType,
    /// The membership plan's ID.
    pub membership_id: i64,
}

/// `module` of a module-channel event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModuleContent {
    /// The module channel was attached to an account.
    Attached {
        /// The account's bot user ID.
        bot_id: String,
        /// The scopes the admin granted.
        scopes: Vec<String>,
    },
    /// The module channel was detached.
    Detached {
        /// The account's bot user ID.
        bot_id: String,
        /// Why.
        reason: DetachReason,
    },
    /// A module event type this version of enishi does not know.
    Unknown {
        /// `module.type` as sent.
        module_type: String,
        /// The whole module object.
        raw: serde_json::Value,
    },
}

impl Serialize for ModuleContent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Self::Attached { bot_id, scopes } => {
                m.serialize_entry("type", "attached")?;
                m.serialize_entry("botId", bot_id)?;
                m.serialize_entry("scopes", scopes)?;
            }
            Self::Detached { bot_id, reason } => {
                m.serialize_entry("type", "detached")?;
                m.serialize_entry("botId", bot_id)?;
                m.serialize_entry("reason", reason)?;
            }
            Self::Unknown { raw, .. } => {
                if let Some(obj) = raw.as_object() {
                    for (k, v) in obj {
                        m.serialize_entry(k, v)?;
                    }
                }
            }
        }
        m.end()
    }
}

/// `chatControl` of an `activated` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChatControl {
    /// When the control expires, in milliseconds since the Unix epoch.
    pub expire_at: i64,
}

/// `delivery` of a PnP delivery-completion event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PnpDelivery {
    /// A hashed phone number, or the `X-Line-Delivery-Tag` given when sending.
    pub data: String,
}

/// `things` of a (historical) LINE Things event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Things {
    /// `link`, `unlink` or `scenarioResult`.
    #[serde(rename = "type")]
    pub things_type: ThingsType,
    /// The device ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The scenario result (`scenarioResult` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ScenarioResult>,
}

/// `things.result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ScenarioResult {
    /// Scenario ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_id: Option<String>,
    /// Scenario revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Start time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// End time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// `success`, `gatt_error`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Results of the scenario's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_results: Option<Vec<ActionResult>>,
    /// Base64 BLE notification payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ble_notification_payload: Option<String>,
    /// Error reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
}

/// One action result of a LINE Things scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// `binary`, `void`, or another type.
    #[serde(rename = "type")]
    pub action_type: String,
    /// Base64 data (`binary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if matches!(self.kind, EventKind::Unknown(_) | EventKind::Malformed { .. }) {
            // `raw` was read as JSON, so this re-check cannot fail.
            let raw: &RawValue =
                serde_json::from_str(&self.raw).map_err(serde::ser::Error::custom)?;
            return raw.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.type_str())?;
        if let Some(v) = &self.mode {
            m.serialize_entry("mode", v)?;
        }
        if let Some(v) = &self.timestamp {
            m.serialize_entry("timestamp", v)?;
        }
        if let Some(v) = &self.source {
            m.serialize_entry("source", v)?;
        }
        if let Some(v) = &self.webhook_event_id {
            m.serialize_entry("webhookEventId", v)?;
        }
        if let Some(v) = &self.delivery_context {
            m.serialize_entry("deliveryContext", v)?;
        }
        if let Some(v) = &self.reply_token {
            m.serialize_entry("replyToken", v)?;
        }
        match &self.kind {
            EventKind::Message(c) | EventKind::MessageEdited(c) => {
                m.serialize_entry("message", c)?
            }
            EventKind::Unsend(v) => m.serialize_entry("unsend", v)?,
            EventKind::Follow(v) => {
                if v.is_unblocked.is_some() {
                    m.serialize_entry("follow", v)?;
                }
            }
            EventKind::MemberJoined(v) => m.serialize_entry("joined", v)?,
            EventKind::MemberLeft(v) => m.serialize_entry("left", v)?,
            EventKind::Postback(v) => m.serialize_entry("postback", v)?,
            EventKind::VideoPlayComplete(v) => m.serialize_entry("videoPlayComplete", v)?,
            EventKind::Beacon(v) => m.serialize_entry("beacon", v)?,
            EventKind::AccountLink(v) => m.serialize_entry("link", v)?,
            EventKind::Membership(v) => m.serialize_entry("membership", v)?,
            EventKind::Module(v) => m.serialize_entry("module", v)?,
            EventKind::Activated(v) => m.serialize_entry("chatControl", v)?,
            EventKind::Delivery(v) => m.serialize_entry("delivery", v)?,
            EventKind::Things(v) => m.serialize_entry("things", v)?,
            EventKind::Unfollow
            | EventKind::Join
            | EventKind::Leave
            | EventKind::Deactivated
            | EventKind::BotSuspended
            | EventKind::BotResumed
            | EventKind::Unknown(_)
            | EventKind::Malformed { .. } => {}
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads one event in LINE's JSON shape (as [`parse_event`](super::parse_event)); a
    /// malformed event becomes [`EventKind::Malformed`], never an error.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(super::parse::event_from_raw(raw.get()))
    }
}
