//! Plan and send one campaign to a segment: dry run, then delivery through the journal with a
//! report, through the `Enishi` app.
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
//! journal from `DATABASE_URL` (an SQLite file such as the one `link_server` writes, or a
//! `postgres://` URL). Always start with
//! `--dry-run` against a real channel.
//!
//! Exit codes: 0 sent (or planned, with `--dry-run`); 1 an error; 2 a usage error; 3 the
//! campaign is paused (e.g. LINE's monthly quota ran out: resume by running again); 4 some
//! batches failed (see the report); 5 the budget (`--budget-messages`, `--budget-yen`) does not
//! allow the send. Every run prints the forecast first: messages, quota left and cost.

#[path = "support/demo.rs"]
mod demo;
#[path = "support/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory as _, Parser};
use enishi::CampaignId;
use enishi::app::{AppError, Enishi, EnishiBuilder};
use enishi::campaign::forecast::{Budget, Forecast, QuotaStatus, SendStep, Tariff};
use enishi::campaign::{Arm, Campaign, DeliveryPolicy, Holdout, MessageTemplate, RunStatus};
use enishi::commerce::EcforceClient;
use enishi::line::LineClient;
use enishi::segment::{Schema, SegmentDefinition};
use enishi::storage::Storage;
use enishi::testkit::{FakeEcforce, FakeLine};

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
    /// The channel's LINE plan, for the cost forecast (free messages and the price above them:
    /// communication 200, light 5,000, standard 30,000).
    #[arg(long, value_enum, default_value_t = LinePlan::Light)]
    line_plan: LinePlan,
    /// The most messages this send may use: over it, the send is refused (see
    /// docs/coexistence.md for trimming lower-priority steps of several sends).
    #[arg(long, value_name = "N")]
    budget_messages: Option<u64>,
    /// The most yen this send may add to the month's bill: over it, the send is refused.
    #[arg(long, value_name = "YEN")]
    budget_yen: Option<u64>,
    /// Offline demo: customers in the generated shop.
    #[arg(long, default_value_t = 1_000)]
    customers: u64,
}

/// LINE's plans for shops in Japan (the tariff behind the cost forecast).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LinePlan {
    Communication,
    Light,
    Standard,
}

impl LinePlan {
    fn tariff(self) -> Tariff {
        match self {
            Self::Communication => Tariff::communication(),
            Self::Light => Tariff::light(),
            Self::Standard => Tariff::standard(),
        }
    }
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

/// The app, and the fakes it talks to in the offline demo.
struct Setup {
    app: Enishi,
    /// The fakes, kept alive for the offline demo.
    fakes: Option<(FakeLine, FakeEcforce)>,
}

async fn offline(args: &Args) -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = PathBuf::from("target/enishi-send-campaign");
    std::fs::create_dir_all(&dir)
        .map_err(|e| report::Context::new(format!("creating {}", dir.display()), e))?;
    let demo::Fakes { line, ecforce, client, shop_api, .. } =
        demo::start_fakes(args.customers).await?;
    let db = dir.join("enishi.sqlite");
    let app = builder(args, client, Storage::open(&db).await?, shop_api).build()?;
    eprintln!("offline demo: {} generated customers; data in {}", args.customers, db.display());
    Ok(Setup { app, fakes: Some((line, ecforce)) })
}

async fn real(args: &Args, token: String) -> Result<Setup, Box<dyn std::error::Error>> {
    let need = |name: &str| {
        std::env::var(name)
            .map_err(|_| format!("{name} must be set when LINE_CHANNEL_ACCESS_TOKEN is"))
    };
    let (base_url, api_token) = (need("ECFORCE_BASE_URL")?, need("ECFORCE_API_TOKEN")?);
    let channel = std::env::var("LINE_CHANNEL_ID").unwrap_or_else(|_| "demo".into());
    // A file path (the one `link_server` writes), `sqlite://…` or `postgres://…`.
    let url = need("DATABASE_URL")?;
    let url = if url.contains("://") { url } else { format!("sqlite://{url}") };
    let storage = Storage::builder(url).channel(channel).open().await?;
    let shop = Arc::new(EcforceClient::builder(base_url, api_token).build()?);
    let app = builder(args, LineClient::new(token)?, storage, shop).build()?;
    Ok(Setup { app, fakes: None })
}

fn builder(
    args: &Args,
    line: LineClient,
    storage: Storage,
    shop: Arc<EcforceClient>,
) -> EnishiBuilder {
    let mut policy = DeliveryPolicy::recommended();
    if args.holdout > 0 {
        policy = policy.with_holdout(Holdout::percent("global", args.holdout));
    }
    let app = Enishi::builder().line(line).storage(storage).commerce(shop).policy(policy);
    // A typo (`attr opt_inn != true`) would otherwise target everyone: checked unless asked.
    if args.unchecked { app.unchecked_segments() } else { app }
}

/// What the flags describe: the segment and the campaign.
struct Input {
    def: SegmentDefinition,
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
        Ok(Self { def, campaign })
    }
}

async fn run(args: Args, input: Input) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Input { def, campaign } = input;
    let setup = match std::env::var("LINE_CHANNEL_ACCESS_TOKEN") {
        Ok(token) => real(&args, token).await?,
        Err(_) => offline(&args).await?,
    };
    let app = setup.app;
    let synced = app.sync().await?;
    if setup.fakes.is_some() {
        // The generated shop sells these even if no generated customer bought one.
        let mut catalogue = Schema::new();
        demo::PRODUCTS.iter().for_each(|p| catalogue.add_product(*p));
        app.declare(&catalogue).await;
    }
    let plan = match app.plan(&campaign, &def).await {
        Err(AppError::Segment(e)) => {
            return Err(format!("--segment: {e} (--unchecked skips this check)").into());
        }
        plan => plan?,
    };
    println!("segment: {} of {} customers", plan.dry_run().candidates, synced.customers);
    demo::print_dry_run(&plan);
    // What the send costs this month, against the quota LINE reports; a budget refuses it.
    let mut budget = Budget::new();
    if let Some(n) = args.budget_messages {
        budget = budget.max_messages(n);
    }
    if let Some(yen) = args.budget_yen {
        budget = budget.max_yen(yen);
    }
    let quota = QuotaStatus::fetch(app.line()).await?;
    let forecast = Forecast::new(args.line_plan.tariff(), quota)
        .step(SendStep::campaign(plan.dry_run(), 0))
        .budget(budget)
        .run();
    print!("{forecast}");
    if forecast.refused || !forecast.dropped.is_empty() {
        println!("the budget does not allow this send: nothing was sent");
        return Ok(ExitCode::from(5));
    }
    if args.dry_run {
        println!("--dry-run: nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }
    let report = app.send(plan).await?;
    println!("{report}");
    Ok(match report.status {
        RunStatus::Paused { .. } => ExitCode::from(3),
        _ if !report.failed.is_empty() => ExitCode::from(4),
        _ => ExitCode::SUCCESS,
    })
}
