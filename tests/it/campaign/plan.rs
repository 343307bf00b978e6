//! Tests of campaign planning: delivery policy, templates, split and the planner.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, TimeZone as _, Utc};
use enishi::campaign::{
    Arm, Campaign, Contact, DeliveryJournal as _, DeliveryPolicy, ExclusionReason, FrequencyCap,
    Holdout, MULTICAST_MAX_RECIPIENTS, MemoryJournal, MessageTemplate, OnRenderError, Plan,
    PlanError, Planner, QuietHours, RenderError, SendHistory, SendRecord, TemplateError,
    TextTemplate, Transport, Vars,
};
use enishi::line::message::{Emoji, FlexContainer, Message, TextMessage, TextMessageV2};
use enishi::{CampaignId, CustomerId, LineUserId};
use proptest::prelude::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn user(n: u64) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn customer(n: u64) -> CustomerId {
    CustomerId::new(format!("c-{n}")).unwrap()
}

fn send(n: u64, at: DateTime<Utc>) -> SendRecord {
    SendRecord { line_user: user(n), campaign: CampaignId::new("earlier").unwrap(), at }
}

// ---------------------------------------------------------------------------------------------
// Quiet hours

#[test]
fn quiet_hours_wrapping_midnight_defer_to_their_end_in_japan_time() {
    let quiet = QuietHours::new(hm(21, 0), hm(9, 0));
    // 21:30 JST on the 24th → 09:00 JST on the 25th (= 00:00 UTC on the 25th).
    assert_eq!(quiet.defer(utc(2026, 11, 24, 12, 30)), utc(2026, 11, 25, 0, 0));
    // 21:00 JST exactly is quiet (the start is inclusive).
    assert_eq!(quiet.defer(utc(2026, 11, 24, 12, 0)), utc(2026, 11, 25, 0, 0));
    // 08:59 JST → 09:00 JST the same local day.
    assert_eq!(quiet.defer(utc(2026, 11, 24, 23, 59)), utc(2026, 11, 25, 0, 0));
    // 02:00 JST on the 25th (17:00 UTC on the 24th) → 09:00 JST on the 25th.
    assert_eq!(quiet.defer(utc(2026, 11, 24, 17, 0)), utc(2026, 11, 25, 0, 0));
    // 09:00 JST exactly and 20:59 JST are not quiet.
    for at in [utc(2026, 11, 25, 0, 0), utc(2026, 11, 25, 11, 59)] {
        assert_eq!(quiet.defer(at), at);
        assert!(!quiet.contains(at));
    }
    assert!(quiet.contains(utc(2026, 11, 24, 12, 30)));
}

#[test]
fn quiet_hours_within_a_day_and_at_other_offsets() {
    let lunch = QuietHours::new(hm(12, 0), hm(13, 0)); // JST
    assert_eq!(lunch.defer(utc(2026, 1, 1, 3, 15)), utc(2026, 1, 1, 4, 0));
    assert_eq!(lunch.defer(utc(2026, 1, 1, 4, 0)), utc(2026, 1, 1, 4, 0));
    assert_eq!(lunch.defer(utc(2026, 1, 1, 2, 59)), utc(2026, 1, 1, 2, 59));

    let utc_night =
        QuietHours::new(hm(22, 0), hm(7, 30)).with_offset(FixedOffset::east_opt(0).unwrap());
    assert_eq!(utc_night.defer(utc(2026, 3, 31, 23, 0)), utc(2026, 4, 1, 7, 30));

    let none = QuietHours::new(hm(8, 0), hm(8, 0));
    assert_eq!(none.defer(utc(2026, 1, 1, 23, 0)), utc(2026, 1, 1, 23, 0));
    assert_eq!(
        DeliveryPolicy::recommended().quiet_hours.unwrap().to_string(),
        "21:00–09:00 (+09:00)"
    );
}

// ---------------------------------------------------------------------------------------------
// Frequency cap

#[test]
fn frequency_cap_counts_past_and_planned_sends_in_any_window_containing_the_send() {
    let now = utc(2026, 11, 24, 3, 0);
    let cap = FrequencyCap::new(2, TimeDelta::days(7));
    let history = SendHistory::from_records(&[
        // user 1: one send 3 days ago → allowed.
        send(1, now - TimeDelta::days(3)),
        // user 2: two sends this week → capped.
        send(2, now - TimeDelta::days(1)),
        send(2, now - TimeDelta::days(6)),
        // user 3: two sends 8 days ago → outside the window.
        send(3, now - TimeDelta::days(8)),
        send(3, now - TimeDelta::days(9)),
        // user 4: one 3 days ago and one planned 3 days ahead: a 7-day window holds both.
        send(4, now - TimeDelta::days(3)),
        send(4, now + TimeDelta::days(3)),
        // user 5: 6 days ago and 6 days ahead: no 7-day window holds both and `now`.
        send(5, now - TimeDelta::days(6)),
        send(5, now + TimeDelta::days(6)),
        // user 6: exactly 7 days ago is out of the window (half-open).
        send(6, now - TimeDelta::days(7)),
        send(6, now - TimeDelta::days(7)),
    ]);
    assert_eq!(history.len(), 11);
    assert!(cap.allows(&history, &user(1), now));
    assert!(!cap.allows(&history, &user(2), now));
    assert!(cap.allows(&history, &user(3), now));
    assert!(!cap.allows(&history, &user(4), now));
    assert!(cap.allows(&history, &user(5), now));
    assert!(cap.allows(&history, &user(6), now));
    assert!(cap.allows(&history, &user(99), now));
    assert_eq!(cap.history_since(now), now - TimeDelta::days(7));

    assert!(!FrequencyCap::new(0, TimeDelta::days(1)).allows(&history, &user(99), now));
    assert!(FrequencyCap::new(0, TimeDelta::zero()).allows(&history, &user(2), now));
}

