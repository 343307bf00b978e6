//! Shared server state, the per-request prologue, and the recorded data exposed to tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::config::{FakeQuota, FakeRateLimit, FakeUser, Faults};
use super::endpoint::{Endpoint, FakeEndpointClass};
use super::faults::{self, Bucket, Failure};
use super::respond;
use super::validate;

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the server).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The request ID given to the request being handled (also sent as `x-line-request-id`).
#[derive(Debug, Clone)]
pub(crate) struct ReqId(pub(crate) Arc<str>);

/// One message delivery recorded by the fake: what one recipient received from one request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedDelivery {
    /// The endpoint that sent it.
    pub endpoint: Endpoint,
    /// The recipient: a user ID (or a group/room ID for a push to a chat).
    pub to: String,
    /// The message objects as the client sent them.
    pub messages: Arc<[Value]>,
    /// The `x-line-request-id` of the request that was accepted.
    pub request_id: String,
    /// The `X-Line-Retry-Key` the request carried, if any.
    pub retry_key: Option<String>,
    /// `notificationDisabled` as sent.
    pub notification_disabled: bool,
    /// The `customAggregationUnits` name the request was tagged with, if any.
    pub aggregation_unit: Option<String>,
    /// When the fake accepted the request.
    pub at: DateTime<Utc>,
}

/// A link token issued by `POST /v2/bot/user/{userId}/linkToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedLinkToken {
    /// The user it was issued for.
    pub user_id: String,
    /// The token.
    pub link_token: String,
    /// When it was issued.
    pub at: DateTime<Utc>,
}

/// A snapshot of the fake's response counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counters {
    /// Requests received (all endpoints, including unknown paths).
    pub requests: u64,
    /// Requests to paths the fake does not serve (answered 404 or 405).
    pub unmatched: u64,
    /// 401 responses.
    pub unauthorized: u64,
    /// 400 responses.
    pub bad_requests: u64,
    /// 409 responses (retry key already accepted).
    pub conflicts: u64,
    /// 429 responses with the rate-limit message (real or injected).
    pub rate_limited: u64,
    /// 429 responses with the monthly-limit message.
    pub quota_exceeded: u64,
    /// 500 responses (injected).
    pub server_errors: u64,
    /// Connections closed without a response (injected).
    pub dropped: u64,
    /// Requests delayed by an injected slow response.
    pub slowed: u64,
}

