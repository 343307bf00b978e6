//! The conformance suite every [`SyncSink`](crate::commerce::sync::SyncSink) that stores the shop runs: [`Dataset`],
//! `SqliteDataset` (feature `sqlite`), `PostgresDataset` (feature `postgres`), and a host's own.
//!
//! A sink is checked through [`StoredDataset`]: what it stored, read back as a [`Dataset`]. Each
//! check takes one new, empty sink and panics with a message saying what the sink got wrong;
//! [`run_all`] runs them all, each on a sink from a factory:
//!
//! ```
//! use enishi::commerce::sync::Dataset;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! enishi::commerce::conformance::sink::run_all(|| async { Dataset::new() }).await;
//! # }
//! ```
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::sample_customers;
use crate::CustomerId;
use crate::commerce::sync::{Dataset, StoredDataset, SyncBatch, SyncResource, SyncSink as _};
use crate::commerce::{
    Cursor, LineItem, Money, Order, OrderState, Product, Record, Subscription, SubscriptionState,
    Variant,
};

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or(DateTime::UNIX_EPOCH) // 2026-01-01Z
}

fn cid(n: u32) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// The cursor after the last of `records`.
fn after<T: Record>(records: &[T]) -> Cursor {
    records.last().map_or_else(|| Cursor::new(base(), ""), Record::cursor)
}

async fn apply<S: StoredDataset + ?Sized>(sink: &S, batch: SyncBatch, cursor: Cursor) {
    let what = format!("{:?}", batch.resource());
    sink.apply(batch, cursor).await.unwrap_or_else(|e| panic!("applying {what} failed: {e}"));
}

async fn read_back<S: StoredDataset + ?Sized>(sink: &S) -> Dataset {
    sink.load().await.unwrap_or_else(|e| panic!("reading the sink back failed: {e}"))
}

async fn cursor<S: StoredDataset + ?Sized>(sink: &S, resource: SyncResource) -> Option<Cursor> {
    sink.cursor(resource).await.unwrap_or_else(|e| panic!("reading a cursor failed: {e}"))
}

/// The dataset as JSON values, comparable whatever the order of its maps.
fn snapshot(dataset: &Dataset) -> Value {
    let json = dataset.to_json().unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"))
}

fn orders(n: u32) -> Vec<Order> {
    (1..=n)
        .map(|i| {
            let mut o = Order::new(
                i.to_string(),
                OrderState::Completed,
                base() + TimeDelta::minutes(i.into()),
            );
            o.customer_id = Some(cid(i % 7 + 1));
            o.total = Some(Money::jpy(i64::from(i) * 500));
            o.ordered_at = Some(o.updated_at);
            let mut item = LineItem::new(Some(format!("SKU-{}", i % 3)), i % 2 + 1);
            item.product = Some(format!("P{}", i % 3));
            item.unit_price = Some(Money::jpy(500));
            o.items.push(item);
            o
        })
        .collect()
}

fn subscriptions() -> Vec<Subscription> {
    (1..=4u32)
        .map(|i| {
            let state =
                if i == 4 { SubscriptionState::Canceled } else { SubscriptionState::Active };
            let mut s =
                Subscription::new(format!("S{i}"), state, base() + TimeDelta::hours(i.into()));
            s.customer = (i != 3).then(|| i.to_string());
            s.customer_number = Some(format!("N{i}"));
            s.deliveries = Some(i);
            s
        })
        .collect()
}

fn products() -> Vec<Product> {
    (0..3u32)
        .map(|i| {
            let mut p = Product::new(format!("P{i}"), base() + TimeDelta::days(i.into()));
            p.name = Some(format!("商品 {i}"));
            p.variants = vec![Variant::new(format!("V{i}"), Some(format!("SKU-{i}")))];
            p
        })
        .collect()
}

/// A new sink has no cursor and no record.
pub async fn new_sink_is_empty<S: StoredDataset + ?Sized>(sink: &S) {
    for resource in SyncResource::ALL {
        assert_eq!(cursor(sink, resource).await, None, "a new sink has a {resource:?} cursor");
    }
    assert_eq!(
        snapshot(&read_back(sink).await),
        snapshot(&Dataset::new()),
        "a new sink holds data"
    );
}

