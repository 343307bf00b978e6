//! `Storage`: one URL, every store; batched link reads.

use chrono::Utc;
use enishi::link::{ConflictPolicy, LinkSource, LinkStore};
use enishi::storage::{Storage, StorageError};

use super::harness::{id, user};

async fn link_two_and_block_one(links: &dyn LinkStore) {
    let now = Utc::now();
    links.link(&user(1), &id(1), LinkSource::Manual, ConflictPolicy::Reject, now).await.unwrap();
    links.link(&user(2), &id(2), LinkSource::Manual, ConflictPolicy::Reject, now).await.unwrap();
    links.set_following(&user(2), false, now).await.unwrap();
}

async fn batched_reads_answer_for_many(storage: &Storage) {
    let links = storage.links();
    link_two_and_block_one(links.as_ref()).await;
    let asked = [id(1), id(2), id(3)];
    let mut found = links.links_of_customers(&asked).await.unwrap();
    found.sort_by(|a, b| a.link.customer.cmp(&b.link.customer));
    assert_eq!(found.len(), 2, "customer 3 has no link");
    assert_eq!(found[0].link.line_user, user(1));
    assert!(found[0].following(), "never unfollowed counts as following");
    assert!(found[0].follow.is_none());
    assert!(!found[1].following());
    assert!(links.links_of_customers(&[]).await.unwrap().is_empty());
    storage.check().await.unwrap();
}

#[tokio::test]
async fn app_storage_memory_hands_out_every_store() {
    let storage = Storage::from_url("memory:").await.unwrap();
    assert_eq!(storage.kind(), "memory");
    assert!(!storage.is_shared());
    batched_reads_answer_for_many(&storage).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn app_storage_sqlite_opens_one_file_for_every_store() {
    let dir = std::env::temp_dir().join(format!("enishi-it-storage-{}", uuid::Uuid::new_v4()));
    let path = dir.join("nested").join("enishi.sqlite");
    let storage = Storage::open(&path).await.unwrap();
    assert_eq!(storage.kind(), "sqlite");
    batched_reads_answer_for_many(&storage).await;
    // Opened again (a restart): the links are there.
    let again = Storage::from_url(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(again.links().links_of_customers(&[id(1)]).await.unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn app_storage_postgres_shares_one_pool() {
    let storage = Storage::builder(crate::pg::url())
        .schema(super::harness::schema())
        .pool_size(2)
        .open()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at ENISHI_TEST_DATABASE_URL (default 127.0.0.1:5432, see README Testing): {e}"));
    assert!(storage.is_shared());
    batched_reads_answer_for_many(&storage).await;
    let lead = storage.try_lead("it").await.unwrap().expect("nobody else leads");
    assert!(lead.is_held());
    assert!(storage.try_lead("it").await.unwrap().is_none(), "one leader at a time");
    drop(lead);
    // The lock goes with its session; the server notices the closed connection shortly.
    let mut again = None;
    while again.is_none() {
        again = storage.try_lead("it").await.unwrap();
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn app_storage_refuses_unknown_schemes_with_the_expected_ones() {
    let err = Storage::from_url("mysql://db/x").await.unwrap_err();
    assert!(matches!(err, StorageError::UnsupportedScheme { ref scheme } if scheme == "mysql"));
    assert!(err.to_string().contains("sqlite://"), "{err}");
}

#[tokio::test]
async fn app_storage_debug_hides_the_database_url() {
    let storage = Storage::from_url("memory:").await.unwrap();
    assert!(format!("{storage:?}").contains("Memory"));
    #[cfg(feature = "postgres")]
    {
        let url = format!("{}?password=hunter2", crate::pg::url());
        let s = Storage::builder(url)
            .schema(super::harness::schema())
            .pool_size(1)
            .open()
            .await
            .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
