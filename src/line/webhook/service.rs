//! axum integration (feature `axum`): limit the body, verify, parse, answer, and hand each
//! event once to the host's async handler.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use tokio::sync::watch;

use super::{ChannelSecrets, DedupError, Event, EventDedup, SIGNATURE_HEADER, WebhookError, parse};

/// The error a handler returns. With a de-duplication store, a failed event's claim is
/// released, so a redelivery of it is handled again.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What the host's handler receives: one event, once.
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    /// The payload's `destination` (the receiving bot's user ID), shared by its events.
    pub destination: Option<Arc<str>>,
    /// The channel the payload was routed to, for a service built with
    /// [`WebhookService::for_channels`]: reply through its client.
    pub channel: Option<crate::line::LineChannel>,
    /// The event.
    pub event: Event,
    /// What the de-duplication store said.
    pub dedup: DedupStatus,
}

/// The de-duplication outcome for a delivered event. Duplicates are never delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum DedupStatus {
    /// This is the first delivery of the event's `webhookEventId`.
    Claimed,
    /// No store is configured.
    NotConfigured,
    /// The event has no `webhookEventId` (older payloads), so it cannot be de-duplicated.
    NoEventId,
    /// The store failed and the service was built with
    /// [`deliver_when_dedup_fails(true)`](WebhookServiceBuilder::deliver_when_dedup_fails), so
    /// the event is delivered anyway (it may be a duplicate). By default a failing store is
    /// answered with 500 and the event is not delivered.
    StoreFailed(DedupError),
}

/// The host's event handler. Any `Fn(Delivery) -> impl Future<Output = Result<(), HandlerError>>`
/// closure is one.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event.
    ///
    /// # Errors
    /// Any error: the event's de-duplication claim is released, and when the service handles
    /// events before responding, LINE gets a 500 and may redeliver.
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError>;
}

#[async_trait::async_trait]
impl<F, Fut> EventHandler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self(delivery).await
    }
}

/// The default body limit: 1 MiB (LINE's batches are far smaller).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Builds a [`WebhookService`].
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct WebhookServiceBuilder {
    secrets: ChannelSecrets,
    channels: Option<crate::line::LineChannels>,
    dedup: Option<Arc<dyn EventDedup>>,
    body_limit: usize,
    handle_before_responding: bool,
    deliver_when_dedup_fails: bool,
}

impl WebhookServiceBuilder {
    /// De-duplicates events by `webhookEventId` in `store` (none by default).
    pub fn dedup(mut self, store: impl EventDedup) -> Self {
        self.dedup = Some(Arc::new(store));
        self
    }

    /// De-duplicates events in a shared store.
    pub fn dedup_shared(mut self, store: Arc<dyn EventDedup>) -> Self {
        self.dedup = Some(store);
        self
    }

    /// The largest accepted body in bytes (default [`DEFAULT_BODY_LIMIT`]); larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// By default the service answers 200 as soon as the body is verified and parsed, and
    /// handles the events in a background task (LINE wants a quick answer). With `true` it
    /// handles them first and answers 500 if a handler or the store failed, so LINE redelivers
    /// (when redelivery is on). Use `true` where background tasks do not outlive the request
    /// (some serverless platforms).
    pub fn handle_before_responding(mut self, yes: bool) -> Self {
        self.handle_before_responding = yes;
        self
    }

    /// What happens to an event whose de-duplication claim fails (the store is down).
    ///
    /// By default (`false`) the event is not handled and the service answers 500, so LINE
    /// redelivers the payload later (turn webhook redelivery on in the LINE Developers
    /// console): a down store never lets a duplicate through. Events of the payload claimed
    /// before the failing one are handled, and skipped as duplicates when the payload comes
    /// again. With `true` the event is handled anyway with [`DedupStatus::StoreFailed`] (at
    /// least once: it may be a duplicate) and, unless the service handles events before
    /// responding, answered 200 as before.
    pub fn deliver_when_dedup_fails(mut self, yes: bool) -> Self {
        self.deliver_when_dedup_fails = yes;
        self
    }

