//! How fast the delivery journals store a plan and hand it out again.
//!
//! Enqueues 2,000 multicast batches × 500 recipients and 1,000,000 one-recipient push batches
//! (one `enqueue` call each), then claims and completes everything 100 batches at a time.
//! SQLite always (a file in the temp directory); PostgreSQL too when built with the
//! `postgres` feature and `ENISHI_BENCH_DATABASE_URL` is set (a scratch schema, dropped after).
//!
//! ```text
//! cargo run --release --all-features --example journal_bench
//! ENISHI_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release --all-features --example journal_bench
//! ```

#[path = "support/report.rs"]
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use enishi::campaign::{
    Batch, BatchOutcome, BatchRecipient, DeliveryJournal, SqliteJournal, Transport,
};
use enishi::line::message::Message;
use enishi::{BatchId, CampaignId, CustomerId, LineUserId};

type Error = Box<dyn std::error::Error>;

fn plan(campaign: &str, batches: u32, per_batch: u32) -> Result<Vec<Batch>, Error> {
    let due = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().ok_or("bad time")?;
    let messages = vec![Message::text("冬のセール: 全品 20% オフ")];
    let transport = if per_batch == 1 { Transport::Push } else { Transport::Multicast };
    (0..batches)
        .map(|b| {
            let recipients = (0..per_batch)
                .map(|r| {
                    let n = u64::from(b) * u64::from(per_batch) + u64::from(r);
                    Ok(BatchRecipient {
                        customer: CustomerId::new(format!("C-{n}"))?,
                        line_user: LineUserId::new(format!("U{n:032x}"))?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(Batch::new(
                BatchId::new(format!("{campaign}#{b:07}"))?,
                CampaignId::new(campaign)?,
                transport,
                recipients,
                messages.clone(),
                due,
            ))
        })
        .collect()
}

async fn run(name: &str, journal: Arc<dyn DeliveryJournal>) -> Result<(), Error> {
    for (campaign, batches, per_batch) in [("multicast", 2_000, 500), ("push", 1_000_000, 1)] {
        let plan = plan(campaign, batches, per_batch)?;
        let recipients = u64::from(batches) * u64::from(per_batch);
        let started = Instant::now();
        let added = journal.enqueue(&plan).await?;
        let took = started.elapsed();
        println!(
            "{name:>8} enqueue {batches:>9} × {per_batch:>3}: {:>7.2} s  ({:>9.0} batches/s, \
             {:>10.0} recipients/s), {added} new",
            took.as_secs_f64(),
            f64::from(batches) / took.as_secs_f64(),
            recipients as f64 / took.as_secs_f64(),
        );
        let again = Instant::now();
        let added = journal.enqueue(&plan).await?;
        println!(
            "{name:>8} re-enqueue (all present): {:>7.2} s, {added} new",
            again.elapsed().as_secs_f64()
        );
        drop(plan);
        // Claim and complete everything, 100 at a time, as one dispatcher worker would.
        let c = CampaignId::new(campaign)?;
        let now = Utc::now();
        let started = Instant::now();
        let (mut claims, mut done) = (0u32, 0u64);
        let outcome = BatchOutcome::Accepted { request_id: None, already_accepted: false };
        let limit = if per_batch == 1 { 20_000 } else { u64::from(batches) };
        while done < limit {
            let got = journal.claim(&c, "bench", 100, now, Duration::from_secs(60)).await?;
            if got.is_empty() {
                break;
            }
            claims += 1;
            for claimed in &got {
                journal.complete(&claimed.batch.id, &outcome, now).await?;
            }
            done += got.len() as u64;
        }
        let took = started.elapsed();
        println!(
            "{name:>8} claim+complete {done} batches in {claims} claims: {:>7.2} s ({:>7.0} \
             batches/s)",
            took.as_secs_f64(),
            done as f64 / took.as_secs_f64(),
        );
    }
    Ok(())
}

/// How fast the delivery journals store a plan and hand it out again.
///
/// SQLite always; PostgreSQL too with the `postgres` feature and `ENISHI_BENCH_DATABASE_URL`.
#[derive(Debug, clap::Parser)]
#[command(name = "journal_bench", version)]
struct Args {}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Args {} = clap::Parser::parse();
    report::exit(bench().await)
}

// Only `main` awaits it, so it need not be `Send` (it holds a boxed error across awaits).
#[allow(clippy::future_not_send)]
async fn bench() -> Result<(), Error> {
    let path =
        std::env::temp_dir().join(format!("enishi-journal-bench-{}.sqlite", std::process::id()));
    let result = run("sqlite", Arc::new(SqliteJournal::open(&path)?)).await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    result?;
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("ENISHI_BENCH_DATABASE_URL") {
        let schema = format!("enishi_journal_bench_{}", std::process::id());
        let journal = enishi::campaign::PostgresJournal::connect(&url, &schema).await?;
        let result = run("postgres", Arc::new(journal)).await;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await?;
        result?;
    }
    Ok(())
}
