//! Request validation written from LINE's reference and OpenAPI files, deliberately apart from
//! the client's own types and validation so that the fake catches the client's mistakes.
//!
//! Limits that LINE documents are enforced; where the documentation is vague the fake errs on
//! the side of accepting.

use serde_json::{Map, Value};

use super::respond::{Detail, invalid};
use axum::response::Response;

/// Collects problems with a request body, each with the JSON path it was found at.
#[derive(Debug, Default)]
pub(crate) struct Check {
    details: Vec<Detail>,
}

impl Check {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, property: &str, message: impl Into<String>) {
        self.details.push(Detail::new(property, message));
    }

    /// `Err(400)` when any problem was found.
    pub(crate) fn finish(self) -> Result<(), Response> {
        if self.details.is_empty() { Ok(()) } else { Err(invalid(&self.details)) }
    }

    /// A required string field.
    pub(crate) fn required_str<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Option<&'a str> {
        match object.get(field) {
            None | Some(Value::Null) => {
                self.add(&join(path, field), "must be specified");
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.add(&join(path, field), "must be a string");
                None
            }
        }
    }

    /// An optional string field.
    pub(crate) fn optional_str<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Option<&'a str> {
        match object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.add(&join(path, field), "must be a string");
                None
            }
        }
    }

    /// An optional boolean field.
    pub(crate) fn optional_bool(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Option<bool> {
        match object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.add(&join(path, field), "must be a boolean");
                None
            }
        }
    }

    /// A required integer field.
    pub(crate) fn required_int(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Option<i64> {
        match object.get(field) {
            None | Some(Value::Null) => {
                self.add(&join(path, field), "must be specified");
                None
            }
            Some(value) => {
                let int = value.as_i64();
                if int.is_none() {
                    self.add(&join(path, field), "must be an integer");
                }
                int
            }
        }
    }

    /// A required number field.
    fn required_number(&mut self, object: &Map<String, Value>, path: &str, field: &str) {
        match object.get(field) {
            None | Some(Value::Null) => self.add(&join(path, field), "must be specified"),
            Some(Value::Number(_)) => {}
            Some(_) => self.add(&join(path, field), "must be a number"),
        }
    }

    /// A required array with `min..=max` items.
    pub(crate) fn required_array<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        field: &str,
        min: usize,
        max: usize,
    ) -> Option<&'a Vec<Value>> {
        match object.get(field) {
            None | Some(Value::Null) => {
                self.add(&join(path, field), "must be specified");
                None
            }
            Some(value) => self.array(value, &join(path, field), min, max),
        }
    }

    /// An optional array with at most `max` items.
    pub(crate) fn optional_array<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        field: &str,
        max: usize,
    ) -> Option<&'a Vec<Value>> {
        match object.get(field) {
            None | Some(Value::Null) => None,
            Some(value) => self.array(value, &join(path, field), 0, max),
        }
    }

    fn array<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        min: usize,
        max: usize,
    ) -> Option<&'a Vec<Value>> {
        let Some(items) = value.as_array() else {
            self.add(path, "must be an array");
            return None;
        };
        if items.len() < min || items.len() > max {
            self.add(path, format!("Size must be between {min} and {max}"));
        }
        Some(items)
    }

    /// A length in characters (Unicode scalar values) within `min..=max`.
    pub(crate) fn chars(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        self.len(path, len, min, max);
    }

    /// A length in UTF-16 code units within `min..=max` (LINE counts message text this way).
    fn utf16(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let len = value.encode_utf16().count();
        self.len(path, len, min, max);
    }

    fn len(&mut self, path: &str, len: usize, min: usize, max: usize) {
        if len == 0 && min > 0 {
            self.add(path, "May not be empty");
        } else if len < min || len > max {
            self.add(path, format!("Length must be between {min} and {max}"));
        }
    }

    /// An absolute URL with one of `schemes`, at most `max` characters.
    fn url(&mut self, path: &str, value: &str, schemes: &[&str], max: usize) {
        self.chars(path, value, 1, max);
        match url::Url::parse(value) {
            Ok(url) if schemes.contains(&url.scheme()) => {}
            Ok(_) => {
                self.add(path, format!("invalid uri scheme (allowed: {})", schemes.join(", ")))
            }
            Err(_) => self.add(path, "invalid uri"),
        }
    }

    fn required_url(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
        schemes: &[&str],
        max: usize,
    ) {
        if let Some(value) = self.required_str(object, path, field) {
            self.url(&join(path, field), value, schemes, max);
        }
    }

    fn optional_url(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
        schemes: &[&str],
        max: usize,
    ) {
        if let Some(value) = self.optional_str(object, path, field) {
            self.url(&join(path, field), value, schemes, max);
        }
    }
}

