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

/// The results report gets a coupon section from `coupon_results`: issued, redeemed, orders
/// attributed, and the campaign's conversion against its holdout from the same report.
#[test]
fn coupon_results_show_in_the_report_text_and_html() {
    use enishi::campaign::{PurchaseFact, ReportInput, ReportOptions, SendFact};
    // One campaign, no arms: 4 customers get a code, 4 are held out.
    let records: Vec<BatchRecord> = (1..=4)
        .map(|n| {
            let mut r = sent(n, "a");
            r.batch.arm = None;
            r
        })
        .collect();
    let claims: Vec<CouponClaim> =
        (1..=4).map(|n| CouponClaim::new("winter", format!("W-{n}"), cid(n), t(-1))).collect();
    let issues = CouponIssueFact::from_pool(&records, &claims);
    let orders = vec![
        order("o-1", 1, 2, 5000, &["W-1"]),
        order("o-2", 2, 3, 3000, &["W-2"]),
        order("o-3", 3, 4, 2000, &[]), // bought without the coupon: converted, not redeemed
        order("o-h", 11, 4, 4000, &[]), // one holdout customer bought
    ];
    let results = coupon_results(&issues, &orders, Duration::days(7));
    assert_eq!((results[0].issued, results[0].redeemed, results[0].orders), (4, 2, 2));

    let winter = CampaignId::new("winter").unwrap();
    let mut input = ReportInput::new();
    for n in 1..=4 {
        input.sends.push(SendFact::sent(winter.clone(), None, cid(n), t(0)));
        input.sends.push(SendFact::holdout(winter.clone(), None, cid(10 + n), t(0)));
    }
    for o in &orders {
        let who = o.customer_id.clone().unwrap();
        input.orders.push(PurchaseFact::new(who, o.ordered_at.unwrap(), 1000));
    }
    let report = input
        .build(&ReportOptions::default())
        .with_coupons(results.iter().map(|r| r.to_report()).collect());
    let row = &report.coupons[0];
    assert_eq!((row.issued, row.redeemed, row.orders, row.revenue), (4, 2, 2, 8000));
    assert_eq!(row.redemption_rate(), Some(0.5));
    assert_eq!(row.conversion_rate, Some(0.75), "3 of 4 sent bought");
    assert_eq!(row.holdout_conversion_rate, Some(0.25), "1 of 4 held out bought");
    assert!((row.uplift_points().unwrap() - 50.0).abs() < 1e-9);

    let text = report.to_string();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("coupons (issued"));
    assert!(lines.next().is_some(), "{text}");
    let line = lines.next().unwrap_or_default();
    assert!(line.trim_start().starts_with("winter "), "{text}");
    for cell in ["4", "2", "50.0%", "8000", "75.0%", "25.0%", "+50.0pt"] {
        assert!(line.split_whitespace().any(|c| c == cell), "{cell} in {line:?}");
    }
    let html = report.to_html();
    assert!(html.contains("<h2>Coupons</h2>"), "{html}");
    assert!(html.contains("<td>winter</td><td>4</td><td>2</td><td>50.0%</td><td>2</td><td>8000</td><td>75.0%</td><td>25.0%</td><td>+50.0pt</td>"));

    // Arms of one campaign: each row keeps its own coupon figures, and does not take the
    // campaign's (mixed-arm) conversion.
    let armed = vec![sent(1, "a"), sent(2, "b")];
    let issues = CouponIssueFact::from_pool(&armed, &claims);
    let results = coupon_results(&issues, &orders, Duration::days(7));
    let report = ReportInput::new()
        .build(&ReportOptions::default())
        .with_coupons(results.iter().map(|r| r.to_report()).collect());
    assert_eq!(report.coupons.len(), 2);
    assert!(report.coupons.iter().all(|c| c.conversion_rate.is_none() && c.redeemed == 1));
    assert!(report.to_string().contains("winter / a"));
}
