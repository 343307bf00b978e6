//! The hub's persistent per-destination queue.
//!
//! Each forwarded body is one row: a destination, an idempotency key (the same events always
//! give the same key, so LINE's redelivery of a payload is queued once), an ordering key (the
//! LINE user, group or room the events come from), the body and how it is signed. A worker
//! [`claim`](HubQueue::claim)s due rows under a lease, and finishes each one with
//! [`complete`](HubQueue::complete), [`retry`](HubQueue::retry) or
//! [`dead_letter`](HubQueue::dead_letter). A row whose lease expires (its worker crashed) is
//! claimable again. A pending row blocks the later rows of the same ordering key for the same
//! destination only: one user's failing event holds back that user's later events, nobody
//! else's.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresHubQueue;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteHubQueue;

/// Why a queue store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The backend failed (connection, SQL, I/O, a panicked worker).
    #[error("the {backend} hub queue failed")]
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

impl QueueError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { backend, source: source.into() }
    }
}

/// A body to queue for one destination.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewItem {
    /// The destination's name.
    pub destination: String,
    /// The idempotency key: queueing a key already queued for the destination does nothing.
    pub key: String,
    /// The ordering key: the LINE user (or group, room) the events come from.
    pub user_key: String,
    /// The body to POST.
    pub body: Vec<u8>,
    /// LINE's own `x-line-signature`, when the body is LINE's unchanged and the destination
    /// shares the channel's secret; `None`: signed when sent.
    pub signature: Option<String>,
}

impl NewItem {
    /// A new item.
    #[must_use]
    pub fn new(
        destination: impl Into<String>,
        key: impl Into<String>,
        user_key: impl Into<String>,
        body: impl Into<Vec<u8>>,
        signature: Option<String>,
    ) -> Self {
        Self {
            destination: destination.into(),
            key: key.into(),
            user_key: user_key.into(),
            body: body.into(),
            signature,
        }
    }
}

impl fmt::Debug for NewItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewItem")
            .field("destination", &self.destination)
            .field("key", &self.key)
            .field("user_key", &self.user_key)
            .field("body_bytes", &self.body.len())
            .field("signed_by_line", &self.signature.is_some())
            .finish()
    }
}

/// A claimed item, leased to one worker.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedItem {
    /// The row's ID (increasing in queueing order).
    pub id: i64,
    /// The destination's name.
    pub destination: String,
    /// The idempotency key (sent downstream as `x-enishi-delivery-id`).
    pub key: String,
    /// The ordering key.
    pub user_key: String,
    /// The body to POST.
    pub body: Vec<u8>,
    /// LINE's signature to pass through, or `None` to sign when sent.
    pub signature: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
    /// The lease that [`HubQueue::complete`] and friends must present.
    pub lease: String,
}

impl fmt::Debug for QueuedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedItem")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .field("key", &self.key)
            .field("user_key", &self.user_key)
            .field("body_bytes", &self.body.len())
            .field("attempts", &self.attempts)
            .field("enqueued_at", &self.enqueued_at)
            .finish_non_exhaustive()
    }
}

/// An item that was given up on, kept for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The row's ID.
    pub id: i64,
    /// The destination's name.
    pub destination: String,
    /// The idempotency key.
    pub key: String,
    /// The ordering key.
    pub user_key: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
}

