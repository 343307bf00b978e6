//! Tracked links: signed redirect URLs that record who clicked what.
//!
//! A tracked URL is `<base>/<token>` where the token carries (campaign, step, customer, target
//! URL) and an HMAC-SHA256 tag over them. The redirect route verifies the tag before it reads
//! anything else, so a forged or altered token can never redirect anywhere: there is no open
//! redirect, and no table of links to keep.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretSlice};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::line::message::Message;
use crate::line::message::limits;
use crate::{BatchId, CampaignId, CustomerId};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC-SHA256 tag kept in a token: 128 bits is far beyond guessing and keeps
/// URLs short (LINE allows 1,000 characters in an action URI).
const TAG_LEN: usize = 16;
/// Shortest accepted key.
const KEY_MIN: usize = 32;
/// Domain separation: a tag made for anything else with the same key never verifies here.
const TAG_CONTEXT: &[u8] = b"enishi tracked link v1\0";
/// Longest token the route looks at (longer is rejected before decoding).
const TOKEN_MAX: usize = 4_096;

/// A tracked link could not be made, or a token is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The signing key is shorter than 32 bytes.
    #[error("the link signing key must be at least {KEY_MIN} bytes (got {0})")]
    KeyTooShort(usize),
    /// The signing key is long enough but obviously not random (e.g. all zero bytes).
    #[error("the link signing key is not random: {0} (use 32 or more random bytes)")]
    WeakKey(&'static str),
    /// The redirect base URL is not an absolute http(s) URL without credentials, query or
    /// fragment.
    #[error("the tracked link base URL {url:?} is not usable: {reason}")]
    BaseUrl {
        /// The rejected URL (any `user:password@` replaced by `***@`).
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The target is not an absolute http(s) URL.
    #[error("only absolute http(s) URLs can be tracked (got {0:?})")]
    NotHttp(String),
    /// The tracked URL would exceed LINE's length limit for the field.
    #[error("the tracked URL for {field} would be {len} characters, more than LINE's {max}")]
    TooLong {
        /// The message field (`uri`, `linkUri`, `text`).
        field: &'static str,
        /// The length it would have.
        len: usize,
        /// LINE's limit.
        max: usize,
    },
    /// The token is malformed, forged, altered or signed with an unknown key.
    #[error("the tracked link token is not valid")]
    InvalidToken,
    /// A rewritten message could not be turned back into a [`Message`].
    #[error("a rewritten message is no longer a valid message object")]
    Rewrite(#[source] serde_json::Error),
}

/// Who a tracked link was sent to, in which send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkContext {
    /// The campaign, or `scenario.<name>`.
    pub campaign: CampaignId,
    /// The scenario step, if any.
    pub step: Option<String>,
    /// The customer the message went to.
    pub customer: CustomerId,
}

impl LinkContext {
    /// A campaign send to `customer`.
    #[must_use]
    pub fn new(campaign: CampaignId, customer: CustomerId) -> Self {
        Self { campaign, step: None, customer }
    }

    /// Sets the scenario step.
    #[must_use]
    pub fn with_step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }

    /// The step of a scenario batch ID `<scenario>/<step>/<customer>/<occurrence>`, or `None`
    /// for any other batch ID (campaign batches are `<campaign>#<seq>`).
    #[must_use]
    pub fn step_of(batch: &BatchId) -> Option<String> {
        let mut parts = batch.as_str().splitn(3, '/');
        let (_scenario, step, rest) = (parts.next()?, parts.next()?, parts.next()?);
        // The customer may itself contain '/', the occurrence is the last part.
        let (_customer, _occurrence) = rest.rsplit_once('/')?;
        (!step.is_empty()).then(|| step.to_owned())
    }
}

/// One recorded click on a tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Click {
    /// The campaign, or `scenario.<name>`.
    pub campaign: CampaignId,
    /// The scenario step, if any.
    pub step: Option<String>,
    /// Who clicked.
    pub customer: CustomerId,
    /// The original target URL.
    pub url: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl Click {
    /// A click of `customer` in `campaign` on `url` at `at`.
    #[must_use]
    pub fn new(
        campaign: CampaignId,
        step: Option<String>,
        customer: CustomerId,
        url: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self { campaign, step, customer, url: url.into(), at }
    }
}

/// A verified token: where to redirect, and whose click it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackedLink {
    /// The send the link was in.
    pub context: LinkContext,
    /// The original target URL.
    pub url: String,
}

