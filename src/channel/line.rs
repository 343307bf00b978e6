//! LINE as channels: push to a linked user, and notification messages (PNP) to a phone.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use http::StatusCode;

use super::{Address, Channel, ChannelError, ChannelKind, ChannelReceipt, ChannelSend};
use crate::BatchId;
use crate::line::webhook::{Event, EventKind};
use crate::line::{LineClient, LineError, PnpPushRequest, PushRequest, Recipient};

fn line_error(channel: ChannelKind, e: LineError) -> ChannelError {
    let message = crate::error::chain_message(&e);
    let status = e.status();
    if e.is_retryable() || matches!(e, LineError::Transport { .. } | LineError::RateLimiter { .. })
    {
        ChannelError::Transient { channel, message, source: Some(Box::new(e)) }
    } else if status == Some(StatusCode::NOT_FOUND)
        || (status == Some(StatusCode::UNPROCESSABLE_ENTITY) && channel == ChannelKind::Pnp)
    {
        ChannelError::InvalidRecipient { channel, message }
    } else {
        ChannelError::Rejected { channel, message, source: Some(Box::new(e)) }
    }
}

/// LINE push through a [`LineClient`], with the batch's retry key (a resend after a crash is
/// answered 409 and counts as sent once).
#[derive(Debug, Clone)]
pub struct LinePushChannel {
    client: LineClient,
}

impl LinePushChannel {
    /// Pushes through `client`.
    #[must_use]
    pub fn new(client: LineClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Channel for LinePushChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Line
    }

    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError> {
        let Address::Line(user) = &send.address else {
            return Err(ChannelError::Unsupported {
                channel: ChannelKind::Line,
                message: "LINE push needs a LINE user".into(),
            });
        };
        let req = PushRequest::new(Recipient::User(user.clone()), send.messages.clone())
            .retry_key(send.retry_key.clone());
        let resp = self.client.push(req).await.map_err(|e| line_error(ChannelKind::Line, e))?;
        Ok(ChannelReceipt {
            provider_id: resp.accepted.effective_request_id().map(|r| r.as_str().to_owned()),
            already_accepted: resp.accepted.already_accepted,
        })
    }
}

/// The `X-Line-Delivery-Tag` of a notification message: derived from the batch ID (36
/// characters), so the `delivery` webhook event names the batch.
#[must_use]
pub fn pnp_delivery_tag(batch: &BatchId) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(batch.as_str().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("enishi{hex}")
}

/// LINE notification messages (PNP) to the customer's hashed phone number. Transactional only:
/// the router never picks PNP for marketing.
#[derive(Debug, Clone)]
pub struct PnpChannel {
    client: LineClient,
}

impl PnpChannel {
    /// Sends through `client` (a channel with PNP enabled by LINE).
    #[must_use]
    pub fn new(client: LineClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Channel for PnpChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Pnp
    }

    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError> {
        let Address::Phone(phone) = &send.address else {
            return Err(ChannelError::Unsupported {
                channel: ChannelKind::Pnp,
                message: "a notification message needs a phone number".into(),
            });
        };
        let req = PnpPushRequest::new(phone.hashed(), send.messages.clone())
            .delivery_tag(pnp_delivery_tag(&send.batch));
        let resp = self.client.pnp_push(req).await.map_err(|e| line_error(ChannelKind::Pnp, e))?;
        Ok(ChannelReceipt::new(resp.request_id.map(|r| r.as_str().to_owned())))
    }
}

/// The notification messages LINE reported delivered (`delivery` webhook events), by delivery
/// tag.
#[derive(Debug, Default)]
pub struct PnpDeliveries {
    tags: Mutex<HashSet<String>>,
}

impl PnpDeliveries {
    /// None yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `event` if it is a `delivery` event; returns whether it was.
    pub fn record(&self, event: &Event) -> bool {
        let EventKind::Delivery(d) = &event.kind else { return false };
        self.tags.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(d.data.clone());
        true
    }

    /// Whether the notification message of `batch` was delivered.
    #[must_use]
    pub fn delivered(&self, batch: &BatchId) -> bool {
        self.tags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&pnp_delivery_tag(batch))
    }

    /// How many deliveries were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tags.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether none was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
