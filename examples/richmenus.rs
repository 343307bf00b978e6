//! Rich menus that follow segments, for a whole shop over simulated days.
//!
//! `--demo` generates a shop (100,000 customers by default, each a LINE friend; most linked;
//! ranks and order history from a seed), registers three segments in the segment engine
//! (`vip`: linked gold customers; `active`: linked customers who ordered in the last 30 days;
//! `linked`) and four menus (`link`, the default "連携する" menu; `vip`; `active`; `mypage`),
//! and runs the reconciler against an in-process `FakeLine` on a paused tokio clock. Each
//! simulated day customers order, link, unlink, change rank, block and come back; the
//! reconciler wakes whenever a segment's `next_change` says someone leaves `active` by time
//! alone (coalesced to at most one pass every 6 hours) and at the end of each day for data
//! changes. LINE's rate limits apply as documented (the fake enforces them; the client paces).
//!
//! On day 4 the `vip` menu gets a new image: its users move to the new menu in one
//! `richmenu/batch` request, which LINE stops part-way (the fake is told to), while the
//! process crashes before reading the answer; a restarted reconciler resumes it with the same
//! `resumeRequestKey`. On day 7 a bulk link call crashes the same way. On day 9 an operator
//! changes some menus by hand and drift repair finds them. The run ends with a check of every
//! following friend's menu on the fake against the desired one, and prints
//! `richmenus: customers=N switches=N api_calls=N mismatches=0`.
//!
//! ```sh
//! cargo run --release --all-features --example richmenus -- --demo
//! cargo run --release --all-features --example richmenus -- --demo --customers 20000 --days 5
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use enishi::line::message::Action;
use enishi::line::{Bounds, LineClient, RichMenu, RichMenuSize};
use enishi::richmenu::{
    Friend, MemoryRichMenuStore, MenuKey, MenuRules, MenuSpec, RichMenuReconciler, RichMenuStore,
};
use enishi::segment::{
    AttrValue, Context, CustomerFacts, Engine, OrderFact, OrderKind, SegmentDefinition,
};
use enishi::testkit::{self as fake, Endpoint, FakeLine};
use enishi::{CustomerId, LineUserId};

#[derive(Debug, clap::Parser)]
#[command(about = "Rich menus that follow segments, against an in-process fake LINE server")]
struct Args {
    /// Run the simulation against an in-process FakeLine (the only mode).
    #[arg(long)]
    demo: bool,
    /// Customers (each a LINE friend).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(10..))]
    customers: u64,
    /// Simulated days.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    days: u64,
    /// Seed of the generated shop and its days.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    if !args.demo {
        eprintln!("richmenus: only the in-process demo exists: pass --demo");
        return ExitCode::from(2);
    }
    let runtime =
        match tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("richmenus: cannot start tokio: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(demo(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("richmenus: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SplitMix64: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn key(k: &str) -> Result<MenuKey, enishi::richmenu::RichMenuError> {
    MenuKey::new(k)
}

/// A half-size menu with two areas; `version` changes its image (and so makes a new menu).
fn spec(k: &str, label: &str, version: u32) -> Result<MenuSpec, Box<dyn std::error::Error>> {
    let menu = RichMenu::new(format!("{k} v{version}"), label, RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 1250, 843), Action::uri("マイページ", "https://shop.example/my"))
        .area(Bounds::new(1250, 0, 1250, 843), Action::message("問い合わせ", "問い合わせ"));
    // The first bytes of a 2500x843 PNG: enough for LINE's (and the fake's) checks.
    let mut image = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    image.extend_from_slice(&2500u32.to_be_bytes());
    image.extend_from_slice(&843u32.to_be_bytes());
    image.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    image.extend_from_slice(&version.to_be_bytes());
    Ok(MenuSpec::new(key(k)?, menu, image))
}

fn reconciler(
    client: &LineClient,
    store: &Arc<dyn RichMenuStore>,
    rules: &MenuRules,
    vip_version: u32,
) -> Result<RichMenuReconciler, Box<dyn std::error::Error>> {
    Ok(RichMenuReconciler::builder(client.clone(), Arc::clone(store))
        .menu(spec("link", "連携する", 1)?)
        .menu(spec("mypage", "マイページ", 1)?)
        .menu(spec("active", "おすすめ", 1)?)
        .menu(spec("vip", "VIP", vip_version)?)
        .rules(rules.clone())
        .build()?)
}

fn order(id: u64, at: DateTime<Utc>) -> OrderFact {
    OrderFact {
        id: format!("o{id}"),
        placed_at: at,
        amount: 4_800,
        kind: OrderKind::OneOff,
        items: vec![],
    }
}

