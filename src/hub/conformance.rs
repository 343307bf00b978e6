//! The conformance suite every [`HubQueue`] runs (feature `testkit`).
//!
//! Each check takes handles onto one new, empty queue and panics with a message saying what
//! the queue got wrong. [`run_all`] runs every check, each on a queue from a factory:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::hub::{HubQueue, MemoryHubQueue};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::hub::conformance::run_all(|| async {
//!     let queue = MemoryHubQueue::new();
//!     vec![Arc::new(queue.clone()) as Arc<dyn HubQueue>, Arc::new(queue)]
//! })
//! .await;
//! # }
//! ```
//!
//! enishi runs it against its memory, SQLite and PostgreSQL queues (`tests/it/hub/queue.rs`).
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{HubQueue, NewItem, QueuedItem};
use crate::conformance::Handles;

const T0: i64 = 1_760_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(|| panic!("{ms} ms is out of range"))
}

fn item(dest: &str, key: &str, user: &str) -> NewItem {
    NewItem::new(dest, key, user, format!("{{\"k\":\"{key}\"}}").into_bytes(), None)
}

async fn enqueue(q: &dyn HubQueue, items: &[NewItem], now: i64) -> u64 {
    q.enqueue(items, at(now)).await.unwrap_or_else(|e| panic!("enqueue failed: {e:?}"))
}

async fn claim(q: &dyn HubQueue, dest: &str, now: i64, limit: usize) -> Vec<QueuedItem> {
    q.claim(dest, at(now), LEASE, limit).await.unwrap_or_else(|e| panic!("claim failed: {e:?}"))
}

fn keys(items: &[QueuedItem]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

/// Queueing a key twice (LINE's redelivery) queues it once; bodies, signatures and times are
/// kept as given.
pub async fn enqueue_is_idempotent(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    let mut signed = item("a", "k1", "user:U1");
    signed.signature = Some("sig".into());
    assert_eq!(enqueue(&*s[0], &[signed.clone(), item("a", "k2", "user:U2")], T0).await, 2);
    assert_eq!(enqueue(&*s[1], &[signed, item("b", "k1", "user:U1")], T0 + 1).await, 1);
    let got = claim(&*s[0], "a", T0 + 5, 10).await;
    assert_eq!(keys(&got), ["k1", "k2"], "one row per key, oldest first");
    assert_eq!(got[0].signature.as_deref(), Some("sig"));
    assert_eq!(got[0].body, b"{\"k\":\"k1\"}");
    assert_eq!(got[0].enqueued_at, at(T0));
    assert_eq!(got[0].attempts, 0);
    assert_eq!(s[1].pending("a").await.unwrap(), 2);
    assert_eq!(s[1].pending("b").await.unwrap(), 1, "destinations are separate");
}

/// A pending item blocks its user's later items for that destination, nobody else's.
pub async fn order_is_kept_per_user(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    let items =
        [item("a", "1", "u1"), item("a", "2", "u1"), item("a", "3", "u2"), item("b", "4", "u1")];
    enqueue(&*s[0], &items, T0).await;
    let first = claim(&*s[0], "a", T0, 10).await;
    assert_eq!(keys(&first), ["1", "3"], "u1's second item waits for its first");
    assert!(
        claim(&*s[1], "a", T0, 10).await.is_empty(),
        "leased and blocked items are not claimed"
    );
    assert_eq!(
        keys(&claim(&*s[1], "b", T0, 10).await),
        ["4"],
        "another destination is not blocked"
    );
    assert!(s[1].complete(first[0].id, &first[0].lease, at(T0 + 1)).await.unwrap());
    assert_eq!(keys(&claim(&*s[1], "a", T0 + 1, 10).await), ["2"]);
    assert_eq!(s[0].pending("a").await.unwrap(), 2);
}

/// A retry releases the item until its time, counting attempts; it keeps blocking its user.
pub async fn retry_waits_and_keeps_blocking(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    enqueue(&*s[0], &[item("a", "1", "u1"), item("a", "2", "u1")], T0).await;
    let got = claim(&*s[0], "a", T0, 10).await;
    assert_eq!(keys(&got), ["1"]);
    assert!(s[1].retry(got[0].id, &got[0].lease, 1, at(T0 + 1000), "HTTP 503").await.unwrap());
    assert_eq!(s[0].next_due("a").await.unwrap(), Some(at(T0)), "item 2 is due, though blocked");
    assert!(claim(&*s[1], "a", T0 + 999, 10).await.is_empty(), "not before its retry time");
    let again = claim(&*s[0], "a", T0 + 1000, 10).await;
    assert_eq!(keys(&again), ["1"]);
    assert_eq!(again[0].attempts, 1);
    assert!(
        !s[1].retry(again[0].id, &got[0].lease, 2, at(T0), "stale").await.unwrap(),
        "an old lease cannot finish the item"
    );
}

/// A dead item leaves the line, is listed, and can be put back (at the back of its line).
pub async fn dead_letters_unblock_and_requeue(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    enqueue(&*s[0], &[item("a", "1", "u1"), item("a", "2", "u1")], T0).await;
    let got = claim(&*s[0], "a", T0, 10).await;
    assert!(s[1].dead_letter(got[0].id, &got[0].lease, 10, "HTTP 500", at(T0 + 1)).await.unwrap());
    let dead = s[0].dead_letters("a").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].key.as_str(), dead[0].attempts, dead[0].error.as_str()),
        ("1", 10, "HTTP 500")
    );
    let next = claim(&*s[1], "a", T0 + 1, 10).await;
    assert_eq!(keys(&next), ["2"], "a dead item no longer blocks its user");
    assert!(s[0].requeue_dead(dead[0].id, at(T0 + 2)).await.unwrap());
    assert!(!s[0].requeue_dead(dead[0].id, at(T0 + 2)).await.unwrap(), "requeued once");
    assert!(s[1].dead_letters("a").await.unwrap().is_empty());
    assert!(claim(&*s[0], "a", T0 + 2, 10).await.is_empty(), "the requeued item waits behind 2");
    assert!(s[0].complete(next[0].id, &next[0].lease, at(T0 + 3)).await.unwrap());
    let back = claim(&*s[1], "a", T0 + 3, 10).await;
    assert_eq!(keys(&back), ["1"]);
    assert_eq!(back[0].attempts, 0, "attempts start again");
    assert_eq!(enqueue(&*s[0], &[item("a", "1", "u1")], T0 + 4).await, 0, "its key is still known");
}

