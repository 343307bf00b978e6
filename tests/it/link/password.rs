//! The password step of the link page: the link token is checked before the shop sees the
//! password (no credential oracle), a per-address attempt limit, and what the page tells the
//! customer when the shop cannot answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use enishi::CustomerId;
use enishi::commerce::{AuthError, CommerceError, CustomerAuthenticator, Password};
use enishi::line::LinkToken;
use enishi::link::{AttemptLimit, LinkError, LoginFailure, NonceIssued};

use super::flow::{Setup, cust, ip, now, setup, token_of, uid};

/// `hanako@example.jp` / `correct horse`; counts how often the shop was asked.
#[derive(Debug, Default)]
struct Shop {
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl CustomerAuthenticator for Shop {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<CustomerId, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if email == "hanako@example.jp" && password.expose() == "correct horse" {
            Ok(CustomerId::new("C-1001").unwrap())
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

async fn with_shop(
    configure: impl FnOnce(enishi::link::AccountLinkerBuilder) -> enishi::link::AccountLinkerBuilder,
) -> (Setup, Arc<Shop>) {
    let shop = Arc::new(Shop::default());
    let s = setup({
        let shop = shop.clone();
        move |b| configure(b.authenticator(shop))
    })
    .await;
    (s, shop)
}

async fn log_in(
    s: &Setup,
    token: &LinkToken,
    password: &str,
    client: u8,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<NonceIssued, LinkError> {
    s.linker
        .complete_with_password(
            token,
            "hanako@example.jp",
            &Password::new(password),
            ip(client),
            at,
        )
        .await
}

#[tokio::test]
async fn link_password_unusable_tokens_answer_alike_and_never_reach_the_shop() {
    let (s, shop) = with_shop(|b| b).await;
    let forged = LinkToken::from_received("forgedforgedforgedforgedforged12");
    let expired = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let used = token_of(&s.linker.start(&uid(2), now()).await.unwrap().link_url);
    s.linker.complete_login(&used, &cust(2), now()).await.unwrap();
    let late = now() + chrono::Duration::minutes(11);

    let mut answers = Vec::new();
    for (token, at) in [(&forged, now()), (&expired, late), (&used, now())] {
        for password in ["correct horse", "wrong"] {
            let e = log_in(&s, token, password, 1, at).await.unwrap_err();
            let f = e.login_failure();
            answers.push((f, f.status(), f.default_title(), f.default_message()));
        }
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    assert_eq!(answers[0].0, LoginFailure::LinkUnusable);
    assert_eq!(answers[0].1, 400);
    assert_eq!(shop.calls.load(Ordering::SeqCst), 0, "the shop never saw a password");

    // A usable token: the shop is asked; a wrong password does not spend the token.
    let token = token_of(&s.linker.start(&uid(3), now()).await.unwrap().link_url);
    let e = log_in(&s, &token, "wrong", 1, now()).await.unwrap_err();
    assert_eq!(e.login_failure(), LoginFailure::WrongCredentials);
    assert_eq!(e.login_failure().status(), 401);
    log_in(&s, &token, "correct horse", 1, now()).await.unwrap();
    assert_eq!(shop.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn link_password_attempts_are_limited_per_client_address() {
    let limit = AttemptLimit::new(3, Duration::from_secs(60));
    let (s, shop) = with_shop(|b| b.password_attempt_limit(limit)).await;
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let t0 = now();
    for i in 0..3 {
        let e = log_in(&s, &token, "wrong", 7, t0 + chrono::Duration::seconds(i)).await;
        assert_eq!(e.unwrap_err().login_failure(), LoginFailure::WrongCredentials);
    }
    // Over the limit: refused before anything is checked, even with the right password.
    let e = log_in(&s, &token, "correct horse", 7, t0 + chrono::Duration::seconds(10)).await;
    let e = e.unwrap_err();
    assert!(
        matches!(e, LinkError::TooManyAttempts { retry_after } if retry_after == Duration::from_secs(50)),
        "{e:?}"
    );
    assert!(matches!(e.login_failure(), LoginFailure::TryLater { .. }));
    assert_eq!(e.login_failure().status(), 429);
    assert_eq!(e.login_failure().default_message(), "しばらくしてからもう一度お試しください。");
    assert_eq!(shop.calls.load(Ordering::SeqCst), 3);
    // Forged tokens count too (probing tokens is an attempt).
    let forged = LinkToken::from_received("forged");
    let e = log_in(&s, &forged, "x", 7, t0 + chrono::Duration::seconds(11)).await.unwrap_err();
    assert!(matches!(e, LinkError::TooManyAttempts { .. }));
    // Another address is not affected, and the window slides.
    log_in(&s, &token, "correct horse", 8, t0 + chrono::Duration::seconds(12)).await.unwrap();
    let token = token_of(&s.linker.start(&uid(2), now()).await.unwrap().link_url);
    log_in(&s, &token, "correct horse", 7, t0 + chrono::Duration::seconds(60)).await.unwrap();
}

#[tokio::test]
async fn link_password_successes_do_not_use_up_the_allowance() {
    let limit = AttemptLimit::new(2, Duration::from_secs(900));
    let (s, _) = with_shop(|b| b.password_attempt_limit(limit)).await;
    // Customers behind one shared address (a carrier NAT) all link.
    for n in 0..5 {
        let token = token_of(&s.linker.start(&uid(n), now()).await.unwrap().link_url);
        log_in(&s, &token, "correct horse", 9, now()).await.unwrap();
    }
}

#[tokio::test]
async fn link_password_default_limit_is_ten_per_address() {
    let (s, _) = with_shop(|b| b).await;
    let forged = LinkToken::from_received("forged");
    for _ in 0..10 {
        let e = log_in(&s, &forged, "x", 5, now()).await.unwrap_err();
        assert_eq!(e.login_failure(), LoginFailure::LinkUnusable);
    }
    let e = log_in(&s, &forged, "x", 5, now()).await.unwrap_err();
    assert!(matches!(e, LinkError::TooManyAttempts { .. }), "{e:?}");

    let (s, _) = with_shop(|b| b.without_password_attempt_limit()).await;
    for _ in 0..20 {
        let e = log_in(&s, &forged, "x", 5, now()).await.unwrap_err();
        assert_eq!(e.login_failure(), LoginFailure::LinkUnusable);
    }
}

/// Fails every sign-in the way it was told to.
#[derive(Debug)]
struct Failing(fn() -> AuthError);

#[async_trait::async_trait]
impl CustomerAuthenticator for Failing {
    async fn authenticate(&self, _: &str, _: &Password) -> Result<CustomerId, AuthError> {
        Err((self.0)())
    }
}

#[tokio::test]
async fn link_password_shop_limits_and_outages_say_try_later_not_wrong_password() {
    let cases: [(fn() -> AuthError, LoginFailure); 6] = [
        (|| AuthError::InvalidCredentials, LoginFailure::WrongCredentials),
        (
            || AuthError::RateLimited { retry_after: Some(Duration::from_secs(30)) },
            LoginFailure::TryLater { retry_after: Some(Duration::from_secs(30)) },
        ),
        (
            || AuthError::Backend {
                backend: "ecforce",
                source: Box::new(CommerceError::RateLimited {
                    backend: "ecforce",
                    retry_after: None,
                }),
            },
            LoginFailure::TryLater { retry_after: None },
        ),
        (
            // e.g. a 403 from a firewall in front of the shop.
            || AuthError::Backend {
                backend: "ecforce",
                source: Box::new(CommerceError::Unauthenticated {
                    backend: "ecforce",
                    message: "Forbidden".into(),
                }),
            },
            LoginFailure::Unavailable,
        ),
        (
            || AuthError::Backend { backend: "ecforce", source: "connection reset".into() },
            LoginFailure::Unavailable,
        ),
        (|| AuthError::VerificationRequired, LoginFailure::VerificationRequired),
    ];
    for (fail, expected) in cases {
        let s = setup(move |b| b.authenticator(Arc::new(Failing(fail)))).await;
        let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
        let e = log_in(&s, &token, "whatever", 1, now()).await.unwrap_err();
        let f = e.login_failure();
        assert_eq!(f, expected, "{e:?}");
        if expected != LoginFailure::WrongCredentials {
            assert_ne!(f.default_message(), LoginFailure::WrongCredentials.default_message());
            assert_ne!(f.status(), 401);
        }
    }
}
