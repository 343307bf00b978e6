//! The LINE client's error.

use std::fmt;

use http::StatusCode;
use serde::Deserialize;

use crate::RequestId;
use crate::line::ValidationError;

/// Everything that can go wrong when calling the LINE Messaging API.
///
/// Inspect it with the predicates ([`status`](Self::status), [`is_retryable`](Self::is_retryable),
/// [`is_rate_limited`](Self::is_rate_limited), [`is_quota_exceeded`](Self::is_quota_exceeded),
/// [`request_id`](Self::request_id)) rather than by matching: new variants may be added.
///
/// `Debug` shows a [`Decode`](Self::Decode) body with token values (`linkToken`, …) hidden and
/// cut after 512 characters; the field itself keeps the body as received.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// LINE answered with an error status. The body, request IDs and status are kept.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request never got an HTTP answer (connect failure, timeout, dropped connection).
    #[error("calling LINE {endpoint} failed after {attempts} attempt(s)")]
    Transport {
        /// The endpoint that was called, e.g. `push`.
        endpoint: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The transport error of the last attempt.
        #[source]
        source: reqwest::Error,
    },
    /// LINE answered 2xx but the body did not have the documented shape.
    #[error("could not decode LINE's answer to {endpoint} (status {status})")]
    Decode {
        /// The endpoint that was called.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: StatusCode,
        /// `x-line-request-id` of the answer.
        request_id: Option<RequestId>,
        /// The raw body, as received (lossy UTF-8).
        body: String,
        /// The JSON error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The request broke one of LINE's documented limits; it was not sent.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The client was configured with an invalid value.
    #[error("invalid LINE client configuration: {0}")]
    Config(String),
    /// The rate limiter could not pace the request (e.g. its Redis was unreachable), so the
    /// request was not sent in this attempt. Retryable: nothing reached LINE.
    #[error("pacing LINE {endpoint} failed (attempt {attempts})")]
    RateLimiter {
        /// The endpoint that was to be called.
        endpoint: &'static str,
        /// The attempt that could not be paced (earlier attempts did reach LINE).
        attempts: u32,
        /// The limiter's error.
        #[source]
        source: super::ratelimit::RateLimiterError,
    },
}

impl fmt::Debug for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(e) => f.debug_tuple("Api").field(e).finish(),
            Self::Transport { endpoint, attempts, source } => f
                .debug_struct("Transport")
                .field("endpoint", endpoint)
                .field("attempts", attempts)
                .field("source", source)
                .finish(),
            Self::Decode { endpoint, status, request_id, body, source } => f
                .debug_struct("Decode")
                .field("endpoint", endpoint)
                .field("status", status)
                .field("request_id", request_id)
                .field("body", &crate::redact::body(body))
                .field("source", source)
                .finish(),
            Self::Validation(e) => f.debug_tuple("Validation").field(e).finish(),
            Self::Config(message) => f.debug_tuple("Config").field(message).finish(),
            Self::RateLimiter { endpoint, attempts, source } => f
                .debug_struct("RateLimiter")
                .field("endpoint", endpoint)
                .field("attempts", attempts)
                .field("source", source)
                .finish(),
        }
    }
}

impl LineError {
    /// The HTTP status LINE answered with, if it answered.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::Decode { status, .. } => Some(*status),
            Self::Transport { source, .. } => source.status(),
            Self::Validation(_) | Self::Config(_) | Self::RateLimiter { .. } => None,
        }
    }

    /// The `x-line-request-id` of LINE's answer, to quote when asking LINE about a call.
    #[must_use]
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Self::Api(e) => e.request_id.as_ref(),
            Self::Decode { request_id, .. } => request_id.as_ref(),
            _ => None,
        }
    }

    /// The API error body, when LINE answered with an error status.
    #[must_use]
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether sending the same request again (with the same retry key) may succeed:
    /// 5xx answers, timeouts, dropped connections and rate-limit 429s. Never a monthly-quota
    /// 429, a validation error or another 4xx.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(e) => e.status.is_server_error() || e.is_rate_limited(),
            Self::Transport { source, .. } => {
                source.is_timeout() || source.is_connect() || source.is_request()
            }
            Self::RateLimiter { .. } => true,
            Self::Decode { .. } | Self::Validation(_) | Self::Config(_) => false,
        }
    }

    /// A 429 caused by the rate limit (or another transient cap), not by the monthly quota.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.api().is_some_and(ApiError::is_rate_limited)
    }

    /// A 429 because the channel's monthly message quota is used up. Retrying cannot help
    /// until the quota is raised or the month turns.
    #[must_use]
    pub fn is_quota_exceeded(&self) -> bool {
        self.api().is_some_and(ApiError::is_quota_exceeded)
    }

    /// Whether the call timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }
}

