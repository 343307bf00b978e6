//! The conformance suite every [`CouponPool`] runs.
//!
//! Each check takes handles onto one new, empty pool store and panics with a message saying
//! what the store got wrong; [`run_all`] runs them all:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::campaign::{CouponPool, MemoryCouponPool};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::campaign::conformance::coupons::run_all(|| async {
//!     let pool: Arc<dyn CouponPool> = Arc::new(MemoryCouponPool::new());
//!     vec![Arc::clone(&pool), pool]
//! })
//! .await;
//! # }
//! ```
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::CustomerId;
use crate::campaign::{CouponPool, CouponPoolError, PoolCounts};
use crate::conformance::Handles;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn customer(n: usize) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

fn codes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Adding codes stores each once; adding them again (or overlapping) adds only the new ones.
pub async fn add_codes_is_insert_if_absent(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    assert_eq!(h[0].add_codes("spring", &codes("S", 3)).await.unwrap(), 3, "first add");
    assert_eq!(h[1].add_codes("spring", &codes("S", 5)).await.unwrap(), 2, "overlapping add");
    assert_eq!(h[0].add_codes("spring", &[]).await.unwrap(), 0, "empty add");
    let counts = h[1].counts("spring").await.unwrap();
    assert_eq!((counts.total, counts.claimed), (5, 0), "counts after adds");
    assert_eq!(h[0].counts("unknown").await.unwrap(), PoolCounts::default(), "unknown pool");
}

/// Codes are handed out oldest first, one per customer; a customer claiming again gets the
/// code they hold; an empty pool says so.
pub async fn claims_are_ordered_and_once_per_customer(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    h[0].add_codes("p", &codes("A", 2)).await.unwrap();
    h[1].add_codes("p", &["B0000".to_owned()]).await.unwrap();
    let first = h[0].claim("p", &customer(1), t0()).await.unwrap();
    assert_eq!(first.code, "A0000", "the oldest code goes first");
    assert_eq!(first.customer, customer(1));
    assert_eq!(first.claimed_at, t0(), "the claim time is kept to the microsecond");
    let again = h[1].claim("p", &customer(1), t0() + chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(again, first, "a second claim returns the code held, unchanged");
    assert_eq!(h[1].claim("p", &customer(2), t0()).await.unwrap().code, "A0001");
    assert_eq!(h[0].claim("p", &customer(3), t0()).await.unwrap().code, "B0000");
    match h[1].claim("p", &customer(4), t0()).await {
        Err(CouponPoolError::Exhausted { pool }) => assert_eq!(pool, "p"),
        other => panic!("claiming from an empty pool gave {other:?}, not Exhausted"),
    }
    assert_eq!(
        h[0].claim("p", &customer(2), t0()).await.unwrap().code,
        "A0001",
        "a holder still gets their code from an exhausted pool"
    );
    assert_eq!(
        h[1].claim_of("p", &customer(3)).await.unwrap().map(|c| c.code),
        Some("B0000".into())
    );
    assert_eq!(h[1].claim_of("p", &customer(4)).await.unwrap(), None, "no claim, no code");
    let claims = h[0].claims("p").await.unwrap();
    let listed: Vec<(&str, &str)> =
        claims.iter().map(|c| (c.code.as_str(), c.customer.as_str())).collect();
    assert_eq!(
        listed,
        [("A0000", "C-1"), ("A0001", "C-2"), ("B0000", "C-3")],
        "claims in code order"
    );
    let counts = h[1].counts("p").await.unwrap();
    assert_eq!((counts.total, counts.claimed, counts.available()), (3, 3, 0));
}

/// Pools are independent: the same code or customer in two pools are two things.
pub async fn pools_are_independent(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    h[0].add_codes("a", &["SAME".to_owned()]).await.unwrap();
    h[1].add_codes("b", &["SAME".to_owned()]).await.unwrap();
    assert_eq!(h[0].claim("a", &customer(1), t0()).await.unwrap().code, "SAME");
    assert_eq!(h[1].claim("b", &customer(1), t0()).await.unwrap().code, "SAME");
    assert!(matches!(
        h[0].claim("a", &customer(2), t0()).await,
        Err(CouponPoolError::Exhausted { .. })
    ));
}

/// Empty, over-long or control-character names and codes are refused, and nothing is stored.
pub async fn invalid_names_and_codes_are_refused(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    for bad in [String::new(), "x".repeat(101), "a\nb".to_owned()] {
        assert!(
            matches!(
                h[0].add_codes("p", &["OK".to_owned(), bad.clone()]).await,
                Err(CouponPoolError::Invalid { .. })
            ),
            "code {bad:?} was accepted"
        );
        assert!(
            matches!(
                h[1].add_codes(&bad, &["OK".to_owned()]).await,
                Err(CouponPoolError::Invalid { .. })
            ),
            "pool name {bad:?} was accepted"
        );
    }
    assert_eq!(h[0].counts("p").await.unwrap().total, 0, "a refused add stores nothing");
}

/// Many customers claiming at once on several handles: each code goes to one customer, and
/// exactly as many customers get one as there are codes.
pub async fn concurrent_claims_never_share_a_code(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    h[0].add_codes("race", &codes("R", 24)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..40 {
        let pool = Arc::clone(&h[n]);
        tasks.push(tokio::spawn(async move { pool.claim("race", &customer(n), t0()).await }));
    }
    let mut got = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(claim) => got.push(claim.code),
            Err(CouponPoolError::Exhausted { .. }) => exhausted += 1,
            Err(e) => panic!("a concurrent claim failed: {e}"),
        }
    }
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 24, "every code is handed out ({exhausted} exhausted)");
    assert_eq!(distinct.len(), 24, "no code went to two customers: {got:?}");
    assert_eq!(exhausted, 16);
    assert_eq!(h[1].counts("race").await.unwrap().claimed, 24);
}

/// One customer claiming many times at once gets one code.
pub async fn concurrent_claims_of_one_customer_get_one_code(pools: &[Arc<dyn CouponPool>]) {
    let h = Handles::new(pools);
    h[0].add_codes("one", &codes("O", 10)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..12 {
        let pool = Arc::clone(&h[n]);
        tasks.push(tokio::spawn(async move { pool.claim("one", &customer(7), t0()).await }));
    }
    let mut got = HashSet::new();
    for task in tasks {
        got.insert(task.await.unwrap().expect("a claim failed").code);
    }
    assert_eq!(got.len(), 1, "one customer got several codes: {got:?}");
    assert_eq!(h[1].counts("one").await.unwrap().claimed, 1);
}

/// Runs every check, each on a new store from `new_pool`.
pub async fn run_all<F, Fut>(mut new_pool: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn CouponPool>>> + Send,
{
    add_codes_is_insert_if_absent(&new_pool().await).await;
    claims_are_ordered_and_once_per_customer(&new_pool().await).await;
    pools_are_independent(&new_pool().await).await;
    invalid_names_and_codes_are_refused(&new_pool().await).await;
    concurrent_claims_never_share_a_code(&new_pool().await).await;
    concurrent_claims_of_one_customer_get_one_code(&new_pool().await).await;
}
