//! LINE notification messages (PNP): a message to a phone number instead of a user ID, for
//! transactional notices (order and shipping notices), even to customers who are not friends.
//!
//! The phone number never leaves the shop in clear: it is normalised to E.164 and hashed with
//! SHA-256 ([`hash_phone_number`]). LINE answers 200 when it accepted the request; whether the
//! message reached a phone comes later as a `delivery` webhook event whose `delivery.data` is the
//! request's `X-Line-Delivery-Tag`.

use serde::Serialize;

use super::error::LineError;
use super::line_client::LineClient;
use super::request::Request;
use crate::RequestId;
use crate::line::Validator;
use crate::line::message::{Message, validate_messages_at};

/// The SHA-256 of an E.164 phone number (`+819012345678`) as 64 lowercase hex digits: the `to`
/// of a PNP request.
///
/// # Errors
/// [`LineError::Validation`] when `e164` is not `+` followed by 8 to 15 digits (first digit not
/// zero).
pub fn hash_phone_number(e164: &str) -> Result<String, LineError> {
    use sha2::Digest as _;
    let digits = e164.strip_prefix('+').unwrap_or("");
    let valid = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !valid {
        let mut v = Validator::new();
        v.violation_at("to", "must be an E.164 phone number (+ and 8 to 15 digits)");
        v.finish()?;
    }
    let digest = sha2::Sha256::digest(e164.as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// A LINE notification message to one phone number.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a request does nothing until it is sent"]
pub struct PnpPushRequest {
    hashed_phone: String,
    messages: Vec<Message>,
    delivery_tag: Option<String>,
    notification_disabled: bool,
}

impl PnpPushRequest {
    /// A notification message of these messages (1 to 5) to the phone whose E.164 number
    /// hashes to `hashed_phone` ([`hash_phone_number`]).
    pub fn new(hashed_phone: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            hashed_phone: hashed_phone.into(),
            messages,
            delivery_tag: None,
            notification_disabled: false,
        }
    }

    /// `X-Line-Delivery-Tag` (16 to 100 characters): returned as `delivery.data` in the
    /// `delivery` webhook event, so the delivery can be matched to this send.
    pub fn delivery_tag(mut self, tag: impl Into<String>) -> Self {
        self.delivery_tag = Some(tag.into());
        self
    }

    /// Deliver without a notification sound.
    pub fn notification_disabled(mut self, disabled: bool) -> Self {
        self.notification_disabled = disabled;
        self
    }
}

/// LINE's answer to a PNP request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PnpResponse {
    /// `x-line-request-id` of the answer.
    pub request_id: Option<RequestId>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PnpWire<'a> {
    to: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    notification_disabled: bool,
}

impl LineClient {
    /// Sends a LINE notification message (`POST /bot/pnp/push`). LINE takes no retry key here,
    /// so the request is not retried by the client: a caller that must not send twice records
    /// the send before and the answer after (the channel dispatcher does).
    ///
    /// # Errors
    /// [`LineError::Validation`] (nothing sent) for a `to` that is not a SHA-256 hex hash, a
    /// delivery tag outside 16 to 100 characters, or invalid messages; [`LineError::Api`] or
    /// [`LineError::Transport`] when LINE refuses or cannot be reached.
    pub async fn pnp_push(&self, req: PnpPushRequest) -> Result<PnpResponse, LineError> {
        let mut v = Validator::new();
        let hash_ok = req.hashed_phone.len() == 64
            && req.hashed_phone.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hash_ok {
            v.violation_at("to", "must be a SHA-256 hash (64 lowercase hex digits)");
        }
        if let Some(tag) = &req.delivery_tag
            && !(16..=100).contains(&tag.chars().count())
        {
            v.violation_at("X-Line-Delivery-Tag", "must be 16 to 100 characters");
        }
        validate_messages_at("messages", &req.messages, &mut v);
        v.finish()?;
        let wire = PnpWire {
            to: &req.hashed_phone,
            messages: &req.messages,
            notification_disabled: req.notification_disabled,
        };
        let mut request = Request::post("pnp_push", "/bot/pnp/push").json(&wire)?;
        if let Some(tag) = &req.delivery_tag {
            request = request.header("x-line-delivery-tag", tag.clone());
        }
        let answer = self.execute(request).await?;
        Ok(PnpResponse { request_id: answer.request_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_hash_is_sha256_of_the_e164_text() {
        // echo -n "+819012345678" | sha256sum
        let h = hash_phone_number("+819012345678").unwrap();
        assert_eq!(h, "3d06a39d40790f11761295e053029378ae28c4b4f6f301693005e079f3d4ca64");
        assert_eq!(h, hash_phone_number("+819012345678").unwrap());
        assert_ne!(h, hash_phone_number("+819012345679").unwrap());
        for bad in ["09012345678", "+0901234567", "+81-90", "", "+8190123456789012"] {
            assert!(hash_phone_number(bad).is_err(), "{bad}");
        }
    }
}
