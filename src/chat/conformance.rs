//! The conformance suite every [`ChatStore`] runs (feature `testkit`).
//!
//! Each check takes handles onto one new, empty store and panics with a message saying what
//! the store got wrong. [`run_all`] runs them all, each on a store from a factory, so a host
//! checks its own store with one call:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::chat::{ChatStore, MemoryChatStore};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::chat::conformance::run_all(|| async {
//!     // Two handles onto one store (the races cross them), and a handle of another channel
//!     // in the same database.
//!     let store = MemoryChatStore::new().with_channel("1650000000");
//!     let other = Arc::new(store.with_channel("1650000001")) as Arc<dyn ChatStore>;
//!     (vec![Arc::new(store.clone()) as Arc<dyn ChatStore>, Arc::new(store)], other)
//! })
//! .await;
//! # }
//! ```
//!
//! The checks are public one by one too, so a test suite can report each as its own test
//! (the crate's `tests/it/chat/store.rs` runs every one against the memory, SQLite and
//! PostgreSQL stores). The checks that race spawn tokio tasks: run them on a multi-threaded
//! runtime to make the races real.
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::{ChatStore, ChatStoreError, Direction, LOG_TEXT_MAX_CHARS, LogEntry, SurveyProgress};
use crate::conformance::Handles;
use crate::segment::AttrValue;
use crate::{CustomerId, LineUserId};

/// How long a hand-off may stay quiet in these checks.
const IDLE: Duration = Duration::from_secs(30 * 60);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

fn entry(u: u32, text: &str, at: DateTime<Utc>) -> LogEntry {
    LogEntry::new(user(u), Direction::Inbound, "text", text, at)
}

fn texts(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.text.as_str()).collect()
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(result: Result<T, ChatStoreError>) {
    assert!(
        matches!(result, Err(ChatStoreError::InvalidInput { .. })),
        "expected InvalidInput, got {result:?}"
    );
}

/// A hand-off starts once (`true`), a second start refreshes its activity and keeps its reason
/// and start; it is touched, read through another handle, ended once, and gone after.
pub async fn handoff_start_refresh_end(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].start_handoff(&user(1), "staff please", t0()).await.unwrap());
    assert!(!s[1].start_handoff(&user(1), "again", t0() + secs(10)).await.unwrap());
    let h = s[1].active_handoff(&user(1), IDLE, t0() + secs(11)).await.unwrap().unwrap();
    assert_eq!((h.line_user.clone(), h.reason.as_str()), (user(1), "staff please"));
    assert_eq!((h.since, h.last_activity), (t0(), t0() + secs(10)));
    assert!(s[0].touch_handoff(&user(1), t0() + secs(20)).await.unwrap());
    // Activity never moves back in time.
    assert!(s[1].touch_handoff(&user(1), t0() + secs(5)).await.unwrap());
    let h = s[0].active_handoff(&user(1), IDLE, t0() + secs(21)).await.unwrap().unwrap();
    assert_eq!(h.last_activity, t0() + secs(20));
    assert_eq!(s[1].handoffs().await.unwrap(), vec![h]);
    assert!(s[1].end_handoff(&user(1)).await.unwrap());
    assert!(!s[0].end_handoff(&user(1)).await.unwrap());
    assert!(!s[0].touch_handoff(&user(1), t0() + secs(30)).await.unwrap());
    assert_eq!(s[0].active_handoff(&user(1), IDLE, t0() + secs(31)).await.unwrap(), None);
    assert!(s[0].handoffs().await.unwrap().is_empty());
    // Another user never had one.
    assert!(!s[0].end_handoff(&user(2)).await.unwrap());
}

