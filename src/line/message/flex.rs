//! Flex messages: a typed builder for bubbles and carousels, and a raw-JSON escape hatch for
//! anything the typed model does not cover (e.g. JSON exported from the Flex Message Simulator).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Action, ActionContext, MessageCommon, check, limits};
use crate::line::Validator;

/// A flex message (`"type": "flex"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexMessage {
    /// Alternative text for notifications and the chat list (≤ 1,500).
    pub alt_text: String,
    /// The bubble or carousel.
    pub contents: FlexContainer,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// The contents of a flex message.
///
/// Deserialising picks the typed form only when it represents the JSON exactly (nothing lost);
/// anything else is kept as [`FlexContainer::Raw`], so every flex JSON round-trips unchanged.
// The bubble is boxed: inline it would make every `Message` ~3 KB, and a personalised campaign
// holds one message per recipient.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FlexContainer {
    /// A single bubble.
    Bubble(Box<FlexBubble>),
    /// A carousel of bubbles.
    Carousel(FlexCarousel),
    /// Any flex container as raw JSON, sent as is (only its `type` and bubble count are
    /// checked locally).
    Raw(serde_json::Value),
}

impl Serialize for FlexContainer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bubble(b) => b.serialize(serializer),
            Self::Carousel(c) => c.serialize(serializer),
            Self::Raw(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for FlexContainer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let typed = match value.get("type").and_then(serde_json::Value::as_str) {
            Some("bubble") => {
                FlexBubble::deserialize(&value).ok().map(|b| Self::Bubble(Box::new(b)))
            }
            Some("carousel") => FlexCarousel::deserialize(&value).ok().map(Self::Carousel),
            _ => None,
        };
        // Keep the typed form only if it is lossless.
        Ok(match typed {
            Some(t) if serde_json::to_value(&t).is_ok_and(|back| back == value) => t,
            _ => Self::Raw(value),
        })
    }
}

/// A bubble: header, hero, body and footer blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "bubble", rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexBubble {
    /// Bubble size (`nano` … `giga`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<FlexBubbleSize>,
    /// Text direction, `ltr` or `rtl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Header block.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "box_block")]
    pub header: Option<FlexBox>,
    /// Hero block (usually an image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hero: Option<FlexComponent>,
    /// Body block.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "box_block")]
    pub body: Option<FlexBox>,
    /// Footer block.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "box_block")]
    pub footer: Option<FlexBox>,
    /// Block styles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub styles: Option<FlexBubbleStyles>,
    /// Action when the bubble is tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// (De)serialises a bubble's header, body or footer: a box, with its `"type": "box"` tag.
mod box_block {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::FlexBox;

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Ref<'a> {
        Box(&'a FlexBox),
    }

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Owned {
        Box(FlexBox),
    }

    #[allow(clippy::ref_option)] // serde's `with` hands us `&Option<T>`.
    pub(super) fn serialize<S: Serializer>(
        value: &Option<FlexBox>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Ref::Box).serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<FlexBox>, D::Error> {
        Ok(Option::<Owned>::deserialize(deserializer)?.map(|Owned::Box(b)| b))
    }
}

/// Bubble size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlexBubbleSize {
    /// nano
    Nano,
    /// micro
    Micro,
    /// deca
    Deca,
    /// hecto
    Hecto,
    /// kilo
    Kilo,
    /// mega (the default)
    Mega,
    /// giga
    Giga,
}

/// Styles of a bubble's blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexBubbleStyles {
    /// Header style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<FlexBlockStyle>,
    /// Hero style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hero: Option<FlexBlockStyle>,
    /// Body style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<FlexBlockStyle>,
    /// Footer style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<FlexBlockStyle>,
}

/// Style of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexBlockStyle {
    /// Background colour (`#RRGGBB` or `#RRGGBBAA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// Whether a separator is drawn above the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<bool>,
    /// Separator colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator_color: Option<String>,
}

/// A carousel of bubbles (≤ 12).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "carousel")]
#[non_exhaustive]
pub struct FlexCarousel {
    /// The bubbles.
    pub contents: Vec<FlexBubble>,
}

