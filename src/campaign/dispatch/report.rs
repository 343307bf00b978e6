//! The final report of a dispatcher run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::campaign::batch::{BatchOutcome, BatchRecord, BatchStatus, FailureKind};
use crate::{AggregationUnit, BatchId, CampaignId, RequestId};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Nothing is pending or in flight: every batch is sent, failed or cancelled.
    Completed,
    /// The campaign is paused (by an operator, or because LINE's monthly quota ran out).
    /// Resume it and run again to continue where it stopped.
    Paused {
        /// Why.
        reason: String,
    },
    /// The campaign was cancelled; pending batches will never be sent.
    Cancelled,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Completed => f.write_str("completed"),
            Self::Paused { reason } => write!(f, "paused: {reason}"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// A batch that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedBatch {
    /// The batch.
    pub batch: BatchId,
    /// How many recipients it held (for multicast, LINE rejects the whole request when one
    /// user ID is malformed, so all of them failed).
    pub recipients: u64,
    /// The classification.
    pub kind: FailureKind,
    /// HTTP status, if LINE answered.
    pub status: Option<u16>,
    /// LINE's request ID, if LINE answered (quote it when asking LINE).
    pub request_id: Option<RequestId>,
    /// What went wrong.
    pub error: String,
}

/// What this worker did in this run (the rest of the report covers the whole campaign).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunStats {
    /// The worker's name.
    pub worker: String,
    /// Batches this run got accepted.
    pub batches_sent: u64,
    /// Of those, batches LINE answered 409 for (accepted before, e.g. by a crashed run).
    pub already_accepted: u64,
    /// Batches this run failed for good.
    pub batches_failed: u64,
    /// Batches this run put back for a later attempt (retryable failures, pauses).
    pub released: u64,
    /// Send calls this run made (each may be several HTTP attempts inside the client).
    pub requests: u64,
    /// Wall time of the run, in seconds.
    pub elapsed_secs: f64,
}

/// The report of a [`Dispatcher::run`](super::Dispatcher::run), read back from the journal so
/// it covers every worker of the campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The campaign.
    pub campaign: CampaignId,
    /// How the run ended.
    pub status: RunStatus,
    /// Recipients in all batches.
    pub recipients: u64,
    /// All batches.
    pub batches: u64,
    /// Recipients LINE accepted the message for.
    pub sent: u64,
    /// Batches LINE accepted.
    pub batches_sent: u64,
    /// Sent batches whose acceptance LINE confirmed with a 409 (a resend after a crash or a
    /// lost answer: the message was not delivered twice).
    pub already_accepted: u64,
    /// Recipients not sent, by reason: `cancelled`, and `paused` for recipients still waiting
    /// when the campaign was paused. Planners may add their own exclusions
    /// ([`add_skipped`](Self::add_skipped)).
    pub skipped: BTreeMap<String, u64>,
    /// Recipients in failed batches.
    pub failed_recipients: u64,
    /// Every failed batch with its error.
    pub failed: Vec<FailedBatch>,
    /// LINE's request IDs of the accepted sends (the first accepted request's ID when LINE
    /// answered 409), in batch order.
    pub request_ids: Vec<RequestId>,
    /// The custom aggregation units the batches were tagged with: fetch open and click
    /// statistics for them later (`LineClient::aggregation_unit_statistics` or LINE's console).
    pub aggregation_units: Vec<AggregationUnit>,
    /// What this worker did.
    pub this_run: RunStats,
}

