//! Channel access tokens: the [`TokenSource`] the client asks before every call, a static
//! token, channel access tokens v2.1 (JWT assertion signed RS256 with the channel's assertion
//! private key) and stateless tokens, and a source that rotates them before they expire.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::error::{ApiError, LineError};
use super::line_client::DEFAULT_BASE_URL;

/// How long a JWT assertion is valid (LINE's maximum is 30 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 30 * 60;
/// The longest lifetime LINE grants a v2.1 token (30 days).
pub const MAX_V21_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A channel access token ready to go into an `Authorization` header. Its `Debug` output is
/// redacted and the header value is marked sensitive, so the token is never logged.
#[derive(Clone)]
pub struct AccessToken {
    header: HeaderValue,
}

impl AccessToken {
    /// Wraps a token.
    ///
    /// # Errors
    /// [`LineError::Config`] when the token is empty or has characters not allowed in a header.
    pub fn new(token: &str) -> Result<Self, LineError> {
        if token.is_empty() {
            return Err(LineError::Config("the channel access token is empty".into()));
        }
        let mut header = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
            LineError::Config(
                "the channel access token has characters not allowed in a header".into(),
            )
        })?;
        header.set_sensitive(true);
        Ok(Self { header })
    }

    /// The token itself (without `Bearer `), e.g. to verify or revoke it.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.header.to_str().ok().and_then(|s| s.strip_prefix("Bearer ")).unwrap_or_default()
    }

    /// The `Authorization` header value (`Bearer <token>`, marked sensitive).
    #[must_use]
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.header.as_bytes() == other.header.as_bytes()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Where a [`LineClient`](super::LineClient) gets its channel access token, asked before every
/// attempt of every call. A [`StaticToken`] is one; a [`RotatingToken`] issues tokens and
/// replaces them before they expire.
#[async_trait::async_trait]
pub trait TokenSource: fmt::Debug + Send + Sync + 'static {
    /// The token to send now.
    ///
    /// # Errors
    /// Whatever stopped the source from producing a token (e.g. LINE refused to issue one).
    async fn token(&self) -> Result<AccessToken, LineError>;

    /// LINE answered 401 to a call made with `rejected`. A source that can get a new token
    /// drops `rejected` and returns `true` (the client then retries once with a fresh one);
    /// the default returns `false`.
    fn invalidate(&self, rejected: &AccessToken) -> bool {
        let _ = rejected;
        false
    }
}

/// A token that never changes: a long-lived token from the console, or one the host manages.
#[derive(Clone)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// Wraps a token.
    ///
    /// # Errors
    /// [`LineError::Config`] when the token is empty or not a valid header value.
    pub fn new(token: &str) -> Result<Self, LineError> {
        AccessToken::new(token).map(Self)
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

#[async_trait::async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<AccessToken, LineError> {
        Ok(self.0.clone())
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    n: String,
    e: String,
    d: String,
    p: String,
    q: String,
    dp: String,
    dq: String,
    qi: String,
}

