//! The conformance suite every [`OptOutStore`] runs (feature `testkit`).
//!
//! Each check takes handles onto one new, empty store and panics with a message saying what
//! the store got wrong. [`run_all`] runs them all, each on a store from a factory, so a host
//! checks its own store with one call:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::channel::{MemoryOptOuts, OptOutStore};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::channel::conformance::run_all(|| async {
//!     // Two handles onto one store: what one records, the other reads.
//!     let store = Arc::new(MemoryOptOuts::new()) as Arc<dyn OptOutStore>;
//!     vec![Arc::clone(&store), store]
//! })
//! .await;
//! # }
//! ```
//!
//! The checks are public one by one too (the crate's `tests/it/channels/optout_store.rs`
//! runs every one against the memory, SQLite and PostgreSQL stores). The check that races
//! spawns tokio tasks: run it on a multi-threaded runtime to make the race real. That an
//! opt-out survives a restart is the store's own test (reopen the file, reconnect).
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::{ChannelKind, OptOut, OptOutStore};
use crate::CustomerId;
use crate::conformance::Handles;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

/// A new store holds no opt-out; a recorded one is seen through every handle, for that
/// customer and that channel only.
pub async fn opt_out_is_per_customer_and_channel(stores: &[Arc<dyn OptOutStore>]) {
    let s = Handles::new(stores);
    assert!(s[0].all().await.unwrap().is_empty(), "a new store must hold no opt-out");
    assert!(!s[0].is_opted_out(&cust(1), ChannelKind::Email).await.unwrap());
    s[0].opt_out(&cust(1), ChannelKind::Email, t0()).await.unwrap();
    for (i, h) in s.iter().enumerate() {
        assert!(
            h.is_opted_out(&cust(1), ChannelKind::Email).await.unwrap(),
            "handle {i} must see the opt-out recorded through handle 0"
        );
        for other in [ChannelKind::Line, ChannelKind::Pnp, ChannelKind::Sms] {
            assert!(
                !h.is_opted_out(&cust(1), other).await.unwrap(),
                "an e-mail opt-out must not opt the customer out of {other}"
            );
        }
        assert!(
            !h.is_opted_out(&cust(2), ChannelKind::Email).await.unwrap(),
            "one customer's opt-out must not opt another out"
        );
    }
}

/// Recording an opt-out twice keeps the first time, whichever handle records it.
pub async fn recording_twice_keeps_the_first_time(stores: &[Arc<dyn OptOutStore>]) {
    let s = Handles::new(stores);
    s[0].opt_out(&cust(1), ChannelKind::Sms, t0()).await.unwrap();
    s[1].opt_out(&cust(1), ChannelKind::Sms, t0() + secs(60)).await.unwrap();
    s[1].opt_out(&cust(1), ChannelKind::Sms, t0() - secs(60)).await.unwrap();
    let all = s[0].all().await.unwrap();
    assert_eq!(
        all,
        vec![OptOut { customer: cust(1), channel: ChannelKind::Sms, at: t0() }],
        "recording an opt-out again must keep the first time and add no row"
    );
}

/// Every opt-out is listed once, by time, then customer, then channel (in
/// [`ChannelKind::ALL`] order), with its time to the microsecond.
pub async fn all_lists_in_order(stores: &[Arc<dyn OptOutStore>]) {
    let s = Handles::new(stores);
    let late = t0() + secs(30) + chrono::Duration::microseconds(123_456);
    s[0].opt_out(&cust(2), ChannelKind::Sms, late).await.unwrap();
    s[1].opt_out(&cust(2), ChannelKind::Line, late).await.unwrap();
    s[0].opt_out(&cust(3), ChannelKind::Email, t0()).await.unwrap();
    s[1].opt_out(&cust(1), ChannelKind::Pnp, late).await.unwrap();
    let got: Vec<(String, ChannelKind, DateTime<Utc>)> = s[0]
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.customer.as_str().to_owned(), o.channel, o.at))
        .collect();
    let want = vec![
        ("C-3".to_owned(), ChannelKind::Email, t0()),
        ("C-1".to_owned(), ChannelKind::Pnp, late),
        ("C-2".to_owned(), ChannelKind::Line, late),
        ("C-2".to_owned(), ChannelKind::Sms, late),
    ];
    assert_eq!(got, want, "all() must list every opt-out by time, customer, channel");
}

/// Customer IDs with Japanese text and punctuation round-trip unchanged.
pub async fn customer_ids_round_trip(stores: &[Arc<dyn OptOutStore>]) {
    let s = Handles::new(stores);
    let odd = CustomerId::new("顧客-'; DROP TABLE x;--").unwrap();
    s[0].opt_out(&odd, ChannelKind::Line, t0()).await.unwrap();
    assert!(s[1].is_opted_out(&odd, ChannelKind::Line).await.unwrap());
    let all = s[1].all().await.unwrap();
    assert_eq!(all.len(), 1, "one opt-out recorded, {} listed", all.len());
    assert_eq!(all[0].customer, odd, "the customer ID must round-trip unchanged");
}

/// Many handles recording the same opt-out at once end with one row, at one of the times
/// recorded, and no error.
pub async fn concurrent_recording_is_one_row(stores: &[Arc<dyn OptOutStore>]) {
    let s = Handles::new(stores);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let h = Arc::clone(&s[i]);
            tokio::spawn(async move {
                h.opt_out(&cust(9), ChannelKind::Email, t0() + secs(i64::try_from(i).unwrap()))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("a concurrent opt-out must not fail");
    }
    let all = s[0].all().await.unwrap();
    assert_eq!(all.len(), 1, "concurrent opt-outs must leave one row, got {all:?}");
    assert!(
        all[0].at >= t0() && all[0].at < t0() + secs(8),
        "the kept time must be one of those recorded, got {}",
        all[0].at
    );
}

/// Every check, each on a new store from `new_store` (handles onto one store).
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn OptOutStore>>> + Send,
{
    opt_out_is_per_customer_and_channel(&new_store().await).await;
    recording_twice_keeps_the_first_time(&new_store().await).await;
    all_lists_in_order(&new_store().await).await;
    customer_ids_round_trip(&new_store().await).await;
    concurrent_recording_is_one_row(&new_store().await).await;
}
