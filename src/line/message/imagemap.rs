//! Imagemap messages: an image with tappable areas (and optionally a video).

use serde::{Deserialize, Serialize};

use super::{MessageCommon, check, limits};
use crate::line::Validator;

/// An imagemap message (`"type": "imagemap"`).
///
/// LINE fetches `{baseUrl}/{width}` for widths 240, 300, 460, 700 and 1040; coordinates are
/// given for the 1040-pixel-wide base image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImagemapMessage {
    /// Base URL of the image, without the width suffix (HTTPS).
    pub base_url: String,
    /// Alternative text for notifications and the chat list (≤ 400).
    pub alt_text: String,
    /// Size of the base image (width must be 1040).
    pub base_size: ImagemapBaseSize,
    /// Tappable areas (≤ 50).
    pub actions: Vec<ImagemapAction>,
    /// A video played in part of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<ImagemapVideo>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// The base image's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImagemapBaseSize {
    /// Width: always 1040.
    pub width: u32,
    /// Height matching a width of 1040.
    pub height: u32,
}

/// A rectangle of the base image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImagemapArea {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl ImagemapArea {
    /// The rectangle at (`x`, `y`) of size `width` × `height`.
    #[must_use]
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }
}

/// What tapping an area of an imagemap does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ImagemapAction {
    /// Opens a URI.
    #[serde(rename_all = "camelCase")]
    Uri {
        /// The URI (`http`, `https`, `line` or `tel`; ≤ 1,000).
        link_uri: String,
        /// Spoken label for accessibility (≤ 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The tappable area.
        area: ImagemapArea,
    },
    /// Sends a message from the user.
    #[serde(rename_all = "camelCase")]
    Message {
        /// The message text (≤ 400).
        text: String,
        /// Spoken label for accessibility (≤ 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The tappable area.
        area: ImagemapArea,
    },
    /// Copies text to the clipboard.
    #[serde(rename_all = "camelCase")]
    Clipboard {
        /// The text copied (1 to 1,000).
        clipboard_text: String,
        /// Spoken label for accessibility (≤ 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The tappable area.
        area: ImagemapArea,
    },
}

impl ImagemapAction {
    /// Tapping `area` opens `link_uri`.
    #[must_use]
    pub fn uri(area: ImagemapArea, link_uri: impl Into<String>) -> Self {
        Self::Uri { link_uri: link_uri.into(), label: None, area }
    }

    /// Tapping `area` makes the user send `text`.
    #[must_use]
    pub fn message(area: ImagemapArea, text: impl Into<String>) -> Self {
        Self::Message { text: text.into(), label: None, area }
    }

    /// Tapping `area` copies `clipboard_text`.
    #[must_use]
    pub fn clipboard(area: ImagemapArea, clipboard_text: impl Into<String>) -> Self {
        Self::Clipboard { clipboard_text: clipboard_text.into(), label: None, area }
    }

    /// Sets the spoken label.
    #[must_use]
    pub fn with_label(mut self, new: impl Into<String>) -> Self {
        match &mut self {
            Self::Uri { label, .. }
            | Self::Message { label, .. }
            | Self::Clipboard { label, .. } => {
                *label = Some(new.into());
            }
        }
        self
    }

    fn validate(&self, v: &mut Validator) {
        let (label, area) = match self {
            Self::Uri { link_uri, label, area } => {
                check::url(
                    v,
                    "linkUri",
                    link_uri,
                    limits::ACTION_URI_SCHEMES,
                    limits::ACTION_URI_MAX,
                );
                (label, area)
            }
            Self::Message { text, label, area } => {
                check::text(v, "text", text, 1, limits::IMAGEMAP_MESSAGE_TEXT_MAX);
                (label, area)
            }
            Self::Clipboard { clipboard_text, label, area } => {
                check::text(v, "clipboardText", clipboard_text, 1, limits::CLIPBOARD_TEXT_MAX);
                (label, area)
            }
        };
        check::opt_text(v, "label", label.as_deref(), limits::IMAGEMAP_ACTION_LABEL_MAX);
        v.field("area", |v| validate_area(v, area));
    }
}

