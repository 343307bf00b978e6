//! UC-14 end to end: a scenario triggered by buying product A plans its step, the
//! recommendation step adds a per-customer carousel of the products A's buyers also bought
//! (with tracked links), and the pushes pass the fake LINE server's message validation.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use chrono::Duration;
use enishi::campaign::scenario::{ScenarioInput, ScenarioSet, ScenarioState};
use enishi::campaign::{Batch, LinkTracker};
use enishi::commerce::customer_facts;
use enishi::line::message::Message;
use enishi::line::{LineClient, PushRequest};
use enishi::recommend::{
    Catalogue, CoPurchaseModel, ModelParams, Pick, ProductCards, ProductContent, PurchaseLog,
    RankBy, RecommendationStep, Sales, Window,
};
use enishi::testkit::{AffinityShop, AffinitySpec, FakeLine};

const A: &str = "12";

fn uc14_set() -> ScenarioSet {
    let json = format!(
        r#"{{
          "segments": {{ "linked": "line linked" }},
          "scenario": [{{
            "name": "uc14-a-buyers",
            "description": "A を購入された方へ関連商品 B のおすすめ",
            "use_cases": ["UC-14"],
            "trigger": {{ "type": "order_placed", "products": ["{A}"] }},
            "audience": "segment \"linked\"",
            "steps": [{{ "name": "recommend", "delay": "3d",
                         "message": "{{{{ name }}}}様、ご購入ありがとうございます。一緒に選ばれている商品です。" }}]
          }}]
        }}"#
    );
    ScenarioSet::from_json(&json).unwrap()
}

fn tracker() -> LinkTracker {
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(73).wrapping_add(29)).collect();
    LinkTracker::new(key, "https://t.example.com/r").unwrap()
}

#[tokio::test]
async fn recommend_uc14_scenario_sends_carousels_that_pass_line_validation() {
    let mut spec = AffinitySpec::default();
    spec.customers = 300;
    spec.orders = 4_000;
    spec.products = 100;
    let shop = AffinityShop::new(spec);
    let (customers, products, orders) = shop.records();
    let catalogue = Catalogue::from_products(&products);
    let log = PurchaseLog::from_records(&catalogue, &orders, []);
    let model = CoPurchaseModel::build(&log, &catalogue, ModelParams::new(spec.end));

    // The scenario sees every customer with their orders; A's buyers of the last week trigger.
    let set = uc14_set();
    let campaign = set.get("uc14-a-buyers").unwrap().campaign().clone();
    let start = spec.end - Duration::days(7);
    let mut state = ScenarioState::new(set, start);
    for c in &customers {
        let mine = orders.iter().filter(|o| o.customer_id.as_ref() == Some(&c.id));
        let facts = customer_facts(c, mine, []);
        state
            .apply(ScenarioInput::Customer {
                facts: Box::new(facts),
                line_user: c.line_user_id.clone(),
            })
            .unwrap();
    }
    let mut batches: Vec<Batch> = Vec::new();
    for d in 0..=10 {
        batches.extend(state.tick(start + Duration::days(d)).batches);
    }
    assert!(!batches.is_empty(), "nobody bought {A} in the last week");

    // The recommendation step: per customer, products bought with A, tracked links.
    let cards = ProductCards::builder("https://shop.example/products/{id}")
        .title("A をご購入の方へのおすすめ")
        .max_cards(5)
        .build()
        .unwrap();
    let ranking = Sales::of(&log, &catalogue, Window::days_before(spec.end, 7)).best_sellers(
        &catalogue,
        None,
        RankBy::Units,
        10,
        true,
    );
    let tracker = tracker();
    let content = ProductContent {
        catalogue: &catalogue,
        log: &log,
        model: &model,
        ranking: &ranking,
        tracker: Some(&tracker),
    };
    let step = RecommendationStep::new(campaign, Pick::BoughtWith { product: A.into() }, cards)
        .only_step("recommend");
    assert_eq!(step.apply_all(&mut batches, &content).unwrap(), batches.len());

    let line = FakeLine::builder()
        .no_rate_limits()
        .friends(customers.iter().filter_map(|c| c.line_user_id.as_ref()).map(|u| u.as_str()))
        .start()
        .await
        .unwrap();
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .request_timeout(StdDuration::from_secs(20))
        .build()
        .unwrap();
    let allowed: BTreeSet<String> =
        model.associations(&catalogue, A).into_iter().map(|r| r.consequent).collect();
    for b in &batches {
        assert_eq!(b.messages.len(), 2, "{:?}", b.id);
        let Message::Flex(flex) = &b.messages[1] else {
            panic!("no carousel: {:?}", b.messages[1])
        };
        assert!(flex.alt_text.starts_with("A をご購入の方へのおすすめ: "));
        let json = serde_json::to_string(&b.messages[1]).unwrap();
        // Every link is tracked, and names its product among A's associations (never A,
        // just bought).
        let links = json.matches("https://t.example.com/r/").count();
        assert!(links >= 2, "{json}");
        let to = b.recipients[0].line_user.clone();
        let req = PushRequest::new(to.clone(), b.messages.clone()).retry_key(b.retry_key.clone());
        client.push(req).await.unwrap_or_else(|e| panic!("LINE refused {}: {e}", b.id));
        let sent = line.messages_for(to.as_str());
        assert_eq!(sent.last().unwrap()["type"], "flex");
        assert_eq!(sent.last().unwrap()["contents"]["type"], "carousel");
    }
    // The tracked links decode to product pages of A's associations.
    for b in &batches {
        let json = serde_json::to_string(&b.messages[1]).unwrap();
        for token in json.split("https://t.example.com/r/").skip(1) {
            let token: String = token.chars().take_while(|c| *c != '"').collect();
            let link = tracker.verify(&token).unwrap();
            assert_eq!(link.context.customer, b.recipients[0].customer);
            let product = link.url.rsplit('/').next().unwrap().to_owned();
            assert_ne!(product, A);
            assert!(allowed.contains(&product), "{product} is not bought with {A}");
        }
    }
    assert_eq!(line.delivery_count(), batches.len());
    assert!(line.duplicate_deliveries().is_empty());
}
