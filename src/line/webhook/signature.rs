//! `x-line-signature` verification: HMAC-SHA256 over the raw body, compared in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The name of the header that carries the signature (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-line-signature";

/// A LINE channel secret (Messaging API channel → Basic settings → Channel secret).
///
/// It is the key of the webhook signature, so it is a secret: `Debug` prints `ChannelSecret(***)`
/// and there is no way to read it back. The keyed HMAC state is computed once here, so verifying
/// a body costs only the hash of the body.
#[derive(Clone)]
pub struct ChannelSecret {
    mac: HmacSha256,
}

impl ChannelSecret {
    /// Wraps a channel secret. LINE uses the secret's UTF-8 bytes as the HMAC key, exactly as given.
    #[must_use]
    pub fn new(secret: impl Into<String>) -> Self {
        Self::from_secret(&SecretString::from(secret.into()))
    }

    /// Wraps a channel secret that is already held as a [`SecretString`].
    #[must_use]
    pub fn from_secret(secret: &SecretString) -> Self {
        let key = secret.expose_secret().as_bytes();
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = match HmacSha256::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        };
        Self { mac }
    }

    fn mac_of(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac
    }
}

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelSecret(***)")
    }
}

impl From<SecretString> for ChannelSecret {
    fn from(secret: SecretString) -> Self {
        Self::from_secret(&secret)
    }
}

/// One or more channel secrets that are all accepted, for rotating a secret without downtime.
///
/// Reissuing a channel secret in the LINE Developers Console invalidates the old one at once,
/// so during a deploy keep both (new first) and remove the old one afterwards.
#[derive(Clone, Debug)]
pub struct ChannelSecrets {
    secrets: Vec<ChannelSecret>,
}

impl ChannelSecrets {
    /// A set holding one secret.
    #[must_use]
    pub fn new(secret: ChannelSecret) -> Self {
        Self { secrets: vec![secret] }
    }

    /// Adds another accepted secret (tried after the ones already held).
    #[must_use]
    pub fn with(mut self, secret: ChannelSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// How many secrets are accepted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// The first secret (the current one during a rotation), which signs what enishi
    /// re-signs (the webhook hub).
    #[cfg(feature = "client")]
    pub(crate) fn first(&self) -> Option<&ChannelSecret> {
        self.secrets.first()
    }

    /// `true` when no secret is held (only possible through `FromIterator`); such a set
    /// rejects every signature.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Verifies `raw_body` against the signature header with every secret until one matches, and
    /// returns the index of the matching secret (0 is the first one given).
    ///
    /// # Errors
    /// As [`verify`]; a mismatch is reported only when no secret matches.
    pub fn verify(
        &self,
        signature_header: Option<&str>,
        raw_body: &[u8],
    ) -> Result<usize, WebhookError> {
        let expected = decode_signature(signature_header)?;
        for (i, secret) in self.secrets.iter().enumerate() {
            if secret.mac_of(raw_body).verify_slice(&expected).is_ok() {
                return Ok(i);
            }
        }
        Err(WebhookError::SignatureMismatch)
    }
}

impl From<ChannelSecret> for ChannelSecrets {
    fn from(secret: ChannelSecret) -> Self {
        Self::new(secret)
    }
}

impl FromIterator<ChannelSecret> for ChannelSecrets {
    /// Collects secrets; an empty iterator gives a set that rejects every signature.
    fn from_iter<I: IntoIterator<Item = ChannelSecret>>(iter: I) -> Self {
        Self { secrets: iter.into_iter().collect() }
    }
}

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request had no `x-line-signature` header. Such a request is never accepted.
    #[error("the x-line-signature header is missing")]
    MissingSignature,
    /// The header is not standard Base64 (with padding).
    #[error("the x-line-signature header is not valid Base64")]
    MalformedSignature(#[source] base64::DecodeError),
    /// The header is Base64 but does not decode to the 32 bytes of an HMAC-SHA256.
    #[error("the x-line-signature header decodes to {0} bytes, not the 32 bytes of an HMAC-SHA256")]
    SignatureLength(usize),
    /// The signature does not match the body under any accepted channel secret.
    #[error("the x-line-signature does not match the request body")]
    SignatureMismatch,
    /// The signature is valid but the body is not a webhook payload.
    #[error(transparent)]
    Parse(#[from] super::BodyError),
}

impl WebhookError {
    /// `true` when the signature check failed (missing, malformed or mismatched): the request
    /// did not come from LINE, or the secret is wrong.
    #[must_use]
    pub fn is_signature_error(&self) -> bool {
        !matches!(self, Self::Parse(_))
    }

    /// The HTTP status to answer with: 401 for a missing or mismatched signature, 400 for a
    /// malformed header or body. The answer should carry no detail.
    #[must_use]
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::MissingSignature | Self::SignatureMismatch => http::StatusCode::UNAUTHORIZED,
            Self::MalformedSignature(_) | Self::SignatureLength(_) | Self::Parse(_) => {
                http::StatusCode::BAD_REQUEST
            }
        }
    }
}

