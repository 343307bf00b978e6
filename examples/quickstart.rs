//! The enishi tour, offline, on embedded defaults, through the app: a fake ecforce shop and
//! a fake LINE account in-process; the `Enishi` app on an SQLite file syncs the shop, customers
//! link through its link pages (postback → link URL → sign-in → LINE's dialog → `accountLink`
//! webhook) and two block the account; a segment with its funnel and one explanation; a
//! campaign planned (dry run) and sent, checked against the fake LINE server's record.
//!
//! ```sh
//! cargo run --all-features --example quickstart            # `-- --dry-run`: plan only
//! ```

#[path = "support/demo.rs"]
mod demo;
#[path = "support/report.rs"]
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;
use enishi::AggregationUnit;
use enishi::app::Enishi;
use enishi::campaign::{Arm, Campaign, DeliveryPolicy, Holdout, MessageTemplate};
use enishi::line::webhook::ChannelSecret;
use enishi::segment::{Context, Engine, Schema, SegmentDefinition, evaluate};
use enishi::storage::Storage;
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
    /// Where the SQLite file goes (recreated on each run).
    #[arg(long, default_value = "target/enishi-quickstart")]
    dir: PathBuf,
}

const SEGMENT: &str = r#"line linked and line following
    and orders count = 1
    and first_order age >= 7d
    and never bought {product = "serum-subscription"}"#;

#[tokio::main]
async fn main() -> ExitCode {
    report::exit(tour(Args::parse()).await)
}

async fn tour(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    println!("enishi quickstart: link LINE users to shop customers, then message the right ones\n");
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let demo::Fakes { line, ecforce, shop, client, shop_api } =
        demo::start_fakes(args.customers).await?;
    println!("1. A shop on ecforce with {} customers, and its LINE account", shop.customers.len());

    // 2. The app: LINE, the shop, one storage, one policy; its routes served on a local port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let secret = ChannelSecret::new("quickstart-channel-secret");
    let app = Enishi::builder()
        .line(client)
        .storage(Storage::open(args.dir.join("enishi.sqlite")).await?)
        .commerce(shop_api.clone())
        .authenticator(shop_api)
        .channel_secret(secret.clone())
        .public_url(&base)
        .consent_attribute("opt_in")
        .policy(DeliveryPolicy::recommended().with_holdout(Holdout::percent("quickstart", 10)))
        .build()?;
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let synced = app.sync().await?;
    let (records, imported) = (synced.records, synced.imported_links);
    println!(
        "\n2. Synced {records} records; {imported} LINE links imported from ecforce's line_id"
    );

    // 3. Customers link through the link pages; two block the account.
    println!("\n3. Five customers link their LINE account through the link URL on the rich menu");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let site =
        demo::Site { http: &http, line: &line, ecforce: &ecforce, base: &base, secret: &secret };
    for c in shop.customers.iter().filter(|c| c.line_user_id.is_none()).take(5) {
        let user = demo::link_via_pages(&site, c, Utc::now(), None).await?;
        println!("   customer {} linked LINE user {}…", c.id, &user.as_str()[..9]);
    }
    for c in shop.customers.iter().filter(|c| c.line_user_id.is_some()).take(2) {
        let user = c.line_user_id.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default();
        demo::block(&line, &base, &secret, &user, Utc::now()).await?;
        println!("   customer {} blocked the account: they get nothing from now on", c.id);
    }
    let synced = app.sync().await?;
    println!("   {} of {} customers are linked", synced.linked, synced.customers);

    // 4. A segment, over the facts the app keeps (link and follow status included).
    println!("\n4. Segment \"F2\": linked, following, one order 7+ days ago, no subscription");
    let def = SegmentDefinition::parse(SEGMENT)?;
    let facts = app.facts().await?;
    let mut engine = Engine::new(Context::new(app.now()));
    facts.iter().for_each(|f| engine.upsert_customer(f.clone()));
    let mut catalogue = Schema::new();
    demo::PRODUCTS.iter().for_each(|p| catalogue.add_product(*p));
    engine.declare(&catalogue);
    app.declare(&catalogue).await;
    engine.register("f2", def.clone())?;
    let members = engine.members("f2")?;
    println!("   {} of {} customers are in it", members.len(), facts.len());
    for (step, left) in &engine.funnel("f2")?.steps {
        println!("   {left:>6}  after {step}");
    }
    let outsider = facts.iter().find(|f| f.line.linked && !members.contains(&f.id));
    if let Some(outsider) = outsider {
        println!("   why is customer {} not in it?", outsider.id);
        let why = evaluate(&def, outsider, &Context::new(app.now()))?;
        why.explain.to_string().lines().take(8).for_each(|l| println!("     {l}"));
    }
    let snapshot = json!({"now": app.now(), "customers": facts});
    std::fs::write(args.dir.join("snapshot.json"), serde_json::to_vec(&snapshot)?)?;
    std::fs::write(args.dir.join("f2.seg"), SEGMENT)?;

    // 5. The campaign: plan (dry run), then send through the journal and dispatcher.
    println!(
        "\n5. Campaign \"f2-week1\": A/B test of two texts; ≤ 2 sends/user/7 days, 10 % holdout"
    );
    let campaign = Campaign::ab("f2-week1".parse()?, [
        Arm::new("name", 1, [MessageTemplate::text("{{name}}さま、ご購入から1週間。使い心地はいかがですか？ 2回目のご注文は送料無料です。")?]),
        Arm::new("plain", 1, [MessageTemplate::text("ご購入から1週間。使い心地はいかがですか？ 2回目のご注文は送料無料です。")?]),
    ])
    .with_aggregation_unit(AggregationUnit::new("f2_week1")?);
    let mut plan = app.plan(&campaign, &def).await?;
    if plan.dry_run().deferred > 0 {
        println!("   (quiet hours in Japan: a real run waits for 09:00 JST; the demo skips them)");
        let mut policy = app.policy().clone();
        policy.quiet_hours = None;
        plan = app.plan_with(&campaign, &def, &policy).await?;
    }
    plan.dry_run().to_string().lines().for_each(|l| println!("   {l}"));
    if args.dry_run {
        println!("   --dry-run: nothing was sent");
        return Ok(());
    }
    let planned = plan.dry_run().recipients;
    let report = app.send(plan).await?;
    report.to_string().lines().for_each(|l| println!("   {l}"));
    let duplicates = line.duplicate_deliveries().len();
    let delivered = line.delivery_count();
    println!("   the fake LINE server recorded {delivered} deliveries, {duplicates} duplicates");
    if duplicates > 0 || report.sent != planned {
        return Err(format!("expected {planned} deliveries once each").into());
    }
    println!("\nNext: cargo run --all-features --example server -- --demo   # the service");
    Ok(())
}
