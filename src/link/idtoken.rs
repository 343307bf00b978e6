//! LINE Login ID-token verification (pure: no I/O).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

use crate::LineUserId;

/// The `iss` of LINE Login ID tokens.
pub const LINE_LOGIN_ISSUER: &str = "https://access.line.me";

/// Why an ID token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not three Base64url JSON parts.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not the one the verifier checks: HS256 for web login
    /// ([`verify_id_token`]), ES256 for the native SDKs and LIFF ([`verify_id_token_es256`]).
    #[error("unexpected ID-token algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The signature does not match the channel secret (HS256) or the JWKS key (ES256).
    #[error("the ID token's signature is invalid")]
    BadSignature,
    /// No JWKS key has the token's `kid` (refresh the JWKS: LINE rotates keys).
    #[error("no JWKS key matches the ID token's kid {0:?}")]
    UnknownKey(Option<String>),
    /// The JWKS document could not be read.
    #[error("the JWKS is malformed: {0}")]
    BadJwks(&'static str),
    /// `iss` is not `https://access.line.me`.
    #[error("the ID token's issuer {0:?} is not LINE Login")]
    WrongIssuer(String),
    /// `aud` is not this channel.
    #[error("the ID token is for another channel")]
    WrongAudience,
    /// `exp` has passed.
    #[error("the ID token expired")]
    Expired,
    /// `nonce` is missing or differs from the one sent.
    #[error("the ID token's nonce does not match")]
    NonceMismatch,
    /// `sub` is not a LINE user ID.
    #[error("the ID token's subject is not a LINE user ID")]
    InvalidSubject,
}

/// The verified claims of a LINE Login ID token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// The LINE user (`sub`).
    pub line_user: LineUserId,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Issued at.
    pub issued_at: Option<DateTime<Utc>>,
    /// Display name (`name`, with the profile scope).
    pub name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Email (with the email scope; personal data: redacted in `Debug`).
    pub email: Option<String>,
    /// Authentication methods (`amr`).
    pub amr: Vec<String>,
}

impl fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenClaims")
            .field("line_user", &self.line_user)
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .field("name", &self.name.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

// Lenient: LINE owns the token and may add claims.
#[derive(Deserialize)]
struct Payload {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nonce: Option<String>,
    name: Option<String>,
    picture: Option<String>,
    email: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
}

fn part<T: for<'de> Deserialize<'de>>(b64: &str, what: &'static str) -> Result<T, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| IdTokenError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed(what))
}

/// The three parts of a compact JWS.
fn split(id_token: &str) -> Result<(&str, &str, &str), IdTokenError> {
    let mut parts = id_token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(IdTokenError::Malformed("expected three parts")),
    }
}

/// Verifies a web-login ID token: HS256 signature with the channel secret (constant-time),
/// then `iss`, `aud` (the Login channel ID), `exp` (against `now`) and `nonce`.
///
/// # Errors
/// [`IdTokenError`] naming the first check that failed.
pub fn verify_id_token(
    id_token: &str,
    channel_secret: &str,
    channel_id: &str,
    expected_nonce: &str,
    now: DateTime<Utc>,
) -> Result<IdTokenClaims, IdTokenError> {
    let (h, p, s) = split(id_token)?;
    let header: Header = part(h, "header")?;
    if header.alg != "HS256" {
        return Err(IdTokenError::UnsupportedAlgorithm(header.alg));
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| IdTokenError::Malformed("signature"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes())
        .map_err(|_| IdTokenError::BadSignature)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&signature).map_err(|_| IdTokenError::BadSignature)?;
    // Only a correctly signed payload is parsed.
    check_claims(part(p, "payload")?, channel_id, Some(expected_nonce), now)
}

/// LINE's JSON Web Key Set (`https://api.line.me/oauth2/v2.1/certs`): the P-256 keys that sign
/// ES256 ID tokens from the native SDKs and LIFF.
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<(Option<String>, p256::ecdsa::VerifyingKey)>,
}

