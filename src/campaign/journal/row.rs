//! The row shape the SQL journals share: how a batch is written to columns and read back.
//!
//! Times are stored as microseconds since the Unix epoch (PostgreSQL's own precision), so
//! both databases order and compare them the same way; recipients, messages, outcomes and
//! campaign states are JSON text.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Claimed, JournalError};
use crate::campaign::batch::{
    Batch, BatchFallback, BatchOutcome, BatchRecipient, BatchRecord, BatchStatus, CampaignState,
    SendRecord, Transport,
};
use crate::line::message::Message;
use crate::{AggregationUnit, BatchId, CampaignId, RetryKey};

/// The columns a full batch row is read from, in [`RawRow`] order.
pub(super) const COLUMNS: &str = "id, campaign, transport, recipients, messages, retry_key, \
     not_before_us, arm, aggregation_unit, status, attempts, outcome, updated_at_us";

/// A batch ready to be bound to an `INSERT`.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) id: BatchId,
    pub(super) campaign: String,
    pub(super) transport: &'static str,
    pub(super) recipients: String,
    pub(super) messages: String,
    pub(super) retry_key: String,
    pub(super) not_before_us: i64,
    pub(super) arm: Option<String>,
    pub(super) aggregation_unit: Option<String>,
    pub(super) recipient_count: i64,
}

/// The text recipients are stored (and compared for conflicts) as.
pub(super) fn recipients_json(r: &[BatchRecipient]) -> Result<String, JournalError> {
    serde_json::to_string(r).map_err(|e| JournalError::storage("encoding recipients", e))
}

/// The `messages` column: the message list as a JSON array, or, for a batch with send-time
/// fallbacks, `{"messages": [...], "fallbacks": [...]}` (so older rows and fallback-free
/// batches keep the plain array and no migration is needed).
#[derive(Serialize, Deserialize)]
struct WithFallbacks {
    messages: Vec<Message>,
    fallbacks: Vec<BatchFallback>,
}

fn messages_json(b: &Batch) -> Result<String, JournalError> {
    let text = if b.fallbacks.is_empty() {
        serde_json::to_string(&b.messages)
    } else {
        serde_json::to_string(&WithFallbacks {
            messages: b.messages.clone(),
            fallbacks: b.fallbacks.clone(),
        })
    };
    text.map_err(|e| JournalError::storage("encoding messages", e))
}

fn messages(json: &str) -> Result<(Vec<Message>, Vec<BatchFallback>), JournalError> {
    match serde_json::from_str(json).map_err(|e| corrupt("message list", e))? {
        Stored::Plain(messages) => Ok((messages, Vec::new())),
        Stored::WithFallbacks(w) => Ok((w.messages, w.fallbacks)),
    }
}

/// Either shape of the `messages` column.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Plain(Vec<Message>),
    WithFallbacks(WithFallbacks),
}

pub(super) fn encode(b: &Batch) -> Result<Encoded, JournalError> {
    Ok(Encoded {
        id: b.id.clone(),
        campaign: b.campaign.as_str().to_owned(),
        transport: b.transport.as_str(),
        recipients: recipients_json(&b.recipients)?,
        messages: messages_json(b)?,
        retry_key: b.retry_key.as_str().to_owned(),
        not_before_us: micros(b.not_before),
        arm: b.arm.clone(),
        aggregation_unit: b.aggregation_unit.as_ref().map(|u| u.as_str().to_owned()),
        recipient_count: i64::try_from(b.recipients.len()).unwrap_or(i64::MAX),
    })
}

/// Microseconds since the epoch (chrono's whole range fits in an `i64`).
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn from_micros(us: i64, what: &'static str) -> Result<DateTime<Utc>, JournalError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| JournalError::Corrupt { what, message: format!("{us} µs is out of range") })
}

/// When a lease taken at `now` runs out (saturating: a huge lease never overflows).
pub(super) fn lease_end_us(now: DateTime<Utc>, lease: std::time::Duration) -> i64 {
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    micros(now).saturating_add(lease_us)
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt { what, message: e.to_string() }
}

pub(super) fn status(s: &str) -> Result<BatchStatus, JournalError> {
    BatchStatus::parse(s).ok_or_else(|| corrupt("batch status", format!("unknown status {s:?}")))
}

