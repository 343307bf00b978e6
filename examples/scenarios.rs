//! Every ready-made scenario for 60 simulated days over a generated shop, delivered to the fake
//! LINE server.
//!
//! A seeded generator builds a shop (customers with order history, carts, favourites,
//! subscriptions, birthdays, LINE links and follow status, unlinked friends) and its next 60
//! days (cart abandonments and purchases, first and second orders, trial and product-A buys,
//! subscription deliveries and cancellations with reasons, restocks, price drops, last units,
//! follows and links). A simulated clock advances hour by hour: the hour's inputs go into the
//! `ScenarioState`, `tick` plans the due steps, the batches go into a `MemoryJournal`, and the
//! due ones are claimed and pushed to `FakeLine` with their retry keys. The run prints a table
//! per scenario and step (sent, skipped by reason, exits) and checks the fake server received
//! each batch exactly once.
//!
//! Then it measures: the policy holds out 10 % of customers (recorded as holdout `SendFact`s
//! when a step falls due for them), every message's links are tracked (`LinkTracker`), and the
//! recipients react from the seed: some click (through `handle_click`, as the redirect route),
//! some block, some order within a week (holdout customers only place the shop's own orders).
//! The `ResultsReport` (journal sends, holdouts, clicks, blocks, orders, LINE's per-step unit
//! statistics from the fake) is printed and written to `target/enishi-scenarios-report.html`
//! and `.json`.
//!
//! ```sh
//! cargo run --release --all-features --example scenarios -- --customers 3000 --days 60
//! cargo run --release --all-features --example scenarios -- --events events.json
//! ```
//!
//! `--events` writes every decision (`ScenarioEvent`: what was sent to whom and when, what was
//! skipped and why, which series exited) as JSON, for reports.

#[path = "support/report.rs"]
mod report;

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use clap::Parser;
use enishi::campaign::scenario::{
    CatalogueParams, Outcome, ScenarioEvent, ScenarioInput, ScenarioState, SkipReason,
    catalogue_set,
};
use enishi::campaign::{
    Batch, BatchOutcome, BlockFact, Bucket, ClickResponse, DeliveryJournal, DeliveryPolicy,
    FrequencyCap, Holdout, LineStatsFact, LinkContext, LinkTracker, MemoryClickStore,
    MemoryJournal, PurchaseFact, QuietHours, ReportInput, ReportOptions, SendFact, handle_click,
};
use enishi::line::message::Message;
use enishi::line::{EndpointClass, LineClient, PushRequest, RateLimit, RateLimits};
use enishi::segment::{
    self, AttrValue, CustomerFacts, Friendship, LineItemFact, LineStatus, OrderKind, ProductStatus,
    SavedItem, SubscriptionFact, SubscriptionState,
};
use enishi::testkit::{self as fake, FakeLine};
use enishi::{AggregationUnit, CampaignId, CustomerId, LineUserId};
use futures_util::StreamExt as _;
use serde::Serialize;

/// Every ready-made scenario, simulated over a generated shop and sent to the fake LINE server.
///
/// Prints a table per scenario and step (sent, skipped by reason, exits), then the results
/// report, also written as HTML and JSON under `target/`.
#[derive(Debug, Parser)]
#[command(name = "scenarios", version)]
struct Args {
    /// Customers in the generated shop.
    #[arg(long, default_value_t = 3000)]
    customers: u64,
    /// Simulated days.
    #[arg(long, default_value_t = 60)]
    days: i64,
    /// Generator seed.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Write every scenario decision and delivery as JSON here.
    #[arg(long)]
    events: Option<std::path::PathBuf>,
}

/// splitmix64: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn minutes(&mut self, max: i64) -> Duration {
        Duration::minutes(
            i64::try_from(self.below(u64::try_from(max.max(1)).unwrap_or(1))).unwrap_or(0),
        )
    }
}

