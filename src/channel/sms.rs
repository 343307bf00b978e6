//! SMS: a provider trait, a Twilio Messages API adapter, and the channel over any provider.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::address::PhoneNumber;
use super::{Address, Channel, ChannelError, ChannelKind, ChannelReceipt, ChannelSend};

/// What an SMS provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmsReceipt {
    /// The provider's message ID (Twilio's `sid`).
    pub id: String,
}

impl SmsReceipt {
    /// A receipt with the provider's message ID.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// Sends one SMS. Object-safe; implement it for another provider.
#[async_trait]
pub trait SmsProvider: Send + Sync + fmt::Debug {
    /// Sends `body` to `to`. `reference` is stable across resends of one journal batch.
    async fn send_sms(
        &self,
        to: &PhoneNumber,
        body: &str,
        reference: &str,
    ) -> Result<SmsReceipt, ChannelError>;
}

/// SMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form
/// fields `To`, `From` or `MessagingServiceSid`, `Body`; HTTP Basic auth with the account SID
/// and auth token). The base URL is overridable, for tests against a fake.
#[derive(Clone)]
pub struct TwilioSms {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSms")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TwilioSms`]; [`build`](Self::build) reports the first invalid value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct TwilioSmsBuilder {
    base_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
    timeout: Duration,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for TwilioSmsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSmsBuilder")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioSmsBuilder {
    /// The API base URL (default `https://api.twilio.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The per-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A caller-supplied HTTP client.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the adapter.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] for an empty account SID, auth token or sender, or a base
    /// URL that is not http(s).
    pub fn build(self) -> Result<TwilioSms, ChannelError> {
        let bad = |message: &str| ChannelError::Unsupported {
            channel: ChannelKind::Sms,
            message: message.to_owned(),
        };
        if self.account_sid.trim().is_empty() || self.auth_token.expose_secret().is_empty() {
            return Err(bad("the Twilio account SID and auth token must not be empty"));
        }
        if self.from.trim().is_empty() {
            return Err(bad("the sender (From or MessagingServiceSid) must not be empty"));
        }
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(bad("the Twilio base URL must be http(s)"));
        }
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder().timeout(self.timeout).build().map_err(|e| {
                ChannelError::Rejected {
                    channel: ChannelKind::Sms,
                    message: "building the HTTP client".into(),
                    source: Some(Box::new(e)),
                }
            })?,
        };
        Ok(TwilioSms {
            http,
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            account_sid: self.account_sid,
            auth_token: self.auth_token,
            from: self.from,
        })
    }
}

#[derive(Deserialize)]
struct TwilioMessage {
    sid: String,
}

#[derive(Deserialize, Default)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Twilio error codes that mean "this number cannot get SMS".
const INVALID_TO_CODES: &[i64] = &[21211, 21214, 21217, 21612, 21614, 21408, 21610];

impl TwilioSms {
    /// A builder for account `account_sid`, authenticated by `auth_token`, sending from
    /// `from` (an E.164 number, an alphanumeric sender ID, or a `MG…` messaging service SID).
    pub fn builder(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        from: impl Into<String>,
    ) -> TwilioSmsBuilder {
        TwilioSmsBuilder {
            base_url: "https://api.twilio.com".into(),
            account_sid: account_sid.into(),
            auth_token: SecretString::from(auth_token.into()),
            from: from.into(),
            timeout: Duration::from_secs(10),
            http: None,
        }
    }
}

#[async_trait]
impl SmsProvider for TwilioSms {
    async fn send_sms(
        &self,
        to: &PhoneNumber,
        body: &str,
        reference: &str,
    ) -> Result<SmsReceipt, ChannelError> {
        let url =
            format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid);
        let sender_field = if self.from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to.as_str())
            .append_pair(sender_field, &self.from)
            .append_pair("Body", body)
            .finish();
        let sms = ChannelKind::Sms;
        let resp = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| ChannelError::Transient {
                channel: sms,
                message: format!("Twilio could not be reached (reference {reference})"),
                source: Some(Box::new(e)),
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        if status.is_success() {
            let msg: TwilioMessage =
                serde_json::from_slice(&bytes).map_err(|e| ChannelError::Transient {
                    channel: sms,
                    message: format!("Twilio answered {status} with an unreadable body"),
                    source: Some(Box::new(e)),
                })?;
            return Ok(SmsReceipt::new(msg.sid));
        }
        let err: TwilioError = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = format!(
            "Twilio answered {status}: {} (code {})",
            err.message
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            err.code.map_or_else(|| "none".into(), |c| c.to_string())
        );
        if status.as_u16() == 429 || status.is_server_error() {
            Err(ChannelError::Transient { channel: sms, message, source: None })
        } else if err.code.is_some_and(|c| INVALID_TO_CODES.contains(&c)) {
            Err(ChannelError::InvalidRecipient { channel: sms, message })
        } else {
            Err(ChannelError::Rejected { channel: sms, message, source: None })
        }
    }
}

/// SMS as a channel, over any [`SmsProvider`].
#[derive(Debug, Clone)]
pub struct SmsChannel {
    provider: Arc<dyn SmsProvider>,
}

impl SmsChannel {
    /// Sends through `provider`.
    #[must_use]
    pub fn new(provider: Arc<dyn SmsProvider>) -> Self {
        Self { provider }
    }
}

#[async_trait]
impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError> {
        let Address::Phone(phone) = &send.address else {
            return Err(ChannelError::Unsupported {
                channel: ChannelKind::Sms,
                message: "an SMS needs a phone number".into(),
            });
        };
        let Some(body) = send.text(0) else {
            return Err(ChannelError::Unsupported {
                channel: ChannelKind::Sms,
                message: "an SMS batch holds its text as one text message".into(),
            });
        };
        let receipt = self.provider.send_sms(phone, body, send.batch.as_str()).await?;
        Ok(ChannelReceipt::new(Some(receipt.id)))
    }
}
