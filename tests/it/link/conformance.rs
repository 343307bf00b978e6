//! The `LinkStore` conformance suite (`enishi::link::conformance`) against every store: each
//! check is its own test, on a new store with four handles (four connections for SQLite,
//! four pools for PostgreSQL, so the races cross them).

use std::sync::Arc;

use enishi::link::{LinkStore, MemoryLinkStore};

use crate::stores::Cleanup;

#[cfg(feature = "testkit")]
type Stores = Vec<Arc<dyn LinkStore>>;

#[cfg(feature = "testkit")]
async fn memory_stores(n: usize) -> (Stores, Cleanup) {
    let s = MemoryLinkStore::new();
    ((0..n).map(|_| Arc::new(s.clone()) as Arc<dyn LinkStore>).collect(), Cleanup::None)
}

#[cfg(all(feature = "testkit", feature = "sqlite"))]
async fn sqlite_stores(n: usize) -> (Stores, Cleanup) {
    // Several connections to one file: the races then cross connections, as between processes.
    let path = crate::stores::sqlite_path("link");
    let stores = (0..n)
        .map(|_| {
            Arc::new(enishi::link::SqliteLinkStore::open(&path, "1650000000").unwrap())
                as Arc<dyn LinkStore>
        })
        .collect();
    (stores, Cleanup::File(path))
}

#[cfg(all(feature = "testkit", feature = "postgres"))]
async fn postgres_stores(n: usize) -> (Stores, Cleanup) {
    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("link");
    let mut out: Stores = Vec::new();
    for _ in 0..n {
        let store = enishi::link::PostgresLinkStore::from_pool(pg_pool(), &schema, "1650000000");
        out.push(Arc::new(pg_needed(store.await)));
    }
    (out, Cleanup::Schema(schema))
}

#[cfg(feature = "testkit")]
macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                ticket_is_single_use,
                unknown_ticket_and_wrong_kind_are_unknown,
                expired_ticket_is_rejected_and_untouched,
                mismatched_user_is_rejected_and_untouched,
                duplicate_ticket_key_is_refused,
                peek_checks_like_take_and_consumes_nothing,
                redeem_links_once,
                conflict_rejected_keeps_existing_link,
                customer_side_conflict_is_typed,
                conflict_replace_audits_displaced_links,
                relinking_same_pair_is_not_new,
                unlink_by_either_side,
                failed_link_consumes_nonce_and_stores_nothing,
                follow_status_tracks_latest_event,
                purge_keeps_live_and_recent_tickets,
                race_many_consume_one_nonce,
                race_many_link_one_user,
                race_many_users_claim_one_customer,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (stores, cleanup) = $factory(4).await;
                enishi::link::conformance::$case(&stores).await;
                cleanup.run().await;
            }
        )*
    };
}

#[cfg(feature = "testkit")]
conformance!(memory, super::memory_stores);
#[cfg(all(feature = "testkit", feature = "sqlite"))]
conformance!(sqlite, super::sqlite_stores);
#[cfg(all(feature = "testkit", feature = "postgres"))]
conformance!(postgres, super::postgres_stores);

/// The whole suite in one call, as a host runs it, on one handle.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_conformance_run_all_on_one_memory_handle() {
    enishi::link::conformance::run_all(|| async {
        vec![Arc::new(MemoryLinkStore::new()) as Arc<dyn LinkStore>]
    })
    .await;
}

/// The incentive ledger part of the suite (`enishi::link::conformance::incentive_*`) on every
/// store: each check on a new store with four handles, as above.
#[cfg(feature = "testkit")]
mod ledger {
    use std::sync::Arc;

    use enishi::link::{IncentiveLedger, MemoryLinkStore};

    use crate::stores::Cleanup;

    type Ledgers = Vec<Arc<dyn IncentiveLedger>>;

    async fn memory_ledgers(n: usize) -> (Ledgers, Cleanup) {
        let s = MemoryLinkStore::new();
        ((0..n).map(|_| Arc::new(s.clone()) as Arc<dyn IncentiveLedger>).collect(), Cleanup::None)
    }

    /// Several connections to one file: the races cross connections, as between processes.
    #[cfg(feature = "sqlite")]
    async fn sqlite_ledgers(n: usize) -> (Ledgers, Cleanup) {
        let path = crate::stores::sqlite_path("incentives");
        let open = |_| {
            Arc::new(enishi::link::SqliteLinkStore::open(&path, "1650000000").unwrap())
                as Arc<dyn IncentiveLedger>
        };
        ((0..n).map(open).collect(), Cleanup::File(path))
    }