/// A hand-off quiet for exactly `idle` still runs; one quiet for longer is ended by
/// `active_handoff` (removed: not listed, not touchable), and the next start is new.
pub async fn handoff_idle_expiry(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].start_handoff(&user(1), "r", t0()).await.unwrap());
    let at_limit = t0() + chrono::Duration::from_std(IDLE).unwrap();
    assert!(s[1].active_handoff(&user(1), IDLE, at_limit).await.unwrap().is_some());
    let past = at_limit + chrono::Duration::milliseconds(1);
    assert_eq!(s[1].active_handoff(&user(1), IDLE, past).await.unwrap(), None);
    assert!(s[0].handoffs().await.unwrap().is_empty(), "the idle hand-off was not removed");
    assert!(!s[0].touch_handoff(&user(1), past).await.unwrap());
    assert!(s[0].start_handoff(&user(1), "new", past).await.unwrap());
    let h = s[1].active_handoff(&user(1), IDLE, past).await.unwrap().unwrap();
    assert_eq!((h.reason.as_str(), h.since), ("new", past));
    // A zero idle time keeps only a hand-off active this very millisecond.
    assert!(s[0].active_handoff(&user(1), Duration::ZERO, past).await.unwrap().is_some());
    let h = s[0].active_handoff(&user(1), Duration::MAX, past + secs(99_999)).await.unwrap();
    assert!(h.is_some(), "an endless idle time never ends a hand-off");
}

/// A hand-off refreshed through one handle is kept when another handle asks with a cutoff
/// that the first activity alone would not pass.
pub async fn handoff_refreshed_elsewhere_is_kept(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].start_handoff(&user(1), "r", t0()).await.unwrap());
    let refreshed = t0() + secs(25 * 60);
    assert!(s[1].touch_handoff(&user(1), refreshed).await.unwrap());
    let later = t0() + secs(40 * 60);
    let h = s[0].active_handoff(&user(1), IDLE, later).await.unwrap();
    assert_eq!(h.map(|h| h.last_activity), Some(refreshed));
    // A start refreshes too.
    assert!(!s[1].start_handoff(&user(1), "r", t0() + secs(50 * 60)).await.unwrap());
    assert!(s[0].active_handoff(&user(1), IDLE, t0() + secs(70 * 60)).await.unwrap().is_some());
}

/// `handoffs` lists every running hand-off, oldest start first.
pub async fn handoffs_are_listed_oldest_first(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    for (n, at) in [(3, 30), (1, 10), (2, 20)] {
        assert!(
            s[n as usize].start_handoff(&user(n), &format!("r{n}"), t0() + secs(at)).await.unwrap()
        );
    }
    let list = s[0].handoffs().await.unwrap();
    let users: Vec<LineUserId> = list.iter().map(|h| h.line_user.clone()).collect();
    assert_eq!(users, vec![user(1), user(2), user(3)]);
    assert_eq!(list[1].reason, "r2");
    assert_eq!(list[2].since, t0() + secs(30));
}

/// Of 8 concurrent starts for one user, across the handles, exactly one is `true`.
pub async fn handoff_race_one_start(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&s[i]);
            tokio::spawn(async move { store.start_handoff(&user(1), "race", t0()).await })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            started += 1;
        }
    }
    assert_eq!(started, 1, "concurrent starts of one hand-off");
    assert_eq!(s[0].handoffs().await.unwrap().len(), 1);
}

