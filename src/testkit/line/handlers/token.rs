//! Channel access tokens: v2.1 by JWT assertion (issue, verify, revoke, key IDs) and
//! stateless tokens (by assertion or by secret). Assertions are verified as LINE does: RS256
//! with a registered public key, `iss` = `sub` = the channel ID, `aud` = `https://api.line.me/`,
//! `exp` at most 30 minutes ahead, `token_exp` at most 30 days. Errors use the OAuth shape
//! `{"error", "error_description"}`.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

use super::respond_with;
use crate::testkit::line::platform::IssuedAccessToken;
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, lock};

/// The channel ID a [`FakeLine`](crate::testkit::FakeLine) has by default.
pub const TEST_CHANNEL_ID: &str = "1234567890";
/// The channel secret a [`FakeLine`](crate::testkit::FakeLine) has by default.
pub const TEST_CHANNEL_SECRET: &str = "fake-channel-secret";
/// The kid under which [`TEST_ASSERTION_KEY_JWK`] is registered by default.
pub const TEST_ASSERTION_KID: &str = "fake-assertion-kid";
/// A 2048-bit RSA private key (JWK) for tests and demos only: its public half is registered
/// with every [`FakeLine`](crate::testkit::FakeLine) by default. Never use it with LINE.
pub const TEST_ASSERTION_KEY_JWK: &str = r#"{"kty":"RSA","alg":"RS256","use":"sig","n":"yOFlyfS7PExAd6h0krwmO5GLPJvlXbk3dsi7NI7D-2VgMbGBJp9XEWSf9kz0avSGw24bboaJhHYz_Q2WXhcWmbDRVm7TGeSLwJdnezHkODTUzH105A4o73dzilkmEv7w58-qUhHRRzaYsbSkQVPlvx16c9WHh0An1v0oXgfyqIynneWnk1-e2G58RDm2gvJGuod9LbhMklG1RV4Et2ebT8nMFPHsTAeGkI8tWOJ1Ly15jArcnr5fE4EG0hHAseP-Q_WMttp35U0rI4U4-u4DNmWW41Ubj8BXTLkkakAIiif2NNRe9FhZ18eDekiZ9Hqm12r6aj1UgBNbb5zSdMMKZw","e":"AQAB","d":"9MNmDJuBiJupqGw-MIyi5KkXNbAsbj12--m-ehToScS8OhmzMdw-A-EX4xaYKANdDJ6c8rOyJQ_h2xkzMQSDKcFbB-OTwp2Ahqo9x_CCo7CXUEnWWpzmRAbIQZOnmet3MCHq5fBiIb6_4TVMXE05I0m1j0nVfeTAXUcZ1lSPsvIY4mwpVS80S-_KWVghE9D5De7QL-W5ltt67wdyILnKmCCkPQEtdlvTWrIa-fcz4uj7j8_vuQvAtPIg9-TxWS6w73vXJU2SnpIaEQo52OyQ9XImNB9Ygugasuwc1YQo9rT8JXaBxYr-qXYLkNh6iyZ30v7wbfiel3X_uKmGqRpt","p":"5jPmutJ_G8XRpkoxEZFMkNVe0MWOjLRD31vJjF7ZENLfv_zI0l_L4m_NU6il9pWhmFzCeM_FxoF5ANa8x9sbe8c65q60ImX1_y97fgvqQIZ7lEIdEwcUhUltyn1NaV5TtBRCb87Ad-1esB42RvcipJHsjr7Hi3w3db8j5dK66c0","q":"32RLGFWM4ys8Nv7J7-0tnMtEVYxz61EefFWcmaGiXNowYBeDVINFT9TTLUI0Qf1JRp96CzPfhqjKFAEO0QL_lNszW7X2Qs1df0JMb5SOS5sX8IKhRuognd7PWHvv3xXHhV6EYlJH0kV8HjJ7OFlkE0rqp3dcTZ-54Y2x4JXKgQM","dp":"ewfuHpb1nBBDlg4831i6hQWkYQvUvdpyE-Poef8PH_Cz6NXfNqBARUrfgAC4gmtCLD4XKZ5R41-7Hfmmd2Hg9GxsTHG-kEvSB4qHA7y2e7nkPj5_b3XvP7UY2onRX6ksLyhMwZjMQMw6OQJMm-zlNPNQbJIF78R5l5KKSwAvKVk","dq":"11cvyJJXUHjR_9WWRfElQfrzsV_GMnWs5IAGiFY2VDmD3m1sDODJxM3Mj9k81MvbgfejRv9HHuDAg44NgU_Znd274VFDxVuAIHeBhSH4FUu5RQA3hUuWC3jH-Wznau3sulTFWp4kW77diaJyA3ywKqTSFILL-IvbPGFBsdPTNI8","qi":"v6KKVw5wO5bMSyMGYLj4pp3Gplg9eUbqs1CEWDIu4R0Mrd_qec_6Yr7Oyl3SGA9rw5CfT6YxCkql22XuTs53v6Xd0rwXZ9o8mXjyubUUhpg96D5MtEJzdeTiaULqpd8ISokBsYQ8bfOJHCU0DpH0cIbzIuJ2ToB0kkhqaFo9IAI"}"#;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// LINE keeps at most 30 valid v2.1 tokens per channel.
const MAX_V21_TOKENS: usize = 30;
const MAX_V21_LIFETIME: u64 = 30 * 24 * 3600;
const STATELESS_LIFETIME: u64 = 15 * 60;

