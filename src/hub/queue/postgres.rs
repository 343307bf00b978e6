//! PostgreSQL hub queue (feature `postgres`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;

use super::{
    DeadLetter, HubQueue, NewItem, QueueError, QueuedItem, attempts_of, from_ms, lease_ms,
    new_lease,
};

const BACKEND: &str = "postgres";

const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS {s}.enishi_hub_queue (
        id BIGSERIAL PRIMARY KEY,
        destination TEXT NOT NULL,
        item_key TEXT NOT NULL,
        user_key TEXT NOT NULL,
        body BYTEA NOT NULL,
        signature TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending',
        enqueued_at_ms BIGINT NOT NULL,
        not_before_ms BIGINT NOT NULL,
        leased_until_ms BIGINT NOT NULL DEFAULT 0,
        lease TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        finished_at_ms BIGINT NOT NULL DEFAULT 0,
        UNIQUE (destination, item_key)
    );
    CREATE INDEX IF NOT EXISTS enishi_hub_queue_pending
        ON {s}.enishi_hub_queue (destination, state, user_key, id);"];

/// The hub's queue in a PostgreSQL table `<schema>.enishi_hub_queue`, shared by any number of
/// processes: a claim leases rows with `FOR UPDATE SKIP LOCKED`, so two workers never hold
/// the same row, and a pending row blocks its user's later rows whichever process holds it.
#[derive(Clone)]
pub struct PostgresHubQueue {
    pool: Pool,
    schema: Arc<str>,
    t: Arc<str>,
}

