//! Per-channel opt-outs and the signed unsubscribe links that record them.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ChannelError, ChannelKind};
use crate::CustomerId;

/// One customer's opt-out from one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptOut {
    /// Who.
    pub customer: CustomerId,
    /// From which channel.
    pub channel: ChannelKind,
    /// When.
    pub at: DateTime<Utc>,
}

/// Where opt-outs are kept. Object-safe; share it as `Arc<dyn OptOutStore>`.
#[async_trait]
pub trait OptOutStore: Send + Sync + fmt::Debug {
    /// Records an opt-out (recording it twice keeps the first time).
    async fn opt_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), ChannelError>;

    /// Whether the customer opted out of the channel.
    async fn is_opted_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
    ) -> Result<bool, ChannelError>;

    /// Every opt-out.
    async fn all(&self) -> Result<Vec<OptOut>, ChannelError>;
}

/// [`OptOutStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryOptOuts {
    map: RwLock<HashMap<(CustomerId, ChannelKind), DateTime<Utc>>>,
}

impl MemoryOptOuts {
    /// No opt-outs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OptOutStore for MemoryOptOuts {
    async fn opt_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((customer.clone(), channel)).or_insert(at);
        Ok(())
    }

    async fn is_opted_out(
        &self,
        customer: &CustomerId,
        channel: ChannelKind,
    ) -> Result<bool, ChannelError> {
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.contains_key(&(customer.clone(), channel)))
    }

    async fn all(&self) -> Result<Vec<OptOut>, ChannelError> {
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<OptOut> = map
            .iter()
            .map(|((customer, channel), at)| OptOut {
                customer: customer.clone(),
                channel: *channel,
                at: *at,
            })
            .collect();
        all.sort_by(|a, b| (a.at, &a.customer, a.channel).cmp(&(b.at, &b.customer, b.channel)));
        Ok(all)
    }
}

/// The error a store failure becomes: [`ChannelError::Transient`] (worth retrying) naming
/// the channel concerned (LINE when listing every opt-out, which concerns no one channel).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn store_error(
    channel: ChannelKind,
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ChannelError {
    ChannelError::Transient { channel, message: message.into(), source: Some(Box::new(source)) }
}

/// An opt-out read back from a database row.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn opt_out_from(
    customer: String,
    channel: &str,
    at_us: i64,
) -> Result<OptOut, ChannelError> {
    let bad = |message: String| ChannelError::Transient {
        channel: ChannelKind::parse(channel).unwrap_or(ChannelKind::Line),
        message,
        source: None,
    };
    let kind = ChannelKind::parse(channel)
        .ok_or_else(|| bad(format!("the opt-out store holds an unknown channel {channel:?}")))?;
    let customer = CustomerId::new(customer)
        .map_err(|e| bad(format!("the opt-out store holds an unreadable customer ID: {e}")))?;
    let at = DateTime::from_timestamp_micros(at_us)
        .ok_or_else(|| bad(format!("the opt-out store holds an unreadable time {at_us}")))?;
    Ok(OptOut { customer, channel: kind, at })
}

/// Signs and checks unsubscribe links: `<base_url>/<token>`, where the token names the customer
/// and the channel and carries an HMAC-SHA256 under the shop's key, so nobody can unsubscribe
/// someone else.
#[derive(Clone)]
pub struct UnsubscribeLinks {
    key: Vec<u8>,
    base_url: String,
}