const PRODUCTS: &[(&str, i64)] = &[
    ("serum", 4800),
    ("lotion", 3200),
    ("cream", 5600),
    ("soap", 1200),
    ("mask", 2400),
    ("oil", 3900),
    ("mist", 2100),
    ("balm", 1800),
    ("trial", 980),
    ("main", 6800),
    ("A", 3500),
    ("B", 2900),
    ("bag", 12000),
    ("towel", 1500),
    ("brush", 2200),
];
const REASONS: &[&str] = &["price", "too_much", "no_effect", "moved"];

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

fn order(id: String, at: DateTime<Utc>, product: &str, kind: OrderKind) -> segment::OrderFact {
    let price = PRODUCTS.iter().find(|p| p.0 == product).map_or(3000, |p| p.1);
    segment::OrderFact {
        id,
        placed_at: at,
        amount: price,
        kind,
        items: vec![LineItemFact {
            product: product.into(),
            sku: None,
            category: None,
            quantity: 1,
            unit_price: price,
        }],
    }
}

/// The generated shop: inputs at the start, then inputs in time order.
struct Shop {
    initial: Vec<ScenarioInput>,
    timeline: Vec<(DateTime<Utc>, ScenarioInput)>,
    line_users: Vec<LineUserId>,
}

#[allow(clippy::too_many_lines)]
fn generate(args: &Args, start: DateTime<Utc>) -> Result<Shop, Box<dyn std::error::Error>> {
    let mut rng = Rng(args.seed);
    let end = start + Duration::days(args.days);
    let span = args.days * 24 * 60;
    let mut initial = Vec::new();
    let mut timeline: Vec<(DateTime<Utc>, ScenarioInput)> = Vec::new();
    let mut line_users = Vec::new();
    let pick = |rng: &mut Rng| PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize].0;
    for (name, price) in PRODUCTS {
        let stock = if rng.chance(30) { 0 } else { 3 + i64::try_from(rng.below(20))? };
        initial.push(ScenarioInput::Product {
            product: (*name).into(),
            at: start - Duration::days(1),
            status: ProductStatus { price: *price, stock, restocked_at: None },
        });
    }
    let mut unlinked = Vec::new();
    for n in 0..args.customers {
        let id: CustomerId = format!("c{n:05}").parse()?;
        let user: LineUserId = fake::user_id(n).parse()?;
        let mut f = CustomerFacts::new(id.clone());
        f.attributes.insert("name".into(), AttrValue::Text(format!("顧客{n}")));
        f.birth_date = NaiveDate::from_ymd_opt(
            1960 + i32::try_from(rng.below(45))?,
            1 + u32::try_from(rng.below(12))?,
            1 + u32::try_from(rng.below(28))?,
        );
        f.registered_at = Some(if rng.chance(3) {
            start + rng.minutes(span)
        } else {
            start - Duration::days(1) - rng.minutes(700 * 24 * 60)
        });
        let linked = rng.chance(70);
        if linked {
            f.line = LineStatus {
                linked: true,
                linked_at: Some(start - Duration::days(1) - rng.minutes(300 * 24 * 60)),
                friendship: if rng.chance(92) {
                    Friendship::Following
                } else {
                    Friendship::Blocked
                },
            };
        } else {
            unlinked.push(id.clone());
        }
        // Order history over the last 400 days.
        let history = rng.below(6);
        let mut times: Vec<DateTime<Utc>> =
            (0..history).map(|_| start - Duration::hours(1) - rng.minutes(400 * 24 * 60)).collect();
        times.sort();
        for (k, t) in times.iter().enumerate() {
            f.orders.push(order(format!("h{n}-{k}"), *t, pick(&mut rng), OrderKind::OneOff));
        }
        if rng.chance(20) {
            f.favourites = (0..1 + rng.below(3))
                .map(|_| {
                    let p = pick(&mut rng);
                    let price = PRODUCTS.iter().find(|x| x.0 == p).map_or(1000, |x| x.1);
                    SavedItem {
                        product: p.into(),
                        added_at: start - rng.minutes(30 * 24 * 60) - Duration::hours(1),
                        price_at_add: price,
                    }
                })
                .collect();
        }
        // Subscriptions: active ones deliver every 30 days; some are canceled on the way.
        if rng.chance(15) {
            let months = 1 + i64::try_from(rng.below(14))?;
            let started = start - Duration::days(30 * months) + rng.minutes(29 * 24 * 60);
            let deliveries = u32::try_from(months)?;
            let mut s = SubscriptionFact {
                id: format!("s{n}"),
                state: SubscriptionState::Active,
                product: Some("serum".into()),
                started_at: started,
                canceled_at: None,
                cancel_reason: None,
                deliveries,
                next_delivery_at: Some(started + Duration::days(30 * months)),
            };
            f.subscriptions.push(s.clone());
            let cancel_at = if rng.chance(12) { Some(start + rng.minutes(span)) } else { None };
            while let Some(next) = s.next_delivery_at.filter(|t| *t < end) {
                if cancel_at.is_some_and(|c| c < next) {
                    break;
                }
                s.deliveries += 1;
                s.next_delivery_at = Some(next + Duration::days(30));
                timeline.push((
                    next,
                    ScenarioInput::SubscriptionUpdated {
                        customer: id.clone(),
                        subscription: s.clone(),
                    },
                ));
            }
            if let Some(c) = cancel_at {
                s.state = SubscriptionState::Canceled;
                s.canceled_at = Some(c);
                s.cancel_reason = Some(REASONS[rng.below(REASONS.len() as u64) as usize].into());
                s.next_delivery_at = None;
                timeline.push((
                    c,
                    ScenarioInput::SubscriptionUpdated {
                        customer: id.clone(),
                        subscription: s.clone(),
                    },
                ));
            }
        } else if rng.chance(5) {
            f.subscriptions.push(SubscriptionFact {
                id: format!("s{n}"),
                state: SubscriptionState::Canceled,
                product: Some("serum".into()),
                started_at: start - Duration::days(300),
                canceled_at: Some(start - Duration::days(1 + i64::try_from(rng.below(100))?)),
                cancel_reason: Some(REASONS[rng.below(4) as usize].into()),
                deliveries: 3,
                next_delivery_at: None,
            });
        }
        let had_orders = !f.orders.is_empty();
        initial.push(ScenarioInput::Customer {
            facts: Box::new(f),
            line_user: linked.then(|| user.clone()),
        });
        line_users.push(user);

        // The next 60 days.
        let mut seq = 0;
        let mut buy = |timeline: &mut Vec<_>, at: DateTime<Utc>, product: &str| {
            seq += 1;
            timeline.push((
                at,
                ScenarioInput::OrderPlaced {
                    customer: id.clone(),
                    order: order(format!("o{n}-{seq}"), at, product, OrderKind::OneOff),
                },
            ));
        };
        if rng.chance(25) {
            let at = start + rng.minutes(span);
            let product = pick(&mut rng);
            let price = PRODUCTS.iter().find(|x| x.0 == product).map_or(1000, |x| x.1);
            timeline.push((
                at,
                ScenarioInput::CartUpdated {
                    customer: id.clone(),
                    at,
                    items: vec![SavedItem {
                        product: product.into(),
                        added_at: at,
                        price_at_add: price,
                    }],
                },
            ));
            if rng.chance(40) {
                let paid = at + rng.minutes(30 * 60);
                buy(&mut timeline, paid, product);
                timeline.push((
                    paid,
                    ScenarioInput::CartUpdated {
                        customer: id.clone(),
                        at: paid,
                        items: Vec::new(),
                    },
                ));
            }
        }
        if !had_orders && rng.chance(25) {
            let at = start + rng.minutes(span);
            buy(&mut timeline, at, pick(&mut rng));
            if rng.chance(25) {
                buy(
                    &mut timeline,
                    at + Duration::days(5) + rng.minutes(20 * 24 * 60),
                    pick(&mut rng),
                );
            }
        }
        if rng.chance(5) {
            let at = start + rng.minutes(span);
            buy(&mut timeline, at, "trial");
            if rng.chance(30) {
                buy(&mut timeline, at + Duration::days(3) + rng.minutes(12 * 24 * 60), "main");
            }
        }
        if rng.chance(5) {
            buy(&mut timeline, start + rng.minutes(span), "A");
        }
        if rng.chance(10) {
            buy(&mut timeline, start + rng.minutes(span), pick(&mut rng));
        }
    }
    // Unlinked LINE friends follow; some of them link an unlinked customer account later.
    let friends = args.customers / 10;
    for k in 0..friends {
        let user: LineUserId = fake::user_id(1_000_000 + k).parse()?;
        let at = start + rng.minutes(span);
        timeline.push((at, ScenarioInput::Followed { line_user: user.clone(), at }));
        if rng.chance(35)
            && let Some(customer) = unlinked.pop()
        {
            let linked_at = at + rng.minutes(5 * 24 * 60);
            timeline.push((
                linked_at,
                ScenarioInput::Linked { customer, line_user: user.clone(), at: linked_at },
            ));
        }
        line_users.push(user);
    }
    // Product changes: a few a day.
    let mut stock: BTreeMap<&str, (i64, i64)> =
        PRODUCTS.iter().map(|(p, price)| (*p, (*price, 5))).collect();
    for day in 0..args.days {
        for _ in 0..3 {
            let p = pick(&mut rng);
            let at = start + Duration::days(day) + rng.minutes(24 * 60);
            let (price, qty) = stock[p];
            let (price, qty) = match rng.below(4) {
                0 => (price, 0),
                1 => (price, if qty == 0 { 5 } else { qty + 3 }),
                2 => (price * 9 / 10, qty.max(1)),
                _ => (price, 1),
            };
            stock.insert(p, (price, qty));
            timeline.push((
                at,
                ScenarioInput::Product {
                    product: p.into(),
                    at,
                    status: ProductStatus { price, stock: qty, restocked_at: None },
                },
            ));
        }
    }
    timeline.sort_by_key(|(t, _)| *t);
    Ok(Shop { initial, timeline, line_users })
}

