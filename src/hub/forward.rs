//! The hub's configuration and intake: which destinations get which bodies, queued.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::queue::{HubQueue, NewItem, QueueError};
use super::reply::ReplyRules;
use super::worker::HubWorker;
use crate::line::webhook::{
    ChannelSecret, ChannelSecrets, Event, Source, WebhookError, WebhookPayload, parse,
};
use crate::retry::Backoff;

/// The header carrying a forwarded body's idempotency key: the same value on every attempt,
/// and on a resend after a crash.
pub const DELIVERY_ID_HEADER: &str = "x-enishi-delivery-id";

/// Why the hub could not be built or could not take a webhook.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A configuration value was rejected.
    #[error("invalid hub {what} {value:?}: {reason}")]
    InvalidConfig {
        /// What was configured.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// The webhook's signature or body was rejected (answer with [`WebhookError::http_status`]).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The queue could not store the bodies: answer 500 so that LINE redelivers.
    #[error("the hub could not queue the webhook")]
    Queue(#[from] QueueError),
}

/// One downstream tool: where its copy of LINE's webhook goes and how.
#[derive(Clone)]
#[must_use]
pub struct Destination {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) secret: Option<ChannelSecret>,
    pub(crate) events: Option<BTreeSet<String>>,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) timeout: Duration,
    pub(crate) concurrency: usize,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("own_secret", &self.secret.is_some())
            .field("events", &self.events)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Destination {
    /// A destination named `name` (a label for metrics, logs and the queue: `[a-z0-9_-]`,
    /// checked by [`HubBuilder::build`]) receiving POSTs at `url`. By default it gets every
    /// event with LINE's own signature, is tried 10 times with exponential back-off from
    /// 1 second to 5 minutes (equal jitter), 10 seconds per attempt, 8 users at a time.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            secret: None,
            events: None,
            max_attempts: 10,
            backoff: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(300)),
            timeout: Duration::from_secs(10),
            concurrency: 8,
        }
    }

    /// The tool expects its own signature: every body is signed with `secret`.
    pub fn secret(mut self, secret: ChannelSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Forwards only events of these types (`message`, `follow`, `postback`, ...).
    pub fn events<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.events = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Attempts before a body goes to the dead-letter list (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long one attempt may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many users' bodies are in flight at once (at least 1; one user's are always one
    /// at a time, in order).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The destination's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, event: &Event) -> bool {
        self.events.as_ref().is_none_or(|types| types.contains(event.type_str()))
    }
}

/// Builds a [`Hub`].
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct HubBuilder {
    secrets: ChannelSecrets,
    queue: Option<Arc<dyn HubQueue>>,
    destinations: Vec<Destination>,
    rules: ReplyRules,
    lease: Duration,
    poll: Duration,
    http: Option<reqwest::Client>,
}

