//! The account-link dialog (`https://access.line.me/dialog/bot/accountLink`): the fake checks
//! the link token it issued and sends the signed `accountLink` webhook, as LINE does.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use serde_json::json;

use super::state::{App, lock};
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
        open_dialog(&self.app, dialog_url, Some(opener), webhook_url, secret).await
    }

    /// Serves LINE's account-link dialog to a browser, as LINE's app does: `GET
    /// /dialog/bot/accountLink?linkToken=…&nonce=…` on the returned host checks the token
    /// like [`open_account_link_dialog`](Self::open_account_link_dialog) with the token's own
    /// user as the opener (LINE's app knows who is signed in), POSTs the signed webhook, and
    /// shows LINE's end page ("back to the chat"). Point the linker's access base URL at
    /// [`FakeDialog::base_url`].
    ///
    /// # Errors
    /// [`TestkitError::Bind`] when no port could be bound.
    pub async fn serve_account_link_dialog(
        &self,
        webhook_url: impl Into<String>,
        secret: ChannelSecret,
    ) -> Result<FakeDialog, TestkitError> {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(TestkitError::Bind)?;
        let addr = listener.local_addr().map_err(TestkitError::Bind)?;
        let state = DialogState {
            app: Arc::clone(&self.app),
            base: format!("http://{addr}"),
            webhook_url: webhook_url.into(),
            secret,
            outcomes: Arc::new(Mutex::new(Vec::new())),
        };
        let outcomes = Arc::clone(&state.outcomes);
        let router = axum::Router::new()
            .route("/dialog/bot/accountLink", axum::routing::get(dialog_page))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeDialog { base_url: format!("http://{addr}"), outcomes, task })
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
        post_webhook(webhook_url, secret, body).await
    }
}

/// A fake LINE account-link dialog host for browsers (see
/// [`FakeLine::serve_account_link_dialog`]). Stops when dropped.
#[derive(Debug)]
pub struct FakeDialog {
    base_url: String,
    outcomes: Arc<Mutex<Vec<DialogOutcome>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDialog {
    /// `http://127.0.0.1:PORT`: the linker's access base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What each opening of the dialog did, in order.
    #[must_use]
    pub fn outcomes(&self) -> Vec<DialogOutcome> {
        self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FakeDialog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct DialogState {
    app: Arc<App>,
    base: String,
    webhook_url: String,
    secret: ChannelSecret,
    outcomes: Arc<Mutex<Vec<DialogOutcome>>>,
}

async fn dialog_page(
    axum::extract::State(state): axum::extract::State<DialogState>,
    uri: axum::http::Uri,
) -> axum::response::Html<String> {
    let url = format!("{}{}", state.base, uri);
    let outcome = open_dialog(&state.app, &url, None, &state.webhook_url, &state.secret).await;
    let (title, text) = match &outcome {
        Ok(DialogOutcome::Linked { status }) if *status < 300 => {
            ("アカウント連携", "連携が完了しました。トーク画面に戻ります。")
        }
        Ok(DialogOutcome::NoEvent) => {
            ("エラー", "このURLは無効です。有効期限が切れたか、すでに使用されています。")
        }
        _ => ("エラー", "アカウント連携に失敗しました。"),
    };
    if let Ok(o) = outcome {
        state.outcomes.lock().unwrap_or_else(PoisonError::into_inner).push(o);
    }
    axum::response::Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>LINE {title}</title></head><body style=\"font-family:sans-serif;font-size:16px;margin:24px\">\
         <h1>{title}</h1><p id=\"fake-line-dialog\">{text}</p></body></html>"
    ))
}

/// The dialog: checks the link token this fake issued (unused, under 10 minutes old), spends
/// it, and POSTs the signed `accountLink` event. `opener` defaults to the token's own user.
async fn open_dialog(
    app: &Arc<App>,
    dialog_url: &str,
    opener: Option<&str>,
    webhook_url: &str,
    secret: &ChannelSecret,
) -> Result<DialogOutcome, TestkitError> {
    let bad = |reason: String| TestkitError::InvalidConfig { field: "dialog_url".into(), reason };
    let url = url::Url::parse(dialog_url).map_err(|e| bad(e.to_string()))?;
    if url.path() != "/dialog/bot/accountLink" {
        return Err(bad(format!("unexpected path {:?}", url.path())));
    }
    let param =
        |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let token = param("linkToken").ok_or_else(|| bad("no linkToken".into()))?;
    let nonce = param("nonce").ok_or_else(|| bad("no nonce".into()))?;
    let issued_to = lock(&app.link_tokens)
        .iter()
        .find(|t| t.link_token == token && Utc::now() - t.at < chrono::Duration::minutes(10))
        .map(|t| t.user_id.clone());
    let Some(issued_to) = issued_to else { return Ok(DialogOutcome::NoEvent) };
    if !lock(&app.used_link_tokens).insert(token) {
        return Ok(DialogOutcome::NoEvent);
    }
    let opener = opener.unwrap_or(&issued_to);
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
        event["replyToken"] = json!(super::issue_reply_token(app, opener)?);
    }
    let body = serde_json::to_vec(&json!({ "destination": "Ufakebot", "events": [event] }))
        .map_err(|e| bad(e.to_string()))?;
    let status = post_webhook(webhook_url, secret, body).await?;
    Ok(if ok { DialogOutcome::Linked { status } } else { DialogOutcome::Failed { status } })
}

async fn post_webhook(
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
