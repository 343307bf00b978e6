//! The axum `WebhookService` over a real socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use enishi::line::webhook::{
    ChannelSecret, DedupStatus, Delivery, HandlerError, MemoryDedup, WebhookService,
    WebhookServiceBuilder, sign,
};
use serde_json::json;

const SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A gate the handler passes before it records anything: open, or closed until the test
/// adds permits (so "the handler has not finished yet" is a fact, not a race).
fn open() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(Semaphore::MAX_PERMITS))
}

/// Starts the service; returns its URL and what the handler saw (type, event ID, dedup status).
async fn serve(
    builder: WebhookServiceBuilder,
    fail_first: bool,
    gate: Arc<Semaphore>,
) -> (String, Seen, WebhookService) {
    let seen: Seen = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = builder.build({
        let seen = Arc::clone(&seen);
        move |d: Delivery| {
            let (seen, calls, gate) = (Arc::clone(&seen), Arc::clone(&calls), Arc::clone(&gate));
            async move {
                gate.acquire().await.unwrap().forget();
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                seen.lock().unwrap().push((
                    d.event.type_str().to_owned(),
                    d.event.webhook_event_id.as_ref().map(|i| i.to_string()),
                    format!("{:?}", d.dedup),
                ));
                assert_eq!(d.destination.as_deref(), Some("Ub1a2c3d4e5f60718293a4b5c6d7e8f90"));
                if fail_first && n == 0 {
                    Err::<(), HandlerError>("handler failed".into())
                } else {
                    Ok(())
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let app = service.router("/webhook");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, service)
}

fn body(events: serde_json::Value) -> Vec<u8> {
    json!({"destination":"Ub1a2c3d4e5f60718293a4b5c6d7e8f90","events":events})
        .to_string()
        .into_bytes()
}

fn follow(id: &str, redelivery: bool) -> serde_json::Value {
    json!({"type":"follow","mode":"active","timestamp":1,"source":{"type":"user","userId":"U1"},
        "webhookEventId":id,"deliveryContext":{"isRedelivery":redelivery},"replyToken":"r",
        "follow":{"isUnblocked":false}})
}

async fn post(url: &str, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-line-signature", s);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn builder() -> WebhookServiceBuilder {
    WebhookService::builder(ChannelSecret::new(SECRET))
}

#[tokio::test]
async fn webhook_service_verifies_then_hands_each_event_once_to_the_handler() {
    let (url, seen, service) = serve(builder().dedup(MemoryDedup::default()), false, open()).await;
    let secret = ChannelSecret::new(SECRET);
    let b = body(
        json!([follow("01A", false), {"type":"brandNew","webhookEventId":"01B"}, {"type":"unfollow"}]),
    );
    assert_eq!(post(&url, &b, Some(&sign(&secret, &b))).await, (200, String::new()));
    // LINE redelivers the first event: it is skipped.
    let again = body(json!([follow("01A", true)]));
    assert_eq!(post(&url, &again, Some(&sign(&secret, &again))).await.0, 200);
    service.drain().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("follow".into(), Some("01A".into()), "Claimed".into()),
            ("brandNew".into(), Some("01B".into()), "Claimed".into()),
            ("unfollow".into(), None, "NoEventId".into()),
        ]
    );
    assert_eq!(service.in_flight(), 0);
}

#[tokio::test]
async fn webhook_service_rejects_bad_signatures_without_detail() {
    let (url, seen, service) = serve(builder(), false, open()).await;
    let secret = ChannelSecret::new(SECRET);
    let b = body(json!([follow("01A", false)]));
    assert_eq!(post(&url, &b, None).await, (401, String::new()), "missing header");
    let wrong = sign(&ChannelSecret::new("another-secret"), &b);
    assert_eq!(post(&url, &b, Some(&wrong)).await, (401, String::new()), "wrong secret");
    assert_eq!(post(&url, &b, Some("not base64!")).await, (400, String::new()), "malformed header");
    assert_eq!(post(&url, &b, Some("AAAA")).await, (400, String::new()), "short signature");
    let mut flipped = b.clone();
    flipped[10] ^= 1;
    assert_eq!(post(&url, &flipped, Some(&sign(&secret, &b))).await.0, 401, "flipped byte");
    // Correctly signed, but not a webhook payload.
    assert_eq!(post(&url, b"[1,2]", Some(&sign(&secret, b"[1,2]"))).await, (400, String::new()));
    // The console's connectivity check: no events, still 200.
    let empty = body(json!([]));
    assert_eq!(post(&url, &empty, Some(&sign(&secret, &empty))).await.0, 200);
    service.drain().await;
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_service_limits_the_body_size() {
    let (url, seen, _service) = serve(builder().body_limit(256), false, open()).await;
    let secret = ChannelSecret::new(SECRET);
    let big = body(json!([follow(&"0".repeat(300), false)]));
    assert_eq!(post(&url, &big, Some(&sign(&secret, &big))).await.0, 413);
    let small = body(json!([]));
    assert_eq!(post(&url, &small, Some(&sign(&secret, &small))).await.0, 200);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_service_answers_before_handling_and_drain_waits() {
    let gate = Arc::new(Semaphore::new(0));
    let (url, seen, service) = serve(builder(), false, Arc::clone(&gate)).await;
    let b = body(json!([follow("01A", false)]));
    // The handler cannot finish until the gate opens, so the 200 came before it did.
    assert_eq!(post(&url, &b, Some(&sign(&ChannelSecret::new(SECRET), &b))).await.0, 200);
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(service.in_flight(), 1);
    // drain() waits for the handler, which can now finish.
    tokio::join!(service.drain(), async { gate.add_permits(1) });
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn webhook_service_handle_first_mode_answers_500_and_releases_failed_events() {
    let b = builder().dedup(MemoryDedup::default()).handle_before_responding(true);
    let (url, seen, _service) = serve(b, true, open()).await;
    let secret = ChannelSecret::new(SECRET);
    let b = body(json!([follow("01A", false)]));
    // The handler fails: 500, so LINE redelivers; the claim was released, so the redelivery is
    // handled again (and succeeds).
    assert_eq!(post(&url, &b, Some(&sign(&secret, &b))).await.0, 500);
    let again = body(json!([follow("01A", true)]));
    assert_eq!(post(&url, &again, Some(&sign(&secret, &again))).await.0, 200);
    assert_eq!(post(&url, &again, Some(&sign(&secret, &again))).await.0, 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[test]
fn webhook_service_debug_hides_the_secret() {
    let service = builder().build(|_d: Delivery| async { Ok::<(), HandlerError>(()) });
    let debug = format!("{service:?}");
    assert!(!debug.contains(SECRET) && debug.contains("ChannelSecret(***)"), "{debug}");
    let _ = DedupStatus::NotConfigured;
}

/// A de-duplication store that is down: every call fails.
#[derive(Debug)]
struct DownDedup;

#[async_trait::async_trait]
impl enishi::line::webhook::EventDedup for DownDedup {
    async fn claim(
        &self,
        _id: &enishi::WebhookEventId,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, enishi::line::webhook::DedupError> {
        Err(io_down())
    }
    async fn release(
        &self,
        _id: &enishi::WebhookEventId,
    ) -> Result<(), enishi::line::webhook::DedupError> {
        Err(io_down())
    }
    async fn purge_expired(
        &self,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, enishi::line::webhook::DedupError> {
        Err(io_down())
    }
    fn retention(&self) -> Duration {
        Duration::from_secs(60)
    }
}

fn io_down() -> enishi::line::webhook::DedupError {
    enishi::line::webhook::DedupError::Backend {
        backend: "test",
        source: Box::new(std::io::Error::other("the store is down")),
    }
}

#[tokio::test]
async fn webhook_service_answers_500_and_handles_nothing_while_the_dedup_store_is_down() {
    let secret = ChannelSecret::new(SECRET);
    let b = body(json!([follow("01A", false), follow("01B", false)]));
    for before in [false, true] {
        let builder = builder().dedup(DownDedup).handle_before_responding(before);
        let (url, seen, service) = serve(builder, false, open()).await;
        assert_eq!(post(&url, &b, Some(&sign(&secret, &b))).await.0, 500, "before={before}");
        service.drain().await;
        assert!(seen.lock().unwrap().is_empty(), "before={before}: {:?}", seen.lock().unwrap());
    }
    // Opting into at-least-once delivers anyway, marked as such.
    let builder = builder().dedup(DownDedup).deliver_when_dedup_fails(true);
    let (url, seen, service) = serve(builder, false, open()).await;
    assert_eq!(post(&url, &b, Some(&sign(&secret, &b))).await.0, 200);
    service.drain().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(_, _, dedup)| dedup.starts_with("StoreFailed")), "{seen:?}");
}
