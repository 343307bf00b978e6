//! The columnar engine agrees with the reference evaluator, before and after incremental
//! updates, through every evaluation path.

use chrono::TimeDelta;
use enishi::segment::{
    Condition, Context, CustomerFacts, Engine, NextChange, Order, SavedItem, SegmentDefinition,
    matches, next_change,
};
use proptest::prelude::*;

use super::arb;

#[derive(Debug, Clone)]
enum Step {
    Append(usize, Order),
    Advance(i64),
    Cart(usize, Vec<SavedItem>),
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..n, arb::order(99)).prop_map(|(i, o)| Step::Append(i, o)),
        prop_oneof![1i64..7200, 1i64..40 * 86_400].prop_map(Step::Advance),
        (0..n, proptest::collection::vec(arb::saved(), 0..3)).prop_map(|(i, c)| Step::Cart(i, c)),
    ]
}

fn reference(def: &SegmentDefinition, cs: &[CustomerFacts], ctx: &Context) -> Vec<bool> {
    cs.iter().map(|c| matches(def, c, ctx).unwrap()).collect()
}

fn engine_members(
    e: &Engine,
    cs: &[CustomerFacts],
    rows: &enishi::segment::RoaringBitmap,
) -> Vec<bool> {
    cs.iter().map(|c| rows.contains(e.row_of(&c.id).unwrap())).collect()
}

