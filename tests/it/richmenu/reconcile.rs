//! The reconciler against `FakeLine`: minimal calls, ≤ 500 users per bulk call, rule order,
//! the default menu, crashes mid-bulk and mid-batch, drift repair, rate limits, wake-ups and
//! statistics. Every claim is checked on the fake's per-user menus and its switch log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use enishi::line::message::Action;
use enishi::line::{
    Bounds, LineClient, RichMenu, RichMenuBatchOperation, RichMenuBatchRequest, RichMenuSize,
};
use enishi::richmenu::{
    Friend, MemoryRichMenuStore, MenuKey, MenuRules, MenuSpec, RichMenuError, RichMenuReconciler,
    RichMenuStore,
};
use enishi::segment::{Context, CustomerFacts, Engine, OrderFact, SegmentDefinition};
use enishi::testkit::{self as fake, Endpoint, FakeLine, RichMenuSwitch};
use enishi::{CustomerId, LineUserId, RequestId};

use crate::line_client::png_header;

fn user(n: u64) -> LineUserId {
    fake::user_id(n).parse().unwrap()
}

fn key(k: &str) -> MenuKey {
    MenuKey::new(k).unwrap()
}

/// A menu spec whose image differs by `version` (a new version is a new LINE menu).
fn spec(k: &str, version: u32) -> MenuSpec {
    let menu = RichMenu::new(format!("{k} v{version}"), "メニュー", RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 1250, 843), Action::uri("マイページ", "https://shop.example/my"))
        .area(Bounds::new(1250, 0, 1250, 843), Action::message("問い合わせ", "問い合わせ"));
    let mut image = png_header(2500, 843);
    image.extend_from_slice(&version.to_be_bytes());
    MenuSpec::new(key(k), menu, image)
}

struct Harness {
    line: FakeLine,
    client: LineClient,
    store: Arc<dyn RichMenuStore>,
}

impl Harness {
    async fn start(friends: u64) -> Self {
        let line = FakeLine::start().await.unwrap();
        line.add_friends((0..friends).map(fake::user_id)).unwrap();
        let client = LineClient::builder()
            .channel_access_token(line.channel_access_token())
            .base_url(line.api_base_url())
            .data_base_url(line.data_base_url())
            // Only a guard against a hang.
            .request_timeout(Duration::from_secs(24 * 3600))
            .build()
            .unwrap();
        Self { line, client, store: Arc::new(MemoryRichMenuStore::new()) }
    }

    /// A reconciler over menus `link` (the default), `mypage` and `vip` at these versions.
    fn reconciler(&self, vip_version: u32, batch_threshold: usize) -> RichMenuReconciler {
        RichMenuReconciler::builder(self.client.clone(), Arc::clone(&self.store))
            .menu(spec("link", 1))
            .menu(spec("mypage", 1))
            .menu(spec("vip", vip_version))
            .rules(
                MenuRules::new(key("link")).rule("vip", key("vip")).rule("linked", key("mypage")),
            )
            .batch_threshold(batch_threshold)
            .poll_interval(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    async fn menu_id(&self, k: &str) -> String {
        let menus = self.store.menus().await.unwrap();
        menus.iter().find(|m| m.key.as_str() == k).unwrap().rich_menu_id.to_string()
    }

    /// Users whose menu on the fake differs from `desired` (the default key means none).
    async fn mismatches(&self, desired: &[(LineUserId, MenuKey)]) -> usize {
        let links = self.line.rich_menu_links();
        let mut ids = HashMap::new();
        for m in self.store.menus().await.unwrap() {
            ids.insert(m.key.clone(), m.rich_menu_id.to_string());
        }
        desired
            .iter()
            .filter(|(u, k)| {
                let want = if k.as_str() == "link" { None } else { ids.get(k) };
                links.get(u.as_str()) != want
            })
            .count()
    }
}

fn desired(assign: &[(std::ops::Range<u64>, &str)]) -> Vec<(LineUserId, MenuKey)> {
    assign.iter().flat_map(|(r, k)| r.clone().map(move |n| (user(n), key(k)))).collect()
}

/// Switches per user, and the switches that changed nothing (repeats).
fn switch_counts(switches: &[RichMenuSwitch]) -> (HashMap<String, usize>, usize) {
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for s in switches {
        *per_user.entry(s.user_id.clone()).or_default() += 1;
    }
    (per_user, switches.iter().filter(|s| s.from == s.to).count())
}

#[tokio::test]
async fn richmenu_applies_only_the_difference_with_minimal_calls() {
    let h = Harness::start(1_200).await;
    let r = h.reconciler(1, usize::MAX);
    let first = desired(&[(0..700, "mypage"), (700..1_200, "link")]);
    let report = r.reconcile(&first).await.unwrap();
    assert_eq!((report.linked, report.unlinked, report.switches), (700, 0, 700));
    assert_eq!(report.menus_created, 3);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkLink), 2, "700 users = 500 + 200");
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkUnlink), 0);
    assert_eq!(h.line.request_count(Endpoint::RichMenuCreate), 3);
    assert_eq!(h.mismatches(&first).await, 0);

    // Nothing changed: no call at all.
    let before = h.line.counters().requests;
    let again = r.reconcile(&first).await.unwrap();
    assert_eq!((again.switches, again.calls), (0, 0));
    assert_eq!(h.line.counters().requests, before);

    // 10 users to vip, 5 back to the default: one link and one unlink call, 15 switches.
    let third =
        desired(&[(0..10, "vip"), (10..15, "link"), (15..700, "mypage"), (700..1_200, "link")]);
    let switches_before = h.line.rich_menu_switch_count();
    let report = r.reconcile(&third).await.unwrap();
    assert_eq!((report.linked, report.unlinked, report.calls), (10, 5, 2));
    assert_eq!(h.line.rich_menu_switch_count() - switches_before, 15);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkLink), 3);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkUnlink), 1);
    assert_eq!(h.mismatches(&third).await, 0);
}

