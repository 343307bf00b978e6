//! The ecforce admin API client: pacing, retries, keyset paging over `q[...]` filters.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use http::{HeaderMap, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::time::Instant;

mod decode;

pub use decode::DecodeStats;

use super::retry::{Attempt, EcforceRetry};
use super::wire::{BACKEND, EcforceMapping, EcforcePage, error_message, parse_page_with};
use crate::commerce::auth::{AuthError, CustomerAuthenticator, Password};
use crate::commerce::backend::{
    Capabilities, CommerceBackend, CommerceResult, ListQuery, Page, PageStream,
};
use crate::commerce::error::CommerceError;
use crate::commerce::model::{Cursor, Customer, Order, Product, Record, Subscription};
use crate::commerce::time::format_jst_filter;
use crate::retry::{RateLimit, TokenBucket};
use crate::{CustomerId, LineUserId};

/// ecforce's largest page.
pub const ECFORCE_MAX_PER: u32 = 100;

/// Why an [`EcforceClient`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EcforceBuildError {
    /// The base URL is not an absolute http(s) URL.
    #[error("invalid ecforce base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The API token is empty.
    #[error("the ecforce API token is empty")]
    EmptyToken,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// The admin API's `Authorization` header, marked sensitive so it is never logged.
fn authorization_header(
    token: &SecretString,
) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    let mut auth =
        http::HeaderValue::try_from(format!("Token token=\"{}\"", token.expose_secret()))?;
    auth.set_sensitive(true);
    Ok(auth)
}

/// An unexpected HTTP answer (kept as the source of [`CommerceError::Transport`]).
#[derive(Debug, thiserror::Error)]
#[error("ecforce answered {status}: {message}")]
pub struct EcforceHttpError {
    /// The status.
    pub status: StatusCode,
    /// ecforce's error codes and messages, or the start of the body.
    pub message: String,
}

/// What the local customer sign-in limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignInLimitScope {
    /// One budget for every sign-in through this client (default): ecforce's 5 per hour may
    /// well be per shop or per IP, and every sign-in leaves from the same server.
    #[default]
    Global,
    /// One budget per e-mail address.
    PerEmail,
}

/// Builds an [`EcforceClient`].
#[must_use]
pub struct EcforceClientBuilder {
    base_url: String,
    token: SecretString,
    min_interval: Duration,
    retry: EcforceRetry,
    page_size: u32,
    line_field: Option<String>,
    timeout: Duration,
    http: Option<reqwest::Client>,
    sign_in_limit: (u32, Duration),
    sign_in_scope: SignInLimitScope,
    sign_in_with_token: bool,
    mapping: EcforceMapping,
    point_event_id: Option<i64>,
}

impl fmt::Debug for EcforceClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcforceClientBuilder")
            .field("base_url", &crate::redact::url(&self.base_url))
            .field("token", &"<redacted>")
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

impl EcforceClientBuilder {
    /// The pause between two requests (default 1 s: ecforce publishes no limit and
    /// practitioners pace at one request per second). `Duration::ZERO` disables pacing.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// Requests per second (shorthand for [`min_interval`](Self::min_interval)).
    pub fn requests_per_second(self, rate: f64) -> Self {
        let interval =
            if rate > 0.0 { Duration::from_secs_f64(1.0 / rate) } else { Duration::ZERO };
        self.min_interval(interval)
    }

    /// When to retry 429s, 5xx and lost connections (default [`EcforceRetry::default`]: 429s
    /// for up to 10 minutes, 3 s, 5 s, then every 15 s). 429s are retried for every request
    /// (nothing was processed); 5xx and lost answers only for reads and `PUT`s.
    pub fn retry_policy(mut self, policy: EcforceRetry) -> Self {
        self.retry = policy;
        self
    }

    /// Records per page (1..=100, default 100).
    pub fn page_size(mut self, per: u32) -> Self {
        self.page_size = per.clamp(1, ECFORCE_MAX_PER);
        self
    }

    /// The customer attribute the LINE user ID is written to (default `line_id`); `None`
    /// disables the write-back (it then answers `NotImplemented`).
    pub fn line_id_field(mut self, field: Option<&str>) -> Self {
        self.line_field = field.map(str::to_owned);
        self
    }

