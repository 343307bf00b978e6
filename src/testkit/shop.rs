//! A generated shop with planted affinity structure, for the recommender's evaluation and
//! benchmark: products in groups bought together, seasonal groups, a popularity skew.
//! Deterministic (splitmix64 from a seed): the same spec gives the same shop.
//!
//! - Products `1..=products` in groups of `group_size` consecutive IDs; each group has a
//!   category (スキンケア, ヘアケア, サプリ, ボディケア, フード, in turn).
//! - Each customer has two favourite groups, drawn Zipf(0.8) over groups.
//! - Each order (uniform customer, uniform time over `days` before `end`) picks, with
//!   probability `affinity`, a product of a favourite group (Zipf(0.7) within the group,
//!   the first favourite twice as often), else a globally popular product (Zipf(1.0) over
//!   products, spread over the groups); an affinity order adds a second product of the same
//!   group with probability 0.35.
//! - Every tenth group is seasonal: its products sell only in a three-month season (outside
//!   it the order falls back to a popular product), so they rise when the season starts.
//! - About 1 % of products are not for sale and 1 % out of stock.

use chrono::{DateTime, Datelike as _, TimeDelta, Utc};

use crate::commerce::{Customer, LineItem, Money, Order, OrderState, Product, Variant};
use crate::recommend::{Catalogue, CatalogueItem, PurchaseLog};
use crate::{CustomerId, LineUserId};

/// The size and shape of an [`AffinityShop`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AffinitySpec {
    /// Customers (IDs `1..=customers`).
    pub customers: u32,
    /// Orders.
    pub orders: u64,
    /// Products (IDs `1..=products`).
    pub products: u32,
    /// Products per affinity group.
    pub group_size: u32,
    /// Probability that an order comes from the customer's favourite groups.
    pub affinity: f64,
    /// Days of history, ending at `end`.
    pub days: u32,
    /// The end of the history (exclusive).
    pub end: DateTime<Utc>,
    /// The seed.
    pub seed: u64,
}

impl Default for AffinitySpec {
    /// 1,000 customers, 10,000 orders, 500 products in groups of 10, affinity 0.6, 365 days
    /// ending 2026-12-01 00:00 JST.
    fn default() -> Self {
        Self {
            customers: 1_000,
            orders: 10_000,
            products: 500,
            group_size: 10,
            affinity: 0.6,
            days: 365,
            end: DateTime::from_timestamp(1_764_514_800, 0).unwrap_or(DateTime::UNIX_EPOCH),
            seed: 0xEC_2026,
        }
    }
}

const CATEGORIES: [&str; 5] = ["スキンケア", "ヘアケア", "サプリ", "ボディケア", "フード"];
const DAY: i64 = 86_400;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n.max(1))) >> 64) as u64
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n.max(1))
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect();
    for x in &mut cdf {
        *x /= acc;
    }
    cdf
}

fn draw(cdf: &[f64], rng: &mut Rng) -> u32 {
    let u = rng.unit();
    u32::try_from(cdf.partition_point(|&c| c < u).min(cdf.len() - 1)).unwrap_or(0)
}

/// A generated shop with planted affinity structure (see the module docs).
#[derive(Debug, Clone)]
pub struct AffinityShop {
    spec: AffinitySpec,
}

/// One generated order: customer index (0-based), Unix seconds, `(product index, units)`.
type OrderSink<'a> = dyn FnMut(u32, i64, &[(u32, u32)]) + 'a;

impl AffinityShop {
    /// The shop for a spec.
    #[must_use]
    pub fn new(spec: AffinitySpec) -> Self {
        let mut spec = spec;
        spec.products = spec.products.max(1);
        spec.group_size = spec.group_size.clamp(1, spec.products);
        spec.customers = spec.customers.max(1);
        spec.days = spec.days.max(1);
        Self { spec }
    }

    /// The spec.
    #[must_use]
    pub fn spec(&self) -> &AffinitySpec {
        &self.spec
    }

    fn groups(&self) -> u32 {
        self.spec.products.div_ceil(self.spec.group_size)
    }

    /// The group of product index `i`.
    #[must_use]
    pub fn group_of(&self, i: u32) -> u32 {
        i / self.spec.group_size
    }

    /// Whether a group is seasonal, and its first month (1–12).
    #[must_use]
    pub fn season_of(&self, group: u32) -> Option<u32> {
        group.is_multiple_of(10).then(|| 1 + (group / 10) % 12)
    }

    fn in_season(&self, group: u32, at: i64) -> bool {
        let Some(first) = self.season_of(group) else { return true };
        let month = DateTime::from_timestamp(at + 9 * 3600, 0).map_or(1, |t| t.month());
        (month + 12 - first) % 12 < 3
    }

    fn price(i: u32) -> i64 {
        980 + i64::from((i.wrapping_mul(2_654_435_761) >> 7) % 60) * 100
    }

    /// The catalogue item of product index `i` (ID `i + 1`).
    #[must_use]
    pub fn item(&self, i: u32) -> CatalogueItem {
        let g = self.group_of(i);
        let category = CATEGORIES[g as usize % CATEGORIES.len()];
        let mut item = CatalogueItem::new(
            (i + 1).to_string(),
            format!("{category}セット{}・{}", g + 1, i % self.spec.group_size + 1),
        )
        .with_price_yen(Self::price(i))
        .with_image_url(format!("https://img.example.com/p/{}.jpg", i + 1))
        .with_category(category);
        item.for_sale = i % 97 != 96;
        item.in_stock = i % 89 != 88;
        item
    }

    /// The catalogue.
    #[must_use]
    pub fn catalogue(&self) -> Catalogue {
        Catalogue::from_items((0..self.spec.products).map(|i| self.item(i)).collect())
    }

