//! The in-memory journal: the reference implementation (one process, nothing survives it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Claimed, DeliveryJournal, JournalError};
use crate::campaign::batch::{
    Batch, BatchOutcome, BatchRecord, BatchStatus, CampaignState, JournalCounts, SendRecord,
};
use crate::{BatchId, CampaignId};

#[derive(Debug)]
struct Entry {
    record: BatchRecord,
    lease_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Inner {
    batches: BTreeMap<BatchId, Entry>,
    states: HashMap<CampaignId, CampaignState>,
}

impl Inner {
    /// The batch's entry, or `None` when its status is final (nothing may change it).
    fn open_entry(&mut self, batch: &BatchId) -> Result<Option<&mut Entry>, JournalError> {
        let e =
            self.batches.get_mut(batch).ok_or_else(|| JournalError::UnknownBatch(batch.clone()))?;
        Ok((!e.record.status.is_final()).then_some(e))
    }
}

/// A [`DeliveryJournal`] in memory. Cheap to create; use it in tests and single-process tools.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    inner: Mutex<Inner>,
}

impl MemoryJournal {
    /// An empty journal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a batch back to pending, due at `not_before`; `unsent` also takes its claim back
    /// (only from in flight).
    fn put_back(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
        unsent: bool,
    ) -> Result<(), JournalError> {
        let mut inner = self.lock();
        let Some(e) = inner.open_entry(batch)? else { return Ok(()) };
        if unsent {
            if e.record.status != BatchStatus::InFlight {
                return Ok(());
            }
            e.record.attempts = e.record.attempts.saturating_sub(1);
        }
        e.record.status = BatchStatus::Pending;
        e.record.batch.not_before = not_before;
        e.record.updated_at = now;
        e.lease_until = None;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data are plain values; a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    // Saturating: `now + TimeDelta::MAX` would panic, and a huge lease means "never expires".
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl DeliveryJournal for MemoryJournal {
    async fn enqueue(&self, batches: &[Batch]) -> Result<u64, JournalError> {
        let mut inner = self.lock();
        let mut seen: HashMap<&BatchId, &Batch> = HashMap::new();
        for b in batches {
            let clash = inner
                .batches
                .get(&b.id)
                .map(|e| e.record.batch.recipients != b.recipients)
                .or_else(|| seen.get(&b.id).map(|prev| prev.recipients != b.recipients))
                .unwrap_or(false);
            if clash {
                return Err(JournalError::Conflict(b.id.clone()));
            }
            seen.insert(&b.id, b);
        }
        let mut added = 0;
        for b in batches {
            if inner.batches.contains_key(&b.id) {
                continue;
            }
            let record = BatchRecord::new(b.clone(), BatchStatus::Pending, 0, None, b.not_before);
            inner.batches.insert(b.id.clone(), Entry { record, lease_until: None });
            added += 1;
        }
        Ok(added)
    }

    async fn claim(
        &self,
        campaign: &CampaignId,
        _worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, JournalError> {
        let mut inner = self.lock();
        if !matches!(inner.states.get(campaign), None | Some(CampaignState::Running)) {
            return Ok(Vec::new());
        }
        let mut due: Vec<(DateTime<Utc>, BatchId)> = inner
            .batches
            .values()
            .filter(|e| &e.record.batch.campaign == campaign && e.record.batch.not_before <= now)
            .filter(|e| match e.record.status {
                BatchStatus::Pending => true,
                BatchStatus::InFlight => e.lease_until.is_none_or(|until| until < now),
                _ => false,
            })
            .map(|e| (e.record.batch.not_before, e.record.batch.id.clone()))
            .collect();
        due.sort();
        due.truncate(max);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(e) = inner.batches.get_mut(&id) {
                e.record.status = BatchStatus::InFlight;
                e.record.attempts += 1;
                e.record.updated_at = now;
                e.lease_until = Some(lease_end(now, lease));
                claimed.push(Claimed::new(e.record.batch.clone(), e.record.attempts));
            }
        }
        Ok(claimed)
    }

    async fn complete(
        &self,
        batch: &BatchId,
        outcome: &BatchOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let mut inner = self.lock();
        let Some(e) = inner.open_entry(batch)? else { return Ok(()) };
        e.record.status = match outcome {
            BatchOutcome::Accepted { .. } => BatchStatus::Sent,
            BatchOutcome::Failed { .. } => BatchStatus::Failed,
        };
        e.record.outcome = Some(outcome.clone());
        e.record.updated_at = now;
        e.lease_until = None;
        Ok(())
    }

    async fn release(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(batch, not_before, now, false)
    }

    async fn release_unsent(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(batch, not_before, now, true)
    }

    async fn set_state(
        &self,
        campaign: &CampaignId,
        state: &CampaignState,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let mut inner = self.lock();
        if *state == CampaignState::Cancelled {
            for e in inner.batches.values_mut() {
                if &e.record.batch.campaign == campaign && e.record.status == BatchStatus::Pending {
                    e.record.status = BatchStatus::Cancelled;
                    e.record.updated_at = now;
                }
            }
        }
        inner.states.insert(campaign.clone(), state.clone());
        Ok(())
    }

    async fn state(&self, campaign: &CampaignId) -> Result<CampaignState, JournalError> {
        Ok(self.lock().states.get(campaign).cloned().unwrap_or(CampaignState::Running))
    }

    async fn counts(&self, campaign: &CampaignId) -> Result<JournalCounts, JournalError> {
        let inner = self.lock();
        let mut c = JournalCounts::default();
        for e in inner.batches.values().filter(|e| &e.record.batch.campaign == campaign) {
            c.add(e.record.status, 1, e.record.batch.recipients.len() as u64);
        }
        Ok(c)
    }

    async fn records(&self, campaign: &CampaignId) -> Result<Vec<BatchRecord>, JournalError> {
        let inner = self.lock();
        Ok(inner
            .batches
            .values()
            .filter(|e| &e.record.batch.campaign == campaign)
            .map(|e| e.record.clone())
            .collect())
    }

    async fn sends_since(&self, since: DateTime<Utc>) -> Result<Vec<SendRecord>, JournalError> {
        let inner = self.lock();
        let mut out = Vec::new();
        for e in inner.batches.values() {
            let at = match e.record.status {
                BatchStatus::Sent => e.record.updated_at,
                BatchStatus::Pending | BatchStatus::InFlight => e.record.batch.not_before,
                BatchStatus::Failed | BatchStatus::Cancelled => continue,
            };
            if at < since {
                continue;
            }
            out.extend(e.record.batch.recipients.iter().map(|r| SendRecord {
                line_user: r.line_user.clone(),
                campaign: e.record.batch.campaign.clone(),
                at,
            }));
        }
        Ok(out)
    }
}