/// `path.field`, or `field` at the top level.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

/// `path[index]`.
pub(crate) fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn is_prefixed_hex32(value: &str, prefixes: &[u8]) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 33
        && prefixes.contains(&bytes[0])
        && bytes[1..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// `^U[0-9a-f]{32}$`.
pub(crate) fn is_user_id(value: &str) -> bool {
    is_prefixed_hex32(value, b"U")
}

/// A push target: a user, group or room ID.
pub(crate) fn is_push_target(value: &str) -> bool {
    is_prefixed_hex32(value, b"UCR")
}

/// A UUID in hex form, `8-4-4-4-12`.
pub(crate) fn is_retry_key(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `^[a-zA-Z0-9_]{1,30}$`.
pub(crate) fn is_aggregation_unit(value: &str) -> bool {
    (1..=30).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const HTTPS: &[&str] = &["https"];
const ACTION_URI_SCHEMES: &[&str] = &["http", "https", "line", "tel"];

/// Validates `messages` (1 to 5 message objects) and `notificationDisabled`.
pub(crate) fn messages<'a>(
    check: &mut Check,
    object: &'a Map<String, Value>,
) -> Option<&'a Vec<Value>> {
    check.optional_bool(object, "", "notificationDisabled");
    let list = check.required_array(object, "", "messages", 1, 5)?;
    for (i, message_value) in list.iter().enumerate() {
        message(check, message_value, &index("messages", i));
    }
    Some(list)
}

/// Validates `customAggregationUnits` (at most one name matching `^[a-zA-Z0-9_]{1,30}$`).
pub(crate) fn aggregation_units(check: &mut Check, object: &Map<String, Value>) -> Option<String> {
    let list = check.optional_array(object, "", "customAggregationUnits", 1)?;
    let mut first = None;
    for (i, unit) in list.iter().enumerate() {
        let path = index("customAggregationUnits", i);
        match unit.as_str() {
            Some(name) if is_aggregation_unit(name) => {
                first.get_or_insert_with(|| name.to_owned());
            }
            _ => check.add(&path, "must match ^[a-zA-Z0-9_]{1,30}$"),
        }
    }
    first
}

fn message(check: &mut Check, value: &Value, path: &str) {
    let Some(object) = value.as_object() else {
        check.add(path, "must be a message object");
        return;
    };
    let Some(kind) = check.required_str(object, path, "type") else { return };
    match kind {
        "text" => text_message(check, object, path),
        "textV2" => text_v2_message(check, object, path),
        "sticker" => {
            check.required_str(object, path, "packageId");
            check.required_str(object, path, "stickerId");
            check.optional_str(object, path, "quoteToken");
        }
        "image" => {
            check.required_url(object, path, "originalContentUrl", HTTPS, 2000);
            check.required_url(object, path, "previewImageUrl", HTTPS, 2000);
        }
        "video" => {
            check.required_url(object, path, "originalContentUrl", HTTPS, 2000);
            check.required_url(object, path, "previewImageUrl", HTTPS, 2000);
            if let Some(id) = check.optional_str(object, path, "trackingId") {
                check.chars(&join(path, "trackingId"), id, 1, 100);
            }
        }
        "audio" => {
            check.required_url(object, path, "originalContentUrl", HTTPS, 2000);
            check.required_number(object, path, "duration");
        }
        "location" => {
            for field in ["title", "address"] {
                if let Some(value) = check.required_str(object, path, field) {
                    check.chars(&join(path, field), value, 1, 100);
                }
            }
            check.required_number(object, path, "latitude");
            check.required_number(object, path, "longitude");
        }
        "imagemap" => imagemap_message(check, object, path),
        "template" => template_message(check, object, path),
        "flex" => flex_message(check, object, path),
        "coupon" => {
            check.required_str(object, path, "couponId");
        }
        _ => check.add(
            &join(path, "type"),
            "must be one of text, textV2, sticker, image, video, audio, location, imagemap, template, flex, coupon",
        ),
    }
    quick_reply(check, object, path);
    sender(check, object, path);
}

fn text_message(check: &mut Check, object: &Map<String, Value>, path: &str) {
    if let Some(text) = check.required_str(object, path, "text") {
        check.utf16(&join(path, "text"), text, 1, 5000);
    }
    check.optional_str(object, path, "quoteToken");
    if let Some(emojis) = check.optional_array(object, path, "emojis", 20) {
        for (i, emoji) in emojis.iter().enumerate() {
            let emoji_path = index(&join(path, "emojis"), i);
            let Some(emoji) = emoji.as_object() else {
                check.add(&emoji_path, "must be an object");
                continue;
            };
            check.required_int(emoji, &emoji_path, "index");
            check.required_str(emoji, &emoji_path, "productId");
            check.required_str(emoji, &emoji_path, "emojiId");
        }
    }
}

fn text_v2_message(check: &mut Check, object: &Map<String, Value>, path: &str) {
    if let Some(text) = check.required_str(object, path, "text") {
        check.utf16(&join(path, "text"), text, 1, 5000);
    }
    match object.get("substitution") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let sub_path = join(path, "substitution");
            if map.len() > 100 {
                check.add(&sub_path, "Size must be between 0 and 100");
            }
            for (key, value) in map {
                let valid_key = (1..=20).contains(&key.len())
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid_key {
                    check.add(&join(&sub_path, key), "key must match [0-9a-zA-Z_]{1,20}");
                }
                match value.get("type").and_then(Value::as_str) {
                    Some("mention" | "emoji") => {}
                    _ => check
                        .add(&join(&join(&sub_path, key), "type"), "must be one of mention, emoji"),
                }
            }
        }
        Some(_) => check.add(&join(path, "substitution"), "must be an object"),
    }
}

