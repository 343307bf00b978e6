//! An account-link server: the LINE webhook and the customer's pages (link start, sign-in,
//! done, every failure, unlink) of the `Enishi` app, without campaigns.
//!
//! ```text
//! cargo run --all-features --example link_server
//! ```
//!
//! By default everything is offline: a fake LINE server (testkit) issues link tokens and plays
//! LINE's account-link dialog for the browser, which sends the signed `accountLink` webhook
//! back to `/webhook`. Open the printed `/link/start` URL in a browser and sign in as
//! `demo@example.jp` / `demo`.
//!
//! Environment (all optional):
//! - `LINE_CHANNEL_SECRET` + `LINE_CHANNEL_ACCESS_TOKEN`: use the real LINE platform (and
//!   `https://access.line.me`); register `https://<your host>/webhook` in the console.
//! - `DATABASE_URL`: `postgres://…` (feature `postgres`), `sqlite://path` or an SQLite file path
//!   (feature `sqlite`); in memory otherwise.
//! - `ECFORCE_BASE_URL` + `ECFORCE_API_TOKEN` (feature `ecforce`, on by default): customers sign
//!   in with their ecforce shop account, and every new link is written back to the customer's
//!   `line_id` field (retried; it never blocks storing the link). Without them, the demo
//!   customer is used.
//! - `LINE_CHANNEL_ID` (store scope, default `demo`), `ENISHI_ADDR` (default `127.0.0.1:8080`),
//!   `PUBLIC_URL` (default `http://ENISHI_ADDR`), `SHOP_NAME` (the pages' shop name).
//! - `ENISHI_LOGIN_ATTEMPTS` / `ENISHI_LOGIN_WINDOW_MINUTES`: failed password attempts allowed
//!   per client address (default 10 per 15 minutes); `ENISHI_TRUSTED_PROXIES`: how many proxies
//!   of yours append to `X-Forwarded-For` (default 0: the header is ignored, since anyone can
//!   send it).

#[path = "support/report.rs"]
mod report;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use enishi::LineUserId;
use enishi::app::{Brand, Enishi, EnishiBuilder, Pages};
use enishi::commerce::{AuthError, CustomerAuthenticator, Password};
use enishi::line::LineClient;
use enishi::line::webhook::ChannelSecret;
use enishi::link::{AttemptLimit, ForwardedFor};
use enishi::storage::Storage;
use enishi::testkit::{FakeDialog, FakeLine};

/// Demo customers (replace with the commerce backend's authenticator).
#[derive(Debug)]
struct DemoCustomers;