/// The hub's queue store. Object safe (`Arc<dyn HubQueue>`); memory, SQLite and PostgreSQL
/// implementations run the same conformance suite (`enishi::hub::conformance`, feature
/// `testkit`). `now` is a parameter so that tests control the clock.
#[async_trait::async_trait]
pub trait HubQueue: Send + Sync + fmt::Debug + 'static {
    /// Queues `items` atomically (all or none), each due at `now`. An item whose
    /// (destination, key) is already queued, delivered or dead is skipped. Returns how many
    /// were added.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer: nothing was queued.
    async fn enqueue(&self, items: &[NewItem], now: DateTime<Utc>) -> Result<u64, QueueError>;

    /// Leases at most `limit` due items of `destination` until `now + lease`, oldest first.
    /// An item is due when it is pending, its retry time has come, it is not leased (or its
    /// lease expired), and no older pending item of the destination has the same ordering key.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedItem>, QueueError>;

    /// Marks a leased item delivered (its key stays known, its body is dropped). Returns
    /// `false` when the lease was lost (another worker claimed the item since).
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn complete(&self, id: i64, lease: &str, now: DateTime<Utc>) -> Result<bool, QueueError>;

    /// Releases a leased item after a failed attempt: `attempts` failures so far, due again at
    /// `not_before`. Returns `false` when the lease was lost.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn retry(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, QueueError>;

    /// Gives up on a leased item: it moves to the dead-letter list and no longer blocks its
    /// ordering key. Returns `false` when the lease was lost.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn dead_letter(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError>;

    /// The earliest instant a pending item of `destination` becomes claimable (its retry time
    /// or lease end), or `None` when nothing is pending.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, QueueError>;

    /// Pending items of `destination` (queued, not yet delivered nor dead).
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn pending(&self, destination: &str) -> Result<u64, QueueError>;

    /// The dead-letter list of `destination`, oldest first.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, QueueError>;

    /// Puts a dead item back in the queue (attempts reset), due at `now`. Returns `false`
    /// when no dead item has that ID.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn requeue_dead(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError>;

    /// Forgets delivered items finished before `before` (their keys then no longer stop a
    /// re-queue). Returns how many were removed.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot answer.
    async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, QueueError>;
}

/// A new random lease ID.
pub(crate) fn new_lease() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Milliseconds of a lease, saturating.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// A time from stored milliseconds (the epoch for out-of-range values, which no store writes).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored attempt count.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn attempts_of(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    destination: String,
    key: String,
    user_key: String,
    body: Vec<u8>,
    signature: Option<String>,
    attempts: u32,
    state: State,
    enqueued_at: DateTime<Utc>,
    not_before: DateTime<Utc>,
    leased_until: DateTime<Utc>,
    lease: String,
    error: String,
    finished_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    rows: Vec<Row>,
    keys: HashMap<(String, String), i64>,
    next_id: i64,
}

/// The in-memory queue: one process, lost on restart (tests, demos). Clones share the queue.
#[derive(Debug, Clone, Default)]
pub struct MemoryHubQueue {
    inner: Arc<Mutex<MemoryInner>>,
}

impl MemoryHubQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // Every mutation below is a single step: a poisoned lock still guards a consistent map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn leased<'a>(inner: &'a mut MemoryInner, id: i64, lease: &str) -> Option<&'a mut Row> {
    inner.rows.iter_mut().find(|r| r.id == id && r.state == State::Pending && r.lease == lease)
}

#[async_trait::async_trait]
impl HubQueue for MemoryHubQueue {
    async fn enqueue(&self, items: &[NewItem], now: DateTime<Utc>) -> Result<u64, QueueError> {
        let mut inner = self.lock();
        let mut added = 0;
        for item in items {
            let k = (item.destination.clone(), item.key.clone());
            if inner.keys.contains_key(&k) {
                continue;
            }
            inner.next_id += 1;
            let id = inner.next_id;
            inner.keys.insert(k, id);
            inner.rows.push(Row {
                id,
                destination: item.destination.clone(),
                key: item.key.clone(),
                user_key: item.user_key.clone(),
                body: item.body.clone(),
                signature: item.signature.clone(),
                attempts: 0,
                state: State::Pending,
                enqueued_at: now,
                not_before: now,
                leased_until: DateTime::<Utc>::UNIX_EPOCH,
                lease: String::new(),
                error: String::new(),
                finished_at: DateTime::<Utc>::UNIX_EPOCH,
            });
            added += 1;
        }
        Ok(added)
    }

