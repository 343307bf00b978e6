//! Plan and send one campaign to a segment: dry run, then delivery through the journal with a
//! progress bar and a report.
//!
//! ```sh
//! cargo run --all-features --example send_campaign -- --help
//! cargo run --all-features --example send_campaign -- \
//!     --segment 'line linked and orders count >= 2' \
//!     --message '{{name}}さま、いつもありがとうございます。' --holdout 10 --dry-run
//! ```
//!
//! Offline by default: a fake ecforce shop with generated customers (60 % of them already
//! linked to LINE), a fake LINE server, and the link store and delivery journal in SQLite under
//! `target/enishi-send-campaign/`. With `LINE_CHANNEL_ACCESS_TOKEN` set it sends through that
//! channel, reading customers from `ECFORCE_BASE_URL` + `ECFORCE_API_TOKEN` and links and the
//! journal from the SQLite file `DATABASE_URL` (the one `link_server` writes). Always start with
//! `--dry-run` against a real channel.
//!
//! Exit codes: 0 sent (or planned, with `--dry-run`); 1 an error; 2 a usage error; 3 the
//! campaign is paused (e.g. LINE's monthly quota ran out: resume by running again); 4 some
//! batches failed (see the report).

#[path = "support/demo.rs"]
mod demo;
#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::{CommandFactory as _, Parser};
use enishi::campaign::{
    Arm, Campaign, DeliveryJournal, DeliveryPolicy, Holdout, MessageTemplate, Planner, RunStatus,
    SendHistory, SqliteJournal,
};
use enishi::commerce::sync::{Dataset, Syncer};
use enishi::commerce::{CommerceBackend, EcforceClient};
use enishi::line::LineClient;
use enishi::link::{BackendLinkImport, LinkStore, SqliteLinkStore};
use enishi::segment::{Context, Engine, Schema, SegmentDefinition};
use enishi::testkit::{FakeEcforce, FakeLine};
use enishi::{CampaignId, CustomerId};

/// Plan and send one LINE campaign to a segment of shop customers.
#[derive(Debug, Parser)]
#[command(name = "send_campaign", version)]
struct Args {
    /// The segment: DSL text, or @FILE to read it from a file (see docs/segments.md).
    #[arg(long, value_name = "DSL|@FILE")]
    segment: String,
    /// The message text; `{{name}}` and `{{orders}}` are filled per customer (push), plain text
    /// goes by multicast.
    #[arg(long, value_name = "TEXT")]
    message: String,
    /// A second text: the campaign becomes an A/B test with two equal arms.
    #[arg(long, value_name = "TEXT")]
    message_b: Option<String>,
    /// The campaign ID (letters, digits and `_.:-`); a re-run with the same ID resumes it.
    #[arg(long, default_value = "send-campaign")]
    campaign: String,
    /// Percent of all customers kept out of every campaign, to measure uplift against.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    holdout: u8,
    /// Plan and print what would be sent, but send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Skip checking the segment against the customers' data (unknown attributes, wrong
    /// types, unknown products): a misspelt attribute is then simply missing for everyone.
    #[arg(long)]
    unchecked: bool,
    /// Offline demo: customers in the generated shop.
    #[arg(long, default_value_t = 1_000)]
    customers: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // A segment, campaign ID or message the flags got wrong is a usage error (status 2).
    let input = match Input::from_args(&args) {
        Ok(input) => input,
        Err(e) => Args::command().error(clap::error::ErrorKind::ValueValidation, e).exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, input)) {
        Ok(code) => code,
        Err(e) => {
            report::report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// Where the customers, links and journal come from, and the client to send with.
struct Setup {
    client: LineClient,
    store: Arc<dyn LinkStore>,
    journal: Arc<dyn DeliveryJournal>,
    dataset: Dataset,
    /// The fakes, kept alive for the offline demo.
    _fakes: Option<(FakeLine, FakeEcforce)>,
}

async fn offline(customers: u64) -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = PathBuf::from("target/enishi-send-campaign");
    std::fs::create_dir_all(&dir)
        .map_err(|e| report::Context::new(format!("creating {}", dir.display()), e))?;
    let demo::Fakes { line, ecforce, client, shop_api, .. } = demo::start_fakes(customers).await?;
    let db = dir.join("enishi.sqlite");
    let store: Arc<dyn LinkStore> = Arc::new(SqliteLinkStore::open(&db, "demo")?);
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&db)?);
    let dataset = Dataset::new();
    let backend: &dyn CommerceBackend = shop_api.as_ref();
    Syncer::new(backend).run(&BackendLinkImport::new(store.clone(), &dataset)).await?;
    eprintln!("offline demo: {customers} generated customers; data in {}", db.display());
    Ok(Setup { client, store, journal, dataset, _fakes: Some((line, ecforce)) })
}

