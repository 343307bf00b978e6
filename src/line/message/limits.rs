//! LINE's documented limits for message objects, in one table.
//!
//! Every check in [`Message::validate`](crate::line::message::Message::validate) reads its numbers from
//! here, so a limit that LINE changes is one edit. Each constant names its source:
//!
//! - **\[doc\]**: the Messaging API reference, <https://developers.line.biz/en/reference/messaging-api/#message-objects>
//!   and the pages of each object (template, flex, action, quick reply, sender).
//! - **\[spec\]**: LINE's OpenAPI file `messaging-api.yml` (`line/line-openapi`, 2026-07-01 snapshot).
//! - **\[derived\]**: our reading of the above where LINE is not explicit.
//!
//! Lengths are counted in UTF-16 code units everywhere. LINE states that unit for text
//! messages (\[doc\]); applying it to every other string limit is **\[derived\]**: it is never more
//! lenient than counting characters, so a message we accept is never rejected for length.

/// Messages per request (reply, push, multicast, narrowcast, broadcast, validate): 1 to 5. \[doc\]\[spec\]
pub const MESSAGES_MAX: usize = 5;

/// Text message `text`: UTF-16 code units. \[doc\]
pub const TEXT_MAX: usize = 5_000;
/// Text message `emojis`: LINE emoji per message. \[doc\]
pub const TEXT_EMOJIS_MAX: usize = 20;

/// Text message v2 `substitution`: objects in the map. \[doc\]
pub const TEXT_V2_SUBSTITUTIONS_MAX: usize = 100;
/// Text message v2: mention and emoji placeholders used in `text`. \[doc\]
pub const TEXT_V2_PLACEHOLDERS_MAX: usize = 20;
/// Text message v2: length of a substitution key (pattern `[0-9a-zA-Z_]{1,20}`). \[doc\]
pub const TEXT_V2_KEY_MAX: usize = 20;

/// `quickReply.items`: buttons. \[doc\]\[spec\]
pub const QUICK_REPLY_ITEMS_MAX: usize = 13;

/// `sender.name`: length. \[doc\]\[spec\]
pub const SENDER_NAME_MAX: usize = 20;
/// `sender.name` must not contain this word. \[doc\] (LINE says "certain words such as LINE";
/// only this one is published, so it is the one checked, case-sensitively.)
pub const SENDER_NAME_FORBIDDEN: &str = "LINE";

/// Any image, video, audio or icon URL (`originalContentUrl`, `previewImageUrl`, `iconUrl`,
/// `thumbnailImageUrl`, `imageUrl`, `baseUrl`, flex `url`): length. \[doc\]\[spec\]
pub const MEDIA_URL_MAX: usize = 2_000;
/// Schemes a media URL may use: HTTPS only (TLS 1.2 or later). \[doc\]
pub const MEDIA_URL_SCHEMES: &[&str] = &["https"];

/// Video message `trackingId`: length. \[doc\]
pub const VIDEO_TRACKING_ID_MAX: usize = 100;

/// Location message `title`: length. \[doc\]
pub const LOCATION_TITLE_MAX: usize = 100;
/// Location message `address`: length. \[doc\]
pub const LOCATION_ADDRESS_MAX: usize = 100;

/// Imagemap `altText`: length. \[doc\]
pub const IMAGEMAP_ALT_TEXT_MAX: usize = 400;
/// Imagemap `baseSize.width`: the only width LINE accepts. \[doc\]
pub const IMAGEMAP_BASE_WIDTH: u32 = 1_040;
/// Imagemap `actions`: count. \[doc\]
pub const IMAGEMAP_ACTIONS_MAX: usize = 50;
/// Imagemap action `label` (read aloud by accessibility features): length. \[doc\]
pub const IMAGEMAP_ACTION_LABEL_MAX: usize = 100;
/// Imagemap message action `text`: length. \[doc\]
pub const IMAGEMAP_MESSAGE_TEXT_MAX: usize = 400;
/// Imagemap video `externalLink.label`: length. \[doc\]
pub const IMAGEMAP_EXTERNAL_LINK_LABEL_MAX: usize = 30;

