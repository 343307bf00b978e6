//! The PostgreSQL opt-out store (feature `postgres`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};

use super::optout::{opt_out_from, store_error};
use super::{ChannelError, ChannelKind, OptOut, OptOutStore};
use crate::CustomerId;

const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_opt_outs (
        customer TEXT COLLATE \"C\" NOT NULL,
        channel TEXT COLLATE \"C\" NOT NULL,
        at_us BIGINT NOT NULL,
        PRIMARY KEY (customer, channel)
    );"];

fn pg(
    channel: ChannelKind,
    message: &'static str,
) -> impl FnOnce(tokio_postgres::Error) -> ChannelError {
    move |e| store_error(channel, format!("postgres opt-outs: {message}"), e)
}

/// An [`OptOutStore`] in a PostgreSQL table under one schema, shared by every app instance:
/// an opt-out recorded by one is seen by all, survives restarts, and recording it again (on
/// any instance, even concurrently) keeps the first time. Clones share the connection pool.
#[derive(Clone)]
pub struct PostgresOptOuts {
    pool: Pool,
    schema: Arc<str>,
}

impl fmt::Debug for PostgresOptOuts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptOuts").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PostgresOptOuts {
    /// Makes a pool of connections to `url` (without TLS; use [`from_pool`](Self::from_pool)
    /// for TLS or to share one) and migrates `schema`.
    ///
    /// # Errors
    /// As [`from_pool`](Self::from_pool), or [`ChannelError::Transient`] for a bad URL.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, ChannelError> {
        let pool = crate::postgres::pool(url).map_err(|e| {
            store_error(ChannelKind::Line, "postgres opt-outs: making the connection pool", e)
        })?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool`: creates `schema` if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] for a schema name outside `[a-z_][a-z0-9_]*` (≤ 63
    /// bytes); [`ChannelError::Transient`] when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, ChannelError> {
        if !crate::postgres::is_valid_schema_name(schema) {
            return Err(ChannelError::Unsupported {
                channel: ChannelKind::Line,
                message: format!(
                    "postgres opt-outs: invalid schema name {schema:?} ({})",
                    crate::postgres::SCHEMA_NAME_RULE
                ),
            });
        }
        {
            let mut client = checkout(&pool, ChannelKind::Line).await?;
            crate::postgres::migrate(&mut client, schema, "enishi_opt_outs", MIGRATIONS)
                .await
                .map_err(|e| {
                    store_error(ChannelKind::Line, format!("postgres opt-outs: {e}"), e.source)
                })?;
        }
        Ok(Self { pool, schema: schema.into() })
    }
}

async fn checkout(pool: &Pool, channel: ChannelKind) -> Result<Object, ChannelError> {
    pool.get().await.map_err(|e| store_error(channel, "postgres opt-outs: connecting", e))
}

#[async_trait]
impl OptOutStore for PostgresOptOuts {
    async fn opt_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let s = &self.schema;
        let client = checkout(&self.pool, channel).await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.enishi_opt_outs (customer, channel, at_us) VALUES ($1, $2, $3)
                     ON CONFLICT (customer, channel) DO NOTHING"
                ),
                &[&customer.as_str(), &channel.as_str(), &at.timestamp_micros()],
            )
            .await
            .map_err(pg(channel, "recording an opt-out"))?;
        Ok(())
    }

    async fn is_opted_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
    ) -> Result<bool, ChannelError> {
        let s = &self.schema;
        let client = checkout(&self.pool, channel).await?;
        let row = client
            .query_opt(
                &format!("SELECT 1 FROM {s}.enishi_opt_outs WHERE customer = $1 AND channel = $2"),
                &[&customer.as_str(), &channel.as_str()],
            )
            .await
            .map_err(pg(channel, "reading an opt-out"))?;
        Ok(row.is_some())
    }

    async fn all(&self) -> Result<Vec<OptOut>, ChannelError> {
        let s = &self.schema;
        let line = ChannelKind::Line;
        let client = checkout(&self.pool, line).await?;
        let rows = client
            .query(&format!("SELECT customer, channel, at_us FROM {s}.enishi_opt_outs"), &[])
            .await
            .map_err(pg(line, "listing opt-outs"))?;
        let mut all = rows
            .iter()
            .map(|r| opt_out_from(r.get(0), r.get::<_, &str>(1), r.get(2)))
            .collect::<Result<Vec<_>, _>>()?;
        // The memory store's order: time, then customer, then channel (as an enum).
        all.sort_by(|a, b| (a.at, &a.customer, a.channel).cmp(&(b.at, &b.customer, b.channel)));
        Ok(all)
    }
}