impl TrackedLink {
    /// The click of this link at `at`.
    #[must_use]
    pub fn click(&self, at: DateTime<Utc>) -> Click {
        Click::new(
            self.context.campaign.clone(),
            self.context.step.clone(),
            self.context.customer.clone(),
            self.url.clone(),
            at,
        )
    }
}

/// What a token carries, signed. An array keeps the URL short.
#[derive(Serialize, Deserialize)]
struct Payload(CampaignId, Option<String>, CustomerId, String);

/// Signs and verifies tracked links, and rewrites the URLs of messages into tracked links.
///
/// Cheap to clone. The key is a secret: it never appears in `Debug`. Keep it in your secret
/// store; anyone holding it can make links that redirect anywhere and count as clicks.
///
/// ```
/// use enishi::campaign::{LinkContext, LinkTracker};
///
/// let key = b"use 32 or more random bytes here!".to_vec(); // from your secret store
/// let tracker = LinkTracker::new(key, "https://shop.example/r")?;
/// let context = LinkContext::new("spring_sale".parse()?, "c-1001".parse()?);
/// let url = tracker.tracked_url(&context, "https://shop.example/sale")?;
/// assert!(url.starts_with("https://shop.example/r/"));
/// let token = url.rsplit('/').next().unwrap();
/// assert_eq!(tracker.verify(token)?.url, "https://shop.example/sale");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LinkTracker {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<SecretSlice<u8>>,
    base: String,
}

impl fmt::Debug for LinkTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkTracker")
            .field("base", &crate::redact::url(&self.inner.base))
            .field("keys", &format_args!("[{} redacted]", self.inner.keys.len()))
            .finish()
    }
}

fn check_key(key: &[u8]) -> Result<(), TrackError> {
    if key.len() < KEY_MIN {
        return Err(TrackError::KeyTooShort(key.len()));
    }
    // Random keys of 32+ bytes never look like this; placeholders and zeroed buffers do.
    if key.iter().all(|&b| b == 0) {
        return Err(TrackError::WeakKey("every byte is zero"));
    }
    if key.iter().all(|&b| b == key[0]) {
        return Err(TrackError::WeakKey("every byte is the same"));
    }
    Ok(())
}

/// An absolute http(s) URL with a host and no control characters. `url::Url::parse` drops
/// tabs and line breaks silently, so a target with CR/LF would parse yet never make a valid
/// `Location` header: it is refused here, before any click is counted.
fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(char::is_control)
        && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

impl LinkTracker {
    /// A tracker signing with `key` (at least 32 random bytes) whose links point at
    /// `base_url` (where the host mounts [`track_route`](crate::campaign::track_route), e.g.
    /// `https://shop.example/r`).
    ///
    /// # Errors
    /// [`TrackError::KeyTooShort`], [`TrackError::WeakKey`] (all bytes zero or all the same),
    /// [`TrackError::BaseUrl`] (also for a base URL with `user:password@`).
    pub fn new(key: impl Into<Vec<u8>>, base_url: &str) -> Result<Self, TrackError> {
        let key = key.into();
        check_key(&key)?;
        let bad = |reason| TrackError::BaseUrl { url: crate::redact::url(base_url).into(), reason };
        let parsed = url::Url::parse(base_url).map_err(|_| bad("not an absolute URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") || !is_http(base_url) {
            return Err(bad("must be an http(s) URL with a host"));
        }
        // Every message would carry them to every recipient.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("must not contain credentials"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("must not have a query or a fragment"));
        }
        let base = base_url.trim_end_matches('/').to_owned();
        Ok(Self { inner: Arc::new(Inner { keys: vec![SecretSlice::from(key)], base }) })
    }

    /// Also accepts tokens signed with an older key (key rotation); new links use the first.
    ///
    /// # Errors
    /// [`TrackError::KeyTooShort`], [`TrackError::WeakKey`].
    pub fn with_previous_key(self, key: impl Into<Vec<u8>>) -> Result<Self, TrackError> {
        let key = key.into();
        check_key(&key)?;
        let mut keys = self.inner.keys.clone();
        keys.push(SecretSlice::from(key));
        Ok(Self { inner: Arc::new(Inner { keys, base: self.inner.base.clone() }) })
    }

