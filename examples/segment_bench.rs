//! Segment engine benchmark on generated data: 1,000,000 customers, 10,000,000 orders, Q3.
//!
//! ```text
//! cargo run --release --all-features --example segment_bench [-- --zipf] [--export DIR] [--customers N] [--orders M]
//! ```
//!
//! The generator is deterministic (splitmix64, fixed seed): `customer_id` 0..N, `birth_month`
//! 1–12, `line_linked` 70 %, `sub_active` 10 %; orders with `ordered_at` uniform over the 730
//! days before `now`, `amount` ¥300–20,000, `product_id` 0..9,999 Zipf(1.0)-skewed (low IDs
//! popular), customers uniform (or Zipf(1.3) with `--zipf`).
//!
//! Q3: linked AND birth_month = 6 AND total spend ≥ ¥50,000 AND last order more than 30 days
//! before `now` AND bought product 1 AND never bought product 2.
//!
//! Timings are medians of warm runs: `cold_ms` evaluates Q3 with [`evaluate_columns`] straight
//! from the generated, unsorted columns (everything but data generation included: no engine,
//! no sorting, no state built beforehand); `raw_ms` is [`Engine::evaluate_as_of`] from the
//! engine's own order columns (clustered by customer, so only the candidates' order ranges
//! are read; no maintained state or cached leaf used), which excludes the load printed as
//! `state_build_ms`; `state_ms`
//! evaluates from maintained per-customer aggregates, `recombine_ms` recombines the cached
//! leaf bitmaps, `advance_day_ms` moves `now` one day forward and updates every
//! time-relative leaf, `append_us` appends one order incrementally.

#[path = "support/report.rs"]
mod report;

use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use enishi::CustomerId;
use enishi::segment::{
    Context, CustomerColumns, Engine, OrderColumns, OrderFact, OrderKind, SegmentDefinition,
    evaluate_columns,
};

const Q3: &str = r#"line linked and birthday month = 6 and orders sum >= 50000
    and last_order age > 30d and bought {product = "1"} and never bought {product = "2"}"#;

/// `now`: 2025-07-01 00:00 Asia/Tokyo.
const NOW: i64 = 1_751_295_600;
const DAY: i64 = 86_400;
const PRODUCTS: usize = 10_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64: tiny, fast and the same on every platform and crate version.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cumulative distribution of Zipf(s) over `0..n` (rank 0 most popular).
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect();
    for x in &mut cdf {
        *x /= acc;
    }
    cdf
}

fn draw(cdf: &[f64], rng: &mut Rng) -> u32 {
    let u = rng.unit();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1) as u32
}

struct Data {
    customers: CustomerColumns,
    months: Vec<u8>,
    sub_active: Vec<bool>,
    orders: OrderColumns,
}

fn generate(n: usize, m: usize, zipf: bool) -> Data {
    let mut rng = Rng(0x5E6_2025);
    let mut months = Vec::with_capacity(n);
    let mut linked = Vec::with_capacity(n);
    let mut sub_active = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut births = Vec::with_capacity(n);
    for i in 0..n {
        let month = 1 + rng.below(12) as u8;
        months.push(month);
        linked.push(rng.below(100) < 70);
        sub_active.push(rng.below(100) < 10);
        ids.push(CustomerId::new(i.to_string()).expect("digits are a valid customer ID"));
        births.push(NaiveDate::from_ymd_opt(1990, u32::from(month), 1));
    }
    let pcdf = zipf_cdf(PRODUCTS, 1.0);
    let ccdf = zipf.then(|| zipf_cdf(n, 1.3));
    let mut o = OrderColumns {
        customer: Vec::with_capacity(m),
        placed_at: Vec::with_capacity(m),
        amount: Vec::with_capacity(m),
        product: Vec::with_capacity(m),
        product_names: (0..PRODUCTS).map(|p| p.to_string()).collect(),
    };
    for _ in 0..m {
        let c = match &ccdf {
            Some(cdf) => draw(cdf, &mut rng),
            None => rng.below(n as u64) as u32,
        };
        o.customer.push(c);
        o.placed_at.push(NOW - 730 * DAY + rng.below(730 * DAY as u64) as i64);
        o.amount.push(300 + rng.below(19_701) as i64);
        o.product.push(draw(&pcdf, &mut rng));
    }
    Data {
        customers: CustomerColumns { ids, line_linked: linked, birth_date: births },
        months,
        sub_active,
        orders: o,
    }
}

fn export(dir: &str, d: &Data) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/customers.csv"))?);
    writeln!(w, "customer_id,birth_month,line_linked,sub_active")?;
    for i in 0..d.months.len() {
        writeln!(
            w,
            "{i},{},{},{}",
            d.months[i], d.customers.line_linked[i] as u8, d.sub_active[i] as u8
        )?;
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/orders.csv"))?);
    writeln!(w, "order_id,customer_id,ordered_at,amount,product_id")?;
    let o = &d.orders;
    for i in 0..o.customer.len() {
        writeln!(w, "{i},{},{},{},{}", o.customer[i], o.placed_at[i], o.amount[i], o.product[i])?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f(); // warm-up
    let mut ts = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median(ts), out)
}

