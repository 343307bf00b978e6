//! The Redis-shared rate limiter against a real Redis: several limiter instances (as several
//! processes would hold) draw from one bucket, timed by Redis' clock.

use std::sync::{Arc, Mutex};

use enishi::LineUserId;
use enishi::line::message::Message;
use enishi::line::{
    EndpointClass, LineClient, LineError, PushRequest, RateLimit, RateLimiter, RateLimiterError,
    RateLimits, RedisRateLimiter, RetryPolicy,
};
use enishi::testkit::{self as fake, FakeLine};

fn redis_url() -> String {
    std::env::var("ENISHI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) shares.
fn prefix() -> String {
    format!("enishi-it:{}:", uuid::Uuid::new_v4().simple())
}

async fn limiter(prefix: &str) -> RedisRateLimiter {
    let url = redis_url();
    RedisRateLimiter::connect(&url, prefix).await.unwrap_or_else(|e| {
        panic!(
            "Redis is needed at {url} ({e}: {:?}). Start it (e.g. `redis-server --daemonize yes`) \
             or set ENISHI_TEST_REDIS_URL.",
            std::error::Error::source(&e)
        )
    })
}

/// A [`RedisRateLimiter`] that writes down when (on Redis' clock) each token it took may be
/// used, then waits like the plain limiter. Tests check the schedule the limiter made, which
/// does not depend on how fast the machine is, rather than when requests happened to arrive.
#[derive(Debug)]
pub(crate) struct Recording {
    inner: RedisRateLimiter,
    grants: Arc<Mutex<Vec<chrono::DateTime<chrono::Utc>>>>,
}

impl Recording {
    /// Wraps `inner`; every grant is appended to `grants`.
    pub(crate) fn new(
        inner: RedisRateLimiter,
        grants: &Arc<Mutex<Vec<chrono::DateTime<chrono::Utc>>>>,
    ) -> Self {
        Self { inner, grants: Arc::clone(grants) }
    }
}

#[async_trait::async_trait]
impl RateLimiter for Recording {
    async fn acquire(
        &self,
        bucket: &'static str,
        _class: EndpointClass,
        limit: RateLimit,
    ) -> Result<(), RateLimiterError> {
        let grant = self.inner.reserve(bucket, limit).await?;
        self.grants.lock().unwrap().push(grant.send_at);
        tokio::time::sleep(grant.wait).await;
        Ok(())
    }
}

/// Checks a schedule of grants against a bucket of `burst` refilling one token every
/// `interval_us`: the first window (of up to ten intervals) holding more grants than the
/// bucket allows, if any. Wall-clock speed cannot make one; only a limiter that hands out
/// too many tokens can.
fn overrun(
    grants: &[chrono::DateTime<chrono::Utc>],
    interval_us: i64,
    burst: usize,
) -> Option<String> {
    let mut at: Vec<i64> = grants.iter().map(chrono::DateTime::timestamp_micros).collect();
    at.sort_unstable();
    (0..=40).find_map(|k| {
        let window_us = interval_us * k / 4;
        let allowed = burst + usize::try_from(window_us / interval_us).unwrap();
        let seen = busiest_window(&at, window_us);
        (seen > allowed).then(|| format!("{seen} grants in {window_us} µs (at most {allowed})"))
    })
}

/// Asserts that the grants never beat the bucket (see [`overrun`]).
pub(crate) fn assert_within_limit(
    grants: &[chrono::DateTime<chrono::Utc>],
    interval_us: i64,
    burst: usize,
) {
    if let Some(overrun) = overrun(grants, interval_us, burst) {
        panic!("{overrun}: {grants:?}");
    }
}

/// Checks that no delivery the fake recorded came before its turn: the k-th delivery is no
/// earlier than the k-th grant, since each delivery's request waited for a grant of its own
/// (retried requests take grants too, so there may be more grants). Redis and the fake read
/// the same machine clock. A lower bound only, so a slow machine cannot fail it.
pub(crate) fn assert_not_before_grants(
    deliveries: &[chrono::DateTime<chrono::Utc>],
    grants: &[chrono::DateTime<chrono::Utc>],
) {
    let (mut deliveries, mut grants) = (deliveries.to_vec(), grants.to_vec());
    deliveries.sort_unstable();
    grants.sort_unstable();
    assert!(
        deliveries.len() <= grants.len(),
        "{} deliveries, {} grants",
        deliveries.len(),
        grants.len()
    );
    for (i, (d, g)) in deliveries.iter().zip(&grants).enumerate() {
        assert!(d >= g, "delivery {i} at {d} came before its grant at {g}");
    }
}

/// The most grants whose Redis-clock times fall in any closed window of `window_us`.
fn busiest_window(sorted_us: &[i64], window_us: i64) -> usize {
    let mut best = 0;
    let mut end = 0;
    for start in 0..sorted_us.len() {
        while end < sorted_us.len() && sorted_us[end] <= sorted_us[start] + window_us {
            end += 1;
        }
        best = best.max(end - start);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_limiters_share_one_bucket_and_never_exceed_rate_plus_burst() {
    let prefix = prefix();
    let limiters: Vec<Arc<RedisRateLimiter>> = vec![
        Arc::new(limiter(&prefix).await),
        Arc::new(limiter(&prefix).await),
        Arc::new(limiter(&prefix).await),
    ];
    // 10/s with bursts of 3: one token every 100 ms of Redis time.
    let limit = RateLimit::per_second(10).burst(3);
    let interval_us = 100_000;
    let mut tasks = Vec::new();
    for l in &limiters {
        for _ in 0..10 {
            let l = Arc::clone(l);
            tasks.push(tokio::spawn(async move { l.reserve("push", limit).await.unwrap() }));
        }
    }
    let mut at: Vec<i64> = Vec::new();
    for t in tasks {
        at.push(t.await.unwrap().send_at.timestamp_micros());
    }
    at.sort_unstable();
    for window_us in [0, 50_000, 100_000, 250_000, 1_000_000, 2_000_000] {
        let allowed = 3 + usize::try_from(window_us / interval_us).unwrap();
        let seen = busiest_window(&at, window_us);
        assert!(seen <= allowed, "{seen} grants in {window_us} µs (at most {allowed}): {at:?}");
    }
    // One bucket for all three: 30 grants need at least 27 intervals after the burst. Three
    // separate buckets would have spread them over only 7.
    let span = at[at.len() - 1] - at[0];
    assert!(span >= 27 * interval_us, "span {span} µs: the bucket is not shared: {at:?}");
    // And a different bucket name is a different bucket.
    let other = limiters[0].reserve("reply", limit).await.unwrap();
    assert!(other.wait.is_zero(), "{other:?}");
}

/// The waits GCRA gives for grants taken at `now_us` (Redis' clock) under one token per
/// `interval_us` with bursts of `burst`: the local limiter's bucket, computed exactly.
fn gcra_waits(now_us: &[i64], interval_us: i64, burst: i64) -> Vec<i64> {
    let mut tat: Option<i64> = None;
    now_us
        .iter()
        .map(|&now| {
            let new_tat = tat.map_or(now, |t| t.max(now)) + interval_us;
            tat = Some(new_tat);
            (new_tat - burst * interval_us - now).max(0)
        })
        .collect()
}

#[tokio::test]
async fn bursts_then_paces_exactly_like_the_local_limiter() {
    let prefix = prefix();
    let l = limiter(&prefix).await;
    // One token an hour with bursts of 5: however slowly these ten calls run, the bucket
    // cannot refill between them, so the burst and the pacing are both exercised.
    let interval_us: i64 = 3_600_000_000;
    let limit = RateLimit::new(1, std::time::Duration::from_secs(3600)).burst(5);
    let mut grants = Vec::new();
    for _ in 0..10 {
        grants.push(l.reserve("push", limit).await.unwrap());
    }
    assert!(grants[..5].iter().all(|g| g.wait.is_zero()), "the burst is free: {grants:?}");
    assert!(grants[5..].iter().all(|g| !g.wait.is_zero()), "then it paces: {grants:?}");
    for pair in grants[5..].windows(2) {
        let step = pair[1].send_at - pair[0].send_at;
        assert_eq!(step, chrono::Duration::hours(1), "one token an hour: {grants:?}");
    }
    // Each wait is exactly what the bucket gives at the Redis time the grant was taken.
    let wait_us = |g: &enishi::line::RedisGrant| i64::try_from(g.wait.as_micros()).unwrap();
    let now_us: Vec<i64> =
        grants.iter().map(|g| g.send_at.timestamp_micros() - wait_us(g)).collect();
    let waits: Vec<i64> = grants.iter().map(wait_us).collect();
    assert_eq!(waits, gcra_waits(&now_us, interval_us, 5), "{grants:?}");
    forget(&prefix, "push").await;
}

/// Deletes a bucket whose key would otherwise outlive the test by hours.
async fn forget(prefix: &str, bucket: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () =
        redis::cmd("DEL").arg(format!("{prefix}{bucket}")).query_async(&mut conn).await.unwrap();
}

fn users(n: u64) -> Vec<LineUserId> {
    (0..n).map(|i| fake::user_id(i).parse().unwrap()).collect()
}

/// Three clients (three processes' worth), each with its own limiter instance on one key
/// prefix, push 20 messages each at once to a fake LINE; the limiters' grants are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_clients_sharing_a_redis_limiter_stay_within_the_channel_limit() {
    let prefix = prefix();
    let line = FakeLine::start().await.expect("the fake LINE server starts");
    // 20 pushes/s, one at a time: the channel's limit, shared by the three clients.
    let interval_us = 50_000;
    let limits = RateLimits::unlimited()
        .with(EndpointClass::Standard, Some(RateLimit::per_second(20).burst(1)));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let limiter = Recording::new(limiter(&prefix).await, &grants);
        clients.push(
            LineClient::builder()
                .channel_access_token(line.channel_access_token())
                .base_url(line.api_base_url())
                .rate_limits(limits.clone())
                .rate_limiter(Arc::new(limiter))
                .retry_policy(RetryPolicy::never())
                .build()
                .unwrap(),
        );
    }
    let sends = users(60).into_iter().enumerate().map(|(i, u)| {
        let client = clients[i % 3].clone();
        async move { client.push(PushRequest::new(u, vec![Message::text("shared")])).await }
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let grants = grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 60, "every push asked the shared limiter once");
    // The combined schedule, on Redis' clock, never beats the channel's limit, so LINE
    // would answer no 429: three separate buckets would have allowed three times as many.
    assert_within_limit(&grants, interval_us, 1);
    let arrived: Vec<_> = line.deliveries().iter().map(|d| d.at).collect();
    assert_eq!(arrived.len(), 60);
    assert_not_before_grants(&arrived, &grants);
    line.shutdown().await;
}

/// The control for the schedule check: one prefix per limiter is three buckets, and the
/// check sees the overrun. One token an hour, so no refill can hide it however slow the
/// machine.
#[tokio::test]
async fn separate_prefixes_are_separate_buckets_and_the_schedule_check_sees_it() {
    let limit = RateLimit::new(1, std::time::Duration::from_secs(3600)).burst(1);
    let interval_us = 3_600_000_000;
    let (shared, separate) = (prefix(), [prefix(), prefix(), prefix()]);
    let mut one_bucket = Vec::new();
    let mut three_buckets = Vec::new();
    for p in &separate {
        let (s, own) = (limiter(&shared).await, limiter(p).await);
        for _ in 0..2 {
            one_bucket.push(s.reserve("push", limit).await.unwrap().send_at);
            three_buckets.push(own.reserve("push", limit).await.unwrap().send_at);
        }
    }
    assert_within_limit(&one_bucket, interval_us, 1);
    let seen = overrun(&three_buckets, interval_us, 1);
    assert!(seen.is_some(), "three buckets hand out three tokens at once: {three_buckets:?}");
    for p in separate.iter().chain([&shared]) {
        forget(p, "push").await;
    }
}

#[tokio::test]
async fn an_unreachable_redis_fails_the_request_unsent_with_a_typed_error() {
    let line = FakeLine::start().await.expect("the fake LINE server starts");
    // Port 1 refuses connections: the limiter cannot decide, so nothing is sent.
    let limiter = RedisRateLimiter::new(redis::Client::open("redis://127.0.0.1:1").unwrap(), "x:");
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .rate_limiter(Arc::new(limiter))
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    let user = users(1).remove(0);
    let err = client.push(PushRequest::new(user, vec![Message::text("x")])).await.unwrap_err();
    assert!(matches!(err, LineError::RateLimiter { endpoint: "push", .. }), "{err:?}");
    assert!(err.is_retryable() && err.status().is_none());
    assert!(std::error::Error::source(&err).is_some(), "the limiter's error is kept");
    assert_eq!(line.delivery_count(), 0);
    assert!(RedisRateLimiter::connect("redis://127.0.0.1:1", "x:").await.is_err());
    assert!(RedisRateLimiter::connect("not a url", "x:").await.is_err());
    line.shutdown().await;
}

#[test]
fn the_limiter_never_prints_its_connection_details() {
    let client = redis::Client::open("redis://:hunter2@127.0.0.1:6379").unwrap();
    let limiter = RedisRateLimiter::new(client, "enishi:line:rate:1650000000:");
    let debug = format!("{limiter:?}");
    assert!(!debug.contains("hunter2") && debug.contains("1650000000"), "{debug}");
}
