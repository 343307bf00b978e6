//! From raw bytes to [`WebhookPayload`]: the envelope is read once with each event kept as a
//! borrowed raw slice, then every event is read on its own (so one bad event cannot fail the
//! batch) through a flat "wire" struct that holds every known field of every event type. This
//! reads each event in one pass whatever the order of its keys; only unknown or malformed
//! events take a slower path through `serde_json::Value`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use std::borrow::Cow;

use super::event::*;
use crate::WebhookEventId;

/// Why a request body is not a webhook payload at all (a single bad event is not a
/// `BodyError`: see [`EventKind::Malformed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not UTF-8.
    #[error("the webhook body is not UTF-8")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The body is not a JSON object with an `events` array. The error says what was found
    /// and where (positions are counted from the start of the value being read).
    #[error("the webhook body is not a webhook payload")]
    Json(#[source] serde_json::Error),
}

/// Parses a webhook request body. Call it only after [`verify`](super::verify) succeeded.
///
/// Never fails because of something new: unknown event, message and source types, unknown
/// values of LINE's string enums and unknown fields are all kept. An event that cannot be read
/// becomes [`EventKind::Malformed`] while the other events parse normally.
///
/// # Errors
/// [`BodyError`] when the body is not UTF-8 or not a JSON object with an `events` array.
///
/// ```
/// use enishi::line::webhook::{EventKind, parse};
/// let body = br#"{"destination":"Uabc","events":[
///   {"type":"follow","timestamp":1,"source":{"type":"user","userId":"U1"},"replyToken":"r",
///    "mode":"active","webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
///    "follow":{"isUnblocked":true}},
///   {"type":"somethingNew","timestamp":2,"webhookEventId":"01J"}]}"#;
/// let payload = parse(body).unwrap();
/// assert!(matches!(payload.events[0].kind, EventKind::Follow(f) if f.is_unblocked == Some(true)));
/// assert_eq!(payload.events[1].type_str(), "somethingNew");
/// ```
pub fn parse(raw_body: &[u8]) -> Result<WebhookPayload, BodyError> {
    let text = std::str::from_utf8(raw_body).map_err(BodyError::NotUtf8)?;
    // The events' raw JSON are ranges of one shared copy of the body.
    let body: Arc<str> = Arc::from(text);
    Walker { text: &body, body: &body, pos: 0 }.payload().map_err(BodyError::Json)
}

/// Walks the envelope by hand so that each event is read **once**, straight into the wire
/// struct, while its exact byte range (the raw JSON) is known from the stream offset. Reading
/// the events first as raw values and then again as typed values cost about a third more.
/// Values are still read by serde_json (`StreamDeserializer` reports where each one ends);
/// the walker only handles the punctuation between them.
struct Walker<'a> {
    text: &'a str,
    /// `text`, shared by the events' raw JSON.
    body: &'a Arc<str>,
    pos: usize,
}

fn syntax_error(msg: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(msg)
}

