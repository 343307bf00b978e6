//! The hub in the app's front door (`EnishiBuilder::hub`): LINE's webhook posted to the app's
//! own `/webhook` route is verified once, queued in the storage's persistent hub queue (SQLite,
//! PostgreSQL) for two real loopback receivers ([`FakeDownstream`]: one sharing the channel,
//! one with its own secret), handled by enishi where it owns the conversation, and forwarded
//! by the hub workers running inside [`Enishi::run`] — through a receiver outage and a crash
//! and restart of the app. Every claim is read from the receivers' and the fake LINE server's
//! records.
#![cfg(all(feature = "app", feature = "testkit", feature = "sqlite"))]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use enishi::app::{Enishi, RunOptions};
use enishi::hub::{Backoff, Destination, ENISHI, Hub, ReplyRule, ReplyRules};
use enishi::line::webhook::{ChannelSecret, sign};
use enishi::storage::Storage;
use enishi::testkit::{Endpoint, FakeDownstream, ReceivedEvent};
use tokio::task::JoinHandle;

use crate::app::harness::{SECRET, Shop, shop, user};

const EVENTS: usize = 48;
const USERS: u64 = 4;

fn event_id(i: usize) -> String {
    format!("01HUBAPP{i:018}")
}

/// What event `i` is: a text enishi answers (`注文…`), a text another tool answers, a
/// postback of that tool's menu, or a follow (nobody replies; enishi records it).
fn kind(i: usize) -> &'static str {
    match i % 4 {
        0 => "order",
        1 => "chat",
        2 => "postback",
        _ => "follow",
    }
}

/// Who sends event `i`: five events in a row each, so every user sends every kind.
fn sender(i: usize) -> enishi::LineUserId {
    user(1 + (i as u64 / 5) % USERS)
}

/// Event `i`, with a reply token the fake LINE server issued.
fn event(shop: &Shop, i: usize) -> serde_json::Value {
    let u = sender(i);
    let token = shop.line.issue_reply_token(u.as_str()).unwrap();
    let mut e = serde_json::json!({
        "timestamp": 1_700_000_000_000_u64 + i as u64, "mode": "active", "replyToken": token,
        "source": {"type": "user", "userId": u.as_str()}, "webhookEventId": event_id(i),
        "deliveryContext": {"isRedelivery": false}});
    let text = |t: String| serde_json::json!({"type": "text", "id": i.to_string(), "quoteToken": "q", "text": t});
    match kind(i) {
        "order" => {
            e["type"] = "message".into();
            e["message"] = text(format!("注文について {i}"));
        }
        "chat" => {
            e["type"] = "message".into();
            e["message"] = text(format!("予約したい {i}"));
        }
        "postback" => {
            e["type"] = "postback".into();
            e["postback"] = serde_json::json!({"data": "lstep:menu"});
        }
        _ => {
            e["type"] = "follow".into();
            e["follow"] = serde_json::json!({"isUnblocked": false});
        }
    }
    serde_json::json!({"destination": "Ubot", "events": [e]})
}

