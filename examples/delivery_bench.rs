//! Campaign delivery benchmark against the fake LINE server with LINE's documented limits
//! (push 2,000 requests/s, multicast 200 requests/s).
//!
//! Generates `--recipients` LINE users, plans batches (one multicast request per 500 users with
//! identical content, or one personalised push per user), writes them to a delivery journal
//! (SQLite under `target/delivery_bench/` with the `sqlite` feature, else in memory) and sends
//! them with the [`Dispatcher`]. A progress bar with rate and ETA goes to stderr.
//!
//! `--faults F` makes the fake answer a fraction `F` of the send requests with a 500, a
//! rate-limit 429 or a response too slow for the client's timeout (a third each; half of the
//! 500s and time-outs happen after LINE accepted the request, so the resend gets 409).
//! `--crash-at F` runs the dispatcher in a child process, kills it (SIGKILL) once the fake has
//! recorded that fraction of the deliveries, and starts it again; it needs `sqlite`.
//!
//! Afterwards the fake's record (deliveries per recipient) is checked: duplicates and lost
//! recipients must be 0. The last line is
//! `limit_fraction=<f> http_429=<n> duplicates=<n> lost=<n> wall_s=<f>`, where `wall_s` is the
//! delivery time (first send to last outcome, restarts included; planning and enqueueing are
//! printed apart) and `limit_fraction` is the send requests the fake received per second of
//! that time, as a fraction of the endpoint's limit. `http_429` counts every 429 the fake sent
//! (with `--faults`, the injected ones too).
//!
//! ```sh
//! cargo run --release --all-features --example delivery_bench -- --recipients 200000 --mode push
//! cargo run --release --all-features --example delivery_bench -- --mode push --faults 0.1 --crash-at 0.3
//! ```

#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, ValueEnum};
use enishi::campaign::{
    Batch, BatchRecipient, DeliveryJournal, DeliveryReport, Dispatcher, MemoryJournal, RunStatus,
    Transport,
};
use enishi::line::message::Message;
use enishi::line::{LineClient, RetryPolicy};
use enishi::testkit::{
    self, DEFAULT_CHANNEL_ACCESS_TOKEN, Endpoint, FakeLine, FaultTiming, Faults,
};
use enishi::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId};
use indicatif::{ProgressBar, ProgressStyle};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Identical content, one multicast request per 500 recipients (limit 200 requests/s).
    Multicast,
    /// Personalised content, one push request per recipient (limit 2,000 requests/s).
    Push,
}

#[derive(Debug, Parser)]
#[command(about = "Campaign delivery benchmark against the fake LINE server")]
struct Args {
    /// Recipients to generate.
    #[arg(long, default_value_t = 1_000_000)]
    recipients: u64,
    /// multicast or push.
    #[arg(long, value_enum, default_value_t = Mode::Multicast)]
    mode: Mode,
    /// Fraction of send requests that fail (500, 429 or time-out).
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// Kill the dispatcher process once this fraction is delivered, then restart it.
    #[arg(long)]
    crash_at: Option<f64>,
    /// Sends in flight (default: 256 for push, 32 for multicast).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seed of the fake's fault draws.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Internal: run as the dispatcher child process.
    #[arg(long, hide = true)]
    worker: bool,
    /// Internal: the fake's base URL for the child.
    #[arg(long, hide = true)]
    line_url: Option<String>,
    /// Internal: the journal file for the child.
    #[arg(long, hide = true)]
    journal: Option<PathBuf>,
}

impl Args {
    fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(match self.mode {
            Mode::Push => 256,
            Mode::Multicast => 32,
        })
    }

    fn limit(&self) -> f64 {
        let class = match self.mode {
            Mode::Push => enishi::line::EndpointClass::Standard,
            Mode::Multicast => enishi::line::EndpointClass::Multicast,
        };
        class.line_default().rate()
    }
}

