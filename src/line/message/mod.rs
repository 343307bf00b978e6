//! Message objects enishi sends to LINE, and their local validation.
//!
//! [`Message`] is one enum over every message type, serialised exactly as LINE's JSON (a
//! `"type"` tag, camelCase fields, absent optional fields left out). Quick replies and the sender
//! override are common to all messages ([`MessageCommon`]) and set through
//! [`Message::with_quick_reply`] and [`Message::with_sender`].
//!
//! Before any request, [`validate_messages`] checks a batch against LINE's documented limits
//! (all in [`limits`]); a violation names the JSON path and the limit, and nothing is sent.
//!
//! ```
//! use enishi::line::message::{Action, ButtonsTemplate, Message, QuickReply, validate_messages};
//!
//! let shipped = Message::template(
//!     "Your order #1234 has shipped",
//!     ButtonsTemplate::new("Order #1234 is on its way.")
//!         .with_action(Action::uri("Track parcel", "https://shop.example/track/1234")),
//! );
//! let thanks = Message::text("Thank you for shopping with us!")
//!     .with_quick_reply(QuickReply::new([Action::message("Contact us", "I have a question")]));
//! validate_messages(&[shipped, thanks])?;
//! # Ok::<(), enishi::line::ValidationError>(())
//! ```

/// `impl $ty { pub fn $name(mut self, value: $arg) -> Self }` setting `self.$field = Some(..)`.
macro_rules! setters {
    ($ty:ty { $( $name:ident($field:ident: $arg:ty) ),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $name(mut self, value: $arg) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

/// `From<Payload> for Enum` for newtype variants, boxing the payload where the variant holds
/// a `Box` (a large payload kept off the enum).
macro_rules! from_payload {
    ($enum:ident { $( $variant:ident($payload:ty) ),* $(,)? }) => {
        $(
            impl From<$payload> for $enum {
                fn from(payload: $payload) -> Self {
                    Self::$variant(payload.into())
                }
            }
        )*
    };
}

mod action;
mod check;
mod flex;
mod imagemap;
pub mod limits;
mod media;
mod template;
mod text;

use serde::{Deserialize, Serialize};

pub use action::{
    Action, ActionContext, AltUri, CameraAction, CameraRollAction, ClipboardAction, DatetimeMode,
    DatetimePickerAction, InputOption, LocationAction, MessageAction, PostbackAction,
    RichMenuSwitchAction, UriAction,
};
pub use flex::{
    FlexBlockStyle, FlexBox, FlexBubble, FlexBubbleSize, FlexBubbleStyles, FlexButton,
    FlexButtonStyle, FlexCarousel, FlexComponent, FlexContainer, FlexFiller, FlexIcon, FlexImage,
    FlexLayout, FlexMessage, FlexSeparator, FlexSpan, FlexText, FlexVideo, FlexWeight,
};
pub use imagemap::{
    ImagemapAction, ImagemapArea, ImagemapBaseSize, ImagemapExternalLink, ImagemapMessage,
    ImagemapVideo,
};
pub use media::{
    AudioMessage, CouponMessage, ImageMessage, LocationMessage, StickerMessage, VideoMessage,
};
pub use template::{
    ButtonsTemplate, CarouselColumn, CarouselTemplate, ConfirmTemplate, ImageAspectRatio,
    ImageCarouselColumn, ImageCarouselTemplate, ImageSize, Template, TemplateMessage,
};
pub use text::{Emoji, MentionTarget, Substitution, TextMessage, TextMessageV2};

use crate::line::{ValidationError, Validator};

/// A message object (`#message-objects`), serialised with LINE's `"type"` tag.
///
/// Construct one with [`Message::text`], [`Message::image`], [`Message::template`], ... or from a
/// payload struct with `.into()`.
// A personalised campaign holds one message per recipient, so a message is as small as its
// common kinds allow (152 bytes): the two payloads larger than a text message's (template, 360
// bytes; imagemap, 264) are boxed, as flex bubbles are inside `FlexContainer`. Constructors and
// `.into()` box them; pattern matches read through the box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Message {
    /// `"text"`
    Text(TextMessage),
    /// `"textV2"`
    TextV2(TextMessageV2),
    /// `"sticker"`
    Sticker(StickerMessage),
    /// `"image"`
    Image(ImageMessage),
    /// `"video"`
    Video(VideoMessage),
    /// `"audio"`
    Audio(AudioMessage),
    /// `"location"`
    Location(LocationMessage),
    /// `"imagemap"`
    Imagemap(Box<ImagemapMessage>),
    /// `"template"`
    Template(Box<TemplateMessage>),
    /// `"flex"`
    Flex(FlexMessage),
    /// `"coupon"`
    Coupon(CouponMessage),
}

/// Properties every message may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MessageCommon {
    /// Quick reply buttons (LINE shows only those of the last message of a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<QuickReply>,
    /// Display name and icon shown instead of the account's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
}

/// Quick reply buttons under a message (1 to 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuickReply {
    /// The buttons.
    pub items: Vec<QuickReplyItem>,
}

