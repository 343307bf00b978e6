//! The unit of delivery shared by the planner, the journal and the dispatcher.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::line::message::Message;
use crate::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId, RequestId, RetryKey};

/// How a batch reaches LINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    /// One multicast request to up to 500 users with identical content.
    Multicast,
    /// One push request to one user (personalised content).
    Push,
    /// A LINE notification message to one customer's hashed phone number (`enishi::channel`).
    Pnp,
    /// An e-mail to one customer (`enishi::channel`): the messages hold the subject and the
    /// text body as two text messages.
    Email,
    /// An SMS to one customer (`enishi::channel`): the message holds the text.
    Sms,
}

impl Transport {
    /// The name used in the journal and in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Multicast => "multicast",
            Self::Push => "push",
            Self::Pnp => "pnp",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// One addressee of a batch: the shop customer and the LINE user the message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchRecipient {
    /// The shop customer.
    pub customer: CustomerId,
    /// The linked LINE user.
    pub line_user: LineUserId,
}

/// One LINE request's worth of delivery, written to the journal before it is sent.
///
/// The retry key is part of the batch, so a batch re-sent after a crash carries the same key and
/// LINE accepts it at most once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Batch {
    /// Unique in the journal.
    pub id: BatchId,
    /// The campaign (or `scenario.<name>`) the batch belongs to.
    pub campaign: CampaignId,
    /// Multicast or push.
    pub transport: Transport,
    /// The addressees: 1 for push, up to 500 for multicast.
    pub recipients: Vec<BatchRecipient>,
    /// The rendered messages (1 to 5).
    pub messages: Vec<Message>,
    /// The `X-Line-Retry-Key` every attempt of this batch carries.
    pub retry_key: RetryKey,
    /// Not sent before this instant (schedules, quiet hours).
    pub not_before: DateTime<Utc>,
    /// The A/B arm, if the campaign has arms.
    pub arm: Option<String>,
    /// The custom aggregation unit LINE counts opens and clicks under.
    pub aggregation_unit: Option<AggregationUnit>,
    /// Where the message goes instead when the transport's provider refuses the recipient
    /// (`enishi::channel`'s send-time fall-through, e.g. PNP → e-mail → SMS), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<BatchFallback>,
}

/// Another transport for a batch's one recipient, with the content for it, tried when the
/// batch's own transport refuses the recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchFallback {
    /// The transport (`pnp`, `email`, `sms`, `push`).
    pub transport: Transport,
    /// The content as that transport's batches hold it.
    pub messages: Vec<Message>,
}

impl BatchFallback {
    /// A fallback on `transport` with `messages`.
    #[must_use]
    pub fn new(transport: Transport, messages: Vec<Message>) -> Self {
        Self { transport, messages }
    }
}

impl Batch {
    /// A batch whose retry key is derived from its ID ([`RetryKey::derive`]).
    #[must_use]
    pub fn new(
        id: BatchId,
        campaign: CampaignId,
        transport: Transport,
        recipients: Vec<BatchRecipient>,
        messages: Vec<Message>,
        not_before: DateTime<Utc>,
    ) -> Self {
        let retry_key = RetryKey::derive(id.as_str());
        Self {
            id,
            campaign,
            transport,
            recipients,
            messages,
            retry_key,
            not_before,
            arm: None,
            aggregation_unit: None,
            fallbacks: Vec::new(),
        }
    }

    /// Sets the send-time fallbacks.
    #[must_use]
    pub fn with_fallbacks(mut self, fallbacks: Vec<BatchFallback>) -> Self {
        self.fallbacks = fallbacks;
        self
    }

    /// Sets the A/B arm.
    #[must_use]
    pub fn with_arm(mut self, arm: impl Into<String>) -> Self {
        self.arm = Some(arm.into());
        self
    }

    /// Sets the custom aggregation unit.
    #[must_use]
    pub fn with_aggregation_unit(mut self, unit: AggregationUnit) -> Self {
        self.aggregation_unit = Some(unit);
        self
    }
}

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BatchStatus {
    /// Planned, not claimed (or released for a later retry).
    Pending,
    /// Claimed by a worker whose lease has not run out. A batch whose lease ran out (the worker
    /// crashed) is claimed again and re-sent with the same retry key.
    InFlight,
    /// LINE accepted it (or answered 409: accepted before).
    Sent,
    /// Failed for good; see the outcome.
    Failed,
    /// The campaign was cancelled before the batch was sent.
    Cancelled,
}

impl BatchStatus {
    /// The name used in the journal.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses [`BatchStatus::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "in_flight" => Self::InFlight,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Sent, failed or cancelled: nothing more will happen to the batch.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Failed | Self::Cancelled)
    }
}

/// Why a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// Worth trying again later (5xx, timeouts, 429 after the client's own retries).
    Retryable,
    /// LINE rejected the recipient(s) (400 naming the `to` field, user not found).
    InvalidRecipient,
    /// The channel's monthly message quota is used up: the campaign is paused.
    QuotaExhausted,
    /// Any other rejection (bad message, bad token).
    Rejected,
}

/// What happened when a batch was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BatchOutcome {
    /// LINE accepted the request.
    Accepted {
        /// LINE's request ID (of the original request when LINE answered 409).
        request_id: Option<RequestId>,
        /// `true` when LINE answered 409: this retry key was accepted before.
        already_accepted: bool,
    },
    /// LINE did not accept it.
    Failed {
        /// The classification.
        kind: FailureKind,
        /// HTTP status, if there was a response.
        status: Option<u16>,
        /// LINE's request ID, if there was a response.
        request_id: Option<RequestId>,
        /// A human-readable description (LINE's message and details).
        error: String,
    },
}

