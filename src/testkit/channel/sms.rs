//! A fake SMS provider speaking Twilio's Messages API shape.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::testkit::TestkitError;

/// The account SID [`FakeSms`] accepts.
pub const FAKE_SMS_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The auth token [`FakeSms`] accepts.
pub const FAKE_SMS_AUTH_TOKEN: &str = "fake-sms-auth-token";

/// One SMS the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedSms {
    /// The message SID the fake gave it.
    pub sid: String,
    /// `To` (E.164).
    pub to: String,
    /// `From` or `MessagingServiceSid`.
    pub from: String,
    /// `Body`.
    pub body: String,
}

#[derive(Debug, Default)]
struct Inner {
    sent: Vec<RecordedSms>,
    /// Statuses to answer the next requests with, instead of accepting them.
    faults: VecDeque<u16>,
}

/// A fake SMS provider on 127.0.0.1 in the shape of Twilio's Messages API: `POST
/// /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic auth and a form body
/// (`To`, `From` or `MessagingServiceSid`, `Body`). It validates what Twilio validates (auth,
/// E.164 `To` — error 21211 —, a sender, a body of 1 to 1,600 characters), answers 201 with a
/// `sid`, and records every accepted message ([`messages`](Self::messages)).
#[derive(Debug)]
pub struct FakeSms {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl Drop for FakeSms {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "code": code, "message": message, "status": status.as_u16() }).to_string(),
    )
        .into_response()
}

async fn messages(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{FAKE_SMS_ACCOUNT_SID}:{FAKE_SMS_AUTH_TOKEN}"))
    );
    let authorised =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorised || account != FAKE_SMS_ACCOUNT_SID {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if let Some(status) = inner.lock().unwrap_or_else(PoisonError::into_inner).faults.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return twilio_error(status, 20500, "Injected fault");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let to = field("To").unwrap_or_default();
    let digits = to.strip_prefix('+').unwrap_or("");
    if !((8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0'))
    {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(from) = field("From").or_else(|| field("MessagingServiceSid")) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required.");
    };
    let body_text = field("Body").unwrap_or_default();
    if body_text.is_empty() || body_text.chars().count() > 1600 {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
    let sid = format!("SM{:032x}", inner.sent.len() + 1);
    inner.sent.push(RecordedSms {
        sid: sid.clone(),
        to: to.clone(),
        from: from.clone(),
        body: body_text.clone(),
    });
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "sid": sid, "to": to, "from": from, "body": body_text, "status": "queued",
                "account_sid": FAKE_SMS_ACCOUNT_SID })
        .to_string(),
    )
        .into_response()
}

impl FakeSms {
    /// Starts the fake on an ephemeral port.
    ///
    /// # Errors
    /// [`TestkitError::Bind`] when no port can be bound.
    pub async fn start() -> Result<Self, TestkitError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(TestkitError::Bind)?;
        let addr = listener.local_addr().map_err(TestkitError::Bind)?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Messages.json", post(messages))
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner, task })
    }

    /// The base URL to give the Twilio adapter.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted message, in order.
    #[must_use]
    pub fn messages(&self) -> Vec<RecordedSms> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).sent.clone()
    }

    /// Answers the next `statuses.len()` requests with these HTTP statuses instead of
    /// accepting them (e.g. 503 to test retries).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).faults.extend(statuses);
    }
}