/// An error answer from LINE, with everything needed to act on it or report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The endpoint that was called, e.g. `push`.
    pub endpoint: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// LINE's `message` (empty when the body had none).
    pub message: String,
    /// LINE's `details[]`: which property was wrong and why.
    pub details: Vec<ErrorDetail>,
    /// `x-line-request-id` of this answer.
    pub request_id: Option<RequestId>,
    /// `x-line-accepted-request-id`: the request LINE accepted first for this retry key.
    pub accepted_request_id: Option<RequestId>,
    /// The raw body (lossy UTF-8), kept for non-JSON answers such as a proxy's 502 page.
    pub body: String,
    /// How many attempts were made before giving up.
    pub attempts: u32,
}

/// One entry of `details[]` in a LINE error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// What is wrong.
    #[serde(default)]
    pub message: Option<String>,
    /// The property it is wrong in, e.g. `messages[0].text`.
    #[serde(default)]
    pub property: Option<String>,
}

/// The documented `message` of a monthly-quota 429.
const QUOTA_MESSAGE: &str = "monthly limit";

impl ApiError {
    /// Builds the error from an answer, parsing LINE's JSON error body when there is one.
    pub(crate) fn from_answer(
        endpoint: &'static str,
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Self {
        #[derive(Deserialize)]
        struct Wire {
            // LINE documents `"message": null` for some endpoints.
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            details: Option<Vec<ErrorDetail>>,
        }
        let parsed: Option<Wire> = serde_json::from_slice(body).ok();
        let (message, details) = match parsed {
            Some(w) => (w.message.unwrap_or_default(), w.details.unwrap_or_default()),
            None => (String::new(), Vec::new()),
        };
        Self {
            endpoint,
            status,
            message,
            details,
            request_id: header_id(headers, REQUEST_ID),
            accepted_request_id: header_id(headers, ACCEPTED_REQUEST_ID),
            body: String::from_utf8_lossy(body).into_owned(),
            attempts: 1,
        }
    }

    /// A 429 caused by the monthly quota.
    #[must_use]
    pub fn is_quota_exceeded(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS && self.message.contains(QUOTA_MESSAGE)
    }

    /// A 429 not caused by the monthly quota (rate limit, audience job concurrency, ...).
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS && !self.is_quota_exceeded()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LINE answered {} to {}", self.status, self.endpoint)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        for d in &self.details {
            let property = d.property.as_deref().unwrap_or("?");
            let message = d.message.as_deref().unwrap_or("");
            write!(f, "; {property}: {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

pub(crate) const REQUEST_ID: &str = "x-line-request-id";
pub(crate) const ACCEPTED_REQUEST_ID: &str = "x-line-accepted-request-id";

pub(crate) fn header_id(headers: &http::HeaderMap, name: &str) -> Option<RequestId> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| RequestId::new(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> ApiError {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID, "req-1".parse().unwrap());
        ApiError::from_answer(
            "push",
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn quota_429_is_not_a_rate_limit() {
        let quota = answer(429, r#"{"message":"You have reached your monthly limit."}"#);
        assert!(quota.is_quota_exceeded() && !quota.is_rate_limited());
        let rate =
            answer(429, r#"{"message":"The API rate limit has been exceeded. Try again later."}"#);
        assert!(rate.is_rate_limited() && !rate.is_quota_exceeded());
        let e = LineError::Api(Box::new(quota));
        assert!(!e.is_retryable());
        assert!(LineError::Api(Box::new(rate)).is_retryable());
    }

    #[test]
    fn error_body_details_and_request_id_are_kept() {
        let e = answer(
            400,
            r#"{"message":"The request body has 1 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"}],"unknown":1}"#,
        );
        assert_eq!(e.details[0].property.as_deref(), Some("messages[0].text"));
        assert_eq!(e.request_id.as_ref().unwrap().as_str(), "req-1");
        let shown = e.to_string();
        assert!(
            shown.contains("messages[0].text: May not be empty") && shown.contains("req-1"),
            "{shown}"
        );
    }

    #[test]
    fn decode_debug_hides_a_link_token() {
        let body = r#"{"linkToken":"NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY","unexpected":"#;
        let source = serde_json::from_str::<serde_json::Value>(body).unwrap_err();
        let e = LineError::Decode {
            endpoint: "issue_link_token",
            status: StatusCode::OK,
            request_id: None,
            body: body.to_owned(),
            source,
        };
        let debug = format!("{e:?}");
        assert!(!debug.contains("NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"), "{debug}");
        assert!(debug.contains("linkToken") && debug.contains("issue_link_token"), "{debug}");
        assert!(!e.to_string().contains("NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"));
    }

    #[test]
    fn null_message_and_non_json_bodies_are_accepted() {
        let e = answer(400, r#"{"message":null,"key":null,"stacktrace":null,"code":null}"#);
        assert_eq!(e.message, "");
        let e = answer(502, "<html>Bad Gateway</html>");
        assert_eq!(e.body, "<html>Bad Gateway</html>");
        assert!(LineError::Api(Box::new(e)).is_retryable());
    }
}