// Lenient: LINE owns the document; keys that are not P-256 EC keys are skipped.
#[derive(Deserialize)]
struct JwkWire {
    kty: Option<String>,
    crv: Option<String>,
    kid: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwksWire {
    keys: Vec<JwkWire>,
}

impl Jwks {
    /// Parses a JWKS document, keeping its P-256 keys.
    ///
    /// # Errors
    /// [`IdTokenError::BadJwks`] when the document is not a JWKS or a P-256 key is invalid.
    pub fn parse(json: &[u8]) -> Result<Self, IdTokenError> {
        let wire: JwksWire =
            serde_json::from_slice(json).map_err(|_| IdTokenError::BadJwks("not a JWKS"))?;
        let mut keys = Vec::new();
        for k in wire.keys {
            if k.kty.as_deref() != Some("EC") || k.crv.as_deref() != Some("P-256") {
                continue;
            }
            // A fixed-size array converts into `FieldBytes` without the slice constructors
            // that newer `generic-array` releases deprecate.
            let coord = |c: Option<String>| -> Result<p256::FieldBytes, IdTokenError> {
                let bytes = URL_SAFE_NO_PAD
                    .decode(c.unwrap_or_default())
                    .map_err(|_| IdTokenError::BadJwks("coordinate is not base64url"))?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map(p256::FieldBytes::from)
                    .map_err(|_| IdTokenError::BadJwks("coordinate is not 32 bytes"))
            };
            let (x, y) = (coord(k.x)?, coord(k.y)?);
            let point = p256::EncodedPoint::from_affine_coordinates(&x, &y, false);
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| IdTokenError::BadJwks("point is not on P-256"))?;
            keys.push((k.kid, key));
        }
        Ok(Self { keys })
    }

    /// How many usable keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// `true` when the set holds no usable key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verifies an ES256 ID token (LINE SDKs, LIFF) against LINE's JWKS, then `iss`, `aud`, `exp`
/// and, when given, `nonce`. Only ES256 is accepted here, so an HS256 token can never be
/// checked against a public key (no algorithm confusion).
///
/// # Errors
/// [`IdTokenError`] naming the first check that failed.
pub fn verify_id_token_es256(
    id_token: &str,
    jwks: &Jwks,
    channel_id: &str,
    expected_nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IdTokenClaims, IdTokenError> {
    use p256::ecdsa::signature::Verifier as _;
    let (h, p, s) = split(id_token)?;
    let header: Header = part(h, "header")?;
    if header.alg != "ES256" {
        return Err(IdTokenError::UnsupportedAlgorithm(header.alg));
    }
    let key = jwks
        .keys
        .iter()
        .find(|(kid, _)| header.kid.is_none() || kid == &header.kid)
        .map(|(_, k)| k)
        .ok_or_else(|| IdTokenError::UnknownKey(header.kid.clone()))?;
    let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| IdTokenError::Malformed("signature"))?;
    // JWS ES256 signatures are the raw 64-byte r ‖ s, not DER.
    let signature =
        p256::ecdsa::Signature::from_slice(&raw).map_err(|_| IdTokenError::BadSignature)?;
    key.verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| IdTokenError::BadSignature)?;
    check_claims(part(p, "payload")?, channel_id, expected_nonce, now)
}

fn check_claims(
    claims: Payload,
    channel_id: &str,
    expected_nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IdTokenClaims, IdTokenError> {
    let iss = claims.iss.unwrap_or_default();
    if iss != LINE_LOGIN_ISSUER {
        return Err(IdTokenError::WrongIssuer(iss));
    }
    let aud_ok = match &claims.aud {
        Some(Audience::One(a)) => a == channel_id,
        Some(Audience::Many(v)) => v.iter().any(|a| a == channel_id),
        None => false,
    };
    if !aud_ok {
        return Err(IdTokenError::WrongAudience);
    }
    let exp = claims.exp.ok_or(IdTokenError::Expired)?;
    if now.timestamp() >= exp {
        return Err(IdTokenError::Expired);
    }
    if let Some(expected) = expected_nonce
        && claims.nonce.as_deref() != Some(expected)
    {
        return Err(IdTokenError::NonceMismatch);
    }
    let line_user =
        claims.sub.and_then(|s| LineUserId::new(s).ok()).ok_or(IdTokenError::InvalidSubject)?;
    let ts = |s: i64| DateTime::<Utc>::from_timestamp(s, 0);
    Ok(IdTokenClaims {
        line_user,
        expires_at: ts(exp).unwrap_or(DateTime::<Utc>::MAX_UTC),
        issued_at: claims.iat.and_then(ts),
        name: claims.name,
        picture: claims.picture,
        email: claims.email,
        amr: claims.amr,
    })
}

/// Signs claims as an HS256 JWT, as LINE does for web login. For tests and fakes.
#[must_use]
pub fn sign_id_token_hs256(claims: &serde_json::Value, channel_secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}
