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

mod simulated_month {
    use chrono::{DateTime, FixedOffset, TimeZone, Utc};
    use enishi::campaign::forecast::{
        Budget, DropReason, Forecast, QuotaStatus, StepKind, Tariff, simulate_scenarios,
    };
    use enishi::campaign::scenario::{ScenarioInput, ScenarioSet, ScenarioState};
    use enishi::segment::{CustomerFacts, Friendship, LineStatus, OrderFact, OrderKind};

    fn jst(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(9 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, m, d, h, 0, 0)
            .unwrap()
            .to_utc()
    }

    fn customer(id: &str, n: u64) -> ScenarioInput {
        let mut facts = CustomerFacts::new(id.parse().unwrap());
        facts.line =
            LineStatus { linked: true, linked_at: None, friendship: Friendship::Following };
        ScenarioInput::Customer {
            facts: Box::new(facts),
            line_user: Some(format!("U{n:032x}").parse().unwrap()),
        }
    }

    fn order(customer: &str, at: DateTime<Utc>) -> ScenarioInput {
        ScenarioInput::OrderPlaced {
            customer: customer.parse().unwrap(),
            order: OrderFact {
                id: format!("o-{customer}"),
                placed_at: at,
                amount: 3_000,
                kind: OrderKind::OneOff,
                items: Vec::new(),
            },
        }
    }

    /// Two scenarios on the order: a high-priority welcome (3 and 10 days, and 40 days, past
    /// the month's end) and a low-priority review request (14 days). Orders on 28 November,
    /// 1 and 2 December (noon JST); the forecast runs on 3 December, after the live ticks.
    ///
    /// By hand, sends from 3 December to the month's end:
    /// - welcome/d3: A's fell due on 1 December (sent already), B 4 Dec, C 5 Dec: **2**;
    /// - welcome/d10: A 8 Dec, B 11 Dec, C 12 Dec: **3**;
    /// - welcome/d40: January for everyone: **0** (not listed);
    /// - review/d14: A 12 Dec, B 15 Dec, C 16 Dec: **3**.
    fn month() -> (Vec<enishi::campaign::forecast::SendStep>, DateTime<Utc>) {
        let set = ScenarioSet::from_json(
            r#"{"scenario": [
              {"name": "welcome", "priority": "high", "trigger": {"type": "order_placed"},
               "steps": [{"name": "d3", "delay": "3d", "message": "ようこそ"},
                         {"name": "d10", "delay": "10d", "message": "使い心地はいかがですか"},
                         {"name": "d40", "delay": "40d", "message": "そろそろ補充を"}]},
              {"name": "review", "priority": "low", "trigger": {"type": "order_placed"},
               "steps": [{"name": "d14", "delay": "14d", "message": "レビューをお願いします"}]}]}"#,
        )
        .unwrap();
        let mut state = ScenarioState::new(set, jst(11, 25, 0));
        for (id, n, at) in
            [("a", 1, jst(11, 28, 12)), ("b", 2, jst(12, 1, 12)), ("c", 3, jst(12, 2, 12))]
        {
            state.apply(customer(id, n)).unwrap();
            state.apply(order(id, at)).unwrap();
        }
        let from = jst(12, 3, 0);
        // The live service ticked up to now: what fell due before is sent already.
        let live = state.tick(from);
        let sent_before = live.events.iter().filter(|e| e.step.as_deref() == Some("d3")).count();
        assert!(sent_before >= 1, "A's first welcome fell due on 1 December: {live:?}");
        let end_of_month = jst(12, 31, 23) + chrono::TimeDelta::minutes(59);
        (simulate_scenarios(&mut state, from, end_of_month), from)
    }

    #[test]
    fn budget_simulated_month_of_scenarios_counts_each_step_by_hand() {
        let (steps, _) = month();
        let got: Vec<(&str, u8, u64, StepKind)> =
            steps.iter().map(|s| (s.name.as_str(), s.priority, s.messages, s.kind)).collect();
        assert_eq!(
            got,
            [
                ("review/d14", 1, 3, StepKind::Scenario),
                ("welcome/d10", 3, 3, StepKind::Scenario),
                ("welcome/d3", 3, 2, StepKind::Scenario),
            ]
        );
        let report = Forecast::new(Tariff::standard(), QuotaStatus { limit: None, used: 29_997 })
            .steps(steps)
            .run();
        assert_eq!((report.wanted, report.messages), (8, 8));
        assert_eq!(report.cost_yen, 5 * 3, "the 5 messages above the 30,000 free ones");
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn budget_below_the_simulated_month_drops_low_priority_steps_by_line_quota() {
        use enishi::line::LineClient;
        use enishi::testkit::{FakeLine, FakeQuota};

        let (steps, _) = month();
        // 6 of the month's messages are left on LINE's quota: the 8 simulated do not fit.
        let line = FakeLine::builder()
            .quota(FakeQuota::Limited(1_000))
            .quota_used(994)
            .start()
            .await
            .unwrap();
        let client = LineClient::builder()
            .channel_access_token(line.channel_access_token())
            .base_url(line.api_base_url())
            .data_base_url(line.data_base_url())
            .build()
            .unwrap();
        let quota = QuotaStatus::fetch(&client).await.unwrap();
        assert_eq!(quota, QuotaStatus { limit: Some(1_000), used: 994 });
        let report = Forecast::new(Tariff::standard(), quota).steps(steps.clone()).run();
        let dropped: Vec<(&str, DropReason)> =
            report.dropped.iter().map(|d| (d.step.name.as_str(), d.reason)).collect();
        assert_eq!(
            dropped,
            [("review/d14", DropReason::Quota)],
            "the low-priority step goes first"
        );
        assert_eq!((report.messages, report.quota_left), (5, Some(1)));
        let text = report.to_string();
        assert!(
            text.contains(
                "dropped review/d14 (priority 1, 3 messages): over the remaining monthly quota"
            ),
            "{text}"
        );

        // A message budget of 4 (below the 8 forecast) drops the review, then the welcome
        // step listed last among the high-priority ones.
        let report = Forecast::new(Tariff::standard(), quota)
            .steps(steps)
            .budget(Budget::new().max_messages(4))
            .run();
        let dropped: Vec<(&str, DropReason)> =
            report.dropped.iter().map(|d| (d.step.name.as_str(), d.reason)).collect();
        assert_eq!(
            dropped,
            [("review/d14", DropReason::MessageBudget), ("welcome/d3", DropReason::MessageBudget)]
        );
        let kept: Vec<&str> = report.kept.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kept, ["welcome/d10"]);
        assert_eq!(report.messages, 3);
    }
}

