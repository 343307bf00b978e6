//! The SQLite delivery journal (feature `sqlite`): the embedded default.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};

use super::row::{self, COLUMNS, RawRow};
use super::{Claimed, DeliveryJournal, JournalError};
use crate::campaign::batch::{
    Batch, BatchOutcome, BatchRecord, BatchStatus, CampaignState, JournalCounts, SendRecord,
};
use crate::sqlite::{self, Durability, SharedConnection};
use crate::{BatchId, CampaignId};

/// Schema migrations, applied in order and recorded in `enishi_journal_migrations`.
const MIGRATIONS: &[&str] = &["CREATE TABLE enishi_journal_batches (
        id TEXT PRIMARY KEY NOT NULL,
        campaign TEXT NOT NULL,
        transport TEXT NOT NULL,
        recipients TEXT NOT NULL,
        recipient_count INTEGER NOT NULL,
        messages TEXT NOT NULL,
        retry_key TEXT NOT NULL,
        not_before_us INTEGER NOT NULL,
        arm TEXT,
        aggregation_unit TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        outcome TEXT,
        worker TEXT,
        lease_until_us INTEGER,
        updated_at_us INTEGER NOT NULL
    );
    CREATE INDEX enishi_journal_batches_claim
        ON enishi_journal_batches (campaign, status, not_before_us, id);
    CREATE INDEX enishi_journal_batches_sent
        ON enishi_journal_batches (updated_at_us) WHERE status = 'sent';
    CREATE INDEX enishi_journal_batches_planned
        ON enishi_journal_batches (not_before_us) WHERE status IN ('pending', 'in_flight');
    CREATE TABLE enishi_journal_campaigns (
        campaign TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL,
        running INTEGER NOT NULL,
        updated_at_us INTEGER NOT NULL
    );"];

fn sq(message: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |e| JournalError::storage(format!("sqlite: {message}"), e)
}

/// A [`DeliveryJournal`] in an SQLite database file: the embedded default.
///
/// Migrations are applied on open (the schema version is kept in
/// `enishi_journal_migrations`). Every write runs in an `IMMEDIATE` transaction, so several
/// journals (or processes) sharing one file still claim each batch exactly once. The file runs
/// in WAL mode with `synchronous = NORMAL`: a power cut may forget the last few outcomes, and
/// the batches concerned are then re-sent with their retry key, which LINE answers with 409.
/// Times are kept to the microsecond.
///
/// Blocking SQLite calls run on tokio's blocking pool: use the journal inside a tokio runtime.
/// One journal holds one connection; clones share it.
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    conn: SharedConnection,
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal at `path`.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        // NORMAL: every journal transition is idempotent, and a crash loses nothing under WAL.
        let conn = sqlite::open_file(path.as_ref(), Durability::Normal)
            .map_err(sq("opening the database"))?;
        Self::from_connection(conn)
    }

    /// A private in-memory journal (tests, demos; nothing survives it).
    ///
    /// # Errors
    /// [`JournalError::Storage`] when SQLite fails.
    pub fn in_memory() -> Result<Self, JournalError> {
        Self::from_connection(sqlite::open_in_memory().map_err(sq("opening in memory"))?)
    }

    /// Uses an open connection, applying pending migrations.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when a migration fails.
    pub fn from_connection(mut conn: Connection) -> Result<Self, JournalError> {
        sqlite::prepare(&conn).map_err(sq("setting the busy timeout"))?;
        sqlite::migrate(&mut conn, "enishi_journal_migrations", MIGRATIONS)
            .map_err(sq("migrating"))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    /// Runs `f` in a transaction on the blocking pool; commits when it returns `Ok`.
    async fn run<T: Send + 'static>(
        &self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        self.conn
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(behavior).map_err(sq("beginning"))?;
                let value = f(&tx)?;
                tx.commit().map_err(sq("committing"))?;
                Ok(value)
            })
            .await
            .map_err(|e| JournalError::storage("sqlite: the blocking task failed", e))?
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        self.run(TransactionBehavior::Immediate, f).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        self.run(TransactionBehavior::Deferred, f).await
    }
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        campaign: r.get(1)?,
        transport: r.get(2)?,
        recipients: r.get(3)?,
        messages: r.get(4)?,
        retry_key: r.get(5)?,
        not_before_us: r.get(6)?,
        arm: r.get(7)?,
        aggregation_unit: r.get(8)?,
        status: r.get(9)?,
        attempts: r.get(10)?,
        outcome: r.get(11)?,
        updated_at_us: r.get(12)?,
    })
}

