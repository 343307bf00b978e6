//! Tests of campaign scenarios: the exact send schedule of every ready-made scenario on a
//! simulated clock, exits, conditions, the cap and quiet hours, definition loading and
//! validation, and the idempotency of `tick` (property-tested).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use enishi::campaign::scenario::{
    CatalogueParams, Outcome, Priority, ScenarioDef, ScenarioError, ScenarioEvent, ScenarioInput,
    ScenarioSet, ScenarioState, SendPolicy, SkipReason, catalogue, catalogue_set,
};
use enishi::campaign::{Batch, DeliveryJournal, MemoryJournal, SendHistory};
use enishi::line::message::Message;
use enishi::segment::{
    AttrValue, CustomerFacts, Friendship, LineItemFact, LineStatus, OrderFact, OrderKind,
    ProductStatus, SavedItem, SubscriptionFact, SubscriptionState,
};
use enishi::{CampaignId, CustomerId, LineUserId};
use proptest::prelude::*;

fn jst(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    FixedOffset::east_opt(9 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn uid(n: u64) -> LineUserId {
    format!("U{n:032x}").parse().unwrap()
}

fn cid(s: &str) -> CustomerId {
    s.parse().unwrap()
}

/// A linked, following customer named `name`, with LINE user `n`.
fn customer(id: &str, n: u64) -> ScenarioInput {
    let mut facts = CustomerFacts::new(cid(id));
    facts.line = LineStatus {
        linked: true,
        linked_at: Some(jst(2020, 1, 1, 0, 0)),
        friendship: Friendship::Following,
    };
    facts.attributes.insert("name".into(), AttrValue::Text(format!("客{id}")));
    ScenarioInput::Customer { facts: Box::new(facts), line_user: Some(uid(n)) }
}

fn order(
    id: &str,
    at: DateTime<Utc>,
    amount: i64,
    products: &[&str],
    kind: OrderKind,
) -> OrderFact {
    OrderFact {
        id: id.into(),
        placed_at: at,
        amount,
        kind,
        items: products
            .iter()
            .map(|p| LineItemFact {
                product: (*p).into(),
                sku: None,
                category: None,
                quantity: 1,
                unit_price: amount / products.len().max(1) as i64,
            })
            .collect(),
    }
}

fn placed(c: &str, id: &str, at: DateTime<Utc>, amount: i64, products: &[&str]) -> ScenarioInput {
    ScenarioInput::OrderPlaced {
        customer: cid(c),
        order: order(id, at, amount, products, OrderKind::OneOff),
    }
}

fn item(product: &str, at: DateTime<Utc>, price: i64) -> SavedItem {
    SavedItem { product: product.into(), added_at: at, price_at_add: price }
}

fn cart(c: &str, at: DateTime<Utc>, products: &[&str]) -> ScenarioInput {
    ScenarioInput::CartUpdated {
        customer: cid(c),
        at,
        items: products.iter().map(|p| item(p, at, 1000)).collect(),
    }
}

fn sub(id: &str, state: SubscriptionState, started: DateTime<Utc>) -> SubscriptionFact {
    SubscriptionFact {
        id: id.into(),
        state,
        product: Some("serum".into()),
        started_at: started,
        canceled_at: None,
        cancel_reason: None,
        deliveries: 0,
        next_delivery_at: None,
    }
}

fn only(names: &[&str], params: &CatalogueParams) -> ScenarioSet {
    let defs: Vec<ScenarioDef> =
        catalogue(params).into_iter().filter(|d| names.contains(&d.name.as_str())).collect();
    assert_eq!(defs.len(), names.len(), "unknown scenario among {names:?}");
    let mut segs = BTreeMap::new();
    segs.insert("loyal".to_owned(), params.loyal_segment.clone());
    ScenarioSet::new(&segs, defs).unwrap()
}

/// One send as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Sent {
    scenario: String,
    step: String,
    customer: String,
    not_before: DateTime<Utc>,
    tick: DateTime<Utc>,
    text: String,
}

fn text_of(b: &Batch) -> String {
    match &b.messages[0] {
        Message::Text(t) => t.text.clone(),
        other => panic!("unexpected message {other:?}"),
    }
}

fn to_sent(b: &Batch, tick: DateTime<Utc>) -> Sent {
    let parts: Vec<&str> = b.id.as_str().split('/').collect();
    Sent {
        scenario: parts[0].into(),
        step: parts[1].into(),
        customer: b.recipients[0].customer.to_string(),
        not_before: b.not_before,
        tick,
        text: text_of(b),
    }
}

struct Run {
    sent: Vec<Sent>,
    events: Vec<ScenarioEvent>,
}

/// Runs `state` on a simulated clock: at each tick, applies the inputs due by then, ticks,
/// and enqueues the batches into a journal (which must accept every batch as new).
fn run(
    state: &mut ScenarioState,
    mut inputs: Vec<(DateTime<Utc>, ScenarioInput)>,
    ticks: impl IntoIterator<Item = DateTime<Utc>>,
) -> Run {
    inputs.sort_by_key(|(t, _)| *t);
    let mut inputs = inputs.into_iter().peekable();
    let journal = MemoryJournal::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    for now in ticks {
        while let Some((_, input)) = inputs.next_if(|(t, _)| *t <= now) {
            state.apply(input).unwrap();
        }
        let tick = state.tick(now);
        assert!(tick.invalid.is_empty());
        let new = rt.block_on(journal.enqueue(&tick.batches)).unwrap();
        assert_eq!(new as usize, tick.batches.len(), "a tick re-offered a planned batch");
        sent.extend(tick.batches.iter().map(|b| to_sent(b, now)));
        events.extend(tick.events);
    }
    Run { sent, events }
}

fn hourly(from: DateTime<Utc>, hours: i64) -> impl Iterator<Item = DateTime<Utc>> {
    (0..=hours).map(move |h| from + Duration::hours(h))
}

fn schedule(r: &Run) -> Vec<(String, String, String, DateTime<Utc>)> {
    let mut v: Vec<_> = r
        .sent
        .iter()
        .map(|s| (s.scenario.clone(), s.step.clone(), s.customer.clone(), s.not_before))
        .collect();
    v.sort();
    v
}

fn exits(r: &Run) -> Vec<(String, String, String)> {
    r.events
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Exited { reason } => {
                Some((e.scenario.clone(), e.customer.to_string(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn s(a: &str, b: &str, c: &str, t: DateTime<Utc>) -> (String, String, String, DateTime<Utc>) {
    (a.into(), b.into(), c.into(), t)
}

#[test]
fn scenario_cart_abandon_reminds_at_3h_and_24h_and_stops_after_a_purchase() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["cart_abandon"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 2, 9, 0);
    let inputs = vec![
        (start, customer("a", 1)),
        (start, customer("b", 2)),
        (start, customer("c", 3)),
        (jst(2026, 3, 2, 10, 0), cart("a", jst(2026, 3, 2, 10, 0), &["serum"])),
        (jst(2026, 3, 2, 10, 0), cart("b", jst(2026, 3, 2, 10, 0), &["serum"])),
        (jst(2026, 3, 2, 12, 0), placed("b", "o-b", jst(2026, 3, 2, 12, 0), 3000, &["serum"])),
        // c changes the cart at 11:30: the series restarts from then.
        (jst(2026, 3, 2, 10, 0), cart("c", jst(2026, 3, 2, 10, 0), &["serum"])),
        (jst(2026, 3, 2, 11, 30), cart("c", jst(2026, 3, 2, 11, 30), &["serum", "soap"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 72));
    assert_eq!(
        schedule(&r),
        vec![
            s("cart_abandon", "24h", "a", jst(2026, 3, 3, 10, 0)),
            s("cart_abandon", "24h", "c", jst(2026, 3, 3, 11, 30)),
            s("cart_abandon", "3h", "a", jst(2026, 3, 2, 13, 0)),
            s("cart_abandon", "3h", "c", jst(2026, 3, 2, 14, 30)),
        ]
    );
    // Sent at the first tick at or after the due time.
    let a3 = r.sent.iter().find(|x| x.customer == "a" && x.step == "3h").unwrap();
    assert_eq!(a3.tick, jst(2026, 3, 2, 13, 0));
    assert!(a3.text.contains("客a") && a3.text.contains("serum"), "{}", a3.text);
    let c3 = r.sent.iter().find(|x| x.customer == "c" && x.step == "3h").unwrap();
    assert!(c3.text.contains("2点"), "{}", c3.text);
    assert_eq!(exits(&r), vec![("cart_abandon".into(), "b".into(), "ordered".into())]);
}

#[test]
fn scenario_f2_series_sends_on_days_7_14_30_at_ten_and_stops_at_the_second_order() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["f2_series"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("a", 1)),
        (start, customer("b", 2)),
        (jst(2026, 3, 1, 15, 0), placed("a", "o1", jst(2026, 3, 1, 15, 0), 5000, &["serum"])),
        (jst(2026, 3, 1, 23, 0), placed("b", "o2", jst(2026, 3, 1, 23, 0), 5000, &["serum"])),
        (jst(2026, 3, 10, 8, 0), placed("b", "o3", jst(2026, 3, 10, 8, 0), 5000, &["soap"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 40));
    assert_eq!(
        schedule(&r),
        vec![
            s("f2_series", "d14", "a", jst(2026, 3, 15, 10, 0)),
            s("f2_series", "d30", "a", jst(2026, 3, 31, 10, 0)),
            s("f2_series", "d7", "a", jst(2026, 3, 8, 10, 0)),
            s("f2_series", "d7", "b", jst(2026, 3, 8, 10, 0)),
        ]
    );
    assert_eq!(exits(&r), vec![("f2_series".into(), "b".into(), "ordered".into())]);
    assert!(r.events.iter().any(|e| e.at == jst(2026, 3, 15, 10, 0)
        && matches!(e.outcome, Outcome::Exited { .. })));
}

#[test]
fn scenario_churn_point_before_the_third_delivery() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["subscription_churn_point"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let mut s1 = sub("s1", SubscriptionState::Active, jst(2026, 1, 20, 0, 0));
    s1.deliveries = 2;
    s1.next_delivery_at = Some(jst(2026, 3, 20, 12, 0));
    let mut s2 = sub("s2", SubscriptionState::Active, jst(2026, 1, 20, 0, 0));
    s2.deliveries = 2;
    s2.next_delivery_at = Some(jst(2026, 3, 20, 12, 0));
    // b cancels on the 16th: the "2 days before" step is not sent.
    let mut s2c = s2.clone();
    s2c.state = SubscriptionState::Canceled;
    s2c.canceled_at = Some(jst(2026, 3, 16, 9, 0));
    let up = |c: &str, s: SubscriptionFact| ScenarioInput::SubscriptionUpdated {
        customer: cid(c),
        subscription: s,
    };
    let inputs = vec![
        (start, customer("a", 1)),
        (start, customer("b", 2)),
        (start, up("a", s1)),
        (start, up("b", s2)),
        (jst(2026, 3, 16, 9, 0), up("b", s2c)),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 30));
    assert_eq!(
        schedule(&r),
        vec![
            s("subscription_churn_point", "before2d", "a", jst(2026, 3, 18, 10, 0)),
            s("subscription_churn_point", "before5d", "a", jst(2026, 3, 15, 10, 0)),
            s("subscription_churn_point", "before5d", "b", jst(2026, 3, 15, 10, 0)),
        ]
    );
    assert!(r.sent[0].text.contains("2026-03-20"), "{}", r.sent[0].text);
}

#[test]
fn scenario_restart_offer_varies_by_cancel_reason_and_exits_on_a_new_subscription() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["subscription_restart"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let canceled = |id: &str, reason: &str| {
        let mut s = sub(id, SubscriptionState::Canceled, jst(2025, 10, 1, 0, 0));
        s.canceled_at = Some(jst(2026, 3, 2, 18, 0));
        s.cancel_reason = Some(reason.into());
        s
    };
    let up = |c: &str, s: SubscriptionFact| ScenarioInput::SubscriptionUpdated {
        customer: cid(c),
        subscription: s,
    };
    let inputs = vec![
        (start, customer("a", 1)),
        (start, customer("b", 2)),
        (start, customer("c", 3)),
        (jst(2026, 3, 2, 18, 0), up("a", canceled("sa", "price"))),
        (jst(2026, 3, 2, 18, 0), up("b", canceled("sb", "too_much"))),
        (jst(2026, 3, 2, 18, 0), up("c", canceled("sc", "moved"))),
        (
            jst(2026, 3, 10, 0, 0),
            up("b", sub("sb2", SubscriptionState::Active, jst(2026, 3, 10, 0, 0))),
        ),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 40));
    let texts: BTreeMap<(String, String), String> =
        r.sent.iter().map(|x| ((x.customer.clone(), x.step.clone()), x.text.clone())).collect();
    assert!(texts[&("a".into(), "reason".into())].contains("半額"));
    assert!(texts[&("b".into(), "reason".into())].contains("60日"));
    assert!(texts[&("c".into(), "reason".into())].contains("いつでも再開"));
    assert_eq!(
        schedule(&r).into_iter().filter(|x| x.1 == "restart30d").collect::<Vec<_>>(),
        vec![
            s("subscription_restart", "restart30d", "a", jst(2026, 4, 1, 10, 0)),
            s("subscription_restart", "restart30d", "c", jst(2026, 4, 1, 10, 0)),
        ]
    );
    assert_eq!(exits(&r), vec![("subscription_restart".into(), "b".into(), "segment".into())]);
}

#[test]
fn scenario_subscription_thanks_at_each_milestone_month() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["subscription_thanks"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("a", 1)),
        (
            start,
            ScenarioInput::SubscriptionUpdated {
                customer: cid("a"),
                subscription: sub("s1", SubscriptionState::Active, jst(2025, 12, 31, 20, 0)),
            },
        ),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 130));
    // Started Dec 31 (JST): 3 months later is Mar 31; 6 months is Jun 30 (month end clamps).
    assert_eq!(
        schedule(&r),
        vec![
            s("subscription_thanks", "thanks", "a", jst(2026, 3, 31, 10, 0)),
            s("subscription_thanks", "thanks", "a", jst(2026, 6, 30, 10, 0)),
        ]
    );
    assert!(r.sent[1].text.contains("6か月"), "{}", r.sent[1].text);
}

#[test]
fn scenario_birthday_month_coupon_once_a_year() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["birthday_month"], &p), jst(2026, 1, 1, 0, 0));
    let start = jst(2026, 1, 1, 0, 0);
    let born = |id: &str, n: u64, date: NaiveDate| {
        let ScenarioInput::Customer { mut facts, line_user } = customer(id, n) else {
            unreachable!()
        };
        facts.birth_date = Some(date);
        ScenarioInput::Customer { facts, line_user }
    };
    let inputs = vec![
        (start, born("feb29", 1, NaiveDate::from_ymd_opt(2000, 2, 29).unwrap())),
        (start, born("jan", 2, NaiveDate::from_ymd_opt(1990, 1, 15).unwrap())),
        (start, customer("none", 3)),
    ];
    // Ticks every 6 hours for 14 months.
    let ticks = (0..(24 * 425 / 6)).map(|i| start + Duration::hours(6 * i));
    let r = run(&mut st, inputs, ticks);
    assert_eq!(
        schedule(&r),
        vec![
            // Jan 1 at 10:00 is reached by the 12:00 tick (6-hourly): not_before stays 10:00.
            s("birthday_month", "coupon", "feb29", jst(2026, 2, 1, 10, 0)),
            s("birthday_month", "coupon", "feb29", jst(2027, 2, 1, 10, 0)),
            s("birthday_month", "coupon", "jan", jst(2026, 1, 1, 10, 0)),
            s("birthday_month", "coupon", "jan", jst(2027, 1, 1, 10, 0)),
        ]
    );
    assert!(
        r.sent.iter().all(|x| x.tick >= x.not_before && x.tick - x.not_before < Duration::hours(6))
    );
}

