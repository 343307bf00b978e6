//! The enishi tour: the whole story, offline, on embedded defaults.
//!
//! 1. starts a fake ecforce shop and a fake LINE account in-process;
//! 2. syncs the shop into an SQLite file under `target/enishi-quickstart/`, importing the LINE
//!    links ecforce already knows;
//! 3. links a few more customers through the real account-link flow (rich-menu postback → link
//!    URL → ecforce sign-in → LINE's dialog → signed `accountLink` webhook);
//! 4. evaluates a segment and prints its count, funnel and one explanation;
//! 5. plans a campaign (dry run: counts per arm and exclusion reason, a sample message), sends
//!    it through the delivery journal with a progress bar, and prints the delivery report,
//!    checked against the fake LINE server's record.
//!
//! ```sh
//! cargo run --all-features --example quickstart
//! cargo run --all-features --example quickstart -- --dry-run   # plan only
//! ```
//!
//! With `LINE_CHANNEL_ACCESS_TOKEN` (and `ECFORCE_BASE_URL` + `ECFORCE_API_TOKEN`) set, the same
//! steps run against the real channel and shop: the demo linking (step 3) is skipped, the
//! segment and plan use the real data, and `--dry-run` is strongly advised for a first run (see
//! docs/operations.md).

#[path = "support/demo.rs"]
mod demo;
#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use chrono::Utc;
use clap::Parser;
use enishi::campaign::{
    Arm, Campaign, DeliveryJournal, DeliveryPolicy, Holdout, MessageTemplate, Planner, SendHistory,
    SqliteJournal,
};
use enishi::commerce::sync::{SqliteDataset, Syncer};
use enishi::commerce::{CommerceBackend, Customer, EcforceClient, Password};
use enishi::line::webhook::{ChannelSecret, SqliteDedup, WebhookService};
use enishi::line::{LineClient, LinkToken};
use enishi::link::{
    AccountLinker, BackendLinkImport, LinkEventHandler, LinkStore, SqliteLinkStore,
};
use enishi::segment::{Context, CustomerFacts, Engine, Schema, SegmentDefinition, evaluate};
use enishi::testkit::{FakeEcforce, FakeLine, FakeLogin, user_id};
use enishi::{AggregationUnit, CampaignId, CustomerId, LineUserId};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// The whole enishi story on embedded defaults: fake LINE, fake ecforce, SQLite.
#[derive(Debug, Parser)]
#[command(name = "quickstart", version)]
struct Args {
    /// Plan the campaign and print what would be sent, but send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Customers in the generated shop.
    #[arg(long, default_value_t = 1_000)]
    customers: u64,
    /// Where the SQLite files go (recreated on each run).
    #[arg(long, default_value = "target/enishi-quickstart")]
    dir: PathBuf,
}

const CHANNEL: &str = "quickstart";
const SEGMENT: &str = r#"line linked and line following
    and orders count = 1
    and first_order age >= 7d
    and never bought {product = "serum-subscription"}"#;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = tour(args).await;
    if result.is_err() {
        eprintln!();
    }
    report::exit(result)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "   {bar:30.cyan/blue} {pos:>7}/{len:7} {msg} {per_sec:>12} eta {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The shop, the LINE channel and the databases: fakes and files under `--dir` by default,
/// the real services when the environment names them.
struct Services {
    client: LineClient,
    shop_api: Arc<EcforceClient>,
    /// The link store, webhook de-duplication and delivery journal file.
    db: PathBuf,
    /// The in-process fakes, with the generated shop (offline only).
    fakes: Option<(FakeLine, FakeEcforce, demo::Shop)>,
}

async fn offline(args: &Args) -> Result<Services, Box<dyn std::error::Error>> {
    let demo::Fakes { line, ecforce, shop, client, shop_api } =
        demo::start_fakes(args.customers).await?;
    println!(
        "1. A shop on ecforce with {} customers and {} orders, and its LINE account with {} friends",
        shop.customers.len(),
        shop.orders.len(),
        args.customers
    );
    println!("   fake ecforce at {}, fake LINE at {}", ecforce.base_url(), line.api_base_url());
    let db = args.dir.join("enishi.sqlite");
    Ok(Services { client, shop_api, db, fakes: Some((line, ecforce, shop)) })
}