/// A crashed worker's lease runs out and the item is claimed again; the old lease is void.
pub async fn an_expired_lease_frees_the_item(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    enqueue(&*s[0], &[item("a", "1", "u1")], T0).await;
    let first = claim(&*s[0], "a", T0, 10).await;
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    assert_eq!(s[1].next_due("a").await.unwrap(), Some(at(T0 + lease_ms)));
    assert!(claim(&*s[1], "a", T0 + lease_ms - 1, 10).await.is_empty());
    let second = claim(&*s[1], "a", T0 + lease_ms, 10).await;
    assert_eq!(keys(&second), ["1"]);
    assert!(!s[0].complete(first[0].id, &first[0].lease, at(T0 + lease_ms)).await.unwrap());
    assert!(s[1].complete(second[0].id, &second[0].lease, at(T0 + lease_ms)).await.unwrap());
    assert_eq!(s[0].pending("a").await.unwrap(), 0);
    assert_eq!(s[0].next_due("a").await.unwrap(), None);
    assert_eq!(s[1].purge_delivered(at(T0 + lease_ms + 1)).await.unwrap(), 1);
    assert_eq!(enqueue(&*s[0], &[item("a", "1", "u1")], T0).await, 1, "a purged key is forgotten");
}

/// Workers racing on several handles never hold the same item, and each is delivered once.
pub async fn racing_claims_share_nothing(queues: &[Arc<dyn HubQueue>]) {
    let s = Handles::new(queues);
    let items: Vec<NewItem> =
        (0..40).map(|i| item("a", &format!("k{i:02}"), &format!("u{}", i % 8))).collect();
    enqueue(&*s[0], &items, T0).await;
    let mut tasks = Vec::new();
    for h in 0..4 {
        let q = Arc::clone(&s[h]);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for round in 0..40 {
                for i in claim(&*q, "a", T0 + round, 3).await {
                    assert!(q.complete(i.id, &i.lease, at(T0 + round)).await.unwrap());
                    got.push(i.key);
                }
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| panic!("a racing worker panicked: {e}")));
    }
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), claimed, "an item was claimed twice");
    let left = s[0].pending("a").await.unwrap();
    assert_eq!(claimed as u64 + left, 40, "items went missing");
    // Drain what is left: everything is deliverable.
    let mut round = 100;
    while s[0].pending("a").await.unwrap() > 0 {
        for i in claim(&*s[0], "a", T0 + round, 10).await {
            assert!(s[0].complete(i.id, &i.lease, at(T0 + round)).await.unwrap());
        }
        round += 1;
        assert!(round < 200, "the queue does not drain");
    }
}

/// Runs every check, each on a new queue from `factory`.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Arc<dyn HubQueue>>>,
{
    enqueue_is_idempotent(&factory().await).await;
    order_is_kept_per_user(&factory().await).await;
    retry_waits_and_keeps_blocking(&factory().await).await;
    dead_letters_unblock_and_requeue(&factory().await).await;
    an_expired_lease_frees_the_item(&factory().await).await;
    racing_claims_share_nothing(&factory().await).await;
}
