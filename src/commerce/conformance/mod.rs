//! The conformance suite every [`CommerceBackend`] adapter runs (feature `testkit`).
//!
//! An adapter's tests implement [`Harness`] (how to put data behind the backend and change it
//! behind the backend's back) and call each `pub async fn` here, or [`run_all`]. Every
//! function panics with a message saying what the backend got wrong.
//!
//! [`sink`] is the suite of the other side of a sync: every
//! [`SyncSink`](crate::commerce::sync::SyncSink) that stores the shop.
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

pub mod sink;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::commerce::{
    Capabilities, CommerceBackend, CommerceBackendExt, CommerceError, Cursor, Customer,
    InMemoryBackend, LineItem, ListQuery, Money, Order, OrderState, Record, collect_pages,
    next_item,
};
use crate::{CustomerId, LineUserId};

/// How the suite seeds and changes data behind a backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    fn backend(&self) -> Arc<dyn CommerceBackend>;
    /// Empties the data behind the backend.
    async fn reset(&self);
    /// Puts customers behind the backend (as the shop would hold them).
    async fn insert_customers(&self, customers: Vec<Customer>);
    /// Puts orders behind the backend.
    async fn insert_orders(&self, orders: Vec<Order>);
    /// Changes a customer behind the backend's back, now (its `updated_at` becomes now).
    async fn touch_customer(&self, id: &CustomerId);
    /// The largest page the backend serves (ecforce: 100).
    fn max_page_size(&self) -> u32 {
        100
    }
    /// The backend with credentials the shop refuses, when the harness can make one.
    fn unauthenticated_backend(&self) -> Option<Arc<dyn CommerceBackend>> {
        None
    }
}

/// Base time for seeded records: whole seconds (ecforce has no sub-second precision).
fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or(DateTime::UNIX_EPOCH) // 2026-01-01Z
}

fn cid(n: u64) -> CustomerId {
    // Decimal digits are never empty, so this cannot fail.
    CustomerId::new(n.to_string()).unwrap_or_else(|_| unreachable!())
}

/// `n` customers with IDs `1..=n`, updated one per second (every 7th shares its second with the
/// previous one, to exercise ties).
#[must_use]
pub fn sample_customers(n: u64) -> Vec<Customer> {
    (1..=n)
        .map(|i| {
            let secs = i64::try_from(i - i / 7).unwrap_or(i64::MAX);
            let mut c = Customer::new(cid(i), base() + TimeDelta::seconds(secs));
            c.email = Some(format!("c{i}@example.com"));
            c.order_count = Some(u32::try_from(i % 5).unwrap_or(0));
            c.total_spent = Some(Money::jpy(i64::try_from(i).unwrap_or(0) * 1000));
            c
        })
        .collect()
}

fn ids<T: Record>(records: &[T]) -> Vec<String> {
    records.iter().map(|r| r.record_id().to_owned()).collect()
}

fn assert_unique(ids: &[String], what: &str) {
    let mut seen = HashSet::new();
    for id in ids {
        assert!(seen.insert(id), "{what}: record {id} was returned twice");
    }
}

/// Every record is read exactly once across pages, pages respect the page size.
pub async fn paging_completeness<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    let n = u64::from(h.max_page_size()) * 2 + 37;
    h.insert_customers(sample_customers(n)).await;
    let backend = h.backend();
    let size = h.max_page_size().min(50);
    let mut stream = backend.customers(ListQuery::all().page_size(size));
    let mut all = Vec::new();
    while let Some(page) = next_item(&mut stream).await {
        let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
        assert!(
            page.records.len() <= size as usize,
            "page larger than asked: {}",
            page.records.len()
        );
        all.extend(page.records);
    }
    let got = ids(&all);
    assert_unique(&got, "paging");
    assert_eq!(got.len() as u64, n, "paging lost records");
}

/// Records come in change-feed order `(updated_at, id)`, and each page's cursor is its last
/// record's position.
pub async fn ordering_and_page_cursors<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(120)).await;
    let backend = h.backend();
    let mut stream = backend.customers(ListQuery::all().page_size(25));
    let mut last: Option<Cursor> = None;
    while let Some(page) = next_item(&mut stream).await {
        let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
        for r in &page.records {
            let c = r.cursor();
            assert!(last.as_ref().is_none_or(|l| &c > l), "out of order at {}", c.id);
            last = Some(c);
        }
        assert_eq!(page.cursor, last, "page cursor is not the last record's position");
    }
}