fn imagemap_message(check: &mut Check, object: &Map<String, Value>, path: &str) {
    check.required_url(object, path, "baseUrl", HTTPS, 2000);
    alt_text(check, object, path);
    match object.get("baseSize").and_then(Value::as_object) {
        Some(size) => {
            let size_path = join(path, "baseSize");
            check.required_int(size, &size_path, "width");
            check.required_int(size, &size_path, "height");
        }
        None => check.add(&join(path, "baseSize"), "must be specified"),
    }
    let Some(actions) = check.required_array(object, path, "actions", 1, 50) else { return };
    for (i, action) in actions.iter().enumerate() {
        let action_path = index(&join(path, "actions"), i);
        let Some(action) = action.as_object() else {
            check.add(&action_path, "must be an object");
            continue;
        };
        if action.get("area").and_then(Value::as_object).is_none() {
            check.add(&join(&action_path, "area"), "must be specified");
        }
        match check.required_str(action, &action_path, "type") {
            Some("uri") => {
                check.required_url(action, &action_path, "linkUri", ACTION_URI_SCHEMES, 1000)
            }
            Some("message") => {
                if let Some(text) = check.required_str(action, &action_path, "text") {
                    check.chars(&join(&action_path, "text"), text, 1, 400);
                }
            }
            Some("clipboard") => {
                if let Some(text) = check.required_str(action, &action_path, "clipboardText") {
                    check.chars(&join(&action_path, "clipboardText"), text, 1, 1000);
                }
            }
            Some(_) => {
                check.add(&join(&action_path, "type"), "must be one of uri, message, clipboard")
            }
            None => {}
        }
    }
}

fn alt_text(check: &mut Check, object: &Map<String, Value>, path: &str) {
    if let Some(alt) = check.required_str(object, path, "altText") {
        check.chars(&join(path, "altText"), alt, 1, 400);
    }
}

fn template_message(check: &mut Check, object: &Map<String, Value>, path: &str) {
    alt_text(check, object, path);
    let template_path = join(path, "template");
    let Some(template) = object.get("template").and_then(Value::as_object) else {
        check.add(&template_path, "must be specified");
        return;
    };
    match check.required_str(template, &template_path, "type") {
        Some("buttons") => {
            card(check, template, &template_path, 160, 4);
        }
        Some("confirm") => {
            if let Some(text) = check.required_str(template, &template_path, "text") {
                check.chars(&join(&template_path, "text"), text, 1, 240);
            }
            actions(check, template, &template_path, 2, 2);
        }
        Some("carousel") => {
            let Some(columns) = check.required_array(template, &template_path, "columns", 1, 10)
            else {
                return;
            };
            let mut action_counts = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                let column_path = index(&join(&template_path, "columns"), i);
                let Some(column) = column.as_object() else {
                    check.add(&column_path, "must be an object");
                    continue;
                };
                action_counts.push(card(check, column, &column_path, 120, 3));
            }
            if action_counts.windows(2).any(|pair| pair[0] != pair[1]) {
                check.add(
                    &join(&template_path, "columns"),
                    "every column must have the same number of actions",
                );
            }
        }
        Some("image_carousel") => {
            let Some(columns) = check.required_array(template, &template_path, "columns", 1, 10)
            else {
                return;
            };
            for (i, column) in columns.iter().enumerate() {
                let column_path = index(&join(&template_path, "columns"), i);
                let Some(column) = column.as_object() else {
                    check.add(&column_path, "must be an object");
                    continue;
                };
                check.required_url(column, &column_path, "imageUrl", HTTPS, 2000);
                match column.get("action") {
                    Some(a) => action(check, a, &join(&column_path, "action"), false),
                    None => check.add(&join(&column_path, "action"), "must be specified"),
                }
            }
        }
        Some(_) => check.add(
            &join(&template_path, "type"),
            "must be one of buttons, confirm, carousel, image_carousel",
        ),
        None => {}
    }
}

