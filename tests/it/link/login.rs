//! LINE Login (OIDC + PKCE) against a wiremock token endpoint, and ID-token verification.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use enishi::link::{
    BotPrompt, CallbackParams, IdTokenError, LineLogin, LinkSource, LinkStore, LoginError,
    MemoryLinkStore, RejectReason, pkce_challenge, sign_id_token_hs256, verify_id_token,
};
use enishi::{CustomerId, LineUserId};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CHANNEL_ID: &str = "1660000001";
const SECRET: &str = "login-channel-secret";
const REDIRECT: &str = "https://shop.example/line/login/callback";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn sub() -> String {
    format!("U{:032x}", 77)
}

fn claims(nonce: &str) -> Value {
    json!({
        "iss": "https://access.line.me", "sub": sub(), "aud": CHANNEL_ID,
        "exp": t0().timestamp() + 3600, "iat": t0().timestamp(), "nonce": nonce,
        "amr": ["pwd"], "name": "Hanako"
    })
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn form(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body).into_owned().collect()
}

/// A token endpoint that signs an ID token carrying the nonce of the pending authorization.
async fn token_endpoint(nonce: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v2.1/token"))
        .respond_with(move |_req: &Request| {
            ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "at", "expires_in": 2592000, "token_type": "Bearer",
                "scope": "profile openid", "refresh_token": "rt",
                "id_token": sign_id_token_hs256(&claims(&nonce), SECRET),
            }))
        })
        .mount(&server)
        .await;
    server
}

fn login(store: Arc<MemoryLinkStore>, token_base: &str) -> LineLogin {
    LineLogin::builder(CHANNEL_ID, SECRET, REDIRECT, store)
        .token_url(format!("{token_base}/oauth2/v2.1/token"))
        .bot_prompt(BotPrompt::Aggressive)
        .build()
        .unwrap()
}

fn cust() -> CustomerId {
    CustomerId::new("C-500").unwrap()
}

#[tokio::test]
async fn link_login_end_to_end_with_pkce_links_sub_to_customer() {
    let store = Arc::new(MemoryLinkStore::new());
    // The nonce is only known after authorize; build the login twice over one store.
    let url = login(store.clone(), "http://127.0.0.1:9").authorize(&cust(), t0()).await.unwrap();
    assert_eq!(url.origin().ascii_serialization(), "https://access.line.me");
    assert_eq!(url.path(), "/oauth2/v2.1/authorize");
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&url, "client_id").as_deref(), Some(CHANNEL_ID));
    assert_eq!(param(&url, "redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(param(&url, "scope").as_deref(), Some("profile openid"));
    assert_eq!(param(&url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(&url, "bot_prompt").as_deref(), Some("aggressive"));
    let state = param(&url, "state").unwrap();
    let nonce = param(&url, "nonce").unwrap();
    assert!(state.len() >= 43 && nonce.len() >= 43 && state != nonce);

    let server = token_endpoint(nonce).await;
    let login = login(store.clone(), &server.uri());
    let params: CallbackParams =
        serde_urlencoded_query(&format!("code=abc&state={state}&friendship_status_changed=true"));
    assert!(!format!("{params:?}").contains(&state), "state redacted in Debug");
    let linked = login.callback(&params, &cust(), t0()).await.unwrap();
    assert_eq!(linked.claims.line_user.as_str(), sub());
    assert_eq!(linked.friendship_status_changed, Some(true));
    assert!(linked.outcome.is_new());
    let link = store.link_of_customer(&cust()).await.unwrap().unwrap();
    assert_eq!((link.line_user.as_str(), link.source), (sub().as_str(), LinkSource::LineLogin));

    let requests = server.received_requests().await.unwrap();
    let f = form(&requests[0]);
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("grant_type"), "authorization_code");
    assert_eq!(get("code"), "abc");
    assert_eq!(get("redirect_uri"), REDIRECT);
    assert_eq!(get("client_id"), CHANNEL_ID);
    assert_eq!(get("client_secret"), SECRET);
    assert_eq!(pkce_challenge(&get("code_verifier")), param(&url, "code_challenge").unwrap());
    assert!(!format!("{login:?}").contains(SECRET));
}

fn serde_urlencoded_query(q: &str) -> CallbackParams {
    // Axum's Query extractor parses the same way (serde_urlencoded); mirror it by hand here.
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let mut obj = serde_json::Map::new();
    for (k, v) in pairs {
        let value = match v.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(v),
        };
        obj.insert(k, value);
    }
    serde_json::from_value(Value::Object(obj)).unwrap()
}