/// `apply` stores a page's records and its cursor, for that resource only.
pub async fn apply_stores_records_with_their_cursor<S: StoredDataset + ?Sized>(sink: &S) {
    let customers = sample_customers(30);
    let after_customers = after(&customers);
    apply(sink, SyncBatch::Customers(customers.clone()), after_customers.clone()).await;
    assert_eq!(cursor(sink, SyncResource::Customers).await, Some(after_customers.clone()));
    assert_eq!(cursor(sink, SyncResource::Orders).await, None, "another resource's cursor moved");
    let stored = read_back(sink).await;
    assert_eq!(stored.customer_count(), 30);
    assert_eq!(stored.order_count(), 0);
    assert_eq!(stored.customer(&cid(3)).as_ref(), customers.get(2), "a record changed in the sink");
    assert_eq!(stored.stored_cursor(SyncResource::Customers), Some(after_customers));
}

/// Records are upserted by ID: a changed record replaces the stored one, and of two records
/// with one ID in a page the last wins. The cursor moves to the page's.
pub async fn apply_upserts_by_id<S: StoredDataset + ?Sized>(sink: &S) {
    let first = sample_customers(10);
    apply(sink, SyncBatch::Customers(first.clone()), after(&first)).await;
    let mut changed = first[2].clone();
    changed.email = Some("changed@example.com".into());
    changed.updated_at = base() + TimeDelta::days(1);
    let mut twice = sample_customers(11).pop().unwrap_or_else(|| unreachable!());
    let mut last = twice.clone();
    twice.email = Some("first@example.com".into());
    last.email = Some("last@example.com".into());
    let page = vec![twice, changed.clone(), last.clone()];
    let cursor_after = Cursor::new(base() + TimeDelta::days(1), "11");
    apply(sink, SyncBatch::Customers(page), cursor_after.clone()).await;
    let stored = read_back(sink).await;
    assert_eq!(stored.customer_count(), 11, "an upsert added a record or lost one");
    assert_eq!(stored.customer(&cid(3)), Some(changed), "a changed record was not replaced");
    assert_eq!(stored.customer(&cid(11)), Some(last), "the last of two records with one ID");
    assert_eq!(stored.customer(&cid(1)).as_ref(), first.first(), "an untouched record changed");
    assert_eq!(cursor(sink, SyncResource::Customers).await, Some(cursor_after));
}

/// Every resource (customers, orders with items, subscriptions, products) reads back exactly
/// as an in-memory [`Dataset`] fed the same pages holds it, with every field and cursor.
pub async fn every_resource_reads_back_as_applied<S: StoredDataset + ?Sized>(sink: &S) {
    let reference = Dataset::new();
    let customers = sample_customers(12);
    let (orders, subscriptions, products) = (orders(40), subscriptions(), products());
    let pages = || {
        [
            (SyncBatch::Customers(customers[..5].to_vec()), after(&customers[..5])),
            (SyncBatch::Customers(customers[5..].to_vec()), after(&customers)),
            (SyncBatch::Orders(orders[..25].to_vec()), after(&orders[..25])),
            (SyncBatch::Orders(orders[25..].to_vec()), after(&orders)),
            (SyncBatch::Subscriptions(subscriptions.clone()), after(&subscriptions)),
            (SyncBatch::Products(products.clone()), after(&products)),
        ]
    };
    for (batch, cursor) in pages() {
        apply(sink, batch, cursor).await;
    }
    for (batch, cursor) in pages() {
        reference.apply(batch, cursor).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let stored = read_back(sink).await;
    assert_eq!(snapshot(&stored), snapshot(&reference), "the sink holds other data");
    assert_eq!(stored.segment_facts(), reference.segment_facts());
    for resource in SyncResource::ALL {
        assert_eq!(cursor(sink, resource).await, reference.stored_cursor(resource), "{resource:?}");
    }
}

/// An empty page still stores its cursor (a walk that found nothing new moves on).
pub async fn empty_page_moves_the_cursor<S: StoredDataset + ?Sized>(sink: &S) {
    let cursor_after = Cursor::new(base(), "42");
    apply(sink, SyncBatch::Orders(Vec::new()), cursor_after.clone()).await;
    assert_eq!(cursor(sink, SyncResource::Orders).await, Some(cursor_after));
    assert_eq!(read_back(sink).await.order_count(), 0);
}

/// Runs every check, each on a new, empty sink from `new_sink` (a new file, schema or
/// database each time).
pub async fn run_all<S, F, Fut>(mut new_sink: F)
where
    S: StoredDataset,
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = S> + Send,
{
    new_sink_is_empty(&new_sink().await).await;
    apply_stores_records_with_their_cursor(&new_sink().await).await;
    apply_upserts_by_id(&new_sink().await).await;
    every_resource_reads_back_as_applied(&new_sink().await).await;
    empty_page_moves_the_cursor(&new_sink().await).await;
}
