//! `parse` and `verify` must never panic, whatever the bytes; whatever `parse` accepts must
//! serialise to JSON that parses back into events of the same types.
//!
//! `cargo +nightly fuzz run webhook fuzz/corpus/webhook tests/fixtures/webhook` from the crate root.
#![no_main]

use enishi::line::webhook::{ChannelSecret, EventKind, parse, parse_event, sign, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // verify: the first byte splits the input into secret, header and body.
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len().saturating_sub(1));
    let (head, body) = data.split_at(split.max(usize::from(!data.is_empty())));
    let secret = ChannelSecret::new(String::from_utf8_lossy(head).into_owned());
    let header =
        String::from_utf8_lossy(body.get(..body.len().min(64)).unwrap_or_default()).into_owned();
    let _ = verify(&secret, Some(&header), body);
    let _ = verify(&secret, None, body);
    assert!(verify(&secret, Some(&sign(&secret, body)), body).is_ok());

    // parse the whole input as a webhook body.
    if let Ok(payload) = parse(data) {
        for event in &payload.events {
            let _ = event.to_value();
            let json = serde_json::to_string(event).expect("events serialise");
            let again = parse_event(&json).expect("serialised events are JSON");
            if !matches!(event.kind, EventKind::Malformed { .. }) {
                assert_eq!(again.type_str(), event.type_str());
            }
        }
        let _ = serde_json::to_string(&payload).expect("payloads serialise");
    }
});
