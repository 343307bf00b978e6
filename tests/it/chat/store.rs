//! The `ChatStore` conformance suite (`enishi::chat::conformance`) against every store: each
//! check is its own test, on a new store with several handles (connections to one file for
//! SQLite, one pool each for PostgreSQL, so the races cross them), plus `Storage::chat`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enishi::LineUserId;
use enishi::chat::{ChatStore, Direction, LogEntry, MemoryChatStore};

#[cfg(any(feature = "testkit", feature = "sqlite", feature = "postgres"))]
use crate::stores::Cleanup;

#[cfg(any(feature = "testkit", feature = "sqlite", feature = "postgres"))]
const CHANNEL: &str = "1650000000";
#[cfg(any(feature = "testkit", feature = "sqlite", feature = "postgres"))]
const OTHER_CHANNEL: &str = "1650000001";

/// Handles of one channel onto one new store, a handle of another channel in the same
/// database, and what to remove afterwards.
#[cfg(feature = "testkit")]
type Fixture = (Vec<Arc<dyn ChatStore>>, Arc<dyn ChatStore>, Cleanup);

#[cfg(feature = "testkit")]
async fn memory_stores(n: usize) -> Fixture {
    let s = MemoryChatStore::new().with_channel(CHANNEL);
    let other = Arc::new(s.with_channel(OTHER_CHANNEL));
    ((0..n).map(|_| Arc::new(s.clone()) as Arc<dyn ChatStore>).collect(), other, Cleanup::None)
}

/// Several connections to one file: the races then cross connections, as between processes.
#[cfg(all(feature = "testkit", feature = "sqlite"))]
async fn sqlite_stores(n: usize) -> Fixture {
    use enishi::chat::SqliteChatStore;
    let path = crate::stores::sqlite_path("chat");
    let open = |_| Arc::new(SqliteChatStore::open(&path, CHANNEL).unwrap()) as Arc<dyn ChatStore>;
    let stores = (0..n).map(open).collect();
    let other = Arc::new(SqliteChatStore::open(&path, OTHER_CHANNEL).unwrap());
    (stores, other, Cleanup::File(path))
}

/// One in-memory SQLite database: one connection, two channels on it are not possible, so
/// the other channel is a second connection's private database (isolation is trivially true).
#[cfg(all(feature = "testkit", feature = "sqlite"))]
async fn sqlite_in_memory_stores(_: usize) -> Fixture {
    use enishi::chat::SqliteChatStore;
    let store = SqliteChatStore::open_in_memory(CHANNEL).unwrap();
    let other = Arc::new(SqliteChatStore::open_in_memory(OTHER_CHANNEL).unwrap());
    (vec![Arc::new(store)], other, Cleanup::None)
}

/// One pool per handle, as in separate processes (two app instances), on a schema of its own.
#[cfg(all(feature = "testkit", feature = "postgres"))]
async fn postgres_stores(n: usize) -> Fixture {
    use enishi::chat::PostgresChatStore;

    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("chat");
    let mut out: Vec<Arc<dyn ChatStore>> = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(pg_needed(
            PostgresChatStore::from_pool(pg_pool(), &schema, CHANNEL).await,
        )));
    }
    let other = PostgresChatStore::from_pool(pg_pool(), &schema, OTHER_CHANNEL).await;
    (out, Arc::new(pg_needed(other)), Cleanup::Schema(schema))
}

#[cfg(feature = "testkit")]
macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                handoff_start_refresh_end,
                handoff_idle_expiry,
                handoff_refreshed_elsewhere_is_kept,
                handoffs_are_listed_oldest_first,
                handoff_race_one_start,
                attributes_set_overwrite_read,
                attribute_values_round_trip,
                survey_set_and_clear,
                log_order_and_limit,
                log_since_and_purge,
                log_text_truncation,
                invalid_input_is_refused,
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn channels_are_isolated() {
                let (stores, other, cleanup) = $factory(2).await;
                enishi::chat::conformance::channels_are_isolated(&stores, &other).await;
                cleanup.run().await;
            }
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (stores, _, cleanup) = $factory(4).await;
                enishi::chat::conformance::$case(&stores).await;
                cleanup.run().await;
            }
        )*
    };
}

#[cfg(feature = "testkit")]
conformance!(chat_store_memory, super::memory_stores);
#[cfg(all(feature = "testkit", feature = "sqlite"))]
conformance!(chat_store_sqlite, super::sqlite_stores);
#[cfg(all(feature = "testkit", feature = "sqlite"))]
conformance!(chat_store_sqlite_in_memory, super::sqlite_in_memory_stores);
#[cfg(all(feature = "testkit", feature = "postgres"))]
conformance!(chat_store_postgres, super::postgres_stores);

