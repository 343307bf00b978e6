//! The account-link flow driver against the fake LINE server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use enishi::commerce::{AuthError, CustomerAuthenticator, Password};
use enishi::line::webhook::{Event, parse_event};
use enishi::line::{LineClient, LinkToken};
use enishi::link::{
    AccountLinker, AuditAction, ConflictPolicy, Link, LinkError, LinkEventOutcome, LinkHook,
    LinkOutcome, LinkSource, LinkStore, LinkWriteBack, MemoryLinkStore, RejectReason,
    WriteBackError, WriteBackRetry, link_rich_menu,
};
use enishi::testkit::{FakeLine, user_id};
use enishi::{CustomerId, LineUserId};

pub(super) const LINK_PAGE: &str = "https://shop.example/line/link";

#[derive(Debug, Default)]
pub(super) struct CountingHook(pub(super) AtomicU32);

#[async_trait::async_trait]
impl LinkHook for CountingHook {
    async fn on_new_link(&self, _outcome: &LinkOutcome) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails the first `fail` calls, then succeeds; records what it wrote and cleared.
#[derive(Debug, Default)]
struct FlakyWriteBack {
    fail: u32,
    calls: AtomicU32,
    written: std::sync::Mutex<Vec<Link>>,
    cleared: std::sync::Mutex<Vec<Link>>,
}

#[async_trait::async_trait]
impl LinkWriteBack for FlakyWriteBack {
    async fn write_link(&self, link: &Link) -> Result<(), WriteBackError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail {
            return Err("backend down".into());
        }
        self.written.lock().unwrap().push(link.clone());
        Ok(())
    }
    async fn clear_link(&self, link: &Link) -> Result<(), WriteBackError> {
        self.cleared.lock().unwrap().push(link.clone());
        Ok(())
    }
}

/// Never answers: proves storing the link does not wait for the backend.
#[derive(Debug)]
struct HangingWriteBack;

#[async_trait::async_trait]
impl LinkWriteBack for HangingWriteBack {
    async fn write_link(&self, _: &Link) -> Result<(), WriteBackError> {
        std::future::pending().await
    }
    async fn clear_link(&self, _: &Link) -> Result<(), WriteBackError> {
        std::future::pending().await
    }
}

#[derive(Debug)]
struct OneCustomer;

#[async_trait::async_trait]
impl CustomerAuthenticator for OneCustomer {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<CustomerId, AuthError> {
        if email == "hanako@example.jp" && password.expose() == "correct horse" {
            Ok(CustomerId::new("C-1001").unwrap())
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

pub(super) fn client(line: &FakeLine) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()
        .unwrap()
}

pub(super) fn uid(n: u64) -> LineUserId {
    LineUserId::new(user_id(n)).unwrap()
}

pub(super) fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

pub(super) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(super) fn ip(n: u8) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(203, 0, 113, n).into()
}

pub(super) fn account_link_event(
    user: Option<&LineUserId>,
    result: &str,
    nonce: &str,
    redelivery: bool,
) -> Event {
    let source = match user {
        Some(u) => format!(r#""source":{{"type":"user","userId":"{u}"}},"replyToken":"rt","#),
        None => String::new(),
    };
    parse_event(&format!(
        r#"{{"type":"accountLink",{source}"timestamp":1700000000000,"mode":"active",
        "webhookEventId":"01HLINK","deliveryContext":{{"isRedelivery":{redelivery}}},
        "link":{{"result":"{result}","nonce":"{nonce}"}}}}"#
    ))
    .unwrap()
}

pub(super) fn nonce_of(redirect: &url::Url) -> String {
    redirect.query_pairs().find(|(k, _)| k == "nonce").unwrap().1.into_owned()
}

pub(super) fn token_of(url: &url::Url) -> LinkToken {
    LinkToken::from_received(
        url.query_pairs().find(|(k, _)| k == "linkToken").unwrap().1.into_owned(),
    )
}