    /// Builds the service around the host's handler.
    pub fn build(self, handler: impl EventHandler) -> WebhookService {
        let (in_flight, _) = watch::channel(0usize);
        WebhookService {
            inner: Arc::new(Inner {
                secrets: self.secrets,
                channels: self.channels,
                dedup: self.dedup,
                body_limit: self.body_limit,
                handle_before_responding: self.handle_before_responding,
                deliver_when_dedup_fails: self.deliver_when_dedup_fails,
                handler: Box::new(handler),
                in_flight,
            }),
        }
    }
}

/// A webhook endpoint: body limit, signature check, parsing, de-duplication, dispatch.
///
/// Answers (never with a body, so nothing leaks): 200 for a verified payload (including an
/// empty `events` array: the console's connectivity check), 401 for a missing or wrong
/// signature, 400 for a malformed signature header or a signed body that is not a webhook
/// payload, 413 for a body over the limit, 500 when the de-duplication store fails (see
/// [`WebhookServiceBuilder::deliver_when_dedup_fails`]). Events are claimed in the
/// de-duplication store before the answer, so a claim that fails is never answered 200.
/// Cheap to clone.
///
/// ```no_run
/// use enishi::line::webhook::{ChannelSecret, Delivery, HandlerError, MemoryDedup, WebhookService};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let service = WebhookService::builder(ChannelSecret::new(std::env::var("LINE_CHANNEL_SECRET")?))
///     .dedup(MemoryDedup::default())
///     .build(|d: Delivery| async move {
///         println!("{} {:?}", d.event.type_str(), d.event.webhook_event_id);
///         Ok::<(), HandlerError>(())
///     });
/// let app = service.router("/webhook");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// service.drain().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookService {
    inner: Arc<Inner>,
}

struct Inner {
    secrets: ChannelSecrets,
    channels: Option<crate::line::LineChannels>,
    dedup: Option<Arc<dyn EventDedup>>,
    body_limit: usize,
    handle_before_responding: bool,
    deliver_when_dedup_fails: bool,
    handler: Box<dyn EventHandler>,
    in_flight: watch::Sender<usize>,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("secrets", &self.inner.secrets)
            .field("channels", &self.inner.channels)
            .field("dedup", &self.inner.dedup)
            .field("body_limit", &self.inner.body_limit)
            .field("handle_before_responding", &self.inner.handle_before_responding)
            .field("deliver_when_dedup_fails", &self.inner.deliver_when_dedup_fails)
            .finish_non_exhaustive()
    }
}

/// Counts a background task until dropped.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn new(inner: Arc<Inner>) -> Self {
        inner.in_flight.send_modify(|n| *n += 1);
        Self(inner)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n -= 1);
    }
}

impl WebhookService {
    /// Starts a builder with the accepted channel secret(s).
    pub fn builder(secrets: impl Into<ChannelSecrets>) -> WebhookServiceBuilder {
        WebhookServiceBuilder {
            secrets: secrets.into(),
            channels: None,
            dedup: None,
            body_limit: DEFAULT_BODY_LIMIT,
            handle_before_responding: false,
            deliver_when_dedup_fails: false,
        }
    }

    /// Starts a builder for several official accounts on one endpoint: each request is
    /// verified with the secret(s) of the channel its `destination` names, and each
    /// [`Delivery`] carries that [`channel`](Delivery::channel). A request for an unknown
    /// destination is answered 401.
    pub fn for_channels(channels: crate::line::LineChannels) -> WebhookServiceBuilder {
        let mut builder = Self::builder(ChannelSecrets::from_iter([]));
        builder.channels = Some(channels);
        builder
    }

    /// A router answering `POST path` (e.g. `/webhook`); merge it into the host's router.
    pub fn router(&self, path: &str) -> Router {
        Router::new()
            .route(path, post(endpoint))
            .layer(DefaultBodyLimit::max(self.inner.body_limit))
            .with_state(self.clone())
    }

