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

use super::wire::{
    BACKEND, EcforcePage, error_message, parse_customers_page, parse_orders_page,
    parse_products_page, parse_subscriptions_page,
};
use crate::commerce::auth::{AuthError, CustomerAuthenticator, Password};
use crate::commerce::backend::{
    Capabilities, CommerceBackend, CommerceResult, ListQuery, Page, PageStream,
};
use crate::commerce::error::CommerceError;
use crate::commerce::model::{Cursor, Customer, Order, Product, Record, Subscription};
use crate::commerce::time::{format_jst_filter, format_jst_response};
use crate::line::{Decision, Outcome, RetryPolicy};
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

/// Builds an [`EcforceClient`].
#[must_use]
pub struct EcforceClientBuilder {
    base_url: String,
    token: SecretString,
    min_interval: Duration,
    retry: RetryPolicy,
    page_size: u32,
    line_field: Option<String>,
    timeout: Duration,
    http: Option<reqwest::Client>,
    sign_in_limit: (u32, Duration),
}

impl fmt::Debug for EcforceClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcforceClientBuilder")
            .field("base_url", &self.base_url)
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

    /// When to retry 429s, 5xx and connection failures (reads and `PUT`s only).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
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

    /// The local customer sign-in limit per e-mail (default 5 per hour, as ecforce).
    pub fn sign_in_limit(mut self, attempts: u32, per: Duration) -> Self {
        self.sign_in_limit = (attempts.max(1), per);
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
                next_slot: tokio::sync::Mutex::new(None),
                retry: self.retry,
                page_size: self.page_size,
                line_field: self.line_field,
                timeout: self.timeout,
                sign_in_limit: self.sign_in_limit,
                sign_ins: Mutex::new(HashMap::new()),
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
    next_slot: tokio::sync::Mutex<Option<Instant>>,
    retry: RetryPolicy,
    page_size: u32,
    line_field: Option<String>,
    timeout: Duration,
    sign_in_limit: (u32, Duration),
    sign_ins: Mutex<HashMap<String, VecDeque<Instant>>>,
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
            .field("base_url", &self.inner.base.as_str())
            .field("token", &"<redacted>")
            .field("min_interval", &self.inner.min_interval)
            .field("page_size", &self.inner.page_size)
            .finish_non_exhaustive()
    }
}