fn real(token: String) -> Result<Services, Box<dyn std::error::Error>> {
    let need = |name: &str| {
        std::env::var(name)
            .map_err(|_| format!("{name} must be set when LINE_CHANNEL_ACCESS_TOKEN is"))
    };
    let (base_url, api_token) = (need("ECFORCE_BASE_URL")?, need("ECFORCE_API_TOKEN")?);
    let db = demo::sqlite_path(&need("DATABASE_URL")?)?;
    println!(
        "1. The real shop at {base_url} and the real LINE channel; links and journal in {}",
        db.display()
    );
    let client = LineClient::new(token)?;
    let shop_api = Arc::new(EcforceClient::builder(base_url, api_token).build()?);
    Ok(Services { client, shop_api, db, fakes: None })
}

async fn tour(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let now = Utc::now();
    println!("enishi quickstart: link LINE users to shop customers, then message the right ones");
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| report::Context::new(format!("creating {}", args.dir.display()), e))?;
    let services = match std::env::var("LINE_CHANNEL_ACCESS_TOKEN") {
        Ok(token) => {
            println!(
                "(real services from the environment; shop data cached under {})\n",
                args.dir.display()
            );
            real(token)?
        }
        Err(_) => {
            println!(
                "(offline: fake ecforce + fake LINE in this process, SQLite under {})\n",
                args.dir.display()
            );
            for f in ["shop.sqlite", "enishi.sqlite"] {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(args.dir.join(format!("{f}{suffix}")));
                }
            }
            offline(&args).await?
        }
    };
    let Services { client, shop_api, db, fakes } = services;

    // 2. Sync into SQLite, importing the links ecforce already has.
    println!("\n2. Syncing the shop into {}", args.dir.join("shop.sqlite").display());
    let store: Arc<dyn LinkStore> = Arc::new(SqliteLinkStore::open(&db, CHANNEL)?);
    let dataset = SqliteDataset::open(args.dir.join("shop.sqlite"))?;
    let import = BackendLinkImport::new(store.clone(), &dataset);
    let progress = bar(0, "records");
    let backend: &dyn CommerceBackend = shop_api.as_ref();
    let report = Syncer::new(backend)
        .on_progress(|p| {
            progress.set_length(p.records);
            progress.set_position(p.records);
        })
        .run(&import)
        .await?;
    progress.finish_and_clear();
    let counts = import.counts();
    println!(
        "   {} records in {:.1} s; {} LINE links imported from ecforce's line_id field",
        report.total_records(),
        report.elapsed.as_secs_f64(),
        counts.linked
    );

    // 3. A few customers link through the account-link flow (offline: the fakes play LINE
    // and the customers).
    let store_for_demo = store.clone();
    match &fakes {
        Some((line, ecforce, shop)) => {
            link_demo(line, ecforce, shop, &client, store_for_demo, &shop_api, &db).await?;
        }
        None => println!(
            "\n3. Linking: customers link through your link URL (examples/link_server.rs); \
             {} links are in the store",
            counts.linked + counts.unchanged
        ),
    }

    // 4. A segment.
    println!(
        "\n4. Segment \"F2 follow-up\": linked, following, exactly one order 7+ days ago, no subscription"
    );
    let loaded = dataset.load().await.map_err(|e| e as Box<dyn std::error::Error>)?;
    let mut facts = loaded.segment_facts();
    demo::apply_link_status(store.as_ref(), &mut facts).await?;
    let def = SegmentDefinition::parse(SEGMENT)?;
    let mut engine = Engine::new(Context::new(now));
    for f in &facts {
        engine.upsert_customer(f.clone());
    }
    // The shop sells these even if no generated customer bought one: `register` checks names.
    let mut catalogue = Schema::new();
    demo::PRODUCTS.iter().for_each(|p| catalogue.add_product(*p));
    engine.declare(&catalogue);
    engine.register("f2", def.clone())?;
    let members = engine.members("f2")?;
    println!("   {} of {} customers are in it", members.len(), facts.len());
    let funnel = engine.funnel("f2")?;
    for (step, left) in &funnel.steps {
        println!("   {left:>6}  after {step}");
    }
    // A linked customer outside the segment, to explain (a tiny shop may have none).
    let outsider = facts.iter().find(|f| f.line.linked && !members.contains(&f.id));
    if let Some(outsider) = outsider {
        let why = evaluate(&def, outsider, &Context::new(now))?;
        println!("   why is customer {} not in it?", outsider.id);
        for line in why.explain.to_string().lines().take(8) {
            println!("     {line}");
        }
    }
    let snapshot = args.dir.join("snapshot.json");
    std::fs::write(&snapshot, serde_json::to_vec(&json!({"now": now, "customers": facts}))?)?;
    std::fs::write(args.dir.join("f2.seg"), SEGMENT)?;

    // 5. The campaign.
    let mut names: HashMap<CustomerId, String> = HashMap::new();
    loaded.for_each_customer(|c| {
        if let Some(n) = &c.name {
            names.insert(c.id.clone(), n.clone());
        }
    });
    let member_ids = members.to_vec();
    let line = fakes.as_ref().map(|(line, _, _)| line);
    send_campaign(&args, line, &client, store.as_ref(), &member_ids, &facts, &names).await?;

    println!("\nDone in {:.1} s. Next:", started.elapsed().as_secs_f64());
    let explain = outsider.map(|o| format!(" --explain {}", o.id)).unwrap_or_default();
    println!(
        "  cargo run --all-features --example segment -- {}/f2.seg {}{explain}",
        args.dir.display(),
        snapshot.display(),
    );
    println!("  cargo run --all-features --example link_server   # the link pages in a browser");
    println!("  docs/architecture.md, docs/linking.md, docs/delivery.md, docs/scenarios.md");
    Ok(())
}

