//! PostgreSQL chat store (feature `postgres`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::store::{
    ChatStore, ChatStoreError, HandOff, LOG_COLUMNS, LogEntry, SurveyProgress, attribute_from_json,
    attribute_json, check_entry, check_reason, check_survey, customer, entry_from_row, from_ms,
    idle_cutoff_ms, user,
};
use crate::segment::AttrValue;
use crate::{CustomerId, LineUserId};

const BACKEND: &str = "postgres";

fn pg(e: tokio_postgres::Error) -> ChatStoreError {
    ChatStoreError::backend(BACKEND, e)
}

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_chat_migrations`. `{s}` is replaced by the schema name.
const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_chat_handoffs (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        since_ms BIGINT NOT NULL,
        last_activity_ms BIGINT NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE {s}.enishi_chat_attributes (
        channel TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        PRIMARY KEY (channel, customer_id, key)
    );
    CREATE TABLE {s}.enishi_chat_surveys (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        survey TEXT NOT NULL,
        step BIGINT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE {s}.enishi_chat_log (
        id BIGSERIAL PRIMARY KEY,
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        customer_id TEXT,
        direction TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        intent TEXT,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX enishi_chat_log_user ON {s}.enishi_chat_log (channel, line_user_id, at_ms);
    CREATE INDEX enishi_chat_log_at ON {s}.enishi_chat_log (channel, at_ms);"];

/// A chat store in PostgreSQL tables under one schema (the same schema and pool as the other
/// stores, see [`Storage`](crate::storage::Storage)).
///
/// Migrations are applied on connect (under an advisory lock, so concurrent starts are safe).
/// Every call is one statement (or two on one connection), so processes sharing the database
/// need no lock: starting a hand-off is one `INSERT … ON CONFLICT DO UPDATE` that says whether
/// it inserted, and ending an idle one is a `DELETE` conditional on the last activity, which
/// spares a hand-off another process just refreshed. Each call checks a connection out of a
/// pool ([`crate::postgres`]), so a lost connection is replaced; a call that fails on a lost
/// connection returns [`ChatStoreError::Backend`].
#[derive(Clone)]
pub struct PostgresChatStore {
    pool: Pool,
    schema: Arc<str>,
    channel: Arc<str>,
}

impl fmt::Debug for PostgresChatStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresChatStore")
            .field("schema", &self.schema)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PostgresChatStore {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`]; use
    /// [`PostgresChatStore::from_pool`] to share one) and migrates `schema`.
    ///
    /// # Errors
    /// As [`PostgresChatStore::from_pool`], or [`ChatStoreError::InvalidConfig`] for a URL
    /// that is not a connection string.
    pub async fn connect(url: &str, schema: &str, channel: &str) -> Result<Self, ChatStoreError> {
        let pool = crate::postgres::pool(url).map_err(|_| ChatStoreError::InvalidConfig {
            what: "PostgreSQL URL",
            value: String::new(),
            reason: "expected a PostgreSQL connection string",
        })?;
        Self::from_pool(pool, schema, channel).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidConfig`] for a schema outside `[a-z_][a-z0-9_]*` (≤ 63 bytes)
    /// or an empty channel (or one with NUL); [`ChatStoreError::Backend`] when PostgreSQL
    /// fails or cannot be reached.
    pub async fn from_pool(
        pool: Pool,
        schema: &str,
        channel: &str,
    ) -> Result<Self, ChatStoreError> {
        if !crate::postgres::is_valid_schema_name(schema) {
            return Err(ChatStoreError::InvalidConfig {
                what: "schema name",
                value: schema.to_owned(),
                reason: crate::postgres::SCHEMA_NAME_RULE,
            });
        }
        if channel.is_empty() || channel.contains('\0') {
            return Err(ChatStoreError::InvalidConfig {
                what: "channel",
                value: channel.replace('\0', "\u{FFFD}"),
                reason: "expected the LINE channel ID",
            });
        }
        let mut client = pool.get().await.map_err(|e| ChatStoreError::backend(BACKEND, e))?;
        crate::postgres::migrate(&mut client, schema, "enishi_chat", MIGRATIONS)
            .await
            .map_err(|e| ChatStoreError::backend(BACKEND, e))?;
        drop(client);
        Ok(Self { pool, schema: schema.into(), channel: channel.into() })
    }

    async fn client(&self) -> Result<Object, ChatStoreError> {
        self.pool.get().await.map_err(|e| ChatStoreError::backend(BACKEND, e))
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    async fn read(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ChatStoreError> {
        self.client().await?.query(sql, params).await.map_err(pg)
    }

    async fn write(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ChatStoreError> {
        self.client().await?.execute(sql, params).await.map_err(pg)
    }

    async fn read_log(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<LogEntry>, ChatStoreError> {
        self.read(sql, params)
            .await?
            .into_iter()
            .map(|r| {
                entry_from_row((
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                ))
            })
            .collect()
    }
}

fn to_handoff(r: &Row) -> Result<HandOff, ChatStoreError> {
    Ok(HandOff::new(user(r.get(0))?, r.get::<_, String>(1), from_ms(r.get(2)), from_ms(r.get(3))))
}

#[async_trait::async_trait]
impl ChatStore for PostgresChatStore {
    async fn start_handoff(
        &self,
        user: &LineUserId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        check_reason(reason)?;
        // `xmax = 0` holds for a row this statement inserted, not for one it updated.
        let sql = format!(
            "INSERT INTO {} AS h (channel, line_user_id, reason, since_ms, last_activity_ms)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (channel, line_user_id) DO UPDATE
             SET last_activity_ms = GREATEST(h.last_activity_ms, EXCLUDED.last_activity_ms)
             RETURNING (xmax = 0) AS inserted",
            self.t("enishi_chat_handoffs")
        );
        let rows = self
            .read(&sql, &[&&*self.channel, &user.as_str(), &reason, &now.timestamp_millis()])
            .await?;
        rows.first()
            .map(|r| r.get::<_, bool>(0))
            .ok_or_else(|| ChatStoreError::Corrupt("an upsert returned no row".into()))
    }

    async fn active_handoff(
        &self,
        user: &LineUserId,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<HandOff>, ChatStoreError> {
        let t = self.t("enishi_chat_handoffs");
        let cutoff = idle_cutoff_ms(idle, now);
        let client = self.client().await?;
        // The condition is checked again on the row a concurrent refresh updated (read
        // committed), so a hand-off refreshed meanwhile is not removed.
        let delete = format!(
            "DELETE FROM {t} WHERE channel = $1 AND line_user_id = $2 AND last_activity_ms < $3"
        );
        client.execute(&delete, &[&&*self.channel, &user.as_str(), &cutoff]).await.map_err(pg)?;
        let select = format!(
            "SELECT line_user_id, reason, since_ms, last_activity_ms FROM {t}
             WHERE channel = $1 AND line_user_id = $2"
        );
        let row =
            client.query_opt(&select, &[&&*self.channel, &user.as_str()]).await.map_err(pg)?;
        row.as_ref().map(to_handoff).transpose()
    }

    async fn touch_handoff(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        let sql = format!(
            "UPDATE {} SET last_activity_ms = GREATEST(last_activity_ms, $3)
             WHERE channel = $1 AND line_user_id = $2",
            self.t("enishi_chat_handoffs")
        );
        let n =
            self.write(&sql, &[&&*self.channel, &user.as_str(), &now.timestamp_millis()]).await?;
        Ok(n == 1)
    }

    async fn end_handoff(&self, user: &LineUserId) -> Result<bool, ChatStoreError> {
        let sql = format!(
            "DELETE FROM {} WHERE channel = $1 AND line_user_id = $2",
            self.t("enishi_chat_handoffs")
        );
        Ok(self.write(&sql, &[&&*self.channel, &user.as_str()]).await? == 1)
    }

    async fn handoffs(&self) -> Result<Vec<HandOff>, ChatStoreError> {
        let sql = format!(
            "SELECT line_user_id, reason, since_ms, last_activity_ms FROM {} WHERE channel = $1
             ORDER BY since_ms, line_user_id COLLATE \"C\"",
            self.t("enishi_chat_handoffs")
        );
        self.read(&sql, &[&&*self.channel]).await?.iter().map(to_handoff).collect()
    }

    async fn set_attribute(
        &self,
        customer: &CustomerId,
        key: &str,
        value: &AttrValue,
        now: DateTime<Utc>,
    ) -> Result<(), ChatStoreError> {
        let json = attribute_json(key, value)?;
        let sql = format!(
            "INSERT INTO {} AS a (channel, customer_id, key, value, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel, customer_id, key) DO UPDATE
             SET value = EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms
             WHERE EXCLUDED.updated_at_ms >= a.updated_at_ms",
            self.t("enishi_chat_attributes")
        );
        let params: [&(dyn ToSql + Sync); 5] =
            [&&*self.channel, &customer.as_str(), &key, &json, &now.timestamp_millis()];
        self.write(&sql, &params).await?;
        Ok(())
    }

    async fn attributes(
        &self,
    ) -> Result<BTreeMap<CustomerId, BTreeMap<String, AttrValue>>, ChatStoreError> {
        let sql = format!(
            "SELECT customer_id, key, value FROM {} WHERE channel = $1",
            self.t("enishi_chat_attributes")
        );
        let mut out: BTreeMap<CustomerId, BTreeMap<String, AttrValue>> = BTreeMap::new();
        for r in self.read(&sql, &[&&*self.channel]).await? {
            let value = attribute_from_json(r.get(2))?;
            out.entry(customer(r.get(0))?).or_default().insert(r.get(1), value);
        }
        Ok(out)
    }

    async fn set_survey(
        &self,
        user: &LineUserId,
        progress: Option<&SurveyProgress>,
    ) -> Result<(), ChatStoreError> {
        check_survey(progress)?;
        let t = self.t("enishi_chat_surveys");
        match progress {
            Some(p) => {
                let sql = format!(
                    "INSERT INTO {t} (channel, line_user_id, survey, step, started_at_ms)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (channel, line_user_id) DO UPDATE
                     SET survey = EXCLUDED.survey, step = EXCLUDED.step,
                         started_at_ms = EXCLUDED.started_at_ms"
                );
                let params: [&(dyn ToSql + Sync); 5] = [
                    &&*self.channel,
                    &user.as_str(),
                    &p.survey,
                    &i64::from(p.step),
                    &p.started_at.timestamp_millis(),
                ];
                self.write(&sql, &params).await?;
            }
            None => {
                let sql = format!("DELETE FROM {t} WHERE channel = $1 AND line_user_id = $2");
                self.write(&sql, &[&&*self.channel, &user.as_str()]).await?;
            }
        }
        Ok(())
    }

    async fn survey_of(&self, user: &LineUserId) -> Result<Option<SurveyProgress>, ChatStoreError> {
        let sql = format!(
            "SELECT survey, step, started_at_ms FROM {} WHERE channel = $1 AND line_user_id = $2",
            self.t("enishi_chat_surveys")
        );
        let rows = self.read(&sql, &[&&*self.channel, &user.as_str()]).await?;
        rows.first()
            .map(|r| {
                let step: i64 = r.get(1);
                let step = u32::try_from(step)
                    .map_err(|_| ChatStoreError::Corrupt(format!("survey step {step}")))?;
                Ok(SurveyProgress::new(r.get::<_, String>(0), step, from_ms(r.get(2))))
            })
            .transpose()
    }

    async fn append_log(&self, entry: &LogEntry) -> Result<(), ChatStoreError> {
        check_entry(entry)?;
        let sql = format!(
            "INSERT INTO {} (channel, {LOG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            self.t("enishi_chat_log")
        );
        let params: [&(dyn ToSql + Sync); 8] = [
            &&*self.channel,
            &entry.line_user.as_str(),
            &entry.customer.as_ref().map(CustomerId::as_str),
            &entry.direction.as_str(),
            &entry.kind,
            &entry.text,
            &entry.intent,
            &entry.at.timestamp_millis(),
        ];
        self.write(&sql, &params).await?;
        Ok(())
    }

    async fn log_of(
        &self,
        user: &LineUserId,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ChatStoreError> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM {} WHERE channel = $1 AND line_user_id = $2
             ORDER BY at_ms DESC, id DESC LIMIT $3",
            self.t("enishi_chat_log")
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = self.read_log(&sql, &[&&*self.channel, &user.as_str(), &limit]).await?;
        out.reverse();
        Ok(out)
    }

    async fn log_since(&self, since: DateTime<Utc>) -> Result<Vec<LogEntry>, ChatStoreError> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM {} WHERE channel = $1 AND at_ms >= $2 ORDER BY at_ms, id",
            self.t("enishi_chat_log")
        );
        self.read_log(&sql, &[&&*self.channel, &since.timestamp_millis()]).await
    }

    async fn purge_log(&self, before: DateTime<Utc>) -> Result<u64, ChatStoreError> {
        let sql =
            format!("DELETE FROM {} WHERE channel = $1 AND at_ms < $2", self.t("enishi_chat_log"));
        self.write(&sql, &[&&*self.channel, &before.timestamp_millis()]).await
    }
}