/// One delivery the fake LINE server accepted, for reports.
#[derive(Debug, Serialize)]
struct Delivered {
    at: DateTime<Utc>,
    batch: String,
    campaign: CampaignId,
    customer: CustomerId,
    line_user: LineUserId,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    events: &'a [ScenarioEvent],
    deliveries: &'a [Delivered],
}

#[derive(Debug, Default)]
struct Row {
    sent: u64,
    condition: u64,
    capped: u64,
    stale: u64,
    other: u64,
}

/// Claims every due batch of every scenario and pushes it with its retry key.
async fn deliver(
    journal: &MemoryJournal,
    client: &LineClient,
    campaigns: &[CampaignId],
    now: DateTime<Utc>,
    delivered: &mut Vec<Delivered>,
) -> Result<(), Box<dyn std::error::Error>> {
    for campaign in campaigns {
        let due = journal.claim(campaign, "sim", 100_000, now, StdDuration::from_secs(600)).await?;
        let mut results: Vec<_> = futures_util::stream::iter(due.into_iter().map(|c| c.batch))
            .map(|b| async move {
                let to = b.recipients[0].line_user.clone();
                let mut req =
                    PushRequest::new(to, b.messages.clone()).retry_key(b.retry_key.clone());
                if let Some(unit) = &b.aggregation_unit {
                    req = req.aggregation_unit(unit.clone());
                }
                let res = client.push(req).await;
                (b, res)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        // Pushes finish in any order; the reactions drawn from the seed must not depend on it.
        results.sort_by(|(a, _), (b, _)| a.id.as_str().cmp(b.id.as_str()));
        for (b, res) in results {
            let outcome = match res {
                Ok(r) => BatchOutcome::Accepted {
                    request_id: r.accepted.request_id,
                    already_accepted: r.accepted.already_accepted,
                },
                Err(e) => return Err(format!("push {} failed: {e}", b.id).into()),
            };
            journal.complete(&b.id, &outcome, now).await?;
            delivered.push(Delivered {
                at: now,
                batch: b.id.to_string(),
                campaign: b.campaign.clone(),
                customer: b.recipients[0].customer.clone(),
                line_user: b.recipients[0].line_user.clone(),
            });
        }
    }
    Ok(())
}

/// Percent of recipients who click the message's (tracked) link.
const CLICK_PERCENT: u64 = 20;
/// Percent of recipients who block the account within a week of a message.
const BLOCK_PERCENT: u64 = 2;
/// Percent of recipients (linked customers) a message moves to buy within a week, on top of
/// what they buy anyway (the shop's own orders, which holdout customers place too).
const ORDER_PERCENT: u64 = 6;

/// How the simulated customers react to the messages they get, drawn from the seed.
struct Reactions {
    rng: Rng,
    tracker: LinkTracker,
    clicks: MemoryClickStore,
    /// The tracked link's token of each batch, by batch ID.
    tokens: HashMap<String, String>,
    /// Orders and blocks the messages caused, fed back into the scenario state when due.
    pending: BTreeMap<(DateTime<Utc>, u64), ScenarioInput>,
    seq: u64,
    blocks: Vec<BlockFact>,
}

impl Reactions {
    fn new(seed: u64) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            rng: Rng(seed ^ 0x5EED_2EAC_7104_0000),
            tracker: LinkTracker::new(
                *b"example key: use 32+ random bytes",
                "https://shop.example/r",
            )?,
            clicks: MemoryClickStore::new(),
            tokens: HashMap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            blocks: Vec::new(),
        })
    }

    /// Gives the batch a link to the shop (the catalogue's texts have none) and rewrites every
    /// link into a signed tracked URL, as a shop would before enqueueing.
    fn track(&mut self, batch: &mut Batch) -> Result<(), Box<dyn std::error::Error>> {
        let Some(to) = batch.recipients.first() else { return Ok(()) };
        let step = LinkContext::step_of(&batch.id);
        let mut context = LinkContext::new(batch.campaign.clone(), to.customer.clone());
        if let Some(step) = &step {
            context = context.with_step(step.clone());
        }
        if batch.messages.len() < 5 {
            let scenario = scenario_of(&batch.campaign);
            batch.messages.push(Message::text(format!(
                "詳しくはこちら https://shop.example/{scenario}/{}",
                step.as_deref().unwrap_or("top")
            )));
        }
        batch.messages = self.tracker.rewrite_all(&batch.messages, &context)?;
        // One aggregation unit per step (the scenario's own is per scenario), so LINE's opens
        // land on the step's row.
        if let Some(step) = &step
            && let Some(unit) = step_unit(scenario_of(&batch.campaign), step)
        {
            batch.aggregation_unit = Some(unit);
        }
        let json = serde_json::to_string(&batch.messages)?;
        let prefix = format!("{}/", self.tracker.base_url());
        if let Some((_, rest)) = json.split_once(&prefix) {
            let token: String =
                rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
            self.tokens.insert(batch.id.to_string(), token);
        }
        Ok(())
    }

    /// One recipient's reaction to a delivered message.
    async fn react(&mut self, d: &Delivered) -> Result<(), Box<dyn std::error::Error>> {
        if self.rng.chance(CLICK_PERCENT)
            && let Some(token) = self.tokens.get(&d.batch)
        {
            let at = d.at + Duration::minutes(1) + self.rng.minutes(8 * 60);
            // The same verification and recording as the redirect route does.
            let answer =
                handle_click(&self.tracker, &self.clicks, token, Some("Line/14.0"), false, at)
                    .await;
            if !matches!(answer, ClickResponse::Redirect { recorded: true, .. }) {
                return Err(format!("tracked link of {} not followed: {answer:?}", d.batch).into());
            }
        }
        if self.rng.chance(BLOCK_PERCENT) {
            // Most blocks come within a day; the rest within the week.
            let at = if self.rng.chance(60) {
                d.at + self.rng.minutes(24 * 60)
            } else {
                d.at + Duration::days(1) + self.rng.minutes(6 * 24 * 60)
            };
            self.blocks.push(BlockFact::new(d.customer.clone(), at));
            self.later(at, ScenarioInput::Unfollowed { line_user: d.line_user.clone() });
        }
        // Unlinked friends (`line:<user>`) have no shop account to order with.
        if !d.customer.as_str().starts_with("line:") && self.rng.chance(ORDER_PERCENT) {
            let at = d.at + Duration::hours(1) + self.rng.minutes(6 * 24 * 60);
            let product = PRODUCTS[self.rng.below(PRODUCTS.len() as u64) as usize].0;
            self.seq += 1;
            let id = format!("r{}", self.seq);
            self.later(
                at,
                ScenarioInput::OrderPlaced {
                    customer: d.customer.clone(),
                    order: order(id, at, product, OrderKind::OneOff),
                },
            );
        }
        Ok(())
    }

    fn later(&mut self, at: DateTime<Utc>, input: ScenarioInput) {
        self.seq += 1;
        self.pending.insert((at, self.seq), input);
    }
}

