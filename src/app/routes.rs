//! The app's HTTP face: the webhook, the link pages, tracked links and health.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{AppError, Enishi};
use crate::campaign::track_route;
use crate::commerce::Password;
use crate::line::LinkToken;
use crate::line::webhook::{Delivery, EventHandler, EventKind, HandlerError, WebhookService};
use crate::link::{LinkError, LinkEventOutcome, LinkStoreError, LoginFailure, client_ip};

/// Feeds webhook events to the link flow (links, follows into the link store) and follow
/// changes to the scenarios.
#[derive(Debug, Clone)]
struct AppEvents {
    app: Enishi,
}

#[async_trait::async_trait]
impl EventHandler for AppEvents {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = &delivery.event;
        // The app's clock, so tickets, links and follows share the scenarios' timeline.
        let now = self.app.now();
        let at = event.time().unwrap_or(now);
        tracing::debug!(target: "enishi::webhook", event = ?event.webhook_event_id, "webhook event");
        let follow = match &self.app.inner.linker {
            Some(linker) => match linker.handle_event(event, now).await {
                Ok(LinkEventOutcome::FollowChanged { line_user, following }) => {
                    Some((line_user, following))
                }
                Ok(_)
                | Err(
                    LinkError::MissingUser
                    | LinkError::Store(LinkStoreError::Rejected { .. } | LinkStoreError::Conflict(_)),
                ) => None,
                Err(e) => return Err(Box::new(e)),
            },
            None => {
                let user = event.source.as_ref().and_then(|s| s.line_user_id());
                let following = match event.kind {
                    EventKind::Follow(_) => Some(true),
                    EventKind::Unfollow => Some(false),
                    _ => None,
                };
                match (user, following) {
                    (Some(user), Some(following)) => {
                        self.app.storage().links().set_following(&user, following, at).await?;
                        Some((user, following))
                    }
                    _ => None,
                }
            }
        };
        if let Some((user, following)) = follow {
            self.app.note_follow(user, following, at).await;
        }
        Ok(())
    }
}

impl Enishi {
    /// The webhook route at `/webhook`: signed, de-duplicated (the storage's de-duplication),
    /// handled before answering so a failure makes LINE redeliver. Link events and follows go
    /// to the link store and the scenarios.
    ///
    /// # Errors
    /// [`AppError::Missing`] without a channel secret.
    pub fn webhook_router(&self) -> Result<Router, AppError> {
        let secret = self
            .inner
            .secret
            .clone()
            .ok_or(AppError::Missing("the channel secret (`channel_secret`)"))?;
        let service = WebhookService::builder(secret)
            .dedup_shared(self.storage().dedup())
            .handle_before_responding(true)
            .build(AppEvents { app: self.clone() });
        Ok(service.router("/webhook"))
    }

    /// The link pages: `GET /link?linkToken=…` (the sign-in form) and `POST /link`, which
    /// signs the customer in and sends the browser on to LINE's account-link dialog. Empty
    /// without a [`public_url`](super::EnishiBuilder::public_url).
    pub fn link_router(&self) -> Router {
        if self.inner.linker.is_none() {
            return Router::new();
        }
        Router::new().route("/link", get(link_form).post(link_submit)).with_state(self.clone())
    }

    /// LINE Login at `/login/line` and `/login/line/callback` (see
    /// [`EnishiBuilder::line_login`](super::EnishiBuilder::line_login)); empty without it.
    pub fn login_router(&self) -> Router {
        if self.inner.line_login.is_none() {
            return Router::new();
        }
        Router::new()
            .route("/login/line", get(login_start))
            .route("/login/line/callback", get(login_callback))
            .with_state(self.clone())
    }

    /// Tracked links at `/t/{token}`: records the click, then redirects. Empty without a
    /// public URL and a tracking key.
    pub fn tracking_router(&self) -> Router {
        match &self.inner.tracker {
            Some(tracker) => {
                Router::new().nest("/t", track_route(tracker.clone(), self.storage().clicks()))
            }
            None => Router::new(),
        }
    }

    /// `/metrics`: the Prometheus text of `handle` (see [`install_prometheus`]).
    pub fn metrics_router(handle: PrometheusHandle) -> Router {
        Router::new().route("/metrics", get(move || async move { handle.render() }))
    }

    /// Every route: webhook (with a channel secret), link pages, tracked links, `/healthz`
    /// (the process answers) and `/readyz` (the storage answers; 503 while it does not).
    ///
    /// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the link page
    /// limits sign-in attempts per client address.
    pub fn router(&self) -> Router {
        let mut router =
            self.link_router().merge(self.login_router()).merge(self.tracking_router());
        if let Ok(webhook) = self.webhook_router() {
            router = router.merge(webhook);
        }
        router.merge(
            Router::new()
                .route("/healthz", get(|| async { "ok" }))
                .route("/readyz", get(readyz))
                .with_state(self.clone()),
        )
    }
}

