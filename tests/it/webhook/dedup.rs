//! One conformance suite for every `EventDedup` store (memory, SQLite, PostgreSQL), plus
//! "handled once across processes": two store instances over one database racing on the same IDs.

use std::sync::Arc;
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

/// The behaviour every store must have. `store` must be empty and use [`RETENTION`].
async fn conformance(store: Arc<dyn EventDedup>) {
    let r = i64::try_from(RETENTION.as_millis()).unwrap();
    let t0 = 1_760_000_000_000i64;
    assert_eq!(store.retention(), RETENTION);

    // First claim wins; later ones inside the window lose; the window's end frees the ID.
    let a = id("01JAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(store.claim(&a, at(t0)).await.unwrap(), "first claim");
    assert!(!store.claim(&a, at(t0)).await.unwrap(), "second claim at the same time");
    assert!(!store.claim(&a, at(t0 + r - 1)).await.unwrap(), "claim just inside the window");
    assert!(store.claim(&a, at(t0 + r)).await.unwrap(), "claim once the window has passed");
    assert!(!store.claim(&a, at(t0 + r)).await.unwrap(), "the re-claim holds");

    // Release frees an ID; releasing an unknown ID is fine.
    let b = id("01JBBBBBBBBBBBBBBBBBBBBBBB");
    assert!(store.claim(&b, at(t0)).await.unwrap());
    store.release(&b).await.unwrap();
    assert!(store.claim(&b, at(t0)).await.unwrap(), "claim after release");
    store.release(&id("never-claimed")).await.unwrap();

    // Concurrent claims of one ID: exactly one winner.
    let c = id("01JCCCCCCCCCCCCCCCCCCCCCCC");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, c) = (Arc::clone(&store), c.clone());
            tokio::spawn(async move { store.claim(&c, at(t0)).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "concurrent claims");

    // Purge deletes exactly the expired claims (b and c at t0; a was re-claimed at t0 + r).
    assert_eq!(store.purge_expired(at(t0 + r)).await.unwrap(), 2);
    assert!(store.claim(&b, at(t0 + r)).await.unwrap(), "purged IDs can be claimed again");
    assert!(!store.claim(&a, at(t0 + r)).await.unwrap(), "unexpired claims survive a purge");
    assert_eq!(store.purge_expired(at(t0 + r)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(at(t0 + 2 * r + 1)).await.unwrap(), 2);
    assert!(store.claim(&a, at(t0 + 2 * r + 1)).await.unwrap());
}

/// Two instances over one database (two processes in production) race on the same IDs.
async fn race(one: Arc<dyn EventDedup>, two: Arc<dyn EventDedup>) {
    let ids: Vec<WebhookEventId> = (0..200).map(|i| id(&format!("01JRACE{i:019}"))).collect();
    let now = at(1_760_000_000_000);
    let mut tasks = Vec::new();
    for (n, store) in [one, two].into_iter().enumerate() {
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            // Opposite orders make the two instances meet in the middle.
            let order: Vec<_> = if n == 0 { ids } else { ids.into_iter().rev().collect() };
            for i in order {
                if store.claim(&i, now).await.unwrap() {
                    won.push(i);
                }
            }
            won
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (ids.len(), ids.len()), "each ID handled exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_dedup_memory_conformance() {
    conformance(Arc::new(MemoryDedup::new(RETENTION))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_dedup_memory_clones_share_state() {
    let one = MemoryDedup::new(RETENTION);
    race(Arc::new(one.clone()), Arc::new(one.clone())).await;
    assert_eq!(one.len(), 200);
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
mod sqlite {
    use super::*;
    use enishi::line::webhook::SqliteDedup;

    fn temp_db() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("enishi-webhook-dedup-{}.sqlite", uuid::Uuid::new_v4()))
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_sqlite_conformance() {
        let path = temp_db();
        conformance(Arc::new(SqliteDedup::open(&path, RETENTION).unwrap())).await;
        remove(&path);
        conformance(Arc::new(SqliteDedup::open_in_memory(RETENTION).unwrap())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_sqlite_two_instances_on_one_file_handle_each_event_once() {
        let path = temp_db();
        let one = SqliteDedup::open(&path, RETENTION).unwrap();
        let two = SqliteDedup::open(&path, RETENTION).unwrap();
        race(Arc::new(one), Arc::new(two)).await;
        // A third instance opened later sees the claims: they are on disk.
        let three = SqliteDedup::open(&path, RETENTION).unwrap();
        assert!(
            !three.claim(&id("01JRACE0000000000000000042"), at(1_760_000_000_000)).await.unwrap()
        );
        remove(&path);
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use enishi::line::webhook::PostgresDedup;

    fn url() -> String {
        std::env::var("ENISHI_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A fresh schema per test (parallel-safe), dropped by [`drop_schema`].
    fn schema() -> String {
        format!("enishi_test_{}", uuid::Uuid::new_v4().simple())
    }

    async fn store(schema: &str) -> PostgresDedup {
        PostgresDedup::connect(&url(), schema, RETENTION).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed at {} ({e:?}). Start it, e.g. `docker run -d -p 5432:5432 \
                 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`, or set \
                 ENISHI_TEST_DATABASE_URL",
                url()
            )
        })
    }

    async fn drop_schema(schema: &str) {
        let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_postgres_conformance() {
        let s = schema();
        conformance(Arc::new(store(&s).await)).await;
        drop_schema(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_postgres_two_connections_handle_each_event_once() {
        let s = schema();
        let (one, two) = (store(&s).await, store(&s).await);
        race(Arc::new(one), Arc::new(two)).await;
        drop_schema(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_dedup_postgres_reconnects_after_its_connections_are_terminated() {
        let s = schema();
        let (url, app) = crate::pg::url_with_app_name();
        let store = PostgresDedup::connect(&url, &s, RETENTION).await.unwrap();
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
        drop_schema(&s).await;
    }

    #[tokio::test]
    async fn webhook_dedup_postgres_rejects_unsafe_schema_names() {
        for bad in ["", "Public", "a;drop table x", "1abc", &"a".repeat(64)] {
            let err = PostgresDedup::connect(&url(), bad, RETENTION).await.unwrap_err();
            assert!(
                matches!(err, enishi::line::webhook::DedupError::InvalidConfig { .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