/// Many records updated in the same second (more than a page) are all read.
pub async fn same_second_ties<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    let n = u64::from(h.max_page_size()) + 30;
    let customers: Vec<_> = (1..=n).map(|i| Customer::new(cid(i), base())).collect();
    h.insert_customers(customers).await;
    let backend = h.backend();
    let (all, _) = collect_pages(backend.customers(ListQuery::all().page_size(20)))
        .await
        .unwrap_or_else(|e| panic!("read failed: {e}"));
    let got = ids(&all);
    assert_unique(&got, "ties");
    assert_eq!(got.len() as u64, n, "records sharing an updated_at were lost");
}

/// A read bounded by its start time returns no record twice even when records change during
/// the read, and a follow-up read since its last cursor returns every changed record.
pub async fn paging_under_concurrent_changes<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    let n = 300;
    h.insert_customers(sample_customers(n)).await;
    let backend = h.backend();
    let start = Utc::now();
    let mut stream = backend.customers(ListQuery::all().until(start).page_size(40));
    let mut first = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    while let Some(page) = next_item(&mut stream).await {
        let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
        pages += 1;
        if pages == 2 {
            // Change records already read, the next one and one far ahead.
            for i in [1, 45, 81, 82, 250, 299] {
                h.touch_customer(&cid(i)).await;
            }
        }
        first.extend(page.records);
        if page.cursor.is_some() {
            cursor = page.cursor;
        }
    }
    drop(stream);
    let first_ids = ids(&first);
    assert_unique(&first_ids, "concurrent read");
    let cursor = cursor.unwrap_or_else(|| panic!("no cursor after a non-empty read"));
    let (second, _) = collect_pages(backend.customers(ListQuery::since(cursor)))
        .await
        .unwrap_or_else(|e| panic!("follow-up read failed: {e}"));
    let second_ids = ids(&second);
    for touched in ["1", "45", "81", "82", "250", "299"] {
        assert!(
            second_ids.iter().any(|id| id == touched),
            "changed record {touched} missed by the follow-up"
        );
    }
    let union: HashSet<_> = first_ids.iter().chain(&second_ids).collect();
    assert_eq!(union.len() as u64, n, "a record was lost across the two reads");
}

/// A read since a cursor returns exactly the records changed after it.
pub async fn incremental_cursor<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(80)).await;
    let backend = h.backend();
    let (all, _) = collect_pages(backend.customers(ListQuery::all()))
        .await
        .unwrap_or_else(|e| panic!("read failed: {e}"));
    let cursor = all.last().map(Record::cursor).unwrap_or_else(|| panic!("empty read"));
    let (none, _) = collect_pages(backend.customers(ListQuery::since(cursor.clone())))
        .await
        .unwrap_or_else(|e| panic!("read failed: {e}"));
    assert!(none.is_empty(), "nothing changed, yet {} records came back", none.len());
    h.touch_customer(&cid(3)).await;
    h.touch_customer(&cid(70)).await;
    let mut new = Customer::new(cid(81), Utc::now());
    new.email = Some("new@example.com".into());
    h.insert_customers(vec![new]).await;
    let (changed, _) = collect_pages(backend.customers(ListQuery::since(cursor)))
        .await
        .unwrap_or_else(|e| panic!("read failed: {e}"));
    let mut got = ids(&changed);
    got.sort();
    assert_eq!(got, ["3", "70", "81"], "incremental read returned the wrong records");
}

/// Stopping after some pages and resuming from the last page cursor loses and repeats nothing.
pub async fn resume_from_page_cursor<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(95)).await;
    let backend = h.backend();
    let mut stream = backend.customers(ListQuery::all().page_size(10));
    let mut read = Vec::new();
    let mut cursor = None;
    for _ in 0..3 {
        let page = next_item(&mut stream).await.unwrap_or_else(|| panic!("stream ended early"));
        let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
        read.extend(ids(&page.records));
        cursor = page.cursor;
    }
    drop(stream); // a crash
    let cursor = cursor.unwrap_or_else(|| panic!("no page cursor"));
    let (rest, _) = collect_pages(backend.customers(ListQuery::since(cursor).page_size(10)))
        .await
        .unwrap_or_else(|e| panic!("resume failed: {e}"));
    read.extend(ids(&rest));
    assert_unique(&read, "resume");
    assert_eq!(read.len(), 95, "resume lost records");
}