/// The `(n, e)` of a JWK, big-endian.
pub(crate) fn public_key_of(jwk: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let value: Value = serde_json::from_str(jwk).ok()?;
    let decode = |field: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.get(field)?.as_str()?).ok()
    };
    Some((decode("n")?, decode("e")?))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    respond::json(status, &json!({ "error": error, "error_description": description }))
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_client", description)
}

/// The form fields of an `application/x-www-form-urlencoded` body.
fn form(input: &Input) -> Result<Vec<(String, String)>, Response> {
    let is_form = input
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(invalid_request("Content-Type must be application/x-www-form-urlencoded"));
    }
    let body = input.body.as_deref().unwrap_or_default();
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str, Response> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| invalid_request(&format!("{name} is required")))
}

/// Verifies a JWT assertion; returns its claims.
fn verify_assertion(app: &App, assertion_type: &str, jwt: &str) -> Result<Value, Response> {
    if assertion_type != JWT_BEARER {
        return Err(invalid_request("client_assertion_type is invalid"));
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(invalid_request("client_assertion is not a JWT"));
    };
    let decode_json =
        |part: &str| -> Option<Value> { serde_json::from_slice(&engine.decode(part).ok()?).ok() };
    let (Some(header_json), Some(claims_json), Ok(signature)) =
        (decode_json(header), decode_json(claims), engine.decode(signature))
    else {
        return Err(invalid_request("client_assertion is not a JWT"));
    };
    if header_json.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid_client("alg must be RS256"));
    }
    let kid = header_json.get("kid").and_then(Value::as_str).unwrap_or_default();
    let Some((n, e)) = app.assertion_keys.get(kid) else {
        return Err(invalid_client("kid is not registered"));
    };
    let public = ring::rsa::PublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
    let signing_input = format!("{header}.{claims}");
    if public
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), &signature)
        .is_err()
    {
        return Err(invalid_client("invalid signature"));
    }
    let text = |name: &str| claims_json.get(name).and_then(Value::as_str).unwrap_or_default();
    if text("iss") != app.channel_id || text("sub") != app.channel_id {
        return Err(invalid_client("iss and sub must be the channel ID"));
    }
    if text("aud") != "https://api.line.me/" {
        return Err(invalid_client("aud must be https://api.line.me/"));
    }
    let now = chrono::Utc::now().timestamp();
    let exp = claims_json.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= now || exp > now + 30 * 60 + 60 {
        return Err(invalid_client("exp must be in the next 30 minutes"));
    }
    Ok(claims_json)
}