impl DeliveryReport {
    /// Builds the report of `campaign` from its journal records.
    pub(crate) fn from_records(
        campaign: CampaignId,
        status: RunStatus,
        records: &[BatchRecord],
        this_run: RunStats,
    ) -> Self {
        let mut report = Self {
            campaign,
            status,
            recipients: 0,
            batches: 0,
            sent: 0,
            batches_sent: 0,
            already_accepted: 0,
            skipped: BTreeMap::new(),
            failed_recipients: 0,
            failed: Vec::new(),
            request_ids: Vec::new(),
            aggregation_units: Vec::new(),
            this_run,
        };
        let mut units = BTreeSet::new();
        for r in records {
            let n = r.batch.recipients.len() as u64;
            report.recipients += n;
            report.batches += 1;
            if let Some(unit) = &r.batch.aggregation_unit {
                units.insert(unit.clone());
            }
            match (r.status, &r.outcome) {
                (BatchStatus::Sent, outcome) => {
                    report.sent += n;
                    report.batches_sent += 1;
                    if let Some(BatchOutcome::Accepted { request_id, already_accepted }) = outcome {
                        report.already_accepted += u64::from(*already_accepted);
                        report.request_ids.extend(request_id.iter().cloned());
                    }
                }
                (BatchStatus::Failed, outcome) => {
                    report.failed_recipients += n;
                    let failed = match outcome {
                        Some(BatchOutcome::Failed { kind, status, request_id, error }) => {
                            FailedBatch {
                                batch: r.batch.id.clone(),
                                recipients: n,
                                kind: *kind,
                                status: *status,
                                request_id: request_id.clone(),
                                error: error.clone(),
                            }
                        }
                        _ => FailedBatch {
                            batch: r.batch.id.clone(),
                            recipients: n,
                            kind: FailureKind::Rejected,
                            status: None,
                            request_id: None,
                            error: "failed without a recorded outcome".into(),
                        },
                    };
                    report.failed.push(failed);
                }
                (BatchStatus::Cancelled, _) => report.add_skipped("cancelled", n),
                (BatchStatus::Pending | BatchStatus::InFlight, _) => {
                    let reason = match report.status {
                        RunStatus::Paused { .. } => "paused",
                        RunStatus::Cancelled => "cancelled",
                        RunStatus::Completed => "not_sent_yet",
                    };
                    report.add_skipped(reason, n);
                }
            }
        }
        report.aggregation_units = units.into_iter().collect();
        report
    }

    /// Adds `count` recipients skipped for `reason` (e.g. a planner's frequency cap).
    pub fn add_skipped(&mut self, reason: impl Into<String>, count: u64) {
        *self.skipped.entry(reason.into()).or_default() += count;
    }

    /// Failed recipients by failure kind.
    #[must_use]
    pub fn failed_by_kind(&self) -> BTreeMap<FailureKind, u64> {
        let mut out = BTreeMap::new();
        for f in &self.failed {
            *out.entry(f.kind).or_default() += f.recipients;
        }
        out
    }
}

impl fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "campaign {}: {}", self.campaign, self.status)?;
        writeln!(f, "  recipients  {} in {} batches", self.recipients, self.batches)?;
        writeln!(
            f,
            "  sent        {} in {} batches ({} confirmed by LINE as accepted before)",
            self.sent, self.batches_sent, self.already_accepted
        )?;
        if self.skipped.is_empty() {
            writeln!(f, "  skipped     0")?;
        }
        for (reason, count) in &self.skipped {
            writeln!(f, "  skipped     {count} ({reason})")?;
        }
        writeln!(f, "  failed      {} in {} batches", self.failed_recipients, self.failed.len())?;
        for b in self.failed.iter().take(20) {
            write!(f, "    - {} [{:?}", b.batch, b.kind)?;
            if let Some(status) = b.status {
                write!(f, ", HTTP {status}")?;
            }
            if let Some(id) = &b.request_id {
                write!(f, ", request id {id}")?;
            }
            writeln!(f, "]: {}", b.error)?;
        }
        if self.failed.len() > 20 {
            writeln!(f, "    ... and {} more", self.failed.len() - 20)?;
        }
        let units: Vec<&str> = self.aggregation_units.iter().map(AggregationUnit::as_str).collect();
        writeln!(
            f,
            "  aggregation units: {}",
            if units.is_empty() { "none".to_owned() } else { units.join(", ") }
        )?;
        match self.request_ids.first() {
            Some(first) => {
                writeln!(f, "  LINE request ids: {} (first {first})", self.request_ids.len())?
            }
            None => writeln!(f, "  LINE request ids: none")?,
        }
        let r = &self.this_run;
        write!(
            f,
            "  this run ({}): {} batches sent ({} already accepted), {} failed, {} released, {} requests in {:.1} s",
            r.worker,
            r.batches_sent,
            r.already_accepted,
            r.batches_failed,
            r.released,
            r.requests,
            r.elapsed_secs
        )
    }
}
