//! Coupon redemptions joined to orders (an ecforce order names the codes used on it).

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use enishi::campaign::{
    Batch, BatchOutcome, BatchRecipient, BatchRecord, BatchStatus, CouponClaim, CouponIssueFact,
    Transport, coupon_redemptions, coupon_results,
};
use enishi::commerce::{Money, Order, OrderState};
use enishi::line::message::Message;
use enishi::{BatchId, CampaignId, CustomerId, LineUserId};

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}

fn cid(n: u32) -> CustomerId {
    CustomerId::new(format!("c-{n}")).unwrap()
}

fn sent(n: u32, arm: &str) -> BatchRecord {
    let campaign = CampaignId::new("winter").unwrap();
    let recipient = BatchRecipient {
        customer: cid(n),
        line_user: LineUserId::new(format!("U{n:032x}")).unwrap(),
    };
    let batch = Batch::new(
        BatchId::new(format!("winter#coupon:c-{n}")).unwrap(),
        campaign,
        Transport::Push,
        vec![recipient],
        vec![Message::text("coupon")],
        t(0),
    )
    .with_arm(arm);
    let outcome = BatchOutcome::Accepted { request_id: None, already_accepted: false };
    BatchRecord::new(batch, BatchStatus::Sent, 1, Some(outcome), t(0))
}

fn order(id: &str, customer: u32, at: i64, yen: i64, coupons: &[&str]) -> Order {
    let mut o = Order::new(id, OrderState::Completed, t(at));
    o.customer_id = Some(cid(customer));
    o.ordered_at = Some(t(at));
    o.total = Some(Money::jpy(yen));
    o.coupons = coupons.iter().map(|c| (*c).to_owned()).collect();
    o
}

#[test]
fn coupon_redemptions_join_codes_to_orders_per_arm() {
    let records = vec![sent(1, "a"), sent(2, "a"), sent(3, "b"), sent(4, "b")];
    let claims: Vec<CouponClaim> =
        (1..=4).map(|n| CouponClaim::new("winter", format!("W-{n}"), cid(n), t(-1))).collect();
    let issues = CouponIssueFact::from_pool(&records, &claims);
    assert_eq!(issues.len(), 4);
    let mut canceled = order("o-5", 3, 5, 9000, &["W-3"]);
    canceled.state = OrderState::Canceled;
    let orders = vec![
        order("o-1", 1, 2, 5000, &["w-1 "]), // case and spaces do not matter
        order("o-1b", 1, 3, 7000, &["W-1"]), // the same code again: counted once
        order("o-2", 2, 24 * 8, 3000, &["W-2"]), // outside the 7-day window
        canceled,                            // not a purchase
        order("o-6", 9, 4, 4000, &["W-4"]),  // a personal code passed on: still counts
        order("o-7", 3, 1, 1000, &["OTHER"]), // another code
    ];
    let redemptions = coupon_redemptions(&issues, &orders, Duration::days(7));
    let got: Vec<(&str, &str)> =
        redemptions.iter().map(|r| (r.issue.code.as_str(), r.order_id.as_str())).collect();
    assert_eq!(got, [("W-1", "o-1"), ("W-4", "o-6")]);
    assert_eq!(redemptions[1].ordered_by, Some(cid(9)));
    let results = coupon_results(&issues, &orders, Duration::days(7));
    let by_arm: Vec<(Option<&str>, u64, u64, u64)> =
        results.iter().map(|r| (r.arm.as_deref(), r.issued, r.redeemed, r.revenue)).collect();
    assert_eq!(by_arm, [(Some("a"), 2, 1, 5000), (Some("b"), 2, 1, 4000)]);

    // A shared code (one LINE coupon's code for everyone) counts only on one's own orders.
    let shared = CouponIssueFact::from_shared_code(&records, "LINE-WINTER");
    let orders = vec![
        order("s-1", 2, 1, 2000, &["LINE-WINTER"]),
        order("s-2", 8, 1, 2000, &["LINE-WINTER"]),
    ];
    let redemptions = coupon_redemptions(&shared, &orders, Duration::days(7));
    assert_eq!(redemptions.len(), 1);
    assert_eq!(redemptions[0].issue.customer, cid(2));
}
