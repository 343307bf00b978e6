//! Measured results, offline: 60 simulated days of a four-step welcome scenario and a sale
//! campaign, each with a 10 % holdout group, sent through the fake LINE server with tracked
//! links, then measured.
//!
//! - every message's links are rewritten into signed tracked URLs ([`LinkTracker`]); the
//!   simulated customers who click go through the same verification as the redirect route;
//! - each step's sends of one week carry an aggregation unit, and opens come from the fake
//!   LINE's per-unit statistics through `LineClient::aggregation_unit_statistics`;
//! - blocks and orders are simulated (a send nudges the chance of an order for a week, and
//!   each send has a small chance of a block);
//! - the report is printed as a table and written to `target/enishi-report.html` (and
//!   `target/enishi-report.json`).
//!
//! ```sh
//! cargo run --all-features --example results_report
//! ```

#[path = "support/report.rs"]
mod report;

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone as _, Utc};
use enishi::campaign::{
    BlockFact, Bucket, ClickResponse, LineStatsFact, LinkContext, LinkTracker, MemoryClickStore,
    PurchaseFact, ReportInput, ReportOptions, SendFact, handle_click, track_route,
};
use enishi::line::message::{Action, ButtonsTemplate, Message};
use enishi::line::{EndpointClass, LineClient, PushRequest, RateLimit, RateLimits};
use enishi::testkit::{self as fake, FakeLine};
use enishi::{AggregationUnit, CampaignId, CustomerId, LineUserId};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const DAYS: i64 = 60;
const SIGNUPS_PER_DAY: u64 = 40;

/// A scenario step: days after sign-up, the message, how much it nudges orders, and how
/// often it makes someone block.
struct Step {
    name: &'static str,
    unit: &'static str,
    after_days: i64,
    text: &'static str,
    link: &'static str,
    order_lift: f64,
    block: f64,
    click: f64,
}

const STEPS: [Step; 4] = [
    Step {
        name: "day0_welcome",
        unit: "welcome_d0",
        after_days: 0,
        text: "ご登録ありがとうございます!",
        link: "https://shop.example/welcome",
        order_lift: 0.04,
        block: 0.010,
        click: 0.30,
    },
    Step {
        name: "day3_coupon",
        unit: "welcome_d3",
        after_days: 3,
        text: "初回限定10%OFFクーポン",
        link: "https://shop.example/coupon?code=WELCOME10",
        order_lift: 0.10,
        block: 0.015,
        click: 0.25,
    },
    Step {
        name: "day7_review",
        unit: "welcome_d7",
        after_days: 7,
        text: "人気商品ランキング",
        link: "https://shop.example/ranking",
        order_lift: 0.02,
        block: 0.025,
        click: 0.12,
    },
    Step {
        name: "day14_reminder",
        unit: "welcome_d14",
        after_days: 14,
        text: "お買い物はお済みですか?",
        link: "https://shop.example/cart",
        order_lift: 0.00,
        block: 0.040,
        click: 0.06,
    },
];

/// Measured results: 60 simulated days of a welcome scenario and a sale campaign, offline.
///
/// Both have a holdout group and tracked links and are sent to the fake LINE server; the
/// results report is printed and written as HTML and JSON under `target/`.
#[derive(Debug, clap::Parser)]
#[command(name = "results_report", version)]
struct Args {}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {} = clap::Parser::parse();
    report::exit(run().await)
}

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+9 h is a valid offset"))
}

/// One simulated customer.
struct Customer {
    id: CustomerId,
    line_user: LineUserId,
    signup: DateTime<Utc>,
    blocked_at: Option<DateTime<Utc>>,
}

/// One planned send before it goes to the fake LINE.
struct Planned {
    campaign: CampaignId,
    step: Option<&'static str>,
    customer: usize,
    at: DateTime<Utc>,
    unit: String,
    text: String,
    link: &'static str,
    holdout: bool,
    order_lift: f64,
    block: f64,
    click: f64,
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(20_260_907);
    let start = jst().with_ymd_and_hms(2026, 9, 7, 10, 0, 0).single().ok_or("bad start")?;
    let start = start.with_timezone(&Utc);
    let total = SIGNUPS_PER_DAY * DAYS as u64;

    println!("1. Starting the fake LINE server with {total} friends");
    let line = FakeLine::builder()
        .no_rate_limits()
        .friends((0..total).map(fake::user_id).collect::<Vec<_>>())
        .start()
        .await?;
    // LINE allows 60 statistics calls an hour; taking them in one burst is within that.
    let hour = std::time::Duration::from_secs(3600);
    let limits = RateLimits::default()
        .with(EndpointClass::Insight, Some(RateLimit::new(60, hour).burst(60)));
    let client = LineClient::builder()
        .rate_limits(limits)
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()?;
    let tracker =
        LinkTracker::new(*b"example key: use 32+ random bytes", "https://shop.example/r")?;

