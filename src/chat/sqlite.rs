//! SQLite chat store (feature `sqlite`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::store::{
    ChatStore, ChatStoreError, HandOff, LOG_COLUMNS, LogEntry, LogRow, SurveyProgress,
    attribute_from_json, attribute_json, check_entry, check_reason, check_survey, customer,
    entry_from_row, from_ms, idle_cutoff_ms, user,
};
use crate::segment::AttrValue;
use crate::sqlite::{self, Durability, SharedConnection};
use crate::{CustomerId, LineUserId};

const BACKEND: &str = "sqlite";

/// Schema migrations, applied in order and recorded in `enishi_chat_migrations`.
const MIGRATIONS: &[&str] = &["CREATE TABLE enishi_chat_handoffs (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        last_activity_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE enishi_chat_attributes (
        channel TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, customer_id, key)
    );
    CREATE TABLE enishi_chat_surveys (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        survey TEXT NOT NULL,
        step INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE enishi_chat_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        customer_id TEXT,
        direction TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        intent TEXT,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX enishi_chat_log_user ON enishi_chat_log (channel, line_user_id, at_ms);
    CREATE INDEX enishi_chat_log_at ON enishi_chat_log (channel, at_ms);"];

fn sq(e: rusqlite::Error) -> ChatStoreError {
    ChatStoreError::backend(BACKEND, e)
}

/// A chat store in an SQLite database file (the embedded default; the same file as the other
/// stores, see [`Storage`](crate::storage::Storage)).
///
/// Migrations are applied on open. Every call runs in an `IMMEDIATE` transaction, so several
/// connections or processes sharing the file agree on who started a hand-off. Blocking SQLite
/// calls run on tokio's blocking pool: use the store inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteChatStore {
    conn: SharedConnection,
    channel: Arc<str>,
}

impl SqliteChatStore {
    /// Opens (creating if needed) the database at `path` for `channel` (the LINE channel ID;
    /// several channels may share one file).
    ///
    /// # Errors
    /// [`ChatStoreError::Backend`] when the file cannot be opened or migrated;
    /// [`ChatStoreError::InvalidConfig`] for an empty channel.
    pub fn open(path: impl AsRef<Path>, channel: &str) -> Result<Self, ChatStoreError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full).map_err(sq)?;
        Self::from_connection(conn, channel)
    }

    /// A private in-memory database (tests, demos).
    ///
    /// # Errors
    /// [`ChatStoreError::Backend`] when SQLite fails; [`ChatStoreError::InvalidConfig`] for
    /// an empty channel.
    pub fn open_in_memory(channel: &str) -> Result<Self, ChatStoreError> {
        Self::from_connection(sqlite::open_in_memory().map_err(sq)?, channel)
    }

    /// Uses an open connection, applying pending migrations.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidConfig`] for an empty channel; [`ChatStoreError::Backend`]
    /// when a migration fails.
    pub fn from_connection(mut conn: Connection, channel: &str) -> Result<Self, ChatStoreError> {
        if channel.is_empty() {
            return Err(ChatStoreError::InvalidConfig {
                what: "channel",
                value: String::new(),
                reason: "expected the LINE channel ID",
            });
        }
        sqlite::prepare(&conn).map_err(sq)?;
        sqlite::migrate(&mut conn, "enishi_chat_migrations", MIGRATIONS).map_err(sq)?;
        Ok(Self { conn: SharedConnection::new(conn), channel: channel.into() })
    }

    /// Runs `f` in an immediate transaction, committed when it succeeds.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &str) -> Result<T, ChatStoreError> + Send + 'static,
    ) -> Result<T, ChatStoreError> {
        let channel = Arc::clone(&self.channel);
        self.conn
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sq)?;
                let value = f(&tx, &channel)?;
                tx.commit().map_err(sq)?;
                Ok(value)
            })
            .await
            .map_err(|e| ChatStoreError::backend(BACKEND, e))?
    }
}

