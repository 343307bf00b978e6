//! The Redis-shared rate limiter against a real Redis: several limiter instances (as several
//! processes would hold) draw from one bucket, timed by Redis' clock.

use std::sync::Arc;

use enishi::LineUserId;
use enishi::line::{
    EndpointClass, LineClient, LineError, LocalRateLimiter, Message, PushRequest, RateLimit,
    RateLimiter, RateLimits, RedisRateLimiter, RetryPolicy,
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

#[tokio::test]
async fn bursts_then_paces_exactly_like_the_local_limiter() {
    let l = limiter(&prefix()).await;
    // 100/s with bursts of 5, asked ten times in quick succession (well within 50 ms).
    let limit = RateLimit::per_second(100).burst(5);
    let mut grants = Vec::new();
    for _ in 0..10 {
        grants.push(l.reserve("push", limit).await.unwrap());
    }
    assert!(grants[..5].iter().all(|g| g.wait.is_zero()), "the burst is free: {grants:?}");
    assert!(grants[5..].iter().all(|g| !g.wait.is_zero()), "then it paces: {grants:?}");
    for pair in grants[5..].windows(2) {
        let step = pair[1].send_at - pair[0].send_at;
        assert_eq!(step, chrono::Duration::milliseconds(10), "one token per 10 ms: {grants:?}");
    }
}

fn users(n: u64) -> Vec<LineUserId> {
    (0..n).map(|i| fake::user_id(i).parse().unwrap()).collect()
}

/// Three clients (three processes' worth) push 20 messages each at once through `limiters`,
/// against a fake LINE allowing 20 pushes/s with a bucket of 5; returns its 429 count.
async fn three_clients_push(limiters: [Arc<dyn RateLimiter>; 3]) -> (u64, usize) {
    let line = FakeLine::builder()
        .rate_limit(fake::EndpointClass::Push, fake::RateLimit::per_second(20).with_capacity(5))
        .start()
        .await
        .expect("the fake LINE server starts");
    let limits =
        RateLimits::unlimited().with(EndpointClass::Standard, Some(RateLimit::per_second(20)));
    let clients: Vec<LineClient> = limiters
        .into_iter()
        .map(|limiter| {
            LineClient::builder()
                .channel_access_token(line.channel_access_token())
                .base_url(line.api_base_url())
                .rate_limits(limits.clone())
                .rate_limiter(limiter)
                .retry_policy(RetryPolicy::never())
                .build()
                .unwrap()
        })
        .collect();
    let sends = users(60).into_iter().enumerate().map(|(i, u)| {
        let client = clients[i % 3].clone();
        async move { client.push(PushRequest::new(u, vec![Message::text("shared")])).await }
    });
    let results = futures_util::future::join_all(sends).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let limited = line.counters().rate_limited;
    line.shutdown().await;
    (limited, ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_clients_sharing_a_redis_limiter_provoke_no_429() {
    let prefix = prefix();
    let shared: [Arc<dyn RateLimiter>; 3] = [
        Arc::new(limiter(&prefix).await),
        Arc::new(limiter(&prefix).await),
        Arc::new(limiter(&prefix).await),
    ];
    let (limited, ok) = three_clients_push(shared).await;
    assert_eq!(limited, 0, "one shared bucket keeps three clients under the channel's limit");
    assert_eq!(ok, 60);
    // The control: each client pacing on its own sends three times too fast.
    let local: [Arc<dyn RateLimiter>; 3] = [
        Arc::new(LocalRateLimiter::new()),
        Arc::new(LocalRateLimiter::new()),
        Arc::new(LocalRateLimiter::new()),
    ];
    let (limited, ok) = three_clients_push(local).await;
    assert!(limited > 0 && ok < 60, "separate buckets must overrun the limit ({limited} 429s)");
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