/// One quick reply button (`"type": "action"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "action", rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuickReplyItem {
    /// Icon at the start of the button (HTTPS PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// What the button does (label required).
    pub action: Action,
}

/// Display name and icon overriding the account's for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Sender {
    /// Display name (≤ 20, must not contain "LINE").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Icon (HTTPS PNG, 1:1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

impl QuickReply {
    /// Quick reply buttons from actions or items.
    #[must_use]
    pub fn new(items: impl IntoIterator<Item = impl Into<QuickReplyItem>>) -> Self {
        Self { items: items.into_iter().map(Into::into).collect() }
    }

    fn validate(&self, v: &mut Validator) {
        v.count("items", self.items.len(), 1, limits::QUICK_REPLY_ITEMS_MAX);
        v.field("items", |v| {
            for (i, item) in self.items.iter().enumerate() {
                v.index(i, |v| {
                    check::opt_media_url(v, "imageUrl", item.image_url.as_deref());
                    v.field("action", |v| item.action.validate(v, ActionContext::QuickReply));
                });
            }
        });
    }
}

impl QuickReplyItem {
    /// A button doing `action`.
    #[must_use]
    pub fn new(action: impl Into<Action>) -> Self {
        Self { image_url: None, action: action.into() }
    }

    /// Shows an icon at the start of the button.
    #[must_use]
    pub fn with_image_url(mut self, image_url: impl Into<String>) -> Self {
        self.image_url = Some(image_url.into());
        self
    }
}

impl From<Action> for QuickReplyItem {
    fn from(action: Action) -> Self {
        Self::new(action)
    }
}

impl Sender {
    /// A sender override with this display name.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: Some(name.into()), icon_url: None }
    }

    /// Sets the icon.
    #[must_use]
    pub fn with_icon_url(mut self, icon_url: impl Into<String>) -> Self {
        self.icon_url = Some(icon_url.into());
        self
    }

    fn validate(&self, v: &mut Validator) {
        if let Some(name) = &self.name {
            check::text(v, "name", name, 1, limits::SENDER_NAME_MAX);
            if name.contains(limits::SENDER_NAME_FORBIDDEN) {
                v.violation_at(
                    "name",
                    format!("must not contain {:?}", limits::SENDER_NAME_FORBIDDEN),
                );
            }
        }
        check::opt_media_url(v, "iconUrl", self.icon_url.as_deref());
    }
}

