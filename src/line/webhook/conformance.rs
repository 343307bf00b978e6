//! The conformance suite every [`EventDedup`] store runs (feature `testkit`).
//!
//! Each check takes handles onto one new, empty store (all with the same retention window,
//! which the checks read from the store) and panics with a message saying what the store got
//! wrong. [`run_all`] runs them all, each on a store from a factory, so a host checks its own
//! store with one call:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use enishi::line::webhook::{EventDedup, MemoryDedup};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::line::webhook::conformance::run_all(|| async {
//!     // Two handles onto one store, as two processes sharing a database.
//!     let store = MemoryDedup::new(Duration::from_secs(3600));
//!     vec![Arc::new(store.clone()) as Arc<dyn EventDedup>, Arc::new(store)]
//! })
//! .await;
//! # }
//! ```
//!
//! enishi runs every check against its memory, SQLite and PostgreSQL stores (the crate's
//! `tests/it/webhook/dedup.rs`). Checks that race spawn tokio tasks: run them on a
//! multi-threaded runtime to make the races real.
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::EventDedup;
use crate::WebhookEventId;
use crate::conformance::Handles;

/// The checks' base time, in milliseconds since the epoch.
const T0: i64 = 1_760_000_000_000;

fn id(s: &str) -> WebhookEventId {
    WebhookEventId::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(|| panic!("{ms} ms is out of range"))
}

/// The handles' retention window in milliseconds; every handle must report the same one.
fn retention_ms(s: &Handles<'_, dyn EventDedup>) -> i64 {
    let retention = s[0].retention();
    for h in s {
        assert_eq!(h.retention(), retention, "handles onto one store report other retentions");
    }
    let ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    assert!(
        (2..=T0).contains(&ms),
        "the suite needs a retention window between 2 ms and 55 years, got {retention:?}"
    );
    ms
}

async fn claim(store: &dyn EventDedup, event: &WebhookEventId, now: i64) -> bool {
    store.claim(event, at(now)).await.unwrap_or_else(|e| panic!("claim of {event} failed: {e:?}"))
}

async fn purge(store: &dyn EventDedup, now: i64) -> u64 {
    store.purge_expired(at(now)).await.unwrap_or_else(|e| panic!("purge failed: {e:?}"))
}

/// The first claim of an ID wins; later ones inside the retention window lose, on any handle;
/// the window's end frees the ID, and the new claim holds.
pub async fn first_claim_wins_within_the_window(stores: &[Arc<dyn EventDedup>]) {
    let s = Handles::new(stores);
    let r = retention_ms(&s);
    let a = id("01JAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(claim(&*s[0], &a, T0).await, "first claim");
    assert!(!claim(&*s[1], &a, T0).await, "second claim at the same time");
    assert!(!claim(&*s[0], &a, T0 + r - 1).await, "claim just inside the window");
    assert!(claim(&*s[1], &a, T0 + r).await, "claim once the window has passed");
    assert!(!claim(&*s[0], &a, T0 + r).await, "the re-claim holds");
}

/// `release` frees an ID for the next claim; releasing an unknown ID is not an error.
pub async fn release_frees_an_id(stores: &[Arc<dyn EventDedup>]) {
    let s = Handles::new(stores);
    let b = id("01JBBBBBBBBBBBBBBBBBBBBBBB");
    assert!(claim(&*s[0], &b, T0).await);
    s[1].release(&b).await.unwrap_or_else(|e| panic!("release failed: {e:?}"));
    assert!(claim(&*s[0], &b, T0).await, "claim after release");
    s[0].release(&id("never-claimed")).await.unwrap_or_else(|e| panic!("{e:?}"));
}

/// Many tasks on every handle claim one ID at once: exactly one wins.
pub async fn concurrent_claims_have_one_winner(stores: &[Arc<dyn EventDedup>]) {
    let s = Handles::new(stores);
    let c = id("01JCCCCCCCCCCCCCCCCCCCCCCC");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, c) = (Arc::clone(&s[i]), c.clone());
            tokio::spawn(async move { claim(&*store, &c, T0).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap_or_else(|e| panic!("a claim task panicked: {e}")));
    }
    assert_eq!(winners, 1, "concurrent claims of one ID");
}

/// `purge_expired` deletes exactly the claims whose window has passed and counts them; purged
/// IDs can be claimed again, unexpired claims survive.
pub async fn purge_deletes_exactly_the_expired_claims(stores: &[Arc<dyn EventDedup>]) {
    let s = Handles::new(stores);
    let r = retention_ms(&s);
    let (a, b, c) = (id("01JPURGEA"), id("01JPURGEB"), id("01JPURGEC"));
    for event in [&a, &b, &c] {
        assert!(claim(&*s[0], event, T0).await);
    }
    assert!(claim(&*s[1], &a, T0 + r).await, "a re-claimed once its window passed");
    assert_eq!(purge(&*s[0], T0 + r).await, 2, "b and c expired at t0 + retention");
    assert!(claim(&*s[1], &b, T0 + r).await, "purged IDs can be claimed again");
    assert!(!claim(&*s[0], &a, T0 + r).await, "unexpired claims survive a purge");
    assert_eq!(purge(&*s[1], T0 + r).await, 0, "nothing more has expired");
    assert_eq!(purge(&*s[0], T0 + 2 * r + 1).await, 2, "a and b expired");
    assert!(claim(&*s[0], &a, T0 + 2 * r + 1).await);
}

/// Two handles (two processes in production) claim the same 200 IDs in opposite orders at
/// once: each ID is won exactly once.
pub async fn racing_handles_handle_each_event_once(stores: &[Arc<dyn EventDedup>]) {
    let s = Handles::new(stores);
    let ids: Vec<WebhookEventId> = (0..200).map(|i| id(&format!("01JRACE{i:019}"))).collect();
    let mut tasks = Vec::new();
    for n in 0..2 {
        let store = Arc::clone(&s[n]);
        // Opposite orders make the two handles meet in the middle.
        let order: Vec<_> = if n == 0 { ids.clone() } else { ids.iter().rev().cloned().collect() };
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for i in order {
                if claim(&*store, &i, T0).await {
                    won.push(i);
                }
            }
            won
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| panic!("a claim task panicked: {e}")));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (ids.len(), ids.len()), "each ID handled exactly once");
}

/// Runs every check, each on a new, empty store from `new_store`.
///
/// `new_store` returns one or more handles onto one new, empty store, all with one retention
/// window of at least 2 ms (one per connection or pool, as in separate processes, to make the
/// races cross them; clones of one `Arc` are fine too). The checks use fixed IDs, so each
/// needs its own store: a new schema, file or database each time.
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn EventDedup>>> + Send,
{
    first_claim_wins_within_the_window(&new_store().await).await;
    release_frees_an_id(&new_store().await).await;
    concurrent_claims_have_one_winner(&new_store().await).await;
    purge_deletes_exactly_the_expired_claims(&new_store().await).await;
    racing_handles_handle_each_event_once(&new_store().await).await;
}