/// The whole suite in one call, as a host runs it, on one memory handle.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_conformance_run_all_on_one_memory_handle() {
    enishi::chat::conformance::run_all(|| async {
        let s = MemoryChatStore::new().with_channel(CHANNEL);
        let other = Arc::new(s.with_channel(OTHER_CHANNEL)) as Arc<dyn ChatStore>;
        (vec![Arc::new(s) as Arc<dyn ChatStore>], other)
    })
    .await;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

/// Two app instances on one storage: a hand-off started by one is active on the other, a log
/// line written by one is read by the other, and the channel scopes both.
async fn two_instances_share_the_chat(a: &enishi::storage::Storage, b: &enishi::storage::Storage) {
    let idle = Duration::from_secs(600);
    assert!(a.chat().start_handoff(&user(1), "staff", t0()).await.unwrap());
    assert!(!b.chat().start_handoff(&user(1), "staff", t0()).await.unwrap());
    let h = b.chat().active_handoff(&user(1), idle, t0()).await.unwrap();
    assert_eq!(h.map(|h| h.reason), Some("staff".to_owned()));
    let line = LogEntry::new(user(1), Direction::Inbound, "text", "hello", t0());
    b.chat().append_log(&line).await.unwrap();
    assert_eq!(a.chat().log_of(&user(1), 5).await.unwrap(), vec![line]);
}

#[tokio::test]
async fn chat_storage_in_memory_keeps_one_chat_store() {
    let storage = enishi::storage::Storage::in_memory();
    two_instances_share_the_chat(&storage, &storage.clone()).await;
    assert_eq!(storage.chat().handoffs().await.unwrap().len(), 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_storage_sqlite_keeps_the_chat_in_the_storage_file() {
    use enishi::storage::Storage;
    let path = crate::stores::sqlite_path("chat-storage");
    let url = format!("sqlite://{}", path.display());
    let a = Storage::builder(&url).channel(CHANNEL).open().await.unwrap();
    let b = Storage::builder(&url).channel(CHANNEL).open().await.unwrap();
    two_instances_share_the_chat(&a, &b).await;
    let other = Storage::builder(&url).channel(OTHER_CHANNEL).open().await.unwrap();
    assert!(other.chat().handoffs().await.unwrap().is_empty());
    drop((a, b, other));
    Cleanup::File(path).run().await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_storage_postgres_is_shared_by_two_instances() {
    use enishi::storage::Storage;
    let schema = crate::stores::pg_schema("chat_storage");
    let open = |channel: &'static str| {
        Storage::builder(crate::pg::url()).schema(&schema).channel(channel).pool_size(2).open()
    };
    let a = crate::stores::pg_needed(open(CHANNEL).await);
    let b = open(CHANNEL).await.unwrap();
    two_instances_share_the_chat(&a, &b).await;
    let other = open(OTHER_CHANNEL).await.unwrap();
    assert!(other.chat().handoffs().await.unwrap().is_empty());
    assert!(other.chat().log_since(t0()).await.unwrap().is_empty());
    Cleanup::Schema(schema).run().await;
}

/// Configuration the stores refuse: an empty channel, a schema that would need quoting.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[tokio::test]
async fn chat_store_configuration_is_checked() {
    use enishi::chat::ChatStoreError;
    #[cfg(feature = "sqlite")]
    {
        let e = enishi::chat::SqliteChatStore::open_in_memory("").unwrap_err();
        assert!(matches!(e, ChatStoreError::InvalidConfig { what: "channel", .. }), "{e:?}");
    }
    #[cfg(feature = "postgres")]
    {
        let pool = crate::stores::pg_pool();
        let e = enishi::chat::PostgresChatStore::from_pool(pool.clone(), "Bad-Schema", CHANNEL)
            .await
            .unwrap_err();
        assert!(matches!(e, ChatStoreError::InvalidConfig { what: "schema name", .. }), "{e:?}");
        let e = enishi::chat::PostgresChatStore::from_pool(pool, "enishi_chat_x", "a\0b")
            .await
            .unwrap_err();
        assert!(matches!(e, ChatStoreError::InvalidConfig { what: "channel", .. }), "{e:?}");
    }
}

/// `?` turns a chat store error into `enishi::Error`, message unchanged.
#[tokio::test]
async fn chat_store_errors_convert_into_the_crate_error() {
    async fn set(store: &dyn ChatStore) -> enishi::Result<()> {
        let c = enishi::CustomerId::new("C-1")?;
        store.set_attribute(&c, "", &enishi::segment::AttrValue::Int(1), t0()).await?;
        Ok(())
    }
    let e = set(&MemoryChatStore::new()).await.unwrap_err();
    assert!(matches!(e, enishi::Error::ChatStore(_)), "{e:?}");
    assert_eq!(e.to_string(), "invalid attribute key: must not be empty");
}
