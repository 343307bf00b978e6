//! The `EventDedup` conformance suite (`enishi::line::webhook::conformance`) against every
//! store (memory, SQLite, PostgreSQL): each check is its own test, on a new store with two
//! handles (two connections for SQLite, two pools for PostgreSQL: "handled once across
//! processes"). Then what is particular to one store.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enishi::WebhookEventId;
use enishi::line::webhook::{EventDedup, MemoryDedup};

const RETENTION: Duration = Duration::from_secs(3600);

fn id(s: &str) -> WebhookEventId {
    WebhookEventId::new(s).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

#[cfg(feature = "testkit")]
mod suite {
    use std::sync::Arc;

    use enishi::line::webhook::{EventDedup, MemoryDedup};

    use super::RETENTION;
    use crate::stores::Cleanup;

    type Stores = Vec<Arc<dyn EventDedup>>;

    async fn memory_stores(n: usize) -> (Stores, Cleanup) {
        let s = MemoryDedup::new(RETENTION);
        ((0..n).map(|_| Arc::new(s.clone()) as Arc<dyn EventDedup>).collect(), Cleanup::None)
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_stores(n: usize) -> (Stores, Cleanup) {
        let path = crate::stores::sqlite_path("webhook-dedup");
        let open = |_| {
            Arc::new(enishi::line::webhook::SqliteDedup::open(&path, RETENTION).unwrap())
                as Arc<dyn EventDedup>
        };
        ((0..n).map(open).collect(), Cleanup::File(path))
    }

    /// One in-memory SQLite database: one handle.
    #[cfg(feature = "sqlite")]
    async fn sqlite_in_memory_stores(_: usize) -> (Stores, Cleanup) {
        let store = enishi::line::webhook::SqliteDedup::open_in_memory(RETENTION).unwrap();
        (vec![Arc::new(store)], Cleanup::None)
    }

    #[cfg(feature = "postgres")]
    async fn postgres_stores(n: usize) -> (Stores, Cleanup) {
        use crate::stores::{pg_needed, pg_pool};
        let schema = crate::stores::pg_schema("webhook_dedup");
        let mut out: Stores = Vec::new();
        for _ in 0..n {
            let store =
                enishi::line::webhook::PostgresDedup::from_pool(pg_pool(), &schema, RETENTION);
            out.push(Arc::new(pg_needed(store.await)));
        }
        (out, Cleanup::Schema(schema))
    }

    macro_rules! conformance {
        ($store:ident, $factory:path) => {
            mod $store {
                conformance!(@cases $factory;
                    first_claim_wins_within_the_window,
                    release_frees_an_id,
                    concurrent_claims_have_one_winner,
                    purge_deletes_exactly_the_expired_claims,
                    racing_handles_handle_each_event_once,
                );
            }
        };
        (@cases $factory:path; $($case:ident,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (stores, cleanup) = $factory(2).await;
                    enishi::line::webhook::conformance::$case(&stores).await;
                    cleanup.run().await;
                }
            )*
        };
    }

    conformance!(webhook_dedup_memory, super::memory_stores);
    #[cfg(feature = "sqlite")]
    conformance!(webhook_dedup_sqlite, super::sqlite_stores);
    #[cfg(feature = "sqlite")]
    conformance!(webhook_dedup_sqlite_in_memory, super::sqlite_in_memory_stores);
    #[cfg(feature = "postgres")]
    conformance!(webhook_dedup_postgres, super::postgres_stores);

    /// The whole suite in one call, as a host runs it, on one handle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_conformance_run_all_on_one_memory_handle() {
        enishi::line::webhook::conformance::run_all(|| async {
            vec![Arc::new(MemoryDedup::new(RETENTION)) as Arc<dyn EventDedup>]
        })
        .await;
    }
}

#[tokio::test]
async fn webhook_dedup_memory_reports_its_retention_and_clones_share_state() {
    let one = MemoryDedup::new(RETENTION);
    assert_eq!(one.retention(), RETENTION);
    let two = one.clone();
    assert!(one.claim(&id("shared"), at(0)).await.unwrap());
    assert!(!two.claim(&id("shared"), at(0)).await.unwrap());
    assert_eq!(one.len(), 1);
}