    let mut customers: Vec<Customer> = (0..total)
        .map(|n| {
            let day = (n / SIGNUPS_PER_DAY) as i64;
            let minute = rng.random_range(0..12 * 60);
            Ok(Customer {
                id: format!("c{n:05}").parse()?,
                line_user: fake::user_id(n).parse()?,
                signup: start + Duration::days(day) + Duration::minutes(minute),
                blocked_at: None,
            })
        })
        .collect::<Result<_, enishi::IdError>>()?;

    println!("2. Planning 60 days: 4 welcome steps per sign-up and a sale on day 30 (10% holdout)");
    let welcome: CampaignId = "scenario.welcome".parse()?;
    let sale: CampaignId = "spring_sale".parse()?;
    let end = start + Duration::days(DAYS);
    let mut planned = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        for step in &STEPS {
            let at = c.signup + Duration::days(step.after_days);
            if at >= end {
                continue;
            }
            let week = (at - start).num_days() / 7;
            planned.push(Planned {
                campaign: welcome.clone(),
                step: Some(step.name),
                customer: i,
                at,
                unit: format!("{}_w{week:02}", step.unit),
                text: format!("{} 詳しくはこちら {}", step.text, step.link),
                link: step.link,
                holdout: rng.random_bool(0.1),
                order_lift: step.order_lift,
                block: step.block,
                click: step.click,
            });
        }
        let sale_at = start + Duration::days(30) + Duration::hours(2);
        if c.signup < sale_at {
            planned.push(Planned {
                campaign: sale.clone(),
                step: None,
                customer: i,
                at: sale_at,
                unit: "spring_sale".to_owned(),
                text: "週末限定セール開催中!".to_owned(),
                link: "https://shop.example/sale",
                holdout: rng.random_bool(0.1),
                order_lift: 0.06,
                block: 0.02,
                click: 0.18,
            });
        }
    }
    planned.sort_by_key(|p| p.at);

    println!("3. Sending {} messages with tracked links through the fake LINE", planned.len());
    let store = Arc::new(MemoryClickStore::new());
    let mut input = ReportInput::new();
    let mut sent = 0u64;
    let mut units: Vec<(String, CampaignId, Option<&'static str>, NaiveDate)> = Vec::new();
    let mut jobs = tokio::task::JoinSet::new();
    for p in &planned {
        let c = &mut customers[p.customer];
        if c.blocked_at.is_some_and(|b| b <= p.at) {
            continue; // blocked users receive nothing
        }
        let step = p.step.map(str::to_owned);
        if p.holdout {
            input.sends.push(SendFact::holdout(p.campaign.clone(), step, c.id.clone(), p.at));
            continue;
        }
        let mut context = LinkContext::new(p.campaign.clone(), c.id.clone());
        if let Some(step) = p.step {
            context = context.with_step(step);
        }
        let messages = vec![
            Message::text(p.text.clone()),
            Message::template(
                p.text.clone(),
                ButtonsTemplate::new(p.text.clone()).with_action(Action::uri("見る", p.link)),
            ),
        ];
        let messages = tracker.rewrite_all(&messages, &context)?;
        let unit: AggregationUnit = p.unit.parse()?;
        if !units.iter().any(|(u, ..)| u == &p.unit) {
            let week = (p.at - start).num_days() / 7;
            let from = (start + Duration::weeks(week)).with_timezone(&jst()).date_naive();
            units.push((p.unit.clone(), p.campaign.clone(), p.step, from));
        }
        let request =
            PushRequest::new(c.line_user.clone(), messages.clone()).aggregation_unit(unit);
        let client = client.clone();
        jobs.spawn(async move { client.push(request).await.map(|_| ()) });
        if jobs.len() >= 64
            && let Some(done) = jobs.join_next().await
        {
            done??;
        }
        sent += 1;
        input.sends.push(SendFact::sent(p.campaign.clone(), step, c.id.clone(), p.at));

        // The customer's reaction: a click on the (tracked) button, maybe a block.
        if rng.random_bool(p.click) {
            let Some(token) = tracked_token(&messages, tracker.base_url()) else {
                return Err("the button's link was not rewritten".into());
            };
            let clicked_at = p.at + Duration::minutes(rng.random_range(1..600));
            let answer =
                handle_click(&tracker, store.as_ref(), &token, Some("Line/14"), false, clicked_at)
                    .await;
            if !matches!(answer, ClickResponse::Redirect { recorded: true, .. }) {
                return Err(format!("a valid tracked link was not followed: {answer:?}").into());
            }
        }
        if rng.random_bool(p.block) {
            // Most blocks come within hours; some days later.
            let hours = if rng.random_bool(0.6) {
                rng.random_range(0..24)
            } else {
                rng.random_range(24..24 * 10)
            };
            let at = p.at + Duration::hours(hours);
            c.blocked_at = Some(at);
            input.blocks.push(BlockFact::new(c.id.clone(), at));
        }
    }
    while let Some(done) = jobs.join_next().await {
        done??;
    }
    println!("   {sent} pushes accepted; the fake LINE recorded {}", line.delivery_count());

    println!("4. Simulating orders: a base rate, plus a nudge for a week after each send");
    let lifts: Vec<Vec<(DateTime<Utc>, f64)>> = {
        let mut lifts = vec![Vec::new(); customers.len()];
        for p in &planned {
            let blocked = customers[p.customer].blocked_at.is_some_and(|b| b <= p.at);
            if !p.holdout && !blocked {
                lifts[p.customer].push((p.at, p.order_lift));
            }
        }
        lifts
    };
    for (i, c) in customers.iter().enumerate() {
        let mut day = c.signup;
        while day < end + Duration::days(7) {
            let nudge: f64 = lifts[i]
                .iter()
                .filter(|(at, _)| *at <= day && day < *at + Duration::days(7))
                .map(|(_, lift)| lift / 7.0)
                .sum();
            if rng.random_bool((0.004 + nudge).min(1.0)) {
                let at = day + Duration::minutes(rng.random_range(0..24 * 60));
                input.orders.push(PurchaseFact::new(
                    c.id.clone(),
                    at,
                    rng.random_range(2..30) * 500,
                ));
            }
            day += Duration::days(1);
        }
    }
    println!("   {} orders", input.orders.len());

    println!("5. Fetching opens per aggregation unit from the fake LINE ({} units)", units.len());
    // The fake stamps deliveries with the real clock, so every unit is asked for today; the
    // facts carry the simulated week the unit stands for.
    let today = Utc::now().with_timezone(&jst()).date_naive();
    for (unit, campaign, step, from) in &units {
        let stats = client.aggregation_unit_statistics(&unit.parse()?, today, today).await?;
        let to = *from + Duration::days(6);
        let step = step.map(str::to_owned);
        input.line_stats.push(LineStatsFact::from_statistics(
            campaign.clone(),
            step,
            *from,
            to,
            &stats,
        ));
    }
    input.clicks = store.all();
    println!("   {} tracked clicks recorded", input.clicks.len());

    println!("6. The redirect route, for real: one tracked link over HTTP");
    demo_route(&tracker).await?;

    let options = ReportOptions::default()
        .with_title("enishi results — welcome scenario and spring sale (60 simulated days)")
        .with_bucket(Bucket::Week);
    let report = input.build(&options);
    println!("\n{report}");
    std::fs::create_dir_all("target")?;
    std::fs::write("target/enishi-report.html", report.to_html())?;
    std::fs::write("target/enishi-report.json", serde_json::to_vec_pretty(&report)?)?;
    println!("wrote target/enishi-report.html and target/enishi-report.json");
    line.shutdown().await;
    Ok(())
}

