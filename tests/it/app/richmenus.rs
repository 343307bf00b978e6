//! `EnishiBuilder::rich_menus`: the service loop keeps every friend's rich menu in step with
//! the segments — after a sync, at a segment's time boundary — and a link or a follow switches
//! that friend's menu at once. On the paused tokio clock, against the fakes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use enishi::app::{Enishi, RunOptions};
use enishi::clock::Clock;
use enishi::line::message::Action;
use enishi::line::{Bounds, LineClient, RichMenu, RichMenuSize};
use enishi::richmenu::{MemoryRichMenuStore, MenuKey, MenuRules, MenuSpec, RichMenuReconciler};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use enishi::testkit::FakeLine;

use super::harness::{SECRET, Shop, event, id, post_webhook, shop, user};
use crate::line_client::png_header;

/// The app's clock follows tokio's (paused) clock from `start`.
#[derive(Debug, Clone)]
struct TokioClock {
    start: DateTime<Utc>,
    anchor: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + TimeDelta::from_std(self.anchor.elapsed()).unwrap()
    }
}

fn key(k: &str) -> MenuKey {
    MenuKey::new(k).unwrap()
}

fn spec(k: &str) -> MenuSpec {
    let menu = RichMenu::new(format!("{k} v1"), "メニュー", RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 2500, 843), Action::message("問い合わせ", "問い合わせ"));
    MenuSpec::new(key(k), menu, png_header(2500, 843))
}

/// `link` (default, everyone not linked), `active` (linked, ordered in the last 14 days),
/// `mypage` (linked).
fn reconciler(client: &LineClient) -> (RichMenuReconciler, Vec<(&'static str, SegmentDefinition)>) {
    let rules =
        MenuRules::new(key("link")).rule("active", key("active")).rule("linked", key("mypage"));
    let reconciler =
        RichMenuReconciler::builder(client.clone(), Arc::new(MemoryRichMenuStore::new()))
            .menu(spec("link"))
            .menu(spec("mypage"))
            .menu(spec("active"))
            .rules(rules)
            .build()
            .unwrap();
    let segments = vec![
        ("active", SegmentDefinition::parse("line linked and orders last 14d count >= 1").unwrap()),
        ("linked", SegmentDefinition::parse("line linked").unwrap()),
    ];
    (reconciler, segments)
}

fn patient_client(line: &FakeLine) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        // Only a guard against a hang: the paused clock jumps while a request waits.
        .request_timeout(Duration::from_secs(30 * 86_400))
        .build()
        .unwrap()
}

async fn menu_id(app: &Enishi, k: &str) -> String {
    let store = app.rich_menu_reconciler().unwrap().store();
    let menus = store.menus().await.unwrap();
    menus.iter().find(|m| m.key.as_str() == k).unwrap().rich_menu_id.to_string()
}

/// Waits (on the paused clock, so it costs nothing) until `check` holds.
async fn until(mut check: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("the condition never held");
}

