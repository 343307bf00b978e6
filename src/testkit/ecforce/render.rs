//! Renders model records as ecforce JSON:API resources. The shapes follow the public evidence
//! (the ecforce-go declarations and the bodies in the shared fixtures), not the adapter:
//! customers have a hex `number` unlike their ID and no `name` (names live on the billing
//! address), subscriptions name their customer by that number, variants have no `stock`,
//! orders carry a `payment_state` apart from `state`, and side-loads appear only when asked
//! for with `include`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::commerce::time::format_jst_response;
use crate::commerce::{Customer, Order, OrderState, Product, Subscription, SubscriptionState};

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| format_jst_response(t).into())
}

pub(super) fn num_id(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| Value::from(id), Value::from)
}

/// A customer's hex number: the record's own, else one derived from the ID that never
/// equals it (ecforce's `number` is unrelated to `id`).
pub(super) fn customer_number(c: &Customer) -> String {
    c.number.clone().unwrap_or_else(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in c.id.as_str().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:010x}", h & 0xff_ffff_ffff)
    })
}

/// What a request asked for: side-loads and the lighter shape.
pub(super) struct Shape<'a> {
    pub(super) include: HashSet<String>,
    pub(super) lighter: bool,
    /// The type written in `relationships.order_items.data[]` (ecforce's spelling there is
    /// not public; the included resources are always `order_item`).
    pub(super) item_link_type: &'a str,
    /// Orders and subscriptions whose items are linked but not side-loaded.
    pub(super) missing_items: &'a HashSet<String>,
    /// Customer numbers by customer ID, for `sub_order.customer_number`.
    pub(super) numbers: &'a HashMap<String, String>,
}

impl Shape<'_> {
    fn wants(&self, include: &str) -> bool {
        self.include.contains(include)
    }
}

pub(super) fn customer(c: &Customer, malformed: bool, shape: &Shape<'_>) -> (Value, Vec<Value>) {
    let id = c.id.as_str();
    let mut a = Map::new();
    a.insert("id".into(), num_id(id));
    a.insert("number".into(), customer_number(c).into());
    // The 退会 state's word is not public; `cancel` follows the `customer_cancel` webhook.
    let (state, human) = if c.withdrawn { ("cancel", "退会") } else { ("member", "会員") };
    a.insert("state".into(), state.into());
    a.insert("human_state_name".into(), human.into());
    a.insert("email".into(), c.email.clone().into());
    a.insert("birth".into(), c.birth_date.map(|d| d.format("%Y/%m/%d").to_string()).into());
    a.insert(
        "sex_id".into(),
        c.sex.as_ref().and_then(|s| s.code.as_deref()).and_then(|s| s.parse::<i64>().ok()).into(),
    );
    a.insert(
        "customer_rank_id".into(),
        c.rank.as_ref().and_then(|s| s.code.as_deref()).and_then(|s| s.parse::<i64>().ok()).into(),
    );
    if !shape.lighter {
        // The lighter shape has IDs but no names, and no labels.
        a.insert("sex".into(), c.sex.as_ref().and_then(|s| s.label.clone()).into());
        a.insert("customer_rank_name".into(), c.rank.as_ref().and_then(|s| s.label.clone()).into());
        a.insert("labels".into(), c.labels.join(",").into());
    }
    a.insert("point".into(), c.points.unwrap_or(0).into());
    a.insert("point_expired_at".into(), time(c.points_expire_at));
    if malformed {
        a.insert("buy_total".into(), "(broken)".into());
    } else {
        a.insert("buy_total".into(), c.total_spent.map(|m| m.minor).into());
    }
    a.insert("buy_times".into(), c.order_count.into());
    a.insert("first_order_completed_at".into(), time(c.first_order_at));
    a.insert("last_order_completed_at".into(), time(c.last_order_at));
    a.insert("optin".into(), c.opt_in.into());
    a.insert("line_id".into(), c.line_user_id.as_ref().map(|l| l.as_str().to_owned()).into());
    a.insert("line_id_linked_at".into(), time(c.line_linked_at));
    a.insert("mail_delivery_stop".into(), c.email_stopped.unwrap_or(false).into());
    a.insert("blacklist".into(), c.blacklisted.into());
    a.insert("blacklist_reasons".into(), if c.blacklisted { "未払い" } else { "" }.into());
    a.insert("created_at".into(), time(c.created_at.or(Some(c.updated_at))));
    a.insert("updated_at".into(), time(Some(c.updated_at)));
    a.insert("deleted_at".into(), time(c.deleted_at));
    let mut resource = json!({ "id": id, "type": "customer", "attributes": a });
    let mut included = Vec::new();
    if shape.wants("billing_address") {
        let address_id = format!("{id}1");
        resource["relationships"] =
            json!({ "billing_address": { "data": { "id": address_id, "type": "address" } } });
        let mut parts = c.name.as_deref().unwrap_or("").splitn(2, ' ');
        let (family, given) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        // ecforce keeps telephone numbers on the address, in three parts and joined.
        let tel: Vec<&str> = c.phone.as_deref().map(|p| p.split('-').collect()).unwrap_or_default();
        let part = |i: usize| if tel.len() == 3 { Some(tel[i]) } else { None };
        included.push(json!({ "id": address_id, "type": "address", "attributes": {
            "id": num_id(&address_id), "name01": family, "name02": given,
            "full_name": c.name, "prefecture_id": null, "prefecture_name": c.prefecture,
            "tel01": part(0), "tel02": part(1), "tel03": part(2), "full_tel": c.phone,
            "created_at": time(c.created_at.or(Some(c.updated_at))),
            "updated_at": time(Some(c.updated_at)) } }));
    }
    (resource, included)
}