#[derive(Debug)]
pub(crate) struct Stats {
    per_endpoint: Box<[AtomicU64]>,
    statuses: Box<[AtomicU64]>,
    requests: AtomicU64,
    unmatched: AtomicU64,
    rate_limited: AtomicU64,
    quota_exceeded: AtomicU64,
    dropped: AtomicU64,
    slowed: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        Self {
            per_endpoint: zeros(Endpoint::COUNT),
            statuses: zeros(600),
            requests: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            quota_exceeded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            slowed: AtomicU64::new(0),
        }
    }

    fn reset(&self) {
        let all = self.per_endpoint.iter().chain(self.statuses.iter()).chain([
            &self.requests,
            &self.unmatched,
            &self.rate_limited,
            &self.quota_exceeded,
            &self.dropped,
            &self.slowed,
        ]);
        for counter in all {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn status(&self, status: StatusCode) {
        if let Some(counter) = self.statuses.get(usize::from(status.as_u16())) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn marker(&self, marker: respond::Marker) {
        let counter = match marker {
            respond::Marker::RateLimited => &self.rate_limited,
            respond::Marker::QuotaExceeded => &self.quota_exceeded,
            respond::Marker::Drop => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn status_count(&self, status: u16) -> u64 {
        self.statuses.get(usize::from(status)).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn endpoint_count(&self, endpoint: Endpoint) -> u64 {
        self.per_endpoint[endpoint.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            requests: load(&self.requests),
            unmatched: load(&self.unmatched),
            unauthorized: self.status_count(401),
            bad_requests: self.status_count(400),
            conflicts: self.status_count(409),
            rate_limited: load(&self.rate_limited),
            quota_exceeded: load(&self.quota_exceeded),
            server_errors: self.status_count(500),
            dropped: load(&self.dropped),
            slowed: load(&self.slowed),
        }
    }
}

/// A retry key LINE has accepted.
#[derive(Debug)]
pub(crate) struct AcceptedKey {
    pub(crate) request_id: Arc<str>,
    /// `sentMessages` of an accepted push, repeated in the 409 body.
    pub(crate) sent_messages: Option<Value>,
    pub(crate) at: Instant,
}

/// How long LINE remembers a retry key.
pub(crate) const RETRY_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A narrowcast job.
#[derive(Debug, Clone)]
pub(crate) struct NarrowcastJob {
    pub(crate) target: u64,
    /// `(errorCode, failedDescription)` when the job fails.
    pub(crate) failure: Option<(i64, &'static str)>,
}

/// A broadcast or narrowcast request, kept for progress, redelivery and statistics.
#[derive(Debug, Clone)]
pub(crate) struct SendRecord {
    pub(crate) endpoint: Endpoint,
    pub(crate) accepted_wall: DateTime<Utc>,
    pub(crate) accepted_at: Instant,
    pub(crate) recipients: Arc<[String]>,
    pub(crate) messages: Arc<[Value]>,
    pub(crate) narrowcast: Option<NarrowcastJob>,
}

/// Everything about sending, behind one lock so that checking a retry key, charging the quota
/// and recording deliveries happen atomically.
#[derive(Debug, Default)]
pub(crate) struct Sends {
    pub(crate) quota: FakeQuota,
    pub(crate) used: u64,
    pub(crate) keys: HashMap<String, AcceptedKey>,
    pub(crate) deliveries: Vec<RecordedDelivery>,
    pub(crate) records: HashMap<String, SendRecord>,
    /// Reply token → (user, used).
    pub(crate) reply_tokens: HashMap<String, (String, bool)>,
    pub(crate) next_message_id: u64,
    /// `X-Line-Delivery-Tag` of each accepted PNP request, by request ID.
    pub(crate) pnp_tags: HashMap<String, String>,
    /// Hashed phone numbers that belong to no LINE user: notification messages to them are
    /// refused with 422.
    pub(crate) pnp_not_users: std::collections::HashSet<String>,
}

/// Known users, in registration order.
#[derive(Debug, Default)]
pub(crate) struct Users {
    pub(crate) by_id: HashMap<String, FakeUser>,
    pub(crate) order: Vec<String>,
}

impl Users {
    pub(crate) fn insert(&mut self, user: FakeUser) {
        if !self.by_id.contains_key(&user.user_id) {
            self.order.push(user.user_id.clone());
        }
        self.by_id.insert(user.user_id.clone(), user);
    }

    pub(crate) fn is_blocked(&self, user_id: &str) -> bool {
        self.by_id.get(user_id).is_some_and(|u| u.blocked)
    }

    /// Registered users who have not blocked the account, in registration order.
    pub(crate) fn friends(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str).filter(|id| !self.is_blocked(id))
    }
}

/// A rich menu.
#[derive(Debug, Clone)]
pub(crate) struct Menu {
    /// The rich menu object as created (without `richMenuId`).
    pub(crate) body: serde_json::Map<String, Value>,
    pub(crate) image: Option<(String, Bytes)>,
}

#[derive(Debug, Default)]
pub(crate) struct Menus {
    pub(crate) by_id: HashMap<String, Menu>,
    pub(crate) order: Vec<String>,
    pub(crate) default: Option<String>,
    pub(crate) links: HashMap<String, String>,
    pub(crate) aliases: BTreeMap<String, String>,
    /// Every change of a user's per-user menu, in order (see [`RichMenuSwitch`]).
    pub(crate) switches: Vec<RichMenuSwitch>,
    /// Batch requests by request ID.
    pub(crate) batches: HashMap<String, MenuBatchJob>,
    /// Users already processed under each `resumeRequestKey`.
    pub(crate) resume_keys: HashMap<String, std::collections::HashSet<String>>,
    /// The next batch request stops (phase `failed`) after this many users.
    pub(crate) interrupt_next_batch: Option<usize>,
    /// How long a batch request stays `ongoing`.
    pub(crate) batch_duration: Duration,
    /// Endpoints whose next accepted request takes effect and then loses its connection.
    pub(crate) crash_after: Vec<Endpoint>,
}

/// A rich-menu batch request the fake accepted.
#[derive(Debug, Clone)]
pub(crate) struct MenuBatchJob {
    pub(crate) accepted_at: Instant,
    pub(crate) accepted_wall: DateTime<Utc>,
    /// Stopped before every user was processed.
    pub(crate) failed: bool,
}

/// One change of a user's per-user rich menu in a [`FakeLine`](super::FakeLine), as recorded
/// by every link, unlink, bulk and batch operation. A switch whose `from` equals `to` is a
/// repeat: the call changed nothing for that user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RichMenuSwitch {
    /// The user.
    pub user_id: String,
    /// The per-user menu before (`None`: none, the default shows).
    pub from: Option<String>,
    /// The per-user menu after.
    pub to: Option<String>,
    /// The operation that made it.
    pub endpoint: Endpoint,
}

impl Menus {
    /// Sets (or removes, with `None`) a user's per-user menu and records the switch.
    pub(crate) fn switch(&mut self, user: &str, to: Option<&str>, endpoint: Endpoint) {
        let from = match to {
            Some(menu) => self.links.insert(user.to_owned(), menu.to_owned()),
            None => self.links.remove(user),
        };
        self.switches.push(RichMenuSwitch {
            user_id: user.to_owned(),
            from,
            to: to.map(str::to_owned),
            endpoint,
        });
    }

    /// Whether `endpoint` was armed to lose the connection after this request (disarms it).
    pub(crate) fn take_crash(&mut self, endpoint: Endpoint) -> bool {
        match self.crash_after.iter().position(|e| *e == endpoint) {
            Some(i) => {
                self.crash_after.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A coupon created through the API.
#[derive(Debug, Clone)]
pub(crate) struct StoredCoupon {
    /// The create request as sent.
    pub(crate) body: serde_json::Map<String, Value>,
    /// `RUNNING` or `CLOSED`.
    pub(crate) status: &'static str,
    /// Created (epoch seconds).
    pub(crate) created: i64,
}

/// Coupons by ID, in creation order.
#[derive(Debug, Default)]
pub(crate) struct Coupons {
    pub(crate) by_id: HashMap<String, StoredCoupon>,
    pub(crate) order: Vec<String>,
}

/// An upload audience and its jobs.
#[derive(Debug, Clone)]
pub(crate) struct AudienceGroup {
    pub(crate) id: i64,
    pub(crate) description: String,
    pub(crate) is_ifa: bool,
    pub(crate) created_unix: i64,
    pub(crate) created_at: Instant,
    pub(crate) jobs: Vec<AudienceJob>,
}

#[derive(Debug, Clone)]
pub(crate) struct AudienceJob {
    pub(crate) id: i64,
    pub(crate) description: Option<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) created_unix: i64,
    pub(crate) created_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Audiences {
    pub(crate) groups: BTreeMap<i64, AudienceGroup>,
    pub(crate) next_job: i64,
}

/// The clock of the fake's asynchronous work: narrowcast phases, audience jobs and retry-key
/// lifetimes. It follows tokio's clock (so a paused tokio clock pauses it too) plus whatever
/// [`advance`](Self::advance) added; a manual clock ignores real time and moves only by
/// `advance`, so a test decides when a job finishes however slow the machine is.
#[derive(Debug)]
pub(crate) struct JobClock {
    origin: Instant,
    manual: bool,
    added: Mutex<Duration>,
}

impl JobClock {
    fn new(manual: bool) -> Self {
        Self { origin: Instant::now(), manual, added: Mutex::new(Duration::ZERO) }
    }

    /// The current time on this clock.
    pub(crate) fn now(&self) -> Instant {
        let added = *lock(&self.added);
        if self.manual { self.origin + added } else { Instant::now() + added }
    }

    /// How long ago `then` (a reading of [`now`](Self::now)) was.
    pub(crate) fn since(&self, then: Instant) -> Duration {
        self.now().saturating_duration_since(then)
    }

    /// Moves the clock forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let mut added = lock(&self.added);
        *added = added.saturating_add(by);
    }
}

/// The fake's whole state, shared by both listeners and every connection.
#[derive(Debug)]
pub(crate) struct App {
    /// `Bearer <token>` as bytes, compared against the `Authorization` header.
    pub(crate) auth: Box<[u8]>,
    pub(crate) token: String,
    pub(crate) seed: u64,
    pub(crate) verified: bool,
    pub(crate) narrowcast_duration: Duration,
    pub(crate) narrowcast_min_recipients: usize,
    pub(crate) audience_ready_after: Duration,
    /// Times narrowcast phases, audience jobs and retry keys (see [`JobClock`]).
    pub(crate) clock: JobClock,
    limits: Mutex<Vec<FakeRateLimit>>,
    buckets: Box<[Bucket]>,
    bucket_of: [usize; Endpoint::COUNT],
    faults: RwLock<Arc<Faults>>,
    fault_seq: AtomicU64,
    id_seq: AtomicU64,
    pub(crate) stats: Stats,
    paths: Mutex<HashMap<String, u64>>,
    pub(crate) sends: Mutex<Sends>,
    pub(crate) users: RwLock<Users>,
    pub(crate) menus: Mutex<Menus>,
    pub(crate) audiences: Mutex<Audiences>,
    pub(crate) coupons: Mutex<Coupons>,
    pub(crate) link_tokens: Mutex<Vec<IssuedLinkToken>>,
    /// Loading animations shown: `(user, seconds)`.
    pub(crate) loading_shown: Mutex<Vec<(String, u64)>>,
    /// `markAsRead` tokens received.
    pub(crate) read_tokens: Mutex<Vec<String>>,
    /// Link tokens spent at the account-link dialog (single use).
    pub(crate) used_link_tokens: Mutex<std::collections::HashSet<String>>,
    /// Memberships, content, audience kinds, issued tokens and the request recorder.
    pub(crate) platform: Mutex<super::platform::Platform>,
    /// The channel ID (JWT assertions' `iss`/`sub`, token verification's `client_id`).
    pub(crate) channel_id: String,
    /// The channel secret (stateless tokens by secret, v2.1 revocation).
    pub(crate) channel_secret: String,
    /// Registered assertion public keys: kid → (n, e), big-endian.
    pub(crate) assertion_keys: HashMap<String, (Vec<u8>, Vec<u8>)>,
    /// The bot's user ID (`bot/info`, webhook `destination`).
    pub(crate) bot_user_id: String,
}

/// What the builder hands to [`App::new`].
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) token: String,
    pub(crate) seed: u64,
    pub(crate) verified: bool,
    pub(crate) narrowcast_duration: Duration,
    pub(crate) narrowcast_min_recipients: usize,
    pub(crate) audience_ready_after: Duration,
    pub(crate) manual_clock: bool,
    pub(crate) limits: Vec<FakeRateLimit>,
    pub(crate) faults: Faults,
    pub(crate) quota: FakeQuota,
    pub(crate) users: Vec<FakeUser>,
    pub(crate) channel_id: String,
    pub(crate) channel_secret: String,
    pub(crate) assertion_keys: HashMap<String, (Vec<u8>, Vec<u8>)>,
    pub(crate) bot_user_id: String,
    pub(crate) record_requests: bool,
}

/// The per-request context handed to endpoint handlers.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) endpoint: Endpoint,
    pub(crate) request_id: Arc<str>,
    pub(crate) retry_key: Option<String>,
    after: Option<Failure>,
}

impl Ctx {
    /// Applies an after-acceptance fault to a successful response.
    pub(crate) fn finish(self, response: Response) -> Response {
        match self.after {
            Some(failure) if response.status().is_success() => match failure {
                Failure::ServerError => respond::server_error(),
                Failure::Dropped => respond::drop_connection(),
                Failure::RateLimited => respond::rate_limited(),
            },
            _ => response,
        }
    }
}

impl App {
    pub(crate) fn new(settings: Settings) -> Self {
        // Every endpoint has its own bucket, except that all audience endpoints share one.
        let mut bucket_of = [0; Endpoint::COUNT];
        let mut buckets = Vec::new();
        let mut audience_bucket = None;
        for endpoint in Endpoint::ALL {
            let limit = settings.limits[endpoint.class().index()];
            let index = if endpoint.class() == FakeEndpointClass::Audience {
                *audience_bucket.get_or_insert_with(|| {
                    buckets.push(Bucket::new(limit));
                    buckets.len() - 1
                })
            } else {
                buckets.push(Bucket::new(limit));
                buckets.len() - 1
            };
            bucket_of[endpoint.index()] = index;
        }
        let mut users = Users::default();
        for user in settings.users {
            users.insert(user);
        }
        Self {
            auth: format!("Bearer {}", settings.token).into_bytes().into_boxed_slice(),
            token: settings.token,
            seed: settings.seed,
            verified: settings.verified,
            narrowcast_duration: settings.narrowcast_duration,
            narrowcast_min_recipients: settings.narrowcast_min_recipients,
            audience_ready_after: settings.audience_ready_after,
            clock: JobClock::new(settings.manual_clock),
            limits: Mutex::new(settings.limits),
            buckets: buckets.into_boxed_slice(),
            bucket_of,
            faults: RwLock::new(Arc::new(settings.faults)),
            fault_seq: AtomicU64::new(0),
            id_seq: AtomicU64::new(0),
            stats: Stats::new(),
            paths: Mutex::new(HashMap::new()),
            sends: Mutex::new(Sends { quota: settings.quota, ..Sends::default() }),
            users: RwLock::new(users),
            menus: Mutex::new(Menus::default()),
            audiences: Mutex::new(Audiences::default()),
            coupons: Mutex::new(Coupons::default()),
            link_tokens: Mutex::new(Vec::new()),
            loading_shown: Mutex::new(Vec::new()),
            read_tokens: Mutex::new(Vec::new()),
            used_link_tokens: Mutex::new(std::collections::HashSet::new()),
            platform: Mutex::new(super::platform::Platform {
                recording: settings.record_requests,
                ..super::platform::Platform::default()
            }),
            channel_id: settings.channel_id,
            channel_secret: settings.channel_secret,
            assertion_keys: settings.assertion_keys,
            bot_user_id: settings.bot_user_id,
        }
    }

    /// A fresh request ID in LINE's format (a UUID).
    pub(crate) fn new_request_id(&self) -> Arc<str> {
        Arc::from(uuid::Uuid::new_v4().to_string())
    }

    /// A number unique within this server (IDs, tokens).
    pub(crate) fn next_seq(&self) -> u64 {
        self.id_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a request by its path.
    pub(crate) fn count_path(&self, path: &str) {
        let mut paths = lock(&self.paths);
        if let Some(count) = paths.get_mut(path) {
            *count += 1;
        } else {
            paths.insert(path.to_owned(), 1);
        }
    }

    pub(crate) fn path_count(&self, path: &str) -> u64 {
        lock(&self.paths).get(path).copied().unwrap_or(0)
    }

    pub(crate) fn faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(faults);
        self.fault_seq.store(0, Ordering::Relaxed);
    }

    pub(crate) fn set_rate_limit(&self, class: FakeEndpointClass, limit: FakeRateLimit) {
        lock(&self.limits)[class.index()] = limit;
        for endpoint in Endpoint::ALL.iter().filter(|e| e.class() == class) {
            self.buckets[self.bucket_of[endpoint.index()]].reset(Some(limit));
        }
    }

    /// Forgets everything recorded and everything created through the API; keeps the
    /// configuration and the registered users.
    pub(crate) fn reset(&self) {
        {
            let mut sends = lock(&self.sends);
            let quota = sends.quota;
            *sends = Sends { quota, ..Sends::default() };
        }
        *lock(&self.menus) = Menus::default();
        *lock(&self.audiences) = Audiences::default();
        *lock(&self.coupons) = Coupons::default();
        lock(&self.link_tokens).clear();
        lock(&self.used_link_tokens).clear();
        lock(&self.loading_shown).clear();
        lock(&self.read_tokens).clear();
        {
            let mut platform = lock(&self.platform);
            platform.audience_meta.clear();
            platform.tokens.clear();
            platform.recorded.clear();
        }
        lock(&self.paths).clear();
        self.stats.reset();
        self.fault_seq.store(0, Ordering::Relaxed);
        for bucket in &self.buckets {
            bucket.reset(None);
        }
    }

    /// The common prologue: authentication, the retry-key header, the rate limit and faults.
    /// `Err` carries the response to send instead of handling the request.
    pub(crate) async fn begin(
        &self,
        endpoint: Endpoint,
        request_id: Arc<str>,
        headers: &HeaderMap,
    ) -> Result<Ctx, Response> {
        self.stats.per_endpoint[endpoint.index()].fetch_add(1, Ordering::Relaxed);
        if !endpoint.is_oauth() {
            self.authenticate(headers)?;
        }
        let retry_key = retry_key(endpoint, headers)?;
        if !self.buckets[self.bucket_of[endpoint.index()]].try_take() {
            return Err(respond::rate_limited());
        }
        let faults = self.faults();
        let mut after = None;
        if !faults.is_inert() && faults.applies_to(endpoint) {
            let n = self.fault_seq.fetch_add(1, Ordering::Relaxed);
            let plan = faults::draw(&faults, self.seed, n);
            drop(faults);
            if let Some(delay) = plan.delay {
                self.stats.slowed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
            }
            match plan.failure {
                Some(Failure::RateLimited) => return Err(respond::rate_limited()),
                Some(Failure::ServerError) if !plan.after => return Err(respond::server_error()),
                Some(Failure::Dropped) if !plan.after => return Err(respond::drop_connection()),
                failure => after = failure,
            }
        }
        Ok(Ctx { endpoint, request_id, retry_key, after })
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Response> {
        match headers.get(header::AUTHORIZATION) {
            Some(value) if value.as_bytes() == &*self.auth => Ok(()),
            Some(value) if self.is_issued_token(value.as_bytes()) => Ok(()),
            Some(_) => Err(respond::error(
                StatusCode::UNAUTHORIZED,
                "Authentication failed due to the following reason: invalid token. \
                 Confirm that the access token in the authorization header is valid.",
            )),
            None => Err(respond::error(
                StatusCode::UNAUTHORIZED,
                "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'",
            )),
        }
    }

    /// Whether `header` is `Bearer <token>` for a token issued here that has not expired or
    /// been revoked.
    fn is_issued_token(&self, header: &[u8]) -> bool {
        let Some(token) = header.strip_prefix(b"Bearer ") else { return false };
        let Ok(token) = std::str::from_utf8(token) else { return false };
        let now = self.clock.now();
        lock(&self.platform).tokens.get(token).is_some_and(|t| now < t.expires_at)
    }

    /// Recipients among `candidates` who can receive messages (not known to have blocked us).
    pub(crate) fn deliverable<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        candidates.into_iter().filter(|id| !users.is_blocked(id)).map(str::to_owned).collect()
    }
}

/// Reads and checks `X-Line-Retry-Key`.
fn retry_key(endpoint: Endpoint, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(value) = headers.get("x-line-retry-key") else { return Ok(None) };
    if !endpoint.allows_retry_key() {
        return Err(respond::error_with(
            StatusCode::BAD_REQUEST,
            "The X-Line-Retry-Key header cannot be specified for this endpoint",
            &[respond::Detail::new("X-Line-Retry-Key", "not supported by this endpoint")],
        ));
    }
    match value.to_str() {
        Ok(key) if validate::is_retry_key(key) => Ok(Some(key.to_ascii_lowercase())),
        _ => Err(respond::error_with(
            StatusCode::BAD_REQUEST,
            "The value of the X-Line-Retry-Key header is invalid",
            &[respond::Detail::new("X-Line-Retry-Key", "must be a UUID in hexadecimal format")],
        )),
    }
}
