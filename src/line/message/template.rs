//! Template messages: buttons, confirm, carousel and image carousel.

use serde::{Deserialize, Serialize};

use super::{Action, ActionContext, MessageCommon, check, limits};
use crate::line::Validator;

/// A template message (`"type": "template"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TemplateMessage {
    /// Alternative text for notifications and the chat list (≤ 400).
    pub alt_text: String,
    /// The template.
    pub template: Template,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// The template of a [`TemplateMessage`].
// Values are built once per send and rarely moved; boxing variants would leak into every
// constructor and pattern match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Template {
    /// Image, title, text and up to 4 buttons (`"buttons"`).
    Buttons(ButtonsTemplate),
    /// Text and exactly 2 buttons (`"confirm"`).
    Confirm(ConfirmTemplate),
    /// Up to 10 columns side by side (`"carousel"`).
    Carousel(CarouselTemplate),
    /// Up to 10 tappable images (`"image_carousel"`).
    ImageCarousel(ImageCarouselTemplate),
}

/// Buttons template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ButtonsTemplate {
    /// Image shown above the text (HTTPS, JPEG or PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_image_url: Option<String>,
    /// Image aspect ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_aspect_ratio: Option<ImageAspectRatio>,
    /// How the image fills its area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<ImageSize>,
    /// Background colour of the image (`#RRGGBB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_background_color: Option<String>,
    /// Title (≤ 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text (≤ 160, or ≤ 60 with an image or title).
    pub text: String,
    /// Action when the image, title or text is tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
    /// Buttons (1 to 4).
    pub actions: Vec<Action>,
}

/// Confirm template: a question with two buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConfirmTemplate {
    /// Text (≤ 240).
    pub text: String,
    /// Exactly two buttons.
    pub actions: Vec<Action>,
}

/// Carousel template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CarouselTemplate {
    /// Columns (1 to 10), all with the same number of actions.
    pub columns: Vec<CarouselColumn>,
    /// Image aspect ratio for every column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_aspect_ratio: Option<ImageAspectRatio>,
    /// How every column's image fills its area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<ImageSize>,
}

/// One column of a carousel template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CarouselColumn {
    /// Image (HTTPS, JPEG or PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_image_url: Option<String>,
    /// Background colour of the image (`#RRGGBB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_background_color: Option<String>,
    /// Title (≤ 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text (≤ 120, or ≤ 60 with an image or title).
    pub text: String,
    /// Action when the image, title or text is tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
    /// Buttons (1 to 3).
    pub actions: Vec<Action>,
}

/// Image carousel template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageCarouselTemplate {
    /// Columns (1 to 10).
    pub columns: Vec<ImageCarouselColumn>,
}

/// One image of an image carousel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageCarouselColumn {
    /// The image (HTTPS, JPEG or PNG, 1:1).
    pub image_url: String,
    /// Action when tapped (label optional, ≤ 12).
    pub action: Action,
}

/// Template image aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImageAspectRatio {
    /// 1.51:1 (the default).
    Rectangle,
    /// 1:1.
    Square,
}

/// How a template image fills its area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImageSize {
    /// Fill the area, cropping (the default).
    Cover,
    /// Show the whole image, with a background around it.
    Contain,
}

impl TemplateMessage {
    /// A template message.
    #[must_use]
    pub fn new(alt_text: impl Into<String>, template: impl Into<Template>) -> Self {
        Self {
            alt_text: alt_text.into(),
            template: template.into(),
            common: MessageCommon::default(),
        }
    }

    /// A buttons template message.
    #[must_use]
    pub fn buttons(
        alt_text: impl Into<String>,
        text: impl Into<String>,
        actions: impl IntoIterator<Item = Action>,
    ) -> Self {
        Self::new(alt_text, ButtonsTemplate::new(text).with_actions(actions))
    }

    /// A confirm template message with its two buttons.
    #[must_use]
    pub fn confirm(
        alt_text: impl Into<String>,
        text: impl Into<String>,
        yes: Action,
        no: Action,
    ) -> Self {
        Self::new(alt_text, ConfirmTemplate { text: text.into(), actions: vec![yes, no] })
    }

