//! Unit tests of the recommender on small hand-made shops whose answers can be worked out by
//! hand.

use chrono::{DateTime, Duration, TimeZone as _, Utc};

use super::*;
use crate::CustomerId;
use crate::commerce::{Money, Product, Variant};
use crate::line::message::{FlexContainer, Message};

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(n)
}

fn cid(s: &str) -> CustomerId {
    CustomerId::new(s).unwrap()
}

/// Products 1..=6 named P1..P6 at 1,000 yen × n, category A for 1-3 and B for 4-6.
fn catalogue() -> Catalogue {
    Catalogue::from_items(
        (1..=6)
            .map(|n| {
                CatalogueItem::new(n.to_string(), format!("P{n}"))
                    .with_price_yen(1_000 * n)
                    .with_image_url(format!("https://img.example.com/{n}.jpg"))
                    .with_category(if n <= 3 { "A" } else { "B" })
            })
            .collect(),
    )
}

/// Customers c0..c9 bought 1 and 2; c0..c4 also 3; c5..c9 bought 4 instead; 5 alone by c0.
fn log(c: &Catalogue) -> PurchaseLog {
    let mut log = PurchaseLog::new();
    let idx = |id: &str| c.index_of(id).unwrap();
    for n in 0..10 {
        let cu = log.customer(&cid(&format!("c{n}")));
        log.push(cu, idx("1"), day(10).timestamp(), 1, 1_000);
        log.push(cu, idx("2"), day(11).timestamp(), 2, 4_000);
        if n < 5 {
            log.push(cu, idx("3"), day(12).timestamp(), 1, 3_000);
        } else {
            log.push(cu, idx("4"), day(12).timestamp(), 1, 4_000);
        }
    }
    let c0 = log.customer_index(&cid("c0")).unwrap();
    log.push(c0, idx("5"), day(13).timestamp(), 1, 5_000);
    log
}

#[test]
fn recommend_catalogue_reads_sale_stock_codes_and_skus() {
    let mut p = Product::new("10", day(0));
    p.code = Some("P-010".into());
    p.name = Some("化粧水".into());
    p.price = Some(Money::jpy(1_980));
    let mut v = Variant::new("1001", Some("SKU-10".into()));
    v.stock = Some(0);
    p.variants.push(v);
    let mut q = Product::new("9", day(0));
    q.for_sale = Some(false);
    let r = Product::new("11", day(0));
    let c = Catalogue::from_products([&p, &q, &r]);
    assert_eq!(c.index_of("P-010"), c.index_of("10"));
    assert_eq!(c.index_of("SKU-10"), c.index_of("10"));
    let item = c.get("10").unwrap();
    assert_eq!((item.name.as_str(), item.price_yen), ("化粧水", Some(1_980)));
    assert!(!item.in_stock && item.for_sale && !item.available());
    assert!(!c.get("9").unwrap().available());
    assert!(c.get("11").unwrap().available());
    // Numeric IDs order numerically for ties: 9 < 10 < 11.
    let rank = |id: &str| c.id_rank(c.index_of(id).unwrap());
    assert!(rank("9") < rank("10") && rank("10") < rank("11"));
}

#[test]
fn recommend_best_sellers_by_units_revenue_category_and_window() {
    let c = catalogue();
    let log = log(&c);
    let window = Window { from: day(10), until: day(13) };
    let sales = Sales::of(&log, &c, window);
    let units: Vec<(String, u64)> = sales
        .best_sellers(&c, None, RankBy::Units, 10, true)
        .into_iter()
        .map(|r| (r.product, r.units))
        .collect();
    // Day 13 (product 5) is outside; 2 sold 20 units, 1 ten, 3 and 4 five each (tie by ID).
    assert_eq!(units, [("2".into(), 20), ("1".into(), 10), ("3".into(), 5), ("4".into(), 5)]);
    let revenue = sales.best_sellers(&c, None, RankBy::Revenue, 2, true);
    assert_eq!((revenue[0].product.as_str(), revenue[0].revenue), ("2", 40_000));
    assert_eq!((revenue[1].product.as_str(), revenue[1].revenue), ("4", 20_000));
    let b = sales.best_sellers(&c, Some("B"), RankBy::Units, 10, true);
    assert_eq!(b.iter().map(|r| r.product.as_str()).collect::<Vec<_>>(), ["4"]);
    assert_eq!(b[0].rank, 1);
    let per = sales.best_sellers_by_category(&c, RankBy::Units, 1, true);
    assert_eq!(per["A"][0].product, "2");
}

