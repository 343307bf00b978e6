//! From raw bytes to [`WebhookPayload`]: the envelope is read once with each event kept as a
//! borrowed raw slice, then every event is read on its own (so one bad event cannot fail the
//! batch) through a flat "wire" struct that holds every known field of every event type. This
//! reads each event in one pass whatever the order of its keys: a hand-written reader walks the
//! event (serde_json reads only its rare values), and an event it does not take as it is goes
//! through serde's derived reader of the wire struct instead; only unknown or malformed events
//! take a slower path through `serde_json::Value`.

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
    Walker { text: &body, body: &body, pos: 0, fast: true }.payload().map_err(BodyError::Json)
}

/// [`parse`] with serde's reading of every event only, to check the fast reader against.
#[cfg(test)]
fn parse_slow(raw_body: &[u8]) -> Result<WebhookPayload, BodyError> {
    let text = std::str::from_utf8(raw_body).map_err(BodyError::NotUtf8)?;
    let body: Arc<str> = Arc::from(text);
    Walker { text: &body, body: &body, pos: 0, fast: false }.payload().map_err(BodyError::Json)
}

mod walk;

use walk::Walker;

/// Parses one event object (as found in `events`, or as serialised from an [`Event`]).
/// An event that is JSON but cannot be read becomes [`EventKind::Malformed`].
///
/// # Errors
/// [`BodyError::Json`] when `json` is not JSON at all.
pub fn parse_event(json: &str) -> Result<Event, BodyError> {
    let raw: &RawValue = serde_json::from_str(json).map_err(BodyError::Json)?;
    Ok(event_from_raw(raw.get()))
}

#[derive(Deserialize, Default)]
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