/// Attributes are set, overwritten (not by an older write), kept apart per customer and key,
/// and read through another handle.
pub async fn attributes_set_overwrite_read(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].attributes().await.unwrap().is_empty());
    s[0].set_attribute(&cust(1), "opt_out", &AttrValue::Bool(false), t0()).await.unwrap();
    s[0].set_attribute(&cust(1), "size", &AttrValue::Text("M".into()), t0()).await.unwrap();
    s[1].set_attribute(&cust(2), "size", &AttrValue::Text("L".into()), t0()).await.unwrap();
    s[1].set_attribute(&cust(1), "opt_out", &AttrValue::Bool(true), t0() + secs(1)).await.unwrap();
    // An older write (a delayed instance) does not undo a newer one.
    s[0].set_attribute(&cust(1), "opt_out", &AttrValue::Bool(false), t0()).await.unwrap();
    let attrs = s[1].attributes().await.unwrap();
    let expected: BTreeMap<CustomerId, BTreeMap<String, AttrValue>> = BTreeMap::from([
        (
            cust(1),
            BTreeMap::from([
                ("opt_out".to_owned(), AttrValue::Bool(true)),
                ("size".to_owned(), AttrValue::Text("M".into())),
            ]),
        ),
        (cust(2), BTreeMap::from([("size".to_owned(), AttrValue::Text("L".into()))])),
    ]);
    assert_eq!(attrs, expected);
    // A write at the same instant replaces.
    s[0].set_attribute(&cust(2), "size", &AttrValue::Text("S".into()), t0()).await.unwrap();
    assert_eq!(s[0].attributes().await.unwrap()[&cust(2)]["size"], AttrValue::Text("S".into()));
}

/// Every kind of attribute value reads back as written.
pub async fn attribute_values_round_trip(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    let at = Utc.timestamp_opt(1_790_000_000, 123_456_789).unwrap();
    let values = [
        AttrValue::Text("ゴールド会員 \"quoted\" \\ \u{1F600}".into()),
        AttrValue::Text(String::new()),
        AttrValue::Text("nul \0 inside".into()),
        AttrValue::Int(i64::MIN),
        AttrValue::Int(i64::MAX),
        AttrValue::Bool(true),
        AttrValue::Time(at),
        AttrValue::List(vec!["vip".into(), "肌:乾燥".into()]),
        AttrValue::List(vec![]),
    ];
    for (i, v) in values.iter().enumerate() {
        s[0].set_attribute(&cust(1), &format!("k{i}"), v, t0()).await.unwrap();
    }
    let attrs = s[1].attributes().await.unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(attrs[&cust(1)].get(&format!("k{i}")), Some(v), "value {i}");
    }
}

/// Survey progress is set, advanced, read through another handle, kept per user and cleared
/// (clearing twice is fine).
pub async fn survey_set_and_clear(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert_eq!(s[0].survey_of(&user(1)).await.unwrap(), None);
    let p = SurveyProgress::new("nps-2026", 0, t0());
    s[0].set_survey(&user(1), Some(&p)).await.unwrap();
    assert_eq!(s[1].survey_of(&user(1)).await.unwrap(), Some(p));
    let next = SurveyProgress::new("nps-2026", u32::MAX, t0());
    s[1].set_survey(&user(1), Some(&next)).await.unwrap();
    let other = SurveyProgress::new("skin", 2, t0() + secs(5));
    s[1].set_survey(&user(2), Some(&other)).await.unwrap();
    assert_eq!(s[0].survey_of(&user(1)).await.unwrap(), Some(next));
    s[0].set_survey(&user(1), None).await.unwrap();
    s[1].set_survey(&user(1), None).await.unwrap();
    assert_eq!(s[1].survey_of(&user(1)).await.unwrap(), None);
    assert_eq!(s[0].survey_of(&user(2)).await.unwrap(), Some(other));
}

/// The log keeps every field; `log_of` returns a user's last `limit` entries oldest first
/// (entries at one instant in append order, entries appended late in time order).
pub async fn log_order_and_limit(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].log_of(&user(1), 10).await.unwrap().is_empty());
    let full = LogEntry::new(user(1), Direction::Outbound, "reply", "こんにちは", t0() + secs(1))
        .with_customer(cust(1))
        .with_intent("greeting");
    s[0].append_log(&entry(1, "a", t0())).await.unwrap();
    s[1].append_log(&full).await.unwrap();
    s[0].append_log(&entry(2, "other user", t0() + secs(2))).await.unwrap();
    s[1].append_log(&entry(1, "c", t0() + secs(3))).await.unwrap();
    s[0].append_log(&entry(1, "d", t0() + secs(3))).await.unwrap();
    // Appended last, but earlier in time.
    s[1].append_log(&entry(1, "late", t0() + secs(2))).await.unwrap();
    let all = s[0].log_of(&user(1), 100).await.unwrap();
    assert_eq!(texts(&all), ["a", "こんにちは", "late", "c", "d"]);
    assert_eq!(all[1], full);
    assert_eq!(texts(&s[1].log_of(&user(1), 2).await.unwrap()), ["c", "d"]);
    assert!(s[1].log_of(&user(1), 0).await.unwrap().is_empty());
    assert_eq!(texts(&s[1].log_of(&user(2), usize::MAX).await.unwrap()), ["other user"]);
}

