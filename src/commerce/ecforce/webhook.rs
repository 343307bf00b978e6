//! ecforce webhooks (features `ecforce` + `axum`), taken as hints.
//!
//! ecforce calls a URL on events, naming the event in the `x-ecf-event` header. The body is
//! whatever the shop wrote in its Liquid template and carries no signature, so nothing in it is
//! trusted: the receiver only takes the record's ID from it, re-reads that record through the
//! API ([`RecordFetcher`]) and upserts it into the same [`SyncSink`] the poll
//! [`Syncer`](crate::commerce::sync::Syncer) fills. Who may call is decided by a secret in the
//! URL (compared in constant time). A hint that fails is counted and reported, never retried
//! here: the next poll sync reads the record anyway.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::routing::post;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use rand::Rng as _;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use super::fetch::RecordFetcher;
use crate::commerce::error::{BoxError, CommerceError};
use crate::commerce::sync::{SyncResource, SyncSink};

/// The header ecforce names the event in.
pub const ECFORCE_EVENT_HEADER: &str = "x-ecf-event";

/// The default largest accepted body: 64 KiB (a templated hint is a few hundred bytes).
pub const DEFAULT_ECFORCE_HOOK_BODY_LIMIT: usize = 64 * 1024;

/// The default number of hints waiting for their re-fetch.
pub const DEFAULT_ECFORCE_HOOK_QUEUE: usize = 1024;

/// Distinct unknown event names remembered in [`EcforceWebhookStats::unknown_topics`]; later
/// ones are counted under `"(other)"`.
const MAX_TOPIC_NAMES: usize = 64;

macro_rules! events {
    ($($variant:ident => $name:literal, $resource:ident, $doc:literal;)*) => {
        /// An ecforce webhook event (the `x-ecf-event` header).
        ///
        /// The known names are ecforce's published list (support.ec-force.com, 「Webhook
        /// 通知のイベント一覧」) plus the product events SUPER STUDIO's headless demo handles.
        /// Any other name is kept as [`Unknown`](Self::Unknown); its resource is then guessed
        /// from the prefix (`subs_order_`, `order_`, `customer_`, `product_`), so unpublished
        /// events such as a subscription suspension are still re-fetched.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum EcforceEvent {
            $(#[doc = $doc] $variant,)*
            /// An event name not in the list (kept as sent, trimmed and lower-cased).
            Unknown(String),
        }

        impl EcforceEvent {
            /// The event for a header value (trimmed, ASCII lower-cased).
            #[must_use]
            pub fn parse(name: &str) -> Self {
                let name = name.trim().to_ascii_lowercase();
                match name.as_str() {
                    $($name => Self::$variant,)*
                    _ => Self::Unknown(name),
                }
            }

            /// The event's name as ecforce sends it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Unknown(name) => name,
                }
            }

            fn known_resource(&self) -> Option<SyncResource> {
                match self {
                    $(Self::$variant => Some(SyncResource::$resource),)*
                    Self::Unknown(_) => None,
                }
            }
        }
    };
}

events! {
    CustomerCreated => "customer_created", Customers, "`customer_created` (deprecated by ecforce).";
    CustomerUpdated => "customer_updated", Customers, "`customer_updated` (deprecated by ecforce).";
    CustomerMember => "customer_member", Customers, "`customer_member`: became a member (会員).";
    CustomerCancel => "customer_cancel", Customers, "`customer_cancel`: withdrew (退会).";
    CustomerDestroyed => "customer_destroyed", Customers, "`customer_destroyed`: deleted.";
    OrderCreated => "order_created", Orders, "`order_created` (deprecated by ecforce).";
    OrderUpdated => "order_updated", Orders, "`order_updated` (deprecated by ecforce).";
    OrderCompleted => "order_completed", Orders, "`order_completed`: the order is fully created.";
    OrderComplete => "order_complete", Orders, "`order_complete`: order confirmed (注文確定).";
    OrderShipped => "order_shipped", Orders, "`order_shipped`: shipped.";
    OrderDelivered => "order_delivered", Orders, "`order_delivered`: delivered.";
    OrderCanceled => "order_canceled", Orders, "`order_canceled`: canceled.";
    SubsOrderCreated => "subs_order_created", Subscriptions, "`subs_order_created` (deprecated by ecforce).";
    SubsOrderUpdated => "subs_order_updated", Subscriptions, "`subs_order_updated` (deprecated by ecforce).";
    SubsOrderActive => "subs_order_active", Subscriptions, "`subs_order_active`: the subscription became active.";
    ProductCreated => "product_created", Products, "`product_created`.";
    ProductUpdated => "product_updated", Products, "`product_updated`.";
    ProductDestroyed => "product_destroyed", Products, "`product_destroyed`.";
}

