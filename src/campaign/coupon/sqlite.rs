//! The SQLite coupon pool (feature `sqlite`).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};

use super::{CouponClaim, CouponPool, CouponPoolError, PoolCounts, check_text, claim_from};
use crate::CustomerId;
use crate::sqlite::{self, Durability, SharedConnection};

const MIGRATIONS: &[&str] = &["CREATE TABLE enishi_coupon_codes (
        pool TEXT NOT NULL,
        code TEXT NOT NULL,
        seq INTEGER NOT NULL,
        customer TEXT,
        claimed_at_us INTEGER,
        PRIMARY KEY (pool, code)
    );
    CREATE UNIQUE INDEX enishi_coupon_codes_holder
        ON enishi_coupon_codes (pool, customer) WHERE customer IS NOT NULL;
    CREATE INDEX enishi_coupon_codes_free
        ON enishi_coupon_codes (pool, seq) WHERE customer IS NULL;"];

fn sq(message: &'static str) -> impl FnOnce(rusqlite::Error) -> CouponPoolError {
    move |e| CouponPoolError::storage(format!("sqlite: {message}"), e)
}

/// A [`CouponPool`] in an SQLite database file. Every write runs in an `IMMEDIATE`
/// transaction with `synchronous = FULL`, so a claim that returned survives a power cut and
/// several handles (or processes) on one file never give one code twice.
///
/// Blocking SQLite calls run on tokio's blocking pool: use the pool inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteCouponPool {
    conn: SharedConnection,
}

impl SqliteCouponPool {
    /// Opens (creating if needed) the pool store at `path`.
    ///
    /// # Errors
    /// [`CouponPoolError::Storage`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CouponPoolError> {
        // FULL: a claimed code must never be handed out again after a power cut.
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(sq("opening the database"))?;
        Self::from_connection(conn)
    }

    /// A private in-memory pool store (tests, demos).
    ///
    /// # Errors
    /// [`CouponPoolError::Storage`] when SQLite fails.
    pub fn in_memory() -> Result<Self, CouponPoolError> {
        Self::from_connection(sqlite::open_in_memory().map_err(sq("opening in memory"))?)
    }

    /// Uses an open connection, applying pending migrations.
    ///
    /// # Errors
    /// [`CouponPoolError::Storage`] when a migration fails.
    pub fn from_connection(mut conn: Connection) -> Result<Self, CouponPoolError> {
        sqlite::prepare(&conn).map_err(sq("setting the busy timeout"))?;
        sqlite::migrate(&mut conn, "enishi_coupon_migrations", MIGRATIONS)
            .map_err(sq("migrating"))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, CouponPoolError> + Send + 'static,
    ) -> Result<T, CouponPoolError> {
        self.conn
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sq("beginning"))?;
                let value = f(&tx)?;
                tx.commit().map_err(sq("committing"))?;
                Ok(value)
            })
            .await
            .map_err(|e| CouponPoolError::storage("sqlite: the blocking task failed", e))?
    }
}

fn held(
    tx: &Transaction<'_>,
    pool: &str,
    customer: &str,
) -> Result<Option<CouponClaim>, CouponPoolError> {
    let row = tx
        .query_row(
            "SELECT code, claimed_at_us FROM enishi_coupon_codes WHERE pool = ?1 AND customer = ?2",
            params![pool, customer],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()
        .map_err(sq("reading a claim"))?;
    row.map(|(code, at)| claim_from(pool, code, customer.to_owned(), at)).transpose()
}

#[async_trait]
impl CouponPool for SqliteCouponPool {
    async fn add_codes(&self, pool: &str, codes: &[String]) -> Result<u64, CouponPoolError> {
        check_text("pool name", pool)?;
        for code in codes {
            check_text("code", code)?;
        }
        let pool = pool.to_owned();
        let codes = codes.to_vec();
        self.run(move |tx| {
            let mut seq: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM enishi_coupon_codes WHERE pool = ?1",
                    params![pool],
                    |r| r.get(0),
                )
                .map_err(sq("reading the last code"))?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO enishi_coupon_codes (pool, code, seq) VALUES (?1, ?2, ?3)",
                )
                .map_err(sq("preparing the insert"))?;
            let mut added = 0;
            for code in &codes {
                let n = insert.execute(params![pool, code, seq + 1]).map_err(sq("adding a code"))?;
                if n > 0 {
                    seq += 1;
                    added += 1;
                }
            }
            Ok(added)
        })
        .await
    }

    async fn claim(
        &self,
        pool: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<CouponClaim, CouponPoolError> {
        check_text("pool name", pool)?;
        let pool = pool.to_owned();
        let customer = customer.as_str().to_owned();
        let at = now.timestamp_micros();
        self.run(move |tx| {
            if let Some(claim) = held(tx, &pool, &customer)? {
                return Ok(claim);
            }
            let code: Option<String> = tx
                .query_row(
                    "UPDATE enishi_coupon_codes SET customer = ?2, claimed_at_us = ?3
                     WHERE pool = ?1 AND code = (
                         SELECT code FROM enishi_coupon_codes
                         WHERE pool = ?1 AND customer IS NULL ORDER BY seq LIMIT 1)
                     RETURNING code",
                    params![pool, customer, at],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sq("claiming a code"))?;
            match code {
                Some(code) => claim_from(&pool, code, customer, at),
                None => Err(CouponPoolError::Exhausted { pool }),
            }
        })
        .await
    }

    async fn claim_of(
        &self,
        pool: &str,
        customer: &CustomerId,
    ) -> Result<Option<CouponClaim>, CouponPoolError> {
        let pool = pool.to_owned();
        let customer = customer.as_str().to_owned();
        self.run(move |tx| held(tx, &pool, &customer)).await
    }

    async fn counts(&self, pool: &str) -> Result<PoolCounts, CouponPoolError> {
        let pool = pool.to_owned();
        self.run(move |tx| {
            let (total, claimed): (i64, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COUNT(customer) FROM enishi_coupon_codes WHERE pool = ?1",
                    params![pool],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sq("counting codes"))?;
            Ok(PoolCounts {
                total: u64::try_from(total).unwrap_or(0),
                claimed: u64::try_from(claimed).unwrap_or(0),
            })
        })
        .await
    }

    async fn claims(&self, pool: &str) -> Result<Vec<CouponClaim>, CouponPoolError> {
        let pool = pool.to_owned();
        self.run(move |tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT code, customer, claimed_at_us FROM enishi_coupon_codes
                     WHERE pool = ?1 AND customer IS NOT NULL ORDER BY seq",
                )
                .map_err(sq("preparing the claims query"))?;
            let rows = stmt
                .query_map(params![pool], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(sq("reading claims"))?;
            let mut out = Vec::new();
            for row in rows {
                let (code, customer, at) = row.map_err(sq("reading a claim"))?;
                out.push(claim_from(&pool, code, customer, at)?);
            }
            Ok(out)
        })
        .await
    }
}
