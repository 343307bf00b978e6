//! The delivery journal: every batch is written before it is sent and its outcome after, so a
//! crash or a retry never sends twice and never loses a send.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::batch::{Batch, BatchOutcome, BatchRecord, CampaignState, JournalCounts, SendRecord};
use crate::{BatchId, CampaignId};

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod row;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryJournal;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresJournal;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteJournal;

/// A delivery journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The storage backend failed (I/O, connection, SQL).
    #[error("delivery journal storage failed: {message}")]
    Storage {
        /// What the journal was doing.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored row could not be read back (corrupt or written by an incompatible version).
    #[error("delivery journal holds an unreadable {what}: {message}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        message: String,
    },
    /// The batch is not in the journal.
    #[error("batch `{0}` is not in the delivery journal")]
    UnknownBatch(BatchId),
    /// Two batches in one `enqueue` call share an ID but differ, or an ID already in the
    /// journal was enqueued with other content.
    #[error("batch `{0}` is already in the journal with different content")]
    Conflict(BatchId),
}

impl JournalError {
    /// A storage error with its source.
    pub fn storage(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// A batch handed to one worker by [`DeliveryJournal::claim`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claimed {
    /// The batch.
    pub batch: Batch,
    /// How many times it has been claimed for sending, this claim included (claims given
    /// back with [`DeliveryJournal::release_unsent`] do not count).
    pub attempts: u32,
}

impl Claimed {
    /// A claimed batch as the journal hands it out.
    #[must_use]
    pub fn new(batch: Batch, attempts: u32) -> Self {
        Self { batch, attempts }
    }
}

/// Where batches and their outcomes are kept. Object-safe; share it as `Arc<dyn DeliveryJournal>`.
///
/// Implementations: [`MemoryJournal`] (tests, one process), `SqliteJournal` (the embedded
/// default, feature `sqlite`) and `PostgresJournal` (several workers, feature `postgres`). One
/// conformance suite (`enishi::campaign::conformance::journal`, feature `testkit`: run it
/// against your own journal too) checks all of them.
///
/// The guarantees the dispatcher builds on:
/// - `enqueue` is insert-if-absent by [`BatchId`]: enqueueing the same batch twice (a re-run
///   plan, a scenario `tick` run twice or on two workers) stores it once;
/// - `claim` hands a due batch to one worker at a time: concurrent claims never return the
///   same batch while its lease runs; a batch whose lease ran out is claimed again (the worker
///   crashed) and keeps its retry key;
/// - a final status (sent, failed, cancelled) is never changed back.
#[async_trait]
pub trait DeliveryJournal: Send + Sync + fmt::Debug {
    /// Stores the batches that are not in the journal yet (by ID) as pending; returns how many
    /// were new. A batch whose ID is present with different recipients is a
    /// [`JournalError::Conflict`] and nothing of the call is stored.
    async fn enqueue(&self, batches: &[Batch]) -> Result<u64, JournalError>;

    /// Claims up to `max` batches of `campaign` that are due (`not_before <= now`) and pending,
    /// or in flight with a lease that ran out before `now`. Each claimed batch becomes in flight
    /// for `worker` until `now + lease` and its attempt count goes up by one; each comes with
    /// that count ([`Claimed::attempts`]). Returns nothing while the campaign is not
    /// [`CampaignState::Running`]. Oldest `not_before` first, then ID.
    async fn claim(
        &self,
        campaign: &CampaignId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, JournalError>;

    /// Records the outcome of a send: accepted → sent, failed → failed. A batch already in a
    /// final status keeps it (a late duplicate answer changes nothing).
    async fn complete(
        &self,
        batch: &BatchId,
        outcome: &BatchOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError>;

    /// Puts an in-flight batch back to pending, due again at `not_before` (a retryable failure,
    /// a pause). A batch in a final status is left alone.
    async fn release(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError>;

    /// Like [`release`](Self::release), for an in-flight batch that was **not sent** (the
    /// campaign stopped after the claim, the shared rate limiter was unreachable): its claim
    /// does not count, so its attempt count goes back down by one. A batch that is not in
    /// flight is left alone.
    async fn release_unsent(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError>;

    /// Sets the campaign's run state. [`CampaignState::Cancelled`] also cancels every pending
    /// batch of the campaign.
    async fn set_state(
        &self,
        campaign: &CampaignId,
        state: &CampaignState,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError>;

    /// The campaign's run state ([`CampaignState::Running`] if never set).
    async fn state(&self, campaign: &CampaignId) -> Result<CampaignState, JournalError>;

    /// Batch and recipient counts of the campaign.
    async fn counts(&self, campaign: &CampaignId) -> Result<JournalCounts, JournalError>;

    /// Every batch of the campaign with its status and outcome, by ID.
    async fn records(&self, campaign: &CampaignId) -> Result<Vec<BatchRecord>, JournalError>;

    /// One record per recipient of every batch (any campaign) that is sent, in flight or
    /// pending, timed at `not_before` (or the time it was sent), at or after `since`. Feeds
    /// the frequency cap: planned sends count, so two campaigns planned back to back cannot
    /// both use a customer's last slot.
    async fn sends_since(&self, since: DateTime<Utc>) -> Result<Vec<SendRecord>, JournalError>;
}
