//! ecforce webhooks as hints: secret in the URL, capped body, re-read by ID through the fake
//! ecforce, stored in the sync dataset.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use enishi::CustomerId;
use enishi::commerce::conformance::sample_customers;
use enishi::commerce::sync::{Dataset, SyncBatch, SyncResource, Syncer};
use enishi::commerce::{
    CommerceResult, EcforceClient, EcforceWebhook, EcforceWebhookBuilder, EcforceWebhookSecret,
    HintOutcome, HintReport, Order, OrderState, RecordFetcher, Subscription, SubscriptionState,
};
use enishi::testkit::FakeEcforce;
use tokio::sync::{Semaphore, mpsc};

use super::ecforce::EcforceHarness;

const SECRET: &str = "s3cret-0123456789abcdef";

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn cid(n: u32) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap()
}

fn order(id: &str, customer: u32, state: OrderState, at: DateTime<Utc>) -> Order {
    let mut o = Order::new(id, state, at);
    o.customer_id = Some(cid(customer));
    o
}

struct Hooked {
    shop: FakeEcforce,
    client: EcforceClient,
    dataset: Arc<Dataset>,
    hooks: EcforceWebhook,
    /// `http://127.0.0.1:<port>/hooks/ecforce`
    url: String,
    reports: Arc<Mutex<Vec<String>>>,
}

fn describe(r: &HintReport) -> String {
    let outcome = match &r.outcome {
        HintOutcome::Applied => "applied",
        HintOutcome::Deferred => "deferred",
        HintOutcome::NoResource => "no_resource",
        HintOutcome::NoId => "no_id",
        HintOutcome::Coalesced => "coalesced",
        HintOutcome::QueueFull => "queue_full",
        HintOutcome::NotFound => "not_found",
        HintOutcome::FetchFailed(_) => "fetch_failed",
        HintOutcome::SinkFailed(_) => "sink_failed",
        _ => "other",
    };
    format!("{} {} {outcome}", r.event, r.id.as_deref().unwrap_or("-"))
}

