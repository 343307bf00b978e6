//! One-time secrets of the link flows (nonces, OIDC `state`, link tokens) and how stores key them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// How many random bytes a generated secret carries: 256 bits, twice LINE's 128-bit minimum.
pub const SECRET_BYTES: usize = 32;

/// A single-use secret enishi generates: the account-link `nonce`, the OIDC `state` and `nonce`,
/// or a PKCE `code_verifier`.
///
/// 32 bytes from the operating system's CSPRNG (through `rand`'s thread RNG, which is seeded from
/// it), URL-safe Base64 without padding: 43 characters, inside LINE's 10–255 and PKCE's 43–128.
/// Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeSecret(String);

impl OneTimeSecret {
    /// A fresh random secret.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a secret received back (a query parameter, a webhook's `link.nonce`).
    #[must_use]
    pub fn from_received(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret, for putting into a URL.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key a store files this secret under (see [`TicketKey`]).
    #[must_use]
    pub fn key(&self) -> TicketKey {
        TicketKey::of(&self.0)
    }
}

impl fmt::Debug for OneTimeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeSecret(<redacted>)")
    }
}

/// The key under which a store files a one-time secret: the hex SHA-256 of the secret.
///
/// Stores never hold the secret itself, so a leaked database cannot be replayed against the
/// link flow. The key is not secret, and `Debug` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketKey(String);

impl TicketKey {
    /// The key of a secret.
    #[must_use]
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            use fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
        }
        Self(hex)
    }

    /// Rebuilds a key read back from a store.
    #[must_use]
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hex digest.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// PKCE S256: `base64url(SHA-256(verifier))` without padding.
#[must_use]
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_secret_is_long_url_safe_and_fresh() {
        let a = OneTimeSecret::generate();
        let b = OneTimeSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(format!("{a:?}"), "OneTimeSecret(<redacted>)");
        assert_eq!(a.key(), TicketKey::of(a.expose()));
        assert_eq!(a.key().as_str().len(), 64);
    }

    #[test]
    fn link_pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