const N: usize = 10;

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn segment_engine_agrees_with_reference(
        mut cs in arb::customers(N),
        catalog in arb::catalog(),
        base in arb::condition(false),
        top in arb::condition(true),
        steps in proptest::collection::vec(step(N), 0..6),
        past in 1i64..300 * 86_400,
    ) {
        let base = SegmentDefinition::new(base).unwrap();
        let def = SegmentDefinition::new(top).unwrap();
        let mut ctx = arb::context(&catalog, &cs, Some(&base));
        let mut e = Engine::new(Context::new(ctx.now())).with_threads(1);
        for (p, s) in &catalog {
            e.set_product(p.clone(), *s);
        }
        e.set_list("vip", cs.iter().step_by(3).map(|c| c.id.clone()));
        for c in &cs {
            e.upsert_customer(c.clone());
        }
        e.register("base", base.clone()).unwrap();
        e.register("s", def.clone()).unwrap();

        let check = |e: &Engine, cs: &[CustomerFacts], ctx: &Context, when: &str| -> Result<(), TestCaseError> {
            let want = reference(&def, cs, ctx);
            prop_assert_eq!(&engine_members(e, cs, e.members("s").unwrap()), &want, "cached, {}", when);
            let raw = e.evaluate_as_of(&def, ctx.now()).unwrap();
            prop_assert_eq!(&engine_members(e, cs, &raw), &want, "raw, {}", when);
            let state = e.evaluate_from_state("s").unwrap();
            prop_assert_eq!(&engine_members(e, cs, &state), &want, "state, {}", when);
            prop_assert_eq!(e.count("s").unwrap(), want.iter().filter(|x| **x).count() as u64);
            Ok(())
        };
        check(&e, &cs, &ctx, "after load")?;

        for s in steps {
            let label = format!("after {s:?}");
            match s {
                Step::Append(i, mut o) => {
                    o.id = format!("new{}", cs[i].orders.len());
                    e.append_order(&cs[i].id, &o).unwrap();
                    cs[i].orders.push(o);
                }
                Step::Advance(d) => {
                    let t = ctx.now() + TimeDelta::seconds(d);
                    e.advance_to(t).unwrap();
                    ctx = ctx.at(t);
                }
                Step::Cart(i, c) => {
                    e.set_cart(&cs[i].id, c.clone()).unwrap();
                    cs[i].cart = c;
                }
            }
            check(&e, &cs, &ctx, &label)?;
        }

        // As-of a past instant from the raw columns.
        let then = ctx.now() - TimeDelta::seconds(past);
        let raw = e.evaluate_as_of(&def, then).unwrap();
        prop_assert_eq!(engine_members(&e, &cs, &raw), reference(&def, &cs, &ctx.at(then)), "as of {}", then);

        // next_change agrees with the reference.
        for c in cs.iter().take(3) {
            let a = e.next_change("s", &c.id).unwrap();
            let b = next_change(&def, c, &ctx).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}

fn facts(id: &str) -> CustomerFacts {
    CustomerFacts::new(enishi::CustomerId::new(id).unwrap())
}

#[test]
fn segment_engine_funnel_overlap_and_changes() {
    let now = arb::now();
    let mut e = Engine::new(Context::new(now));
    for i in 0..6 {
        let mut c = facts(&format!("c{i}"));
        c.line.linked = i % 2 == 0;
        c.birth_date = chrono::NaiveDate::from_ymd_opt(1990, if i < 3 { 6 } else { 7 }, 1);
        e.upsert_customer(c);
    }
    e.register("a", SegmentDefinition::parse("line linked and birthday month = 6").unwrap())
        .unwrap();
    e.register("b", SegmentDefinition::parse("birthday month = 6").unwrap()).unwrap();
    assert_eq!(e.count("a").unwrap(), 2); // c0, c2
    let f = e.funnel("a").unwrap();
    assert_eq!(f.total, 2);
    assert_eq!(
        f.leaves,
        vec![("line linked".to_string(), 3), ("birthday month = 6".to_string(), 3)]
    );
    assert_eq!(
        f.steps,
        vec![("line linked".to_string(), 3), ("birthday month = 6".to_string(), 2)]
    );
    let o = e.overlap("a", "b").unwrap();
    assert_eq!((o.both, o.only_first, o.only_second), (2, 0, 1));
    // c1 links: it enters "a"; c0 unlinks: it leaves.
    let mut linked = facts("c1").line;
    linked.linked = true;
    e.set_line(&facts("c1").id, linked).unwrap();
    e.set_line(&facts("c0").id, Default::default()).unwrap();
    let ch = e.changes("a").unwrap();
    assert_eq!(ch.entered, vec![facts("c1").id]);
    assert_eq!(ch.left, vec![facts("c0").id]);
    assert_eq!(e.changes("a").unwrap(), Default::default());
}

#[test]
fn segment_engine_time_wheel_moves_dormant_customers() {
    let now = arb::now();
    let mut e = Engine::new(Context::new(now));
    let mut c = facts("c");
    c.orders.push(Order {
        id: "o".into(),
        placed_at: now - TimeDelta::days(29),
        amount: 1000,
        kind: enishi::segment::OrderKind::OneOff,
        items: vec![],
    });
    e.upsert_customer(c.clone());
    e.register("dormant", SegmentDefinition::parse("last_order age > 30d").unwrap()).unwrap();
    assert_eq!(e.count("dormant").unwrap(), 0);
    assert_eq!(
        e.next_change("dormant", &c.id).unwrap(),
        NextChange::At(now + TimeDelta::days(1) + TimeDelta::seconds(1))
    );
    e.advance_to(now + TimeDelta::days(1)).unwrap();
    assert_eq!(e.count("dormant").unwrap(), 0);
    e.advance_to(now + TimeDelta::days(1) + TimeDelta::seconds(1)).unwrap();
    assert_eq!(e.count("dormant").unwrap(), 1);
    assert!(e.advance_to(now).is_err(), "time cannot go backwards");
    // A new order makes the customer active again at once.
    let o = Order {
        id: "o2".into(),
        placed_at: e.now(),
        amount: 500,
        kind: enishi::segment::OrderKind::OneOff,
        items: vec![],
    };
    e.append_order(&c.id, &o).unwrap();
    assert_eq!(e.count("dormant").unwrap(), 0);
    let _ = Condition::And { children: vec![] };
}
