//! The PostgreSQL coupon pool (feature `postgres`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};

use super::{CouponClaim, CouponPool, CouponPoolError, PoolCounts, check_text, claim_from};
use crate::CustomerId;

const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_coupon_codes (
        pool TEXT COLLATE \"C\" NOT NULL,
        code TEXT COLLATE \"C\" NOT NULL,
        seq BIGSERIAL NOT NULL,
        customer TEXT COLLATE \"C\",
        claimed_at_us BIGINT,
        PRIMARY KEY (pool, code)
    );
    CREATE UNIQUE INDEX enishi_coupon_codes_holder
        ON {s}.enishi_coupon_codes (pool, customer) WHERE customer IS NOT NULL;
    CREATE INDEX enishi_coupon_codes_free
        ON {s}.enishi_coupon_codes (pool, seq) WHERE customer IS NULL;"];

fn pg(message: &'static str) -> impl FnOnce(tokio_postgres::Error) -> CouponPoolError {
    move |e| CouponPoolError::storage(format!("postgres: {message}"), e)
}

/// A [`CouponPool`] in a PostgreSQL table under one schema: any number of workers on any
/// number of machines claim from one pool. A claim is one `UPDATE ... (SELECT ... FOR UPDATE
/// SKIP LOCKED)` statement, and a unique index on (pool, customer) makes a customer's
/// concurrent claims end with one code. Clones share the connection pool.
#[derive(Clone)]
pub struct PostgresCouponPool {
    pool: Pool,
    schema: Arc<str>,
}