enum Resource {
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
    fn include(&self) -> Option<&'static str> {
        match self {
            Self::Orders | Self::Subscriptions => Some("order_items"),
            Self::Products => Some("variants"),
            Self::Customers => None,
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
            retry: RetryPolicy::default(),
            page_size: ECFORCE_MAX_PER,
            line_field: Some("line_id".into()),
            timeout: Duration::from_secs(30),
            http: None,
            sign_in_limit: (5, Duration::from_secs(3600)),
        }
    }

    async fn pace(&self) {
        if self.inner.min_interval.is_zero() {
            return;
        }
        let wait_until = {
            let mut slot = self.inner.next_slot.lock().await;
            let now = Instant::now();
            let at = slot.map_or(now, |s| s.max(now));
            *slot = Some(at + self.inner.min_interval);
            at
        };
        tokio::time::sleep_until(wait_until).await;
    }

    fn url(&self, path: &str) -> Result<url::Url, CommerceError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| CommerceError::Transport { backend: BACKEND, source: Box::new(e) })
    }

    /// Sends one request with pacing and retries. `retry` is false for non-idempotent writes,
    /// which are retried only when the connection was never made.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        retry: bool,
        admin: bool,
    ) -> CommerceResult<(StatusCode, HeaderMap, String)> {
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
            let (outcome_status, error) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.text().await {
                        Ok(text) => {
                            let decision = self.inner.retry.decide(
                                Outcome::Answer { status, headers: &headers, message: "" },
                                attempts,
                                started.elapsed(),
                            );
                            match decision {
                                Decision::RetryAfter(wait) if retry && !status.is_success() => {
                                    tokio::time::sleep(wait).await;
                                    continue;
                                }
                                _ => return map_status(status, &headers, text),
                            }
                        }
                        Err(e) => (Outcome::Connection, e),
                    }
                }
                Err(e) if e.is_timeout() => (Outcome::Timeout, e),
                Err(e) => (Outcome::Connection, e),
            };
            let may_retry = retry || error.is_connect();
            match self.inner.retry.decide(outcome_status, attempts, started.elapsed()) {
                Decision::RetryAfter(wait) if may_retry => tokio::time::sleep(wait).await,
                _ => {
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
        if let Some(include) = resource.include() {
            q.push(("include", include.into()));
        }
        let (_, _, body) = self.send(Method::GET, resource.path(), &q, None, true, true).await?;
        Ok(body)
    }

    fn list<T: Record + Send + 'static>(
        &self,
        resource: Resource,
        query: ListQuery,
        parse: fn(&str) -> CommerceResult<EcforcePage<T>>,
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
                    let page = match client.get_page(&resource, &walk).await.and_then(|b| parse(&b))
                    {
                        Ok(page) => page,
                        Err(e) => {
                            walk.done = true;
                            return Some((Err(e), walk));
                        }
                    };
                    let full = page.count >= per;
                    let inside = |c: &Cursor| walk.query.contains(c);
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
                    if records.is_empty() && rejected.is_empty() {
                        continue;
                    }
                    let cursor = walk.after.clone();
                    return Some((Ok(Page::new(records, rejected, cursor)), walk));
                }
            }
        }))
    }

    /// Signs a customer in (`POST /api/v2/customers/sign_in`), limited locally to the
    /// configured attempts per e-mail (ecforce allows 5 per hour).
    async fn sign_in(&self, email: &str, password: &Password) -> Result<CustomerId, AuthError> {
        {
            let mut attempts =
                self.inner.sign_ins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (limit, window) = self.inner.sign_in_limit;
            let now = Instant::now();
            let seen = attempts.entry(email.trim().to_lowercase()).or_default();
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
        let result = self
            .send(Method::POST, "api/v2/customers/sign_in.json", &[], Some(&body), false, false)
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
}

fn map_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: String,
) -> CommerceResult<(StatusCode, HeaderMap, String)> {
    if status.is_success() {
        return Ok((status, headers.clone(), body));
    }
    let message = error_message(&body);
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CommerceError::Unauthenticated { backend: BACKEND, message }
        }
        StatusCode::NOT_FOUND => CommerceError::NotFound { backend: BACKEND, what: message },
        StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
            CommerceError::Conflict { backend: BACKEND, message }
        }
        StatusCode::TOO_MANY_REQUESTS => CommerceError::RateLimited {
            backend: BACKEND,
            retry_after: crate::line::retry_after(headers),
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
        self.list(Resource::Customers, query, parse_customers_page)
    }

    fn orders(&self, query: ListQuery) -> PageStream<'_, Order> {
        self.list(Resource::Orders, query, parse_orders_page)
    }

    fn subscriptions(&self, query: ListQuery) -> PageStream<'_, Subscription> {
        self.list(Resource::Subscriptions, query, parse_subscriptions_page)
    }

    fn products(&self, query: ListQuery) -> PageStream<'_, Product> {
        self.list(Resource::Products, query, parse_products_page)
    }

    async fn customer(&self, id: &CustomerId) -> CommerceResult<Customer> {
        let path = format!("api/v2/admin/customers/{}.json", urlencode(id.as_str()));
        let (_, _, body) =
            self.send(Method::GET, &path, &[], None, true, true).await.map_err(|e| match e {
                CommerceError::NotFound { backend, .. } => {
                    CommerceError::NotFound { backend, what: format!("customer {id}") }
                }
                e => e,
            })?;
        let mut page = parse_customers_page(&body)?;
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
        let mut attrs = serde_json::Map::new();
        attrs.insert(field.clone(), line.map_or(serde_json::Value::Null, |l| l.as_str().into()));
        if field == "line_id" {
            let linked = line.map(|_| format_jst_response(Utc::now()));
            attrs.insert(
                "line_id_linked_at".into(),
                linked.map_or(serde_json::Value::Null, Into::into),
            );
        }
        let body = json!({ "customer": attrs });
        let path = format!("api/v2/admin/customers/{}.json", urlencode(id.as_str()));
        // PUT sets a value, so it is idempotent and may be retried.
        self.send(Method::PUT, &path, &[], Some(&body), true, true).await.map_err(|e| match e {
            CommerceError::NotFound { backend, .. } => {
                CommerceError::NotFound { backend, what: format!("customer {id}") }
            }
            e => e,
        })?;
        Ok(())
    }

    async fn grant_points(&self, id: &CustomerId, points: i64, reason: &str) -> CommerceResult<()> {
        let body = json!({ "point": { "point": points, "point_event_description": reason } });
        let path = format!("api/v2/admin/customers/{}/points.json", urlencode(id.as_str()));
        // POST adds points: never resent once the request may have arrived.
        self.send(Method::POST, &path, &[], Some(&body), false, true).await.map_err(
            |e| match e {
                CommerceError::NotFound { backend, .. } => {
                    CommerceError::NotFound { backend, what: format!("customer {id}") }
                }
                e => e,
            },
        )?;
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

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
