//! Several official accounts in one process: one [`Enishi`] per account (its own LINE
//! client, storage channel, scenarios and menus), built with [`EnishiBuilder::channel`], and
//! one webhook route in front of them all ([`Enishi::channels_router`]) that sends each
//! request to the app of the account its `destination` names, verified with that account's
//! secret. Each app sends, replies and switches menus through its own client.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;

use super::routes::AppEvents;
use super::{AppError, Enishi, EnishiBuilder};
use crate::line::webhook::{Delivery, EventHandler, HandlerError, WebhookService};
use crate::line::{LineChannel, LineChannels};

impl EnishiBuilder {
    /// This app serves one official account of several: `channel` gives its LINE client
    /// (unless [`line`](Self::line) sets another) and the secret(s) its webhooks are signed
    /// with (unless [`channel_secret`](Self::channel_secret) sets one). Serve the accounts'
    /// webhooks together with [`Enishi::channels_router`]; give each app its own storage
    /// channel ([`StorageBuilder::channel`](crate::storage::StorageBuilder::channel)) and
    /// public URL.
    pub fn channel(mut self, channel: LineChannel) -> Self {
        self.channel = Some(channel);
        self
    }
}

/// Routes each webhook delivery to the app of the account it was sent to.
#[derive(Clone)]
struct ChannelEvents {
    by_bot: Arc<HashMap<String, AppEvents>>,
}

#[async_trait::async_trait]
impl EventHandler for ChannelEvents {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let bot = delivery.channel.as_ref().map(LineChannel::bot_user_id);
        match bot.and_then(|b| self.by_bot.get(b)) {
            Some(app) => app.handle(delivery).await,
            // Verified with a registered channel's secret, so this cannot happen; say so.
            None => Err("a delivery for no registered app".into()),
        }
    }
}

impl Enishi {
    /// The official account this app serves ([`EnishiBuilder::channel`]).
    #[must_use]
    pub fn line_channel(&self) -> Option<&LineChannel> {
        self.inner.channel.as_ref()
    }

    /// One `/webhook` route for several apps, one per official account (each built with
    /// [`EnishiBuilder::channel`]): a request is verified with the secret(s) of the account
    /// its `destination` names and handled by that account's app (links, follows, menus,
    /// chat, replies through that account's client); an unknown destination or a wrong
    /// signature is answered 401. Events are de-duplicated in the first app's storage (their
    /// IDs are unique across accounts).
    ///
    /// # Errors
    /// [`AppError::Missing`] without apps or for an app without a channel;
    /// [`AppError::Config`] when two apps serve the same account.
    pub fn channels_router(apps: &[Self]) -> Result<Router, AppError> {
        let first = apps.first().ok_or(AppError::Missing("at least one app"))?;
        let mut by_bot = HashMap::new();
        let mut channels = Vec::new();
        for app in apps {
            let channel = app
                .inner
                .channel
                .clone()
                .ok_or(AppError::Missing("a channel (`channel`) on every app"))?;
            by_bot.insert(channel.bot_user_id().to_owned(), AppEvents { app: app.clone() });
            channels.push(channel);
        }
        let channels = LineChannels::new(channels).map_err(|e| AppError::Config(e.to_string()))?;
        tracing::info!(target: "enishi::app", accounts = channels.len(), "webhook routed by destination");
        let service = WebhookService::for_channels(channels)
            .dedup_shared(first.storage().dedup())
            .handle_before_responding(true)
            .build(ChannelEvents { by_bot: Arc::new(by_bot) });
        Ok(service.router("/webhook"))
    }
}
