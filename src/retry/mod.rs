//! Retry and pacing plumbing shared by every HTTP caller of the crate: the LINE client
//! ([`crate::line::RetryPolicy`]), the ecforce client (`EcforceRetry`), the campaign
//! dispatcher and the link write-back.
//!
//! Everything here is pure (no I/O, no timers, no tokio): callers pass the time and the RNG,
//! so every decision can be tested as a table and every jittered wait reproduced with a seeded
//! RNG.
//!
//! - [`RetryRule`]: what to do after an attempt ([`Decision`]), given what it ended with
//!   ([`Verdict`]), how many attempts were made and how long they took.
//! - [`Backoff`]: the one back-off: capped exponential or a fixed schedule, with "equal
//!   jitter" drawn from an injected RNG.
//! - [`retry_after`] / [`parse_retry_after`]: the `Retry-After` header (seconds or an HTTP date).
//! - [`RateLimit`] and [`TokenBucket`]: client-side pacing.

mod backoff;
mod bucket;
mod retry_after;
mod rule;

pub use backoff::{Backoff, Jitter};
pub use bucket::{RateLimit, TokenBucket};
pub use retry_after::{parse_retry_after, retry_after};
pub use rule::{Decision, RetryRule, StopReason, Verdict};
