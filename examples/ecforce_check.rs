//! Does enishi read *your* ecforce shop right? A contract check for a shop engineer.
//!
//! ```sh
//! cargo run --release --all-features --example ecforce_check -- --base-url URL --token TOKEN
//! cargo run --release --all-features --example ecforce_check -- --base-url URL --token TOKEN --write-test CUSTOMER_ID
//! cargo run --release --all-features --example ecforce_check -- --demo --write-test auto
//! ```
//!
//! Read-only by default: it syncs every customer, order, subscription and product (paced as
//! the adapter always is, with a progress bar on a terminal) and lists every decode problem by
//! field, with record IDs and a count per cause. With `--write-test CUSTOMER_ID` it also writes
//! `line_id` and grants 1 point to that one customer, verifies both by reading them back, and
//! undoes both (the old `line_id` is put back, the point taken away). Use a test customer.
//!
//! `--demo` runs the same against an in-process fake ecforce seeded with known data (withdrawn,
//! deleted and blacklisted customers, voided and unpaid orders, subscriptions keyed by customer
//! number); `--write-test auto` picks a demo customer. `--demo-reject-points` makes the fake
//! refuse points grants, to see what a failed write test looks like.
//!
//! The last line is
//! `ecforce_check: customers=N orders=N subscriptions=N subscriptions_joined=N products=N excluded=N decode_errors=N write_back=ok|failed|skipped`:
//! `customers` are targetable customers (after exclusions), `excluded` withdrawn + deleted +
//! blacklisted ones, `orders` the orders that count as purchases, `subscriptions_joined` the
//! subscriptions attached to a synced customer. Exit 0 when the shop reads cleanly (and a
//! requested write test passed), 1 otherwise, 2 on bad arguments.

#[path = "support/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use enishi::commerce::EcforceClient;
use enishi::commerce::sync::{Dataset, SyncReport, SyncResource, Syncer};
use enishi::commerce::{CommerceBackend, CommerceBackendExt, CommerceError};
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, EcforceDemoSpec, FakeEcforce};
use enishi::{CustomerId, LineUserId};
use indicatif::{ProgressBar, ProgressStyle};

/// Check that enishi reads an ecforce shop right (read-only unless --write-test).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The shop's base URL, e.g. `https://shop.example.jp` (the API lives under `/api/v2/`).
    #[arg(long, env = "ECFORCE_BASE_URL", required_unless_present = "demo")]
    base_url: Option<String>,
    /// The admin API token.
    #[arg(
        long,
        env = "ECFORCE_API_TOKEN",
        hide_env_values = true,
        required_unless_present = "demo"
    )]
    token: Option<String>,
    /// Write `line_id` and 1 point to this customer, verify both, undo both (`auto` with
    /// `--demo`).
    #[arg(long, value_name = "CUSTOMER_ID")]
    write_test: Option<String>,
    /// Check an in-process fake ecforce seeded with a known demo shop instead.
    #[arg(long, conflicts_with_all = ["base_url", "token"])]
    demo: bool,
    /// With --demo: the fake refuses points grants (to see a failing write test).
    #[arg(long, requires = "demo")]
    demo_reject_points: bool,
    /// Decode problems listed per cause.
    #[arg(long, default_value_t = 5)]
    examples: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => report::exit(Err(e)),
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    // The fake lives as long as the check when --demo is given.
    let mut _fake = None;
    let mut expected = None;
    let (client, write_target) = if args.demo {
        let shop = FakeEcforce::builder().start().await?;
        let demo = shop.seed_demo(EcforceDemoSpec::default());
        shop.reject_points(args.demo_reject_points);
        let client = EcforceClient::builder(shop.base_url(), DEFAULT_ECFORCE_TOKEN)
            .min_interval(Duration::ZERO)
            .build()?;
        let target = match args.write_test.as_deref() {
            Some("auto") => Some(demo.write_test_customer()),
            Some(id) => Some(CustomerId::new(id)?),
            None => None,
        };
        println!("demo shop: {:?}", demo.spec);
        expected = Some(demo.spec);
        _fake = Some(shop);
        (client, target)
    } else {
        let (Some(url), Some(token)) = (args.base_url.as_deref(), args.token.as_deref()) else {
            unreachable!("clap requires --base-url and --token without --demo");
        };
        let target = match args.write_test.as_deref() {
            Some("auto") => {
                return Err("--write-test auto needs --demo: name a test customer".into());
            }
            Some(id) => Some(CustomerId::new(id)?),
            None => None,
        };
        (EcforceClient::builder(url, token).build()?, target)
    };

    let dataset = Dataset::new();
    let report = sync(&client, &dataset).await?;
    let problems = print_problems(&report, args.examples);

    let (customers, excluded) = dataset.targetable_and_excluded();
    let (_, purchases) = dataset.purchases();
    let (subscriptions, joined) = dataset.subscriptions_joined();
    let products = report.records.get(&SyncResource::Products).copied().unwrap_or(0);
    println!(
        "read: {} customers ({customers} targetable, {excluded} withdrawn/deleted/blacklisted), \
         {} orders ({purchases} purchases), {subscriptions} subscriptions ({joined} joined to \
         a customer), {products} products in {:.1} s",
        dataset.customer_count(),
        dataset.order_count(),
        report.elapsed.as_secs_f64(),
    );
    let mut clean = problems == 0 && joined == subscriptions;
    if joined < subscriptions {
        println!(
            "problem: {} subscriptions name a customer the sync did not see",
            subscriptions - joined
        );
    }
    if let Some(spec) = expected {
        let seeded =
            (spec.targetable() as usize, spec.excluded() as usize, spec.purchases() as usize);
        if (customers, excluded, purchases) != seeded {
            println!(
                "problem: the demo shop was seeded with {seeded:?}, read {:?}",
                (customers, excluded, purchases)
            );
            clean = false;
        }
    }

    let write_back = match write_target {
        None => "skipped",
        Some(id) => match write_test(&client, &id).await {
            Ok(()) => "ok",
            Err(e) => {
                println!("write test failed:");
                for line in report::causes(e.as_ref()) {
                    println!("  {line}");
                }
                clean = false;
                "failed"
            }
        },
    };
    println!(
        "ecforce_check: customers={customers} orders={purchases} subscriptions={subscriptions} \
         subscriptions_joined={joined} products={products} excluded={excluded} \
         decode_errors={problems} write_back={write_back}"
    );
    Ok(clean)
}

