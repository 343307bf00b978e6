//! The retry decision: a pure function of what happened, so it can be tested as a table.

use std::time::Duration;

use rand::Rng;

use super::Backoff;

/// What one attempt ended with, as the caller's own policy classified it (LINE and ecforce
/// tell transient failures apart differently; the rest of the decision is shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// It worked: nothing to retry.
    Done,
    /// It failed for good (a 4xx, a request that must not be repeated): do not retry.
    Permanent,
    /// It failed in a way that may pass: retry after the server's `Retry-After` if it sent
    /// one, else after the back-off.
    Transient {
        /// The server's `Retry-After`, which wins over the back-off.
        retry_after: Option<Duration>,
    },
}

impl Verdict {
    /// A transient failure without `Retry-After`.
    pub const TRANSIENT: Self = Self::Transient { retry_after: None };
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Try again after waiting this long (a send with a retry key repeats the same key).
    RetryAfter(Duration),
    /// Do not try again.
    Stop(StopReason),
}

impl Decision {
    /// The wait before the next attempt, or `None` to stop.
    #[must_use]
    pub fn wait(self) -> Option<Duration> {
        match self {
            Self::RetryAfter(wait) => Some(wait),
            Self::Stop(_) => None,
        }
    }
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The attempt succeeded (for LINE: 2xx, or 409 "already accepted").
    Done,
    /// The failure is not transient, or no wait is defined for it.
    NotRetryable,
    /// The attempt budget is used up.
    AttemptsExhausted,
    /// Waiting again would pass the total retry time budget.
    DeadlineExceeded,
}

/// When a failed attempt is tried again: a [`Backoff`], an attempt budget and a total time
/// budget. [`decide`](Self::decide) is pure.
///
/// ```
/// use std::time::Duration;
/// use enishi::retry::{Backoff, Decision, RetryRule, StopReason, Verdict};
///
/// let s = Duration::from_secs;
/// let rule = RetryRule::new(Backoff::schedule([s(3), s(5), s(15)])).max_elapsed(s(600));
/// let mut rng = rand::rng();
/// assert_eq!(rule.decide(Verdict::TRANSIENT, 2, s(3), &mut rng), Decision::RetryAfter(s(5)));
/// let later = Verdict::Transient { retry_after: Some(s(7)) };
/// assert_eq!(rule.decide(later, 1, s(0), &mut rng), Decision::RetryAfter(s(7)));
/// let late = rule.decide(Verdict::TRANSIENT, 50, s(590), &mut rng);
/// assert_eq!(late, Decision::Stop(StopReason::DeadlineExceeded));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RetryRule {
    backoff: Backoff,
    max_attempts: u32,
    max_elapsed: Duration,
}

impl RetryRule {
    /// Waits by `backoff`, with no attempt or time limit until one is set.
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff, max_attempts: u32::MAX, max_elapsed: Duration::MAX }
    }

    /// The total number of attempts, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The total time budget, measured from the first attempt: no wait may end after it.
    pub fn max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = budget;
        self
    }

    /// The back-off.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The attempt budget.
    #[must_use]
    pub fn attempts_budget(&self) -> u32 {
        self.max_attempts
    }

    /// The total time budget.
    #[must_use]
    pub fn elapsed_budget(&self) -> Duration {
        self.max_elapsed
    }

    /// Decides what to do after `attempts` attempts (counting from 1) taking `elapsed` in
    /// total, the last of which ended with `verdict`; jitter is drawn from `rng`.
    ///
    /// Order: success and permanent failures stop; then the attempt budget; then the wait
    /// (`Retry-After`, else the back-off) must end within the time budget.
    #[must_use]
    pub fn decide(
        &self,
        verdict: Verdict,
        attempts: u32,
        elapsed: Duration,
        rng: &mut impl Rng,
    ) -> Decision {
        let retry_after = match verdict {
            Verdict::Done => return Decision::Stop(StopReason::Done),
            Verdict::Permanent => return Decision::Stop(StopReason::NotRetryable),
            Verdict::Transient { retry_after } => retry_after,
        };
        if attempts >= self.max_attempts {
            return Decision::Stop(StopReason::AttemptsExhausted);
        }
        let Some(wait) = retry_after.or_else(|| self.backoff.delay(attempts, rng)) else {
            return Decision::Stop(StopReason::NotRetryable);
        };
        if elapsed.saturating_add(wait) > self.max_elapsed {
            return Decision::Stop(StopReason::DeadlineExceeded);
        }
        Decision::RetryAfter(wait)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn rule_decision_table() {
        let s = Duration::from_secs;
        let rule =
            RetryRule::new(Backoff::schedule([s(1), s(2)])).max_attempts(4).max_elapsed(s(10));
        let later = |n| Verdict::Transient { retry_after: Some(s(n)) };
        use Decision::*;
        use StopReason::*;
        let table = [
            (Verdict::Done, 1, s(0), Stop(Done)),
            (Verdict::Permanent, 1, s(0), Stop(NotRetryable)),
            (Verdict::TRANSIENT, 1, s(0), RetryAfter(s(1))),
            (Verdict::TRANSIENT, 2, s(0), RetryAfter(s(2))),
            (Verdict::TRANSIENT, 3, s(0), RetryAfter(s(2))),
            (Verdict::TRANSIENT, 4, s(0), Stop(AttemptsExhausted)),
            (later(5), 1, s(0), RetryAfter(s(5))),
            (later(5), 1, s(5), RetryAfter(s(5))),
            (later(5), 1, s(6), Stop(DeadlineExceeded)),
            (later(5), 4, s(0), Stop(AttemptsExhausted)),
            (Verdict::TRANSIENT, 2, s(9), Stop(DeadlineExceeded)),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        for (i, (verdict, attempts, elapsed, want)) in table.into_iter().enumerate() {
            assert_eq!(rule.decide(verdict, attempts, elapsed, &mut rng), want, "row {i}");
        }
        let never = RetryRule::new(Backoff::schedule([]));
        assert_eq!(never.decide(Verdict::TRANSIENT, 1, s(0), &mut rng), Stop(NotRetryable));
        assert_eq!(Stop(Done).wait(), None);
        assert_eq!(RetryAfter(s(1)).wait(), Some(s(1)));
    }
}