#[tokio::test]
async fn link_login_rejects_replayed_unknown_expired_and_foreign_states() {
    let store = Arc::new(MemoryLinkStore::new());
    let url = login(store.clone(), "http://127.0.0.1:9").authorize(&cust(), t0()).await.unwrap();
    let state = param(&url, "state").unwrap();
    let server = token_endpoint(param(&url, "nonce").unwrap()).await;
    let login = login(store.clone(), &server.uri());
    let cb = |s: &str| serde_urlencoded_query(&format!("code=abc&state={s}"));

    let e = login.callback(&cb("forged"), &cust(), t0()).await.unwrap_err();
    assert_eq!(e.reject_reason(), Some(RejectReason::Unknown));
    let late = t0() + chrono::Duration::minutes(10);
    let e = login.callback(&cb(&state), &cust(), late).await.unwrap_err();
    assert_eq!(e.reject_reason(), Some(RejectReason::Expired));
    login.callback(&cb(&state), &cust(), t0()).await.unwrap();
    let e = login.callback(&cb(&state), &cust(), t0()).await.unwrap_err();
    assert_eq!(e.reject_reason(), Some(RejectReason::Replayed));

    // A state started by another customer (login CSRF) is refused and nothing is linked.
    let other = CustomerId::new("C-other").unwrap();
    let url = login.authorize(&other, t0()).await.unwrap();
    let e = login.callback(&cb(&param(&url, "state").unwrap()), &cust(), t0()).await.unwrap_err();
    assert_eq!(e.reject_reason(), Some(RejectReason::Mismatched));
    assert_eq!(store.link_of_customer(&other).await.unwrap(), None);
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "one exchange only");
}

#[tokio::test]
async fn link_login_wrong_nonce_from_token_endpoint_is_rejected() {
    let store = Arc::new(MemoryLinkStore::new());
    let server = token_endpoint("someone-elses-nonce".into()).await;
    let login = login(store.clone(), &server.uri());
    let url = login.authorize(&cust(), t0()).await.unwrap();
    let params =
        serde_urlencoded_query(&format!("code=abc&state={}", param(&url, "state").unwrap()));
    let e = login.callback(&params, &cust(), t0()).await.unwrap_err();
    assert!(matches!(e, LoginError::IdToken(IdTokenError::NonceMismatch)), "{e:?}");
    assert_eq!(store.link_of_customer(&cust()).await.unwrap(), None);
}

#[tokio::test]
async fn link_login_denied_and_token_endpoint_errors_are_typed() {
    let store = Arc::new(MemoryLinkStore::new());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "invalid authorization code"}),
        ))
        .mount(&server)
        .await;
    let login = login(store.clone(), &server.uri());
    let url = login.authorize(&cust(), t0()).await.unwrap();
    let params = serde_urlencoded_query(&format!(
        "error=access_denied&error_description=user+cancelled&state={}",
        param(&url, "state").unwrap()
    ));
    let e = login.callback(&params, &cust(), t0()).await.unwrap_err();
    assert!(matches!(e, LoginError::Denied { ref error, .. } if error == "access_denied"), "{e:?}");

    let url = login.authorize(&cust(), t0()).await.unwrap();
    let params =
        serde_urlencoded_query(&format!("code=bad&state={}", param(&url, "state").unwrap()));
    let e = login.callback(&params, &cust(), t0()).await.unwrap_err();
    assert!(
        matches!(e, LoginError::TokenEndpoint { status: 400, error: Some(ref er), .. } if er == "invalid_grant"),
        "{e:?}"
    );
}