#[derive(Deserialize, Default)]
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
#[derive(Deserialize, Default)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast reader must give exactly what serde's reader gives: the same events (kinds,
    /// errors with their positions, raw JSON) or the same body error.
    fn same(body: &[u8]) {
        match (parse(body), parse_slow(body)) {
            (Ok(fast), Ok(slow)) => {
                assert_eq!(fast, slow, "{}", String::from_utf8_lossy(body));
                for (f, s) in fast.events.iter().zip(&slow.events) {
                    assert_eq!(
                        f.error().map(ToString::to_string),
                        s.error().map(ToString::to_string)
                    );
                }
            }
            (Err(fast), Err(slow)) => assert_eq!(
                format!("{:?}", std::error::Error::source(&fast)),
                format!("{:?}", std::error::Error::source(&slow)),
                "{}",
                String::from_utf8_lossy(body)
            ),
            (fast, slow) => panic!("{}: {fast:?} / {slow:?}", String::from_utf8_lossy(body)),
        }
    }

    fn fixture_bodies() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/line/webhook-events");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    const TEXT: &str = r#"{"destination":"U0","events":[{"type":"message","mode":"active","timestamp":1760000000000,"source":{"type":"user","userId":"U4af4980629a1b2c3d4e5f60718290001"},"webhookEventId":"01JAB7Z8Q4M3N5P6R7S8T90001","deliveryContext":{"isRedelivery":false},"replyToken":"b60d432864f44d079f6d8efe86cf0001","message":{"type":"text","id":"532904521318600001","quoteToken":"q3Plxr","markAsReadToken":"30yhdy","text":"注文番号 1 の配送状況"}},{"type":"accountLink","timestamp":1,"source":{"type":"group","groupId":"C1","userId":"U1"},"link":{"result":"ok","nonce":"n1"},"follow":{"isUnblocked":null}}]}"#;

    #[test]
    fn fast_reader_matches_serde_on_fixtures() {
        for body in fixture_bodies() {
            same(&body);
        }
        same(TEXT.as_bytes());
    }

    #[test]
    fn fast_reader_matches_serde_on_edge_cases() {
        let event = |inner: &str| format!(r#"{{"events":[{inner}]}}"#);
        for inner in [
            r#"{"type":"unfollow","type":"unfollow"}"#,
            r#"{"type":"unfollow","mode":null,"mode":null}"#,
            r#"{"type":"unfollow","replyToken":null}"#,
            r#"{"type":"unfollow","replyToken":1}"#,
            r#"{"type":"unf\u006fllow"}"#,
            r#"{"typ\u0065":"unfollow"}"#,
            r#"{"type":"message","message":{"type":"text","text":"a\nb\"c\\"}}"#,
            r#"{"type":"message","message":{"type":"text","text":"a	b"}}"#,
            r#"{"type":"message","message":{"type":"text"}}"#,
            r#"{"type":"message","message":{"type":"text","text":"x","text":"y"}}"#,
            r#"{"type":"message","message":{"text":"x"}}"#,
            r#"{"type":"message","message":{"type":"location","latitude":1.5,"longitude":-2e3}}"#,
            r#"{"type":"message","message":{"type":"sticker","packageId":"1","stickerId":"2","stickerResourceType":"NEW","keywords":["a"]}}"#,
            r#"{"type":"message","message":{"type":"image","contentProvider":{"type":"line"},"imageSet":{"id":"s","index":1}}}"#,
            r#"{"type":"message","message":{"type":"file","fileSize":-1}}"#,
            r#"{"type":"message","message":{"type":"video","duration":1.0}}"#,
            r#"{"type":"message","message":null}"#,
            r#"{"type":"unfollow","timestamp":-1}"#,
            r#"{"type":"unfollow","timestamp":01}"#,
            r#"{"type":"unfollow","timestamp":0}"#,
            r#"{"type":"unfollow","timestamp":1.0}"#,
            r#"{"type":"unfollow","timestamp":1e3}"#,
            r#"{"type":"unfollow","timestamp":9223372036854775807}"#,
            r#"{"type":"unfollow","timestamp":9223372036854775808}"#,
            r#"{"type":"unfollow","timestamp":"1"}"#,
            r#"{"type":"unfollow","timestamp":1x}"#,
            r#"{ "type" : "follow" , "follow" : { "isUnblocked" : true } , "x" : [ 1 , { } ] }"#,
            r#"{"type":"follow","follow":{"isUnblocked":1}}"#,
            r#"{"type":"follow","follow":{"isUnblocked":truex}}"#,
            r#"{"type":"follow","follow":{}}"#,
            r#"{"type":"follow","deliveryContext":{"isRedelivery":null}}"#,
            r#"{"type":"follow","deliveryContext":{}}"#,
            r#"{"type":"follow","deliveryContext":{"isRedelivery":true,"isRedelivery":true}}"#,
            r#"{"type":"accountLink","link":{"result":"ok"}}"#,
            r#"{"type":"accountLink","link":{"result":"new","nonce":"n","extra":{}}}"#,
            r#"{"type":"accountLink","link":{"result":"ok","nonce":"n","nonce":"n"}}"#,
            r#"{"type":"memberJoined","joined":{"members":[{"type":"user","userId":"U1"},{"type":"bot"}]}}"#,
            r#"{"type":"unfollow","source":{"type":"room"}}"#,
            r#"{"type":"unfollow","source":{"type":"new","x":1}}"#,
            r#"{"type":"unfollow","source":{"userId":"U1"}}"#,
            r#"{"type":"unfollow","source":"U1"}"#,
            r#"{"type":"somethingNew","message":{"type":"text"}}"#,
            r#"{"type":"unfollow",}"#,
            r#"{"type":"unfollow""#,
            r#"{"type":"unfollow"]"#,
            r#"{"type":1}"#,
            r#"{}"#,
            r#"[]"#,
            r#""event""#,
            r#"{"type":"unfollow","x":nul}"#,
            r#"{"type":"unfollow","x":"\x"}"#,
            r#"{"type":"unfollow","webhookEventId":""}"#,
        ] {
            same(event(inner).as_bytes());
        }
        for body in [
            r#"{"event\u0073":[]}"#,
            r#"{"events":[],"events":[]}"#,
            r#"{"destination":"U","events":[{"type":"unfollow"} ,{"type":"join"}]}"#,
            r#"{"destination":"U\n","events":[]}"#,
            r#"{"events":[{"type":"unfollow"}]} x"#,
            r#"{"events":[{"type":"unfollow"},]}"#,
            r#" { "events" : [ ] } "#,
            r#"{"destination":nullx,"events":[]}"#,
            r#"{"destination":null,"events":[]}"#,
            r#"{"destination":"\u0055","events":[]}"#,
        ] {
            same(body.as_bytes());
        }
    }

    /// Every one-byte deletion or replacement in an event gives the same outcome both ways.
    #[test]
    fn fast_reader_matches_serde_on_damaged_events() {
        let mut bodies = vec![TEXT.as_bytes().to_vec()];
        bodies.extend(fixture_bodies().into_iter().step_by(7));
        for body in bodies {
            let start = body.windows(2).position(|w| w == b"[{").map_or(0, |p| p + 1);
            for at in start..body.len().min(start + 600) {
                let mut cut = body.clone();
                cut.remove(at);
                same(&cut);
                for b in [b'"', b'\\', b'0', b'n', b' ', b'}', b',', b'.', 0x01] {
                    let mut changed = body.clone();
                    changed[at] = b;
                    same(&changed);
                }
            }
        }
    }

    const WORDS: &[&str] = &[
        "type",
        "message",
        "text",
        "source",
        "user",
        "group",
        "userId",
        "groupId",
        "id",
        "timestamp",
        "mode",
        "active",
        "webhookEventId",
        "deliveryContext",
        "isRedelivery",
        "replyToken",
        "follow",
        "isUnblocked",
        "postback",
        "data",
        "params",
        "accountLink",
        "link",
        "result",
        "nonce",
        "ok",
        "sticker",
        "packageId",
        "stickerId",
        "stickerResourceType",
        "keywords",
        "emojis",
        "quoteToken",
        "markAsReadToken",
        "joined",
        "members",
        "unfollow",
        "x",
    ];

    /// JSON text with duplicate keys, odd spacing and escapes, which `Value` would not produce.
    fn json(depth: u32) -> BoxedStrategy<String> {
        let word = || {
            prop_oneof![
                4 => proptest::sample::select(WORDS).prop_map(|w| format!("\"{w}\"")),
                1 => ".{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            ]
        };
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            Just("1.5".to_owned()),
            word(),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        let ws = || proptest::sample::select(&["", " ", "\n "][..]);
        prop_oneof![
            2 => leaf,
            1 => proptest::collection::vec(json(depth - 1), 0..3)
                .prop_map(|v| format!("[{}]", v.join(","))),
            3 => (proptest::collection::vec((word(), ws(), json(depth - 1)), 0..7))
                .prop_map(|kv| {
                    let fields: Vec<String> =
                        kv.into_iter().map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn fast_reader_matches_serde_on_generated_events(
            events in proptest::collection::vec(
                (proptest::sample::select(&["message", "follow", "accountLink", "unfollow", "x"][..]), json(3)),
                0..4,
            )
        ) {
            let events: Vec<String> = events
                .into_iter()
                .map(|(t, v)| match v.strip_prefix('{') {
                    Some(rest) if rest != "}" => format!("{{\"type\":\"{t}\",{rest}"),
                    _ => v,
                })
                .collect();
            same(format!(r#"{{"events":[{}]}}"#, events.join(",")).as_bytes());
        }
    }
}
