//! One random split: segment buckets and campaign holdouts pick the same customers.

use chrono::DateTime;
use enishi::CustomerId;
use enishi::campaign::Holdout;
use enishi::segment::{Context, CustomerFacts, Engine, SegmentDefinition, bucket, matches};

#[test]
fn segment_bucket_range_selects_exactly_the_holdout() {
    let ctx = Context::new(DateTime::from_timestamp(1_751_295_600, 0).unwrap());
    let holdout = Holdout::percent("x", 10);
    let def = SegmentDefinition::parse(r#"bucket "x" in 0..1000"#).unwrap();
    let mut engine = Engine::new(ctx.clone());
    let ids: Vec<CustomerId> =
        (0..5_000).map(|i| CustomerId::new(format!("c-{i}")).unwrap()).collect();
    for id in &ids {
        engine.upsert_customer(CustomerFacts::new(id.clone()));
    }
    engine.register_unchecked("held out", def.clone()).unwrap();
    let members = engine.members("held out").unwrap().to_vec();
    let held: Vec<CustomerId> = ids.iter().filter(|id| holdout.contains(id)).cloned().collect();
    assert_eq!(members, held);
    for id in &ids {
        let facts = CustomerFacts::new(id.clone());
        assert_eq!(matches(&def, &facts, &ctx).unwrap(), holdout.contains(id), "{id}");
        assert_eq!(enishi::campaign::bucket("x", id), bucket("x", id.as_str()));
    }
    // About 10 %, and not the same customers under another salt.
    assert!((400..600).contains(&held.len()), "{}", held.len());
    let other = Holdout::percent("y", 10);
    assert!(held.iter().filter(|id| other.contains(id)).count() < 100);
}