    /// Generates every order into `sink`, in generation order.
    fn generate(&self, sink: &mut OrderSink<'_>) {
        let s = &self.spec;
        let groups = self.groups();
        let group_cdf = zipf_cdf(groups as usize, 0.8);
        let within_cdf = zipf_cdf(s.group_size as usize, 0.7);
        let popular_cdf = zipf_cdf(s.products as usize, 1.0);
        // Spread popular ranks over the groups: rank r → product (r × m) mod P, m coprime.
        let p = u64::from(s.products);
        let mut m = 7_919u64 % p.max(2);
        while gcd(m, p) != 1 {
            m += 1;
        }
        let popular = |rng: &mut Rng| -> u32 {
            u32::try_from((u64::from(draw(&popular_cdf, rng)) * m) % p).unwrap_or(0)
        };
        let end = s.end.timestamp();
        let span = i64::from(s.days) * DAY;
        let mut rng = Rng(s.seed);
        let mut items: Vec<(u32, u32)> = Vec::with_capacity(2);
        for _ in 0..s.orders {
            let c = u32::try_from(rng.below(u64::from(s.customers))).unwrap_or(0);
            let at = end - span
                + i64::try_from(rng.below(u64::try_from(span).unwrap_or(1))).unwrap_or(0);
            // The customer's favourite groups, from their own stream.
            let mut own = Rng(s.seed ^ (u64::from(c) + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            let favourites = [draw(&group_cdf, &mut own), draw(&group_cdf, &mut own)];
            items.clear();
            let units = if rng.below(10) == 0 { 2 } else { 1 };
            let group = favourites[usize::from(rng.below(3) == 2)];
            let group_len = s.group_size.min(s.products - group * s.group_size);
            if rng.unit() < s.affinity && self.in_season(group, at) {
                let first = group * s.group_size + draw(&within_cdf, &mut rng) % group_len;
                items.push((first, units));
                if rng.unit() < 0.35 && group_len > 1 {
                    let second = group * s.group_size + draw(&within_cdf, &mut rng) % group_len;
                    if second != first {
                        items.push((second, 1));
                    }
                }
            } else {
                items.push((popular(&mut rng), units));
            }
            sink(c, at, &items);
        }
    }

    /// The shop in columns: the catalogue and the purchase log (customer `n` has index
    /// `n - 1`).
    #[must_use]
    pub fn columns(&self) -> (Catalogue, PurchaseLog) {
        let catalogue = self.catalogue();
        let rows = usize::try_from(self.spec.orders).unwrap_or(0) * 135 / 100;
        let mut log = PurchaseLog::with_capacity(self.spec.customers as usize, rows);
        for n in 1..=self.spec.customers {
            log.customer(&cid(n));
        }
        self.generate(&mut |c, at, items| {
            for &(i, units) in items {
                log.push(c, i, at, units, Self::price(i) * i64::from(units));
            }
        });
        (catalogue, log)
    }

    /// The shop as synced records: customers (all linked to a LINE user, see
    /// [`line_user`](Self::line_user)), products and completed, paid orders. Meant for small
    /// shops (tests, demos).
    #[must_use]
    pub fn records(&self) -> (Vec<Customer>, Vec<Product>, Vec<Order>) {
        let s = &self.spec;
        let customers = (1..=s.customers)
            .map(|n| {
                let mut c = Customer::new(cid(n), s.end);
                c.name = Some(format!("顧客{n}"));
                c.line_user_id = Some(Self::line_user(n));
                c.line_linked_at = Some(s.end - TimeDelta::days(i64::from(s.days)));
                c
            })
            .collect();
        let products: Vec<Product> = (0..s.products)
            .map(|i| {
                let item = self.item(i);
                let mut p = Product::new(item.id.clone(), s.end);
                p.name = Some(item.name.clone());
                p.price = item.price_yen.map(Money::jpy);
                p.for_sale = Some(item.for_sale);
                p.image_url = item.image_url.clone();
                p.categories = item.categories.clone();
                let mut v = Variant::new(format!("{}01", i + 1), Some(format!("SKU-{}", i + 1)));
                v.price = p.price;
                v.stock = Some(if item.in_stock { 100 } else { 0 });
                p.variants.push(v);
                p
            })
            .collect();
        let mut orders = Vec::new();
        self.generate(&mut |c, at, items| {
            let placed = DateTime::from_timestamp(at, 0).unwrap_or(s.end);
            let mut o = Order::new((orders.len() + 1).to_string(), OrderState::Completed, placed);
            o.customer_id = Some(cid(c + 1));
            o.ordered_at = Some(placed);
            o.completed_at = Some(placed);
            o.paid = Some(true);
            let mut total = 0;
            for &(i, units) in items {
                let p = &products[i as usize];
                let mut line = LineItem::new(p.variants[0].sku.clone(), units);
                line.product = Some(p.id.clone());
                line.name = p.name.clone();
                line.unit_price = p.price;
                line.categories = p.categories.clone();
                total += Self::price(i) * i64::from(units);
                o.items.push(line);
            }
            o.total = Some(Money::jpy(total));
            orders.push(o);
        });
        (customers, products, orders)
    }

    /// The LINE user linked to customer `n`.
    #[must_use]
    pub fn line_user(n: u32) -> LineUserId {
        LineUserId::new(format!("U{:032x}", 0x5e0_0000_u64 + u64::from(n)))
            .unwrap_or_else(|_| unreachable!("32 hex digits after U are a valid user ID"))
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn cid(n: u32) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap_or_else(|_| unreachable!("digits are a valid ID"))
}