/// Template message `altText`: length. \[doc\]
pub const TEMPLATE_ALT_TEXT_MAX: usize = 400;
/// Buttons template `actions`: count. \[doc\]
pub const BUTTONS_ACTIONS_MAX: usize = 4;
/// Buttons template `title`: length. \[doc\]
pub const BUTTONS_TITLE_MAX: usize = 40;
/// Buttons template `text` without an image or title: length. \[doc\]
pub const BUTTONS_TEXT_MAX: usize = 160;
/// Buttons template `text` when an image or a title is set: length. \[doc\]
pub const BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX: usize = 60;
/// Confirm template `actions`: exactly this many. \[doc\]
pub const CONFIRM_ACTIONS: usize = 2;
/// Confirm template `text`: length. \[doc\]
pub const CONFIRM_TEXT_MAX: usize = 240;
/// Carousel template `columns`: count. \[doc\]
pub const CAROUSEL_COLUMNS_MAX: usize = 10;
/// Carousel column `actions`: count (every column must hold the same number). \[doc\]
pub const CAROUSEL_ACTIONS_MAX: usize = 3;
/// Carousel column `title`: length. \[doc\]
pub const CAROUSEL_TITLE_MAX: usize = 40;
/// Carousel column `text` without an image or title: length. \[doc\]
pub const CAROUSEL_TEXT_MAX: usize = 120;
/// Carousel column `text` when an image or a title is set: length. \[doc\]
pub const CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX: usize = 60;
/// Image carousel template `columns`: count. \[doc\]
pub const IMAGE_CAROUSEL_COLUMNS_MAX: usize = 10;
/// Image carousel column action `label`: length. \[doc\]
pub const IMAGE_CAROUSEL_LABEL_MAX: usize = 12;

/// Action `label` in templates, quick replies and rich menus: length. \[doc\]
pub const ACTION_LABEL_MAX: usize = 20;
/// Postback, datetime-picker and rich-menu-switch action `data`: length. \[doc\]\[spec\]
pub const ACTION_DATA_MAX: usize = 300;
/// Postback action `displayText` (and the deprecated `text`): length. \[doc\]
pub const POSTBACK_DISPLAY_TEXT_MAX: usize = 300;
/// Postback action `fillInText`: length. \[doc\]
pub const POSTBACK_FILL_IN_TEXT_MAX: usize = 300;
/// Message action `text`: length. \[doc\]
pub const MESSAGE_ACTION_TEXT_MAX: usize = 300;
/// URI action `uri` and `altUri.desktop`, imagemap `linkUri`: length. \[doc\]\[spec\]
pub const ACTION_URI_MAX: usize = 1_000;
/// Schemes an action URI may use. \[doc\]
pub const ACTION_URI_SCHEMES: &[&str] = &["http", "https", "line", "tel"];
/// Clipboard action and imagemap clipboard action `clipboardText`: length. \[doc\]\[spec\]
pub const CLIPBOARD_TEXT_MAX: usize = 1_000;
/// Rich-menu-switch action `richMenuAliasId`: length. \[doc\]\[spec\]
pub const RICH_MENU_ALIAS_ID_MAX: usize = 32;
/// Earliest date a datetime-picker action accepts (`initial`, `min`, `max`). \[doc\]
pub const DATETIME_PICKER_EARLIEST: &str = "1900-01-01";
/// Latest date a datetime-picker action accepts. \[doc\]
pub const DATETIME_PICKER_LATEST: &str = "2100-12-31";

/// Flex message `altText`: length (raised from 400 in 2023). \[doc\]
pub const FLEX_ALT_TEXT_MAX: usize = 1_500;
/// Flex carousel `contents`: bubbles. \[doc\]
pub const FLEX_CAROUSEL_BUBBLES_MAX: usize = 12;

/// Coupon message `deliveryTag`: length. \[spec\]
pub const COUPON_DELIVERY_TAG_MAX: usize = 30;
/// Flex message: images with `animated: true`. \[spec\]
pub const FLEX_ANIMATED_IMAGES_MAX: usize = 10;
