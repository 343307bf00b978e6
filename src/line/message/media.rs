//! Sticker, image, video, audio, location and coupon messages.

use serde::{Deserialize, Serialize};

use super::{MessageCommon, check, limits};
use crate::line::Validator;

/// A sticker message (`"type": "sticker"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StickerMessage {
    /// Package ID of the sticker set.
    pub package_id: String,
    /// Sticker ID within the set.
    pub sticker_id: String,
    /// Quote token of a message to quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// An image message (`"type": "image"`): HTTPS URLs, JPEG or PNG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageMessage {
    /// The image (≤ 10 MB).
    pub original_content_url: String,
    /// The preview (≤ 1 MB).
    pub preview_image_url: String,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// A video message (`"type": "video"`): an MP4 and a preview image, both HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VideoMessage {
    /// The video (MP4, ≤ 200 MB).
    pub original_content_url: String,
    /// The preview image.
    pub preview_image_url: String,
    /// ID reported in the `videoPlayComplete` webhook event (not for groups; ≤ 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// An audio message (`"type": "audio"`): MP3 or M4A over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudioMessage {
    /// The audio file (≤ 200 MB).
    pub original_content_url: String,
    /// Length in milliseconds.
    pub duration: u64,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// A location message (`"type": "location"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationMessage {
    /// Title (≤ 100).
    pub title: String,
    /// Address (≤ 100).
    pub address: String,
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// A coupon message (`"type": "coupon"`) for a coupon created through the coupon API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CouponMessage {
    /// The coupon's ID.
    pub coupon_id: String,
    /// Delivery route tag shown in LINE Official Account Manager analytics (≤ 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_tag: Option<String>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

impl StickerMessage {
    /// Sticker `sticker_id` of package `package_id`.
    #[must_use]
    pub fn new(package_id: impl Into<String>, sticker_id: impl Into<String>) -> Self {
        Self {
            package_id: package_id.into(),
            sticker_id: sticker_id.into(),
            quote_token: None,
            common: MessageCommon::default(),
        }
    }

    /// Quotes the message with this quote token.
    #[must_use]
    pub fn with_quote_token(mut self, quote_token: impl Into<String>) -> Self {
        self.quote_token = Some(quote_token.into());
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::non_empty(v, "packageId", &self.package_id);
        check::non_empty(v, "stickerId", &self.sticker_id);
        check::opt_non_empty(v, "quoteToken", self.quote_token.as_deref());
    }
}

impl ImageMessage {
    /// An image with its preview.
    #[must_use]
    pub fn new(
        original_content_url: impl Into<String>,
        preview_image_url: impl Into<String>,
    ) -> Self {
        Self {
            original_content_url: original_content_url.into(),
            preview_image_url: preview_image_url.into(),
            common: MessageCommon::default(),
        }
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::media_url(v, "originalContentUrl", &self.original_content_url);
        check::media_url(v, "previewImageUrl", &self.preview_image_url);
    }
}

impl VideoMessage {
    /// A video with its preview image.
    #[must_use]
    pub fn new(
        original_content_url: impl Into<String>,
        preview_image_url: impl Into<String>,
    ) -> Self {
        Self {
            original_content_url: original_content_url.into(),
            preview_image_url: preview_image_url.into(),
            tracking_id: None,
            common: MessageCommon::default(),
        }
    }

    /// Reports plays to the end in `videoPlayComplete` events carrying this ID.
    #[must_use]
    pub fn with_tracking_id(mut self, tracking_id: impl Into<String>) -> Self {
        self.tracking_id = Some(tracking_id.into());
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::media_url(v, "originalContentUrl", &self.original_content_url);
        check::media_url(v, "previewImageUrl", &self.preview_image_url);
        check::opt_text(
            v,
            "trackingId",
            self.tracking_id.as_deref(),
            limits::VIDEO_TRACKING_ID_MAX,
        );
    }
}

impl AudioMessage {
    /// An audio file of the given length.
    #[must_use]
    pub fn new(original_content_url: impl Into<String>, duration: std::time::Duration) -> Self {
        Self {
            original_content_url: original_content_url.into(),
            duration: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            common: MessageCommon::default(),
        }
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::media_url(v, "originalContentUrl", &self.original_content_url);
        if self.duration == 0 {
            v.violation_at("duration", "must be a positive number of milliseconds");
        }
    }
}

impl LocationMessage {
    /// A location with its title and address.
    #[must_use]
    pub fn new(
        title: impl Into<String>,
        address: impl Into<String>,
        latitude: f64,
        longitude: f64,
    ) -> Self {
        Self {
            title: title.into(),
            address: address.into(),
            latitude,
            longitude,
            common: MessageCommon::default(),
        }
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::text(v, "title", &self.title, 1, limits::LOCATION_TITLE_MAX);
        check::text(v, "address", &self.address, 1, limits::LOCATION_ADDRESS_MAX);
        if !(-90.0..=90.0).contains(&self.latitude) {
            v.violation_at(
                "latitude",
                format!("must be between -90 and 90 (got {})", self.latitude),
            );
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            v.violation_at(
                "longitude",
                format!("must be between -180 and 180 (got {})", self.longitude),
            );
        }
    }
}

impl CouponMessage {
    /// The coupon with this ID.
    #[must_use]
    pub fn new(coupon_id: impl Into<String>) -> Self {
        Self { coupon_id: coupon_id.into(), delivery_tag: None, common: MessageCommon::default() }
    }

    /// Tags the delivery route for analytics.
    #[must_use]
    pub fn with_delivery_tag(mut self, delivery_tag: impl Into<String>) -> Self {
        self.delivery_tag = Some(delivery_tag.into());
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::non_empty(v, "couponId", &self.coupon_id);
        check::opt_text(
            v,
            "deliveryTag",
            self.delivery_tag.as_deref(),
            limits::COUPON_DELIVERY_TAG_MAX,
        );
    }
}