/// `log_since` returns every user's entries at or after an instant, oldest first; `purge_log`
/// deletes those strictly older than its cutoff and says how many.
pub async fn log_since_and_purge(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    for (u, text, at) in [(1, "a", 0), (2, "b", 10), (1, "c", 20), (2, "d", 30)] {
        s[u as usize].append_log(&entry(u, text, t0() + secs(at))).await.unwrap();
    }
    assert_eq!(texts(&s[0].log_since(t0() + secs(10)).await.unwrap()), ["b", "c", "d"]);
    assert_eq!(texts(&s[1].log_since(t0() - secs(1)).await.unwrap()), ["a", "b", "c", "d"]);
    assert!(s[1].log_since(t0() + secs(31)).await.unwrap().is_empty());
    assert_eq!(s[0].purge_log(t0() + secs(20)).await.unwrap(), 2);
    assert_eq!(s[1].purge_log(t0() + secs(20)).await.unwrap(), 0);
    assert_eq!(texts(&s[1].log_since(t0() - secs(1)).await.unwrap()), ["c", "d"]);
    assert_eq!(texts(&s[0].log_of(&user(1), 10).await.unwrap()), ["c"]);
}

/// A long text is stored as [`LogEntry::new`] truncated it (by characters, NUL replaced);
/// times come back at millisecond precision.
pub async fn log_text_truncation(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    let long = format!("\0{}", "界".repeat(LOG_TEXT_MAX_CHARS + 500));
    let at = t0() + chrono::Duration::nanoseconds(1_234_567);
    s[0].append_log(&entry(1, &long, at)).await.unwrap();
    let back = s[1].log_of(&user(1), 1).await.unwrap().remove(0);
    assert_eq!(back.text.chars().count(), LOG_TEXT_MAX_CHARS);
    assert!(back.text.starts_with('\u{FFFD}'));
    assert_eq!(back.text[3..], "界".repeat(LOG_TEXT_MAX_CHARS - 1));
    assert_eq!(back.at, t0() + chrono::Duration::milliseconds(1));
}

/// Invalid input is refused with `InvalidInput` and writes nothing.
pub async fn invalid_input_is_refused(stores: &[Arc<dyn ChatStore>]) {
    let s = Handles::new(stores);
    invalid(s[0].start_handoff(&user(1), "a\0b", t0()).await);
    invalid(s[0].start_handoff(&user(1), &"x".repeat(1_001), t0()).await);
    assert!(s[0].handoffs().await.unwrap().is_empty());
    let v = AttrValue::Bool(true);
    for key in ["", "a\0b", "tab\tkey", &"k".repeat(129)] {
        invalid(s[0].set_attribute(&cust(1), key, &v, t0()).await);
    }
    let huge = AttrValue::Text("x".repeat(super::ATTRIBUTE_VALUE_MAX_BYTES));
    invalid(s[0].set_attribute(&cust(1), "k", &huge, t0()).await);
    assert!(s[0].attributes().await.unwrap().is_empty());
    invalid(s[0].set_survey(&user(1), Some(&SurveyProgress::new("", 0, t0()))).await);
    invalid(s[0].set_survey(&user(1), Some(&SurveyProgress::new("a\0", 0, t0()))).await);
    assert_eq!(s[0].survey_of(&user(1)).await.unwrap(), None);
    let mut e = entry(1, "ok", t0());
    e.text = "x".repeat(LOG_TEXT_MAX_CHARS + 1);
    invalid(s[0].append_log(&e).await);
    e.text = "nul \0".into();
    invalid(s[0].append_log(&e).await);
    invalid(s[0].append_log(&LogEntry::new(user(1), Direction::Inbound, "", "x", t0())).await);
    invalid(s[0].append_log(&entry(1, "x", t0()).with_intent("a\0")).await);
    assert!(s[0].log_since(t0() - secs(1)).await.unwrap().is_empty());
}