    /// The framework-independent core: verifies and parses `body`, dispatches its events, and
    /// returns the status to answer with. The caller enforces the body limit.
    pub async fn handle_request(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let signature =
            headers.get(SIGNATURE_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let channel = match &self.inner.channels {
            Some(channels) => match channels.verify(signature.as_deref(), body) {
                Ok(channel) => Some(channel),
                Err(e) => return e.http_status(),
            },
            None => {
                if let Err(e) = self.inner.secrets.verify(signature.as_deref(), body) {
                    return e.http_status();
                }
                None
            }
        };
        let payload = match parse(body) {
            Ok(p) => p,
            Err(e) => return WebhookError::Parse(e).http_status(),
        };
        self.respond(channel, payload).await
    }

    /// Handles a payload whose signature the caller already verified against this service's
    /// secrets (the webhook hub verifies once for both): claims, dispatches and returns the
    /// status. A service for several channels verifies `headers` and `body` again, to learn
    /// the channel.
    pub(crate) async fn handle_verified(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        payload: super::WebhookPayload,
    ) -> StatusCode {
        if self.inner.channels.is_some() {
            return self.handle_request(headers, body).await;
        }
        self.respond(None, payload).await
    }

    async fn respond(
        &self,
        channel: Option<crate::line::LineChannel>,
        payload: super::WebhookPayload,
    ) -> StatusCode {
        let destination: Option<Arc<str>> = payload.destination.map(Arc::from);
        // Claims come before the answer: a store that cannot answer must not be answered 200.
        let (deliveries, claimed_all) =
            claim(&self.inner, destination, channel, payload.events).await;
        let store_status =
            if claimed_all { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
        if self.inner.handle_before_responding {
            return if dispatch(&self.inner, deliveries).await && claimed_all {
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
        }
        if !deliveries.is_empty() {
            let guard = InFlight::new(Arc::clone(&self.inner));
            // One task per payload keeps the payload's events in order.
            tokio::spawn(async move {
                dispatch(&guard.0, deliveries).await;
            });
        }
        if self.inner.deliver_when_dedup_fails { StatusCode::OK } else { store_status }
    }

    /// Background tasks still handling events.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        *self.inner.in_flight.borrow()
    }

    /// Waits until no background task is handling events (call it after the server stopped
    /// accepting requests, for a graceful shutdown).
    pub async fn drain(&self) {
        let mut rx = self.inner.in_flight.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

async fn endpoint(
    State(service): State<WebhookService>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    service.handle_request(&headers, &body).await
}

/// Claims the events in order. Stops at the first claim the store cannot answer (unless the
/// service delivers anyway): that event and the ones after it are left for LINE's redelivery.
/// Returns the events to deliver and whether every claim was answered.
async fn claim(
    inner: &Inner,
    destination: Option<Arc<str>>,
    channel: Option<crate::line::LineChannel>,
    events: Vec<Event>,
) -> (Vec<Delivery>, bool) {
    let mut deliveries = Vec::with_capacity(events.len());
    let mut ok = true;
    for event in events {
        let dedup = match (&inner.dedup, &event.webhook_event_id) {
            (None, _) => DedupStatus::NotConfigured,
            (Some(_), None) => DedupStatus::NoEventId,
            (Some(store), Some(id)) => match store.claim(id, chrono::Utc::now()).await {
                Ok(true) => DedupStatus::Claimed,
                Ok(false) => continue,
                Err(e) => {
                    ok = false;
                    if !inner.deliver_when_dedup_fails {
                        break;
                    }
                    DedupStatus::StoreFailed(e)
                }
            },
        };
        deliveries.push(Delivery {
            destination: destination.clone(),
            channel: channel.clone(),
            event,
            dedup,
        });
    }
    (deliveries, ok)
}

/// Handles the claimed events in order; `false` when any handler failed (its claim is then
/// released, so a redelivery is handled again).
async fn dispatch(inner: &Inner, deliveries: Vec<Delivery>) -> bool {
    let mut ok = true;
    for delivery in deliveries {
        let release = match (&delivery.dedup, &inner.dedup) {
            (DedupStatus::Claimed, Some(store)) => {
                delivery.event.webhook_event_id.clone().map(|id| (Arc::clone(store), id))
            }
            _ => None,
        };
        if inner.handler.handle(delivery).await.is_err() {
            ok = false;
            if let Some((store, id)) = release {
                // If this fails too, the event stays claimed: a redelivery is then skipped,
                // which the store's error already made unavoidable.
                let _ = store.release(&id).await;
            }
        }
    }
    ok
}