/// A channel's assertion signing key: the RSA private key (a JWK) whose public half was
/// registered in the LINE Developers Console, the `kid` LINE gave it, and the channel ID.
/// Signs the JWT assertions that issue v2.1 and stateless tokens. Never printed by `Debug`.
pub struct AssertionKey {
    channel_id: String,
    kid: String,
    key: ring::signature::RsaKeyPair,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("channel_id", &self.channel_id)
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn b64url(field: &'static str, value: &str) -> Result<Vec<u8>, LineError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| LineError::Config(format!("assertion key: `{field}` is not base64url")))
}

impl AssertionKey {
    /// Reads the private key from its JWK (`{"kty":"RSA","n":..,"e":..,"d":..,"p":..,"q":..,
    /// "dp":..,"dq":..,"qi":..}`, as the console's key generation produces it).
    ///
    /// # Errors
    /// [`LineError::Config`] when the channel ID or kid is empty, the JWK is not an RSA private
    /// key, or ring rejects the key (e.g. shorter than 2048 bits). The message never contains
    /// key material.
    pub fn from_jwk(
        channel_id: impl Into<String>,
        kid: impl Into<String>,
        private_jwk: &SecretString,
    ) -> Result<Self, LineError> {
        let (channel_id, kid) = (channel_id.into(), kid.into());
        if channel_id.is_empty() || kid.is_empty() {
            return Err(LineError::Config("assertion key: channel ID and kid are required".into()));
        }
        let jwk: Jwk = serde_json::from_str(private_jwk.expose_secret()).map_err(|_| {
            LineError::Config("assertion key: not a JWK with the RSA private fields".into())
        })?;
        if jwk.kty != "RSA" {
            return Err(LineError::Config(format!("assertion key: kty {:?} is not RSA", jwk.kty)));
        }
        let components = ring::rsa::KeyPairComponents {
            public_key: ring::rsa::PublicKeyComponents {
                n: b64url("n", &jwk.n)?,
                e: b64url("e", &jwk.e)?,
            },
            d: b64url("d", &jwk.d)?,
            p: b64url("p", &jwk.p)?,
            q: b64url("q", &jwk.q)?,
            dP: b64url("dp", &jwk.dp)?,
            dQ: b64url("dq", &jwk.dq)?,
            qInv: b64url("qi", &jwk.qi)?,
        };
        let key = ring::signature::RsaKeyPair::from_components(&components)
            .map_err(|e| LineError::Config(format!("assertion key rejected: {e}")))?;
        Ok(Self { channel_id, kid, key })
    }

    /// The channel ID (the JWT's `iss` and `sub`).
    #[must_use]
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The key ID LINE assigned to the registered public key.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed JWT assertion valid for 30 minutes from `now_unix`; `token_exp` asks for a
    /// v2.1 token of that lifetime (seconds).
    ///
    /// # Errors
    /// [`LineError::Config`] when signing fails (it does not for a key ring accepted).
    pub fn assertion(&self, now_unix: i64, token_exp: Option<u64>) -> Result<String, LineError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'static str,
            kid: &'a str,
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'static str,
            exp: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            token_exp: Option<u64>,
        }
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = Header { alg: "RS256", typ: "JWT", kid: &self.kid };
        let claims = Claims {
            iss: &self.channel_id,
            sub: &self.channel_id,
            aud: "https://api.line.me/",
            exp: now_unix + ASSERTION_LIFETIME_SECS,
            token_exp,
        };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| LineError::Config("could not sign the JWT assertion".into()))?;
        Ok(format!("{signing_input}.{}", engine.encode(signature)))
    }
}

/// base64url (no padding) of the JSON of `value`.
fn b64_json(value: &impl Serialize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(value).unwrap_or_default())
}

/// A token LINE issued, with its lifetime.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token.
    pub access_token: AccessToken,
    /// Seconds from issuance to expiry.
    pub expires_in: u64,
    /// The key ID of a v2.1 token (for revocation and [`ChannelTokenClient::valid_key_ids`]);
    /// `None` for stateless tokens.
    pub key_id: Option<String>,
}

impl IssuedToken {
    /// A token issued by some other means (e.g. by a [`TokenIssuer`] of the host's own).
    #[must_use]
    pub fn new(access_token: AccessToken, expires_in: u64, key_id: Option<String>) -> Self {
        Self { access_token, expires_in, key_id }
    }
}

/// What [`ChannelTokenClient::verify`] says about a token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The channel the token was issued for.
    pub client_id: String,
    /// Seconds left before it expires.
    pub expires_in: i64,
    /// The permissions granted.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Calls LINE's channel access token endpoints (`/oauth2/v2.1/*`, `/oauth2/v3/token`). These
/// are authenticated by a JWT assertion or the channel secret, not by a token, so they live
/// apart from [`LineClient`](super::LineClient). Cheap to clone.
#[derive(Clone)]
pub struct ChannelTokenClient {
    http: reqwest::Client,
    base_url: Arc<str>,
}

