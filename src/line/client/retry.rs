//! LINE's retry policy: which answers are transient, over the crate's shared
//! [`RetryRule`](crate::retry::RetryRule).

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use rand::Rng;

use crate::retry::{Backoff, Decision, RetryRule, Verdict};

/// What one attempt ended with, as far as the retry decision is concerned.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum CallOutcome<'a> {
    /// LINE answered with this status (2xx included).
    Answer {
        /// The status.
        status: StatusCode,
        /// The response headers (`Retry-After` is honoured).
        headers: &'a HeaderMap,
        /// LINE's error `message`, which tells a rate-limit 429 from a quota 429.
        message: &'a str,
    },
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke before an answer arrived.
    Connection,
}

/// When and how often a failed call is sent again.
///
/// Only idempotent calls are ever retried: GETs, and the sends that carry an
/// `X-Line-Retry-Key` (push, multicast, narrowcast, broadcast), every attempt with the same key.
/// Back-off is the crate's shared [`Backoff::exponential`]: capped exponential with "equal
/// jitter" (a random wait between half and all of the exponential step), bounded by both
/// [`max_attempts`](Self::max_attempts) and [`max_elapsed`](Self::max_elapsed); a
/// `Retry-After` header (seconds or an HTTP date) wins over the computed wait.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
    retry_rate_limited: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, 200 ms doubling to at most 10 s, within 60 s in total, rate-limit 429s retried.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
            retry_rate_limited: true,
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn never() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The total number of attempts, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the second attempt; it doubles for each further attempt.
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// The longest single wait.
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// The total time budget, measured from the first attempt: no retry starts after it.
    pub fn max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = budget;
        self
    }

    /// Whether a rate-limit 429 is retried (default `true`). A monthly-quota 429 never is.
    pub fn retry_rate_limited(mut self, retry: bool) -> Self {
        self.retry_rate_limited = retry;
        self
    }

    /// Decides what to do after `attempts` attempts taking `elapsed` in total, using the
    /// thread-local RNG for jitter. See [`decide_with_rng`](Self::decide_with_rng).
    #[must_use]
    pub fn decide(&self, outcome: CallOutcome<'_>, attempts: u32, elapsed: Duration) -> Decision {
        self.decide_with_rng(outcome, attempts, elapsed, &mut rand::rng())
    }

    /// Decides what to do after `attempts` attempts taking `elapsed` in total, drawing jitter
    /// from `rng` (inject a seeded RNG in tests).
    #[must_use]
    pub fn decide_with_rng(
        &self,
        outcome: CallOutcome<'_>,
        attempts: u32,
        elapsed: Duration,
        rng: &mut impl Rng,
    ) -> Decision {
        self.rule().decide(self.verdict(outcome), attempts, elapsed, rng)
    }

    /// The total number of attempts, the first included.
    #[must_use]
    pub fn attempts_budget(&self) -> u32 {
        self.max_attempts
    }

    /// The total time budget: no retry starts after it (see [`max_elapsed`](Self::max_elapsed)).
    #[must_use]
    pub fn elapsed_budget(&self) -> Duration {
        self.max_elapsed
    }

    /// The shared rule this policy applies.
    fn rule(&self) -> RetryRule {
        RetryRule::new(Backoff::exponential(self.initial_backoff, self.max_backoff))
            .max_attempts(self.max_attempts)
            .max_elapsed(self.max_elapsed)
    }

    /// Which outcomes LINE may answer differently next time.
    fn verdict(&self, outcome: CallOutcome<'_>) -> Verdict {
        match outcome {
            CallOutcome::Answer { status, headers, message } => {
                if status.is_success() || status == StatusCode::CONFLICT {
                    return Verdict::Done;
                }
                let transient = status.is_server_error()
                    || (status == StatusCode::TOO_MANY_REQUESTS
                        && self.retry_rate_limited
                        && !message.contains("monthly limit"));
                if transient {
                    Verdict::Transient { retry_after: retry_after(headers) }
                } else {
                    Verdict::Permanent
                }
            }
            CallOutcome::Timeout | CallOutcome::Connection => Verdict::TRANSIENT,
        }
    }
}

