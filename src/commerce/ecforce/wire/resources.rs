//! The four resources (customer, order, subscription order, product): their attributes as
//! ecforce sends them, and how each becomes a record of the common model.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Ctx, FromResource, Rels, Sides, decode_error, scan};
use crate::commerce::ecforce::de::{self, Text};
use crate::commerce::error::CommerceError;
use crate::commerce::model::{
    Coded, Customer, LineItem, Money, Order, Product, Subscription, SubscriptionState, Variant,
};
use crate::{CustomerId, LineUserId};

/// Declares an attributes struct read two ways from one field list: by serde (on the paths
/// that name a failing field) and by the hand-written reader of clean pages ([`scan`]). Every
/// field is [`de::Lenient`] and defaults when absent; a field sent twice is left to serde,
/// which rejects it.
macro_rules! attributes {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize)]
        $vis struct $name {
            $($(#[$fmeta])* #[serde(default, deserialize_with = "de::lenient")] $field: $ty,)*
        }

        impl scan::Read for $name {
            fn read(r: &mut scan::Reader<'_>) -> Option<Self> {
                $(let mut $field: Option<$ty> = None;)*
                r.object(|r, key| match key {
                    $(stringify!($field) => scan::once(&mut $field, <$ty as de::Lenient>::read(r)),)*
                    _ => r.skip(),
                })?;
                Some(Self { $($field: $field.unwrap_or_default(),)* })
            }
        }
    };
}

fn yen(v: Option<i64>) -> Option<Money> {
    v.map(Money::jpy)
}

attributes! {
    pub(super) struct CustomerAttrs {
        number: Option<String>,
        state: Option<Text>,
        human_state_name: Option<Text>,
        blacklist: Option<bool>,
        mail_delivery_stop: Option<bool>,
        email: Option<String>,
        /// Not a documented ecforce attribute (phones live on the billing address); read if a
        /// shop's API has it (the Airbyte connector's fixture does).
        mobile: Option<String>,
        /// As `mobile`.
        tel: Option<String>,
        /// Not an ecforce attribute (names live on the billing address); read if a shop has it.
        name: Option<String>,
        birth: Option<chrono::NaiveDate>,
        sex_id: Option<String>,
        sex: Option<String>,
        customer_rank_id: Option<String>,
        customer_rank_name: Option<String>,
        point: Option<i64>,
        point_expired_at: Option<DateTime<Utc>>,
        buy_total: Option<i64>,
        buy_times: Option<u32>,
        first_order_completed_at: Option<DateTime<Utc>>,
        last_order_completed_at: Option<DateTime<Utc>>,
        optin: Option<bool>,
        labels: Vec<String>,
        line_id: Option<String>,
        line_id_linked_at: Option<DateTime<Utc>>,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
        deleted_at: Option<DateTime<Utc>>,
    }
}

attributes! {
    /// The billing address (`include=billing_address`): where ecforce keeps names.
    pub(super) struct AddressAttrs {
        full_name: Option<String>,
        name01: Option<String>,
        name02: Option<String>,
        prefecture_name: Option<String>,
        full_tel: Option<String>,
        tel01: Option<String>,
        tel02: Option<String>,
        tel03: Option<String>,
    }
}

impl AddressAttrs {
    /// `full_tel`, else `tel01-tel02-tel03` when all three are there, trimmed (taken out of
    /// the attributes: a number already trimmed is kept, not copied).
    fn take_phone(&mut self) -> Option<String> {
        fn non_empty(v: Option<String>) -> Option<String> {
            let v = v?;
            match v.trim() {
                "" => None,
                t if t.len() == v.len() => Some(v),
                t => Some(t.to_owned()),
            }
        }
        non_empty(self.full_tel.take()).or_else(|| {
            match (
                non_empty(self.tel01.take()),
                non_empty(self.tel02.take()),
                non_empty(self.tel03.take()),
            ) {
                (Some(a), Some(b), Some(c)) => Some(format!("{a}-{b}-{c}")),
                _ => None,
            }
        })
    }
}

fn coded(code: Option<String>, label: Option<String>) -> Option<Coded> {
    (code.is_some() || label.is_some()).then_some(Coded { code, label })
}

impl FromResource for Customer {
    type Attrs = CustomerAttrs;
    type Side = AddressAttrs;

