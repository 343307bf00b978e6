//! Coupon redemptions joined to orders: which issued coupons were used, on which order, and
//! what that is worth per campaign and arm. Pure arithmetic over plain facts.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::campaign::coupon::CouponClaim;
use crate::campaign::{BatchRecord, BatchStatus};
use crate::commerce::Order;
use crate::{CampaignId, CustomerId};

/// One coupon that reached one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponIssueFact {
    /// The campaign (or `scenario.<name>`).
    pub campaign: CampaignId,
    /// The A/B arm, if any.
    pub arm: Option<String>,
    /// Who got it.
    pub customer: CustomerId,
    /// The code an order names when it is used.
    pub code: String,
    /// The code is the customer's own (a pool code): an order naming it redeems it whoever
    /// placed the order. A shared code (one LINE coupon's `couponCode` for everyone) redeems
    /// only on the customer's own orders.
    pub personal: bool,
    /// When LINE accepted the send.
    pub at: DateTime<Utc>,
}

impl CouponIssueFact {
    /// Facts for the pool codes sent by `records` (the journal's records of one campaign):
    /// each sent batch's recipients joined to the code they hold in `claims`.
    #[must_use]
    pub fn from_pool(records: &[BatchRecord], claims: &[CouponClaim]) -> Vec<Self> {
        let codes: HashMap<&CustomerId, &str> =
            claims.iter().map(|c| (&c.customer, c.code.as_str())).collect();
        sent(records)
            .filter_map(|(r, customer)| {
                let code = codes.get(customer)?;
                Some(Self::of(r, customer, code, true))
            })
            .collect()
    }

    /// Facts for a shared code (the `couponCode` of a LINE coupon) sent by `records`.
    #[must_use]
    pub fn from_shared_code(records: &[BatchRecord], code: &str) -> Vec<Self> {
        sent(records).map(|(r, customer)| Self::of(r, customer, code, false)).collect()
    }

    fn of(r: &BatchRecord, customer: &CustomerId, code: &str, personal: bool) -> Self {
        Self {
            campaign: r.batch.campaign.clone(),
            arm: r.batch.arm.clone(),
            customer: customer.clone(),
            code: code.to_owned(),
            personal,
            at: r.updated_at,
        }
    }
}

fn sent(records: &[BatchRecord]) -> impl Iterator<Item = (&BatchRecord, &CustomerId)> {
    records
        .iter()
        .filter(|r| r.status == BatchStatus::Sent)
        .flat_map(|r| r.batch.recipients.iter().map(move |p| (r, &p.customer)))
}

/// An issued coupon used on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponRedemption {
    /// The issue.
    pub issue: CouponIssueFact,
    /// The order that used it.
    pub order_id: String,
    /// Who placed the order (another customer than the issue's when a personal code was
    /// passed on).
    pub ordered_by: Option<CustomerId>,
    /// The order total in the minor unit (yen), if known.
    pub amount: u64,
    /// When the order was placed.
    pub ordered_at: DateTime<Utc>,
}

/// The coupon results of one campaign arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponResult {
    /// The campaign.
    pub campaign: CampaignId,
    /// The arm, if any.
    pub arm: Option<String>,
    /// Coupons that reached a customer.
    pub issued: u64,
    /// Of those, coupons used on an order within the window.
    pub redeemed: u64,
    /// `redeemed / issued`.
    pub redemption_rate: f64,
    /// Total of the redeeming orders (minor unit).
    pub revenue: u64,
    /// Distinct orders the redemptions are attributed to.
    #[serde(default)]
    pub orders: u64,
}

impl CouponResult {
    /// The figures as a row of the results report
    /// ([`ResultsReport::with_coupons`](crate::campaign::ResultsReport::with_coupons), which
    /// adds the campaign's conversion against its holdout).
    #[must_use]
    pub fn to_report(&self) -> crate::campaign::CouponStats {
        crate::campaign::CouponStats::new(
            self.campaign.as_str(),
            self.arm.clone(),
            self.issued,
            self.redeemed,
            self.orders,
            self.revenue,
        )
    }
}

/// Codes compare trimmed and case-insensitively (backends differ in how they keep them).
fn norm(code: &str) -> String {
    code.trim().to_uppercase()
}

/// Joins `issues` to `orders`: an issue is redeemed by the first purchase
/// ([`Order::is_purchase`]) naming its code in [`Order::coupons`] placed within `window` after
/// the issue, by the issue's customer (or by anyone, for a personal code). Each order redeems
/// at most one issue per code, each issue at most once.
#[must_use]
pub fn coupon_redemptions(
    issues: &[CouponIssueFact],
    orders: &[Order],
    window: Duration,
) -> Vec<CouponRedemption> {
    let mut by_code: HashMap<String, Vec<&Order>> = HashMap::new();
    for order in orders.iter().filter(|o| o.is_purchase()) {
        let mut codes: Vec<String> = order.coupons.iter().map(|c| norm(c)).collect();
        codes.sort();
        codes.dedup();
        for code in codes {
            by_code.entry(code).or_default().push(order);
        }
    }
    for list in by_code.values_mut() {
        list.sort_by_key(|o| (o.ordered_at.unwrap_or(o.updated_at), o.id.clone()));
    }
    let mut used: HashSet<(&str, String)> = HashSet::new();
    let mut out = Vec::new();
    let mut sorted: Vec<&CouponIssueFact> = issues.iter().collect();
    sorted.sort_by_key(|i| i.at);
    for issue in sorted {
        let code = norm(&issue.code);
        let Some(candidates) = by_code.get(&code) else { continue };
        let hit = candidates.iter().find(|o| {
            let at = o.ordered_at.unwrap_or(o.updated_at);
            at >= issue.at
                && at <= issue.at + window
                && (issue.personal || o.customer_id.as_ref() == Some(&issue.customer))
                && !used.contains(&(o.id.as_str(), code.clone()))
        });
        if let Some(order) = hit {
            used.insert((order.id.as_str(), code.clone()));
            out.push(CouponRedemption {
                issue: issue.clone(),
                order_id: order.id.clone(),
                ordered_by: order.customer_id.clone(),
                amount: order.total.map_or(0, |m| u64::try_from(m.minor).unwrap_or(0)),
                ordered_at: order.ordered_at.unwrap_or(order.updated_at),
            });
        }
    }
    out
}

/// Coupon results per campaign and arm: issued, redeemed, rate and revenue.
#[must_use]
pub fn coupon_results(
    issues: &[CouponIssueFact],
    orders: &[Order],
    window: Duration,
) -> Vec<CouponResult> {
    type Group = (u64, u64, u64, HashSet<String>);
    let mut groups: BTreeMap<(CampaignId, Option<String>), Group> = BTreeMap::new();
    for issue in issues {
        groups.entry((issue.campaign.clone(), issue.arm.clone())).or_default().0 += 1;
    }
    for r in coupon_redemptions(issues, orders, window) {
        let g = groups.entry((r.issue.campaign.clone(), r.issue.arm.clone())).or_default();
        g.1 += 1;
        g.2 += r.amount;
        g.3.insert(r.order_id);
    }
    groups
        .into_iter()
        .map(|((campaign, arm), (issued, redeemed, revenue, orders))| CouponResult {
            campaign,
            arm,
            issued,
            redeemed,
            redemption_rate: if issued == 0 { 0.0 } else { redeemed as f64 / issued as f64 },
            revenue,
            orders: orders.len() as u64,
        })
        .collect()
}