#[tokio::test]
async fn richmenu_bulk_calls_carry_at_most_500_users() {
    let h = Harness::start(1_234).await;
    let r = h.reconciler(1, usize::MAX);
    let all = desired(&[(0..1_234, "vip")]);
    r.reconcile(&all).await.unwrap();
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkLink), 3);
    assert_eq!(h.line.status_count(400), 0, "the fake rejects a bulk call over 500 users");
    let (per_user, repeats) = switch_counts(&h.line.rich_menu_switches());
    assert_eq!(per_user.len(), 1_234);
    assert!(per_user.values().all(|&n| n == 1));
    assert_eq!(repeats, 0);
    // Back to the default: 3 unlink calls.
    r.reconcile(&desired(&[(0..1_234, "link")])).await.unwrap();
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkUnlink), 3);
    assert!(h.line.rich_menu_links().is_empty());
}

fn engine_with(customers: &[(&str, bool, &str)], now: DateTime<Utc>) -> Engine {
    let mut engine = Engine::new(Context::new(now));
    for (id, linked, rank) in customers {
        let mut facts = CustomerFacts::new(CustomerId::new(*id).unwrap());
        facts.line.linked = *linked;
        facts.attributes.insert("rank".into(), enishi::segment::AttrValue::Text((*rank).into()));
        engine.upsert_customer(facts);
    }
    engine
        .register_unchecked("vip", SegmentDefinition::parse(r#"attr rank = "gold""#).unwrap())
        .unwrap();
    engine.register_unchecked("linked", SegmentDefinition::parse("line linked").unwrap()).unwrap();
    engine
}

#[test]
fn richmenu_rules_pick_the_first_matching_segment_then_the_default() {
    let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let engine =
        engine_with(&[("c1", true, "gold"), ("c2", true, "silver"), ("c3", false, "silver")], now);
    let cid = |s: &str| Some(CustomerId::new(s).unwrap());
    let friends = vec![
        Friend::new(user(1), cid("c1")),
        Friend::new(user(2), cid("c2")),
        Friend::new(user(3), cid("c3")),
        Friend::new(user(4), None),
        Friend::new(user(5), cid("c1")).following(false),
    ];
    let vip_first =
        MenuRules::new(key("link")).rule("vip", key("vip")).rule("linked", key("mypage"));
    let got = vip_first.desired(&engine, &friends).unwrap();
    let want = vec![
        (user(1), key("vip")),
        (user(2), key("mypage")),
        (user(3), key("link")),
        (user(4), key("link")),
    ];
    assert_eq!(got, want, "a blocked friend is left out; an unlinked one gets the default");
    let linked_first =
        MenuRules::new(key("link")).rule("linked", key("mypage")).rule("vip", key("vip"));
    assert_eq!(linked_first.desired(&engine, &friends).unwrap()[0], (user(1), key("mypage")));
    assert!(MenuRules::new(key("link")).rule("nope", key("x")).desired(&engine, &friends).is_err());
}

#[tokio::test]
async fn richmenu_default_menu_is_lines_default_and_costs_no_per_user_call() {
    let h = Harness::start(50).await;
    let r = h.reconciler(1, usize::MAX);
    let all_default = desired(&[(0..50, "link")]);
    let report = r.reconcile(&all_default).await.unwrap();
    assert_eq!(report.switches, 0);
    assert_eq!(h.line.default_rich_menu(), Some(h.menu_id("link").await));
    assert_eq!(h.line.rich_menu_switch_count(), 0);
    r.reconcile(&desired(&[(0..1, "mypage"), (1..50, "link")])).await.unwrap();
    r.reconcile(&all_default).await.unwrap();
    assert_eq!(h.line.rich_menu_of(&fake::user_id(0)), None, "back to the default = unlinked");
    assert_eq!(h.line.rich_menu_switch_count(), 2);
    // Undeclared keys and rules are configuration errors.
    let bad = RichMenuReconciler::builder(h.client.clone(), Arc::clone(&h.store))
        .menu(spec("link", 1))
        .rules(MenuRules::new(key("link")).rule("vip", key("vip")))
        .build();
    assert!(matches!(bad, Err(RichMenuError::Config { .. })), "{bad:?}");
}

#[tokio::test]
async fn richmenu_crash_mid_bulk_resumes_without_lost_or_repeated_switch() {
    let h = Harness::start(1_300).await;
    let target = desired(&[(0..1_300, "mypage")]);
    // The first bulk call takes effect, then the connection drops: the process "crashes"
    // before it can settle it.
    h.reconciler(1, usize::MAX).reconcile(&desired(&[(0..1, "mypage")])).await.unwrap();
    h.line.crash_after_next(Endpoint::RichMenuBulkLink);
    let crashed = h.reconciler(1, usize::MAX).reconcile(&target).await;
    assert!(matches!(crashed, Err(RichMenuError::Line(_))), "{crashed:?}");
    assert_eq!(h.store.pending().await.unwrap().len(), 1, "the unsettled call stays recorded");
    // A new process over the same store.
    let report = h.reconciler(1, usize::MAX).reconcile(&target).await.unwrap();
    assert_eq!(report.resumed, 1);
    assert!(h.store.pending().await.unwrap().is_empty());
    assert_eq!(h.mismatches(&target).await, 0);
    let (per_user, repeats) = switch_counts(&h.line.rich_menu_switches());
    assert_eq!(repeats, 0, "no user was linked twice to the same menu");
    assert_eq!(per_user.len(), 1_300);
    assert!(per_user.values().all(|&n| n == 1), "every user switched exactly once");
}

/// 60 users on vip v1; vip's image changes, so they all move to v2 in one batch request.
async fn vip_users_then_new_image(h: &Harness) -> (Vec<(LineUserId, MenuKey)>, String) {
    let vip = desired(&[(0..60, "vip")]);
    h.reconciler(1, 10).reconcile(&vip).await.unwrap();
    (vip, h.menu_id("vip").await)
}

#[tokio::test(start_paused = true)]
async fn richmenu_crash_mid_batch_resumes_with_the_resume_key() {
    let h = Harness::start(60).await;
    let (vip, v1) = vip_users_then_new_image(&h).await;
    // LINE stops after 25 users, and the process dies before reading the answer.
    h.line.interrupt_next_rich_menu_batch(25);
    h.line.crash_after_next(Endpoint::RichMenuBatch);
    let crashed = h.reconciler(2, 10).reconcile(&vip).await;
    assert!(matches!(crashed, Err(RichMenuError::Line(_))), "{crashed:?}");
    let v2 = h.menu_id("vip").await;
    assert_ne!(v1, v2);
    let on_v2 = h.line.rich_menu_links().values().filter(|m| **m == v2).count();
    assert_eq!(on_v2, 25, "the batch stopped mid-way");

    let report = h.reconciler(2, 10).reconcile(&vip).await.unwrap();
    assert_eq!(report.resumed, 1);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBatch), 2, "sent once, resumed once");
    assert_eq!(h.mismatches(&vip).await, 0);
    let batch: Vec<RichMenuSwitch> = h
        .line
        .rich_menu_switches()
        .into_iter()
        .filter(|s| s.endpoint == Endpoint::RichMenuBatch)
        .collect();
    let (per_user, repeats) = switch_counts(&batch);
    assert_eq!((per_user.len(), repeats), (60, 0), "each user moved once, none twice");
    assert!(batch.iter().all(|s| s.from.as_deref() == Some(&*v1) && s.to.as_deref() == Some(&*v2)));
    assert_eq!(h.line.request_count(Endpoint::RichMenuBulkLink), 1, "the move used no bulk call");
}