    fn build(
        id: &str,
        a: CustomerAttrs,
        rels: &Rels<'_>,
        sides: &mut impl Sides<AddressAttrs>,
        ctx: &Ctx<'_>,
        _: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError> {
        let id = CustomerId::new(id).map_err(|e| decode_error("id".into(), e.to_string(), raw))?;
        let updated_at = ctx.updated_at(a.updated_at, a.created_at, raw)?;
        let mut c = Self::new(id, updated_at);
        c.number = a.number;
        c.withdrawn = ctx.mapping.withdrawn(
            a.state.as_ref().map(Text::as_str),
            a.human_state_name.as_ref().map(Text::as_str),
        );
        c.blacklisted = a.blacklist.unwrap_or(false);
        c.email_stopped = a.mail_delivery_stop;
        c.email = a.email;
        c.name = a.name;
        let mut billing_phone = None;
        if let Some(r) = rels.related("billing_address").first()
            && let Some(mut b) = sides.take(
                r,
                &["address", "billing_address"],
                || format!("included.address[{}]", r.id),
                raw,
            )?
        {
            billing_phone = b.take_phone();
            // The parts are joined only without a full name: most addresses have one.
            let name = match (b.full_name, b.name01, b.name02) {
                (Some(full), _, _) => Some(full),
                (None, Some(family), Some(given)) => Some(format!("{family} {given}")),
                (None, family, given) => family.or(given),
            };
            if let Some(name) = name {
                c.name = Some(name);
            }
            c.prefecture = b.prefecture_name;
        }
        c.phone = a.mobile.or(billing_phone).or(a.tel);
        c.birth_date = a.birth;
        c.sex = coded(a.sex_id, a.sex);
        c.rank = coded(a.customer_rank_id, a.customer_rank_name);
        c.points = a.point;
        c.points_expire_at = a.point_expired_at;
        c.total_spent = yen(a.buy_total);
        c.order_count = a.buy_times;
        c.first_order_at = a.first_order_completed_at;
        c.last_order_at = a.last_order_completed_at;
        c.opt_in = a.optin;
        c.labels = a.labels;
        // `line_id` is free text on ecforce's side; only a real LINE user ID is kept.
        c.line_user_id = a.line_id.and_then(|l| LineUserId::new(l).ok());
        c.line_linked_at = a.line_id_linked_at.filter(|_| c.line_user_id.is_some());
        c.created_at = a.created_at;
        c.deleted_at = a.deleted_at;
        Ok(c)
    }
}

attributes! {
    pub(super) struct OrderAttrs {
        customer_id: Option<Text>,
        state: Option<Text>,
        payment_state: Option<String>,
        total: Option<i64>,
        times: Option<u32>,
        nth: Option<u32>,
        coupons: Vec<String>,
        created_at: Option<DateTime<Utc>>,
        completed_at: Option<DateTime<Utc>>,
        shipped_at: Option<DateTime<Utc>>,
        delivered_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
        subs_order_id: Option<String>,
    }
}

attributes! {
    pub(super) struct ItemAttrs {
        variant_sku: Option<String>,
        product_number: Option<String>,
        product_name: Option<String>,
        product_category_names: Vec<String>,
        quantity: Option<u32>,
        price: Option<i64>,
        sales_price: Option<i64>,
    }
}

/// The items a record links to. An item linked but not side-loaded is left out and reported
/// in `warnings` (the record stays: one odd item must not drop a whole order); the count of
/// such gaps is returned.
fn items(
    rels: &Rels<'_>,
    sides: &mut impl Sides<ItemAttrs>,
    warnings: &mut Vec<CommerceError>,
    raw: &str,
) -> Result<(Vec<LineItem>, u32), CommerceError> {
    let refs = rels.related("order_items");
    let mut out = Vec::with_capacity(refs.len());
    let mut missing = 0;
    for r in refs {
        let prefix = || format!("included.order_item[{}]", r.id);
        let aliases = ["order_item", "sub_order_item", "subs_order_item"];
        let Some(a) = sides.take(r, &aliases, prefix, raw)? else {
            missing += 1;
            warnings.push(decode_error(
                prefix(),
                "referenced but not included; the record is kept without this item".into(),
                raw,
            ));
            continue;
        };
        let mut item = LineItem::new(a.variant_sku, a.quantity.unwrap_or(1));
        item.product = a.product_number;
        item.name = a.product_name;
        item.unit_price = yen(a.price.or(a.sales_price));
        item.categories = a.product_category_names;
        out.push(item);
    }
    Ok((out, missing))
}

impl FromResource for Order {
    type Attrs = OrderAttrs;
    type Side = ItemAttrs;

    fn build(
        id: &str,
        a: OrderAttrs,
        rels: &Rels<'_>,
        sides: &mut impl Sides<ItemAttrs>,
        ctx: &Ctx<'_>,
        warnings: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError> {
        let updated_at = ctx.updated_at(a.updated_at, a.created_at, raw)?;
        let mut o =
            Self::new(id, ctx.mapping.order_state(a.state.as_ref().map(Text::as_str)), updated_at);
        // Some shops send the customer only as a relationship.
        let customer = match &a.customer_id {
            Some(text) => Some(text.as_str()),
            None => rels.related("customer").first().map(|r| r.id.as_ref()),
        };
        o.customer_id = customer
            .map(CustomerId::new)
            .transpose()
            .map_err(|e| decode_error("attributes.customer_id".into(), e.to_string(), raw))?;
        o.paid = ctx.mapping.paid(a.payment_state.as_deref());
        o.payment_state = a.payment_state;
        o.total = yen(a.total);
        o.nth = a.times.or(a.nth);
        o.coupons = a.coupons;
        o.ordered_at = a.created_at;
        o.completed_at = a.completed_at;
        o.shipped_at = a.shipped_at;
        o.delivered_at = a.delivered_at;
        o.subscription_id = a.subs_order_id;
        (o.items, o.items_missing) = items(rels, sides, warnings, raw)?;
        for item in &mut o.items {
            item.subscription_id.clone_from(&o.subscription_id);
        }
        Ok(o)
    }
}

attributes! {
    pub(super) struct SubAttrs {
        customer_id: Option<String>,
        customer_number: Option<String>,
        state: Option<Text>,
        times: Option<u32>,
        orders_count: Option<u32>,
        remaining_number_of_orders: Option<u32>,
        remaining_block_times: Option<u32>,
        skip_next_scheduled_delivery: Option<bool>,
        payment_schedule: Option<String>,
        scheduled_to_be_delivered_at: Option<DateTime<Utc>>,
        scheduled_to_be_shipped_at: Option<DateTime<Utc>>,
        suspended_at: Option<DateTime<Utc>>,
        suspend_reasons: Option<String>,
        suspend_reason_ids: Vec<String>,
        canceled_at: Option<DateTime<Utc>>,
        cancel_reasons: Option<String>,
        cancel_reason_ids: Vec<String>,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
    }
}

impl FromResource for Subscription {
    type Attrs = SubAttrs;
    type Side = ItemAttrs;