impl EcforceEvent {
    /// Whether the name is one of the published events.
    #[must_use]
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// The resource whose record the event is about: fixed for known events, guessed from the
    /// name's prefix for unknown ones, `None` when it cannot be told.
    #[must_use]
    pub fn resource(&self) -> Option<SyncResource> {
        self.known_resource().or_else(|| {
            let name = self.as_str();
            // Longest prefix first, should names ever overlap.
            [
                ("subs_order_", SyncResource::Subscriptions),
                ("order_", SyncResource::Orders),
                ("customer_", SyncResource::Customers),
                ("product_", SyncResource::Products),
            ]
            .into_iter()
            .find_map(|(prefix, resource)| name.starts_with(prefix).then_some(resource))
        })
    }
}

impl fmt::Display for EcforceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a webhook secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EcforceWebhookSecretError {
    /// Shorter than [`EcforceWebhookSecret::MIN_LEN`].
    #[error("the webhook secret has {len} characters; at least {min} are needed")]
    TooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// It holds a character that is not URL-safe (`A-Z a-z 0-9 - . _ ~`).
    #[error(
        "the webhook secret has a character at position {position} that is not URL-safe (A-Z a-z 0-9 - . _ ~)"
    )]
    NotUrlSafe {
        /// The character's position (0-based; the character itself is not shown).
        position: usize,
    },
}

/// The secret in the webhook URL (`…/ecforce/<secret>` or `…?secret=<secret>`): whoever knows
/// it may send hints. Never shown by `Debug`.
#[derive(Clone)]
pub struct EcforceWebhookSecret(String);

impl fmt::Debug for EcforceWebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcforceWebhookSecret(<redacted>)")
    }
}

impl EcforceWebhookSecret {
    /// The shortest secret accepted.
    pub const MIN_LEN: usize = 16;

    /// A secret chosen by the host.
    ///
    /// # Errors
    /// When it is shorter than [`MIN_LEN`](Self::MIN_LEN) or not URL-safe.
    pub fn new(secret: impl Into<String>) -> Result<Self, EcforceWebhookSecretError> {
        let secret = secret.into();
        if let Some(position) = secret
            .chars()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        {
            return Err(EcforceWebhookSecretError::NotUrlSafe { position });
        }
        if secret.len() < Self::MIN_LEN {
            return Err(EcforceWebhookSecretError::TooShort {
                len: secret.len(),
                min: Self::MIN_LEN,
            });
        }
        Ok(Self(secret))
    }

    /// A fresh random secret (32 letters and digits), to print once and put in ecforce's
    /// webhook URL.
    #[must_use]
    pub fn generate() -> Self {
        let secret: String =
            rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
        Self(secret)
    }

    /// The secret, to build the URL given to ecforce.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where in a shop-written body the record's ID is looked for.
///
/// A JSON body is searched with JSON pointers in order; `{resource}` in a pointer stands for
/// the event's resource key (`customer`, `order`, `subs_order`, `product`). A form-encoded body
/// is searched by key. A body that is neither (a template that renders broken JSON) is scanned
/// for `"<key>": <id>` with the pointers' last segments. The first value that looks like an ID
/// (1–64 of `A-Z a-z 0-9 - _`, or an integer) wins. Taking a wrong ID is harmless: the record is
/// re-read, never trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintIdExtractor {
    pointers: Vec<String>,
    form_keys: Vec<String>,
}

impl Default for HintIdExtractor {
    /// `/id`, `/data/id`, `/{resource}/id`, `/data/attributes/id`, `/{resource}_id`; form keys
    /// `id`, `{resource}[id]`, `{resource}_id`.
    fn default() -> Self {
        Self {
            pointers: [
                "/id",
                "/data/id",
                "/{resource}/id",
                "/data/attributes/id",
                "/{resource}_id",
            ]
            .map(String::from)
            .to_vec(),
            form_keys: ["id", "{resource}[id]", "{resource}_id"].map(String::from).to_vec(),
        }
    }
}

