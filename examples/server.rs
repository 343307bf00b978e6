//! The service a shop runs: one process serving LINE's webhook, the link pages, tracked links,
//! `/healthz`, `/readyz` and `/metrics`, while it syncs the shop, ticks the scenarios, plans
//! scheduled campaigns and dispatches — configured by one TOML file plus the environment.
//!
//! ```sh
//! LINE_CHANNEL_ACCESS_TOKEN=… LINE_CHANNEL_SECRET=… ECFORCE_API_TOKEN=… \
//!   cargo run --release --all-features --example server -- --config enishi.toml
//! cargo run --release --all-features --example server -- --demo --days 14
//! cargo run --release --all-features --example server -- --demo --days 14 \
//!   --storage postgres://postgres@127.0.0.1:5432/test --instances 2
//! ```
//!
//! `--demo` runs 14 simulated days (a clock anchored in the past, 30,000 times faster) against
//! an in-process fake LINE and fake ecforce: customers order, register, link through the link
//! pages and block the account; the service (a child process, or several sharing PostgreSQL)
//! is killed with SIGKILL half-way and restarted; at the end every journal batch is checked
//! against the fake LINE server's record. The last line is
//! `server: days=… synced_customers=… linked=… scenario_sends=… campaign_sends=… duplicates=… lost=… restarts=…`.
//!
//! A bad config file or a missing variable exits 2 with a message naming the key. The config
//! (every key but the secrets may be in the file; secrets come from the environment):
//!
//! ```toml
//! [line]            # LINE_CHANNEL_ACCESS_TOKEN, LINE_CHANNEL_SECRET
//! # api_base_url = "…"   (tests)
//! [shop]            # ECFORCE_API_TOKEN
//! base_url = "https://shop.example.jp"
//! [storage]         # ENISHI_STORAGE_URL overrides
//! url = "sqlite://enishi.sqlite"
//! [server]          # ENISHI_TRACKING_KEY
//! listen = "0.0.0.0:8080"
//! public_url = "https://line.example.jp"
//! [service]
//! sync_interval_secs = 300
//! tick_interval_secs = 10
//! workers = 2
//! scenario_file = "scenarios.toml"
//! [policy]
//! max_sends_per_week = 2
//! quiet_hours = "21:00-09:00"
//! holdout_percent = 10
//! [line_login]      # optional; LINE_LOGIN_CHANNEL_SECRET
//! channel_id = "1650000000"
//! session_header = "x-shop-customer"   # set by the shop's proxy to the signed-in customer
//! [brand]           # optional; the customer pages (docs/pages.md)
//! name = "縁ショップ"
//! url = "https://shop.example.jp/"
//! contact = "カスタマーサポート（0120-000-000）"
//! primary_color = "#8a3b12"
//! texts = { start_button = "会員ログインへ進む" }
//! [link_incentive]  # optional; once per customer, on the first link
//! id = "link-2026"
//! points = 300      # or coupon_name = "…" and coupon_code = "…"
//! until = "2027-01-01T00:00:00+09:00"
//! [hub]             # optional; the shop's other LINE tools behind enishi's webhook
//! default_owner = "lstep"                     # who answers events no rule matches
//! [[hub.destination]]
//! name = "lstep"
//! url = "https://lstep.example/webhook/abc"   # LINE's signature passed through
//! [[hub.destination]]
//! name = "karte"
//! url = "https://karte.example/line"
//! secret_env = "KARTE_CHANNEL_SECRET"         # or signed with the tool's own secret
//! events = ["message", "follow", "unfollow"]  # optional filter
//! max_attempts = 20                           # then dead-lettered
//! retry_min_secs = 1
//! retry_max_secs = 300
//! [[hub.reply]]
//! owner = "enishi"
//! text_prefix = "注文"   # or event_type, text_contains, postback_prefix
//! [[campaign]]
//! id = "spring-sale"
//! segment = "line linked and orders count >= 1"
//! text = "{{name}}さま、春のセールが始まりました"
//! at = "2026-04-01T10:00:00+09:00"
//! ```

#[path = "support/demo.rs"]
mod demo;
#[path = "support/report.rs"]
mod report;
#[path = "support/server_config.rs"]
mod server_config;
#[path = "support/simulation.rs"]
mod simulation;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use enishi::app::{Enishi, install_prometheus};

/// The enishi service: webhook, link pages, tracked links, health and metrics, with sync,
/// scenario ticks and dispatch running behind them.
#[derive(Debug, Parser)]
#[command(name = "server", version)]
struct Args {
    /// The TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to listen (overrides `server.listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// This process' worker name in the journal.
    #[arg(long)]
    worker: Option<String>,
    /// Run simulated days against in-process fakes, with a crash and restart.
    #[arg(long)]
    demo: bool,
    /// Simulated days (`--demo`).
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Storage for the demo: `sqlite://…` (default, a fresh file) or `postgres://…`.
    #[arg(long)]
    storage: Option<String>,
    /// Service processes sharing the storage (`--demo`; more than 1 needs PostgreSQL).
    #[arg(long, default_value_t = 1)]
    instances: u32,
    /// Customers in the demo shop.
    #[arg(long, default_value_t = 300)]
    customers: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.demo {
        let options = simulation::Options {
            days: args.days,
            storage: args.storage,
            instances: args.instances,
            customers: args.customers,
        };
        return report::exit(simulation::run(options).await);
    }
    let Some(path) = args.config else {
        eprintln!("server: --config FILE is required (or --demo)");
        return ExitCode::from(2);
    };
    let config = match server_config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("server: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(config, args.listen, args.worker).await {
        // A missing variable is a configuration error too: exit 2, naming it.
        Err(e) if e.downcast_ref::<server_config::ConfigError>().is_some() => {
            eprintln!("server: {e}");
            ExitCode::from(2)
        }
        result => report::exit(result),
    }
}

/// Builds the app from the config, serves its routes and runs its loop until SIGTERM or
/// Ctrl-C; then the listener stops accepting, the workers finish the sends in flight, and the
/// process exits 0.
async fn serve(
    config: server_config::Config,
    listen: Option<SocketAddr>,
    worker: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "enishi=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let parts = config.build(worker).await?;
    let prometheus = install_prometheus()?;
    let app: Enishi = parts.app;
    let listen = listen.unwrap_or(config.server.listen);
    let router = app.router().merge(Enishi::metrics_router(prometheus));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(target: "enishi::server", %listen, storage = app.storage().kind(), "serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let mut stop = stop_rx;
    let signals = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    tokio::spawn(signals);
    let report = app
        .run(parts.run, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    http.await??;
    eprintln!(
        "server stopped: syncs={} ticks={} campaigns_planned={} batches_sent={} errors={}",
        report.syncs, report.ticks, report.campaigns_planned, report.batches_sent, report.errors
    );
    Ok(())
}

/// SIGTERM (a container stop) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
