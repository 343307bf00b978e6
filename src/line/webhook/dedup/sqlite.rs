//! SQLite de-duplication store (feature `sqlite`).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{DedupError, EventDedup, cutoff_ms};
use crate::WebhookEventId;
use crate::sqlite::{self, Durability, SharedConnection};

const BACKEND: &str = "sqlite";

/// A de-duplication store in an SQLite database file.
///
/// Several processes may open the same file: a claim is one `INSERT ... ON CONFLICT DO UPDATE
/// ... WHERE expired` statement, which SQLite runs atomically, so exactly one process wins an
/// ID. The database runs in WAL mode with a 5-second busy timeout. Blocking SQLite calls run on
/// tokio's blocking thread pool, so the store must be used inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteDedup {
    conn: SharedConnection,
    retention: Duration,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS enishi_webhook_dedup (
    event_id TEXT PRIMARY KEY NOT NULL,
    claimed_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS enishi_webhook_dedup_claimed_at ON enishi_webhook_dedup (claimed_at_ms);";

impl SqliteDedup {
    /// Opens (creating if needed) the database at `path` and its `enishi_webhook_dedup` table.
    ///
    /// # Errors
    /// [`DedupError::Backend`] when the file cannot be opened or the table created.
    pub fn open(path: impl AsRef<Path>, retention: Duration) -> Result<Self, DedupError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        Self::from_connection(conn, retention)
    }

    /// A private in-memory database (one process; for tests).
    ///
    /// # Errors
    /// [`DedupError::Backend`] when SQLite fails.
    pub fn open_in_memory(retention: Duration) -> Result<Self, DedupError> {
        Self::from_connection(
            sqlite::open_in_memory().map_err(|e| DedupError::backend(BACKEND, e))?,
            retention,
        )
    }

    /// Uses an open connection, creating the table if needed.
    ///
    /// # Errors
    /// [`DedupError::Backend`] when the table cannot be created.
    pub fn from_connection(conn: Connection, retention: Duration) -> Result<Self, DedupError> {
        sqlite::prepare(&conn).map_err(|e| DedupError::backend(BACKEND, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| DedupError::backend(BACKEND, e))?;
        Ok(Self { conn: SharedConnection::new(conn), retention })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DedupError> {
        self.conn
            .call(move |conn| f(conn))
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?
            .map_err(|e| DedupError::backend(BACKEND, e))
    }
}

#[async_trait::async_trait]
impl EventDedup for SqliteDedup {
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError> {
        let id = id.as_str().to_owned();
        let now_ms = now.timestamp_millis();
        let cutoff = cutoff_ms(now, self.retention);
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "INSERT INTO enishi_webhook_dedup (event_id, claimed_at_ms) VALUES (?1, ?2)
                     ON CONFLICT (event_id) DO UPDATE SET claimed_at_ms = excluded.claimed_at_ms
                     WHERE enishi_webhook_dedup.claimed_at_ms <= ?3",
                )?
                .execute(rusqlite::params![id, now_ms, cutoff])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError> {
        let id = id.as_str().to_owned();
        self.run(move |c| {
            c.prepare_cached("DELETE FROM enishi_webhook_dedup WHERE event_id = ?1")?
                .execute([id])?;
            Ok(())
        })
        .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError> {
        let cutoff = cutoff_ms(now, self.retention);
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM enishi_webhook_dedup WHERE claimed_at_ms <= ?1")?
                .execute([cutoff])?;
            Ok(n as u64)
        })
        .await
    }

    fn retention(&self) -> Duration {
        self.retention
    }
}
