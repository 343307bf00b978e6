//! The incentive ledger behind `Storage::incentives()`: the very store of `links()`, in the
//! same database, exactly once across processes.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use enishi::CustomerId;
use enishi::link::{Claim, GrantState, IncentiveLedger};
use enishi::storage::Storage;

const INCENTIVE: &str = "link-2026-12";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

/// `incentives()` hands out the link store itself.
fn same_store(storage: &Storage) -> bool {
    Arc::as_ptr(&storage.links()).cast::<()>() == Arc::as_ptr(&storage.incentives()).cast::<()>()
}

/// `per_handle` tasks on each handle claim one grant at once; returns how many got `New`.
async fn race(ledgers: &[Arc<dyn IncentiveLedger>], per_handle: usize) -> usize {
    let mut tasks = Vec::new();
    for ledger in ledgers {
        for _ in 0..per_handle {
            let ledger = Arc::clone(ledger);
            tasks.push(tokio::spawn(async move { ledger.claim(INCENTIVE, &cust(1), t0()).await }));
        }
    }
    let mut new = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Claim::New(_) => new += 1,
            Claim::InFlight(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    new
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_incentives_memory_storage_uses_the_link_store() {
    let storage = Storage::in_memory();
    assert!(same_store(&storage));
    // Clones of the storage share the ledger.
    let ledgers = [storage.incentives(), storage.clone().incentives()];
    assert_eq!(race(&ledgers, 8).await, 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_incentives_sqlite_storage_keeps_grants_in_the_links_file() {
    let path = crate::stores::sqlite_path("storage-incentives");
    let storage = Storage::open(&path).await.unwrap();
    assert!(same_store(&storage));
    let ledger = storage.incentives();
    assert!(ledger.claim(INCENTIVE, &cust(1), t0()).await.unwrap().is_new());
    let granted = ledger
        .settle(INCENTIVE, &cust(1), GrantState::Granted, Some("100 points"), t0())
        .await
        .unwrap();
    drop((ledger, storage));
    // Reopened (a restart), and read by a plain link store on the file: the grant is there.
    let again = Storage::open(&path).await.unwrap();
    let claim = again.incentives().claim(INCENTIVE, &cust(1), t0()).await.unwrap();
    assert_eq!(claim, Claim::Settled(granted.clone()));
    let links = enishi::link::SqliteLinkStore::open(&path, "default").unwrap();
    assert_eq!(links.grant_of(INCENTIVE, &cust(1)).await.unwrap(), Some(granted));
    drop((again, links));
    crate::stores::Cleanup::File(path).run().await;
}

/// Two instances (two `Storage`s, two pools) on one PostgreSQL schema claim at once: exactly
/// one gets `New`.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_incentives_postgres_two_instances_claim_exactly_once() {
    let schema = crate::stores::pg_schema("storage_incentives");
    let open = || Storage::builder(crate::pg::url()).schema(schema.clone()).pool_size(2).open();
    let (a, b) = (crate::stores::pg_needed(open().await), open().await.unwrap());
    assert!(same_store(&a));
    for round in 0..3 {
        let ledgers = [a.incentives(), b.incentives()];
        assert_eq!(race(&ledgers, 8).await, 1, "round {round}");
        a.incentives().release(INCENTIVE, &cust(1)).await.unwrap();
    }
    assert!(b.incentives().claim(INCENTIVE, &cust(1), t0()).await.unwrap().is_new());
    b.incentives().settle(INCENTIVE, &cust(1), GrantState::Granted, None, t0()).await.unwrap();
    let seen = a.incentives().grant_of(INCENTIVE, &cust(1)).await.unwrap().unwrap();
    assert_eq!(seen.state, GrantState::Granted);
    drop((a, b));
    crate::stores::Cleanup::Schema(schema).run().await;
}

/// A database made before the ledger (link migration 1 only) gains the ledger's table on open
/// and keeps its links.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn link_incentives_sqlite_migrate_a_database_made_before_the_ledger() {
    use enishi::link::{ConflictPolicy, LinkSource, LinkStore, SqliteLinkStore};
    let user = enishi::LineUserId::new(format!("U{:032x}", 1)).unwrap();
    let path = crate::stores::sqlite_path("incentives-upgrade");
    let store = SqliteLinkStore::open(&path, "default").unwrap();
    store.link(&user, &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE enishi_link_incentives; DELETE FROM enishi_link_migrations WHERE version = 2;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteLinkStore::open(&path, "default").unwrap();
    assert!(store.claim(INCENTIVE, &cust(1), t0()).await.unwrap().is_new());
    assert_eq!(store.link_of_user(&user).await.unwrap().map(|l| l.customer), Some(cust(1)));
    drop(store);
    crate::stores::Cleanup::File(path).run().await;
}

/// As above, on PostgreSQL.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn link_incentives_postgres_migrate_a_schema_made_before_the_ledger() {
    use enishi::link::{ConflictPolicy, LinkSource, LinkStore, PostgresLinkStore};
    let user = enishi::LineUserId::new(format!("U{:032x}", 1)).unwrap();
    let schema = crate::stores::pg_schema("incentives_upgrade");
    let url = crate::pg::url();
    let store = crate::stores::pg_needed(PostgresLinkStore::connect(&url, &schema, "c").await);
    store.link(&user, &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    drop(store);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP TABLE {schema}.enishi_link_incentives;
             DELETE FROM {schema}.enishi_link_migrations WHERE version = 2;"
        ))
        .await
        .unwrap();
    let store = PostgresLinkStore::connect(&url, &schema, "c").await.unwrap();
    assert!(store.claim(INCENTIVE, &cust(1), t0()).await.unwrap().is_new());
    assert_eq!(store.link_of_user(&user).await.unwrap().map(|l| l.customer), Some(cust(1)));
    drop(store);
    crate::stores::Cleanup::Schema(schema).run().await;
}
