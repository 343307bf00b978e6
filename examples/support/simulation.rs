//! `server --demo`: simulated days of a shop against the service, with a crash.
//!
//! This process plays everyone but the service: it runs the fake ecforce shop and the fake
//! LINE platform, writes one config file per service instance, starts the instances (this
//! same binary, as child processes), and drives the shop hour by simulated hour — orders,
//! new customers, customers linking through the link pages, customers blocking the account.
//! Half-way it kills the first instance with SIGKILL and starts it again. At the end it stops
//! the instances with SIGTERM and checks every batch in the journal against the fake LINE
//! server's record.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use enishi::campaign::scenario::{CatalogueParams, ScenarioFile, ScenarioSet, catalogue};
use enishi::campaign::{BatchStatus, DeliveryJournal};
use enishi::clock::{Clock, SimulatedClock};
use enishi::commerce::{Customer, LineItem, Money, Order, OrderState};
use enishi::line::webhook::ChannelSecret;
use enishi::storage::Storage;
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLine, FakeUser, user_id};
use enishi::{CampaignId, CustomerId};

use super::demo;
use super::server_config::{
    BrandSection, CampaignSection, Config, LineSection, PolicySection, ServerSection,
    ServiceSection, ShopSection, SimulationSection, StorageSection,
};

type BoxError = Box<dyn std::error::Error>;

/// Simulated seconds per real second: 14 days in about 40 s.
const SPEED: u32 = 30_000;
const SECRET: &str = "server-demo-channel-secret";
const CAMPAIGN: &str = "weekend-coupon";

/// What `--demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub days: u32,
    pub storage: Option<String>,
    pub instances: u32,
    pub customers: u64,
}

/// One service process.
struct Instance {
    index: u32,
    config: PathBuf,
    log: PathBuf,
    addr: std::net::SocketAddr,
    child: Child,
    generation: u32,
}

