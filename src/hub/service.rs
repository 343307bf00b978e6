//! The hub behind a route (feature `axum`): queue for the destinations, then handle locally.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use http::{HeaderMap, StatusCode};

use super::forward::{Hub, HubError};
use crate::line::webhook::{DEFAULT_BODY_LIMIT, SIGNATURE_HEADER, WebhookService};

/// LINE's webhook endpoint with the hub in front of enishi's own [`WebhookService`]: the body
/// is verified once (with the hub's secrets: build both with the same), queued for every
/// destination first (500 when the queue fails, so LINE
/// redelivers; a redelivery is not queued twice), then handed to the service, which
/// de-duplicates and handles it (wrap its handler with
/// [`ReplyRules::guard`](super::ReplyRules::guard)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubService {
    hub: Hub,
    local: WebhookService,
}

impl HubService {
    /// The hub in front of `local`.
    #[must_use]
    pub fn new(hub: Hub, local: WebhookService) -> Self {
        Self { hub, local }
    }

    /// The hub.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A router answering `POST path`.
    pub fn router(&self, path: &str) -> Router {
        Router::new()
            .route(path, post(endpoint))
            .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
            .with_state(self.clone())
    }

    /// Queues `body` for the destinations, then lets the local service handle it; returns
    /// the status to answer LINE with.
    pub async fn handle_request(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let signature =
            headers.get(SIGNATURE_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()));
        match self.hub.accept(signature.as_deref(), body).await {
            Ok(payload) => self.local.handle_verified(headers, body, payload).await,
            Err(HubError::Webhook(e)) => e.http_status(),
            Err(e) => {
                tracing::warn!(target: "enishi::hub", error = %e, "a webhook could not be queued; answering 500");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

async fn endpoint(
    State(service): State<HubService>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    service.handle_request(&headers, &body).await
}
