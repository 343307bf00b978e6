//! De-duplication of webhook events by `webhookEventId`.
//!
//! LINE may deliver an event more than once (redelivery, network routing). A store records each
//! `webhookEventId` for a retention window; [`EventDedup::claim`] is an atomic "first time
//! seen?" so that of several deliveries (even to several processes sharing one database) exactly
//! one is handled.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::WebhookEventId;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresDedup;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteDedup;

/// The default retention window: 7 days. LINE does not publish how long it keeps redelivering;
/// a week covers any plausible schedule and costs a few hundred bytes per event.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Why a de-duplication store failed. The event's fate is then unknown: handle it (at least
/// once) or answer non-2xx so that LINE redelivers it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError {
    /// The backend failed (connection, SQL, I/O, a panicked worker).
    #[error("the {backend} de-duplication store failed")]
    Backend {
        /// `memory`, `sqlite` or `postgres`.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A configuration value (such as a schema name) was rejected.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidConfig {
        /// What was configured, e.g. `schema name`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
}

impl DedupError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { backend, source: source.into() }
    }
}

/// A store of seen `webhookEventId`s with a retention window.
///
/// Object safe (`Arc<dyn EventDedup>`), and every implementation runs the same conformance
/// suite (`enishi::line::webhook::conformance`, feature `testkit`: run it against your own
/// store too). `now` is a parameter so that tests and replays control
/// the clock.
#[async_trait::async_trait]
pub trait EventDedup: Send + Sync + fmt::Debug + 'static {
    /// Atomically records `id` as seen at `now`. Returns `true` when the caller is the first to
    /// claim it within the retention window (handle the event), `false` when it was already
    /// claimed (skip it). A claim older than the retention window counts as absent.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError>;

    /// Forgets a claim, e.g. because handling the event failed and a redelivery should be
    /// handled again. Forgetting an unknown ID is not an error.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError>;

    /// Deletes claims older than the retention window; returns how many were deleted.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError>;

    /// The retention window.
    fn retention(&self) -> Duration;
}

#[async_trait::async_trait]
impl<T: EventDedup + ?Sized> EventDedup for Arc<T> {
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError> {
        (**self).claim(id, now).await
    }
    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError> {
        (**self).release(id).await
    }
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError> {
        (**self).purge_expired(now).await
    }
    fn retention(&self) -> Duration {
        (**self).retention()
    }
}

/// Milliseconds of a retention window, saturating (a window beyond `i64::MAX` ms never expires).
pub(crate) fn retention_ms(retention: Duration) -> i64 {
    i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
}

/// The cut-off time: claims at or before it have expired.
pub(crate) fn cutoff_ms(now: DateTime<Utc>, retention: Duration) -> i64 {
    now.timestamp_millis().saturating_sub(retention_ms(retention))
}

/// The in-memory store (the default): one process only, lost on restart.
///
/// Expired entries are purged automatically every 1024 claims, and on [`EventDedup::purge_expired`].
#[derive(Debug, Clone)]
pub struct MemoryDedup {
    inner: Arc<Mutex<MemoryInner>>,
    retention: Duration,
}

#[derive(Debug, Default)]
struct MemoryInner {
    seen: HashMap<WebhookEventId, i64>,
    claims_since_purge: u32,
}

impl MemoryInner {
    fn purge(&mut self, cutoff: i64) -> u64 {
        let before = self.seen.len();
        self.seen.retain(|_, at| *at > cutoff);
        self.claims_since_purge = 0;
        (before - self.seen.len()) as u64
    }
}

impl Default for MemoryDedup {
    fn default() -> Self {
        Self::new(DEFAULT_RETENTION)
    }
}

impl MemoryDedup {
    /// An empty store with the given retention window.
    #[must_use]
    pub fn new(retention: Duration) -> Self {
        Self { inner: Arc::default(), retention }
    }

    /// How many claims are held (including expired ones not yet purged).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// `true` when no claim is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock cannot leave the map inconsistent: keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl EventDedup for MemoryDedup {
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError> {
        let now_ms = now.timestamp_millis();
        let cutoff = cutoff_ms(now, self.retention);
        let mut inner = self.lock();
        inner.claims_since_purge += 1;
        if inner.claims_since_purge >= 1024 {
            inner.purge(cutoff);
        }
        match inner.seen.get_mut(id) {
            Some(at) if *at > cutoff => Ok(false),
            Some(at) => {
                *at = now_ms;
                Ok(true)
            }
            None => {
                inner.seen.insert(id.clone(), now_ms);
                Ok(true)
            }
        }
    }

    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError> {
        self.lock().seen.remove(id);
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError> {
        Ok(self.lock().purge(cutoff_ms(now, self.retention)))
    }

    fn retention(&self) -> Duration {
        self.retention
    }
}