/// Whether the batch exists: an update that touched nothing was either a final status (a
/// no-op by contract) or an unknown ID.
fn ensure_known(tx: &Transaction<'_>, id: &str) -> Result<(), JournalError> {
    let found = tx
        .prepare_cached("SELECT 1 FROM enishi_journal_batches WHERE id = ?1")
        .map_err(sq("preparing a lookup"))?
        .query_row([id], |_| Ok(()))
        .optional()
        .map_err(sq("looking a batch up"))?;
    match found {
        Some(()) => Ok(()),
        None => Err(JournalError::UnknownBatch(
            BatchId::new(id)
                .map_err(|e| JournalError::Corrupt { what: "batch ID", message: e.to_string() })?,
        )),
    }
}

fn enqueue_tx(tx: &Transaction<'_>, rows: &[row::Encoded]) -> Result<u64, JournalError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO enishi_journal_batches (id, campaign, transport, recipients,
                recipient_count, messages, retry_key, not_before_us, arm, aggregation_unit,
                status, attempts, updated_at_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', 0, ?8)
             ON CONFLICT (id) DO NOTHING",
        )
        .map_err(sq("preparing the insert"))?;
    let mut existing = tx
        .prepare_cached("SELECT recipients FROM enishi_journal_batches WHERE id = ?1")
        .map_err(sq("preparing the conflict check"))?;
    // Duplicates inside the call are compared here: the second one never reaches the table.
    let mut seen: HashMap<&BatchId, &str> = HashMap::new();
    let mut added = 0;
    for e in rows {
        if let Some(prev) = seen.get(&e.id) {
            if *prev != e.recipients {
                return Err(JournalError::Conflict(e.id.clone()));
            }
            continue;
        }
        let n = insert
            .execute(params![
                e.id.as_str(),
                e.campaign,
                e.transport,
                e.recipients,
                e.recipient_count,
                e.messages,
                e.retry_key,
                e.not_before_us,
                e.arm,
                e.aggregation_unit,
            ])
            .map_err(sq("inserting a batch"))?;
        if n == 0 {
            let stored: String =
                existing.query_row([e.id.as_str()], |r| r.get(0)).map_err(sq("reading a batch"))?;
            if stored != e.recipients {
                // Returning an error drops the transaction: nothing of the call is stored.
                return Err(JournalError::Conflict(e.id.clone()));
            }
        }
        added += n as u64;
        seen.insert(&e.id, &e.recipients);
    }
    Ok(added)
}

fn is_running(tx: &Transaction<'_>, campaign: &str) -> Result<bool, JournalError> {
    let running: Option<bool> = tx
        .prepare_cached("SELECT running FROM enishi_journal_campaigns WHERE campaign = ?1")
        .map_err(sq("preparing the state lookup"))?
        .query_row([campaign], |r| r.get(0))
        .optional()
        .map_err(sq("reading the campaign state"))?;
    Ok(running.unwrap_or(true))
}

