//! LINE's own data, read in place from `../shared/fixtures/line` (or `ENISHI_FIXTURES_DIR`):
//! 83 webhook bodies from the official SDKs' tests and 78 signature vectors.

use std::path::PathBuf;

use enishi::line::webhook::{ChannelSecret, EventKind, WebhookError, parse, sign, verify};
use serde_json::Value;

/// The fixtures folder, or `None` (with a note) when it is absent outside CI.
fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("ENISHI_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/line")
    });
    if dir.join("signatures.json").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "LINE fixtures missing at {} (CI=true requires them; set ENISHI_FIXTURES_DIR)",
        dir.display()
    );
    eprintln!("note: LINE fixtures not found at {}; corpus test skipped", dir.display());
    None
}

fn bodies(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("webhook-events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Every key the typed model emits must be in the original with the same value.
fn assert_subset(name: &str, path: &str, typed: &Value, orig: &Value) {
    match (typed, orig) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, v) in t {
                let Some(ov) = o.get(k) else {
                    panic!("{name}: {path}.{k} emitted but not in the original")
                };
                assert_subset(name, &format!("{path}.{k}"), v, ov);
            }
        }
        (Value::Array(t), Value::Array(o)) => {
            assert_eq!(t.len(), o.len(), "{name}: {path} length");
            for (i, (a, b)) in t.iter().zip(o).enumerate() {
                assert_subset(name, &format!("{path}[{i}]"), a, b);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{name}: {path}")
        }
        _ => assert_eq!(typed, orig, "{name}: {path}"),
    }
}

#[test]
fn webhook_corpus_all_official_bodies_parse_without_malformed_events() {
    let Some(dir) = fixtures() else { return };
    let bodies = bodies(&dir);
    assert_eq!(bodies.len(), 83, "expected LINE's 83 webhook bodies");
    let (mut events, mut unknown) = (0, 0);
    for (name, body) in &bodies {
        let payload = parse(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let orig: Value = serde_json::from_slice(body).unwrap();
        let orig_events = orig["events"].as_array().unwrap();
        assert_eq!(payload.events.len(), orig_events.len(), "{name}");
        assert_eq!(payload.destination.as_deref(), orig["destination"].as_str(), "{name}");
        for (event, orig_event) in payload.events.iter().zip(orig_events) {
            assert!(event.error().is_none(), "{name}: {:?}", event.kind);
            assert_eq!(event.type_str(), orig_event["type"].as_str().unwrap(), "{name}");
            assert_eq!(
                serde_json::from_str::<Value>(event.raw_json()).unwrap(),
                *orig_event,
                "{name}"
            );
            assert_eq!(
                event.webhook_event_id.as_ref().map(|i| i.as_str()),
                orig_event["webhookEventId"].as_str()
            );
            assert_eq!(
                event.is_redelivery(),
                orig_event["deliveryContext"]["isRedelivery"] == true,
                "{name}"
            );
            assert_eq!(event.reply_token.as_deref(), orig_event["replyToken"].as_str(), "{name}");
            assert_eq!(event.timestamp, orig_event["timestamp"].as_i64(), "{name}");
            assert_eq!(event.user_id(), orig_event["source"]["userId"].as_str(), "{name}");
            assert_subset(name, "event", &serde_json::to_value(event).unwrap(), orig_event);
            if matches!(event.kind, EventKind::Unknown(_)) {
                unknown += 1;
            }
            events += 1;
        }
    }
    // `messageEdited`, `delivery`, `botSuspended` etc. are typed; the made-up ones are unknown.
    assert_eq!(
        unknown,
        4 + 3 + 1 + 1 + 1,
        "__unknown__ x4, undefined x3, greatNewFeature, UNKNOWN, hoge"
    );
    assert!(events > 300, "{events}");
}

#[test]
fn webhook_corpus_signature_vectors_give_the_expected_verdict() {
    let Some(dir) = fixtures() else { return };
    let vectors: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("signatures.json")).unwrap()).unwrap();
    assert_eq!(vectors.len(), 78);
    let mut valid = 0;
    for v in &vectors {
        let id = v["id"].as_str().unwrap();
        let secret = ChannelSecret::new(v["secret"].as_str().unwrap());
        let body = std::fs::read(dir.join(v["body_file"].as_str().unwrap())).unwrap();
        let sig = v["signature"].as_str().unwrap();
        let got = verify(&secret, Some(sig), &body);
        if v["expected_valid"].as_bool().unwrap() {
            assert!(got.is_ok(), "{id}: {got:?}");
            assert_eq!(sign(&secret, &body), sig, "{id}: sign() must reproduce LINE's signature");
            valid += 1;
        } else {
            let err = got.expect_err(id);
            assert!(err.is_signature_error(), "{id}");
            assert!(
                matches!(
                    err,
                    WebhookError::MalformedSignature(_)
                        | WebhookError::SignatureLength(_)
                        | WebhookError::SignatureMismatch
                ),
                "{id}: {err:?}"
            );
        }
    }
    assert_eq!(valid, 61);
}

#[test]
fn webhook_corpus_every_single_byte_flip_of_a_signed_body_is_rejected() {
    let Some(dir) = fixtures() else { return };
    let secret = ChannelSecret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let mut flips = 0u64;
    for (name, body) in bodies(&dir) {
        let sig = sign(&secret, &body);
        assert!(verify(&secret, Some(&sig), &body).is_ok(), "{name}");
        let mut flipped = body.clone();
        for i in 0..flipped.len() {
            // One flipped bit per byte: every 1-byte change of the body must be rejected.
            flipped[i] ^= 0x01;
            assert!(
                matches!(
                    verify(&secret, Some(&sig), &flipped),
                    Err(WebhookError::SignatureMismatch)
                ),
                "{name}: flip of byte {i} accepted"
            );
            flipped[i] ^= 0x01;
            flips += 1;
        }
        // Appending or dropping a byte (e.g. a trailing newline) changes the signature too.
        let mut longer = body.clone();
        longer.push(b'\n');
        assert!(verify(&secret, Some(&sig), &longer).is_err(), "{name}");
        assert!(verify(&secret, Some(&sig), &body[..body.len() - 1]).is_err(), "{name}");
    }
    assert!(flips > 5_000, "{flips}");
}

/// What the parser makes of every official body, one line per event: the `type`, whether it
/// is a redelivery, the user, and the typed kind as `Debug` prints it. A change in how any
/// body is read (a field dropped, an event turned `Unknown` or `Malformed`) shows up here.
#[test]
fn webhook_corpus_parse_snapshot() {
    let Some(dir) = fixtures() else { return };
    let mut out = String::new();
    for (name, body) in bodies(&dir) {
        let payload = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let destination = payload.destination.as_deref().unwrap_or("-");
        out.push_str(&format!("== {name} (destination {destination})\n"));
        for event in &payload.events {
            out.push_str(&format!(
                "{} redelivery={} user={} {:?}\n",
                event.type_str(),
                event.is_redelivery(),
                event.user_id().unwrap_or("-"),
                event.kind
            ));
        }
    }
    insta::assert_snapshot!("webhook_corpus_parse", out);
}
