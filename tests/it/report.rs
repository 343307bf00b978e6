//! The examples' error report (`examples/support/report.rs`): the error and each cause, once.

use std::error::Error;
use std::fmt;

use enishi::campaign::scenario::ScenarioSet;

#[path = "../../examples/support/report.rs"]
mod support;

/// An error's chain on one line (`top: cause: cause`), each message once, for assertions.
pub(crate) fn chain_text(err: &dyn Error) -> String {
    support::causes(err).join(": ")
}

/// A test error: a message and an optional cause.
#[derive(Debug)]
struct E(&'static str, Option<Box<Self>>);

impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for E {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

#[test]
fn report_prints_the_error_then_each_cause_on_its_own_line() {
    let err = E(
        "the sqlite link store failed",
        Some(Box::new(E("unable to open database file", Some(Box::new(E("disk I/O", None)))))),
    );
    assert_eq!(
        support::render(&err),
        "error: the sqlite link store failed\n  caused by: unable to open database file\n  \
         caused by: disk I/O\n"
    );
    assert_eq!(support::render(&E("alone", None)), "error: alone\n");
}

#[test]
fn report_leaves_out_a_cause_the_message_above_already_ends_with() {
    // Some libraries (tokio-postgres) print their source in their own message.
    let err = E(
        "the postgres link store failed",
        Some(Box::new(E(
            "db error: ERROR: no schema",
            Some(Box::new(E("ERROR: no schema", None))),
        ))),
    );
    assert_eq!(
        support::causes(&err),
        ["the postgres link store failed", "db error: ERROR: no schema"]
    );
}

#[test]
fn context_keeps_its_cause_in_the_chain() {
    let err = support::Context::new("exporting to out/", E("permission denied", None));
    assert_eq!(err.to_string(), "exporting to out/");
    assert_eq!(support::render(&err), "error: exporting to out/\n  caused by: permission denied\n");
}

#[test]
fn a_scenario_error_reads_once_with_its_field_path() {
    let err = ScenarioSet::from_json(
        r#"{"scenario": [{"name": "x", "trigger": {"type": "cart_abandoned"}, "steps": [{"name": "a", "delay": "soon", "message": "m"}]}]}"#,
    )
    .expect_err("a bad delay");
    let lines = support::causes(&err);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines[1].contains("scenario[0].steps[0].delay"), "{lines:?}");
    // Nothing is said twice: no message contains a later one.
    for (i, outer) in lines.iter().enumerate() {
        for inner in &lines[i + 1..] {
            assert!(!outer.contains(inner.as_str()), "{outer:?} repeats {inner:?}");
        }
    }
}
