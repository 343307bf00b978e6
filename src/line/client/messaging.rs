//! Sending messages: reply, push, multicast, broadcast, narrowcast and validation.

use std::ops::Range;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::line_client::{Answer, LineClient};
use super::model::line_enum;
use super::ratelimit::EndpointClass;
use super::request::Request;
use crate::line::Validator;
use crate::line::message::{Message, validate_messages, validate_messages_at};
use crate::{
    AggregationUnit, AudienceGroupId, LineGroupId, LineRoomId, LineUserId, MessageId, RequestId,
    RetryKey,
};

/// The most recipients LINE accepts in one multicast call.
pub const MULTICAST_CHUNK: usize = 500;

/// Who a push goes to: a user, a group chat or a multi-person chat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recipient {
    /// A user (one-to-one chat).
    User(LineUserId),
    /// A group chat.
    Group(LineGroupId),
    /// A multi-person chat.
    Room(LineRoomId),
}

impl Recipient {
    /// The ID as LINE expects it in `to`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::User(id) => id.as_str(),
            Self::Group(id) => id.as_str(),
            Self::Room(id) => id.as_str(),
        }
    }
}

impl From<LineUserId> for Recipient {
    fn from(id: LineUserId) -> Self {
        Self::User(id)
    }
}

impl From<LineGroupId> for Recipient {
    fn from(id: LineGroupId) -> Self {
        Self::Group(id)
    }
}

impl From<LineRoomId> for Recipient {
    fn from(id: LineRoomId) -> Self {
        Self::Room(id)
    }
}

/// A message LINE accepted: its ID and the token for quoting it later.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SentMessage {
    /// The message ID.
    pub id: MessageId,
    /// The quote token, for text, image, video and sticker messages.
    #[serde(default)]
    pub quote_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SentMessagesWire {
    #[serde(default)]
    sent_messages: Vec<SentMessage>,
}

/// LINE accepted a send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// `x-line-request-id` of the answer (quote it to LINE; needed for narrowcast progress and
    /// per-request statistics).
    pub request_id: Option<RequestId>,
    /// On a 409 "already accepted": the request ID of the request LINE accepted first. Use this
    /// one for statistics of the send.
    pub accepted_request_id: Option<RequestId>,
    /// `true` when LINE answered 409: this retry key had been accepted before, so nothing was
    /// sent again.
    pub already_accepted: bool,
    /// The retry key the send carried.
    pub retry_key: RetryKey,
}

impl Accepted {
    fn from_answer(answer: &Answer, retry_key: RetryKey) -> Self {
        Self {
            request_id: answer.request_id.clone(),
            accepted_request_id: answer.accepted_request_id.clone(),
            already_accepted: answer.already_accepted,
            retry_key,
        }
    }

    /// The request ID that identifies the send at LINE: the first accepted one.
    #[must_use]
    pub fn effective_request_id(&self) -> Option<&RequestId> {
        self.accepted_request_id.as_ref().or(self.request_id.as_ref())
    }
}

/// LINE's answer to a push: acceptance plus the sent messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushResponse {
    /// Acceptance details (request IDs, retry key, whether it was accepted before).
    pub accepted: Accepted,
    /// The messages LINE accepted (repeated from the original on a 409).
    pub sent_messages: Vec<SentMessage>,
}

/// LINE's answer to a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyResponse {
    /// `x-line-request-id` of the answer.
    pub request_id: Option<RequestId>,
    /// The messages LINE accepted.
    pub sent_messages: Vec<SentMessage>,
}

/// The options every send request shares, written once: `notification_disabled`, and where the
/// endpoint supports them `aggregation_unit` and `retry_key`.
macro_rules! send_options {
    ($ty:ident: $($option:ident),+) => {
        impl $ty {
            $(send_options!(@$option);)+
        }
    };
    (@notification_disabled) => {
        /// Deliver without a notification sound.
        pub fn notification_disabled(mut self, disabled: bool) -> Self {
            self.notification_disabled = disabled;
            self
        }
    };
    (@aggregation_unit) => {
        /// Tags the send (every chunk of it) with a custom aggregation unit, for per-unit
        /// statistics.
        pub fn aggregation_unit(mut self, unit: AggregationUnit) -> Self {
            self.aggregation_unit = Some(unit);
            self
        }
    };
    (@retry_key) => {
        /// The retry key to send with. Persist it before sending to survive a crash; without
        /// one, a fresh key is generated for this call and reused by its retries.
        pub fn retry_key(mut self, key: RetryKey) -> Self {
            self.retry_key = Some(key);
            self
        }
    };
}

