//! What a failed send means for the batch and for the campaign: pure functions of the error.

use http::StatusCode;

use crate::campaign::batch::{FailureKind, PauseReason};
use crate::line::LineError;

/// Classifies a send that LINE did not accept (after the client's own retries).
///
/// - [`FailureKind::QuotaExhausted`]: the monthly-quota 429. Retrying cannot help this month;
///   the dispatcher pauses the campaign.
/// - [`FailureKind::Retryable`]: 5xx, rate-limit 429s, timeouts, dropped connections, and a 2xx
///   whose body could not be read. Sending again is safe because every attempt carries the
///   batch's retry key: if LINE had accepted it, it answers 409.
/// - [`FailureKind::InvalidRecipient`]: LINE (or local validation) rejected the `to` field, or
///   LINE answered 404 (no such user). For multicast LINE rejects the **whole** request when
///   one ID is malformed, so the whole batch fails.
/// - [`FailureKind::Rejected`]: anything else (a bad message, a bad token, a bad config).
#[must_use]
pub(super) fn classify(error: &LineError) -> FailureKind {
    if error.is_quota_exceeded() {
        return FailureKind::QuotaExhausted;
    }
    if error.is_retryable() {
        return FailureKind::Retryable;
    }
    match error {
        // No usable answer: the request may or may not have been accepted, and only a resend
        // with the same retry key (409 if it was) can tell.
        LineError::Transport { .. } => FailureKind::Retryable,
        LineError::Decode { status, .. } if status.is_success() => FailureKind::Retryable,
        LineError::Validation(v) if v.violations.iter().any(|v| is_to_field(&v.path)) => {
            FailureKind::InvalidRecipient
        }
        LineError::Api(api) => {
            let names_to =
                api.details.iter().any(|d| d.property.as_deref().is_some_and(is_to_field))
                    || api.message.contains("'to'");
            if api.status == StatusCode::NOT_FOUND
                || (api.status == StatusCode::BAD_REQUEST && names_to)
            {
                FailureKind::InvalidRecipient
            } else {
                FailureKind::Rejected
            }
        }
        _ => FailureKind::Rejected,
    }
}

/// Why a failure should pause the whole campaign instead of failing one batch, if it should:
/// the monthly quota is used up, or LINE refuses the channel access token. Every other batch
/// would fail the same way, so failing them one by one would only burn through the journal.
#[must_use]
pub(super) fn pause_reason(error: &LineError) -> Option<PauseReason> {
    if error.is_quota_exceeded() {
        return Some(PauseReason::QuotaExhausted);
    }
    match error.status() {
        Some(StatusCode::UNAUTHORIZED) => Some(PauseReason::TokenRejected),
        Some(StatusCode::FORBIDDEN) => Some(PauseReason::PermissionDenied),
        _ => None,
    }
}

/// `to`, `to[3]`: the recipient field of push and multicast.
fn is_to_field(path: &str) -> bool {
    path == "to" || path.starts_with("to[")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{ApiError, ValidationError};

    fn api(status: u16, body: &str) -> LineError {
        let status = StatusCode::from_u16(status).unwrap();
        LineError::Api(Box::new(ApiError::from_answer(
            "push",
            status,
            &http::HeaderMap::new(),
            body.as_bytes(),
        )))
    }

    #[test]
    fn table() {
        let cases: Vec<(LineError, FailureKind, bool)> = vec![
            (
                api(429, r#"{"message":"You have reached your monthly limit."}"#),
                FailureKind::QuotaExhausted,
                true,
            ),
            (
                api(429, r#"{"message":"The API rate limit has been exceeded. Try again later."}"#),
                FailureKind::Retryable,
                false,
            ),
            (api(500, r#"{"message":"Internal server error"}"#), FailureKind::Retryable, false),
            (api(502, "<html>Bad Gateway</html>"), FailureKind::Retryable, false),
            (
                api(
                    400,
                    r#"{"message":"The request body has 1 error(s)","details":[{"message":"must be a user ID","property":"to[3]"}]}"#,
                ),
                FailureKind::InvalidRecipient,
                false,
            ),
            (
                api(
                    400,
                    r#"{"message":"The property, 'to', in the request body is invalid (line: -, column: -)"}"#,
                ),
                FailureKind::InvalidRecipient,
                false,
            ),
            (api(404, r#"{"message":"Not found"}"#), FailureKind::InvalidRecipient, false),
            (
                api(
                    400,
                    r#"{"message":"The request body has 1 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"}]}"#,
                ),
                FailureKind::Rejected,
                false,
            ),
            (api(401, r#"{"message":"Authentication failed"}"#), FailureKind::Rejected, true),
            (
                api(403, r#"{"message":"Access to this API is not available"}"#),
                FailureKind::Rejected,
                true,
            ),
            (
                LineError::Validation(ValidationError::new("to", "must hold at least one user ID")),
                FailureKind::InvalidRecipient,
                false,
            ),
            (
                LineError::Validation(ValidationError::new("messages[0].text", "too long")),
                FailureKind::Rejected,
                false,
            ),
            (LineError::Config("bad".into()), FailureKind::Rejected, false),
            (
                LineError::Decode {
                    endpoint: "push",
                    status: StatusCode::OK,
                    request_id: None,
                    body: "{".into(),
                    source: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
                },
                FailureKind::Retryable,
                false,
            ),
        ];
        for (error, kind, pauses) in cases {
            assert_eq!(classify(&error), kind, "{error}");
            assert_eq!(pause_reason(&error).is_some(), pauses, "{error}");
        }
    }

    #[test]
    fn quota_pause_reason_says_what_to_do() {
        let e = api(429, r#"{"message":"You have reached your monthly limit."}"#);
        let reason = pause_reason(&e).unwrap().to_string();
        assert!(reason.contains("quota") && reason.contains("resume"), "{reason}");
    }
}
