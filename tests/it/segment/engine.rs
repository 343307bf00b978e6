//! The columnar engine agrees with the reference evaluator, before and after incremental
//! updates, through every evaluation path.

use chrono::TimeDelta;
use enishi::segment::{
    Condition, Context, CustomerFacts, Engine, Members, NextChange, OrderFact, SavedItem,
    SegmentDefinition, matches, next_change,
};
use proptest::prelude::*;

use super::arb;

#[derive(Debug, Clone)]
enum Step {
    Append(usize, OrderFact),
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

fn engine_members(cs: &[CustomerFacts], members: &Members<'_>) -> Vec<bool> {
    cs.iter().map(|c| members.contains(&c.id)).collect()
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
        e.register_unchecked("base", base.clone()).unwrap();
        e.register_unchecked("s", def.clone()).unwrap();

        let check = |e: &Engine, cs: &[CustomerFacts], ctx: &Context, when: &str| -> Result<(), TestCaseError> {
            let want = reference(&def, cs, ctx);
            prop_assert_eq!(&engine_members(cs, &e.members("s").unwrap()), &want, "cached, {}", when);
            let raw = e.evaluate_as_of(&def, ctx.now()).unwrap();
            prop_assert_eq!(&engine_members(cs, &raw), &want, "raw, {}", when);
            let state = e.evaluate_from_state("s").unwrap();
            prop_assert_eq!(&engine_members(cs, &state), &want, "state, {}", when);
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
        prop_assert_eq!(engine_members(&cs, &raw), reference(&def, &cs, &ctx.at(then)), "as of {}", then);

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
    c.orders.push(OrderFact {
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
    let o = OrderFact {
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

/// Bulk-loaded columns take the fused scan path; it agrees with the reference too.
pub(super) mod columns {
    use chrono::{NaiveDate, TimeDelta};
    use enishi::CustomerId;
    use enishi::segment::{
        CmpOp, Condition, Context, CustomerColumns, CustomerFacts, DateField, DateTest, Engine,
        LineItemFact, Measure, OrderColumns, OrderFact, OrderFilter, OrderKind, SegmentDefinition,
        Span, Window, matches,
    };
    use proptest::prelude::*;

    use super::super::arb;

    pub(in super::super) fn orders() -> impl Strategy<Value = Vec<(usize, i64, i64, usize)>> {
        proptest::collection::vec((0usize..20, -400i64..30, 300i64..20_000, 0usize..5), 0..80)
            .prop_map(|v| {
                // Whole days before `now` (and a few after) so boundaries are hit.
                v.into_iter()
                    .map(|(c, d, a, p)| (c, d * 86_400 + (c as i64 % 3 - 1), a, p))
                    .collect()
            })
    }

    /// Order leaves the fused scan handles: no filter or one product, all time or rolling.
    fn fused_leaf() -> impl Strategy<Value = Condition> {
        let filter = prop_oneof![
            Just(OrderFilter::default()),
            proptest::sample::select(arb::PRODUCTS.to_vec())
                .prop_map(|p| OrderFilter { products: vec![p.to_string()], ..Default::default() }),
        ];
        let window = prop_oneof![
            Just(Window::AllTime),
            (1i64..40).prop_map(|d| Window::Last { span: Span::days(d).unwrap() })
        ];
        let op = proptest::sample::select(CmpOp::ALL.to_vec());
        prop_oneof![
            (
                filter.clone(),
                window,
                prop_oneof![Just(Measure::Count), Just(Measure::Sum), Just(Measure::Avg)],
                op.clone(),
                prop_oneof![0i64..3, 0i64..30_000]
            )
                .prop_map(|(filter, window, measure, op, value)| Condition::Orders {
                    filter,
                    window,
                    measure,
                    op,
                    value
                }),
            (filter, any::<bool>(), op, 0i64..60).prop_map(|(filter, last, op, d)| {
                Condition::Date {
                    field: if last {
                        DateField::LastOrder { filter }
                    } else {
                        DateField::FirstOrder { filter }
                    },
                    test: if d % 2 == 0 {
                        DateTest::Age { op, value: Span::days(d / 2).unwrap() }
                    } else {
                        DateTest::DaysAgo { op, days: (d / 2) as i32 }
                    },
                }
            }),
        ]
    }

    /// Q3's shape: two product counts side by side (they share one pass over the products).
    pub(in super::super) fn product_pair() -> impl Strategy<Value = Condition> {
        let count = |p: &str, op: CmpOp, value: i64| Condition::Orders {
            filter: OrderFilter { products: vec![p.to_string()], ..Default::default() },
            window: Window::AllTime,
            measure: Measure::Count,
            op,
            value,
        };
        let prod = proptest::sample::select(arb::PRODUCTS.to_vec());
        let op = proptest::sample::select(CmpOp::ALL.to_vec());
        (prod.clone(), prod, op.clone(), op, 0i64..3, 0i64..3).prop_map(
            move |(a, b, o1, o2, v1, v2)| Condition::And {
                children: vec![count(a, o1, v1), count(b, o2, v2)],
            },
        )
    }

    pub(in super::super) fn fused_condition() -> impl Strategy<Value = Condition> {
        fused_leaf().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4)
                    .prop_map(|children| Condition::And { children }),
                proptest::collection::vec(inner.clone(), 1..4)
                    .prop_map(|children| Condition::Or { children }),
                inner.prop_map(|c| Condition::Not { child: Box::new(c) }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn segment_engine_columns_agree_with_reference(
            linked in proptest::collection::vec(any::<bool>(), 20),
            months in proptest::collection::vec(1u32..=12, 20),
            rows in orders(),
            c in prop_oneof![arb::condition(false), fused_condition(), fused_condition(), product_pair()],
            past in 0i64..100 * 86_400,
        ) {
            let def = SegmentDefinition::new(c).unwrap();
            let now = arb::now();
            let mut cols = CustomerColumns::default();
            let mut facts = Vec::new();
            for i in 0..20 {
                let id = CustomerId::new(format!("c{i}")).unwrap();
                cols.ids.push(id.clone());
                cols.line_linked.push(linked[i]);
                let birth = NaiveDate::from_ymd_opt(1990, months[i], 1);
                cols.birth_date.push(birth);
                let mut f = CustomerFacts::new(id);
                f.line.linked = linked[i];
                f.birth_date = birth;
                facts.push(f);
            }
            let mut oc = OrderColumns { product_names: arb::PRODUCTS.iter().map(|p| p.to_string()).collect(), ..Default::default() };
            for (k, &(c, off, amount, p)) in rows.iter().enumerate() {
                oc.customer.push(c as u32);
                oc.placed_at.push(now.timestamp() + off);
                oc.amount.push(amount);
                oc.product.push(p as u32);
                facts[c].orders.push(OrderFact {
                    id: format!("o{k}"),
                    placed_at: now + TimeDelta::seconds(off),
                    amount,
                    kind: OrderKind::OneOff,
                    items: vec![LineItemFact { product: arb::PRODUCTS[p].into(), sku: None, category: None, quantity: 1, unit_price: amount }],
                });
            }
            let ctx = arb::context(&[], &facts, None);
            let mut e = Engine::new(Context::new(now));
            e.set_list("vip", facts.iter().step_by(3).map(|c| c.id.clone()));
            e.load_columns(cols, oc).unwrap();
            for t in [now, now - TimeDelta::seconds(past)] {
                let got = e.evaluate_as_of(&def, t).unwrap();
                let want: Vec<bool> = facts.iter().map(|f| matches(&def, f, &ctx.at(t)).unwrap()).collect();
                let have: Vec<bool> = facts.iter().map(|f| got.contains(&f.id)).collect();
                prop_assert_eq!(have, want, "raw at {}", t);
            }
            e.register_unchecked("s", def.clone()).unwrap();
            let want: Vec<bool> = facts.iter().map(|f| matches(&def, f, &ctx).unwrap()).collect();
            let state = e.evaluate_from_state("s").unwrap();
            let have: Vec<bool> = facts.iter().map(|f| state.contains(&f.id)).collect();
            prop_assert_eq!(have, want.clone(), "state");
            let cached: Vec<bool> = facts.iter().map(|f| e.members("s").unwrap().contains(&f.id)).collect();
            prop_assert_eq!(cached, want, "cached");
        }
    }

    /// Bulk columns as an engine and as the reference's customer facts.
    fn load_both(
        linked: &[bool],
        months: &[u32],
        rows: &[(usize, i64, i64, usize)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Engine, Vec<CustomerFacts>) {
        let mut cols = CustomerColumns::default();
        let mut facts = Vec::new();
        for (i, (&l, &m)) in linked.iter().zip(months).enumerate() {
            let id = CustomerId::new(format!("c{i}")).unwrap();
            cols.ids.push(id.clone());
            cols.line_linked.push(l);
            cols.birth_date.push(NaiveDate::from_ymd_opt(1990, m, 1));
            let mut f = CustomerFacts::new(id);
            f.line.linked = l;
            f.birth_date = NaiveDate::from_ymd_opt(1990, m, 1);
            facts.push(f);
        }
        let names = arb::PRODUCTS.iter().map(|p| p.to_string()).collect();
        let mut oc = OrderColumns { product_names: names, ..Default::default() };
        for (k, &(c, off, amount, p)) in rows.iter().enumerate() {
            oc.customer.push(c as u32);
            oc.placed_at.push(now.timestamp() + off);
            oc.amount.push(amount);
            oc.product.push(p as u32);
            facts[c].orders.push(one_item(
                format!("o{k}"),
                now + TimeDelta::seconds(off),
                amount,
                p,
            ));
        }
        let mut e = Engine::new(Context::new(now));
        e.set_list("vip", facts.iter().step_by(3).map(|c| c.id.clone()));
        e.load_columns(cols, oc).unwrap();
        (e, facts)
    }

    fn one_item(id: String, at: chrono::DateTime<chrono::Utc>, amount: i64, p: usize) -> OrderFact {
        let item = LineItemFact {
            product: arb::PRODUCTS[p].into(),
            sku: None,
            category: None,
            quantity: 1,
            unit_price: amount,
        };
        OrderFact { id, placed_at: at, amount, kind: OrderKind::OneOff, items: vec![item] }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// A top-level `and` whose customer conditions leave few candidates reads only their
        /// order ranges: still the reference's answer, over bulk-loaded orders, then with an
        /// appended order and a replaced customer on top.
        #[test]
        fn segment_engine_selective_and_reads_candidates_only(
            linked in proptest::collection::vec(any::<bool>(), 20),
            months in proptest::collection::vec(1u32..=12, 20),
            rows in orders(),
            month in 1u32..=12,
            c in prop_oneof![arb::condition(false), fused_condition(), product_pair()],
            extra in (0usize..20, -40i64..2, 300i64..20_000, 0usize..5),
            replaced in 0usize..20,
        ) {
            let now = arb::now();
            let (mut e, mut facts) = load_both(&linked, &months, &rows, now);
            let birthday = SegmentDefinition::parse(&format!("birthday month = {month}")).unwrap();
            let def = SegmentDefinition::new(Condition::And {
                children: vec![birthday.condition().clone(), c],
            })
            .unwrap();
            let check = |e: &Engine, facts: &[CustomerFacts], when: &str| -> Result<(), TestCaseError> {
                let ctx = arb::context(&[], facts, None);
                let got = e.evaluate_as_of(&def, now).unwrap();
                let want: Vec<bool> = facts.iter().map(|f| matches(&def, f, &ctx).unwrap()).collect();
                let have: Vec<bool> = facts.iter().map(|f| got.contains(&f.id)).collect();
                prop_assert_eq!(have, want, "{}", when);
                Ok(())
            };
            check(&e, &facts, "loaded")?;
            let (i, days, amount, p) = extra;
            let o = one_item("x".into(), now + TimeDelta::days(days), amount, p);
            e.append_order(&facts[i].id, &o).unwrap();
            facts[i].orders.push(o);
            check(&e, &facts, "appended")?;
            let mut f = facts[replaced].clone();
            f.orders.truncate(1);
            e.upsert_customer(f.clone());
            facts[replaced] = f;
            check(&e, &facts, "replaced")?;
        }
    }
}