impl HubBuilder {
    /// The queue (required).
    pub fn queue(mut self, queue: impl HubQueue) -> Self {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// A shared queue.
    pub fn queue_shared(mut self, queue: Arc<dyn HubQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Adds a destination.
    pub fn destination(mut self, destination: Destination) -> Self {
        self.destinations.push(destination);
        self
    }

    /// Who answers which events: a destination that does not own an event gets it without
    /// its `replyToken` (re-signed), so only the owner can reply.
    pub fn reply_rules(mut self, rules: ReplyRules) -> Self {
        self.rules = rules;
        self
    }

    /// How long a worker holds a claimed body before another worker (after a crash) may take
    /// it (default 60 s; keep it above the destinations' timeouts).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The longest a worker sleeps before looking at the queue again (default 1 s); new
    /// webhooks of this process wake it at once.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The HTTP client used to forward (default: rustls, no redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the hub.
    ///
    /// # Errors
    /// [`HubError::InvalidConfig`] for a missing queue, no channel secret, a destination name
    /// outside `[a-z0-9_-]{1,64}` or used twice, a URL that is not `http(s)`, or a lease not
    /// above every destination's timeout.
    pub fn build(self) -> Result<Hub, HubError> {
        let invalid = |what, value: &str, reason| HubError::InvalidConfig {
            what,
            value: value.to_owned(),
            reason,
        };
        let queue = self.queue.ok_or_else(|| invalid("queue", "", "a queue is required"))?;
        let channel_secret = self
            .secrets
            .first()
            .cloned()
            .ok_or_else(|| invalid("channel secret", "", "at least one is required"))?;
        let mut names = BTreeSet::new();
        let mut destinations = Vec::new();
        for d in self.destinations {
            let ok_name = (1..=64).contains(&d.name.len())
                && d.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok_name {
                return Err(invalid("destination name", &d.name, "expected 1 to 64 of [a-z0-9_-]"));
            }
            if !names.insert(d.name.clone()) {
                return Err(invalid("destination name", &d.name, "used twice"));
            }
            let url = url::Url::parse(&d.url)
                .map_err(|_| invalid("destination URL", &d.url, "not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("destination URL", &d.url, "expected http or https"));
            }
            if self.lease <= d.timeout {
                return Err(invalid(
                    "lease",
                    &d.name,
                    "must be longer than the destination's timeout",
                ));
            }
            destinations.push(Arc::new(d));
        }
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|_| invalid("HTTP client", "", "could not be built"))?,
        };
        let wake = destinations.iter().map(|_| Arc::new(Notify::new())).collect();
        Ok(Hub {
            inner: Arc::new(HubInner {
                secrets: self.secrets,
                channel_secret,
                queue,
                destinations,
                wake,
                rules: self.rules,
                lease: self.lease,
                poll: self.poll,
                http,
            }),
        })
    }
}

pub(crate) struct HubInner {
    pub(crate) secrets: ChannelSecrets,
    pub(crate) channel_secret: ChannelSecret,
    pub(crate) queue: Arc<dyn HubQueue>,
    pub(crate) destinations: Vec<Arc<Destination>>,
    pub(crate) wake: Vec<Arc<Notify>>,
    pub(crate) rules: ReplyRules,
    pub(crate) lease: Duration,
    pub(crate) poll: Duration,
    pub(crate) http: reqwest::Client,
}

/// The webhook hub: takes LINE's webhook once and queues a copy for every destination.
/// Cheap to clone. [`Hub::spawn`] starts the workers that deliver the queues.
///
/// ```
/// use enishi::hub::{Destination, Hub, MemoryHubQueue};
/// use enishi::line::webhook::ChannelSecret;
///
/// let hub = Hub::builder(ChannelSecret::new("channel-secret"))
///     .queue(MemoryHubQueue::new())
///     .destination(Destination::new("lstep", "https://lstep.example/webhook"))
///     .destination(
///         Destination::new("karte", "https://karte.example/line")
///             .secret(ChannelSecret::new("karte-secret"))
///             .events(["message", "follow"]),
///     )
///     .build()?;
/// assert_eq!(hub.destinations().count(), 2);
/// # Ok::<(), enishi::hub::HubError>(())
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("destinations", &self.inner.destinations)
            .field("queue", &self.inner.queue)
            .field("rules", &self.inner.rules)
            .field("lease", &self.inner.lease)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts a builder with the channel's accepted secret(s) (the first one re-signs).
    pub fn builder(secrets: impl Into<ChannelSecrets>) -> HubBuilder {
        HubBuilder {
            secrets: secrets.into(),
            queue: None,
            destinations: Vec::new(),
            rules: ReplyRules::default(),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            http: None,
        }
    }

    /// The destinations, in the order given.
    pub fn destinations(&self) -> impl Iterator<Item = &Destination> {
        self.inner.destinations.iter().map(|d| &**d)
    }

    /// The queue.
    #[must_use]
    pub fn queue(&self) -> &Arc<dyn HubQueue> {
        &self.inner.queue
    }

    /// The reply rules.
    #[must_use]
    pub fn reply_rules(&self) -> &ReplyRules {
        &self.inner.rules
    }