#[tokio::test(start_paused = true)]
async fn richmenu_failed_batch_is_resumed_within_the_pass() {
    let h = Harness::start(60).await;
    let (vip, _) = vip_users_then_new_image(&h).await;
    h.line.set_rich_menu_batch_duration(Duration::from_secs(90));
    h.line.interrupt_next_rich_menu_batch(40);
    let report = h.reconciler(2, 10).reconcile(&vip).await.unwrap();
    assert_eq!(report.batched, 60);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBatch), 2);
    assert!(h.line.request_count(Endpoint::RichMenuBatchProgress) >= 4, "polled while ongoing");
    assert_eq!(h.mismatches(&vip).await, 0);
    assert_eq!(switch_counts(&h.line.rich_menu_switches()).1, 0);
}

#[tokio::test]
async fn richmenu_drift_repair_puts_back_what_someone_changed() {
    let h = Harness::start(100).await;
    let r = h.reconciler(1, usize::MAX);
    let want = desired(&[(0..50, "mypage"), (50..100, "link")]);
    r.reconcile(&want).await.unwrap();
    let vip = h.menu_id("vip").await;
    h.line.set_rich_menu_of(&fake::user_id(3), None);
    h.line.set_rich_menu_of(&fake::user_id(60), Some(&vip));
    assert_eq!(h.mismatches(&want).await, 2);
    let users: Vec<LineUserId> = (0..100).map(user).collect();
    let drift = r.repair_drift(&users).await.unwrap();
    assert_eq!(drift.checked, 100);
    assert_eq!(drift.drifted, vec![user(3), user(60)]);
    let report = r.reconcile(&want).await.unwrap();
    assert_eq!(report.switches, 2);
    assert_eq!(h.mismatches(&want).await, 0);
}