/// Borrows an object key when it has no escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Walker<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.text.as_bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and consumes one of `chars`, returning it.
    fn punct(&mut self, chars: &[u8]) -> Result<u8, serde_json::Error> {
        self.skip_ws();
        match self.text.as_bytes().get(self.pos) {
            Some(c) if chars.contains(c) => {
                self.pos += 1;
                Ok(*c)
            }
            found => Err(syntax_error(format!(
                "expected one of `{}` at byte {}, found {}",
                String::from_utf8_lossy(chars),
                self.pos,
                found.map_or_else(|| "the end".to_owned(), |c| format!("`{}`", char::from(*c)))
            ))),
        }
    }

    /// Reads one JSON value at the current position.
    fn value<T: Deserialize<'a>>(&mut self) -> Result<T, serde_json::Error> {
        let text: &'a str = self.text;
        let mut stream = serde_json::Deserializer::from_str(&text[self.pos..]).into_iter::<T>();
        match stream.next() {
            Some(Ok(v)) => {
                self.pos += stream.byte_offset();
                Ok(v)
            }
            Some(Err(e)) => Err(e),
            None => {
                Err(syntax_error(format!("expected a value at byte {}, found the end", self.pos)))
            }
        }
    }

    fn payload(mut self) -> Result<WebhookPayload, serde_json::Error> {
        self.punct(b"{")?;
        let (mut destination, mut events) = (None, None);
        self.skip_ws();
        if self.text.as_bytes().get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let Key(key) = self.value()?;
                self.punct(b":")?;
                match &*key {
                    "events" if events.is_some() => {
                        return Err(syntax_error("duplicate field `events`".into()));
                    }
                    "events" => events = Some(self.events()?),
                    "destination" if destination.is_some() => {
                        return Err(syntax_error("duplicate field `destination`".into()));
                    }
                    "destination" => destination = Some(self.value::<Option<String>>()?),
                    _ => {
                        self.value::<&RawValue>()?;
                    }
                }
                if self.punct(b",}")? == b'}' {
                    break;
                }
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(syntax_error(format!("trailing characters at byte {}", self.pos)));
        }
        let events = events
            .ok_or_else(|| <serde_json::Error as serde::de::Error>::missing_field("events"))?;
        Ok(WebhookPayload { destination: destination.flatten(), events })
    }

    fn events(&mut self) -> Result<Vec<Event>, serde_json::Error> {
        self.punct(b"[")?;
        // A LINE event takes a few hundred bytes: reserve for most of them up front, rather
        // than moving every event read so far each time the vector doubles.
        let mut events = Vec::with_capacity(((self.text.len() - self.pos) / 320).clamp(1, 256));
        self.skip_ws();
        if self.text.as_bytes().get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(events);
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            let wire = self.value::<EventWire<'a>>();
            if wire.is_err() {
                // Not an event we can read: find where it ends (a syntax error here means the
                // body is not JSON at all, which fails the payload).
                self.pos = start;
                self.value::<&RawValue>()?;
            }
            events
                .push(event_from_wire(wire, RawJson::new(Arc::clone(self.body), start, self.pos)));
            if self.punct(b",]")? == b']' {
                return Ok(events);
            }
        }
    }
}

/// Parses one event object (as found in `events`, or as serialised from an [`Event`]).
/// An event that is JSON but cannot be read becomes [`EventKind::Malformed`].
///
/// # Errors
/// [`BodyError::Json`] when `json` is not JSON at all.
pub fn parse_event(json: &str) -> Result<Event, BodyError> {
    let raw: &RawValue = serde_json::from_str(json).map_err(BodyError::Json)?;
    Ok(event_from_raw(raw.get()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    emojis: Option<Vec<Emoji>>,
    #[serde(default)]
    mention: Option<Mention>,
    #[serde(default)]
    quote_token: Option<String>,
    #[serde(default)]
    quoted_message_id: Option<String>,
    #[serde(default)]
    mark_as_read_token: Option<String>,
    #[serde(default)]
    content_provider: Option<ContentProvider>,
    #[serde(default)]
    image_set: Option<ImageSet>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    package_id: Option<String>,
    #[serde(default)]
    sticker_id: Option<String>,
    #[serde(default)]
    sticker_resource_type: Option<StickerResourceType>,
    #[serde(default)]
    keywords: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct MembersWire<'a> {
    #[serde(borrow)]
    members: Vec<SourceWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<DetachReason>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingsWire {
    #[serde(rename = "type")]
    type_: ThingsType,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    result: Option<ScenarioResult>,
}

/// Every known field of every event type. The type-specific parts are boxed: serde moves
/// this struct several times, and a flat 1.5 KB struct made those moves the largest cost.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default, borrow)]
    source: Option<SourceWire<'a>>,
    #[serde(default)]
    webhook_event_id: Option<String>,
    #[serde(default)]
    delivery_context: Option<DeliveryContext>,
    #[serde(default)]
    reply_token: Option<String>,
    #[serde(default, borrow)]
    message: Option<Box<MessageWire<'a>>>,
    #[serde(default)]
    unsend: Option<Box<Unsend>>,
    #[serde(default)]
    follow: Option<Follow>,
    #[serde(default, borrow)]
    joined: Option<Box<MembersWire<'a>>>,
    #[serde(default, borrow)]
    left: Option<Box<MembersWire<'a>>>,
    #[serde(default)]
    postback: Option<Box<Postback>>,
    #[serde(default)]
    video_play_complete: Option<Box<VideoPlayComplete>>,
    #[serde(default)]
    beacon: Option<Box<Beacon>>,
    #[serde(default)]
    link: Option<Box<AccountLink>>,
    #[serde(default)]
    membership: Option<Box<Membership>>,
    #[serde(default, borrow)]
    module: Option<Box<ModuleWire<'a>>>,
    #[serde(default)]
    chat_control: Option<ChatControl>,
    #[serde(default)]
    delivery: Option<Box<PnpDelivery>>,
    #[serde(default)]
    things: Option<Box<ThingsWire>>,
}

/// The event as a `Value`, parsed only when an unknown sub-type needs its raw JSON.
struct LazyValue<'a> {
    raw: &'a str,
    value: Option<serde_json::Value>,
}

impl LazyValue<'_> {
    fn pointer(&mut self, path: &str) -> serde_json::Value {
        let raw = self.raw;
        let value = self.value.get_or_insert_with(|| serde_json::from_str(raw).unwrap_or_default());
        value.pointer(path).cloned().unwrap_or_default()
    }
}

