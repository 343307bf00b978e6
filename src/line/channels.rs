//! Several official accounts in one process: a registry of channels keyed by their bot's user
//! ID (the webhook `destination`), each with its webhook secret(s) and its client.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use super::client::{LineClient, LineError};
use super::webhook::{ChannelSecrets, WebhookError, WebhookPayload, parse};

/// One official account: its bot user ID, the secret(s) its webhooks are signed with, and
/// the client that calls LINE as it. Cheap to clone.
#[derive(Clone)]
pub struct LineChannel {
    inner: Arc<ChannelInner>,
}

struct ChannelInner {
    bot_user_id: String,
    name: Option<String>,
    secrets: ChannelSecrets,
    client: LineClient,
}

impl fmt::Debug for LineChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineChannel")
            .field("bot_user_id", &self.inner.bot_user_id)
            .field("name", &self.inner.name)
            .field("secrets", &self.inner.secrets)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl LineChannel {
    /// A channel whose bot has user ID `bot_user_id` (what its webhooks carry as
    /// `destination`; [`LineClient::bot_info`] tells it).
    pub fn new(
        bot_user_id: impl Into<String>,
        secrets: impl Into<ChannelSecrets>,
        client: LineClient,
    ) -> Self {
        Self {
            inner: Arc::new(ChannelInner {
                bot_user_id: bot_user_id.into(),
                name: None,
                secrets: secrets.into(),
                client,
            }),
        }
    }

    /// Asks LINE for the bot's user ID with `client`, and builds the channel.
    ///
    /// # Errors
    /// The error of [`LineClient::bot_info`].
    pub async fn discover(
        secrets: impl Into<ChannelSecrets>,
        client: LineClient,
    ) -> Result<Self, LineError> {
        let info = client.bot_info().await?;
        Ok(Self::new(info.user_id.as_str(), secrets, client).named(info.display_name))
    }

    /// A name for logs (e.g. the shop or the account's display name).
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(ChannelInner {
                bot_user_id: inner.bot_user_id.clone(),
                name: Some(name.into()),
                secrets: inner.secrets.clone(),
                client: inner.client.clone(),
            }),
        }
    }

    /// The bot's user ID.
    #[must_use]
    pub fn bot_user_id(&self) -> &str {
        &self.inner.bot_user_id
    }

    /// The name given with [`named`](Self::named).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The client calling LINE as this account.
    #[must_use]
    pub fn client(&self) -> &LineClient {
        &self.inner.client
    }

    /// The accepted webhook secrets.
    #[must_use]
    pub fn secrets(&self) -> &ChannelSecrets {
        &self.inner.secrets
    }
}

/// Why a webhook request could not be routed to a channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelRouteError {
    /// The body has no `destination`, so no channel's secret can be chosen.
    #[error("the webhook body has no destination")]
    MissingDestination,
    /// No registered channel has this bot user ID.
    #[error("no channel is registered for destination {0:?}")]
    UnknownDestination(String),
    /// The channel's signature check or the parse failed.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

impl ChannelRouteError {
    /// The status to answer LINE with: 401 for anything that is not a verified payload of a
    /// known channel, 400 for a verified body that is not a webhook payload.
    #[must_use]
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::MissingDestination | Self::UnknownDestination(_) => {
                http::StatusCode::UNAUTHORIZED
            }
            Self::Webhook(e) => e.http_status(),
        }
    }
}

/// The channels of one process, keyed by bot user ID. Cheap to clone.
///
/// ```
/// use enishi::line::webhook::{ChannelSecret, sign};
/// use enishi::line::{LineChannel, LineChannels, LineClient};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shop_a = LineChannel::new(
///     "U00000000000000000000000000000001",
///     ChannelSecret::new("secret-a"),
///     LineClient::new("token-a")?,
/// );
/// let shop_b = LineChannel::new(
///     "U00000000000000000000000000000002",
///     ChannelSecret::new("secret-b"),
///     LineClient::new("token-b")?,
/// );
/// let channels = LineChannels::new([shop_a, shop_b])?;
///
/// let body = br#"{"destination":"U00000000000000000000000000000002","events":[]}"#;
/// let signature = sign(&ChannelSecret::new("secret-b"), body);
/// let (channel, payload) = channels.verify_and_parse(Some(&signature), body)?;
/// assert_eq!(channel.bot_user_id(), "U00000000000000000000000000000002");
/// assert!(payload.events.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct LineChannels {
    by_bot: Arc<HashMap<String, LineChannel>>,
}

impl fmt::Debug for LineChannels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bots: Vec<&String> = self.by_bot.keys().collect();
        bots.sort();
        f.debug_struct("LineChannels").field("bot_user_ids", &bots).finish()
    }
}

impl LineChannels {
    /// A registry of `channels`.
    ///
    /// # Errors
    /// [`LineError::Config`] when two channels have the same bot user ID or one is empty.
    pub fn new(channels: impl IntoIterator<Item = LineChannel>) -> Result<Self, LineError> {
        let mut by_bot = HashMap::new();
        for channel in channels {
            let id = channel.bot_user_id().to_owned();
            if id.is_empty() {
                return Err(LineError::Config("a channel has an empty bot user ID".into()));
            }
            if by_bot.insert(id.clone(), channel).is_some() {
                return Err(LineError::Config(format!("two channels have bot user ID {id:?}")));
            }
        }
        Ok(Self { by_bot: Arc::new(by_bot) })
    }

    /// The channel of a bot user ID (a webhook `destination`).
    #[must_use]
    pub fn get(&self, bot_user_id: &str) -> Option<&LineChannel> {
        self.by_bot.get(bot_user_id)
    }

    /// The client of a bot user ID.
    #[must_use]
    pub fn client(&self, bot_user_id: &str) -> Option<&LineClient> {
        self.get(bot_user_id).map(LineChannel::client)
    }

    /// How many channels are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_bot.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_bot.is_empty()
    }

    /// Every channel, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &LineChannel> {
        self.by_bot.values()
    }

    /// Picks the channel named by the body's `destination`, verifies the signature with that
    /// channel's secret(s), and returns the channel. Only `destination` is read before the
    /// signature is checked; nothing else of an unverified body is used.
    ///
    /// # Errors
    /// [`ChannelRouteError`]: no or an unknown destination, or the channel's signature check
    /// failed.
    pub fn verify(
        &self,
        signature_header: Option<&str>,
        raw_body: &[u8],
    ) -> Result<LineChannel, ChannelRouteError> {
        #[derive(Deserialize)]
        struct Peek {
            #[serde(default)]
            destination: Option<String>,
        }
        let destination = serde_json::from_slice::<Peek>(raw_body)
            .ok()
            .and_then(|p| p.destination)
            .ok_or(ChannelRouteError::MissingDestination)?;
        let channel = self.get(&destination).cloned().ok_or_else(|| {
            tracing::warn!(
                target: "enishi::line",
                destination = %destination,
                "webhook for an unknown channel"
            );
            ChannelRouteError::UnknownDestination(destination)
        })?;
        channel.secrets().verify(signature_header, raw_body)?;
        Ok(channel)
    }

    /// [`verify`](Self::verify), then parses the body.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), and [`WebhookError::Parse`] for a verified body that is
    /// not a webhook payload.
    pub fn verify_and_parse(
        &self,
        signature_header: Option<&str>,
        raw_body: &[u8],
    ) -> Result<(LineChannel, WebhookPayload), ChannelRouteError> {
        let channel = self.verify(signature_header, raw_body)?;
        let payload = parse(raw_body).map_err(WebhookError::Parse)?;
        Ok((channel, payload))
    }
}
