//! The conformance suite every [`RichMenuStore`] passes (feature `testkit`).
//!
//! enishi runs it against its memory, SQLite and PostgreSQL stores
//! (`tests/it/richmenu/store.rs`); a host runs it against its own store with one call to
//! [`run_all`], or check by check. Each check panics with a message saying what the store got
//! wrong, and needs a new, empty store.

#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::sync::Arc;

use super::rules::MenuKey;
use super::store::{
    MenuOperation, MenuOperationKind, RichMenuStore, RichMenuStoreError, StoredMenu,
};
use crate::{LineUserId, RequestId, RichMenuId};

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).expect("a valid user ID")
}

fn menu(name: &str) -> RichMenuId {
    RichMenuId::new(format!("richmenu-{name}")).expect("a valid menu ID")
}

fn key(name: &str) -> MenuKey {
    MenuKey::new(name).expect("a valid key")
}

fn link(id: &str, to: &str, users: &[u32]) -> MenuOperation {
    MenuOperation::new(
        id,
        MenuOperationKind::Link { menu: menu(to), users: users.iter().map(|&n| user(n)).collect() },
    )
}

/// Menus are upserted by key and listed in key order.
pub async fn menus_are_upserted_by_key(store: &dyn RichMenuStore) {
    assert!(store.menus().await.unwrap().is_empty(), "a new store must hold no menus");
    store.put_menu(&StoredMenu::new(key("mypage"), "f1", menu("a"))).await.unwrap();
    store.put_menu(&StoredMenu::new(key("link"), "f2", menu("b"))).await.unwrap();
    store.put_menu(&StoredMenu::new(key("mypage"), "f3", menu("c"))).await.unwrap();
    let menus = store.menus().await.unwrap();
    assert_eq!(
        menus,
        vec![
            StoredMenu::new(key("link"), "f2", menu("b")),
            StoredMenu::new(key("mypage"), "f3", menu("c"))
        ],
        "menus must be replaced by key and listed in key order"
    );
}

/// An operation is pending from `record` until `settle`, which writes its rows atomically;
/// recording it again is a no-op, and settling it twice fails without writing.
pub async fn record_then_settle_exactly_once(store: &dyn RichMenuStore) {
    let op = link("op-1", "a", &[1, 2]);
    store.record(&op).await.unwrap();
    store.record(&op).await.expect("recording the same operation again must be a no-op");
    assert_eq!(store.pending().await.unwrap(), vec![op.clone()]);
    assert!(store.applied().await.unwrap().is_empty(), "recording must not apply anything");
    store.settle("op-1", &op.outcome()).await.unwrap();
    assert!(store.pending().await.unwrap().is_empty(), "a settled operation is not pending");
    let applied = store.applied().await.unwrap();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied.get(&user(1)), Some(&menu("a")));
    let again = store.settle("op-1", &[(user(3), Some(menu("z")))]).await;
    assert!(matches!(again, Err(RichMenuStoreError::NotPending(_))), "got {again:?}");
    assert!(!store.applied().await.unwrap().contains_key(&user(3)), "a failed settle wrote rows");
    let unknown = store.settle("op-missing", &[]).await;
    assert!(matches!(unknown, Err(RichMenuStoreError::NotPending(_))), "got {unknown:?}");
}

/// Recording another operation under a used ID is a conflict.
pub async fn conflicting_record_is_rejected(store: &dyn RichMenuStore) {
    store.record(&link("op-1", "a", &[1])).await.unwrap();
    let other = store.record(&link("op-1", "b", &[1])).await;
    assert!(matches!(other, Err(RichMenuStoreError::Conflict(_))), "got {other:?}");
    assert_eq!(store.pending().await.unwrap(), vec![link("op-1", "a", &[1])]);
}

/// Pending operations come back oldest first, and `update` replaces a pending one only.
pub async fn pending_is_oldest_first_and_updatable(store: &dyn RichMenuStore) {
    for (i, id) in ["op-c", "op-a", "op-b"].iter().enumerate() {
        store.record(&link(id, "a", &[u32::try_from(i).unwrap_or(0)])).await.unwrap();
    }
    let ids: Vec<String> = store.pending().await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(ids, ["op-c", "op-a", "op-b"], "pending must be in recording order");
    let batch = MenuOperation::new(
        "op-batch",
        MenuOperationKind::Batch {
            from: menu("a"),
            to: Some(menu("b")),
            users: vec![user(7)],
            resume_key: "op-batch".into(),
            request_id: None,
        },
    );
    store.record(&batch).await.unwrap();
    let mut sent = batch.clone();
    if let MenuOperationKind::Batch { request_id, .. } = &mut sent.kind {
        *request_id = Some(RequestId::new("req-1").unwrap());
    }
    store.update(&sent).await.unwrap();
    assert_eq!(store.pending().await.unwrap().last(), Some(&sent), "update must replace the op");
    store.settle("op-batch", &sent.outcome()).await.unwrap();
    let late = store.update(&sent).await;
    assert!(matches!(late, Err(RichMenuStoreError::NotPending(_))), "got {late:?}");
    assert_eq!(store.applied().await.unwrap().get(&user(7)), Some(&menu("b")));
}

/// `set_applied` and `settle` upsert rows, and `None` removes one; the last row for a user
/// wins.
pub async fn applied_rows_upsert_and_remove(store: &dyn RichMenuStore) {
    store.set_applied(&[(user(1), Some(menu("a"))), (user(2), Some(menu("a")))]).await.unwrap();
    store.set_applied(&[(user(1), Some(menu("b"))), (user(2), None)]).await.unwrap();
    let unlink = MenuOperation::new("op-u", MenuOperationKind::Unlink { users: vec![user(1)] });
    store.record(&unlink).await.unwrap();
    store
        .settle("op-u", &[(user(1), Some(menu("c"))), (user(1), None), (user(3), Some(menu("d")))])
        .await
        .unwrap();
    let applied = store.applied().await.unwrap();
    assert_eq!(applied.len(), 1, "got {applied:?}");
    assert_eq!(applied.get(&user(3)), Some(&menu("d")));
}

/// Many rows at once (a batch's users) round-trip.
pub async fn large_settles_round_trip(store: &dyn RichMenuStore) {
    let users: Vec<u32> = (0..2_000).collect();
    let op = link("op-big", "big", &users);
    store.record(&op).await.unwrap();
    store.settle("op-big", &op.outcome()).await.unwrap();
    let applied = store.applied().await.unwrap();
    assert_eq!(applied.len(), 2_000);
    assert!(applied.values().all(|m| *m == menu("big")));
}

/// Runs every check, each on a new, empty store from `new_store`.
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Arc<dyn RichMenuStore>> + Send,
{
    menus_are_upserted_by_key(&*new_store().await).await;
    record_then_settle_exactly_once(&*new_store().await).await;
    conflicting_record_is_rejected(&*new_store().await).await;
    pending_is_oldest_first_and_updatable(&*new_store().await).await;
    applied_rows_upsert_and_remove(&*new_store().await).await;
    large_settles_round_trip(&*new_store().await).await;
}