#[test]
fn scenario_next_rank_says_how_many_yen_are_missing() {
    let p = CatalogueParams::default(); // silver 30,000, gold 100,000, within 5,000
    let mut st = ScenarioState::new(only(&["next_rank"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("close", 1)),
        (start, customer("far", 2)),
        (jst(2026, 3, 2, 9, 0), placed("close", "o1", jst(2026, 3, 2, 9, 0), 12_000, &["x"])),
        (jst(2026, 3, 3, 9, 0), placed("close", "o2", jst(2026, 3, 3, 9, 0), 15_000, &["x"])),
        (jst(2026, 3, 2, 9, 0), placed("far", "o3", jst(2026, 3, 2, 9, 0), 10_000, &["x"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 6));
    // Only the latest order counts (o1's step was replaced by o2's before it fell due).
    assert_eq!(schedule(&r), vec![s("next_rank", "d1", "close", jst(2026, 3, 4, 10, 0))]);
    assert!(r.sent[0].text.contains("シルバーランクまであと3000円"), "{}", r.sent[0].text);
    assert!(r.events.iter().any(|e| e.customer.as_str() == "far"
        && e.outcome == Outcome::Skipped { reason: SkipReason::Condition }));
}

#[test]
fn scenario_restock_price_drop_and_last_one_reach_only_savers() {
    let p = CatalogueParams::default();
    let mut st =
        ScenarioState::new(only(&["restock", "price_drop", "last_one"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let product = |at: DateTime<Utc>, price: i64, stock: i64| ScenarioInput::Product {
        product: "bag".into(),
        at,
        status: ProductStatus { price, stock, restocked_at: None },
    };
    let t0 = jst(2026, 3, 1, 8, 0);
    let inputs = vec![
        (start, customer("carter", 1)),
        (start, customer("fav", 2)),
        (start, customer("other", 3)),
        (start, product(start, 10_000, 0)),
        (t0, cart("carter", t0, &["bag"])),
        (
            t0,
            ScenarioInput::FavouritesUpdated {
                customer: cid("fav"),
                items: vec![item("bag", t0, 10_000)],
            },
        ),
        (t0, cart("other", t0, &["shoe"])),
        (jst(2026, 3, 2, 14, 0), product(jst(2026, 3, 2, 14, 0), 10_000, 5)), // restock
        (jst(2026, 3, 3, 14, 0), product(jst(2026, 3, 3, 14, 0), 8_000, 5)),  // price drop
        (jst(2026, 3, 4, 14, 0), product(jst(2026, 3, 4, 14, 0), 8_000, 1)),  // last one
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 5));
    assert_eq!(
        schedule(&r),
        vec![
            s("last_one", "now", "carter", jst(2026, 3, 4, 14, 0)),
            // carter's cart price_at_add is 1,000 (cheaper than 8,000): no price drop for them.
            s("price_drop", "now", "fav", jst(2026, 3, 3, 14, 0)),
            s("restock", "now", "carter", jst(2026, 3, 2, 14, 0)),
            s("restock", "now", "fav", jst(2026, 3, 2, 14, 0)),
        ]
    );
    let drop = r.sent.iter().find(|x| x.scenario == "price_drop").unwrap();
    assert!(drop.text.contains("10000円から8000円"), "{}", drop.text);
}

#[test]
fn scenario_trial_to_main_cross_sell_and_upsell_follow_their_conditions() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(
        only(&["trial_to_main", "cross_sell", "subscription_upsell"], &p),
        jst(2026, 3, 1, 0, 0),
    );
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("t", 1)),
        (start, customer("tm", 2)),
        (start, customer("ab", 3)),
        (start, customer("rep", 4)),
        (jst(2026, 3, 1, 12, 0), placed("t", "o1", jst(2026, 3, 1, 12, 0), 500, &["trial"])),
        (jst(2026, 3, 1, 12, 0), placed("tm", "o2", jst(2026, 3, 1, 12, 0), 500, &["trial"])),
        (jst(2026, 3, 8, 12, 0), placed("tm", "o3", jst(2026, 3, 8, 12, 0), 5000, &["main"])),
        (jst(2026, 3, 1, 12, 0), placed("ab", "o4", jst(2026, 3, 1, 12, 0), 3000, &["A"])),
        (start, placed("rep", "o5", jst(2026, 2, 1, 12, 0), 3000, &["x"])),
        (jst(2026, 3, 5, 12, 0), placed("rep", "o6", jst(2026, 3, 5, 12, 0), 3000, &["x"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 20));
    let got = schedule(&r);
    let want = vec![
        s("cross_sell", "d3", "ab", jst(2026, 3, 4, 10, 0)),
        // Two one-off orders in 180 days; ab and t bought once: their step is skipped.
        s("subscription_upsell", "d2", "rep", jst(2026, 3, 7, 10, 0)),
        s("subscription_upsell", "d2", "tm", jst(2026, 3, 10, 10, 0)),
        s("trial_to_main", "d12", "t", jst(2026, 3, 13, 10, 0)),
        s("trial_to_main", "d5", "t", jst(2026, 3, 6, 10, 0)),
        s("trial_to_main", "d5", "tm", jst(2026, 3, 6, 10, 0)),
    ];
    assert_eq!(got, want);
    assert_eq!(exits(&r), vec![("trial_to_main".into(), "tm".into(), "ordered".into())]);
}

#[test]
fn scenario_link_invitation_stops_at_linking_and_the_thanks_comes_once() {
    let p = CatalogueParams::default();
    let mut st =
        ScenarioState::new(only(&["link_invitation", "link_thanks"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let mut unlinked = CustomerFacts::new(cid("k"));
    unlinked.line.friendship = Friendship::Unknown;
    let follow = |n: u64, at| ScenarioInput::Followed { line_user: uid(n), at };
    let inputs = vec![
        (start, ScenarioInput::Customer { facts: Box::new(unlinked), line_user: None }),
        (jst(2026, 3, 1, 9, 0), follow(10, jst(2026, 3, 1, 9, 0))),
        (jst(2026, 3, 1, 9, 0), follow(11, jst(2026, 3, 1, 9, 0))),
        (
            jst(2026, 3, 2, 20, 0),
            ScenarioInput::Linked {
                customer: cid("k"),
                line_user: uid(10),
                at: jst(2026, 3, 2, 20, 0),
            },
        ),
        // An unlink and relink later does not thank again (`first` occurrence).
        (
            jst(2026, 3, 5, 20, 0),
            ScenarioInput::Linked {
                customer: cid("k"),
                line_user: uid(10),
                at: jst(2026, 3, 5, 20, 0),
            },
        ),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 8));
    let f10 = format!("line:{}", uid(10));
    let f11 = format!("line:{}", uid(11));
    assert_eq!(
        schedule(&r),
        vec![
            s("link_invitation", "d3", &f11, jst(2026, 3, 4, 10, 0)),
            s("link_invitation", "h1", &f10, jst(2026, 3, 1, 10, 0)),
            s("link_invitation", "h1", &f11, jst(2026, 3, 1, 10, 0)),
            s("link_thanks", "now", "k", jst(2026, 3, 2, 20, 0)),
        ]
    );
    assert_eq!(exits(&r), vec![("link_invitation".into(), f10, "linked".into())]);
}

#[test]
fn scenario_welcome_and_win_back_use_exact_entry_times() {
    let p = CatalogueParams { dormant_days: 30, ..CatalogueParams::default() };
    let mut st = ScenarioState::new(only(&["welcome", "win_back"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let ScenarioInput::Customer { mut facts, line_user } = customer("d", 1) else { unreachable!() };
    facts.registered_at = Some(jst(2026, 3, 1, 15, 0));
    facts.orders.push(order("o1", jst(2026, 2, 10, 22, 0), 3000, &["x"], OrderKind::OneOff));
    let inputs = vec![
        (start, ScenarioInput::Customer { facts, line_user }),
        (start, customer("back", 2)),
        (start, placed("back", "o2", jst(2026, 2, 10, 22, 0), 3000, &["x"])),
        // "back" orders again two hours before turning dormant: it never enters.
        (jst(2026, 3, 12, 20, 0), placed("back", "o3", jst(2026, 3, 12, 20, 0), 3000, &["x"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 20));
    // Last order Feb 10 22:00 JST + 30 d = Mar 12 22:00: entered then (predicted by
    // next_change, not when a tick noticed); the coupon step is due at 10:00 on that day,
    // which already passed, so it falls due at once at the entry.
    assert_eq!(
        schedule(&r),
        vec![
            s("welcome", "d1", "d", jst(2026, 3, 2, 10, 0)),
            s("win_back", "coupon", "d", jst(2026, 3, 12, 10, 0)),
        ]
    );
    let wb = r.sent.iter().find(|x| x.scenario == "win_back").unwrap();
    // `age > 30d` is strict: the customer enters one second after 22:00, so the 23:00 tick.
    assert_eq!(wb.tick, jst(2026, 3, 12, 23, 0));
    let entered = r.events.iter().find(|e| e.scenario == "win_back").unwrap();
    assert_eq!(entered.occurrence, "20260312");
}

/// Quiet hours 21:00–09:00 JST and at most 1 message per 24 h.
#[derive(Debug)]
struct TestPolicy;

impl SendPolicy for TestPolicy {
    fn earliest(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        let tz = FixedOffset::east_opt(9 * 3600).unwrap();
        let local = due.with_timezone(&tz);
        let h = chrono::Timelike::hour(&local);
        let nine = |d: chrono::NaiveDate| {
            d.and_hms_opt(9, 0, 0).unwrap().and_local_timezone(tz).unwrap().with_timezone(&Utc)
        };
        if h >= 21 {
            nine(local.date_naive() + Duration::days(1))
        } else if h < 9 {
            nine(local.date_naive())
        } else {
            due
        }
    }

    fn permits(&self, history: &SendHistory, user: &LineUserId, at: DateTime<Utc>) -> bool {
        !history.times(user).iter().any(|t| *t > at - Duration::hours(24) && *t <= at)
    }
}

#[test]
fn scenario_quiet_hours_move_steps_and_the_cap_defers_by_priority() {
    let p = CatalogueParams::default();
    let set = only(&["cart_abandon", "restock", "subscription_upsell", "f2_series"], &p);
    let mut st = ScenarioState::new(set, jst(2026, 3, 1, 0, 0)).with_policy(TestPolicy);
    let start = jst(2026, 3, 1, 0, 0);
    let t = jst(2026, 3, 1, 19, 0);
    let inputs = vec![
        (start, customer("a", 1)),
        (
            start,
            ScenarioInput::Product {
                product: "bag".into(),
                at: start,
                status: ProductStatus { price: 1000, stock: 0, restocked_at: None },
            },
        ),
        // Cart at 19:00: the 3 h reminder (22:00) is quiet → 09:00 next day.
        (t, cart("a", t, &["bag"])),
        // One-off orders before: the upsell (low) and f2 are set up to collide with the cap.
        (start, placed("a", "o1", jst(2026, 2, 20, 12, 0), 1000, &["x"])),
        (start, placed("a", "o2", jst(2026, 2, 28, 11, 0), 1000, &["x"])),
        // Restock (high) on Mar 2 at 12:00 falls inside the cap of the 09:00 reminder.
        (
            jst(2026, 3, 2, 12, 0),
            ScenarioInput::Product {
                product: "bag".into(),
                at: jst(2026, 3, 2, 12, 0),
                status: ProductStatus { price: 1000, stock: 3, restocked_at: None },
            },
        ),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 4));
    let got: Vec<_> = r
        .sent
        .iter()
        .map(|x| (x.scenario.as_str(), x.step.as_str(), x.not_before, x.tick))
        .collect();
    assert_eq!(
        got,
        vec![
            // o2's upsell (due Mar 2 10:00, low) never got a slot: see below.
            ("cart_abandon", "3h", jst(2026, 3, 2, 9, 0), jst(2026, 3, 2, 9, 0)),
            // The restock (high) waited for the cap: 24 h after the 09:00 send.
            ("restock", "now", jst(2026, 3, 2, 12, 0), jst(2026, 3, 3, 9, 0)),
            // The 24 h reminder (Mar 2 19:00, high) then waits for the next free slot.
            ("cart_abandon", "24h", jst(2026, 3, 2, 19, 0), jst(2026, 3, 4, 9, 0)),
        ]
    );
    assert!(r.events.iter().any(|e| e.scenario == "subscription_upsell"
        && e.outcome == Outcome::Skipped { reason: SkipReason::Capped }));
}

#[test]
fn scenario_campaign_delivery_policy_applies_quiet_hours_and_holdout() {
    use enishi::campaign::{DeliveryPolicy, Holdout, QuietHours};
    let p = CatalogueParams::default();
    let start = jst(2026, 3, 1, 0, 0);
    let quiet = QuietHours::new(
        chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
    );
    let t = jst(2026, 3, 1, 19, 0);
    let inputs = || vec![(start, customer("a", 1)), (t, cart("a", t, &["bag"]))];
    let mut st = ScenarioState::new(only(&["cart_abandon"], &p), start)
        .with_policy(DeliveryPolicy::new().with_quiet_hours(quiet));
    let r = run(&mut st, inputs(), hourly(start, 48));
    assert_eq!(
        schedule(&r),
        vec![
            s("cart_abandon", "24h", "a", jst(2026, 3, 2, 19, 0)),
            s("cart_abandon", "3h", "a", jst(2026, 3, 2, 9, 0)),
        ]
    );
    let mut held = ScenarioState::new(only(&["cart_abandon"], &p), start)
        .with_policy(DeliveryPolicy::new().with_holdout(Holdout::percent("h", 100)));
    let r = run(&mut held, inputs(), hourly(start, 48));
    assert!(r.sent.is_empty());
    let skipped = r
        .events
        .iter()
        .filter(|e| e.outcome == Outcome::Skipped { reason: SkipReason::Holdout })
        .count();
    assert_eq!(skipped, 2);
}

#[test]
fn scenario_a_late_tick_sends_each_due_step_once() {
    let p = CatalogueParams::default();
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = || {
        vec![
            (start, customer("a", 1)),
            (start, cart("a", jst(2026, 3, 1, 9, 0), &["bag"])),
            (start, placed("a", "o1", jst(2026, 2, 28, 12, 0), 3000, &["x"])),
        ]
    };
    let set = || only(&["cart_abandon", "f2_series"], &p);
    let mut hourly_state = ScenarioState::new(set(), start);
    let reference = run(&mut hourly_state, inputs(), hourly(start, 24 * 3));
    // One tick 40 hours late, then a duplicate, then the end.
    let mut late_state = ScenarioState::new(set(), start);
    let late = run(
        &mut late_state,
        inputs(),
        [
            start,
            start + Duration::hours(40),
            start + Duration::hours(40),
            start + Duration::hours(72),
        ],
    );
    assert_eq!(schedule(&late), schedule(&reference));
    assert_eq!(schedule(&late).len(), 2, "{:?}", schedule(&late));
    assert!(late.sent.iter().all(|x| x.tick == start + Duration::hours(40)));
}

#[test]
fn scenario_definitions_load_from_json_and_toml() {
    let json = r#"{
      "segments": {"loyal": "orders last 365d sum >= 50000"},
      "scenario": [{
        "name": "vip_cart",
        "trigger": {"type": "cart_abandoned"},
        "audience": "segment \"loyal\"",
        "priority": "high",
        "steps": [{"name": "2h", "delay": "2h", "message": "{{ name }}さん、{{ cart_items }}"}],
        "exits": [{"type": "ordered"}]
      }]
    }"#;
    let set = ScenarioSet::from_json(json).unwrap();
    let sc = set.get("vip_cart").unwrap();
    assert_eq!(sc.campaign(), &CampaignId::new("scenario.vip_cart").unwrap());
    assert_eq!(sc.step_names(), vec!["2h"]);
    assert_eq!(sc.definition().priority, Priority::High);

    // The whole catalogue survives a TOML round trip and validates.
    let params = CatalogueParams {
        early_access_at: vec![
            FixedOffset::east_opt(9 * 3600)
                .unwrap()
                .with_ymd_and_hms(2026, 4, 1, 10, 0, 0)
                .unwrap(),
        ],
        ..CatalogueParams::default()
    };
    let file = enishi::campaign::scenario::ScenarioFile {
        segments: [("loyal".to_owned(), params.loyal_segment.clone())].into(),
        scenario: catalogue(&params),
    };
    let text = toml::to_string(&file).unwrap();
    let back = ScenarioSet::from_toml(&text).unwrap();
    assert_eq!(back.scenarios().len(), catalogue(&params).len());
    for (a, b) in back.scenarios().iter().zip(catalogue(&params)) {
        assert_eq!(a.definition(), &b);
    }
    let json = serde_json::to_string(&file).unwrap();
    assert_eq!(ScenarioSet::from_json(&json).unwrap().scenarios().len(), file.scenario.len());
}

fn load_err(toml_steps: &str) -> String {
    let text = format!(
        "[segments]\nloyal = \"orders count >= 3\"\n\n[[scenario]]\nname = \"x\"\n{toml_steps}"
    );
    match ScenarioSet::from_toml(&text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => crate::report::chain_text(&e),
    }
}

#[test]
fn scenario_validation_errors_are_clear() {
    let e = load_err(
        "trigger = { type = \"cart_abandoned\" }\naudience = 'segment \"vip\"'\n\
         steps = [{ name = \"a\", delay = \"3h\", message = \"hi\" }]",
    );
    assert_eq!(e, "scenario \"x\", audience: unknown segment \"vip\" (known: loyal)",);
    let e = load_err(
        "trigger = { type = \"cart_abandoned\" }\nsteps = [{ name = \"a\", delay = \"3 hours\", message = \"hi\" }]",
    );
    assert!(e.contains("delay") && e.contains("3 hours") && e.contains("d, h, m or s"), "{e}");
    let e = load_err(
        "trigger = { type = \"cart_abandoned\" }\nsteps = [{ name = \"a\", delay = \"3h\", at = \"10:00\", message = \"hi\" }]",
    );
    assert_eq!(
        e,
        "scenario \"x\", step \"a\": bad delay \"3h\": with a time of day (`at`) the delay must be whole days"
    );
    let e = load_err(
        "trigger = { type = \"birthday_month\" }\nsteps = [{ name = \"a\", delay = \"0d\", message = \"{{ name }}さん {{ cart_items }}\" }]",
    );
    assert_eq!(
        e,
        "scenario \"x\", step \"a\": template variable `cart_items` is missing: trigger \
         birthday_month provides customer_id, name, month"
    );
    let e = load_err(
        "trigger = { type = \"cart_abandoned\" }\nsteps = [{ name = \"a\", delay = \"3h\", message = \"hi\", condition = \"orders count >=\" }]",
    );
    assert!(e.starts_with("scenario \"x\", step \"a\" condition: "), "{e}");
    let e = load_err("trigger = { type = \"cart_abandoned\" }\nsteps = []");
    assert_eq!(e, "scenario \"x\" has no steps");
    let e = load_err(
        "trigger = { type = \"cart_abandoned\" }\nsteps = [{ name = \"a/b\", delay = \"3h\", message = \"hi\" }]",
    );
    assert!(e.contains("bad name \"a/b\""), "{e}");
    let e = load_err("trigger = { type = \"lunar_eclipse\" }\nsteps = []");
    assert!(e.contains("lunar_eclipse"), "{e}");
    // JSON errors carry the field path.
    let err = ScenarioSet::from_json(r#"{"scenario": [{"name": "x", "trigger": {"type": "cart_abandoned"}, "steps": [{"name": "a", "delay": "soon", "message": "m"}]}]}"#)
        .unwrap_err();
    assert!(matches!(err, ScenarioError::Json(_)));
    let chain = crate::report::chain_text(&err);
    assert!(chain.contains("scenario[0].steps[0].delay"), "{chain}");
}

#[test]
fn scenario_catalogue_covers_every_use_case_it_claims() {
    let params = CatalogueParams {
        early_access_at: vec![
            FixedOffset::east_opt(9 * 3600)
                .unwrap()
                .with_ymd_and_hms(2026, 4, 1, 10, 0, 0)
                .unwrap(),
        ],
        ..CatalogueParams::default()
    };
    let set = catalogue_set(&params).unwrap();
    let ucs: BTreeSet<String> =
        set.scenarios().iter().flat_map(|s| s.definition().use_cases.clone()).collect();
    for uc in [
        "UC-02", "UC-04", "UC-06", "UC-08", "UC-10", "UC-11", "UC-12", "UC-13", "UC-14", "UC-15",
        "UC-16", "UC-19", "UC-20", "UC-21", "UC-23", "UC-24", "UC-25", "UC-26", "UC-27", "UC-28",
        "UC-29", "UC-30", "UC-31", "UC-32",
    ] {
        assert!(ucs.contains(uc), "{uc} has no scenario");
    }
    assert_eq!(set.scenarios().len(), 18);
}

#[test]
fn scenario_docs_show_every_ready_made_scenario_and_a_valid_file() {
    let docs = include_str!("../../../docs/scenarios.md");
    let params = CatalogueParams {
        early_access_at: vec![
            FixedOffset::east_opt(9 * 3600)
                .unwrap()
                .with_ymd_and_hms(2026, 4, 1, 10, 0, 0)
                .unwrap(),
        ],
        ..CatalogueParams::default()
    };
    for def in catalogue(&params) {
        let row = format!("| `{}` | {} |", def.name, def.use_cases.join(", "));
        assert!(docs.contains(&row), "docs/scenarios.md lacks the row {row}");
    }
    let start = docs.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + docs[start..].find("```").unwrap();
    let set = ScenarioSet::from_toml(&docs[start..end]).unwrap();
    assert_eq!(set.get("vip_cart").unwrap().step_names(), vec!["2h", "d1"]);
}

#[test]
fn scenario_early_access_goes_to_loyal_customers_only() {
    let at =
        FixedOffset::east_opt(9 * 3600).unwrap().with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap();
    let p = CatalogueParams { early_access_at: vec![at], ..CatalogueParams::default() };
    let mut st = ScenarioState::new(only(&["early_access"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("vip", 1)),
        (start, customer("new", 2)),
        (start, placed("vip", "o1", jst(2026, 1, 5, 10, 0), 60_000, &["x"])),
        (start, placed("new", "o2", jst(2026, 1, 5, 10, 0), 6_000, &["x"])),
    ];
    let r = run(&mut st, inputs, hourly(start, 24 * 6));
    assert_eq!(schedule(&r), vec![s("early_access", "now", "vip", jst(2026, 3, 5, 10, 0))]);
    assert!(r.sent[0].text.contains("2026-03-05"));
}

#[test]
fn scenario_blocked_or_unlinked_customers_get_nothing() {
    let p = CatalogueParams::default();
    let mut st = ScenarioState::new(only(&["cart_abandon"], &p), jst(2026, 3, 1, 0, 0));
    let start = jst(2026, 3, 1, 0, 0);
    let inputs = vec![
        (start, customer("a", 1)),
        (
            start,
            ScenarioInput::Customer {
                facts: Box::new(CustomerFacts::new(cid("u"))),
                line_user: None,
            },
        ),
        (start, cart("a", jst(2026, 3, 1, 9, 0), &["bag"])),
        (start, cart("u", jst(2026, 3, 1, 9, 0), &["bag"])),
        (jst(2026, 3, 1, 10, 0), ScenarioInput::Unfollowed { line_user: uid(1) }),
    ];
    let r = run(&mut st, inputs, hourly(start, 48));
    assert!(r.sent.is_empty(), "{:?}", r.sent);
}

// ----- idempotency, property-tested -----

#[derive(Debug, Clone)]
struct World {
    /// (customer index, minute of the cart change)
    carts: Vec<(u8, u32)>,
    /// (customer index, minute of the order)
    orders: Vec<(u8, u32)>,
}

const CUSTOMERS: u8 = 5;
const HORIZON_MIN: u32 = 12 * 24 * 60;

/// With `exits`, carts and orders anywhere. Without, at most one first order per customer on
/// day 1 and at most one cart per customer afterwards, so nothing ends or replaces a series.
fn world(exits: bool) -> impl Strategy<Value = World> {
    const DAY: u32 = 24 * 60;
    let carts = prop::collection::vec((0..CUSTOMERS, DAY..HORIZON_MIN - 3 * DAY), 0..8);
    let orders =
        prop::collection::vec((0..CUSTOMERS, 0..if exits { HORIZON_MIN } else { DAY }), 0..6);
    (carts, orders).prop_map(move |(mut carts, mut orders)| {
        if !exits {
            let mut seen = HashSet::new();
            carts.retain(|(c, _)| seen.insert(*c));
            let mut seen = HashSet::new();
            orders.retain(|(c, _)| seen.insert(*c));
        }
        World { carts, orders }
    })
}

fn world_inputs(w: &World, start: DateTime<Utc>) -> Vec<(DateTime<Utc>, ScenarioInput)> {
    let mut v: Vec<_> =
        (0..CUSTOMERS).map(|c| (start, customer(&format!("c{c}"), u64::from(c)))).collect();
    for (c, m) in &w.carts {
        let at = start + Duration::minutes(i64::from(*m));
        v.push((at, cart(&format!("c{c}"), at, &["bag"])));
    }
    for (i, (c, m)) in w.orders.iter().enumerate() {
        let at = start + Duration::minutes(i64::from(*m));
        v.push((at, placed(&format!("c{c}"), &format!("o{i}"), at, 3000, &["bag"])));
    }
    v
}

/// Tick times from gaps in minutes (0 = a duplicate tick; at most 2 days), cycled to the end.
fn ticks_from(gaps: &[u32], start: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let end = start + Duration::minutes(i64::from(HORIZON_MIN));
    let progress = gaps.iter().any(|g| *g > 0);
    let mut t = start;
    let mut v = vec![t];
    for g in gaps.iter().cycle().take(20_000) {
        t += Duration::minutes(i64::from(if progress { *g } else { 60 }));
        if t > end {
            break;
        }
        v.push(t);
    }
    v.push(end);
    v
}

/// One worker's batches with the tick that planned them.
type Planned = Vec<(DateTime<Utc>, Batch)>;

/// Runs two workers with their own states over the same inputs and tick times of their own,
/// both enqueueing into one journal. Returns each worker's batches and the journal's IDs.
fn two_workers(w: &World, gaps: [&[u32]; 2]) -> (Vec<Planned>, Vec<String>) {
    let start = jst(2026, 3, 1, 0, 0);
    let p = CatalogueParams::default();
    let journal = MemoryJournal::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut states: Vec<ScenarioState> = (0..2)
        .map(|_| ScenarioState::new(only(&["cart_abandon", "f2_series"], &p), start))
        .collect();
    let mut inputs: Vec<Vec<_>> = (0..2).map(|_| world_inputs(w, start)).collect();
    for i in &mut inputs {
        i.sort_by_key(|(t, _)| *t);
        i.reverse();
    }
    let mut events: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for (k, g) in gaps.iter().enumerate() {
        events.extend(ticks_from(g, start).into_iter().map(|t| (t, k)));
    }
    events.sort();
    let mut out = vec![Vec::new(), Vec::new()];
    for (now, k) in events {
        while inputs[k].last().is_some_and(|(t, _)| *t <= now) {
            let (_, input) = inputs[k].pop().unwrap();
            states[k].apply(input).unwrap();
        }
        let tick = states[k].tick(now);
        rt.block_on(journal.enqueue(&tick.batches)).expect("no conflicting batch");
        out[k].extend(tick.batches.into_iter().map(|b| (now, b)));
    }
    let mut ids = Vec::new();
    for c in ["cart_abandon", "f2_series"] {
        let recs = rt
            .block_on(journal.records(&CampaignId::new(format!("scenario.{c}")).unwrap()))
            .unwrap();
        ids.extend(recs.into_iter().map(|r| r.batch.id.to_string()));
    }
    ids.sort();
    (out, ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Without purchases, conditions never change after a trigger, so any tick schedule
    /// (extra, duplicate, up to 2 days late, two workers) plans exactly the batches an hourly
    /// single worker plans, each once, with the same `not_before`.
    #[test]
    fn scenario_tick_is_idempotent_under_any_schedule(
        w in world(false),
        g1 in prop::collection::vec(prop_oneof![Just(0u32), 1u32..180, 600u32..2880], 1..60),
        g2 in prop::collection::vec(prop_oneof![Just(0u32), 1u32..180, 600u32..2880], 1..60),
    ) {
        let hourly_gaps = vec![60u32; (HORIZON_MIN / 60) as usize];
        let (_, reference) = two_workers(&w, [&hourly_gaps, &hourly_gaps]);
        let (per_worker, ids) = two_workers(&w, [&g1, &g2]);
        prop_assert_eq!(&ids, &reference);
        for batches in &per_worker {
            let mut seen = HashSet::new();
            for (now, b) in batches {
                prop_assert!(seen.insert(b.id.to_string()), "worker planned {} twice", b.id);
                prop_assert!(*now >= b.not_before);
            }
        }
        // Both workers planned the same not_before for a batch.
        let mut nb: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for (_, b) in per_worker.iter().flatten() {
            let prev = nb.insert(b.id.to_string(), b.not_before);
            prop_assert!(prev.is_none_or(|p| p == b.not_before));
        }
    }

    /// With purchases: still never twice per worker, and no cart reminder is planned by a tick
    /// that can see an order placed after the cart change.
    #[test]
    fn scenario_tick_never_plans_twice_or_after_an_exit(
        w in world(true),
        g1 in prop::collection::vec(prop_oneof![Just(0u32), 1u32..180, 600u32..2880], 1..60),
        g2 in prop::collection::vec(prop_oneof![Just(0u32), 1u32..180, 600u32..2880], 1..60),
    ) {
        let start = jst(2026, 3, 1, 0, 0);
        let (per_worker, ids) = two_workers(&w, [&g1, &g2]);
        let unique: BTreeSet<&String> = ids.iter().collect();
        prop_assert_eq!(unique.len(), ids.len());
        for batches in &per_worker {
            let mut seen = HashSet::new();
            for (now, b) in batches {
                prop_assert!(seen.insert(b.id.to_string()));
                let parts: Vec<&str> = b.id.as_str().split('/').collect();
                if parts[0] == "cart_abandon" {
                    let anchor = DateTime::from_timestamp(parts[3].parse().unwrap(), 0).unwrap();
                    let customer: u8 = parts[2][1..].parse().unwrap();
                    let bought = w.orders.iter().any(|(c, m)| {
                        let at = start + Duration::minutes(i64::from(*m));
                        *c == customer && at > anchor && at <= *now
                    });
                    prop_assert!(!bought, "{} planned at {} after an order", b.id, now);
                }
            }
        }
    }
}