    async fn claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedItem>, QueueError> {
        let mut inner = self.lock();
        let until = now + chrono::Duration::milliseconds(lease_ms(lease));
        let mut blocked = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in inner.rows.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if row.destination != destination || row.state != State::Pending {
                continue;
            }
            if !blocked.insert(row.user_key.clone()) {
                continue; // an older pending item of this user comes first
            }
            if row.not_before > now || row.leased_until > now {
                continue;
            }
            row.leased_until = until;
            row.lease = new_lease();
            out.push(QueuedItem {
                id: row.id,
                destination: row.destination.clone(),
                key: row.key.clone(),
                user_key: row.user_key.clone(),
                body: row.body.clone(),
                signature: row.signature.clone(),
                attempts: row.attempts,
                enqueued_at: row.enqueued_at,
                lease: row.lease.clone(),
            });
        }
        Ok(out)
    }

    async fn complete(&self, id: i64, lease: &str, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let mut inner = self.lock();
        Ok(leased(&mut inner, id, lease)
            .map(|r| {
                r.state = State::Delivered;
                r.body = Vec::new();
                r.finished_at = now;
            })
            .is_some())
    }

    async fn retry(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, QueueError> {
        let mut inner = self.lock();
        Ok(leased(&mut inner, id, lease)
            .map(|r| {
                r.attempts = attempts;
                r.not_before = not_before;
                r.leased_until = DateTime::<Utc>::UNIX_EPOCH;
                r.lease = String::new();
                r.error = error.to_owned();
            })
            .is_some())
    }

    async fn dead_letter(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError> {
        let mut inner = self.lock();
        Ok(leased(&mut inner, id, lease)
            .map(|r| {
                r.attempts = attempts;
                r.state = State::Dead;
                r.lease = String::new();
                r.error = error.to_owned();
                r.finished_at = now;
            })
            .is_some())
    }

    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        let inner = self.lock();
        Ok(inner
            .rows
            .iter()
            .filter(|r| r.destination == destination && r.state == State::Pending)
            .map(|r| r.not_before.max(r.leased_until))
            .min())
    }

    async fn pending(&self, destination: &str) -> Result<u64, QueueError> {
        let inner = self.lock();
        Ok(inner
            .rows
            .iter()
            .filter(|r| r.destination == destination && r.state == State::Pending)
            .count() as u64)
    }

    async fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let inner = self.lock();
        Ok(inner
            .rows
            .iter()
            .filter(|r| r.destination == destination && r.state == State::Dead)
            .map(|r| DeadLetter {
                id: r.id,
                destination: r.destination.clone(),
                key: r.key.clone(),
                user_key: r.user_key.clone(),
                attempts: r.attempts,
                error: r.error.clone(),
                enqueued_at: r.enqueued_at,
            })
            .collect())
    }

    async fn requeue_dead(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let mut inner = self.lock();
        let Some(pos) = inner.rows.iter().position(|r| r.id == id && r.state == State::Dead) else {
            return Ok(false);
        };
        // A requeued item goes to the back of its user's line: it is moved to a new ID.
        let mut row = inner.rows.remove(pos);
        inner.next_id += 1;
        row.id = inner.next_id;
        row.state = State::Pending;
        row.attempts = 0;
        row.not_before = now;
        row.leased_until = DateTime::<Utc>::UNIX_EPOCH;
        inner.keys.insert((row.destination.clone(), row.key.clone()), row.id);
        inner.rows.push(row);
        Ok(true)
    }

    async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, QueueError> {
        let mut inner = self.lock();
        let gone: Vec<(String, String)> = inner
            .rows
            .iter()
            .filter(|r| r.state == State::Delivered && r.finished_at < before)
            .map(|r| (r.destination.clone(), r.key.clone()))
            .collect();
        inner.rows.retain(|r| !(r.state == State::Delivered && r.finished_at < before));
        for k in &gone {
            inner.keys.remove(k);
        }
        Ok(gone.len() as u64)
    }
}