#[test]
fn link_id_token_verification_checks_every_claim() {
    let now = t0();
    let ok = sign_id_token_hs256(&claims("n1"), SECRET);
    let c = verify_id_token(&ok, SECRET, CHANNEL_ID, "n1", now).unwrap();
    assert_eq!(c.line_user, LineUserId::new(sub()).unwrap());
    assert!(!format!("{c:?}").contains("Hanako"));

    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = claims("n1");
        f(&mut v);
        sign_id_token_hs256(&v, SECRET)
    };
    let cases: Vec<(String, IdTokenError)> = vec![
        (sign_id_token_hs256(&claims("n1"), "other-secret"), IdTokenError::BadSignature),
        (
            with(&|v| v["iss"] = json!("https://evil.example")),
            IdTokenError::WrongIssuer("https://evil.example".into()),
        ),
        (with(&|v| v["aud"] = json!("1999")), IdTokenError::WrongAudience),
        (with(&|v| v["exp"] = json!(now.timestamp())), IdTokenError::Expired),
        (with(&|v| v["nonce"] = json!("n2")), IdTokenError::NonceMismatch),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("nonce");
            }),
            IdTokenError::NonceMismatch,
        ),
        (with(&|v| v["sub"] = json!("not-a-user")), IdTokenError::InvalidSubject),
        ("a.b".into(), IdTokenError::Malformed("expected three parts")),
    ];
    for (token, expected) in cases {
        assert_eq!(verify_id_token(&token, SECRET, CHANNEL_ID, "n1", now).unwrap_err(), expected);
    }
    // aud as an array is accepted when it contains the channel.
    let arr = with(&|v| v["aud"] = json!(["x", CHANNEL_ID]));
    verify_id_token(&arr, SECRET, CHANNEL_ID, "n1", now).unwrap();
}

#[test]
fn link_id_token_refuses_alg_none_and_es256() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let payload = b64(&claims("n1").to_string());
    for alg in ["none", "ES256", "HS512"] {
        let token = format!("{}.{payload}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)));
        assert_eq!(
            verify_id_token(&token, SECRET, CHANNEL_ID, "n1", t0()).unwrap_err(),
            IdTokenError::UnsupportedAlgorithm(alg.into())
        );
    }
}