pub(super) struct Setup {
    pub(super) line: FakeLine,
    pub(super) linker: AccountLinker,
    pub(super) store: Arc<MemoryLinkStore>,
    pub(super) hook: Arc<CountingHook>,
}

pub(super) async fn setup(
    configure: impl FnOnce(enishi::link::AccountLinkerBuilder) -> enishi::link::AccountLinkerBuilder,
) -> Setup {
    let line = FakeLine::builder().no_rate_limits().start().await.unwrap();
    let store = Arc::new(MemoryLinkStore::new());
    let hook = Arc::new(CountingHook::default());
    let builder = AccountLinker::builder(client(&line), store.clone(), LINK_PAGE)
        .access_base_url("https://access.example")
        .allow_redirect("https://shop.example/mypage")
        .hook(hook.clone());
    let linker = configure(builder).build().unwrap();
    Setup { line, linker, store, hook }
}

#[tokio::test]
async fn link_flow_start_issues_token_and_link_url() {
    let s = setup(|b| b).await;
    let started = s.linker.start(&uid(1), now()).await.unwrap();
    let issued = s.line.issued_link_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].user_id, user_id(1));
    assert!(started.link_url.as_str().starts_with(&format!("{LINK_PAGE}?linkToken=")));
    assert_eq!(token_of(&started.link_url).expose(), issued[0].link_token);
    let debug = format!("{started:?}");
    assert!(!debug.contains(&issued[0].link_token), "{debug}");
    let json = serde_json::to_value(started.message("連携しますか?", "連携する")).unwrap();
    assert_eq!(json["template"]["actions"][0]["uri"], started.link_url.as_str());
}

#[tokio::test]
async fn link_flow_complete_login_redirects_to_account_link_dialog() {
    let s = setup(|b| b).await;
    let started = s.linker.start(&uid(1), now()).await.unwrap();
    let token = token_of(&started.link_url);
    let issued = s.linker.complete_login(&token, &cust(1), now()).await.unwrap();
    assert_eq!(issued.line_user, uid(1));
    let r = &issued.redirect;
    assert_eq!(r.origin().ascii_serialization(), "https://access.example");
    assert_eq!(r.path(), "/dialog/bot/accountLink");
    assert_eq!(r.query_pairs().find(|(k, _)| k == "linkToken").unwrap().1, token.expose());
    let nonce = nonce_of(r);
    assert!(nonce.len() >= 22 && nonce.len() <= 255, "≥ 128 bits, ≤ 255 chars");
    let debug = format!("{issued:?}");
    assert!(!debug.contains(&nonce) && !debug.contains(token.expose()), "{debug}");
}

#[tokio::test]
async fn link_flow_rejects_unknown_replayed_and_expired_link_tokens() {
    let s = setup(|b| b).await;
    let e = s.linker.complete_login(&LinkToken::from_received("forged"), &cust(1), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Unknown));

    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let late = now() + chrono::Duration::minutes(11);
    let e = s.linker.complete_login(&token, &cust(1), late).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Expired));
    s.linker.complete_login(&token, &cust(1), now()).await.unwrap();
    let e = s.linker.complete_login(&token, &cust(2), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));
}

#[tokio::test]
async fn link_flow_account_link_ok_links_once_even_when_redelivered() {
    let s = setup(|b| b).await;
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let nonce = nonce_of(&s.linker.complete_login(&token, &cust(1), now()).await.unwrap().redirect);
    let out = s
        .linker
        .handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), now())
        .await
        .unwrap();
    let LinkEventOutcome::Linked { outcome, write_back, .. } = out else { panic!("{out:?}") };
    assert!(outcome.is_new() && write_back.is_none());
    assert_eq!(outcome.link().customer, cust(1));
    assert_eq!(outcome.link().source, LinkSource::AccountLink);
    let e =
        s.linker.handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, true), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));
    assert_eq!(s.hook.0.load(Ordering::SeqCst), 1, "the hook fires once per new link");
    assert_eq!(s.store.link_of_user(&uid(1)).await.unwrap().unwrap().customer, cust(1));
}

