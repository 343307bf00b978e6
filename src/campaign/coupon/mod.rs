//! Coupons issued exactly once per customer: the shop's own code pools ([`CouponPool`]) and
//! the coupon step ([`CouponStep`]) that hands each recipient a LINE coupon or a code from a
//! pool through the delivery journal.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CustomerId;

mod issue;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use issue::{
    CouponIssueReport, CouponSource, CouponStep, CouponStepError, DEFAULT_COUPON_VARIABLE,
};
pub use memory::MemoryCouponPool;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresCouponPool;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteCouponPool;

/// The longest pool name and coupon code, in bytes.
pub const COUPON_CODE_MAX_BYTES: usize = 100;

/// A coupon pool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CouponPoolError {
    /// The storage backend failed (I/O, connection, SQL).
    #[error("coupon pool storage failed: {message}")]
    Storage {
        /// What the pool was doing.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Every code of the pool is already given out.
    #[error("coupon pool `{pool}` has no unclaimed code left")]
    Exhausted {
        /// The pool.
        pool: String,
    },
    /// A pool name or a code is empty, longer than 100 bytes or holds control characters.
    #[error("invalid coupon {what} {value:?}: must be 1 to 100 bytes without control characters")]
    Invalid {
        /// `"pool name"` or `"code"`.
        what: &'static str,
        /// The value.
        value: String,
    },
}

impl CouponPoolError {
    /// A storage error with its source.
    pub fn storage(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// Checks a pool name or a code (input the shop owns).
pub(crate) fn check_text(what: &'static str, value: &str) -> Result<(), CouponPoolError> {
    if value.is_empty()
        || value.len() > COUPON_CODE_MAX_BYTES
        || value.chars().any(char::is_control)
    {
        Err(CouponPoolError::Invalid { what, value: value.to_owned() })
    } else {
        Ok(())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, CouponPoolError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| CouponPoolError::Storage {
        message: format!("coupon pool holds an unreadable claim time {us}"),
        source: None,
    })
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn claim_from(
    pool: &str,
    code: String,
    customer: String,
    at_us: i64,
) -> Result<CouponClaim, CouponPoolError> {
    let customer = CustomerId::new(customer).map_err(|e| CouponPoolError::Storage {
        message: "coupon pool holds an unreadable customer ID".to_owned(),
        source: Some(Box::new(e)),
    })?;
    Ok(CouponClaim::new(pool, code, customer, from_micros(at_us)?))
}

/// A code given to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponClaim {
    /// The pool it came from.
    pub pool: String,
    /// The code.
    pub code: String,
    /// Who holds it.
    pub customer: CustomerId,
    /// When it was claimed (to the microsecond).
    pub claimed_at: DateTime<Utc>,
}

impl CouponClaim {
    /// A claim as a pool returns it.
    #[must_use]
    pub fn new(
        pool: impl Into<String>,
        code: impl Into<String>,
        customer: CustomerId,
        claimed_at: DateTime<Utc>,
    ) -> Self {
        Self { pool: pool.into(), code: code.into(), customer, claimed_at }
    }
}

/// How many codes a pool holds and how many are given out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PoolCounts {
    /// Codes in the pool.
    pub total: u64,
    /// Codes given to a customer.
    pub claimed: u64,
}

impl PoolCounts {
    /// Codes not given out yet.
    #[must_use]
    pub fn available(&self) -> u64 {
        self.total.saturating_sub(self.claimed)
    }
}

/// The shop's own coupon codes, handed out one per customer. Object-safe; share it as
/// `Arc<dyn CouponPool>`.
///
/// Implementations: [`MemoryCouponPool`] (tests, one process), `SqliteCouponPool` (feature
/// `sqlite`) and `PostgresCouponPool` (several workers, feature `postgres`); all pass one
/// conformance suite (`enishi::campaign::conformance::coupons`, feature `testkit`).
///
/// The guarantees the coupon step builds on:
/// - a code is given to at most one customer, ever (two concurrent claims never get the same
///   code, on any number of handles or processes);
/// - a customer holds at most one code of a pool: claiming again returns the code they hold,
///   so a claim repeated after a crash gives the same code and no second one;
/// - codes are handed out in the order they were added.
#[async_trait]
pub trait CouponPool: Send + Sync + fmt::Debug {
    /// Adds codes to `pool` (created on first use); codes already in the pool are left as they
    /// are. Returns how many were new.
    async fn add_codes(&self, pool: &str, codes: &[String]) -> Result<u64, CouponPoolError>;

    /// The code `customer` holds in `pool`, claiming the oldest unclaimed one at `now` when
    /// they hold none. Atomic: concurrent claims hand out distinct codes, and concurrent
    /// claims for one customer return one code.
    ///
    /// # Errors
    /// [`CouponPoolError::Exhausted`] when the customer holds no code and none is left.
    async fn claim(
        &self,
        pool: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<CouponClaim, CouponPoolError>;

    /// The code `customer` holds in `pool`, if any (claims nothing).
    async fn claim_of(
        &self,
        pool: &str,
        customer: &CustomerId,
    ) -> Result<Option<CouponClaim>, CouponPoolError>;

    /// How many codes `pool` holds and how many are claimed.
    async fn counts(&self, pool: &str) -> Result<PoolCounts, CouponPoolError>;

    /// Every claim of `pool`, oldest code first.
    async fn claims(&self, pool: &str) -> Result<Vec<CouponClaim>, CouponPoolError>;
}