fn resource_key(resource: SyncResource) -> &'static str {
    match resource {
        SyncResource::Customers => "customer",
        SyncResource::Orders => "order",
        SyncResource::Subscriptions => "subs_order",
        SyncResource::Products => "product",
    }
}

fn valid_id(id: &str) -> Option<String> {
    let id = id.trim();
    let ok = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| id.to_owned())
}

fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => valid_id(s),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

impl HintIdExtractor {
    /// An extractor with these JSON pointers (each starting with `/`) and form keys.
    pub fn new(
        pointers: impl IntoIterator<Item = impl Into<String>>,
        form_keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            pointers: pointers.into_iter().map(Into::into).collect(),
            form_keys: form_keys.into_iter().map(Into::into).collect(),
        }
    }

    /// The record ID in `body` for an event about `resource`, if one can be found.
    #[must_use]
    pub fn extract(&self, resource: SyncResource, body: &[u8]) -> Option<String> {
        let key = resource_key(resource);
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            return self
                .pointers
                .iter()
                .find_map(|p| json.pointer(&p.replace("{resource}", key)).and_then(id_of));
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if !text.starts_with(['{', '[']) && text.contains('=') {
            let pairs: Vec<(String, String)> =
                url::form_urlencoded::parse(text.as_bytes()).into_owned().collect();
            return self.form_keys.iter().find_map(|k| {
                let k = k.replace("{resource}", key);
                pairs.iter().find(|(name, _)| *name == k).and_then(|(_, v)| valid_id(v))
            });
        }
        self.pointers.iter().find_map(|p| {
            let last = p.rsplit('/').next()?.replace("{resource}", key);
            scan(text, &last.replace("~1", "/").replace("~0", "~"))
        })
    }

    fn check(&self) -> Result<(), EcforceWebhookBuildError> {
        match self.pointers.iter().find(|p| !p.starts_with('/')) {
            Some(p) => Err(EcforceWebhookBuildError::Pointer(p.clone())),
            None => Ok(()),
        }
    }
}

/// `"key"` followed by `:` and an ID, in text that is not valid JSON.
fn scan(text: &str, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(at) = text[from..].find(&needle) {
        let rest = text[from + at + needle.len()..].trim_start();
        from += at + needle.len();
        let Some(rest) = rest.strip_prefix(':') else { continue };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if let Some(id) = valid_id(&rest[..end]) {
            return Some(id);
        }
    }
    None
}

/// Why an [`EcforceWebhook`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EcforceWebhookBuildError {
    /// An ID pointer does not start with `/`.
    #[error("the ID pointer {0:?} must start with `/` (a JSON pointer such as `/data/id`)")]
    Pointer(String),
    /// The body limit is 0.
    #[error("the body limit must be at least 1 byte")]
    BodyLimit,
    /// The queue size is 0.
    #[error("the hint queue must hold at least 1 hint")]
    Queue,
    /// The query parameter name is empty.
    #[error("the secret's query parameter name is empty")]
    QueryParam,
}

/// Counters of an [`EcforceWebhook`] since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EcforceWebhookStats {
    /// Requests with the right secret and a body within the limit.
    pub received: u64,
    /// Hints whose record was re-read and stored.
    pub applied: u64,
    /// Requests naming an event not in ecforce's published list (still re-fetched when the
    /// resource can be told from the name).
    pub unknown_topic: u64,
    /// Requests with a missing or wrong secret (answered 404, body not read).
    pub rejected_secret: u64,
    /// Requests whose body was over the limit (answered 413).
    pub too_large: u64,
    /// Re-reads that failed (transport, auth, rate limit, decode); the next poll sync reads
    /// the record.
    pub fetch_failed: u64,
    /// Re-reads that found no record (deleted, or a wrong ID in the template).
    pub not_found: u64,
    /// Requests whose body held no recognisable ID.
    pub no_id: u64,
    /// Requests whose resource could not be told from the event name (kept, not fetched).
    pub no_resource: u64,
    /// Hints refused because the queue was full (answered 503).
    pub queue_full: u64,
    /// Hints merged into one already waiting for the same record.
    pub coalesced: u64,
    /// Hints not stored because the resource was never synced (the first sync reads it).
    pub deferred: u64,
    /// Re-read records the sink failed to store.
    pub sink_failed: u64,
    /// How often each unknown event name was seen (up to 64 names; the rest under `"(other)"`).
    pub unknown_topics: BTreeMap<String, u64>,
}

