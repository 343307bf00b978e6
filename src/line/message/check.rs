//! Small checks shared by every message object. All lengths are UTF-16 code units (see
//! [`limits`](super::limits)).

use super::limits;
use crate::line::Validator;

/// A required string of `min..=max` UTF-16 code units.
pub(super) fn text(v: &mut Validator, field: &str, value: &str, min: usize, max: usize) {
    v.utf16_len(field, value, min, max);
}

/// An optional string: when present, `1..=max` UTF-16 code units.
pub(super) fn opt_text(v: &mut Validator, field: &str, value: Option<&str>, max: usize) {
    if let Some(value) = value {
        v.utf16_len(field, value, 1, max);
    }
}

/// An absolute URL LINE will accept: at most `max` characters, already percent-encoded (LINE
/// requires percent-encoded UTF-8, so a raw space or non-ASCII character is refused here rather
/// than by a 400), and one of `schemes`.
pub(super) fn url(v: &mut Validator, field: &str, value: &str, schemes: &[&str], max: usize) {
    if value.is_empty() {
        v.violation_at(field, "must not be empty");
        return;
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
        v.violation_at(
            field,
            format!(
                "must be percent-encoded (found {bad:?}; encode spaces and non-ASCII characters)"
            ),
        );
        return;
    }
    v.url(field, value, schemes, max);
}

/// An image, video, audio or icon URL: HTTPS, at most [`limits::MEDIA_URL_MAX`] characters.
pub(super) fn media_url(v: &mut Validator, field: &str, value: &str) {
    url(v, field, value, limits::MEDIA_URL_SCHEMES, limits::MEDIA_URL_MAX);
}

/// An optional media URL.
pub(super) fn opt_media_url(v: &mut Validator, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        media_url(v, field, value);
    }
}

/// A colour as LINE writes it: `#RRGGBB` or `#RRGGBBAA`.
pub(super) fn opt_color(v: &mut Validator, field: &str, value: Option<&str>) {
    let Some(value) = value else { return };
    let ok = value.strip_prefix('#').is_some_and(|hex| {
        (hex.len() == 6 || hex.len() == 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if !ok {
        v.violation_at(field, format!("must be a colour #RRGGBB or #RRGGBBAA (got {value:?})"));
    }
}

/// A non-empty identifier-like string (sticker IDs, product IDs, ...).
pub(super) fn non_empty(v: &mut Validator, field: &str, value: &str) {
    if value.is_empty() {
        v.violation_at(field, "must not be empty");
    }
}

/// An optional string that, when present, must not be empty.
pub(super) fn opt_non_empty(v: &mut Validator, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        non_empty(v, field, value);
    }
}
