//! A seeded demo shop with known counts, for the fake ecforce server: withdrawn (退会),
//! deleted and blacklisted customers, voided and unpaid orders, subscriptions keyed by
//! customer number. Deterministic: the same spec gives the same shop.

use chrono::{DateTime, TimeDelta, Utc};

use super::FakeEcforce;
use crate::commerce::{
    Coded, Customer, LineItem, Money, Order, OrderState, Product, Subscription, SubscriptionState,
    Variant,
};
use crate::{CustomerId, LineUserId};

/// How many of each kind of record a demo shop holds. The default is the shop the ecforce
/// review measured against: 247 customers (9 withdrawn, 9 deleted, 5 blacklisted), 358
/// orders (15 voided, 12 unpaid), 90 subscriptions, 12 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EcforceDemoSpec {
    /// Customers in total (deleted ones included).
    pub customers: u32,
    /// Of them, withdrawn (退会).
    pub withdrawn: u32,
    /// Of them, deleted (served only with `q[with_deleted]=1`).
    pub deleted: u32,
    /// Of them, blacklisted.
    pub blacklisted: u32,
    /// Orders in total.
    pub orders: u32,
    /// Of them, `payment_state: voided` (取消済み).
    pub voided: u32,
    /// Of them, never paid (`auth_failed`, `credit_exam_failed`).
    pub unpaid: u32,
    /// Subscriptions (each on a targetable customer).
    pub subscriptions: u32,
    /// Products.
    pub products: u32,
}

impl Default for EcforceDemoSpec {
    fn default() -> Self {
        Self {
            customers: 247,
            withdrawn: 9,
            deleted: 9,
            blacklisted: 5,
            orders: 358,
            voided: 15,
            unpaid: 12,
            subscriptions: 90,
            products: 12,
        }
    }
}

impl EcforceDemoSpec {
    /// Customers that may be messaged (not withdrawn, deleted or blacklisted).
    #[must_use]
    pub fn targetable(&self) -> u32 {
        self.customers.saturating_sub(self.excluded())
    }

    /// Withdrawn + deleted + blacklisted customers (disjoint in the demo).
    #[must_use]
    pub fn excluded(&self) -> u32 {
        self.withdrawn + self.deleted + self.blacklisted
    }

    /// Orders that count as purchases (neither voided nor unpaid).
    #[must_use]
    pub fn purchases(&self) -> u32 {
        self.orders.saturating_sub(self.voided + self.unpaid)
    }
}

/// A generated demo shop: the records and the spec they were made from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EcforceDemo {
    /// The counts.
    pub spec: EcforceDemoSpec,
    /// Customers (IDs `1..=spec.customers`).
    pub customers: Vec<Customer>,
    /// Orders, only on targetable customers.
    pub orders: Vec<Order>,
    /// Subscriptions, only on targetable customers (`customer` is the ID; the fake serves
    /// the customer's number).
    pub subscriptions: Vec<Subscription>,
    /// Products.
    pub products: Vec<Product>,
}

const FAMILY: [&str; 8] = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"];
const GIVEN: [&str; 8] = ["花子", "太郎", "美咲", "翔", "陽菜", "蓮", "結衣", "大輝"];
const PREFECTURES: [&str; 6] = ["東京都", "大阪府", "神奈川県", "愛知県", "福岡県", "北海道"];

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or(DateTime::UNIX_EPOCH) // 2026-01-01Z
}

fn cid(n: u32) -> CustomerId {
    // Decimal digits are never empty, so this cannot fail.
    CustomerId::new(n.to_string()).unwrap_or_else(|_| unreachable!())
}

