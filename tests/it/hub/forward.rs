//! The hub against real HTTP receivers on loopback ([`FakeDownstream`], and one hand-made
//! receiver that refuses one user): signatures, filters, splitting, redelivery, outages,
//! dead letters, reply ownership, and a crash of enishi mid-stream over SQLite and PostgreSQL
//! queues. Every "delivered once, in order" claim is read from the receivers' own records;
//! waits are event-driven.
#![cfg(all(feature = "testkit", feature = "sqlite"))]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use enishi::hub::{
    Backoff, DeadLetter, Destination, Hub, HubError, HubQueue, HubService, MemoryHubQueue, NewItem,
    QueueError, QueuedItem, ReplyRule, ReplyRules, SqliteHubQueue,
};
use enishi::line::webhook::{
    ChannelSecret, Delivery, HandlerError, MemoryDedup, SIGNATURE_HEADER, WebhookService, parse,
    sign,
};
use enishi::testkit::{FakeDownstream, ReceivedEvent};

const SECRET: &str = "hub-test-channel-secret";

fn secret() -> ChannelSecret {
    ChannelSecret::new(SECRET)
}

fn id(i: usize) -> String {
    format!("01HUBTEST{i:017}")
}

/// One event of `kind` (`text`, `postback:<data>`, `follow`) from `user`, as LINE sends it.
fn event(i: usize, user: &str, kind: &str) -> String {
    let common = format!(
        r#""timestamp":{i},"source":{{"type":"user","userId":"{user}"}},"webhookEventId":"{}","mode":"active","deliveryContext":{{"isRedelivery":false}}"#,
        id(i)
    );
    if let Some(data) = kind.strip_prefix("postback:") {
        return format!(
            r#"{{"type":"postback","replyToken":"r{i}",{common},"postback":{{"data":"{data}"}}}}"#
        );
    }
    match kind {
        "follow" => format!(
            r#"{{"type":"follow","replyToken":"r{i}",{common},"follow":{{"isUnblocked":false}}}}"#
        ),
        _ => format!(
            r#"{{"type":"message","replyToken":"r{i}",{common},"message":{{"type":"text","id":"{i}","quoteToken":"q","text":"hi \uD83E\uDD16 {i}"}}}}"#
        ),
    }
}

fn body(events: &[String]) -> String {
    format!(r#"{{"destination":"Ubot","events":[{}]}}"#, events.join(","))
}

async fn accept(hub: &Hub, body: &str) {
    let signature = sign(&secret(), body.as_bytes());
    hub.accept(Some(&signature), body.as_bytes()).await.unwrap();
}

fn user(n: usize) -> String {
    format!("U{n:032x}")
}

/// A destination that retries quickly.
fn quick(name: &str, url: String) -> Destination {
    Destination::new(name, url)
        .backoff(Backoff::exponential(Duration::from_millis(5), Duration::from_millis(50)))
        .max_attempts(50)
        .timeout(Duration::from_secs(1))
}

fn hub_with(queue: impl HubQueue, destinations: Vec<Destination>) -> Hub {
    let mut b = Hub::builder(secret())
        .queue(queue)
        .lease(Duration::from_secs(3))
        .poll_interval(Duration::from_millis(100));
    for d in destinations {
        b = b.destination(d);
    }
    b.build().unwrap()
}

/// Waits until `check` holds (a condition the test cannot be told about by an event), failing
/// after a generous minute rather than hanging.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..6000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}");
}

