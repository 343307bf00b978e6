//! LINE Login (OAuth 2.0 + OpenID Connect, PKCE S256) as a linking path (feature `client`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::flow::AccountLinker;
use super::grant::IncentiveOutcome;
use super::idtoken::{IdTokenClaims, IdTokenError, Jwks, verify_id_token, verify_id_token_es256};
use super::secret::{OneTimeSecret, pkce_challenge};
use super::store::{
    ConflictPolicy, LinkOutcome, LinkSource, LinkStore, LinkStoreError, RejectReason, Ticket,
    TicketKind,
};
use super::{LinkError, WriteBackTask};
use crate::CustomerId;

/// LINE Login's authorization endpoint.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://access.line.me/oauth2/v2.1/authorize";
/// LINE Login's token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://api.line.me/oauth2/v2.1/token";
/// LINE Login's JWKS (keys of ES256 ID tokens from the native SDKs and LIFF).
pub const DEFAULT_JWKS_URL: &str = "https://api.line.me/oauth2/v2.1/certs";

/// How long a fetched JWKS is reused when LINE's answer has no `Cache-Control: max-age`.
const JWKS_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// The longest `max-age` honoured (a day: LINE rotates keys without notice).
const JWKS_MAX_AGE_CAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The default least time between two JWKS fetches caused by an ID token with an unknown `kid`.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The JWKS last fetched. Behind an async mutex, so concurrent verifiers share one fetch.
#[derive(Default)]
struct JwksCache {
    /// The keys and when they were fetched.
    keys: Option<(tokio::time::Instant, Jwks)>,
    /// How long `keys` are fresh (LINE's `max-age`, or [`JWKS_MAX_AGE`]).
    max_age: Duration,
    /// When a fetch was last started, successful or not.
    last_attempt: Option<tokio::time::Instant>,
}

/// `max-age` of a `Cache-Control` header, if any.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("max-age").then_some(())?;
        seconds.trim().trim_matches('"').parse::<u64>().ok().map(Duration::from_secs)
    })
}

/// The add-friend option shown during login (`bot_prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BotPrompt {
    /// A checkbox on the consent screen.
    Normal,
    /// A separate screen after consent.
    Aggressive,
}

/// Why a LINE Login step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The `state` was rejected (unknown, replayed, expired, or issued for another customer:
    /// [`RejectReason::Mismatched`]), or the store failed.
    #[error(transparent)]
    Store(#[from] LinkStoreError),
    /// The user (or LINE) ended the login with an error at the callback (`error=…`).
    #[error("LINE Login returned {error:?}")]
    Denied {
        /// `error` (e.g. `access_denied`).
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The callback has no `code`.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The token endpoint refused the code.
    #[error("the token endpoint answered {status}: {error:?}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// `error`.
        error: Option<String>,
        /// `error_description`.
        description: Option<String>,
    },
    /// The token response has no `id_token` (the `openid` scope was not granted).
    #[error("the token response has no id_token")]
    NoIdToken,
    /// Calling the token endpoint failed.
    #[error("calling the LINE Login token endpoint failed")]
    Transport(#[source] reqwest::Error),
    /// The JWKS endpoint answered an error status.
    #[error("the JWKS endpoint answered {0}")]
    JwksEndpoint(u16),
    /// The ID token failed verification.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// Linking failed (a conflict under the reject policy).
    #[error(transparent)]
    Link(LinkError),
    /// The configuration is invalid.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// What was configured.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl LoginError {
    /// The ticket rejection reason when the `state` was rejected.
    #[must_use]
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Self::Store(e) => e.reject_reason(),
            _ => None,
        }
    }
}

/// The query of the callback request (`?code=…&state=…` or `?error=…&state=…`).
/// Lenient: LINE owns it and may add parameters.
#[derive(Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` enishi sent.
    pub state: Option<String>,
    /// `error`, when the login failed.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `true`/`false` when the add-friend option was shown.
    pub friendship_status_changed: Option<bool>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("CallbackParams")
            .field("code", &redact(&self.code))
            .field("state", &redact(&self.state))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("friendship_status_changed", &self.friendship_status_changed)
            .finish()
    }
}

/// The login state's secrets, kept (server-side) in the ticket's data.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateData {
    nonce: String,
    verifier: String,
}