/// Segment engine benchmark on generated data.
#[derive(Debug, clap::Parser)]
#[command(name = "segment_bench", version)]
struct Args {
    /// Skew orders towards few customers (Zipf 1.3) instead of uniform.
    #[arg(long)]
    zipf: bool,
    /// Write customers.csv and orders.csv to this directory (input for the `segment` CLI).
    #[arg(long, value_name = "DIR")]
    export: Option<String>,
    /// Customers to generate.
    #[arg(long, default_value_t = 1_000_000)]
    customers: usize,
    /// Orders to generate.
    #[arg(long, default_value_t = 10_000_000)]
    orders: usize,
    /// After generating (and exporting), load the engine, print `ready` and answer commands on
    /// standard input, one line each, for side-by-side comparisons (`benches/compare/run`):
    /// `raw N` (median of N Q3 runs from the engine's clustered order columns:
    /// `raw_ms=<f> count=<n>`), `cold N` (the same from the unsorted generated columns:
    /// `cold_ms=<f> count=<n>`), `state N` (from maintained state: `state_ms=<f> count=<n>`)
    /// and `memory` (`bytes_per_customer=<f>`).
    #[arg(long)]
    serve: bool,
}

fn main() -> std::process::ExitCode {
    let args = <Args as clap::Parser>::parse();
    report::exit(run(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let zipf = args.zipf;
    let (n, m) = (args.customers, args.orders);
    let now = DateTime::<Utc>::from_timestamp(NOW, 0).expect("valid now");
    println!(
        "now={} ({NOW}) customers={n} orders={m} distribution={}",
        now.to_rfc3339(),
        if zipf { "zipf(1.3)" } else { "uniform" }
    );

    let t = Instant::now();
    let data = generate(n, m, zipf);
    println!("generated in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    if let Some(dir) = args.export {
        export(&dir, &data).map_err(|e| report::Context::new(format!("exporting to {dir}"), e))?;
        println!("exported customers.csv and orders.csv to {dir}");
    }

    if args.serve {
        return serve(data, now);
    }

    // Cold: Q3 straight from the unsorted generated columns (parse included).
    let ctx = Context::new(now);
    let cold = || {
        let q3 = SegmentDefinition::parse(Q3).expect("Q3 parses");
        evaluate_columns(&q3, &data.customers, &data.orders, &ctx).expect("cold Q3")
    };
    if std::env::var_os("SEGMENT_BENCH_PROFILE").is_some() {
        // Only the cold Q3 path, for profilers.
        for _ in 0..40 {
            let _ = cold();
        }
        return Ok(());
    }
    let t = Instant::now();
    let first = cold();
    println!("cold Q3 first run: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    let c0 = cpu_time::ProcessTime::now();
    let (cold_ms, cold_bits) = time(9, cold);
    println!("cold cpu/run {:.2} ms", c0.elapsed().as_secs_f64() * 1e3 / 10.0);
    assert_eq!(first, cold_bits, "cold runs disagree");
    // The members borrow the columns, which the engine is about to take.
    let cold_ids = cold_bits.to_vec();

    let t = Instant::now();
    let mut engine = Engine::new(Context::new(now));
    engine.load_columns(data.customers, data.orders).expect("load columns");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("loaded (orders clustered by customer) in {load_ms:.0} ms");

    let q3 = SegmentDefinition::parse(Q3).expect("Q3 parses");
    let t = Instant::now();
    engine.register("q3", q3.clone()).expect("register Q3");
    let register_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("registered Q3 (leaf bitmaps + time wheels) in {register_ms:.0} ms");
    println!("state_build_ms={:.0} (load + register)", load_ms + register_ms);
    // Each Q3 leaf alone from the raw columns (wall median, and CPU of both threads).
    for leaf in [
        "line linked",
        "birthday month = 6",
        "orders sum >= 50000",
        "last_order age > 30d",
        "bought {product = \"1\"}",
        "never bought {product = \"2\"}",
    ] {
        let d = SegmentDefinition::parse(leaf).unwrap();
        let c0 = cpu_time::ProcessTime::now();
        let (ms, b) = time(3, || engine.evaluate_as_of(&d, now).unwrap());
        println!(
            "probe {leaf}: {ms:.2} ms wall, {:.2} ms cpu/run ({})",
            c0.elapsed().as_secs_f64() * 1e3 / 4.0,
            b.len()
        );
    }
    let c0 = cpu_time::ProcessTime::now();
    let (raw_ms, raw) = time(7, || engine.evaluate_as_of(&q3, now).expect("raw Q3"));
    println!("raw cpu/run {:.2} ms", c0.elapsed().as_secs_f64() * 1e3 / 8.0);
    let q3_count = raw.len();
    assert_eq!(cold_ids, raw.to_vec(), "cold path disagrees with the engine");
    let c0 = cpu_time::ProcessTime::now();
    let _ = time(20, || engine.evaluate_from_state("q3").expect("state Q3"));
    println!("state cpu/run {:.2} ms", c0.elapsed().as_secs_f64() * 1e3 / 21.0);
    let (state_ms, state) = time(21, || engine.evaluate_from_state("q3").expect("state Q3"));
    let state_count = state.len();
    let (recombine_ms, rec) = time(51, || engine.recombine("q3").expect("recombine Q3"));
    assert_eq!(state_count, q3_count, "state path disagrees with raw path");
    assert_eq!(rec, q3_count, "cached path disagrees with raw path");
    println!("Q3 count: {q3_count}");
    let funnel = engine.funnel("q3").expect("funnel");
    for (leaf, n) in &funnel.steps {
        println!("  funnel  {n:>9}  after {leaf}");
    }

    // Appending orders incrementally (at `now`, to pseudo-random customers).
    let mut rng = Rng(7);
    let appends = 20_000;
    let ids: Vec<CustomerId> = (0..appends)
        .map(|_| CustomerId::new(rng.below(n as u64).to_string()).expect("id"))
        .collect();
    let t = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let o = OrderFact {
            id: format!("x{i}"),
            placed_at: now,
            amount: 1_000,
            kind: OrderKind::OneOff,
            items: vec![],
        };
        engine.append_order(id, &o).expect("append");
    }
    let append_us = t.elapsed().as_secs_f64() * 1e6 / appends as f64;

    // Advancing `now` day by day.
    let mut adv = Vec::new();
    for d in 1..=7 {
        let t = Instant::now();
        engine.advance_to(now + TimeDelta::days(d)).expect("advance");
        adv.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let advance_day_ms = median(adv);
    let after = engine.count("q3").expect("count");
    let check = engine.evaluate_as_of(&q3, engine.now()).expect("raw").len();
    assert_eq!(after, check, "maintained membership disagrees with a raw evaluation after a week");
    println!("Q3 count a week later: {after} (raw re-evaluation agrees)");

    let bytes_per_customer = engine.memory_bytes() as f64 / n as f64;
    println!(
        "q3_count={q3_count} raw_ms={raw_ms:.3} cold_ms={cold_ms:.3} state_ms={state_ms:.3} recombine_ms={recombine_ms:.4} advance_day_ms={advance_day_ms:.3} append_us={append_us:.2} bytes_per_customer={bytes_per_customer:.1}"
    );
    Ok(())
}

/// The `--serve` loop: commands on standard input, one answer line each.
///
/// The engine is loaded (orders clustered by customer) and Q3 registered before `ready`;
/// `raw` evaluates Q3 from the engine's order columns ([`Engine::evaluate_as_of`], no
/// maintained state or cached leaf read), `cold` from the unsorted generated columns
/// ([`evaluate_columns`]), `state` from the maintained aggregates.
fn serve(data: Data, now: DateTime<Utc>) -> Result<(), Box<dyn std::error::Error>> {
    let n = data.months.len();
    let ctx = Context::new(now);
    let (customers, orders) = (data.customers, data.orders);
    let t = Instant::now();
    let mut engine = Engine::new(Context::new(now));
    engine.load_columns(customers.clone(), orders.clone())?;
    engine.register("q3", SegmentDefinition::parse(Q3)?)?;
    println!("state_build_ms={:.0} (load + register)", t.elapsed().as_secs_f64() * 1e3);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or_default();
        let runs = words.next().and_then(|w| w.parse::<usize>().ok()).unwrap_or(1).max(1);
        match command {
            "raw" => {
                let (ms, count) = time(runs, || {
                    let q3 = SegmentDefinition::parse(Q3).expect("Q3 parses");
                    engine.evaluate_as_of(&q3, now).expect("raw Q3").len()
                });
                writeln!(out, "raw_ms={ms:.4} count={count}")?;
            }
            "cold" => {
                let (ms, count) = time(runs, || {
                    let q3 = SegmentDefinition::parse(Q3).expect("Q3 parses");
                    evaluate_columns(&q3, &customers, &orders, &ctx).expect("cold Q3").len()
                });
                writeln!(out, "cold_ms={ms:.4} count={count}")?;
            }
            "state" => {
                let (ms, count) =
                    time(runs, || engine.evaluate_from_state("q3").expect("state Q3").len());
                writeln!(out, "state_ms={ms:.4} count={count}")?;
            }
            "memory" => {
                writeln!(out, "bytes_per_customer={:.1}", engine.memory_bytes() as f64 / n as f64)?;
            }
            other => return Err(format!("unknown command {other:?}").into()),
        }
        out.flush()?;
    }
    Ok(())
}
