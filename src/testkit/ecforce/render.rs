//! Renders model records as ecforce JSON:API resources (hand-written shapes following the
//! public ecforce fixtures; values are generated).

use serde_json::{Map, Value, json};

use crate::commerce::{
    Customer, Order, OrderState, Product, Subscription, SubscriptionState, format_jst_response,
};

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| format_jst_response(t).into())
}

fn num_id(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| Value::from(id), Value::from)
}

pub(super) fn customer(c: &Customer, malformed: bool) -> Value {
    let id = c.id.as_str();
    let mut a = Map::new();
    a.insert("id".into(), num_id(id));
    a.insert("number".into(), format!("{:010x}", id.parse::<u64>().unwrap_or(0)).into());
    a.insert("state".into(), "member".into());
    a.insert("email".into(), c.email.clone().into());
    a.insert("name".into(), c.name.clone().into());
    a.insert("birth".into(), c.birth_date.map(|d| d.format("%Y/%m/%d").to_string()).into());
    a.insert(
        "sex_id".into(),
        c.sex.as_ref().and_then(|s| s.code.as_deref()).and_then(|s| s.parse::<i64>().ok()).into(),
    );
    a.insert("sex".into(), c.sex.as_ref().and_then(|s| s.label.clone()).into());
    a.insert(
        "customer_rank_id".into(),
        c.rank.as_ref().and_then(|s| s.code.as_deref()).and_then(|s| s.parse::<i64>().ok()).into(),
    );
    a.insert("customer_rank_name".into(), c.rank.as_ref().and_then(|s| s.label.clone()).into());
    a.insert("point".into(), c.points.unwrap_or(0).into());
    if malformed {
        a.insert("buy_total".into(), "(broken)".into());
    } else {
        a.insert("buy_total".into(), c.total_spent.map(|m| m.minor).into());
    }
    a.insert("buy_times".into(), c.order_count.into());
    a.insert("first_order_completed_at".into(), time(c.first_order_at));
    a.insert("last_order_completed_at".into(), time(c.last_order_at));
    // ecforce's booleans wobble; serve the 0/1 form to keep the client honest.
    a.insert("optin".into(), c.opt_in.map(i64::from).into());
    a.insert("labels".into(), c.labels.join(",").into());
    a.insert("line_id".into(), c.line_user_id.as_ref().map(|l| l.as_str().to_owned()).into());
    a.insert("line_id_linked_at".into(), time(c.line_linked_at));
    a.insert("mail_delivery_stop".into(), false.into());
    a.insert("created_at".into(), time(c.created_at.or(Some(c.updated_at))));
    a.insert("updated_at".into(), time(Some(c.updated_at)));
    a.insert("deleted_at".into(), time(c.deleted_at));
    json!({ "id": id, "type": "customer", "attributes": a })
}

fn order_state(s: &OrderState) -> &str {
    match s {
        OrderState::Completed => "complete",
        OrderState::Canceled => "canceled",
        OrderState::Pending => "new",
        OrderState::Other(raw) => raw,
    }
}

/// The order resource and its `order_item` resources for `included`.
pub(super) fn order(o: &Order) -> (Value, Vec<Value>) {
    let base: u64 = o.id.parse().unwrap_or(0);
    let items: Vec<Value> = o
        .items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            let id = (base * 100 + k as u64).to_string();
            let price = item.unit_price.map(|m| m.minor);
            json!({ "id": id, "type": "order_item", "attributes": {
                "id": id.parse::<u64>().unwrap_or(0), "variant_sku": item.sku, "product_number": item.product,
                "product_name": item.name, "quantity": item.quantity, "list_price": price,
                "sales_price": price, "price": price, "tax_rate": 10,
                "created_at": time(o.ordered_at.or(Some(o.updated_at))) },
              "relationships": { "variant": { "data": null } } })
        })
        .collect();
    let refs: Vec<Value> =
        items.iter().map(|i| json!({ "id": i["id"], "type": "order_item" })).collect();
    let order = json!({ "id": o.id, "type": "order", "attributes": {
        "id": num_id(&o.id), "number": format!("{base:010x}"),
        "customer_id": o.customer_id.as_ref().map(|c| num_id(c.as_str())),
        "state": order_state(&o.state), "payment_state": "completed",
        "total": o.total.map(|m| m.minor), "subtotal": o.total.map(|m| m.minor),
        "subs_order_id": o.subscription_id.as_deref().map(num_id),
        "kind": if o.subscription_id.is_some() { "定期受注" } else { "通常受注" },
        "created_at": time(o.ordered_at.or(Some(o.updated_at))), "completed_at": time(o.completed_at),
        "updated_at": time(Some(o.updated_at)) },
      "relationships": { "order_items": { "data": refs } } });
    (order, items)
}

pub(super) fn subscription(s: &Subscription) -> Value {
    let state = match &s.state {
        SubscriptionState::Active => "active",
        SubscriptionState::Paused => "suspend",
        SubscriptionState::Canceled => "canceled",
        SubscriptionState::Other(raw) => raw,
    };
    json!({ "id": s.id, "type": "sub_order", "attributes": {
        "id": num_id(&s.id), "customer_number": s.customer, "state": state, "times": s.deliveries,
        "orders_count": s.deliveries, "payment_schedule": s.cycle, "tbc": "0",
        "scheduled_to_be_delivered_at": time(s.next_delivery_at), "suspended_at": time(s.paused_at),
        "canceled_at": time(s.canceled_at), "cancel_reasons": s.cancel_reason,
        "created_at": time(s.started_at.or(Some(s.updated_at))), "updated_at": time(Some(s.updated_at)),
        "deleted_at": null } })
}

pub(super) fn product(p: &Product) -> (Value, Vec<Value>) {
    let variants: Vec<Value> = p
        .variants
        .iter()
        .map(|v| {
            json!({ "id": v.id, "type": "variant", "attributes": {
            "id": num_id(&v.id), "sku": v.sku, "product_id": num_id(&p.id), "name": v.name,
            "sales_price": v.price.map(|m| m.minor), "stock": v.stock } })
        })
        .collect();
    let refs: Vec<Value> =
        p.variants.iter().map(|v| json!({ "id": v.id, "type": "variant" })).collect();
    let product = json!({ "id": p.id, "type": "product", "attributes": {
        "id": num_id(&p.id), "number": p.code, "name": p.name, "state": "active",
        "master_sales_price": p.price.map(|m| m.minor), "is_recurring": p.is_recurring, "for_sale": true,
        "created_at": time(Some(p.updated_at)), "updated_at": time(Some(p.updated_at)), "deleted_at": null },
      "relationships": { "variants": { "data": refs } } });
    (product, variants)
}