/// A successful LINE Login callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginLinked {
    /// The verified ID-token claims.
    pub claims: IdTokenClaims,
    /// What storing the link did.
    pub outcome: LinkOutcome,
    /// The background write-back, when the link is new and one is configured.
    pub write_back: Option<WriteBackTask>,
    /// The link incentive's outcome (a new link, with an incentive on the linker).
    pub incentive: Option<IncentiveOutcome>,
    /// Whether the user added the account as a friend during login.
    pub friendship_status_changed: Option<bool>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// LINE Login as a linking path: the customer is logged in to the shop, then logs in with
/// LINE; the verified ID token's `sub` is linked to that customer. Needs a LINE Login channel
/// under the same provider as the Messaging API channel (so `sub` equals the webhook user ID).
#[derive(Clone)]
pub struct LineLogin {
    inner: Arc<LoginInner>,
}

struct LoginInner {
    channel_id: String,
    channel_secret: SecretString,
    redirect_uri: Url,
    authorize_url: Url,
    token_url: Url,
    jwks_url: Url,
    jwks: tokio::sync::Mutex<JwksCache>,
    jwks_refetch_interval: Duration,
    scope: String,
    bot_prompt: Option<BotPrompt>,
    ttl: Duration,
    store: Arc<dyn LinkStore>,
    linker: Option<AccountLinker>,
    policy: ConflictPolicy,
    http: reqwest::Client,
}

impl fmt::Debug for LineLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineLogin")
            .field("channel_id", &self.inner.channel_id)
            .field("channel_secret", &"<redacted>")
            .field("redirect_uri", &self.inner.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// Configures a [`LineLogin`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct LineLoginBuilder {
    channel_id: String,
    channel_secret: SecretString,
    redirect_uri: String,
    authorize_url: String,
    token_url: String,
    jwks_url: String,
    jwks_refetch_interval: Duration,
    scope: String,
    bot_prompt: Option<BotPrompt>,
    ttl: Duration,
    store: Arc<dyn LinkStore>,
    linker: Option<AccountLinker>,
    policy: ConflictPolicy,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for LineLoginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineLoginBuilder")
            .field("channel_id", &self.channel_id)
            .field("channel_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl LineLoginBuilder {
    /// The authorization endpoint (default [`DEFAULT_AUTHORIZE_URL`]).
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = url.into();
        self
    }
    /// The token endpoint (default [`DEFAULT_TOKEN_URL`]; tests point it at a fake).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self
    }
    /// The JWKS endpoint (default [`DEFAULT_JWKS_URL`]).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = url.into();
        self
    }
    /// The least time between two JWKS fetches caused by an ID token whose `kid` is not in
    /// the cached JWKS (default [`DEFAULT_JWKS_REFETCH_INTERVAL`], 5 minutes). Such a token
    /// is refused with [`IdTokenError::UnknownKey`] until then, so forged `kid`s cannot make
    /// the server call LINE for every request.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }
    /// Scopes (default `profile openid`; `openid` is required).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }
    /// Offers to add the official account as a friend.
    pub fn bot_prompt(mut self, prompt: BotPrompt) -> Self {
        self.bot_prompt = Some(prompt);
        self
    }
    /// Lifetime of a login `state` (default 10 minutes).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Links through this linker (its conflict policy, hook and write-back apply).
    pub fn linker(mut self, linker: AccountLinker) -> Self {
        self.linker = Some(linker);
        self
    }
    /// The conflict policy when no linker is set (default reject).
    pub fn conflict_policy(mut self, policy: ConflictPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Uses this HTTP client for the token endpoint.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds it.
    ///
    /// # Errors
    /// [`LoginError::InvalidConfig`] for a bad URL, an empty channel ID, or a scope without
    /// `openid`.
    pub fn build(self) -> Result<LineLogin, LoginError> {
        let parse = |what: &'static str, s: &str| {
            Url::parse(s)
                .map_err(|e| LoginError::InvalidConfig { what, reason: format!("{s:?}: {e}") })
        };
        if self.channel_id.is_empty() {
            return Err(LoginError::InvalidConfig { what: "channel ID", reason: "empty".into() });
        }
        if !self.scope.split(' ').any(|s| s == "openid") {
            return Err(LoginError::InvalidConfig {
                what: "scope",
                reason: "must include openid (the ID token carries the user ID)".into(),
            });
        }
        Ok(LineLogin {
            inner: Arc::new(LoginInner {
                redirect_uri: parse("redirect URI", &self.redirect_uri)?,
                authorize_url: parse("authorize URL", &self.authorize_url)?,
                token_url: parse("token URL", &self.token_url)?,
                jwks_url: parse("JWKS URL", &self.jwks_url)?,
                jwks: tokio::sync::Mutex::new(JwksCache::default()),
                jwks_refetch_interval: self.jwks_refetch_interval,
                channel_id: self.channel_id,
                channel_secret: self.channel_secret,
                scope: self.scope,
                bot_prompt: self.bot_prompt,
                ttl: self.ttl,
                store: self.store,
                linker: self.linker,
                policy: self.policy,
                http: self.http.unwrap_or_default(),
            }),
        })
    }
}