/// Five customers link through the real account-link flow over signed webhooks; two linked
/// customers block the account.
async fn link_demo(
    line: &FakeLine,
    ecforce: &FakeEcforce,
    shop: &demo::Shop,
    client: &LineClient,
    store: Arc<dyn LinkStore>,
    shop_api: &Arc<EcforceClient>,
    db: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let unlinked: Vec<&Customer> =
        shop.customers.iter().filter(|c| c.line_user_id.is_none()).take(5).collect();
    println!(
        "\n3. {} customers link their LINE account through the link URL on the rich menu",
        unlinked.len()
    );
    let secret = ChannelSecret::new("quickstart-channel-secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let linker =
        AccountLinker::builder(client.clone(), store.clone(), format!("http://{addr}/link"))
            .authenticator(shop_api.clone())
            .build()?;
    let webhook = WebhookService::builder(secret.clone())
        .dedup(SqliteDedup::open(db, Duration::from_secs(7 * 24 * 3600))?)
        .handle_before_responding(true)
        .build(LinkEventHandler::new(linker.clone()));
    let app: Router = webhook.router("/webhook");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let webhook_url = format!("http://{addr}/webhook");
    for (n, customer) in unlinked.iter().enumerate() {
        let i: u64 = customer.id.as_str().parse()?;
        let user = user_id(i);
        // The customer taps "連携する" on the rich menu: LINE posts the link postback.
        let reply_token = line.issue_reply_token(&user)?;
        let tap = json!({"destination": "Ubot", "events": [{
            "type": "postback", "timestamp": now.timestamp_millis(), "replyToken": reply_token,
            "mode": "active", "source": {"type": "user", "userId": user},
            "webhookEventId": format!("01QUICKSTARTTAP{n}"), "deliveryContext": {"isRedelivery": false},
            "postback": {"data": enishi::link::DEFAULT_LINK_POSTBACK}}]});
        line.post_webhook(&webhook_url, &secret, tap.to_string().into_bytes()).await?;
        // enishi replied with the link URL; the customer opens it and signs in to the shop.
        let reply = line.messages_for(&user);
        let link_url = reply
            .last()
            .and_then(|m| m["template"]["actions"][0]["uri"].as_str())
            .ok_or("no link message was replied")?;
        let token = url::Url::parse(link_url)?
            .query_pairs()
            .find(|(k, _)| k == "linkToken")
            .map(|(_, v)| v.into_owned())
            .ok_or("the link URL has no linkToken")?;
        let email = customer.email.clone().unwrap_or_default();
        ecforce.add_login(email.clone(), FakeLogin::new(customer.id.clone(), "correct horse"));
        let issued = linker
            .complete_with_password(
                &LinkToken::from_received(token),
                &email,
                &Password::new("correct horse"),
                std::net::Ipv4Addr::LOCALHOST.into(),
                Utc::now(),
            )
            .await?;
        // LINE's dialog confirms the user and sends the signed accountLink webhook.
        line.open_account_link_dialog(issued.redirect.as_str(), &user, &webhook_url, &secret)
            .await?;
        let link = store.link_of_user(&LineUserId::new(&user)?).await?.ok_or("not linked")?;
        println!("   {} (LINE {}…) linked by {:?}", link.customer, &user[..9], link.source);
    }
    // Two linked customers block the account: LINE sends unfollow events.
    let blockers: Vec<&Customer> =
        shop.customers.iter().filter(|c| c.line_user_id.is_some()).take(2).collect();
    for (n, c) in blockers.iter().enumerate() {
        let user = c.line_user_id.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default();
        let body = json!({"destination": "Ubot", "events": [{
            "type": "unfollow", "timestamp": now.timestamp_millis(), "mode": "active",
            "source": {"type": "user", "userId": user},
            "webhookEventId": format!("01QUICKSTARTUNF{n}"), "deliveryContext": {"isRedelivery": false}}]});
        line.post_webhook(&webhook_url, &secret, body.to_string().into_bytes()).await?;
        line.set_blocked(&user, true)?;
    }
    if !blockers.is_empty() {
        let ids: Vec<&str> = blockers.iter().map(|c| c.id.as_str()).collect();
        println!(
            "   {} blocked the account (unfollow webhooks): they get nothing from now on",
            ids.join(" and ")
        );
    }

    Ok(())
}

async fn send_campaign(
    args: &Args,
    line: Option<&FakeLine>,
    client: &LineClient,
    store: &dyn LinkStore,
    members: &[CustomerId],
    facts: &[CustomerFacts],
    names: &HashMap<CustomerId, String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    println!("\n5. Campaign \"f2-week1\" to that segment: an A/B test of two texts");
    println!(
        "   policy: ≤ 2 messages per user per 7 days, quiet 21:00–09:00 JST, 10 % global holdout"
    );
    let id = CampaignId::new("f2-week1")?;
    let contacts = demo::contacts(store, members, facts, names).await?;
    let campaign = Campaign::ab(
        id.clone(),
        [
            // Personalised: one push per customer.
            Arm::new("name", 1, [MessageTemplate::text(
                "{{name}}さま、ご購入から1週間。使い心地はいかがですか？ 2回目のご注文は送料無料です。",
            )?]),
            // Identical for everyone: multicast, 500 recipients per request.
            Arm::new("plain", 1, [MessageTemplate::text(
                "ご購入から1週間。使い心地はいかがですか？ 2回目のご注文は送料無料です。",
            )?]),
        ],
    )
    .with_aggregation_unit(AggregationUnit::new("f2_week1")?);
    let journal: Arc<dyn DeliveryJournal> =
        Arc::new(SqliteJournal::open(args.dir.join("enishi.sqlite"))?);
    let mut policy = DeliveryPolicy::recommended().with_holdout(Holdout::percent("quickstart", 10));
    let history = SendHistory::from_records_except(
        &journal.sends_since(now - chrono::TimeDelta::days(7)).await?,
        &id,
    );
    let mut plan = Planner::new(&policy).with_history(&history).plan(&campaign, &contacts, now)?;
    if plan.dry_run().deferred > 0 {
        println!(
            "   it is quiet hours in Japan now: a real run would wait until 09:00 JST; this demo \
             plans again without quiet hours so you see it send"
        );
        policy.quiet_hours = None;
        plan = Planner::new(&policy).with_history(&history).plan(&campaign, &contacts, now)?;
    }
    demo::print_dry_run(&plan);
    if args.dry_run {
        println!("   --dry-run: nothing was sent");
        return Ok(());
    }
    let planned = plan.dry_run().recipients;
    println!(
        "   sending {planned} messages (journal: {}):",
        args.dir.join("enishi.sqlite").display()
    );
    let report = demo::send(client, journal, &id, plan).await?;
    for line in report.to_string().lines() {
        println!("   {line}");
    }
    if let Some(line) = line {
        let duplicates = line.duplicate_deliveries().len();
        println!(
            "   the fake LINE server recorded {} deliveries in all (the campaign and the link \
             replies), {duplicates} duplicates",
            line.delivery_count()
        );
        if duplicates > 0 || report.sent != planned {
            return Err(format!("expected {planned} deliveries once each").into());
        }
    }
    Ok(())
}