async fn post(base: &str, body: &serde_json::Value) -> u16 {
    let bytes = body.to_string().into_bytes();
    reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header("x-line-signature", sign(&ChannelSecret::new(SECRET), &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn rules() -> ReplyRules {
    // Lステップ owns the conversation; enishi answers questions about orders.
    ReplyRules::new().rule(ReplyRule::text_prefix(ENISHI, "注文")).default_owner("lstep")
}

fn quick(name: &str, url: String) -> Destination {
    Destination::new(name, url)
        .backoff(Backoff::exponential(Duration::from_millis(5), Duration::from_millis(50)))
        .max_attempts(1_000)
        .timeout(Duration::from_secs(1))
}

/// One life of the app: its storage (the same SQLite file each time), its hub on the
/// storage's queue, its routes on a port, and its service loop.
struct Life {
    app: Enishi,
    base: String,
    server: JoinHandle<()>,
    run: JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Where the app keeps everything: the same database in each life.
#[derive(Clone)]
enum Db {
    Sqlite(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Db {
    async fn open(&self) -> Storage {
        match self {
            Self::Sqlite(path) => Storage::open(path).await.unwrap(),
            #[cfg(feature = "postgres")]
            Self::Postgres(schema) => crate::stores::pg_needed(
                Storage::builder(crate::pg::url()).schema(schema).pool_size(4).open().await,
            ),
        }
    }

    async fn remove(self) {
        match self {
            Self::Sqlite(path) => crate::stores::remove_sqlite(&path),
            #[cfg(feature = "postgres")]
            Self::Postgres(schema) => crate::stores::Cleanup::Schema(schema).run().await,
        }
    }
}

async fn start(
    shop: &Shop,
    db: &Db,
    lstep: &FakeDownstream,
    karte: (&FakeDownstream, &ChannelSecret),
) -> Life {
    let storage = db.open().await;
    let hub = Hub::builder(ChannelSecret::new(SECRET))
        .queue_shared(storage.hub_queue().await.unwrap())
        .destination(quick("lstep", lstep.url()))
        .destination(quick("karte", karte.0.url()).secret(karte.1.clone()))
        .reply_rules(rules())
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let app = shop
        .builder(storage)
        .chat(b"hub-app-test-postback-key-0123456789".to_vec(), |b| b)
        .hub(hub)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, routes).await;
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = RunOptions::new()
        .sync_interval(Duration::from_secs(3600))
        .tick_interval(Duration::from_millis(50))
        .dispatch_interval(Duration::from_millis(50));
    let run = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run(options, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        })
    };
    Life { app, base, server, run, stop: Some(stop) }
}

impl Life {
    /// The crash: the service loop (with the hub's workers) and the server vanish at once.
    fn crash(self) {
        self.run.abort();
        self.server.abort();
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.run.await.unwrap();
        self.server.abort();
    }
}

/// Each event exactly once, and each user's events in the order LINE sent them.
fn assert_once_in_order(name: &str, events: &[ReceivedEvent]) {
    let mut seen = std::collections::HashSet::new();
    for e in events {
        assert!(seen.insert(e.event_id.clone()), "{name}: {} accepted twice", e.event_id);
    }
    assert_eq!(seen.len(), EVENTS, "{name}: events missing");
    let mut last: HashMap<&str, &str> = HashMap::new();
    for e in events {
        if let Some(prev) = last.insert(&e.user, &e.event_id) {
            assert!(prev < e.event_id.as_str(), "{name}: {} arrived after {prev}", e.event_id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_app_webhook_over_sqlite_forwards_through_an_outage_and_a_restart_once_in_order() {
    outage_and_restart(Db::Sqlite(crate::stores::sqlite_path("hub-app"))).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_app_webhook_over_postgres_forwards_through_an_outage_and_a_restart_once_in_order() {
    outage_and_restart(Db::Postgres(crate::stores::pg_schema("hub_app"))).await;
}

/// Lステップ down from the start, the app crashing halfway and restarting on the same
/// database, a redelivery after the restart.
async fn outage_and_restart(db: Db) {
    let shop = shop(USERS).await;
    let mut lstep = FakeDownstream::start(ChannelSecret::new(SECRET)).await.unwrap();
    let karte_secret = ChannelSecret::new("karte-own-channel-secret");
    let karte = FakeDownstream::start(karte_secret.clone()).await.unwrap();
    let bodies: Vec<serde_json::Value> = (0..EVENTS).map(|i| event(&shop, i)).collect();

    // Lステップ is down from the start; the first half arrives, then the app crashes.
    lstep.stop();
    let first = start(&shop, &db, &lstep, (&karte, &karte_secret)).await;
    for b in &bodies[..EVENTS / 2] {
        assert_eq!(post(&first.base, b).await, 200);
    }
    karte.wait_for_events(EVENTS / 4).await;
    first.crash();

    // The restarted app (same SQLite file) takes a redelivery and the second half.
    let second = start(&shop, &db, &lstep, (&karte, &karte_secret)).await;
    assert_eq!(post(&second.base, &bodies[1]).await, 200, "LINE's redelivery");
    for b in &bodies[EVENTS / 2..] {
        assert_eq!(post(&second.base, b).await, 200);
    }
    lstep.restart().await.unwrap();
    lstep.wait_for_events(EVENTS).await;
    karte.wait_for_events(EVENTS).await;
    let hub = second.app.hub().unwrap().clone();
    second.shutdown().await;

    for (name, r) in [("lstep", &lstep), ("karte", &karte)] {
        let events = r.events();
        assert_once_in_order(name, &events);
        assert!(r.duplicate_events().is_empty(), "{name}");
        assert_eq!(r.bad_signatures(), 0, "{name}");
        assert!(hub.queue().dead_letters(name).await.unwrap().is_empty(), "{name}");
        assert_eq!(hub.queue().pending(name).await.unwrap(), 0, "{name}");
        // Only the owner of a conversation gets its reply token: Lステップ all but the
        // questions about orders, the other tool none.
        for e in &events {
            let i: usize = e.event_id.trim_start_matches("01HUBAPP").parse().unwrap();
            let owned = name == "lstep" && kind(i) != "order";
            assert_eq!(e.reply_token.is_some(), owned, "{name}: event {i} ({})", kind(i));
        }
    }

    // enishi answered exactly the questions about orders, once each, and nothing else.
    let replies: Vec<_> =
        shop.line.deliveries().into_iter().filter(|d| d.endpoint == Endpoint::Reply).collect();
    let mut by_user: HashMap<String, usize> = HashMap::new();
    for d in &replies {
        *by_user.entry(d.to.clone()).or_default() += 1;
    }
    let mut expected: HashMap<String, usize> = HashMap::new();
    for i in (0..EVENTS).filter(|i| kind(*i) == "order") {
        *expected.entry(sender(i).as_str().to_owned()).or_default() += 1;
    }
    assert_eq!(expected.len(), USERS as usize);
    assert_eq!(by_user, expected, "one reply per question about orders, none to the rest");
    db.remove().await;
}