fn webhook_event_id(s: Option<String>) -> Option<WebhookEventId> {
    // An ID that is empty, over-long or has control characters cannot be a ULID; it is dropped
    // here (the raw JSON keeps it) rather than failing the event.
    s.and_then(|s| WebhookEventId::new(s).ok())
}

/// The event types this version reads into a typed [`EventKind`].
const KNOWN_EVENT_TYPES: [&str; 21] = [
    "message",
    "messageEdited",
    "unsend",
    "follow",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "postback",
    "videoPlayComplete",
    "beacon",
    "accountLink",
    "membership",
    "module",
    "activated",
    "deactivated",
    "botSuspended",
    "botResumed",
    "delivery",
    "things",
];

/// Reads one event from its JSON text (which must be valid JSON).
pub(super) fn event_from_raw(raw: &str) -> Event {
    event_from_wire(
        serde_json::from_str::<EventWire<'_>>(raw),
        RawJson::new(raw.into(), 0, raw.len()),
    )
}

fn event_from_wire(wire: Result<EventWire<'_>, serde_json::Error>, raw_json: RawJson) -> Event {
    let raw: &str = &raw_json;
    let (common, source, kind) = match wire {
        Ok(mut wire) => {
            let mut lazy = LazyValue { raw, value: None };
            let common = Common {
                webhook_event_id: webhook_event_id(wire.webhook_event_id.take()),
                timestamp: wire.timestamp,
                mode: wire.mode.take(),
                reply_token: wire.reply_token.take(),
                delivery_context: wire.delivery_context,
            };
            let source =
                wire.source.take().map(|s| source_from_wire(s, &mut lazy, || "/source".to_owned()));
            let type_ = wire.type_.clone();
            let kind = match kind_from_wire(wire, &mut lazy) {
                Ok(kind) => kind,
                Err(field) => EventKind::Malformed {
                    event_type: Some(type_.to_string()),
                    error: EventError::MissingField { event_type: type_.into_owned(), field },
                },
            };
            (common, source, kind)
        }
        Err(e) => malformed(raw, e),
    };
    Event {
        webhook_event_id: common.webhook_event_id,
        timestamp: common.timestamp,
        mode: common.mode,
        source,
        reply_token: common.reply_token,
        delivery_context: common.delivery_context,
        kind,
        raw: raw_json,
    }
}

