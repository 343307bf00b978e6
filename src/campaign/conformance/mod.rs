//! The conformance suites of the campaign stores (feature `testkit`): [`journal`] for every
//! [`DeliveryJournal`](super::DeliveryJournal), [`clicks`] for every
//! [`ClickStore`](super::ClickStore), [`coupons`] for every [`CouponPool`](super::CouponPool).
//!
//! enishi runs them against its memory, SQLite and PostgreSQL stores (the crate's
//! `tests/it/campaign/journal.rs` and `measure.rs`); a host runs them against its own store
//! with one call to `run_all`, or check by check to report each as its own test. Each check
//! panics with a message saying what the store got wrong. Checks that race spawn tokio tasks:
//! run them on a multi-threaded runtime to make the races real.

pub mod clicks;
pub mod coupons;
pub mod journal;