#[tokio::test]
async fn link_flow_failed_result_consumes_nonce_and_links_nothing() {
    let s = setup(|b| b).await;
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let nonce = nonce_of(&s.linker.complete_login(&token, &cust(1), now()).await.unwrap().redirect);
    let out = s
        .linker
        .handle_event(&account_link_event(None, "failed", &nonce, false), now())
        .await
        .unwrap();
    assert!(matches!(out, LinkEventOutcome::Failed { customer: Some(ref c) } if c == &cust(1)));
    assert_eq!(s.store.link_of_customer(&cust(1)).await.unwrap(), None);
    let e =
        s.linker.handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));
    assert_eq!(s.hook.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn link_flow_rejects_mismatched_and_unknown_nonces_writing_nothing() {
    let s = setup(|b| b).await;
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let nonce = nonce_of(&s.linker.complete_login(&token, &cust(1), now()).await.unwrap().redirect);
    let e =
        s.linker.handle_event(&account_link_event(Some(&uid(2)), "ok", &nonce, false), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Mismatched));
    let e = s
        .linker
        .handle_event(
            &account_link_event(Some(&uid(1)), "ok", "not-a-nonce-we-issued", false),
            now(),
        )
        .await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Unknown));
    let late = now() + chrono::Duration::minutes(11);
    let e =
        s.linker.handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), late).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Expired));
    assert!(s.store.audit_trail(10).await.unwrap().is_empty(), "rejections write nothing");
    // The right user, in time, still links.
    s.linker
        .handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn link_flow_ok_without_source_is_an_error() {
    let s = setup(|b| b).await;
    let e = s.linker.handle_event(&account_link_event(None, "ok", "x", false), now()).await;
    assert!(matches!(e, Err(LinkError::MissingUser)));
}

#[tokio::test]
async fn link_flow_conflict_policy_reject_and_replace() {
    let s = setup(|b| b).await;
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let nonce = nonce_of(&s.linker.complete_login(&token, &cust(1), now()).await.unwrap().redirect);
    // The other link lands between the sign-in and LINE's event.
    s.store
        .link(&uid(1), &cust(9), LinkSource::Backend, ConflictPolicy::Reject, now())
        .await
        .unwrap();
    // A sign-in now is refused before LINE's dialog, and the link token stays usable.
    let token = token_of(&s.linker.start(&uid(1), now()).await.unwrap().link_url);
    let early = s.linker.complete_login(&token, &cust(1), now()).await;
    assert!(matches!(early, Err(LinkError::Store(enishi::link::LinkStoreError::Conflict(_)))));
    assert!(s.linker.complete_login(&token, &cust(9), now()).await.is_ok(), "still usable");
    let e =
        s.linker.handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), now()).await;
    assert!(matches!(e, Err(LinkError::Store(enishi::link::LinkStoreError::Conflict(_)))));
    assert_eq!(s.hook.0.load(Ordering::SeqCst), 0);

    let r = setup(|b| b.conflict_policy(ConflictPolicy::Replace)).await;
    r.store
        .link(&uid(1), &cust(9), LinkSource::Backend, ConflictPolicy::Reject, now())
        .await
        .unwrap();
    let token = token_of(&r.linker.start(&uid(1), now()).await.unwrap().link_url);
    let nonce = nonce_of(&r.linker.complete_login(&token, &cust(1), now()).await.unwrap().redirect);
    let out = r
        .linker
        .handle_event(&account_link_event(Some(&uid(1)), "ok", &nonce, false), now())
        .await
        .unwrap();
    assert!(matches!(out, LinkEventOutcome::Linked { outcome: LinkOutcome::Replaced { .. }, .. }));
    assert_eq!(r.hook.0.load(Ordering::SeqCst), 1);
    let audit = r.store.audit_trail(5).await.unwrap();
    assert!(audit.iter().any(|a| a.action == AuditAction::Replaced && a.customer == Some(cust(9))));
}