#[test]
fn send_history_records_keep_order() {
    let now = utc(2026, 1, 1, 0, 0);
    let mut history = SendHistory::new();
    assert!(history.is_empty());
    history.record(&user(1), now);
    history.record(&user(1), now - TimeDelta::hours(1));
    history.record(&user(1), now + TimeDelta::hours(1));
    assert_eq!(
        history.times(&user(1)),
        [now - TimeDelta::hours(1), now, now + TimeDelta::hours(1)]
    );
    assert!(!FrequencyCap::new(3, TimeDelta::days(1)).allows(&history, &user(1), now));
    assert!(FrequencyCap::new(4, TimeDelta::days(1)).allows(&history, &user(1), now));
}

// ---------------------------------------------------------------------------------------------
// Holdout

#[test]
fn holdout_shares_and_extremes() {
    let none = Holdout::percent("s", 0);
    let all = Holdout::percent("s", 200);
    let tenth = Holdout::percent("s", 10);
    let mut held = 0;
    for n in 0..20_000 {
        let c = customer(n);
        assert!(!none.contains(&c));
        assert!(all.contains(&c));
        held += usize::from(tenth.contains(&c));
        assert_eq!(tenth.contains(&c), Holdout::percent("s", 10).contains(&c), "stable");
    }
    // 10 % of 20,000 = 2,000; 4 standard deviations ≈ 170.
    assert!((1_830..=2_170).contains(&held), "{held}");
    assert_eq!(Holdout::basis_points("s", 20_000).share_basis_points(), 10_000);
    // Nested shares: a 5 % group is inside the 10 % group of the same salt.
    let fifth = Holdout::percent("s", 5);
    assert!((0..5_000).map(customer).filter(|c| fifth.contains(c)).all(|c| tenth.contains(&c)));
}

// ---------------------------------------------------------------------------------------------
// Templates

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs.iter().copied().collect()
}

#[test]
fn text_templates_render_values_and_defaults() {
    let t = MessageTemplate::text(
        "{{ name | お客様 }}さん、あと{{rank_gap_yen}}円で{{ rank|\"ゴールド }}\" }}",
    )
    .unwrap();
    assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["name", "rank", "rank_gap_yen"]);
    assert!(!t.is_static());
    assert_eq!(
        t.render(&vars(&[("name", "花子"), ("rank_gap_yen", "2,000")])).unwrap(),
        Message::text("花子さん、あと2,000円でゴールド }}")
    );
    // An empty value takes the default too.
    assert_eq!(
        t.render(&vars(&[("name", ""), ("rank_gap_yen", "1"), ("rank", "シルバー")])).unwrap(),
        Message::text("お客様さん、あと1円でシルバー")
    );
    match t.render(&vars(&[("name", "花子")])) {
        Err(RenderError::MissingVariable { name }) => assert_eq!(name, "rank_gap_yen"),
        other => panic!("{other:?}"),
    }
    let escaped = MessageTemplate::text(r"literal \{{ name }} and {{ name }}").unwrap();
    assert_eq!(
        escaped.render(&vars(&[("name", "x")])).unwrap(),
        Message::text("literal {{ name }} and x")
    );
    let plain = MessageTemplate::text(r"only \{{ braces").unwrap();
    assert!(plain.is_static());
    assert_eq!(plain.as_static(), Some(&Message::text("only {{ braces")));
    assert_eq!(TextTemplate::parse("a {{b|}}c").unwrap().render(&Vars::new()).unwrap(), "a c");
}

