//! `Enishi::sync`: incremental, links imported, link and follow status in the facts.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use enishi::app::AppError;
use enishi::clock::Clock;
use enishi::segment::Friendship;
use enishi::storage::Storage;

use super::harness::{id, order, shop};

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
pub(crate) struct ManualClock(pub(crate) Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub(crate) fn at(t: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }

    pub(crate) fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn app_sync_imports_links_and_reads_only_what_changed() {
    let shop = shop(6).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    let first = app.sync().await.unwrap();
    assert_eq!(first.customers, 6);
    assert_eq!(first.imported_links, 3, "customers 1, 3, 5 carry a line_id in ecforce");
    assert_eq!(first.linked, 3);
    assert_eq!(first.changed, 6);

    let again = app.sync().await.unwrap();
    assert_eq!((again.records, again.changed), (0, 0), "nothing new: {again:?}");

    // Updated a little before the sync (records of the sync's own second wait for the next).
    shop.ecforce.insert_orders([order("o-new", 2, shop.now - chrono::TimeDelta::seconds(5))]);
    let third = app.sync().await.unwrap();
    assert_eq!((third.records, third.changed), (1, 1), "{third:?}");
    let facts = app.facts().await.unwrap();
    let two = facts.iter().find(|f| f.id == id(2)).unwrap();
    assert_eq!(two.orders.len(), 2);
    assert!(!two.line.linked);
    let one = facts.iter().find(|f| f.id == id(1)).unwrap();
    assert!(one.line.linked);
    assert_eq!(one.line.friendship, Friendship::Following);
}

#[tokio::test]
async fn app_sync_sees_a_block_recorded_by_any_process() {
    let shop = shop(3).await;
    let storage = Storage::in_memory();
    let app = shop.builder(storage.clone()).build().unwrap();
    app.sync().await.unwrap();
    // Another instance handled the unfollow webhook: only the shared store knows.
    storage.links().set_following(&super::harness::user(1), false, Utc::now()).await.unwrap();
    let after = app.sync().await.unwrap();
    assert_eq!(after.changed, 1);
    let one = app.facts().await.unwrap().into_iter().find(|f| f.id == id(1)).unwrap();
    assert_eq!(one.line.friendship, Friendship::Blocked);
}

#[tokio::test]
async fn app_state_survives_a_restart_on_the_same_storage() {
    let shop = shop(4).await;
    let dir = std::env::temp_dir().join(format!("enishi-it-app-{}", uuid::Uuid::new_v4()));
    let path = dir.join("enishi.sqlite");
    {
        let app = shop.builder(Storage::open(&path).await.unwrap()).build().unwrap();
        app.sync().await.unwrap();
    }
    let app = shop.builder(Storage::open(&path).await.unwrap()).build().unwrap();
    // Loaded from the file, before any sync: the shop and its links.
    let facts = app.facts().await.unwrap();
    assert_eq!(facts.len(), 4);
    assert_eq!(facts.iter().filter(|f| f.line.linked).count(), 2);
    let resumed = app.sync().await.unwrap();
    assert_eq!(resumed.records, 0, "the cursors were stored with the records");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn app_without_a_shop_says_what_is_missing() {
    let shop = shop(1).await;
    let app = enishi::app::Enishi::builder()
        .line(shop.client.clone())
        .storage(Storage::in_memory())
        .build()
        .unwrap();
    let err = app.sync().await.unwrap_err();
    assert!(matches!(err, AppError::Missing(_)));
    assert!(err.to_string().contains("commerce"), "{err}");
    let err = enishi::app::Enishi::builder().storage(Storage::in_memory()).build().unwrap_err();
    assert!(err.to_string().contains("LINE client"), "{err}");
}
