//! commerce::sync against the fake ecforce server: first sync, crash and resume, incremental.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta};
use enishi::CustomerId;
use enishi::commerce::conformance::sample_customers;
use enishi::commerce::sync::{Dataset, SyncBatch, SyncResource, SyncSink, Syncer};
use enishi::commerce::{BoxError, CommerceError, Cursor, LineItem, Money, Order, OrderState};

use super::ecforce::EcforceHarness;

fn orders(n: u32, customers: u32) -> Vec<Order> {
    let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    (1..=n)
        .map(|i| {
            let mut o = Order::new(
                i.to_string(),
                OrderState::Completed,
                base + TimeDelta::seconds(i64::from(i / 3)),
            );
            o.customer_id = Some(CustomerId::new((i % customers + 1).to_string()).unwrap());
            o.total = Some(Money::jpy(1000));
            o.items = vec![LineItem::new(Some(format!("SKU-{}", i % 4)), 1)];
            o
        })
        .collect()
}

/// A sink that fails ("crashes") once it has applied `limit` batches.
struct Crashing<'a> {
    inner: &'a Dataset,
    limit: usize,
    applied: AtomicUsize,
}

#[async_trait]
impl SyncSink for Crashing<'_> {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        self.inner.cursor(resource).await
    }
    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        if self.applied.fetch_add(1, Ordering::SeqCst) >= self.limit {
            return Err("crash".into());
        }
        self.inner.apply(batch, cursor).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_first_sync_then_incremental() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(250));
    h.shop.insert_orders(orders(420, 250));
    let dataset = Dataset::new();
    let mut progress = Vec::new();
    let report = Syncer::new(&h.client)
        .on_progress(|p| progress.push((p.pages, p.records)))
        .run(&dataset)
        .await
        .unwrap();
    assert_eq!(report.records[&SyncResource::Customers], 250);
    assert_eq!(report.records[&SyncResource::Orders], 420);
    assert_eq!(dataset.customer_count(), 250);
    assert_eq!(dataset.order_count(), 420);
    assert!(report.rejected.is_empty());
    assert_eq!(progress.last().unwrap().1, 670);
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "pages count up");
    let c7 = CustomerId::new("7").unwrap();
    assert!(dataset.orders_of(&c7).iter().all(|o| o.items.len() == 1));

    // Only what changed comes back next time. A walk reads up to the whole second before it
    // started (ecforce times have no fraction), so let that second pass.
    h.shop.touch_customer(&c7);
    h.shop.touch_customer(&CustomerId::new("200").unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = Syncer::new(&h.client).run(&dataset).await.unwrap();
    assert_eq!(report.records.get(&SyncResource::Customers), Some(&2));
    assert_eq!(report.records.get(&SyncResource::Orders), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_resumes_after_a_crash_without_loss_or_double_counting() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(230));
    h.shop.insert_orders(orders(310, 230));
    let dataset = Dataset::new();
    let crashing = Crashing { inner: &dataset, limit: 4, applied: AtomicUsize::new(0) };
    let err = Syncer::new(&h.client).page_size(50).run(&crashing).await.unwrap_err();
    assert!(err.to_string().contains("Customers") || err.to_string().contains("Orders"), "{err}");
    let before = dataset.customer_count();
    assert!(
        (150..=200).contains(&before),
        "4 pages of up to 50 applied before the crash: {before}"
    );

    // Persisted and restored, as a host would across a restart.
    let restored = Dataset::from_json(&dataset.to_json().unwrap()).unwrap();
    let report = Syncer::new(&h.client).page_size(50).run(&restored).await.unwrap();
    assert_eq!(
        report.records[&SyncResource::Customers],
        230 - before as u64,
        "only the rest is read again"
    );
    assert_eq!(report.records[&SyncResource::Orders], 310);
    assert_eq!(restored.customer_count(), 230);
    assert_eq!(restored.order_count(), 310);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_reports_malformed_records_and_syncs_the_rest() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(120));
    h.shop.corrupt_customer(&CustomerId::new("60").unwrap());
    let dataset = Dataset::new();
    let report =
        Syncer::new(&h.client).resources(&[SyncResource::Customers]).run(&dataset).await.unwrap();
    assert_eq!(dataset.customer_count(), 119);
    match &report.rejected[..] {
        [CommerceError::Decode { field, .. }] => assert_eq!(field, "attributes.buy_total"),
        other => panic!("{other:?}"),
    }
    // The cursor moved past the broken record: it is not re-reported on the next run.
    let again =
        Syncer::new(&h.client).resources(&[SyncResource::Customers]).run(&dataset).await.unwrap();
    assert!(again.rejected.is_empty());
}

