//! Tests: message. The typed LINE message objects: JSON shape, round trips, and every
//! documented limit at its boundary.

mod limits;
mod props;
mod shape;
mod spec;

use enishi::line::message::{Message, validate_messages};

/// The violations of a batch as `(path, rule)` pairs (empty when valid).
pub(crate) fn violations(messages: &[Message]) -> Vec<(String, String)> {
    match validate_messages(messages) {
        Ok(()) => Vec::new(),
        Err(e) => e.violations.into_iter().map(|v| (v.path, v.rule)).collect(),
    }
}

/// Asserts a single message is valid.
#[track_caller]
pub(crate) fn assert_valid(message: Message) {
    let found = violations(&[message]);
    assert!(found.is_empty(), "expected no violations, got {found:#?}");
}

/// Asserts the batch has exactly one violation, at `path`, whose rule mentions `mention`.
#[track_caller]
pub(crate) fn assert_single_violation(messages: &[Message], path: &str, mention: &str) {
    let found = violations(messages);
    assert!(
        found.len() == 1 && found[0].0 == path && found[0].1.contains(mention),
        "expected one violation at {path} mentioning {mention:?}, got {found:#?}"
    );
}

/// [`assert_single_violation`] for one message.
#[track_caller]
pub(crate) fn assert_violation(message: Message, path: &str, mention: &str) {
    assert_single_violation(&[message], path, mention);
}
