//! The in-memory coupon pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CouponClaim, CouponPool, CouponPoolError, PoolCounts, check_text};
use crate::CustomerId;

/// A code and who holds it since when.
type Entry = (String, Option<(CustomerId, DateTime<Utc>)>);

#[derive(Debug, Default)]
struct Pool {
    /// seq → code and holder.
    codes: BTreeMap<u64, Entry>,
    by_code: HashMap<String, u64>,
    by_customer: HashMap<CustomerId, u64>,
    next: u64,
    /// Every code below this seq is claimed (codes are never given back).
    cursor: u64,
}

impl Pool {
    fn claim_at(&self, seq: u64, name: &str) -> Option<CouponClaim> {
        let (code, holder) = self.codes.get(&seq)?;
        let (customer, at) = holder.as_ref()?;
        Some(CouponClaim::new(name, code.clone(), customer.clone(), *at))
    }
}

/// A [`CouponPool`] in memory: for tests and single-process use (nothing survives a restart).
#[derive(Debug, Default)]
pub struct MemoryCouponPool {
    pools: Mutex<HashMap<String, Pool>>,
}

impl MemoryCouponPool {
    /// An empty pool store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Pool>) -> T) -> T {
        f(&mut self.pools.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl CouponPool for MemoryCouponPool {
    async fn add_codes(&self, pool: &str, codes: &[String]) -> Result<u64, CouponPoolError> {
        check_text("pool name", pool)?;
        for code in codes {
            check_text("code", code)?;
        }
        Ok(self.with(|pools| {
            let p = pools.entry(pool.to_owned()).or_default();
            let mut added = 0;
            for code in codes {
                if !p.by_code.contains_key(code) {
                    p.next += 1;
                    p.codes.insert(p.next, (code.clone(), None));
                    p.by_code.insert(code.clone(), p.next);
                    added += 1;
                }
            }
            added
        }))
    }

    async fn claim(
        &self,
        pool: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<CouponClaim, CouponPoolError> {
        check_text("pool name", pool)?;
        self.with(|pools| {
            let exhausted = || CouponPoolError::Exhausted { pool: pool.to_owned() };
            let p = pools.get_mut(pool).ok_or_else(exhausted)?;
            if let Some(&seq) = p.by_customer.get(customer) {
                return p.claim_at(seq, pool).ok_or_else(exhausted);
            }
            let seq = p
                .codes
                .range(p.cursor..)
                .find(|(_, (_, holder))| holder.is_none())
                .map(|(seq, _)| *seq)
                .ok_or_else(exhausted)?;
            if let Some(entry) = p.codes.get_mut(&seq) {
                entry.1 = Some((customer.clone(), now));
            }
            p.by_customer.insert(customer.clone(), seq);
            p.cursor = seq + 1;
            p.claim_at(seq, pool).ok_or_else(exhausted)
        })
    }

    async fn claim_of(
        &self,
        pool: &str,
        customer: &CustomerId,
    ) -> Result<Option<CouponClaim>, CouponPoolError> {
        Ok(self.with(|pools| {
            let p = pools.get(pool)?;
            p.claim_at(*p.by_customer.get(customer)?, pool)
        }))
    }

    async fn counts(&self, pool: &str) -> Result<PoolCounts, CouponPoolError> {
        Ok(self.with(|pools| {
            pools.get(pool).map_or_else(PoolCounts::default, |p| PoolCounts {
                total: p.codes.len() as u64,
                claimed: p.by_customer.len() as u64,
            })
        }))
    }

    async fn claims(&self, pool: &str) -> Result<Vec<CouponClaim>, CouponPoolError> {
        Ok(self.with(|pools| {
            pools.get(pool).map_or_else(Vec::new, |p| {
                p.codes.keys().filter_map(|&seq| p.claim_at(seq, pool)).collect()
            })
        }))
    }
}
