//! The PostgreSQL delivery journal (feature `postgres`): several workers on several machines.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::{Client, Row};

use super::row::{self, COLUMNS, RawRow};
use super::{Claimed, DeliveryJournal, JournalError};
use crate::campaign::batch::{
    Batch, BatchOutcome, BatchRecord, BatchStatus, CampaignState, JournalCounts, SendRecord,
};
use crate::{BatchId, CampaignId};

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_journal_migrations`. `{s}` is replaced by the schema name. IDs use the "C"
/// collation so `ORDER BY id` is byte order, as in the other journals, whatever the database's
/// locale.
const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_journal_batches (
        id TEXT COLLATE \"C\" PRIMARY KEY,
        campaign TEXT COLLATE \"C\" NOT NULL,
        transport TEXT NOT NULL,
        recipients TEXT NOT NULL,
        recipient_count BIGINT NOT NULL,
        messages TEXT NOT NULL,
        retry_key TEXT NOT NULL,
        not_before_us BIGINT NOT NULL,
        arm TEXT,
        aggregation_unit TEXT,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        outcome TEXT,
        worker TEXT,
        lease_until_us BIGINT,
        updated_at_us BIGINT NOT NULL
    );
    CREATE INDEX enishi_journal_batches_claim
        ON {s}.enishi_journal_batches (campaign, status, not_before_us, id);
    CREATE INDEX enishi_journal_batches_sent
        ON {s}.enishi_journal_batches (updated_at_us) WHERE status = 'sent';
    CREATE INDEX enishi_journal_batches_planned
        ON {s}.enishi_journal_batches (not_before_us) WHERE status IN ('pending', 'in_flight');
    CREATE TABLE {s}.enishi_journal_campaigns (
        campaign TEXT COLLATE \"C\" PRIMARY KEY,
        state TEXT NOT NULL,
        running BOOLEAN NOT NULL,
        updated_at_us BIGINT NOT NULL
    );"];

/// Rows per `INSERT` of an enqueue, and the parameter bytes at which a chunk is cut early.
const CHUNK_ROWS: usize = 5_000;
const CHUNK_BYTES: usize = 8 << 20;

fn pg(message: &'static str) -> impl FnOnce(tokio_postgres::Error) -> JournalError {
    move |e| JournalError::storage(format!("postgres: {message}"), e)
}

/// The statements every hot call uses, prepared (and cached) per pooled connection.
#[derive(Debug)]
struct Prepared {
    claim: String,
    complete: String,
    release: String,
    release_unsent: String,
    exists: String,
}

/// A [`DeliveryJournal`] in PostgreSQL tables under one schema: several workers on several
/// machines share one campaign.
///
/// Migrations are applied on connect (under an advisory lock, so concurrent starts are safe).
/// A claim is one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)` statement, so any
/// number of workers claim disjoint batches without waiting for each other. Times are kept
/// to the microsecond.
///
/// Each call checks a connection out of a pool ([`crate::postgres`]), so many tasks may call
/// one journal at once and a lost connection is replaced; a call that fails on a lost
/// connection returns [`JournalError::Storage`] (an `enqueue` then stored nothing). Clones
/// share the pool.
#[derive(Clone)]
pub struct PostgresJournal {
    pool: Pool,
    prepared: Arc<Prepared>,
    schema: Arc<str>,
}

impl fmt::Debug for PostgresJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresJournal").field("schema", &self.schema).finish_non_exhaustive()
    }
}

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
fn check_schema(schema: &str) -> Result<(), JournalError> {
    if crate::postgres::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(JournalError::Storage {
            message: format!(
                "postgres: invalid schema name {schema:?} ({})",
                crate::postgres::SCHEMA_NAME_RULE
            ),
            source: None,
        })
    }
}

