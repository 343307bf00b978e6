//! Planning and sending through the app: audience in one batched read, policy, checks.

use enishi::app::AppError;
use enishi::campaign::{Campaign, ExclusionReason, MessageTemplate};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;

use super::harness::{shop, user};

fn campaign(id: &str) -> Campaign {
    Campaign::new(
        id.parse().unwrap(),
        [MessageTemplate::text("{{name}}さま、ありがとうございます").unwrap()],
    )
}

#[tokio::test]
async fn app_plans_linked_following_buyers_and_sends_each_once() {
    let shop = shop(6).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    app.sync().await.unwrap();
    let segment = SegmentDefinition::parse("orders count >= 1").unwrap();
    let plan = app.plan(&campaign("thanks"), &segment).await.unwrap();
    let dry = plan.dry_run();
    assert_eq!(dry.candidates, 4, "customers 1 to 4 ordered");
    assert_eq!(dry.recipients, 2, "of those, 1 and 3 are linked");
    assert_eq!(dry.excluded(ExclusionReason::NotLinked), 2);
    let report = app.send(plan).await.unwrap();
    assert_eq!(report.sent, 2);
    for i in [1, 3] {
        let got = shop.line.messages_for(user(i).as_str());
        assert_eq!(got.len(), 1, "customer {i}: {got:?}");
        assert_eq!(got[0]["text"], format!("顧客{i}さま、ありがとうございます"));
    }
    assert!(shop.line.duplicate_deliveries().is_empty());
}

#[tokio::test]
async fn app_consent_attribute_and_blocks_exclude() {
    let shop = shop(6).await;
    let storage = Storage::in_memory();
    let app = shop.builder(storage.clone()).consent_attribute("opt_in").build().unwrap();
    storage.links().set_following(&user(1), false, chrono::Utc::now()).await.unwrap();
    app.sync().await.unwrap();
    let segment = SegmentDefinition::parse("orders count >= 1").unwrap();
    let plan = app.plan(&campaign("c"), &segment).await.unwrap();
    let dry = plan.dry_run();
    assert_eq!(dry.recipients, 0, "1 blocked, 3 did not opt in: {dry}");
    assert_eq!(dry.excluded(ExclusionReason::NoConsent), 1);
    assert_eq!(dry.excluded(ExclusionReason::NotFollowing), 1);
}

#[tokio::test]
async fn app_refuses_a_misspelt_segment_before_planning() {
    let shop = shop(3).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    app.sync().await.unwrap();
    let typo = SegmentDefinition::parse("attr opt_inn = true").unwrap();
    let err = app.plan(&campaign("c"), &typo).await.unwrap_err();
    assert!(matches!(err, AppError::Segment(_)), "{err:?}");
    assert!(format!("{err}{:?}", err).contains("opt_in"), "did you mean: {err:?}");
    let lax = shop.builder(Storage::in_memory()).unchecked_segments().build().unwrap();
    lax.sync().await.unwrap();
    assert_eq!(lax.plan(&campaign("c"), &typo).await.unwrap().dry_run().recipients, 0);
}

#[tokio::test]
async fn app_frequency_cap_counts_sends_of_other_campaigns() {
    let shop = shop(2).await;
    let policy = enishi::campaign::DeliveryPolicy::new()
        .with_frequency_cap(enishi::campaign::FrequencyCap::new(1, chrono::TimeDelta::days(7)));
    let app = shop.builder(Storage::in_memory()).policy(policy).build().unwrap();
    app.sync().await.unwrap();
    let everyone = SegmentDefinition::parse("line linked").unwrap();
    let first = app.plan(&campaign("first"), &everyone).await.unwrap();
    assert_eq!(first.dry_run().recipients, 1);
    app.send(first).await.unwrap();
    let second = app.plan(&campaign("second"), &everyone).await.unwrap();
    assert_eq!(second.dry_run().recipients, 0, "customer 1's slot is used");
}