impl Drop for Instance {
    /// A failed demo leaves no service running behind it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Instance {
    fn spawn(&mut self, line: &FakeLine) -> Result<(), BoxError> {
        self.generation += 1;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.child = start_child(&self.config, self.addr, self.index, self.generation, line, log)?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn start_child(
    config: &PathBuf,
    addr: std::net::SocketAddr,
    index: u32,
    generation: u32,
    line: &FakeLine,
    log: std::fs::File,
) -> Result<Child, BoxError> {
    Ok(Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--worker")
        .arg(format!("instance{index}-run{generation}"))
        .env("LINE_CHANNEL_ACCESS_TOKEN", line.channel_access_token())
        .env("LINE_CHANNEL_SECRET", SECRET)
        .env("ECFORCE_API_TOKEN", DEFAULT_ECFORCE_TOKEN)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "enishi=info".into()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

fn redis_url() -> String {
    std::env::var("ENISHI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn free_port() -> Result<std::net::SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// splitmix64 over a counter: the same story every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        demo::mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// The shop's state as the director knows it.
struct Shop {
    fake: FakeEcforce,
    customers: Vec<Customer>,
    next_order: u64,
}

pub async fn run(options: Options) -> Result<(), BoxError> {
    let storage_url = options.storage.clone();
    let postgres = storage_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if options.instances > 1 && !postgres {
        return Err(
            "--instances above 1 needs --storage postgres://… (SQLite is one process')".into()
        );
    }
    if options.days == 0 {
        return Err("--days must be at least 1".into());
    }
    let real_now = Utc::now();
    let days = i64::from(options.days);
    // The simulated days lie in the past, so whatever the service plans is due by the wall
    // clock the journal's leases use.
    let start = real_now - TimeDelta::days(days + 3);
    let anchor = real_now + TimeDelta::seconds(2);
    // It stops a day after the simulated days end, well before the wall clock's now.
    let until = start + TimeDelta::days(days + 1) + TimeDelta::hours(12);
    let clock = SimulatedClock::anchored(start, SPEED, anchor).until(until);
    let dir = PathBuf::from(format!("target/enishi-server-demo/{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (storage_url, schema) = match storage_url {
        Some(url) if postgres => {
            (url, format!("server_demo_{}_{}", std::process::id(), real_now.timestamp()))
        }
        Some(url) => (url, "enishi".to_owned()),
        None => (format!("sqlite://{}", dir.join("enishi.sqlite").display()), "enishi".to_owned()),
    };

    // The shop and the LINE account, in this process.
    let shop = demo::generate_shop(options.customers, start);
    let ecforce = FakeEcforce::builder().start().await?;
    ecforce.insert_customers(shop.customers.clone());
    ecforce.insert_orders(shop.orders.clone());
    let max_users = options.customers + 4 * u64::try_from(days)?;
    let mut line = FakeLine::builder();
    for i in 1..=max_users {
        line = line.user(FakeUser::new(user_id(i)).display_name(format!("LINE{i}")));
    }
    let line = line.start().await?;
    let mut shop = Shop { fake: ecforce, customers: shop.customers, next_order: 1 };

    // The scenarios and the config the instances read.
    let params = CatalogueParams {
        trial_product: "trial-kit".into(),
        main_product: "serum-subscription".into(),
        product_a: "serum".into(),
        product_b: "cleanser".into(),
        ..CatalogueParams::default()
    };
    let file = ScenarioFile { scenario: catalogue(&params), ..ScenarioFile::default() };
    let scenario_json = serde_json::to_string_pretty(&file)?;
    let set = ScenarioSet::from_json(&scenario_json)?;
    let scenario_path = dir.join("scenarios.json");
    std::fs::write(&scenario_path, &scenario_json)?;
    let active = start + TimeDelta::hours(1);
    let campaign_at = active + TimeDelta::days((days / 2).max(1)) - TimeDelta::hours(2);
    let mut instances = Vec::new();
    for index in 0..options.instances {
        let addr = free_port()?;
        let config = Config {
            line: LineSection {
                api_base_url: Some(line.api_base_url()),
                data_base_url: Some(line.data_base_url()),
                // Several instances share LINE's channel-wide limit through one Redis.
                redis_url: (options.instances > 1).then(redis_url),
                redis_prefix: Some(format!("enishi:server-demo:{}", std::process::id())),
            },
            // The shop's real-time sign-in limit would stop a simulation running 30,000x.
            shop: ShopSection {
                base_url: shop.fake.base_url(),
                sign_in_limit_per_hour: Some(10_000),
            },
            storage: StorageSection { url: storage_url.clone(), schema: schema.clone() },
            server: ServerSection {
                listen: addr,
                public_url: Some(format!("http://{addr}")),
                trusted_proxies: 1,
            },
            service: ServiceSection {
                sync_interval_secs: 0.3,
                tick_interval_secs: 0.05,
                dispatch_interval_secs: 0.05,
                workers: 2,
                scenario_file: Some(scenario_path.clone()),
                link_ticket_ttl_secs: Some(7 * 24 * 3600),
            },
            policy: PolicySection { holdout_percent: 10, ..PolicySection::default() },
            campaigns: vec![CampaignSection {
                id: CAMPAIGN.into(),
                segment: "line linked and line following and orders count >= 1".into(),
                text: "{{name}}さま、いつもありがとうございます。週末限定クーポンをお届けします。"
                    .into(),
                at: campaign_at.fixed_offset(),
            }],
            line_login: None,
            brand: Some(BrandSection {
                name: "縁デモショップ".into(), ..BrandSection::default()
            }),
            link_incentive: None,
            simulation: Some(SimulationSection { start, anchor, speed: SPEED, until }),
            hub: None,
        };
        let path = dir.join(format!("instance{index}.toml"));
        std::fs::write(&path, toml::to_string(&config)?)?;
        let log = dir.join(format!("instance{index}.log"));
        let child = start_child(&path, addr, index, 1, &line, std::fs::File::create(&log)?)?;
        instances.push(Instance { index, config: path, log, addr, child, generation: 1 });
    }
    println!(
        "server demo: {} customers, {} simulated days at {}x, {} instance(s) on {}; logs in {}",
        options.customers,
        options.days,
        SPEED,
        options.instances,
        if postgres { "PostgreSQL" } else { "SQLite" },
        dir.display()
    );
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    for i in &instances {
        wait_ready(&http, i).await?;
    }

    // The simulated days, hour by hour.
    let mut rng = Rng(42);
    let mut restarts = 0;
    let mut linked_by_flow = 0;
    let mut blocked = BTreeSet::new();
    let secret = ChannelSecret::new(SECRET);
    let end = active + TimeDelta::days(days);
    let mut hour = 0_i64;
    while active + TimeDelta::hours(hour) < end {
        let at = active + TimeDelta::hours(hour);
        wait_until(&clock, at).await;
        if hour == days * 12 {
            // Half-way: the first instance dies without a chance to clean up.
            let first = &mut instances[0];
            first.child.kill()?;
            first.child.wait()?;
            println!("  day {:>2}: killed instance 0 (SIGKILL); restarting it", hour / 24);
            first.spawn(&line)?;
            restarts += 1;
            wait_ready(&http, first).await?;
        }
        shop_hour(&mut shop, &mut rng, at, hour);
        if hour % 24 == 2 || hour % 24 == 7 {
            let target = &instances[usize::try_from(rng.below(instances.len() as u64))?];
            if link_one(&http, &line, &mut shop, target, &secret, at, &mut rng).await? {
                linked_by_flow += 1;
            }
        }
        if hour % 48 == 20 {
            let target = &instances[usize::try_from(rng.below(instances.len() as u64))?];
            if let Some(user) = block_one(&line, &shop, target, &secret, at, &mut rng).await? {
                blocked.insert(user);
            }
        }
        if hour % 24 == 0 && hour > 0 {
            println!("  day {:>2}: {} orders placed so far", hour / 24, shop.next_order - 1);
        }
        hour += 1;
    }

    // Let the service catch up, then stop it gracefully.
    let storage = Storage::builder(&storage_url).schema(&schema).open().await?;
    let mut campaigns: Vec<CampaignId> =
        set.scenarios().iter().map(|s| s.campaign().clone()).collect();
    campaigns.push(CAMPAIGN.parse()?);
    settle(&clock, end, storage.journal().as_ref(), &campaigns).await?;
    for i in &mut instances {
        terminate(&mut i.child)?;
    }

    // The record.
    let story = Story { days: options.days, restarts, linked_by_flow, blocked };
    tally(&storage, &line, &set, &campaigns, &story).await
}

/// Waits for `/readyz` (the child opened the storage and serves).
async fn wait_ready(http: &reqwest::Client, instance: &Instance) -> Result<(), BoxError> {
    for _ in 0..600 {
        if let Ok(r) = http.get(instance.url("/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("instance {} did not become ready; see {}", instance.index, instance.log.display())
        .into())
}

async fn wait_until(clock: &SimulatedClock, at: DateTime<Utc>) {
    while clock.now() < at {
        let left = (at - clock.now()).to_std().unwrap_or_default() / SPEED;
        tokio::time::sleep(left.max(Duration::from_millis(1))).await;
    }
}

/// One hour of the shop: some customers order; now and then a new customer registers.
fn shop_hour(shop: &mut Shop, rng: &mut Rng, at: DateTime<Utc>, hour: i64) {
    let n = shop.customers.len() as u64;
    let orders = rng.below(3);
    let mut placed = Vec::new();
    for _ in 0..orders {
        let customer = shop.customers[usize::try_from(rng.below(n)).unwrap_or(0)].id.clone();
        placed.push(order(shop, customer, at, rng));
    }
    if hour % 8 == 3 {
        let i = n + 1;
        let id = CustomerId::new(i.to_string()).expect("digits are a valid ID");
        let mut c = Customer::new(id.clone(), at);
        c.email = Some(format!("customer{i}@example.jp"));
        c.name = Some(format!("顧客{i}"));
        c.opt_in = Some(true);
        shop.fake.insert_customers([c.clone()]);
        shop.customers.push(c);
        placed.push(order(shop, id, at, rng));
    }
    shop.fake.insert_orders(placed);
}

fn order(shop: &mut Shop, customer: CustomerId, at: DateTime<Utc>, rng: &mut Rng) -> Order {
    let mut o = Order::new(format!("sim-{}", shop.next_order), OrderState::Completed, at);
    shop.next_order += 1;
    o.customer_id = Some(customer);
    o.ordered_at = Some(at);
    o.total = Some(Money::jpy(2_980));
    let product = demo::PRODUCTS[usize::try_from(rng.below(4)).unwrap_or(0)];
    o.items = vec![LineItem::new(Some(product.to_owned()), 1)];
    o
}

fn user_of(c: &Customer) -> String {
    user_id(c.id.as_str().parse().unwrap_or(0))
}

/// A customer without a link links through the rich menu, the link page and LINE's dialog.
async fn link_one(
    http: &reqwest::Client,
    line: &FakeLine,
    shop: &mut Shop,
    instance: &Instance,
    secret: &ChannelSecret,
    at: DateTime<Utc>,
    rng: &mut Rng,
) -> Result<bool, BoxError> {
    let unlinked: Vec<&Customer> =
        shop.customers.iter().filter(|c| c.line_user_id.is_none()).collect();
    if unlinked.is_empty() {
        return Ok(false);
    }
    let customer = unlinked[usize::try_from(rng.below(unlinked.len() as u64))?].clone();
    // Each customer's phone has its own address; the service sits behind one proxy.
    let phone = format!("10.{}.{}.{}", rng.below(250), rng.below(250), rng.below(250) + 1);
    let base = instance.url("");
    let site = demo::Site { http, line, ecforce: &shop.fake, base: &base, secret };
    let user = demo::link_via_pages(&site, &customer, at, Some(phone)).await?;
    if let Some(c) = shop.customers.iter_mut().find(|c| c.id == customer.id) {
        c.line_user_id = Some(user);
    }
    Ok(true)
}

/// A linked customer blocks the account; returns the LINE user.
async fn block_one(
    line: &FakeLine,
    shop: &Shop,
    instance: &Instance,
    secret: &ChannelSecret,
    at: DateTime<Utc>,
    rng: &mut Rng,
) -> Result<Option<String>, BoxError> {
    let linked: Vec<&Customer> =
        shop.customers.iter().filter(|c| c.line_user_id.is_some()).collect();
    if linked.is_empty() {
        return Ok(None);
    }
    let user = user_of(linked[usize::try_from(rng.below(linked.len() as u64))?]);
    demo::block(line, &instance.url(""), secret, &user, at).await?;
    Ok(Some(user))
}

/// Waits until the service has had a simulated day past the end to sync and tick, and the
/// journal holds nothing pending or in flight for a few looks in a row.
async fn settle(
    clock: &SimulatedClock,
    end: DateTime<Utc>,
    journal: &dyn DeliveryJournal,
    campaigns: &[CampaignId],
) -> Result<(), BoxError> {
    wait_until(clock, end + TimeDelta::hours(12)).await;
    let mut quiet = 0;
    let mut last = u64::MAX;
    for _ in 0..1200 {
        let (mut open, mut total) = (0, 0);
        for c in campaigns {
            let counts = journal.counts(c).await?;
            open += counts.pending + counts.in_flight;
            total += counts.batches();
        }
        quiet = if open == 0 && total == last { quiet + 1 } else { 0 };
        last = total;
        if quiet >= 4 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// SIGTERM, then wait for the graceful exit (SIGKILL after 60 s).
fn terminate(child: &mut Child) -> Result<(), BoxError> {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    for _ in 0..600 {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                eprintln!("  an instance exited with {status} after SIGTERM");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    Err("an instance did not stop within 60 s of SIGTERM".into())
}

/// What the director did.
struct Story {
    days: u32,
    restarts: u32,
    linked_by_flow: u32,
    /// LINE users who blocked the account.
    blocked: BTreeSet<String>,
}

/// Every journal batch against the fake LINE server's record.
async fn tally(
    storage: &Storage,
    line: &FakeLine,
    set: &ScenarioSet,
    campaigns: &[CampaignId],
    story: &Story,
) -> Result<(), BoxError> {
    let Story { days, restarts, linked_by_flow, ref blocked } = *story;
    let mut delivered: HashMap<(String, String), usize> = HashMap::new();
    for d in line.deliveries() {
        if let Some(key) = d.retry_key {
            *delivered.entry((key, d.to)).or_default() += 1;
        }
    }
    let duplicates: usize = delivered.values().map(|n| n.saturating_sub(1)).sum();
    let scenario_campaigns: BTreeSet<&CampaignId> =
        set.scenarios().iter().map(|s| s.campaign()).collect();
    let (mut scenario_sends, mut campaign_sends, mut lost, mut failed, mut to_blocked) =
        (0, 0, 0, 0, 0);
    for c in campaigns {
        for record in storage.journal().records(c).await? {
            match record.status {
                BatchStatus::Sent => {
                    let key = record.batch.retry_key.to_string();
                    for r in &record.batch.recipients {
                        if delivered.contains_key(&(key.clone(), r.line_user.as_str().to_owned())) {
                            if scenario_campaigns.contains(c) {
                                scenario_sends += 1;
                            } else {
                                campaign_sends += 1;
                            }
                        } else if blocked.contains(r.line_user.as_str()) {
                            // LINE accepts a push to a user who blocked the account and
                            // delivers nothing; the block arrived after the batch was planned.
                            to_blocked += 1;
                        } else {
                            eprintln!(
                                "  lost: {} to {} (sent, not in the fake's record)",
                                record.batch.id, r.line_user
                            );
                            lost += 1;
                        }
                    }
                }
                BatchStatus::Failed | BatchStatus::Cancelled => failed += 1,
                BatchStatus::Pending | BatchStatus::InFlight => {
                    eprintln!(
                        "  lost: {} {:?} not before {} (attempts {})",
                        record.batch.id, record.status, record.batch.not_before, record.attempts
                    );
                    lost += record.batch.recipients.len();
                }
                _ => {}
            }
        }
    }
    let dataset = storage.dataset().load().await.map_err(|e| e as BoxError)?;
    let ids: Vec<CustomerId> = dataset.targetable_ids();
    let linked = storage.links().links_of_customers(&ids).await?.len();
    println!(
        "  {linked_by_flow} customers linked through the link pages; {to_blocked} sends accepted \
         for users who had just blocked the account; {failed} batches failed for good"
    );
    println!(
        "server: days={days} synced_customers={} linked={linked} scenario_sends={scenario_sends} \
         campaign_sends={campaign_sends} duplicates={duplicates} lost={lost} restarts={restarts}",
        dataset.customer_count()
    );
    if duplicates > 0 || lost > 0 {
        return Err(format!("{duplicates} duplicates and {lost} lost sends").into());
    }
    Ok(())
}