/// A batch with what the journal knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchRecord {
    /// The batch as planned.
    pub batch: Batch,
    /// Its status.
    pub status: BatchStatus,
    /// How many times it was claimed for sending.
    pub attempts: u32,
    /// The last outcome, if any.
    pub outcome: Option<BatchOutcome>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

impl BatchRecord {
    /// A record as the journal assembles it.
    #[must_use]
    pub fn new(
        batch: Batch,
        status: BatchStatus,
        attempts: u32,
        outcome: Option<BatchOutcome>,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self { batch, status, attempts, outcome, updated_at }
    }
}

/// A campaign's run state, shared by every worker through the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CampaignState {
    /// Workers claim and send batches.
    Running,
    /// Workers stop claiming; in-flight batches finish. `reason` says why (an operator, or the
    /// quota running out).
    Paused {
        /// Why the campaign is paused.
        reason: PauseReason,
    },
    /// Pending batches are cancelled; nothing more is sent.
    Cancelled,
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::Paused { reason } => write!(f, "paused ({reason})"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Why a campaign is paused.
///
/// Stored as `{"kind": "quota_exhausted"}` (an operator's note as
/// `{"kind": "operator", "note": "..."}`). Journals written before this type existed hold the
/// reason as text; that still loads: the dispatcher's own texts as their variant, anything
/// else as [`PauseReason::Operator`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// LINE's monthly message quota is used up (429).
    QuotaExhausted,
    /// LINE rejected the channel access token (401).
    TokenRejected,
    /// LINE refused the channel's permission to send (403).
    PermissionDenied,
    /// An operator paused the campaign, with this note.
    Operator(String),
}

impl PauseReason {
    const QUOTA_TEXT: &str = "LINE monthly message quota exhausted; raise the quota or wait for the next month, then resume";
    const TOKEN_TEXT: &str =
        "LINE rejected the channel access token (401); fix the token, then resume";
    const PERMISSION_TEXT: &str =
        "LINE refused the channel's permission to send (403); fix it, then resume";

    /// Reads a reason stored as text (the format before [`PauseReason`]).
    fn from_text(text: String) -> Self {
        match text.as_str() {
            Self::QUOTA_TEXT => Self::QuotaExhausted,
            Self::TOKEN_TEXT => Self::TokenRejected,
            Self::PERMISSION_TEXT => Self::PermissionDenied,
            _ => Self::Operator(text),
        }
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QuotaExhausted => Self::QUOTA_TEXT,
            Self::TokenRejected => Self::TOKEN_TEXT,
            Self::PermissionDenied => Self::PERMISSION_TEXT,
            Self::Operator(note) => note,
        })
    }
}

/// An operator's note.
impl From<String> for PauseReason {
    fn from(note: String) -> Self {
        Self::Operator(note)
    }
}

/// An operator's note.
impl From<&str> for PauseReason {
    fn from(note: &str) -> Self {
        Self::Operator(note.to_owned())
    }
}

/// The stored form of a [`PauseReason`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredReason {
    QuotaExhausted,
    TokenRejected,
    PermissionDenied,
    Operator { note: String },
}

/// What a journal may hold: the tagged form, or the text of journals written before.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyStoredReason {
    Tagged(StoredReason),
    Text(String),
}

impl Serialize for PauseReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::QuotaExhausted => StoredReason::QuotaExhausted,
            Self::TokenRejected => StoredReason::TokenRejected,
            Self::PermissionDenied => StoredReason::PermissionDenied,
            Self::Operator(note) => StoredReason::Operator { note: note.clone() },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PauseReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match AnyStoredReason::deserialize(deserializer)? {
            AnyStoredReason::Text(text) => Self::from_text(text),
            AnyStoredReason::Tagged(StoredReason::QuotaExhausted) => Self::QuotaExhausted,
            AnyStoredReason::Tagged(StoredReason::TokenRejected) => Self::TokenRejected,
            AnyStoredReason::Tagged(StoredReason::PermissionDenied) => Self::PermissionDenied,
            AnyStoredReason::Tagged(StoredReason::Operator { note }) => Self::Operator(note),
        })
    }
}

/// Batch and recipient counts of one campaign, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalCounts {
    /// Batches pending.
    pub pending: u64,
    /// Batches in flight.
    pub in_flight: u64,
    /// Batches sent.
    pub sent: u64,
    /// Batches failed.
    pub failed: u64,
    /// Batches cancelled.
    pub cancelled: u64,
    /// Recipients in all batches.
    pub recipients: u64,
    /// Recipients in sent batches.
    pub recipients_sent: u64,
}

impl JournalCounts {
    /// All batches.
    #[must_use]
    pub fn batches(&self) -> u64 {
        self.pending + self.in_flight + self.sent + self.failed + self.cancelled
    }

    /// Counts `batches` batches holding `recipients` recipients in `status`.
    pub fn add(&mut self, status: BatchStatus, batches: u64, recipients: u64) {
        self.recipients += recipients;
        match status {
            BatchStatus::Pending => self.pending += batches,
            BatchStatus::InFlight => self.in_flight += batches,
            BatchStatus::Sent => {
                self.sent += batches;
                self.recipients_sent += recipients;
            }
            BatchStatus::Failed => self.failed += batches,
            BatchStatus::Cancelled => self.cancelled += batches,
        }
    }

    /// No batch is pending or in flight.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.pending == 0 && self.in_flight == 0
    }
}

/// One message delivered (or planned) to one LINE user, for frequency caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    /// The recipient.
    pub line_user: LineUserId,
    /// The campaign.
    pub campaign: CampaignId,
    /// When it was sent, or for a batch not sent yet, when it is due.
    pub at: DateTime<Utc>,
}