impl fmt::Debug for ChannelTokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelTokenClient")
            .field("base_url", &crate::redact::url(&self.base_url))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IssueWire {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    key_id: Option<String>,
}

impl ChannelTokenClient {
    /// A client for `base_url` (LINE's is [`DEFAULT_BASE_URL`]) over `http`.
    ///
    /// # Errors
    /// [`LineError::Config`] when `base_url` is not an absolute http(s) URL.
    pub fn new(base_url: &str, http: reqwest::Client) -> Result<Self, LineError> {
        let base = super::line_client::check_base_url("base_url", base_url)?;
        Ok(Self { http, base_url: Arc::from(base) })
    }

    /// A client for LINE's host with a default HTTP client.
    ///
    /// # Errors
    /// [`LineError::Config`] when the HTTP client cannot be built.
    pub fn line() -> Result<Self, LineError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| LineError::Config(format!("cannot build the HTTP client: {e}")))?;
        Self::new(DEFAULT_BASE_URL, http)
    }

    async fn call(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, LineError> {
        let response = request.send().await.map_err(|source| LineError::Transport {
            endpoint,
            attempts: 1,
            source,
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|source| LineError::Transport {
            endpoint,
            attempts: 1,
            source,
        })?;
        tracing::debug!(target: "enishi::line", endpoint, status = status.as_u16(), "LINE token call");
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let mut error = ApiError::from_answer(endpoint, status, &headers, &body);
        if error.message.is_empty() {
            // OAuth endpoints answer `{"error", "error_description"}`.
            #[derive(Deserialize)]
            struct OAuthError {
                #[serde(default)]
                error: String,
                #[serde(default)]
                error_description: Option<String>,
            }
            if let Ok(e) = serde_json::from_slice::<OAuthError>(&body) {
                error.message = match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                };
            }
        }
        Err(LineError::Api(Box::new(error)))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        endpoint: &'static str,
        body: &[u8],
    ) -> Result<T, LineError> {
        serde_json::from_slice(body).map_err(|source| LineError::Decode {
            endpoint,
            status: StatusCode::OK,
            request_id: None,
            // Token answers are credentials: never keep them in an error.
            body: String::from("<token answer withheld>"),
            source,
        })
    }

    fn issued(endpoint: &'static str, body: &[u8]) -> Result<IssuedToken, LineError> {
        let wire: IssueWire = Self::decode(endpoint, body)?;
        Ok(IssuedToken {
            access_token: AccessToken::new(&wire.access_token)?,
            expires_in: wire.expires_in,
            key_id: wire.key_id,
        })
    }

    /// Issues a channel access token v2.1 valid for `lifetime` (at most 30 days).
    ///
    /// # Errors
    /// [`LineError::Validation`] for a lifetime outside 1 s – 30 days; [`LineError::Api`]
    /// (e.g. 400 `invalid_client` for an unknown kid or a bad signature),
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn issue_v21(
        &self,
        key: &AssertionKey,
        lifetime: Duration,
    ) -> Result<IssuedToken, LineError> {
        let mut v = crate::line::Validator::new();
        if lifetime.is_zero() || lifetime > MAX_V21_TOKEN_LIFETIME {
            v.violation_at("token_exp", "must be 1 second to 30 days");
        }
        v.finish()?;
        let assertion = key.assertion(chrono::Utc::now().timestamp(), Some(lifetime.as_secs()))?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let request = self.http.post(format!("{}/oauth2/v2.1/token", self.base_url)).form(&form);
        let body = self.call("issue_token_v21", request).await?;
        Self::issued("issue_token_v21", &body)
    }

    /// Issues a stateless channel access token (valid 15 minutes, cannot be revoked) with a
    /// JWT assertion.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn issue_stateless(&self, key: &AssertionKey) -> Result<IssuedToken, LineError> {
        let assertion = key.assertion(chrono::Utc::now().timestamp(), None)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let request = self.http.post(format!("{}/oauth2/v3/token", self.base_url)).form(&form);
        let body = self.call("issue_token_stateless", request).await?;
        Self::issued("issue_token_stateless", &body)
    }

    /// Issues a stateless channel access token with the channel ID and secret.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn issue_stateless_with_secret(
        &self,
        channel_id: &str,
        channel_secret: &SecretString,
    ) -> Result<IssuedToken, LineError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", channel_id),
            ("client_secret", channel_secret.expose_secret()),
        ];
        let request = self.http.post(format!("{}/oauth2/v3/token", self.base_url)).form(&form);
        let body = self.call("issue_token_stateless", request).await?;
        Self::issued("issue_token_stateless", &body)
    }

    /// Whether a v2.1 token is valid, for which channel, and for how long.
    ///
    /// # Errors
    /// [`LineError::Api`] (400 `invalid_request` for an invalid or expired token),
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn verify(&self, token: &AccessToken) -> Result<TokenInfo, LineError> {
        let request = self
            .http
            .get(format!("{}/oauth2/v2.1/verify", self.base_url))
            .query(&[("access_token", token.expose())]);
        let body = self.call("verify_token_v21", request).await?;
        Self::decode("verify_token_v21", &body)
    }

    /// Revokes a v2.1 token (needs the channel secret).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn revoke_v21(
        &self,
        channel_id: &str,
        channel_secret: &SecretString,
        token: &AccessToken,
    ) -> Result<(), LineError> {
        let form = [
            ("client_id", channel_id),
            ("client_secret", channel_secret.expose_secret()),
            ("access_token", token.expose()),
        ];
        let request = self.http.post(format!("{}/oauth2/v2.1/revoke", self.base_url)).form(&form);
        self.call("revoke_token_v21", request).await?;
        Ok(())
    }

    /// The key IDs of every valid v2.1 token of the channel.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn valid_key_ids(&self, key: &AssertionKey) -> Result<Vec<String>, LineError> {
        #[derive(Deserialize)]
        struct Wire {
            kids: Vec<String>,
        }
        let assertion = key.assertion(chrono::Utc::now().timestamp(), None)?;
        let request = self
            .http
            .get(format!("{}/oauth2/v2.1/tokens/kid", self.base_url))
            .query(&[("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion)]);
        let body = self.call("token_key_ids_v21", request).await?;
        Ok(Self::decode::<Wire>("token_key_ids_v21", &body)?.kids)
    }
}

/// Which kind of token a [`RotatingToken`] issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// Channel access token v2.1 with this lifetime (at most 30 days).
    V21(Duration),
    /// Stateless token (15 minutes; cannot be revoked, no limit on how many are active).
    Stateless,
}

