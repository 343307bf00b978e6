//! enishi's customer pages in headless Chromium at 390×844 and 1280×800: every page and
//! failure path renders with no console error, no horizontal scroll, 44 px targets, 16 px
//! inputs and no serious accessibility violation; and the whole link journey in the browser.

use enishi::storage::Storage;

use super::browser::{PageReport, PageSpec, Spec, Step, Viewport, audit};
use super::site::{POINTS, screenshots, site};
use crate::app::harness::{id, user};

fn page(name: &str, url: String) -> PageSpec {
    PageSpec::new(name, url).screenshot_dir(screenshots())
}

/// Audits `pages` at both sizes, fails on any fault, returns the phone-sized results.
async fn clean(pages: Vec<PageSpec>) -> Vec<PageReport> {
    let names: Vec<String> = pages.iter().map(|p| p.name.clone()).collect();
    let report = audit(&Spec::new(pages)).await;
    let faults = report.faults();
    assert!(faults.is_empty(), "faults:\n{}", faults.join("\n"));
    names.iter().map(|n| report.result(n, Viewport::PHONE).clone()).collect()
}

fn token_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "linkToken")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn pages_link_start_and_sign_in_show_what_is_shared_and_the_incentive() {
    let s = site(Storage::in_memory()).await;
    let url = s.link_url(&user(2)).await;
    let token = token_of(&url);
    let login = format!("{}/link/login?linkToken={token}", s.base);
    let [start, form] =
        clean(vec![page("link-start", url), page("link-login", login)]).await.try_into().unwrap();
    assert!(
        start.text().contains("共有される情報") && start.text().contains("300ポイント"),
        "{:?}",
        start.text
    );
    assert!(
        start.text().contains("縁ショップ") && start.text().contains("いつでも"),
        "{:?}",
        start.text
    );
    assert!(
        form.text().contains("メールアドレス") && form.text().contains("パスワード"),
        "{:?}",
        form.text
    );
    assert_eq!(start.lang.as_deref(), Some("ja"));
}

#[tokio::test]
async fn pages_wrong_password_shows_the_form_again_with_the_message() {
    let s = site(Storage::in_memory()).await;
    let token = token_of(&s.link_url(&user(2)).await);
    let spec =
        page("link-login-wrong-password", format!("{}/link/login?linkToken={token}", s.base))
            .expect_status(401)
            .step(Step::fill("#email", "c2@example.jp"))
            .step(Step::fill("#password", "not-the-password"))
            .step(Step::click("button[type=submit]"));
    let [wrong] = clean(vec![spec]).await.try_into().unwrap();
    assert_eq!(wrong.status, Some(401));
    assert!(wrong.text().contains("メールアドレスかパスワードが違います"), "{:?}", wrong.text);
    assert!(
        wrong.text().contains("ログインして連携する"),
        "the form is there again: {}",
        wrong.text()
    );
    assert_eq!(s.app.storage().links().link_of_customer(&id(2)).await.unwrap(), None);
}

#[tokio::test]
async fn pages_an_expired_link_leads_back_to_the_rich_menu() {
    let s = site(Storage::in_memory()).await;
    let spec =
        page("link-expired", format!("{}/link?linkToken=no-such-token", s.base)).expect_status(400);
    let [expired] = clean(vec![spec]).await.try_into().unwrap();
    assert!(
        expired.text().contains("リッチメニュー") && expired.text().contains("LINEに戻る"),
        "{:?}",
        expired.text
    );
    assert!(!expired.text().contains("link_token"), "no developer strings: {}", expired.text());
}