fn handoff_row(
    tx: &Transaction<'_>,
    ch: &str,
    u: &LineUserId,
) -> Result<Option<HandOff>, ChatStoreError> {
    let row: Option<(String, i64, i64)> = tx
        .prepare_cached(
            "SELECT reason, since_ms, last_activity_ms FROM enishi_chat_handoffs
             WHERE channel = ?1 AND line_user_id = ?2",
        )
        .map_err(sq)?
        .query_row(params![ch, u.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(sq)?;
    Ok(row.map(|(reason, since, last)| {
        HandOff::new(u.clone(), reason, from_ms(since), from_ms(last))
    }))
}

fn touch(tx: &Transaction<'_>, ch: &str, u: &LineUserId, now: i64) -> Result<bool, ChatStoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE enishi_chat_handoffs SET last_activity_ms = MAX(last_activity_ms, ?3)
             WHERE channel = ?1 AND line_user_id = ?2",
        )
        .map_err(sq)?
        .execute(params![ch, u.as_str(), now])
        .map_err(sq)?;
    Ok(n == 1)
}

fn query_log(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<LogEntry>, ChatStoreError> {
    let rows = tx
        .prepare_cached(sql)
        .map_err(sq)?
        .query_map(params, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .map_err(sq)?
        .collect::<Result<Vec<LogRow>, _>>()
        .map_err(sq)?;
    rows.into_iter().map(entry_from_row).collect()
}

#[async_trait::async_trait]
impl ChatStore for SqliteChatStore {
    async fn start_handoff(
        &self,
        user: &LineUserId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        check_reason(reason)?;
        let (u, reason, now) = (user.clone(), reason.to_owned(), now.timestamp_millis());
        // The transaction is IMMEDIATE: no other writer runs between the check and the insert.
        self.run(move |tx, ch| {
            if touch(tx, ch, &u, now)? {
                return Ok(false);
            }
            tx.prepare_cached(
                "INSERT INTO enishi_chat_handoffs
                 (channel, line_user_id, reason, since_ms, last_activity_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )
            .map_err(sq)?
            .execute(params![ch, u.as_str(), reason, now])
            .map_err(sq)?;
            Ok(true)
        })
        .await
    }

    async fn active_handoff(
        &self,
        user: &LineUserId,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<HandOff>, ChatStoreError> {
        let (u, cutoff) = (user.clone(), idle_cutoff_ms(idle, now));
        self.run(move |tx, ch| {
            tx.prepare_cached(
                "DELETE FROM enishi_chat_handoffs
                 WHERE channel = ?1 AND line_user_id = ?2 AND last_activity_ms < ?3",
            )
            .map_err(sq)?
            .execute(params![ch, u.as_str(), cutoff])
            .map_err(sq)?;
            handoff_row(tx, ch, &u)
        })
        .await
    }

    async fn touch_handoff(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        let (u, now) = (user.clone(), now.timestamp_millis());
        self.run(move |tx, ch| touch(tx, ch, &u, now)).await
    }

    async fn end_handoff(&self, user: &LineUserId) -> Result<bool, ChatStoreError> {
        let u = user.clone();
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM enishi_chat_handoffs WHERE channel = ?1 AND line_user_id = ?2",
                )
                .map_err(sq)?
                .execute(params![ch, u.as_str()])
                .map_err(sq)?;
            Ok(n == 1)
        })
        .await
    }

    async fn handoffs(&self) -> Result<Vec<HandOff>, ChatStoreError> {
        self.run(move |tx, ch| {
            let rows = tx
                .prepare_cached(
                    "SELECT line_user_id, reason, since_ms, last_activity_ms
                     FROM enishi_chat_handoffs WHERE channel = ?1
                     ORDER BY since_ms, line_user_id",
                )
                .map_err(sq)?
                .query_map(params![ch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(sq)?
                .collect::<Result<Vec<(String, String, i64, i64)>, _>>()
                .map_err(sq)?;
            rows.into_iter()
                .map(|(u, reason, since, last)| {
                    Ok(HandOff::new(user(u)?, reason, from_ms(since), from_ms(last)))
                })
                .collect()
        })
        .await
    }

    async fn set_attribute(
        &self,
        customer: &CustomerId,
        key: &str,
        value: &AttrValue,
        now: DateTime<Utc>,
    ) -> Result<(), ChatStoreError> {
        let json = attribute_json(key, value)?;
        let (c, key, now) = (customer.clone(), key.to_owned(), now.timestamp_millis());
        self.run(move |tx, ch| {
            tx.prepare_cached(
                "INSERT INTO enishi_chat_attributes (channel, customer_id, key, value, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (channel, customer_id, key) DO UPDATE
                 SET value = excluded.value, updated_at_ms = excluded.updated_at_ms
                 WHERE excluded.updated_at_ms >= enishi_chat_attributes.updated_at_ms",
            )
            .map_err(sq)?
            .execute(params![ch, c.as_str(), key, json, now])
            .map_err(sq)?;
            Ok(())
        })
        .await
    }

    async fn attributes(
        &self,
    ) -> Result<BTreeMap<CustomerId, BTreeMap<String, AttrValue>>, ChatStoreError> {
        self.run(move |tx, ch| {
            let rows = tx
                .prepare_cached(
                    "SELECT customer_id, key, value FROM enishi_chat_attributes WHERE channel = ?1",
                )
                .map_err(sq)?
                .query_map(params![ch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sq)?
                .collect::<Result<Vec<(String, String, String)>, _>>()
                .map_err(sq)?;
            let mut out: BTreeMap<CustomerId, BTreeMap<String, AttrValue>> = BTreeMap::new();
            for (c, key, json) in rows {
                out.entry(customer(c)?).or_default().insert(key, attribute_from_json(&json)?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_survey(
        &self,
        user: &LineUserId,
        progress: Option<&SurveyProgress>,
    ) -> Result<(), ChatStoreError> {
        check_survey(progress)?;
        let (u, progress) = (user.clone(), progress.cloned());
        self.run(move |tx, ch| {
            match progress {
                Some(p) => tx
                    .prepare_cached(
                        "INSERT INTO enishi_chat_surveys
                         (channel, line_user_id, survey, step, started_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (channel, line_user_id) DO UPDATE
                         SET survey = excluded.survey, step = excluded.step,
                             started_at_ms = excluded.started_at_ms",
                    )
                    .map_err(sq)?
                    .execute(params![
                        ch,
                        u.as_str(),
                        p.survey,
                        i64::from(p.step),
                        p.started_at.timestamp_millis()
                    ])
                    .map_err(sq)?,
                None => tx
                    .prepare_cached(
                        "DELETE FROM enishi_chat_surveys WHERE channel = ?1 AND line_user_id = ?2",
                    )
                    .map_err(sq)?
                    .execute(params![ch, u.as_str()])
                    .map_err(sq)?,
            };
            Ok(())
        })
        .await
    }

    async fn survey_of(&self, user: &LineUserId) -> Result<Option<SurveyProgress>, ChatStoreError> {
        let u = user.clone();
        self.run(move |tx, ch| {
            let row: Option<(String, i64, i64)> = tx
                .prepare_cached(
                    "SELECT survey, step, started_at_ms FROM enishi_chat_surveys
                     WHERE channel = ?1 AND line_user_id = ?2",
                )
                .map_err(sq)?
                .query_row(params![ch, u.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(sq)?;
            row.map(|(survey, step, at)| {
                let step = u32::try_from(step)
                    .map_err(|_| ChatStoreError::Corrupt(format!("survey step {step}")))?;
                Ok(SurveyProgress::new(survey, step, from_ms(at)))
            })
            .transpose()
        })
        .await
    }

    async fn append_log(&self, entry: &LogEntry) -> Result<(), ChatStoreError> {
        check_entry(entry)?;
        let e = entry.clone();
        self.run(move |tx, ch| {
            tx.prepare_cached(&format!(
                "INSERT INTO enishi_chat_log (channel, {LOG_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .map_err(sq)?
            .execute(params![
                ch,
                e.line_user.as_str(),
                e.customer.as_ref().map(CustomerId::as_str),
                e.direction.as_str(),
                e.kind,
                e.text,
                e.intent,
                e.at.timestamp_millis(),
            ])
            .map_err(sq)?;
            Ok(())
        })
        .await
    }

    async fn log_of(
        &self,
        user: &LineUserId,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ChatStoreError> {
        let (u, limit) = (user.clone(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run(move |tx, ch| {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM enishi_chat_log WHERE channel = ?1 AND line_user_id = ?2
                 ORDER BY at_ms DESC, id DESC LIMIT ?3"
            );
            let mut out = query_log(tx, &sql, params![ch, u.as_str(), limit])?;
            out.reverse();
            Ok(out)
        })
        .await
    }

    async fn log_since(&self, since: DateTime<Utc>) -> Result<Vec<LogEntry>, ChatStoreError> {
        let since = since.timestamp_millis();
        self.run(move |tx, ch| {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM enishi_chat_log WHERE channel = ?1 AND at_ms >= ?2
                 ORDER BY at_ms, id"
            );
            query_log(tx, &sql, params![ch, since])
        })
        .await
    }

    async fn purge_log(&self, before: DateTime<Utc>) -> Result<u64, ChatStoreError> {
        let before = before.timestamp_millis();
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached("DELETE FROM enishi_chat_log WHERE channel = ?1 AND at_ms < ?2")
                .map_err(sq)?
                .execute(params![ch, before])
                .map_err(sq)?;
            Ok(n as u64)
        })
        .await
    }
}
