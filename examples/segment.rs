//! Evaluate a segment written in the DSL over a snapshot and print the count, sample customer
//! IDs, the per-leaf funnel and, on request, why one customer is (not) in it.
//!
//! ```text
//! cargo run --all-features --example segment -- --help
//! cargo run --all-features --example segment -- SEGMENT.seg SNAPSHOT.json [--explain ID] [--now RFC3339] [--sample N] [--unchecked]
//! cargo run --release --all-features --example segment -- SEGMENT.seg --csv DIR [--explain ID] [--now RFC3339]
//! ```
//!
//! `SNAPSHOT.json` is `{"now": "...", "customers": [CustomerFacts...], "products": {id:
//! ProductStatus}, "lists": {name: [customer ids]}, "segments": {name: "DSL text"}}` (every key
//! but `customers` optional). `--csv DIR` reads `customers.csv` and `orders.csv` as written by
//! `segment_bench --export DIR`.
//!
//! The segment is checked against the data first: an attribute no customer has (with a "did you
//! mean" suggestion), an attribute used as the wrong type, or an unknown product ID, SKU or
//! category is an error (exit 1) unless `--unchecked` is given.

#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use enishi::CustomerId;
use enishi::segment::{
    Context, CustomerColumns, CustomerFacts, Engine, LineItemFact, OrderColumns, OrderFact,
    OrderKind, ProductStatus, SegmentDefinition, evaluate,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    #[serde(default)]
    now: Option<DateTime<Utc>>,
    customers: Vec<CustomerFacts>,
    #[serde(default)]
    products: HashMap<String, ProductStatus>,
    #[serde(default)]
    lists: HashMap<String, Vec<CustomerId>>,
    #[serde(default)]
    segments: HashMap<String, String>,
}

/// Evaluate a segment over a snapshot: count, sample IDs, funnel and explanation.
#[derive(Debug, clap::Parser)]
#[command(
    name = "segment",
    version,
    about = "Evaluate a segment (DSL) over a snapshot: count, sample IDs, funnel, explanation"
)]
struct Args {
    /// The segment definition (DSL text file, see docs/segments.md).
    segment: PathBuf,
    /// A JSON snapshot of customer facts (omit with --csv).
    #[arg(required_unless_present = "csv")]
    snapshot: Option<PathBuf>,
    /// Read `customers.csv` and `orders.csv` from this directory instead of a snapshot.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    csv: Option<PathBuf>,
    /// Explain why this customer is (not) in the segment.
    #[arg(long, value_name = "CUSTOMER_ID")]
    explain: Option<String>,
    /// Evaluate as of this instant (RFC 3339), instead of the snapshot's `now` or the clock.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    /// How many member IDs to print.
    #[arg(long, default_value_t = 10)]
    sample: usize,
    /// Skip checking the segment against the data (unknown attributes, wrong types, unknown
    /// products): a misspelt attribute is then simply missing for everyone.
    #[arg(long)]
    unchecked: bool,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.to_utc())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-24T09:00:00+09:00: {e}"))
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let seg_file = args.segment.display().to_string();
    let text = std::fs::read_to_string(&args.segment).map_err(|e| format!("{seg_file}: {e}"))?;
    let def = SegmentDefinition::parse(&text).map_err(|e| format!("{seg_file}: {e}"))?;
    let sample = args.sample;
    let unchecked = args.unchecked;
    let now_flag = args.now;
    let explain = args.explain.clone();

    let (engine, ctx, facts) = if let Some(dir) = &args.csv {
        let now = now_flag.unwrap_or_else(Utc::now);
        let dir = dir.display().to_string();
        let (engine, facts) = load_csv(&dir, now, explain.as_deref())?;
        (engine, Context::new(now), facts)
    } else {
        let Some(path) = &args.snapshot else {
            return Err("give a SNAPSHOT.json or --csv DIR (see --help)".into());
        };
        let path = path.display().to_string();
        let raw = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let snap: Snapshot = serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))?;
        let now = now_flag.or(snap.now).unwrap_or_else(Utc::now);
        let mut ctx = Context::new(now);
        let mut engine = Engine::new(Context::new(now));
        for (p, s) in snap.products {
            ctx.set_product(p.clone(), s);
            engine.set_product(p, s);
        }
        for (name, ids) in snap.lists {
            ctx.set_list(name.clone(), ids.clone());
            engine.set_list(name, ids);
        }
        for c in &snap.customers {
            engine.upsert_customer(c.clone());
        }
        // Named segments may refer to each other: register until no progress is made.
        let mut pending: Vec<(String, SegmentDefinition)> = snap
            .segments
            .into_iter()
            .map(|(n, t)| {
                SegmentDefinition::parse(&t)
                    .map(|d| (n.clone(), d))
                    .map_err(|e| format!("segment {n}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for (n, d) in pending {
                if ctx.define_segment(n.clone(), d.clone()).is_ok() {
                    register(&mut engine, &n, d, unchecked)
                        .map_err(|e| format!("segment {n}: {e}"))?;
                } else {
                    rest.push((n, d));
                }
            }
            if rest.len() == before {
                return Err(format!(
                    "segments {:?} refer to unknown segments or to each other",
                    rest.iter().map(|r| &r.0).collect::<Vec<_>>()
                ));
            }
            pending = rest;
        }
        (engine, ctx, snap.customers)
    };

    let mut engine = engine;
    register(&mut engine, "__cli", def.clone(), unchecked)
        .map_err(|e| format!("{seg_file}: {e}"))?;
    println!("now:     {}", engine.now().to_rfc3339());
    println!("segment: {def}");
    println!("count:   {} of {}", engine.count("__cli").map_err(|e| e.to_string())?, engine.len());
    let members = engine.members("__cli").map_err(|e| e.to_string())?;
    let ids: Vec<String> = members.iter().take(sample).map(ToString::to_string).collect();
    println!("sample:  {}", ids.join(", "));
    let funnel = engine.funnel("__cli").map_err(|e| e.to_string())?;
    println!("funnel:");
    for (leaf, n) in &funnel.leaves {
        println!("  {n:>10}  {leaf}");
    }
    if !funnel.steps.is_empty() {
        println!("steps (and):");
        for (leaf, n) in &funnel.steps {
            println!("  {n:>10}  after {leaf}");
        }
    }
    if let Some(id) = explain {
        let c = facts
            .iter()
            .find(|c| c.id.as_str() == id)
            .ok_or(format!("--explain: no customer {id:?}"))?;
        let e = evaluate(&def, c, &ctx).map_err(|e| e.to_string())?;
        println!("explain {id}: {}", if e.result { "IN" } else { "OUT" });
        print!("{}", e.explain);
        let next = engine.next_change("__cli", &c.id).map_err(|e| e.to_string())?;
        println!("next change: {next:?}");
    }
    Ok(())
}

