//! `LineClient`, its builder, and the execution of described requests (pacing, retries,
//! error mapping).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{ACCEPTED_REQUEST_ID, ApiError, LineError, REQUEST_ID, header_id};
use super::ratelimit::{LocalRateLimiter, RateLimiter, RateLimits};
use super::request::{Body, Host, Replay, Request};
use super::retry::{CallOutcome, RetryPolicy};
use super::token::{StaticToken, TokenSource};
use crate::RequestId;

/// LINE's JSON API host.
pub const DEFAULT_BASE_URL: &str = "https://api.line.me";
/// LINE's host for binary uploads and downloads.
pub const DEFAULT_DATA_BASE_URL: &str = "https://api-data.line.me";
const RETRY_KEY_HEADER: &str = "x-line-retry-key";

/// A LINE Messaging API client for one channel.
///
/// Cheap to clone: clones share one connection pool, one set of rate-limit buckets and one
/// configuration, so there is no need to wrap it in an `Arc`.
///
/// ```no_run
/// # async fn run() -> Result<(), enishi::line::LineError> {
/// use enishi::line::message::Message;
/// use enishi::line::{LineClient, PushRequest};
/// use enishi::LineUserId;
///
/// let client = LineClient::builder()
///     .channel_access_token(std::env::var("LINE_CHANNEL_ACCESS_TOKEN").unwrap_or_default())
///     .build()?;
/// let user: LineUserId = "U0123456789abcdef0123456789abcdef".parse().expect("valid id");
/// let sent = client.push(PushRequest::new(user, vec![Message::text("Thanks for linking!")])).await?;
/// println!("accepted as {:?}", sent.accepted.request_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LineClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Where the `Bearer` token comes from (asked before every attempt).
    token: Arc<dyn TokenSource>,
    base_url: String,
    data_base_url: String,
    request_timeout: Duration,
    retry: RetryPolicy,
    limits: RateLimits,
    limiter: Arc<dyn RateLimiter>,
}

impl fmt::Debug for LineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClient")
            .field("base_url", &crate::redact::url(&self.inner.base_url))
            .field("data_base_url", &crate::redact::url(&self.inner.data_base_url))
            .field("token_source", &self.inner.token)
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .field("limits", &self.inner.limits)
            .field("limiter", &self.inner.limiter)
            .finish_non_exhaustive()
    }
}

/// Configures a [`LineClient`]. Setters never fail; [`build`](Self::build) reports the first
/// invalid value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct LineClientBuilder {
    token: Option<SecretString>,
    token_source: Option<Arc<dyn TokenSource>>,
    base_url: String,
    data_base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    limits: RateLimits,
    limiter: Option<Arc<dyn RateLimiter>>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for LineClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClientBuilder")
            .field("channel_access_token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_source", &self.token_source)
            .field("base_url", &crate::redact::url(&self.base_url))
            .field("data_base_url", &crate::redact::url(&self.data_base_url))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("limits", &self.limits)
            .field("limiter", &self.limiter)
            .field("http", &self.http.is_some())
            .finish()
    }
}

impl Default for LineClientBuilder {
    fn default() -> Self {
        Self {
            token: None,
            token_source: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            data_base_url: DEFAULT_DATA_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            limits: RateLimits::default(),
            limiter: None,
            http: None,
        }
    }
}

impl LineClientBuilder {
    /// The channel access token (required). Kept secret: never printed by `Debug`.
    pub fn channel_access_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// Where the token comes from instead of a fixed one: e.g. a [`RotatingToken`](super::RotatingToken)
    /// that issues v2.1 or stateless tokens and replaces them before they expire. Takes
    /// precedence over [`channel_access_token`](Self::channel_access_token).
    pub fn token_source(mut self, source: Arc<dyn TokenSource>) -> Self {
        self.token_source = Some(source);
        self
    }

    /// The JSON API host (default [`DEFAULT_BASE_URL`]); point it at a fake server in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The data host for uploads (default [`DEFAULT_DATA_BASE_URL`]).
    pub fn data_base_url(mut self, url: impl Into<String>) -> Self {
        self.data_base_url = url.into();
        self
    }