fn decode_signature(header: Option<&str>) -> Result<[u8; 32], WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let mut buf = [0u8; 48];
    match STANDARD.decode_slice(header.as_bytes(), &mut buf) {
        Ok(32) => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&buf[..32]);
            Ok(out)
        }
        Ok(n) => Err(WebhookError::SignatureLength(n)),
        // Too long for the buffer: decode fully only to report what was wrong.
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            match STANDARD.decode(header.as_bytes()) {
                Ok(v) => Err(WebhookError::SignatureLength(v.len())),
                Err(e) => Err(WebhookError::MalformedSignature(e)),
            }
        }
        Err(base64::DecodeSliceError::DecodeError(e)) => Err(WebhookError::MalformedSignature(e)),
    }
}

/// Verifies a webhook request: `signature_header` is the value of `x-line-signature` (`None` when
/// the header is absent) and `raw_body` the request body **exactly as received** (never
/// re-serialised JSON). Parse the body only after this returns `Ok`.
///
/// The header is Base64-decoded and compared with HMAC-SHA256(body, channel secret) in constant
/// time ([`Mac::verify_slice`]).
///
/// # Errors
/// [`WebhookError::MissingSignature`], [`WebhookError::MalformedSignature`],
/// [`WebhookError::SignatureLength`] or [`WebhookError::SignatureMismatch`].
///
/// ```
/// use enishi::line::webhook::{ChannelSecret, sign, verify};
/// let secret = ChannelSecret::new("my-channel-secret");
/// let body = br#"{"destination":"U0","events":[]}"#;
/// let header = sign(&secret, body);
/// assert!(verify(&secret, Some(&header), body).is_ok());
/// assert!(verify(&secret, Some(&header), b"{}").is_err());
/// ```
pub fn verify(
    channel_secret: &ChannelSecret,
    signature_header: Option<&str>,
    raw_body: &[u8],
) -> Result<(), WebhookError> {
    let expected = decode_signature(signature_header)?;
    channel_secret
        .mac_of(raw_body)
        .verify_slice(&expected)
        .map_err(|_| WebhookError::SignatureMismatch)
}

/// The `x-line-signature` value LINE would send for `body`: Base64 (standard, padded) of
/// HMAC-SHA256(body, channel secret). For tests and fake LINE servers.
#[must_use]
pub fn sign(channel_secret: &ChannelSecret, body: &[u8]) -> String {
    STANDARD.encode(channel_secret.mac_of(body).finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_sign_matches_an_independent_openssl_vector() {
        // `printf '{"hello":"world"}' | openssl dgst -sha256 -hmac test_secret -binary | base64`
        let secret = ChannelSecret::new("test_secret");
        assert_eq!(
            sign(&secret, br#"{"hello":"world"}"#),
            "t7Hn4ZDHqs6e+wdvI5TyQIvzie0DmMUmuXEBqyyE/tM="
        );
    }

    #[test]
    fn webhook_verify_distinguishes_missing_malformed_length_and_mismatch() {
        let secret = ChannelSecret::new("s");
        let body = b"{}";
        assert!(matches!(verify(&secret, None, body), Err(WebhookError::MissingSignature)));
        assert!(matches!(
            verify(&secret, Some("not base64!"), body),
            Err(WebhookError::MalformedSignature(_))
        ));
        assert!(matches!(verify(&secret, Some(""), body), Err(WebhookError::SignatureLength(0))));
        assert!(matches!(
            verify(&secret, Some("AAAA"), body),
            Err(WebhookError::SignatureLength(3))
        ));
        let long = STANDARD.encode([0u8; 64]);
        assert!(matches!(
            verify(&secret, Some(&long), body),
            Err(WebhookError::SignatureLength(64))
        ));
        let wrong = STANDARD.encode([0u8; 32]);
        assert!(matches!(
            verify(&secret, Some(&wrong), body),
            Err(WebhookError::SignatureMismatch)
        ));
        assert!(verify(&secret, Some(&sign(&secret, body)), body).is_ok());
    }

    #[test]
    fn webhook_secrets_accept_any_listed_secret_and_report_which() {
        let old = ChannelSecret::new("old");
        let new = ChannelSecret::new("new");
        let set = ChannelSecrets::new(new.clone()).with(old.clone());
        let body = b"payload";
        assert_eq!(set.verify(Some(&sign(&new, body)), body).unwrap(), 0);
        assert_eq!(set.verify(Some(&sign(&old, body)), body).unwrap(), 1);
        let other = ChannelSecret::new("other");
        assert!(matches!(
            set.verify(Some(&sign(&other, body)), body),
            Err(WebhookError::SignatureMismatch)
        ));
        let empty: ChannelSecrets = std::iter::empty().collect();
        assert!(matches!(
            empty.verify(Some(&sign(&new, body)), body),
            Err(WebhookError::SignatureMismatch)
        ));
    }

    #[test]
    fn webhook_channel_secret_debug_is_redacted() {
        let secret = ChannelSecret::new("super-secret-value");
        let set = ChannelSecrets::new(secret.clone());
        assert_eq!(format!("{secret:?}"), "ChannelSecret(***)");
        assert!(!format!("{set:?}").contains("super-secret"));
    }
}
