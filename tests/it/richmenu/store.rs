//! The `RichMenuStore` conformance suite (`enishi::richmenu::conformance`) on every store.

use std::sync::Arc;

use enishi::richmenu::{MemoryRichMenuStore, RichMenuStore};

use crate::stores::Cleanup;

async fn memory() -> (Arc<dyn RichMenuStore>, Cleanup) {
    (Arc::new(MemoryRichMenuStore::new()), Cleanup::None)
}

#[cfg(feature = "sqlite")]
async fn sqlite() -> (Arc<dyn RichMenuStore>, Cleanup) {
    let path = crate::stores::sqlite_path("richmenu");
    let store = enishi::richmenu::SqliteRichMenuStore::open(&path).unwrap();
    (Arc::new(store), Cleanup::File(path))
}

#[cfg(feature = "postgres")]
async fn postgres() -> (Arc<dyn RichMenuStore>, Cleanup) {
    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("richmenu");
    let store =
        pg_needed(enishi::richmenu::PostgresRichMenuStore::from_pool(pg_pool(), &schema).await);
    (Arc::new(store), Cleanup::Schema(schema))
}

macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                menus_are_upserted_by_key,
                record_then_settle_exactly_once,
                conflicting_record_is_rejected,
                pending_is_oldest_first_and_updatable,
                applied_rows_upsert_and_remove,
                large_settles_round_trip,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, cleanup) = $factory().await;
                enishi::richmenu::conformance::$case(&*store).await;
                cleanup.run().await;
            }
        )*
    };
}

conformance!(memory, super::memory);
#[cfg(feature = "sqlite")]
conformance!(sqlite, super::sqlite);
#[cfg(feature = "postgres")]
conformance!(postgres, super::postgres);

/// The whole suite in one call, as a host runs it.
#[tokio::test]
async fn richmenu_store_conformance_run_all_on_memory() {
    enishi::richmenu::conformance::run_all(|| async {
        Arc::new(MemoryRichMenuStore::new()) as Arc<dyn RichMenuStore>
    })
    .await;
}

/// What a crash leaves in SQLite is still there when the file is opened again.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn richmenu_sqlite_pending_operations_survive_reopening() {
    use enishi::richmenu::{MenuOperation, MenuOperationKind, SqliteRichMenuStore};
    let path = crate::stores::sqlite_path("richmenu");
    let user: enishi::LineUserId = enishi::testkit::user_id(1).parse().unwrap();
    let op = MenuOperation::new("op-1", MenuOperationKind::Unlink { users: vec![user] });
    SqliteRichMenuStore::open(&path).unwrap().record(&op).await.unwrap();
    let reopened = SqliteRichMenuStore::open(&path).unwrap();
    assert_eq!(reopened.pending().await.unwrap(), vec![op]);
    crate::stores::remove_sqlite(&path);
}
