//! PostgreSQL click store (feature `postgres`): the twin of `SqliteClickStore` for several
//! redirect servers.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};

use super::track::{Click, ClickStore, ClickStoreError};
use crate::CampaignId;

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_clicks_migrations`. `{s}` is replaced by the schema name. The table is
/// `SqliteClickStore`'s.
const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_clicks (
        id BIGSERIAL PRIMARY KEY,
        campaign TEXT NOT NULL,
        step TEXT,
        customer_id TEXT NOT NULL,
        url TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX enishi_clicks_campaign ON {s}.enishi_clicks (campaign, at_ms);"];

fn storage(
    message: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ClickStoreError {
    ClickStoreError::Storage {
        message: format!("postgres: {message}"),
        source: Some(Box::new(source)),
    }
}

fn pg(message: &'static str) -> impl FnOnce(tokio_postgres::Error) -> ClickStoreError {
    move |e| storage(message, e)
}

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
fn check_schema(schema: &str) -> Result<(), ClickStoreError> {
    if crate::postgres::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(ClickStoreError::Storage {
            message: format!(
                "postgres: invalid schema name {schema:?} ({})",
                crate::postgres::SCHEMA_NAME_RULE
            ),
            source: None,
        })
    }
}

/// A stored value that is not a valid ID or time.
#[derive(Debug, thiserror::Error)]
#[error("the clicks table holds an unreadable {0}")]
struct Corrupt(&'static str);

/// The statements, prepared (and cached) per pooled connection.
#[derive(Debug)]
struct Sql {
    record: String,
    clicks: String,
}

/// Clicks in a PostgreSQL table `<schema>.enishi_clicks` (the table of `SqliteClickStore`,
/// feature `sqlite`): every redirect server of a shop records into one database, and the
/// results report reads them all.
///
/// Every click is kept raw, one row each; replays and double taps count once through
/// [`ClickStore::unique_clicks`], as with every store. Times are kept to the millisecond.
/// Migrations are applied on connect (under an advisory lock, so concurrent starts are safe).
/// Each call checks a connection out of a pool ([`crate::postgres`]), so a lost connection is
/// replaced; a call that fails on a lost connection returns [`ClickStoreError::Storage`].
/// Clones share the pool.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use enishi::campaign::{ClickStore, PostgresClickStore};
///
/// let pool = enishi::postgres::pool("postgres://enishi@db/enishi")?;
/// let clicks: Arc<dyn ClickStore> = Arc::new(PostgresClickStore::from_pool(pool, "enishi").await?);
/// # let _ = clicks;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresClickStore {
    pool: Pool,
    schema: Arc<str>,
    sql: Arc<Sql>,
}

impl fmt::Debug for PostgresClickStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresClickStore").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PostgresClickStore {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`], without TLS: use
    /// [`PostgresClickStore::from_pool`] with your own pool for TLS or to share one) and
    /// migrates `schema`.
    ///
    /// # Errors
    /// As [`PostgresClickStore::from_pool`], or [`ClickStoreError::Storage`] for a URL that is
    /// not a connection string.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, ClickStoreError> {
        check_schema(schema)?;
        let pool =
            crate::postgres::pool(url).map_err(|e| storage("making the connection pool", e))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`ClickStoreError::Storage`] for a schema name outside `[a-z_][a-z0-9_]*` (at most 63
    /// bytes) or when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, ClickStoreError> {
        check_schema(schema)?;
        let mut client = pool.get().await.map_err(|e| storage("connecting", e))?;
        crate::postgres::migrate(&mut client, schema, "enishi_clicks", MIGRATIONS)
            .await
            .map_err(|e| storage(e.doing, e.source))?;
        drop(client);
        let sql = Sql {
            record: format!(
                "INSERT INTO {schema}.enishi_clicks (campaign, step, customer_id, url, at_ms)
                 VALUES ($1, $2, $3, $4, $5)"
            ),
            clicks: format!(
                "SELECT step, customer_id, url, at_ms FROM {schema}.enishi_clicks
                 WHERE campaign = $1 ORDER BY at_ms, id"
            ),
        };
        Ok(Self { pool, schema: schema.into(), sql: Arc::new(sql) })
    }

    async fn client(&self) -> Result<Object, ClickStoreError> {
        self.pool.get().await.map_err(|e| storage("connecting", e))
    }
}

#[async_trait]
impl ClickStore for PostgresClickStore {
    async fn record(&self, click: &Click) -> Result<(), ClickStoreError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(&self.sql.record).await.map_err(pg("recording a click"))?;
        client
            .execute(
                &statement,
                &[
                    &click.campaign.as_str(),
                    &click.step,
                    &click.customer.as_str(),
                    &click.url,
                    &click.at.timestamp_millis(),
                ],
            )
            .await
            .map_err(pg("recording a click"))?;
        Ok(())
    }

    async fn clicks(&self, campaign: &CampaignId) -> Result<Vec<Click>, ClickStoreError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(&self.sql.clicks).await.map_err(pg("reading clicks"))?;
        let rows =
            client.query(&statement, &[&campaign.as_str()]).await.map_err(pg("reading clicks"))?;
        rows.iter()
            .map(|row| {
                let customer: String = row.try_get(1).map_err(pg("reading clicks"))?;
                let customer =
                    customer.parse().map_err(|_| storage("reading clicks", Corrupt("customer")))?;
                let at = DateTime::<Utc>::from_timestamp_millis(
                    row.try_get(3).map_err(pg("reading clicks"))?,
                )
                .ok_or_else(|| storage("reading clicks", Corrupt("time")))?;
                Ok(Click::new(
                    campaign.clone(),
                    row.try_get(0).map_err(pg("reading clicks"))?,
                    customer,
                    row.try_get::<_, String>(2).map_err(pg("reading clicks"))?,
                    at,
                ))
            })
            .collect()
    }
}