/// A flex component. (Spans live only inside [`FlexText::contents`].)
// Values are built once per send and rarely moved; boxing variants would leak into every
// constructor and pattern match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlexComponent {
    /// A box laying out other components.
    Box(FlexBox),
    /// Text.
    Text(FlexText),
    /// An image.
    Image(FlexImage),
    /// A button.
    Button(FlexButton),
    /// An icon (in baseline boxes).
    Icon(FlexIcon),
    /// A video (hero block only).
    Video(FlexVideo),
    /// A separator line.
    Separator(FlexSeparator),
    /// Flexible empty space.
    Filler(FlexFiller),
}

/// Box layout direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlexLayout {
    /// Children side by side.
    Horizontal,
    /// Children stacked.
    Vertical,
    /// Side by side, aligned on the text baseline.
    Baseline,
}

/// A box component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexBox {
    /// Layout of the children.
    pub layout: FlexLayout,
    /// The children.
    pub contents: Vec<FlexComponent>,
    /// Share of the parent box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<i32>,
    /// Space between children (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<String>,
    /// Space before this box (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
    /// Padding on all sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_all: Option<String>,
    /// Top padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_top: Option<String>,
    /// Bottom padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_bottom: Option<String>,
    /// Start padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_start: Option<String>,
    /// End padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_end: Option<String>,
    /// Background colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// Border colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_color: Option<String>,
    /// Border width (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_width: Option<String>,
    /// Corner radius (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corner_radius: Option<String>,
    /// Width (px or %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<String>,
    /// Height (px or %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
    /// `relative` or `absolute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Top offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_top: Option<String>,
    /// Start offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_start: Option<String>,
    /// Main-axis distribution (`center`, `flex-start`, `space-between`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justify_content: Option<String>,
    /// Cross-axis alignment (`center`, `flex-start`, `flex-end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align_items: Option<String>,
    /// Action when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// Font weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlexWeight {
    /// Regular.
    Regular,
    /// Bold.
    Bold,
}

/// A text component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexText {
    /// The text (required unless `contents` holds spans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Spans with their own styles, shown instead of `text`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<FlexSpan>,
    /// Share of the parent box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<i32>,
    /// Font size (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `start`, `end` or `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<String>,
    /// `top`, `bottom` or `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<String>,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<FlexWeight>,
    /// `normal` or `italic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// `none`, `underline` or `line-through`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoration: Option<String>,
    /// Whether text wraps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap: Option<bool>,
    /// Maximum number of lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u32>,
    /// Space before (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
    /// Action when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A span inside a text component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "span", rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexSpan {
    /// The text.
    pub text: String,
    /// Font size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<FlexWeight>,
    /// `normal` or `italic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// `none`, `underline` or `line-through`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoration: Option<String>,
}

/// An image component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexImage {
    /// Image URL (HTTPS, JPEG or PNG).
    pub url: String,
    /// Share of the parent box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<i32>,
    /// Space before (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
    /// Maximum width (keyword, px or %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `{width}:{height}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// `fit` or `cover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_mode: Option<String>,
    /// `start`, `end` or `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<String>,
    /// `top`, `bottom` or `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<String>,
    /// Background colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// Plays an animated PNG (≤ 10 per message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    /// Action when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// Button style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlexButtonStyle {
    /// Filled, dark.
    Primary,
    /// Filled, light.
    Secondary,
    /// A text link (the default).
    Link,
}

/// A button component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexButton {
    /// What the button does; its label is the button text.
    pub action: Action,
    /// Share of the parent box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<i32>,
    /// Style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<FlexButtonStyle>,
    /// Colour (text for `link`, background otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// `sm` or `md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
    /// `top`, `bottom` or `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<String>,
    /// Space before (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
}

/// An icon component (in baseline boxes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexIcon {
    /// Icon URL (HTTPS).
    pub url: String,
    /// Size (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `{width}:{height}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// Space before (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
}

/// A video component (hero block of a bubble only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexVideo {
    /// Video URL (MP4, HTTPS).
    pub url: String,
    /// Preview image URL (HTTPS).
    pub preview_url: String,
    /// Shown where video is unsupported.
    pub alt_content: Box<FlexComponent>,
    /// `{width}:{height}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// Action (a URI action) shown after playback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A separator component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexSeparator {
    /// Space before (keyword or px).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A filler component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FlexFiller {
    /// Share of the parent box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<i32>,
}