#[test]
fn template_syntax_errors_name_field_and_position() {
    let cases: &[(&str, usize, usize, usize)] = &[
        ("hi {{ }}", 6, 1, 7),
        ("hi {{ name", 10, 1, 11),
        ("line\nあ{{ 1x }}", 11, 2, 5),
        ("{{ a | \"open }}", 7, 1, 8),
        ("{{ a b }}", 5, 1, 6),
        ("{{ a | x", 7, 1, 8),
    ];
    for &(src, offset, line, column) in cases {
        match MessageTemplate::text(src) {
            Err(TemplateError::Syntax { field, offset: o, line: l, column: c, message }) => {
                assert_eq!(field, "/text", "{src}");
                assert_eq!((o, l, c), (offset, line, column), "{src}: {message}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
    let err = MessageTemplate::text("{{ }}").unwrap_err().to_string();
    assert!(err.contains("line 1, column 4"), "{err}");
}

#[test]
fn rendered_text_respects_line_limits() {
    let t = MessageTemplate::text("{{ body }}").unwrap();
    assert!(t.render(&vars(&[("body", &"あ".repeat(5_000))])).is_ok());
    match t.render(&vars(&[("body", &"あ".repeat(5_001))])) {
        Err(RenderError::Invalid(e)) => assert!(e.to_string().contains("5001"), "{e}"),
        other => panic!("{other:?}"),
    }
    // An emoji outside the BMP counts 2 UTF-16 units.
    assert!(matches!(
        t.render(&vars(&[("body", &"😀".repeat(2_501))])),
        Err(RenderError::Invalid(_))
    ));
    assert!(matches!(t.render(&vars(&[("body", "")])), Err(RenderError::MissingVariable { .. })));
    let empty = MessageTemplate::text("{{ body | }}").unwrap();
    assert!(matches!(empty.render(&Vars::new()), Err(RenderError::Invalid(_))));
}

#[test]
fn line_emoji_follow_their_dollar_sign() {
    let text = TextMessage::new("{{ name }}さん $ セール $")
        .with_emoji(Emoji::new(13, "5ac1bfd5040ab15980c9b435", "001"))
        .with_emoji(Emoji::new(19, "5ac1bfd5040ab15980c9b435", "002"));
    let t = MessageTemplate::new(text).unwrap();
    let Message::Text(out) = t.render(&vars(&[("name", "😀花子")])).unwrap() else { panic!() };
    assert_eq!(out.text, "😀花子さん $ セール $");
    let units: Vec<u16> = out.text.encode_utf16().collect();
    for e in &out.emojis {
        assert_eq!(units[e.index as usize], u16::from(b'$'), "{e:?}");
    }
    assert_eq!(out.emojis.iter().map(|e| e.index).collect::<Vec<_>>(), [7, 13]);
    enishi::line::message::validate_messages(&[Message::Text(out)]).unwrap();

    let bad = TextMessage::new("{{ name }} $").with_emoji(Emoji::new(3, "p", "e"));
    assert!(matches!(MessageTemplate::new(bad), Err(TemplateError::Unsupported { .. })));
}

#[test]
fn text_v2_values_cannot_become_line_placeholders() {
    let t = MessageTemplate::new(
        TextMessageV2::new(r"{{ name }} \{{sale} {star}").with_emoji("star", "p", "e"),
    )
    .unwrap();
    let Message::TextV2(out) = t.render(&vars(&[("name", "{star}")])).unwrap() else { panic!() };
    assert_eq!(out.text, "{{star}} {{sale} {star}");
}

#[test]
fn flex_and_template_messages_render_placeholders_in_any_string() {
    let flex = Message::flex(
        "{{ name }}さんへのおすすめ",
        FlexContainer::raw(serde_json::json!({
            "type": "bubble",
            "body": {"type": "box", "layout": "vertical", "contents": [
                {"type": "text", "text": "{{ product | 人気商品 }}"},
                {"type": "text", "text": "クーポン {{ coupon }}"}
            ]}
        })),
    );
    let t = MessageTemplate::new(flex).unwrap();
    assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["coupon", "name", "product"]);
    let out = t.render(&vars(&[("name", "花子"), ("coupon", "SPRING10")])).unwrap();
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["altText"], "花子さんへのおすすめ");
    assert_eq!(json["contents"]["body"]["contents"][0]["text"], "人気商品");
    assert_eq!(json["contents"]["body"]["contents"][1]["text"], "クーポン SPRING10");

    // Binding campaign-wide values first; the rest per customer.
    let bound = t.bind(&vars(&[("coupon", "WINTER"), ("product", "美容液")])).unwrap();
    assert_eq!(bound.variables().into_iter().collect::<Vec<_>>(), ["name"]);
    let out = serde_json::to_value(bound.render(&vars(&[("name", "太郎")])).unwrap()).unwrap();
    assert_eq!(out["contents"]["body"]["contents"][0]["text"], "美容液");
    assert_eq!(out["contents"]["body"]["contents"][1]["text"], "クーポン WINTER");
    let all = t.bind(&vars(&[("coupon", "A"), ("name", "B"), ("product", "C")])).unwrap();
    assert!(all.is_static());

    // A rendered alt text over LINE's 1,500 limit is refused.
    let long = "x".repeat(1_500);
    assert!(matches!(
        t.render(&vars(&[("name", &long), ("coupon", "c")])),
        Err(RenderError::Invalid(_))
    ));

    let err = MessageTemplate::new(Message::flex(
        "{{ }}",
        FlexContainer::raw(serde_json::json!({"type": "bubble"})),
    ))
    .unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { ref field, .. } if field == "/altText"), "{err}");
}

#[test]
fn vars_serialise_as_an_object() {
    let v = Vars::new().with("rank_gap_yen", 2000).with("name", "花子").with("name", "太郎");
    assert_eq!(v.len(), 2);
    assert_eq!(v.get("name"), Some("太郎"));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json, serde_json::json!({"name": "太郎", "rank_gap_yen": "2000"}));
    let back: Vars = serde_json::from_value(json).unwrap();
    assert_eq!(back.get("rank_gap_yen"), Some("2000"));
}