impl PostgresJournal {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`], without TLS: use
    /// [`PostgresJournal::from_pool`] with your own pool for TLS or to share one) and migrates
    /// `schema`.
    ///
    /// # Errors
    /// As [`PostgresJournal::from_pool`], or [`JournalError::Storage`] for a URL that is not a
    /// connection string.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, JournalError> {
        check_schema(schema)?;
        let pool = crate::postgres::pool(url)
            .map_err(|e| JournalError::storage("postgres: making the connection pool", e))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`JournalError::Storage`] for a schema name outside `[a-z_][a-z0-9_]*` (≤ 63 bytes) or
    /// when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, JournalError> {
        check_schema(schema)?;
        {
            let mut client = checkout(&pool).await?;
            migrate(&mut client, schema).await?;
        }
        let s = schema;
        let claim = format!(
            "WITH pending AS (
                SELECT id, not_before_us FROM {s}.enishi_journal_batches
                WHERE campaign = $1 AND status = 'pending' AND not_before_us <= $2
                  AND NOT EXISTS (SELECT 1 FROM {s}.enishi_journal_campaigns
                                  WHERE campaign = $1 AND NOT running)
                ORDER BY not_before_us, id LIMIT $3
                FOR UPDATE SKIP LOCKED
             ), expired AS (
                SELECT id, not_before_us FROM {s}.enishi_journal_batches
                WHERE campaign = $1 AND status = 'in_flight' AND not_before_us <= $2
                  AND (lease_until_us IS NULL OR lease_until_us < $2)
                  AND NOT EXISTS (SELECT 1 FROM {s}.enishi_journal_campaigns
                                  WHERE campaign = $1 AND NOT running)
                ORDER BY not_before_us, id LIMIT $3
                FOR UPDATE SKIP LOCKED
             ), due AS (
                SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) AS u
                ORDER BY not_before_us, id LIMIT $3
             )
             UPDATE {s}.enishi_journal_batches AS b
             SET status = 'in_flight', attempts = b.attempts + 1, worker = $4,
                 lease_until_us = $5, updated_at_us = $2
             FROM due WHERE b.id = due.id
             RETURNING {}",
            prefixed_columns("b")
        );
        let complete = format!(
            "UPDATE {s}.enishi_journal_batches
             SET status = $2, outcome = $3, updated_at_us = $4, lease_until_us = NULL
             WHERE id = $1 AND status IN ('pending', 'in_flight')"
        );
        let release = format!(
            "UPDATE {s}.enishi_journal_batches
             SET status = 'pending', not_before_us = $2, updated_at_us = $3, lease_until_us = NULL
             WHERE id = $1 AND status IN ('pending', 'in_flight')"
        );
        let release_unsent = format!(
            "UPDATE {s}.enishi_journal_batches
             SET status = 'pending', not_before_us = $2, updated_at_us = $3, lease_until_us = NULL,
                 attempts = GREATEST(attempts - 1, 0)
             WHERE id = $1 AND status = 'in_flight'"
        );
        let exists = format!("SELECT 1 FROM {s}.enishi_journal_batches WHERE id = $1");
        let prepared = Prepared { claim, complete, release, release_unsent, exists };
        Ok(Self { pool, prepared: Arc::new(prepared), schema: schema.into() })
    }

    /// Runs one of the release statements for `batch`.
    async fn put_back(
        &self,
        sql: &str,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&batch.as_str(), &row::micros(not_before), &row::micros(now)];
        let n = self.execute(sql, &params, "releasing a batch").await?;
        if n == 0 { self.ensure_known(batch).await } else { Ok(()) }
    }

    async fn client(&self) -> Result<Object, JournalError> {
        checkout(&self.pool).await
    }

    /// Runs one statement (prepared and cached on the pooled connection) and returns its rows.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        doing: &'static str,
    ) -> Result<Vec<Row>, JournalError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg(doing))?;
        client.query(&statement, params).await.map_err(pg(doing))
    }

    /// Runs one statement (prepared and cached on the pooled connection) and counts its rows.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        doing: &'static str,
    ) -> Result<u64, JournalError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg(doing))?;
        client.execute(&statement, params).await.map_err(pg(doing))
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// An update that touched nothing hit a final status (a no-op by contract) or no batch.
    async fn ensure_known(&self, batch: &BatchId) -> Result<(), JournalError> {
        let found =
            self.query(&self.prepared.exists, &[&batch.as_str()], "looking a batch up").await?;
        if !found.is_empty() { Ok(()) } else { Err(JournalError::UnknownBatch(batch.clone())) }
    }
}

async fn checkout(pool: &Pool) -> Result<Object, JournalError> {
    pool.get().await.map_err(|e| JournalError::storage("postgres: connecting", e))
}

fn prefixed_columns(alias: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

async fn migrate(client: &mut Client, schema: &str) -> Result<(), JournalError> {
    crate::postgres::migrate(client, schema, "enishi_journal", MIGRATIONS)
        .await
        .map_err(|e| JournalError::storage(e.to_string(), e.source))
}

fn raw_row(r: &Row) -> Result<RawRow, JournalError> {
    let get = pg("reading a batch row");
    let read = || -> Result<RawRow, tokio_postgres::Error> {
        Ok(RawRow {
            id: r.try_get(0)?,
            campaign: r.try_get(1)?,
            transport: r.try_get(2)?,
            recipients: r.try_get(3)?,
            messages: r.try_get(4)?,
            retry_key: r.try_get(5)?,
            not_before_us: r.try_get(6)?,
            arm: r.try_get(7)?,
            aggregation_unit: r.try_get(8)?,
            status: r.try_get(9)?,
            attempts: r.try_get(10)?,
            outcome: r.try_get(11)?,
            updated_at_us: r.try_get(12)?,
        })
    };
    read().map_err(get)
}

/// The enqueue transaction: insert-if-absent in chunks (sorted by ID, so two planners
/// enqueueing overlapping plans lock rows in the same order and cannot deadlock), then a
/// conflict check of the rows that were already there.
async fn enqueue_tx(
    client: &mut Client,
    schema: &str,
    batches: &[Batch],
) -> Result<u64, JournalError> {
    let mut unique: HashMap<&BatchId, row::Encoded> = HashMap::new();
    for b in batches {
        let e = row::encode(b)?;
        match unique.get(&b.id) {
            Some(prev) if prev.recipients != e.recipients => {
                return Err(JournalError::Conflict(b.id.clone()));
            }
            Some(_) => {}
            None => {
                unique.insert(&b.id, e);
            }
        }
    }
    let mut rows: Vec<row::Encoded> = unique.into_values().collect();
    rows.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let insert = format!(
        "INSERT INTO {schema}.enishi_journal_batches (id, campaign, transport, recipients,
            recipient_count, messages, retry_key, not_before_us, arm, aggregation_unit, status,
            attempts, updated_at_us)
         SELECT id, campaign, transport, recipients, recipient_count, messages, retry_key,
            not_before_us, arm, aggregation_unit, 'pending', 0, not_before_us
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                     $7::text[], $8::bigint[], $9::text[], $10::text[])
           AS t(id, campaign, transport, recipients, recipient_count, messages, retry_key,
                not_before_us, arm, aggregation_unit)
         ON CONFLICT (id) DO NOTHING
         RETURNING id"
    );
    let existing = format!(
        "SELECT id, recipients FROM {schema}.enishi_journal_batches WHERE id = ANY($1::text[])"
    );
    let tx = client.transaction().await.map_err(pg("beginning the enqueue"))?;
    let insert = tx.prepare(&insert).await.map_err(pg("preparing the insert"))?;
    let existing = tx.prepare(&existing).await.map_err(pg("preparing the conflict check"))?;
    let mut added = 0u64;
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < CHUNK_ROWS && (bytes < CHUNK_BYTES || end == start)
        {
            bytes += rows[end].recipients.len() + rows[end].messages.len();
            end += 1;
        }
        let chunk = &rows[start..end];
        start = end;
        let col = |f: fn(&row::Encoded) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
        let ids = col(|e| e.id.as_str());
        let inserted = tx
            .query(
                &insert,
                &[
                    &ids,
                    &col(|e| &e.campaign),
                    &col(|e| e.transport),
                    &col(|e| &e.recipients),
                    &chunk.iter().map(|e| e.recipient_count).collect::<Vec<i64>>(),
                    &col(|e| &e.messages),
                    &col(|e| &e.retry_key),
                    &chunk.iter().map(|e| e.not_before_us).collect::<Vec<i64>>(),
                    &chunk.iter().map(|e| e.arm.as_deref()).collect::<Vec<Option<&str>>>(),
                    &chunk
                        .iter()
                        .map(|e| e.aggregation_unit.as_deref())
                        .collect::<Vec<Option<&str>>>(),
                ],
            )
            .await
            .map_err(pg("inserting batches"))?;
        added += inserted.len() as u64;
        if inserted.len() == chunk.len() {
            continue;
        }
        let new: std::collections::HashSet<String> =
            inserted.iter().map(|r| r.get::<_, String>(0)).collect();
        let old: Vec<&str> = ids.into_iter().filter(|id| !new.contains(*id)).collect();
        let wanted: HashMap<&str, &str> =
            chunk.iter().map(|e| (e.id.as_str(), e.recipients.as_str())).collect();
        for r in tx.query(&existing, &[&old]).await.map_err(pg("checking for conflicts"))? {
            let id: String = r.get(0);
            let stored: String = r.get(1);
            if wanted.get(id.as_str()).is_some_and(|w| *w != stored) {
                // Dropping the transaction rolls it back: nothing of the call is stored.
                let id = BatchId::new(id).map_err(|e| JournalError::Corrupt {
                    what: "batch ID",
                    message: e.to_string(),
                })?;
                return Err(JournalError::Conflict(id));
            }
        }
    }
    tx.commit().await.map_err(pg("committing the enqueue"))?;
    Ok(added)
}

#[async_trait]
impl DeliveryJournal for PostgresJournal {
    async fn enqueue(&self, batches: &[Batch]) -> Result<u64, JournalError> {
        if batches.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        enqueue_tx(&mut client, &self.schema, batches).await
    }

    async fn claim(
        &self,
        campaign: &CampaignId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, JournalError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &self.prepared.claim,
                &[
                    &campaign.as_str(),
                    &row::micros(now),
                    &limit,
                    &worker,
                    &row::lease_end_us(now, lease),
                ],
                "claiming batches",
            )
            .await?;
        let mut claimed =
            rows.iter().map(|r| raw_row(r)?.into_claimed()).collect::<Result<Vec<_>, _>>()?;
        row::sort_claimed(&mut claimed);
        Ok(claimed)
    }

    async fn complete(
        &self,
        batch: &BatchId,
        outcome: &BatchOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let status = match outcome {
            BatchOutcome::Accepted { .. } => BatchStatus::Sent,
            BatchOutcome::Failed { .. } => BatchStatus::Failed,
        };
        let n = self
            .execute(
                &self.prepared.complete,
                &[
                    &batch.as_str(),
                    &status.as_str(),
                    &row::outcome_json(outcome)?,
                    &row::micros(now),
                ],
                "completing a batch",
            )
            .await?;
        if n == 0 { self.ensure_known(batch).await } else { Ok(()) }
    }

    async fn release(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(&self.prepared.release, batch, not_before, now).await
    }

    async fn release_unsent(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(&self.prepared.release_unsent, batch, not_before, now).await
    }

    async fn set_state(
        &self,
        campaign: &CampaignId,
        state: &CampaignState,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        // One statement: the state and the cancellation of pending batches land together.
        let sql = format!(
            "WITH st AS (
                INSERT INTO {campaigns} (campaign, state, running, updated_at_us)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (campaign) DO UPDATE
                SET state = excluded.state, running = excluded.running,
                    updated_at_us = excluded.updated_at_us
             )
             UPDATE {batches} SET status = 'cancelled', updated_at_us = $4
             WHERE $5 AND campaign = $1 AND status = 'pending'",
            campaigns = self.t("enishi_journal_campaigns"),
            batches = self.t("enishi_journal_batches"),
        );
        self.execute(
            &sql,
            &[
                &campaign.as_str(),
                &row::state_json(state)?,
                &(*state == CampaignState::Running),
                &row::micros(now),
                &(*state == CampaignState::Cancelled),
            ],
            "setting the campaign state",
        )
        .await?;
        Ok(())
    }

    async fn state(&self, campaign: &CampaignId) -> Result<CampaignState, JournalError> {
        let sql =
            format!("SELECT state FROM {} WHERE campaign = $1", self.t("enishi_journal_campaigns"));
        let row = self
            .query(&sql, &[&campaign.as_str()], "reading the campaign state")
            .await?
            .into_iter()
            .next();
        match row {
            None => Ok(CampaignState::Running),
            Some(r) => row::state(&r.try_get::<_, String>(0).map_err(pg("reading a state"))?),
        }
    }

    async fn counts(&self, campaign: &CampaignId) -> Result<JournalCounts, JournalError> {
        let sql = format!(
            "SELECT status, COUNT(*), COALESCE(SUM(recipient_count), 0)::BIGINT
             FROM {} WHERE campaign = $1 GROUP BY status",
            self.t("enishi_journal_batches")
        );
        let rows = self.query(&sql, &[&campaign.as_str()], "counting batches").await?;
        let mut c = JournalCounts::default();
        for r in rows {
            let status: String = r.try_get(0).map_err(pg("reading the counts"))?;
            let batches: i64 = r.try_get(1).map_err(pg("reading the counts"))?;
            let recipients: i64 = r.try_get(2).map_err(pg("reading the counts"))?;
            let (batches, recipients) =
                (u64::try_from(batches).unwrap_or(0), u64::try_from(recipients).unwrap_or(0));
            c.add(row::status(&status)?, batches, recipients);
        }
        Ok(c)
    }

    async fn records(&self, campaign: &CampaignId) -> Result<Vec<BatchRecord>, JournalError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE campaign = $1 ORDER BY id",
            self.t("enishi_journal_batches")
        );
        let rows = self.query(&sql, &[&campaign.as_str()], "reading records").await?;
        rows.iter().map(|r| raw_row(r)?.into_record()).collect()
    }

    async fn sends_since(&self, since: DateTime<Utc>) -> Result<Vec<SendRecord>, JournalError> {
        let t = self.t("enishi_journal_batches");
        let sql = format!(
            "SELECT status, campaign, recipients, not_before_us, updated_at_us
             FROM {t} WHERE status = 'sent' AND updated_at_us >= $1
             UNION ALL
             SELECT status, campaign, recipients, not_before_us, updated_at_us
             FROM {t} WHERE status IN ('pending', 'in_flight') AND not_before_us >= $1"
        );
        let rows = self.query(&sql, &[&row::micros(since)], "reading sends").await?;
        let mut out = Vec::new();
        for r in rows {
            let get = || -> Result<(String, String, String, i64, i64), tokio_postgres::Error> {
                Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?))
            };
            let (status, campaign, recipients, not_before_us, updated_at_us) =
                get().map_err(pg("reading sends"))?;
            row::push_sends(
                &mut out,
                &status,
                campaign,
                &recipients,
                not_before_us,
                updated_at_us,
            )?;
        }
        Ok(out)
    }
}
