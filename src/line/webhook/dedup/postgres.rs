//! PostgreSQL de-duplication store (feature `postgres`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, NoTls, Statement};

use super::{DedupError, EventDedup, cutoff_ms};
use crate::WebhookEventId;

const BACKEND: &str = "postgres";

/// A de-duplication store in a PostgreSQL table `<schema>.enishi_webhook_dedup`.
///
/// A claim is one `INSERT ... ON CONFLICT (event_id) DO UPDATE ... WHERE expired` statement, so
/// any number of processes sharing the database agree on exactly one winner per ID.
#[derive(Clone)]
pub struct PostgresDedup {
    client: Arc<Client>,
    schema: String,
    claim: Statement,
    release: Statement,
    purge: Statement,
    retention: Duration,
}

impl fmt::Debug for PostgresDedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDedup")
            .field("schema", &self.schema)
            .field("retention", &self.retention)
            .finish()
    }
}

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
fn check_schema(schema: &str) -> Result<(), DedupError> {
    if crate::postgres_util::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(DedupError::InvalidConfig {
            what: "schema name",
            value: schema.to_owned(),
            reason: crate::postgres_util::SCHEMA_NAME_RULE,
        })
    }
}

impl PostgresDedup {
    /// Connects to `url` (without TLS: use [`PostgresDedup::new`] with your own client for TLS),
    /// spawns the connection task on the current tokio runtime, and prepares the store.
    ///
    /// # Errors
    /// As [`PostgresDedup::new`], or [`DedupError::Backend`] when the connection fails.
    pub async fn connect(url: &str, schema: &str, retention: Duration) -> Result<Self, DedupError> {
        check_schema(schema)?;
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        // The connection task ends when the client is dropped; its error then has no reader.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self::new(Arc::new(client), schema, retention).await
    }

    /// Uses a connected client: creates `schema` and its table if needed and prepares the
    /// statements.
    ///
    /// # Errors
    /// [`DedupError::InvalidConfig`] for a schema name outside `[a-z_][a-z0-9_]*` (at most 63
    /// bytes); [`DedupError::Backend`] when PostgreSQL fails.
    pub async fn new(
        client: Arc<Client>,
        schema: &str,
        retention: Duration,
    ) -> Result<Self, DedupError> {
        check_schema(schema)?;
        let table = format!("{schema}.enishi_webhook_dedup");
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {table} (
                     event_id TEXT PRIMARY KEY,
                     claimed_at_ms BIGINT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS enishi_webhook_dedup_claimed_at ON {table} (claimed_at_ms);"
            ))
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        let prepare = |sql: String| {
            let client = Arc::clone(&client);
            async move { client.prepare(&sql).await.map_err(|e| DedupError::backend(BACKEND, e)) }
        };
        let claim = prepare(format!(
            "INSERT INTO {table} AS t (event_id, claimed_at_ms) VALUES ($1, $2)
             ON CONFLICT (event_id) DO UPDATE SET claimed_at_ms = EXCLUDED.claimed_at_ms
             WHERE t.claimed_at_ms <= $3"
        ))
        .await?;
        let release = prepare(format!("DELETE FROM {table} WHERE event_id = $1")).await?;
        let purge = prepare(format!("DELETE FROM {table} WHERE claimed_at_ms <= $1")).await?;
        Ok(Self { client, schema: schema.to_owned(), claim, release, purge, retention })
    }
}

#[async_trait::async_trait]
impl EventDedup for PostgresDedup {
    async fn claim(&self, id: &WebhookEventId, now: DateTime<Utc>) -> Result<bool, DedupError> {
        let cutoff = cutoff_ms(now, self.retention);
        let n = self
            .client
            .execute(&self.claim, &[&id.as_str(), &now.timestamp_millis(), &cutoff])
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        Ok(n == 1)
    }

    async fn release(&self, id: &WebhookEventId) -> Result<(), DedupError> {
        self.client
            .execute(&self.release, &[&id.as_str()])
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))?;
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DedupError> {
        let cutoff = cutoff_ms(now, self.retention);
        self.client
            .execute(&self.purge, &[&cutoff])
            .await
            .map_err(|e| DedupError::backend(BACKEND, e))
    }

    fn retention(&self) -> Duration {
        self.retention
    }
}