fn issue(app: &App, key_id: Option<String>, lifetime: u64) -> String {
    let n = app.next_seq();
    let token = format!(
        "fake-{}-{:016x}{:016x}",
        if key_id.is_some() { "v21" } else { "stateless" },
        crate::testkit::line::faults::mix(app.seed ^ n ^ 0x70C),
        crate::testkit::line::faults::mix(n)
    );
    let expires_at = app.clock.now() + Duration::from_secs(lifetime);
    lock(&app.platform).tokens.insert(token.clone(), IssuedAccessToken { key_id, expires_at });
    token
}

fn active_v21(app: &App) -> Vec<(String, String)> {
    let now = app.clock.now();
    lock(&app.platform)
        .tokens
        .iter()
        .filter(|(_, t)| now < t.expires_at)
        .filter_map(|(token, t)| Some((token.clone(), t.key_id.clone()?)))
        .collect()
}

pub(super) fn issue_v21(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let fields = form(&input)?;
        if field(&fields, "grant_type")? != "client_credentials" {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ));
        }
        let claims = verify_assertion(
            app,
            field(&fields, "client_assertion_type")?,
            field(&fields, "client_assertion")?,
        )?;
        let lifetime = claims.get("token_exp").and_then(Value::as_u64).unwrap_or(MAX_V21_LIFETIME);
        if lifetime == 0 || lifetime > MAX_V21_LIFETIME {
            return Err(invalid_request("token_exp must be at most 30 days"));
        }
        if active_v21(app).len() >= MAX_V21_TOKENS {
            return Err(invalid_request("the channel already has 30 valid tokens"));
        }
        let key_id = format!("kid{:x}", app.next_seq());
        let token = issue(app, Some(key_id.clone()), lifetime);
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "key_id": key_id,
            }),
        ))
    })
}

pub(super) fn issue_stateless(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let fields = form(&input)?;
        if field(&fields, "grant_type")? != "client_credentials" {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ));
        }
        if fields.iter().any(|(k, _)| k == "client_assertion") {
            verify_assertion(
                app,
                field(&fields, "client_assertion_type")?,
                field(&fields, "client_assertion")?,
            )?;
        } else if field(&fields, "client_id")? != app.channel_id
            || field(&fields, "client_secret")? != app.channel_secret
        {
            return Err(invalid_client("invalid client_id or client_secret"));
        }
        let token = issue(app, None, STATELESS_LIFETIME);
        Ok(respond::json(
            StatusCode::OK,
            &json!({ "access_token": token, "token_type": "Bearer", "expires_in": STATELESS_LIFETIME }),
        ))
    })
}

pub(super) fn verify_v21(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let token = input
            .query_param("access_token")
            .ok_or_else(|| invalid_request("access_token is required"))?;
        let now = app.clock.now();
        let platform = lock(&app.platform);
        let issued = platform
            .tokens
            .get(&token)
            .filter(|t| now < t.expires_at && t.key_id.is_some())
            .ok_or_else(|| invalid_request("access token expired"))?;
        let left = issued.expires_at.saturating_duration_since(now).as_secs();
        Ok(respond::json(
            StatusCode::OK,
            &json!({ "client_id": app.channel_id, "expires_in": left, "scope": "profile chat_message.write" }),
        ))
    })
}

pub(super) fn revoke_v21(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let fields = form(&input)?;
        if field(&fields, "client_id")? != app.channel_id
            || field(&fields, "client_secret")? != app.channel_secret
        {
            return Err(invalid_client("invalid client_id or client_secret"));
        }
        let token = field(&fields, "access_token")?;
        // LINE answers 200 for a token that is already invalid, too.
        lock(&app.platform).tokens.remove(token);
        Ok(respond::ok_empty())
    })
}

pub(super) fn key_ids(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let assertion_type = input
            .query_param("client_assertion_type")
            .ok_or_else(|| invalid_request("client_assertion_type is required"))?;
        let assertion = input
            .query_param("client_assertion")
            .ok_or_else(|| invalid_request("client_assertion is required"))?;
        verify_assertion(app, &assertion_type, &assertion)?;
        let mut kids: Vec<String> = active_v21(app).into_iter().map(|(_, kid)| kid).collect();
        kids.sort();
        Ok(respond::json(StatusCode::OK, &json!({ "kids": kids })))
    })
}