fn order_state(s: &OrderState) -> &str {
    match s {
        OrderState::Completed => "complete",
        OrderState::Canceled => "canceled",
        // No public source names ecforce's pre-completion states; `wait` is a placeholder.
        OrderState::Pending => "wait",
        OrderState::Other(raw) => raw,
    }
}

fn payment_human(state: &str) -> &'static str {
    match state {
        "completed" => "決済完了",
        "voided" => "取消済み",
        "auth_failed" => "与信失敗",
        "credit_exam_failed" => "審査NG",
        _ => "",
    }
}

/// `order_item` resources for a record's line items, and the linkage to them.
fn items(
    owner: &str,
    lines: &[crate::commerce::LineItem],
    at: Value,
    shape: &Shape<'_>,
) -> (Value, Vec<Value>) {
    let base: u64 = owner.parse().unwrap_or(0);
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(k, item)| {
            let id = (base * 100 + k as u64).to_string();
            let price = item.unit_price.map(|m| m.minor);
            json!({ "id": id, "type": "order_item", "attributes": {
                "id": id.parse::<u64>().unwrap_or(0), "variant_sku": item.sku, "product_number": item.product,
                "product_name": item.name, "product_category_names": item.categories.join(","),
                "quantity": item.quantity, "list_price": price,
                "sales_price": price, "price": price, "tax_rate": 10, "created_at": at },
              "relationships": { "variant": { "data": null } } })
        })
        .collect();
    let refs: Vec<Value> =
        items.iter().map(|i| json!({ "id": i["id"], "type": shape.item_link_type })).collect();
    let side = if shape.missing_items.contains(owner) { Vec::new() } else { items };
    (json!({ "data": refs }), side)
}

/// The order resource and its side-loads.
pub(super) fn order(o: &Order, shape: &Shape<'_>) -> (Value, Vec<Value>) {
    let base: u64 = o.id.parse().unwrap_or(0);
    let payment_state = o
        .payment_state
        .clone()
        .unwrap_or_else(|| if o.paid == Some(false) { "voided" } else { "completed" }.to_owned());
    let coupons: Vec<Value> = o
        .coupons
        .iter()
        .enumerate()
        .map(|(k, code)| json!({ "id": k + 1, "code": code, "name": code }))
        .collect();
    let created = time(o.ordered_at.or(Some(o.updated_at)));
    let mut order = json!({ "id": o.id, "type": "order", "attributes": {
        "id": num_id(&o.id), "number": format!("{base:010x}"),
        "customer_id": o.customer_id.as_ref().map(|c| num_id(c.as_str())),
        "state": order_state(&o.state), "payment_state": payment_state,
        "payment_human_state": payment_human(&payment_state),
        "total": o.total.map(|m| m.minor), "subtotal": o.total.map(|m| m.minor),
        "times": o.nth, "coupons": coupons,
        "subs_order_id": o.subscription_id.as_deref().map(num_id),
        "kind": if o.subscription_id.is_some() { "定期受注" } else { "通常受注" },
        "created_at": created.clone(), "completed_at": time(o.completed_at),
        "shipped_at": time(o.shipped_at), "delivered_at": time(o.delivered_at),
        "updated_at": time(Some(o.updated_at)) } });
    let mut included = Vec::new();
    if shape.wants("order_items") {
        let (linkage, side) = items(&o.id, &o.items, created, shape);
        order["relationships"] = json!({ "order_items": linkage });
        included = side;
    }
    (order, included)
}