pub(super) fn recipients(json: &str) -> Result<Vec<BatchRecipient>, JournalError> {
    serde_json::from_str(json).map_err(|e| corrupt("recipient list", e))
}

pub(super) fn campaign(s: String) -> Result<CampaignId, JournalError> {
    CampaignId::new(s).map_err(|e| corrupt("campaign ID", e))
}

pub(super) fn outcome_json(o: &BatchOutcome) -> Result<String, JournalError> {
    serde_json::to_string(o).map_err(|e| JournalError::storage("encoding an outcome", e))
}

pub(super) fn state_json(s: &CampaignState) -> Result<String, JournalError> {
    serde_json::to_string(s).map_err(|e| JournalError::storage("encoding a campaign state", e))
}

pub(super) fn state(json: &str) -> Result<CampaignState, JournalError> {
    serde_json::from_str(json).map_err(|e| corrupt("campaign state", e))
}

/// One stored batch row, as read.
#[derive(Debug)]
pub(super) struct RawRow {
    pub(super) id: String,
    pub(super) campaign: String,
    pub(super) transport: String,
    pub(super) recipients: String,
    pub(super) messages: String,
    pub(super) retry_key: String,
    pub(super) not_before_us: i64,
    pub(super) arm: Option<String>,
    pub(super) aggregation_unit: Option<String>,
    pub(super) status: String,
    pub(super) attempts: i64,
    pub(super) outcome: Option<String>,
    pub(super) updated_at_us: i64,
}

impl RawRow {
    pub(super) fn into_claimed(self) -> Result<Claimed, JournalError> {
        let record = self.into_record()?;
        Ok(Claimed::new(record.batch, record.attempts))
    }

    pub(super) fn into_record(self) -> Result<BatchRecord, JournalError> {
        let transport: Transport =
            serde_json::from_value(serde_json::Value::String(self.transport))
                .map_err(|e| corrupt("transport", e))?;
        let (messages, fallbacks) = messages(&self.messages)?;
        let batch = Batch {
            id: BatchId::new(self.id).map_err(|e| corrupt("batch ID", e))?,
            campaign: campaign(self.campaign)?,
            transport,
            recipients: recipients(&self.recipients)?,
            messages,
            retry_key: RetryKey::new(self.retry_key).map_err(|e| corrupt("retry key", e))?,
            not_before: from_micros(self.not_before_us, "not-before time")?,
            arm: self.arm,
            aggregation_unit: self
                .aggregation_unit
                .map(AggregationUnit::new)
                .transpose()
                .map_err(|e| corrupt("aggregation unit", e))?,
            fallbacks,
        };
        let outcome = self
            .outcome
            .map(|o| serde_json::from_str::<BatchOutcome>(&o))
            .transpose()
            .map_err(|e| corrupt("outcome", e))?;
        Ok(BatchRecord::new(
            batch,
            status(&self.status)?,
            u32::try_from(self.attempts).map_err(|e| corrupt("attempt count", e))?,
            outcome,
            from_micros(self.updated_at_us, "update time")?,
        ))
    }
}

/// Expands one `sends_since` row (status, campaign, recipients, not-before, updated-at) into
/// one record per recipient, timed as [`DeliveryJournal::sends_since`](super::DeliveryJournal)
/// says.
pub(super) fn push_sends(
    out: &mut Vec<SendRecord>,
    status_text: &str,
    campaign_text: String,
    recipients_text: &str,
    not_before_us: i64,
    updated_at_us: i64,
) -> Result<(), JournalError> {
    let at = match status(status_text)? {
        BatchStatus::Sent => from_micros(updated_at_us, "update time")?,
        _ => from_micros(not_before_us, "not-before time")?,
    };
    let campaign = campaign(campaign_text)?;
    out.extend(recipients(recipients_text)?.into_iter().map(|r| SendRecord {
        line_user: r.line_user,
        campaign: campaign.clone(),
        at,
    }));
    Ok(())
}

/// Sorts claimed batches as the trait promises: oldest `not_before` first, then ID.
pub(super) fn sort_claimed(claimed: &mut [Claimed]) {
    claimed.sort_by(|a, b| {
        let (a, b) = (&a.batch, &b.batch);
        a.not_before.cmp(&b.not_before).then_with(|| a.id.cmp(&b.id))
    });
}