/// Each event exactly once, and each user's events in the order sent (IDs increase).
fn assert_once_in_order(name: &str, events: &[ReceivedEvent], expected: usize) {
    let mut seen = std::collections::HashSet::new();
    for e in events {
        assert!(seen.insert(e.event_id.clone()), "{name}: {} accepted twice", e.event_id);
    }
    assert_eq!(seen.len(), expected, "{name}: events missing");
    let mut last: HashMap<&str, &str> = HashMap::new();
    for e in events {
        if let Some(prev) = last.insert(&e.user, &e.event_id) {
            assert!(prev < e.event_id.as_str(), "{name}: {} arrived after {prev}", e.event_id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_passes_line_bytes_through_or_signs_with_the_tools_own_secret() {
    let same = FakeDownstream::start(secret()).await.unwrap();
    let own_secret = ChannelSecret::new("the-other-tools-secret");
    let own = FakeDownstream::start(own_secret.clone()).await.unwrap();
    let hub = hub_with(
        MemoryHubQueue::new(),
        vec![quick("same", same.url()), quick("own", own.url()).secret(own_secret)],
    );
    let _worker = hub.spawn();
    let b = body(&[event(1, &user(1), "text")]);
    accept(&hub, &b).await;
    same.wait_for_events(1).await;
    own.wait_for_events(1).await;
    assert_eq!(same.bodies(), vec![b.clone().into_bytes()], "LINE's bytes, escapes and all");
    assert_eq!(own.bodies(), vec![b.into_bytes()]);
    assert_eq!((same.bad_signatures(), own.bad_signatures()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_filters_event_types_and_resigns_the_cut_body() {
    let tool = FakeDownstream::start(secret()).await.unwrap();
    let hub = hub_with(MemoryHubQueue::new(), vec![quick("msgs", tool.url()).events(["message"])]);
    let _worker = hub.spawn();
    let u = user(1);
    accept(
        &hub,
        &body(&[event(1, &u, "follow"), event(2, &u, "text"), event(3, &u, "postback:x")]),
    )
    .await;
    accept(&hub, &body(&[event(4, &u, "follow")])).await; // nothing for this tool
    accept(&hub, &body(&[event(5, &u, "text")])).await;
    tool.wait_for_events(2).await;
    let got: Vec<String> = tool.events().into_iter().map(|e| e.event_id).collect();
    assert_eq!(got, [id(2), id(5)]);
    assert_eq!(tool.bad_signatures(), 0, "the cut body is re-signed with the channel secret");
    let first = parse(&tool.bodies()[0]).unwrap();
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.destination.as_deref(), Some("Ubot"));
    eventually("the queue to empty", || async { hub.queue().pending("msgs").await.unwrap() == 0 })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_splits_several_users_and_queues_a_redelivery_once() {
    let tool = FakeDownstream::start(secret()).await.unwrap();
    let hub = hub_with(MemoryHubQueue::new(), vec![quick("tool", tool.url())]);
    let b = body(&[
        event(1, &user(1), "text"),
        event(2, &user(2), "text"),
        event(3, &user(1), "follow"),
    ]);
    accept(&hub, &b).await;
    let again = b.replace("\"isRedelivery\":false", "\"isRedelivery\":true");
    let payload = parse(again.as_bytes()).unwrap();
    let queued = hub.forward(None, again.as_bytes(), &payload, chrono::Utc::now()).await.unwrap();
    assert_eq!(queued, 0, "LINE's redelivery is not queued again");
    assert_eq!(hub.queue().pending("tool").await.unwrap(), 2, "one body per user");
    let _worker = hub.spawn();
    tool.wait_for_events(3).await;
    assert_once_in_order("tool", &tool.events(), 3);
    let per_body: Vec<usize> =
        tool.bodies().iter().map(|b| parse(b).unwrap().events.len()).collect();
    let mut sorted = per_body.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2], "user 1's two events travel together");
    assert_eq!(tool.bad_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_loses_nothing_while_a_receiver_is_down_and_keeps_order_per_user() {
    let mut tool = FakeDownstream::start(secret()).await.unwrap();
    tool.stop();
    let queue = CountingQueue::default();
    let mut retries = queue.retries.subscribe();
    let hub = hub_with(queue, vec![quick("tool", tool.url()).concurrency(4)]);
    let _worker = hub.spawn();
    for i in 0..30 {
        accept(&hub, &body(&[event(i, &user(i % 5), "text")])).await;
    }
    // Attempts fail against the closed port before it comes back.
    retries.wait_for(|n| *n >= 5).await.unwrap();
    tool.restart().await.unwrap();
    tool.wait_for_events(30).await;
    assert_once_in_order("tool", &tool.events(), 30);
    assert!(hub.queue().dead_letters("tool").await.unwrap().is_empty());
}

/// A memory queue that reports its retries, so a test can wait for failed attempts.
#[derive(Debug, Default)]
struct CountingQueue {
    inner: MemoryHubQueue,
    retries: tokio::sync::watch::Sender<u64>,
}

#[async_trait::async_trait]
impl HubQueue for CountingQueue {
    async fn enqueue(&self, items: &[NewItem], now: DateTime<Utc>) -> Result<u64, QueueError> {
        self.inner.enqueue(items, now).await
    }
    async fn claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedItem>, QueueError> {
        self.inner.claim(destination, now, lease, limit).await
    }
    async fn complete(&self, id: i64, lease: &str, now: DateTime<Utc>) -> Result<bool, QueueError> {
        self.inner.complete(id, lease, now).await
    }
    async fn retry(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, QueueError> {
        let done = self.inner.retry(id, lease, attempts, not_before, error).await;
        self.retries.send_modify(|n| *n += 1);
        done
    }
    async fn dead_letter(
        &self,
        id: i64,
        lease: &str,
        attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError> {
        self.inner.dead_letter(id, lease, attempts, error, now).await
    }
    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        self.inner.next_due(destination).await
    }
    async fn pending(&self, destination: &str) -> Result<u64, QueueError> {
        self.inner.pending(destination).await
    }
    async fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, QueueError> {
        self.inner.dead_letters(destination).await
    }
    async fn requeue_dead(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError> {
        self.inner.requeue_dead(id, now).await
    }
    async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, QueueError> {
        self.inner.purge_delivered(before).await
    }
}

/// A hand-made receiver that refuses one user's events (503) until told otherwise.
struct PickyReceiver {
    url: String,
    open: Arc<std::sync::atomic::AtomicBool>,
    seen: tokio::sync::watch::Receiver<Vec<String>>,
}

async fn picky(blocked: String) -> PickyReceiver {
    use axum::extract::State;
    use std::sync::atomic::{AtomicBool, Ordering};
    type St = (Arc<AtomicBool>, String, Arc<tokio::sync::watch::Sender<Vec<String>>>);
    async fn handle(State((open, blocked, seen)): State<St>, body: String) -> http::StatusCode {
        let payload = parse(body.as_bytes()).unwrap();
        if payload.events.iter().any(|e| e.user_id() == Some(&blocked))
            && !open.load(Ordering::SeqCst)
        {
            return http::StatusCode::SERVICE_UNAVAILABLE;
        }
        seen.send_modify(|v| {
            v.extend(
                payload.events.iter().map(|e| e.webhook_event_id.as_ref().unwrap().to_string()),
            );
        });
        http::StatusCode::OK
    }
    let open = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::watch::channel(Vec::new());
    let app = axum::Router::new().route("/webhook", axum::routing::post(handle)).with_state((
        Arc::clone(&open),
        blocked,
        Arc::new(tx),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    PickyReceiver { url, open, seen: rx }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_a_failing_event_holds_back_only_its_users_later_events() {
    let blocked = user(1);
    let mut r = picky(blocked.clone()).await;
    let hub = hub_with(MemoryHubQueue::new(), vec![quick("picky", r.url.clone())]);
    let _worker = hub.spawn();
    accept(&hub, &body(&[event(1, &blocked, "text")])).await;
    accept(&hub, &body(&[event(2, &user(2), "text")])).await;
    accept(&hub, &body(&[event(3, &blocked, "text")])).await;
    accept(&hub, &body(&[event(4, &user(2), "text")])).await;
    let got = r.seen.wait_for(|v| v.len() == 2).await.unwrap().clone();
    assert_eq!(got, [id(2), id(4)], "the other user is not held back");
    r.open.store(true, std::sync::atomic::Ordering::SeqCst);
    let got = r.seen.wait_for(|v| v.len() == 4).await.unwrap().clone();
    assert_eq!(got[2..], [id(1), id(3)], "the blocked user's events keep their order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_dead_letters_after_the_limit_and_requeues_on_demand() {
    let tool = FakeDownstream::start(secret()).await.unwrap();
    tool.set_failing(true);
    let hub = hub_with(
        MemoryHubQueue::new(),
        vec![
            quick("tool", tool.url())
                .max_attempts(3)
                .backoff(Backoff::schedule([Duration::from_millis(5)])),
        ],
    );
    let _worker = hub.spawn();
    accept(&hub, &body(&[event(1, &user(1), "text")])).await;
    eventually("the dead letter", || async {
        !hub.queue().dead_letters("tool").await.unwrap().is_empty()
    })
    .await;
    let dead = hub.queue().dead_letters("tool").await.unwrap();
    assert_eq!((dead[0].attempts, dead[0].error.as_str()), (3, "HTTP 503"));
    assert_eq!(tool.refused(), 3);
    accept(&hub, &body(&[event(2, &user(1), "text")])).await; // not held back by the dead one
    tool.set_failing(false);
    tool.wait_for_events(1).await;
    assert!(hub.queue().requeue_dead(dead[0].id, chrono::Utc::now()).await.unwrap());
    tool.wait_for_events(2).await;
    let got: Vec<String> = tool.events().into_iter().map(|e| e.event_id).collect();
    assert_eq!(got, [id(2), id(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_reply_rules_leave_each_message_to_one_tool() {
    let lstep = FakeDownstream::start(secret()).await.unwrap();
    let rules = ReplyRules::new().rule(ReplyRule::postback_prefix("lstep", "lstep:"));
    let hub = Hub::builder(secret())
        .queue(MemoryHubQueue::new())
        .destination(quick("lstep", lstep.url()))
        .reply_rules(rules.clone())
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let local = WebhookService::builder(secret())
        .dedup(MemoryDedup::default())
        .handle_before_responding(true)
        .build(rules.guard(move |d: Delivery| {
            let tx = tx.clone();
            async move {
                tx.send(d.event.webhook_event_id.unwrap().to_string()).unwrap();
                Ok::<(), HandlerError>(())
            }
        }));
    let service = HubService::new(hub.clone(), local);
    let _worker = hub.spawn();
    let u = user(1);
    let b =
        body(&[event(1, &u, "text"), event(2, &u, "postback:lstep:menu"), event(3, &u, "follow")]);
    let mut headers = http::HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, sign(&secret(), b.as_bytes()).parse().unwrap());
    assert_eq!(service.handle_request(&headers, b.as_bytes()).await, http::StatusCode::OK);
    let mut handled = Vec::new();
    while let Ok(e) = rx.try_recv() {
        handled.push(e);
    }
    assert_eq!(handled, [id(1), id(3)], "enishi leaves lstep's postback alone");
    lstep.wait_for_events(3).await;
    let tokens: Vec<Option<String>> = lstep.events().into_iter().map(|e| e.reply_token).collect();
    assert_eq!(tokens, [None, Some("r2".to_owned()), None], "only the owner can reply");
    assert_eq!(lstep.bad_signatures(), 0);

    let bad = service.handle_request(&http::HeaderMap::new(), b.as_bytes()).await;
    assert_eq!(bad, http::StatusCode::UNAUTHORIZED, "no signature: nothing queued");
}

#[test]
fn hub_builder_rejects_what_cannot_work() {
    let base = || Hub::builder(secret()).queue(MemoryHubQueue::new());
    let err = |b: enishi::hub::HubBuilder| match b.build() {
        Err(HubError::InvalidConfig { what, .. }) => what,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    assert_eq!(err(Hub::builder(secret())), "queue");
    assert_eq!(
        err(base().destination(Destination::new("Bad Name", "http://x/"))),
        "destination name"
    );
    assert_eq!(
        err(base()
            .destination(Destination::new("a", "http://x/"))
            .destination(Destination::new("a", "http://y/"))),
        "destination name"
    );
    assert_eq!(err(base().destination(Destination::new("a", "ftp://x/"))), "destination URL");
    assert_eq!(
        err(base().lease(Duration::from_secs(1)).destination(Destination::new("a", "http://x/"))),
        "lease"
    );
    let hub = base().destination(Destination::new("a", "http://x/")).build().unwrap();
    assert_eq!(hub.destinations().map(Destination::name).collect::<Vec<_>>(), ["a"]);
}

/// Three receivers (one refusing for a while, one slow, one with its own secret that also
/// restarts), a stream of events from several users, and a crash of enishi halfway: the
/// workers and hub are dropped and a new hub runs over the same queue.
async fn crash_mid_stream(open: impl Fn() -> Arc<dyn HubQueue>) {
    const EVENTS: usize = 120;
    let failing = FakeDownstream::start(secret()).await.unwrap();
    failing.fail_next(40);
    let slow = FakeDownstream::start(secret()).await.unwrap();
    slow.set_delay(Duration::from_millis(5));
    let own_secret = ChannelSecret::new("own-secret");
    let mut own = FakeDownstream::start(own_secret.clone()).await.unwrap();
    let (failing_url, slow_url, own_url) = (failing.url(), slow.url(), own.url());
    let make = |queue: Arc<dyn HubQueue>| {
        Hub::builder(secret())
            .queue_shared(queue)
            .destination(quick("failing", failing_url.clone()))
            .destination(quick("slow", slow_url.clone()))
            .destination(quick("own", own_url.clone()).secret(own_secret.clone()))
            .lease(Duration::from_secs(2))
            .poll_interval(Duration::from_millis(50))
            .build()
            .unwrap()
    };
    let send = |hub: Hub, range: std::ops::Range<usize>| async move {
        for i in range {
            accept(&hub, &body(&[event(i, &user(i % 12), "text")])).await;
        }
    };
    let hub = make(open());
    let worker = hub.spawn();
    send(hub.clone(), 0..EVENTS / 2).await;
    slow.wait_for_events(10).await;
    own.stop();
    drop(worker); // the crash: in-flight bodies stay leased and are resent after the lease
    drop(hub);
    let hub = make(open());
    let worker = hub.spawn();
    send(hub.clone(), EVENTS / 2..EVENTS).await;
    own.restart().await.unwrap();
    for r in [&failing, &slow, &own] {
        r.wait_for_events(EVENTS).await;
    }
    worker.shutdown().await;
    for (name, r) in [("failing", &failing), ("slow", &slow), ("own", &own)] {
        assert_once_in_order(name, &r.events(), EVENTS);
        assert!(r.duplicate_events().is_empty(), "{name}");
        assert_eq!(r.bad_signatures(), 0, "{name}");
        assert!(hub.queue().dead_letters(name).await.unwrap().is_empty(), "{name}");
        assert_eq!(hub.queue().pending(name).await.unwrap(), 0, "{name}");
    }
    assert_eq!(failing.refused(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_crash_mid_stream_over_sqlite_delivers_every_event_once_in_order() {
    let path = crate::stores::sqlite_path("hub-crash");
    let p = path.clone();
    crash_mid_stream(move || Arc::new(SqliteHubQueue::open(&p).unwrap()) as Arc<dyn HubQueue>)
        .await;
    crate::stores::remove_sqlite(&path);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_crash_mid_stream_over_postgres_delivers_every_event_once_in_order() {
    use enishi::hub::PostgresHubQueue;
    let schema = crate::stores::pg_schema("hub_crash");
    let first = crate::stores::pg_needed(
        PostgresHubQueue::from_pool(crate::stores::pg_pool(), &schema).await,
    );
    let second = PostgresHubQueue::from_pool(crate::stores::pg_pool(), &schema).await.unwrap();
    let queues = std::sync::Mutex::new(vec![second, first]);
    crash_mid_stream(|| Arc::new(queues.lock().unwrap().pop().unwrap()) as Arc<dyn HubQueue>).await;
    crate::stores::Cleanup::Schema(schema).run().await;
}
