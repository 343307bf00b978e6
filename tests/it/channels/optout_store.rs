//! The `OptOutStore` conformance suite (`enishi::channel::conformance`) against the memory,
//! SQLite and PostgreSQL stores: each check is its own test, on a new store with several
//! handles (connections to one file for SQLite, one pool each for PostgreSQL). Plus: opt-outs
//! survive a restart (the SQLite file reopened, PostgreSQL reconnected).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use enishi::CustomerId;
use enishi::channel::{ChannelKind, MemoryOptOuts, OptOut, OptOutStore};

#[cfg(feature = "testkit")]
use crate::stores::Cleanup;

#[cfg(feature = "testkit")]
type Fixture = (Vec<Arc<dyn OptOutStore>>, Cleanup);

#[cfg(feature = "testkit")]
async fn memory_stores(n: usize) -> Fixture {
    let s = Arc::new(MemoryOptOuts::new()) as Arc<dyn OptOutStore>;
    ((0..n).map(|_| Arc::clone(&s)).collect(), Cleanup::None)
}

/// Several connections to one file: the race then crosses connections, as between processes.
#[cfg(all(feature = "testkit", feature = "sqlite"))]
async fn sqlite_stores(n: usize) -> Fixture {
    use enishi::channel::SqliteOptOuts;
    let path = crate::stores::sqlite_path("optouts");
    let open = |_| Arc::new(SqliteOptOuts::open(&path).unwrap()) as Arc<dyn OptOutStore>;
    ((0..n).map(open).collect(), Cleanup::File(path))
}

/// One pool per handle, as in separate app instances, on a schema of its own.
#[cfg(all(feature = "testkit", feature = "postgres"))]
async fn postgres_stores(n: usize) -> Fixture {
    use enishi::channel::PostgresOptOuts;

    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("optouts");
    let mut out: Vec<Arc<dyn OptOutStore>> = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(pg_needed(PostgresOptOuts::from_pool(pg_pool(), &schema).await)));
    }
    (out, Cleanup::Schema(schema))
}

#[cfg(feature = "testkit")]
macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                opt_out_is_per_customer_and_channel,
                recording_twice_keeps_the_first_time,
                all_lists_in_order,
                customer_ids_round_trip,
                concurrent_recording_is_one_row,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (stores, cleanup) = $factory(4).await;
                enishi::channel::conformance::$case(&stores).await;
                cleanup.run().await;
            }
        )*
    };
}

#[cfg(feature = "testkit")]
conformance!(channel_optouts_memory, super::memory_stores);
#[cfg(all(feature = "testkit", feature = "sqlite"))]
conformance!(channel_optouts_sqlite, super::sqlite_stores);
#[cfg(all(feature = "testkit", feature = "postgres"))]
conformance!(channel_optouts_postgres, super::postgres_stores);

/// The whole suite in one call, as a host runs it, on one memory handle.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_optouts_run_all_on_one_memory_handle() {
    enishi::channel::conformance::run_all(|| async {
        vec![Arc::new(MemoryOptOuts::new()) as Arc<dyn OptOutStore>]
    })
    .await;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

/// Records three opt-outs (one twice) through a store.
async fn record(store: &dyn OptOutStore) {
    store.opt_out(&cust(1), ChannelKind::Email, t0()).await.unwrap();
    store.opt_out(&cust(2), ChannelKind::Sms, t0()).await.unwrap();
    store.opt_out(&cust(1), ChannelKind::Line, t0()).await.unwrap();
    store.opt_out(&cust(1), ChannelKind::Email, t0() + chrono::Duration::hours(1)).await.unwrap();
}

/// What a restarted store must still hold: every opt-out, at its first time.
async fn check_after_restart(store: &dyn OptOutStore) {
    let mut got: Vec<(String, ChannelKind)> = store
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|o: OptOut| {
            assert_eq!(o.at, t0(), "the first time must survive the restart");
            (o.customer.as_str().to_owned(), o.channel)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("C-1".to_owned(), ChannelKind::Line),
            ("C-1".to_owned(), ChannelKind::Email),
            ("C-2".to_owned(), ChannelKind::Sms),
        ],
        "every opt-out must survive the restart"
    );
    assert!(store.is_opted_out(&cust(1), ChannelKind::Email).await.unwrap());
    assert!(!store.is_opted_out(&cust(2), ChannelKind::Email).await.unwrap());
}

/// An opt-out recorded before a restart (the file closed and reopened) is kept.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn channel_optouts_sqlite_survive_a_restart() {
    use enishi::channel::SqliteOptOuts;
    let path = crate::stores::sqlite_path("optouts");
    {
        let store = SqliteOptOuts::open(&path).unwrap();
        record(&store).await;
    }
    let reopened = SqliteOptOuts::open(&path).unwrap();
    check_after_restart(&reopened).await;
    drop(reopened);
    crate::stores::remove_sqlite(&path);
}

/// An opt-out recorded before a restart (the pool closed, a new one connected) is kept.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn channel_optouts_postgres_survive_a_restart() {
    use enishi::channel::PostgresOptOuts;

    use crate::stores::pg_needed;
    let schema = crate::stores::pg_schema("optouts");
    {
        let store = pg_needed(PostgresOptOuts::connect(&crate::pg::url(), &schema).await);
        record(&store).await;
    }
    let again = pg_needed(PostgresOptOuts::connect(&crate::pg::url(), &schema).await);
    check_after_restart(&again).await;
    drop(again);
    crate::stores::Cleanup::Schema(schema).run().await;
}

/// A bad schema name is refused before any SQL runs.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn channel_optouts_postgres_refuse_a_bad_schema_name() {
    use enishi::channel::{ChannelError, PostgresOptOuts};
    let err = PostgresOptOuts::from_pool(crate::stores::pg_pool(), "bad; DROP").await.unwrap_err();
    assert!(matches!(err, ChannelError::Unsupported { .. }), "got {err:?}");
    assert!(err.to_string().contains("invalid schema name"), "got {err}");
}

/// A file that is not an SQLite database fails with an error naming the store, not a panic.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn channel_optouts_sqlite_bad_file_is_an_error() {
    use enishi::channel::SqliteOptOuts;
    let path = crate::stores::sqlite_path("optouts-bad");
    std::fs::write(&path, b"this is not a database, just text long enough to be read").unwrap();
    let err = SqliteOptOuts::open(&path).unwrap_err();
    assert!(err.to_string().contains("sqlite opt-outs"), "got {err}");
    assert!(err.is_retryable());
    crate::stores::remove_sqlite(&path);
}