/// A shop with 3 customers and 2 orders, synced once into a dataset, and a webhook receiver
/// (configured by `configure`) re-reading through `fetcher` (made from the shop's client).
async fn start(
    configure: impl FnOnce(EcforceWebhookBuilder) -> EcforceWebhookBuilder,
    fetcher: impl FnOnce(EcforceClient) -> Arc<dyn RecordFetcher>,
) -> Hooked {
    let EcforceHarness { shop, client } = EcforceHarness::start().await;
    shop.insert_customers(sample_customers(3));
    shop.insert_orders([
        order("7", 1, OrderState::Pending, base()),
        order("8", 2, OrderState::Pending, base() + TimeDelta::seconds(1)),
    ]);
    shop.insert_subscriptions([Subscription::new("30", SubscriptionState::Active, base())]);
    let dataset = Arc::new(Dataset::new());
    Syncer::new(&client).run(&*dataset).await.unwrap();
    assert_eq!(dataset.order_count(), 2);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let builder = EcforceWebhook::builder(EcforceWebhookSecret::new(SECRET).unwrap())
        .on_outcome(move |r| seen.lock().unwrap().push(describe(r)));
    let fetcher = fetcher(client.clone());
    let hooks = configure(builder).build(fetcher, dataset.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/ecforce", listener.local_addr().unwrap());
    let app = hooks.router("/hooks/ecforce");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hooked { shop, client, dataset, hooks, url, reports }
}

fn direct(client: EcforceClient) -> Arc<dyn RecordFetcher> {
    Arc::new(client)
}

async fn post(url: &str, event: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("x-ecf-event", event)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn state_of(dataset: &Dataset, customer: u32, order: &str) -> OrderState {
    dataset.orders_of(&cid(customer)).into_iter().find(|o| o.id == order).unwrap().state
}

#[tokio::test]
async fn ecforce_webhook_order_hint_updates_the_dataset() {
    let h = start(|b| b, direct).await;
    let cursor = h.dataset.stored_cursor(SyncResource::Orders);
    // The fake renders a pending order in a shop-specific word; what matters is that it is untouched.
    let untouched = state_of(&h.dataset, 2, "8");
    h.shop.insert_orders([order("7", 1, OrderState::Completed, base() + TimeDelta::hours(1))]);
    // Liquid templates render IDs as strings; the customer ID is not the record's.
    let status =
        post(&format!("{}/{SECRET}", h.url), "order_shipped", r#"{"id":"7","customer_id":"1"}"#)
            .await;
    assert_eq!(status, 200);
    h.hooks.drain().await;
    assert_eq!(state_of(&h.dataset, 1, "7"), OrderState::Completed);
    assert_eq!(state_of(&h.dataset, 2, "8"), untouched);
    // The poll sync's position is untouched: the next poll still reads from where it was.
    assert_eq!(h.dataset.stored_cursor(SyncResource::Orders), cursor);
    let stats = h.hooks.stats();
    assert_eq!((stats.received, stats.applied, stats.unknown_topic), (1, 1, 0));
    assert_eq!(*h.reports.lock().unwrap(), ["order_shipped 7 applied"]);
}

#[tokio::test]
async fn ecforce_webhook_takes_the_secret_from_the_query_and_form_bodies() {
    let h = start(|b| b, direct).await;
    let mut c = sample_customers(3).remove(1);
    c.email = Some("new@example.com".into());
    c.updated_at = base() + TimeDelta::hours(1);
    h.shop.insert_customers([c]);
    let status = reqwest::Client::new()
        .post(format!("{}?secret={SECRET}", h.url))
        .header("x-ecf-event", "customer_member")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("customer%5Bid%5D=2&name=x")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    h.hooks.drain().await;
    assert_eq!(h.dataset.customer(&cid(2)).unwrap().email.as_deref(), Some("new@example.com"));
    assert_eq!(h.hooks.stats().applied, 1);
}

#[tokio::test]
async fn ecforce_webhook_wrong_secret_is_404_and_fetches_nothing() {
    let h = start(|b| b, direct).await;
    let before = h.shop.requests();
    let body = r#"{"id":"7"}"#;
    assert_eq!(
        post(&format!("{}/wrong-secret-0123456789", h.url), "order_shipped", body).await,
        404
    );
    assert_eq!(post(&format!("{}/{SECRET}x", h.url), "order_shipped", body).await, 404);
    assert_eq!(post(&format!("{}?secret=nope", h.url), "order_shipped", body).await, 404);
    assert_eq!(post(&h.url, "order_shipped", body).await, 404);
    h.hooks.drain().await;
    assert_eq!(h.shop.requests(), before);
    let stats = h.hooks.stats();
    assert_eq!((stats.rejected_secret, stats.received, stats.applied), (4, 0, 0));
    assert!(h.reports.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ecforce_webhook_oversized_body_is_413() {
    let h = start(|b| b.body_limit(256), direct).await;
    let before = h.shop.requests();
    let big = format!(r#"{{"id":"7","memo":"{}"}}"#, "x".repeat(1024));
    assert_eq!(post(&format!("{}/{SECRET}", h.url), "order_shipped", &big).await, 413);
    // The same through the framework-independent entry point.
    let status =
        h.hooks.handle_request(Some(SECRET), &http::HeaderMap::new(), big.as_bytes()).await;
    assert_eq!(status.as_u16(), 413);
    h.hooks.drain().await;
    assert_eq!(h.shop.requests(), before);
    let stats = h.hooks.stats();
    assert_eq!((stats.too_large, stats.received), (2, 0));
    // A body within the limit still goes through.
    assert_eq!(post(&format!("{}/{SECRET}", h.url), "order_shipped", r#"{"id":"7"}"#).await, 200);
    h.hooks.drain().await;
    assert_eq!(h.hooks.stats().applied, 1);
}

#[tokio::test]
async fn ecforce_webhook_unknown_topics_are_counted_and_kept() {
    let h = start(|b| b, direct).await;
    let url = format!("{}/{SECRET}", h.url);
    let before = h.shop.requests();
    assert_eq!(post(&url, "coupon_created", r#"{"id":"1"}"#).await, 200);
    assert_eq!(post(&url, "coupon_created", r#"{"id":"2"}"#).await, 200);
    assert_eq!(post(&url, "", r#"{"id":"3"}"#).await, 200);
    h.hooks.drain().await;
    assert_eq!(h.shop.requests(), before, "an event about no known resource fetches nothing");
    // An unpublished subscription event: counted as unknown, re-read all the same.
    assert_eq!(post(&url, "subs_order_suspended", r#"{"id":"30"}"#).await, 200);
    h.hooks.drain().await;
    let stats = h.hooks.stats();
    assert_eq!(stats.unknown_topic, 4);
    assert_eq!(stats.unknown_topics.get("coupon_created"), Some(&2));
    assert_eq!(stats.unknown_topics.get("subs_order_suspended"), Some(&1));
    assert_eq!((stats.no_resource, stats.applied, stats.received), (3, 1, 4));
    assert_eq!(h.shop.requests(), before + 1);
    assert!(h.reports.lock().unwrap().contains(&"subs_order_suspended 30 applied".to_owned()));
}

#[tokio::test]
async fn ecforce_webhook_failed_fetch_is_counted_and_the_next_poll_catches_it() {
    // A receiver whose API token is wrong: every re-read fails.
    let h = start(|b| b, direct).await;
    let broken = EcforceClient::builder(h.shop.base_url(), "wrong-token")
        .min_interval(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let hooks = EcforceWebhook::builder(EcforceWebhookSecret::new(SECRET).unwrap())
        .on_outcome(move |r| seen.lock().unwrap().push(describe(r)))
        .build(Arc::new(broken), h.dataset.clone())
        .unwrap();
    let before = state_of(&h.dataset, 2, "8");
    assert_ne!(before, OrderState::Canceled);
    h.shop.insert_orders([order("8", 2, OrderState::Canceled, base() + TimeDelta::hours(1))]);
    let headers = headers("order_canceled");
    assert_eq!(hooks.handle_request(Some(SECRET), &headers, br#"{"id":8}"#).await.as_u16(), 200);
    hooks.drain().await;
    assert_eq!(hooks.stats().fetch_failed, 1);
    assert_eq!(*reports.lock().unwrap(), ["order_canceled 8 fetch_failed"]);
    assert_eq!(state_of(&h.dataset, 2, "8"), before);
    // Nothing was lost: the next poll sync reads the change.
    Syncer::new(&h.client).run(&*h.dataset).await.unwrap();
    assert_eq!(state_of(&h.dataset, 2, "8"), OrderState::Canceled);
}

fn headers(event: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-ecf-event", event.parse().unwrap());
    headers
}

#[tokio::test]
async fn ecforce_webhook_missing_records_and_ids_are_counted() {
    let h = start(|b| b, direct).await;
    let url = format!("{}/{SECRET}", h.url);
    assert_eq!(post(&url, "order_completed", r#"{"id":"999"}"#).await, 200);
    assert_eq!(post(&url, "order_completed", r#"{"total":"1000"}"#).await, 200);
    assert_eq!(post(&url, "customer_destroyed", r#"{"id":"77"}"#).await, 200);
    h.hooks.drain().await;
    let stats = h.hooks.stats();
    assert_eq!((stats.not_found, stats.no_id, stats.applied, stats.fetch_failed), (2, 1, 0, 0));
}

#[tokio::test]
async fn ecforce_webhook_inline_processing_answers_after_storing() {
    let h = start(|b| b.process_inline(true), direct).await;
    h.shop.insert_orders([order("7", 1, OrderState::Canceled, base() + TimeDelta::hours(1))]);
    let url = format!("{}/{SECRET}", h.url);
    assert_eq!(post(&url, "order_canceled", r#"{"data":{"id":"7"}}"#).await, 200);
    // No drain: the answer came after the store.
    assert_eq!(state_of(&h.dataset, 1, "7"), OrderState::Canceled);
    // A failed re-read asks ecforce to send it again.
    let broken = EcforceClient::builder(h.shop.base_url(), "wrong-token")
        .min_interval(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let hooks = EcforceWebhook::builder(EcforceWebhookSecret::new(SECRET).unwrap())
        .process_inline(true)
        .build(Arc::new(broken), h.dataset.clone())
        .unwrap();
    let status =
        hooks.handle_request(Some(SECRET), &headers("order_shipped"), br#"{"id":"7"}"#).await;
    assert_eq!(status.as_u16(), 503);
    assert_eq!(hooks.stats().fetch_failed, 1);
}

#[tokio::test]
async fn ecforce_webhook_before_the_first_sync_defers_to_it() {
    let EcforceHarness { shop, client } = EcforceHarness::start().await;
    shop.insert_orders([order("7", 1, OrderState::Completed, base())]);
    let dataset = Arc::new(Dataset::new());
    let hooks = EcforceWebhook::builder(EcforceWebhookSecret::new(SECRET).unwrap())
        .build(Arc::new(client.clone()), dataset.clone())
        .unwrap();
    let status =
        hooks.handle_request(Some(SECRET), &headers("order_complete"), br#"{"id":"7"}"#).await;
    assert_eq!(status.as_u16(), 200);
    hooks.drain().await;
    assert_eq!(hooks.stats().deferred, 1);
    // No cursor was invented: the first sync still reads everything.
    assert_eq!(dataset.stored_cursor(SyncResource::Orders), None);
    Syncer::new(&client).run(&*dataset).await.unwrap();
    assert_eq!(dataset.order_count(), 1);
}

/// Blocks each re-read until released, telling the test which ID it started.
#[derive(Debug)]
struct Gate {
    inner: EcforceClient,
    started: mpsc::UnboundedSender<String>,
    release: Arc<Semaphore>,
}

#[async_trait]
impl RecordFetcher for Gate {
    async fn fetch(&self, resource: SyncResource, id: &str) -> CommerceResult<SyncBatch> {
        self.started.send(id.to_owned()).unwrap();
        self.release.acquire().await.unwrap().forget();
        self.inner.fetch(resource, id).await
    }
}

#[tokio::test]
async fn ecforce_webhook_queue_coalesces_and_refuses_when_full() {
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let gate = |inner| -> Arc<dyn RecordFetcher> {
        Arc::new(Gate { inner, started, release: Arc::clone(&release) })
    };
    let h = start(|b| b.queue_size(1), gate).await;
    let url = format!("{}/{SECRET}", h.url);
    assert_eq!(post(&url, "order_shipped", r#"{"id":"7"}"#).await, 200);
    // The worker holds hint 7; the queue's one place is free again.
    assert_eq!(started_rx.recv().await.as_deref(), Some("7"));
    assert_eq!(post(&url, "order_shipped", r#"{"id":"8"}"#).await, 200);
    assert_eq!(
        post(&url, "order_delivered", r#"{"id":"8"}"#).await,
        200,
        "merged into the queued 8"
    );
    assert_eq!(post(&url, "order_shipped", r#"{"id":"9"}"#).await, 503, "the queue is full");
    assert_eq!(h.hooks.in_flight(), 2);
    release.add_permits(2);
    h.hooks.drain().await;
    assert_eq!(started_rx.recv().await.as_deref(), Some("8"));
    let stats = h.hooks.stats();
    assert_eq!((stats.applied, stats.coalesced, stats.queue_full), (2, 1, 1));
    assert_eq!(stats.received, 4);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn ecforce_webhook_updates_an_sqlite_dataset() {
    use enishi::commerce::sync::SqliteDataset;

    let EcforceHarness { shop, client } = EcforceHarness::start().await;
    shop.insert_customers(sample_customers(2));
    shop.insert_orders([order("7", 1, OrderState::Pending, base())]);
    let path =
        std::env::temp_dir().join(format!("enishi-ecforce-hook-{}.sqlite", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteDataset::open(&path).unwrap());
    Syncer::new(&client).run(&*store).await.unwrap();
    let hooks = EcforceWebhook::builder(EcforceWebhookSecret::new(SECRET).unwrap())
        .build(Arc::new(client.clone()), store.clone())
        .unwrap();
    shop.insert_orders([order("7", 1, OrderState::Completed, base() + TimeDelta::hours(1))]);
    let status =
        hooks.handle_request(Some(SECRET), &headers("order_shipped"), br#"{"id":"7"}"#).await;
    assert_eq!(status.as_u16(), 200);
    hooks.drain().await;
    assert_eq!(hooks.stats().applied, 1);
    let loaded = store.load().await.unwrap();
    assert_eq!(state_of(&loaded, 1, "7"), OrderState::Completed);
    let _ = std::fs::remove_file(&path);
}