fn campaign() -> CampaignId {
    CampaignId::new("bench").expect("a valid campaign id")
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.worker { worker_main(&args) } else { parent_main(&args) };
    match result {
        Ok(code) => code,
        Err(e) => {
            report::report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?)
}

/// The client as both the in-process run and the child use it: LINE's documented limits.
/// The client's total retry time.
const RETRY_BUDGET: Duration = Duration::from_secs(4);

fn request_timeout(args: &Args) -> Duration {
    if args.faults > 0.0 { Duration::from_secs(1) } else { Duration::from_secs(10) }
}

fn client(args: &Args, base_url: &str) -> Result<LineClient, BoxError> {
    Ok(LineClient::builder()
        .channel_access_token(DEFAULT_CHANNEL_ACCESS_TOKEN)
        .base_url(base_url)
        .request_timeout(request_timeout(args))
        .retry_policy(RetryPolicy::default().max_elapsed(RETRY_BUDGET))
        .build()?)
}

fn dispatcher(
    args: &Args,
    client: LineClient,
    journal: Arc<dyn DeliveryJournal>,
    worker: &str,
) -> Result<Dispatcher, BoxError> {
    Ok(Dispatcher::builder(client, journal)
        .worker(worker)
        .concurrency(args.concurrency())
        // Short, so a restarted worker takes over a killed one's batches soon; longer than
        // one send with all the client's retries (4 s and one request timeout: `build` checks).
        .lease(RETRY_BUDGET + request_timeout(args) + Duration::from_secs(3))
        .retry_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .max_attempts(20)
        .poll_interval(Duration::from_millis(50))
        .progress_interval(Duration::from_secs(2))
        .build()?)
}

fn journal_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("delivery_bench")
        .join("journal.sqlite")
}

#[cfg(feature = "sqlite")]
fn open_journal(path: &Path) -> Result<Arc<dyn DeliveryJournal>, BoxError> {
    Ok(Arc::new(enishi::campaign::SqliteJournal::open(path)?))
}

#[cfg(not(feature = "sqlite"))]
fn open_journal(_path: &Path) -> Result<Arc<dyn DeliveryJournal>, BoxError> {
    Err("the journal file needs the `sqlite` feature".into())
}

/// A fresh journal: SQLite under target/ when available, else in memory.
fn fresh_journal(crash: bool) -> Result<(Arc<dyn DeliveryJournal>, Option<PathBuf>), BoxError> {
    if !cfg!(feature = "sqlite") {
        if crash {
            return Err("--crash-at needs a journal file: build with --features sqlite".into());
        }
        return Ok((Arc::new(MemoryJournal::new()), None));
    }
    let path = journal_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok((open_journal(&path)?, Some(path)))
}

fn plan(args: &Args) -> Result<Vec<Batch>, BoxError> {
    let campaign = campaign();
    let unit = AggregationUnit::new("bench_campaign")?;
    let now = Utc::now();
    let recipient = |n: u64| -> Result<BatchRecipient, BoxError> {
        Ok(BatchRecipient {
            customer: CustomerId::new(format!("c{n}"))?,
            line_user: LineUserId::new(testkit::user_id(n))?,
        })
    };
    let mut batches = Vec::new();
    match args.mode {
        Mode::Push => {
            for n in 0..args.recipients {
                let text = format!("Hello customer {n}, your coupon is SPRING-{n:07}");
                let batch = Batch::new(
                    BatchId::new(format!("{campaign}#{n}"))?,
                    campaign.clone(),
                    Transport::Push,
                    vec![recipient(n)?],
                    vec![Message::text(text)],
                    now,
                );
                batches.push(batch.with_aggregation_unit(unit.clone()));
            }
        }
        Mode::Multicast => {
            let mut start = 0;
            while start < args.recipients {
                let end = (start + 500).min(args.recipients);
                let batch = Batch::new(
                    BatchId::new(format!("{campaign}#{}", start / 500))?,
                    campaign.clone(),
                    Transport::Multicast,
                    (start..end).map(recipient).collect::<Result<_, _>>()?,
                    vec![Message::text("The spring sale starts today!")],
                    now,
                );
                batches.push(batch.with_aggregation_unit(unit.clone()));
                start = end;
            }
        }
    }
    Ok(batches)
}