impl fmt::Debug for PostgresCouponPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCouponPool").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PostgresCouponPool {
    /// Makes a pool of connections to `url` (without TLS; use [`from_pool`](Self::from_pool)
    /// for TLS or to share one) and migrates `schema`.
    ///
    /// # Errors
    /// As [`from_pool`](Self::from_pool), or [`CouponPoolError::Storage`] for a bad URL.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, CouponPoolError> {
        let pool = crate::postgres::pool(url)
            .map_err(|e| CouponPoolError::storage("postgres: making the connection pool", e))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool`: creates `schema` if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`CouponPoolError::Storage`] for a schema name outside `[a-z_][a-z0-9_]*` (≤ 63 bytes)
    /// or when PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, CouponPoolError> {
        if !crate::postgres::is_valid_schema_name(schema) {
            return Err(CouponPoolError::Storage {
                message: format!(
                    "postgres: invalid schema name {schema:?} ({})",
                    crate::postgres::SCHEMA_NAME_RULE
                ),
                source: None,
            });
        }
        {
            let mut client = checkout(&pool).await?;
            crate::postgres::migrate(&mut client, schema, "enishi_coupon", MIGRATIONS)
                .await
                .map_err(|e| CouponPoolError::storage(e.to_string(), e.source))?;
        }
        Ok(Self { pool, schema: schema.into() })
    }

    async fn held(
        &self,
        client: &Object,
        pool: &str,
        customer: &str,
    ) -> Result<Option<CouponClaim>, CouponPoolError> {
        let s = &self.schema;
        let row = client
            .query_opt(
                &format!(
                    "SELECT code, claimed_at_us FROM {s}.enishi_coupon_codes
                     WHERE pool = $1 AND customer = $2"
                ),
                &[&pool, &customer],
            )
            .await
            .map_err(pg("reading a claim"))?;
        row.map(|r| claim_from(pool, r.get(0), customer.to_owned(), r.get(1))).transpose()
    }
}

async fn checkout(pool: &Pool) -> Result<Object, CouponPoolError> {
    pool.get().await.map_err(|e| CouponPoolError::storage("postgres: connecting", e))
}

#[async_trait]
impl CouponPool for PostgresCouponPool {
    async fn add_codes(&self, pool: &str, codes: &[String]) -> Result<u64, CouponPoolError> {
        check_text("pool name", pool)?;
        for code in codes {
            check_text("code", code)?;
        }
        let s = &self.schema;
        let client = checkout(&self.pool).await?;
        let mut added = 0;
        for chunk in codes.chunks(5_000) {
            // One statement per chunk; `unnest ... WITH ORDINALITY` keeps the given order in seq.
            added += client
                .execute(
                    &format!(
                        "INSERT INTO {s}.enishi_coupon_codes (pool, code)
                         SELECT $1, c FROM unnest($2::text[]) WITH ORDINALITY AS t(c, n)
                         ORDER BY n
                         ON CONFLICT (pool, code) DO NOTHING"
                    ),
                    &[&pool, &chunk],
                )
                .await
                .map_err(pg("adding codes"))?;
        }
        Ok(added)
    }

    async fn claim(
        &self,
        pool: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<CouponClaim, CouponPoolError> {
        check_text("pool name", pool)?;
        let s = &self.schema;
        let client = checkout(&self.pool).await?;
        if let Some(claim) = self.held(&client, pool, customer.as_str()).await? {
            return Ok(claim);
        }
        let at = now.timestamp_micros();
        // A free code locked by a concurrent claim is skipped; when every free code was
        // locked, look again (those claims may have failed) before calling the pool empty.
        for _ in 0..10 {
            let claimed = client
                .query_opt(
                    &format!(
                        "UPDATE {s}.enishi_coupon_codes AS c SET customer = $2, claimed_at_us = $3
                         FROM (SELECT pool, code FROM {s}.enishi_coupon_codes
                               WHERE pool = $1 AND customer IS NULL
                               ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) AS free
                         WHERE c.pool = free.pool AND c.code = free.code
                         RETURNING c.code"
                    ),
                    &[&pool, &customer.as_str(), &at],
                )
                .await;
            match claimed {
                Ok(Some(row)) => {
                    return claim_from(pool, row.get(0), customer.as_str().to_owned(), at);
                }
                Ok(None) => {
                    let free: bool = client
                        .query_one(
                            &format!(
                                "SELECT EXISTS (SELECT 1 FROM {s}.enishi_coupon_codes
                                 WHERE pool = $1 AND customer IS NULL)"
                            ),
                            &[&pool],
                        )
                        .await
                        .map_err(pg("looking for a free code"))?
                        .get(0);
                    if !free {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                // The customer's concurrent claim won (unique (pool, customer)): theirs is it.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    return self
                        .held(&client, pool, customer.as_str())
                        .await?
                        .ok_or_else(|| CouponPoolError::storage("postgres: claiming a code", e));
                }
                Err(e) => return Err(pg("claiming a code")(e)),
            }
        }
        Err(CouponPoolError::Exhausted { pool: pool.to_owned() })
    }

    async fn claim_of(
        &self,
        pool: &str,
        customer: &CustomerId,
    ) -> Result<Option<CouponClaim>, CouponPoolError> {
        let client = checkout(&self.pool).await?;
        self.held(&client, pool, customer.as_str()).await
    }

    async fn counts(&self, pool: &str) -> Result<PoolCounts, CouponPoolError> {
        let s = &self.schema;
        let client = checkout(&self.pool).await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT COUNT(*), COUNT(customer) FROM {s}.enishi_coupon_codes WHERE pool = $1"
                ),
                &[&pool],
            )
            .await
            .map_err(pg("counting codes"))?;
        Ok(PoolCounts {
            total: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            claimed: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        })
    }

    async fn claims(&self, pool: &str) -> Result<Vec<CouponClaim>, CouponPoolError> {
        let s = &self.schema;
        let client = checkout(&self.pool).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT code, customer, claimed_at_us FROM {s}.enishi_coupon_codes
                     WHERE pool = $1 AND customer IS NOT NULL ORDER BY seq"
                ),
                &[&pool],
            )
            .await
            .map_err(pg("reading claims"))?;
        rows.iter().map(|r| claim_from(pool, r.get(0), r.get(1), r.get(2))).collect()
    }
}
