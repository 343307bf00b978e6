//! The webhook hub beside the shop's other LINE tools: LINE's webhook arrives once at enishi
//! and is forwarded to three downstream receivers, through a downstream outage, a slow
//! downstream, one with its own channel secret, and a crash of enishi in the middle.
//!
//! ```text
//! cargo run --release --all-features --example hub -- --demo
//! ```
//!
//! The demo signs a stream of webhook bodies as LINE would (some with two users' events, some
//! redelivered), posts them to the hub's route on 127.0.0.1, drops the hub and its workers
//! halfway (as a crash would), starts a new hub over the same SQLite queue, posts the rest,
//! and waits until every receiver has every event. Every count on the last line comes from
//! the receivers' own records:
//!
//! ```text
//! hub: events=600 destinations=3 delivered=1800 duplicates=0 lost=0 dead_lettered=0 max_lag_ms=412
//! ```

#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use enishi::hub::{Backoff, Destination, Hub, HubService, SqliteHubQueue};
use enishi::line::webhook::{
    ChannelSecret, DEFAULT_RETENTION, Delivery, HandlerError, SIGNATURE_HEADER, SqliteDedup,
    WebhookService, sign,
};
use enishi::testkit::FakeDownstream;

/// Forward LINE's webhook to three local receivers through an outage and a crash.
#[derive(Debug, Parser)]
#[command(name = "hub", version)]
struct Args {
    /// Run the demo.
    #[arg(long)]
    demo: bool,
    /// Events to send.
    #[arg(long, default_value_t = 600)]
    events: usize,
    /// Distinct LINE users sending them.
    #[arg(long, default_value_t = 40)]
    users: usize,
    /// Requests the failing receiver refuses (503) before it recovers.
    #[arg(long, default_value_t = 150)]
    fail_first: u64,
    /// The slow receiver's delay per request, in milliseconds.
    #[arg(long, default_value_t = 15)]
    slow_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.demo {
        eprintln!("nothing to do: run with --demo");
        return std::process::ExitCode::from(2);
    }
    report::exit(demo(args).await)
}

const CHANNEL_SECRET: &str = "demo-channel-secret";

/// One webhook event's JSON, as LINE sends it.
fn event_json(i: usize, users: usize) -> String {
    let user = format!("U{:032x}", i % users.max(1));
    let id = format!("01DEMO{i:020}");
    let common = format!(
        r#""timestamp":{ts},"source":{{"type":"user","userId":"{user}"}},"webhookEventId":"{id}","mode":"active","deliveryContext":{{"isRedelivery":false}}"#,
        ts = 1_760_000_000_000_u64 + i as u64
    );
    match i % 3 {
        0 => format!(
            r#"{{"type":"message","replyToken":"r{i}",{common},"message":{{"type":"text","id":"{i}","quoteToken":"q{i}","text":"こんにちは {i} 🤖"}}}}"#
        ),
        1 => format!(
            r#"{{"type":"postback","replyToken":"r{i}",{common},"postback":{{"data":"menu={i}"}}}}"#
        ),
        _ => format!(
            r#"{{"type":"follow","replyToken":"r{i}",{common},"follow":{{"isUnblocked":false}}}}"#
        ),
    }
}