// ---------------------------------------------------------------------------------------------
// Planner

fn campaign_id(s: &str) -> CampaignId {
    CampaignId::new(s).unwrap()
}

fn reachable(n: u64) -> Contact {
    Contact::reachable(customer(n), user(n)).with_var("name", format!("name-{n}"))
}

fn text(s: &str) -> MessageTemplate {
    MessageTemplate::text(s).unwrap()
}

/// 10:00 JST, outside the recommended quiet hours.
fn morning() -> DateTime<Utc> {
    utc(2026, 11, 24, 1, 0)
}

fn plan(
    policy: &DeliveryPolicy,
    history: &SendHistory,
    campaign: &Campaign,
    contacts: &[Contact],
    now: DateTime<Utc>,
) -> Plan {
    Planner::new(policy).with_history(history).plan(campaign, contacts, now).unwrap()
}

/// customer → (arm, transport) over all batches; fails on a customer in two batches.
fn assignment(plan: &Plan) -> BTreeMap<CustomerId, Option<String>> {
    let mut out = BTreeMap::new();
    for b in &plan.batches {
        for r in &b.recipients {
            assert!(out.insert(r.customer.clone(), b.arm.clone()).is_none(), "{r:?} twice");
        }
    }
    out
}

#[test]
fn every_exclusion_reason_is_counted_once_and_the_rest_receive() {
    let now = morning();
    let holdout = Holdout::percent("global", 30);
    let held = (100..).find(|&n| holdout.contains(&customer(n))).unwrap();
    let not_held = |n: u64| !holdout.contains(&customer(n));
    let free: Vec<u64> = (1000..).filter(|&n| not_held(n)).take(10).collect();

    let mut contacts = vec![
        Contact::new(customer(free[0])).with_following(true).with_consent(true),
        reachable(free[1]).with_following(false),
        reachable(free[2]).with_consent(false),
        reachable(free[3]), // on the exclusion list
        reachable(free[4]),
        Contact::reachable(customer(free[5]), user(free[4])), // same LINE user as free[4]
        reachable(held),
        reachable(free[6]), // at the frequency cap
        Contact::reachable(customer(free[7]), user(free[7])), // no `name`
        reachable(free[8]).with_var("name", "x".repeat(5_000)), // renders over 5,000
        reachable(free[9]),
    ];
    contacts[5].vars = Vars::new().with("name", "dup");
    let history = SendHistory::from_records(&[
        send(free[6], now - TimeDelta::days(1)),
        send(free[6], now - TimeDelta::days(2)),
        send(free[9], now - TimeDelta::days(2)), // one send: still allowed
    ]);
    let policy = DeliveryPolicy::recommended().with_holdout(holdout);
    let campaign = Campaign::new(campaign_id("all-reasons"), [text("{{ name }}さん、こんにちは")])
        .exclude([customer(free[3])])
        .on_render_error(OnRenderError::Exclude);
    let plan = plan(&policy, &history, &campaign, &contacts, now);
    let dry = plan.dry_run();

    for reason in ExclusionReason::ALL {
        assert_eq!(dry.excluded(reason), 1, "{reason}");
    }
    assert_eq!(dry.candidates, 11);
    assert_eq!(dry.excluded_total(), 9);
    assert_eq!(dry.recipients, 2);
    let got: Vec<_> = assignment(&plan).into_keys().collect();
    let mut want = vec![customer(free[4]), customer(free[9])];
    want.sort();
    assert_eq!(got, want);
    assert!(plan.batches.iter().all(|b| b.transport == Transport::Push));
}

#[test]
fn ab_arms_and_holdout_are_exclusive_stable_and_proportional() {
    let contacts: Vec<Contact> = (0..20_000).map(reachable).collect();
    let holdout = Holdout::percent("global-2026", 10);
    let policy = DeliveryPolicy::new().with_holdout(holdout.clone());
    let campaign = Campaign::ab(
        campaign_id("ab"),
        [Arm::new("a", 1, [text("A")]), Arm::new("b", 3, [text("B {{ name }}")])],
    );
    let history = SendHistory::new();
    let first = plan(&policy, &history, &campaign, &contacts, morning());
    let arms = assignment(&first);

    // Held-out customers are in no arm, and everyone else is in exactly one.
    for c in &contacts {
        assert_eq!(holdout.contains(&c.customer), !arms.contains_key(&c.customer));
    }
    let dry = first.dry_run();
    let held = dry.excluded(ExclusionReason::Holdout);
    assert!((1_830..=2_170).contains(&held), "{held}");
    let (a, b) = (dry.arm("a").unwrap(), dry.arm("b").unwrap());
    assert_eq!(a.recipients + b.recipients + held, 20_000);
    // b has weight 3 of 4: 75 % ± 4 σ of the ~18,000 not held out.
    let share_b = b.recipients as f64 / (a.recipients + b.recipients) as f64;
    assert!((0.74..=0.76).contains(&share_b), "{share_b}");
    assert_eq!((a.transport, b.transport), (Transport::Multicast, Transport::Push));
    assert_eq!(a.batches, a.recipients.div_ceil(500));
    assert_eq!(b.batches, b.recipients);

    // Stable: the same plan again, and the same assignment whatever the candidate order.
    assert_eq!(plan(&policy, &history, &campaign, &contacts, morning()), first);
    let reversed: Vec<Contact> = contacts.iter().rev().cloned().collect();
    assert_eq!(assignment(&plan(&policy, &history, &campaign, &reversed, morning())), arms);
    // Arms match the public split function.
    for (c, arm) in arms.iter().take(500) {
        let i = enishi::campaign::arm_index("ab", &[1, 3], c).unwrap();
        assert_eq!(arm.as_deref(), Some(["a", "b"][i]));
    }
    // Another salt reshuffles the arms but not the holdout.
    let resalted =
        plan(&policy, &history, &campaign.clone().with_salt("ab-v2"), &contacts, morning());
    let other = assignment(&resalted);
    assert_eq!(other.keys().collect::<Vec<_>>(), arms.keys().collect::<Vec<_>>());
    assert_ne!(other, arms);
}

