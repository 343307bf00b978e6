//! Property tests: `parse` and `verify` never panic, whatever the bytes, and every bit flip of a
//! signed body is rejected. `PROPTEST_CASES` sets the number of cases (default 256).

use enishi::line::webhook::{ChannelSecret, EventKind, parse, parse_event, sign, verify};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys and strings LINE uses, so generated JSON reaches the typed code paths.
const WORDS: &[&str] = &[
    "type",
    "message",
    "messageEdited",
    "source",
    "user",
    "group",
    "room",
    "userId",
    "groupId",
    "roomId",
    "text",
    "image",
    "video",
    "audio",
    "file",
    "location",
    "sticker",
    "id",
    "timestamp",
    "mode",
    "active",
    "standby",
    "webhookEventId",
    "deliveryContext",
    "isRedelivery",
    "replyToken",
    "follow",
    "isUnblocked",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "joined",
    "left",
    "members",
    "postback",
    "data",
    "params",
    "beacon",
    "hwid",
    "accountLink",
    "link",
    "result",
    "nonce",
    "ok",
    "failed",
    "membership",
    "membershipId",
    "module",
    "attached",
    "detached",
    "botId",
    "scopes",
    "reason",
    "activated",
    "chatControl",
    "expireAt",
    "delivery",
    "things",
    "deviceId",
    "unsend",
    "messageId",
    "videoPlayComplete",
    "trackingId",
    "contentProvider",
    "emojis",
    "mention",
    "mentionees",
    "latitude",
    "longitude",
    "packageId",
    "stickerId",
    "stickerResourceType",
    "keywords",
    "imageSet",
    "index",
    "length",
    "destination",
    "events",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![3 => proptest::sample::select(WORDS).prop_map(str::to_owned), 1 => ".{0,12}"]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Exactly representable floats: serde_json does not round-trip every f64 bit for bit.
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn webhook_prop_parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn webhook_prop_parse_never_panics_on_webhook_shaped_json(events in proptest::collection::vec(json(), 0..6)) {
        let body = serde_json::json!({ "destination": "U0", "events": events }).to_string();
        let payload = parse(body.as_bytes()).expect("an object with an events array always parses");
        prop_assert_eq!(payload.events.len(), events.len());
        for (event, original) in payload.events.iter().zip(&events) {
            // Whatever happened, the raw JSON is kept exactly, and serialising gives valid JSON
            // that reads back as the same kind of event.
            prop_assert_eq!(&serde_json::from_str::<Value>(event.raw_json()).unwrap(), original);
            let again = parse_event(&serde_json::to_string(event).unwrap()).unwrap();
            if !matches!(event.kind, EventKind::Malformed { .. }) {
                prop_assert_eq!(again.type_str(), event.type_str());
            }
        }
    }

    #[test]
    fn webhook_prop_verify_never_panics(secret in ".{0,40}", header in proptest::option::of(".{0,64}"), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let secret = ChannelSecret::new(secret);
        let _ = verify(&secret, header.as_deref(), &body);
        prop_assert!(verify(&secret, Some(&sign(&secret, &body)), &body).is_ok());
    }

    #[test]
    fn webhook_prop_any_bit_flip_is_rejected(body in proptest::collection::vec(any::<u8>(), 1..512), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let secret = ChannelSecret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90");
        let sig = sign(&secret, &body);
        let mut flipped = body.clone();
        flipped[at.index(body.len())] ^= 1 << bit;
        prop_assert!(verify(&secret, Some(&sig), &flipped).is_err());
    }
}