fn claim_tx(
    tx: &Transaction<'_>,
    campaign: &str,
    worker: &str,
    max: usize,
    now_us: i64,
    until_us: i64,
) -> Result<Vec<Claimed>, JournalError> {
    if max == 0 || !is_running(tx, campaign)? {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    // Two index range scans (pending, expired leases) merged here: each is ordered by the
    // claim index, so neither reads more than `max` rows of due work.
    let mut due: Vec<(i64, String)> = Vec::new();
    for sql in [
        "SELECT not_before_us, id FROM enishi_journal_batches
         WHERE campaign = ?1 AND status = 'pending' AND not_before_us <= ?2
         ORDER BY not_before_us, id LIMIT ?3",
        "SELECT not_before_us, id FROM enishi_journal_batches
         WHERE campaign = ?1 AND status = 'in_flight' AND not_before_us <= ?2
           AND (lease_until_us IS NULL OR lease_until_us < ?2)
         ORDER BY not_before_us, id LIMIT ?3",
    ] {
        let mut stmt = tx.prepare_cached(sql).map_err(sq("preparing the claim"))?;
        let rows = stmt
            .query_map(params![campaign, now_us, limit], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sq("finding due batches"))?;
        for r in rows {
            due.push(r.map_err(sq("reading due batches"))?);
        }
    }
    due.sort();
    due.truncate(max);
    let sql = format!(
        "UPDATE enishi_journal_batches SET status = 'in_flight', attempts = attempts + 1,
            worker = ?2, lease_until_us = ?3, updated_at_us = ?4
         WHERE id = ?1 RETURNING {COLUMNS}"
    );
    let mut update = tx.prepare_cached(&sql).map_err(sq("preparing the claim update"))?;
    let mut claimed = Vec::with_capacity(due.len());
    for (_, id) in due {
        let raw = update
            .query_row(params![id, worker, until_us, now_us], raw_row)
            .map_err(sq("claiming a batch"))?;
        claimed.push(raw.into_claimed()?);
    }
    row::sort_claimed(&mut claimed);
    Ok(claimed)
}

impl SqliteJournal {
    /// Puts a batch back to pending, due at `not_before`; `unsent` also takes its claim back
    /// (only from in flight).
    async fn put_back(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
        unsent: bool,
    ) -> Result<(), JournalError> {
        let sql = if unsent {
            "UPDATE enishi_journal_batches
             SET status = 'pending', not_before_us = ?2, updated_at_us = ?3,
                 lease_until_us = NULL, attempts = MAX(attempts - 1, 0)
             WHERE id = ?1 AND status = 'in_flight'"
        } else {
            "UPDATE enishi_journal_batches
             SET status = 'pending', not_before_us = ?2, updated_at_us = ?3, lease_until_us = NULL
             WHERE id = ?1 AND status IN ('pending', 'in_flight')"
        };
        let id = batch.as_str().to_owned();
        let (not_before_us, now_us) = (row::micros(not_before), row::micros(now));
        self.write(move |tx| {
            let n = tx
                .prepare_cached(sql)
                .map_err(sq("preparing the release"))?
                .execute(params![id, not_before_us, now_us])
                .map_err(sq("releasing a batch"))?;
            if n == 0 { ensure_known(tx, &id) } else { Ok(()) }
        })
        .await
    }
}

#[async_trait]
impl DeliveryJournal for SqliteJournal {
    async fn enqueue(&self, batches: &[Batch]) -> Result<u64, JournalError> {
        if batches.is_empty() {
            return Ok(0);
        }
        // Encoded once, here: the blocking task needs owned data, and the encoded rows are
        // smaller than the batches.
        let rows = batches.iter().map(row::encode).collect::<Result<Vec<_>, _>>()?;
        self.write(move |tx| enqueue_tx(tx, &rows)).await
    }

    async fn claim(
        &self,
        campaign: &CampaignId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, JournalError> {
        let campaign = campaign.as_str().to_owned();
        let worker = worker.to_owned();
        let now_us = row::micros(now);
        let until_us = row::lease_end_us(now, lease);
        self.write(move |tx| claim_tx(tx, &campaign, &worker, max, now_us, until_us)).await
    }

    async fn complete(
        &self,
        batch: &BatchId,
        outcome: &BatchOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let id = batch.as_str().to_owned();
        let status = match outcome {
            BatchOutcome::Accepted { .. } => BatchStatus::Sent,
            BatchOutcome::Failed { .. } => BatchStatus::Failed,
        };
        let outcome = row::outcome_json(outcome)?;
        let now_us = row::micros(now);
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE enishi_journal_batches
                     SET status = ?2, outcome = ?3, updated_at_us = ?4, lease_until_us = NULL
                     WHERE id = ?1 AND status IN ('pending', 'in_flight')",
                )
                .map_err(sq("preparing the completion"))?
                .execute(params![id, status.as_str(), outcome, now_us])
                .map_err(sq("completing a batch"))?;
            if n == 0 { ensure_known(tx, &id) } else { Ok(()) }
        })
        .await
    }

    async fn release(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(batch, not_before, now, false).await
    }

    async fn release_unsent(
        &self,
        batch: &BatchId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.put_back(batch, not_before, now, true).await
    }

    async fn set_state(
        &self,
        campaign: &CampaignId,
        state: &CampaignState,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        let campaign = campaign.as_str().to_owned();
        let json = row::state_json(state)?;
        let running = *state == CampaignState::Running;
        let cancel = *state == CampaignState::Cancelled;
        let now_us = row::micros(now);
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO enishi_journal_campaigns (campaign, state, running, updated_at_us)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (campaign) DO UPDATE
                 SET state = excluded.state, running = excluded.running,
                     updated_at_us = excluded.updated_at_us",
            )
            .map_err(sq("preparing the state update"))?
            .execute(params![campaign, json, running, now_us])
            .map_err(sq("setting the campaign state"))?;
            if cancel {
                tx.prepare_cached(
                    "UPDATE enishi_journal_batches SET status = 'cancelled', updated_at_us = ?2
                     WHERE campaign = ?1 AND status = 'pending'",
                )
                .map_err(sq("preparing the cancellation"))?
                .execute(params![campaign, now_us])
                .map_err(sq("cancelling pending batches"))?;
            }
            Ok(())
        })
        .await
    }

    async fn state(&self, campaign: &CampaignId) -> Result<CampaignState, JournalError> {
        let campaign = campaign.as_str().to_owned();
        self.read(move |tx| {
            let json: Option<String> = tx
                .prepare_cached("SELECT state FROM enishi_journal_campaigns WHERE campaign = ?1")
                .map_err(sq("preparing the state lookup"))?
                .query_row([campaign], |r| r.get(0))
                .optional()
                .map_err(sq("reading the campaign state"))?;
            json.map_or(Ok(CampaignState::Running), |j| row::state(&j))
        })
        .await
    }

    async fn counts(&self, campaign: &CampaignId) -> Result<JournalCounts, JournalError> {
        let campaign = campaign.as_str().to_owned();
        self.read(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT status, COUNT(*), COALESCE(SUM(recipient_count), 0)
                     FROM enishi_journal_batches WHERE campaign = ?1 GROUP BY status",
                )
                .map_err(sq("preparing the counts"))?;
            let rows = stmt
                .query_map([campaign], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(sq("counting batches"))?;
            let mut c = JournalCounts::default();
            for r in rows {
                let (status, batches, recipients) = r.map_err(sq("reading the counts"))?;
                let (batches, recipients) = (to_u64(batches), to_u64(recipients));
                c.add(row::status(&status)?, batches, recipients);
            }
            Ok(c)
        })
        .await
    }

    async fn records(&self, campaign: &CampaignId) -> Result<Vec<BatchRecord>, JournalError> {
        let campaign = campaign.as_str().to_owned();
        self.read(move |tx| {
            let sql = format!(
                "SELECT {COLUMNS} FROM enishi_journal_batches WHERE campaign = ?1 ORDER BY id"
            );
            let mut stmt = tx.prepare_cached(&sql).map_err(sq("preparing the records"))?;
            let rows = stmt.query_map([campaign], raw_row).map_err(sq("reading records"))?;
            rows.map(|r| r.map_err(sq("reading a record"))?.into_record()).collect()
        })
        .await
    }

    async fn sends_since(&self, since: DateTime<Utc>) -> Result<Vec<SendRecord>, JournalError> {
        let since_us = row::micros(since);
        self.read(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT status, campaign, recipients, not_before_us, updated_at_us
                     FROM enishi_journal_batches WHERE status = 'sent' AND updated_at_us >= ?1
                     UNION ALL
                     SELECT status, campaign, recipients, not_before_us, updated_at_us
                     FROM enishi_journal_batches
                     WHERE status IN ('pending', 'in_flight') AND not_before_us >= ?1",
                )
                .map_err(sq("preparing the sends query"))?;
            let mut rows = stmt.query([since_us]).map_err(sq("reading sends"))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(sq("reading sends"))? {
                let status: String = r.get(0).map_err(sq("reading sends"))?;
                let campaign: String = r.get(1).map_err(sq("reading sends"))?;
                let recipients: String = r.get(2).map_err(sq("reading sends"))?;
                let not_before_us: i64 = r.get(3).map_err(sq("reading sends"))?;
                let updated_at_us: i64 = r.get(4).map_err(sq("reading sends"))?;
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
        })
        .await
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