/// An empty result is an empty stream, not an error.
pub async fn empty_read<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    let backend = h.backend();
    let (all, rejected) = collect_pages(backend.customers(ListQuery::all()))
        .await
        .unwrap_or_else(|e| panic!("empty read failed: {e}"));
    assert!(all.is_empty() && rejected.is_empty());
    let (orders, _) =
        collect_pages(backend.orders(ListQuery::all())).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(orders.is_empty());
}

/// Getting one customer returns its fields; an unknown ID is `NotFound`.
pub async fn get_customer_and_not_found<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(5)).await;
    let backend = h.backend();
    let c = backend.customer(&cid(4)).await.unwrap_or_else(|e| panic!("get failed: {e}"));
    assert_eq!(c.id, cid(4));
    assert_eq!(c.email.as_deref(), Some("c4@example.com"));
    assert_eq!(c.total_spent, Some(Money::jpy(4000)));
    match backend.customer(&cid(999_999)).await {
        Err(CommerceError::NotFound { .. }) => {}
        other => panic!("unknown customer should be NotFound, got {other:?}"),
    }
}

/// Orders come with their line items and customer.
pub async fn orders_with_items<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(3)).await;
    let orders: Vec<Order> = (1..=150u32)
        .map(|i| {
            let mut o = Order::new(
                i.to_string(),
                OrderState::Completed,
                base() + TimeDelta::seconds(i.into()),
            );
            o.customer_id = Some(cid(u64::from(i % 3 + 1)));
            o.total = Some(Money::jpy(i64::from(i) * 100));
            o.completed_at = Some(o.updated_at);
            o.items = (0..(i % 3 + 1))
                .map(|k| {
                    let mut item = LineItem::new(Some(format!("SKU-{k}")), k + 1);
                    item.unit_price = Some(Money::jpy(100));
                    item
                })
                .collect();
            o
        })
        .collect();
    h.insert_orders(orders.clone()).await;
    let backend = h.backend();
    let (got, rejected) = collect_pages(backend.orders(ListQuery::all().page_size(40)))
        .await
        .unwrap_or_else(|e| panic!("orders failed: {e}"));
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(got.len(), orders.len());
    for (want, got) in orders.iter().zip(&got) {
        assert_eq!(want.id, got.id);
        assert_eq!(want.customer_id, got.customer_id, "order {}", got.id);
        assert_eq!(want.total, got.total, "order {}", got.id);
        assert_eq!(want.state, got.state, "order {}", got.id);
        let skus =
            |o: &Order| o.items.iter().map(|i| (i.sku.clone(), i.quantity)).collect::<Vec<_>>();
        assert_eq!(skus(want), skus(got), "items of order {}", got.id);
    }
}

/// Setting and clearing the LINE link is visible on the record and in the next incremental read.
pub async fn line_link_write_back<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(10)).await;
    let backend = h.backend();
    let line = LineUserId::new(format!("U{}", "ab".repeat(16))).unwrap_or_else(|e| panic!("{e}"));
    let result = backend.link_line(&cid(2), &line).await;
    if !backend.capabilities().line_link {
        assert!(matches!(result, Err(CommerceError::NotImplemented { .. })), "{result:?}");
        return;
    }
    result.unwrap_or_else(|e| panic!("link failed: {e}"));
    let c = backend.customer(&cid(2)).await.unwrap_or_else(|e| panic!("{e}"));
    // The link time belongs to enishi's link store: a backend may not keep one (ecforce's
    // `line_id_linked_at` is not writable through its API).
    assert_eq!(c.line_user_id.as_ref(), Some(&line), "link not stored");
    backend.unlink_line(&cid(2)).await.unwrap_or_else(|e| panic!("unlink failed: {e}"));
    let c = backend.customer(&cid(2)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.line_user_id, None, "link not cleared");
    match backend.link_line(&cid(999_999), &line).await {
        Err(CommerceError::NotFound { .. }) => {}
        other => panic!("linking an unknown customer should be NotFound, got {other:?}"),
    }
}