#[test]
fn recommend_rising_items_grow_over_the_previous_window() {
    let c = catalogue();
    let mut log = PurchaseLog::new();
    let cu = log.customer(&cid("x"));
    // Product 1: 2 units before, 2 now (flat); product 2: 1 before, 6 now (rising).
    for (item, d, units) in [(0, 1, 2), (0, 8, 2), (1, 2, 1), (1, 9, 6)] {
        log.push(cu, item, day(d).timestamp(), units, 0);
    }
    let sales = Sales::of(&log, &c, Window::days_before(day(14), 7));
    let rising = sales.rising(&c, 1, 10);
    assert_eq!(rising.len(), 1);
    assert_eq!(
        (rising[0].product.as_str(), rising[0].units, rising[0].previous_units),
        ("2", 6, 1)
    );
}

#[test]
fn recommend_associations_have_support_confidence_and_lift() {
    let c = catalogue();
    let log = log(&c);
    let model = CoPurchaseModel::build(
        &log,
        &c,
        ModelParams::new(day(20)).min_pair_customers(3).asymmetry(0.5),
    );
    let rules = model.associations(&c, "3");
    // Buyers of 3 (5 of 10) all bought 1 and 2; nobody bought 3 with 4; 5 is below 3 buyers.
    let names: Vec<&str> = rules.iter().map(|r| r.consequent.as_str()).collect();
    assert_eq!(names, ["1", "2"]);
    let r = &rules[0];
    assert_eq!(r.customers, 5);
    assert!((r.support - 0.5).abs() < 1e-9);
    assert!((r.confidence - 1.0).abs() < 1e-9);
    assert!((r.lift - 1.0).abs() < 1e-9);
    // Cosine: 5 / sqrt(5 × 10).
    assert!((r.score - 5.0 / 50f64.sqrt()).abs() < 1e-6);
    assert!(model.associations(&c, "unknown").is_empty());
}

#[test]
fn recommend_personal_picks_leave_out_recent_subscribed_and_unavailable() {
    let mut c = catalogue();
    let mut log = log(&c);
    // A newcomer bought 3 long ago and 1 yesterday: 1 is recent, 2 is the pick.
    let n = log.customer(&cid("new"));
    log.push(n, c.index_of("3").unwrap(), day(11).timestamp(), 1, 3_000);
    log.push(n, c.index_of("1").unwrap(), day(119).timestamp(), 1, 1_000);
    let params = ModelParams::new(day(120)).min_pair_customers(2);
    let model = CoPurchaseModel::build(&log, &c, params.clone());
    let recs = model.recommend(&log, &c, &cid("new"), 3);
    assert_eq!(recs[0].product, "2");
    assert!(recs.iter().all(|r| r.product != "1"), "bought yesterday: {recs:?}");
    assert_eq!(recs[0].reason.explain(&c), "P1を購入された方に人気");
    // Subscribed, or out of stock: left out.
    log.subscribe(n, c.index_of("2").unwrap());
    c.set_available("4", true, false);
    let model = CoPurchaseModel::build(&log, &c, params);
    let recs = model.recommend(&log, &c, &cid("new"), 5);
    assert!(recs.iter().all(|r| r.product != "2" && r.product != "4"), "{recs:?}");
    assert!(recs.iter().all(|r| c.get(&r.product).unwrap().available()));
}