send_options!(ReplyRequest: notification_disabled);
send_options!(PushRequest: notification_disabled, aggregation_unit, retry_key);
send_options!(MulticastRequest: notification_disabled, aggregation_unit);
send_options!(BroadcastRequest: notification_disabled, retry_key);
send_options!(NarrowcastRequest: notification_disabled, retry_key);

/// A reply to a webhook event, with its single-use reply token (never retried).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct ReplyRequest {
    reply_token: String,
    messages: Vec<Message>,
    notification_disabled: bool,
}

impl ReplyRequest {
    /// A reply with these messages (1 to 5).
    pub fn new(reply_token: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { reply_token: reply_token.into(), messages, notification_disabled: false }
    }
}

/// A push to one user, group or room. Carries a retry key, so it is retried safely.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct PushRequest {
    to: Recipient,
    messages: Vec<Message>,
    notification_disabled: bool,
    aggregation_unit: Option<AggregationUnit>,
    retry_key: Option<RetryKey>,
}

impl PushRequest {
    /// A push of these messages (1 to 5).
    pub fn new(to: impl Into<Recipient>, messages: Vec<Message>) -> Self {
        Self {
            to: to.into(),
            messages,
            notification_disabled: false,
            aggregation_unit: None,
            retry_key: None,
        }
    }
}

/// A multicast: one call of at most 500 recipients ([`LineClient::multicast`]), or any number
/// of users split into calls of at most 500, each with its own retry key
/// ([`LineClient::multicast_all`]).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct MulticastRequest {
    to: Vec<LineUserId>,
    messages: Vec<Message>,
    notification_disabled: bool,
    aggregation_unit: Option<AggregationUnit>,
    retry_keys: Vec<RetryKey>,
    concurrency: usize,
}

impl MulticastRequest {
    /// A multicast of these messages (1 to 5) to these users (at least one).
    pub fn new(to: Vec<LineUserId>, messages: Vec<Message>) -> Self {
        Self {
            to,
            messages,
            notification_disabled: false,
            aggregation_unit: None,
            retry_keys: Vec::new(),
            concurrency: 4,
        }
    }

    /// The retry key of a one-call [`LineClient::multicast`]. Persist it before sending; after
    /// a crash, send again with the same key and LINE answers 409 if it had accepted the call.
    /// Without a key, a fresh one is generated.
    pub fn retry_key(mut self, key: RetryKey) -> Self {
        self.retry_keys = vec![key];
        self
    }

    /// For [`LineClient::multicast_all`]: one retry key per chunk of 500 recipients, in order
    /// (see [`chunk_count`](Self::chunk_count)). Persist them before sending; after a crash,
    /// send again with the same keys and LINE answers 409 for chunks it had accepted. Without
    /// keys, fresh ones are generated.
    pub fn retry_keys(mut self, keys: Vec<RetryKey>) -> Self {
        self.retry_keys = keys;
        self
    }

    /// For [`LineClient::multicast_all`]: how many chunks are sent at once (default 4, at
    /// least 1). Pacing still applies.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The number of calls (chunks of at most 500 recipients) [`LineClient::multicast_all`]
    /// makes for this request.
    #[must_use]
    pub fn chunk_count(&self) -> usize {
        self.to.len().div_ceil(MULTICAST_CHUNK)
    }
}

/// The outcome of one chunk of a multicast.
#[derive(Debug)]
#[non_exhaustive]
pub struct ChunkOutcome {
    /// The chunk's position among all chunks.
    pub index: usize,
    /// Which recipients of the request (by position) the chunk holds.
    pub recipients: Range<usize>,
    /// The chunk's retry key.
    pub retry_key: RetryKey,
    /// Accepted, or the error after retries.
    pub result: Result<Accepted, LineError>,
}

/// What happened to every chunk of a multicast.
#[derive(Debug)]
#[non_exhaustive]
pub struct MulticastReport {
    /// One outcome per chunk, in order.
    pub chunks: Vec<ChunkOutcome>,
}

impl MulticastReport {
    /// Whether every chunk was accepted.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.chunks.iter().all(|c| c.result.is_ok())
    }

    /// The chunks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ChunkOutcome> {
        self.chunks.iter().filter(|c| c.result.is_err())
    }

    /// How many recipients were in accepted chunks.
    #[must_use]
    pub fn accepted_recipients(&self) -> usize {
        self.chunks.iter().filter(|c| c.result.is_ok()).map(|c| c.recipients.len()).sum()
    }
}