    /// The base URL links point at (without a trailing `/`).
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    fn mac(key: &SecretSlice<u8>, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(key.expose_secret()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(TAG_CONTEXT);
        mac.update(payload);
        mac
    }

    /// The signed token for `url` sent in `context`.
    ///
    /// # Errors
    /// [`TrackError::NotHttp`] when `url` is not an absolute http(s) URL.
    pub fn token(&self, context: &LinkContext, url: &str) -> Result<String, TrackError> {
        if !is_http(url) {
            return Err(TrackError::NotHttp(url.to_owned()));
        }
        let payload = Payload(
            context.campaign.clone(),
            context.step.clone(),
            context.customer.clone(),
            url.to_owned(),
        );
        let bytes = serde_json::to_vec(&payload).map_err(TrackError::Rewrite)?;
        let tag = Self::mac(&self.inner.keys[0], &bytes).finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        ))
    }

    /// The tracked URL (`<base>/<token>`) for `url` sent in `context`.
    ///
    /// # Errors
    /// [`TrackError::NotHttp`] when `url` is not an absolute http(s) URL.
    pub fn tracked_url(&self, context: &LinkContext, url: &str) -> Result<String, TrackError> {
        Ok(format!("{}/{}", self.inner.base, self.token(context, url)?))
    }

    /// Checks a token's tag (constant-time, against every key) and only then decodes it.
    ///
    /// # Errors
    /// [`TrackError::InvalidToken`] for anything not made by [`LinkTracker::token`] with one of
    /// this tracker's keys.
    pub fn verify(&self, token: &str) -> Result<TrackedLink, TrackError> {
        if token.len() > TOKEN_MAX {
            return Err(TrackError::InvalidToken);
        }
        let (payload, tag) = token.split_once('.').ok_or(TrackError::InvalidToken)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TrackError::InvalidToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TrackError::InvalidToken)?;
        if tag.len() != TAG_LEN {
            return Err(TrackError::InvalidToken);
        }
        let signed = self
            .inner
            .keys
            .iter()
            .any(|key| Self::mac(key, &payload).verify_truncated_left(&tag).is_ok());
        if !signed {
            return Err(TrackError::InvalidToken);
        }
        let Payload(campaign, step, customer, url) =
            serde_json::from_slice(&payload).map_err(|_| TrackError::InvalidToken)?;
        // Signed by us, but a key shared with an older version must still not open-redirect.
        if !is_http(&url) {
            return Err(TrackError::InvalidToken);
        }
        Ok(TrackedLink { context: LinkContext { campaign, step, customer }, url })
    }

    /// `message` with every http(s) link replaced by a tracked URL: URLs in the text of text
    /// messages (emoji positions are kept pointing at their `$`), action URIs (`uri`,
    /// `altUri.desktop`) in templates, flex messages and quick replies, and imagemap
    /// `linkUri`s. Media URLs (images, videos, icons) and non-http URIs (`tel:`, `line://`)
    /// are left alone, and so is everything else in the message.
    ///
    /// # Errors
    /// [`TrackError::TooLong`] when a tracked URL (or the text holding it) would exceed LINE's
    /// limit; [`TrackError::Rewrite`] if the result is not a message (should not happen).
    pub fn rewrite(&self, message: &Message, context: &LinkContext) -> Result<Message, TrackError> {
        let mut value = serde_json::to_value(message).map_err(TrackError::Rewrite)?;
        match value.get("type").and_then(Value::as_str) {
            Some("text") => self.rewrite_text(&mut value, context, true)?,
            Some("textV2") => self.rewrite_text(&mut value, context, false)?,
            _ => {}
        }
        self.rewrite_uris(&mut value, context)?;
        serde_json::from_value(value).map_err(TrackError::Rewrite)
    }

    /// [`LinkTracker::rewrite`] for every message of a send.
    ///
    /// # Errors
    /// As [`LinkTracker::rewrite`].
    pub fn rewrite_all(
        &self,
        messages: &[Message],
        context: &LinkContext,
    ) -> Result<Vec<Message>, TrackError> {
        messages.iter().map(|m| self.rewrite(m, context)).collect()
    }

    fn rewrite_uris(&self, value: &mut Value, context: &LinkContext) -> Result<(), TrackError> {
        match value {
            Value::Object(map) => {
                let is_uri_action = map.get("type").and_then(Value::as_str) == Some("uri");
                for (key, item) in map.iter_mut() {
                    let field = match key.as_str() {
                        "uri" if is_uri_action => "uri",
                        "linkUri" => "linkUri",
                        "altUri" if is_uri_action => {
                            if let Some(Value::String(url)) = item.get_mut("desktop") {
                                self.replace(url, context, "altUri.desktop")?;
                            }
                            continue;
                        }
                        _ => {
                            self.rewrite_uris(item, context)?;
                            continue;
                        }
                    };
                    if let Value::String(url) = item {
                        self.replace(url, context, field)?;
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.rewrite_uris(item, context)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn replace(
        &self,
        url: &mut String,
        context: &LinkContext,
        field: &'static str,
    ) -> Result<(), TrackError> {
        if !is_http(url) {
            return Ok(());
        }
        let tracked = self.tracked_url(context, url)?;
        let len = tracked.chars().count();
        if len > limits::ACTION_URI_MAX {
            return Err(TrackError::TooLong { field, len, max: limits::ACTION_URI_MAX });
        }
        *url = tracked;
        Ok(())
    }

    /// Rewrites the URLs in a text message's `text`; `emojis` (text v1) follow their `$`.
    fn rewrite_text(
        &self,
        value: &mut Value,
        context: &LinkContext,
        v1: bool,
    ) -> Result<(), TrackError> {
        let Some(text) = value.get("text").and_then(Value::as_str).map(str::to_owned) else {
            return Ok(());
        };
        let mut emoji_at: Vec<u64> = Vec::new();
        if v1 && let Some(Value::Array(emojis)) = value.get("emojis") {
            emoji_at = emojis.iter().filter_map(|e| e.get("index")?.as_u64()).collect();
        }
        let mut out = String::with_capacity(text.len());
        let mut shifts: Vec<(u64, i64)> = Vec::new(); // (UTF-16 end of the old URL, delta)
        let mut last = 0;
        for (start, end) in find_urls(&text) {
            let url = &text[start..end];
            let u16_start = text[..start].encode_utf16().count() as u64;
            let u16_end = u16_start + url.encode_utf16().count() as u64;
            // A `$` inside the URL carries an emoji; rewriting would move it into the token.
            let holds_emoji = emoji_at.iter().any(|&i| (u16_start..u16_end).contains(&i));
            // Text v2 treats braces as placeholders.
            if holds_emoji || (!v1 && url.contains(['{', '}'])) {
                continue;
            }
            let tracked = self.tracked_url(context, url)?;
            out.push_str(&text[last..start]);
            out.push_str(&tracked);
            last = end;
            let delta = tracked.encode_utf16().count() as i64 - (u16_end - u16_start) as i64;
            shifts.push((u16_end, delta));
        }
        if shifts.is_empty() {
            return Ok(());
        }
        out.push_str(&text[last..]);
        let len = out.encode_utf16().count();
        if len > limits::TEXT_MAX {
            return Err(TrackError::TooLong { field: "text", len, max: limits::TEXT_MAX });
        }
        value["text"] = Value::String(out);
        if let Some(Value::Array(emojis)) = value.get_mut("emojis") {
            for emoji in emojis {
                if let Some(index) = emoji.get("index").and_then(Value::as_u64) {
                    let delta: i64 =
                        shifts.iter().filter(|(end, _)| *end <= index).map(|(_, d)| d).sum();
                    emoji["index"] = Value::from(index.saturating_add_signed(delta));
                }
            }
        }
        Ok(())
    }
}

/// Byte ranges of the http(s) URLs in `text`. A URL runs up to whitespace, a quote, an
/// angle bracket or any non-ASCII character (Japanese text often follows a URL directly), and
/// loses trailing sentence punctuation.
pub(crate) fn find_urls(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme = if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else {
            0
        };
        // A scheme glued to a preceding word character is not the start of a URL.
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'/');
        if scheme == 0 || glued {
            i += 1;
            continue;
        }
        let mut end = i + scheme;
        while end < bytes.len() {
            let b = bytes[end];
            if !b.is_ascii_graphic() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\') {
                break;
            }
            end += 1;
        }
        // Trailing punctuation ends the sentence, not the URL; a ')' only if unbalanced.
        while end > i + scheme {
            let b = bytes[end - 1];
            let unbalanced_paren =
                b == b')' && text[i..end].matches('(').count() < text[i..end].matches(')').count();
            if matches!(b, b'.' | b',' | b';' | b':' | b'!' | b'?') || unbalanced_paren {
                end -= 1;
            } else {
                break;
            }
        }
        if end > i + scheme && is_http(&text[i..end]) {
            found.push((i, end));
        }
        i = end.max(i + 1);
    }
    found
}

/// A click store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClickStoreError {
    /// The storage backend failed.
    #[error("click store failed: {message}")]
    Storage {
        /// What the store was doing.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The default window of [`unique_clicks`]: a customer's clicks on one link within 24 hours
/// of their counted click count once.
pub const DEFAULT_CLICK_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The clicks that count, oldest first: of one customer's clicks on one link (campaign, step
/// and URL), a click counts when no counted click of the same link came less than `window`
/// before it. A replayed or double-tapped link then adds nothing; a click a day later counts
/// again (with the default window). Raw clicks stay in the store; KPIs use these.
#[must_use]
pub fn unique_clicks(clicks: &[Click], window: chrono::Duration) -> Vec<Click> {
    let mut sorted: Vec<&Click> = clicks.iter().collect();
    sorted.sort_by_key(|c| c.at);
    let mut last: std::collections::HashMap<
        (&CampaignId, &Option<String>, &CustomerId, &str),
        DateTime<Utc>,
    > = std::collections::HashMap::new();
    let mut out = Vec::new();
    for click in sorted {
        let key = (&click.campaign, &click.step, &click.customer, click.url.as_str());
        if last.get(&key).is_some_and(|counted| click.at - *counted < window) {
            continue;
        }
        last.insert(key, click.at);
        out.push(click.clone());
    }
    out
}

/// Where clicks on tracked links are kept. Object-safe; share it as `Arc<dyn ClickStore>`.
///
/// Implementations: [`MemoryClickStore`], `SqliteClickStore` (feature `sqlite`) and
/// `PostgresClickStore` (feature `postgres`); all pass one conformance suite
/// (`enishi::campaign::conformance::clicks`, feature `testkit`: run it against your own store
/// too).
#[async_trait]
pub trait ClickStore: Send + Sync + fmt::Debug {
    /// Records one click.
    async fn record(&self, click: &Click) -> Result<(), ClickStoreError>;

    /// Every click of `campaign`, oldest first.
    async fn clicks(&self, campaign: &CampaignId) -> Result<Vec<Click>, ClickStoreError>;

    /// The clicks of `campaign` that count ([`unique_clicks`] with `window`, e.g.
    /// [`DEFAULT_CLICK_WINDOW`]), oldest first.
    async fn unique_clicks(
        &self,
        campaign: &CampaignId,
        window: chrono::Duration,
    ) -> Result<Vec<Click>, ClickStoreError> {
        Ok(unique_clicks(&self.clicks(campaign).await?, window))
    }

    /// The customers who clicked a link of `campaign` at or after `since` (all time when
    /// `None`): the segment condition "clicked campaign X".
    async fn clickers(
        &self,
        campaign: &CampaignId,
        since: Option<DateTime<Utc>>,
    ) -> Result<BTreeSet<CustomerId>, ClickStoreError> {
        Ok(self
            .clicks(campaign)
            .await?
            .into_iter()
            .filter(|c| since.is_none_or(|since| c.at >= since))
            .map(|c| c.customer)
            .collect())
    }
}

/// Clicks in memory (tests, examples, one process).
#[derive(Debug, Default)]
pub struct MemoryClickStore {
    clicks: Mutex<Vec<Click>>,
}

impl MemoryClickStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every click recorded, in order.
    #[must_use]
    pub fn all(&self) -> Vec<Click> {
        self.clicks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl ClickStore for MemoryClickStore {
    async fn record(&self, click: &Click) -> Result<(), ClickStoreError> {
        self.clicks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(click.clone());
        Ok(())
    }

    async fn clicks(&self, campaign: &CampaignId) -> Result<Vec<Click>, ClickStoreError> {
        let clicks = self.clicks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<Click> =
            clicks.iter().filter(|c| &c.campaign == campaign).cloned().collect();
        out.sort_by_key(|c| c.at);
        Ok(out)
    }
}

/// User agents of link-preview fetchers. LINE fetches a URL in a text message to draw its
/// preview card; counting that as the customer's click would make every recipient a clicker.
fn is_preview_fetcher(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    ["line-poker", "facebookexternalhit", "twitterbot", "slackbot", "discordbot", "bot/"]
        .iter()
        .any(|bot| ua.contains(bot))
}

/// What the redirect endpoint answers (framework-independent; [`track_route`] serves it).
///
/// [`track_route`]: crate::campaign::track_route
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClickResponse {
    /// `302 Found` to the original URL.
    Redirect {
        /// The original target URL.
        location: String,
        /// Whether the click was recorded (not for previews, `HEAD` or a failing store).
        recorded: bool,
    },
    /// `404 Not Found` with a plain page: the token is unknown, forged or altered.
    Invalid,
}

/// Handles one request for a tracked link: verifies `token`, records the click (unless
/// `record` is false: `HEAD` requests, preview fetchers) and says where to redirect.
///
/// A token whose target could not be sent as a `Location` header is [`ClickResponse::Invalid`]
/// and records nothing. A failing store does not keep the customer from the page: the redirect
/// still happens and `recorded` is `false`.
pub async fn handle_click(
    tracker: &LinkTracker,
    store: &dyn ClickStore,
    token: &str,
    user_agent: Option<&str>,
    head: bool,
    now: DateTime<Utc>,
) -> ClickResponse {
    let Ok(link) = tracker.verify(token) else {
        return ClickResponse::Invalid;
    };
    // Only a redirect that will be sent is a click.
    if http::HeaderValue::from_str(&link.url).is_err() {
        return ClickResponse::Invalid;
    }
    let counts = !head && !user_agent.is_some_and(is_preview_fetcher);
    let recorded = counts && store.record(&link.click(now)).await.is_ok();
    ClickResponse::Redirect { location: link.url, recorded }
}

/// The page shown for an invalid token (Japanese, readable on a phone); the app replaces it
/// with the shop's own (see [`track_route_with`]).
#[cfg(feature = "axum")]
pub const DEFAULT_INVALID_LINK_PAGE: &str = "<!doctype html><html lang=\"ja\"><head>\
<meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>このリンクは無効です</title></head><body style=\"font-family:sans-serif;font-size:16px;\
line-height:1.7;margin:24px;color:#1a1a1a\"><h1 style=\"font-size:22px\">このリンクは無効です</h1>\
<p>リンクが途中で切れているか、正しくありません。お手数ですが、ショップのサイトからお探しください。</p>\
</body></html>";

#[cfg(feature = "axum")]
mod route {
    use std::sync::Arc;

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    use super::{ClickResponse, ClickStore, DEFAULT_INVALID_LINK_PAGE, LinkTracker, handle_click};

    #[derive(Clone)]
    struct TrackState {
        tracker: LinkTracker,
        store: Arc<dyn ClickStore>,
        invalid_page: Arc<str>,
    }

    async fn follow(
        State(state): State<TrackState>,
        Path(token): Path<String>,
        method: Method,
        headers: HeaderMap,
    ) -> Response {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        let answer = handle_click(
            &state.tracker,
            state.store.as_ref(),
            &token,
            agent,
            method == Method::HEAD,
            chrono::Utc::now(),
        )
        .await;
        let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match answer {
            ClickResponse::Redirect { location, .. } => match HeaderValue::try_from(location) {
                Ok(location) => (StatusCode::FOUND, [no_store, (header::LOCATION, location)], ())
                    .into_response(),
                Err(_) => invalid(&state.invalid_page),
            },
            ClickResponse::Invalid => invalid(&state.invalid_page),
        }
    }

    fn invalid(page: &Arc<str>) -> Response {
        (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            page.to_string(),
        )
            .into_response()
    }

    /// The redirect route: `GET /{token}` (and `HEAD`, which redirects without recording).
    /// Nest it at the path of the tracker's base URL:
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use enishi::campaign::{LinkTracker, MemoryClickStore, track_route};
    /// # let tracker = LinkTracker::new(*b"use 32 or more random bytes here!", "https://shop.example/r").unwrap();
    /// let app = axum::Router::new().nest("/r", track_route(tracker, Arc::new(MemoryClickStore::new())));
    /// # let _: axum::Router = app;
    /// ```
    ///
    /// A valid token answers `302 Found` to exactly the URL it was made for and records the
    /// click; anything else answers `404` with [`DEFAULT_INVALID_LINK_PAGE`] and no
    /// `Location`.
    pub fn track_route(tracker: LinkTracker, store: Arc<dyn ClickStore>) -> Router {
        track_route_with(tracker, store, DEFAULT_INVALID_LINK_PAGE)
    }

    /// [`track_route`] with the shop's own HTML for an invalid link.
    pub fn track_route_with(
        tracker: LinkTracker,
        store: Arc<dyn ClickStore>,
        invalid_page: impl Into<Arc<str>>,
    ) -> Router {
        let state = TrackState { tracker, store, invalid_page: invalid_page.into() };
        Router::new().route("/{token}", get(follow)).with_state(state)
    }
}

#[cfg(feature = "axum")]
pub use route::{track_route, track_route_with};