#[test]
fn recommend_recent_history_outweighs_old_and_ties_break_by_id() {
    let c = catalogue();
    let mut log = PurchaseLog::new();
    // Pairs (1,2) and (5,6) each bought together by 3 customers.
    for n in 0..3 {
        let cu = log.customer(&cid(&format!("a{n}")));
        log.push(cu, 0, day(1).timestamp(), 1, 0);
        log.push(cu, 1, day(1).timestamp(), 1, 0);
        let cu = log.customer(&cid(&format!("b{n}")));
        log.push(cu, 4, day(1).timestamp(), 1, 0);
        log.push(cu, 5, day(1).timestamp(), 1, 0);
    }
    // x bought 1 long ago and 5 recently: 6 (via 5) ranks above 2 (via 1).
    let x = log.customer(&cid("x"));
    log.push(x, 0, day(2).timestamp(), 1, 0);
    log.push(x, 4, day(150).timestamp(), 1, 0);
    let params = ModelParams::new(day(200)).min_pair_customers(2).exclude_recent(Duration::days(1));
    let model = CoPurchaseModel::build(&log, &c, params);
    let recs = model.recommend(&log, &c, &cid("x"), 2);
    assert_eq!(recs.iter().map(|r| r.product.as_str()).collect::<Vec<_>>(), ["6", "2"]);
    // A customer without history gets best-sellers, ties by ID: nothing sold in the last
    // 30 days, so no fallback at all.
    assert!(model.recommend(&log, &c, &cid("unknown"), 3).is_empty());
}

#[test]
fn recommend_all_matches_one_by_one_whatever_the_threads() {
    let c = catalogue();
    let log = log(&c);
    let one = CoPurchaseModel::build(
        &log,
        &c,
        ModelParams::new(day(30)).min_pair_customers(1).threads(1),
    );
    let three = CoPurchaseModel::build(
        &log,
        &c,
        ModelParams::new(day(30)).min_pair_customers(1).threads(3),
    );
    let a = one.recommend_all(&c, log.customers(), 4);
    let b = three.recommend_all(&c, log.customers(), 4);
    for i in 0..log.customers() {
        assert_eq!(a.items_of(i).collect::<Vec<_>>(), b.items_of(i).collect::<Vec<_>>());
        let id = log.customer_id(u32::try_from(i).unwrap()).unwrap().clone();
        let single: Vec<String> =
            one.recommend(&log, &c, &id, 4).into_iter().map(|r| r.product).collect();
        let all: Vec<String> = a.of(&c, i).into_iter().map(|r| r.product).collect();
        assert_eq!(single, all);
    }
    assert_eq!(one.rule_count(), three.rule_count());
}

#[test]
fn recommend_scores_hit_rate_and_ndcg() {
    let c = catalogue();
    let mut log = log(&c);
    // Test window purchases: c0 buys 4, c5 buys 3.
    let c0 = log.customer_index(&cid("c0")).unwrap();
    let c5 = log.customer_index(&cid("c5")).unwrap();
    log.push(c0, c.index_of("4").unwrap(), day(40).timestamp(), 1, 0);
    log.push(c5, c.index_of("3").unwrap(), day(41).timestamp(), 1, 0);
    let params = ModelParams::new(day(30)).min_pair_customers(2).exclude_recent(Duration::days(60));
    let e = evaluate(&log, &c, params, day(60), 1);
    // c0 (bought 1,2,3,5) is told 4, c5 (bought 1,2,4) is told 3: both hit at rank 1.
    assert_eq!(e.model.customers, 2);
    assert!((e.model.hit_rate - 1.0).abs() < 1e-9 && (e.model.ndcg - 1.0).abs() < 1e-9);
    // With the same exclusions the best-seller list leaves each of them one product: the
    // same ones, so the baseline hits too.
    assert_eq!(e.baseline.customers, 2);
    assert!((e.baseline.hit_rate - 1.0).abs() < 1e-9);
    let test = TestSet::of(&log, day(30), day(60));
    assert_eq!(test.bought(c0 as usize), [c.index_of("4").unwrap()]);
}

