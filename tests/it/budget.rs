//! Cost and quota forecasts (`enishi::campaign::forecast`): the quota read from the fake LINE
//! server's quota endpoints, a campaign dry run's messages, quota left and yen, and budgets
//! that trim lower-priority steps or refuse a send, saying why.

use enishi::campaign::DryRun;
use enishi::campaign::forecast::{
    Budget, DropReason, Forecast, OverBudget, QuotaStatus, SendStep, StepKind, Tariff,
};

fn dry_run(campaign: &str, recipients: u64) -> DryRun {
    serde_json::from_value(serde_json::json!({
        "campaign": campaign,
        "planned_at": "2026-12-03T10:00:00Z",
        "send_at": "2026-12-03T10:00:00Z",
        "not_before": "2026-12-03T10:00:00Z",
        "candidates": recipients + 20,
        "recipients": recipients,
        "deferred": 0,
        "batches": recipients.div_ceil(500),
        "arms": [],
        "excluded": {},
        "samples": [],
    }))
    .unwrap()
}

#[cfg(feature = "testkit")]
#[tokio::test]
async fn budget_reads_quota_and_consumption_from_line_consistent_with_sends() {
    use enishi::line::message::Message;
    use enishi::line::{LineClient, MulticastRequest, PushRequest};
    use enishi::testkit::{FakeLine, FakeQuota, user_id};

    let line =
        FakeLine::builder().quota(FakeQuota::Limited(1_000)).quota_used(100).start().await.unwrap();
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()
        .unwrap();
    let before = QuotaStatus::fetch(&client).await.unwrap();
    assert_eq!(before, QuotaStatus { limit: Some(1_000), used: 100 });
    let users: Vec<enishi::LineUserId> = (0..5).map(|i| user_id(i).parse().unwrap()).collect();
    // Two message objects in one push count once; a multicast counts each recipient.
    let push = PushRequest::new(users[0].clone(), vec![Message::text("a"), Message::text("b")]);
    client.push(push).await.unwrap();
    client.multicast(MulticastRequest::new(users.clone(), vec![Message::text("c")])).await.unwrap();
    let after = QuotaStatus::fetch(&client).await.unwrap();
    assert_eq!(after.used, 106);
    assert_eq!(after.used, line.quota_used());
    assert_eq!(after.remaining(), Some(894));

    // The forecast keeps what the quota still allows.
    let report = Forecast::new(Tariff::standard(), after)
        .step(SendStep::campaign(&dry_run("winter-sale", 800), 3))
        .step(SendStep::campaign(&dry_run("newsletter", 200), 1))
        .run();
    assert_eq!(report.messages, 800);
    assert_eq!(report.quota_left, Some(94));
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(
        (report.dropped[0].step.name.as_str(), report.dropped[0].reason),
        ("newsletter", DropReason::Quota)
    );
}

#[test]
fn budget_dry_run_prints_its_message_count_quota_left_and_cost() {
    let quota = QuotaStatus { limit: Some(40_000), used: 29_900 };
    let step = SendStep::campaign(&dry_run("spring", 300), 2);
    assert_eq!((step.messages, step.kind), (300, StepKind::Campaign));
    let report = Forecast::new(Tariff::standard(), quota).step(step).run();
    assert_eq!(report.messages, 300);
    assert_eq!(report.quota_left, Some(9_800));
    assert_eq!(report.cost_yen, 200 * 3, "only the 200 messages above the 30,000 free ones cost");
    let text = report.to_string();
    assert!(text.contains("messages 300 of 300"), "{text}");
    assert!(text.contains("quota left 9800"), "{text}");
    assert!(text.contains("cost ¥600"), "{text}");
    assert!(report.dropped.is_empty());
}

