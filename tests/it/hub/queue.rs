//! The `HubQueue` conformance suite (`enishi::hub::conformance`) against every queue: each
//! check is its own test on a new queue with two handles (two connections for SQLite, two
//! pools for PostgreSQL).

#[cfg(feature = "testkit")]
mod suite {
    use std::sync::Arc;

    use enishi::hub::{HubQueue, MemoryHubQueue};

    use crate::stores::Cleanup;

    type Queues = Vec<Arc<dyn HubQueue>>;

    async fn memory_queues(n: usize) -> (Queues, Cleanup) {
        let q = MemoryHubQueue::new();
        ((0..n).map(|_| Arc::new(q.clone()) as Arc<dyn HubQueue>).collect(), Cleanup::None)
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_queues(n: usize) -> (Queues, Cleanup) {
        let path = crate::stores::sqlite_path("hub-queue");
        let open =
            |_| Arc::new(enishi::hub::SqliteHubQueue::open(&path).unwrap()) as Arc<dyn HubQueue>;
        ((0..n).map(open).collect(), Cleanup::File(path))
    }

    #[cfg(feature = "postgres")]
    async fn postgres_queues(n: usize) -> (Queues, Cleanup) {
        use crate::stores::{pg_needed, pg_pool};
        let schema = crate::stores::pg_schema("hub_queue");
        let mut out: Queues = Vec::new();
        for _ in 0..n {
            let q = enishi::hub::PostgresHubQueue::from_pool(pg_pool(), &schema);
            out.push(Arc::new(pg_needed(q.await)));
        }
        (out, Cleanup::Schema(schema))
    }

    macro_rules! conformance {
        ($store:ident, $factory:path) => {
            mod $store {
                conformance!(@cases $factory;
                    enqueue_is_idempotent,
                    order_is_kept_per_user,
                    retry_waits_and_keeps_blocking,
                    dead_letters_unblock_and_requeue,
                    an_expired_lease_frees_the_item,
                    racing_claims_share_nothing,
                );
            }
        };
        (@cases $factory:path; $($case:ident,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (queues, cleanup) = $factory(2).await;
                    enishi::hub::conformance::$case(&queues).await;
                    cleanup.run().await;
                }
            )*
        };
    }

    conformance!(hub_queue_memory, super::memory_queues);
    #[cfg(feature = "sqlite")]
    conformance!(hub_queue_sqlite, super::sqlite_queues);
    #[cfg(feature = "postgres")]
    conformance!(hub_queue_postgres, super::postgres_queues);

    /// The whole suite in one call, as a host runs it, on one handle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hub_queue_conformance_run_all_on_one_memory_handle() {
        enishi::hub::conformance::run_all(|| async {
            vec![Arc::new(MemoryHubQueue::new()) as Arc<dyn HubQueue>]
        })
        .await;
    }
}
