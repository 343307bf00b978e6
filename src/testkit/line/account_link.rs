//! The account-link dialog (`https://access.line.me/dialog/bot/accountLink`): the fake checks
//! the link token it issued and sends the signed `accountLink` webhook, as LINE does.

use chrono::Utc;
use serde_json::json;

use super::state::lock;
use super::{FakeLine, TestkitError};
use crate::line::webhook::{ChannelSecret, SIGNATURE_HEADER, sign};

/// What the fake account-link dialog did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogOutcome {
    /// The opener is the token's user: an `accountLink` `ok` event was sent; the webhook
    /// endpoint answered `status`.
    Linked {
        /// The webhook endpoint's HTTP status.
        status: u16,
    },
    /// The opener is someone else: a `failed` event (no `source`) was sent.
    Failed {
        /// The webhook endpoint's HTTP status.
        status: u16,
    },
    /// The token is unknown, used or older than 10 minutes: LINE shows an error and sends
    /// **no** event.
    NoEvent,
}

impl FakeLine {
    /// Simulates `opener` (a LINE user ID) opening LINE's account-link dialog URL
    /// (`…/dialog/bot/accountLink?linkToken=…&nonce=…`): checks the link token was issued by
    /// this fake, unused and under 10 minutes old, spends it, and POSTs a webhook signed with
    /// `secret` to `webhook_url` — `ok` with the opener as source, or `failed` without source
    /// when the opener is not the token's user.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] when the dialog URL lacks its parameters or the webhook
    /// cannot be delivered.
    pub async fn open_account_link_dialog(
        &self,
        dialog_url: &str,
        opener: &str,
        webhook_url: &str,
        secret: &ChannelSecret,
    ) -> Result<DialogOutcome, TestkitError> {
        let bad =
            |reason: String| TestkitError::InvalidConfig { field: "dialog_url".into(), reason };
        let url = url::Url::parse(dialog_url).map_err(|e| bad(e.to_string()))?;
        if url.path() != "/dialog/bot/accountLink" {
            return Err(bad(format!("unexpected path {:?}", url.path())));
        }
        let param =
            |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let token = param("linkToken").ok_or_else(|| bad("no linkToken".into()))?;
        let nonce = param("nonce").ok_or_else(|| bad("no nonce".into()))?;
        let issued_to = lock(&self.app.link_tokens)
            .iter()
            .find(|t| t.link_token == token && Utc::now() - t.at < chrono::Duration::minutes(10))
            .map(|t| t.user_id.clone());
        let Some(issued_to) = issued_to else { return Ok(DialogOutcome::NoEvent) };
        if !lock(&self.app.used_link_tokens).insert(token) {
            return Ok(DialogOutcome::NoEvent);
        }
        let ok = issued_to == opener;
        let mut event = json!({
            "type": "accountLink",
            "mode": "active",
            "timestamp": Utc::now().timestamp_millis(),
            "webhookEventId": format!("01FAKE{}", uuid::Uuid::new_v4().simple()).to_uppercase(),
            "deliveryContext": { "isRedelivery": false },
            "link": { "result": if ok { "ok" } else { "failed" }, "nonce": nonce },
        });
        if ok {
            event["source"] = json!({ "type": "user", "userId": opener });
            // A real reply token: the bot may answer the user with the link's outcome.
            event["replyToken"] = json!(self.issue_reply_token(opener)?);
        }
        let body = serde_json::to_vec(&json!({ "destination": "Ufakebot", "events": [event] }))
            .map_err(|e| bad(e.to_string()))?;
        let status = self.post_webhook(webhook_url, secret, body).await?;
        Ok(if ok { DialogOutcome::Linked { status } } else { DialogOutcome::Failed { status } })
    }

    /// POSTs `body` to a webhook endpoint with a valid `x-line-signature`; returns the status.
    /// Tests use it to redeliver an event.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] when the request fails.
    pub async fn post_webhook(
        &self,
        webhook_url: &str,
        secret: &ChannelSecret,
        body: Vec<u8>,
    ) -> Result<u16, TestkitError> {
        let signature = sign(secret, &body);
        let response = reqwest::Client::new()
            .post(webhook_url)
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| TestkitError::InvalidConfig {
                field: "webhook_url".into(),
                reason: format!("delivery failed: {e}"),
            })?;
        Ok(response.status().as_u16())
    }
}