impl LineLogin {
    /// A builder for a LINE Login channel (`channel_id`, `channel_secret`) whose callback is
    /// `redirect_uri` (registered in the LINE Developers console).
    pub fn builder(
        channel_id: impl Into<String>,
        channel_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
        store: Arc<dyn LinkStore>,
    ) -> LineLoginBuilder {
        LineLoginBuilder {
            channel_id: channel_id.into(),
            channel_secret: SecretString::from(channel_secret.into()),
            redirect_uri: redirect_uri.into(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            token_url: DEFAULT_TOKEN_URL.into(),
            jwks_url: DEFAULT_JWKS_URL.into(),
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            scope: "profile openid".into(),
            bot_prompt: None,
            ttl: super::store::DEFAULT_TICKET_TTL,
            store,
            linker: None,
            policy: ConflictPolicy::Reject,
            http: None,
        }
    }

    /// Starts a login for the customer the host has authenticated: stores a fresh `state`
    /// (bound to the customer, carrying the OIDC nonce and PKCE verifier) and returns the
    /// authorization URL to redirect the browser to.
    ///
    /// # Errors
    /// Store errors.
    pub async fn authorize(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Url, LoginError> {
        let i = &self.inner;
        let state = OneTimeSecret::generate();
        let nonce = OneTimeSecret::generate();
        let verifier = OneTimeSecret::generate();
        let data = StateData { nonce: nonce.expose().into(), verifier: verifier.expose().into() };
        let data = serde_json::to_string(&data)
            .map_err(|e| LoginError::InvalidConfig { what: "state data", reason: e.to_string() })?;
        let ticket = Ticket::new(TicketKind::LoginState, state.key(), now, i.ttl)
            .with_customer(customer.clone())
            .with_data(data);
        i.store.put_ticket(&ticket).await?;
        let mut url = i.authorize_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &i.channel_id)
                .append_pair("redirect_uri", i.redirect_uri.as_str())
                .append_pair("state", state.expose())
                .append_pair("scope", &i.scope)
                .append_pair("nonce", nonce.expose())
                .append_pair("code_challenge", &pkce_challenge(verifier.expose()))
                .append_pair("code_challenge_method", "S256");
            if let Some(p) = i.bot_prompt {
                q.append_pair(
                    "bot_prompt",
                    match p {
                        BotPrompt::Normal => "normal",
                        BotPrompt::Aggressive => "aggressive",
                    },
                );
            }
        }
        Ok(url)
    }