/// A broadcast to every friend of the account (60 calls/hour).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct BroadcastRequest {
    messages: Vec<Message>,
    notification_disabled: bool,
    retry_key: Option<RetryKey>,
}

impl BroadcastRequest {
    /// A broadcast of these messages (1 to 5).
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages, notification_disabled: false, retry_key: None }
    }
}

/// Who a narrowcast goes to: audiences and redeliveries combined with operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum NarrowcastRecipient {
    /// The users of an audience group.
    #[serde(rename_all = "camelCase")]
    Audience {
        /// The audience group.
        audience_group_id: AudienceGroupId,
    },
    /// The recipients of an earlier narrowcast (less than 14 days old).
    #[serde(rename_all = "camelCase")]
    Redelivery {
        /// The earlier narrowcast's request ID.
        request_id: RequestId,
    },
    /// A combination of recipients.
    Operator {
        /// All of these.
        #[serde(skip_serializing_if = "Option::is_none")]
        and: Option<Vec<Self>>,
        /// Any of these.
        #[serde(skip_serializing_if = "Option::is_none")]
        or: Option<Vec<Self>>,
        /// Not this.
        #[serde(skip_serializing_if = "Option::is_none")]
        not: Option<Box<Self>>,
    },
}

impl NarrowcastRecipient {
    /// The users of one audience group.
    #[must_use]
    pub fn audience(id: AudienceGroupId) -> Self {
        Self::Audience { audience_group_id: id }
    }

    fn count_leaves(&self) -> usize {
        match self {
            Self::Audience { .. } | Self::Redelivery { .. } => 1,
            Self::Operator { and, or, not } => {
                let list = |l: &Option<Vec<Self>>| {
                    l.as_ref().map_or(0, |l| l.iter().map(Self::count_leaves).sum::<usize>())
                };
                list(and) + list(or) + not.as_ref().map_or(0, |n| n.count_leaves())
            }
        }
    }
}

/// Caps on a narrowcast's recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NarrowcastLimit {
    /// The most recipients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Cap at the remaining monthly quota.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub up_to_remaining_quota: bool,
    /// Deliver to nobody rather than to part of the target (needs `up_to_remaining_quota`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forbid_partial_delivery: bool,
}

impl NarrowcastLimit {
    /// At most `max` recipients.
    #[must_use]
    pub fn max(max: u64) -> Self {
        Self { max: Some(max), ..Self::default() }
    }

    /// Caps at the remaining monthly quota; with `forbid_partial`, delivers to nobody rather
    /// than to part of the target.
    #[must_use]
    pub fn up_to_remaining_quota(mut self, forbid_partial: bool) -> Self {
        self.up_to_remaining_quota = true;
        self.forbid_partial_delivery = forbid_partial;
        self
    }
}

/// A narrowcast: an asynchronous send to audiences and/or demographic filters (60 calls/hour).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct NarrowcastRequest {
    messages: Vec<Message>,
    recipient: Option<NarrowcastRecipient>,
    filter: Option<serde_json::Value>,
    limit: Option<NarrowcastLimit>,
    notification_disabled: bool,
    retry_key: Option<RetryKey>,
}

impl NarrowcastRequest {
    /// A narrowcast of these messages (1 to 5); without a recipient it goes to all friends
    /// matching the filter.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            recipient: None,
            filter: None,
            limit: None,
            notification_disabled: false,
            retry_key: None,
        }
    }

    /// The recipients (at most 10 audience and redelivery objects in total).
    pub fn recipient(mut self, recipient: NarrowcastRecipient) -> Self {
        self.recipient = Some(recipient);
        self
    }

    /// A demographic filter as LINE's JSON (`{"demographic": {...}}`), passed through as is.
    pub fn filter(mut self, filter: serde_json::Value) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Caps on the recipients.
    pub fn limit(mut self, limit: NarrowcastLimit) -> Self {
        self.limit = Some(limit);
        self
    }
}

line_enum!(
    /// The phase of a narrowcast.
    NarrowcastPhase {
        /// Waiting to be processed.
        Waiting = "waiting",
        /// Being sent.
        Sending = "sending",
        /// Sent to every target.
        Succeeded = "succeeded",
        /// Failed (see `failed_description` and `error_code`).
        Failed = "failed",
    }
);

