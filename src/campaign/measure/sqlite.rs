//! SQLite click store (feature `sqlite`).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::track::{Click, ClickStore, ClickStoreError};
use crate::CampaignId;
use crate::sqlite::{self, Durability, SharedConnection};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS enishi_clicks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign TEXT NOT NULL,
        step TEXT,
        customer_id TEXT NOT NULL,
        url TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS enishi_clicks_campaign ON enishi_clicks (campaign, at_ms);";

fn storage(
    message: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ClickStoreError {
    ClickStoreError::Storage { message: message.to_owned(), source: Some(Box::new(source)) }
}

/// Clicks in an SQLite database file (the embedded default; `PostgresClickStore`, feature
/// `postgres`, keeps the same table in PostgreSQL). Blocking SQLite calls run on
/// tokio's blocking pool: use the store inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteClickStore {
    conn: SharedConnection,
}

impl SqliteClickStore {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    /// [`ClickStoreError::Storage`] when the file cannot be opened or its table created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ClickStoreError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(|e| storage("opening the database", e))?;
        Self::from_connection(conn)
    }

    /// A private in-memory database (tests, demos).
    ///
    /// # Errors
    /// [`ClickStoreError::Storage`] when SQLite fails.
    pub fn open_in_memory() -> Result<Self, ClickStoreError> {
        Self::from_connection(
            sqlite::open_in_memory().map_err(|e| storage("opening the database", e))?,
        )
    }

    /// Uses an open connection, creating the table if needed.
    ///
    /// # Errors
    /// [`ClickStoreError::Storage`] when SQLite fails.
    pub fn from_connection(conn: Connection) -> Result<Self, ClickStoreError> {
        sqlite::prepare(&conn).map_err(|e| storage("setting a timeout", e))?;
        conn.execute_batch(SCHEMA).map_err(|e| storage("creating the clicks table", e))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ClickStoreError> + Send + 'static,
    ) -> Result<T, ClickStoreError> {
        self.conn
            .call(move |conn| f(conn))
            .await
            .map_err(|e| storage("running a blocking SQLite call", e))?
    }
}

/// A stored value that is not a valid ID.
#[derive(Debug, thiserror::Error)]
#[error("the clicks table holds an unreadable {0}")]
struct Corrupt(&'static str);

#[async_trait]
impl ClickStore for SqliteClickStore {
    async fn record(&self, click: &Click) -> Result<(), ClickStoreError> {
        let click = click.clone();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO enishi_clicks (campaign, step, customer_id, url, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    click.campaign.as_str(),
                    click.step,
                    click.customer.as_str(),
                    click.url,
                    click.at.timestamp_millis()
                ],
            )
            .map_err(|e| storage("recording a click", e))?;
            Ok(())
        })
        .await
    }

    async fn clicks(&self, campaign: &CampaignId) -> Result<Vec<Click>, ClickStoreError> {
        let campaign = campaign.clone();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT step, customer_id, url, at_ms FROM enishi_clicks
                     WHERE campaign = ?1 ORDER BY at_ms, id",
                )
                .map_err(|e| storage("reading clicks", e))?;
            let rows = stmt
                .query_map(params![campaign.as_str()], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(|e| storage("reading clicks", e))?;
            let mut out = Vec::new();
            for row in rows {
                let (step, customer, url, at_ms) = row.map_err(|e| storage("reading clicks", e))?;
                let customer =
                    customer.parse().map_err(|_| storage("reading clicks", Corrupt("customer")))?;
                let at = DateTime::<Utc>::from_timestamp_millis(at_ms)
                    .ok_or_else(|| storage("reading clicks", Corrupt("time")))?;
                out.push(Click::new(campaign.clone(), step, customer, url, at));
            }
            Ok(out)
        })
        .await
    }
}
