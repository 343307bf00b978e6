//! Postback data the chatbot issues, signed so that data it did not issue is never executed.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of HMAC-SHA256 kept in a postback (LINE allows 300 characters of data).
const TAG_LEN: usize = 12;

/// The prefix of every postback the chatbot issues.
pub(crate) const PREFIX: &str = "enishi:chat:";

/// A verified postback: an action and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackCommand {
    /// What to do (`intent`, `survey`, ...).
    pub action: String,
    /// Its parameters.
    pub params: BTreeMap<String, String>,
}

impl PostbackCommand {
    /// A parameter, if present.
    #[must_use]
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// What a postback's data turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verified {
    /// Ours, signed, intact.
    Command(PostbackCommand),
    /// Claims to be ours but the signature does not match (forged or altered).
    Forged,
    /// Not the chatbot's (another part of enishi, or the shop's own).
    Foreign,
}

#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        // HMAC accepts any key length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        mac
    }

    /// `enishi:chat:{action&params}:{signature}` (at most LINE's 300 characters for sane
    /// parameters).
    pub(crate) fn sign(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("a", action);
        for (k, v) in params {
            query.append_pair(k, v);
        }
        let payload = query.finish();
        let tag = &self.mac(&payload).finalize().into_bytes()[..TAG_LEN];
        format!("{PREFIX}{payload}:{}", URL_SAFE_NO_PAD.encode(tag))
    }

    pub(crate) fn verify(&self, data: &str) -> Verified {
        let Some(rest) = data.strip_prefix(PREFIX) else { return Verified::Foreign };
        let Some((payload, signature)) = rest.rsplit_once(':') else { return Verified::Forged };
        // The tag's length first: a truncated check of a shorter tag would be weaker.
        let tag = match URL_SAFE_NO_PAD.decode(signature) {
            Ok(tag) if tag.len() == TAG_LEN => tag,
            _ => return Verified::Forged,
        };
        if self.mac(payload).verify_truncated_left(&tag).is_err() {
            return Verified::Forged;
        }
        let mut params: BTreeMap<String, String> =
            url::form_urlencoded::parse(payload.as_bytes()).into_owned().collect();
        match params.remove("a") {
            Some(action) => Verified::Command(PostbackCommand { action, params }),
            None => Verified::Forged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_data_verifies_and_anything_else_does_not() {
        let signer = Signer::new(b"key");
        let data = signer.sign("survey", &[("s", "skin"), ("v", "乾燥肌")]);
        assert!(data.len() < 300, "{data}");
        let Verified::Command(c) = signer.verify(&data) else { panic!("{data}") };
        assert_eq!((c.action.as_str(), c.param("v")), ("survey", Some("乾燥肌")));
        let tampered = data.replace("skin", "skim");
        assert_eq!(signer.verify(&tampered), Verified::Forged);
        assert_eq!(Signer::new(b"other").verify(&data), Verified::Forged);
        assert_eq!(signer.verify("enishi:chat:a=intent"), Verified::Forged);
        // A prefix of the right tag is not the tag.
        let short = &data[..data.len() - 4];
        assert_eq!(signer.verify(short), Verified::Forged);
        assert_eq!(signer.verify("enishi:link"), Verified::Foreign);
    }
}
