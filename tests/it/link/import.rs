//! Links read from the commerce backend during sync are stored with their source.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use enishi::commerce::sync::{Dataset, Syncer};
use enishi::commerce::{Customer, InMemoryBackend};
use enishi::link::{
    AuditAction, BackendLinkImport, ConflictPolicy, LinkSource, LinkStore, MemoryLinkStore,
};
use enishi::testkit::user_id;
use enishi::{CustomerId, LineUserId};

fn customer(n: u32, line: Option<LineUserId>) -> Customer {
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, n).unwrap();
    let mut c = Customer::new(CustomerId::new(format!("C{n}")).unwrap(), at);
    c.line_user_id = line;
    c
}

fn user(n: u32) -> LineUserId {
    LineUserId::new(user_id(u64::from(n))).unwrap()
}

#[tokio::test]
async fn link_import_stores_backend_links_keeps_proven_ones_and_is_idempotent() {
    let backend = InMemoryBackend::new();
    backend.upsert_customer(customer(1, Some(user(1))));
    backend.upsert_customer(customer(2, None));
    backend.upsert_customer(customer(3, Some(user(3))));
    // The backend claims U4 for C4, but the customer proved another account through LINE.
    backend.upsert_customer(customer(4, Some(user(4))));
    let store: Arc<dyn LinkStore> = Arc::new(MemoryLinkStore::new());
    let c4 = CustomerId::new("C4").unwrap();
    store
        .link(&user(40), &c4, LinkSource::AccountLink, ConflictPolicy::Reject, Utc::now())
        .await
        .unwrap();

    let dataset = Dataset::new();
    let sink = BackendLinkImport::new(store.clone(), &dataset);
    Syncer::new(&backend).run(&sink).await.unwrap();
    let counts = sink.counts();
    assert_eq!((counts.linked, counts.unchanged, counts.conflicts), (2, 0, 1), "{counts:?}");
    assert_eq!(dataset.customer_count(), 4, "every page still reaches the inner sink");

    let l1 = store.link_of_user(&user(1)).await.unwrap().unwrap();
    assert_eq!((l1.customer.as_str(), l1.source), ("C1", LinkSource::Backend));
    assert!(store.link_of_user(&user(4)).await.unwrap().is_none(), "conflict not applied");
    let kept = store.link_of_customer(&c4).await.unwrap().unwrap();
    assert_eq!((kept.line_user, kept.source), (user(40), LinkSource::AccountLink));
    let audit = store.audit_trail(10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == AuditAction::ConflictRejected));

    // A full re-read (a new dataset has no cursor) changes nothing.
    let again = Dataset::new();
    let sink = BackendLinkImport::new(store.clone(), &again);
    Syncer::new(&backend).run(&sink).await.unwrap();
    let c = sink.counts();
    assert_eq!((c.linked, c.unchanged, c.conflicts), (0, 2, 1), "{c:?}");
}