/// Issues a new channel access token when a [`RotatingToken`] needs one.
#[async_trait::async_trait]
pub trait TokenIssuer: fmt::Debug + Send + Sync + 'static {
    /// Issues a token.
    ///
    /// # Errors
    /// Whatever stopped the issuance; the [`RotatingToken`] reports it to its callers and
    /// tries again on the next call.
    async fn issue(&self) -> Result<IssuedToken, LineError>;

    /// The channel, for logs.
    fn channel_id(&self) -> &str;
}

/// The usual [`TokenIssuer`]: a [`ChannelTokenClient`] and the channel's [`AssertionKey`].
#[derive(Debug)]
pub struct AssertionIssuer {
    client: ChannelTokenClient,
    key: AssertionKey,
    kind: TokenKind,
}

impl AssertionIssuer {
    /// Issues `kind` tokens through `client`, signing assertions with `key`.
    #[must_use]
    pub fn new(client: ChannelTokenClient, key: AssertionKey, kind: TokenKind) -> Self {
        Self { client, key, kind }
    }
}

#[async_trait::async_trait]
impl TokenIssuer for AssertionIssuer {
    async fn issue(&self) -> Result<IssuedToken, LineError> {
        match self.kind {
            TokenKind::V21(lifetime) => self.client.issue_v21(&self.key, lifetime).await,
            TokenKind::Stateless => self.client.issue_stateless(&self.key).await,
        }
    }

    fn channel_id(&self) -> &str {
        self.key.channel_id()
    }
}

