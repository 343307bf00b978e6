//! PostgreSQL de-duplication store (feature `postgres`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};

use super::{DedupError, EventDedup, cutoff_ms};
use crate::WebhookEventId;

const BACKEND: &str = "postgres";

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_webhook_dedup_migrations`. `{s}` is replaced by the schema name. The first
/// one is idempotent: schemas made before migrations were recorded take it as a no-op.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS {s}.enishi_webhook_dedup (
        event_id TEXT PRIMARY KEY,
        claimed_at_ms BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS enishi_webhook_dedup_claimed_at
        ON {s}.enishi_webhook_dedup (claimed_at_ms);"];

/// A de-duplication store in a PostgreSQL table `<schema>.enishi_webhook_dedup`.
///
/// A claim is one `INSERT ... ON CONFLICT (event_id) DO UPDATE ... WHERE expired` statement, so
/// any number of processes sharing the database agree on exactly one winner per ID. Each call
/// checks a connection out of a pool ([`crate::postgres`]): a lost connection is replaced, and
/// a call that fails on one returns [`DedupError::Backend`] (the webhook then answers 500, so
/// LINE redelivers).
#[derive(Clone)]
pub struct PostgresDedup {
    pool: Pool,
    schema: Arc<str>,
    sql: Arc<Sql>,
    retention: Duration,
}

/// The statements, prepared (and cached) per pooled connection.
struct Sql {
    claim: String,
    release: String,
    purge: String,
}

impl fmt::Debug for PostgresDedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDedup")
            .field("schema", &self.schema)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
fn check_schema(schema: &str) -> Result<(), DedupError> {
    if crate::postgres::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(DedupError::InvalidConfig {
            what: "schema name",
            value: schema.to_owned(),
            reason: crate::postgres::SCHEMA_NAME_RULE,
        })
    }
}

impl PostgresDedup {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`], without TLS: use
    /// [`PostgresDedup::from_pool`] with your own pool for TLS or to share one) and prepares the
    /// store.
    ///
    /// # Errors
    /// As [`PostgresDedup::from_pool`], or [`DedupError::InvalidConfig`] for a URL that is not
    /// a connection string.
    pub async fn connect(url: &str, schema: &str, retention: Duration) -> Result<Self, DedupError> {
        check_schema(schema)?;
        let pool = crate::postgres::pool(url).map_err(|e| DedupError::InvalidConfig {
            what: "PostgreSQL URL",
            value: String::new(),
            reason: match e {
                crate::postgres::PoolError::InvalidUrl(_) => "not a PostgreSQL connection string",
                _ => "the connection pool could not be built",
            },
        })?;
        Self::from_pool(pool, schema, retention).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations (under an advisory lock, so concurrent starts
    /// are safe).
    ///
    /// # Errors
    /// [`DedupError::InvalidConfig`] for a schema name outside `[a-z_][a-z0-9_]*` (at most 63
    /// bytes); [`DedupError::Backend`] when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(
        pool: Pool,
        schema: &str,
        retention: Duration,
    ) -> Result<Self, DedupError> {
        check_schema(schema)?;
        let table = format!("{schema}.enishi_webhook_dedup");
        let sql = Sql {
            claim: format!(
                "INSERT INTO {table} AS t (event_id, claimed_at_ms) VALUES ($1, $2)
                 ON CONFLICT (event_id) DO UPDATE SET claimed_at_ms = EXCLUDED.claimed_at_ms
                 WHERE t.claimed_at_ms <= $3"
            ),
            release: format!("DELETE FROM {table} WHERE event_id = $1"),
            purge: format!("DELETE FROM {table} WHERE claimed_at_ms <= $1"),
        };
        let store = Self { pool, schema: schema.into(), sql: Arc::new(sql), retention };
        let mut client = store.client().await?;
        crate::postgres::migrate(&mut client, schema, "enishi_webhook_dedup", MIGRATIONS)
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        Ok(store)
    }

    async fn client(&self) -> Result<Object, DedupError> {
        self.pool.get().await.map_err(|e| DedupError::backend(BACKEND, e))
    }

    /// Runs one prepared statement on a pooled connection.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, DedupError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(sql).await.map_err(|e| DedupError::backend(BACKEND, e))?;
        client.execute(&statement, params).await.map_err(|e| DedupError::backend(BACKEND, e))
    }
}

#[async_trait::async_trait]
impl EventDedup for PostgresDedup {
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError> {
        let cutoff = cutoff_ms(now, self.retention);
        let n = self
            .execute(&self.sql.claim, &[&id.as_str(), &now.timestamp_millis(), &cutoff])
            .await?;
        Ok(n == 1)
    }

    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError> {
        self.execute(&self.sql.release, &[&id.as_str()]).await?;
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError> {
        let cutoff = cutoff_ms(now, self.retention);
        self.execute(&self.sql.purge, &[&cutoff]).await
    }

    fn retention(&self) -> Duration {
        self.retention
    }
}