#[test]
fn budget_below_the_forecast_trims_lower_priority_steps_and_says_so() {
    let quota = QuotaStatus { limit: None, used: 30_000 };
    let report = Forecast::new(Tariff::standard().with_extra_price(Some(2)), quota)
        .step(SendStep::new("cart-reminder", 3, 400))
        .step(SendStep::new("newsletter", 1, 900))
        .step(SendStep::new("restock", 2, 300))
        .step(SendStep::new("survey", 1, 100))
        .budget(Budget::new().max_yen(1_500))
        .run();
    // 1,700 messages cost ¥3,400; dropping the lowest priority (the last added first) gets
    // under ¥1,500: survey, then newsletter.
    let dropped: Vec<(&str, DropReason)> =
        report.dropped.iter().map(|d| (d.step.name.as_str(), d.reason)).collect();
    assert_eq!(dropped, [("survey", DropReason::YenBudget), ("newsletter", DropReason::YenBudget)]);
    let kept: Vec<&str> = report.kept.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(kept, ["cart-reminder", "restock"]);
    assert_eq!((report.messages, report.cost_yen, report.wanted), (700, 1_400, 1_700));
    let text = report.to_string();
    assert!(
        text.contains("dropped newsletter (priority 1, 900 messages): over the yen budget"),
        "{text}"
    );
    assert!(!report.refused);

    let by_count = Forecast::new(Tariff::standard(), quota)
        .step(SendStep::new("a", 2, 60))
        .step(SendStep::new("b", 1, 60))
        .budget(Budget::new().max_messages(100))
        .run();
    assert_eq!(by_count.dropped[0].reason, DropReason::MessageBudget);
    assert_eq!(by_count.messages, 60);
}

#[test]
fn budget_that_refuses_sends_nothing_and_says_why() {
    let quota = QuotaStatus { limit: Some(5_000), used: 4_950 };
    let report = Forecast::new(Tariff::light(), quota)
        .step(SendStep::new("sale", 2, 40))
        .step(SendStep::new("tips", 1, 30))
        .budget(Budget::new().over_budget(OverBudget::Refuse))
        .run();
    assert!(report.refused);
    assert_eq!(report.messages, 0);
    assert_eq!(report.cost_yen, 0);
    assert_eq!(report.dropped.len(), 2);
    assert!(report.dropped.iter().all(|d| d.reason == DropReason::Quota));
    assert!(report.to_string().contains("refused"), "{report}");
}

#[test]
fn budget_plans_without_extra_messages_stop_at_their_free_ones() {
    // Communication plan: 200 free, nothing more; LINE reports no quota limit here.
    let quota = QuotaStatus { limit: None, used: 150 };
    let report = Forecast::new(Tariff::communication(), quota)
        .step(SendStep::new("welcome", 3, 40))
        .step(SendStep::new("promo", 1, 20))
        .run();
    assert_eq!(report.messages, 40);
    assert_eq!(report.dropped[0].reason, DropReason::PlanAllowance);
    assert_eq!(Tariff::communication().extra_cost(201), None);
    assert_eq!(Tariff::light().extra_cost(5_000), Some(0));
    assert_eq!(Tariff::standard().extra_cost(30_010), Some(30));
    assert_eq!(Tariff::new("mine", 1, 10, Some(5)).extra_cost(12), Some(10));
}

#[test]
fn budget_counts_a_narrowcasts_whole_reach_and_policy_sets_its_limit() {
    use enishi::campaign::forecast::{NarrowcastQuotaPolicy, narrowcast_limit};
    let quota = QuotaStatus { limit: Some(1_000), used: 700 };
    let step = SendStep::narrowcast("vip-narrowcast", 2, 500);
    assert_eq!(step.kind, StepKind::Narrowcast);
    let report = Forecast::new(Tariff::standard(), quota).step(step).run();
    assert_eq!(report.messages, 0, "a reach of 500 cannot be reserved from 300 left");
    assert_eq!(report.dropped[0].reason, DropReason::Quota);

    let json = |p| serde_json::to_value(narrowcast_limit(p, Some(400))).unwrap();
    assert_eq!(json(NarrowcastQuotaPolicy::WholeTarget), serde_json::json!({"max": 400}));
    assert_eq!(
        json(NarrowcastQuotaPolicy::UpToRemainingQuota),
        serde_json::json!({"max": 400, "upToRemainingQuota": true})
    );
    assert_eq!(
        json(NarrowcastQuotaPolicy::AllOrNothing),
        serde_json::json!({"max": 400, "upToRemainingQuota": true, "forbidPartialDelivery": true})
    );
}
