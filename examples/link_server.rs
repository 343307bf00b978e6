//! An account-link server: the LINE webhook, the link start, a minimal shop login page and the
//! completion page.
//!
//! ```text
//! cargo run --all-features --example link_server
//! ```
//!
//! By default everything is offline: a fake LINE server (testkit) issues link tokens, and this
//! server also plays LINE's account-link dialog at `/dialog/bot/accountLink`, which sends the
//! signed `accountLink` webhook back to `/webhook`. Open the printed `/link/start` URL in a
//! browser and log in as `demo@example.jp` / `demo`.
//!
//! Environment (all optional):
//! - `LINE_CHANNEL_SECRET` + `LINE_CHANNEL_ACCESS_TOKEN`: use the real LINE platform (and
//!   `https://access.line.me`); register `https://<your host>/webhook` in the console.
//! - `DATABASE_URL`: `postgres://…` (feature `postgres`) or an SQLite file path (feature
//!   `sqlite`); in-memory otherwise.
//! - `ECFORCE_BASE_URL` + `ECFORCE_API_TOKEN` (feature `ecforce`, on by default): customers log
//!   in with their ecforce shop account (the ecforce client is the `CustomerAuthenticator`), and
//!   every new link is written back to the customer's `line_id` field (retried; it never blocks
//!   storing the link). Without them, the demo customer below is used.
//! - `LINE_CHANNEL_ID` (store scope, default `demo`), `ENISHI_ADDR` (default `127.0.0.1:8080`),
//!   `PUBLIC_URL` (default `http://ENISHI_ADDR`).
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
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use enishi::commerce::{AuthError, CustomerAuthenticator, Password};
use enishi::line::LineClient;
use enishi::line::webhook::{ChannelSecret, MemoryDedup, WebhookService};
use enishi::link::{
    AccountLinker, AttemptLimit, ForwardedFor, LinkEventHandler, LinkStore, LoginFailure,
    MemoryLinkStore, client_ip,
};
use enishi::testkit::FakeLine;
use enishi::{CustomerId, LineUserId};

/// Demo customers (replace with the commerce backend's authenticator).
#[derive(Debug)]
struct DemoCustomers;

#[async_trait::async_trait]
impl CustomerAuthenticator for DemoCustomers {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<CustomerId, AuthError> {
        match (email, password.expose()) {
            ("demo@example.jp", "demo") => Ok(CustomerId::new("C-1001").expect("non-empty")),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

#[derive(Clone)]
struct AppState {
    linker: AccountLinker,
    fake: Option<Arc<FakeLine>>,
    secret: ChannelSecret,
    public_url: String,
    forwarded: ForwardedFor,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
         <title>{title}</title><h1>{title}</h1>{body}"
    ))
}

/// Demo stand-in for the rich-menu postback: issues a link token for `?user=U…`.
async fn link_start(
    State(app): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let user = q.iter().find(|(k, _)| k == "user").map(|(_, v)| v.as_str()).unwrap_or_default();
    let Ok(user) = LineUserId::new(user) else {
        return (StatusCode::BAD_REQUEST, page("Bad request", "<p>?user=U… is required</p>"))
            .into_response();
    };
    match app.linker.start(&user, Utc::now()).await {
        Ok(started) => Redirect::to(started.link_url.as_str()).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, page("Error", &escape(&e.to_string()))).into_response(),
    }
}

/// The shop's login page for linking.
async fn login_page(Query(q): Query<Vec<(String, String)>>) -> Html<String> {
    let token =
        q.iter().find(|(k, _)| k == "linkToken").map(|(_, v)| v.as_str()).unwrap_or_default();
    page(
        "ショップアカウントと連携",
        &format!(
            "<p>ログインすると LINE アカウントと連携します。連携はいつでも解除できます。</p>\
             <form method=post action=/link><input type=hidden name=linkToken value=\"{}\">\
             <p><input name=email type=email placeholder=email></p>\
             <p><input name=password type=password placeholder=password></p>\
             <button>ログインして連携</button></form>",
            escape(token)
        ),
    )
}