struct Cached {
    token: AccessToken,
    /// When to replace it (before it expires).
    refresh_at: Instant,
    key_id: Option<String>,
}

/// A [`TokenSource`] that issues tokens through a [`TokenIssuer`] (usually an
/// [`AssertionIssuer`]: the channel's [`AssertionKey`]) and replaces each one before it expires: when `refresh_margin` (default: a tenth of the lifetime, at least
/// 60 s) is left. Concurrent callers share one issuance (single flight); a failed issuance is
/// reported to the callers waiting for it, and the next call tries again. The token is never
/// logged: events carry only the key ID and the lifetime. Timed with tokio's clock.
pub struct RotatingToken {
    issuer: Box<dyn TokenIssuer>,
    refresh_margin: Option<Duration>,
    /// The current token (held only briefly, never across an await).
    cached: std::sync::Mutex<Option<Cached>>,
    /// Held across an issuance, so concurrent callers share one (single flight).
    issuing: tokio::sync::Mutex<()>,
    issued: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for RotatingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingToken")
            .field("issuer", &self.issuer)
            .field("refresh_margin", &self.refresh_margin)
            .field("issued", &self.issued_count())
            .finish_non_exhaustive()
    }
}

impl RotatingToken {
    /// A source issuing `kind` tokens through `client` with `key`.
    #[must_use]
    pub fn new(client: ChannelTokenClient, key: AssertionKey, kind: TokenKind) -> Self {
        Self::with_issuer(AssertionIssuer::new(client, key, kind))
    }

    /// A source getting its tokens from `issuer`.
    #[must_use]
    pub fn with_issuer(issuer: impl TokenIssuer) -> Self {
        Self {
            issuer: Box::new(issuer),
            refresh_margin: None,
            cached: std::sync::Mutex::new(None),
            issuing: tokio::sync::Mutex::new(()),
            issued: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Replace a token when this much of its lifetime is left (default: a tenth of the
    /// lifetime, at least 60 s).
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// How many tokens this source has issued.
    #[must_use]
    pub fn issued_count(&self) -> u64 {
        self.issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key ID of the current v2.1 token, if one was issued.
    #[must_use]
    pub fn current_key_id(&self) -> Option<String> {
        self.cache().as_ref().and_then(|c| c.key_id.clone())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached token if it is not due for replacement.
    fn fresh(&self) -> Option<AccessToken> {
        let now = Instant::now();
        self.cache().as_ref().filter(|c| now < c.refresh_at).map(|c| c.token.clone())
    }
}

#[async_trait::async_trait]
impl TokenSource for RotatingToken {
    async fn token(&self) -> Result<AccessToken, LineError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        // Single flight: the callers queued behind an issuance find its token.
        let _issuing = self.issuing.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let now = Instant::now();
        let issued = match self.issuer.issue().await {
            Ok(issued) => issued,
            Err(error) => {
                tracing::warn!(
                    target: "enishi::line",
                    channel_id = self.issuer.channel_id(),
                    error = %error,
                    "issuing a channel access token failed"
                );
                return Err(error);
            }
        };
        self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lifetime = Duration::from_secs(issued.expires_in);
        let margin = self
            .refresh_margin
            .unwrap_or_else(|| (lifetime / 10).max(Duration::from_secs(60)))
            .min(lifetime);
        tracing::info!(
            target: "enishi::line",
            channel_id = self.issuer.channel_id(),
            key_id = issued.key_id.as_deref(),
            expires_in = issued.expires_in,
            "issued a channel access token"
        );
        let token = issued.access_token.clone();
        *self.cache() = Some(Cached {
            token: issued.access_token,
            refresh_at: now + (lifetime - margin),
            key_id: issued.key_id,
        });
        Ok(token)
    }

    fn invalidate(&self, rejected: &AccessToken) -> bool {
        // Only drop the token if it is still the cached one (another caller may have
        // replaced it already).
        let mut cached = self.cache();
        if cached.as_ref().is_some_and(|c| &c.token == rejected) {
            *cached = None;
        }
        true
    }
}
