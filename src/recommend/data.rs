//! The recommender's input in compact columnar form: the catalogue (products by dense index)
//! and the purchase log (one row per purchased line: customer, item, time, units, revenue).

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::CustomerId;
use crate::commerce::{Order, Product, Subscription, SubscriptionState};

/// A product as the recommender and the product cards see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogueItem {
    /// The product's ID.
    pub id: String,
    /// The name shown on cards (the ID when the shop gave none).
    pub name: String,
    /// Price in yen (tax included, as the shop lists it).
    pub price_yen: Option<i64>,
    /// Image URL (HTTPS) for the card's hero image.
    pub image_url: Option<String>,
    /// Category names (the first one is the ranking category).
    pub categories: Vec<String>,
    /// On sale (`false` when the shop marked it not for sale).
    pub for_sale: bool,
    /// In stock (`false` when every variant has a known stock of zero or less).
    pub in_stock: bool,
}

impl CatalogueItem {
    /// An item on sale and in stock with only an ID and name.
    #[must_use]
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            price_yen: None,
            image_url: None,
            categories: Vec::new(),
            for_sale: true,
            in_stock: true,
        }
    }

    /// Sets the price in yen.
    #[must_use]
    pub fn with_price_yen(mut self, yen: i64) -> Self {
        self.price_yen = Some(yen);
        self
    }

    /// Sets the image URL.
    #[must_use]
    pub fn with_image_url(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }

    /// Adds a category.
    #[must_use]
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// The item from a synced product: price, image, categories, sale and stock state.
    #[must_use]
    pub fn from_product(p: &Product) -> Self {
        let in_stock =
            p.variants.is_empty() || p.variants.iter().any(|v| v.stock.is_none_or(|s| s > 0));
        Self {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            price_yen: p.price.or_else(|| p.variants.iter().find_map(|v| v.price)).map(|m| m.minor),
            image_url: p.image_url.clone(),
            categories: p.categories.clone(),
            for_sale: p.for_sale != Some(false),
            in_stock,
        }
    }

    /// Whether the item may be recommended (on sale and in stock).
    #[must_use]
    pub fn available(&self) -> bool {
        self.for_sale && self.in_stock
    }

    /// The ranking category (the first category).
    #[must_use]
    pub fn category(&self) -> Option<&str> {
        self.categories.first().map(String::as_str)
    }
}

/// The product catalogue by dense index (`0..len`), with lookups by product ID, code or SKU.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    items: Vec<CatalogueItem>,
    by_key: HashMap<String, u32>,
    /// Each item's position in product-ID order (numeric IDs numerically): the tie-breaker.
    order: Vec<u32>,
}

/// Compares product IDs (all-digit IDs numerically, others byte-wise).
pub(crate) fn compare_ids(a: &str, b: &str) -> Ordering {
    crate::commerce::model::compare_ids(a, b)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Catalogue {
    /// An empty catalogue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue of synced products (codes and SKUs become lookup keys too).
    #[must_use]
    pub fn from_products<'a>(products: impl IntoIterator<Item = &'a Product>) -> Self {
        let products: Vec<&Product> = products.into_iter().collect();
        let mut c =
            Self::from_items(products.iter().map(|p| CatalogueItem::from_product(p)).collect());
        for (i, p) in products.iter().enumerate() {
            let keys = p.code.iter().chain(p.variants.iter().filter_map(|v| v.sku.as_ref()));
            for key in keys {
                c.by_key.entry(key.clone()).or_insert(to_u32(i));
            }
        }
        c
    }

    /// The catalogue of these items (the first of several with one ID wins lookups).
    #[must_use]
    pub fn from_items(items: Vec<CatalogueItem>) -> Self {
        let mut by_key = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            by_key.entry(item.id.clone()).or_insert(to_u32(i));
        }
        let mut idx: Vec<u32> = (0..to_u32(items.len())).collect();
        idx.sort_by(|&a, &b| compare_ids(&items[a as usize].id, &items[b as usize].id));
        let mut order = vec![0u32; items.len()];
        for (pos, &i) in idx.iter().enumerate() {
            order[i as usize] = to_u32(pos);
        }
        Self { items, by_key, order }
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the catalogue is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The index of a product by ID, code or SKU.
    #[must_use]
    pub fn index_of(&self, key: &str) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// The item at an index.
    #[must_use]
    pub fn item(&self, index: u32) -> Option<&CatalogueItem> {
        self.items.get(index as usize)
    }

    /// The item with a product ID, code or SKU.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&CatalogueItem> {
        self.index_of(key).and_then(|i| self.item(i))
    }

    /// Every item, by index.
    #[must_use]
    pub fn items(&self) -> &[CatalogueItem] {
        &self.items
    }

    /// Marks an item on or off sale and in or out of stock (after a stock sync).
    pub fn set_available(&mut self, key: &str, for_sale: bool, in_stock: bool) {
        if let Some(i) = self.index_of(key) {
            let item = &mut self.items[i as usize];
            item.for_sale = for_sale;
            item.in_stock = in_stock;
        }
    }

    pub(crate) fn available(&self, i: u32) -> bool {
        self.items.get(i as usize).is_some_and(CatalogueItem::available)
    }

    /// The position of item `i` in product-ID order (ties are broken by it).
    pub(crate) fn id_rank(&self, i: u32) -> u32 {
        self.order.get(i as usize).copied().unwrap_or(u32::MAX)
    }
}