    /// TCP connect timeout (default 5 s). Ignored when an own `reqwest::Client` is given.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout of each attempt, from sending to the end of the body (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Client-side rate limits (default: LINE's documented limits).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the rate-limit buckets live (default: a [`LocalRateLimiter`] in this process,
    /// shared by the client's clones). Give every process of a channel the same shared
    /// limiter (e.g. `RedisRateLimiter`, feature `redis`) so that together they stay under
    /// LINE's channel-wide limits; [`rate_limits`](Self::rate_limits) still says which
    /// classes are paced and how fast.
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Uses a caller-supplied `reqwest::Client` (its own pool, proxy, TLS and timeouts).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`LineError::Config`] when neither a token nor a token source is given, the token is
    /// not a valid header value, a base URL is not an absolute http(s) URL, or the HTTP client
    /// cannot be built.
    pub fn build(self) -> Result<LineClient, LineError> {
        let token: Arc<dyn TokenSource> = match (self.token_source, self.token) {
            (Some(source), _) => source,
            (None, Some(token)) => Arc::new(StaticToken::new(token.expose_secret())?),
            (None, None) => {
                return Err(LineError::Config("a channel access token is required".into()));
            }
        };
        let base_url = check_base_url("base_url", &self.base_url)?;
        let data_base_url = check_base_url("data_base_url", &self.data_base_url)?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .user_agent(concat!("enishi/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| LineError::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        Ok(LineClient {
            inner: Arc::new(Inner {
                http,
                token,
                base_url,
                data_base_url,
                request_timeout: self.request_timeout,
                retry: self.retry,
                limits: self.limits,
                limiter: self.limiter.unwrap_or_else(|| Arc::new(LocalRateLimiter::new())),
            }),
        })
    }
}