#[tokio::test]
async fn commerce_sync_skips_unsupported_resources() {
    let shop = enishi::commerce::InMemoryBackend::new()
        .with_capabilities(enishi::commerce::Capabilities::none());
    let report = Syncer::new(&shop).run(&Dataset::new()).await.unwrap();
    assert_eq!(report.skipped, [SyncResource::Subscriptions, SyncResource::Products]);
}

/// Sync feeds the segment engine: a segment over `Dataset::segment_facts` selects exactly the
/// customers the shop data says it should.
#[tokio::test]
async fn commerce_sync_feeds_the_segment_engine() {
    use enishi::commerce::{Customer, InMemoryBackend};
    use enishi::segment::{Context, SegmentDefinition, matches};

    let now = chrono::Utc::now();
    let backend = InMemoryBackend::new();
    for (n, (orders, linked)) in
        [(0u32, true), (1, true), (2, true), (2, false)].into_iter().enumerate()
    {
        let id = CustomerId::new(format!("c{n}")).unwrap();
        let mut customer = Customer::new(id.clone(), now - TimeDelta::days(30));
        if linked {
            customer.line_user_id = Some(format!("U{:032x}", n).parse().unwrap());
        }
        backend.upsert_customer(customer);
        for k in 0..orders {
            let mut order =
                Order::new(format!("o{n}-{k}"), OrderState::Completed, now - TimeDelta::days(5));
            order.customer_id = Some(id.clone());
            order.ordered_at = Some(now - TimeDelta::days(10 + i64::from(k)));
            order.total = Some(Money::jpy(3_000));
            let mut item = LineItem::new(Some("SKU-A".into()), 1);
            item.product = Some("A".into());
            item.unit_price = Some(Money::jpy(3_000));
            order.items.push(item);
            backend.upsert_order(order);
        }
    }
    // A canceled order never counts.
    let mut canceled = Order::new("o-x", OrderState::Canceled, now);
    canceled.customer_id = Some(CustomerId::new("c1").unwrap());
    canceled.ordered_at = Some(now - TimeDelta::days(1));
    backend.upsert_order(canceled);

    let dataset = Dataset::new();
    Syncer::new(&backend)
        .resources(&[SyncResource::Customers, SyncResource::Orders])
        .run(&dataset)
        .await
        .unwrap();
    let facts = dataset.segment_facts();
    assert_eq!(facts.len(), 4);
    assert_eq!(facts[1].orders.len(), 1, "the canceled order is left out");
    assert_eq!(facts[2].orders[0].items[0].product, "A");

    let def = SegmentDefinition::parse(
        r#"line linked and bought {product = "A"} and orders sum >= 6000"#,
    )
    .unwrap();
    let ctx = Context::new(now);
    let selected: Vec<&str> =
        facts.iter().filter(|f| matches(&def, f, &ctx).unwrap()).map(|f| f.id.as_str()).collect();
    assert_eq!(selected, vec!["c2"], "linked, bought A, and ¥6,000 in total");
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_into_sqlite_survives_reopen_and_resumes() {
    use enishi::commerce::sync::SqliteDataset;
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(120));
    h.shop.insert_orders(orders(200, 120));
    let path = std::env::temp_dir().join(format!("enishi-shop-{}.sqlite", uuid::Uuid::new_v4()));
    {
        let file = SqliteDataset::open(&path).unwrap();
        let report = Syncer::new(&h.client).page_size(50).run(&file).await.unwrap();
        assert_eq!(report.total_records(), 320);
    }
    // A new process opens the file: the data and the cursors are there.
    let file = SqliteDataset::open(&path).unwrap();
    assert_eq!(file.count(SyncResource::Customers).await.unwrap(), 120);
    assert_eq!(file.count(SyncResource::Orders).await.unwrap(), 200);
    let loaded = file.load().await.unwrap();
    let memory = Dataset::new();
    Syncer::new(&h.client).run(&memory).await.unwrap();
    assert_eq!(loaded.segment_facts(), memory.segment_facts());
    assert!(loaded.stored_cursor(SyncResource::Orders).is_some());
    // Nothing changed: the next sync from the file reads nothing.
    let report = Syncer::new(&h.client).run(&file).await.unwrap();
    assert_eq!(report.total_records(), 0, "{report:?}");
    drop(file);
    let _ = std::fs::remove_file(&path);
}

