//! The synced shop kept in an SQLite file (feature `sqlite`): the embedded default sink.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::dataset_rows::{self, StoredResource, resource_name};
use super::error::BoxError;
use super::model::Cursor;
use super::sync::{Dataset, SyncBatch, SyncResource, SyncSink};
use crate::sqlite::{self, Durability, SharedConnection};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS enishi_shop_records (
        resource TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (resource, id)
    );
    CREATE TABLE IF NOT EXISTS enishi_shop_cursors (
        resource TEXT PRIMARY KEY,
        cursor TEXT NOT NULL
    );";

/// A [`SyncSink`] that keeps the synced shop (customers, orders, subscriptions, products, each
/// as its JSON record) and the sync cursors in one SQLite file. Each page and its cursor are
/// written in one transaction, so a crash never stores one without the other and the next sync
/// resumes where the last committed page ended.
///
/// [`load`](Self::load) reads everything back into a [`Dataset`] (for
/// [`Dataset::segment_facts`]). `PostgresDataset` (feature `postgres`) keeps the same tables
/// in PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqliteDataset {
    conn: SharedConnection,
}

impl SqliteDataset {
    /// Opens (or creates) the file; the schema is created when missing.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, rusqlite::Error> {
        // NORMAL: the dataset is a copy of the shop, re-read from the stored cursors.
        let conn = sqlite::open_file(path.as_ref(), Durability::Normal)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T, BoxError> {
        self.conn.call(f).await.map_err(|e| Box::new(e) as BoxError)?
    }

    /// Number of records of a resource.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub async fn count(&self, resource: SyncResource) -> Result<u64, BoxError> {
        self.run(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM enishi_shop_records WHERE resource = ?1",
                params![resource_name(resource)],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// Everything in the file, as an in-memory [`Dataset`] with the same cursors.
    ///
    /// # Errors
    /// When the file cannot be read or holds records this version cannot decode.
    pub async fn load(&self) -> Result<Dataset, BoxError> {
        let stored = self
            .run(|c| {
                // One read transaction: the records and cursors of one moment.
                let tx = c.transaction()?;
                let mut stored = Vec::new();
                for resource in SyncResource::ALL {
                    let mut stmt =
                        tx.prepare("SELECT body FROM enishi_shop_records WHERE resource = ?1")?;
                    let bodies = stmt
                        .query_map(params![resource_name(resource)], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                    stored.push(StoredResource {
                        resource,
                        bodies,
                        cursor: stored_cursor(&tx, resource)?,
                    });
                }
                Ok(stored)
            })
            .await?;
        dataset_rows::into_dataset(stored).await
    }
}

/// The stored cursor of `resource`, as JSON.
fn stored_cursor(c: &Connection, resource: SyncResource) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT cursor FROM enishi_shop_cursors WHERE resource = ?1",
        params![resource_name(resource)],
        |r| r.get(0),
    )
    .optional()
}

#[async_trait]
impl SyncSink for SqliteDataset {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        let stored: Option<String> = self.run(move |c| Ok(stored_cursor(c, resource)?)).await?;
        stored.as_deref().map(dataset_rows::decode_cursor).transpose()
    }

    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        let resource = batch.resource();
        let rows = dataset_rows::encode_batch(&batch)?;
        let cursor = dataset_rows::encode_cursor(&cursor)?;
        self.run(move |c| {
            let name = resource_name(resource);
            let tx = c.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO enishi_shop_records (resource, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (resource, id) DO UPDATE SET body = excluded.body",
                )?;
                for (id, body) in &rows {
                    put.execute(params![name, id, body])?;
                }
                tx.execute(
                    "INSERT INTO enishi_shop_cursors (resource, cursor) VALUES (?1, ?2)
                     ON CONFLICT (resource) DO UPDATE SET cursor = excluded.cursor",
                    params![name, cursor],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl super::sync::StoredDataset for SqliteDataset {
    async fn load(&self) -> Result<Dataset, BoxError> {
        Self::load(self).await
    }
}