/// Validates a buttons template or a carousel column: optional thumbnail and title (≤ 40),
/// text of at most `plain_text_max` characters (60 with a thumbnail or title), an optional
/// default action, and 1 to `max_actions` actions. Returns how many actions there were.
fn card(
    check: &mut Check,
    object: &Map<String, Value>,
    path: &str,
    plain_text_max: usize,
    max_actions: usize,
) -> usize {
    let has_header = object.contains_key("thumbnailImageUrl") || object.contains_key("title");
    check.optional_url(object, path, "thumbnailImageUrl", HTTPS, 2000);
    if let Some(title) = check.optional_str(object, path, "title") {
        check.chars(&join(path, "title"), title, 1, 40);
    }
    if let Some(text) = check.required_str(object, path, "text") {
        check.chars(&join(path, "text"), text, 1, if has_header { 60 } else { plain_text_max });
    }
    if let Some(default) = object.get("defaultAction") {
        action(check, default, &join(path, "defaultAction"), false);
    }
    actions(check, object, path, 1, max_actions)
}

/// Validates `object.actions` (`min..=max` items) and returns how many there were.
fn actions(
    check: &mut Check,
    object: &Map<String, Value>,
    path: &str,
    min: usize,
    max: usize,
) -> usize {
    let Some(list) = check.required_array(object, path, "actions", min, max) else { return 0 };
    for (i, item) in list.iter().enumerate() {
        action(check, item, &index(&join(path, "actions"), i), false);
    }
    list.len()
}

/// Validates an action object; `label_required` for quick-reply buttons.
pub(crate) fn action(check: &mut Check, value: &Value, path: &str, label_required: bool) {
    let Some(object) = value.as_object() else {
        check.add(path, "must be an action object");
        return;
    };
    let label = if label_required {
        check.required_str(object, path, "label")
    } else {
        check.optional_str(object, path, "label")
    };
    if let Some(label) = label {
        check.chars(&join(path, "label"), label, 1, 20);
    }
    let limited = |check: &mut Check, field: &str, required: bool, max: usize| {
        let value = if required {
            check.required_str(object, path, field)
        } else {
            check.optional_str(object, path, field)
        };
        if let Some(value) = value {
            check.chars(&join(path, field), value, 1, max);
        }
    };
    match check.required_str(object, path, "type") {
        Some("postback") => {
            limited(check, "data", true, 300);
            limited(check, "displayText", false, 300);
            limited(check, "text", false, 300);
        }
        Some("message") => limited(check, "text", true, 300),
        Some("uri") => {
            if let Some(uri) = check.required_str(object, path, "uri") {
                check.url(&join(path, "uri"), uri, ACTION_URI_SCHEMES, 1000);
            }
        }
        Some("datetimepicker") => {
            limited(check, "data", true, 300);
            match check.required_str(object, path, "mode") {
                Some("date" | "time" | "datetime") | None => {}
                Some(_) => check.add(&join(path, "mode"), "must be one of date, time, datetime"),
            }
        }
        Some("richmenuswitch") => {
            check.required_str(object, path, "richMenuAliasId");
            limited(check, "data", true, 300);
        }
        Some("clipboard") => limited(check, "clipboardText", true, 1000),
        Some("camera" | "cameraRoll" | "location") | None => {}
        Some(_) => check.add(
            &join(path, "type"),
            "must be one of postback, message, uri, datetimepicker, camera, cameraRoll, location, richmenuswitch, clipboard",
        ),
    }
}

fn flex_message(check: &mut Check, object: &Map<String, Value>, path: &str) {
    alt_text(check, object, path);
    let contents_path = join(path, "contents");
    let Some(contents) = object.get("contents").and_then(Value::as_object) else {
        check.add(&contents_path, "must be specified");
        return;
    };
    match check.required_str(contents, &contents_path, "type") {
        Some("bubble") => {}
        Some("carousel") => {
            if let Some(bubbles) = check.required_array(contents, &contents_path, "contents", 1, 12)
            {
                for (i, bubble) in bubbles.iter().enumerate() {
                    if bubble.get("type").and_then(Value::as_str) != Some("bubble") {
                        check.add(
                            &join(&index(&join(&contents_path, "contents"), i), "type"),
                            "must be bubble",
                        );
                    }
                }
            }
        }
        Some(_) => check.add(&join(&contents_path, "type"), "must be one of bubble, carousel"),
        None => {}
    }
}

