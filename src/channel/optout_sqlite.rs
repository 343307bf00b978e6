//! The SQLite opt-out store (feature `sqlite`).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::optout::{opt_out_from, store_error};
use super::{ChannelError, ChannelKind, OptOut, OptOutStore};
use crate::CustomerId;
use crate::sqlite::{self, Durability, SharedConnection};

const MIGRATIONS: &[&str] = &["CREATE TABLE enishi_opt_outs (
        customer TEXT NOT NULL,
        channel TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        PRIMARY KEY (customer, channel)
    );"];

fn sq(channel: ChannelKind, message: &'static str) -> impl FnOnce(rusqlite::Error) -> ChannelError {
    move |e| store_error(channel, format!("sqlite opt-outs: {message}"), e)
}

/// An [`OptOutStore`] in an SQLite database file: an opt-out that was recorded survives a
/// restart and a power cut (`synchronous = FULL`), and recording it again keeps the first time.
///
/// Blocking SQLite calls run on tokio's blocking pool: use the store inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteOptOuts {
    conn: SharedConnection,
}

impl SqliteOptOuts {
    /// Opens (creating if needed) the opt-out store at `path`.
    ///
    /// # Errors
    /// [`ChannelError::Transient`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ChannelError> {
        // FULL: a customer who unsubscribed must never be messaged again after a power cut.
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(sq(ChannelKind::Line, "opening the database"))?;
        Self::from_connection(conn)
    }

    /// A private in-memory store (tests, demos).
    ///
    /// # Errors
    /// [`ChannelError::Transient`] when SQLite fails.
    pub fn in_memory() -> Result<Self, ChannelError> {
        Self::from_connection(
            sqlite::open_in_memory().map_err(sq(ChannelKind::Line, "opening in memory"))?,
        )
    }

    /// Uses an open connection, applying pending migrations.
    ///
    /// # Errors
    /// [`ChannelError::Transient`] when a migration fails.
    pub fn from_connection(mut conn: Connection) -> Result<Self, ChannelError> {
        sqlite::prepare(&conn).map_err(sq(ChannelKind::Line, "setting the busy timeout"))?;
        sqlite::migrate(&mut conn, "enishi_opt_out_migrations", MIGRATIONS)
            .map_err(sq(ChannelKind::Line, "migrating"))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn run<T: Send + 'static>(
        &self,
        channel: ChannelKind,
        f: impl FnOnce(&mut Connection) -> Result<T, ChannelError> + Send + 'static,
    ) -> Result<T, ChannelError> {
        self.conn
            .call(f)
            .await
            .map_err(|e| store_error(channel, "sqlite opt-outs: the blocking task failed", e))?
    }
}

#[async_trait]
impl OptOutStore for SqliteOptOuts {
    async fn opt_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let customer = customer.as_str().to_owned();
        self.run(channel, move |conn| {
            conn.execute(
                "INSERT INTO enishi_opt_outs (customer, channel, at_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (customer, channel) DO NOTHING",
                params![customer, channel.as_str(), at.timestamp_micros()],
            )
            .map_err(sq(channel, "recording an opt-out"))?;
            Ok(())
        })
        .await
    }

    async fn is_opted_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
    ) -> Result<bool, ChannelError> {
        let customer = customer.as_str().to_owned();
        self.run(channel, move |conn| {
            let row = conn
                .query_row(
                    "SELECT 1 FROM enishi_opt_outs WHERE customer = ?1 AND channel = ?2",
                    params![customer, channel.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(sq(channel, "reading an opt-out"))?;
            Ok(row.is_some())
        })
        .await
    }

    async fn all(&self) -> Result<Vec<OptOut>, ChannelError> {
        let line = ChannelKind::Line;
        self.run(line, move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT customer, channel, at_us FROM enishi_opt_outs
                     ORDER BY at_us, customer, channel",
                )
                .map_err(sq(line, "preparing the listing"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(sq(line, "listing opt-outs"))?;
            let mut all = Vec::new();
            for row in rows {
                let (customer, channel, at) = row.map_err(sq(line, "reading an opt-out"))?;
                all.push(opt_out_from(customer, &channel, at)?);
            }
            // The memory store's order: time, then customer, then channel (as an enum).
            all.sort_by(|a, b| (a.at, &a.customer, a.channel).cmp(&(b.at, &b.customer, b.channel)));
            Ok(all)
        })
        .await
    }
}