#[test]
fn recommend_carousel_respects_line_limits_and_falls_back_to_text() {
    let items: Vec<CatalogueItem> = (1..=20)
        .map(|n| {
            CatalogueItem::new(n.to_string(), "長い商品名".repeat(20))
                .with_price_yen(12_345)
                .with_image_url(format!("https://img.example.com/{n}.jpg"))
        })
        .collect();
    let c = Catalogue::from_items(items);
    let cards: Vec<Card> =
        (1..=20).map(|n| Card::new(n.to_string(), Some("いま人気の商品".into()))).collect();
    let pc =
        ProductCards::builder("https://shop.example/products/{id}").max_cards(12).build().unwrap();
    let m = pc.message(&c, &cards, None).unwrap();
    let Message::Flex(flex) = &m else { panic!("expected flex, got {m:?}") };
    let FlexContainer::Carousel(carousel) = &flex.contents else { panic!("carousel") };
    assert_eq!(carousel.contents.len(), 12);
    assert!(flex.alt_text.starts_with("あなたへのおすすめ: "));
    assert!(
        flex.alt_text.encode_utf16().count() <= crate::line::message::limits::FLEX_ALT_TEXT_MAX
    );
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.len() <= FLEX_CAROUSEL_JSON_MAX);
    assert!(json.contains("¥12,345（税込）") && json.contains("https://shop.example/products/3"));
    // Fewer than asked: what there is; none (or unknown products): the fallback text.
    let m = pc.message(&c, &cards[..2], None).unwrap();
    assert!(
        matches!(&m, Message::Flex(f) if matches!(&f.contents, FlexContainer::Carousel(k) if k.contents.len() == 2))
    );
    let unknown = [Card::new("999", None)];
    assert!(
        matches!(pc.message(&c, &unknown, None).unwrap(), Message::Text(t) if t.text.contains("おすすめ商品がありません"))
    );
    let three = ProductCards::builder("https://shop.example/p/{id}").min_cards(3).build().unwrap();
    assert!(matches!(three.message(&c, &cards[..2], None).unwrap(), Message::Text(_)));
}

#[test]
fn recommend_cards_builder_rejects_bad_options_and_formats_yen() {
    assert!(matches!(
        ProductCards::builder("ftp://x/{id}").build(),
        Err(ContentError::ProductUrl(_))
    ));
    assert!(matches!(
        ProductCards::builder("https://x/p").build(),
        Err(ContentError::ProductUrl(_))
    ));
    assert!(matches!(
        ProductCards::builder("https://x/{id}").max_cards(13).build(),
        Err(ContentError::Option(_))
    ));
    assert!(matches!(
        ProductCards::builder("https://x/{id}").button_label("").build(),
        Err(ContentError::Option(_))
    ));
    assert_eq!(yen_text(1_980), "¥1,980");
    assert_eq!(yen_text(1_234_567), "¥1,234,567");
    assert_eq!(yen_text(500), "¥500");
    let pc = ProductCards::builder("https://x/p/{id}").build().unwrap();
    assert_eq!(pc.product_url("a b"), "https://x/p/a+b");
}

#[test]
fn recommend_vars_fill_templates() {
    let c = catalogue();
    let cards = ProductCards::builder("https://shop.example/p/{id}").build().unwrap();
    let recs = vec![
        Recommendation {
            product: "2".into(),
            score: 1.0,
            reason: Reason::BoughtTogether { product: "1".into() },
        },
        Recommendation { product: "4".into(), score: 0.0, reason: Reason::Popular },
    ];
    let vars = recommendation_vars("rec", &recs, &c, &cards);
    assert_eq!(vars.get("rec.count"), Some("2"));
    assert_eq!(vars.get("rec.names"), Some("P2、P4"));
    assert_eq!(vars.get("rec.1.price"), Some("¥2,000"));
    assert_eq!(vars.get("rec.1.reason"), Some("P1を購入された方に人気"));
    assert_eq!(vars.get("rec.2.reason"), Some("いま人気の商品"));
    assert_eq!(vars.get("rec.2.url"), Some("https://shop.example/p/4"));
    let t = crate::campaign::MessageTemplate::text(
        "{{ rec.1.name }}（{{ rec.1.price }}）がおすすめです",
    )
    .unwrap();
    assert_eq!(t.render(&vars).unwrap(), Message::text("P2（¥2,000）がおすすめです"));
}
