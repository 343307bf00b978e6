//! Observable progress of a running campaign.

use std::time::Duration;

use serde::Serialize;

use crate::campaign::batch::{CampaignState, JournalCounts};

/// A snapshot of a campaign's delivery, published by a running
/// [`Dispatcher`](super::Dispatcher) through [`Dispatcher::progress`](super::Dispatcher::progress).
///
/// Counts come from the journal (refreshed about once a second, so they include other
/// workers' sends) and are advanced locally between refreshes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// Recipients in all batches of the campaign.
    pub recipients: u64,
    /// Recipients in batches LINE accepted.
    pub sent: u64,
    /// Batches that failed for good.
    pub failed: u64,
    /// Batches pending or in flight.
    pub pending: u64,
    /// All batches of the campaign.
    pub batches: u64,
    /// Recipients sent per second since this run started (all workers).
    pub rate: f64,
    /// Requests this worker sent to LINE per second since this run started (retries and 409s
    /// included).
    pub requests_per_second: f64,
    /// Time until every pending recipient is sent at the current rate, when there is a rate.
    pub eta: Option<Duration>,
    /// How long this run has been going.
    pub elapsed: Duration,
    /// The campaign's run state as this worker last saw it.
    pub state: CampaignState,
}

impl Progress {
    /// Whether nothing is pending or in flight.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.pending == 0
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            recipients: 0,
            sent: 0,
            failed: 0,
            pending: 0,
            batches: 0,
            rate: 0.0,
            requests_per_second: 0.0,
            eta: None,
            elapsed: Duration::ZERO,
            state: CampaignState::Running,
        }
    }
}

/// Keeps the numbers behind [`Progress`] for one run.
#[derive(Debug)]
pub(crate) struct Tracker {
    counts: JournalCounts,
    sent_at_start: u64,
    requests: u64,
    state: CampaignState,
}

impl Tracker {
    pub(crate) fn new(counts: JournalCounts, state: CampaignState) -> Self {
        Self { sent_at_start: counts.recipients_sent, counts, requests: 0, state }
    }

    /// Replaces the local view with the journal's.
    pub(crate) fn refresh(&mut self, counts: JournalCounts) {
        self.counts = counts;
    }

    pub(crate) fn set_state(&mut self, state: CampaignState) {
        self.state = state;
    }

    pub(crate) fn requested(&mut self, requests: u64) {
        self.requests += requests;
    }

    pub(crate) fn sent(&mut self, recipients: u64) {
        self.counts.recipients_sent += recipients;
        self.counts.sent += 1;
        self.finish_one();
    }

    pub(crate) fn failed(&mut self) {
        self.counts.failed += 1;
        self.finish_one();
    }

    /// One batch left "pending or in flight" (which of the two is only known after a refresh).
    fn finish_one(&mut self) {
        if self.counts.in_flight > 0 {
            self.counts.in_flight -= 1;
        } else {
            self.counts.pending = self.counts.pending.saturating_sub(1);
        }
    }

    pub(crate) fn snapshot(&self, elapsed: Duration) -> Progress {
        let c = &self.counts;
        let secs = elapsed.as_secs_f64();
        let done = c.recipients_sent.saturating_sub(self.sent_at_start);
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let left = c.recipients.saturating_sub(c.recipients_sent);
        let pending = c.pending + c.in_flight;
        let eta = (rate > 0.0 && pending > 0).then(|| Duration::from_secs_f64(left as f64 / rate));
        Progress {
            recipients: c.recipients,
            sent: c.recipients_sent,
            failed: c.failed,
            pending,
            batches: c.batches(),
            rate,
            requests_per_second: if secs > 0.0 { self.requests as f64 / secs } else { 0.0 },
            eta,
            elapsed,
            state: self.state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_follow_what_this_run_sent() {
        let counts = JournalCounts {
            pending: 10,
            sent: 10,
            recipients: 2000,
            recipients_sent: 1000,
            ..JournalCounts::default()
        };
        let mut t = Tracker::new(counts, CampaignState::Running);
        let p = t.snapshot(Duration::from_secs(1));
        assert_eq!((p.rate, p.eta), (0.0, None));
        for _ in 0..5 {
            t.sent(100);
            t.requested(1);
        }
        let p = t.snapshot(Duration::from_secs(5));
        assert_eq!(p.sent, 1500);
        assert!((p.rate - 100.0).abs() < 1e-9);
        assert_eq!(p.eta, Some(Duration::from_secs(5)));
        assert!((p.requests_per_second - 1.0).abs() < 1e-9);
    }
}
