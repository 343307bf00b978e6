//! SQLite hub queue (feature `sqlite`).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    DeadLetter, HubQueue, NewItem, QueueError, QueuedItem, attempts_of, from_ms, lease_ms,
    new_lease,
};
use crate::sqlite::{self, Durability, SharedConnection};

const BACKEND: &str = "sqlite";

const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS enishi_hub_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    item_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    body BLOB NOT NULL,
    signature TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    enqueued_at_ms INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    leased_until_ms INTEGER NOT NULL DEFAULT 0,
    lease TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    finished_at_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (destination, item_key)
);
CREATE INDEX IF NOT EXISTS enishi_hub_queue_pending
    ON enishi_hub_queue (destination, state, user_key, id);"];

/// The hub's queue in an SQLite database file: survives a crash of the process (each change
/// is committed before the call returns), shared by the processes that open the same file.
/// Blocking SQLite calls run on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteHubQueue {
    conn: SharedConnection,
}

impl SqliteHubQueue {
    /// Opens (creating if needed) the database at `path` and its `enishi_hub_queue` table.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the file cannot be opened or the table created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, QueueError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(|e| QueueError::backend(BACKEND, e))?;
        Self::from_connection(conn)
    }

    /// A private in-memory database (one process; for tests).
    ///
    /// # Errors
    /// [`QueueError::Backend`] when SQLite fails.
    pub fn open_in_memory() -> Result<Self, QueueError> {
        Self::from_connection(
            sqlite::open_in_memory().map_err(|e| QueueError::backend(BACKEND, e))?,
        )
    }

    /// Uses an open connection, creating the table if needed.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the table cannot be created.
    pub fn from_connection(mut conn: Connection) -> Result<Self, QueueError> {
        sqlite::prepare(&conn).map_err(|e| QueueError::backend(BACKEND, e))?;
        sqlite::migrate(&mut conn, "enishi_hub_queue_migrations", MIGRATIONS)
            .map_err(|e| QueueError::backend(BACKEND, e))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        self.conn
            .call(f)
            .await
            .map_err(|e| QueueError::backend(BACKEND, e))?
            .map_err(|e| QueueError::backend(BACKEND, e))
    }
}

const CLAIMABLE: &str = "SELECT id, destination, item_key, user_key, body, signature, attempts,
        enqueued_at_ms
    FROM enishi_hub_queue c
    WHERE destination = ?1 AND state = 'pending' AND not_before_ms <= ?2 AND leased_until_ms <= ?2
      AND NOT EXISTS (SELECT 1 FROM enishi_hub_queue o
          WHERE o.destination = c.destination AND o.user_key = c.user_key
            AND o.state = 'pending' AND o.id < c.id)
    ORDER BY id LIMIT ?3";