pub(crate) fn check_base_url(name: &str, value: &str) -> Result<String, LineError> {
    let shown = crate::redact::url(value);
    let url = url::Url::parse(value)
        .map_err(|e| LineError::Config(format!("{name} {shown:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(LineError::Config(format!("{name} {shown:?} must be an http(s) URL")));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A successful answer, before decoding.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) endpoint: &'static str,
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) accepted_request_id: Option<RequestId>,
    /// A 409 to a request with a retry key: LINE had accepted it before.
    pub(crate) already_accepted: bool,
}

/// A successful answer whose body is still to be read.
#[derive(Debug)]
pub(crate) struct StreamedAnswer {
    pub(crate) endpoint: &'static str,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) response: reqwest::Response,
}

enum Sent {
    Buffered(Answer),
    Streaming(StreamedAnswer),
}

impl Answer {
    /// Decodes the body as `T`, keeping the raw body on failure.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, LineError> {
        let body: &[u8] = if self.body.is_empty() { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(|source| LineError::Decode {
            endpoint: self.endpoint,
            status: self.status,
            request_id: self.request_id.clone(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            source,
        })
    }
}

impl LineClient {
    /// A builder; only the channel access token is required.
    pub fn builder() -> LineClientBuilder {
        LineClientBuilder::default()
    }

    /// A client with LINE's hosts and default settings.
    ///
    /// # Errors
    /// [`LineError::Config`] when the token is empty or not a valid header value.
    pub fn new(channel_access_token: impl Into<String>) -> Result<Self, LineError> {
        Self::builder().channel_access_token(channel_access_token).build()
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The per-attempt timeout in use (some uploads use a longer one).
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// The JSON API base URL in use.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Sends a described request: paces it, retries it when that is safe, maps errors.
    pub(crate) async fn execute(&self, req: Request) -> Result<Answer, LineError> {
        match self.send(req, false).await? {
            Sent::Buffered(answer) => Ok(answer),
            Sent::Streaming(response) => {
                let endpoint = response.endpoint;
                let status = response.response.status();
                let body = response
                    .response
                    .bytes()
                    .await
                    .map_err(|source| LineError::Transport { endpoint, attempts: 1, source })?;
                Ok(Answer {
                    endpoint,
                    status,
                    body: body.to_vec(),
                    request_id: response.request_id,
                    accepted_request_id: None,
                    already_accepted: false,
                })
            }
        }
    }

    /// Sends a described request like [`execute`](Self::execute), but hands back a successful
    /// answer with its body unread, for streaming downloads. Errors are read and mapped as
    /// usual.
    pub(crate) async fn execute_streaming(
        &self,
        req: Request,
    ) -> Result<StreamedAnswer, LineError> {
        match self.send(req, true).await? {
            Sent::Streaming(response) => Ok(response),
            Sent::Buffered(answer) => Err(LineError::Config(format!(
                "internal: {} was buffered instead of streamed",
                answer.endpoint
            ))),
        }
    }

    async fn send(&self, req: Request, stream: bool) -> Result<Sent, LineError> {
        let inner = &*self.inner;
        let base = match req.host {
            Host::Api => &inner.base_url,
            Host::Data => &inner.data_base_url,
        };
        let url = format!("{base}{}", req.path);
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut refreshed = false;
        loop {
            attempts += 1;
            if let Some(limit) = inner.limits.get(req.class) {
                inner.limiter.acquire(req.bucket, req.class, limit).await.map_err(|source| {
                    LineError::RateLimiter { endpoint: req.endpoint, attempts, source }
                })?;
            }
            let token = inner.token.token().await?;
            let mut rb = inner
                .http
                .request(req.method.clone(), &url)
                .header(http::header::AUTHORIZATION, token.header().clone())
                .timeout(req.timeout.unwrap_or(inner.request_timeout));
            if !req.query.is_empty() {
                rb = rb.query(&req.query);
            }
            if let Replay::RetryKey(key) = &req.replay {
                rb = rb.header(RETRY_KEY_HEADER, key.as_str());
            }
            for (name, value) in &req.headers {
                rb = rb.header(*name, value.as_str());
            }
            rb = match &req.body {
                Body::None => rb,
                Body::Json(bytes) => {
                    rb.header(http::header::CONTENT_TYPE, "application/json").body(bytes.clone())
                }
                Body::Bytes { content_type, data } => {
                    rb.header(http::header::CONTENT_TYPE, *content_type).body(data.clone())
                }
            };
            let result = match rb.send().await {
                Ok(resp) if stream && resp.status().is_success() => {
                    tracing::debug!(
                        target: "enishi::line",
                        endpoint = %req.endpoint,
                        status = resp.status().as_u16(),
                        attempt = attempts,
                        "LINE call (streamed)"
                    );
                    return Ok(Sent::Streaming(StreamedAnswer {
                        endpoint: req.endpoint,
                        request_id: header_id(resp.headers(), REQUEST_ID),
                        response: resp,
                    }));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|body| (status, headers, body.to_vec()))
                }
                Err(e) => Err(e),
            };
            let (status, headers, body) = match result {
                Ok(answer) => answer,
                Err(source) => {
                    let outcome = if source.is_timeout() {
                        CallOutcome::Timeout
                    } else {
                        CallOutcome::Connection
                    };
                    if let Some(wait) = self.retry_wait(&req, outcome, attempts, started) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(LineError::Transport { endpoint: req.endpoint, attempts, source });
                }
            };
            tracing::debug!(
                target: "enishi::line",
                endpoint = %req.endpoint,
                status = status.as_u16(),
                request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
                attempt = attempts,
                "LINE call"
            );
            let has_key = matches!(req.replay, Replay::RetryKey(_));
            if status.is_success() || (status == StatusCode::CONFLICT && has_key) {
                return Ok(Sent::Buffered(Answer {
                    endpoint: req.endpoint,
                    status,
                    request_id: header_id(&headers, REQUEST_ID),
                    accepted_request_id: header_id(&headers, ACCEPTED_REQUEST_ID),
                    already_accepted: status == StatusCode::CONFLICT,
                    body,
                }));
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed && inner.token.invalidate(&token) {
                // A rotated-away or revoked token: retry once with a fresh one.
                refreshed = true;
                attempts -= 1;
                continue;
            }
            let mut error = ApiError::from_answer(req.endpoint, status, &headers, &body);
            let outcome =
                CallOutcome::Answer { status, headers: &headers, message: &error.message };
            if let Some(wait) = self.retry_wait(&req, outcome, attempts, started) {
                tokio::time::sleep(wait).await;
                continue;
            }
            error.attempts = attempts;
            return Err(LineError::Api(Box::new(error)));
        }
    }

    /// How long to wait before the next attempt, or `None` to stop.
    fn retry_wait(
        &self,
        req: &Request,
        outcome: CallOutcome<'_>,
        attempts: u32,
        started: Instant,
    ) -> Option<Duration> {
        if req.replay == Replay::Never {
            return None;
        }
        self.inner.retry.decide(outcome, attempts, started.elapsed()).wait()
    }
}

// Compile-time guarantee that clients and errors cross threads and tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<LineClient>();
    assert_send_sync::<LineError>();
};