#[test]
fn identical_content_goes_by_multicast_in_chunks_of_500() {
    let contacts: Vec<Contact> = (0..1_234).map(reachable).collect();
    let unit = enishi::AggregationUnit::new("winter_sale").unwrap();
    let campaign =
        Campaign::new(campaign_id("winter"), [text("セール {{ coupon }}"), text("2通目")])
            .with_var("coupon", "W10")
            .with_aggregation_unit(unit.clone());
    let plan = plan(&DeliveryPolicy::new(), &SendHistory::new(), &campaign, &contacts, morning());
    let sizes: Vec<usize> = plan.batches.iter().map(|b| b.recipients.len()).collect();
    assert_eq!(sizes, [500, 500, 234]);
    assert_eq!(MULTICAST_MAX_RECIPIENTS, 500);
    let ids: Vec<&str> = plan.batches.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["winter#0000001", "winter#0000002", "winter#0000003"]);
    for b in &plan.batches {
        assert_eq!(b.transport, Transport::Multicast);
        assert_eq!(b.messages, [Message::text("セール W10"), Message::text("2通目")]);
        assert_eq!(b.not_before, morning());
        assert_eq!(b.arm, None);
        assert_eq!(b.aggregation_unit.as_ref(), Some(&unit));
        assert_eq!(b.retry_key, enishi::RetryKey::derive(b.id.as_str()));
    }
    // Recipients in candidate order.
    assert_eq!(plan.batches[0].recipients[0].customer, customer(0));
    assert_eq!(plan.batches[2].recipients[233].customer, customer(1_233));
    assert_eq!(plan.dry_run().samples.len(), 1);
}

#[test]
fn personalised_content_goes_by_push_one_recipient_each() {
    let contacts: Vec<Contact> = (0..5).map(reachable).collect();
    let campaign = Campaign::new(
        campaign_id("rank"),
        [text("{{ name }}さん、あと{{ gap | 少し }}でゴールド"), text("同じ2通目")],
    );
    let plan = plan(&DeliveryPolicy::new(), &SendHistory::new(), &campaign, &contacts, morning());
    assert_eq!(plan.batches.len(), 5);
    for (i, b) in plan.batches.iter().enumerate() {
        assert_eq!(b.transport, Transport::Push);
        assert_eq!(b.recipients.len(), 1);
        assert_eq!(b.recipients[0].line_user, user(i as u64));
        assert_eq!(b.messages[0], Message::text(format!("name-{i}さん、あと少しでゴールド")));
        assert_eq!(b.messages[1], Message::text("同じ2通目"));
        assert_eq!(b.id.as_str(), format!("rank#{:07}", i + 1));
    }
    assert_eq!(plan.dry_run().samples.len(), 3);
}

