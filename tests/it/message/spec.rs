//! Cross-checks against LINE's OpenAPI spec (`../shared/fixtures/line/openapi/messaging-api.yml`,
//! read in place): every discriminator value LINE defines is modelled, and the limits the spec
//! states agree with `enishi::line::message::limits`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use enishi::line::message::limits;
use enishi::line::message::{
    Action, FlexComponent, FlexContainer, ImagemapAction, Message, Template,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The spec's text, or `None` (with a note) when the fixtures are absent outside CI.
fn spec() -> Option<String> {
    let dir = std::env::var_os("ENISHI_FIXTURES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
        PathBuf::from,
    );
    let path = dir.join("line/openapi/messaging-api.yml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but the LINE fixtures are missing at {}: {e}", path.display())
        }
        Err(e) => {
            eprintln!("note: skipping the OpenAPI cross-check, {} unreadable: {e}", path.display());
            None
        }
    }
}

/// The lines of `components.schemas.<name>` (4-space indented key) up to the next schema.
fn schema_block<'a>(spec: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("    {name}:");
    let mut lines = spec.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "schema {name} not in the spec");
    lines
        .take_while(|l| {
            l.trim().is_empty() || l.starts_with("      ") || l.trim_start().starts_with('#')
        })
        .collect()
}

/// The keys of the schema's `discriminator.mapping`.
fn discriminator_values(spec: &str, schema: &str) -> BTreeSet<String> {
    let block = schema_block(spec, schema);
    let start = block.iter().position(|l| l.trim() == "mapping:").unwrap_or_else(|| {
        panic!("schema {schema} has no discriminator mapping");
    });
    block[start + 1..]
        .iter()
        .map_while(|l| l.trim().split_once(": ").filter(|(_, v)| v.contains("#/components/")))
        .map(|(k, _)| k.trim_matches('"').to_owned())
        .collect()
}