/// Two channels in one database see nothing of each other: hand-offs, attributes, surveys,
/// the log and its purge.
pub async fn channels_are_isolated(stores: &[Arc<dyn ChatStore>], other: &Arc<dyn ChatStore>) {
    let s = Handles::new(stores);
    assert!(s[0].start_handoff(&user(1), "ours", t0()).await.unwrap());
    assert!(other.start_handoff(&user(1), "theirs", t0() + secs(1)).await.unwrap());
    assert!(other.end_handoff(&user(1)).await.unwrap());
    assert_eq!(s[1].handoffs().await.unwrap().len(), 1);
    assert!(other.handoffs().await.unwrap().is_empty());
    s[0].set_attribute(&cust(1), "k", &AttrValue::Int(1), t0()).await.unwrap();
    assert!(other.attributes().await.unwrap().is_empty());
    other.set_attribute(&cust(1), "k", &AttrValue::Int(2), t0() + secs(1)).await.unwrap();
    assert_eq!(s[1].attributes().await.unwrap()[&cust(1)]["k"], AttrValue::Int(1));
    s[0].set_survey(&user(1), Some(&SurveyProgress::new("s", 1, t0()))).await.unwrap();
    assert_eq!(other.survey_of(&user(1)).await.unwrap(), None);
    other.set_survey(&user(1), None).await.unwrap();
    assert!(s[1].survey_of(&user(1)).await.unwrap().is_some());
    s[0].append_log(&entry(1, "ours", t0())).await.unwrap();
    other.append_log(&entry(1, "theirs", t0())).await.unwrap();
    assert_eq!(texts(&s[1].log_of(&user(1), 10).await.unwrap()), ["ours"]);
    assert_eq!(other.purge_log(t0() + secs(1)).await.unwrap(), 1);
    assert_eq!(texts(&s[1].log_since(t0()).await.unwrap()), ["ours"]);
}

/// Runs every check, each on a new, empty store from `new_store`.
///
/// `new_store` returns one or more handles onto one new, empty store for one LINE channel (one
/// per connection or pool, as in separate processes, to make the races cross them; clones of
/// one `Arc` are fine too), and a handle of another channel in the same database (for
/// [`channels_are_isolated`]). The checks use fixed IDs, so each needs its own store: a new
/// schema, file or database each time.
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = (Vec<Arc<dyn ChatStore>>, Arc<dyn ChatStore>)> + Send,
{
    handoff_start_refresh_end(&new_store().await.0).await;
    handoff_idle_expiry(&new_store().await.0).await;
    handoff_refreshed_elsewhere_is_kept(&new_store().await.0).await;
    handoffs_are_listed_oldest_first(&new_store().await.0).await;
    handoff_race_one_start(&new_store().await.0).await;
    attributes_set_overwrite_read(&new_store().await.0).await;
    attribute_values_round_trip(&new_store().await.0).await;
    survey_set_and_clear(&new_store().await.0).await;
    log_order_and_limit(&new_store().await.0).await;
    log_since_and_purge(&new_store().await.0).await;
    log_text_truncation(&new_store().await.0).await;
    invalid_input_is_refused(&new_store().await.0).await;
    let (stores, other) = new_store().await;
    channels_are_isolated(&stores, &other).await;
}
