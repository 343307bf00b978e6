//! The planted-structure shop: the time-split evaluation beats the popularity baseline, and the
//! synced-records path gives the same purchases as the columnar generator.

use chrono::Duration;
use enishi::recommend::{
    Catalogue, CoPurchaseModel, ModelParams, PurchaseLog, RankBy, Sales, Window, evaluate,
};
use enishi::testkit::{AffinityShop, AffinitySpec};

fn small() -> AffinitySpec {
    let mut spec = AffinitySpec::default();
    spec.customers = 3_000;
    spec.orders = 30_000;
    spec.products = 1_000;
    spec
}

#[test]
fn recommend_evaluation_beats_the_popularity_baseline_on_the_planted_shop() {
    let spec = small();
    let (catalogue, log) = AffinityShop::new(spec).columns();
    let t = spec.end - Duration::days(28);
    let e = evaluate(&log, &catalogue, ModelParams::new(t).threads(2), spec.end, 10);
    assert!(e.model.customers > 500, "{e:?}");
    assert_eq!(e.model.customers, e.baseline.customers);
    assert!(e.model.hit_rate >= 1.5 * e.baseline.hit_rate, "{e:?}");
    assert!(e.model.ndcg > e.baseline.ndcg, "{e:?}");
    // Without structure to find (affinity 0) the advantage disappears.
    let mut flat = spec;
    flat.affinity = 0.0;
    let (catalogue, log) = AffinityShop::new(flat).columns();
    let f = evaluate(&log, &catalogue, ModelParams::new(t).threads(2), spec.end, 10);
    assert!(f.model.hit_rate < 1.5 * f.baseline.hit_rate, "{f:?}");
}

#[test]
fn recommend_records_and_columns_agree_and_associations_find_the_groups() {
    let mut spec = small();
    spec.customers = 400;
    spec.orders = 6_000;
    spec.products = 100;
    let shop = AffinityShop::new(spec);
    let (catalogue, log) = shop.columns();
    let (customers, products, orders) = shop.records();
    assert_eq!((customers.len(), products.len(), orders.len()), (400, 100, 6_000));
    let synced = Catalogue::from_products(&products);
    let from_records = PurchaseLog::from_records(&synced, &orders, []);
    assert_eq!(from_records.len(), log.len());
    assert_eq!(from_records.unknown_lines(), 0);
    let window = Window::days_before(spec.end, 30);
    let a = Sales::of(&log, &catalogue, window).best_sellers(
        &catalogue,
        None,
        RankBy::Revenue,
        10,
        true,
    );
    let b = Sales::of(&from_records, &synced, window).best_sellers(
        &synced,
        None,
        RankBy::Revenue,
        10,
        true,
    );
    assert_eq!(a, b);
    // Product 12's strongest associations, and all with a lift over 2, are in its own group
    // (11..=20); globally popular products come with a lift near 1.
    let model = CoPurchaseModel::build(&log, &catalogue, ModelParams::new(spec.end));
    let rules = model.associations(&catalogue, "12");
    assert!(!rules.is_empty());
    let in_group = |r: &enishi::recommend::Association| {
        (11..=20).contains(&r.consequent.parse::<u32>().unwrap())
    };
    assert!(rules.iter().take(2).all(in_group), "{rules:?}");
    assert!(rules.iter().filter(|r| r.lift > 2.0).all(in_group), "{rules:?}");
    assert!(rules.iter().filter(|r| r.lift > 2.0).count() >= 3, "{rules:?}");
    assert!(rules[0].lift > 1.0 && rules[0].confidence > 0.0 && rules[0].support > 0.0);
}