impl fmt::Debug for PostgresHubQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresHubQueue").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PostgresHubQueue {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`]) and prepares the queue.
    ///
    /// # Errors
    /// As [`PostgresHubQueue::from_pool`], or [`QueueError::InvalidConfig`] for a URL that is
    /// not a connection string.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, QueueError> {
        let pool = crate::postgres::pool(url).map_err(|_| QueueError::InvalidConfig {
            what: "PostgreSQL URL",
            value: String::new(),
            reason: "not a usable PostgreSQL connection string",
        })?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool`: creates `schema` if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`QueueError::InvalidConfig`] for a schema name outside `[a-z_][a-z0-9_]*` (at most 63
    /// bytes); [`QueueError::Backend`] when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, QueueError> {
        if !crate::postgres::is_valid_schema_name(schema) {
            return Err(QueueError::InvalidConfig {
                what: "schema name",
                value: schema.to_owned(),
                reason: crate::postgres::SCHEMA_NAME_RULE,
            });
        }
        let queue =
            Self { pool, schema: schema.into(), t: format!("{schema}.enishi_hub_queue").into() };
        let mut client = queue.client().await?;
        crate::postgres::migrate(&mut client, schema, "enishi_hub_queue", MIGRATIONS)
            .await
            .map_err(|e| QueueError::backend(BACKEND, e))?;
        Ok(queue)
    }

    async fn client(&self) -> Result<Object, QueueError> {
        self.pool.get().await.map_err(|e| QueueError::backend(BACKEND, e))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, QueueError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(sql).await.map_err(|e| QueueError::backend(BACKEND, e))?;
        client.query(&statement, params).await.map_err(|e| QueueError::backend(BACKEND, e))
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, QueueError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(sql).await.map_err(|e| QueueError::backend(BACKEND, e))?;
        client.execute(&statement, params).await.map_err(|e| QueueError::backend(BACKEND, e))
    }
}

fn db(e: tokio_postgres::Error) -> QueueError {
    QueueError::backend(BACKEND, e)
}

#[async_trait::async_trait]
impl HubQueue for PostgresHubQueue {
    async fn enqueue(&self, items: &[NewItem], now: DateTime<Utc>) -> Result<u64, QueueError> {
        let now = now.timestamp_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO {} (destination, item_key, user_key, body, signature,
                    enqueued_at_ms, not_before_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (destination, item_key) DO NOTHING",
                self.t
            ))
            .await
            .map_err(db)?;
        let mut added = 0;
        for i in items {
            added += tx
                .execute(
                    &insert,
                    &[&i.destination, &i.key, &i.user_key, &i.body, &i.signature, &now],
                )
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(added)
    }

    async fn claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedItem>, QueueError> {
        let now = now.timestamp_millis();
        let until = now.saturating_add(lease_ms(lease));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let t = &self.t;
        // One lease ID per claim; the rows' IDs make each item's lease distinct enough: a
        // row is only ever finished by the claim that leased it.
        let lease_id = new_lease();
        let rows = self
            .query(
                &format!(
                    "UPDATE {t} SET leased_until_ms = $3, lease = $5 || ':' || id::text
                     WHERE id IN (
                        SELECT id FROM {t} c
                        WHERE destination = $1 AND state = 'pending' AND not_before_ms <= $2
                          AND leased_until_ms <= $2
                          AND NOT EXISTS (SELECT 1 FROM {t} o
                              WHERE o.destination = c.destination AND o.user_key = c.user_key
                                AND o.state = 'pending' AND o.id < c.id)
                        ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
                       AND leased_until_ms <= $2 AND state = 'pending'
                     RETURNING id, destination, item_key, user_key, body, signature, attempts,
                        enqueued_at_ms, lease"
                ),
                &[&destination, &now, &until, &limit, &lease_id],
            )
            .await?;
        let mut out: Vec<QueuedItem> = rows
            .iter()
            .map(|r| QueuedItem {
                id: r.get(0),
                destination: r.get(1),
                key: r.get(2),
                user_key: r.get(3),
                body: r.get(4),
                signature: r.get(5),
                attempts: attempts_of(i64::from(r.get::<_, i32>(6))),
                enqueued_at: from_ms(r.get(7)),
                lease: r.get(8),
            })
            .collect();
        out.sort_by_key(|i| i.id);
        Ok(out)
    }

    async fn complete(&self, id: i64, lease: &str, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let now = now.timestamp_millis();
        let n = self
            .execute(
                &format!(
                    "UPDATE {} SET state = 'delivered', body = ''::bytea, finished_at_ms = $3,
                        lease = ''
                     WHERE id = $1 AND lease = $2 AND state = 'pending'",
                    self.t
                ),
                &[&id, &lease, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn retry(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, QueueError> {
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let n = self
            .execute(
                &format!(
                    "UPDATE {} SET attempts = $3, not_before_ms = $4, leased_until_ms = 0,
                        lease = '', last_error = $5
                     WHERE id = $1 AND lease = $2 AND state = 'pending'",
                    self.t
                ),
                &[&id, &lease, &attempts, &not_before.timestamp_millis(), &error],
            )
            .await?;
        Ok(n == 1)
    }

    async fn dead_letter(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError> {
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let n = self
            .execute(
                &format!(
                    "UPDATE {} SET state = 'dead', attempts = $3, lease = '', last_error = $4,
                        finished_at_ms = $5
                     WHERE id = $1 AND lease = $2 AND state = 'pending'",
                    self.t
                ),
                &[&id, &lease, &attempts, &error, &now.timestamp_millis()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        let rows = self
            .query(
                &format!(
                    "SELECT MIN(GREATEST(not_before_ms, leased_until_ms)) FROM {}
                     WHERE destination = $1 AND state = 'pending'",
                    self.t
                ),
                &[&destination],
            )
            .await?;
        Ok(rows.first().and_then(|r| r.get::<_, Option<i64>>(0)).map(from_ms))
    }

    async fn pending(&self, destination: &str) -> Result<u64, QueueError> {
        let rows = self
            .query(
                &format!(
                    "SELECT COUNT(*) FROM {} WHERE destination = $1 AND state = 'pending'",
                    self.t
                ),
                &[&destination],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let rows = self
            .query(
                &format!(
                    "SELECT id, destination, item_key, user_key, attempts, last_error,
                        enqueued_at_ms
                     FROM {} WHERE destination = $1 AND state = 'dead' ORDER BY id",
                    self.t
                ),
                &[&destination],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                destination: r.get(1),
                key: r.get(2),
                user_key: r.get(3),
                attempts: attempts_of(i64::from(r.get::<_, i32>(4))),
                error: r.get(5),
                enqueued_at: from_ms(r.get(6)),
            })
            .collect())
    }

    async fn requeue_dead(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let t = &self.t;
        // A requeued item goes to the back of its user's line: it moves to a new ID.
        let n = self
            .execute(
                &format!(
                    "UPDATE {t} SET id = nextval(pg_get_serial_sequence('{t}', 'id')),
                        state = 'pending', attempts = 0, not_before_ms = $2,
                        leased_until_ms = 0, lease = '', finished_at_ms = 0
                     WHERE id = $1 AND state = 'dead'"
                ),
                &[&id, &now.timestamp_millis()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, QueueError> {
        self.execute(
            &format!("DELETE FROM {} WHERE state = 'delivered' AND finished_at_ms < $1", self.t),
            &[&before.timestamp_millis()],
        )
        .await
    }
}