    /// Per-attempt timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses a caller-supplied `reqwest::Client` (the timeout setting is still applied per
    /// request).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The local customer sign-in limit (default 5 per hour, as ecforce, for the whole client:
    /// see [`sign_in_limit_scope`](Self::sign_in_limit_scope)).
    pub fn sign_in_limit(mut self, attempts: u32, per: Duration) -> Self {
        self.sign_in_limit = (attempts.max(1), per);
        self
    }

    /// What the local sign-in limit counts (default [`SignInLimitScope::Global`]).
    pub fn sign_in_limit_scope(mut self, scope: SignInLimitScope) -> Self {
        self.sign_in_scope = scope;
        self
    }

    /// Sends the admin token on customer sign-in too (default off, as the public Go client;
    /// SUPER STUDIO's own demo sends it). Verify on a test shop which one it needs.
    pub fn sign_in_with_admin_token(mut self, on: bool) -> Self {
        self.sign_in_with_token = on;
        self
    }

    /// How ecforce's state words map onto withdrawn customers and paid, canceled orders.
    pub fn mapping(mut self, mapping: EcforceMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Grants points under this existing point event (`point_event_id`) instead of creating
    /// one per grant (`with_create` + `name` + `description`, the default).
    pub fn point_event_id(mut self, id: Option<i64>) -> Self {
        self.point_event_id = id;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`EcforceBuildError`] for a bad base URL, an empty token, or an HTTP client failure.
    pub fn build(self) -> Result<EcforceClient, EcforceBuildError> {
        let bad = |reason: &str| EcforceBuildError::BaseUrl {
            url: self.base_url.clone(),
            reason: reason.into(),
        };
        let mut base = url::Url::parse(&self.base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("expected an absolute http(s) URL"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if self.token.expose_secret().is_empty() {
            return Err(EcforceBuildError::EmptyToken);
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(concat!("enishi/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(EcforceBuildError::Http)?,
        };
        Ok(EcforceClient {
            inner: Arc::new(Inner {
                http,
                base,
                authorization: authorization_header(&self.token).ok(),
                token: self.token,
                min_interval: self.min_interval,
                pacer: Mutex::new(TokenBucket::new()),
                retry: self.retry,
                page_size: self.page_size,
                line_field: self.line_field,
                timeout: self.timeout,
                sign_in_limit: self.sign_in_limit,
                sign_in_scope: self.sign_in_scope,
                sign_in_with_token: self.sign_in_with_token,
                mapping: self.mapping,
                point_event_id: self.point_event_id,
                sign_ins: Mutex::new(HashMap::new()),
                decoded: std::sync::atomic::AtomicU64::new(0),
                decode_nanos: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    base: url::Url,
    /// `Token token="…"`, built once and marked sensitive (`None` if the token cannot be a
    /// header value: each request then reports why).
    authorization: Option<http::HeaderValue>,
    token: SecretString,
    min_interval: Duration,
    /// One request per `min_interval`: the shared token bucket with a burst of 1.
    pacer: Mutex<TokenBucket>,
    retry: EcforceRetry,
    page_size: u32,
    line_field: Option<String>,
    timeout: Duration,
    sign_in_limit: (u32, Duration),
    sign_in_scope: SignInLimitScope,
    sign_in_with_token: bool,
    mapping: EcforceMapping,
    point_event_id: Option<i64>,
    sign_ins: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Records decoded from list pages, and the time spent decoding them.
    decoded: std::sync::atomic::AtomicU64,
    decode_nanos: std::sync::atomic::AtomicU64,
}

/// The ecforce admin API as a [`CommerceBackend`], and ecforce customer sign-in as a
/// [`CustomerAuthenticator`].
///
/// Cheap to clone (an `Arc` inside); clones share pacing. Requests are paced (one per second by
/// default) and 429 / 5xx / connection failures retried with back-off honouring `Retry-After`.
/// Lists page by keyset over `q[updated_at_gteq]`, `q[updated_at_lt]` and (for more than a page
/// of records updated in the same second) `q[id_gt]`, sorted by `updated_at,id`, so records
/// changing during a read are never skipped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use enishi::commerce::{CommerceBackendExt, EcforceClient};
/// let shop = EcforceClient::builder("https://shop.example.com", "api-token").build()?;
/// let customers = shop.all_customers().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EcforceClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for EcforceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcforceClient")
            .field("base_url", &crate::redact::url(self.inner.base.as_str()))
            .field("token", &"<redacted>")
            .field("min_interval", &self.inner.min_interval)
            .field("page_size", &self.inner.page_size)
            .finish_non_exhaustive()
    }
}

/// How one request may be sent and retried.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    /// May be resent after it possibly reached ecforce.
    idempotent: bool,
    /// Carries the admin token.
    admin: bool,
    retry: &'a EcforceRetry,
}

impl<'a> Call<'a> {
    /// An admin read or `PUT`.
    pub(super) fn idempotent(retry: &'a EcforceRetry) -> Self {
        Self { idempotent: true, admin: true, retry }
    }

    /// An admin write that adds (a points `POST`).
    pub(super) fn once(retry: &'a EcforceRetry) -> Self {
        Self { idempotent: false, admin: true, retry }
    }
}

pub(super) enum Resource {
    Customers,
    Orders,
    Subscriptions,
    Products,
}

impl Resource {
    fn path(&self) -> &'static str {
        match self {
            Self::Customers => "api/v2/admin/customers.json",
            Self::Orders => "api/v2/admin/orders.json",
            Self::Subscriptions => "api/v2/admin/subs_orders.json",
            Self::Products => "api/v2/admin/products.json",
        }
    }
    /// Side-loads: names live on the billing address; a `sub_order` names its customer only
    /// by number unless the customer is included.
    pub(super) fn include(&self) -> &'static str {
        match self {
            Self::Customers => "billing_address",
            Self::Orders => "order_items",
            Self::Subscriptions => "customer,order_items",
            Self::Products => "variants,thumbnail",
        }
    }
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Where a list read is: the last position emitted, whether that second's ties are being
/// drained, and whether the read is over.
struct Walk {
    query: ListQuery,
    after: Option<Cursor>,
    drain_ties: bool,
    skip_second: bool,
    done: bool,
}

impl EcforceClient {
    /// Starts a builder for the shop at `base_url` (the shop's origin, e.g.
    /// `https://shop.example.com`; no `*.ec-force.com` assumption) with an admin API token.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> EcforceClientBuilder {
        EcforceClientBuilder {
            base_url: base_url.into(),
            token: SecretString::from(token.into()),
            min_interval: Duration::from_secs(1),
            retry: EcforceRetry::default(),
            page_size: ECFORCE_MAX_PER,
            line_field: Some("line_id".into()),
            timeout: Duration::from_secs(30),
            http: None,
            sign_in_limit: (5, Duration::from_secs(3600)),
            sign_in_scope: SignInLimitScope::Global,
            sign_in_with_token: false,
            mapping: EcforceMapping::default(),
            point_event_id: None,
        }
    }

    async fn pace(&self) {
        if self.inner.min_interval.is_zero() {
            return;
        }
        let limit = RateLimit::new(1, self.inner.min_interval);
        let wait = {
            // A poisoned lock only means another thread panicked mid-update of plain numbers.
            let mut pacer =
                self.inner.pacer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pacer.reserve(limit, Instant::now().into_std())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn url(&self, path: &str) -> Result<url::Url, CommerceError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| CommerceError::Transport { backend: BACKEND, source: Box::new(e) })
    }

    /// The retry policy of this client (for requests built in sibling modules).
    pub(super) fn retry(&self) -> &EcforceRetry {
        &self.inner.retry
    }

    /// The state mapping of this client.
    pub(super) fn state_mapping(&self) -> &EcforceMapping {
        &self.inner.mapping
    }

    /// Sends one request with pacing and retries. `idempotent` is false for writes that add
    /// (the points `POST`): those are resent only when nothing can have been processed (a 429,
    /// or a connection never made).
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        call: Call<'_>,
    ) -> CommerceResult<(StatusCode, HeaderMap, String)> {
        let Call { idempotent, admin, retry } = call;
        let url = self.url(path)?;
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.pace().await;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .query(query)
                .timeout(self.inner.timeout)
                .header(http::header::ACCEPT, "application/json");
            if admin {
                let auth = match &self.inner.authorization {
                    Some(auth) => auth.clone(),
                    None => authorization_header(&self.inner.token).map_err(|e| {
                        CommerceError::Transport { backend: BACKEND, source: Box::new(e) }
                    })?,
                };
                request = request.header(http::header::AUTHORIZATION, auth);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    // The path only: the query may hold an e-mail address (sign-in lookups).
                    tracing::debug!(
                        target: "enishi::ecforce",
                        method = %method,
                        path,
                        status = status.as_u16(),
                        request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()),
                        attempt = attempts,
                        "ecforce call"
                    );
                    match response.text().await {
                        Ok(text) => {
                            if status.is_success() {
                                return Ok((status, headers, text));
                            }
                            let wait = retry.decide(
                                Attempt::Status(status),
                                Some(&headers),
                                attempts,
                                started.elapsed(),
                                idempotent,
                            );
                            match wait {
                                Some(wait) => {
                                    tokio::time::sleep(wait).await;
                                    continue;
                                }
                                None => return map_status(status, &headers, &text),
                            }
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            let outcome =
                if error.is_connect() { Attempt::NotConnected } else { Attempt::NoAnswer };
            tracing::debug!(
                target: "enishi::ecforce",
                method = %method,
                path,
                attempt = attempts,
                connected = !error.is_connect(),
                "ecforce call failed without an answer"
            );
            match retry.decide(outcome, None, attempts, started.elapsed(), idempotent) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    return Err(CommerceError::Transport {
                        backend: BACKEND,
                        source: Box::new(error),
                    });
                }
            }
        }
    }

    async fn get_page(&self, resource: &Resource, walk: &Walk) -> CommerceResult<String> {
        let per = match walk.query.page_size {
            0 => self.inner.page_size,
            n => n.min(ECFORCE_MAX_PER),
        };
        let mut q: Vec<(&str, String)> = vec![("page", "1".into()), ("per", per.to_string())];
        let until = walk.query.until.map(floor_second);
        match &walk.after {
            Some(after) if walk.drain_ties => {
                let second = floor_second(after.updated_at);
                let end = second + TimeDelta::seconds(1);
                q.push(("q[updated_at_gteq]", format_jst_filter(second)));
                q.push(("q[updated_at_lt]", format_jst_filter(until.map_or(end, |u| u.min(end)))));
                if !after.id.is_empty() {
                    q.push(("q[id_gt]", after.id.clone()));
                }
                q.push(("sort", "id".into()));
            }
            after => {
                if let Some(after) = after {
                    let mut from = floor_second(after.updated_at);
                    if walk.skip_second {
                        from += TimeDelta::seconds(1);
                    }
                    q.push(("q[updated_at_gteq]", format_jst_filter(from)));
                }
                if let Some(until) = until {
                    q.push(("q[updated_at_lt]", format_jst_filter(until)));
                }
                q.push(("sort", "updated_at,id".into()));
            }
        }
        q.push(("include", resource.include().into()));
        // The shop's default decides the shape otherwise; the lighter form lacks names, ranks
        // and labels.
        q.push(("lighter", "0".into()));
        if matches!(resource, Resource::Customers) {
            // Deleted customers appear only on request; enishi must learn of deletions.
            q.push(("q[with_deleted]", "1".into()));
        }
        let (_, _, body) = self
            .send(Method::GET, resource.path(), &q, None, Call::idempotent(&self.inner.retry))
            .await?;
        Ok(body)
    }

    fn list<T: Record + Send + 'static>(
        &self,
        resource: Resource,
        query: ListQuery,
        parse: fn(&str, &EcforceMapping) -> CommerceResult<EcforcePage<T>>,
    ) -> PageStream<'static, T> {
        let per = match query.page_size {
            0 => self.inner.page_size,
            n => n.min(ECFORCE_MAX_PER),
        } as usize;
        let walk = Walk {
            after: query.since.clone(),
            query,
            drain_ties: false,
            skip_second: false,
            done: false,
        };
        let client = self.clone();
        let resource = Arc::new(resource);
        Box::pin(futures_util::stream::unfold(walk, move |mut walk| {
            let client = client.clone();
            let resource = Arc::clone(&resource);
            async move {
                loop {
                    if walk.done {
                        return None;
                    }
                    let page = match client
                        .get_page(&resource, &walk)
                        .await
                        .and_then(|b| client.decode(&b, parse))
                    {
                        Ok(page) => page,
                        Err(e) => {
                            walk.done = true;
                            return Some((Err(e), walk));
                        }
                    };
                    // A short page ends the walk only when the server agrees nothing is left:
                    // a server capping `per` below ours must not end it early.
                    let more = page.total_count.is_some_and(|t| t > page.count as u64);
                    let full = page.count > 0 && (page.count >= per || more);
                    let inside = |c: &Cursor| walk.query.contains(c);
                    let warnings: Vec<CommerceError> = page
                        .warnings
                        .into_iter()
                        .zip(page.warnings_at)
                        .filter(|(_, at)| inside(at))
                        .map(|(e, _)| e)
                        .collect();
                    let records: Vec<T> =
                        page.records.into_iter().filter(|r| inside(&r.cursor())).collect();
                    let rejected: Vec<CommerceError> = page
                        .rejected
                        .into_iter()
                        .zip(page.rejected_at)
                        .filter(|(_, at)| {
                            at.as_ref().is_none_or(|c| walk.after.as_ref().is_none_or(|a| c > a))
                        })
                        .map(|(e, _)| e)
                        .collect();
                    let advanced = page.last.filter(|l| walk.after.as_ref().is_none_or(|a| l > a));
                    if walk.drain_ties {
                        if full && advanced.is_none() {
                            // A full page none of whose records has a readable position:
                            // there is no way forward without skipping blindly.
                            walk.done = true;
                            let e = CommerceError::Decode {
                                backend: BACKEND,
                                field: "attributes.updated_at".into(),
                                reason: "a full page without a readable position; cannot advance"
                                    .into(),
                                body: String::new(),
                            };
                            return Some((Err(e), walk));
                        }
                        if !full {
                            // The second is exhausted: continue after it.
                            walk.drain_ties = false;
                            walk.skip_second = true;
                        }
                    } else if !full {
                        walk.done = true;
                    } else if advanced.is_none() {
                        // A full page of records we have already passed: more than a page
                        // share one second. Walk that second by ID.
                        walk.drain_ties = true;
                        continue;
                    } else {
                        walk.skip_second = false;
                    }
                    if let Some(last) = advanced.clone() {
                        walk.after = Some(last);
                    }
                    walk.query.since.clone_from(&walk.after);
                    if records.is_empty() && rejected.is_empty() && warnings.is_empty() {
                        continue;
                    }
                    let cursor = walk.after.clone();
                    let page = Page::new(records, rejected, cursor).with_warnings(warnings);
                    return Some((Ok(page), walk));
                }
            }
        }))
    }

    /// Signs a customer in (`POST /api/v2/customers/sign_in`), limited locally to the
    /// configured attempts (ecforce allows 5 per hour; by default the budget is shared by
    /// every customer, since ecforce's own limit may be per shop or per IP).
    async fn sign_in(&self, email: &str, password: &Password) -> Result<CustomerId, AuthError> {
        {
            let mut attempts =
                self.inner.sign_ins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (limit, window) = self.inner.sign_in_limit;
            let now = Instant::now();
            let key = match self.inner.sign_in_scope {
                SignInLimitScope::Global => String::new(),
                SignInLimitScope::PerEmail => email.trim().to_lowercase(),
            };
            let seen = attempts.entry(key).or_default();
            while seen.front().is_some_and(|t| now.duration_since(*t) >= window) {
                seen.pop_front();
            }
            if seen.len() >= limit as usize {
                let retry_after =
                    seen.front().map(|t| window.saturating_sub(now.duration_since(*t)));
                return Err(AuthError::RateLimited { retry_after });
            }
            seen.push_back(now);
        }
        let body = json!({ "customer": { "email": email, "password": password.expose() } });
        let backend =
            |e: CommerceError| AuthError::Backend { backend: BACKEND, source: Box::new(e) };
        // A customer is waiting: a 429 is reported at once as "try again later".
        let result = self
            .send(
                Method::POST,
                "api/v2/customers/sign_in.json",
                &[],
                Some(&body),
                Call {
                    idempotent: false,
                    admin: self.inner.sign_in_with_token,
                    retry: &EcforceRetry::never(),
                },
            )
            .await;
        match result {
            Ok((StatusCode::ACCEPTED, _, _)) => Err(AuthError::VerificationRequired),
            Ok((_, _, text)) => {
                #[derive(serde::Deserialize)]
                struct SignIn {
                    #[serde(deserialize_with = "super::de::opt_string")]
                    id: Option<String>,
                }
                let parsed: SignIn = serde_json::from_str(&text).map_err(|e| {
                    backend(CommerceError::Decode {
                        backend: BACKEND,
                        field: "id".into(),
                        reason: e.to_string(),
                        body: String::new(),
                    })
                })?;
                parsed.id.and_then(|id| CustomerId::new(id).ok()).ok_or_else(|| {
                    backend(CommerceError::Decode {
                        backend: BACKEND,
                        field: "id".into(),
                        reason: "missing".into(),
                        body: String::new(),
                    })
                })
            }
            Err(
                CommerceError::Unauthenticated { .. }
                | CommerceError::Conflict { .. }
                | CommerceError::NotFound { .. },
            ) => Err(AuthError::InvalidCredentials),
            Err(CommerceError::RateLimited { retry_after, .. }) => {
                Err(AuthError::RateLimited { retry_after })
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// The value of `field` on the customer a write returned, else on a fresh read: ecforce
    /// answers 200 even when it silently dropped a parameter it does not permit.
    async fn stored_attribute(
        &self,
        id: &CustomerId,
        response: &str,
        field: &str,
    ) -> CommerceResult<serde_json::Value> {
        let from = |body: &str| {
            let doc: serde_json::Value = serde_json::from_str(body).ok()?;
            let data = match &doc["data"] {
                serde_json::Value::Array(rows) => rows.first()?.clone(),
                one => one.clone(),
            };
            data.get("attributes")?.get(field).cloned()
        };
        if let Some(value) = from(response) {
            return Ok(value);
        }
        let path = format!("api/v2/admin/customers/{}.json", urlencode(id.as_str()));
        let q = [("lighter", "0".to_owned())];
        let (_, _, body) = self
            .send(Method::GET, &path, &q, None, Call::idempotent(&self.inner.retry))
            .await
            .map_err(|e| not_found_as(e, id))?;
        Ok(from(&body).unwrap_or(serde_json::Value::Null))
    }
}

fn not_found_as(e: CommerceError, id: &CustomerId) -> CommerceError {
    match e {
        CommerceError::NotFound { backend, .. } => {
            CommerceError::NotFound { backend, what: format!("customer {id}") }
        }
        e => e,
    }
}

fn map_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
) -> CommerceResult<(StatusCode, HeaderMap, String)> {
    if status.is_success() {
        return Ok((status, headers.clone(), body.to_owned()));
    }
    let message = error_message(body);
    // ecforce's own refusals carry its `{"errors": [...]}` envelope; a 403 without one is a
    // proxy or WAF (Cloudflare) block, not a token problem.
    let enveloped =
        serde_json::from_str::<super::wire::ErrorBody>(body).is_ok_and(|b| b.has_errors());
    Err(match status {
        StatusCode::UNAUTHORIZED => CommerceError::Unauthenticated { backend: BACKEND, message },
        StatusCode::FORBIDDEN if enveloped => {
            CommerceError::Unauthenticated { backend: BACKEND, message }
        }
        StatusCode::NOT_FOUND => CommerceError::NotFound { backend: BACKEND, what: message },
        StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
            CommerceError::Conflict { backend: BACKEND, message }
        }
        StatusCode::TOO_MANY_REQUESTS => CommerceError::RateLimited {
            backend: BACKEND,
            retry_after: crate::retry::retry_after(headers, Utc::now()),
        },
        _ => CommerceError::Transport {
            backend: BACKEND,
            source: Box::new(EcforceHttpError { status, message }),
        },
    })
}

#[async_trait]
impl CommerceBackend for EcforceClient {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::all();
        caps.line_link = self.inner.line_field.is_some();
        caps
    }

    fn customers(&self, query: ListQuery) -> PageStream<'_, Customer> {
        self.list(Resource::Customers, query, parse_page_with::<Customer>)
    }

