//! The app's HTTP face: the webhook, the link pages, tracked links and health.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::link_pages;
use super::{AppError, Enishi};
use crate::campaign::track_route_with;
use crate::line::webhook::{
    ChannelSecrets, Delivery, EventHandler, EventKind, HandlerError, WebhookService,
};
use crate::link::{LinkError, LinkEventOutcome, LinkStoreError};

/// Feeds webhook events to the link flow (links, follows into the link store) and follow
/// changes to the scenarios.
#[derive(Debug, Clone)]
pub(super) struct AppEvents {
    pub(super) app: Enishi,
}

#[async_trait::async_trait]
impl EventHandler for AppEvents {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = &delivery.event;
        // The app's clock, so tickets, links and follows share the scenarios' timeline.
        let now = self.app.now();
        let at = event.time().unwrap_or(now);
        tracing::debug!(target: "enishi::webhook", event = ?event.webhook_event_id, "webhook event");
        // Another tool owns the conversation (the hub's reply rules): only a follow status is
        // recorded, nothing is answered.
        let answers = self.app.answers(event);
        if !answers && !matches!(event.kind, EventKind::Follow(_) | EventKind::Unfollow) {
            tracing::debug!(target: "enishi::hub", event = event.type_str(), "left to the tool that owns it");
            return Ok(());
        }
        let follow = match &self.app.inner.linker {
            Some(linker) => match linker.handle_event(event, now).await {
                Ok(LinkEventOutcome::FollowChanged { line_user, following }) => {
                    Some((line_user, following))
                }
                Ok(LinkEventOutcome::Linked { outcome, .. }) => {
                    let mut users = vec![outcome.link().line_user.clone()];
                    if let crate::link::LinkOutcome::Replaced { displaced, .. } = &outcome {
                        users.extend(displaced.iter().map(|l| l.line_user.clone()));
                    }
                    self.app.menus_after_change(&users).await;
                    None
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
            self.app.menus_after_change(std::slice::from_ref(&user)).await;
            self.app.note_follow(user, following, at).await;
        }
        if let Some(chat) = self.app.inner.chat.as_ref().filter(|_| answers) {
            // A store failure is returned: the event comes again (de-duplication released).
            chat.handle(event, now).await.map_err(|e| Box::new(e) as HandlerError)?;
        }
        Ok(())
    }
}

impl Enishi {
    /// The webhook route at `/webhook`: signed, de-duplicated (the storage's de-duplication),
    /// handled before answering so a failure makes LINE redeliver. Link events and follows go
    /// to the link store and the scenarios. With a [hub](super::EnishiBuilder::hub), each body
    /// is first queued for the shop's other tools (500 when the queue fails, so LINE
    /// redelivers), and events another tool owns are left to it.
    ///
    /// # Errors
    /// [`AppError::Missing`] without a channel secret.
    pub fn webhook_router(&self) -> Result<Router, AppError> {
        let secrets: ChannelSecrets = match (&self.inner.secret, &self.inner.channel) {
            (Some(secret), _) => secret.clone().into(),
            (None, Some(channel)) => channel.secrets().clone(),
            (None, None) => return Err(AppError::Missing("the channel secret (`channel_secret`)")),
        };
        let service = WebhookService::builder(secrets)
            .dedup_shared(self.storage().dedup())
            .handle_before_responding(true)
            .build(AppEvents { app: self.clone() });
        if let Some(hub) = &self.inner.hub {
            // Verified once, queued for the other tools, then handled here.
            return Ok(crate::hub::HubService::new(hub.clone(), service).router("/webhook"));
        }
        Ok(service.router("/webhook"))
    }

    /// The customer's pages (see [`Pages`](super::Pages)): `GET /link?linkToken=…` (what
    /// linking shares and brings), `GET /link/login` (the sign-in form), `POST /link` (signs
    /// the customer in and sends the browser on to LINE's account-link dialog; a wrong
    /// password shows the form again), `GET`/`POST /unlink?ticket=…` (confirm, then unlink).
    /// Empty without a [`public_url`](super::EnishiBuilder::public_url).
    pub fn link_router(&self) -> Router {
        if self.inner.linker.is_none() {
            return Router::new();
        }
        Router::new()
            .route("/link", get(link_pages::link_start).post(link_pages::link_submit))
            .route("/link/login", get(link_pages::link_login))
            .route("/unlink", get(link_pages::unlink_confirm).post(link_pages::unlink_submit))
            .with_state(self.clone())
    }

    /// LINE Login at `/login/line` and `/login/line/callback` (see
    /// [`EnishiBuilder::line_login`](super::EnishiBuilder::line_login)); empty without it.
    pub fn login_router(&self) -> Router {
        if self.inner.line_login.is_none() {
            return Router::new();
        }
        Router::new()
            .route("/login/line", get(link_pages::login_start))
            .route("/login/line/callback", get(link_pages::login_callback))
            .with_state(self.clone())
    }

    /// Tracked links at `/t/{token}`: records the click, then redirects. Empty without a
    /// public URL and a tracking key.
    pub fn tracking_router(&self) -> Router {
        match &self.inner.tracker {
            Some(tracker) => {
                let invalid = link_pages::track_error_page(&self.inner.pages);
                let route = track_route_with(tracker.clone(), self.storage().clicks(), invalid);
                Router::new().nest("/t", route)
            }
            None => Router::new(),
        }
    }

    /// `/unsubscribe/{token}`: records opt-outs in the storage's opt-out store. Empty
    /// without [`unsubscribe_links`](super::EnishiBuilder::unsubscribe_links).
    pub fn unsubscribe_router(&self) -> Router {
        match &self.inner.unsubscribe {
            Some(links) => {
                crate::channel::unsubscribe_route(links.clone(), self.storage().opt_outs())
            }
            None => Router::new(),
        }
    }

    /// `/metrics`: the Prometheus text of `handle` (see [`install_prometheus`]).
    pub fn metrics_router(handle: PrometheusHandle) -> Router {
        Router::new().route("/metrics", get(move || async move { handle.render() }))
    }

    /// Every route: webhook (with a channel secret), link pages, tracked links, unsubscribe
    /// links, `/healthz`
    /// (the process answers) and `/readyz` (the storage answers; 503 while it does not).
    ///
    /// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the link page
    /// limits sign-in attempts per client address.
    pub fn router(&self) -> Router {
        let mut router = self
            .link_router()
            .merge(self.login_router())
            .merge(self.tracking_router())
            .merge(self.unsubscribe_router());
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