/// Customer 2 links through the link pages and LINE's account-link dialog.
async fn link_through_the_pages(shop: &Shop, base: &str) {
    let u = user(2);
    let reply_token = shop.line.issue_reply_token(u.as_str()).unwrap();
    let mut tap = event("postback", &u, "01MENUTAP2", Utc::now());
    tap["events"][0]["replyToken"] = reply_token.into();
    tap["events"][0]["postback"] = serde_json::json!({"data": enishi::link::DEFAULT_LINK_POSTBACK});
    assert_eq!(post_webhook(base, &tap).await, 200);
    let reply = shop.line.messages_for(u.as_str());
    let link_url = reply[0]["template"]["actions"][0]["uri"].as_str().unwrap().to_owned();
    let token = url::Url::parse(&link_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "linkToken")
        .unwrap()
        .1
        .into_owned();
    shop.ecforce.add_login("c2@example.jp", enishi::testkit::FakeLogin::new(id(2), "pw-2"));
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("linkToken", token.as_str()), ("email", "c2@example.jp"), ("password", "pw-2")];
    let ok = http.post(format!("{base}/link")).form(&form).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    let dialog = ok.headers()["location"].to_str().unwrap().to_owned();
    let secret = enishi::line::webhook::ChannelSecret::new(SECRET);
    shop.line
        .open_account_link_dialog(&dialog, u.as_str(), &format!("{base}/webhook"), &secret)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn app_rich_menus_follow_syncs_links_follows_and_time() {
    // Customers 1..=6: 1, 3, 5 linked in ecforce; 1 to 4 ordered 10 days ago.
    let shop = shop(6).await;
    let t0 = (shop.now - TimeDelta::hours(3)).trunc_subsecs(0);
    let clock = TokioClock { start: t0, anchor: tokio::time::Instant::now() };
    let storage = Storage::in_memory();
    // Customer 5 blocked the account before the app started.
    storage.links().set_following(&user(5), false, t0).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let client = patient_client(&shop.line);
    let (menus, segments) = reconciler(&client);
    let app = shop
        .builder(storage.clone())
        .clock(clock.clone())
        .public_url(&base)
        .rich_menus(menus, segments)
        .build()
        .unwrap();
    let routes = app.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });

    let options = RunOptions::new()
        .sync_interval(Duration::from_secs(6 * 3600))
        .tick_interval(Duration::from_secs(1800))
        .dispatch_interval(Duration::from_secs(3600))
        .workers(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run(options, async move { drop(stop_rx.await) }).await })
    };

    // The first sync links 1, 3 and 5; the pass after it gives 1 and 3 `active`.
    until(|| shop.line.rich_menu_of(user(3).as_str()).is_some()).await;
    let (active, mypage) = (menu_id(&app, "active").await, menu_id(&app, "mypage").await);
    let menu_of = |n: u64| shop.line.rich_menu_of(user(n).as_str());
    assert_eq!(menu_of(1).as_deref(), Some(&*active));
    assert_eq!(menu_of(3).as_deref(), Some(&*active));
    assert_eq!(menu_of(5), None, "a blocked friend's menu is left alone");
    for n in [2, 4, 6] {
        assert_eq!(menu_of(n), None, "not linked: LINE's default menu");
    }
    assert_eq!(shop.line.default_rich_menu(), Some(menu_id(&app, "link").await));
    // The orders of 10 days ago leave the 14-day window 4 days after the shop's now.
    let boundary = shop.now - TimeDelta::days(10) + TimeDelta::days(14);
    let wake = app.rich_menu_next_wake().unwrap();
    assert!((wake - boundary).num_seconds().abs() <= 1, "{wake} vs {boundary}");

    // Customer 5 follows again: the webhook switches the menu at once (the next sync is
    // hours away on the paused clock).
    let before = clock.now();
    let follow = event("follow", &user(5), "01MENUFOLLOW5", clock.now());
    assert_eq!(post_webhook(&base, &follow).await, 200);
    until(|| menu_of(5).is_some()).await;
    assert_eq!(menu_of(5).as_deref(), Some(&*mypage), "linked, no recent order");
    assert!(clock.now() - before < TimeDelta::minutes(1), "prompt: {}", clock.now() - before);

    // Customer 2 (ordered 10 days ago) links: `active` at once, no sync needed.
    let before = clock.now();
    link_through_the_pages(&shop, &base).await;
    until(|| menu_of(2).is_some()).await;
    assert_eq!(menu_of(2).as_deref(), Some(&*active));
    assert!(clock.now() - before < TimeDelta::minutes(1), "prompt: {}", clock.now() - before);
    assert_eq!(shop.line.rich_menu_switch_count(), 4);
    // A full pass before the next sync reads the link store too: it undoes nothing.
    assert_eq!(app.reconcile_rich_menus().await.unwrap().switches, 0);

    // Time passes the boundary: 1, 2 and 3 move to `mypage` on the next round.
    tokio::time::sleep((boundary - clock.now()).to_std().unwrap()).await;
    until(|| [1, 2, 3].iter().all(|n| menu_of(*n).as_deref() == Some(&*mypage))).await;
    assert!(clock.now() >= boundary);
    assert_eq!(menu_of(5).as_deref(), Some(&*mypage));
    assert_eq!(menu_of(4), None);

    stop_tx.send(()).unwrap();
    let report = runner.await.unwrap().unwrap();
    assert_eq!(report.menu_switches, 7, "{report:?}");
    assert_eq!(shop.line.rich_menu_switch_count(), 7, "no switch made twice");
    assert_eq!(report.errors, 0, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn app_rich_menus_unlinked_friends_go_back_to_the_default() {
    let shop = shop(4).await;
    let t0 = (shop.now - TimeDelta::hours(3)).trunc_subsecs(0);
    let clock = TokioClock { start: t0, anchor: tokio::time::Instant::now() };
    let storage = Storage::in_memory();
    let client = patient_client(&shop.line);
    let (menus, segments) = reconciler(&client);
    let app =
        shop.builder(storage.clone()).clock(clock).rich_menus(menus, segments).build().unwrap();
    app.sync().await.unwrap();
    let first = app.reconcile_rich_menus().await.unwrap();
    assert_eq!(first.switches, 2, "1 and 3: {first:?}");
    assert_eq!(app.reconcile_rich_menus().await.unwrap().calls, 0, "nothing changed, no call");

    // Customer 3 unlinks (the link store), then a refresh for that user: back to the default.
    storage.links().unlink_user(&user(3), t0).await.unwrap();
    let report = app.refresh_rich_menus(&[user(3)]).await.unwrap();
    assert_eq!((report.switches, report.unlinked), (1, 1), "{report:?}");
    assert_eq!(shop.line.rich_menu_of(user(3).as_str()), None);
    // A full pass before the next sync reads the link store, and one after it agrees:
    // nothing left to do, nothing undone.
    assert_eq!(app.reconcile_rich_menus().await.unwrap().switches, 0);
    assert_eq!(shop.line.rich_menu_of(user(3).as_str()), None);
    app.sync().await.unwrap();
    assert_eq!(app.reconcile_rich_menus().await.unwrap().switches, 0);
    assert_eq!(app.rich_menu_switches(), 3);
}

#[tokio::test]
async fn app_rich_menus_rules_must_name_given_segments() {
    let shop = shop(1).await;
    let (menus, _) = reconciler(&shop.client);
    let only_linked = [("linked", SegmentDefinition::parse("line linked").unwrap())];
    let built = shop.builder(Storage::in_memory()).rich_menus(menus, only_linked).build();
    let err = built.expect_err("the `active` segment is missing").to_string();
    assert!(err.contains("`active`"), "{err}");
}