impl FlexMessage {
    /// A flex message.
    #[must_use]
    pub fn new(alt_text: impl Into<String>, contents: impl Into<FlexContainer>) -> Self {
        Self {
            alt_text: alt_text.into(),
            contents: contents.into(),
            common: MessageCommon::default(),
        }
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::text(v, "altText", &self.alt_text, 1, limits::FLEX_ALT_TEXT_MAX);
        v.field("contents", |v| self.contents.validate(v));
        let animated = self.contents.animated_images();
        if animated > limits::FLEX_ANIMATED_IMAGES_MAX {
            v.violation_at(
                "contents",
                format!(
                    "may hold at most {} animated images (got {animated})",
                    limits::FLEX_ANIMATED_IMAGES_MAX
                ),
            );
        }
    }
}

impl FlexContainer {
    /// Raw flex JSON, e.g. from LINE's Flex Message Simulator.
    #[must_use]
    pub fn raw(json: serde_json::Value) -> Self {
        Self::Raw(json)
    }

    /// A carousel of these bubbles.
    #[must_use]
    pub fn carousel(bubbles: impl IntoIterator<Item = FlexBubble>) -> Self {
        Self::Carousel(FlexCarousel { contents: bubbles.into_iter().collect() })
    }

    fn validate(&self, v: &mut Validator) {
        match self {
            Self::Bubble(b) => b.validate(v),
            Self::Carousel(c) => {
                v.count("contents", c.contents.len(), 1, limits::FLEX_CAROUSEL_BUBBLES_MAX);
                v.field("contents", |v| {
                    for (i, bubble) in c.contents.iter().enumerate() {
                        v.index(i, |v| bubble.validate(v));
                    }
                });
            }
            Self::Raw(value) => match value.get("type").and_then(serde_json::Value::as_str) {
                Some("bubble") => {}
                Some("carousel") => match value.get("contents").and_then(|c| c.as_array()) {
                    Some(bubbles) => {
                        v.count("contents", bubbles.len(), 1, limits::FLEX_CAROUSEL_BUBBLES_MAX);
                    }
                    None => v.violation_at("contents", "must be an array of bubbles"),
                },
                _ => v.violation_at("type", "must be \"bubble\" or \"carousel\""),
            },
        }
    }

    fn animated_images(&self) -> usize {
        match self {
            Self::Bubble(b) => b.animated_images(),
            Self::Carousel(c) => c.contents.iter().map(FlexBubble::animated_images).sum(),
            Self::Raw(_) => 0,
        }
    }
}

impl FlexBubble {
    /// An empty bubble; add blocks with the `with_*` setters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the hero block (an image, a video or a box).
    #[must_use]
    pub fn with_hero(mut self, hero: impl Into<FlexComponent>) -> Self {
        self.hero = Some(hero.into());
        self
    }

    fn validate(&self, v: &mut Validator) {
        for (name, block) in
            [("header", &self.header), ("body", &self.body), ("footer", &self.footer)]
        {
            if let Some(block) = block {
                v.field(name, |v| block.validate(v));
            }
        }
        if let Some(hero) = &self.hero {
            v.field("hero", |v| hero.validate(v));
        }
        if let Some(styles) = &self.styles {
            v.field("styles", |v| {
                for (name, style) in [
                    ("header", &styles.header),
                    ("hero", &styles.hero),
                    ("body", &styles.body),
                    ("footer", &styles.footer),
                ] {
                    if let Some(style) = style {
                        v.field(name, |v| {
                            check::opt_color(
                                v,
                                "backgroundColor",
                                style.background_color.as_deref(),
                            );
                            check::opt_color(v, "separatorColor", style.separator_color.as_deref());
                        });
                    }
                }
            });
        }
        if let Some(action) = &self.action {
            v.field("action", |v| action.validate(v, ActionContext::DefaultAction));
        }
    }

    fn animated_images(&self) -> usize {
        let boxes = [&self.header, &self.body, &self.footer];
        boxes.iter().filter_map(|b| b.as_ref()).map(FlexBox::animated_images).sum::<usize>()
            + self.hero.as_ref().map_or(0, FlexComponent::animated_images)
    }
}

setters!(FlexBubble {
    with_size(size: FlexBubbleSize),
    with_header(header: FlexBox),
    with_body(body: FlexBox),
    with_footer(footer: FlexBox),
    with_styles(styles: FlexBubbleStyles),
    with_action(action: impl Into<Action>),
});

