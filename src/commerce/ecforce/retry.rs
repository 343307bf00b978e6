//! When the ecforce client waits and tries again: a small, pure table of decisions.
//!
//! ecforce's limits are its own, not LINE's: it answers 429 without `Retry-After` in practice,
//! and practitioners wait 3 s, 5 s, then 15 s between tries. A sync must outlast minutes of
//! 429s without skipping a record, so the default keeps trying (every 15 s after the first
//! two waits) for up to ten minutes. A 429 means nothing was processed, so even a points
//! `POST` is retried on it; a 5xx or a timeout after sending may have been processed, so only
//! idempotent requests are retried on those.

use std::time::Duration;

use chrono::Utc;
use http::{HeaderMap, StatusCode};

use crate::retry::{Backoff, RetryRule, Verdict};

/// What came back from one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attempt {
    /// An HTTP answer with this status.
    Status(StatusCode),
    /// The connection was never made: nothing reached ecforce.
    NotConnected,
    /// The request may have reached ecforce but no answer came (timeout, reset).
    NoAnswer,
}

/// The ecforce client's retry policy: two fixed schedules over the crate's shared
/// [`RetryRule`] (one for 429s, one for 5xx and lost connections) and one time budget.
/// [`decide`](Self::decide) is pure and table-tested.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EcforceRetry {
    /// 429s: no attempt limit, only the time budget.
    rate_limited: RetryRule,
    /// 5xx and lost connections.
    errors: RetryRule,
    max_elapsed: Duration,
    max_retry_after: Duration,
}

impl Default for EcforceRetry {
    /// 429: wait 3 s, 5 s, then 15 s each time, for up to 10 minutes; 5xx and lost answers:
    /// 1 s, 3 s, 5 s, 15 s, at most 6 attempts; a `Retry-After` up to 5 minutes is honoured.
    fn default() -> Self {
        let max_elapsed = secs(600);
        Self {
            rate_limited: RetryRule::new(Backoff::schedule([secs(3), secs(5), secs(15)]))
                .max_elapsed(max_elapsed),
            errors: RetryRule::new(Backoff::schedule([secs(1), secs(3), secs(5), secs(15)]))
                .max_attempts(6)
                .max_elapsed(max_elapsed),
            max_elapsed,
            max_retry_after: secs(300),
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl EcforceRetry {
    /// Never retries.
    pub fn never() -> Self {
        Self::default().max_error_attempts(1).max_elapsed(Duration::ZERO)
    }

    /// The waits after successive 429s without `Retry-After`; the last one repeats.
    /// An empty list means 429s are not retried.
    pub fn rate_limit_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.rate_limited = RetryRule::new(Backoff::schedule(delays)).max_elapsed(self.max_elapsed);
        self
    }

    /// The waits after successive 5xx answers or lost connections; the last one repeats.
    pub fn error_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.errors = RetryRule::new(Backoff::schedule(delays))
            .max_attempts(self.errors.attempts_budget())
            .max_elapsed(self.max_elapsed);
        self
    }

    /// At most this many attempts for one request failing with 5xx or a lost connection.
    pub fn max_error_attempts(mut self, attempts: u32) -> Self {
        self.errors = self.errors.max_attempts(attempts);
        self
    }

    /// Stop retrying once one request has been tried for this long (default 10 minutes).
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.max_elapsed = limit;
        self.rate_limited = self.rate_limited.max_elapsed(limit);
        self.errors = self.errors.max_elapsed(limit);
        self
    }

    /// The longest `Retry-After` waited for (longer ones end the request as rate limited).
    pub fn max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = limit;
        self
    }

    /// How long to wait before attempt `attempt + 1`, or `None` to give up. `attempt` counts
    /// from 1; `elapsed` is the time since the first attempt; `idempotent` says whether the
    /// request may be resent after it possibly reached ecforce.
    #[must_use]
    pub fn decide(
        &self,
        outcome: Attempt,
        headers: Option<&HeaderMap>,
        attempt: u32,
        elapsed: Duration,
        idempotent: bool,
    ) -> Option<Duration> {
        let (rule, retry_after) = match outcome {
            Attempt::Status(StatusCode::TOO_MANY_REQUESTS) => {
                let wait = headers.and_then(|h| crate::retry::retry_after(h, Utc::now()));
                if wait.is_some_and(|wait| wait > self.max_retry_after) {
                    return None;
                }
                (&self.rate_limited, wait)
            }
            Attempt::Status(status) if status.is_server_error() && idempotent => {
                (&self.errors, None)
            }
            Attempt::NoAnswer if idempotent => (&self.errors, None),
            Attempt::NotConnected => (&self.errors, None),
            _ => return None,
        };
        // Schedules carry no jitter: the RNG is never drawn from.
        rule.decide(Verdict::Transient { retry_after }, attempt, elapsed, &mut rand::rng()).wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
        h
    }

    #[test]
    fn ecforce_retry_decision_table() {
        let p = EcforceRetry::default();
        let none = HeaderMap::new();
        let s429 = Attempt::Status(StatusCode::TOO_MANY_REQUESTS);
        let s503 = Attempt::Status(StatusCode::SERVICE_UNAVAILABLE);
        let s422 = Attempt::Status(StatusCode::UNPROCESSABLE_ENTITY);
        let zero = Duration::ZERO;
        type Case<'a> = (Attempt, Option<&'a HeaderMap>, u32, Duration, bool, Option<u64>);
        let cases: &[Case<'_>] = &[
            (s429, Some(&none), 1, zero, true, Some(3)),
            (s429, Some(&none), 2, zero, true, Some(5)),
            (s429, Some(&none), 3, zero, true, Some(15)),
            (s429, Some(&none), 40, secs(500), true, Some(15)),
            // A 429 processed nothing: a POST is retried too.
            (s429, Some(&none), 1, zero, false, Some(3)),
            (s429, Some(&with_retry_after("7")), 1, zero, false, Some(7)),
            (s429, Some(&with_retry_after("3600")), 1, zero, true, None),
            // Out of time.
            (s429, Some(&none), 50, secs(590), true, None),
            (s503, None, 1, zero, true, Some(1)),
            (s503, None, 2, zero, true, Some(3)),
            (s503, None, 6, zero, true, None),
            (s503, None, 1, zero, false, None),
            (Attempt::NoAnswer, None, 1, zero, true, Some(1)),
            (Attempt::NoAnswer, None, 1, zero, false, None),
            (Attempt::NotConnected, None, 1, zero, false, Some(1)),
            (s422, None, 1, zero, true, None),
            (Attempt::Status(StatusCode::OK), None, 1, zero, true, None),
        ];
        for (k, (outcome, headers, attempt, elapsed, idempotent, want)) in cases.iter().enumerate()
        {
            let got = p.decide(*outcome, *headers, *attempt, *elapsed, *idempotent);
            assert_eq!(got, want.map(secs), "case {k}: {outcome:?} attempt {attempt}");
        }
        assert_eq!(EcforceRetry::never().decide(s429, None, 1, zero, true), None);
        let fast = EcforceRetry::default().rate_limit_delays([Duration::from_millis(5)]);
        assert_eq!(fast.decide(s429, None, 9, zero, true), Some(Duration::from_millis(5)));
    }
}