/// Points are granted where supported, otherwise `NotImplemented` (never a panic).
pub async fn grant_points_or_not_implemented<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    h.insert_customers(sample_customers(3)).await;
    let backend = h.backend();
    let before = backend.customer(&cid(1)).await.unwrap_or_else(|e| panic!("{e}")).points;
    let result = backend.grant_points(&cid(1), 100, "LINE ID link").await;
    if backend.capabilities().points {
        result.unwrap_or_else(|e| panic!("grant failed: {e}"));
        let after = backend.customer(&cid(1)).await.unwrap_or_else(|e| panic!("{e}")).points;
        assert_eq!(after, Some(before.unwrap_or(0) + 100), "points not added");
    } else {
        assert!(
            matches!(result, Err(CommerceError::NotImplemented { operation: "grant_points", .. })),
            "{result:?}"
        );
    }
}

/// Optional streams either work or fail at once with `NotImplemented`.
pub async fn optional_streams<H: Harness + ?Sized>(h: &H) {
    h.reset().await;
    let backend = h.backend();
    let caps = backend.capabilities();
    let subs = collect_pages(backend.subscriptions(ListQuery::all())).await;
    assert_eq!(
        caps.subscriptions,
        subs.is_ok(),
        "subscriptions capability and behaviour disagree: {:?}",
        subs.err()
    );
    let products = collect_pages(backend.products(ListQuery::all())).await;
    assert_eq!(caps.products, products.is_ok(), "{:?}", products.err());
}

/// Refused credentials are `Unauthenticated`, on reads and on single gets.
pub async fn unauthenticated<H: Harness + ?Sized>(h: &H) {
    let Some(backend) = h.unauthenticated_backend() else { return };
    h.reset().await;
    h.insert_customers(sample_customers(2)).await;
    let read = collect_pages(backend.customers(ListQuery::all())).await;
    assert!(matches!(read, Err(CommerceError::Unauthenticated { .. })), "{:?}", read.err());
    let get = backend.customer(&cid(1)).await;
    assert!(matches!(get, Err(CommerceError::Unauthenticated { .. })), "{get:?}");
}

/// Runs the whole suite.
pub async fn run_all<H: Harness + ?Sized>(h: &H) {
    paging_completeness(h).await;
    ordering_and_page_cursors(h).await;
    same_second_ties(h).await;
    paging_under_concurrent_changes(h).await;
    incremental_cursor(h).await;
    resume_from_page_cursor(h).await;
    empty_read(h).await;
    get_customer_and_not_found(h).await;
    orders_with_items(h).await;
    line_link_write_back(h).await;
    grant_points_or_not_implemented(h).await;
    optional_streams(h).await;
    unauthenticated(h).await;
}

/// A [`Harness`] over an [`InMemoryBackend`].
#[derive(Debug, Default)]
pub struct MemoryHarness {
    backend: std::sync::Mutex<InMemoryBackend>,
    capabilities: Option<Capabilities>,
}

impl MemoryHarness {
    /// A harness with every capability.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A harness whose backend claims only `capabilities`.
    #[must_use]
    pub fn with_capabilities(capabilities: Capabilities) -> Self {
        Self { capabilities: Some(capabilities), ..Self::default() }
    }

    fn current(&self) -> InMemoryBackend {
        self.backend.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn backend(&self) -> Arc<dyn CommerceBackend> {
        Arc::new(self.current())
    }
    async fn reset(&self) {
        let mut fresh = InMemoryBackend::new();
        if let Some(caps) = self.capabilities {
            fresh = fresh.with_capabilities(caps);
        }
        *self.backend.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
    }
    async fn insert_customers(&self, customers: Vec<Customer>) {
        let backend = self.current();
        customers.into_iter().for_each(|c| backend.upsert_customer(c));
    }
    async fn insert_orders(&self, orders: Vec<Order>) {
        let backend = self.current();
        orders.into_iter().for_each(|o| backend.upsert_order(o));
    }
    async fn touch_customer(&self, id: &CustomerId) {
        self.current().touch_customer(id);
    }
}