struct Common {
    webhook_event_id: Option<WebhookEventId>,
    timestamp: Option<i64>,
    mode: Option<Mode>,
    reply_token: Option<String>,
    delivery_context: Option<DeliveryContext>,
}

/// The slow path: the event did not fit the wire struct. Reads what it can of the common
/// fields, field by field, so the event can still be de-duplicated, logged and answered.
fn malformed(raw: &str, err: serde_json::Error) -> (Common, Option<Source>, EventKind) {
    let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    let Some(obj) = value.as_object() else {
        let common = Common {
            webhook_event_id: None,
            timestamp: None,
            mode: None,
            reply_token: None,
            delivery_context: None,
        };
        return (
            common,
            None,
            EventKind::Malformed { event_type: None, error: EventError::NotAnObject },
        );
    };
    let str_field = |k: &str| obj.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    let event_type = str_field("type");
    let common = Common {
        webhook_event_id: webhook_event_id(str_field("webhookEventId")),
        timestamp: obj.get("timestamp").and_then(serde_json::Value::as_i64),
        mode: obj.get("mode").and_then(|v| Mode::deserialize(v).ok()),
        reply_token: str_field("replyToken"),
        delivery_context: obj
            .get("deliveryContext")
            .and_then(|v| DeliveryContext::deserialize(v).ok()),
    };
    let source = obj.get("source").and_then(|v| {
        let wire = SourceWire::deserialize(v).ok()?;
        let mut lazy = LazyValue { raw, value: None };
        Some(source_from_wire(wire, &mut lazy, || "/source".to_owned()))
    });
    let kind = match event_type {
        None => EventKind::Malformed { event_type: None, error: EventError::MissingType },
        // A field of an unknown event type merely shares a name with a known field: the event
        // is simply unknown, not malformed.
        Some(t) if !KNOWN_EVENT_TYPES.contains(&t.as_str()) => EventKind::Unknown(t),
        Some(t) => EventKind::Malformed {
            error: EventError::Invalid { event_type: t.clone(), source: Arc::new(err) },
            event_type: Some(t),
        },
    };
    (common, source, kind)
}

/// `path` (the JSON pointer of the source) is built only for an unknown source.
fn source_from_wire(
    w: SourceWire<'_>,
    lazy: &mut LazyValue<'_>,
    path: impl FnOnce() -> String,
) -> Source {
    match (&*w.type_, w.group_id, w.room_id) {
        ("user", _, _) => Source::User { user_id: w.user_id },
        ("group", Some(group_id), _) => Source::Group { group_id, user_id: w.user_id },
        ("room", _, Some(room_id)) => Source::Room { room_id, user_id: w.user_id },
        // Unknown types, and a group/room without its ID, keep the whole object.
        _ => Source::Unknown { source_type: w.type_.into_owned(), raw: lazy.pointer(&path()) },
    }
}

fn members(
    w: Option<Box<MembersWire<'_>>>,
    lazy: &mut LazyValue<'_>,
    key: &str,
) -> Result<Members, &'static str> {
    let w = w.ok_or(if key == "joined" { "joined.members" } else { "left.members" })?;
    let members = w
        .members
        .into_iter()
        .enumerate()
        .map(|(i, m)| source_from_wire(m, lazy, || format!("/{key}/members/{i}")))
        .collect();
    Ok(Members { members })
}