#[test]
fn missing_variables_fail_listing_customers_unless_defaulted_or_excluded() {
    let mut contacts: Vec<Contact> =
        (0..25).map(|n| Contact::reachable(customer(n), user(n))).collect();
    contacts[3] = reachable(3);
    let campaign = Campaign::new(campaign_id("greet"), [text("{{ name }}さん {{ coupon }}")]);
    let err =
        Planner::new(&DeliveryPolicy::new()).plan(&campaign, &contacts, morning()).unwrap_err();
    let PlanError::MissingVariables { missing, .. } = &err else { panic!("{err:?}") };
    assert_eq!(missing.len(), 2);
    assert_eq!(missing[0].name, "name");
    assert_eq!(missing[0].customers.count, 24);
    assert_eq!(missing[0].customers.first.len(), 10);
    assert_eq!(missing[0].customers.first[0], customer(0));
    assert!(!missing[0].customers.first.contains(&customer(3)));
    // Customer 3 has a name, so only its coupon is missing.
    assert_eq!((missing[1].name.as_str(), missing[1].customers.count), ("coupon", 1));
    assert_eq!(missing[1].customers.first, [customer(3)]);
    let message = err.to_string();
    assert!(message.contains("`name` missing for 24 customers: c-0, c-1"), "{message}");
    assert!(message.contains("and 14 more"), "{message}");

    // A campaign variable and a default fix it.
    let fixed = Campaign::new(campaign_id("greet"), [text("{{ name | お客様 }}さん {{ coupon }}")])
        .with_var("coupon", "C1");
    let fixed = plan(&DeliveryPolicy::new(), &SendHistory::new(), &fixed, &contacts, morning());
    assert_eq!(fixed.batches[0].messages[0], Message::text("お客様さん C1"));
    assert_eq!(fixed.batches[3].messages[0], Message::text("name-3さん C1"));

    // Or exclude the customers and count them.
    let lenient = campaign.on_render_error(OnRenderError::Exclude).with_var("coupon", "C1");
    let lenient = plan(&DeliveryPolicy::new(), &SendHistory::new(), &lenient, &contacts, morning());
    assert_eq!(lenient.dry_run().excluded(ExclusionReason::MissingVariable), 24);
    assert_eq!(lenient.dry_run().recipients, 1);

    // A rendered message over LINE's limits fails the plan, naming the customer.
    let long = vec![reachable(1).with_var("name", "x".repeat(6_000))];
    let err = Planner::new(&DeliveryPolicy::new())
        .plan(&Campaign::new(campaign_id("long"), [text("{{ name }}")]), &long, morning())
        .unwrap_err();
    let PlanError::InvalidMessages { customers, .. } = &err else { panic!("{err:?}") };
    assert_eq!(customers.first, [customer(1)]);
}

#[test]
fn quiet_hours_defer_every_batch_to_their_end() {
    let policy = DeliveryPolicy::recommended();
    let contacts: Vec<Contact> = (0..3).map(reachable).collect();
    let campaign = Campaign::new(campaign_id("late"), [text("hi")]);
    // Planned at 21:30 JST → due at 09:00 JST the next morning.
    let now = utc(2026, 11, 24, 12, 30);
    let p = plan(&policy, &SendHistory::new(), &campaign, &contacts, now);
    let dry = p.dry_run();
    assert_eq!(dry.send_at, now);
    assert_eq!(dry.not_before, utc(2026, 11, 25, 0, 0));
    assert_eq!(dry.deferred, 3);
    assert_eq!(dry.recipients, 3);
    assert!(p.batches.iter().all(|b| b.not_before == utc(2026, 11, 25, 0, 0)));

    // Scheduled for 08:30 JST tomorrow → 09:00 JST.
    let scheduled = campaign.clone().send_at(utc(2026, 11, 24, 23, 30));
    let p = plan(&policy, &SendHistory::new(), &scheduled, &contacts, now);
    assert_eq!(p.dry_run().not_before, utc(2026, 11, 25, 0, 0));
    // Scheduled for 10:00 JST: no deferral; a schedule in the past means now.
    let p = plan(
        &policy,
        &SendHistory::new(),
        &campaign.clone().send_at(morning()),
        &contacts,
        utc(2026, 11, 23, 0, 0),
    );
    assert_eq!((p.dry_run().not_before, p.dry_run().deferred), (morning(), 0));
    let p = plan(
        &policy,
        &SendHistory::new(),
        &campaign.send_at(morning()),
        &contacts,
        morning() + TimeDelta::hours(2),
    );
    assert_eq!(p.dry_run().not_before, morning() + TimeDelta::hours(2));
}

#[test]
fn the_frequency_cap_applies_at_the_deferred_send_time() {
    let now = utc(2026, 11, 24, 12, 30); // 21:30 JST, deferred 11 h 30 min
    let policy = DeliveryPolicy::new()
        .with_quiet_hours(QuietHours::new(hm(21, 0), hm(9, 0)))
        .with_frequency_cap(FrequencyCap::new(1, TimeDelta::days(7)));
    // Sent 6 days 18 hours ago: inside the window now, outside it at the deferred time.
    let history = SendHistory::from_records(&[send(1, now - TimeDelta::hours(6 * 24 + 18))]);
    let contacts = vec![reachable(1)];
    let campaign = Campaign::new(campaign_id("cap"), [text("hi")]);
    assert_eq!(plan(&policy, &history, &campaign, &contacts, now).dry_run().recipients, 1);
    let no_quiet =
        DeliveryPolicy::new().with_frequency_cap(FrequencyCap::new(1, TimeDelta::days(7)));
    let p = plan(&no_quiet, &history, &campaign, &contacts, now);
    assert_eq!(p.dry_run().excluded(ExclusionReason::FrequencyCap), 1);
}

