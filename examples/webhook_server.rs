//! A LINE webhook endpoint that prints one JSON line per handled event, e.g.
//! `{"type":"message","webhookEventId":"01H...","redelivery":false}` (the raw type string for
//! event types enishi does not know). Useful as a debugging tool.
//!
//! ```text
//! LINE_CHANNEL_SECRET=... ENISHI_ADDR=127.0.0.1:8080 cargo run --all-features --example webhook_server
//! ```
//!
//! It listens on `ENISHI_ADDR` (default `127.0.0.1:8080`) at `POST /webhook`, de-duplicates
//! events in memory, and on Ctrl-C or SIGTERM stops accepting requests and finishes the events
//! already accepted before exiting.

#[path = "support/report.rs"]
mod report;

use std::io::Write as _;

use enishi::line::webhook::{ChannelSecret, Delivery, HandlerError, MemoryDedup, WebhookService};

async fn print_event(delivery: Delivery) -> Result<(), HandlerError> {
    let event = &delivery.event;
    let line = serde_json::json!({
        "type": event.type_str(),
        "webhookEventId": event.webhook_event_id.as_ref().map(|id| id.as_str()),
        "redelivery": event.is_redelivery(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A LINE webhook endpoint that prints one JSON line per handled event. The channel secret is
/// read from LINE_CHANNEL_SECRET (never from the command line, where other users could see it).
#[derive(clap::Parser)]
#[command(name = "webhook_server", version)]
struct Args {
    /// Where to listen.
    #[arg(long, env = "ENISHI_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Args = clap::Parser::parse();
    report::exit(run(args).await)
}

async fn run(Args { addr }: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Ok(secret) = std::env::var("LINE_CHANNEL_SECRET") else {
        eprintln!("error: set LINE_CHANNEL_SECRET to the channel secret (LINE Developers console)");
        std::process::exit(2);
    };

    let service = WebhookService::builder(ChannelSecret::new(secret))
        .dedup(MemoryDedup::default())
        .build(print_event);
    let app = service.router("/webhook");

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{addr}/webhook");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    service.drain().await;
    Ok(())
}
