//! Keeping secrets out of `Debug` and error messages: credentials in URLs, tokens in bodies.
// `body` serves the LINE client's error only; the pure core has no answer bodies to redact.
#![cfg_attr(not(feature = "client"), allow(dead_code))]

use std::borrow::Cow;

/// What replaces a hidden value.
const HIDDEN: &str = "***";

/// `url` with any `user:password@` replaced by `***@` (works on unparsed strings too, so a
/// builder's raw value can be shown).
pub(crate) fn url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}{HIDDEN}{}", &url[..scheme_end], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

/// JSON keys whose string values are secrets when they appear in an answer body.
const SECRET_KEYS: &[&str] =
    &["linkToken", "access_token", "refresh_token", "id_token", "accessToken", "nonce"];

/// The most characters of a body shown in `Debug`.
const BODY_SHOWN: usize = 512;

/// `body` for `Debug`: the string values of token-like JSON keys hidden, and cut after
/// [`BODY_SHOWN`] characters.
pub(crate) fn body(body: &str) -> String {
    let mut out = String::with_capacity(body.len().min(BODY_SHOWN) + 16);
    let mut rest = body;
    'scan: while !rest.is_empty() {
        for key in SECRET_KEYS {
            let quoted_len = key.len() + 2;
            if rest.len() > quoted_len
                && rest.as_bytes()[0] == b'"'
                && rest[1..].starts_with(key)
                && rest.as_bytes()[quoted_len - 1] == b'"'
            {
                let after = &rest[quoted_len..];
                let value = after.trim_start();
                if let Some(value) = value.strip_prefix(':') {
                    let value = value.trim_start();
                    if let Some(inner) = value.strip_prefix('"') {
                        // The string ends at the first unescaped quote (or the body's end).
                        let mut end = inner.len();
                        let mut escaped = false;
                        for (i, c) in inner.char_indices() {
                            match c {
                                '\\' if !escaped => escaped = true,
                                '"' if !escaped => {
                                    end = i;
                                    break;
                                }
                                _ => escaped = false,
                            }
                        }
                        out.push_str(&rest[..quoted_len]);
                        out.push_str(":\"");
                        out.push_str(HIDDEN);
                        out.push('"');
                        rest = inner.get(end + 1..).unwrap_or("");
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    match out.char_indices().nth(BODY_SHOWN) {
        Some((cut, _)) => {
            let total = out.chars().count();
            out.truncate(cut);
            out.push_str(&format!("… ({} more characters)", total - BODY_SHOWN));
            out
        }
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(url("https://user:pass@api.example/v2?x=@"), "https://***@api.example/v2?x=@");
        assert_eq!(url("http://token@host"), "http://***@host");
        assert_eq!(url("https://api.example/a@b"), "https://api.example/a@b");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn token_values_in_bodies_are_hidden() {
        let shown = body(r#"{"linkToken" : "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY","x":"é"}"#);
        assert_eq!(shown, r#"{"linkToken":"***","x":"é"}"#);
        let shown = body(r#"{"a":1,"access_token":"se\"cret","id_token":"jwt"}"#);
        assert!(!shown.contains("cret") && !shown.contains("jwt"), "{shown}");
        assert_eq!(body(r#"{"linkToken":"unterminated"#), r#"{"linkToken":"***""#);
        let long = "x".repeat(2000);
        assert!(body(&long).ends_with("(1488 more characters)"));
    }
}