#[cfg(feature = "testkit")]
#[tokio::test]
async fn budget_narrowcast_quota_policy_sets_the_limit_line_honours() {
    use enishi::campaign::DeliveryPolicy;
    use enishi::campaign::forecast::NarrowcastQuotaPolicy as P;
    use enishi::line::message::Message;
    use enishi::line::{LineClient, NarrowcastRequest};
    use enishi::testkit::{Endpoint, FakeLine, FakeQuota, FakeUser, user_id};

    // Five friends, three messages left this month.
    let mut line = FakeLine::builder()
        .quota(FakeQuota::Limited(100))
        .quota_used(97)
        .narrowcast_duration(std::time::Duration::ZERO);
    for i in 1..=5 {
        line = line.user(FakeUser::new(user_id(i)));
    }
    let line = line.start().await.unwrap();
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()
        .unwrap();
    let delivered =
        || line.deliveries().iter().filter(|d| d.endpoint == Endpoint::Narrowcast).count() as u64;
    // What the forecast says and what LINE does agree, policy by policy.
    for policy in [P::WholeTarget, P::AllOrNothing, P::UpToRemainingQuota] {
        let delivery = DeliveryPolicy::new().with_narrowcast_quota(policy);
        let quota = QuotaStatus::fetch(&client).await.unwrap();
        let forecast = Forecast::new(Tariff::standard(), quota)
            .step(SendStep::narrowcast("vip", 2, 5))
            .narrowcast_policy(delivery.narrowcast_quota)
            .run();
        let before = delivered();
        let request = NarrowcastRequest::new(vec![Message::text("会員限定のお知らせ")])
            .limit(delivery.narrowcast_limit(None));
        let sent = client.narrowcast(request).await;
        match policy {
            P::WholeTarget => {
                let e = sent.unwrap_err();
                assert!(e.is_quota_exceeded(), "LINE refuses the whole target: {e}");
            }
            _ => {
                let id = sent.unwrap().request_id.unwrap();
                let progress = client.narrowcast_progress(&id).await.unwrap();
                assert!(progress.is_finished(), "{progress:?}");
                let cancelled = policy == P::AllOrNothing;
                assert_eq!(progress.error_code == Some(5), cancelled, "{progress:?}");
            }
        }
        let got = delivered() - before;
        assert_eq!(got, forecast.messages, "{policy:?}: LINE delivered what the forecast said");
        match policy {
            P::UpToRemainingQuota => {
                assert_eq!(got, 3);
                assert_eq!((forecast.capped[0].messages, forecast.capped[0].step.messages), (3, 5));
                assert!(forecast.dropped.is_empty());
                assert!(forecast.to_string().contains("capped vip at the remaining quota: 3 of 5"));
            }
            _ => {
                assert_eq!(got, 0);
                assert_eq!(forecast.dropped[0].reason, DropReason::Quota);
            }
        }
    }
    assert_eq!(QuotaStatus::fetch(&client).await.unwrap().used, 100);
}