#[test]
fn plans_back_to_back_share_the_cap_through_send_records() {
    let policy = DeliveryPolicy::new().with_frequency_cap(FrequencyCap::new(1, TimeDelta::days(7)));
    let contacts: Vec<Contact> = (0..10).map(reachable).collect();
    let mut history = SendHistory::new();
    let first = plan(
        &policy,
        &history,
        &Campaign::new(campaign_id("one"), [text("1")]),
        &contacts[..4],
        morning(),
    );
    for r in first.send_records() {
        history.record(&r.line_user, r.at);
    }
    assert_eq!(history.len(), 4);
    let second = plan(
        &policy,
        &history,
        &Campaign::new(campaign_id("two"), [text("2")]),
        &contacts,
        morning(),
    );
    assert_eq!(second.dry_run().excluded(ExclusionReason::FrequencyCap), 4);
    assert_eq!(second.dry_run().recipients, 6);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_a_re_plan_enqueues_nothing_new() {
    let contacts: Vec<Contact> = (0..1_200).map(reachable).collect();
    let campaign = Campaign::ab(
        campaign_id("dry"),
        [
            Arm::new("plain", 1, [text("こんにちは")]),
            Arm::new("named", 1, [text("{{ name }}さん")]),
        ],
    )
    .with_samples(2);
    let policy = DeliveryPolicy::recommended().with_holdout(Holdout::percent("g", 5));
    let p = plan(&policy, &SendHistory::new(), &campaign, &contacts, morning());
    let dry = p.dry_run().clone();

    // Samples: one per identical arm, two per personalised arm, rendered.
    let samples: Vec<_> =
        dry.samples.iter().map(|s| (s.arm.as_deref().unwrap(), s.messages.len())).collect();
    assert_eq!(samples.iter().filter(|s| s.0 == "plain").count(), 1);
    assert_eq!(samples.iter().filter(|s| s.0 == "named").count(), 2);
    let named = dry.samples.iter().find(|s| s.arm.as_deref() == Some("named")).unwrap();
    assert_eq!(
        named.messages,
        [Message::text(format!("{}さん", named.customer.as_str().replace("c-", "name-")))]
    );

    // Serialises and reads back; displays the counts.
    let json = serde_json::to_value(&dry).unwrap();
    assert_eq!(json["excluded"]["holdout"], dry.excluded(ExclusionReason::Holdout));
    assert_eq!(json["arms"][0]["transport"], "multicast");
    let back: enishi::campaign::DryRun = serde_json::from_value(json).unwrap();
    assert_eq!(back, dry);
    let shown = dry.to_string();
    assert!(shown.contains("campaign dry (dry run"), "{shown}");
    assert!(shown.contains("holdout"), "{shown}");
    assert!(shown.contains("sample [named] c-"), "{shown}");

    // Planning wrote nothing anywhere; enqueueing is a separate, idempotent step.
    let journal = MemoryJournal::new();
    let id = campaign_id("dry");
    assert_eq!(journal.counts(&id).await.unwrap().batches(), 0);
    assert_eq!(journal.enqueue(&p.batches).await.unwrap(), dry.batches);
    let again = plan(&policy, &SendHistory::new(), &campaign, &contacts, morning());
    assert_eq!(journal.enqueue(&again.batches).await.unwrap(), 0);
    let counts = journal.counts(&id).await.unwrap();
    assert_eq!((counts.pending, counts.recipients), (dry.batches, dry.recipients));
}

#[test]
fn campaigns_that_cannot_be_planned_say_why() {
    let contacts = vec![reachable(1)];
    let planner_policy = DeliveryPolicy::new();
    let planner = Planner::new(&planner_policy);
    let bad = [
        Campaign::ab(campaign_id("x"), []),
        Campaign::ab(campaign_id("x"), [Arm::new("a", 0, [text("a")])]),
        Campaign::ab(
            campaign_id("x"),
            [Arm::new("a", 1, [text("a")]), Arm::new("a", 1, [text("b")])],
        ),
        Campaign::new(campaign_id("x"), []),
        Campaign::new(campaign_id("x"), (0..6).map(|_| text("m"))),
        Campaign::new(campaign_id("x"), [text(&"x".repeat(5_001))]),
        Campaign::new(campaign_id("x"), [text("{{ long }}")]).with_var("long", "y".repeat(5_001)),
    ];
    for campaign in &bad {
        match planner.plan(campaign, &contacts, morning()) {
            Err(e @ PlanError::InvalidCampaign { .. }) => assert!(e.to_string().contains("`x`")),
            other => panic!("{campaign:?}: {other:?}"),
        }
    }
    // An empty audience is fine.
    let empty =
        planner.plan(&Campaign::new(campaign_id("x"), [text("m")]), &[], morning()).unwrap();
    assert!(empty.batches.is_empty());
    assert_eq!(empty.dry_run().recipients, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Holdout and arms never overlap, every eligible customer lands in exactly one place, and
    /// the assignment does not depend on the other candidates or their order.
    #[test]
    fn split_is_exclusive_and_independent_of_the_audience(
        ids in proptest::collection::btree_set(0u64..1_000_000, 1..300),
        weights in proptest::collection::vec(0u32..5, 1..5),
        holdout_pct in 0u8..=100,
        salt in "[a-z]{0,8}",
        skip in 0usize..10,
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let arms: Vec<Arm> = weights.iter().enumerate()
            .map(|(i, &w)| Arm::new(format!("arm{i}"), w, [text("m")]))
            .collect();
        let campaign = Campaign::ab(campaign_id("prop"), arms).with_salt(salt.clone());
        let holdout = Holdout::percent("h", holdout_pct);
        let policy = DeliveryPolicy::new().with_holdout(holdout.clone());
        let contacts: Vec<Contact> = ids.iter().map(|&n| reachable(n)).collect();
        let full = assignment(&plan(&policy, &SendHistory::new(), &campaign, &contacts, morning()));
        for c in &contacts {
            let arm = full.get(&c.customer);
            prop_assert_eq!(holdout.contains(&c.customer), arm.is_none());
            if let Some(arm) = arm {
                let i = enishi::campaign::arm_index(&salt, &weights, &c.customer).unwrap();
                prop_assert_eq!(arm.clone(), Some(format!("arm{i}")));
                prop_assert!(weights[i] > 0);
            }
        }
        // A sub-audience in another order: everyone keeps their place.
        let mut sub: Vec<Contact> = contacts.iter().skip(skip).cloned().collect();
        sub.reverse();
        let part = assignment(&plan(&policy, &SendHistory::new(), &campaign, &sub, morning()));
        for (c, arm) in &part {
            prop_assert_eq!(full.get(c), Some(arm));
        }
    }

    /// Arms get their weight's share of customers (within 5 standard deviations).
    #[test]
    fn arm_shares_follow_weights(w in proptest::collection::vec(1u32..10, 2..4), salt in "[a-z]{1,6}") {
        let n = 20_000u64;
        let total: u32 = w.iter().sum();
        let mut counts: HashMap<usize, u64> = HashMap::new();
        for i in 0..n {
            *counts.entry(enishi::campaign::arm_index(&salt, &w, &customer(i)).unwrap()).or_default() += 1;
        }
        for (i, &wi) in w.iter().enumerate() {
            let p = f64::from(wi) / f64::from(total);
            let expected = p * n as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let got = counts.get(&i).copied().unwrap_or(0) as f64;
            prop_assert!((got - expected).abs() <= 5.0 * sd, "arm {} got {} expected {}", i, got, expected);
        }
    }

    /// Multicast batches hold 1 to 500 recipients, all of them, in order.
    #[test]
    fn multicast_chunks_cover_the_audience(n in 0u64..2_100) {
        let contacts: Vec<Contact> = (0..n).map(reachable).collect();
        let campaign = Campaign::new(campaign_id("chunks"), [text("m")]);
        let p = plan(&DeliveryPolicy::new(), &SendHistory::new(), &campaign, &contacts, morning());
        prop_assert!(p.batches.iter().all(|b| (1..=500).contains(&b.recipients.len())));
        prop_assert_eq!(p.batches.len() as u64, n.div_ceil(500));
        let flat: Vec<CustomerId> = p.batches.iter().flat_map(|b| b.recipients.iter().map(|r| r.customer.clone())).collect();
        prop_assert_eq!(flat, contacts.iter().map(|c| c.customer.clone()).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn plan_resumed_campaign_ignores_its_own_journal_entries_for_the_cap() {
    let policy = DeliveryPolicy::new().with_frequency_cap(FrequencyCap::new(1, TimeDelta::days(7)));
    let contacts: Vec<Contact> =
        (0..1200).map(|n| Contact::reachable(customer(n), user(n))).collect();
    let id = CampaignId::new("resume-me").unwrap();
    let campaign = Campaign::new(id.clone(), [MessageTemplate::text("セール開催中").unwrap()]);
    let now = utc(2026, 11, 24, 3, 0);
    let first = Planner::new(&policy).plan(&campaign, &contacts, now).unwrap();
    let journal = MemoryJournal::new();
    journal.enqueue(&first.batches).await.unwrap();
    let records = journal.sends_since(now - TimeDelta::days(7)).await.unwrap();
    assert_eq!(records.len(), 1200);

    // Counting its own planned sends, a re-plan would cap everyone out: nothing matches.
    let all = SendHistory::from_records(&records);
    let capped = Planner::new(&policy).with_history(&all).plan(&campaign, &contacts, now).unwrap();
    assert_eq!(capped.dry_run().excluded(ExclusionReason::FrequencyCap), 1200);
    // Without them, the re-plan is the first plan, so enqueueing it again stores nothing new.
    let others = SendHistory::from_records_except(&records, &id);
    let again =
        Planner::new(&policy).with_history(&others).plan(&campaign, &contacts, now).unwrap();
    assert_eq!(again.batches, first.batches);
    assert_eq!(journal.enqueue(&again.batches).await.unwrap(), 0);
    // Another campaign still sees them.
    let other =
        Campaign::new(CampaignId::new("next").unwrap(), [MessageTemplate::text("次").unwrap()]);
    let next = Planner::new(&policy).with_history(&others).plan(&other, &contacts, now).unwrap();
    assert_eq!(next.dry_run().excluded(ExclusionReason::FrequencyCap), 0, "history is the others'");
    let next = Planner::new(&policy)
        .with_history(&SendHistory::from_records_except(&records, other.id()))
        .plan(&other, &contacts, now)
        .unwrap();
    assert_eq!(next.dry_run().excluded(ExclusionReason::FrequencyCap), 1200);
}
