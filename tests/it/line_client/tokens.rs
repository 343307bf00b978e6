//! Channel access tokens: v2.1 and stateless against the fake, and rotation behind a
//! `TokenSource` (single flight, refresh before expiry) on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use enishi::line::{
    AccessToken, AssertionKey, ChannelTokenClient, IssuedToken, LineClient, LineError,
    RotatingToken, TokenIssuer, TokenKind, TokenSource,
};
use enishi::testkit::{self as fake, Endpoint, FakeLine};
use secrecy::SecretString;

use super::conformance::assert_conforms;

fn test_key() -> AssertionKey {
    let jwk = SecretString::from(fake::TEST_ASSERTION_KEY_JWK.to_owned());
    AssertionKey::from_jwk(fake::TEST_CHANNEL_ID, fake::TEST_ASSERTION_KID, &jwk).unwrap()
}

async fn start() -> FakeLine {
    FakeLine::builder().record_requests(true).start().await.expect("the fake LINE server starts")
}

fn tokens(line: &FakeLine) -> ChannelTokenClient {
    ChannelTokenClient::new(&line.api_base_url(), reqwest::Client::new()).unwrap()
}

fn secret() -> SecretString {
    SecretString::from(fake::TEST_CHANNEL_SECRET.to_owned())
}

#[tokio::test]
async fn v21_tokens_are_issued_verified_listed_and_revoked() {
    let line = start().await;
    let api = tokens(&line);
    let key = test_key();
    let issued = api.issue_v21(&key, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(issued.expires_in, 3600);
    let kid = issued.key_id.clone().unwrap();
    let info = api.verify(&issued.access_token).await.unwrap();
    assert_eq!(info.client_id, fake::TEST_CHANNEL_ID);
    assert!(info.expires_in > 3500 && info.expires_in <= 3600, "{info:?}");
    assert_eq!(api.valid_key_ids(&key).await.unwrap(), vec![kid]);

    // The issued token works as a channel access token.
    let client = LineClient::builder()
        .channel_access_token(issued.access_token.expose())
        .base_url(line.api_base_url())
        .build()
        .unwrap();
    client.bot_info().await.unwrap();

    api.revoke_v21(fake::TEST_CHANNEL_ID, &secret(), &issued.access_token).await.unwrap();
    assert!(api.valid_key_ids(&key).await.unwrap().is_empty());
    assert_eq!(
        api.verify(&issued.access_token).await.unwrap_err().status().map(|s| s.as_u16()),
        Some(400)
    );
    assert_eq!(client.bot_info().await.unwrap_err().status().map(|s| s.as_u16()), Some(401));
    // Lifetimes LINE refuses never leave the client.
    assert!(matches!(
        api.issue_v21(&key, Duration::from_secs(31 * 24 * 3600)).await,
        Err(LineError::Validation(_))
    ));
    assert_conforms(&line);
}

#[tokio::test]
async fn stateless_tokens_by_assertion_and_by_secret() {
    let line = start().await;
    let api = tokens(&line);
    let by_key = api.issue_stateless(&test_key()).await.unwrap();
    assert_eq!((by_key.expires_in, by_key.key_id.as_deref()), (900, None));
    let by_secret =
        api.issue_stateless_with_secret(fake::TEST_CHANNEL_ID, &secret()).await.unwrap();
    assert_ne!(by_key.access_token, by_secret.access_token);
    let wrong = SecretString::from("not-the-secret".to_owned());
    let err = api.issue_stateless_with_secret(fake::TEST_CHANNEL_ID, &wrong).await.unwrap_err();
    assert!(
        err.to_string().contains("400") || err.status().map(|s| s.as_u16()) == Some(400),
        "{err}"
    );
    assert!(format!("{err:?}").contains("invalid_client"), "{err:?}");
    assert_conforms(&line);
}

#[tokio::test]
async fn an_assertion_signed_by_an_unregistered_key_or_for_another_channel_is_refused() {
    let line = start().await;
    let api = tokens(&line);
    let jwk = SecretString::from(fake::TEST_ASSERTION_KEY_JWK.to_owned());
    let unknown_kid = AssertionKey::from_jwk(fake::TEST_CHANNEL_ID, "other-kid", &jwk).unwrap();
    let err = api.issue_stateless(&unknown_kid).await.unwrap_err();
    assert!(format!("{err:?}").contains("kid is not registered"), "{err:?}");
    let other_channel = AssertionKey::from_jwk("999", fake::TEST_ASSERTION_KID, &jwk).unwrap();
    let err = api.issue_v21(&other_channel, Duration::from_secs(60)).await.unwrap_err();
    assert!(format!("{err:?}").contains("iss and sub"), "{err:?}");
    assert_eq!(line.active_token_count(), 0);
}

#[test]
fn keys_and_tokens_never_show_in_debug_output() {
    let key = test_key();
    let shown = format!("{key:?}");
    assert!(shown.contains(fake::TEST_ASSERTION_KID) && !shown.contains("\"d\""), "{shown}");
    let token = AccessToken::new("very-secret-token").unwrap();
    assert!(!format!("{token:?}").contains("very-secret"));
    let bad = SecretString::from(r#"{"kty":"RSA","n":"AQAB"}"#.to_owned());
    let err = AssertionKey::from_jwk("1", "k", &bad).unwrap_err();
    assert!(matches!(err, LineError::Config(_)), "{err:?}");
    // A JWT assertion: three parts, RS256 header naming the kid.
    let jwt = key.assertion(1_700_000_000, Some(60)).unwrap();
    assert_eq!(jwt.split('.').count(), 3);
}

#[tokio::test]
async fn a_rotating_source_issues_once_and_reissues_after_a_401() {
    let line = start().await;
    let source = Arc::new(RotatingToken::new(
        tokens(&line),
        test_key(),
        TokenKind::V21(Duration::from_secs(3600)),
    ));
    let client = LineClient::builder()
        .token_source(source.clone())
        .base_url(line.api_base_url())
        .build()
        .unwrap();
    for _ in 0..5 {
        client.bot_info().await.unwrap();
    }
    assert_eq!(source.issued_count(), 1);
    assert_eq!(line.request_count(Endpoint::TokenIssueV21), 1);
    // An operator revokes every token: the next call gets a 401, drops its token, gets a new
    // one and succeeds.
    line.revoke_all_issued_tokens();
    client.bot_info().await.unwrap();
    assert_eq!(source.issued_count(), 2);
    assert_eq!(line.status_count(401), 1);
    assert!(!format!("{client:?}").contains("fake-v21"), "{client:?}");
    assert_conforms(&line);
}

/// Issues `tok-N` tokens of a fixed lifetime, taking `delay` each (on tokio's clock).
#[derive(Debug)]
struct CountingIssuer {
    issued: Arc<AtomicU64>,
    lifetime: u64,
    delay: Duration,
    fail_next: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl TokenIssuer for CountingIssuer {
    async fn issue(&self) -> Result<IssuedToken, LineError> {
        tokio::time::sleep(self.delay).await;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(LineError::Config("issuer down".into()));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(IssuedToken::new(AccessToken::new(&format!("tok-{n}"))?, self.lifetime, None))
    }

    fn channel_id(&self) -> &str {
        "1"
    }
}

#[tokio::test(start_paused = true)]
async fn rotation_refreshes_before_expiry_in_a_single_flight() {
    let issued = Arc::new(AtomicU64::new(0));
    let fail_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let source = Arc::new(
        RotatingToken::with_issuer(CountingIssuer {
            issued: issued.clone(),
            lifetime: 900,
            delay: Duration::from_secs(1),
            fail_next: fail_next.clone(),
        })
        .refresh_margin(Duration::from_secs(90)),
    );
    // 50 callers at once: one issuance, everyone gets the same token.
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await.unwrap() })
        })
        .collect();
    let tokens = futures_util::future::join_all(calls).await;
    assert!(tokens.iter().all(|t| t.as_ref().unwrap().expose() == "tok-1"));
    assert_eq!(issued.load(Ordering::SeqCst), 1);

    // Still fresh 800 s later (900 s lifetime, 90 s margin → refresh after 810 s).
    tokio::time::advance(Duration::from_secs(800)).await;
    assert_eq!(source.token().await.unwrap().expose(), "tok-1");
    // Past the refresh point but before expiry: replaced, again once for many callers.
    tokio::time::advance(Duration::from_secs(20)).await;
    let again: Vec<_> = (0..10)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await.unwrap().expose().to_owned() })
        })
        .collect();
    let again = futures_util::future::join_all(again).await;
    assert!(again.iter().all(|t| t.as_deref().unwrap() == "tok-2"), "{again:?}");
    assert_eq!(issued.load(Ordering::SeqCst), 2);

    // A failed issuance is reported, and the next call tries again.
    tokio::time::advance(Duration::from_secs(900)).await;
    fail_next.store(true, Ordering::SeqCst);
    assert!(source.token().await.is_err());
    assert_eq!(source.token().await.unwrap().expose(), "tok-3");

    // A 401 invalidates only the token that was rejected.
    let current = source.token().await.unwrap();
    assert!(source.invalidate(&AccessToken::new("tok-1").unwrap()));
    assert_eq!(source.token().await.unwrap(), current);
    assert!(source.invalidate(&current));
    assert_eq!(source.token().await.unwrap().expose(), "tok-4");
}