    /// A carousel template message.
    #[must_use]
    pub fn carousel(
        alt_text: impl Into<String>,
        columns: impl IntoIterator<Item = CarouselColumn>,
    ) -> Self {
        Self::new(alt_text, CarouselTemplate::new(columns))
    }

    /// An image carousel template message.
    #[must_use]
    pub fn image_carousel(
        alt_text: impl Into<String>,
        columns: impl IntoIterator<Item = ImageCarouselColumn>,
    ) -> Self {
        Self::new(alt_text, ImageCarouselTemplate { columns: columns.into_iter().collect() })
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::text(v, "altText", &self.alt_text, 1, limits::TEMPLATE_ALT_TEXT_MAX);
        v.field("template", |v| match &self.template {
            Template::Buttons(t) => t.validate(v),
            Template::Confirm(t) => t.validate(v),
            Template::Carousel(t) => t.validate(v),
            Template::ImageCarousel(t) => t.validate(v),
        });
    }
}

fn validate_actions(v: &mut Validator, actions: &[Action], min: usize, max: usize) {
    v.count("actions", actions.len(), min, max);
    v.field("actions", |v| {
        for (i, action) in actions.iter().enumerate() {
            v.index(i, |v| action.validate(v, ActionContext::Template));
        }
    });
}

fn validate_default_action(v: &mut Validator, action: Option<&Action>) {
    if let Some(action) = action {
        v.field("defaultAction", |v| action.validate(v, ActionContext::DefaultAction));
    }
}

impl ButtonsTemplate {
    /// A buttons template with this text and no buttons yet.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            thumbnail_image_url: None,
            image_aspect_ratio: None,
            image_size: None,
            image_background_color: None,
            title: None,
            text: text.into(),
            default_action: None,
            actions: Vec::new(),
        }
    }

    /// Adds a button.
    #[must_use]
    pub fn with_action(mut self, action: impl Into<Action>) -> Self {
        self.actions.push(action.into());
        self
    }

    /// Adds buttons.
    #[must_use]
    pub fn with_actions(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        self.actions.extend(actions);
        self
    }

    /// Wraps the template in a message with this alternative text.
    #[must_use]
    pub fn into_message(self, alt_text: impl Into<String>) -> TemplateMessage {
        TemplateMessage::new(alt_text, self)
    }

    fn validate(&self, v: &mut Validator) {
        check::opt_media_url(v, "thumbnailImageUrl", self.thumbnail_image_url.as_deref());
        check::opt_color(v, "imageBackgroundColor", self.image_background_color.as_deref());
        check::opt_text(v, "title", self.title.as_deref(), limits::BUTTONS_TITLE_MAX);
        let max = if self.thumbnail_image_url.is_some() || self.title.is_some() {
            limits::BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX
        } else {
            limits::BUTTONS_TEXT_MAX
        };
        check::text(v, "text", &self.text, 1, max);
        validate_default_action(v, self.default_action.as_ref());
        validate_actions(v, &self.actions, 1, limits::BUTTONS_ACTIONS_MAX);
    }
}

setters!(ButtonsTemplate {
    with_thumbnail_image_url(thumbnail_image_url: impl Into<String>),
    with_image_aspect_ratio(image_aspect_ratio: ImageAspectRatio),
    with_image_size(image_size: ImageSize),
    with_image_background_color(image_background_color: impl Into<String>),
    with_title(title: impl Into<String>),
    with_default_action(default_action: impl Into<Action>),
});

impl ConfirmTemplate {
    /// A confirm template with its two buttons.
    #[must_use]
    pub fn new(text: impl Into<String>, yes: Action, no: Action) -> Self {
        Self { text: text.into(), actions: vec![yes, no] }
    }

    fn validate(&self, v: &mut Validator) {
        check::text(v, "text", &self.text, 1, limits::CONFIRM_TEXT_MAX);
        validate_actions(v, &self.actions, limits::CONFIRM_ACTIONS, limits::CONFIRM_ACTIONS);
    }
}