/// The progress of a narrowcast.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NarrowcastProgress {
    /// The phase.
    pub phase: NarrowcastPhase,
    /// Messages delivered so far.
    #[serde(default)]
    pub success_count: Option<u64>,
    /// Messages that failed.
    #[serde(default)]
    pub failure_count: Option<u64>,
    /// The number of targets.
    #[serde(default)]
    pub target_count: Option<u64>,
    /// Why it failed.
    #[serde(default)]
    pub failed_description: Option<String>,
    /// 1 internal error, 2 not enough recipients, 3 retry-key conflict, 4 audience below 50,
    /// 5 cancelled by `forbidPartialDelivery`.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// When LINE accepted the narrowcast (ISO 8601).
    #[serde(default)]
    pub accepted_time: Option<String>,
    /// When it completed (ISO 8601).
    #[serde(default)]
    pub completed_time: Option<String>,
}

impl NarrowcastProgress {
    /// Whether the narrowcast has finished, successfully or not.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, NarrowcastPhase::Succeeded | NarrowcastPhase::Failed)
    }
}

/// Which send endpoint a validation call checks messages for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendKind {
    /// Reply.
    Reply,
    /// Push.
    Push,
    /// Multicast.
    Multicast,
    /// Narrowcast.
    Narrowcast,
    /// Broadcast.
    Broadcast,
}