impl EcforceDemo {
    /// The demo shop for a spec. Excluded customers are the last ones by ID (withdrawn, then
    /// deleted, then blacklisted), so customers `1..=targetable` are all targetable.
    #[must_use]
    pub fn generate(spec: EcforceDemoSpec) -> Self {
        let targetable = spec.targetable();
        let products = products(spec.products.max(1));
        let customers =
            (1..=spec.customers).map(|i| customer(i, targetable, &spec)).collect::<Vec<_>>();
        let orders =
            (1..=spec.orders).map(|k| order(k, targetable.max(1), &spec, &products)).collect();
        let subscriptions = (1..=spec.subscriptions)
            .map(|k| subscription(k, targetable.max(1), &products))
            .collect();
        Self { spec, customers, orders, subscriptions, products }
    }

    /// A targetable customer for a write test (customer 1).
    #[must_use]
    pub fn write_test_customer(&self) -> CustomerId {
        cid(1)
    }

    /// Puts every record into the fake.
    pub fn load_into(&self, shop: &FakeEcforce) {
        shop.insert_customers(self.customers.iter().cloned());
        shop.insert_orders(self.orders.iter().cloned());
        shop.insert_subscriptions(self.subscriptions.iter().cloned());
        shop.insert_products(self.products.iter().cloned());
    }
}

impl FakeEcforce {
    /// Seeds the fake with a demo shop ([`EcforceDemo::generate`]) and returns it, so a test
    /// knows the counts to expect.
    pub fn seed_demo(&self, spec: EcforceDemoSpec) -> EcforceDemo {
        let demo = EcforceDemo::generate(spec);
        demo.load_into(self);
        demo
    }
}

fn customer(i: u32, targetable: u32, spec: &EcforceDemoSpec) -> Customer {
    let k = i as usize;
    // A few customers share an update second, to exercise ties.
    let mut c = Customer::new(cid(i), base() + TimeDelta::seconds(i64::from(i - i / 7)));
    c.email = Some(format!("demo{i}@example.com"));
    c.name = Some(format!("{} {}", FAMILY[k % FAMILY.len()], GIVEN[(k / 3) % GIVEN.len()]));
    c.prefecture = Some(PREFECTURES[k % PREFECTURES.len()].to_owned());
    c.sex = Some(Coded { code: Some((1 + k % 2).to_string()), label: None });
    c.rank = Some(Coded {
        code: Some((1 + k % 3).to_string()),
        label: Some(["一般", "シルバー", "ゴールド"][k % 3].to_owned()),
    });
    c.points = Some(i64::from(i % 10) * 100);
    c.points_expire_at = Some(base() + TimeDelta::days(180 + i64::from(i % 30)));
    c.opt_in = Some(!i.is_multiple_of(5));
    c.email_stopped = Some(i.is_multiple_of(11));
    c.labels = if i.is_multiple_of(4) { vec!["VIP".into()] } else { Vec::new() };
    c.created_at = Some(base() - TimeDelta::days(400 - i64::from(i % 365)));
    if i.is_multiple_of(3) {
        c.line_user_id = LineUserId::new(format!("U{:032x}", 0xec00_0000_u64 + u64::from(i))).ok();
    }
    let excluded = i.saturating_sub(targetable);
    if excluded > 0 {
        if excluded <= spec.withdrawn {
            c.withdrawn = true;
        } else if excluded <= spec.withdrawn + spec.deleted {
            c.deleted_at = Some(c.updated_at);
        } else {
            c.blacklisted = true;
        }
    }
    c
}

fn products(n: u32) -> Vec<Product> {
    (1..=n)
        .map(|i| {
            let mut p = Product::new(i.to_string(), base() + TimeDelta::seconds(i64::from(i)));
            p.code = Some(format!("P-{i:03}"));
            p.name = Some(format!("デモ商品{i}"));
            p.price = Some(Money::jpy(1_000 + i64::from(i) * 500));
            p.is_recurring = Some(i.is_multiple_of(3));
            p.for_sale = Some(!i.is_multiple_of(7));
            p.image_url = Some(format!("https://img.example.com/p/{i}.jpg"));
            p.categories = vec![["スキンケア", "サプリ", "ヘアケア"][(i % 3) as usize].to_owned()];
            let mut v = Variant::new(format!("{i}01"), Some(format!("SKU-{i:03}")));
            v.name = p.name.clone();
            v.price = p.price;
            p.variants.push(v);
            p
        })
        .collect()
}

