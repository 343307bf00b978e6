//! Labels write-back: the client against the public fixture bodies (wiremock) and `LabelSync`
//! against the fake ecforce.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use enishi::CustomerId;
use enishi::commerce::conformance::sample_customers;
use enishi::commerce::{CommerceBackendExt, EcforceClient, LabelSync, LabelTarget, LabelingMethod};
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::ecforce::EcforceHarness;

fn cid(n: u32) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap()
}

fn ids(v: &[u32]) -> Vec<CustomerId> {
    v.iter().map(|n| cid(*n)).collect()
}

/// A public fixture body, read in place (`../shared/fixtures/ecforce` or
/// `$ENISHI_FIXTURES_DIR/ecforce`); `None` (test skipped) when absent outside CI.
fn fixture(name: &str) -> Option<String> {
    let root = std::env::var_os("ENISHI_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let file = root.join("ecforce").join(name);
    match std::fs::read_to_string(&file) {
        Ok(body) => Some(body),
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{}: {e}", file.display());
            eprintln!("note: {} missing; test skipped", file.display());
            None
        }
    }
}

fn client(base: &str) -> EcforceClient {
    EcforceClient::builder(base, "token").min_interval(Duration::ZERO).build().unwrap()
}

#[tokio::test]
async fn ecforce_labels_client_speaks_the_public_shapes() {
    let (Some(list), Some(created), Some(labeling)) = (
        fixture("labels-list-q-type-eq.json"),
        fixture("labels-create.json"),
        fixture("labeling-partial-failure.json"),
    ) else {
        return;
    };
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/admin/labels.json"))
        .and(query_param("q[type_eq]", "Customer"))
        .respond_with(ResponseTemplate::new(200).set_body_string(list))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/admin/labels.json"))
        .and(body_json(json!({"type": "Customer", "name": "customer_label", "color": "#FFFFFF"})))
        .respond_with(ResponseTemplate::new(201).set_body_string(created))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/admin/labeling.json"))
        .and(body_json(json!({"type": "Order", "method": "overwrite",
            "target_ids": [1, 2, 3, 4, 5], "label_ids": [1, 2, 3]})))
        .respond_with(ResponseTemplate::new(200).set_body_string(labeling))
        .expect(1)
        .mount(&server)
        .await;
    let shop = client(&server.uri());

    let labels = shop.labels(&LabelTarget::Customer).await.unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!((labels[0].id.as_str(), labels[0].name.as_str()), ("1", "customer_label"));
    assert_eq!(labels[0].color.as_deref(), Some("#FFFFFF"));
    assert_eq!(labels[1].color, None, "an empty colour is no colour");
    assert_eq!((labels[1].position, &labels[1].target), (Some(1), &LabelTarget::Customer));

    let label =
        shop.create_label(&LabelTarget::Customer, "customer_label", Some("#FFFFFF")).await.unwrap();
    assert_eq!((label.id.as_str(), label.target), ("1", LabelTarget::Customer));

    let result = shop
        .apply_labels(
            &LabelTarget::Order,
            LabelingMethod::Overwrite,
            &["1", "2", "3", "4", "5"],
            &["1", "2", "3"],
        )
        .await
        .unwrap();
    assert_eq!(result.succeeded, ["1", "2", "3"]);
    let failed: Vec<&str> = result.failed.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, ["4", "5"]);
    assert!(result.failed[1].message.contains("ALA9999"), "{}", result.failed[1].message);
}

#[tokio::test]
async fn ecforce_label_sync_creates_the_label_and_applies_the_difference() {
    let EcforceHarness { shop, client } = EcforceHarness::start().await;
    let mut customers = sample_customers(5);
    customers[4].labels = vec!["VIP".into()];
    shop.insert_customers(customers);
    let sync = LabelSync::line_linked().color("#06C755");

    let first = sync.run(&client, [], ids(&[1, 2, 5])).await.unwrap();
    assert!(first.created);
    assert_eq!(first.added, ids(&[1, 2, 5]));
    assert!(first.removed.is_empty() && first.failed.is_empty());
    assert_eq!(shop.customer(&cid(1)).unwrap().labels, ["LINE連携済み"]);
    assert_eq!(shop.customer(&cid(5)).unwrap().labels, ["VIP", "LINE連携済み"]);
    assert!(shop.customer(&cid(3)).unwrap().labels.is_empty());

    // Who has it now, read back from the customers' `labels` (a walk without the poll
    // sync's "before this second" bound, since the labeling just bumped them).
    let current: HashSet<CustomerId> = client
        .all_customers()
        .await
        .unwrap()
        .iter()
        .filter(|c| sync.holds(c))
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(current, ids(&[1, 2, 5]).into_iter().collect());

    let second = sync.run(&client, current.clone(), ids(&[2, 3, 5])).await.unwrap();
    assert!(!second.created, "the existing label is reused");
    assert_eq!((second.added, second.removed), (ids(&[3]), ids(&[1])));
    assert!(shop.customer(&cid(1)).unwrap().labels.is_empty());
    assert_eq!(
        shop.customer(&cid(5)).unwrap().labels,
        ["VIP", "LINE連携済み"],
        "staff's labels stay"
    );
    let labels = shop.labels();
    assert_eq!(labels.len(), 1);
    assert_eq!((labels[0].1.as_str(), labels[0].2.as_str()), ("LINE連携済み", "Customer"));

    // Nothing differs: no labeling request at all.
    let before = shop.labeling_requests();
    let third = sync.run(&client, ids(&[2, 3, 5]), ids(&[5, 3, 2])).await.unwrap();
    assert!(third.added.is_empty() && third.removed.is_empty());
    assert_eq!(shop.labeling_requests(), before);
}

#[tokio::test]
async fn ecforce_label_sync_chunks_and_reports_unknown_customers() {
    let EcforceHarness { shop, client } = EcforceHarness::start().await;
    shop.insert_customers(sample_customers(4));
    let sync = LabelSync::new("セグメント: 休眠").unwrap().chunk_size(2);
    let report = sync.run(&client, [], ids(&[1, 2, 3, 4, 99])).await.unwrap();
    assert_eq!(report.added, ids(&[1, 2, 3, 4]));
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].id, "99");
    assert!(report.failed[0].message.contains("ALA"), "{}", report.failed[0].message);
    assert_eq!(shop.labeling_requests(), 3, "5 customers in chunks of 2");
    assert_eq!(shop.customer(&cid(4)).unwrap().labels, ["セグメント: 休眠"]);
}

#[tokio::test]
async fn ecforce_labels_create_is_refused_for_a_duplicate_and_found_by_name() {
    let EcforceHarness { shop: _shop, client } = EcforceHarness::start().await;
    let target = LabelTarget::Customer;
    let made = client.create_label(&target, "VIP", None).await.unwrap();
    assert!(client.create_label(&target, "VIP", None).await.is_err());
    let found = client.find_label(&target, "VIP").await.unwrap().unwrap();
    assert_eq!(found.id, made.id);
    assert!(client.find_label(&target, "VIP2").await.unwrap().is_none());
    assert!(client.find_label(&LabelTarget::Order, "VIP").await.unwrap().is_none());
}