impl SendKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Push => "push",
            Self::Multicast => "multicast",
            Self::Narrowcast => "narrowcast",
            Self::Broadcast => "broadcast",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SendWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<ToWire<'a>>,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    notification_disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_aggregation_units: Option<[&'a AggregationUnit; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<&'a NarrowcastRecipient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'a NarrowcastLimit>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToWire<'a> {
    One(&'a str),
    Many(&'a [LineUserId]),
}

impl<'a> SendWire<'a> {
    fn messages(messages: &'a [Message]) -> Self {
        Self {
            reply_token: None,
            to: None,
            messages,
            notification_disabled: false,
            custom_aggregation_units: None,
            recipient: None,
            filter: None,
            limit: None,
        }
    }
}

/// Validates the messages of a request, reporting at `messages[...]`.
fn check_messages(messages: &[Message], v: &mut Validator) {
    validate_messages_at("messages", messages, v);
}

impl LineClient {
    /// Replies to a webhook event. Never retried: a reply token is single use.
    ///
    /// # Errors
    /// [`LineError::Validation`] before sending; [`LineError::Api`] when LINE refuses (e.g. an
    /// expired token: 400 `Invalid reply token`); [`LineError::Transport`].
    pub async fn reply(&self, req: ReplyRequest) -> Result<ReplyResponse, LineError> {
        let mut v = Validator::new();
        if req.reply_token.is_empty() {
            v.violation_at("replyToken", "must not be empty");
        }
        check_messages(&req.messages, &mut v);
        v.finish()?;
        let wire = SendWire {
            reply_token: Some(&req.reply_token),
            notification_disabled: req.notification_disabled,
            ..SendWire::messages(&req.messages)
        };
        let answer =
            self.execute(Request::post("reply", "/v2/bot/message/reply").json(&wire)?).await?;
        let sent: SentMessagesWire = answer.json()?;
        Ok(ReplyResponse { request_id: answer.request_id, sent_messages: sent.sent_messages })
    }

    /// Pushes messages to one user, group or room. Retried safely with one retry key; a 409
    /// "already accepted" is a success with `accepted.already_accepted` set.
    ///
    /// # Errors
    /// [`LineError::Validation`] before sending; [`LineError::Api`] (e.g. a quota 429) or
    /// [`LineError::Transport`] after the retries.
    pub async fn push(&self, req: PushRequest) -> Result<PushResponse, LineError> {
        let mut v = Validator::new();
        check_messages(&req.messages, &mut v);
        v.finish()?;
        let key = req.retry_key.unwrap_or_else(RetryKey::generate);
        let wire = SendWire {
            to: Some(ToWire::One(req.to.as_str())),
            notification_disabled: req.notification_disabled,
            custom_aggregation_units: req.aggregation_unit.as_ref().map(|u| [u]),
            ..SendWire::messages(&req.messages)
        };
        let request =
            Request::post("push", "/v2/bot/message/push").json(&wire)?.retry_key(key.clone());
        let answer = self.execute(request).await?;
        // On a 409 LINE repeats the original `sentMessages`; an odd body there is not an error.
        let sent = if answer.already_accepted {
            answer.json::<SentMessagesWire>().unwrap_or_default()
        } else {
            answer.json::<SentMessagesWire>()?
        };
        Ok(PushResponse {
            accepted: Accepted::from_answer(&answer, key),
            sent_messages: sent.sent_messages,
        })
    }

    /// Multicasts to at most 500 users ([`MULTICAST_CHUNK`]) in **one** call, with one retry
    /// key; a 409 "already accepted" is a success with `already_accepted` set. For more users
    /// use [`multicast_all`](Self::multicast_all).
    ///
    /// # Errors
    /// [`LineError::Validation`] (nothing sent) for no recipient, more than 500, more than one
    /// retry key, or invalid messages; [`LineError::Api`] or [`LineError::Transport`] after
    /// the retries.
    pub async fn multicast(&self, req: MulticastRequest) -> Result<Accepted, LineError> {
        let mut v = Validator::new();
        check_recipients_and_messages(&req, &mut v);
        if req.to.len() > MULTICAST_CHUNK {
            v.violation_at(
                "to",
                format!(
                    "must hold at most {MULTICAST_CHUNK} user IDs for one multicast call (got {}); \
                     multicast_all splits larger audiences",
                    req.to.len()
                ),
            );
        }
        if req.retry_keys.len() > 1 {
            v.violation_at(
                "retryKeys",
                format!("one call takes one retry key (got {})", req.retry_keys.len()),
            );
        }
        v.finish()?;
        let key = req.retry_keys.first().cloned().unwrap_or_else(RetryKey::generate);
        self.multicast_call(&req, &req.to, key).await
    }

    /// Multicasts to any number of users in chunks of 500 ([`multicast`](Self::multicast) each),
    /// each chunk with its own retry key and its own outcome. One failing chunk does not stop
    /// the others.
    ///
    /// # Errors
    /// [`LineError::Validation`] (nothing sent) when the request is invalid; errors of single
    /// chunks are in the report.
    pub async fn multicast_all(&self, req: MulticastRequest) -> Result<MulticastReport, LineError> {
        let mut v = Validator::new();
        check_recipients_and_messages(&req, &mut v);
        let chunks = req.chunk_count();
        if !req.retry_keys.is_empty() && req.retry_keys.len() != chunks {
            v.violation_at(
                "retryKeys",
                format!("must hold one key per chunk: {chunks} (got {})", req.retry_keys.len()),
            );
        }
        v.finish()?;
        let keys: Vec<RetryKey> = if req.retry_keys.is_empty() {
            (0..chunks).map(|_| RetryKey::generate()).collect()
        } else {
            req.retry_keys.clone()
        };
        let req = &req;
        let sends =
            req.to.chunks(MULTICAST_CHUNK).zip(keys).enumerate().map(|(index, (to, key))| {
                let start = index * MULTICAST_CHUNK;
                async move {
                    let result = self.multicast_call(req, to, key.clone()).await;
                    ChunkOutcome {
                        index,
                        recipients: start..start + to.len(),
                        retry_key: key,
                        result,
                    }
                }
            });
        // Built eagerly: a lazy `map` held across the await hides that the future is `Send`
        // (rustc's higher-ranked closure limitation), so it could not be spawned.
        let sends: Vec<_> = sends.collect();
        let chunks = futures_util::stream::iter(sends).buffered(req.concurrency).collect().await;
        Ok(MulticastReport { chunks })
    }

    /// One multicast call to `to` (at most 500, validated by the caller) with `key`.
    async fn multicast_call(
        &self,
        req: &MulticastRequest,
        to: &[LineUserId],
        key: RetryKey,
    ) -> Result<Accepted, LineError> {
        let wire = SendWire {
            to: Some(ToWire::Many(to)),
            notification_disabled: req.notification_disabled,
            custom_aggregation_units: req.aggregation_unit.as_ref().map(|u| [u]),
            ..SendWire::messages(&req.messages)
        };
        let request = Request::post("multicast", "/v2/bot/message/multicast")
            .class(EndpointClass::Multicast)
            .json(&wire)?
            .retry_key(key.clone());
        let answer = self.execute(request).await?;
        Ok(Accepted::from_answer(&answer, key))
    }

    /// Broadcasts to every friend of the account.
    ///
    /// # Errors
    /// [`LineError::Validation`], [`LineError::Api`], [`LineError::Transport`].
    pub async fn broadcast(&self, req: BroadcastRequest) -> Result<Accepted, LineError> {
        let mut v = Validator::new();
        check_messages(&req.messages, &mut v);
        v.finish()?;
        let key = req.retry_key.unwrap_or_else(RetryKey::generate);
        let wire = SendWire {
            notification_disabled: req.notification_disabled,
            ..SendWire::messages(&req.messages)
        };
        let request = Request::post("broadcast", "/v2/bot/message/broadcast")
            .class(EndpointClass::Broadcast)
            .json(&wire)?
            .retry_key(key.clone());
        let answer = self.execute(request).await?;
        Ok(Accepted::from_answer(&answer, key))
    }

    /// Starts a narrowcast (LINE answers 202 and sends asynchronously). Follow it with
    /// [`narrowcast_progress`](Self::narrowcast_progress) or
    /// [`wait_for_narrowcast`](Self::wait_for_narrowcast) using the returned request ID.
    ///
    /// # Errors
    /// [`LineError::Validation`], [`LineError::Api`], [`LineError::Transport`].
    pub async fn narrowcast(&self, req: NarrowcastRequest) -> Result<Accepted, LineError> {
        let mut v = Validator::new();
        check_messages(&req.messages, &mut v);
        if let Some(r) = &req.recipient {
            let leaves = r.count_leaves();
            if leaves > 10 {
                v.violation_at(
                    "recipient",
                    format!("at most 10 audience and redelivery objects (got {leaves})"),
                );
            }
        }
        if let Some(l) = &req.limit
            && l.forbid_partial_delivery
            && !l.up_to_remaining_quota
        {
            v.violation_at("limit.forbidPartialDelivery", "requires upToRemainingQuota = true");
        }
        v.finish()?;
        let key = req.retry_key.unwrap_or_else(RetryKey::generate);
        let wire = SendWire {
            notification_disabled: req.notification_disabled,
            recipient: req.recipient.as_ref(),
            filter: req.filter.as_ref(),
            limit: req.limit.as_ref(),
            ..SendWire::messages(&req.messages)
        };
        let request = Request::post("narrowcast", "/v2/bot/message/narrowcast")
            .class(EndpointClass::Broadcast)
            .json(&wire)?
            .retry_key(key.clone());
        let answer = self.execute(request).await?;
        Ok(Accepted::from_answer(&answer, key))
    }

    /// The progress of a narrowcast (available for 14 days).
    ///
    /// # Errors
    /// [`LineError::Api`] (404 for an unknown request ID), [`LineError::Transport`],
    /// [`LineError::Decode`].
    pub async fn narrowcast_progress(
        &self,
        request_id: &RequestId,
    ) -> Result<NarrowcastProgress, LineError> {
        let request = Request::get("narrowcast_progress", "/v2/bot/message/progress/narrowcast")
            .query("requestId", request_id);
        self.execute(request).await?.json()
    }

    /// Polls the progress of a narrowcast every `poll_every` until it succeeds or fails, or
    /// until `give_up_after` has passed (then the last progress seen is returned).
    ///
    /// # Errors
    /// As [`narrowcast_progress`](Self::narrowcast_progress).
    pub async fn wait_for_narrowcast(
        &self,
        request_id: &RequestId,
        poll_every: Duration,
        give_up_after: Duration,
    ) -> Result<NarrowcastProgress, LineError> {
        let deadline = tokio::time::Instant::now() + give_up_after;
        loop {
            let progress = self.narrowcast_progress(request_id).await?;
            if progress.is_finished() || tokio::time::Instant::now() + poll_every > deadline {
                return Ok(progress);
            }
            tokio::time::sleep(poll_every).await;
        }
    }

    /// Asks LINE to validate messages for a send endpoint, without sending or using quota.
    /// Local validation runs first.
    ///
    /// # Errors
    /// [`LineError::Validation`] locally; [`LineError::Api`] with LINE's `details[]` when LINE
    /// finds a problem.
    pub async fn validate_messages(
        &self,
        kind: SendKind,
        messages: &[Message],
    ) -> Result<(), LineError> {
        validate_messages(messages)?;
        let path = format!("/v2/bot/message/validate/{}", kind.as_str());
        self.execute(Request::post("validate_messages", path).json(&SendWire::messages(messages))?)
            .await?;
        Ok(())
    }
}

/// The checks every multicast shares: at least one recipient, valid messages.
fn check_recipients_and_messages(req: &MulticastRequest, v: &mut Validator) {
    if req.to.is_empty() {
        v.violation_at("to", "must hold at least one user ID");
    }
    check_messages(&req.messages, v);
}
