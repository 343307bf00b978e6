//! A fake downstream webhook receiver (another LINE tool behind the webhook hub): a real HTTP
//! server on 127.0.0.1 that checks signatures, fails, slows down and restarts on demand, and
//! records every event it accepted, so tests prove "every event once, in order" from the
//! receiver's own records.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::hub::DELIVERY_ID_HEADER;
use crate::line::webhook::{ChannelSecret, ChannelSecrets, SIGNATURE_HEADER};

/// One event a [`FakeDownstream`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// Its `webhookEventId` (empty when absent).
    pub event_id: String,
    /// Its `source.userId` (or group / room ID; empty when absent).
    pub user: String,
    /// Its `replyToken`, when it had one.
    pub reply_token: Option<String>,
    /// The `x-enishi-delivery-id` of the request that brought it.
    pub delivery_id: String,
    /// When it was accepted.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Record {
    events: Vec<ReceivedEvent>,
    bodies: Vec<Vec<u8>>,
    deliveries: HashSet<String>,
    requests: u64,
    resent: u64,
    bad_signatures: u64,
    refused: u64,
    fail_next: u64,
    failing: bool,
    delay: Duration,
}

struct Shared {
    secrets: ChannelSecrets,
    record: Mutex<Record>,
    accepted: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fake downstream receiver: a real HTTP server on loopback that records what it accepts.
///
/// Answers 401 to a body whose `x-line-signature` does not match its secret, 503 while
/// failing, else (after its delay) 200. A request whose `x-enishi-delivery-id` it already
/// accepted is answered 200 and counted in [`resent`](Self::resent), not recorded again.
pub struct FakeDownstream {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<watch::Sender<()>>,
    /// The accept loop; once stopped, it hands back the port it keeps (see [`reserve`]).
    task: Option<tokio::task::JoinHandle<Option<TcpSocket>>>,
}

impl fmt::Debug for FakeDownstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDownstream")
            .field("addr", &self.addr)
            .field("running", &self.stop.is_some())
            .finish_non_exhaustive()
    }
}

/// The whole body, or `None` when it could not be read.
async fn collect(body: hyper::body::Incoming) -> Option<axum::body::Bytes> {
    axum::body::to_bytes(Body::new(body), 2 * 1024 * 1024).await.ok()
}

impl FakeDownstream {
    /// Starts a receiver on a free port of 127.0.0.1 that accepts bodies signed with `secret`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(secret: ChannelSecret) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (accepted, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            secrets: ChannelSecrets::new(secret),
            record: Mutex::new(Record::default()),
            accepted,
        });
        let mut me = Self { shared, addr, stop: None, task: None };
        me.serve(listener);
        Ok(me)
    }

    /// The URL to forward to.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// Answers 503 to the next `n` requests.
    pub fn fail_next(&self, n: u64) {
        self.shared.lock().fail_next = n;
    }

    /// Answers 503 to every request until called with `false`.
    pub fn set_failing(&self, failing: bool) {
        self.shared.lock().failing = failing;
    }

    /// Waits this long before accepting each request.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Stops listening and drops every open connection, as a crash would (requests in flight
    /// are not recorded).
    pub fn stop(&mut self) {
        self.stop = None;
    }

    /// Listens again on the same port, keeping the records.
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop = None;
        // The old accept loop owns the listener; once it has ended it hands back the port,
        // still held, so no other socket took it while this receiver was down.
        let reserved = match self.task.take() {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        let listener = match reserved {
            Some(socket) => socket.listen(1024)?,
            None => TcpListener::bind(self.addr).await?,
        };
        self.serve(listener);
        Ok(())
    }

    /// Every accepted event, in the order accepted.
    #[must_use]
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.shared.lock().events.clone()
    }

    /// Every accepted body, byte for byte, in the order accepted.
    #[must_use]
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.shared.lock().bodies.clone()
    }

    /// Requests received (all answers).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests
    }

    /// Requests repeating a delivery already accepted (a resend after a crash).
    #[must_use]
    pub fn resent(&self) -> u64 {
        self.shared.lock().resent
    }

    /// Requests answered 401 for a wrong signature.
    #[must_use]
    pub fn bad_signatures(&self) -> u64 {
        self.shared.lock().bad_signatures
    }

    /// Requests answered 503.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.shared.lock().refused
    }

    /// Event IDs accepted more than once (under different deliveries), each once.
    #[must_use]
    pub fn duplicate_events(&self) -> Vec<String> {
        let mut seen = HashMap::new();
        for e in &self.shared.lock().events {
            *seen.entry(e.event_id.clone()).or_insert(0) += 1;
        }
        let mut dups: Vec<String> =
            seen.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect();
        dups.sort();
        dups
    }

    /// Waits until at least `n` events were accepted (event-driven: no polling).
    pub async fn wait_for_events(&self, n: usize) {
        let mut rx = self.shared.accepted.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|have| *have >= n).await;
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, mut stopped) = watch::channel(());
        self.stop = Some(stop);
        let shared = Arc::clone(&self.shared);
        let addr = self.addr;
        self.task = Some(tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let shared = Arc::clone(&shared);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        // A crash: the connection is dropped, nothing more is answered.
                        _ = stopped.changed() => {}
                    }
                });
            }
            drop(listener);
            reserve(addr)
        }));
    }
}

/// Holds `addr` without listening on it: connections are refused, as by a stopped server,
/// and no other socket (another test's ephemeral port) can take it before a restart.
fn reserve(addr: SocketAddr) -> Option<TcpSocket> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.ok()?;
    socket.set_reuseaddr(true).ok()?;
    socket.bind(addr).ok()?;
    Some(socket)
}

async fn handle(shared: &Shared, request: hyper::Request<hyper::body::Incoming>) -> Response<Body> {
    let answer = |status: StatusCode| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        r
    };
    let (parts, body) = request.into_parts();
    let Some(body) = collect(body).await else {
        return answer(StatusCode::BAD_REQUEST);
    };
    let signature = parts.headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let delivery = parts
        .headers
        .get(DELIVERY_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let delay = {
        let mut r = shared.lock();
        r.requests += 1;
        if shared.secrets.verify(signature, &body).is_err() {
            r.bad_signatures += 1;
            return answer(StatusCode::UNAUTHORIZED);
        }
        if r.failing || r.fail_next > 0 {
            r.fail_next = r.fail_next.saturating_sub(1);
            r.refused += 1;
            return answer(StatusCode::SERVICE_UNAVAILABLE);
        }
        r.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST);
    };
    let now = Utc::now();
    let total = {
        let mut r = shared.lock();
        if !delivery.is_empty() && !r.deliveries.insert(delivery.clone()) {
            r.resent += 1;
            return answer(StatusCode::OK);
        }
        r.bodies.push(body.to_vec());
        let events = payload.get("events").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        for e in events {
            let text =
                |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
            let source = e.get("source");
            let user = text(source.and_then(|s| s.get("userId")))
                .or_else(|| text(source.and_then(|s| s.get("groupId"))))
                .or_else(|| text(source.and_then(|s| s.get("roomId"))))
                .unwrap_or_default();
            r.events.push(ReceivedEvent {
                event_id: text(e.get("webhookEventId")).unwrap_or_default(),
                user,
                reply_token: text(e.get("replyToken")),
                delivery_id: delivery.clone(),
                at: now,
            });
        }
        r.events.len()
    };
    shared.accepted.send_replace(total);
    answer(StatusCode::OK)
}