#[tokio::test]
async fn link_flow_write_back_is_retried_in_background() {
    let wb = Arc::new(FlakyWriteBack { fail: 2, ..FlakyWriteBack::default() });
    let retry = WriteBackRetry::new(5, Duration::from_millis(5), Duration::from_millis(20));
    let s = setup(|b| b.write_back(wb.clone(), retry)).await;
    let direct = s.linker.link_direct(&uid(3), &cust(3), LinkSource::Manual, now()).await.unwrap();
    let (outcome, task) = (direct.outcome, direct.write_back);
    assert!(outcome.is_new());
    assert_eq!(task.unwrap().wait().await.unwrap(), 3, "two failures, then success");
    assert_eq!(wb.written.lock().unwrap().len(), 1);

    let (_, task) = s.linker.unlink_user(&uid(3), true, now()).await.unwrap();
    task.unwrap().wait().await.unwrap();
    assert_eq!(wb.cleared.lock().unwrap()[0].customer, cust(3));
    assert_eq!(s.store.link_of_user(&uid(3)).await.unwrap(), None);
    let (none, task) = s.linker.unlink_user(&uid(3), true, now()).await.unwrap();
    assert!(none.is_none() && task.is_none());
}

#[tokio::test]
async fn link_flow_write_back_gives_up_but_link_stays() {
    let wb = Arc::new(FlakyWriteBack { fail: 100, ..FlakyWriteBack::default() });
    let retry = WriteBackRetry::new(3, Duration::from_millis(1), Duration::from_millis(2));
    let s = setup(|b| b.write_back(wb.clone(), retry)).await;
    let task = s
        .linker
        .link_direct(&uid(4), &cust(4), LinkSource::Manual, now())
        .await
        .unwrap()
        .write_back;
    assert!(task.unwrap().wait().await.is_err());
    assert_eq!(wb.calls.load(Ordering::SeqCst), 3);
    assert!(s.store.link_of_user(&uid(4)).await.unwrap().is_some());
}

#[tokio::test]
async fn link_flow_hanging_write_back_never_blocks_the_link() {
    let s = setup(|b| b.write_back(Arc::new(HangingWriteBack), WriteBackRetry::default())).await;
    let token = token_of(&s.linker.start(&uid(5), now()).await.unwrap().link_url);
    let nonce = nonce_of(&s.linker.complete_login(&token, &cust(5), now()).await.unwrap().redirect);
    // The write-back never ends: the deadline only turns a hang into a failure.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        s.linker.handle_event(&account_link_event(Some(&uid(5)), "ok", &nonce, false), now()),
    )
    .await
    .expect("handling must not wait for the write-back")
    .unwrap();
    assert!(matches!(out, LinkEventOutcome::Linked { write_back: Some(_), .. }));
    assert!(s.store.link_of_user(&uid(5)).await.unwrap().is_some());
}

#[tokio::test]
async fn link_flow_follow_unfollow_and_unblock_update_status() {
    let s = setup(|b| b).await;
    let ev = |kind: &str, ts: i64| {
        parse_event(&format!(
            r#"{{"type":"{kind}","timestamp":{ts},"source":{{"type":"user","userId":"{}"}},"mode":"active","webhookEventId":"01H{ts}","deliveryContext":{{"isRedelivery":false}}{}}}"#,
            user_id(6),
            if kind == "follow" { r#","replyToken":"r","follow":{"isUnblocked":true}"# } else { "" }
        ))
        .unwrap()
    };
    s.linker.handle_event(&ev("follow", 1_700_000_000_000), now()).await.unwrap();
    assert!(s.store.follow_status(&uid(6)).await.unwrap().unwrap().following);
    let out = s.linker.handle_event(&ev("unfollow", 1_700_000_001_000), now()).await.unwrap();
    assert!(matches!(out, LinkEventOutcome::FollowChanged { following: false, .. }));
    assert!(!s.store.follow_status(&uid(6)).await.unwrap().unwrap().following);
    s.linker.handle_event(&ev("follow", 1_700_000_002_000), now()).await.unwrap();
    assert!(s.store.follow_status(&uid(6)).await.unwrap().unwrap().following);
}

#[tokio::test]
async fn link_flow_postback_starts_and_replies_with_link_button() {
    let s = setup(|b| b).await;
    let reply_token = s.line.issue_reply_token(&user_id(7)).unwrap();
    let event = parse_event(&format!(
        r#"{{"type":"postback","timestamp":1,"replyToken":"{reply_token}","source":{{"type":"user","userId":"{}"}},"mode":"active","webhookEventId":"01HPB","deliveryContext":{{"isRedelivery":false}},"postback":{{"data":"enishi:link"}}}}"#,
        user_id(7)
    ))
    .unwrap();
    let out = s.linker.handle_event(&event, now()).await.unwrap();
    let LinkEventOutcome::Started(started) = out else { panic!("{out:?}") };
    let sent = s.line.messages_for(&user_id(7));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "template");
    assert_eq!(sent[0]["template"]["actions"][0]["uri"], started.link_url.as_str());
}

