//! `evaluate_columns` (the cold path over unsorted columns) agrees with the reference
//! evaluator, or refuses with `Unsupported` exactly for the conditions it documents.

use chrono::{NaiveDate, TimeDelta};
use enishi::CustomerId;
use enishi::segment::{
    Condition, CustomerColumns, CustomerFacts, Expr, LineItemFact, OrderColumns, OrderFact,
    OrderKind, SegmentDefinition, SegmentError, evaluate_columns, matches,
};
use proptest::prelude::*;

use super::arb;
use super::engine::columns::{fused_condition, orders, product_pair};

const N: usize = 20;

fn reads_orders(e: &Expr) -> bool {
    match e {
        Expr::OrderCount { .. } | Expr::OrderSum { .. } => true,
        Expr::Sum { .. } | Expr::Product { .. } => e.operands().into_iter().any(reads_orders),
        _ => false,
    }
}

/// Whether a condition has a leaf the cold path documents as unsupported.
fn has_unsupported(c: &Condition) -> bool {
    c.leaves().into_iter().any(|l| match l {
        Condition::CartAbandoned { .. } => true,
        Condition::Compare { left, right, .. } => reads_orders(left) || reads_orders(right),
        _ => false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn segment_cold_columns_agree_with_reference(
        linked in proptest::collection::vec(any::<bool>(), N),
        births in proptest::collection::vec(proptest::option::of((1u32..=12, 1u32..=28)), N),
        rows in orders(),
        c in prop_oneof![arb::condition(true), fused_condition(), fused_condition(), product_pair()],
        base in arb::condition(false),
        past in 0i64..100 * 86_400,
        shuffle in any::<u64>(),
    ) {
        let def = SegmentDefinition::new(c).unwrap();
        let base = SegmentDefinition::new(base).unwrap();
        let now = arb::now();
        let mut cols = CustomerColumns::default();
        let mut facts = Vec::new();
        for i in 0..N {
            let id = CustomerId::new(format!("c{i}")).unwrap();
            let birth = births[i].and_then(|(m, d)| NaiveDate::from_ymd_opt(1990, m, d));
            cols.ids.push(id.clone());
            cols.line_linked.push(linked[i]);
            cols.birth_date.push(birth);
            let mut f = CustomerFacts::new(id);
            f.line.linked = linked[i];
            f.birth_date = birth;
            facts.push(f);
        }
        // Rows in a scrambled order: the cold path must not rely on any clustering.
        let mut rows = rows;
        let len = rows.len().max(1) as u64;
        rows.rotate_left((shuffle % len) as usize);
        if shuffle & 1 == 1 {
            rows.reverse();
        }
        let mut oc = OrderColumns {
            product_names: arb::PRODUCTS.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
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
                items: vec![LineItemFact {
                    product: arb::PRODUCTS[p].into(),
                    sku: None,
                    category: None,
                    quantity: 1,
                    unit_price: amount,
                }],
            });
        }
        let ctx = arb::context(&[], &facts, Some(&base));
        let unsupported = has_unsupported(def.condition())
            || (!def.condition().segment_refs().is_empty() && has_unsupported(base.condition()));
        for t in [now, now - TimeDelta::seconds(past)] {
            let at = ctx.at(t);
            let want: Result<Vec<bool>, SegmentError> =
                facts.iter().map(|f| matches(&def, f, &at)).collect();
            match (evaluate_columns(&def, &cols, &oc, &at), want) {
                (Ok(got), Ok(want)) => {
                    prop_assert!(!unsupported, "answered an unsupported condition");
                    let have: Vec<bool> = cols.ids.iter().map(|id| got.contains(id)).collect();
                    prop_assert_eq!(have, want, "at {}", t);
                }
                (Err(SegmentError::Unsupported { .. }), _) => prop_assert!(unsupported),
                (Err(e), Err(w)) => prop_assert_eq!(e, w),
                (Err(e), Ok(_)) => prop_assert!(false, "cold path failed: {e}"),
                (Ok(_), Err(w)) => prop_assert!(unsupported, "reference failed ({w}), cold path answered"),
            }
        }
    }
}

#[test]
fn segment_cold_rejects_bad_columns() {
    let def = SegmentDefinition::parse("orders count >= 1").unwrap();
    let ctx = arb::context(&[], &[], None);
    let cols = CustomerColumns {
        ids: vec![CustomerId::new("a").unwrap()],
        line_linked: vec![true],
        birth_date: vec![None],
    };
    let mut oc = OrderColumns {
        customer: vec![1],
        placed_at: vec![0],
        amount: vec![100],
        product: vec![0],
        product_names: vec!["p".into()],
    };
    assert!(matches!(evaluate_columns(&def, &cols, &oc, &ctx), Err(SegmentError::Invalid(_))));
    oc.customer = vec![0];
    oc.product = vec![1];
    assert!(matches!(evaluate_columns(&def, &cols, &oc, &ctx), Err(SegmentError::Invalid(_))));
    // Also when no order leaf needs the scan.
    let linked = SegmentDefinition::parse("line linked").unwrap();
    assert!(matches!(evaluate_columns(&linked, &cols, &oc, &ctx), Err(SegmentError::Invalid(_))));
    oc.product = vec![0];
    assert_eq!(evaluate_columns(&def, &cols, &oc, &ctx).unwrap().len(), 1);
    oc.amount.push(1);
    assert!(matches!(evaluate_columns(&def, &cols, &oc, &ctx), Err(SegmentError::Invalid(_))));
    let cart = SegmentDefinition::new(Condition::CartAbandoned {
        after: enishi::segment::Span::days(1).unwrap(),
        min_items: 1,
    })
    .unwrap();
    oc.amount.pop();
    let err = evaluate_columns(&cart, &cols, &oc, &ctx).unwrap_err();
    assert!(matches!(err, SegmentError::Unsupported { .. }), "{err}");
}
