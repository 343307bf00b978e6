//! Sustained push throughput against the fake LINE server.
//!
//! Starts the fake LINE server (from the `testkit` feature) on its own thread and runtime,
//! configured with LINE's push limit (2,000 requests/s by default), and pushes to it from a
//! single-threaded client for 10 s. It then prints:
//!
//! - the achieved requests/s as a fraction of the limit (target ≥ 0.95);
//! - the 429s the server sent (target 0: the client's pacing must prevent them);
//! - the client's CPU time per request (CPU time of the client thread only).
//!
//! The server also checks that every user got each message exactly once.
//!
//! ```sh
//! cargo run --release --all-features --example line_throughput -- [--seconds 10] [--rate 2000] [--concurrency 64]
//! ```
//!
//! The last line has the form `limit_fraction=<f> http_429=<n> cpu_us_per_request=<f>`.

#[path = "support/report.rs"]
mod report;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use enishi::LineUserId;
use enishi::line::message::Message;
use enishi::line::{EndpointClass, LineClient, PushRequest, RateLimit, RateLimits};
use enishi::testkit::{self as fake, FakeLine};

/// Sustained push throughput against the fake LINE server.
#[derive(Debug, clap::Parser)]
#[command(name = "line_throughput", version)]
struct Args {
    /// How long to push.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// The push rate limit (requests/s) the fake enforces and the client paces to.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    concurrency: usize,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive whole number".into()),
    }
}

/// What the server saw, read on its own thread after the run.
struct ServerReport {
    http_429: u64,
    deliveries: usize,
    duplicates: usize,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    report::exit(run(&args))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let users: Vec<String> = (0..10_000u64).map(fake::user_id).collect();

    // The fake server gets its own thread and runtime so the client's CPU time can be measured
    // on the client thread alone.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_users = users.clone();
    let rate = args.rate;
    let server = std::thread::spawn(move || -> Result<ServerReport, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let line = FakeLine::builder()
                .rate_limit(fake::FakeEndpointClass::Push, fake::FakeRateLimit::per_second(rate))
                .friends(server_users)
                .start()
                .await
                .map_err(|e| e.to_string())?;
            ready_tx
                .send((line.api_base_url(), line.channel_access_token().to_owned()))
                .map_err(|e| e.to_string())?;
            let _ = stop_rx.await;
            let counters = line.counters();
            Ok(ServerReport {
                http_429: counters.rate_limited + counters.quota_exceeded,
                deliveries: line.delivery_count(),
                duplicates: line.duplicate_deliveries().len(),
            })
        })
    });
    let (base_url, token) = ready_rx.recv().map_err(|_| "the fake LINE server did not start")?;

    let client = LineClient::builder()
        .channel_access_token(token)
        .base_url(base_url)
        .rate_limits(
            RateLimits::default().with(EndpointClass::Standard, Some(RateLimit::per_second(rate))),
        )
        .build()?;
    let users: Vec<LineUserId> = users.iter().map(|u| u.parse()).collect::<Result<_, _>>()?;

    println!(
        "line_throughput: pushing to the fake LINE server limited to {} requests/s for {} s ({} in flight)",
        args.rate, args.seconds, args.concurrency
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cpu = cpu_time::ThreadTime::now();
    let (ok, failed, elapsed) = rt.block_on(push_for(&client, &users, args))?;
    let cpu = cpu.elapsed();

    let _ = stop_tx.send(());
    let report = server.join().map_err(|_| "the fake LINE server thread panicked")??;

    let achieved = ok as f64 / elapsed.as_secs_f64();
    let fraction = achieved / f64::from(args.rate);
    let cpu_us = cpu.as_secs_f64() * 1e6 / (ok + failed).max(1) as f64;
    println!("requests accepted: {ok}, failed: {failed}, in {:.2} s", elapsed.as_secs_f64());
    println!("achieved: {achieved:.1} requests/s = {fraction:.3} of the limit");
    println!("429s sent by the server: {}", report.http_429);
    println!(
        "deliveries recorded: {}, users who got a message twice: {}",
        report.deliveries, report.duplicates
    );
    println!("client CPU time: {:.3} s = {cpu_us:.1} µs per request", cpu.as_secs_f64());
    if report.duplicates > 0 {
        return Err(format!("{} users got a message twice", report.duplicates).into());
    }
    println!(
        "limit_fraction={fraction:.4} http_429={} cpu_us_per_request={cpu_us:.2}",
        report.http_429
    );
    Ok(())
}

/// Pushes from `concurrency` tasks until the time is up; returns (accepted, failed, elapsed).
async fn push_for(
    client: &LineClient,
    users: &[LineUserId],
    args: &Args,
) -> Result<(u64, u64, Duration), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let client = client.clone();
        // Each worker takes its own users in turn: one message per user and round.
        let mine: Vec<LineUserId> =
            users.iter().skip(worker).step_by(args.concurrency).cloned().collect();
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut round = 0u64;
            while Instant::now() < deadline {
                for user in &mine {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let text = format!("round {round}");
                    match client
                        .push(PushRequest::new(user.clone(), vec![Message::text(text)]))
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            if failed <= 3 {
                                eprintln!("push failed: {e}");
                            }
                        }
                    }
                }
                round += 1;
            }
            (ok, failed)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (o, f) = done?;
        ok += o;
        failed += f;
    }
    Ok((ok, failed, started.elapsed()))
}