/// The token of the first tracked URL in the messages' actions.
fn tracked_token(messages: &[Message], base: &str) -> Option<String> {
    let json = serde_json::to_value(messages).ok()?;
    let uri = json.pointer("/1/template/actions/0/uri")?.as_str()?;
    Some(uri.strip_prefix(base)?.trim_start_matches('/').to_owned())
}

async fn demo_route(tracker: &LinkTracker) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryClickStore::new());
    let app = axum::Router::new().nest("/r", track_route(tracker.clone(), store.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let context = LinkContext::new("spring_sale".parse()?, "c00001".parse()?);
    let url = tracker.tracked_url(&context, "https://shop.example/sale")?;
    let token = url.rsplit('/').next().unwrap_or_default();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let ok = http.get(format!("http://{addr}/r/{token}")).send().await?;
    println!(
        "   GET /r/<token>         -> {} Location: {}",
        ok.status(),
        ok.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("-")
    );
    let forged = format!("{}X", token);
    let bad = http.get(format!("http://{addr}/r/{forged}")).send().await?;
    println!(
        "   GET /r/<altered token> -> {} (no Location header: {})",
        bad.status(),
        bad.headers().get("location").is_none()
    );
    println!("   clicks recorded: {}", store.all().len());
    server.abort();
    Ok(())
}
