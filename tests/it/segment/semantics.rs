//! The written-down semantics, one family at a time, on the reference evaluator.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use enishi::CustomerId;
use enishi::segment::{
    AttrValue, Context, CustomerFacts, Friendship, LineItemFact, LineStatus, MessageEvent,
    MessageKind, NextChange, OrderFact, OrderKind, ProductStatus, SavedItem, SegmentDefinition,
    SegmentError, SubscriptionFact, SubscriptionState, bucket, evaluate, matches, next_change,
};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn cust(id: &str) -> CustomerFacts {
    CustomerFacts::new(CustomerId::new(id).unwrap())
}

fn order(at: &str, amount: i64, products: &[&str]) -> OrderFact {
    OrderFact {
        id: format!("o-{at}"),
        placed_at: t(at),
        amount,
        kind: OrderKind::OneOff,
        items: products
            .iter()
            .map(|p| LineItemFact {
                product: (*p).into(),
                sku: None,
                category: Some("cosme".into()),
                quantity: 1,
                unit_price: amount / products.len().max(1) as i64,
            })
            .collect(),
    }
}

fn is_in(seg: &str, c: &CustomerFacts, ctx: &Context) -> bool {
    let def = SegmentDefinition::parse(seg).unwrap();
    let fast = matches(&def, c, ctx).unwrap();
    let explained = evaluate(&def, c, ctx).unwrap();
    assert_eq!(fast, explained.result, "matches and evaluate disagree on {seg}");
    fast
}

/// 2025-06-15 12:00 Tokyo.
fn ctx() -> Context {
    Context::new(t("2025-06-15T03:00:00Z"))
}