fn bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Runs the dispatcher to the end with a progress bar fed by its progress watch.
async fn dispatch_with_bar(d: &Dispatcher, show: bool) -> Result<DeliveryReport, BoxError> {
    let bar = if show { bar(0) } else { ProgressBar::hidden() };
    let mut rx = d.progress();
    let shown = bar.clone();
    let watcher = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            shown.set_length(p.recipients);
            shown.set_position(p.sent);
            let eta = p.eta.map_or("-".to_owned(), |e| format!("{:.0}s", e.as_secs_f64()));
            shown.set_message(format!(
                "{:.0} recipients/s, {:.0} req/s, eta {eta}",
                p.rate, p.requests_per_second
            ));
        }
    });
    let report = d.run(&campaign()).await;
    watcher.abort();
    bar.finish();
    Ok(report?)
}

/// The child: opens the journal file and sends until the campaign is finished.
fn worker_main(args: &Args) -> Result<ExitCode, BoxError> {
    let url = args.line_url.as_deref().ok_or("--worker needs --line-url")?;
    let path = args.journal.as_deref().ok_or("--worker needs --journal")?;
    let rt = runtime(2)?;
    rt.block_on(async {
        let journal = open_journal(path)?;
        let d = dispatcher(
            args,
            client(args, url)?,
            journal,
            &format!("child-{}", std::process::id()),
        )?;
        let report = dispatch_with_bar(&d, false).await?;
        eprintln!("[child {}] {report}", std::process::id());
        Ok(if report.status == RunStatus::Completed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn parent_main(args: &Args) -> Result<ExitCode, BoxError> {
    if args.recipients == 0 {
        return Err("--recipients must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.faults) {
        return Err("--faults must be a fraction between 0 and 1".into());
    }
    if let Some(c) = args.crash_at
        && !(0.0..1.0).contains(&c)
    {
        return Err("--crash-at must be a fraction below 1".into());
    }
    let endpoint = match args.mode {
        Mode::Push => Endpoint::Push,
        Mode::Multicast => Endpoint::Multicast,
    };
    // The fake gets its own runtime and threads, as LINE is not in our process either.
    let server_rt = runtime(1)?;
    let faults = if args.faults > 0.0 {
        let third = args.faults / 3.0;
        Faults {
            server_error: third,
            rate_limited: third,
            // Slower than the client's 1 s timeout: the client gives up and resends.
            slow: third,
            slow_delay: Duration::from_millis(1500),
            timing: FaultTiming::Either,
            endpoints: Some(vec![endpoint]),
            ..Faults::default()
        }
    } else {
        Faults::none()
    };
    let line = server_rt.block_on(FakeLine::builder().seed(args.seed).faults(faults).start())?;
    println!(
        "delivery_bench: {} recipients, {:?}, faults {}, crash at {}, limit {} requests/s, {} in flight",
        args.recipients,
        args.mode,
        args.faults,
        args.crash_at.map_or("never".to_owned(), |c| c.to_string()),
        args.limit(),
        args.concurrency()
    );

    let rt = runtime(2)?;
    let setup = Instant::now();
    let batches = plan(args)?;
    let (journal, path) = fresh_journal(args.crash_at.is_some())?;
    rt.block_on(async {
        for chunk in batches.chunks(10_000) {
            journal.enqueue(chunk).await?;
        }
        Ok::<_, BoxError>(())
    })?;
    let batch_count = batches.len();
    drop(batches);
    println!(
        "planned and journaled {batch_count} batches in {:.1} s ({})",
        setup.elapsed().as_secs_f64(),
        path.as_ref().map_or("in memory".to_owned(), |p| p.display().to_string())
    );

    let started = Instant::now();
    let report = match (args.crash_at, &path) {
        (Some(crash_at), Some(path)) => {
            crash_and_resume(args, &line, path, crash_at)?;
            rt.block_on(async {
                // Read back the journal's final report (the children printed theirs).
                let d = dispatcher(
                    args,
                    client(args, &line.api_base_url())?,
                    Arc::clone(&journal),
                    "reporter",
                )?;
                Ok::<_, BoxError>(d.run(&campaign()).await?)
            })?
        }
        _ => rt.block_on(async {
            let d = dispatcher(
                args,
                client(args, &line.api_base_url())?,
                Arc::clone(&journal),
                "bench",
            )?;
            dispatch_with_bar(&d, true).await
        })?,
    };
    let wall = match args.crash_at {
        Some(_) => started.elapsed().as_secs_f64(),
        None => report.this_run.elapsed_secs,
    };
    eprintln!("{report}");

    // The fake's record decides: deliveries per recipient.
    let mut per_user: HashMap<String, u64> = HashMap::with_capacity(args.recipients as usize);
    for d in line.deliveries() {
        *per_user.entry(d.to).or_default() += 1;
    }
    let mut lost = 0u64;
    let mut duplicates = 0u64;
    for n in 0..args.recipients {
        match per_user.remove(&testkit::user_id(n)) {
            None => lost += 1,
            Some(count) => duplicates += count - 1,
        }
    }
    // Anyone left got a message they were not meant to get.
    duplicates += per_user.values().sum::<u64>();
    let counters = line.counters();
    let requests = line.request_count(endpoint);
    let fraction = requests as f64 / wall / args.limit();
    println!(
        "requests: {requests} to {} ({:.1}/s), 409 answers: {}, 500s: {}, time-outs: {}, 429s: {} (quota {})",
        endpoint.path(),
        requests as f64 / wall,
        counters.conflicts,
        counters.server_errors,
        counters.slowed,
        counters.rate_limited,
        counters.quota_exceeded
    );
    println!(
        "report: {} sent, {} failed, {} already accepted; fake: {} deliveries",
        report.sent,
        report.failed_recipients,
        report.already_accepted,
        line.delivery_count()
    );
    println!(
        "limit_fraction={fraction:.4} http_429={} duplicates={duplicates} lost={lost} wall_s={wall:.2}",
        counters.rate_limited + counters.quota_exceeded
    );
    Ok(if duplicates == 0 && lost == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs the dispatcher in a child process, kills it at `crash_at` of the deliveries, restarts
/// it and waits for it to finish.
fn crash_and_resume(
    args: &Args,
    line: &FakeLine,
    journal: &Path,
    crash_at: f64,
) -> Result<(), BoxError> {
    let spawn = || -> Result<std::process::Child, BoxError> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("--worker")
            .arg("--line-url")
            .arg(line.api_base_url())
            .arg("--journal")
            .arg(journal)
            .arg("--mode")
            .arg(match args.mode {
                Mode::Push => "push",
                Mode::Multicast => "multicast",
            })
            .arg("--faults")
            .arg(args.faults.to_string())
            .arg("--concurrency")
            .arg(args.concurrency().to_string());
        Ok(cmd.spawn()?)
    };
    let bar = bar(args.recipients);
    let kill_at = (args.recipients as f64 * crash_at) as usize;
    let mut child = spawn()?;
    bar.suspend(|| eprintln!("started dispatcher process {}", child.id()));
    loop {
        let delivered = line.delivery_count();
        bar.set_position(delivered as u64);
        if delivered >= kill_at {
            child.kill()?;
            child.wait()?;
            bar.suspend(|| eprintln!("killed it (SIGKILL) at {delivered} deliveries; restarting"));
            break;
        }
        if let Some(status) = child.try_wait()? {
            return Err(
                format!("the dispatcher process ended before the crash point: {status}").into()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut child = spawn()?;
    bar.suspend(|| eprintln!("restarted as process {}", child.id()));
    let status = loop {
        bar.set_position(line.delivery_count() as u64);
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    bar.finish();
    if !status.success() {
        return Err(format!("the restarted dispatcher process failed: {status}").into());
    }
    Ok(())
}