/// `maxLength` / `maxItems` of property `prop` of `schema`.
fn spec_max(spec: &str, schema: &str, prop: &str) -> usize {
    let block = schema_block(spec, schema);
    let at = block
        .iter()
        .position(|l| l.trim() == format!("{prop}:"))
        .unwrap_or_else(|| panic!("{schema}.{prop} not in the spec"));
    let indent = block[at].len() - block[at].trim_start().len();
    block[at + 1..]
        .iter()
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .find_map(|l| {
            let (k, v) = l.trim().split_once(": ")?;
            (k == "maxLength" || k == "maxItems").then(|| v.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{schema}.{prop} has no maximum in the spec"))
}

/// Asserts our samples cover exactly the spec's discriminator values (minus `skipped`) and
/// that each sample deserialises as `T` and serialises back with its tag.
#[track_caller]
fn assert_covers<T: DeserializeOwned + Serialize>(
    spec: &str,
    schema: &str,
    samples: &[(&str, Value)],
    skipped: &[&str],
) {
    let in_spec: BTreeSet<String> = discriminator_values(spec, schema)
        .into_iter()
        .filter(|t| !skipped.contains(&t.as_str()))
        .collect();
    let ours: BTreeSet<String> = samples.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(ours, in_spec, "{schema}: modelled types differ from the spec's discriminator");
    for (tag, sample) in samples {
        let parsed: T = serde_json::from_value(sample.clone())
            .unwrap_or_else(|e| panic!("{schema} {tag}: {e} in {sample}"));
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back["type"], *tag, "{schema} {tag}");
    }
}

#[test]
fn message_types_cover_the_openapi_discriminators() {
    let Some(spec) = spec() else { return };
    let uri = json!({"type": "uri", "label": "l", "uri": "https://e.com"});
    let area = json!({"x": 0, "y": 0, "width": 1, "height": 1});
    let bubble = json!({"type": "bubble"});
    assert_covers::<Message>(
        &spec,
        "Message",
        &[
            ("text", json!({"type": "text", "text": "t"})),
            ("textV2", json!({"type": "textV2", "text": "t"})),
            ("sticker", json!({"type": "sticker", "packageId": "1", "stickerId": "2"})),
            ("image", json!({"type": "image", "originalContentUrl": "u", "previewImageUrl": "p"})),
            ("video", json!({"type": "video", "originalContentUrl": "u", "previewImageUrl": "p"})),
            ("audio", json!({"type": "audio", "originalContentUrl": "u", "duration": 1})),
            (
                "location",
                json!({"type": "location", "title": "t", "address": "a", "latitude": 35, "longitude": 139.7}),
            ),
            (
                "imagemap",
                json!({"type": "imagemap", "baseUrl": "u", "altText": "a", "baseSize": {"width": 1040, "height": 1}, "actions": []}),
            ),
            (
                "template",
                json!({"type": "template", "altText": "a", "template": {"type": "confirm", "text": "t", "actions": [uri, uri]}}),
            ),
            ("flex", json!({"type": "flex", "altText": "a", "contents": bubble})),
            ("coupon", json!({"type": "coupon", "couponId": "c"})),
        ],
        &[],
    );
    assert_covers::<Action>(
        &spec,
        "Action",
        &[
            ("camera", json!({"type": "camera", "label": "l"})),
            ("cameraRoll", json!({"type": "cameraRoll", "label": "l"})),
            ("clipboard", json!({"type": "clipboard", "label": "l", "clipboardText": "c"})),
            ("datetimepicker", json!({"type": "datetimepicker", "data": "d", "mode": "date"})),
            ("location", json!({"type": "location", "label": "l"})),
            ("message", json!({"type": "message", "label": "l", "text": "t"})),
            ("postback", json!({"type": "postback", "data": "d"})),
            (
                "richmenuswitch",
                json!({"type": "richmenuswitch", "richMenuAliasId": "a", "data": "d"}),
            ),
            ("uri", uri.clone()),
        ],
        &[],
    );
    assert_covers::<Template>(
        &spec,
        "Template",
        &[
            ("buttons", json!({"type": "buttons", "text": "t", "actions": [uri]})),
            ("confirm", json!({"type": "confirm", "text": "t", "actions": [uri, uri]})),
            ("carousel", json!({"type": "carousel", "columns": [{"text": "t", "actions": [uri]}]})),
            (
                "image_carousel",
                json!({"type": "image_carousel", "columns": [{"imageUrl": "u", "action": uri}]}),
            ),
        ],
        &[],
    );
    assert_covers::<FlexContainer>(
        &spec,
        "FlexContainer",
        &[("bubble", bubble), ("carousel", json!({"type": "carousel", "contents": []}))],
        &[],
    );
    let text = json!({"type": "text", "text": "t"});
    assert_covers::<FlexComponent>(
        &spec,
        "FlexComponent",
        &[
            ("box", json!({"type": "box", "layout": "vertical", "contents": [text]})),
            ("button", json!({"type": "button", "action": uri})),
            ("image", json!({"type": "image", "url": "u"})),
            ("video", json!({"type": "video", "url": "u", "previewUrl": "p", "altContent": text})),
            ("icon", json!({"type": "icon", "url": "u"})),
            ("text", text.clone()),
            ("separator", json!({"type": "separator"})),
            ("filler", json!({"type": "filler"})),
        ],
        // Spans exist only inside a text component's `contents` (FlexSpan).
        &["span"],
    );
    assert_covers::<ImagemapAction>(
        &spec,
        "ImagemapAction",
        &[
            ("uri", json!({"type": "uri", "linkUri": "u", "area": area})),
            ("message", json!({"type": "message", "text": "t", "area": area})),
            ("clipboard", json!({"type": "clipboard", "clipboardText": "c", "area": area})),
        ],
        &[],
    );
    assert_covers::<enishi::line::message::Substitution>(
        &spec,
        "SubstitutionObject",
        &[
            ("mention", json!({"type": "mention", "mentionee": {"type": "all"}})),
            ("emoji", json!({"type": "emoji", "productId": "p", "emojiId": "e"})),
        ],
        &[],
    );
    let user = format!("U{}", "0".repeat(32));
    assert_covers::<enishi::line::message::MentionTarget>(
        &spec,
        "MentionTarget",
        &[("user", json!({"type": "user", "userId": user})), ("all", json!({"type": "all"}))],
        &[],
    );
}

#[test]
fn message_limits_agree_with_the_openapi_spec() {
    let Some(spec) = spec() else { return };
    for (schema, prop, ours) in [
        ("QuickReply", "items", limits::QUICK_REPLY_ITEMS_MAX),
        ("QuickReplyItem", "imageUrl", limits::MEDIA_URL_MAX),
        ("Sender", "name", limits::SENDER_NAME_MAX),
        ("Sender", "iconUrl", limits::MEDIA_URL_MAX),
        ("ClipboardAction", "clipboardText", limits::CLIPBOARD_TEXT_MAX),
        ("ClipboardImagemapAction", "clipboardText", limits::CLIPBOARD_TEXT_MAX),
        ("PostbackAction", "data", limits::ACTION_DATA_MAX),
        ("DatetimePickerAction", "data", limits::ACTION_DATA_MAX),
        ("RichMenuSwitchAction", "data", limits::ACTION_DATA_MAX),
        ("RichMenuSwitchAction", "richMenuAliasId", limits::RICH_MENU_ALIAS_ID_MAX),
        ("AltUri", "desktop", limits::ACTION_URI_MAX),
        ("CouponMessage", "deliveryTag", limits::COUPON_DELIVERY_TAG_MAX),
    ] {
        assert_eq!(spec_max(&spec, schema, prop), ours, "{schema}.{prop}");
    }
}