/// The bodies: mostly one event each, every 10th with two users' events.
fn bodies(events: usize, users: usize) -> Vec<(Vec<usize>, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < events {
        let n = if out.len() % 10 == 9 && i + 1 < events { 2 } else { 1 };
        let ids: Vec<usize> = (i..i + n).collect();
        let json: Vec<String> = ids.iter().map(|&k| event_json(k, users)).collect();
        out.push((ids, format!(r#"{{"destination":"Ubot","events":[{}]}}"#, json.join(","))));
        i += n;
    }
    out
}

struct Intake {
    url: String,
    server: tokio::task::JoinHandle<()>,
    worker: enishi::hub::HubWorker,
    hub: Hub,
}

async fn start_intake(
    queue_path: &std::path::Path,
    receivers: &[(&str, &FakeDownstream, Option<ChannelSecret>)],
    handled: Arc<AtomicU64>,
) -> Result<Intake, Box<dyn std::error::Error>> {
    let mut builder = Hub::builder(ChannelSecret::new(CHANNEL_SECRET))
        .queue(SqliteHubQueue::open(queue_path)?)
        .lease(Duration::from_secs(3))
        .poll_interval(Duration::from_millis(250));
    for (name, receiver, secret) in receivers {
        let mut d = Destination::new(*name, receiver.url())
            .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_millis(400)))
            .max_attempts(30)
            .timeout(Duration::from_secs(2));
        if let Some(secret) = secret {
            d = d.secret(secret.clone());
        }
        builder = builder.destination(d);
    }
    let hub = builder.build()?;
    let local = WebhookService::builder(ChannelSecret::new(CHANNEL_SECRET))
        .dedup(SqliteDedup::open(queue_path.with_file_name("dedup.sqlite"), DEFAULT_RETENTION)?)
        .build(move |_d: Delivery| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::Relaxed);
                Ok::<(), HandlerError>(())
            }
        });
    let app = HubService::new(hub.clone(), local).router("/webhook");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let worker = hub.spawn();
    Ok(Intake { url, server, worker, hub })
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let secret = ChannelSecret::new(CHANNEL_SECRET);
    let status = client
        .post(url)
        .header(SIGNATURE_HEADER, sign(&secret, body.as_bytes()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?
        .status();
    if !status.is_success() {
        return Err(format!("the hub answered {status}").into());
    }
    Ok(())
}

async fn demo(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let own_secret = ChannelSecret::new("karte-own-secret");
    let failing = FakeDownstream::start(ChannelSecret::new(CHANNEL_SECRET)).await?;
    failing.fail_next(args.fail_first);
    let slow = FakeDownstream::start(ChannelSecret::new(CHANNEL_SECRET)).await?;
    slow.set_delay(Duration::from_millis(args.slow_ms));
    let own = FakeDownstream::start(own_secret.clone()).await?;
    let receivers = [
        ("failing", &failing, None),
        ("slow", &slow, None),
        ("own-secret", &own, Some(own_secret)),
    ];

    let dir = std::env::temp_dir().join(format!("enishi-hub-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let queue_path = dir.join("hub.sqlite");
    let handled = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let bodies = bodies(args.events, args.users);
    let half = bodies.len() / 2;
    let mut sent_at: HashMap<String, DateTime<Utc>> = HashMap::new();

    // First half, then a crash: the workers and the hub are dropped mid-stream.
    let intake = start_intake(&queue_path, &receivers, Arc::clone(&handled)).await?;
    for (ids, body) in &bodies[..half] {
        for &i in ids {
            sent_at.insert(format!("01DEMO{i:020}"), Utc::now());
        }
        post(&client, &intake.url, body).await?;
    }
    slow.wait_for_events(args.events / 8).await;
    let Intake { url: _, server, worker, hub } = intake;
    drop(worker);
    server.abort();
    let pending_at_crash = {
        let mut n = 0;
        for (name, _, _) in &receivers {
            n += hub.queue().pending(name).await?;
        }
        n
    };
    drop(hub);

    // A new hub over the same queue file: what was queued is delivered, LINE's redelivery of
    // a few bodies of the first half is not forwarded twice.
    let intake = start_intake(&queue_path, &receivers, Arc::clone(&handled)).await?;
    let redelivered: Vec<&(Vec<usize>, String)> = bodies[..half].iter().step_by(25).collect();
    for (_, body) in &redelivered {
        post(
            &client,
            &intake.url,
            &body.replace("\"isRedelivery\":false", "\"isRedelivery\":true"),
        )
        .await?;
    }
    for (ids, body) in &bodies[half..] {
        for &i in ids {
            sent_at.insert(format!("01DEMO{i:020}"), Utc::now());
        }
        post(&client, &intake.url, body).await?;
    }

    let everyone = async {
        for (_, r, _) in &receivers {
            r.wait_for_events(args.events).await;
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(300), everyone).await.is_ok();

    // The counts, from the receivers' own records.
    let mut delivered = 0u64;
    let mut duplicates = 0u64;
    let mut lost = 0u64;
    let mut dead = 0u64;
    let mut max_lag = 0i64;
    let mut order_violations = 0u64;
    let mut resent = 0u64;
    let mut refused = 0u64;
    let mut bad_signatures = 0u64;
    for (name, r, _) in &receivers {
        let events = r.events();
        delivered += events.len() as u64;
        duplicates += r.duplicate_events().len() as u64;
        let distinct: std::collections::HashSet<&str> =
            events.iter().map(|e| e.event_id.as_str()).collect();
        lost += (args.events as u64).saturating_sub(distinct.len() as u64);
        dead += intake.hub.queue().dead_letters(name).await?.len() as u64;
        resent += r.resent();
        refused += r.refused();
        bad_signatures += r.bad_signatures();
        let mut last: HashMap<&str, &str> = HashMap::new();
        for e in &events {
            if let Some(prev) = last.insert(e.user.as_str(), e.event_id.as_str())
                && prev >= e.event_id.as_str()
            {
                order_violations += 1;
            }
            if let Some(at) = sent_at.get(&e.event_id) {
                max_lag = max_lag.max((e.at - *at).num_milliseconds());
            }
        }
    }
    intake.worker.shutdown().await;
    intake.server.abort();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "demo: bodies={} redelivered_bodies={} pending_at_crash={pending_at_crash} refused_503={refused} \
         resent_after_crash={resent} bad_signatures={bad_signatures} order_violations={order_violations} \
         handled_locally={}",
        bodies.len(),
        redelivered.len(),
        handled.load(Ordering::Relaxed),
    );
    println!(
        "hub: events={} destinations={} delivered={delivered} duplicates={duplicates} lost={lost} \
         dead_lettered={dead} max_lag_ms={max_lag}",
        args.events,
        receivers.len(),
    );
    if !finished {
        return Err("the receivers did not get every event within 5 minutes".into());
    }
    if order_violations > 0 || bad_signatures > 0 {
        return Err("events arrived out of order per user, or badly signed".into());
    }
    Ok(())
}