/// What became of one hint, as reported to [`EcforceWebhookBuilder::on_outcome`].
#[derive(Debug)]
#[non_exhaustive]
pub enum HintOutcome {
    /// The record was re-read and stored.
    Applied,
    /// The resource was never synced, so nothing was stored (the first sync reads it).
    Deferred,
    /// The event name tells no resource.
    NoResource,
    /// The body held no recognisable ID.
    NoId,
    /// Merged into a hint already waiting for the same record.
    Coalesced,
    /// Refused: the queue was full (answered 503).
    QueueFull,
    /// The backend has no such record.
    NotFound,
    /// The re-read failed.
    FetchFailed(CommerceError),
    /// The sink failed to store the record.
    SinkFailed(BoxError),
}

/// One hint and what became of it.
#[derive(Debug)]
#[non_exhaustive]
pub struct HintReport {
    /// The event named in the header.
    pub event: EcforceEvent,
    /// The resource the event is about, when it could be told.
    pub resource: Option<SyncResource>,
    /// The record ID found in the body.
    pub id: Option<String>,
    /// What became of it.
    pub outcome: HintOutcome,
}

type Observer = Arc<dyn Fn(&HintReport) + Send + Sync>;

/// Builds an [`EcforceWebhook`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct EcforceWebhookBuilder {
    secret: EcforceWebhookSecret,
    body_limit: usize,
    queue: usize,
    inline: bool,
    extractor: HintIdExtractor,
    query_param: String,
    observer: Option<Observer>,
}

impl fmt::Debug for EcforceWebhookBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcforceWebhookBuilder")
            .field("secret", &self.secret)
            .field("body_limit", &self.body_limit)
            .field("queue", &self.queue)
            .field("inline", &self.inline)
            .field("extractor", &self.extractor)
            .finish_non_exhaustive()
    }
}

impl EcforceWebhookBuilder {
    /// The largest accepted body in bytes (default [`DEFAULT_ECFORCE_HOOK_BODY_LIMIT`]); larger
    /// ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How many hints may wait for their re-fetch (default [`DEFAULT_ECFORCE_HOOK_QUEUE`]);
    /// beyond it a hint is answered 503 and counted in `queue_full`.
    pub fn queue_size(mut self, hints: usize) -> Self {
        self.queue = hints;
        self
    }

    /// By default a hint is answered 200 at once and re-fetched by one background task, in
    /// arrival order (the API client paces requests anyway). With `true` the re-fetch happens
    /// before answering, and a failed re-read or store is answered 503 (for hosts whose
    /// background tasks do not outlive the request).
    pub fn process_inline(mut self, yes: bool) -> Self {
        self.inline = yes;
        self
    }

    /// Where the record ID is looked for in the body (default [`HintIdExtractor::default`]).
    pub fn id_extractor(mut self, extractor: HintIdExtractor) -> Self {
        self.extractor = extractor;
        self
    }