#[async_trait::async_trait]
impl HubQueue for SqliteHubQueue {
    async fn enqueue(&self, items: &[NewItem], now: DateTime<Utc>) -> Result<u64, QueueError> {
        let items = items.to_vec();
        let now = now.timestamp_millis();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut added = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO enishi_hub_queue (destination, item_key, user_key, body,
                        signature, enqueued_at_ms, not_before_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                     ON CONFLICT (destination, item_key) DO NOTHING",
                )?;
                for i in &items {
                    added += insert.execute(params![
                        i.destination,
                        i.key,
                        i.user_key,
                        i.body,
                        i.signature,
                        now
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }

    async fn claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedItem>, QueueError> {
        let destination = destination.to_owned();
        let now = now.timestamp_millis();
        let until = now.saturating_add(lease_ms(lease));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            {
                let mut select = tx.prepare_cached(CLAIMABLE)?;
                let rows = select.query_map(params![destination, now, limit], |r| {
                    Ok(QueuedItem {
                        id: r.get(0)?,
                        destination: r.get(1)?,
                        key: r.get(2)?,
                        user_key: r.get(3)?,
                        body: r.get(4)?,
                        signature: r.get(5)?,
                        attempts: attempts_of(r.get(6)?),
                        enqueued_at: from_ms(r.get(7)?),
                        lease: new_lease(),
                    })
                })?;
                for row in rows {
                    out.push(row?);
                }
                let mut lease = tx.prepare_cached(
                    "UPDATE enishi_hub_queue SET leased_until_ms = ?2, lease = ?3 WHERE id = ?1",
                )?;
                for item in &out {
                    lease.execute(params![item.id, until, item.lease])?;
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn complete(&self, id: i64, lease: &str, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let lease = lease.to_owned();
        let now = now.timestamp_millis();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE enishi_hub_queue SET state = 'delivered', body = x'',
                        finished_at_ms = ?3, lease = ''
                     WHERE id = ?1 AND lease = ?2 AND state = 'pending'",
                )?
                .execute(params![id, lease, now])?;
            Ok(n == 1)
        })
        .await
    }

    async fn retry(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, QueueError> {
        let (lease, error) = (lease.to_owned(), error.to_owned());
        let not_before = not_before.timestamp_millis();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE enishi_hub_queue SET attempts = ?3, not_before_ms = ?4,
                        leased_until_ms = 0, lease = '', last_error = ?5
                     WHERE id = ?1 AND lease = ?2 AND state = 'pending'",
                )?
                .execute(params![id, lease, attempts, not_before, error])?;
            Ok(n == 1)
        })
        .await
    }

    async fn dead_letter(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError> {
        let (lease, error) = (lease.to_owned(), error.to_owned());
        let now = now.timestamp_millis();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE enishi_hub_queue SET state = 'dead', attempts = ?3, lease = '',
                        last_error = ?4, finished_at_ms = ?5
                     WHERE id = ?1 AND lease = ?2 AND state = 'pending'",
                )?
                .execute(params![id, lease, attempts, error, now])?;
            Ok(n == 1)
        })
        .await
    }

    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        let destination = destination.to_owned();
        let ms: Option<i64> = self
            .run(move |c| {
                c.prepare_cached(
                    "SELECT MIN(MAX(not_before_ms, leased_until_ms)) FROM enishi_hub_queue
                     WHERE destination = ?1 AND state = 'pending'",
                )?
                .query_row([destination], |r| r.get(0))
                .optional()
                .map(Option::flatten)
            })
            .await?;
        Ok(ms.map(from_ms))
    }

    async fn pending(&self, destination: &str) -> Result<u64, QueueError> {
        let destination = destination.to_owned();
        let n: i64 = self
            .run(move |c| {
                c.prepare_cached(
                    "SELECT COUNT(*) FROM enishi_hub_queue WHERE destination = ?1 AND state = 'pending'",
                )?
                .query_row([destination], |r| r.get(0))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let destination = destination.to_owned();
        self.run(move |c| {
            let mut s = c.prepare_cached(
                "SELECT id, destination, item_key, user_key, attempts, last_error, enqueued_at_ms
                 FROM enishi_hub_queue WHERE destination = ?1 AND state = 'dead' ORDER BY id",
            )?;
            let rows = s.query_map([destination], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    destination: r.get(1)?,
                    key: r.get(2)?,
                    user_key: r.get(3)?,
                    attempts: attempts_of(r.get(4)?),
                    error: r.get(5)?,
                    enqueued_at: from_ms(r.get(6)?),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn requeue_dead(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let now = now.timestamp_millis();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A requeued item goes to the back of its user's line: it moves to a new ID.
            let n = tx.execute(
                "INSERT INTO enishi_hub_queue (destination, item_key, user_key, body, signature,
                    enqueued_at_ms, not_before_ms)
                 SELECT destination, item_key || '#requeue', user_key, body, signature,
                    enqueued_at_ms, ?2
                 FROM enishi_hub_queue WHERE id = ?1 AND state = 'dead'",
                params![id, now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            let new_id = tx.last_insert_rowid();
            tx.execute("DELETE FROM enishi_hub_queue WHERE id = ?1", [id])?;
            tx.execute(
                "UPDATE enishi_hub_queue SET item_key = substr(item_key, 1, length(item_key) - 8)
                 WHERE id = ?1",
                [new_id],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, QueueError> {
        let before = before.timestamp_millis();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "DELETE FROM enishi_hub_queue WHERE state = 'delivered' AND finished_at_ms < ?1",
                )?
                .execute([before])?;
            Ok(n as u64)
        })
        .await
    }
}