fn rank(rng: &mut Rng) -> AttrValue {
    let r = match rng.below(100) {
        0..=14 => "gold",
        15..=49 => "silver",
        _ => "bronze",
    };
    AttrValue::Text(r.into())
}

#[allow(clippy::too_many_lines)]
async fn demo(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let wall = Instant::now();
    let mut rng = Rng(args.seed);
    let start: DateTime<Utc> = "2026-11-01T00:00:00+09:00".parse()?;
    let n = args.customers;

    let line = FakeLine::start().await?;
    line.add_friends((0..n).map(fake::user_id))?;
    line.set_rich_menu_batch_duration(Duration::from_secs(90));
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .request_timeout(Duration::from_secs(24 * 3600))
        .build()?;
    let store: Arc<dyn RichMenuStore> = Arc::new(MemoryRichMenuStore::new());

    // The shop.
    let mut engine = Engine::new(Context::new(start));
    let mut facts: Vec<CustomerFacts> = Vec::with_capacity(n as usize);
    let mut friends: Vec<Friend> = Vec::with_capacity(n as usize);
    let mut next_order = 0u64;
    for i in 0..n {
        let id = CustomerId::new(format!("c{i}"))?;
        let mut f = CustomerFacts::new(id.clone());
        f.line.linked = rng.chance(600);
        f.attributes.insert("rank".into(), rank(&mut rng));
        if rng.chance(500) {
            next_order += 1;
            let ago = Span::seconds(i64::try_from(rng.below(60 * 86_400))?);
            f.orders.push(order(next_order, start - ago));
        }
        engine.upsert_customer(f.clone());
        facts.push(f);
        friends.push(Friend::new(fake::user_id(i).parse::<LineUserId>()?, Some(id)));
    }
    for (name, dsl) in [
        ("vip", r#"line linked and attr rank = "gold""#),
        ("active", "line linked and last_order age <= 30d"),
        ("linked", "line linked"),
    ] {
        engine.register(name, SegmentDefinition::parse(dsl)?)?;
    }
    let rules = MenuRules::new(key("link")?)
        .rule("vip", key("vip")?)
        .rule("active", key("active")?)
        .rule("linked", key("mypage")?);

    let mut vip_version = 1;
    let mut r = reconciler(&client, &store, &rules, vip_version)?;
    let mut passes = 0u64;
    let mut restarts = 0u64;
    let mut drifted = 0usize;
    let coalesce = Span::hours(6);
    println!("richmenus: {n} customers, {} days, seed {}", args.days, args.seed);

    for day in 0..args.days {
        let day_start = start + Span::days(i64::try_from(day)?);
        let day_end = day_start + Span::days(1);
        if day == 3 {
            // The vip menu gets a new image: a new menu, and a batch move of its users that LINE
            // stops part-way while this process dies before reading the answer.
            vip_version = 2;
            r = reconciler(&client, &store, &rules, vip_version)?;
            line.interrupt_next_rich_menu_batch(usize::try_from(n / 40)?);
            line.crash_after_next(Endpoint::RichMenuBatch);
        }
        if day == 6 {
            line.crash_after_next(Endpoint::RichMenuBulkLink);
        }
        if day == 8 {
            // An operator changes some menus by hand in the LINE Official Account Manager.
            let links = line.rich_menu_links();
            let victims: Vec<&String> = links.keys().take(25).collect();
            for v in &victims {
                line.set_rich_menu_of(v, None);
            }
            let mut check: Vec<LineUserId> =
                victims.iter().filter_map(|v| v.parse().ok()).collect();
            let sample = friends.iter().take(5_000).map(|f| &f.user);
            let extra: Vec<LineUserId> = sample.filter(|u| !check.contains(u)).cloned().collect();
            check.extend(extra);
            drifted = r.repair_drift(&check).await?.drifted.len();
        }

        // The day's data: orders, links, unlinks, rank changes, blocks and returns.
        let mut changed = 0u64;
        for i in 0..n as usize {
            let f = &mut facts[i];
            let mut touched = false;
            if rng.chance(15) {
                next_order += 1;
                let at = day_start + Span::seconds(i64::try_from(rng.below(86_400))?);
                f.orders.push(order(next_order, at));
                touched = true;
            }
            if !f.line.linked && rng.chance(8) {
                f.line.linked = true;
                touched = true;
            } else if f.line.linked && rng.chance(1) {
                f.line.linked = false;
                touched = true;
            }
            if rng.chance(3) {
                f.attributes.insert("rank".into(), rank(&mut rng));
                touched = true;
            }
            if rng.chance(2) {
                let following = !friends[i].following;
                friends[i] = friends[i].clone().following(following);
            }
            if touched {
                // Orders are placed during the day: keep only those already placed at each
                // pass by upserting the day's facts at the end of the day.
                changed += 1;
            }
        }

        // Wake-ups by time alone (customers leaving `active`), at most one pass per 6 hours.
        let mut t = day_start;
        loop {
            let active: Vec<CustomerId> = engine.members("active")?.iter().cloned().collect();
            let wake = rules.next_wake(&engine, active.iter())?.unwrap_or(day_end);
            t = wake.max(t + coalesce).min(day_end);
            if t >= day_end {
                break;
            }
            engine.advance_to(t)?;
            passes += 1;
            run_pass(
                &mut r,
                &client,
                &store,
                &rules,
                vip_version,
                &engine,
                &friends,
                &mut restarts,
            )
            .await?;
        }
        // The day's data changes arrive (a sync at midnight), then the end-of-day pass.
        engine.advance_to(day_end)?;
        for f in &facts {
            engine.upsert_customer(f.clone());
        }
        passes += 1;
        run_pass(&mut r, &client, &store, &rules, vip_version, &engine, &friends, &mut restarts)
            .await?;
        println!(
            "day {:>2}: data changes {changed:>6}, passes {passes:>3}, switches {:>7}, api calls {:>6}",
            day + 1,
            line.rich_menu_switch_count(),
            line.counters().requests,
        );
    }

    // The check: every following friend's menu on the fake is the desired one.
    let desired = rules.desired(&engine, &friends)?;
    let ids: HashMap<MenuKey, String> =
        store.menus().await?.into_iter().map(|m| (m.key, m.rich_menu_id.to_string())).collect();
    let links = line.rich_menu_links();
    let default = key("link")?;
    let mismatches = desired
        .iter()
        .filter(|(u, k)| {
            let want = if *k == default { None } else { ids.get(k) };
            links.get(u.as_str()) != want
        })
        .count();
    let switches = line.rich_menu_switches();
    let repeats = switches.iter().filter(|s| s.from == s.to).count();
    let rate_limited = line.status_count(429);
    let from = start.date_naive();
    let to = (start + Span::days(i64::try_from(args.days)? - 1)).date_naive();
    for s in r.statistics(from, to).await? {
        println!(
            "menu {:<7} {}: impressions {:>9} clicks {:>9}",
            s.key.as_str(),
            s.rich_menu_id,
            s.impressions().map_or_else(|| "-".into(), |v| v.to_string()),
            s.clicks().map_or_else(|| "-".into(), |v| v.to_string()),
        );
    }
    println!(
        "passes {passes}, restarts after crashes {restarts}, drift repaired {drifted}, repeated switches {repeats}, \
         429s {rate_limited}, batch requests {}, bulk link {}, bulk unlink {}, simulated {} days in {:.1}s",
        line.request_count(Endpoint::RichMenuBatch),
        line.request_count(Endpoint::RichMenuBulkLink),
        line.request_count(Endpoint::RichMenuBulkUnlink),
        args.days,
        wall.elapsed().as_secs_f64(),
    );
    println!(
        "richmenus: customers={n} switches={} api_calls={} mismatches={mismatches}",
        switches.len(),
        line.counters().requests
    );
    Ok(mismatches == 0 && repeats == 0 && rate_limited == 0)
}

/// One reconcile pass; on a LINE failure (an injected crash) the process "restarts": a new
/// reconciler over the same store finishes what was in flight.
#[allow(clippy::too_many_arguments)]
async fn run_pass(
    r: &mut RichMenuReconciler,
    client: &LineClient,
    store: &Arc<dyn RichMenuStore>,
    rules: &MenuRules,
    vip_version: u32,
    engine: &Engine,
    friends: &[Friend],
    restarts: &mut u64,
) -> Result<enishi::richmenu::ReconcileReport, Box<dyn std::error::Error>> {
    let desired = rules.desired(engine, friends)?;
    match r.reconcile(&desired).await {
        Ok(report) => Ok(report),
        Err(e) => {
            println!("  crash: {e}; restarting");
            *restarts += 1;
            *r = reconciler(client, store, rules, vip_version)?;
            let report = r.reconcile(&desired).await?;
            println!("  resumed {} operation(s) after the restart", report.resumed);
            Ok(report)
        }
    }
}