/// `Retry-After` (LINE documents none; proxies in front of it may send one).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::retry::retry_after(headers, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::retry::StopReason;

    fn answer<'a>(status: u16, headers: &'a HeaderMap, message: &'a str) -> CallOutcome<'a> {
        CallOutcome::Answer { status: StatusCode::from_u16(status).unwrap(), headers, message }
    }

    #[test]
    fn decision_table() {
        let policy = RetryPolicy::default();
        let none = HeaderMap::new();
        let mut later = HeaderMap::new();
        later.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        let rate = "The API rate limit has been exceeded. Try again later.";
        let quota = "You have reached your monthly limit.";
        let s = Duration::from_secs;
        use Decision::*;
        use StopReason::*;
        // (outcome, attempts so far, elapsed) -> expected decision (None = any retry)
        let table: Vec<(CallOutcome<'_>, u32, Duration, Option<Decision>)> = vec![
            (answer(200, &none, ""), 1, s(0), Some(Stop(Done))),
            (answer(202, &none, ""), 1, s(0), Some(Stop(Done))),
            (answer(409, &none, "The retry key is already accepted"), 2, s(0), Some(Stop(Done))),
            (answer(400, &none, "Invalid reply token"), 1, s(0), Some(Stop(NotRetryable))),
            (answer(401, &none, ""), 1, s(0), Some(Stop(NotRetryable))),
            (answer(404, &none, "Not found"), 1, s(0), Some(Stop(NotRetryable))),
            (answer(429, &none, quota), 1, s(0), Some(Stop(NotRetryable))),
            (answer(429, &none, rate), 1, s(0), None),
            (answer(429, &later, rate), 1, s(0), Some(RetryAfter(s(3)))),
            (answer(500, &none, ""), 1, s(0), None),
            (answer(503, &later, ""), 2, s(0), Some(RetryAfter(s(3)))),
            (CallOutcome::Timeout, 1, s(0), None),
            (CallOutcome::Connection, 1, s(0), None),
            (answer(500, &none, ""), 5, s(0), Some(Stop(AttemptsExhausted))),
            (CallOutcome::Timeout, 5, s(0), Some(Stop(AttemptsExhausted))),
            (answer(500, &later, ""), 2, s(58), Some(Stop(DeadlineExceeded))),
        ];
        let mut rng = StdRng::seed_from_u64(7);
        for (i, (outcome, attempts, elapsed, expected)) in table.into_iter().enumerate() {
            let got = policy.decide_with_rng(outcome, attempts, elapsed, &mut rng);
            match expected {
                Some(expected) => assert_eq!(got, expected, "row {i}"),
                None => assert!(matches!(got, RetryAfter(_)), "row {i}: {got:?}"),
            }
        }
    }

    #[test]
    fn quota_429_is_retried_never_and_rate_limit_429_only_when_enabled() {
        let none = HeaderMap::new();
        let rate = "The API rate limit has been exceeded. Try again later.";
        let policy = RetryPolicy::default().retry_rate_limited(false);
        let got = policy.decide(answer(429, &none, rate), 1, Duration::ZERO);
        assert_eq!(got, Decision::Stop(StopReason::NotRetryable));
    }

    #[test]
    fn backoff_is_the_shared_exponential_one() {
        let policy = RetryPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_secs(1));
        let shared = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
        for attempts in 1..5 {
            let mut a = StdRng::seed_from_u64(u64::from(attempts));
            let mut b = a.clone();
            let got =
                policy.decide_with_rng(CallOutcome::Timeout, attempts, Duration::ZERO, &mut a);
            assert_eq!(got.wait(), shared.delay(attempts, &mut b), "attempt {attempts}");
        }
    }

    #[test]
    fn retry_after_may_be_an_http_date() {
        let mut headers = HeaderMap::new();
        let soon = chrono::Utc::now() + chrono::TimeDelta::hours(1);
        headers.insert(http::header::RETRY_AFTER, soon.to_rfc2822().parse().unwrap());
        let Decision::RetryAfter(wait) = RetryPolicy::default()
            .max_elapsed(Duration::from_secs(7200))
            .decide(answer(503, &headers, ""), 1, Duration::ZERO)
        else {
            panic!("expected a retry");
        };
        assert!(wait > Duration::from_secs(3000), "{wait:?}");
    }

    #[test]
    fn never_stops_after_the_first_attempt() {
        let got = RetryPolicy::never().decide(CallOutcome::Timeout, 1, Duration::ZERO);
        assert_eq!(got, Decision::Stop(StopReason::AttemptsExhausted));
    }
}
