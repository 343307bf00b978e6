//! Tests of campaign planning: delivery policy, templates, split and the planner.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, TimeZone as _, Utc};
use enishi::campaign::{
    DeliveryPolicy, FrequencyCap, Holdout, MessageTemplate, QuietHours, RenderError, SendHistory,
    SendRecord, TemplateError, TextTemplate, Vars,
};
use enishi::line::{Emoji, FlexContainer, Message, TextMessage, TextMessageV2};
use enishi::{CampaignId, CustomerId, LineUserId};

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
    enishi::line::validate_messages(&[Message::Text(out)]).unwrap();

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