fn scenario_of(campaign: &CampaignId) -> &str {
    campaign.as_str().trim_start_matches("scenario.")
}

/// `<scenario>_<step>`, the scenario's name shortened to fit LINE's 30 characters.
fn step_unit(scenario: &str, step: &str) -> Option<AggregationUnit> {
    let room = 30usize.checked_sub(step.len() + 1)?;
    let scenario: String = scenario.chars().take(room).collect();
    format!("{scenario}_{step}").parse().ok()
}

/// Applies one input, noting orders for the report.
fn apply(
    state: &mut ScenarioState,
    input: ScenarioInput,
    orders: &mut Vec<PurchaseFact>,
) -> Result<(), Box<dyn std::error::Error>> {
    if let ScenarioInput::OrderPlaced { customer, order } = &input {
        let amount = u64::try_from(order.amount).unwrap_or(0);
        orders.push(PurchaseFact::new(customer.clone(), order.placed_at, amount));
    }
    state.apply(input)?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit(simulate(Args::parse()).await)
}

#[allow(clippy::too_many_lines)]
async fn simulate(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let start = jst()
        .with_ymd_and_hms(2026, 4, 1, 0, 0, 0)
        .single()
        .ok_or("bad start")?
        .with_timezone(&Utc);
    let params = CatalogueParams {
        early_access_at: vec![
            jst().with_ymd_and_hms(2026, 4, 20, 10, 0, 0).single().ok_or("bad date")?,
        ],
        ..CatalogueParams::default()
    };
    let set = catalogue_set(&params)?;
    let campaigns: Vec<CampaignId> = set.scenarios().iter().map(|s| s.campaign().clone()).collect();
    let names: Vec<String> = set.scenarios().iter().map(|s| s.name().to_owned()).collect();
    let step_names: BTreeMap<String, Vec<String>> = set
        .scenarios()
        .iter()
        .map(|s| (s.name().to_owned(), s.step_names().into_iter().map(str::to_owned).collect()))
        .collect();
    let policy = DeliveryPolicy::new()
        .with_frequency_cap(FrequencyCap::new(3, Duration::days(7)))
        .with_quiet_hours(QuietHours::new(
            chrono::NaiveTime::from_hms_opt(21, 0, 0).ok_or("time")?,
            chrono::NaiveTime::from_hms_opt(9, 0, 0).ok_or("time")?,
        ))
        // A global control group: never messaged, measured like everyone else.
        .with_holdout(Holdout::percent("scenarios-2026", 10));
    let shop = generate(&args, start)?;
    let generated = started.elapsed();
    let line = FakeLine::builder()
        .no_rate_limits()
        .friends(shop.line_users.iter().map(LineUserId::as_str))
        .start()
        .await?;
    // LINE allows 60 statistics calls an hour; one per scenario in a burst is within that.
    let limits = RateLimits::default().with(
        EndpointClass::Insight,
        Some(RateLimit::new(60, StdDuration::from_secs(3600)).burst(60)),
    );
    let client = LineClient::builder()
        .rate_limits(limits)
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()?;

    let mut state = ScenarioState::new(set, start).with_policy(policy);
    let mut orders: Vec<PurchaseFact> = Vec::new();
    let mut reactions = Reactions::new(args.seed)?;
    for input in shop.initial {
        apply(&mut state, input, &mut orders)?;
    }
    let journal = MemoryJournal::new();
    let mut timeline = shop.timeline.into_iter().peekable();
    let mut events: Vec<ScenarioEvent> = Vec::new();
    let mut delivered: Vec<Delivered> = Vec::new();
    let mut planned = 0usize;
    let (mut tick_time, mut send_time) = (StdDuration::ZERO, StdDuration::ZERO);
    for hour in 0..=args.days * 24 {
        let now = start + Duration::hours(hour);
        while let Some((_, input)) = timeline.next_if(|(t, _)| *t <= now) {
            apply(&mut state, input, &mut orders)?;
        }
        while let Some(entry) = reactions.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            apply(&mut state, entry.remove(), &mut orders)?;
        }
        let t0 = Instant::now();
        let mut tick = state.tick(now);
        tick_time += t0.elapsed();
        for batch in &mut tick.batches {
            reactions.track(batch)?;
        }
        planned += tick.batches.len();
        journal.enqueue(&tick.batches).await?;
        events.extend(tick.events);
        let t1 = Instant::now();
        let before = delivered.len();
        deliver(&journal, &client, &campaigns, now, &mut delivered).await?;
        send_time += t1.elapsed();
        for d in &delivered[before..] {
            reactions.react(d).await?;
        }
    }
    // Batches held back by the last night's quiet hours go out the next morning.
    let end = start + Duration::days(args.days) + Duration::hours(12);
    let before = delivered.len();
    deliver(&journal, &client, &campaigns, end, &mut delivered).await?;
    for d in &delivered[before..] {
        reactions.react(d).await?;
    }
    // Orders the messages caused up to the end of the simulation (nothing is sent any more).
    while let Some(((at, _), input)) = reactions.pending.pop_first() {
        if at > end {
            break;
        }
        if let ScenarioInput::OrderPlaced { customer, order } = input {
            let amount = u64::try_from(order.amount).unwrap_or(0);
            orders.push(PurchaseFact::new(customer, order.placed_at, amount));
        }
    }

    // The table.
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut exits: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for e in &events {
        match &e.outcome {
            Outcome::Exited { reason } => {
                *exits.entry(e.scenario.clone()).or_default().entry(reason.clone()).or_default() +=
                    1;
            }
            outcome => {
                let row = rows
                    .entry((e.scenario.clone(), e.step.clone().unwrap_or_default()))
                    .or_default();
                match outcome {
                    Outcome::Sent { .. } => row.sent += 1,
                    Outcome::Skipped { reason: SkipReason::Condition } => row.condition += 1,
                    Outcome::Skipped { reason: SkipReason::Capped } => row.capped += 1,
                    Outcome::Skipped { reason: SkipReason::Stale } => row.stale += 1,
                    _ => row.other += 1,
                }
            }
        }
    }
    println!(
        "enishi scenarios: {} customers, {} days, seed {}",
        args.customers, args.days, args.seed
    );
    println!(
        "policy: at most 3 messages per user per 7 days, quiet 21:00–09:00 JST, 10 % holdout\n"
    );
    println!(
        "{:<26} {:<10} {:>6} {:>10} {:>7} {:>6}  exits",
        "scenario", "step", "sent", "condition", "capped", "stale"
    );
    let mut total = 0;
    for name in &names {
        for (i, step) in step_names[name].iter().enumerate() {
            let r = rows.remove(&(name.clone(), step.clone())).unwrap_or_default();
            total += r.sent;
            let exit_text = if i == 0 {
                exits
                    .get(name)
                    .map(|m| {
                        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            println!(
                "{:<26} {:<10} {:>6} {:>10} {:>7} {:>6}  {}",
                if i == 0 { name.as_str() } else { "" },
                step,
                r.sent,
                r.condition,
                r.capped,
                r.stale,
                exit_text
            );
        }
    }
    // Each batch carries its own retry key: one delivery per key means nothing went twice.
    let keys: std::collections::HashSet<Option<String>> =
        line.deliveries().into_iter().map(|d| d.retry_key).collect();
    println!(
        "\nplanned {planned} batches, {total} sends; fake LINE accepted {} pushes with {} distinct retry keys",
        line.delivery_count(),
        keys.len()
    );
    println!(
        "time: generate {:.2}s, ticks {:.2}s (1 per simulated hour), delivery {:.2}s, total {:.2}s",
        generated.as_secs_f64(),
        tick_time.as_secs_f64(),
        send_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.events {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&Report { events: &events, deliveries: &delivered })?,
        )?;
        println!("events and deliveries written to {}", path.display());
    }
    let measured = Instant::now();
    let report = measure(MeasureInput {
        args: &args,
        start,
        end,
        journal: &journal,
        client: &client,
        scenarios: &names,
        step_names: &step_names,
        campaigns: &campaigns,
        events: &events,
        reactions,
        orders,
    })
    .await?;
    println!("\n{report}");
    std::fs::create_dir_all("target")?;
    std::fs::write("target/enishi-scenarios-report.html", report.to_html())?;
    std::fs::write("target/enishi-scenarios-report.json", serde_json::to_vec_pretty(&report)?)?;
    println!(
        "report: {:.2}s; wrote target/enishi-scenarios-report.html and .json (total {:.2}s)",
        measured.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let ok = line.delivery_count() == planned
        && keys.len() == planned
        && delivered.len() == planned
        && u64::try_from(planned)? == total;
    line.shutdown().await;
    if ok { Ok(()) } else { Err("deliveries do not match the plan".into()) }
}

/// What the measured-results report is built from.
struct MeasureInput<'a> {
    args: &'a Args,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    journal: &'a MemoryJournal,
    client: &'a LineClient,
    scenarios: &'a [String],
    step_names: &'a BTreeMap<String, Vec<String>>,
    campaigns: &'a [CampaignId],
    events: &'a [ScenarioEvent],
    reactions: Reactions,
    orders: Vec<PurchaseFact>,
}

/// The measured results: sends from the journal, holdout customers from the holdout skips,
/// clicks from the click store, blocks, orders, and opens from LINE's per-unit statistics.
async fn measure(
    m: MeasureInput<'_>,
) -> Result<enishi::campaign::ResultsReport, Box<dyn std::error::Error>> {
    let mut input = ReportInput::new();
    for campaign in m.campaigns {
        input.sends.extend(SendFact::from_records(&m.journal.records(campaign).await?));
    }
    let campaign_of: HashMap<&str, &CampaignId> =
        m.scenarios.iter().map(String::as_str).zip(m.campaigns).collect();
    for e in m.events {
        if matches!(e.outcome, Outcome::Skipped { reason: SkipReason::Holdout })
            && let Some(campaign) = campaign_of.get(e.scenario.as_str())
        {
            let holdout =
                SendFact::holdout((*campaign).clone(), e.step.clone(), e.customer.clone(), e.at);
            input.sends.push(holdout);
        }
    }
    input.clicks = m.reactions.clicks.all();
    input.blocks = m.reactions.blocks;
    input.orders = m.orders;
    // Each scenario's batches carry the scenario's name as aggregation unit. The fake stamps
    // deliveries with the real clock, so the unit is asked for today; the fact carries the
    // simulated period.
    let today = Utc::now().with_timezone(&jst()).date_naive();
    let (from, to) =
        (m.start.with_timezone(&jst()).date_naive(), m.end.with_timezone(&jst()).date_naive());
    for (name, campaign) in m.scenarios.iter().zip(m.campaigns) {
        for step in &m.step_names[name] {
            let Some(unit) = step_unit(name, step) else { continue };
            match m.client.aggregation_unit_statistics(&unit, today, today).await {
                Ok(stats) => input.line_stats.push(LineStatsFact::from_statistics(
                    campaign.clone(),
                    Some(step.clone()),
                    from,
                    to,
                    &stats,
                )),
                Err(e) => eprintln!("no LINE statistics for {name}/{step}: {e}"),
            }
        }
    }
    let options = ReportOptions::default()
        .with_title(format!(
            "enishi scenarios — {} customers, {} simulated days, seed {}",
            m.args.customers, m.args.days, m.args.seed
        ))
        .with_bucket(Bucket::Week);
    Ok(input.build(&options))
}