pub(super) fn subscription(s: &Subscription, shape: &Shape<'_>) -> (Value, Vec<Value>) {
    let (state, human) = match &s.state {
        SubscriptionState::Active => ("active", "有効"),
        SubscriptionState::Paused => ("suspend", "停止"),
        SubscriptionState::Canceled => ("canceled", "解約"),
        SubscriptionState::Other(raw) => (raw.as_str(), ""),
    };
    let number = s
        .customer_number
        .clone()
        .or_else(|| s.customer.as_ref().and_then(|c| shape.numbers.get(c).cloned()));
    let ids = |v: &[String]| v.iter().map(|x| num_id(x)).collect::<Vec<_>>();
    let created = time(s.started_at.or(Some(s.updated_at)));
    // The public body carries the next shipment date only; the delivery date stays empty.
    let mut sub = json!({ "id": s.id, "type": "sub_order", "attributes": {
        "id": num_id(&s.id), "number": format!("S{:09}", s.id.parse::<u64>().unwrap_or(0)),
        "customer_number": number, "state": state, "human_state": human,
        "times": s.deliveries, "orders_count": s.orders_count.or(s.deliveries),
        "remaining_number_of_orders": s.remaining_orders,
        "skip_next_scheduled_delivery": s.skip_next_delivery.unwrap_or(false),
        "payment_schedule": s.cycle, "tbc": false,
        "scheduled_to_be_shipped_at": time(s.next_delivery_at),
        "scheduled_to_be_delivered_at": null,
        "suspended_at": time(s.paused_at), "suspend_reasons": s.suspend_reason,
        "suspend_reason_ids": ids(&s.suspend_reason_ids),
        "canceled_at": time(s.canceled_at), "cancel_reasons": s.cancel_reason,
        "cancel_reason_ids": ids(&s.cancel_reason_ids),
        "created_at": created.clone(), "updated_at": time(Some(s.updated_at)),
        "deleted_at": null } });
    let mut rels = Map::new();
    let mut included = Vec::new();
    if shape.wants("customer")
        && let Some(customer) = &s.customer
    {
        rels.insert("customer".into(), json!({ "data": { "id": customer, "type": "customer" } }));
    }
    if shape.wants("order_items") {
        let (linkage, side) = items(&s.id, &s.items, created, shape);
        rels.insert("order_items".into(), linkage);
        included = side;
    }
    if !rels.is_empty() {
        sub["relationships"] = Value::Object(rels);
    }
    (sub, included)
}

pub(super) fn product(p: &Product, shape: &Shape<'_>) -> (Value, Vec<Value>) {
    let mut rels = Map::new();
    let mut included = Vec::new();
    if shape.wants("variants") {
        let refs: Vec<Value> =
            p.variants.iter().map(|v| json!({ "id": v.id, "type": "variant" })).collect();
        rels.insert("variants".into(), json!({ "data": refs }));
        // No `stock`: ecforce keeps stock in `stock_items`.
        included.extend(p.variants.iter().map(|v| {
            json!({ "id": v.id, "type": "variant", "attributes": {
            "id": num_id(&v.id), "sku": v.sku, "product_id": num_id(&p.id), "name": v.name,
            "sales_price": v.price.map(|m| m.minor), "for_sale": true } })
        }));
    }
    if shape.wants("thumbnail")
        && let Some(url) = &p.image_url
    {
        let id = format!("{}9", p.id);
        rels.insert("thumbnail".into(), json!({ "data": { "id": id, "type": "thumbnail" } }));
        included.push(json!({ "id": id, "type": "thumbnail", "attributes": {
            "id": num_id(&id), "url": url, "url_medium": url, "content_type": "image/jpeg" } }));
    }
    let mut product = json!({ "id": p.id, "type": "product", "attributes": {
        "id": num_id(&p.id), "number": p.code, "name": p.name, "state": "active",
        "human_state": "表示", "master_sales_price": p.price.map(|m| m.minor),
        "is_recurring": p.is_recurring, "for_sale": p.for_sale.unwrap_or(true),
        "product_category_names": p.categories.join(","),
        "created_at": time(Some(p.updated_at)), "updated_at": time(Some(p.updated_at)), "deleted_at": null } });
    if !rels.is_empty() {
        product["relationships"] = Value::Object(rels);
    }
    (product, included)
}
