//! The synced shop kept in PostgreSQL (feature `postgres`): the twin of `SqliteDataset` for
//! hosts whose stores all live in one database.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use tokio_postgres::IsolationLevel;

use super::dataset_rows::{self, StoredResource, resource_name};
use super::error::BoxError;
use super::model::Cursor;
use super::sync::{Dataset, SyncBatch, SyncResource, SyncSink};

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_shop_migrations`. `{s}` is replaced by the schema name. The tables are
/// `SqliteDataset`'s.
const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_shop_records (
        resource TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (resource, id)
    );
    CREATE TABLE {s}.enishi_shop_cursors (
        resource TEXT PRIMARY KEY,
        cursor TEXT NOT NULL
    );"];

/// A PostgreSQL call failed: what the dataset was doing, and why.
#[derive(Debug, thiserror::Error)]
#[error("postgres dataset: {doing}")]
struct Failed {
    doing: &'static str,
    #[source]
    source: BoxError,
}

fn pg<E: Into<BoxError>>(doing: &'static str) -> impl FnOnce(E) -> BoxError {
    move |e| Box::new(Failed { doing, source: e.into() })
}

/// The schema name is not one enishi accepts.
#[derive(Debug, thiserror::Error)]
#[error("postgres dataset: invalid schema name {name:?} ({rule})", rule = crate::postgres::SCHEMA_NAME_RULE)]
struct InvalidSchema {
    name: String,
}

fn check_schema(schema: &str) -> Result<(), BoxError> {
    if crate::postgres::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(Box::new(InvalidSchema { name: schema.to_owned() }))
    }
}

/// The statements, prepared (and cached) per pooled connection.
#[derive(Debug)]
struct Sql {
    count: String,
    records: String,
    cursor: String,
    cursors: String,
    put_records: String,
    put_cursor: String,
}

impl Sql {
    fn new(s: &str) -> Self {
        Self {
            count: format!("SELECT COUNT(*) FROM {s}.enishi_shop_records WHERE resource = $1"),
            records: format!("SELECT body FROM {s}.enishi_shop_records WHERE resource = $1"),
            cursor: format!("SELECT cursor FROM {s}.enishi_shop_cursors WHERE resource = $1"),
            cursors: format!("SELECT resource, cursor FROM {s}.enishi_shop_cursors"),
            put_records: format!(
                "INSERT INTO {s}.enishi_shop_records (resource, id, body)
                 SELECT $1, u.id, u.body FROM unnest($2::text[], $3::text[]) AS u(id, body)
                 ON CONFLICT (resource, id) DO UPDATE SET body = EXCLUDED.body"
            ),
            put_cursor: format!(
                "INSERT INTO {s}.enishi_shop_cursors (resource, cursor) VALUES ($1, $2)
                 ON CONFLICT (resource) DO UPDATE SET cursor = EXCLUDED.cursor"
            ),
        }
    }
}

/// A [`SyncSink`] that keeps the synced shop (customers, orders, subscriptions, products, each
/// as its JSON record keyed by resource and ID) and the sync cursors in PostgreSQL tables under
/// one schema: the tables of `SqliteDataset` (feature `sqlite`), for hosts whose other stores
/// are in PostgreSQL too.
///
/// Each page and its cursor are written in one transaction, so a crash never stores one
/// without the other and the next sync resumes where the last committed page ended.
/// [`load`](Self::load) reads everything back, from one snapshot, into a [`Dataset`] (for
/// [`Dataset::segment_facts`]).
///
/// Migrations are applied on connect (under an advisory lock, so concurrent starts are safe).
/// Each call checks a connection out of a pool ([`crate::postgres`]), so a lost connection is
/// replaced; a call that fails on a lost connection returns an error and, for
/// [`apply`](SyncSink::apply), stored nothing. Clones share the pool.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use enishi::commerce::InMemoryBackend;
/// use enishi::commerce::sync::{PostgresDataset, Syncer};
///
/// let shop = InMemoryBackend::new();
/// let dataset = PostgresDataset::connect("postgres://enishi@db/enishi", "enishi").await?;
/// Syncer::new(&shop).run(&dataset).await?;
/// let facts = dataset.load().await?.segment_facts();
/// # let _ = facts;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresDataset {
    pool: Pool,
    schema: Arc<str>,
    sql: Arc<Sql>,
}

impl fmt::Debug for PostgresDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDataset").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PostgresDataset {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`], without TLS: use
    /// [`PostgresDataset::from_pool`] with your own pool for TLS or to share one) and migrates
    /// `schema`.
    ///
    /// # Errors
    /// As [`PostgresDataset::from_pool`], or when `url` is not a connection string.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, BoxError> {
        check_schema(schema)?;
        let pool = crate::postgres::pool(url).map_err(pg("making the connection pool"))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations.
    ///
    /// # Errors
    /// For a schema name outside `[a-z_][a-z0-9_]*` (at most 63 bytes), or when PostgreSQL
    /// fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, BoxError> {
        check_schema(schema)?;
        let mut client = pool.get().await.map_err(pg("connecting"))?;
        crate::postgres::migrate(&mut client, schema, "enishi_shop", MIGRATIONS).await?;
        drop(client);
        Ok(Self { pool, schema: schema.into(), sql: Arc::new(Sql::new(schema)) })
    }

    async fn client(&self) -> Result<Object, BoxError> {
        self.pool.get().await.map_err(pg("connecting"))
    }

    /// Number of records of a resource.
    ///
    /// # Errors
    /// When PostgreSQL fails or cannot be reached.
    pub async fn count(&self, resource: SyncResource) -> Result<u64, BoxError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.count).await.map_err(pg("counting"))?;
        let row = client
            .query_one(&statement, &[&resource_name(resource)])
            .await
            .map_err(pg("counting"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Everything in the tables, as an in-memory [`Dataset`] with the same cursors. The records
    /// and cursors are read in one repeatable-read transaction: a sync running meanwhile is
    /// seen either before or after each of its pages, never halfway.
    ///
    /// # Errors
    /// When PostgreSQL fails or cannot be reached, or the tables hold records this version
    /// cannot decode.
    pub async fn load(&self) -> Result<Dataset, BoxError> {
        let mut client = self.client().await?;
        let records = client.prepare_cached(&self.sql.records).await.map_err(pg("loading"))?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg("beginning the load"))?;
        let mut cursors: HashMap<String, String> = tx
            .query(&self.sql.cursors, &[])
            .await
            .map_err(pg("reading the cursors"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut stored = Vec::with_capacity(SyncResource::ALL.len());
        for resource in SyncResource::ALL {
            let name = resource_name(resource);
            let rows = tx.query(&records, &[&name]).await.map_err(pg("reading the records"))?;
            let bodies = rows.iter().map(|r| r.get(0)).collect();
            stored.push(StoredResource { resource, bodies, cursor: cursors.remove(name) });
        }
        tx.commit().await.map_err(pg("ending the load"))?;
        drop(client);
        dataset_rows::into_dataset(stored).await
    }
}

#[async_trait]
impl SyncSink for PostgresDataset {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        let client = self.client().await?;
        let statement =
            client.prepare_cached(&self.sql.cursor).await.map_err(pg("reading a cursor"))?;
        let row = client
            .query_opt(&statement, &[&resource_name(resource)])
            .await
            .map_err(pg("reading a cursor"))?;
        row.map(|r| dataset_rows::decode_cursor(r.get(0))).transpose()
    }

    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        let name = resource_name(batch.resource());
        let mut rows = dataset_rows::encode_batch(&batch)?;
        drop(batch);
        // In key order, so two syncs writing the same records never wait for each other in a
        // cycle.
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (ids, bodies): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        let cursor = dataset_rows::encode_cursor(&cursor)?;
        let mut client = self.client().await?;
        let put_records =
            client.prepare_cached(&self.sql.put_records).await.map_err(pg("preparing"))?;
        let put_cursor =
            client.prepare_cached(&self.sql.put_cursor).await.map_err(pg("preparing"))?;
        let tx = client.transaction().await.map_err(pg("beginning a page"))?;
        if !ids.is_empty() {
            tx.execute(&put_records, &[&name, &ids, &bodies])
                .await
                .map_err(pg("storing the records"))?;
        }
        tx.execute(&put_cursor, &[&name, &cursor]).await.map_err(pg("storing the cursor"))?;
        tx.commit().await.map_err(pg("committing a page"))
    }
}

#[async_trait]
impl super::sync::StoredDataset for PostgresDataset {
    async fn load(&self) -> Result<Dataset, BoxError> {
        Self::load(self).await
    }
}
