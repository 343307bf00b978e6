//! Client-side pacing: one token bucket per LINE endpoint, shared by every clone of a client.
//!
//! LINE limits each endpoint of a channel separately with a token bucket and documents no
//! rate-limit headers, so the only way never to provoke a 429 is to pace on our side.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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
        }
    }

    const ALL: [Self; 7] = [
        Self::Standard,
        Self::Multicast,
        Self::Broadcast,
        Self::Insight,
        Self::Audience,
        Self::RichMenuManage,
        Self::RichMenuList,
    ];
}

/// A token-bucket limit: `count` requests per `per`, with bursts of up to `burst` requests.
///
/// The client's default burst is a small share (5 %, at least 1) of LINE's bucket, so LINE's
/// bucket always keeps a reserve for network jitter and the client never provokes a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    count: u32,
    per: Duration,
    burst: u32,
}

impl RateLimit {
    /// `count` requests per `per`, with the default burst (5 % of `count`, at least 1).
    #[must_use]
    pub fn new(count: u32, per: Duration) -> Self {
        Self { count: count.max(1), per, burst: (count / 20).max(1) }
    }

    /// `count` requests per second.
    #[must_use]
    pub fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// Sets the largest burst (bucket capacity), at least 1.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Requests per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64().max(1e-9)
    }
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

#[derive(Debug)]
struct Bucket {
    /// May go negative: each waiter reserves its token, so waiters are served in order.
    tokens: f64,
    last: Instant,
}

/// The shared limiter: buckets keyed by endpoint (or by class where LINE shares the limit).
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Waits until a request to `bucket` (of `class`) may be sent.
    pub(crate) async fn acquire(&self, bucket: &'static str, class: EndpointClass) {
        let wait = self.reserve(bucket, class, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token (possibly in advance) and says how long to wait before using it.
    fn reserve(&self, bucket: &'static str, class: EndpointClass, now: Instant) -> Duration {
        let Some(limit) = self.limits.get(class) else { return Duration::ZERO };
        let rate = limit.rate();
        let capacity = f64::from(limit.burst);
        // A poisoned lock only means another thread panicked mid-update of plain numbers.
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = buckets.entry(bucket).or_insert(Bucket { tokens: capacity, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(capacity);
        b.last = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-b.tokens / rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_capacity_then_paces_at_the_rate() {
        let limits = RateLimits::unlimited()
            .with(EndpointClass::Standard, Some(RateLimit::per_second(100).burst(5)));
        let limiter = Limiter::new(limits);
        let t0 = Instant::now();
        let waits: Vec<Duration> =
            (0..10).map(|_| limiter.reserve("push", EndpointClass::Standard, t0)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        for (i, w) in waits[5..].iter().enumerate() {
            let expected = Duration::from_millis(10 * (i as u64 + 1));
            assert!(w.abs_diff(expected) < Duration::from_micros(10), "{i}: {w:?}");
        }
        // A second later the bucket is full again, never fuller.
        let later = t0 + Duration::from_secs(2);
        let waits: Vec<Duration> =
            (0..6).map(|_| limiter.reserve("push", EndpointClass::Standard, later)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero) && !waits[5].is_zero(), "{waits:?}");
    }

    #[test]
    fn endpoints_have_separate_buckets_and_unpaced_classes_never_wait() {
        let limits = RateLimits::unlimited()
            .with(EndpointClass::Standard, Some(RateLimit::per_second(1).burst(1)));
        let limiter = Limiter::new(limits);
        let t0 = Instant::now();
        assert!(limiter.reserve("push", EndpointClass::Standard, t0).is_zero());
        assert!(limiter.reserve("reply", EndpointClass::Standard, t0).is_zero());
        assert!(!limiter.reserve("push", EndpointClass::Standard, t0).is_zero());
        for _ in 0..1000 {
            assert!(limiter.reserve("multicast", EndpointClass::Multicast, t0).is_zero());
        }
    }

    #[test]
    fn defaults_follow_lines_documented_limits() {
        let d = RateLimits::default();
        assert_eq!(d.get(EndpointClass::Standard), Some(RateLimit::per_second(2000)));
        assert_eq!(d.get(EndpointClass::Broadcast).unwrap().rate() * 3600.0, 60.0);
        assert_eq!(RateLimit::per_second(2000).burst, 100);
        assert_eq!(RateLimit::new(60, Duration::from_secs(3600)).burst, 3);
    }
}