    /// The query parameter that carries the secret on the un-suffixed route (default
    /// `secret`).
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = name.into();
        self
    }

    /// Called with every hint's outcome (on the background task, or before answering when
    /// processing inline): the place to log failures.
    pub fn on_outcome(mut self, observer: impl Fn(&HintReport) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Builds the receiver: hints re-read records through `fetcher` and store them in `sink`
    /// (the sink the poll sync fills). The background task starts with the first hint, on the
    /// Tokio runtime serving the request.
    ///
    /// # Errors
    /// [`EcforceWebhookBuildError`] for a zero limit or queue, an empty query parameter name,
    /// or an ID pointer that does not start with `/`.
    pub fn build(
        self,
        fetcher: Arc<dyn RecordFetcher>,
        sink: Arc<dyn SyncSink>,
    ) -> Result<EcforceWebhook, EcforceWebhookBuildError> {
        self.extractor.check()?;
        if self.body_limit == 0 {
            return Err(EcforceWebhookBuildError::BodyLimit);
        }
        if self.queue == 0 {
            return Err(EcforceWebhookBuildError::Queue);
        }
        if self.query_param.is_empty() {
            return Err(EcforceWebhookBuildError::QueryParam);
        }
        // Only a MAC of the secret under a per-process key is kept: comparing MACs with
        // `verify_slice` is constant-time and tells nothing about the secret's length.
        let mut key = [0u8; 64];
        rand::rng().fill(&mut key[..]);
        let tag = mac(&key, self.secret.expose()).finalize().into_bytes().to_vec();
        let (tx, rx) = mpsc::channel(self.queue);
        let (in_flight, _) = watch::channel(0usize);
        let core = Arc::new(Core {
            fetcher,
            sink,
            stats: Mutex::default(),
            pending: Mutex::default(),
            in_flight,
            observer: self.observer,
        });
        Ok(EcforceWebhook {
            inner: Arc::new(Inner {
                key,
                tag,
                body_limit: self.body_limit,
                inline: self.inline,
                extractor: self.extractor,
                query_param: self.query_param,
                tx,
                rx: Mutex::new(Some(rx)),
                core,
            }),
        })
    }
}

fn mac(key: &[u8; 64], data: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*key).into());
    mac.update(data.as_bytes());
    mac
}

/// An ecforce webhook receiver: secret check, body limit, ID extraction, then a re-read by ID
/// through the API stored in the sync sink.
///
/// Answers (never with a body): 200 for an accepted hint (also when it names an unknown event
/// or holds no ID: those are counted, and retrying would not help), 404 for a missing or wrong
/// secret, 413 for a body over the limit, 503 when the queue is full (or, processing inline,
/// when the re-read or store failed). Cheap to clone.
///
/// ```no_run
/// use std::sync::Arc;
/// use enishi::commerce::sync::Dataset;
/// use enishi::commerce::{EcforceClient, EcforceWebhook, EcforceWebhookSecret};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let shop = EcforceClient::builder("https://shop.example.com", "api-token").build()?;
/// let dataset = Arc::new(Dataset::new());
/// let secret = EcforceWebhookSecret::new(std::env::var("ECFORCE_WEBHOOK_SECRET")?)?;
/// let hooks = EcforceWebhook::builder(secret).build(Arc::new(shop), dataset.clone())?;
/// // ecforce's webhook URL: https://example.com/hooks/ecforce/<secret>
/// let app = hooks.router("/hooks/ecforce");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// hooks.drain().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EcforceWebhook {
    inner: Arc<Inner>,
}

struct Inner {
    key: [u8; 64],
    tag: Vec<u8>,
    body_limit: usize,
    inline: bool,
    extractor: HintIdExtractor,
    query_param: String,
    tx: mpsc::Sender<Hint>,
    /// Taken by the first hint, which starts the background task.
    rx: Mutex<Option<mpsc::Receiver<Hint>>>,
    core: Arc<Core>,
}

/// What the background task needs (not the sender: dropping the last receiver handle ends
/// the task).
struct Core {
    fetcher: Arc<dyn RecordFetcher>,
    sink: Arc<dyn SyncSink>,
    stats: Mutex<EcforceWebhookStats>,
    pending: Mutex<HashSet<(SyncResource, String)>>,
    in_flight: watch::Sender<usize>,
    observer: Option<Observer>,
}

struct Hint {
    event: EcforceEvent,
    resource: SyncResource,
    id: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for EcforceWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcforceWebhook")
            .field("secret", &"<redacted>")
            .field("body_limit", &self.inner.body_limit)
            .field("inline", &self.inner.inline)
            .field("fetcher", &self.inner.core.fetcher)
            .finish_non_exhaustive()
    }
}

/// Counts a hint in flight until dropped (also when a fetcher panics).
struct InFlight<'a>(&'a watch::Sender<usize>);

