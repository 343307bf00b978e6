//! The `CouponPool` conformance suite (`enishi::campaign::conformance::coupons`) against the
//! memory, SQLite and PostgreSQL pools, each check its own test on a new store with four
//! handles (four connections for SQLite, four pools for PostgreSQL, so races cross them).

use std::sync::Arc;

use enishi::campaign::{CouponPool, MemoryCouponPool};

use crate::stores::Cleanup;
#[cfg(feature = "sqlite")]
use crate::stores::sqlite_path;

type Pools = Vec<Arc<dyn CouponPool>>;

async fn memory_pools(n: usize) -> (Pools, Cleanup) {
    let p: Arc<dyn CouponPool> = Arc::new(MemoryCouponPool::new());
    ((0..n).map(|_| Arc::clone(&p)).collect(), Cleanup::None)
}

#[cfg(feature = "sqlite")]
async fn sqlite_pools(n: usize) -> (Pools, Cleanup) {
    let path = sqlite_path("coupons");
    let pools = (0..n)
        .map(|_| {
            Arc::new(enishi::campaign::SqliteCouponPool::open(&path).unwrap())
                as Arc<dyn CouponPool>
        })
        .collect();
    (pools, Cleanup::File(path))
}

#[cfg(feature = "postgres")]
async fn postgres_pools(n: usize) -> (Pools, Cleanup) {
    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("coupons");
    let mut out: Pools = Vec::new();
    for _ in 0..n {
        let pool = enishi::campaign::PostgresCouponPool::from_pool(pg_pool(), &schema).await;
        out.push(Arc::new(pg_needed(pool)));
    }
    (out, Cleanup::Schema(schema))
}

macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                add_codes_is_insert_if_absent,
                claims_are_ordered_and_once_per_customer,
                pools_are_independent,
                invalid_names_and_codes_are_refused,
                concurrent_claims_never_share_a_code,
                concurrent_claims_of_one_customer_get_one_code,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (pools, cleanup) = $factory(4).await;
                enishi::campaign::conformance::coupons::$case(&pools).await;
                cleanup.run().await;
            }
        )*
    };
}

conformance!(memory, super::memory_pools);
#[cfg(feature = "sqlite")]
conformance!(sqlite, super::sqlite_pools);
#[cfg(feature = "postgres")]
conformance!(postgres, super::postgres_pools);

/// A claim survives closing and reopening the SQLite file: the reopened pool gives the
/// customer the same code and nobody else.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn coupon_sqlite_claims_survive_a_restart() {
    use enishi::CustomerId;
    let path = sqlite_path("coupons-restart");
    let customer = CustomerId::new("C-1").unwrap();
    let first = {
        let pool = enishi::campaign::SqliteCouponPool::open(&path).unwrap();
        pool.add_codes("p", &["X1".into(), "X2".into()]).await.unwrap();
        pool.claim("p", &customer, chrono::Utc::now()).await.unwrap()
    };
    let pool = enishi::campaign::SqliteCouponPool::open(&path).unwrap();
    assert_eq!(pool.claim("p", &customer, chrono::Utc::now()).await.unwrap(), first);
    let other = pool.claim("p", &CustomerId::new("C-2").unwrap(), chrono::Utc::now()).await;
    assert_eq!(other.unwrap().code, "X2");
    Cleanup::File(path).run().await;
}