fn kind_from_wire(w: EventWire<'_>, lazy: &mut LazyValue<'_>) -> Result<EventKind, &'static str> {
    Ok(match &*w.type_ {
        "message" => EventKind::Message(message_from_wire(*w.message.ok_or("message")?, lazy)?),
        "messageEdited" => {
            EventKind::MessageEdited(message_from_wire(*w.message.ok_or("message")?, lazy)?)
        }
        "unsend" => EventKind::Unsend(*w.unsend.ok_or("unsend.messageId")?),
        "follow" => EventKind::Follow(w.follow.unwrap_or_default()),
        "unfollow" => EventKind::Unfollow,
        "join" => EventKind::Join,
        "leave" => EventKind::Leave,
        "memberJoined" => EventKind::MemberJoined(members(w.joined, lazy, "joined")?),
        "memberLeft" => EventKind::MemberLeft(members(w.left, lazy, "left")?),
        "postback" => EventKind::Postback(*w.postback.ok_or("postback")?),
        "videoPlayComplete" => {
            EventKind::VideoPlayComplete(*w.video_play_complete.ok_or("videoPlayComplete")?)
        }
        "beacon" => EventKind::Beacon(*w.beacon.ok_or("beacon")?),
        "accountLink" => EventKind::AccountLink(*w.link.ok_or("link")?),
        "membership" => EventKind::Membership(*w.membership.ok_or("membership")?),
        "module" => EventKind::Module(module_from_wire(*w.module.ok_or("module")?, lazy)?),
        "activated" => EventKind::Activated(w.chat_control.ok_or("chatControl")?),
        "deactivated" => EventKind::Deactivated,
        "botSuspended" => EventKind::BotSuspended,
        "botResumed" => EventKind::BotResumed,
        "delivery" => EventKind::Delivery(*w.delivery.ok_or("delivery")?),
        "things" => {
            let t = *w.things.ok_or("things")?;
            EventKind::Things(Things {
                things_type: t.type_,
                device_id: t.device_id,
                result: t.result,
            })
        }
        other => EventKind::Unknown(other.to_owned()),
    })
}

fn module_from_wire(
    w: ModuleWire<'_>,
    lazy: &mut LazyValue<'_>,
) -> Result<ModuleContent, &'static str> {
    Ok(match &*w.type_ {
        "attached" => ModuleContent::Attached {
            bot_id: w.bot_id.ok_or("module.botId")?,
            scopes: w.scopes.unwrap_or_default(),
        },
        "detached" => ModuleContent::Detached {
            bot_id: w.bot_id.ok_or("module.botId")?,
            reason: w.reason.unwrap_or_else(|| DetachReason::Unknown(String::new())),
        },
        other => {
            ModuleContent::Unknown { module_type: other.to_owned(), raw: lazy.pointer("/module") }
        }
    })
}

fn message_from_wire(
    w: MessageWire<'_>,
    lazy: &mut LazyValue<'_>,
) -> Result<MessageContent, &'static str> {
    let id = w.id;
    Ok(match &*w.type_ {
        "text" => MessageContent::Text(TextMessage {
            id,
            text: w.text.ok_or("message.text")?,
            emojis: w.emojis,
            mention: w.mention,
            quote_token: w.quote_token,
            quoted_message_id: w.quoted_message_id,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "image" => MessageContent::Image(ImageMessage {
            id,
            content_provider: w.content_provider,
            image_set: w.image_set,
            quote_token: w.quote_token,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "video" => MessageContent::Video(VideoMessage {
            id,
            duration: w.duration,
            content_provider: w.content_provider,
            quote_token: w.quote_token,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "audio" => MessageContent::Audio(AudioMessage {
            id,
            duration: w.duration,
            content_provider: w.content_provider,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "file" => MessageContent::File(FileMessage {
            id,
            file_name: w.file_name,
            file_size: w.file_size,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "location" => MessageContent::Location(LocationMessage {
            id,
            title: w.title,
            address: w.address,
            latitude: w.latitude.ok_or("message.latitude")?,
            longitude: w.longitude.ok_or("message.longitude")?,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "sticker" => MessageContent::Sticker(StickerMessage {
            id,
            package_id: w.package_id.ok_or("message.packageId")?,
            sticker_id: w.sticker_id.ok_or("message.stickerId")?,
            sticker_resource_type: w.sticker_resource_type,
            keywords: w.keywords,
            text: w.text,
            quote_token: w.quote_token,
            quoted_message_id: w.quoted_message_id,
            mark_as_read_token: w.mark_as_read_token,
        }),
        other => MessageContent::Unknown(UnknownMessage {
            id,
            message_type: other.to_owned(),
            raw: lazy.pointer("/message"),
        }),
    })
}