/// Syncs everything into memory, with a progress bar on a terminal.
async fn sync(
    client: &EcforceClient,
    dataset: &Dataset,
) -> Result<SyncReport, Box<dyn std::error::Error>> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}")?);
    bar.enable_steady_tick(Duration::from_millis(120));
    let report =
        Syncer::new(client).on_progress(|p| bar.set_message(format!("{p:?}"))).run(dataset).await;
    bar.finish_and_clear();
    Ok(report?)
}

/// Lists decode problems by cause (field and reason) with record IDs; returns how many.
fn print_problems(report: &SyncReport, examples: usize) -> usize {
    let mut by_cause: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (kind, errors) in [("rejected", &report.rejected), ("kept with a gap", &report.warnings)] {
        for e in errors {
            let (cause, record) = match e {
                CommerceError::Decode { field, reason, body, .. } => {
                    (format!("{kind}: {field}: {reason}"), record_id(body))
                }
                other => (format!("{kind}: {other}"), String::new()),
            };
            by_cause.entry(cause).or_default().push(record);
        }
    }
    let total = by_cause.values().map(Vec::len).sum();
    if total > 0 {
        println!("decode problems ({total}):");
    }
    for (cause, records) in &by_cause {
        let shown: Vec<&str> =
            records.iter().filter(|r| !r.is_empty()).take(examples).map(String::as_str).collect();
        println!("  {:>5} × {cause}  (records: {})", records.len(), shown.join(", "));
    }
    total
}

/// The `id` of a failing record's JSON, if it has one (never the whole body: it may hold
/// personal data).
fn record_id(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match &v["id"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Writes `line_id` and 1 point, reads both back, then undoes both and reads back again.
async fn write_test(
    client: &EcforceClient,
    id: &CustomerId,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = client.customer(id).await?;
    let probe: LineUserId = "U0e1ec0c4ec0c4ec0c4ec0c4ec0c4ec0c".parse()?;
    let points_before = before.points.unwrap_or(0);

    client.link_line(id, &probe).await?;
    let linked = client.customer(id).await?;
    let line_ok = linked.line_user_id.as_ref() == Some(&probe);
    client.grant_points(id, 1, "enishi ecforce_check (undone at once)").await?;
    let granted = client.customer(id).await?;
    let points_ok = granted.points.unwrap_or(0) == points_before + 1;

    // Undo in any case, then verify the shop is as it was.
    let undo_points = client.grant_points(id, -1, "enishi ecforce_check undo").await;
    let undo_line = match &before.line_user_id {
        Some(old) => client.link_line(id, old).await,
        None => client.unlink_line(id).await,
    };
    let after = client.customer(id).await?;
    if !line_ok {
        return Err(format!(
            "line_id read back as {:?}",
            linked.line_user_id.map(|l| l.to_string())
        )
        .into());
    }
    if !points_ok {
        return Err(format!(
            "points read back as {:?}, expected {}",
            granted.points,
            points_before + 1
        )
        .into());
    }
    undo_points?;
    undo_line?;
    if after.line_user_id != before.line_user_id || after.points.unwrap_or(0) != points_before {
        return Err("undoing the write test did not restore line_id and points".into());
    }
    println!("write test: line_id and 1 point written, verified and undone on customer {id}");
    Ok(())
}