/// Purchases as columns: one row per purchased line (customer, item, time, units, revenue),
/// plus each customer's subscribed items. Rows need not be sorted.
#[derive(Debug, Clone, Default)]
pub struct PurchaseLog {
    customer_ids: Vec<CustomerId>,
    customer_index: HashMap<CustomerId, u32>,
    pub(crate) customer: Vec<u32>,
    pub(crate) item: Vec<u32>,
    pub(crate) at: Vec<i64>,
    pub(crate) units: Vec<u32>,
    pub(crate) revenue: Vec<i64>,
    /// `(customer, item)` of active or paused subscriptions.
    pub(crate) subscribed: Vec<(u32, u32)>,
    unknown_lines: u64,
}

impl PurchaseLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log with room for `customers` customers and `rows` lines.
    #[must_use]
    pub fn with_capacity(customers: usize, rows: usize) -> Self {
        Self {
            customer_ids: Vec::with_capacity(customers),
            customer_index: HashMap::with_capacity(customers),
            customer: Vec::with_capacity(rows),
            item: Vec::with_capacity(rows),
            at: Vec::with_capacity(rows),
            units: Vec::with_capacity(rows),
            revenue: Vec::with_capacity(rows),
            ..Self::default()
        }
    }

    /// The dense index of a customer, added if new.
    pub fn customer(&mut self, id: &CustomerId) -> u32 {
        if let Some(&i) = self.customer_index.get(id) {
            return i;
        }
        let i = to_u32(self.customer_ids.len());
        self.customer_ids.push(id.clone());
        self.customer_index.insert(id.clone(), i);
        i
    }

    /// The dense index of a known customer.
    #[must_use]
    pub fn customer_index(&self, id: &CustomerId) -> Option<u32> {
        self.customer_index.get(id).copied()
    }

    /// The customer at a dense index.
    #[must_use]
    pub fn customer_id(&self, index: u32) -> Option<&CustomerId> {
        self.customer_ids.get(index as usize)
    }

    /// Number of customers known to the log.
    #[must_use]
    pub fn customers(&self) -> usize {
        self.customer_ids.len()
    }

    /// Number of purchased lines.
    #[must_use]
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    /// Whether the log holds no line.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    /// Lines of added orders whose product the catalogue did not know (left out).
    #[must_use]
    pub fn unknown_lines(&self) -> u64 {
        self.unknown_lines
    }

    /// Appends one purchased line (`at` in Unix seconds, `revenue` in yen). `customer` is an
    /// index from [`customer`](Self::customer); `item` a catalogue index.
    pub fn push(&mut self, customer: u32, item: u32, at: i64, units: u32, revenue: i64) {
        self.customer.push(customer);
        self.item.push(item);
        self.at.push(at);
        self.units.push(units);
        self.revenue.push(revenue);
    }

    /// Records that a customer subscribes to an item (never recommended to them).
    pub fn subscribe(&mut self, customer: u32, item: u32) {
        self.subscribed.push((customer, item));
    }

    /// Adds a synced order's lines when it counts as a purchase ([`Order::is_purchase`]) and
    /// has a customer and an order time. Lines are matched to the catalogue by product ID or
    /// code, else SKU; unknown ones are counted in [`unknown_lines`](Self::unknown_lines).
    pub fn add_order(&mut self, order: &Order, catalogue: &Catalogue) {
        let (Some(customer), Some(at)) = (&order.customer_id, order.ordered_at) else {
            return;
        };
        if !order.is_purchase() {
            return;
        }
        let c = self.customer(customer);
        for line in &order.items {
            let Some(item) = lookup(catalogue, line.product.as_deref(), line.sku.as_deref()) else {
                self.unknown_lines += 1;
                continue;
            };
            let price = line
                .unit_price
                .map(|m| m.minor)
                .or_else(|| catalogue.item(item).and_then(|i| i.price_yen))
                .unwrap_or(0);
            let revenue = price.saturating_mul(i64::from(line.quantity));
            self.push(c, item, at.timestamp(), line.quantity, revenue);
        }
    }

    /// Adds a synced subscription's items when it is active or paused.
    pub fn add_subscription(&mut self, s: &Subscription, catalogue: &Catalogue) {
        if !matches!(s.state, SubscriptionState::Active | SubscriptionState::Paused) {
            return;
        }
        let Some(customer) = s.customer.as_deref().and_then(|c| CustomerId::new(c).ok()) else {
            return;
        };
        let c = self.customer(&customer);
        for line in &s.items {
            if let Some(item) = lookup(catalogue, line.product.as_deref(), line.sku.as_deref()) {
                self.subscribe(c, item);
            }
        }
    }

    /// The log of synced records.
    #[must_use]
    pub fn from_records<'a>(
        catalogue: &Catalogue,
        orders: impl IntoIterator<Item = &'a Order>,
        subscriptions: impl IntoIterator<Item = &'a Subscription>,
    ) -> Self {
        let mut log = Self::new();
        for o in orders {
            log.add_order(o, catalogue);
        }
        for s in subscriptions {
            log.add_subscription(s, catalogue);
        }
        log
    }

    /// The earliest and latest purchase time.
    #[must_use]
    pub fn time_range(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let lo = self.at.iter().min()?;
        let hi = self.at.iter().max()?;
        Some((DateTime::from_timestamp(*lo, 0)?, DateTime::from_timestamp(*hi, 0)?))
    }

    /// Bytes held by the columns (for capacity planning).
    #[must_use]
    pub fn column_bytes(&self) -> usize {
        self.len() * (4 + 4 + 8 + 4 + 8) + self.subscribed.len() * 8
    }
}

fn lookup(catalogue: &Catalogue, product: Option<&str>, sku: Option<&str>) -> Option<u32> {
    product.and_then(|p| catalogue.index_of(p)).or_else(|| sku.and_then(|s| catalogue.index_of(s)))
}