impl CarouselTemplate {
    /// A carousel of these columns.
    #[must_use]
    pub fn new(columns: impl IntoIterator<Item = CarouselColumn>) -> Self {
        Self { columns: columns.into_iter().collect(), image_aspect_ratio: None, image_size: None }
    }

    fn validate(&self, v: &mut Validator) {
        v.count("columns", self.columns.len(), 1, limits::CAROUSEL_COLUMNS_MAX);
        let Some(first) = self.columns.first() else { return };
        v.field("columns", |v| {
            for (i, column) in self.columns.iter().enumerate() {
                v.index(i, |v| {
                    column.validate(v);
                    // LINE renders columns side by side and requires them to look alike.
                    if i > 0 && column.actions.len() != first.actions.len() {
                        v.violation_at(
                            "actions",
                            format!(
                                "every column must hold the same number of actions ({} in columns[0], got {})",
                                first.actions.len(),
                                column.actions.len()
                            ),
                        );
                    }
                    if i > 0
                        && column.thumbnail_image_url.is_some()
                            != first.thumbnail_image_url.is_some()
                    {
                        v.violation_at(
                            "thumbnailImageUrl",
                            "every column must have an image, or none (as columns[0])",
                        );
                    }
                    if i > 0 && column.title.is_some() != first.title.is_some() {
                        v.violation_at("title", "every column must have a title, or none (as columns[0])");
                    }
                });
            }
        });
    }
}

setters!(CarouselTemplate {
    with_image_aspect_ratio(image_aspect_ratio: ImageAspectRatio),
    with_image_size(image_size: ImageSize),
});

impl CarouselColumn {
    /// A column with this text and these buttons.
    #[must_use]
    pub fn new(text: impl Into<String>, actions: impl IntoIterator<Item = Action>) -> Self {
        Self {
            thumbnail_image_url: None,
            image_background_color: None,
            title: None,
            text: text.into(),
            default_action: None,
            actions: actions.into_iter().collect(),
        }
    }

    fn validate(&self, v: &mut Validator) {
        check::opt_media_url(v, "thumbnailImageUrl", self.thumbnail_image_url.as_deref());
        check::opt_color(v, "imageBackgroundColor", self.image_background_color.as_deref());
        check::opt_text(v, "title", self.title.as_deref(), limits::CAROUSEL_TITLE_MAX);
        let max = if self.thumbnail_image_url.is_some() || self.title.is_some() {
            limits::CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX
        } else {
            limits::CAROUSEL_TEXT_MAX
        };
        check::text(v, "text", &self.text, 1, max);
        validate_default_action(v, self.default_action.as_ref());
        validate_actions(v, &self.actions, 1, limits::CAROUSEL_ACTIONS_MAX);
    }
}

setters!(CarouselColumn {
    with_thumbnail_image_url(thumbnail_image_url: impl Into<String>),
    with_image_background_color(image_background_color: impl Into<String>),
    with_title(title: impl Into<String>),
    with_default_action(default_action: impl Into<Action>),
});

impl ImageCarouselTemplate {
    /// An image carousel of these columns.
    #[must_use]
    pub fn new(columns: impl IntoIterator<Item = ImageCarouselColumn>) -> Self {
        Self { columns: columns.into_iter().collect() }
    }

    fn validate(&self, v: &mut Validator) {
        v.count("columns", self.columns.len(), 1, limits::IMAGE_CAROUSEL_COLUMNS_MAX);
        v.field("columns", |v| {
            for (i, column) in self.columns.iter().enumerate() {
                v.index(i, |v| {
                    check::media_url(v, "imageUrl", &column.image_url);
                    v.field("action", |v| column.action.validate(v, ActionContext::ImageCarousel));
                });
            }
        });
    }
}

impl ImageCarouselColumn {
    /// An image that does `action` when tapped.
    #[must_use]
    pub fn new(image_url: impl Into<String>, action: impl Into<Action>) -> Self {
        Self { image_url: image_url.into(), action: action.into() }
    }
}

from_payload!(Template {
    Buttons(ButtonsTemplate),
    Confirm(ConfirmTemplate),
    Carousel(CarouselTemplate),
    ImageCarousel(ImageCarouselTemplate),
});
