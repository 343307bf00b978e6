//! LINE-style responses.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// What the outer service should do or count for a response, carried in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// LINE's rate-limit 429.
    RateLimited,
    /// LINE's monthly-limit 429.
    QuotaExceeded,
    /// Close the connection without answering.
    Drop,
}

/// One entry of an error body's `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Detail {
    pub(crate) message: String,
    pub(crate) property: Option<String>,
}

impl Detail {
    pub(crate) fn new(property: impl Into<String>, message: impl Into<String>) -> Self {
        Self { message: message.into(), property: Some(property.into()) }
    }

    pub(crate) fn message_only(message: impl Into<String>) -> Self {
        Self { message: message.into(), property: None }
    }
}

pub(crate) const RATE_LIMIT_MESSAGE: &str =
    "The API rate limit has been exceeded. Try again later.";
pub(crate) const QUOTA_MESSAGE: &str = "You have reached your monthly limit.";
pub(crate) const CONFLICT_MESSAGE: &str = "The retry key is already accepted";

/// A JSON response from already-serialised bytes.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()))
}

/// `200 {}`.
pub(crate) fn ok_empty() -> Response {
    json_bytes(StatusCode::OK, b"{}".to_vec())
}

/// `202 {}`.
pub(crate) fn accepted_empty() -> Response {
    json_bytes(StatusCode::ACCEPTED, b"{}".to_vec())
}

/// A LINE error body `{"message", "details"?}`.
pub(crate) fn error_with(status: StatusCode, message: &str, details: &[Detail]) -> Response {
    let mut body = json!({ "message": message });
    if !details.is_empty() {
        body["details"] = details
            .iter()
            .map(|d| {
                let mut item = json!({ "message": d.message });
                if let Some(property) = &d.property {
                    item["property"] = json!(property);
                }
                item
            })
            .collect();
    }
    json(status, &body)
}

/// A LINE error body without details.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    error_with(status, message, &[])
}

/// `400` listing validation problems, worded like LINE's "The request body has N error(s)".
pub(crate) fn invalid(details: &[Detail]) -> Response {
    error_with(
        StatusCode::BAD_REQUEST,
        &format!("The request body has {} error(s)", details.len()),
        details,
    )
}

pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found")
}

pub(crate) fn rate_limited() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, RATE_LIMIT_MESSAGE);
    response.extensions_mut().insert(Marker::RateLimited);
    response
}

pub(crate) fn quota_exceeded() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, QUOTA_MESSAGE);
    response.extensions_mut().insert(Marker::QuotaExceeded);
    response
}

pub(crate) fn server_error() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// A placeholder the outer service turns into a closed connection.
pub(crate) fn drop_connection() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(Marker::Drop);
    response
}
