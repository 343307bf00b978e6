//! Recommender benchmark and offline evaluation on a generated shop with planted affinity
//! structure ([`AffinityShop`]): 1,000,000 customers, 10,000,000 orders, 10,000 products.
//!
//! ```sh
//! cargo run --release --all-features --example recommend_bench
//! cargo run --release --all-features --example recommend_bench -- --customers 100000 --orders 1000000
//! ```
//!
//! The history is 365 days; the last `--test-days` (28) are held out: the model learns before
//! day T, recommends every customer's top-10 as of T, and is scored on what customers bought
//! after T (hit rate@10 and NDCG@10 over customers with purchases on both sides), next to the
//! popularity baseline (the 30-day best-sellers before T, with the same exclusions).
//!
//! Timings (wall clock, the machine's cores shared with whatever else runs): `ranking_s`
//! (this week's best-sellers overall and per category, and rising items), `model_s` (the
//! co-purchase model), `recs_s` (every customer's top-10). `peak_mb` is the process's peak
//! resident memory (VmHWM). The last line is machine-readable:
//! `recommend: customers=N orders=N model_s=F recs_s=F hit_rate_at_10=F baseline_hit_rate_at_10=F ndcg_at_10=F peak_mb=F`.

#[path = "support/report.rs"]
mod report;

use std::time::Instant;

use chrono::Duration;
use clap::Parser;
use enishi::recommend::{CoPurchaseModel, ModelParams, RankBy, Sales, TestSet, Window, score};
use enishi::testkit::{AffinityShop, AffinitySpec};

/// Recommender benchmark and time-split evaluation on a generated shop.
#[derive(Debug, Parser)]
#[command(name = "recommend_bench", version)]
struct Args {
    /// Customers to generate.
    #[arg(long, default_value_t = 1_000_000)]
    customers: u32,
    /// Orders to generate.
    #[arg(long, default_value_t = 10_000_000)]
    orders: u64,
    /// Products to generate (in affinity groups of 10).
    #[arg(long, default_value_t = 10_000)]
    products: u32,
    /// Days held out after T for the evaluation.
    #[arg(long, default_value_t = 28)]
    test_days: i64,
    /// Worker threads (default: the available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// The pair score's lean towards popular products (0.5: cosine, 1: confidence).
    #[arg(long)]
    asymmetry: Option<f64>,
}

fn main() -> std::process::ExitCode {
    report::exit(run(&Args::parse()))
}

/// Peak resident memory in MB (VmHWM), 0 where /proc is missing.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    const K: usize = 10;
    let mut spec = AffinitySpec::default();
    spec.customers = args.customers;
    spec.orders = args.orders;
    spec.products = args.products;
    let shop = AffinityShop::new(spec);
    let started = Instant::now();
    let (catalogue, log) = shop.columns();
    println!(
        "generated: customers={} orders={} lines={} products={} in {:.1}s ({} MB of columns)",
        log.customers(),
        args.orders,
        log.len(),
        catalogue.len(),
        started.elapsed().as_secs_f64(),
        log.column_bytes() / 1_000_000
    );
    let end = spec.end;
    let t = end - Duration::days(args.test_days);

    // Rankings: this week's best-sellers (units, revenue, per category) and rising items.
    let started = Instant::now();
    let sales = Sales::of(&log, &catalogue, Window::days_before(t, 7));
    let top = sales.best_sellers(&catalogue, None, RankBy::Units, 10, true);
    let by_revenue = sales.best_sellers(&catalogue, None, RankBy::Revenue, 10, true);
    let per_category = sales.best_sellers_by_category(&catalogue, RankBy::Units, 10, true);
    let rising = sales.rising(&catalogue, 20, 10);
    let ranking_s = started.elapsed().as_secs_f64();
    println!(
        "ranking: ranking_s={ranking_s:.3} top={} top_revenue={} categories={} rising={}",
        top.first().map_or("-", |r| r.product.as_str()),
        by_revenue.first().map_or("-", |r| r.product.as_str()),
        per_category.len(),
        rising
            .iter()
            .map(|r| format!("{}({}←{})", r.product, r.units, r.previous_units))
            .take(3)
            .collect::<Vec<_>>()
            .join(",")
    );

    let mut params = ModelParams::new(t);
    if let Some(n) = args.threads {
        params = params.threads(n);
    }
    if let Some(a) = args.asymmetry {
        params = params.asymmetry(a);
    }
    let threads = params.threads;
    let started = Instant::now();
    let model = CoPurchaseModel::build(&log, &catalogue, params);
    let model_s = started.elapsed().as_secs_f64();
    println!(
        "model: model_s={model_s:.2} buyers={} rules={} threads={threads}",
        model.buyers(),
        model.rule_count()
    );

    let started = Instant::now();
    let recs = model.recommend_all(&catalogue, log.customers(), K);
    let recs_s = started.elapsed().as_secs_f64();
    let example = recs.of(&catalogue, 0);
    println!(
        "recs: recs_s={recs_s:.2} customer 1: {}",
        example
            .iter()
            .take(3)
            .map(|r| format!("{} ({})", r.product, r.reason.explain(&catalogue)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let started = Instant::now();
    let baseline = model.popular_all(&catalogue, log.customers(), K);
    let test = TestSet::of(&log, t, end);
    let warm = |c: usize| model.has_history(c);
    let ours = score(&recs, &test, warm);
    let base = score(&baseline, &test, warm);
    println!(
        "evaluation: customers={} baseline_ndcg_at_10={:.4} lift={:.2}x in {:.1}s",
        ours.customers,
        base.ndcg,
        ours.hit_rate / base.hit_rate.max(f64::MIN_POSITIVE),
        started.elapsed().as_secs_f64()
    );
    println!(
        "recommend: customers={} orders={} model_s={model_s:.2} recs_s={recs_s:.2} hit_rate_at_10={:.4} baseline_hit_rate_at_10={:.4} ndcg_at_10={:.4} peak_mb={:.1}",
        log.customers(),
        args.orders,
        ours.hit_rate,
        base.hit_rate,
        ours.ndcg,
        peak_mb()
    );
    Ok(())
}