/// Registers a segment, first checking it against the engine's data unless `unchecked`.
fn register(
    engine: &mut Engine,
    name: &str,
    def: SegmentDefinition,
    unchecked: bool,
) -> Result<(), String> {
    if !unchecked {
        engine.validate(&def).map_err(|e| format!("{e} (--unchecked skips this check)"))?;
    }
    engine.register_unchecked(name, def).map_err(|e| e.to_string())
}

/// Loads the bench's CSV export; returns the engine and the facts of the explained customer.
fn load_csv(
    dir: &str,
    now: DateTime<Utc>,
    explain: Option<&str>,
) -> Result<(Engine, Vec<CustomerFacts>), String> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{dir}/{name}")).map_err(|e| format!("{dir}/{name}: {e}"))
    };
    let mut cols = CustomerColumns::default();
    let mut facts = Vec::new();
    let mut rows: HashMap<String, u32> = HashMap::new();
    for (i, line) in read("customers.csv")?.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || {
            format!(
                "customers.csv line {}: expected customer_id,birth_month,line_linked,sub_active",
                i + 1
            )
        };
        if f.len() != 4 {
            return Err(bad());
        }
        let id = CustomerId::new(f[0]).map_err(|e| e.to_string())?;
        let month: u32 = f[1].parse().map_err(|_| bad())?;
        let birth = NaiveDate::from_ymd_opt(1990, month, 1);
        rows.insert(f[0].to_owned(), u32::try_from(cols.ids.len()).map_err(|_| bad())?);
        cols.ids.push(id.clone());
        cols.line_linked.push(f[2] == "1");
        cols.birth_date.push(birth);
        if explain == Some(f[0]) {
            let mut c = CustomerFacts::new(id);
            c.line.linked = f[2] == "1";
            c.birth_date = birth;
            facts.push(c);
        }
    }
    let mut orders = OrderColumns::default();
    let mut products: HashMap<String, u32> = HashMap::new();
    for (i, line) in read("orders.csv")?.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || {
            format!(
                "orders.csv line {}: expected order_id,customer_id,ordered_at,amount,product_id",
                i + 1
            )
        };
        if f.len() != 5 {
            return Err(bad());
        }
        let row = *rows
            .get(f[1])
            .ok_or_else(|| format!("orders.csv line {}: unknown customer {}", i + 1, f[1]))?;
        let at: i64 = f[2].parse().map_err(|_| bad())?;
        let amount: i64 = f[3].parse().map_err(|_| bad())?;
        let next = u32::try_from(products.len()).map_err(|_| bad())?;
        let p = *products.entry(f[4].to_owned()).or_insert(next);
        orders.customer.push(row);
        orders.placed_at.push(at);
        orders.amount.push(amount);
        orders.product.push(p);
        if let Some(c) = facts.first_mut()
            && c.id.as_str() == f[1]
        {
            c.orders.push(OrderFact {
                id: f[0].to_owned(),
                placed_at: DateTime::from_timestamp(at, 0).ok_or_else(bad)?,
                amount,
                kind: OrderKind::OneOff,
                items: vec![LineItemFact {
                    product: f[4].to_owned(),
                    sku: None,
                    category: None,
                    quantity: 1,
                    unit_price: amount,
                }],
            });
        }
    }
    let mut names = vec![String::new(); products.len()];
    for (name, i) in products {
        names[i as usize] = name;
    }
    orders.product_names = names;
    let mut engine = Engine::new(Context::new(now));
    engine.load_columns(cols, orders).map_err(|e| e.to_string())?;
    Ok((engine, facts))
}