#[tokio::test]
async fn link_flow_password_login_through_authenticator() {
    let s = setup(|b| b.authenticator(Arc::new(OneCustomer))).await;
    let token = token_of(&s.linker.start(&uid(8), now()).await.unwrap().link_url);
    let e = s
        .linker
        .complete_with_password(&token, "hanako@example.jp", &Password::new("wrong"), ip(1), now())
        .await;
    assert!(matches!(e, Err(LinkError::Auth(AuthError::InvalidCredentials))));
    // A wrong password does not spend the link token.
    let issued = s
        .linker
        .complete_with_password(
            &token,
            "hanako@example.jp",
            &Password::new("correct horse"),
            ip(1),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(issued.customer.as_str(), "C-1001");

    let bare = setup(|b| b).await;
    let token = token_of(&bare.linker.start(&uid(8), now()).await.unwrap().link_url);
    let e =
        bare.linker.complete_with_password(&token, "a", &Password::new("b"), ip(1), now()).await;
    assert!(matches!(e, Err(LinkError::NoAuthenticator)));
}

#[tokio::test]
async fn link_flow_redirects_only_to_configured_urls() {
    let s = setup(|b| b).await;
    assert!(s.linker.checked_redirect("https://shop.example/mypage?tab=line").is_ok());
    assert!(s.linker.checked_redirect("https://shop.example/mypage/line").is_ok());
    for evil in [
        "https://evil.example/mypage",
        "https://shop.example.evil.example/mypage",
        "https://shop.example@evil.example/mypage",
        "http://shop.example/mypage",
        "https://shop.example/admin",
        "https://shop.example/mypage-evil",
        "https://shop.example/mypages?x=1",
        "https://shop.example:8443/mypage",
        "//evil.example/mypage",
        "javascript:alert(1)",
    ] {
        assert!(
            matches!(s.linker.checked_redirect(evil), Err(LinkError::RedirectNotAllowed(_))),
            "{evil}"
        );
    }
}

#[test]
fn link_rich_menu_carries_the_link_postback() {
    let menu = link_rich_menu("アカウント連携", "連携する", "enishi:link");
    let json = serde_json::to_value(&menu).unwrap();
    assert_eq!(json["size"]["height"], 843);
    assert_eq!(json["areas"][0]["action"]["type"], "postback");
    assert_eq!(json["areas"][0]["action"]["data"], "enishi:link");
}

#[tokio::test]
async fn link_flow_backend_link_is_recorded_with_source_and_not_written_back() {
    let wb = Arc::new(FlakyWriteBack::default());
    let s = setup(|b| b.write_back(wb.clone(), WriteBackRetry::default())).await;
    let direct = s.linker.link_direct(&uid(9), &cust(9), LinkSource::Backend, now()).await.unwrap();
    let (outcome, task) = (direct.outcome, direct.write_back);
    assert!(outcome.is_new() && task.is_none());
    assert_eq!(s.store.link_of_user(&uid(9)).await.unwrap().unwrap().source, LinkSource::Backend);
    assert_eq!(s.hook.0.load(Ordering::SeqCst), 1);
    assert_eq!(wb.calls.load(Ordering::SeqCst), 0);
}