#[test]
fn segment_attribute_missing_values_under_negation() {
    let mut gold = cust("a");
    gold.attributes.insert("rank".into(), AttrValue::Text("gold".into()));
    gold.attributes.insert("points".into(), AttrValue::Int(1200));
    gold.attributes.insert("labels".into(), AttrValue::List(vec!["vip".into()]));
    let none = cust("b");
    let c = ctx();
    for (seg, g, n) in [
        (r#"attr rank = "gold""#, true, false),
        (r#"attr rank != "gold""#, false, true), // != matches missing (Shopify's rule)
        (r#"not attr rank = "gold""#, false, true),
        (r#"attr rank in ["gold", "silver"]"#, true, false),
        (r#"attr rank not in ["silver"]"#, true, true),
        ("attr rank exists", true, false),
        ("attr rank missing", false, true),
        ("attr points >= 1000", true, false),
        ("attr points < 1000", false, false), // comparisons with a missing number are false
        ("not attr points >= 1000", false, true),
        (r#"attr points = "1200""#, false, false), // different types are unequal
        (r#"attr points != "1200""#, true, true),
        (r#"attr labels contains "vip""#, true, false),
    ] {
        assert_eq!(is_in(seg, &gold, &c), g, "gold: {seg}");
        assert_eq!(is_in(seg, &none, &c), n, "missing: {seg}");
    }
}

#[test]
fn segment_line_link_and_follow_states() {
    let mut linked = cust("a");
    linked.line = LineStatus { linked: true, linked_at: None, friendship: Friendship::Following };
    let mut blocked = cust("b");
    blocked.line = LineStatus { linked: true, linked_at: None, friendship: Friendship::Blocked };
    let c = ctx();
    assert!(is_in("line linked and line following", &linked, &c));
    assert!(is_in("line linked and line blocked", &blocked, &c));
    assert!(!is_in("line following", &blocked, &c));
    assert!(is_in("not line linked", &cust("c"), &c));
}

#[test]
fn segment_rolling_vs_calendar_windows_in_tokyo() {
    // now = 2025-06-15 12:00 JST. An order at 2025-06-14 23:30 JST (14:30Z) is "yesterday".
    let mut a = cust("a");
    a.orders.push(order("2025-06-14T14:30:00Z", 1000, &["p"]));
    let c = ctx();
    assert!(is_in("bought last 1d", &a, &c)); // rolling 24 h
    assert!(!is_in("bought calendar 1d", &a, &c)); // calendar: today only
    assert!(is_in("bought calendar 2d", &a, &c)); // today and yesterday
    // In UTC the same order is on the same day as now (2025-06-15 03:00Z vs 06-14 14:30Z: no).
    let utc = ctx().with_tz(FixedOffset::east_opt(0).unwrap());
    assert!(!is_in("bought calendar 1d", &a, &utc));
    // An order at 00:10 JST today counts as today in Tokyo but yesterday in UTC.
    let mut b = cust("b");
    b.orders.push(order("2025-06-14T15:10:00Z", 1000, &["p"]));
    assert!(is_in("bought calendar 1d", &b, &c));
    assert!(!is_in("bought calendar 1d", &b, &utc));
}

#[test]
fn segment_window_boundaries_are_half_open() {
    let now = t("2025-06-15T03:00:00Z");
    let c = ctx();
    let at = |secs_ago: i64| {
        let mut x = cust("x");
        let when = now - TimeDelta::seconds(secs_ago);
        x.orders.push(OrderFact {
            id: "o".into(),
            placed_at: when,
            amount: 1,
            kind: OrderKind::OneOff,
            items: vec![],
        });
        x
    };
    // last 30d = (now − 30 d, now]: exactly 30 days ago is outside, one second later inside.
    assert!(!is_in("bought last 30d", &at(30 * 86_400), &c));
    assert!(is_in("bought last 30d", &at(30 * 86_400 - 1), &c));
    assert!(is_in("bought last 30d", &at(0), &c)); // now itself is inside
    // An order after now has not happened yet.
    assert!(!is_in("bought", &at(-1), &c));
    // age >= 30d means t <= now − 30 d; age > 30d means t < now − 30 d.
    assert!(is_in("last_order age >= 30d", &at(30 * 86_400), &c));
    assert!(!is_in("last_order age > 30d", &at(30 * 86_400), &c));
    assert!(is_in("last_order age > 30d", &at(30 * 86_400 + 1), &c));
    // between is [from, to).
    let w = |a: &str, b: &str| format!("bought between @{a} and @{b}");
    let x = at(3600);
    assert!(is_in(&w("2025-06-15T02:00:00Z", "2025-06-15T02:00:01Z"), &x, &c));
    assert!(!is_in(&w("2025-06-15T01:00:00Z", "2025-06-15T02:00:00Z"), &x, &c));
}

#[test]
fn segment_never_bought_includes_young_customers() {
    // Customer.io's gotcha: "has not ordered in 30 days" must include a customer who registered
    // yesterday and never ordered. Here windows are never clipped by registration.
    let mut young = cust("y");
    young.registered_at = Some(t("2025-06-14T00:00:00Z"));
    assert!(is_in("never bought last 30d", &young, &ctx()));
    assert!(is_in("not last_order age <= 30d", &young, &ctx()));
    // ...and a date test on a missing last order is false, so its negation is true.
    assert!(!is_in("last_order age > 30d", &young, &ctx()));
}

#[test]
fn segment_birthday_month_and_leap_day() {
    let mut leap = cust("leap");
    leap.birth_date = NaiveDate::from_ymd_opt(2000, 2, 29);
    let on = |s: &str| Context::new(t(s));
    // Feb-29 birthdays are celebrated on Feb-28 in common years, Feb-29 in leap years.
    assert!(is_in("birthday anniversary today", &leap, &on("2025-02-28T01:00:00Z")));
    assert!(!is_in("birthday anniversary today", &leap, &on("2025-03-01T01:00:00Z")));
    assert!(is_in("birthday anniversary today", &leap, &on("2028-02-29T01:00:00Z")));
    assert!(!is_in("birthday anniversary today", &leap, &on("2028-02-28T01:00:00Z")));
    assert!(is_in(
        "birthday month = 2 and birthday month = current",
        &leap,
        &on("2025-02-10T00:00:00Z")
    ));
    // The month is the Tokyo month: 2025-02-28T16:00Z is already March 1st in Tokyo.
    assert!(!is_in("birthday month = current", &leap, &on("2025-02-28T16:00:00Z")));
    // A missing birthday never matches a positive birthday leaf.
    assert!(!is_in("birthday month = current", &cust("none"), &on("2025-02-10T00:00:00Z")));
}

#[test]
fn segment_f2_first_order_exactly_seven_days_ago() {
    let seg = "orders count = 1 and first_order days_ago = 7";
    let mut f2 = cust("f2");
    // 2025-06-08 23:59 JST is seven calendar days before 2025-06-15 12:00 JST.
    f2.orders.push(order("2025-06-08T14:59:00Z", 3000, &["trial"]));
    assert!(is_in(seg, &f2, &ctx()));
    let mut early = cust("e");
    early.orders.push(order("2025-06-07T14:59:00Z", 3000, &["trial"])); // 06-07 23:59 JST
    assert!(!is_in(seg, &early, &ctx()));
    let mut two = f2.clone();
    two.orders.push(order("2025-06-10T00:00:00Z", 3000, &["main"]));
    assert!(!is_in(seg, &two, &ctx()));
}

#[test]
fn segment_bought_a_not_b_and_spend() {
    let mut a = cust("a");
    a.orders.push(order("2025-01-10T00:00:00Z", 30_000, &["A"]));
    a.orders.push(order("2025-03-10T00:00:00Z", 25_000, &["C"]));
    let seg = r#"bought {product = "A"} and never bought {product = "B"} and orders sum >= 50000"#;
    assert!(is_in(seg, &a, &ctx()));
    let mut b = a.clone();
    b.orders.push(order("2025-04-01T00:00:00Z", 100, &["B"]));
    assert!(!is_in(seg, &b, &ctx()));
    // Sums with an item filter add the matching items only.
    assert!(is_in(r#"orders {product = "A"} sum = 30000"#, &a, &ctx()));
    assert!(is_in(r#"orders {category = "cosme"} last 365d avg = 27500"#, &a, &ctx()));
    assert!(is_in("orders avg > 27499 and orders avg < 27501", &a, &ctx()));
    assert!(!is_in("orders avg >= 0", &cust("none"), &ctx())); // no orders: no average
}

#[test]
fn segment_rank_distance_arithmetic() {
    // ランクアップまであと¥2,000: next threshold − spend in the last 365 days is in (0, 2000].
    let mut c = cust("r");
    c.attributes.insert("next_rank_threshold".into(), AttrValue::Int(50_000));
    c.orders.push(order("2025-05-01T00:00:00Z", 48_500, &["x"]));
    let seg = "calc attr next_rank_threshold - sum(orders last 365d) <= 2000 \
               and calc attr next_rank_threshold - sum(orders last 365d) > 0";
    assert!(is_in(seg, &c, &ctx()));
    let e = evaluate(&SegmentDefinition::parse(seg).unwrap(), &c, &ctx()).unwrap();
    assert_eq!(e.explain.children[0].comparison.as_deref(), Some("1500 <= 2000"));
    // A missing threshold makes the comparison false.
    assert!(!is_in("calc attr nope - 1 < 10", &c, &ctx()));
}

#[test]
fn segment_subscription_churn_point_and_cancel_reason() {
    let mut s = cust("s");
    s.subscriptions.push(SubscriptionFact {
        id: "1".into(),
        state: SubscriptionState::Active,
        product: Some("serum".into()),
        started_at: t("2025-03-01T00:00:00Z"),
        canceled_at: None,
        cancel_reason: None,
        deliveries: 2,
        next_delivery_at: Some(t("2025-06-18T00:00:00Z")),
    });
    s.subscriptions.push(SubscriptionFact {
        id: "2".into(),
        state: SubscriptionState::Canceled,
        product: Some("soap".into()),
        started_at: t("2024-03-01T00:00:00Z"),
        canceled_at: Some(t("2025-06-01T00:00:00Z")),
        cancel_reason: Some("price".into()),
        deliveries: 5,
        next_delivery_at: None,
    });
    let c = ctx();
    assert!(is_in(
        "subscription {state = active, deliveries = 2, next_delivery days_ago >= -3}",
        &s,
        &c
    ));
    assert!(!is_in(
        "subscription {state = active, deliveries = 2, next_delivery days_ago >= -2}",
        &s,
        &c
    ));
    assert!(is_in(
        r#"subscription {state = canceled, reason = "price", canceled age <= 30d}"#,
        &s,
        &c
    ));
    assert!(!is_in(r#"subscription {state = canceled, reason = "too_much"}"#, &s, &c));
    // Tests apply to one subscription: the active one has no cancel reason.
    assert!(!is_in(r#"subscription {state = active, reason = "price"}"#, &s, &c));
    assert!(is_in("subscription {started age >= 90d, product = \"serum\"}", &s, &c));
    assert!(is_in("subscription {}", &s, &c));
    assert!(!is_in("subscription {}", &cust("n"), &c));
}

#[test]
fn segment_cart_abandonment_stops_after_an_order() {
    let mut c = cust("c");
    c.cart.push(SavedItem {
        product: "p".into(),
        added_at: t("2025-06-14T23:00:00Z"),
        price_at_add: 1000,
    });
    let now = ctx(); // 4 h after the cart change
    assert!(is_in("cart abandoned 3h", &c, &now));
    assert!(!is_in("cart abandoned 24h", &c, &now));
    assert!(!is_in("cart abandoned 3h items >= 2", &c, &now));
    let mut ordered = c.clone();
    ordered.orders.push(order("2025-06-15T01:00:00Z", 1000, &["p"]));
    assert!(!is_in("cart abandoned 3h", &ordered, &now));
    // An order before the cart change does not stop the reminder.
    let mut before = c.clone();
    before.orders.push(order("2025-06-14T20:00:00Z", 1000, &["p"]));
    assert!(is_in("cart abandoned 3h", &before, &now));
}

#[test]
fn segment_saved_item_product_changes() {
    let mut ctx = ctx();
    ctx.set_product(
        "back",
        ProductStatus { price: 1000, stock: 5, restocked_at: Some(t("2025-06-15T00:00:00Z")) },
    );
    ctx.set_product("cheap", ProductStatus { price: 800, stock: 9, restocked_at: None });
    ctx.set_product("last", ProductStatus { price: 1000, stock: 1, restocked_at: None });
    let mut c = cust("c");
    let item =
        |p: &str, at: &str| SavedItem { product: p.into(), added_at: t(at), price_at_add: 1000 };
    c.cart.push(item("last", "2025-06-01T00:00:00Z"));
    c.favourites.push(item("back", "2025-06-10T00:00:00Z"));
    c.favourites.push(item("cheap", "2025-06-10T00:00:00Z"));
    assert!(is_in("favourites restocked", &c, &ctx));
    assert!(!is_in("cart restocked", &c, &ctx));
    assert!(is_in("saved restocked [\"back\"]", &c, &ctx));
    assert!(is_in("favourites price_dropped", &c, &ctx));
    assert!(!is_in("favourites price_dropped [\"back\"]", &c, &ctx));
    assert!(is_in("cart last_one", &c, &ctx));
    // Restocked before the item was added does not count.
    let mut late = cust("l");
    late.favourites.push(item("back", "2025-06-15T01:00:00Z"));
    assert!(!is_in("favourites restocked", &late, &ctx));
}

#[test]
fn segment_message_frequency_and_engagement() {
    let mut c = cust("m");
    let ev = |at: &str, kind, campaign: Option<&str>| MessageEvent {
        at: t(at),
        kind,
        campaign: campaign.map(Into::into),
    };
    c.messages.push(ev("2025-06-14T00:00:00Z", MessageKind::Received, Some("summer")));
    c.messages.push(ev("2025-06-10T00:00:00Z", MessageKind::Received, Some("spring")));
    c.messages.push(ev("2025-06-10T01:00:00Z", MessageKind::Opened, Some("spring")));
    let x = ctx();
    assert!(!is_in("messages received last 7d count < 2", &c, &x));
    assert!(is_in("messages received last 3d count < 2", &c, &x));
    assert!(is_in("messages opened [\"spring\"] count >= 1", &c, &x));
    assert!(!is_in("messages clicked count >= 1", &c, &x));
}

#[test]
fn segment_references_lists_and_cycles() {
    let mut ctx = ctx();
    let linked = SegmentDefinition::parse("line linked").unwrap();
    ctx.define_segment("linked", linked).unwrap();
    ctx.set_list("opened-req-42", [CustomerId::new("a").unwrap()]);
    let mut a = cust("a");
    a.line.linked = true;
    assert!(is_in(r#"segment "linked" and list "opened-req-42""#, &a, &ctx));
    assert!(!is_in(r#"list "opened-req-42""#, &cust("b"), &ctx));
    let def = SegmentDefinition::parse(r#"list "nope""#).unwrap();
    assert_eq!(matches(&def, &a, &ctx), Err(SegmentError::UnknownList("nope".into())));
    // Cycles and unknown references are refused when defined.
    ctx.define_segment("x", SegmentDefinition::parse(r#"segment "linked""#).unwrap()).unwrap();
    let e = ctx
        .define_segment("linked", SegmentDefinition::parse(r#"segment "x""#).unwrap())
        .unwrap_err();
    assert!(matches!(e, SegmentError::Cycle(_)), "{e}");
    let e =
        ctx.define_segment("y", SegmentDefinition::parse(r#"segment "zzz""#).unwrap()).unwrap_err();
    assert_eq!(e, SegmentError::UnknownSegment("zzz".into()));
}

#[test]
fn segment_bucket_is_deterministic_salted_and_uniform() {
    // Pinned vector: SHA-256("exp-1:c-42") → first 7 bytes mod 10,000.
    let b = bucket("exp-1", "c-42");
    assert_eq!(b, bucket("exp-1", "c-42"));
    assert!(b < 10_000);
    let ids: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
    let half = ids.iter().filter(|i| bucket("exp-1", i) < 5_000).count();
    assert!((9_500..10_500).contains(&half), "{half}");
    let same =
        ids.iter().filter(|i| (bucket("exp-1", i) < 5_000) == (bucket("exp-2", i) < 5_000)).count();
    assert!((9_500..10_500).contains(&same), "salts must be independent: {same}");
    // Arms [0, 5000) and [5000, 10000) are disjoint and cover everyone.
    let c = cust("c-42");
    let a = is_in(r#"bucket "exp-1" in 0..5000"#, &c, &ctx());
    let z = is_in(r#"bucket "exp-1" in 5000..10000"#, &c, &ctx());
    assert!(a ^ z);
}

#[test]
fn segment_as_of_ignores_later_facts() {
    let mut c = cust("c");
    c.orders.push(order("2025-01-01T00:00:00Z", 1000, &["A"]));
    c.orders.push(order("2025-06-01T00:00:00Z", 1000, &["B"]));
    let seg = r#"bought {product = "A"} and never bought {product = "B"}"#;
    assert!(!is_in(seg, &c, &ctx()));
    assert!(is_in(seg, &c, &ctx().at(t("2025-03-01T00:00:00Z"))));
}

#[test]
fn segment_explain_tree_shows_values_and_comparisons() {
    let mut c = cust("c");
    c.line.linked = true;
    c.orders.push(order("2025-05-01T00:00:00Z", 42_000, &["1"]));
    let def = SegmentDefinition::parse(
        r#"line linked and orders sum >= 50000 and not bought {product = "2"}"#,
    )
    .unwrap();
    let e = evaluate(&def, &c, &ctx()).unwrap();
    assert!(!e.result);
    let x = &e.explain;
    assert_eq!((x.node.as_str(), x.result, x.children.len()), ("and", false, 3));
    assert!(x.children[0].result);
    assert_eq!(x.children[1].node, "orders sum >= 50000");
    assert_eq!(x.children[1].observed.as_deref(), Some("1 matching orders totalling ¥42000"));
    assert_eq!(x.children[1].comparison.as_deref(), Some("42000 >= 50000"));
    assert!(!x.children[1].result);
    assert_eq!(x.children[2].node, "not");
    assert!(x.children[2].result);
    let text = x.to_string();
    assert!(
        text.contains(
            "✗ orders sum >= 50000  [saw 1 matching orders totalling ¥42000; 42000 >= 50000]"
        ),
        "{text}"
    );
}

#[test]
fn segment_next_change_schedules_wakeups() {
    let mut c = cust("c");
    c.orders.push(order("2025-06-01T00:00:00Z", 1000, &["A"]));
    let x = ctx();
    // Dormancy: last order more than 30 days ago flips 30 days + 1 s after the order.
    let dormant = SegmentDefinition::parse("last_order age > 30d").unwrap();
    assert_eq!(next_change(&dormant, &c, &x).unwrap(), NextChange::At(t("2025-07-01T00:00:01Z")));
    // Static conditions never change by time alone.
    let st = SegmentDefinition::parse("bought {product = \"A\"}").unwrap();
    assert_eq!(next_change(&st, &c, &x).unwrap(), NextChange::Never);
    // F2 day 7 starts at local midnight seven days after the first order (06-12 09:00 JST),
    // and a first order whose day 7 has passed never matches again.
    let f2 = SegmentDefinition::parse("orders count = 1 and first_order days_ago = 7").unwrap();
    assert_eq!(next_change(&f2, &c, &x).unwrap(), NextChange::Never);
    let mut recent = cust("f2");
    recent.orders.push(order("2025-06-12T00:00:00Z", 1000, &["A"]));
    assert_eq!(next_change(&f2, &recent, &x).unwrap(), NextChange::At(t("2025-06-18T15:00:00Z")));
    // A future order enters at its own instant.
    let mut f = c.clone();
    f.orders.push(order("2025-06-20T00:00:00Z", 1000, &["B"]));
    let b = SegmentDefinition::parse("bought {product = \"B\"}").unwrap();
    assert_eq!(next_change(&b, &f, &x).unwrap(), NextChange::At(t("2025-06-20T00:00:00Z")));
    // The birthday month changes at Tokyo midnight on the 1st.
    let mut bd = cust("b");
    bd.birth_date = NaiveDate::from_ymd_opt(1990, 7, 3);
    let month = SegmentDefinition::parse("birthday month = current").unwrap();
    assert_eq!(next_change(&month, &bd, &x).unwrap(), NextChange::At(t("2025-06-30T15:00:00Z")));
    // evaluate() reports a safe recheck instant no later than the flip.
    let e = evaluate(&dormant, &c, &x).unwrap();
    assert!(e.recheck_at.unwrap() <= t("2025-07-01T00:00:01Z"));
}

mod props {
    use chrono::TimeDelta;
    use enishi::segment::{NextChange, SegmentDefinition, evaluate, matches, next_change};
    use proptest::prelude::*;

    use super::super::arb;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// `next_change` is exact: the answer flips at the instant it returns and at no sampled
        /// instant before; `Never` means no sampled future instant differs.
        #[test]
        fn segment_next_change_is_exact(
            c in arb::condition(false),
            cust in arb::customer("c0".into()),
            catalog in arb::catalog(),
            probes in proptest::collection::vec(1i64..500 * 86_400, 8),
        ) {
            let def = SegmentDefinition::new(c).unwrap();
            let ctx = arb::context(&catalog, std::slice::from_ref(&cust), None);
            let now = ctx.now();
            let base = matches(&def, &cust, &ctx).unwrap();
            let at = |s: chrono::DateTime<chrono::Utc>| matches(&def, &cust, &ctx.at(s)).unwrap();
            match next_change(&def, &cust, &ctx).unwrap() {
                NextChange::At(t) => {
                    prop_assert!(t > now);
                    prop_assert_ne!(at(t), base, "no flip at {}", t);
                    prop_assert_eq!(at(t - TimeDelta::seconds(1)), base, "flip before {}", t);
                    for p in probes {
                        let s = now + TimeDelta::seconds(p);
                        if s < t {
                            prop_assert_eq!(at(s), base, "flip at {} before {}", s, t);
                        }
                    }
                }
                NextChange::Never => {
                    for p in probes {
                        prop_assert_eq!(at(now + TimeDelta::seconds(p)), base);
                    }
                }
                NextChange::NotBefore(t) => {
                    for p in probes {
                        let s = now + TimeDelta::seconds(p);
                        if s < t {
                            prop_assert_eq!(at(s), base);
                        }
                    }
                }
                _ => {}
            }
            // The explained evaluation agrees with the short-circuit one.
            prop_assert_eq!(evaluate(&def, &cust, &ctx).unwrap().result, base);
        }
    }
}
