//! What happens to a claimed batch after a send: a pure function of the journal's attempt
//! count and what the send ended with, table-tested.

use std::time::Duration;

use rand::Rng;

use super::classify::{classify, pause_reason};
use crate::RequestId;
use crate::campaign::batch::{BatchOutcome, FailureKind, PauseReason};
use crate::line::{Accepted, LineError};
use crate::retry::{Decision, RetryRule, Verdict};

/// What a send ended with, as far as the batch's fate is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sent {
    /// The campaign stopped after the claim: nothing was sent.
    Halted,
    /// LINE accepted the batch (now, or before: a 409).
    Accepted { request_id: Option<RequestId>, already_accepted: bool },
    /// The campaign must pause (LINE's monthly quota is used up).
    Pause { reason: PauseReason },
    /// The shared rate limiter could not be reached: nothing reached LINE.
    LimiterDown,
    /// LINE (or the network) did not accept the batch.
    Failed { kind: FailureKind, status: Option<u16>, request_id: Option<RequestId>, error: String },
}

impl Sent {
    /// Reads a send's result.
    pub(super) fn from_result(result: Result<Accepted, LineError>) -> Self {
        match result {
            Ok(accepted) => Self::Accepted {
                request_id: accepted.effective_request_id().cloned(),
                already_accepted: accepted.already_accepted,
            },
            Err(error) => {
                if let Some(reason) = pause_reason(&error) {
                    return Self::Pause { reason };
                }
                if matches!(error, LineError::RateLimiter { .. }) {
                    return Self::LimiterDown;
                }
                Self::Failed {
                    kind: classify(&error),
                    status: error.status().map(|s| s.as_u16()),
                    request_id: error.request_id().cloned(),
                    error: crate::error::chain_message(&error),
                }
            }
        }
    }
}

/// What to do with the batch next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Record a final outcome (sent or failed).
    Complete(BatchOutcome),
    /// Back to pending, due again after `after`. `counted`: the claim was an attempt (a
    /// request reached LINE); otherwise the journal takes the attempt back.
    RetryLater { after: Duration, counted: bool },
    /// Back to pending at its own due time, the claim not counted (the campaign stopped).
    GiveBack,
    /// Back to pending now, and pause the campaign for this reason.
    Pause { reason: PauseReason },
}

/// Decides a batch's fate after its `attempts`-th claim (the journal's count, this claim
/// included) ended with `sent`. Retryable failures are retried by `rule` (its attempt budget is
/// the dispatcher's `max_attempts`); a limiter outage waits by the rule's back-off without
/// using an attempt, however long it lasts.
pub(super) fn step(rule: &RetryRule, attempts: u32, sent: Sent, rng: &mut impl Rng) -> Action {
    match sent {
        Sent::Halted => Action::GiveBack,
        Sent::Accepted { request_id, already_accepted } => {
            Action::Complete(BatchOutcome::Accepted { request_id, already_accepted })
        }
        Sent::Pause { reason } => Action::Pause { reason },
        Sent::LimiterDown => Action::RetryLater {
            after: rule.backoff().delay(attempts, rng).unwrap_or_default(),
            counted: false,
        },
        Sent::Failed { kind, status, request_id, error } => {
            let verdict = if kind == FailureKind::Retryable {
                Verdict::TRANSIENT
            } else {
                Verdict::Permanent
            };
            match rule.decide(verdict, attempts, Duration::ZERO, rng) {
                Decision::RetryAfter(after) => Action::RetryLater { after, counted: true },
                _ => Action::Complete(BatchOutcome::Failed { kind, status, request_id, error }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::retry::{Backoff, Jitter};

    fn failed(kind: FailureKind) -> Sent {
        Sent::Failed { kind, status: Some(500), request_id: None, error: "boom".into() }
    }

    fn final_failure(kind: FailureKind) -> Action {
        Action::Complete(BatchOutcome::Failed {
            kind,
            status: Some(500),
            request_id: None,
            error: "boom".into(),
        })
    }

    #[test]
    fn step_table() {
        let s = Duration::from_secs;
        // No jitter, so the waits are exact: 1 s doubling to at most 8 s, 4 attempts.
        let rule =
            RetryRule::new(Backoff::exponential(s(1), s(8)).jitter(Jitter::None)).max_attempts(4);
        let accepted = |already| Sent::Accepted { request_id: None, already_accepted: already };
        let sent_ok = |already| {
            Action::Complete(BatchOutcome::Accepted { request_id: None, already_accepted: already })
        };
        use FailureKind::*;
        let table: Vec<(Sent, u32, Action)> = vec![
            (Sent::Halted, 1, Action::GiveBack),
            (Sent::Halted, 4, Action::GiveBack),
            (accepted(false), 1, sent_ok(false)),
            (accepted(true), 3, sent_ok(true)),
            (
                Sent::Pause { reason: PauseReason::QuotaExhausted },
                1,
                Action::Pause { reason: PauseReason::QuotaExhausted },
            ),
            (Sent::LimiterDown, 1, Action::RetryLater { after: s(1), counted: false }),
            // An outage never fails the batch, even past the attempt budget.
            (Sent::LimiterDown, 9, Action::RetryLater { after: s(8), counted: false }),
            (failed(Retryable), 1, Action::RetryLater { after: s(1), counted: true }),
            (failed(Retryable), 2, Action::RetryLater { after: s(2), counted: true }),
            (failed(Retryable), 3, Action::RetryLater { after: s(4), counted: true }),
            (failed(Retryable), 4, final_failure(Retryable)),
            (failed(Rejected), 1, final_failure(Rejected)),
            (failed(InvalidRecipient), 1, final_failure(InvalidRecipient)),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        for (i, (sent, attempts, want)) in table.into_iter().enumerate() {
            assert_eq!(step(&rule, attempts, sent, &mut rng), want, "row {i}");
        }
    }

    #[test]
    fn retry_waits_are_jittered_by_the_injected_rng() {
        let rule =
            RetryRule::new(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8)))
                .max_attempts(10);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..5)
                .map(|a| step(&rule, a, failed(FailureKind::Retryable), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        for (a, action) in (1..5).zip(run(5)) {
            let Action::RetryLater { after, counted: true } = action else { panic!("{action:?}") };
            let step = Duration::from_secs(1 << (a - 1));
            assert!(after >= step / 2 && after <= step, "attempt {a}: {after:?}");
        }
    }
}