    /// Handles the callback for the customer the host has authenticated in this session:
    /// consumes the `state` (it must have been issued for this customer), exchanges the code,
    /// verifies the ID token and links its user to the customer.
    ///
    /// # Errors
    /// [`LoginError`] naming the failed step; a rejected state writes nothing but the state's
    /// consumption.
    pub async fn callback(
        &self,
        params: &CallbackParams,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<LoginLinked, LoginError> {
        let i = &self.inner;
        let state = params.state.as_deref().unwrap_or_default();
        let ticket = i
            .store
            .take_ticket(
                TicketKind::LoginState,
                &OneTimeSecret::from_received(state).key(),
                None,
                now,
            )
            .await?;
        if ticket.customer.as_ref() != Some(customer) {
            return Err(LoginError::Store(LinkStoreError::Rejected {
                kind: TicketKind::LoginState,
                reason: RejectReason::Mismatched,
            }));
        }
        if let Some(error) = &params.error {
            return Err(LoginError::Denied {
                error: error.clone(),
                description: params.error_description.clone(),
            });
        }
        let code = params.code.as_deref().ok_or(LoginError::MissingCode)?;
        let data: StateData = serde_json::from_str(ticket.data.as_deref().unwrap_or_default())
            .map_err(|e| LinkStoreError::Corrupt(format!("login state data: {e}")))?;
        let id_token = self.exchange(code, &data.verifier).await?;
        let claims = verify_id_token(
            &id_token,
            i.channel_secret.expose_secret(),
            &i.channel_id,
            &data.nonce,
            now,
        )?;
        let (outcome, write_back, incentive) = match &i.linker {
            Some(linker) => {
                let direct = linker
                    .link_direct(&claims.line_user, customer, LinkSource::LineLogin, now)
                    .await
                    .map_err(LoginError::Link)?;
                (direct.outcome, direct.write_back, direct.incentive)
            }
            None => (
                i.store
                    .link(&claims.line_user, customer, LinkSource::LineLogin, i.policy, now)
                    .await?,
                None,
                None,
            ),
        };
        Ok(LoginLinked {
            claims,
            outcome,
            write_back,
            incentive,
            friendship_status_changed: params.friendship_status_changed,
        })
    }

    /// Verifies an ES256 ID token from the LINE SDKs or LIFF (sent by the app to the server)
    /// against LINE's JWKS, and returns its claims. Link the claims' user with
    /// [`AccountLinker::link_direct`].
    ///
    /// The JWKS is cached for its `Cache-Control: max-age` (an hour without one, a day at
    /// most). A token whose `kid` is not in the cache refetches it (LINE rotated its keys),
    /// but at most once per [`LineLoginBuilder::jwks_refetch_interval`]; until then such a
    /// token is refused with [`IdTokenError::UnknownKey`] without calling LINE.
    ///
    /// # Errors
    /// [`LoginError::IdToken`], or JWKS fetch errors.
    pub async fn verify_sdk_id_token(
        &self,
        id_token: &str,
        expected_nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IdTokenClaims, LoginError> {
        let i = &self.inner;
        let verify =
            |jwks: &Jwks| verify_id_token_es256(id_token, jwks, &i.channel_id, expected_nonce, now);
        // Held across a fetch: concurrent verifiers wait for one fetch instead of each fetching.
        let mut cache = i.jwks.lock().await;
        if let Some((fetched_at, jwks)) = &cache.keys
            && fetched_at.elapsed() < cache.max_age
        {
            match verify(jwks) {
                Err(IdTokenError::UnknownKey(kid)) => {
                    let throttled =
                        cache.last_attempt.is_some_and(|at| at.elapsed() < i.jwks_refetch_interval);
                    if throttled {
                        return Err(IdTokenError::UnknownKey(kid).into());
                    }
                    // LINE may have rotated its keys: refetch below.
                }
                other => return Ok(other?),
            }
        }
        let jwks = self.fetch_jwks(&mut cache).await?;
        drop(cache);
        Ok(verify(&jwks)?)
    }

    async fn fetch_jwks(&self, cache: &mut JwksCache) -> Result<Jwks, LoginError> {
        let i = &self.inner;
        cache.last_attempt = Some(tokio::time::Instant::now());
        let response = i
            .http
            .get(i.jwks_url.clone())
            .send()
            .await
            .map_err(|e| LoginError::Transport(e.without_url()))?;
        if !response.status().is_success() {
            return Err(LoginError::JwksEndpoint(response.status().as_u16()));
        }
        let fresh_for = max_age(response.headers()).unwrap_or(JWKS_MAX_AGE).min(JWKS_MAX_AGE_CAP);
        let body = response.bytes().await.map_err(|e| LoginError::Transport(e.without_url()))?;
        let jwks = Jwks::parse(&body)?;
        cache.keys = Some((tokio::time::Instant::now(), jwks.clone()));
        cache.max_age = fresh_for;
        Ok(jwks)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<String, LoginError> {
        let i = &self.inner;
        let response = i
            .http
            .post(i.token_url.clone())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", i.redirect_uri.as_str()),
                ("client_id", &i.channel_id),
                ("client_secret", i.channel_secret.expose_secret()),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| LoginError::Transport(e.without_url()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| LoginError::Transport(e.without_url()))?;
        if !status.is_success() {
            let parsed: Option<TokenErrorBody> = serde_json::from_slice(&body).ok();
            return Err(LoginError::TokenEndpoint {
                status: status.as_u16(),
                error: parsed.as_ref().and_then(|b| b.error.clone()),
                description: parsed.and_then(|b| b.error_description),
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| LoginError::NoIdToken)?;
        parsed.id_token.ok_or(LoginError::NoIdToken)
    }
}
