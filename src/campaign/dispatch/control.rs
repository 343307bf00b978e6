//! Pause, resume and cancel a campaign through the journal, so every worker sees it.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;

use crate::CampaignId;
use crate::campaign::batch::{CampaignState, PauseReason};
use crate::campaign::journal::{DeliveryJournal, JournalError};

/// Controls one campaign's run state. The state lives in the delivery journal, so a handle
/// in one process pauses, resumes or cancels the workers of every process sharing the journal.
///
/// Workers notice a change the next time they claim batches: they stop claiming, let the
/// batches they already hold finish, and their [`run`](super::Dispatcher::run) returns a report
/// whose status says paused or cancelled.
#[derive(Clone)]
pub struct CampaignControl {
    journal: Arc<dyn DeliveryJournal>,
    campaign: CampaignId,
}

impl fmt::Debug for CampaignControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CampaignControl")
            .field("campaign", &self.campaign)
            .field("journal", &self.journal)
            .finish()
    }
}

impl CampaignControl {
    /// A handle for `campaign` in `journal`.
    #[must_use]
    pub fn new(journal: Arc<dyn DeliveryJournal>, campaign: CampaignId) -> Self {
        Self { journal, campaign }
    }

    /// The campaign this handle controls.
    #[must_use]
    pub fn campaign(&self) -> &CampaignId {
        &self.campaign
    }

    /// Pauses the campaign: workers stop claiming batches; the reason shows in reports.
    ///
    /// # Errors
    /// [`JournalError`] when the state cannot be written.
    pub async fn pause(&self, reason: impl Into<String>) -> Result<(), JournalError> {
        let state = CampaignState::Paused { reason: PauseReason::Operator(reason.into()) };
        self.journal.set_state(&self.campaign, &state, Utc::now()).await
    }

    /// Lets workers claim batches again. Run the dispatcher(s) again to continue: nothing
    /// already sent is sent again.
    ///
    /// # Errors
    /// [`JournalError`] when the state cannot be written. A cancelled campaign stays
    /// cancelled: its pending batches were cancelled for good.
    pub async fn resume(&self) -> Result<(), JournalError> {
        if self.state().await? == CampaignState::Cancelled {
            return Ok(());
        }
        self.journal.set_state(&self.campaign, &CampaignState::Running, Utc::now()).await
    }

    /// Cancels the campaign: every pending batch is cancelled; batches in flight finish.
    ///
    /// # Errors
    /// [`JournalError`] when the state cannot be written.
    pub async fn cancel(&self) -> Result<(), JournalError> {
        self.journal.set_state(&self.campaign, &CampaignState::Cancelled, Utc::now()).await
    }

    /// The campaign's current run state.
    ///
    /// # Errors
    /// [`JournalError`] when the journal cannot be read.
    pub async fn state(&self) -> Result<CampaignState, JournalError> {
        self.journal.state(&self.campaign).await
    }
}