impl<'a> InFlight<'a> {
    fn new(counter: &'a watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Core {
    fn count(&self, f: impl FnOnce(&mut EcforceWebhookStats)) {
        f(&mut lock(&self.stats));
    }

    fn report(
        &self,
        event: EcforceEvent,
        resource: Option<SyncResource>,
        id: Option<String>,
        outcome: HintOutcome,
    ) {
        self.count(|s| match &outcome {
            HintOutcome::Applied => s.applied += 1,
            HintOutcome::Deferred => s.deferred += 1,
            HintOutcome::NoResource => s.no_resource += 1,
            HintOutcome::NoId => s.no_id += 1,
            HintOutcome::Coalesced => s.coalesced += 1,
            HintOutcome::QueueFull => s.queue_full += 1,
            HintOutcome::NotFound => s.not_found += 1,
            HintOutcome::FetchFailed(_) => s.fetch_failed += 1,
            HintOutcome::SinkFailed(_) => s.sink_failed += 1,
        });
        if let Some(observer) = &self.observer {
            observer(&HintReport { event, resource, id, outcome });
        }
    }

    /// Re-reads the record and stores it under the sink's current cursor, so the poll sync's
    /// position is kept (a concurrent sync may see it step back: it then re-reads a little,
    /// and upserts by ID make that harmless).
    async fn process(&self, hint: &Hint) -> HintOutcome {
        let batch = match self.fetcher.fetch(hint.resource, &hint.id).await {
            Ok(batch) => batch,
            Err(CommerceError::NotFound { .. }) => return HintOutcome::NotFound,
            Err(e) => return HintOutcome::FetchFailed(e),
        };
        match self.sink.cursor(hint.resource).await {
            Ok(Some(cursor)) => match self.sink.apply(batch, cursor).await {
                Ok(()) => HintOutcome::Applied,
                Err(e) => HintOutcome::SinkFailed(e),
            },
            // Storing would need a cursor, and any cursor would make the first sync skip
            // what lies before it.
            Ok(None) => HintOutcome::Deferred,
            Err(e) => HintOutcome::SinkFailed(e),
        }
    }
}

async fn worker(core: Arc<Core>, mut rx: mpsc::Receiver<Hint>) {
    while let Some(hint) = rx.recv().await {
        // The hint's count was taken when it was queued; this guard gives it back.
        let _done = InFlight(&core.in_flight);
        // Leave the pending set before reading, so a hint arriving during the read queues a
        // new read (this one may see the record before that change).
        lock(&core.pending).remove(&(hint.resource, hint.id.clone()));
        let outcome = core.process(&hint).await;
        core.report(hint.event, Some(hint.resource), Some(hint.id), outcome);
    }
}

impl EcforceWebhook {
    /// Starts a builder with the URL secret.
    pub fn builder(secret: EcforceWebhookSecret) -> EcforceWebhookBuilder {
        EcforceWebhookBuilder {
            secret,
            body_limit: DEFAULT_ECFORCE_HOOK_BODY_LIMIT,
            queue: DEFAULT_ECFORCE_HOOK_QUEUE,
            inline: false,
            extractor: HintIdExtractor::default(),
            query_param: "secret".into(),
            observer: None,
        }
    }

    /// A router answering `POST <path>/<secret>` and `POST <path>?secret=<secret>` (e.g.
    /// `/hooks/ecforce`); merge it into the host's router.
    ///
    /// # Panics
    /// When `path` holds characters axum cannot route (such as `{` or `*`).
    pub fn router(&self, path: &str) -> Router {
        let base = path.trim_end_matches('/');
        let base = if base.starts_with('/') || base.is_empty() {
            base.to_owned()
        } else {
            format!("/{base}")
        };
        let plain = if base.is_empty() { "/".to_owned() } else { base.clone() };
        Router::new()
            .route(&format!("{base}/{{secret}}"), post(by_path))
            .route(&plain, post(by_query))
            .with_state(self.clone())
    }

    fn secret_matches(&self, presented: Option<&str>) -> bool {
        let Some(presented) = presented else { return false };
        mac(&self.inner.key, presented).verify_slice(&self.inner.tag).is_ok()
    }