    fn build(
        id: &str,
        a: SubAttrs,
        rels: &Rels<'_>,
        sides: &mut impl Sides<ItemAttrs>,
        ctx: &Ctx<'_>,
        warnings: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError> {
        let updated_at = ctx.updated_at(a.updated_at, a.created_at, raw)?;
        let state = match a.state.as_ref().map(Text::as_str) {
            Some("active") => SubscriptionState::Active,
            Some("suspend" | "suspended") => SubscriptionState::Paused,
            Some("canceled" | "cancelled" | "cancel") => SubscriptionState::Canceled,
            Some(other) => SubscriptionState::Other(other.to_owned()),
            None => SubscriptionState::Other(String::new()),
        };
        let mut s = Self::new(id, state, updated_at);
        // `sub_order` names the customer by number; `include=customer` adds the ID.
        s.customer = rels.related("customer").first().map(|r| r.id.to_string()).or(a.customer_id);
        s.customer_number = a.customer_number;
        s.started_at = a.created_at;
        s.paused_at = a.suspended_at;
        s.suspend_reason = a.suspend_reasons;
        s.suspend_reason_ids = a.suspend_reason_ids;
        s.canceled_at = a.canceled_at;
        s.cancel_reason = a.cancel_reasons;
        s.cancel_reason_ids = a.cancel_reason_ids;
        s.next_delivery_at = a.scheduled_to_be_delivered_at.or(a.scheduled_to_be_shipped_at);
        s.deliveries = a.times;
        s.orders_count = a.orders_count;
        s.remaining_orders = a.remaining_number_of_orders.or(a.remaining_block_times);
        s.skip_next_delivery = a.skip_next_scheduled_delivery;
        s.cycle = a.payment_schedule;
        (s.items, _) = items(rels, sides, warnings, raw)?;
        Ok(s)
    }
}

attributes! {
    pub(super) struct ProductAttrs {
        number: Option<String>,
        name: Option<String>,
        master_sales_price: Option<i64>,
        is_recurring: Option<bool>,
        for_sale: Option<bool>,
        product_category_names: Vec<String>,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
    }
}

attributes! {
    /// What a product reads of its side-loads: a variant's `sku`, `name` and `sales_price` (variants
    /// have no `stock`: it lives in `stock_items`), a thumbnail's `url` and `url_medium`.
    pub(super) struct ProductSide {
        sku: Option<String>,
        name: Option<String>,
        sales_price: Option<i64>,
        url: Option<String>,
        url_medium: Option<String>,
    }
}

impl FromResource for Product {
    type Attrs = ProductAttrs;
    type Side = ProductSide;

    fn build(
        id: &str,
        a: ProductAttrs,
        rels: &Rels<'_>,
        sides: &mut impl Sides<ProductSide>,
        ctx: &Ctx<'_>,
        _: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError> {
        let updated_at = ctx.updated_at(a.updated_at, a.created_at, raw)?;
        let mut p = Self::new(id, updated_at);
        p.code = a.number;
        p.name = a.name;
        p.price = yen(a.master_sales_price);
        p.is_recurring = a.is_recurring;
        p.for_sale = a.for_sale;
        p.categories = a.product_category_names;
        if let Some(r) = rels.related("thumbnail").first()
            && let Some(t) =
                sides.take(r, &["thumbnail"], || format!("included.thumbnail[{}]", r.id), raw)?
        {
            p.image_url = t.url.or(t.url_medium);
        }
        for r in rels.related("variants") {
            let mut v = Variant::new(r.id.as_ref(), None);
            // Variants are often not side-loaded; keep the reference alone then.
            if let Some(va) =
                sides.take(r, &["variant"], || format!("included.variant[{}]", r.id), raw)?
            {
                v.sku = va.sku;
                v.name = va.name;
                v.price = yen(va.sales_price);
            }
            p.variants.push(v);
        }
        Ok(p)
    }
}