#[tokio::test(start_paused = true)]
async fn richmenu_batch_rate_limit_is_honoured_on_a_paused_clock() {
    let h = Harness::start(80).await;
    let keys = ["aa", "bb", "cc", "dd"];
    let build = |version: u32| {
        let mut b = RichMenuReconciler::builder(h.client.clone(), Arc::clone(&h.store))
            .menu(spec("link", 1));
        for k in keys {
            b = b.menu(spec(k, version));
        }
        b.rules(MenuRules::new(key("link"))).batch_threshold(1).build().unwrap()
    };
    let want: Vec<(LineUserId, MenuKey)> =
        (0..80).map(|n| (user(n), key(keys[(n % 4) as usize]))).collect();
    build(1).reconcile(&want).await.unwrap();
    // Every menu gets a new image: four whole-menu moves, four batch requests at 3 an hour.
    let started = tokio::time::Instant::now();
    let report = build(2).reconcile(&want).await.unwrap();
    assert_eq!(report.batched, 80);
    assert_eq!(h.line.request_count(Endpoint::RichMenuBatch), 4);
    assert_eq!(h.line.status_count(429), 0, "LINE's 3/hour batch limit was never exceeded");
    assert!(started.elapsed() >= Duration::from_secs(20 * 60), "the 4th batch waited for a token");
    assert_eq!(h.mismatches(&want).await, 0);
}

#[tokio::test]
async fn richmenu_wakes_on_segment_next_change() {
    let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let mut engine = Engine::new(Context::new(now));
    let id = CustomerId::new("c1").unwrap();
    let mut facts = CustomerFacts::new(id.clone());
    facts.line.linked = true;
    facts.orders.push(OrderFact {
        id: "o1".into(),
        placed_at: now - chrono::Duration::days(25),
        amount: 3_000,
        kind: enishi::segment::OrderKind::OneOff,
        items: vec![],
    });
    engine.upsert_customer(facts);
    engine
        .register_unchecked("active", SegmentDefinition::parse("last_order age <= 30d").unwrap())
        .unwrap();
    let rules = MenuRules::new(key("link")).rule("active", key("vip"));
    let friends = vec![Friend::new(user(1), Some(id.clone()))];
    assert_eq!(rules.desired(&engine, &friends).unwrap(), vec![(user(1), key("vip"))]);
    let wake = rules.next_wake(&engine, [&id]).unwrap().expect("the customer leaves by time alone");
    let days = (wake - now).num_hours() as f64 / 24.0;
    assert!((4.0..=6.0).contains(&days), "wake in about 5 days, got {days}");

    let h = Harness::start(2).await;
    let r = RichMenuReconciler::builder(h.client.clone(), Arc::clone(&h.store))
        .menu(spec("link", 1))
        .menu(spec("vip", 1))
        .rules(rules.clone())
        .build()
        .unwrap();
    r.reconcile(&rules.desired(&engine, &friends).unwrap()).await.unwrap();
    assert!(h.line.rich_menu_of(&fake::user_id(1)).is_some());
    engine.advance_to(wake).unwrap();
    let after = rules.desired(&engine, &friends).unwrap();
    assert_eq!(after, vec![(user(1), key("link"))]);
    r.reconcile(&after).await.unwrap();
    assert_eq!(h.line.rich_menu_of(&fake::user_id(1)), None);
}