impl fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsubscribeLinks").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl UnsubscribeLinks {
    /// Links under `base_url` (e.g. `https://shop.example/unsubscribe`) signed with `key`.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] when the key is shorter than 16 bytes or the base URL is
    /// not http(s).
    pub fn new(key: impl Into<Vec<u8>>, base_url: &str) -> Result<Self, ChannelError> {
        let key = key.into();
        let bad = |message: &str| ChannelError::Unsupported {
            channel: ChannelKind::Email,
            message: message.to_owned(),
        };
        if key.len() < 16 {
            return Err(bad("the unsubscribe signing key must be at least 16 bytes"));
        }
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(bad("the unsubscribe base URL must be http(s)"));
        }
        Ok(Self { key, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// The token for `customer` and `channel`.
    #[must_use]
    pub fn token(&self, customer: &CustomerId, channel: ChannelKind) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = format!("{}:{}", channel.as_str(), customer.as_str());
        format!("{}.{}", b64.encode(&payload), b64.encode(self.mac(&payload)))
    }

    /// The unsubscribe URL for `customer` and `channel`.
    #[must_use]
    pub fn url(&self, customer: &CustomerId, channel: ChannelKind) -> String {
        format!("{}/{}", self.base_url, self.token(customer, channel))
    }

    /// Checks a token; `None` when it is malformed or not signed by this key.
    #[must_use]
    pub fn verify(&self, token: &str) -> Option<(CustomerId, ChannelKind)> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, sig) = token.split_once('.')?;
        let payload = String::from_utf8(b64.decode(payload).ok()?).ok()?;
        let sig = b64.decode(sig).ok()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(payload.as_bytes());
        mac.verify_truncated_left(&sig).ok()?;
        if sig.len() != 16 {
            return None;
        }
        let (channel, customer) = payload.split_once(':')?;
        Some((CustomerId::new(customer).ok()?, ChannelKind::parse(channel)?))
    }
}

#[cfg(feature = "axum")]
mod route {
    use std::sync::Arc;

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{Html, IntoResponse, Response};
    use axum::routing::get;

    use super::{OptOutStore, UnsubscribeLinks};

    #[derive(Clone)]
    struct Ctx {
        links: UnsubscribeLinks,
        store: Arc<dyn OptOutStore>,
    }

    const INVALID: &str = "<!doctype html><meta charset=utf-8><title>配信停止</title>\
        <p>このリンクは無効です。</p>";

    /// The unsubscribe route: `GET /unsubscribe/{token}` shows a confirmation button (a link
    /// scanner opening the URL unsubscribes nobody); `POST /unsubscribe/{token}` records the
    /// opt-out, including RFC 8058 one-click posts from mail clients
    /// (`List-Unsubscribe-Post: List-Unsubscribe=One-Click`). The pages are in Japanese.
    pub fn unsubscribe_route(links: UnsubscribeLinks, store: Arc<dyn OptOutStore>) -> Router {
        Router::new()
            .route("/unsubscribe/{token}", get(confirm).post(record))
            .with_state(Ctx { links, store })
    }

    async fn confirm(State(ctx): State<Ctx>, Path(token): Path<String>) -> Response {
        if ctx.links.verify(&token).is_none() {
            return (StatusCode::NOT_FOUND, Html(INVALID)).into_response();
        }
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>配信停止</title>\
             <form method=post action=\"{token}\"><p>今後のお知らせの配信を停止しますか？</p>\
             <button type=submit>配信を停止する</button></form>"
        ))
        .into_response()
    }

    async fn record(State(ctx): State<Ctx>, Path(token): Path<String>) -> Response {
        let Some((customer, channel)) = ctx.links.verify(&token) else {
            return (StatusCode::NOT_FOUND, Html(INVALID)).into_response();
        };
        match ctx.store.opt_out(&customer, channel, chrono::Utc::now()).await {
            Ok(()) => {
                tracing::info!(target: "enishi::channel", %channel, "customer unsubscribed");
                Html(
                    "<!doctype html><meta charset=utf-8><title>配信停止</title>\
                     <p>配信を停止しました。</p>",
                )
                .into_response()
            }
            Err(e) => {
                tracing::error!(target: "enishi::channel", error = %e, "recording an opt-out failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html("<p>しばらくしてから再度お試しください。</p>"),
                )
                    .into_response()
            }
        }
    }
}

#[cfg(feature = "axum")]
pub use route::unsubscribe_route;