async fn readyz(State(app): State<Enishi>) -> Response {
    match app.storage().check().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(target: "enishi::app", error = %e, "not ready: the storage does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
    }
}

/// Which shop customer a request's session belongs to (the shop's own sign-in: a cookie, a
/// header set by the shop's proxy, ...). Any `Fn(&HeaderMap) -> Option<CustomerId>` is one.
pub trait SessionCustomer: Send + Sync {
    /// The signed-in customer, or `None` (the page then asks to sign in to the shop first).
    fn customer(&self, headers: &HeaderMap) -> Option<crate::CustomerId>;
}

impl<F> SessionCustomer for F
where
    F: Fn(&HeaderMap) -> Option<crate::CustomerId> + Send + Sync,
{
    fn customer(&self, headers: &HeaderMap) -> Option<crate::CustomerId> {
        self(headers)
    }
}

async fn login_start(State(app): State<Enishi>, headers: HeaderMap) -> Response {
    let Some((login, session)) = &app.inner.line_login else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(customer) = session.customer(&headers) else {
        let body = page(
            "ログインが必要です",
            "<p>ショップにログインしてから、もう一度お試しください。</p>",
        );
        return (StatusCode::UNAUTHORIZED, body).into_response();
    };
    match login.authorize(&customer, app.now()).await {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => {
            tracing::error!(target: "enishi::link", error = %e, "LINE Login could not start");
            unavailable()
        }
    }
}

async fn login_callback(
    State(app): State<Enishi>,
    headers: HeaderMap,
    Query(params): Query<crate::link::CallbackParams>,
) -> Response {
    let Some((login, session)) = &app.inner.line_login else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(customer) = session.customer(&headers) else {
        let body = page(
            "ログインが必要です",
            "<p>ショップにログインしてから、もう一度お試しください。</p>",
        );
        return (StatusCode::UNAUTHORIZED, body).into_response();
    };
    match login.callback(&params, &customer, app.now()).await {
        Ok(_) => page(
            "連携しました",
            "<p>LINEアカウントとの連携が完了しました。このページは閉じてかまいません。</p>",
        )
        .into_response(),
        Err(e) => {
            tracing::warn!(target: "enishi::link", error = %e, "LINE Login callback refused");
            let body = page("連携できませんでした", "<p>もう一度、最初からお試しください。</p>");
            (StatusCode::BAD_REQUEST, body).into_response()
        }
    }
}

fn unavailable() -> Response {
    let body = page("ただいま連携できません", "<p>しばらくしてからもう一度お試しください。</p>");
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

/// Installs the process-wide `metrics` recorder that renders Prometheus text, and returns its
/// handle for [`Enishi::metrics_router`]. Call it once, at start-up.
///
/// # Errors
/// [`AppError::Config`] when a recorder is installed already.
pub fn install_prometheus() -> Result<PrometheusHandle, AppError> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| AppError::Config(format!("the metrics recorder: {e}")))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

async fn link_form(Query(q): Query<Vec<(String, String)>>) -> Html<String> {
    let token = q.iter().find(|(k, _)| k == "linkToken").map_or("", |(_, v)| v.as_str());
    page(
        "LINEアカウント連携",
        &format!(
            "<p>ショップのアカウントでログインすると、LINEアカウントと連携します。連携はいつでも解除できます。</p>\
             <form method=\"post\" action=\"/link\">\
             <input type=\"hidden\" name=\"linkToken\" value=\"{}\">\
             <p><label for=\"email\">メールアドレス</label><br>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required></p>\
             <p><label for=\"password\">パスワード</label><br>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
             <p><button type=\"submit\">ログインして連携する</button></p></form>",
            escape(token)
        ),
    )
}

/// The most a sign-in form may weigh.
const FORM_LIMIT: usize = 16 * 1024;

async fn link_submit(State(app): State<Enishi>, request: axum::extract::Request) -> Response {
    let Some(linker) = app.inner.linker.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let headers: HeaderMap = request.headers().clone();
    let Ok(body) = axum::body::to_bytes(request.into_body(), FORM_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get =
        |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let token = LinkToken::from_received(get("linkToken"));
    let peer_ip = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
    let client = client_ip(peer_ip, &headers, app.inner.forwarded_for);
    let password = Password::new(get("password"));
    match linker.complete_with_password(&token, &get("email"), &password, client, app.now()).await {
        // 303: the browser GETs LINE's dialog, which checks the LINE user and calls the webhook.
        Ok(issued) => Redirect::to(issued.redirect.as_str()).into_response(),
        Err(e) => {
            let failure = e.login_failure();
            if failure == LoginFailure::Unavailable {
                tracing::error!(target: "enishi::link", error = %e, "link sign-in failed");
            }
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