mod es256 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn jwk(k: &SigningKey, kid: &str) -> Value {
        let point = k.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
               "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())})
    }

    fn sign(k: &SigningKey, kid: &str, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string()),
            B64.encode(claims.to_string())
        );
        let sig: Signature = k.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    fn jwks(keys: &[Value]) -> enishi::link::Jwks {
        enishi::link::Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn link_es256_id_token_verifies_against_jwks() {
        use enishi::link::verify_id_token_es256 as verify;
        let (k1, k2) = (key(1), key(2));
        let set = jwks(&[jwk(&k1, "k1"), json!({"kty": "RSA", "kid": "rsa"})]);
        assert_eq!(set.len(), 1, "non-P-256 keys are skipped");
        let token = sign(&k1, "k1", &claims("n1"));
        let c = verify(&token, &set, CHANNEL_ID, Some("n1"), t0()).unwrap();
        assert_eq!(c.line_user.as_str(), sub());
        verify(&token, &set, CHANNEL_ID, None, t0()).unwrap();
        assert_eq!(
            verify(&token, &set, CHANNEL_ID, Some("n2"), t0()).unwrap_err(),
            IdTokenError::NonceMismatch
        );
        assert_eq!(
            verify(&token, &set, "other", None, t0()).unwrap_err(),
            IdTokenError::WrongAudience
        );
        // Signed by a key that is not k1 but claims to be k1.
        let forged = sign(&k2, "k1", &claims("n1"));
        assert_eq!(
            verify(&forged, &set, CHANNEL_ID, None, t0()).unwrap_err(),
            IdTokenError::BadSignature
        );
        let unknown = sign(&k1, "k9", &claims("n1"));
        assert_eq!(
            verify(&unknown, &set, CHANNEL_ID, None, t0()).unwrap_err(),
            IdTokenError::UnknownKey(Some("k9".into()))
        );
        // No algorithm confusion: an HS256 token is refused by the ES256 verifier.
        let hs = sign_id_token_hs256(&claims("n1"), SECRET);
        assert_eq!(
            verify(&hs, &set, CHANNEL_ID, None, t0()).unwrap_err(),
            IdTokenError::UnsupportedAlgorithm("HS256".into())
        );
        assert!(enishi::link::Jwks::parse(b"{}").is_err());
    }

    async fn jwks_server(keys: Vec<Value>, cache_control: Option<&str>) -> MockServer {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(200).set_body_json(json!({ "keys": keys }));
        if let Some(value) = cache_control {
            answer = answer.insert_header("cache-control", value);
        }
        Mock::given(method("GET"))
            .and(path("/oauth2/v2.1/certs"))
            .respond_with(answer)
            .mount(&server)
            .await;
        server
    }

    fn sdk_login(server: &MockServer) -> enishi::link::LineLoginBuilder {
        LineLogin::builder(CHANNEL_ID, SECRET, REDIRECT, Arc::new(MemoryLinkStore::new()))
            .jwks_url(format!("{}/oauth2/v2.1/certs", server.uri()))
    }

    async fn fetches(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[tokio::test(start_paused = true)]
    async fn link_sdk_id_token_fetches_caches_and_refetches_jwks() {
        let (k1, k2) = (key(3), key(4));
        let server = jwks_server(vec![jwk(&k1, "k1"), jwk(&k2, "k2")], None).await;
        let login = sdk_login(&server).build().unwrap();
        let t1 = sign(&k1, "k1", &claims("n"));
        login.verify_sdk_id_token(&t1, Some("n"), t0()).await.unwrap();
        login.verify_sdk_id_token(&t1, Some("n"), t0()).await.unwrap();
        assert_eq!(fetches(&server).await, 1, "cached");
        // After the default refetch interval, an unknown kid refetches (LINE may have rotated).
        tokio::time::advance(enishi::link::DEFAULT_JWKS_REFETCH_INTERVAL).await;
        let t3 = sign(&k1, "k3", &claims("n"));
        let e = login.verify_sdk_id_token(&t3, Some("n"), t0()).await.unwrap_err();
        assert!(matches!(e, LoginError::IdToken(IdTokenError::UnknownKey(_))), "{e:?}");
        assert_eq!(fetches(&server).await, 2, "unknown kid refetches");
    }

    #[tokio::test(start_paused = true)]
    async fn link_sdk_id_token_unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
        let k1 = key(5);
        let server = jwks_server(vec![jwk(&k1, "k1")], None).await;
        let interval = std::time::Duration::from_secs(3600);
        let login = sdk_login(&server).jwks_refetch_interval(interval).build().unwrap();
        login.verify_sdk_id_token(&sign(&k1, "k1", &claims("n")), None, t0()).await.unwrap();
        // A flood of forged kids: each refused, none of them calls LINE.
        for n in 0..50 {
            let forged = sign(&k1, &format!("forged{n}"), &claims("n"));
            let e = login.verify_sdk_id_token(&forged, None, t0()).await.unwrap_err();
            assert!(matches!(e, LoginError::IdToken(IdTokenError::UnknownKey(_))), "{e:?}");
        }
        assert_eq!(fetches(&server).await, 1, "throttled");
        // Concurrent verifiers share the cache too.
        let forged = sign(&k1, "forged-concurrent", &claims("n"));
        let many = (0..20).map(|_| login.verify_sdk_id_token(&forged, None, t0()));
        assert!(futures_util::future::join_all(many).await.iter().all(Result::is_err));
        assert_eq!(fetches(&server).await, 1);
        // Once the interval has passed, one unknown kid refetches once.
        tokio::time::advance(interval).await;
        login.verify_sdk_id_token(&forged, None, t0()).await.unwrap_err();
        login.verify_sdk_id_token(&forged, None, t0()).await.unwrap_err();
        assert_eq!(fetches(&server).await, 2);
        // A known kid still verifies from the cache.
        login.verify_sdk_id_token(&sign(&k1, "k1", &claims("n")), None, t0()).await.unwrap();
        assert_eq!(fetches(&server).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn link_sdk_id_token_jwks_cache_follows_max_age() {
        let k1 = key(6);
        let server = jwks_server(vec![jwk(&k1, "k1")], Some("public, max-age=600")).await;
        let login = sdk_login(&server).build().unwrap();
        let token = sign(&k1, "k1", &claims("n"));
        login.verify_sdk_id_token(&token, None, t0()).await.unwrap();
        tokio::time::advance(std::time::Duration::from_secs(500)).await;
        login.verify_sdk_id_token(&token, None, t0()).await.unwrap();
        assert_eq!(fetches(&server).await, 1, "fresh for 600 s");
        tokio::time::advance(std::time::Duration::from_secs(200)).await;
        login.verify_sdk_id_token(&token, None, t0()).await.unwrap();
        assert_eq!(fetches(&server).await, 2, "stale after 600 s");
    }
}