impl FlexComponent {
    fn validate(&self, v: &mut Validator) {
        match self {
            Self::Box(b) => b.validate(v),
            Self::Text(t) => {
                match (&t.text, t.contents.is_empty()) {
                    (Some(text), true) => check::non_empty(v, "text", text),
                    (None, true) => {
                        v.violation_at("text", "is required unless contents holds spans")
                    }
                    (_, false) => {}
                }
                v.field("contents", |v| {
                    for (i, span) in t.contents.iter().enumerate() {
                        v.index(i, |v| {
                            check::non_empty(v, "text", &span.text);
                            check::opt_color(v, "color", span.color.as_deref());
                        });
                    }
                });
                check::opt_color(v, "color", t.color.as_deref());
                validate_tap_action(v, t.action.as_ref());
            }
            Self::Image(i) => {
                check::media_url(v, "url", &i.url);
                check::opt_color(v, "backgroundColor", i.background_color.as_deref());
                validate_tap_action(v, i.action.as_ref());
            }
            Self::Button(b) => {
                v.field("action", |v| b.action.validate(v, ActionContext::FlexButton));
                check::opt_color(v, "color", b.color.as_deref());
            }
            Self::Icon(i) => check::media_url(v, "url", &i.url),
            Self::Video(video) => {
                check::media_url(v, "url", &video.url);
                check::media_url(v, "previewUrl", &video.preview_url);
                v.field("altContent", |v| video.alt_content.validate(v));
                validate_tap_action(v, video.action.as_ref());
            }
            Self::Separator(s) => check::opt_color(v, "color", s.color.as_deref()),
            Self::Filler(_) => {}
        }
    }

    fn animated_images(&self) -> usize {
        match self {
            Self::Box(b) => b.animated_images(),
            Self::Image(i) => usize::from(i.animated == Some(true)),
            Self::Video(video) => video.alt_content.animated_images(),
            _ => 0,
        }
    }
}

fn validate_tap_action(v: &mut Validator, action: Option<&Action>) {
    if let Some(action) = action {
        v.field("action", |v| action.validate(v, ActionContext::FlexArea));
    }
}

impl FlexBox {
    /// A box laying out `contents` with `layout`.
    #[must_use]
    pub fn new(layout: FlexLayout, contents: impl IntoIterator<Item = FlexComponent>) -> Self {
        Self {
            layout,
            contents: contents.into_iter().collect(),
            flex: None,
            spacing: None,
            margin: None,
            padding_all: None,
            padding_top: None,
            padding_bottom: None,
            padding_start: None,
            padding_end: None,
            background_color: None,
            border_color: None,
            border_width: None,
            corner_radius: None,
            width: None,
            height: None,
            position: None,
            offset_top: None,
            offset_start: None,
            justify_content: None,
            align_items: None,
            action: None,
        }
    }

    /// A vertical box.
    #[must_use]
    pub fn vertical(contents: impl IntoIterator<Item = FlexComponent>) -> Self {
        Self::new(FlexLayout::Vertical, contents)
    }

    /// A horizontal box.
    #[must_use]
    pub fn horizontal(contents: impl IntoIterator<Item = FlexComponent>) -> Self {
        Self::new(FlexLayout::Horizontal, contents)
    }

    /// A baseline box (for text and icons).
    #[must_use]
    pub fn baseline(contents: impl IntoIterator<Item = FlexComponent>) -> Self {
        Self::new(FlexLayout::Baseline, contents)
    }

    /// Appends a child.
    #[must_use]
    pub fn with_content(mut self, component: impl Into<FlexComponent>) -> Self {
        self.contents.push(component.into());
        self
    }

    fn validate(&self, v: &mut Validator) {
        v.field("contents", |v| {
            for (i, child) in self.contents.iter().enumerate() {
                v.index(i, |v| child.validate(v));
            }
        });
        check::opt_color(v, "backgroundColor", self.background_color.as_deref());
        check::opt_color(v, "borderColor", self.border_color.as_deref());
        validate_tap_action(v, self.action.as_ref());
    }

    fn animated_images(&self) -> usize {
        self.contents.iter().map(FlexComponent::animated_images).sum()
    }
}

