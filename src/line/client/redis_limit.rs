//! A rate limiter shared through Redis (feature `redis`): LINE limits a channel, not a
//! process, so every process sending for one channel must draw from one bucket.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;

use super::ratelimit::{EndpointClass, RateLimiter, RateLimiterError};
use crate::retry::RateLimit;

const BACKEND: &str = "redis";

/// GCRA with reservations, the same bucket as [`LocalRateLimiter`](super::LocalRateLimiter):
/// a full bucket holds `burst` tokens and refills one every `interval` µs; every caller takes
/// its token at once (the "theoretical arrival time" moves on by one interval) and is told how
/// long to wait before using it. Time is Redis' own (`TIME`), so machines whose clocks
/// disagree still share one schedule. The stored time is rounded up: never faster than the
/// limit. The key expires once the bucket is full again.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = math.ceil(tat + interval)
local allowed = new_tat - burst * interval
local wait = 0
if allowed > now then wait = math.ceil(allowed - now) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.ceil((new_tat - now) / 1000) + 1000)
return {wait, now}
";

/// One token taken from a Redis bucket: when it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisGrant {
    /// How long to wait before sending (zero while the bucket holds tokens).
    pub wait: Duration,
    /// When the request may be sent, on Redis' clock (the time of the grant plus `wait`).
    pub send_at: DateTime<Utc>,
}

/// A [`RateLimiter`] whose buckets live in Redis, so every process and machine sending for
/// one channel shares them, as LINE counts. Same burst semantics as the
/// [`LocalRateLimiter`](super::LocalRateLimiter).
///
/// Each acquisition is one atomic Lua script (GCRA) keyed `prefix + bucket`, timed by the
/// Redis server's clock. Use one prefix per LINE channel (e.g. `enishi:line:rate:<channel
/// ID>:`), and the same prefix and [`RateLimits`](super::RateLimits) in every process.
///
/// The limiter fails closed: when Redis cannot be reached the request is not sent and the
/// client returns [`LineError::RateLimiter`](super::LineError::RateLimiter) (retryable). A
/// dropped connection is re-opened on the next call. Clones are not needed: share it as
/// `Arc<dyn RateLimiter>`.
pub struct RedisRateLimiter {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    script: redis::Script,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection info may hold a password: leave it out.
        f.debug_struct("RedisRateLimiter").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter over `client` with keys `prefix + bucket`; connects on first use.
    #[must_use]
    pub fn new(client: redis::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            conn: tokio::sync::Mutex::new(None),
            prefix: prefix.into(),
            script: redis::Script::new(SCRIPT),
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) now, so a wrong address fails at
    /// start-up rather than at the first send.
    ///
    /// # Errors
    /// [`RateLimiterError::Backend`] when the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, RateLimiterError> {
        let client = redis::Client::open(url)
            .map_err(|e| RateLimiterError::backend(BACKEND, "invalid Redis URL", e))?;
        let limiter = Self::new(client, prefix);
        limiter.connection().await?;
        Ok(limiter)
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RateLimiterError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| RateLimiterError::backend(BACKEND, "connecting to Redis", e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Takes one token from `bucket` under `limit` and says when it may be used, without
    /// waiting. [`RateLimiter::acquire`] is this plus the wait.
    ///
    /// # Errors
    /// [`RateLimiterError::Backend`] when Redis fails or answers something unexpected.
    pub async fn reserve(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<RedisGrant, RateLimiterError> {
        let interval_us = limit.per().as_secs_f64() * 1e6 / f64::from(limit.count().max(1));
        let mut conn = self.connection().await?;
        let answer: Result<(i64, i64), redis::RedisError> = self
            .script
            .key(format!("{}{bucket}", self.prefix))
            .arg(interval_us)
            .arg(limit.burst_size())
            .invoke_async(&mut conn)
            .await;
        let (wait_us, now_us) = match answer {
            Ok(a) => a,
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    // Open a fresh connection next time.
                    *self.conn.lock().await = None;
                }
                return Err(RateLimiterError::backend(BACKEND, "running the pacing script", e));
            }
        };
        let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
        let send_at =
            DateTime::from_timestamp_micros(now_us.saturating_add(wait_us)).ok_or_else(|| {
                RateLimiterError::Backend {
                    backend: BACKEND,
                    message: format!("Redis reported an impossible time ({now_us} µs)"),
                    source: None,
                }
            })?;
        Ok(RedisGrant { wait, send_at })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(
        &self,
        bucket: &'static str,
        _class: EndpointClass,
        limit: RateLimit,
    ) -> Result<(), RateLimiterError> {
        let grant = self.reserve(bucket, limit).await?;
        if !grant.wait.is_zero() {
            tokio::time::sleep(grant.wait).await;
        }
        Ok(())
    }
}