    /// Verifies `body` against its `x-line-signature`, parses it and queues it for every
    /// destination (see [`Hub::forward`]). Returns the payload, for enishi's own handling.
    ///
    /// # Errors
    /// [`HubError::Webhook`] for a bad signature or body (nothing is queued);
    /// [`HubError::Queue`] when the queue failed (answer 500: LINE redelivers, and what was
    /// queued is not queued twice).
    pub async fn accept(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookPayload, HubError> {
        self.inner.secrets.verify(signature_header, body)?;
        let payload = parse(body).map_err(WebhookError::Parse)?;
        self.forward(signature_header, body, &payload, Utc::now()).await?;
        Ok(payload)
    }

    /// Queues an already verified `body` (its parsed `payload`) for every destination whose
    /// filter matches some of its events, and wakes the workers. Returns how many bodies were
    /// queued (a redelivered payload queues none).
    ///
    /// # Errors
    /// [`HubError::Queue`] when the queue failed: nothing was queued.
    pub async fn forward(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        payload: &WebhookPayload,
        now: DateTime<Utc>,
    ) -> Result<u64, HubError> {
        let items = self.items(signature_header, body, payload);
        if items.is_empty() {
            return Ok(0);
        }
        let added = self.inner.queue.enqueue(&items, now).await?;
        for (d, wake) in self.inner.destinations.iter().zip(&self.inner.wake) {
            if items.iter().any(|i| i.destination == d.name) {
                wake.notify_one();
            }
        }
        tracing::debug!(target: "enishi::hub", queued = added, bodies = items.len(), "webhook queued");
        Ok(added)
    }

    /// The bodies to queue: per destination, the matching events grouped by user; LINE's
    /// body and signature unchanged when nothing was cut.
    fn items(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        payload: &WebhookPayload,
    ) -> Vec<NewItem> {
        let mut items = Vec::new();
        for d in &self.inner.destinations {
            let mut groups: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
            let mut cut = false;
            for event in &payload.events {
                if !d.accepts(event) {
                    cut = true;
                    continue;
                }
                let user = user_key(event);
                let raw = match self.inner.rules.strip_for(&d.name, event) {
                    Some(stripped) => {
                        cut = true;
                        stripped
                    }
                    None => event.raw_json().to_owned(),
                };
                let id = event_key(event);
                match groups.iter_mut().find(|g| g.0 == user) {
                    Some(g) => {
                        g.1.push(raw);
                        g.2.push(id);
                    }
                    None => groups.push((user, vec![raw], vec![id])),
                }
            }
            let intact = !cut && groups.len() == 1;
            for (user, raws, ids) in groups {
                let key = hex(&Sha256::digest(ids.join("\n").as_bytes()));
                let (bytes, signature) = if intact {
                    let signature =
                        if d.secret.is_none() { signature_header.map(str::to_owned) } else { None };
                    (body.to_vec(), signature)
                } else {
                    (rebuild(payload.destination.as_deref(), &raws), None)
                };
                items.push(NewItem::new(d.name.clone(), key, user, bytes, signature));
            }
        }
        items
    }

    /// Starts one worker task per destination, delivering the queues. Dropping the returned
    /// handle stops the workers at once, as a crash would; [`HubWorker::shutdown`] lets the
    /// bodies in flight finish. Must be called inside a tokio runtime.
    pub fn spawn(&self) -> HubWorker {
        HubWorker::spawn(Arc::clone(&self.inner))
    }
}

/// The ordering key: one LINE chat (user, group or room).
fn user_key(event: &Event) -> String {
    match &event.source {
        Some(Source::User { user_id }) => format!("user:{}", user_id.as_deref().unwrap_or("")),
        Some(Source::Group { group_id, .. }) => format!("group:{group_id}"),
        Some(Source::Room { room_id, .. }) => format!("room:{room_id}"),
        Some(other) => format!("{}:{}", other.type_str(), other.user_id().unwrap_or("")),
        None => "none".to_owned(),
    }
}

/// What identifies an event across LINE's redeliveries: its `webhookEventId`, else its JSON.
fn event_key(event: &Event) -> String {
    match &event.webhook_event_id {
        Some(id) => id.as_str().to_owned(),
        None => hex(&Sha256::digest(event.raw_json().as_bytes())),
    }
}

/// A webhook body of `events` (their exact JSON), for `destination`.
fn rebuild(destination: Option<&str>, events: &[String]) -> Vec<u8> {
    let destination =
        serde_json::to_string(destination.unwrap_or("")).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = format!("{{\"destination\":{destination},\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push_str("]}");
    out.into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