#[async_trait::async_trait]
impl CustomerAuthenticator for DemoCustomers {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<enishi::CustomerId, AuthError> {
        match (email, password.expose()) {
            ("demo@example.jp", "demo") => {
                Ok(enishi::CustomerId::new("C-1001").expect("non-empty"))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

/// Demo stand-in for the rich-menu postback: issues a link token for `?user=U…` and sends the
/// browser to the link page.
async fn link_start(State(app): State<Enishi>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let user = q.iter().find(|(k, _)| k == "user").map(|(_, v)| v.as_str()).unwrap_or_default();
    let (Ok(user), Some(linker)) = (LineUserId::new(user), app.linker()) else {
        return (StatusCode::BAD_REQUEST, "?user=U… (a LINE user ID) is required\n")
            .into_response();
    };
    match linker.start(&user, app.now()).await {
        Ok(started) => Redirect::to(started.link_url.as_str()).into_response(),
        Err(e) => {
            eprintln!("link start failed: {}", report::render(&e));
            (StatusCode::BAD_GATEWAY, "LINE refused the link token\n").into_response()
        }
    }
}

/// The shop sign-in: ecforce (with link write-back) when `ECFORCE_BASE_URL` and
/// `ECFORCE_API_TOKEN` are set, the demo customer otherwise.
fn with_shop_login(app: EnishiBuilder) -> Result<EnishiBuilder, Box<dyn std::error::Error>> {
    match (std::env::var("ECFORCE_BASE_URL"), std::env::var("ECFORCE_API_TOKEN")) {
        #[cfg(feature = "ecforce")]
        (Ok(base_url), Ok(token)) => {
            eprintln!("shop login: ecforce at {base_url}");
            let shop = Arc::new(enishi::commerce::EcforceClient::builder(base_url, token).build()?);
            Ok(app.authenticator(shop.clone()).commerce(shop).link_write_back(true))
        }
        #[cfg(not(feature = "ecforce"))]
        (Ok(_), Ok(_)) => Err("ECFORCE_BASE_URL is set: build with --features ecforce".into()),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            Err("set both ECFORCE_BASE_URL and ECFORCE_API_TOKEN (or neither, for the demo)".into())
        }
        (Err(_), Err(_)) => {
            eprintln!("shop login: demo customer demo@example.jp / demo");
            Ok(app.authenticator(Arc::new(DemoCustomers)))
        }
    }
}

async fn storage_from_env(channel: &str) -> Result<Storage, Box<dyn std::error::Error>> {
    let url = match std::env::var("DATABASE_URL") {
        Err(_) => "memory:".to_owned(),
        Ok(url) if url.contains("://") => url,
        Ok(path) => format!("sqlite://{}", path.trim_start_matches("sqlite:")),
    };
    Ok(Storage::builder(&url).channel(channel).open().await?)
}

/// An account-link server (webhook and the customer's pages); offline by default. The real
/// services are configured through the environment (see the source's header).
#[derive(clap::Parser)]
#[command(name = "link_server", version)]
struct Args {
    /// Where to listen.
    #[arg(long, env = "ENISHI_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// The URL browsers and LINE reach this server at (default: http://ADDR).
    #[arg(long, env = "PUBLIC_URL")]
    public_url: Option<String>,
    /// The LINE channel the link store is scoped to.
    #[arg(long, env = "LINE_CHANNEL_ID", default_value = "demo")]
    channel: String,
    /// The shop's name on the pages and in the LINE replies.
    #[arg(long, env = "SHOP_NAME", default_value = "デモショップ")]
    shop_name: String,
    /// Failed password attempts allowed per client address in one window.
    #[arg(long, env = "ENISHI_LOGIN_ATTEMPTS", default_value_t = 10)]
    login_attempts: u32,
    /// The window of --login-attempts, in minutes.
    #[arg(long, env = "ENISHI_LOGIN_WINDOW_MINUTES", default_value_t = 15)]
    login_window_minutes: u64,
    /// How many proxies of yours append the client to X-Forwarded-For (0: ignore the header,
    /// which anyone can forge).
    #[arg(long, env = "ENISHI_TRUSTED_PROXIES", default_value_t = 0)]
    trusted_proxies: u8,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Args = clap::Parser::parse();
    report::exit(run(args).await)
}

/// LINE: the real platform from the environment, or a fake one with its dialog for browsers.
async fn line(
    public_url: &str,
) -> Result<(LineClient, ChannelSecret, Option<(FakeLine, FakeDialog)>), Box<dyn std::error::Error>>
{
    if let (Ok(secret), Ok(token)) =
        (std::env::var("LINE_CHANNEL_SECRET"), std::env::var("LINE_CHANNEL_ACCESS_TOKEN"))
    {
        return Ok((LineClient::new(token)?, ChannelSecret::new(secret), None));
    }
    let fake = FakeLine::start().await?;
    let client = LineClient::builder()
        .channel_access_token(fake.channel_access_token())
        .base_url(fake.api_base_url())
        .data_base_url(fake.data_base_url())
        .build()?;
    let secret = ChannelSecret::new("demo-channel-secret");
    let dialog =
        fake.serve_account_link_dialog(format!("{public_url}/webhook"), secret.clone()).await?;
    Ok((client, secret, Some((fake, dialog))))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let forwarded = match args.trusted_proxies {
        0 => ForwardedFor::Ignore,
        n => ForwardedFor::TrustedProxies(n),
    };
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{}", args.addr));
    let (client, secret, fake) = line(&public_url).await?;
    let limit = AttemptLimit::new(
        args.login_attempts,
        Duration::from_secs(args.login_window_minutes.saturating_mul(60)),
    );
    let mut app = Enishi::builder()
        .line(client)
        .storage(storage_from_env(&args.channel).await?)
        .channel_secret(secret)
        .public_url(&public_url)
        .forwarded_for(forwarded)
        .password_attempt_limit(limit)
        .pages(Pages::builder().brand(Brand::new(args.shop_name)).build()?);
    if let Some((_, dialog)) = &fake {
        app = app.line_access_base_url(dialog.base_url());
    }
    let app = with_shop_login(app)?.build()?;
    let routes = Router::new()
        .route("/link/start", get(link_start))
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "enishi link_server\n") }),
        )
        .with_state(app.clone())
        .merge(app.router());

    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    eprintln!("webhook: {public_url}/webhook");
    if fake.is_some() {
        eprintln!(
            "offline demo: open {public_url}/link/start?user=U{:032x} and sign in as demo@example.jp / demo",
            1
        );
    }
    // The connecting address limits password attempts per client.
    axum::serve(listener, routes.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
