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

/// The ecforce client's retry policy. [`decide`](Self::decide) is pure and table-tested.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EcforceRetry {
    rate_limit_delays: Vec<Duration>,
    error_delays: Vec<Duration>,
    max_error_attempts: u32,
    max_elapsed: Duration,
    max_retry_after: Duration,
}

impl Default for EcforceRetry {
    /// 429: wait 3 s, 5 s, then 15 s each time, for up to 10 minutes; 5xx and lost answers:
    /// 1 s, 3 s, 5 s, 15 s, at most 6 attempts; a `Retry-After` up to 5 minutes is honoured.
    fn default() -> Self {
        Self {
            rate_limit_delays: vec![secs(3), secs(5), secs(15)],
            error_delays: vec![secs(1), secs(3), secs(5), secs(15)],
            max_error_attempts: 6,
            max_elapsed: secs(600),
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
        Self { max_error_attempts: 1, max_elapsed: Duration::ZERO, ..Self::default() }
    }

    /// The waits after successive 429s without `Retry-After`; the last one repeats.
    /// An empty list means 429s are not retried.
    pub fn rate_limit_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.rate_limit_delays = delays.into_iter().collect();
        self
    }

    /// The waits after successive 5xx answers or lost connections; the last one repeats.
    pub fn error_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.error_delays = delays.into_iter().collect();
        self
    }

    /// At most this many attempts for one request failing with 5xx or a lost connection.
    pub fn max_error_attempts(mut self, attempts: u32) -> Self {
        self.max_error_attempts = attempts.max(1);
        self
    }

    /// Stop retrying once one request has been tried for this long (default 10 minutes).
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.max_elapsed = limit;
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
        let nth = |delays: &[Duration]| {
            let k = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
            delays.get(k).or(delays.last()).copied()
        };
        let wait = match outcome {
            Attempt::Status(StatusCode::TOO_MANY_REQUESTS) => match headers.and_then(retry_after) {
                Some(wait) if wait > self.max_retry_after => return None,
                Some(wait) => wait,
                None => nth(&self.rate_limit_delays)?,
            },
            Attempt::Status(status) if status.is_server_error() && idempotent => {
                if attempt >= self.max_error_attempts {
                    return None;
                }
                nth(&self.error_delays)?
            }
            Attempt::NoAnswer if idempotent => {
                if attempt >= self.max_error_attempts {
                    return None;
                }
                nth(&self.error_delays)?
            }
            Attempt::NotConnected => {
                if attempt >= self.max_error_attempts {
                    return None;
                }
                nth(&self.error_delays)?
            }
            _ => return None,
        };
        (elapsed + wait <= self.max_elapsed).then_some(wait)
    }
}

/// `Retry-After` as seconds or an HTTP date.
#[must_use]
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(n) = value.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or(Duration::ZERO))
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

    #[test]
    fn ecforce_retry_after_http_date() {
        let soon = (Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let wait = retry_after(&with_retry_after(&soon)).unwrap();
        assert!(wait <= secs(30) && wait >= secs(28), "{wait:?}");
        assert_eq!(retry_after(&with_retry_after("soon")), None);
    }
}
