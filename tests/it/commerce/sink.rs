//! The dataset sink conformance suite (`enishi::commerce::conformance::sink`) against every
//! stored dataset: in memory, SQLite, PostgreSQL. Each check is its own test on a new sink.

use enishi::commerce::sync::Dataset;

use crate::stores::Cleanup;

async fn memory_sink() -> (Dataset, Cleanup) {
    (Dataset::new(), Cleanup::None)
}

#[cfg(feature = "sqlite")]
async fn sqlite_sink() -> (enishi::commerce::sync::SqliteDataset, Cleanup) {
    let path = crate::stores::sqlite_path("shop");
    (enishi::commerce::sync::SqliteDataset::open(&path).unwrap(), Cleanup::File(path))
}

#[cfg(feature = "postgres")]
async fn postgres_sink() -> (enishi::commerce::sync::PostgresDataset, Cleanup) {
    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("shop");
    let sink = enishi::commerce::sync::PostgresDataset::from_pool(pg_pool(), &schema).await;
    (pg_needed(sink), Cleanup::Schema(schema))
}

macro_rules! conformance {
    ($sink:ident, $factory:path) => {
        mod $sink {
            conformance!(@cases $factory;
                new_sink_is_empty,
                apply_stores_records_with_their_cursor,
                apply_upserts_by_id,
                every_resource_reads_back_as_applied,
                empty_page_moves_the_cursor,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (sink, cleanup) = $factory().await;
                enishi::commerce::conformance::sink::$case(&sink).await;
                drop(sink);
                cleanup.run().await;
            }
        )*
    };
}

conformance!(commerce_sink_memory, super::memory_sink);
#[cfg(feature = "sqlite")]
conformance!(commerce_sink_sqlite, super::sqlite_sink);
#[cfg(feature = "postgres")]
conformance!(commerce_sink_postgres, super::postgres_sink);

/// The whole suite in one call, as a host runs it.
#[tokio::test]
async fn commerce_sink_conformance_run_all_in_memory() {
    enishi::commerce::conformance::sink::run_all(|| async { Dataset::new() }).await;
}

/// A schema name that would need quoting is refused before anything is connected.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn commerce_sink_postgres_refuses_unsafe_schema_names() {
    use enishi::commerce::sync::PostgresDataset;
    for bad in ["", "Shop", "a;drop table x", "1abc", &"a".repeat(64)] {
        let err = PostgresDataset::connect(&crate::pg::url(), bad).await.unwrap_err();
        assert!(err.to_string().contains("invalid schema name"), "{bad}: {err}");
    }
}