setters!(FlexBox {
    with_flex(flex: i32),
    with_spacing(spacing: impl Into<String>),
    with_margin(margin: impl Into<String>),
    with_padding_all(padding_all: impl Into<String>),
    with_background_color(background_color: impl Into<String>),
    with_border_color(border_color: impl Into<String>),
    with_border_width(border_width: impl Into<String>),
    with_corner_radius(corner_radius: impl Into<String>),
    with_justify_content(justify_content: impl Into<String>),
    with_align_items(align_items: impl Into<String>),
    with_action(action: impl Into<Action>),
});

impl FlexText {
    /// A text component.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: Some(text.into()), ..Self::default() }
    }

    /// A text component made of styled spans.
    #[must_use]
    pub fn spans(spans: impl IntoIterator<Item = FlexSpan>) -> Self {
        Self { contents: spans.into_iter().collect(), ..Self::default() }
    }
}

setters!(FlexText {
    with_flex(flex: i32),
    with_size(size: impl Into<String>),
    with_align(align: impl Into<String>),
    with_gravity(gravity: impl Into<String>),
    with_color(color: impl Into<String>),
    with_weight(weight: FlexWeight),
    with_wrap(wrap: bool),
    with_max_lines(max_lines: u32),
    with_margin(margin: impl Into<String>),
    with_action(action: impl Into<Action>),
});

impl FlexSpan {
    /// A span of text.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }
}

setters!(FlexSpan {
    with_size(size: impl Into<String>),
    with_color(color: impl Into<String>),
    with_weight(weight: FlexWeight),
    with_decoration(decoration: impl Into<String>),
});

impl FlexImage {
    /// An image component.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            flex: None,
            margin: None,
            size: None,
            aspect_ratio: None,
            aspect_mode: None,
            align: None,
            gravity: None,
            background_color: None,
            animated: None,
            action: None,
        }
    }
}

setters!(FlexImage {
    with_flex(flex: i32),
    with_margin(margin: impl Into<String>),
    with_size(size: impl Into<String>),
    with_aspect_ratio(aspect_ratio: impl Into<String>),
    with_aspect_mode(aspect_mode: impl Into<String>),
    with_background_color(background_color: impl Into<String>),
    with_animated(animated: bool),
    with_action(action: impl Into<Action>),
});

impl FlexButton {
    /// A button doing `action` (whose label is the button text).
    #[must_use]
    pub fn new(action: impl Into<Action>) -> Self {
        Self {
            action: action.into(),
            flex: None,
            style: None,
            color: None,
            height: None,
            gravity: None,
            margin: None,
        }
    }
}

setters!(FlexButton {
    with_flex(flex: i32),
    with_style(style: FlexButtonStyle),
    with_color(color: impl Into<String>),
    with_height(height: impl Into<String>),
    with_margin(margin: impl Into<String>),
});

impl FlexIcon {
    /// An icon component.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), size: None, aspect_ratio: None, margin: None }
    }
}

setters!(FlexIcon {
    with_size(size: impl Into<String>),
    with_aspect_ratio(aspect_ratio: impl Into<String>),
    with_margin(margin: impl Into<String>),
});

impl FlexVideo {
    /// A video with its preview and the component shown where video is unsupported.
    #[must_use]
    pub fn new(
        url: impl Into<String>,
        preview_url: impl Into<String>,
        alt_content: impl Into<FlexComponent>,
    ) -> Self {
        Self {
            url: url.into(),
            preview_url: preview_url.into(),
            alt_content: Box::new(alt_content.into()),
            aspect_ratio: None,
            action: None,
        }
    }
}

setters!(FlexVideo {
    with_aspect_ratio(aspect_ratio: impl Into<String>),
    with_action(action: impl Into<Action>),
});

impl FlexSeparator {
    /// A separator.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

setters!(FlexSeparator {
    with_margin(margin: impl Into<String>),
    with_color(color: impl Into<String>),
});

impl FlexFiller {
    /// A filler.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

from_payload!(FlexComponent {
    Box(FlexBox),
    Text(FlexText),
    Image(FlexImage),
    Button(FlexButton),
    Icon(FlexIcon),
    Video(FlexVideo),
    Separator(FlexSeparator),
    Filler(FlexFiller),
});

from_payload!(FlexContainer {
    Bubble(FlexBubble),
    Carousel(FlexCarousel),
});