async fn login_submit(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get =
        |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let token = enishi::line::LinkToken::from_received(get("linkToken"));
    let password = Password::new(get("password"));
    let client = client_ip(peer.ip(), &headers, app.forwarded);
    match app
        .linker
        .complete_with_password(&token, &get("email"), &password, client, Utc::now())
        .await
    {
        // 303: the browser GETs LINE's dialog, which checks the LINE user and calls the webhook.
        Ok(issued) => Redirect::to(issued.redirect.as_str()).into_response(),
        Err(e) => {
            let failure = e.login_failure();
            if failure == LoginFailure::Unavailable {
                eprintln!("link login failed: {}", error_chain(&e));
            }
            // The same bytes for every cause a class covers (no times, IDs or error text):
            // an unusable link token must not say whether the password was right.
            let body = page(
                failure.default_title(),
                &format!("<p>{}</p>", escape(failure.default_message())),
            );
            let mut response = (failure.status(), body).into_response();
            if let LoginFailure::TryLater { retry_after: Some(wait) } = failure {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
            }
            response
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Offline only: plays LINE's account-link dialog. The opener is the token's own user.
async fn fake_dialog(State(app): State<AppState>, uri: axum::http::Uri) -> Response {
    let Some(fake) = &app.fake else { return StatusCode::NOT_FOUND.into_response() };
    let url = format!("{}{}", app.public_url, uri);
    let token = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "linkToken").map(|(_, v)| v.into_owned()))
        .unwrap_or_default();
    let opener = fake
        .issued_link_tokens()
        .into_iter()
        .find(|t| t.link_token == token)
        .map(|t| t.user_id)
        .unwrap_or_default();
    let webhook = format!("{}/webhook", app.public_url);
    match fake.open_account_link_dialog(&url, &opener, &webhook, &app.secret).await {
        Ok(outcome) => {
            eprintln!("fake LINE dialog: {outcome:?}");
            Redirect::to("/link/done").into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, page("Error", &escape(&e.to_string()))).into_response(),
    }
}

/// Where the browser lands after LINE's dialog. The result arrives by webhook and is replied to
/// the user in LINE (success or not), so this page says only what is true here.
async fn done() -> Html<String> {
    page(
        "LINE アプリに戻ってください",
        "<p>連携の結果は LINE のトークにメッセージでお知らせします。</p>",
    )
}

/// The shop login: ecforce sign-in plus link write-back when `ECFORCE_BASE_URL` and
/// `ECFORCE_API_TOKEN` are set, the demo customer otherwise.
fn with_shop_login(
    linker: enishi::link::AccountLinkerBuilder,
) -> Result<enishi::link::AccountLinkerBuilder, Box<dyn std::error::Error>> {
    match (std::env::var("ECFORCE_BASE_URL"), std::env::var("ECFORCE_API_TOKEN")) {
        #[cfg(feature = "ecforce")]
        (Ok(base_url), Ok(token)) => {
            eprintln!("shop login: ecforce at {base_url}");
            let shop = Arc::new(enishi::commerce::EcforceClient::builder(base_url, token).build()?);
            let backend: Arc<dyn enishi::commerce::CommerceBackend> = shop.clone();
            Ok(linker
                .authenticator(shop)
                .write_back(Arc::new(backend), enishi::link::WriteBackRetry::default()))
        }
        #[cfg(not(feature = "ecforce"))]
        (Ok(_), Ok(_)) => Err("ECFORCE_BASE_URL is set: build with --features ecforce".into()),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            Err("set both ECFORCE_BASE_URL and ECFORCE_API_TOKEN (or neither, for the demo)".into())
        }
        (Err(_), Err(_)) => {
            eprintln!("shop login: demo customer demo@example.jp / demo");
            Ok(linker.authenticator(Arc::new(DemoCustomers)))
        }
    }
}

async fn store_from_env(channel: &str) -> Result<Arc<dyn LinkStore>, Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Ok(Arc::new(MemoryLinkStore::new()));
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(
            enishi::link::PostgresLinkStore::connect(&url, "enishi", channel).await?,
        ));
        #[cfg(not(feature = "postgres"))]
        return Err("DATABASE_URL is PostgreSQL: build with --features postgres".into());
    }
    #[cfg(feature = "sqlite")]
    return Ok(Arc::new(enishi::link::SqliteLinkStore::open(
        url.trim_start_matches("sqlite:"),
        channel,
    )?));
    #[cfg(not(feature = "sqlite"))]
    Err("DATABASE_URL is an SQLite path: build with --features sqlite".into())
}

/// An account-link server (webhook, link start, shop login, completion page); offline by
/// default. The real services are configured through the environment (see the source's header).
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

async fn run(
    Args { addr, public_url, channel, login_attempts, login_window_minutes, trusted_proxies }: Args,
) -> Result<(), Box<dyn std::error::Error>> {
    let forwarded = match trusted_proxies {
        0 => ForwardedFor::Ignore,
        n => ForwardedFor::TrustedProxies(n),
    };
    let public_url = public_url.unwrap_or_else(|| format!("http://{addr}"));
    let real =
        match (std::env::var("LINE_CHANNEL_SECRET"), std::env::var("LINE_CHANNEL_ACCESS_TOKEN")) {
            (Ok(secret), Ok(token)) => Some((secret, token)),
            _ => None,
        };
    let (client, secret, fake, access) = match real {
        Some((secret, token)) => (
            LineClient::new(token)?,
            ChannelSecret::new(secret),
            None,
            enishi::link::DEFAULT_ACCESS_BASE_URL.to_owned(),
        ),
        None => {
            let fake = FakeLine::start().await?;
            let client = LineClient::builder()
                .channel_access_token(fake.channel_access_token())
                .base_url(fake.api_base_url())
                .data_base_url(fake.data_base_url())
                .build()?;
            (
                client,
                ChannelSecret::new("demo-channel-secret"),
                Some(Arc::new(fake)),
                public_url.clone(),
            )
        }
    };
    let linker = AccountLinker::builder(
        client,
        store_from_env(&channel).await?,
        format!("{public_url}/link"),
    )
    .access_base_url(access)
    .password_attempt_limit(AttemptLimit::new(
        login_attempts,
        Duration::from_secs(login_window_minutes.saturating_mul(60)),
    ));
    let linker = with_shop_login(linker)?.build()?;
    let webhook = WebhookService::builder(secret.clone())
        .dedup(MemoryDedup::default())
        .handle_before_responding(true)
        .build(LinkEventHandler::new(linker.clone()));
    let offline = fake.is_some();
    let state = AppState { linker, fake, secret, public_url: public_url.clone(), forwarded };
    let app = Router::new()
        .route("/link/start", get(link_start))
        .route("/link", get(login_page).post(login_submit))
        .route("/link/done", get(done))
        .route("/dialog/bot/accountLink", get(fake_dialog))
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "enishi link_server\n") }),
        )
        .with_state(state)
        .merge(webhook.router("/webhook"));

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("webhook: {public_url}/webhook");
    if offline {
        eprintln!(
            "offline demo: open {public_url}/link/start?user=U{:032x} and log in as demo@example.jp / demo",
            1
        );
    }
    // The connecting address limits password attempts per client.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
