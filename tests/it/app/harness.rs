//! A small shop on the fakes and an app over it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use enishi::app::{Enishi, EnishiBuilder};
use enishi::campaign::DeliveryPolicy;
use enishi::commerce::{Customer, EcforceClient, LineItem, Money, Order, OrderState};
use enishi::line::LineClient;
use enishi::line::webhook::{ChannelSecret, sign};
use enishi::storage::Storage;
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLine, FakeUser, user_id};
use enishi::{CustomerId, LineUserId};
use serde_json::{Value, json};

pub(crate) const SECRET: &str = "app-test-channel-secret";

/// The fakes and the shop in them.
pub(crate) struct Shop {
    pub(crate) line: FakeLine,
    pub(crate) ecforce: FakeEcforce,
    pub(crate) client: LineClient,
    pub(crate) api: Arc<EcforceClient>,
    pub(crate) now: DateTime<Utc>,
}

pub(crate) fn id(i: u64) -> CustomerId {
    CustomerId::new(i.to_string()).unwrap()
}

pub(crate) fn user(i: u64) -> LineUserId {
    LineUserId::new(user_id(i)).unwrap()
}

pub(crate) fn order(n: &str, customer: u64, at: DateTime<Utc>) -> Order {
    let mut o = Order::new(n, OrderState::Completed, at);
    o.customer_id = Some(id(customer));
    o.ordered_at = Some(at);
    o.total = Some(Money::jpy(3_000));
    o.items = vec![LineItem::new(Some("serum".to_owned()), 1)];
    o
}

/// Customers `1..=n`, odd ones linked in ecforce (`line_id`), all opted in but customer 3;
/// customers 1 to 4 have one order 10 days ago.
pub(crate) async fn shop(n: u64) -> Shop {
    let now = Utc::now();
    let ecforce = FakeEcforce::builder().start().await.unwrap();
    let mut customers = Vec::new();
    for i in 1..=n {
        let mut c = Customer::new(id(i), now - TimeDelta::days(100));
        c.email = Some(format!("c{i}@example.jp"));
        c.name = Some(format!("顧客{i}"));
        c.opt_in = Some(i != 3);
        if i % 2 == 1 {
            c.line_user_id = Some(user(i));
        }
        customers.push(c);
    }
    ecforce.insert_customers(customers);
    ecforce.insert_orders(
        (1..=n.min(4)).map(|i| order(&format!("o{i}"), i, now - TimeDelta::days(10))),
    );
    let mut line = FakeLine::builder();
    for i in 1..=n + 5 {
        line = line.user(FakeUser::new(user_id(i)));
    }
    let line = line.start().await.unwrap();
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()
        .unwrap();
    let api = Arc::new(
        EcforceClient::builder(ecforce.base_url(), DEFAULT_ECFORCE_TOKEN)
            .min_interval(Duration::ZERO)
            .build()
            .unwrap(),
    );
    Shop { line, ecforce, client, api, now }
}

impl Shop {
    /// An app over this shop, no quiet hours (tests run at any hour), no holdout.
    pub(crate) fn builder(&self, storage: Storage) -> EnishiBuilder {
        Enishi::builder()
            .line(self.client.clone())
            .storage(storage)
            .commerce(self.api.clone())
            .authenticator(self.api.clone())
            .channel_secret(ChannelSecret::new(SECRET))
            .policy(DeliveryPolicy::new())
    }
}

/// Serves the app's routes on a local port; returns its base URL.
pub(crate) async fn serve(app: &Enishi) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    base
}

/// A signed webhook body with one event of `kind` from `user`.
pub(crate) fn event(kind: &str, user: &LineUserId, event_id: &str, at: DateTime<Utc>) -> Value {
    json!({"destination": "Ubot", "events": [{
        "type": kind, "timestamp": at.timestamp_millis(), "mode": "active",
        "replyToken": "r", "source": {"type": "user", "userId": user.as_str()},
        "webhookEventId": event_id, "deliveryContext": {"isRedelivery": false},
        "follow": {"isUnblocked": false}}]})
}

/// Posts `body` to `base/webhook`, signed; returns the status.
pub(crate) async fn post_webhook(base: &str, body: &Value) -> u16 {
    let bytes = body.to_string().into_bytes();
    let signature = sign(&ChannelSecret::new(SECRET), &bytes);
    reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header("x-line-signature", signature)
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A fresh PostgreSQL schema name.
#[cfg(feature = "postgres")]
pub(crate) fn schema() -> String {
    format!("it_app_{}", uuid::Uuid::new_v4().simple())
}