    fn orders(&self, query: ListQuery) -> PageStream<'_, Order> {
        self.list(Resource::Orders, query, parse_page_with::<Order>)
    }

    fn subscriptions(&self, query: ListQuery) -> PageStream<'_, Subscription> {
        self.list(Resource::Subscriptions, query, parse_page_with::<Subscription>)
    }

    fn products(&self, query: ListQuery) -> PageStream<'_, Product> {
        self.list(Resource::Products, query, parse_page_with::<Product>)
    }

    async fn customer(&self, id: &CustomerId) -> CommerceResult<Customer> {
        let path = format!("api/v2/admin/customers/{}.json", urlencode(id.as_str()));
        let q = [("include", "billing_address".to_owned()), ("lighter", "0".to_owned())];
        let (_, _, body) = self
            .send(Method::GET, &path, &q, None, Call::idempotent(&self.inner.retry))
            .await
            .map_err(|e| not_found_as(e, id))?;
        let mut page = parse_page_with::<Customer>(&body, &self.inner.mapping)?;
        if let Some(e) = page.rejected.pop() {
            return Err(e);
        }
        page.records.pop().ok_or_else(|| CommerceError::NotFound {
            backend: BACKEND,
            what: format!("customer {id}"),
        })
    }

    async fn set_line_user(
        &self,
        id: &CustomerId,
        line: Option<&LineUserId>,
    ) -> CommerceResult<()> {
        let Some(field) = &self.inner.line_field else {
            return Err(CommerceError::NotImplemented {
                operation: "set_line_user",
                backend: BACKEND,
            });
        };
        // Only the ID: `line_id_linked_at` is not writable through the API (ecforce drops it
        // silently); enishi's link store keeps the link time.
        let wanted = line.map_or(serde_json::Value::Null, |l| l.as_str().into());
        let mut attrs = serde_json::Map::new();
        attrs.insert(field.clone(), wanted.clone());
        let body = json!({ "customer": attrs });
        let path = format!("api/v2/admin/customers/{}.json", urlencode(id.as_str()));
        // PUT sets a value, so it is idempotent and may be retried.
        let (_, _, response) = self
            .send(Method::PUT, &path, &[], Some(&body), Call::idempotent(&self.inner.retry))
            .await
            .map_err(|e| not_found_as(e, id))?;
        let stored = self.stored_attribute(id, &response, field).await?;
        let cleared = |v: &serde_json::Value| v.is_null() || v.as_str() == Some("");
        let applied = match line {
            Some(_) => stored == wanted,
            None => cleared(&stored),
        };
        if applied {
            Ok(())
        } else {
            Err(CommerceError::NotApplied {
                backend: BACKEND,
                what: format!(
                    "customer {id}: `{field}` reads {stored} after the write (ecforce answered \
                     2xx but did not store it; is the parameter permitted?)"
                ),
            })
        }
    }

    async fn skip_next_delivery(&self, subscription: &str) -> CommerceResult<()> {
        self.skip_next(subscription).await
    }

    async fn grant_points(&self, id: &CustomerId, points: i64, reason: &str) -> CommerceResult<()> {
        // ecforce's shape: an absolute `point` with `addition_and_subtraction` (1 adds, 0
        // subtracts), under an existing point event or one created for this grant.
        let mut body = json!({
            "point": points.unsigned_abs(),
            "addition_and_subtraction": i32::from(points >= 0),
        });
        match self.inner.point_event_id {
            Some(event) => body["point_event_id"] = event.into(),
            None => {
                body["with_create"] = 1.into();
                body["name"] = reason.into();
                body["description"] = reason.into();
            }
        }
        let path = format!("api/v2/admin/customers/{}/points.json", urlencode(id.as_str()));
        // POST adds points: resent only when nothing was processed (a 429, no connection).
        self.send(Method::POST, &path, &[], Some(&body), Call::once(&self.inner.retry))
            .await
            .map_err(|e| not_found_as(e, id))?;
        Ok(())
    }
}

#[async_trait]
impl CustomerAuthenticator for EcforceClient {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<CustomerId, AuthError> {
        self.sign_in(email, password).await
    }
}

pub(super) fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