#[tokio::test]
async fn webhook_dedup_memory_purges_expired_entries_by_itself() {
    let store = MemoryDedup::new(Duration::from_millis(10));
    for i in 0..2000 {
        assert!(store.claim(&id(&format!("e{i}")), at(i64::from(i) * 100)).await.unwrap());
    }
    assert!(store.len() < 1100, "expired entries were not purged: {}", store.len());
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_dedup_sqlite_claims_are_on_disk() {
    use enishi::line::webhook::SqliteDedup;
    let path = crate::stores::sqlite_path("webhook-dedup");
    let one = SqliteDedup::open(&path, RETENTION).unwrap();
    assert_eq!(one.retention(), RETENTION);
    assert!(one.claim(&id("01JDISK"), at(1_760_000_000_000)).await.unwrap());
    // A second instance opened later sees the claim: it is on disk.
    let two = SqliteDedup::open(&path, RETENTION).unwrap();
    assert!(!two.claim(&id("01JDISK"), at(1_760_000_000_000)).await.unwrap());
    drop((one, two));
    crate::stores::remove_sqlite(&path);
}

#[cfg(feature = "postgres")]
mod postgres {
    use enishi::line::webhook::PostgresDedup;

    use super::*;
    use crate::stores::Cleanup;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_postgres_reconnects_after_its_connections_are_terminated() {
        let s = crate::stores::pg_schema("webhook_dedup");
        let (url, app) = crate::pg::url_with_app_name();
        let store = PostgresDedup::connect(&url, &s, RETENTION).await.unwrap();
        assert_eq!(store.retention(), RETENTION);
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(store.claim(&id("before"), now).await.unwrap());
        assert!(crate::pg::terminate(&app).await >= 1, "no connection of {app} to terminate");
        let after = id("after");
        let first = crate::pg::at_most_one_failure(|| store.claim(&after, now)).await;
        assert!(first, "the claim after the reconnect is the first one");
        assert!(!store.claim(&id("after"), now).await.unwrap(), "a duplicate stays one");
        assert!(!store.claim(&id("before"), now).await.unwrap(), "the earlier claim is kept");
        // Twice more: every lost connection is replaced, not just the first.
        for round in 0..2 {
            assert!(crate::pg::terminate(&app).await >= 1);
            let fresh = id(&format!("round{round}"));
            assert!(crate::pg::at_most_one_failure(|| store.claim(&fresh, now)).await);
        }
        Cleanup::Schema(s).run().await;
    }

    /// A schema made by a version without recorded migrations (table and index only) is
    /// migrated in place: its claims are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_postgres_adopts_a_schema_made_before_migrations() {
        let s = crate::stores::pg_schema("webhook_dedup");
        let (client, conn) =
            tokio_postgres::connect(&crate::pg::url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {s};
                 CREATE TABLE {s}.enishi_webhook_dedup (
                     event_id TEXT PRIMARY KEY, claimed_at_ms BIGINT NOT NULL);
                 CREATE INDEX enishi_webhook_dedup_claimed_at
                     ON {s}.enishi_webhook_dedup (claimed_at_ms);
                 INSERT INTO {s}.enishi_webhook_dedup VALUES ('old', 1760000000000);"
            ))
            .await
            .unwrap();
        let store = PostgresDedup::connect(&crate::pg::url(), &s, RETENTION).await.unwrap();
        assert!(!store.claim(&id("old"), at(1_760_000_000_001)).await.unwrap(), "claim kept");
        assert!(store.claim(&id("new"), at(1_760_000_000_001)).await.unwrap());
        Cleanup::Schema(s).run().await;
    }

    #[tokio::test]
    async fn webhook_dedup_postgres_rejects_unsafe_schema_names() {
        for bad in ["", "Public", "a;drop table x", "1abc", &"a".repeat(64)] {
            let err = PostgresDedup::connect(&crate::pg::url(), bad, RETENTION).await.unwrap_err();
            assert!(
                matches!(err, enishi::line::webhook::DedupError::InvalidConfig { .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