fn validate_area(v: &mut Validator, area: &ImagemapArea) {
    if area.width == 0 {
        v.violation_at("width", "must be positive");
    }
    if area.height == 0 {
        v.violation_at("height", "must be positive");
    }
}

/// A video played inside an imagemap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImagemapVideo {
    /// The video (MP4, HTTPS).
    pub original_content_url: String,
    /// The preview image (HTTPS).
    pub preview_image_url: String,
    /// Where the video plays.
    pub area: ImagemapArea,
    /// A link shown after the video ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_link: Option<ImagemapExternalLink>,
}

/// The link shown when an imagemap video ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImagemapExternalLink {
    /// The URI opened.
    pub link_uri: String,
    /// Its label (≤ 30).
    pub label: String,
}

impl ImagemapVideo {
    /// A video with its preview, played in `area`.
    #[must_use]
    pub fn new(
        original_content_url: impl Into<String>,
        preview_image_url: impl Into<String>,
        area: ImagemapArea,
    ) -> Self {
        Self {
            original_content_url: original_content_url.into(),
            preview_image_url: preview_image_url.into(),
            area,
            external_link: None,
        }
    }

    /// Shows a link labelled `label` to `link_uri` when the video ends.
    #[must_use]
    pub fn with_external_link(
        mut self,
        link_uri: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        self.external_link =
            Some(ImagemapExternalLink { link_uri: link_uri.into(), label: label.into() });
        self
    }
}

impl ImagemapMessage {
    /// An imagemap of a base image 1040 pixels wide and `height` pixels high, without actions.
    #[must_use]
    pub fn new(base_url: impl Into<String>, alt_text: impl Into<String>, height: u32) -> Self {
        Self {
            base_url: base_url.into(),
            alt_text: alt_text.into(),
            base_size: ImagemapBaseSize { width: limits::IMAGEMAP_BASE_WIDTH, height },
            actions: Vec::new(),
            video: None,
            common: MessageCommon::default(),
        }
    }

    /// Adds a tappable area.
    #[must_use]
    pub fn with_action(mut self, action: ImagemapAction) -> Self {
        self.actions.push(action);
        self
    }

    /// Plays a video in part of the image.
    #[must_use]
    pub fn with_video(mut self, video: ImagemapVideo) -> Self {
        self.video = Some(video);
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::media_url(v, "baseUrl", &self.base_url);
        check::text(v, "altText", &self.alt_text, 1, limits::IMAGEMAP_ALT_TEXT_MAX);
        v.field("baseSize", |v| {
            if self.base_size.width != limits::IMAGEMAP_BASE_WIDTH {
                v.violation_at(
                    "width",
                    format!(
                        "must be {} (got {})",
                        limits::IMAGEMAP_BASE_WIDTH,
                        self.base_size.width
                    ),
                );
            }
            if self.base_size.height == 0 {
                v.violation_at("height", "must be positive");
            }
        });
        v.count("actions", self.actions.len(), 0, limits::IMAGEMAP_ACTIONS_MAX);
        v.field("actions", |v| {
            for (i, action) in self.actions.iter().enumerate() {
                v.index(i, |v| action.validate(v));
            }
        });
        if let Some(video) = &self.video {
            v.field("video", |v| {
                check::media_url(v, "originalContentUrl", &video.original_content_url);
                check::media_url(v, "previewImageUrl", &video.preview_image_url);
                v.field("area", |v| validate_area(v, &video.area));
                if let Some(link) = &video.external_link {
                    v.field("externalLink", |v| {
                        check::url(
                            v,
                            "linkUri",
                            &link.link_uri,
                            limits::ACTION_URI_SCHEMES,
                            limits::ACTION_URI_MAX,
                        );
                        check::text(
                            v,
                            "label",
                            &link.label,
                            1,
                            limits::IMAGEMAP_EXTERNAL_LINK_LABEL_MAX,
                        );
                    });
                }
            });
        }
    }
}
