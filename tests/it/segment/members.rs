//! `Members`: the engine's answers in customer IDs (len, contains, row order, to_vec) and
//! entered / left as customer IDs.

use enishi::CustomerId;
use enishi::segment::{
    Context, CustomerColumns, CustomerFacts, Engine, LineStatus, Members, OrderColumns,
    SegmentDefinition, evaluate_columns,
};

use super::arb;

fn id(s: &str) -> CustomerId {
    CustomerId::new(s).unwrap()
}

fn ids(v: &[&str]) -> Vec<CustomerId> {
    v.iter().map(|s| id(s)).collect()
}

fn linked(yes: bool) -> LineStatus {
    LineStatus { linked: yes, ..LineStatus::default() }
}

/// Customers in a non-sorted order, so row order and ID order differ.
const ORDER: [(&str, bool); 5] =
    [("z", true), ("a", false), ("m", true), ("b", true), ("c", false)];

fn engine() -> Engine {
    let mut e = Engine::new(Context::new(arb::now()));
    for (c, l) in ORDER {
        let mut f = CustomerFacts::new(id(c));
        f.line = linked(l);
        e.upsert_customer(f);
    }
    e.register("linked", SegmentDefinition::parse("line linked").unwrap()).unwrap();
    e.register("nobody", SegmentDefinition::parse("line linked and not line linked").unwrap())
        .unwrap();
    e
}

#[test]
fn segment_members_len_contains_and_row_order() {
    let e = engine();
    let m: Members<'_> = e.members("linked").unwrap();
    assert_eq!(m.len(), 3);
    assert!(!m.is_empty());
    assert!(m.contains(&id("z")) && m.contains(&id("m")) && m.contains(&id("b")));
    assert!(!m.contains(&id("a")) && !m.contains(&id("c")));
    assert!(!m.contains(&id("unknown")));
    // Row order: the order the engine first saw each customer, not ID order.
    let want = ids(&["z", "m", "b"]);
    assert_eq!(m.to_vec(), want);
    assert_eq!(m.iter().cloned().collect::<Vec<_>>(), want);
    assert_eq!(m.iter().len(), 3);
    assert_eq!(m.iter().rev().cloned().collect::<Vec<_>>(), ids(&["b", "m", "z"]));
    let mut seen = Vec::new();
    for c in &m {
        seen.push(c.clone());
    }
    assert_eq!(seen, want);
    assert_eq!(format!("{m:?}"), format!("{want:?}"));

    let none = e.members("nobody").unwrap();
    assert!(none.is_empty());
    assert_eq!(none.len(), 0);
    assert_eq!(none.iter().next(), None);
    assert!(none.to_vec().is_empty());
    assert!(e.members("missing").is_err());
}

#[test]
fn segment_members_agree_across_paths() {
    let mut e = engine();
    // Upserting a known customer keeps its row, hence its place in the order.
    let mut z = CustomerFacts::new(id("z"));
    z.line = linked(true);
    e.upsert_customer(z);
    let cached = e.members("linked").unwrap();
    let state = e.evaluate_from_state("linked").unwrap();
    let raw = e.evaluate_as_of(&SegmentDefinition::parse("line linked").unwrap(), e.now()).unwrap();
    assert_eq!(state, cached);
    assert_eq!(raw, cached);
    assert_eq!(raw.to_vec(), ids(&["z", "m", "b"]));
    assert_ne!(e.members("nobody").unwrap(), cached);
}

#[test]
fn segment_members_changes_are_customer_ids() {
    let mut e = engine();
    assert!(e.changes("linked").unwrap().entered.is_empty());
    // "a" and "c" link, "z" and "b" unlink: entered and left in row order.
    for (c, l) in [("c", true), ("z", false), ("a", true), ("b", false)] {
        e.set_line(&id(c), linked(l)).unwrap();
    }
    let ch = e.changes("linked").unwrap();
    assert_eq!(ch.entered, ids(&["a", "c"]));
    assert_eq!(ch.left, ids(&["z", "b"]));
    assert_eq!(e.members("linked").unwrap().to_vec(), ids(&["a", "m", "c"]));
    let again = e.changes("linked").unwrap();
    assert!(again.entered.is_empty() && again.left.is_empty());
}

#[test]
fn segment_members_from_columns() {
    let cols = CustomerColumns {
        ids: ids(&["z", "a", "m"]),
        line_linked: vec![true, false, true],
        birth_date: vec![None; 3],
    };
    let ctx = Context::new(arb::now());
    let def = SegmentDefinition::parse("line linked").unwrap();
    let m = evaluate_columns(&def, &cols, &OrderColumns::default(), &ctx).unwrap();
    assert_eq!(m.len(), 2);
    assert!(m.contains(&id("m")) && !m.contains(&id("a")) && !m.contains(&id("x")));
    assert_eq!(m.to_vec(), ids(&["z", "m"]));
    // The same rows in an engine loaded from the same columns: equal answers.
    let mut e = Engine::new(ctx);
    e.load_columns(cols.clone(), OrderColumns::default()).unwrap();
    e.register("linked", def).unwrap();
    assert_eq!(e.members("linked").unwrap(), m);
}