#[tokio::test]
async fn richmenu_statistics_per_menu_come_from_line_insight() {
    let h = Harness::start(40).await;
    let r = h.reconciler(1, usize::MAX);
    r.reconcile(&desired(&[(0..30, "mypage"), (30..40, "vip")])).await.unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let stats = r.statistics(day(1), day(7)).await.unwrap();
    let by_key: HashMap<&str, _> = stats.iter().map(|s| (s.key.as_str(), s)).collect();
    assert_eq!(by_key.len(), 3);
    let mypage = by_key["mypage"];
    assert_eq!(mypage.impressions(), Some(30 * 2 * 7));
    assert!(mypage.clicks().unwrap() > 0);
    assert_eq!(mypage.summary.clicks.len(), 2, "one entry per area");
    assert_eq!(by_key["vip"].impressions(), None, "10 users are under the privacy threshold");
    // Into the results report: a table row per menu, in text and HTML.
    let rows: Vec<_> = stats.iter().map(|s| s.to_report()).collect();
    let report = enishi::campaign::ReportInput::default()
        .build(&enishi::campaign::ReportOptions::default())
        .with_rich_menus(rows);
    let text = report.to_string();
    assert!(text.contains("rich menus") && text.contains("mypage"), "{text}");
    assert!(report.to_html().contains("<h2>Rich menus</h2>"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rich_menus"][1]["menu"], "mypage");
    assert_eq!(json["rich_menus"][1]["impressions"], 420);
    let daily =
        h.client.rich_menu_insight_daily(&mypage.rich_menu_id, day(1), day(3)).await.unwrap();
    assert_eq!(daily.impression.unwrap().metrics.len(), 3);
    assert!(
        h.client.rich_menu_insight_summary(&mypage.rich_menu_id, day(7), day(1)).await.is_err()
    );
}

#[tokio::test]
async fn richmenu_batch_validation_and_progress_follow_line() {
    let h = Harness::start(3).await;
    h.reconciler(1, usize::MAX).reconcile(&desired(&[(0..3, "vip")])).await.unwrap();
    let (vip, mypage) = (h.menu_id("vip").await, h.menu_id("mypage").await);
    let op = |from: &str, to: &str| RichMenuBatchOperation::Link {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
    };
    let ok = RichMenuBatchRequest::new(vec![op(&vip, &mypage)]);
    h.client.validate_rich_menu_batch(&ok).await.unwrap();
    let unknown = RichMenuBatchRequest::new(vec![op(&vip, "richmenu-nope")]);
    assert!(h.client.validate_rich_menu_batch(&unknown).await.is_err());
    let too_many = RichMenuBatchRequest::new(vec![RichMenuBatchOperation::UnlinkAll; 1_001]);
    assert!(h.client.validate_rich_menu_batch(&too_many).await.is_err(), "checked locally");
    assert_eq!(h.line.request_count(Endpoint::RichMenuBatch), 0, "validation is not a batch");
    let id = h.client.rich_menu_batch(&ok.resume_request_key("k1")).await.unwrap();
    let progress = h.client.rich_menu_batch_progress(&id).await.unwrap();
    assert_eq!(progress.phase, enishi::line::RichMenuBatchPhase::Succeeded);
    assert!(progress.completed_time.is_some());
    assert_eq!(h.line.rich_menu_of(&fake::user_id(2)), Some(mypage));
    let missing = h.client.rich_menu_batch_progress(&RequestId::new("nope").unwrap()).await;
    assert!(missing.is_err());
}
