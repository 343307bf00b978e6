//! Delivery channels beyond LINE push: LINE notification messages (PNP), e-mail and SMS, under
//! one policy.
//!
//! A [`Channel`] carries one message to one customer. A [`ChannelPlanner`] routes each customer
//! of a campaign step to one channel ([`Routing`], by [`Purpose`] and [`Reach`]) and writes one
//! batch per customer and step to the campaign's [`DeliveryJournal`](crate::campaign::DeliveryJournal),
//! whatever the channel, with the channel as the batch's transport; the frequency cap, quiet
//! hours and holdout of the shop's [`DeliveryPolicy`](crate::campaign::DeliveryPolicy) apply
//! across channels. A [`ChannelDispatcher`] sends the journal's batches through the channels,
//! each under its own rate limit, and honours per-channel opt-outs ([`OptOutStore`], recorded
//! by the unsubscribe route). See `docs/channels.md`.

use std::fmt;

use async_trait::async_trait;

use crate::campaign::FailureKind;
pub use crate::campaign::{ChannelKind, Purpose};
use crate::line::message::Message;
use crate::{BatchId, CampaignId, CustomerId, LineUserId, RetryKey};

mod address;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
mod dispatch;
#[cfg(feature = "email")]
mod email;
mod line;
mod optout;
#[cfg(feature = "postgres")]
mod optout_postgres;
#[cfg(feature = "sqlite")]
mod optout_sqlite;
mod plan;
mod results;
mod route;
mod sms;

pub use address::{AddressError, EmailAddress, PhoneNumber};
pub use dispatch::{ChannelDispatcher, ChannelDispatcherBuilder, ChannelRun};
#[cfg(feature = "email")]
#[cfg_attr(docsrs, doc(cfg(feature = "email")))]
pub use email::{EmailChannel, EmailChannelBuilder, SmtpTls, email_html, message_id};
pub use line::{LinePushChannel, PnpChannel, PnpDeliveries, pnp_delivery_tag};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use optout::unsubscribe_route;
pub use optout::{MemoryOptOuts, OptOut, OptOutStore, UnsubscribeLinks};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use optout_postgres::PostgresOptOuts;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use optout_sqlite::SqliteOptOuts;
pub use plan::{
    ChannelExclusion, ChannelPlan, ChannelPlanner, ChannelStep, EmailContent, journal_key,
};
pub use results::{ChannelResult, ChannelResults};
pub use route::{
    Candidates, Contacts, LineEngagement, MemoryContacts, Reach, Route, Routing, Skip,
};
pub use sms::{SmsChannel, SmsProvider, SmsReceipt, TwilioSms, TwilioSmsBuilder};

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// A LINE user.
    Line(LineUserId),
    /// A phone number (PNP, SMS).
    Phone(PhoneNumber),
    /// An e-mail address.
    Email(EmailAddress),
}

/// One message to one customer, as a [`Channel`] sends it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChannelSend {
    /// The journal batch (stable across resends: e-mail derives its `Message-ID` from it,
    /// PNP its delivery tag).
    pub batch: BatchId,
    /// The campaign.
    pub campaign: CampaignId,
    /// The customer.
    pub customer: CustomerId,
    /// Where to.
    pub address: Address,
    /// The content as journaled: LINE messages (LINE, PNP); subject and text body as two text
    /// messages (e-mail); the text as one text message (SMS).
    pub messages: Vec<Message>,
    /// The batch's retry key (LINE push sends it as `X-Line-Retry-Key`).
    pub retry_key: RetryKey,
    /// The customer's unsubscribe URL for this channel, when links are configured.
    pub unsubscribe_url: Option<String>,
}

impl ChannelSend {
    /// A send of `messages` to `address`.
    #[must_use]
    pub fn new(
        batch: BatchId,
        campaign: CampaignId,
        customer: CustomerId,
        address: Address,
        messages: Vec<Message>,
    ) -> Self {
        let retry_key = RetryKey::derive(batch.as_str());
        Self { batch, campaign, customer, address, messages, retry_key, unsubscribe_url: None }
    }

    /// Sets the unsubscribe URL.
    #[must_use]
    pub fn with_unsubscribe_url(mut self, url: impl Into<String>) -> Self {
        self.unsubscribe_url = Some(url.into());
        self
    }

    /// The text of the `i`-th message if it is a text message.
    pub(crate) fn text(&self, i: usize) -> Option<&str> {
        match self.messages.get(i) {
            Some(Message::Text(t)) => Some(t.text.as_str()),
            _ => None,
        }
    }
}

/// What a channel's provider said when it accepted a send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelReceipt {
    /// The provider's ID for the send (LINE request ID, SMTP `Message-ID`, SMS SID).
    pub provider_id: Option<String>,
    /// The provider said it had accepted this send before (LINE's 409).
    pub already_accepted: bool,
}

impl ChannelReceipt {
    /// A receipt with the provider's ID.
    #[must_use]
    pub fn new(provider_id: Option<String>) -> Self {
        Self { provider_id, already_accepted: false }
    }
}

/// A channel could not send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The address was refused (unknown number, bad mailbox, LINE user not found).
    #[error("{channel} refused the recipient: {message}")]
    InvalidRecipient {
        /// The channel.
        channel: ChannelKind,
        /// What the provider said.
        message: String,
    },
    /// Worth trying again later (a timeout, a 5xx, a 4xx SMTP reply, a rate limit).
    #[error("{channel} failed for now: {message}")]
    Transient {
        /// The channel.
        channel: ChannelKind,
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The provider refused the send for good (bad content, bad credentials).
    #[error("{channel} rejected the send: {message}")]
    Rejected {
        /// The channel.
        channel: ChannelKind,
        /// What the provider said.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The send does not fit the channel (an e-mail batch without a subject, a LINE batch for
    /// a phone number).
    #[error("{channel} cannot send this: {message}")]
    Unsupported {
        /// The channel.
        channel: ChannelKind,
        /// Why.
        message: String,
    },
}

impl ChannelError {
    /// The journal's classification of the failure.
    #[must_use]
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            Self::InvalidRecipient { .. } => FailureKind::InvalidRecipient,
            Self::Transient { .. } => FailureKind::Retryable,
            Self::Rejected { .. } | Self::Unsupported { .. } => FailureKind::Rejected,
        }
    }

    /// Whether a later attempt may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The channel that failed.
    #[must_use]
    pub fn channel(&self) -> ChannelKind {
        match self {
            Self::InvalidRecipient { channel, .. }
            | Self::Transient { channel, .. }
            | Self::Rejected { channel, .. }
            | Self::Unsupported { channel, .. } => *channel,
        }
    }
}

/// Carries one message to one customer. Object-safe; share it as `Arc<dyn Channel>`.
///
/// Implementations: [`LinePushChannel`] (push), [`PnpChannel`] (LINE notification messages),
/// `EmailChannel` (SMTP, feature `email`) and [`SmsChannel`] (over any [`SmsProvider`]).
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    /// Which channel this is.
    fn kind(&self) -> ChannelKind;

    /// Sends one message. Called at most once per journal claim; a retryable error puts the
    /// batch back for a later attempt with the same [`ChannelSend`].
    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError>;
}