async fn real(token: String) -> Result<Setup, Box<dyn std::error::Error>> {
    let need = |name: &str| {
        std::env::var(name)
            .map_err(|_| format!("{name} must be set when LINE_CHANNEL_ACCESS_TOKEN is"))
    };
    let (base_url, api_token) = (need("ECFORCE_BASE_URL")?, need("ECFORCE_API_TOKEN")?);
    let db = demo::sqlite_path(&need("DATABASE_URL")?)?;
    let channel = std::env::var("LINE_CHANNEL_ID").unwrap_or_else(|_| "demo".into());
    let client = LineClient::new(token)?;
    let backend = EcforceClient::builder(base_url, api_token).build()?;
    let store: Arc<dyn LinkStore> = Arc::new(SqliteLinkStore::open(&db, &channel)?);
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&db)?);
    let dataset = Dataset::new();
    let shop: &dyn CommerceBackend = &backend;
    Syncer::new(shop).run(&BackendLinkImport::new(store.clone(), &dataset)).await?;
    Ok(Setup { client, store, journal, dataset, _fakes: None })
}

/// What the flags describe: the segment, the campaign's ID and the campaign.
struct Input {
    def: SegmentDefinition,
    id: CampaignId,
    campaign: Campaign,
}

impl Input {
    fn from_args(args: &Args) -> Result<Self, String> {
        let text = match args.segment.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("--segment {path}: {e}"))?
            }
            None => args.segment.clone(),
        };
        let def = SegmentDefinition::parse(&text).map_err(|e| format!("--segment: {e}"))?;
        let id = CampaignId::new(&args.campaign).map_err(|e| format!("--campaign: {e}"))?;
        let template =
            |flag: &str, t: &str| MessageTemplate::text(t).map_err(|e| format!("{flag}: {e}"));
        let campaign = match &args.message_b {
            None => Campaign::new(id.clone(), [template("--message", &args.message)?]),
            Some(b) => Campaign::ab(
                id.clone(),
                [
                    Arm::new("a", 1, [template("--message", &args.message)?]),
                    Arm::new("b", 1, [template("--message-b", b)?]),
                ],
            ),
        };
        Ok(Self { def, id, campaign })
    }
}

async fn run(args: Args, input: Input) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Input { def, id, campaign } = input;

    let setup = match std::env::var("LINE_CHANNEL_ACCESS_TOKEN") {
        Ok(token) => real(token).await?,
        Err(_) => offline(args.customers).await?,
    };
    let now = Utc::now();
    let mut facts = setup.dataset.segment_facts();
    demo::apply_link_status(setup.store.as_ref(), &mut facts).await?;
    let mut engine = Engine::new(Context::new(now));
    for f in &facts {
        engine.upsert_customer(f.clone());
    }
    if setup._fakes.is_some() {
        // The generated shop sells these even if no generated customer bought one.
        let mut catalogue = Schema::new();
        demo::PRODUCTS.iter().for_each(|p| catalogue.add_product(*p));
        engine.declare(&catalogue);
    }
    // A typo (`attr opt_inn != true`) would otherwise target everyone: check it against the data.
    if !args.unchecked {
        engine
            .validate(&def)
            .map_err(|e| format!("--segment: {e} (--unchecked skips this check)"))?;
    }
    engine.register_unchecked("target", def)?;
    let members = engine.members("target")?.to_vec();
    println!("segment: {} of {} customers", members.len(), facts.len());

    let mut names: HashMap<CustomerId, String> = HashMap::new();
    setup.dataset.for_each_customer(|c| {
        if let Some(n) = &c.name {
            names.insert(c.id.clone(), n.clone());
        }
    });
    let contacts = demo::contacts(setup.store.as_ref(), &members, &facts, &names).await?;
    let mut policy = DeliveryPolicy::recommended();
    if args.holdout > 0 {
        policy = policy.with_holdout(Holdout::percent("global", args.holdout));
    }
    let history = SendHistory::from_records_except(
        &setup.journal.sends_since(now - chrono::TimeDelta::days(7)).await?,
        &id,
    );
    let plan = Planner::new(&policy).with_history(&history).plan(&campaign, &contacts, now)?;
    demo::print_dry_run(&plan);
    if args.dry_run {
        println!("--dry-run: nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }
    let report = demo::send(&setup.client, setup.journal.clone(), &id, plan).await?;
    println!("{report}");
    Ok(match report.status {
        RunStatus::Paused { .. } => ExitCode::from(3),
        _ if !report.failed.is_empty() => ExitCode::from(4),
        _ => ExitCode::SUCCESS,
    })
}