    /// One in-memory SQLite database: one handle.
    #[cfg(feature = "sqlite")]
    async fn sqlite_in_memory_ledgers(_: usize) -> (Ledgers, Cleanup) {
        let store = enishi::link::SqliteLinkStore::open_in_memory("1650000000").unwrap();
        (vec![Arc::new(store)], Cleanup::None)
    }

    /// One pool per handle, as in separate processes, on a schema of its own.
    #[cfg(feature = "postgres")]
    async fn postgres_ledgers(n: usize) -> (Ledgers, Cleanup) {
        use crate::stores::{pg_needed, pg_pool};
        let schema = crate::stores::pg_schema("incentives");
        let mut out: Ledgers = Vec::new();
        for _ in 0..n {
            let store =
                enishi::link::PostgresLinkStore::from_pool(pg_pool(), &schema, "1650000000");
            out.push(Arc::new(pg_needed(store.await)));
        }
        (out, Cleanup::Schema(schema))
    }

    macro_rules! ledger_conformance {
        ($store:ident, $factory:path) => {
            mod $store {
                ledger_conformance!(@cases $factory;
                    incentive_claim_is_new_then_settled,
                    incentive_claim_while_unsettled_is_in_flight,
                    incentive_release_then_claim_is_new,
                    incentive_grants_are_independent,
                    incentive_settle_needs_an_unsettled_claim,
                    incentive_unsettled_lists_only_old_unsettled_claims,
                    incentive_race_many_claim_one,
                );
            }
        };
        (@cases $factory:path; $($case:ident,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (ledgers, cleanup) = $factory(4).await;
                    enishi::link::conformance::$case(&ledgers).await;
                    cleanup.run().await;
                }
            )*
        };
    }

    ledger_conformance!(ledger_memory, super::memory_ledgers);
    #[cfg(feature = "sqlite")]
    ledger_conformance!(ledger_sqlite, super::sqlite_ledgers);
    #[cfg(feature = "sqlite")]
    ledger_conformance!(ledger_sqlite_in_memory, super::sqlite_in_memory_ledgers);
    #[cfg(feature = "postgres")]
    ledger_conformance!(ledger_postgres, super::postgres_ledgers);

    /// The whole ledger suite in one call, as a host runs it, on one handle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ledger_conformance_run_all_on_one_memory_handle() {
        enishi::link::conformance::run_all_incentives(|| async {
            vec![Arc::new(MemoryLinkStore::new()) as Arc<dyn IncentiveLedger>]
        })
        .await;
    }
}

/// A terminated connection is replaced: reads, single writes and transactions work again.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_postgres_store_reconnects_after_its_connections_are_terminated() {
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};
    use enishi::link::{
        ConflictPolicy, LinkOutcome, LinkSource, OneTimeSecret, Ticket, TicketKind,
    };
    use enishi::{CustomerId, LineUserId};

    use crate::pg::{at_most_one_failure, terminate, url_with_app_name};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }
    let user = |n: u32| LineUserId::new(format!("U{n:032x}")).unwrap();
    let cust = |n: u32| CustomerId::new(format!("C-{n}")).unwrap();

    let (url, app) = url_with_app_name();
    let schema = crate::stores::pg_schema("link");
    let store =
        enishi::link::PostgresLinkStore::connect(&url, &schema, "1650000000").await.unwrap();
    let policy = ConflictPolicy::Reject;
    store.link(&user(1), &cust(1), LinkSource::Manual, policy, t0()).await.unwrap();
    assert!(terminate(&app).await >= 1, "no connection of {app} to terminate");
    // A read, then a transaction (a nonce redeemed and linked), then a single-statement write.
    let u1 = user(1);
    let read = at_most_one_failure(|| store.link_of_user(&u1)).await;
    assert_eq!(read.map(|l| l.customer), Some(cust(1)));
    assert!(terminate(&app).await >= 1);
    let secret = OneTimeSecret::generate();
    let nonce = Ticket::new(TicketKind::Nonce, secret.key(), t0(), Duration::from_secs(600))
        .with_customer(cust(2));
    at_most_one_failure(|| store.put_ticket(&nonce)).await;
    assert!(terminate(&app).await >= 1);
    let (key, u2) = (secret.key(), user(2));
    let later = t0() + chrono::Duration::seconds(1);
    let redeemed = at_most_one_failure(|| store.redeem_nonce(&key, &u2, policy, later)).await;
    assert!(matches!(redeemed.outcome, LinkOutcome::Linked(_)), "{:?}", redeemed.outcome);
    assert_eq!(store.link_of_customer(&cust(2)).await.unwrap().map(|l| l.line_user), Some(user(2)));
    Cleanup::Schema(schema).run().await;
}