/// The PostgreSQL twin of the SQLite test above: a new process connects to the schema and
/// finds the data and the cursors; the load equals an in-memory sync.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_into_postgres_survives_reconnect_and_resumes() {
    use enishi::commerce::sync::PostgresDataset;
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(120));
    h.shop.insert_orders(orders(200, 120));
    let url = crate::pg::url();
    let schema = crate::stores::pg_schema("shop");
    {
        let db = PostgresDataset::connect(&url, &schema).await.unwrap();
        let report = Syncer::new(&h.client).page_size(50).run(&db).await.unwrap();
        assert_eq!(report.total_records(), 320);
    }
    let db = PostgresDataset::connect(&url, &schema).await.unwrap();
    assert_eq!(db.count(SyncResource::Customers).await.unwrap(), 120);
    assert_eq!(db.count(SyncResource::Orders).await.unwrap(), 200);
    let loaded = db.load().await.unwrap();
    let memory = Dataset::new();
    Syncer::new(&h.client).run(&memory).await.unwrap();
    assert_eq!(loaded.segment_facts(), memory.segment_facts());
    assert!(loaded.stored_cursor(SyncResource::Orders).is_some());
    let report = Syncer::new(&h.client).run(&db).await.unwrap();
    assert_eq!(report.total_records(), 0, "{report:?}");
    drop(db);
    crate::stores::Cleanup::Schema(schema).run().await;
}

/// A sink that fails after some pages leaves PostgreSQL with whole pages and their cursors
/// only: the next run reads exactly the rest.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_sync_into_postgres_resumes_after_a_crash() {
    use enishi::commerce::sync::PostgresDataset;

    /// Fails ("crashes") once it has applied `limit` batches.
    struct Crash<'a> {
        inner: &'a PostgresDataset,
        limit: usize,
        applied: AtomicUsize,
    }
    #[async_trait]
    impl SyncSink for Crash<'_> {
        async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
            self.inner.cursor(resource).await
        }
        async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
            if self.applied.fetch_add(1, Ordering::SeqCst) >= self.limit {
                return Err("crash".into());
            }
            self.inner.apply(batch, cursor).await
        }
    }

    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(230));
    let schema = crate::stores::pg_schema("shop");
    let db = PostgresDataset::connect(&crate::pg::url(), &schema).await.unwrap();
    let crashing = Crash { inner: &db, limit: 3, applied: AtomicUsize::new(0) };
    Syncer::new(&h.client).page_size(50).run(&crashing).await.unwrap_err();
    let before = db.count(SyncResource::Customers).await.unwrap();
    assert!((100..=150).contains(&before), "3 pages of up to 50 applied: {before}");
    let report = Syncer::new(&h.client).page_size(50).run(&db).await.unwrap();
    assert_eq!(report.records[&SyncResource::Customers], 230 - before, "only the rest is read");
    assert_eq!(db.count(SyncResource::Customers).await.unwrap(), 230);
    drop(db);
    crate::stores::Cleanup::Schema(schema).run().await;
}