    /// The framework-independent core: checks the secret (as found in the URL), the body's
    /// size, and takes the hint. Returns the status to answer with.
    pub async fn handle_request(
        &self,
        secret: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> StatusCode {
        if !self.secret_matches(secret) {
            self.inner.core.count(|s| s.rejected_secret += 1);
            return StatusCode::NOT_FOUND;
        }
        if body.len() > self.inner.body_limit {
            self.inner.core.count(|s| s.too_large += 1);
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        self.take(headers, body).await
    }

    async fn take(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let core = &self.inner.core;
        let name = headers
            .get(ECFORCE_EVENT_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let event = EcforceEvent::parse(&name);
        core.count(|s| {
            s.received += 1;
            if let EcforceEvent::Unknown(name) = &event {
                s.unknown_topic += 1;
                let name: String = name.chars().take(64).collect();
                let key = if s.unknown_topics.len() < MAX_TOPIC_NAMES
                    || s.unknown_topics.contains_key(&name)
                {
                    name
                } else {
                    "(other)".to_owned()
                };
                *s.unknown_topics.entry(key).or_default() += 1;
            }
        });
        let Some(resource) = event.resource() else {
            core.report(event, None, None, HintOutcome::NoResource);
            return StatusCode::OK;
        };
        let Some(id) = self.inner.extractor.extract(resource, body) else {
            core.report(event, Some(resource), None, HintOutcome::NoId);
            return StatusCode::OK;
        };
        let hint = Hint { event, resource, id };
        if self.inner.inline {
            let _guard = InFlight::new(&core.in_flight);
            let outcome = core.process(&hint).await;
            let status = match outcome {
                HintOutcome::FetchFailed(_) | HintOutcome::SinkFailed(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::OK,
            };
            core.report(hint.event, Some(resource), Some(hint.id), outcome);
            return status;
        }
        self.enqueue(hint)
    }

    fn enqueue(&self, hint: Hint) -> StatusCode {
        let core = &self.inner.core;
        let key = (hint.resource, hint.id.clone());
        if !lock(&core.pending).insert(key.clone()) {
            core.report(hint.event, Some(hint.resource), Some(hint.id), HintOutcome::Coalesced);
            return StatusCode::OK;
        }
        if let Some(rx) = lock(&self.inner.rx).take() {
            tokio::spawn(worker(Arc::clone(core), rx));
        }
        core.in_flight.send_modify(|n| *n += 1);
        match self.inner.tx.try_send(hint) {
            Ok(()) => StatusCode::OK,
            // Full, or the task is gone (a fetcher panicked): ecforce may send it again.
            Err(e) => {
                core.in_flight.send_modify(|n| *n = n.saturating_sub(1));
                lock(&core.pending).remove(&key);
                let hint = e.into_inner();
                core.report(hint.event, Some(hint.resource), Some(hint.id), HintOutcome::QueueFull);
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> EcforceWebhookStats {
        lock(&self.inner.core.stats).clone()
    }

    /// Hints queued or being re-read.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        *self.inner.core.in_flight.borrow()
    }

    /// Waits until every queued hint has been processed (for tests, and a graceful shutdown
    /// after the server stopped accepting requests).
    pub async fn drain(&self) {
        let mut rx = self.inner.core.in_flight.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

async fn by_path(
    State(hook): State<EcforceWebhook>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    hook.limited(Some(&secret), &headers, body).await
}

async fn by_query(
    State(hook): State<EcforceWebhook>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    let secret = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| *k == hook.inner.query_param)
            .map(|(_, v)| v.into_owned())
    });
    hook.limited(secret.as_deref(), &headers, body).await
}

impl EcforceWebhook {
    /// The secret first (a wrong one never gets the body read), then the body up to the limit.
    async fn limited(&self, secret: Option<&str>, headers: &HeaderMap, body: Body) -> StatusCode {
        if !self.secret_matches(secret) {
            self.inner.core.count(|s| s.rejected_secret += 1);
            return StatusCode::NOT_FOUND;
        }
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            self.inner.core.count(|s| s.too_large += 1);
            StatusCode::PAYLOAD_TOO_LARGE
        };
        if declared.is_some_and(|n| n > self.inner.body_limit as u64) {
            return too_large();
        }
        match axum::body::to_bytes(body, self.inner.body_limit).await {
            Ok(bytes) => self.take(headers, &bytes).await,
            // Over the limit (a dropped connection gets no answer either way).
            Err(_) => too_large(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecforce_events_parse_known_and_keep_unknown() {
        assert_eq!(EcforceEvent::parse(" Order_Shipped "), EcforceEvent::OrderShipped);
        assert_eq!(
            EcforceEvent::parse("customer_cancel").resource(),
            Some(SyncResource::Customers)
        );
        let suspended = EcforceEvent::parse("subs_order_suspended");
        assert_eq!(suspended, EcforceEvent::Unknown("subs_order_suspended".into()));
        assert_eq!(suspended.resource(), Some(SyncResource::Subscriptions));
        assert_eq!(EcforceEvent::parse("order_paid").resource(), Some(SyncResource::Orders));
        assert_eq!(EcforceEvent::parse("job_finished").resource(), None);
        assert_eq!(EcforceEvent::parse("").resource(), None);
        assert_eq!(EcforceEvent::SubsOrderActive.as_str(), "subs_order_active");
    }

    #[test]
    fn ecforce_hint_ids_come_from_common_shapes() {
        let x = HintIdExtractor::default();
        let orders = SyncResource::Orders;
        assert_eq!(x.extract(orders, br#"{"id":"123","customer_id":"9"}"#).as_deref(), Some("123"));
        assert_eq!(x.extract(orders, br#"{"id": 77}"#).as_deref(), Some("77"));
        assert_eq!(x.extract(orders, br#"{"data":{"id":"5"}}"#).as_deref(), Some("5"));
        assert_eq!(x.extract(orders, br#"{"order":{"id":6}}"#).as_deref(), Some("6"));
        assert_eq!(
            x.extract(SyncResource::Subscriptions, br#"{"subs_order":{"id":" 8 "}}"#).as_deref(),
            Some("8")
        );
        assert_eq!(x.extract(orders, br#"{"order_id":"11"}"#).as_deref(), Some("11"));
        assert_eq!(x.extract(orders, b"id=12&x=y").as_deref(), Some("12"));
        assert_eq!(x.extract(orders, b"order%5Bid%5D=13").as_deref(), Some("13"));
        // A template that renders broken JSON (an unescaped quote in a name).
        assert_eq!(x.extract(orders, br#"{"id":"14","name":"a "b" c"}"#).as_deref(), Some("14"));
        assert_eq!(x.extract(orders, "\u{feff}{\"id\":\"15\"}".as_bytes()).as_deref(), Some("15"));
    }

    #[test]
    fn ecforce_hint_ids_refuse_what_is_not_an_id() {
        let x = HintIdExtractor::default();
        let orders = SyncResource::Orders;
        assert_eq!(x.extract(orders, br#"{"id":""}"#), None);
        assert_eq!(x.extract(orders, br#"{"id":"../admin"}"#), None);
        assert_eq!(x.extract(orders, br#"{"id":-3}"#), None);
        assert_eq!(x.extract(orders, br#"{"id":1.5}"#), None);
        assert_eq!(x.extract(orders, br#"{"name":"x"}"#), None);
        assert_eq!(x.extract(orders, b""), None);
        assert_eq!(x.extract(orders, "x".repeat(65).as_bytes()), None);
    }

    #[test]
    fn ecforce_hint_id_pointers_are_configurable() {
        let x = HintIdExtractor::new(["/payload/{resource}_number"], ["number"]);
        assert_eq!(
            x.extract(SyncResource::Orders, br#"{"id":"1","payload":{"order_number":"42"}}"#)
                .as_deref(),
            Some("42")
        );
        assert_eq!(x.extract(SyncResource::Orders, b"number=43").as_deref(), Some("43"));
        let bad = EcforceWebhook::builder(EcforceWebhookSecret::generate())
            .id_extractor(HintIdExtractor::new(["id"], Vec::<String>::new()));
        assert_eq!(bad.extractor.check(), Err(EcforceWebhookBuildError::Pointer("id".into())));
    }

    #[test]
    fn ecforce_webhook_secrets_are_validated_and_redacted() {
        assert_eq!(
            EcforceWebhookSecret::new("short").unwrap_err(),
            EcforceWebhookSecretError::TooShort { len: 5, min: 16 }
        );
        assert_eq!(
            EcforceWebhookSecret::new("0123456789abcdef/").unwrap_err(),
            EcforceWebhookSecretError::NotUrlSafe { position: 16 }
        );
        let s = EcforceWebhookSecret::new("0123456789abcdef-_.~").unwrap();
        assert!(!format!("{s:?}").contains("0123"));
        let generated = EcforceWebhookSecret::generate();
        assert_eq!(generated.expose().len(), 32);
        assert!(EcforceWebhookSecret::new(generated.expose()).is_ok());
    }
}
