//! From synced shop data to the segment engine's input ([`crate::segment::CustomerFacts`]).
//!
//! The mapping, field by field:
//! - attributes: `rank` and `sex` (code, else label) as text, `points`, `total_spent` (minor
//!   units), `order_count` as integers, `opt_in` as a boolean, `labels` as a list;
//! - `birth_date`; `registered_at` from the record's creation time;
//! - LINE: linked when the record carries a LINE user ID, with its link time (friendship is not
//!   in the shop's data: the link store's follow status supplies it);
//! - `point_expires_at`, `last_shipped_at`, `last_delivered_at` as times, `prefecture` as
//!   text, `email_stopped` as a boolean, `coupons` (every coupon used) as a list,
//!   `subscription_skips_next` as a boolean when any active subscription skips its next delivery;
//! - orders that count as purchases ([`Order::is_purchase`]: not canceled, not unpaid or
//!   voided) and have an order time; amounts in minor units (yen); line items by product (else
//!   SKU, else name) with their first category; an order is a subscription order when it
//!   references a subscription;
//! - subscriptions that name the customer and have a start time.

use std::collections::BTreeMap;

use super::model::{Coded, Customer, Order, Subscription, SubscriptionState};
use crate::segment::{self, AttrValue, CustomerFacts, OrderKind};

/// The segment engine's facts for one customer, from the shop's records.
#[must_use]
pub fn customer_facts<'a>(
    customer: &Customer,
    orders: impl IntoIterator<Item = &'a Order>,
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
) -> CustomerFacts {
    let mut facts = CustomerFacts::new(customer.id.clone());
    let orders: Vec<&Order> = orders.into_iter().filter(|o| o.is_purchase()).collect();
    let subscriptions: Vec<&Subscription> = subscriptions.into_iter().collect();
    facts.attributes = attributes(customer);
    extra_attributes(&mut facts.attributes, &orders, &subscriptions);
    facts.birth_date = customer.birth_date;
    facts.registered_at = customer.created_at;
    facts.line.linked = customer.line_user_id.is_some();
    facts.line.linked_at = customer.line_linked_at;
    facts.orders = orders.into_iter().filter_map(order).collect();
    facts.orders.sort_by(|a, b| (a.placed_at, &a.id).cmp(&(b.placed_at, &b.id)));
    facts.subscriptions = subscriptions.into_iter().filter_map(subscription).collect();
    facts
}

fn coded(value: &Coded) -> Option<AttrValue> {
    value.code.clone().or_else(|| value.label.clone()).map(AttrValue::Text)
}

fn attributes(c: &Customer) -> BTreeMap<String, AttrValue> {
    let mut a = BTreeMap::new();
    let mut put = |name: &str, value: Option<AttrValue>| {
        if let Some(value) = value {
            a.insert(name.to_owned(), value);
        }
    };
    put("rank", c.rank.as_ref().and_then(coded));
    put("sex", c.sex.as_ref().and_then(coded));
    put("points", c.points.map(AttrValue::Int));
    put("total_spent", c.total_spent.map(|m| AttrValue::Int(m.minor)));
    put("order_count", c.order_count.map(|n| AttrValue::Int(i64::from(n))));
    put("opt_in", c.opt_in.map(AttrValue::Bool));
    put("labels", Some(AttrValue::List(c.labels.clone())));
    put("point_expires_at", c.points_expire_at.map(AttrValue::Time));
    put("prefecture", c.prefecture.clone().map(AttrValue::Text));
    put("email_stopped", c.email_stopped.map(AttrValue::Bool));
    a
}

fn extra_attributes(
    a: &mut BTreeMap<String, AttrValue>,
    orders: &[&Order],
    subscriptions: &[&Subscription],
) {
    let latest = |at: fn(&Order) -> Option<chrono::DateTime<chrono::Utc>>| {
        orders.iter().filter_map(|o| at(o)).max().map(AttrValue::Time)
    };
    if let Some(t) = latest(|o| o.shipped_at) {
        a.insert("last_shipped_at".into(), t);
    }
    if let Some(t) = latest(|o| o.delivered_at) {
        a.insert("last_delivered_at".into(), t);
    }
    let mut coupons: Vec<String> = orders.iter().flat_map(|o| o.coupons.iter().cloned()).collect();
    coupons.sort();
    coupons.dedup();
    if !coupons.is_empty() {
        a.insert("coupons".into(), AttrValue::List(coupons));
    }
    let skips = subscriptions
        .iter()
        .filter(|s| s.state == SubscriptionState::Active)
        .filter_map(|s| s.skip_next_delivery)
        .reduce(|x, y| x || y);
    if let Some(skips) = skips {
        a.insert("subscription_skips_next".into(), AttrValue::Bool(skips));
    }
}

fn order(o: &Order) -> Option<segment::OrderFact> {
    if !o.is_purchase() {
        return None;
    }
    let placed_at = o.ordered_at?;
    let items = o
        .items
        .iter()
        .filter_map(|i| {
            let product = i.product.clone().or_else(|| i.sku.clone()).or_else(|| i.name.clone())?;
            Some(segment::LineItemFact {
                product,
                sku: i.sku.clone(),
                category: i.categories.first().cloned(),
                quantity: i.quantity,
                unit_price: i.unit_price.map_or(0, |m| m.minor),
            })
        })
        .collect();
    let kind =
        if o.subscription_id.is_some() { OrderKind::Subscription } else { OrderKind::OneOff };
    Some(segment::OrderFact {
        id: o.id.clone(),
        placed_at,
        amount: o.total.map_or(0, |m| m.minor),
        kind,
        items,
    })
}

fn subscription(s: &Subscription) -> Option<segment::SubscriptionFact> {
    let state = match &s.state {
        SubscriptionState::Active => segment::SubscriptionState::Active,
        SubscriptionState::Paused => segment::SubscriptionState::Paused,
        SubscriptionState::Canceled => segment::SubscriptionState::Canceled,
        SubscriptionState::Other(_) => return None,
    };
    Some(segment::SubscriptionFact {
        id: s.id.clone(),
        state,
        product: s.items.iter().find_map(|i| i.product.clone().or_else(|| i.sku.clone())),
        started_at: s.started_at?,
        canceled_at: s.canceled_at,
        cancel_reason: s.cancel_reason.clone(),
        deliveries: s.deliveries.unwrap_or(0),
        next_delivery_at: s.next_delivery_at,
    })
}
