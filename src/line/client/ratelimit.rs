//! Client-side pacing: one token bucket per LINE endpoint, shared by every clone of a client.
//!
//! LINE limits each endpoint of a channel separately with a token bucket and documents no
//! rate-limit headers, so the only way never to provoke a 429 is to pace on our side. The
//! buckets live behind the [`RateLimiter`] trait: in this process by default
//! ([`LocalRateLimiter`]), or shared by every process of a channel (`RedisRateLimiter`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::retry::RateLimit;
use crate::retry::TokenBucket;

/// Groups of LINE endpoints that have the same documented rate limit.
///
/// Each endpoint still has its own bucket (LINE limits per endpoint), except the audience
/// endpoints, which LINE limits together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointClass {
    /// 2,000 requests/s: reply, push, profile, link token, per-user rich menus, validation,
    /// quota, narrowcast progress and everything not listed below.
    Standard,
    /// Multicast: 200 requests/s. **Unconfirmed** (third-party transcription): configure it.
    Multicast,
    /// Narrowcast and broadcast: 60 requests/hour each.
    Broadcast,
    /// Statistics (insight) endpoints: 60 requests/hour each.
    Insight,
    /// All audience-group endpoints together: 60 requests/minute.
    Audience,
    /// Create rich menu, delete rich menu, delete rich-menu alias: 100 requests/hour each.
    RichMenuManage,
    /// Get the rich-menu list: 10 requests/s since 2026-05-26. **Unconfirmed**: configure it.
    RichMenuList,
    /// Rich-menu batch control (`/v2/bot/richmenu/batch`): 3 requests/hour.
    RichMenuBatch,
}

impl EndpointClass {
    /// LINE's documented limit for this class.
    #[must_use]
    pub fn line_default(self) -> RateLimit {
        const SECOND: Duration = Duration::from_secs(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        match self {
            Self::Standard => RateLimit::new(2_000, SECOND),
            Self::Multicast => RateLimit::new(200, SECOND),
            Self::Broadcast | Self::Insight => RateLimit::new(60, HOUR),
            Self::Audience => RateLimit::new(60, MINUTE),
            Self::RichMenuManage => RateLimit::new(100, HOUR),
            Self::RichMenuList => RateLimit::new(10, SECOND),
            Self::RichMenuBatch => RateLimit::new(3, HOUR),
        }
    }

    const ALL: [Self; 8] = [
        Self::Standard,
        Self::Multicast,
        Self::Broadcast,
        Self::Insight,
        Self::Audience,
        Self::RichMenuManage,
        Self::RichMenuList,
        Self::RichMenuBatch,
    ];
}

/// The limits a client paces itself to, per [`EndpointClass`].
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    limits: HashMap<EndpointClass, Option<RateLimit>>,
}

impl Default for RateLimits {
    /// LINE's documented limits.
    fn default() -> Self {
        Self { limits: EndpointClass::ALL.iter().map(|c| (*c, Some(c.line_default()))).collect() }
    }
}

impl RateLimits {
    /// No client-side pacing at all (LINE may then answer 429).
    #[must_use]
    pub fn unlimited() -> Self {
        Self { limits: HashMap::new() }
    }

    /// Sets the limit of one class; `None` disables pacing for it.
    #[must_use]
    pub fn with(mut self, class: EndpointClass, limit: Option<RateLimit>) -> Self {
        self.limits.insert(class, limit);
        self
    }

    /// The limit of one class, if it is paced.
    #[must_use]
    pub fn get(&self, class: EndpointClass) -> Option<RateLimit> {
        self.limits.get(&class).copied().flatten()
    }
}

/// A rate limiter failed, so the request was not sent (see [`RateLimiter::acquire`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimiterError {
    /// The limiter's shared store (e.g. Redis) failed or answered something unexpected.
    #[error("the {backend} rate limiter failed: {message}")]
    Backend {
        /// Which limiter, e.g. `redis`.
        backend: &'static str,
        /// What it was doing.
        message: String,
        /// The store's error, if there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl RateLimiterError {
    /// A backend error with its source.
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend { backend, message: message.into(), source: Some(Box::new(source)) }
    }
}

/// Paces requests: one token bucket per `bucket` name, with the capacity and rate of a
/// [`RateLimit`]. Object-safe; give one to
/// [`LineClientBuilder::rate_limiter`](super::LineClientBuilder::rate_limiter) as
/// `Arc<dyn RateLimiter>`.
///
/// The client asks before every attempt of every request whose [`EndpointClass`] is paced
/// (see [`RateLimits`]); unpaced classes never reach the limiter. Implementations:
/// [`LocalRateLimiter`] (the default: this process only) and `RedisRateLimiter` (feature
/// `redis`: every process and machine of a channel shares one bucket, as LINE counts).
#[async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Takes one token from `bucket` (which paces under `limit`; `class` says which kind of
    /// endpoint it is) and waits until it may be used. A full bucket holds
    /// `limit.burst_size()` tokens and refills at `limit.rate()`; waiters are served in
    /// order of arrival.
    ///
    /// # Errors
    /// [`RateLimiterError`] when the limiter cannot decide (its store is unreachable); the
    /// client then fails the request with [`LineError::RateLimiter`](super::LineError)
    /// without sending it.
    async fn acquire(
        &self,
        bucket: &'static str,
        class: EndpointClass,
        limit: RateLimit,
    ) -> Result<(), RateLimiterError>;
}

/// The default [`RateLimiter`]: token buckets in this process, shared by every clone of the
/// client that owns it. Never fails.
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    buckets: Mutex<HashMap<&'static str, TokenBucket>>,
}

impl LocalRateLimiter {
    /// A limiter with every bucket full.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a token (possibly in advance) and says how long to wait before using it.
    fn reserve(&self, bucket: &'static str, limit: RateLimit, now: Instant) -> Duration {
        // A poisoned lock only means another thread panicked mid-update of plain numbers.
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.entry(bucket).or_default().reserve(limit, now.into_std())
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn acquire(
        &self,
        bucket: &'static str,
        _class: EndpointClass,
        limit: RateLimit,
    ) -> Result<(), RateLimiterError> {
        let wait = self.reserve(bucket, limit, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_have_separate_buckets() {
        let limit = RateLimit::per_second(1).burst(1);
        let limiter = LocalRateLimiter::new();
        let t0 = Instant::now();
        assert!(limiter.reserve("push", limit, t0).is_zero());
        assert!(limiter.reserve("reply", limit, t0).is_zero());
        assert!(!limiter.reserve("push", limit, t0).is_zero());
    }

    #[test]
    fn defaults_follow_lines_documented_limits() {
        let d = RateLimits::default();
        assert_eq!(d.get(EndpointClass::Standard), Some(RateLimit::per_second(2000)));
        assert_eq!(d.get(EndpointClass::Broadcast).unwrap().rate() * 3600.0, 60.0);
    }
}