fn item(p: &Product, quantity: u32) -> LineItem {
    let mut item = LineItem::new(p.variants.first().and_then(|v| v.sku.clone()), quantity);
    item.product = p.code.clone();
    item.name = p.name.clone();
    item.unit_price = p.price;
    item.categories = p.categories.clone();
    item
}

fn order(k: u32, targetable: u32, spec: &EcforceDemoSpec, products: &[Product]) -> Order {
    let customer = 1 + (k - 1) % targetable;
    let placed = base() - TimeDelta::days(i64::from(k % 120)) + TimeDelta::hours(i64::from(k % 24));
    let mut o = Order::new(
        k.to_string(),
        OrderState::Completed,
        base() + TimeDelta::seconds(i64::from(k / 2)),
    );
    o.customer_id = Some(cid(customer));
    o.ordered_at = Some(placed);
    o.completed_at = Some(placed + TimeDelta::minutes(5));
    o.nth = Some(1 + (k - 1) / targetable);
    let p = &products[(k as usize) % products.len()];
    o.items = vec![item(p, 1 + k % 2)];
    o.total = Some(Money::jpy(p.price.map_or(0, |m| m.minor) * i64::from(1 + k % 2)));
    if k.is_multiple_of(4) {
        o.shipped_at = Some(placed + TimeDelta::days(1));
        o.delivered_at = Some(placed + TimeDelta::days(2));
    }
    if k.is_multiple_of(9) {
        o.coupons = vec!["WELCOME10".into()];
    }
    // The last orders are the voided, then the unpaid ones.
    let tail = spec.orders - k;
    if tail < spec.unpaid {
        o.payment_state =
            Some(if k.is_multiple_of(2) { "auth_failed" } else { "credit_exam_failed" }.into());
    } else if tail < spec.unpaid + spec.voided {
        o.payment_state = Some("voided".into());
    } else if k.is_multiple_of(10) {
        // A shop-specific state with a completed payment still counts.
        o.state = OrderState::Other("wmswait".into());
        o.payment_state = Some("completed".into());
    } else {
        o.payment_state = Some("completed".into());
    }
    o
}

fn subscription(k: u32, targetable: u32, products: &[Product]) -> Subscription {
    let customer = 1 + ((k - 1) * 2) % targetable;
    let state = match k % 6 {
        0 => SubscriptionState::Canceled,
        3 => SubscriptionState::Paused,
        _ => SubscriptionState::Active,
    };
    let mut s = Subscription::new(
        (1000 + k).to_string(),
        state.clone(),
        base() + TimeDelta::seconds(i64::from(k)),
    );
    s.customer = Some(customer.to_string());
    s.started_at = Some(base() - TimeDelta::days(30 + i64::from(k % 200)));
    s.deliveries = Some(1 + k % 8);
    s.orders_count = s.deliveries;
    s.remaining_orders = Some(k % 3);
    s.skip_next_delivery = Some(k.is_multiple_of(7));
    s.cycle = Some("1ヶ月ごとの1日に配送".into());
    let p = &products[(k as usize) % products.len()];
    s.items = vec![item(p, 1)];
    match state {
        SubscriptionState::Active => {
            s.next_delivery_at = Some(base() + TimeDelta::days(i64::from(k % 28)));
        }
        SubscriptionState::Paused => {
            s.paused_at = Some(base() - TimeDelta::days(3));
            s.suspend_reason = Some("在庫が余っている".into());
            s.suspend_reason_ids = vec!["2".into()];
        }
        _ => {
            s.canceled_at = Some(base() - TimeDelta::days(10));
            s.cancel_reason = Some("価格".into());
            s.cancel_reason_ids = vec!["1".into()];
        }
    }
    s
}
