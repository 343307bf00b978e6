//! The link flow behind [`WebhookService`](crate::line::webhook::WebhookService) (feature `axum`).

use chrono::Utc;

use super::LinkError;
use super::flow::AccountLinker;
use super::store::LinkStoreError;
use crate::line::webhook::{Delivery, EventHandler, HandlerError};

/// A webhook [`EventHandler`] that feeds every event to [`AccountLinker::handle_event`].
///
/// Final outcomes (a rejected nonce, a conflict, an `ok` event without a user) are answered as
/// handled, a redelivery could not change them; by then the linker has told the user (a LINE
/// reply, see [`LinkReplyTexts`](super::LinkReplyTexts)), logged and counted the outcome and
/// called its [`LinkOutcomeHook`](super::LinkOutcomeHook). Store and LINE failures are
/// returned, so the de-duplication claim is released and a redelivery is handled again.
#[derive(Debug, Clone)]
pub struct LinkEventHandler {
    linker: AccountLinker,
}

impl LinkEventHandler {
    /// A handler for `linker`.
    #[must_use]
    pub fn new(linker: AccountLinker) -> Self {
        Self { linker }
    }
}

#[async_trait::async_trait]
impl EventHandler for LinkEventHandler {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        match self.linker.handle_event(&delivery.event, Utc::now()).await {
            Ok(_)
            | Err(
                LinkError::MissingUser
                | LinkError::Store(LinkStoreError::Rejected { .. } | LinkStoreError::Conflict(_)),
            ) => Ok(()),
            Err(e) => Err(Box::new(e)),
        }
    }
}