fn quick_reply(check: &mut Check, object: &Map<String, Value>, path: &str) {
    let Some(value) = object.get("quickReply") else { return };
    let qr_path = join(path, "quickReply");
    let Some(qr) = value.as_object() else {
        check.add(&qr_path, "must be an object");
        return;
    };
    let Some(items) = check.required_array(qr, &qr_path, "items", 1, 13) else { return };
    for (i, item) in items.iter().enumerate() {
        let item_path = index(&join(&qr_path, "items"), i);
        let Some(item) = item.as_object() else {
            check.add(&item_path, "must be an object");
            continue;
        };
        if check.required_str(item, &item_path, "type").is_some_and(|t| t != "action") {
            check.add(&join(&item_path, "type"), "must be action");
        }
        check.optional_url(item, &item_path, "imageUrl", HTTPS, 2000);
        match item.get("action") {
            Some(a) => action(check, a, &join(&item_path, "action"), true),
            None => check.add(&join(&item_path, "action"), "must be specified"),
        }
    }
}

fn sender(check: &mut Check, object: &Map<String, Value>, path: &str) {
    let Some(value) = object.get("sender") else { return };
    let sender_path = join(path, "sender");
    let Some(sender) = value.as_object() else {
        check.add(&sender_path, "must be an object");
        return;
    };
    if let Some(name) = check.optional_str(sender, &sender_path, "name") {
        check.chars(&join(&sender_path, "name"), name, 1, 20);
        if name.to_ascii_uppercase().contains("LINE") {
            check.add(&join(&sender_path, "name"), "must not contain LINE");
        }
    }
    check.optional_url(sender, &sender_path, "iconUrl", HTTPS, 2000);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(body: Value) -> Vec<String> {
        let mut check = Check::new();
        let object = body.as_object().cloned().unwrap_or_default();
        messages(&mut check, &object);
        check
            .details
            .into_iter()
            .map(|d| d.property.unwrap_or_default() + ": " + &d.message)
            .collect()
    }

    #[test]
    fn text_length_counts_utf16_units() {
        let ok = "😀".repeat(2500); // 5,000 UTF-16 units
        assert!(problems(json!({"messages": [{"type": "text", "text": ok}]})).is_empty());
        let long = format!("{ok}a");
        assert_eq!(
            problems(json!({"messages": [{"type": "text", "text": long}]})),
            ["messages[0].text: Length must be between 1 and 5000"]
        );
    }

    #[test]
    fn counts_and_required_fields_are_reported_with_paths() {
        assert_eq!(problems(json!({"messages": []})), ["messages: Size must be between 1 and 5"]);
        assert_eq!(problems(json!({})), ["messages: must be specified"]);
        let six: Vec<Value> = (0..6)
            .map(|_| json!({"type": "sticker", "packageId": "1", "stickerId": "1"}))
            .collect();
        assert_eq!(
            problems(json!({ "messages": six })),
            ["messages: Size must be between 1 and 5"]
        );
        assert_eq!(
            problems(
                json!({"messages": [{"type": "image", "originalContentUrl": "http://x.example/a.png"}]})
            ),
            [
                "messages[0].originalContentUrl: invalid uri scheme (allowed: https)",
                "messages[0].previewImageUrl: must be specified"
            ]
        );
        assert_eq!(
            problems(json!({"messages": [{"type": "template", "altText": "a", "template": {
                "type": "confirm", "text": "ok?", "actions": [{"type": "message", "label": "yes", "text": "y"}]}}]})),
            ["messages[0].template.actions: Size must be between 2 and 2"]
        );
    }

    #[test]
    fn id_formats() {
        assert!(is_user_id("U0123456789abcdef0123456789abcdef"));
        assert!(!is_user_id("U0123456789ABCDEF0123456789abcdef"));
        assert!(!is_user_id("C0123456789abcdef0123456789abcdef"));
        assert!(is_push_target("C0123456789abcdef0123456789abcdef"));
        assert!(is_retry_key("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_retry_key("123e4567e89b12d3a456426614174000"));
        assert!(is_aggregation_unit("promo_2026"));
        assert!(!is_aggregation_unit("promo-2026"));
    }
}