#[tokio::test]
async fn pages_a_conflict_says_who_to_contact() {
    let s = site(Storage::in_memory()).await;
    // Customer 2 is linked to another LINE user already.
    let links = s.app.storage().links();
    links
        .link(
            &user(9),
            &id(2),
            enishi::link::LinkSource::Manual,
            Default::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let token = token_of(&s.link_url(&user(4)).await);
    let spec = page("link-conflict", format!("{}/link/login?linkToken={token}", s.base))
        .expect_status(409)
        .step(Step::fill("#email", "c2@example.jp"))
        .step(Step::fill("#password", "pw-2"))
        .step(Step::click("button[type=submit]"));
    let [conflict] = clean(vec![spec]).await.try_into().unwrap();
    assert!(
        conflict.text().contains("0120-000-000") && conflict.text().contains("お問い合わせ"),
        "{:?}",
        conflict.text
    );
    assert_eq!(links.link_of_user(&user(4)).await.unwrap(), None);
}

#[tokio::test]
async fn pages_an_already_linked_user_sees_done() {
    let s = site(Storage::in_memory()).await;
    let links = s.app.storage().links();
    links
        .link(
            &user(3),
            &id(3),
            enishi::link::LinkSource::Manual,
            Default::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let url = s.link_url(&user(3)).await;
    let [done] = clean(vec![page("link-done-already", url)]).await.try_into().unwrap();
    assert!(
        done.text().contains("すでに連携済みです") && done.text().contains("LINEに戻る"),
        "{:?}",
        done.text
    );
}

#[tokio::test]
async fn pages_unlink_confirms_unlinks_and_tells_the_user_once() {
    let s = site(Storage::in_memory()).await;
    let links = s.app.storage().links();
    links
        .link(
            &user(5),
            &id(5),
            enishi::link::LinkSource::Manual,
            Default::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(s.postback(&user(5), "enishi:unlink").await, 200);
    let url = s.last_button_url(&user(5));
    assert!(url.starts_with(&format!("{}/unlink?ticket=", s.base)), "{url}");
    let confirm = page("unlink-confirm", url.clone());
    // Confirming spends the ticket: the done page is audited on its own ticket.
    let [shown] = clean(vec![confirm]).await.try_into().unwrap();
    assert!(
        shown.text().contains("連携を解除する") && shown.text().contains("解除しない"),
        "{:?}",
        shown.text
    );
    assert!(
        links.link_of_user(&user(5)).await.unwrap().is_some(),
        "showing the page unlinks nothing"
    );

    let done = page("unlink-done", url.clone()).step(Step::click("button[type=submit]"));
    let report = audit(&Spec { viewports: vec![Viewport::PHONE], pages: vec![done] }).await;
    assert!(report.faults().is_empty(), "{:?}", report.faults());
    let done = report.result("unlink-done", Viewport::PHONE);
    assert!(done.text().contains("連携を解除しました"), "{:?}", done.text);
    assert_eq!(links.link_of_user(&user(5)).await.unwrap(), None);
    let told = s.texts_to(&user(5));
    assert_eq!(told.iter().filter(|t| t.contains("連携を解除しました")).count(), 1, "{told:?}");

    // The ticket is spent: the page says so, and the desktop size of "done" is this page's.
    let spent = page("unlink-expired", url).expect_status(400);
    let [expired] = clean(vec![spent]).await.try_into().unwrap();
    assert!(expired.text().contains("このリンクは使えません"), "{:?}", expired.text);
    assert_eq!(s.texts_to(&user(5)).len(), told.len(), "nothing more is sent");
}

#[tokio::test]
async fn pages_a_broken_tracked_link_is_japanese_with_a_way_to_the_shop() {
    let s = site(Storage::in_memory()).await;
    let spec = page("track-error", format!("{}/t/not-a-valid-token", s.base)).expect_status(404);
    let [broken] = clean(vec![spec]).await.try_into().unwrap();
    assert!(
        broken.text().contains("このリンクは無効です")
            && broken.text().contains("縁ショップのトップへ"),
        "{:?}",
        broken.text
    );
    assert!(broken.viewport_meta.is_some());
}

#[tokio::test]
async fn pages_line_login_signs_in_links_and_shows_the_incentive_granted() {
    let s = site(Storage::in_memory()).await;
    let signin = page("login-line-signin", format!("{}/login/line", s.base)).expect_status(401);
    let failed =
        page("login-line-failed", format!("{}/login/line/callback?code=x&state=forged", s.base))
            .header("x-shop-customer", "4")
            .expect_status(400);
    let [needs, refused] = clean(vec![signin, failed]).await.try_into().unwrap();
    assert!(
        needs.text().contains("ログインが必要です")
            && needs.text().contains("縁ショップにログイン"),
        "{:?}",
        needs.text
    );
    assert!(refused.text().contains("もう一度試す"), "{:?}", refused.text);

    // The whole LINE Login round trip in the browser: the done page shows the points.
    let done =
        page("login-line-done", format!("{}/login/line", s.base)).header("x-shop-customer", "6");
    let report = audit(&Spec { viewports: vec![Viewport::PHONE], pages: vec![done] }).await;
    assert!(report.faults().is_empty(), "{:?}", report.faults());
    let done = report.result("login-line-done", Viewport::PHONE);
    assert!(
        done.text().contains("連携が完了しました") && done.text().contains("300ポイント"),
        "{:?}",
        done.text
    );
    let link = s.app.storage().links().link_of_customer(&id(6)).await.unwrap().unwrap();
    assert_eq!(link.line_user, user(6));
    assert_eq!(s.shop.ecforce.points_granted().len(), 1);
}

/// The journey a customer takes: rich menu → start → sign in → LINE's dialog (the fake's) →
/// linked, told in LINE with the incentive, granted once whatever happens next.
#[tokio::test]
async fn pages_full_link_journey_links_replies_and_grants_the_incentive_once() {
    let s = site(Storage::in_memory()).await;
    let journey = |name: &str, url: String, email: &str, password: &str| {
        PageSpec::new(name, url)
            .step(Step::click("a.btn"))
            .step(Step::wait_for_url("/link/login"))
            .step(Step::fill("#email", email))
            .step(Step::fill("#password", password))
            .step(Step::click("button[type=submit]"))
            .step(Step::wait_for_url("/dialog/bot/accountLink"))
    };
    let url = s.link_url(&user(2)).await;
    let report = audit(&Spec {
        viewports: vec![Viewport::PHONE],
        pages: vec![journey("journey", url, "c2@example.jp", "pw-2")],
    })
    .await;
    let end = report.result("journey", Viewport::PHONE);
    assert!(end.error.is_none(), "{:?}", end.error);
    assert!(end.text().contains("連携が完了しました"), "LINE's end page: {}", end.text());
    let links = s.app.storage().links();
    assert_eq!(links.link_of_user(&user(2)).await.unwrap().map(|l| l.customer), Some(id(2)));
    let told = s.texts_to(&user(2));
    assert!(told.iter().any(|t| t.contains("縁ショップのアカウントと連携しました")), "{told:?}");
    assert!(told.iter().any(|t| t.contains("連携特典として300ポイントを付与しました")), "{told:?}");
    let granted = s.shop.ecforce.points_granted();
    assert_eq!(granted.len(), 1);
    assert_eq!((granted[0].0.clone(), granted[0].1), (id(2), i64::from(POINTS)));
    assert!(s.dialog.outcomes().len() == 1);

    // LINE redelivers the accountLink event: nothing is granted or said again.
    let nonce = url::Url::parse(end.final_url.as_deref().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "nonce")
        .unwrap()
        .1
        .into_owned();
    let redelivery = serde_json::json!({"destination": "Ubot", "events": [{
        "type": "accountLink", "timestamp": chrono::Utc::now().timestamp_millis(), "mode": "active",
        "replyToken": s.shop.line.issue_reply_token(user(2).as_str()).unwrap(),
        "source": {"type": "user", "userId": user(2).as_str()},
        "webhookEventId": "01PAGESREDELIVERY", "deliveryContext": {"isRedelivery": true},
        "link": {"result": "ok", "nonce": nonce}}]});
    assert_eq!(s.post_webhook(&redelivery).await, 200);
    assert_eq!(s.shop.ecforce.points_granted().len(), 1);

    // Unlinked and linked again: linked, but the incentive was this customer's already.
    links.unlink_user(&user(2), chrono::Utc::now()).await.unwrap();
    let told_before = s.texts_to(&user(2)).len();
    let url = s.link_url(&user(2)).await;
    let again = audit(&Spec {
        viewports: vec![Viewport::PHONE],
        pages: vec![journey("journey-again", url, "c2@example.jp", "pw-2")],
    })
    .await;
    assert!(again.result("journey-again", Viewport::PHONE).error.is_none());
    assert!(links.link_of_user(&user(2)).await.unwrap().is_some());
    assert_eq!(s.shop.ecforce.points_granted().len(), 1, "granted once per customer");
    let told = s.texts_to(&user(2));
    assert!(!told[told_before..].iter().any(|t| t.contains("ポイント")), "{told:?}");
}
