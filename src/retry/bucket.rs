//! Client-side pacing: a token bucket, pure (the caller passes the time and does the waiting).

use std::time::{Duration, Instant};

/// A token-bucket limit: `count` requests per `per`, with bursts of up to `burst` requests.
///
/// The default burst is a small share (5 %, at least 1) of the count, so a server's bucket of
/// the same limit always keeps a reserve for network jitter and the client never provokes a
/// 429. One request every `interval` is `RateLimit::new(1, interval)` (burst 1).
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

    /// The number of requests per [`per`](Self::per).
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period the count is measured over.
    #[must_use]
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The largest burst (bucket capacity), at least 1.
    #[must_use]
    pub fn burst_size(&self) -> u32 {
        self.burst
    }
}

/// One token bucket: full at first use, refilled at [`RateLimit::rate`] up to
/// [`RateLimit::burst_size`]. Each [`reserve`](Self::reserve) takes a token, possibly in
/// advance, and says how long to wait before using it, so waiters are served in order.
///
/// ```
/// use std::time::{Duration, Instant};
/// use enishi::retry::{RateLimit, TokenBucket};
///
/// let limit = RateLimit::new(1, Duration::from_secs(1)); // one request a second
/// let mut bucket = TokenBucket::new();
/// let t0 = Instant::now();
/// assert_eq!(bucket.reserve(limit, t0), Duration::ZERO);
/// assert_eq!(bucket.reserve(limit, t0), Duration::from_secs(1));
/// assert_eq!(bucket.reserve(limit, t0), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct TokenBucket {
    /// May go negative: each waiter reserves its token.
    tokens: f64,
    /// `None` until first use.
    last: Option<Instant>,
}

impl TokenBucket {
    /// A bucket that is full at its first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one token at `now` under `limit` and returns how long to wait before using it.
    pub fn reserve(&mut self, limit: RateLimit, now: Instant) -> Duration {
        let rate = limit.rate();
        let capacity = f64::from(limit.burst);
        let elapsed = match self.last {
            None => {
                self.tokens = capacity;
                0.0
            }
            Some(last) => now.saturating_duration_since(last).as_secs_f64(),
        };
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_capacity_then_paces_at_the_rate() {
        let limit = RateLimit::per_second(100).burst(5);
        let mut bucket = TokenBucket::new();
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..10).map(|_| bucket.reserve(limit, t0)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        for (i, w) in waits[5..].iter().enumerate() {
            let expected = Duration::from_millis(10 * (i as u64 + 1));
            assert!(w.abs_diff(expected) < Duration::from_micros(10), "{i}: {w:?}");
        }
        // Later the bucket is full again, never fuller.
        let later = t0 + Duration::from_secs(2);
        let waits: Vec<Duration> = (0..6).map(|_| bucket.reserve(limit, later)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero) && !waits[5].is_zero(), "{waits:?}");
    }

    #[test]
    fn one_per_interval_paces_like_a_slot_queue() {
        let limit = RateLimit::new(1, Duration::from_millis(250));
        let mut bucket = TokenBucket::new();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(bucket.reserve(limit, t0), ms(0));
        assert_eq!(bucket.reserve(limit, t0 + ms(100)), ms(150));
        // An idle bucket refills to one token, no more.
        assert_eq!(bucket.reserve(limit, t0 + ms(5000)), ms(0));
        assert_eq!(bucket.reserve(limit, t0 + ms(5000)), ms(250));
    }

    #[test]
    fn default_burst_is_five_percent() {
        assert_eq!(RateLimit::per_second(2000).burst_size(), 100);
        assert_eq!(RateLimit::new(60, Duration::from_secs(3600)).burst_size(), 3);
        assert_eq!(RateLimit::new(0, Duration::from_secs(1)).count(), 1);
    }
}
