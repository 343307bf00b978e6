//! Seeded fault decisions and the token buckets.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{FakeRateLimit, FaultTiming, Faults};

/// SplitMix64's finaliser: a cheap, well-mixed hash of a 64-bit value.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for draw `k` of request number `n` under `seed`.
fn unit(seed: u64, n: u64, k: u64) -> f64 {
    // 53 random bits make every f64 in [0, 1) with that spacing equally likely.
    (mix(seed ^ mix(n.wrapping_mul(4).wrapping_add(k))) >> 11) as f64 / (1u64 << 53) as f64
}

/// The failure a request was chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    ServerError,
    RateLimited,
    Dropped,
}

/// What the fault injector decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    pub(crate) delay: Option<Duration>,
    pub(crate) failure: Option<Failure>,
    /// Whether `failure` (a 500 or a drop) happens after the request took effect.
    pub(crate) after: bool,
}

/// Draws the plan for the `n`-th request that the faults apply to.
pub(crate) fn draw(faults: &Faults, seed: u64, n: u64) -> Plan {
    let failure_draw = unit(seed, n, 0);
    let failure = if failure_draw < faults.server_error {
        Some(Failure::ServerError)
    } else if failure_draw < faults.server_error + faults.rate_limited {
        Some(Failure::RateLimited)
    } else if failure_draw < faults.server_error + faults.rate_limited + faults.dropped {
        Some(Failure::Dropped)
    } else {
        None
    };
    let delay = (unit(seed, n, 1) < faults.slow).then_some(faults.slow_delay);
    let after = match faults.timing {
        FaultTiming::BeforeAcceptance => false,
        FaultTiming::AfterAcceptance => true,
        FaultTiming::Either => unit(seed, n, 2) < 0.5,
    };
    // A rate-limit 429 always means "not accepted".
    let after = after && failure != Some(Failure::RateLimited);
    Plan { delay, failure, after }
}

/// One token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    inner: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    limit: FakeRateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: FakeRateLimit) -> Self {
        Self {
            inner: Mutex::new(BucketState {
                limit,
                tokens: f64::from(limit.capacity()),
                last: Instant::now(),
            }),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&self) -> bool {
        let mut state = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(rate) = state.limit.tokens_per_second() else {
            return true;
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.last = now;
        let capacity = f64::from(state.limit.capacity());
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Replaces the limit and refills the bucket.
    pub(crate) fn reset(&self, limit: Option<FakeRateLimit>) {
        let mut state = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(limit) = limit {
            state.limit = limit;
        }
        state.tokens = f64::from(state.limit.capacity());
        state.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_follow_the_fractions() {
        let faults = Faults { server_error: 0.25, dropped: 0.25, slow: 0.5, ..Faults::default() };
        let a: Vec<Plan> = (0..4000).map(|n| draw(&faults, 42, n)).collect();
        let b: Vec<Plan> = (0..4000).map(|n| draw(&faults, 42, n)).collect();
        let c: Vec<Plan> = (0..4000).map(|n| draw(&faults, 43, n)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let errors = a.iter().filter(|p| p.failure == Some(Failure::ServerError)).count();
        let drops = a.iter().filter(|p| p.failure == Some(Failure::Dropped)).count();
        let slow = a.iter().filter(|p| p.delay.is_some()).count();
        for (count, expected) in [(errors, 1000), (drops, 1000), (slow, 2000)] {
            assert!(count.abs_diff(expected) < 150, "{count} vs {expected}");
        }
        // The default timing never fails after acceptance.
        assert!(a.iter().all(|p| !p.after));
    }

    #[test]
    fn empty_bucket_refuses_until_refilled() {
        let bucket = Bucket::new(FakeRateLimit::per_hour(2));
        assert!(bucket.try_take());
        assert!(bucket.try_take());
        assert!(!bucket.try_take());
        bucket.reset(None);
        assert!(bucket.try_take());
        let unlimited = Bucket::new(FakeRateLimit::unlimited());
        assert!((0..10_000).all(|_| unlimited.try_take()));
    }
}