impl Message {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        TextMessage::new(text).into()
    }

    /// A sticker message.
    #[must_use]
    pub fn sticker(package_id: impl Into<String>, sticker_id: impl Into<String>) -> Self {
        StickerMessage::new(package_id, sticker_id).into()
    }

    /// An image message (HTTPS URLs of the image and its preview).
    #[must_use]
    pub fn image(
        original_content_url: impl Into<String>,
        preview_image_url: impl Into<String>,
    ) -> Self {
        ImageMessage::new(original_content_url, preview_image_url).into()
    }

    /// A video message (HTTPS URLs of the MP4 and its preview image).
    #[must_use]
    pub fn video(
        original_content_url: impl Into<String>,
        preview_image_url: impl Into<String>,
    ) -> Self {
        VideoMessage::new(original_content_url, preview_image_url).into()
    }

    /// An audio message.
    #[must_use]
    pub fn audio(original_content_url: impl Into<String>, duration: std::time::Duration) -> Self {
        AudioMessage::new(original_content_url, duration).into()
    }

    /// A location message.
    #[must_use]
    pub fn location(
        title: impl Into<String>,
        address: impl Into<String>,
        latitude: f64,
        longitude: f64,
    ) -> Self {
        LocationMessage::new(title, address, latitude, longitude).into()
    }

    /// A template message.
    #[must_use]
    pub fn template(alt_text: impl Into<String>, template: impl Into<Template>) -> Self {
        TemplateMessage::new(alt_text, template).into()
    }

    /// A flex message.
    #[must_use]
    pub fn flex(alt_text: impl Into<String>, contents: impl Into<FlexContainer>) -> Self {
        FlexMessage::new(alt_text, contents).into()
    }

    /// A coupon message.
    #[must_use]
    pub fn coupon(coupon_id: impl Into<String>) -> Self {
        CouponMessage::new(coupon_id).into()
    }

    /// Attaches quick reply buttons (shown only when this is the last message of a request).
    #[must_use]
    pub fn with_quick_reply(mut self, quick_reply: QuickReply) -> Self {
        self.common_mut().quick_reply = Some(quick_reply);
        self
    }

    /// Shows this message under another display name and icon.
    #[must_use]
    pub fn with_sender(mut self, sender: Sender) -> Self {
        self.common_mut().sender = Some(sender);
        self
    }

    /// The quick reply and sender override of this message.
    #[must_use]
    pub fn common(&self) -> &MessageCommon {
        match self {
            Self::Text(m) => &m.common,
            Self::TextV2(m) => &m.common,
            Self::Sticker(m) => &m.common,
            Self::Image(m) => &m.common,
            Self::Video(m) => &m.common,
            Self::Audio(m) => &m.common,
            Self::Location(m) => &m.common,
            Self::Imagemap(m) => &m.common,
            Self::Template(m) => &m.common,
            Self::Flex(m) => &m.common,
            Self::Coupon(m) => &m.common,
        }
    }

    /// Mutable access to the quick reply and sender override.
    pub fn common_mut(&mut self) -> &mut MessageCommon {
        match self {
            Self::Text(m) => &mut m.common,
            Self::TextV2(m) => &mut m.common,
            Self::Sticker(m) => &mut m.common,
            Self::Image(m) => &mut m.common,
            Self::Video(m) => &mut m.common,
            Self::Audio(m) => &mut m.common,
            Self::Location(m) => &mut m.common,
            Self::Imagemap(m) => &mut m.common,
            Self::Template(m) => &mut m.common,
            Self::Flex(m) => &mut m.common,
            Self::Coupon(m) => &mut m.common,
        }
    }

    /// LINE's `"type"` value for this message.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::TextV2(_) => "textV2",
            Self::Sticker(_) => "sticker",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::Location(_) => "location",
            Self::Imagemap(_) => "imagemap",
            Self::Template(_) => "template",
            Self::Flex(_) => "flex",
            Self::Coupon(_) => "coupon",
        }
    }

    /// Checks this message against LINE's limits, recording violations below the validator's
    /// current path (e.g. `messages[2]`).
    pub fn validate(&self, v: &mut Validator) {
        match self {
            Self::Text(m) => m.validate(v),
            Self::TextV2(m) => m.validate(v),
            Self::Sticker(m) => m.validate(v),
            Self::Image(m) => m.validate(v),
            Self::Video(m) => m.validate(v),
            Self::Audio(m) => m.validate(v),
            Self::Location(m) => m.validate(v),
            Self::Imagemap(m) => m.validate(v),
            Self::Template(m) => m.validate(v),
            Self::Flex(m) => m.validate(v),
            Self::Coupon(m) => m.validate(v),
        }
        let common = self.common();
        if let Some(quick_reply) = &common.quick_reply {
            v.field("quickReply", |v| quick_reply.validate(v));
        }
        if let Some(sender) = &common.sender {
            v.field("sender", |v| sender.validate(v));
        }
    }
}

from_payload!(Message {
    Text(TextMessage),
    TextV2(TextMessageV2),
    Sticker(StickerMessage),
    Image(ImageMessage),
    Video(VideoMessage),
    Audio(AudioMessage),
    Location(LocationMessage),
    Imagemap(ImagemapMessage),
    Template(TemplateMessage),
    Flex(FlexMessage),
    Coupon(CouponMessage),
});

/// Checks a request's messages: 1 to 5 of them, each within LINE's limits. Violations are
/// reported at `messages` and `messages[i]...`.
///
/// # Errors
/// [`ValidationError`] listing every violation; nothing should be sent.
pub fn validate_messages(messages: &[Message]) -> Result<(), ValidationError> {
    let mut v = Validator::new();
    validate_messages_at("messages", messages, &mut v);
    v.finish()
}

/// Like [`validate_messages`], recording into `v` under `field` (below the validator's current
/// path), for request bodies that hold messages among other fields.
pub fn validate_messages_at(field: &str, messages: &[Message], v: &mut Validator) {
    v.count(field, messages.len(), 1, limits::MESSAGES_MAX);
    v.field(field, |v| {
        for (i, message) in messages.iter().enumerate() {
            v.index(i, |v| message.validate(v));
        }
    });
}
