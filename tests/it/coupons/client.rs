//! The coupon endpoints of `LineClient` against `FakeLine`, and the fake's own validation of
//! what LINE would refuse.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use enishi::CouponId;
use enishi::line::message::Message;
use enishi::line::{
    AcquisitionCondition, CouponCreateRequest, CouponReward, CouponRewardType, CouponStatus,
    LineClient, LineError, PushRequest, RetryPolicy,
};
use enishi::testkit::{self, Endpoint, FakeLine};
use serde_json::{Value, json};

pub(super) fn client(line: &FakeLine) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .request_timeout(Duration::from_secs(20))
        .retry_policy(RetryPolicy::default().max_attempts(1))
        .build()
        .unwrap()
}

pub(super) fn spring(title: &str) -> CouponCreateRequest {
    CouponCreateRequest::new(
        title,
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap(),
    )
    .reward(CouponReward::discount_percent(10))
    .description("オンラインストアで使えます")
}

#[tokio::test]
async fn coupon_create_get_list_close_against_the_fake() {
    let line = FakeLine::start().await.unwrap();
    let client = client(&line);
    let id = client.create_coupon(&spring("春の10%オフ")).await.unwrap();
    let info = client.coupon(&id).await.unwrap();
    assert_eq!(info.coupon_id.as_ref(), Some(&id));
    assert_eq!(info.title.as_deref(), Some("春の10%オフ"));
    assert_eq!(info.status, Some(CouponStatus::Running));
    assert_eq!(info.start_timestamp, Some(1_772_323_200));
    let reward = info.reward.unwrap();
    assert_eq!(reward.kind, CouponRewardType::Discount);
    assert_eq!(reward.price_info.unwrap().percentage, Some(10));

    // 45 more, so listing needs pages of at most 100 (and 20 by default).
    let mut ids = vec![id.clone()];
    for n in 0..45 {
        let lottery =
            spring(&format!("抽選 {n}")).acquisition(AcquisitionCondition::lottery(30, 100));
        ids.push(client.create_coupon(&lottery).await.unwrap());
    }
    let page = client.coupons(&[], None, None).await.unwrap();
    assert_eq!(page.items.len(), 20, "LINE's default page size");
    assert!(page.next.is_some());
    let page2 = client.coupons(&[], page.next.as_deref(), Some(20)).await.unwrap();
    assert_eq!(page2.items[0].coupon_id, ids[20]);
    let all = client.all_coupons(&[]).await.unwrap();
    assert_eq!(all.iter().map(|c| c.coupon_id.clone()).collect::<Vec<_>>(), ids);

    client.close_coupon(&id).await.unwrap();
    client.close_coupon(&id).await.unwrap(); // 410 Gone: already closed, not an error
    assert_eq!(client.coupon(&id).await.unwrap().status, Some(CouponStatus::Closed));
    let closed = client.all_coupons(&[CouponStatus::Closed]).await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].coupon_id, id);
    let running = client.all_coupons(&[CouponStatus::Running]).await.unwrap();
    assert_eq!(running.len(), 45);
    assert_eq!(line.request_count(Endpoint::CouponClose), 2);
    assert_eq!(line.coupons().len(), 46);

    let unknown = client.coupon(&CouponId::new("COUPON_nope").unwrap()).await.unwrap_err();
    assert_eq!(unknown.status(), Some(http::StatusCode::NOT_FOUND));
    let unknown = client.close_coupon(&CouponId::new("COUPON_nope").unwrap()).await.unwrap_err();
    assert_eq!(unknown.status(), Some(http::StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn coupon_limits_are_checked_before_sending() {
    let line = FakeLine::start().await.unwrap();
    let client = client(&line);
    let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let cases: Vec<(CouponCreateRequest, &str)> = vec![
        (spring(&"あ".repeat(61)), "title"),
        (spring(""), "title"),
        (spring("t").description("d".repeat(1001)), "description"),
        (spring("t").usage_condition("u".repeat(101)), "usageCondition"),
        (CouponCreateRequest::new("t", t, t), "endTimestamp"),
        (
            spring("t").acquisition(AcquisitionCondition::lottery(100, 10)),
            "acquisitionCondition.lotteryProbability",
        ),
        (
            spring("t").acquisition(AcquisitionCondition::lottery(50, 1_000_000)),
            "acquisitionCondition.maxAcquireCount",
        ),
        (spring("t").reward(CouponReward::discount_percent(0)), "reward.priceInfo.percentage"),
        (spring("t").reward(CouponReward::cash_back_percent(100)), "reward.priceInfo.percentage"),
        (spring("t").image_url("http://example.com/a.png"), "imageUrl"),
    ];
    for (coupon, field) in cases {
        match client.create_coupon(&coupon).await {
            Err(LineError::Validation(v)) => {
                assert!(v.to_string().contains(field), "{field}: {v}");
            }
            other => panic!("{field}: expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(line.request_count(Endpoint::CouponCreate), 0, "nothing invalid was sent");
    let list = client.coupons(&[], None, Some(101)).await;
    assert!(matches!(list, Err(LineError::Validation(_))), "{list:?}");
}

/// What the fake refuses, sent raw (as another client or a hand-written request would).
#[tokio::test]
async fn coupon_fake_validates_like_line() {
    let line = FakeLine::start().await.unwrap();
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{}/v2/bot/coupon", line.api_base_url()))
            .bearer_auth(line.channel_access_token())
            .json(&body)
            .send()
    };
    let good = json!({
        "title": "送料無料", "startTimestamp": 1_772_323_200, "endTimestamp": 1_774_969_200,
        "maxUseCountPerTicket": 1, "visibility": "UNLISTED", "timezone": "ASIA_TOKYO",
        "acquisitionCondition": {"type": "normal"}, "reward": {"type": "free"}
    });
    assert_eq!(post(good.clone()).await.unwrap().status(), 200);
    let broken: Vec<(&str, Value, &str)> = vec![
        ("title", Value::Null, "title"),
        ("visibility", json!("PRIVATE"), "visibility"),
        ("timezone", json!("MARS_BASE"), "timezone"),
        ("maxUseCountPerTicket", json!(2), "maxUseCountPerTicket"),
        ("endTimestamp", json!(1_772_323_200), "endTimestamp"),
        (
            "acquisitionCondition",
            json!({"type": "lottery", "lotteryProbability": 0, "maxAcquireCount": 5}),
            "acquisitionCondition.lotteryProbability",
        ),
        (
            "reward",
            json!({"type": "free", "priceInfo": {"type": "fixed", "fixedAmount": 100}}),
            "reward.priceInfo.type",
        ),
        (
            "reward",
            json!({"type": "discount", "priceInfo": {"type": "explicit", "originalPrice": 100, "priceAfterDiscount": 100}}),
            "reward.priceInfo.priceAfterDiscount",
        ),
        ("reward", json!({"type": "points"}), "reward.type"),
    ];
    for (field, value, property) in broken {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        let response = post(body).await.unwrap();
        assert_eq!(response.status(), 400, "{field}");
        let error: Value = response.json().await.unwrap();
        let properties: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["property"].as_str())
            .collect();
        assert!(properties.contains(&property), "{field}: {error}");
    }
    let list = http
        .get(format!("{}/v2/bot/coupon?status=EXPIRED", line.api_base_url()))
        .bearer_auth(line.channel_access_token())
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 400);
    assert_eq!(line.coupons().len(), 1, "only the valid coupon was created");
}

/// A coupon message must name a running coupon of the account.
#[tokio::test]
async fn coupon_message_needs_a_running_coupon() {
    let user = testkit::user_id(1);
    let line = FakeLine::builder().friends([&user]).start().await.unwrap();
    let client = client(&line);
    let to: enishi::LineUserId = user.parse().unwrap();
    let push = |coupon: &str| PushRequest::new(to.clone(), vec![Message::coupon(coupon)]);
    let unknown = client.push(push("COUPON_unknown")).await.unwrap_err();
    assert_eq!(unknown.status(), Some(http::StatusCode::BAD_REQUEST), "{unknown}");
    let id = client.create_coupon(&spring("来店クーポン")).await.unwrap();
    client.push(push(id.as_str())).await.unwrap();
    assert_eq!(line.messages_for(&user), vec![json!({"type": "coupon", "couponId": id.as_str()})]);
    client.close_coupon(&id).await.unwrap();
    let closed = client.push(push(id.as_str())).await.unwrap_err();
    assert_eq!(closed.status(), Some(http::StatusCode::BAD_REQUEST), "{closed}");
    assert_eq!(line.deliveries().len(), 1);
}
