//! The columnar engine: per-customer columns, orders clustered by customer, maintained
//! aggregates and a cached Roaring bitmap per leaf, kept current incrementally.
//!
//! Three evaluation paths, all agreeing with the reference evaluator:
//!
//! - **raw** ([`Engine::evaluate_as_of`]): scans the order columns (fused per filter and
//!   window, two threads) and builds every leaf bitmap from scratch at any `now`;
//! - **state** ([`Engine::evaluate_from_state`]): rebuilds the time-relative order leaves of a
//!   registered segment from the maintained aggregates and "ever bought" indexes, reusing the
//!   maintained bitmaps of the other leaves;
//! - **cached** ([`Engine::recombine`]): recombines the cached leaf bitmaps.
//!
//! Every leaf keeps a time wheel of the instants its value may change per customer, so
//! [`Engine::advance_to`] re-evaluates only the customers whose leaves are due.

mod cold;
mod store;

pub use self::cold::evaluate_columns;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use roaring::RoaringBitmap;

use self::store::{
    Aggregates, Customers, IntCol, Interner, NONE, Orders, RowView, Side, SymFilter,
};
use super::ast::{CmpOp, Condition, DateField, DateTest, Measure, SegmentDefinition, Window};
use super::data::{
    Context, CustomerFacts, LineStatus, MessageEvent, Order, ProductStatus, SavedItem,
};
use super::error::SegmentError;
use super::eval::{
    Env, NextChange, date_test, eval, line_test, measure_test, next_change_view, window_bounds,
};
use super::schema::{AttrKind, Schema};
use super::time::{date_to_day, day_start, secs};
use crate::CustomerId;

/// Customer columns for bulk loading (row `i` is customer `ids[i]`).
#[derive(Debug, Clone, Default)]
pub struct CustomerColumns {
    /// Customer IDs.
    pub ids: Vec<CustomerId>,
    /// LINE linked.
    pub line_linked: Vec<bool>,
    /// Birth dates.
    pub birth_date: Vec<Option<NaiveDate>>,
}

/// Single-item orders as columns, for bulk loading. `customer` indexes the customer columns;
/// `product` indexes `product_names`. Rows need not be sorted.
#[derive(Debug, Clone, Default)]
pub struct OrderColumns {
    /// Customer row of each order.
    pub customer: Vec<u32>,
    /// Unix seconds.
    pub placed_at: Vec<i64>,
    /// Yen.
    pub amount: Vec<i64>,
    /// Product of the single line item (quantity 1, unit price = amount).
    pub product: Vec<u32>,
    /// Product IDs.
    pub product_names: Vec<String>,
}

/// Counts for a preview UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Funnel {
    /// Segment size.
    pub total: u64,
    /// Every leaf (depth first) with the number of customers it holds for on its own.
    pub leaves: Vec<(String, u64)>,
    /// For a top-level `and`: each child with the customers left after it and all before it.
    pub steps: Vec<(String, u64)>,
}

/// Overlap of two segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overlap {
    /// In both.
    pub both: u64,
    /// Only in the first.
    pub only_first: u64,
    /// Only in the second.
    pub only_second: u64,
}

/// Membership changes since the previous call to [`Engine::changes`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Changes {
    /// Customers who entered.
    pub entered: Vec<CustomerId>,
    /// Customers who left.
    pub left: Vec<CustomerId>,
}

#[derive(Debug, Clone)]
enum Plan {
    And(Vec<Self>),
    Or(Vec<Self>),
    Not(Box<Self>),
    Leaf(usize),
}

#[derive(Debug, Clone)]
struct LeafCache {
    cond: Condition,
    text: String,
    bits: RoaringBitmap,
    /// Hour bucket → (customer, instant its value may change).
    wheel: BTreeMap<i64, Vec<(u32, i64)>>,
}

#[derive(Debug, Clone)]
struct Registered {
    root: Condition,
    plan: Plan,
    members: RoaringBitmap,
    snapshot: RoaringBitmap,
}

/// The columnar segment engine (see the module docs).
#[derive(Debug, Clone)]
pub struct Engine {
    ctx: Context,
    now: i64,
    tz: FixedOffset,
    customers: Customers,
    orders: Orders,
    syms: Interner,
    agg: Aggregates,
    all: RoaringBitmap,
    leaves: Vec<LeafCache>,
    leaf_index: HashMap<String, usize>,
    segments: BTreeMap<String, Registered>,
    threads: usize,
    /// Names declared by the host on top of what the data shows.
    declared: Schema,
}

const HOUR: i64 = 3600;

impl Engine {
    /// An empty engine at `now` (time zone and catalogue from `ctx`).
    #[must_use]
    pub fn new(ctx: Context) -> Self {
        let now = secs(&ctx.now());
        let tz = ctx.tz();
        Self {
            ctx,
            now,
            tz,
            customers: Customers::default(),
            orders: Orders::new(),
            syms: Interner::default(),
            agg: Aggregates::default(),
            all: RoaringBitmap::new(),
            leaves: Vec::new(),
            leaf_index: HashMap::new(),
            segments: BTreeMap::new(),
            threads: 2,
            declared: Schema::new(),
        }
    }

    /// Threads used by full scans (default 2).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The engine's current `now`.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.now, 0).unwrap_or_default()
    }

    /// Number of customers.
    #[must_use]
    pub fn len(&self) -> u64 {
        u64::from(self.customers.len())
    }

    /// Whether there are no customers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.customers.ids.is_empty()
    }

    /// The row of a customer.
    #[must_use]
    pub fn row_of(&self, id: &CustomerId) -> Option<u32> {
        self.customers.index.get(id).copied()
    }

    /// The customer at a row.
    #[must_use]
    pub fn customer_id(&self, row: u32) -> Option<&CustomerId> {
        self.customers.ids.get(row as usize)
    }

    /// Customer IDs of a bitmap of rows.
    #[must_use]
    pub fn ids(&self, rows: &RoaringBitmap) -> Vec<CustomerId> {
        rows.iter().filter_map(|r| self.customer_id(r).cloned()).collect()
    }

    /// Approximate heap bytes of all state (columns, orders, aggregates, caches).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.customers.bytes()
            + self.orders.bytes()
            + self.agg.bytes()
            + self.syms_bytes()
            + self.all.serialized_size()
            + self
                .leaves
                .iter()
                .map(|l| {
                    l.bits.serialized_size()
                        + l.wheel.values().map(|v| 48 + v.len() * 16).sum::<usize>()
                })
                .sum::<usize>()
            + self
                .segments
                .values()
                .map(|s| s.members.serialized_size() + s.snapshot.serialized_size())
                .sum::<usize>()
    }

    fn syms_bytes(&self) -> usize {
        self.syms.bytes()
    }

    // ----- loading and incremental updates -----

    fn view(&self, row: u32) -> RowView<'_> {
        RowView { row, customers: &self.customers, orders: &self.orders, syms: &self.syms }
    }

    fn new_row(&mut self, id: CustomerId) -> u32 {
        let row = self.customers.len();
        self.customers.index.insert(id.clone(), row);
        self.customers.ids.push(id);
        self.customers.line.push(LineStatus::default());
        self.customers.birth.push(None);
        self.customers.registered.push(None);
        self.customers.side.push(None);
        let last = *self.orders.start.last().unwrap_or(&0);
        self.orders.start.push(last);
        self.agg.count.push(0);
        self.agg.sum.push(0);
        self.agg.first.push(i64::MAX);
        self.agg.last.push(i64::MIN);
        self.all.insert(row);
        row
    }

    /// Bulk-loads customers and single-item orders (orders are clustered by customer here).
    /// Registered segments are rebuilt.
    ///
    /// # Errors
    /// [`SegmentError::Invalid`] when column lengths differ, an order names an unknown
    /// customer row or product, or the engine already holds customers.
    pub fn load_columns(
        &mut self,
        c: CustomerColumns,
        o: OrderColumns,
    ) -> Result<(), SegmentError> {
        if !self.is_empty() {
            return Err(SegmentError::invalid("load_columns needs an empty engine"));
        }
        let n = c.ids.len();
        if c.line_linked.len() != n || c.birth_date.len() != n {
            return Err(SegmentError::invalid("customer columns have different lengths"));
        }
        let m = o.customer.len();
        if o.placed_at.len() != m || o.amount.len() != m || o.product.len() != m {
            return Err(SegmentError::invalid("order columns have different lengths"));
        }
        if o.customer.iter().any(|&r| r as usize >= n)
            || o.product.iter().any(|&p| p as usize >= o.product_names.len())
        {
            return Err(SegmentError::invalid(
                "an order refers to an unknown customer row or product",
            ));
        }
        for (i, id) in c.ids.into_iter().enumerate() {
            if self.customers.index.contains_key(&id) {
                return Err(SegmentError::invalid(format!("duplicate customer {id}")));
            }
            let row = self.new_row(id);
            self.customers.line[row as usize].linked = c.line_linked[i];
            self.customers.birth[row as usize] = c.birth_date[i];
        }
        let psym: Vec<u32> = o.product_names.iter().map(|p| self.syms.intern(p)).collect();
        // Counting sort by customer: stable, O(n + m).
        let mut start = vec![0u32; n + 1];
        for &r in &o.customer {
            start[r as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut pos = start.clone();
        let mut order_of = vec![0u32; m];
        for (i, &r) in o.customer.iter().enumerate() {
            order_of[pos[r as usize] as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            pos[r as usize] += 1;
        }
        // Within a customer, orders are kept in time order: first and last orders are then the
        // ends of the customer's range, and windows are binary searches.
        for r in 0..n {
            order_of[start[r] as usize..start[r + 1] as usize]
                .sort_by_key(|&i| o.placed_at[i as usize]);
        }
        let os = &mut self.orders;
        os.start = start;
        os.ts = order_of.iter().map(|&i| o.placed_at[i as usize]).collect();
        let amounts: Vec<i64> = order_of.iter().map(|&i| o.amount[i as usize]).collect();
        os.amount = IntCol::new(amounts.clone());
        os.kind = vec![0; m];
        os.item_start = (0..=u32::try_from(m).unwrap_or(u32::MAX)).collect();
        os.item_product = order_of.iter().map(|&i| psym[o.product[i as usize] as usize]).collect();
        os.item_sku = vec![NONE; m];
        os.item_category = vec![NONE; m];
        os.item_value = IntCol::new(amounts);
        os.max_ts = os.ts.iter().copied().max().unwrap_or(i64::MIN);
        os.refresh_single();
        for row in 0..self.customers.len() {
            self.refresh_aggregates(row);
        }
        self.rebuild_all_leaves();
        Ok(())
    }

    /// Adds a customer or replaces everything known about one.
    pub fn upsert_customer(&mut self, facts: CustomerFacts) {
        let row = match self.customers.index.get(&facts.id) {
            Some(&r) => {
                self.remove_from_indexes(r);
                self.orders.dead.insert(r);
                self.orders.delta.remove(&r);
                r
            }
            None => self.new_row(facts.id.clone()),
        };
        let r = row as usize;
        self.customers.line[r] = facts.line;
        self.customers.birth[r] = facts.birth_date;
        self.customers.registered[r] = facts.registered_at.as_ref().map(secs);
        let side = Side {
            attributes: facts.attributes,
            subscriptions: facts.subscriptions,
            cart: facts.cart,
            favourites: facts.favourites,
            messages: facts.messages,
        };
        let empty = side.attributes.is_empty()
            && side.subscriptions.is_empty()
            && side.cart.is_empty()
            && side.favourites.is_empty()
            && side.messages.is_empty();
        self.customers.side[r] = (!empty).then(|| Box::new(side));
        if !facts.orders.is_empty() {
            let ds: Vec<_> =
                facts.orders.iter().map(|o| Orders::to_delta(o, &mut self.syms)).collect();
            for d in &ds {
                self.orders.max_ts = self.orders.max_ts.max(d.ts);
            }
            self.orders.delta.insert(row, ds);
        }
        self.refresh_aggregates(row);
        self.touch(&[row]);
    }

    /// Appends one order to a known customer.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn append_order(&mut self, id: &CustomerId, order: &Order) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        let d = Orders::to_delta(order, &mut self.syms);
        let ts = d.ts;
        self.orders.max_ts = self.orders.max_ts.max(ts);
        if ts <= self.now {
            let r = row as usize;
            self.agg.count[r] += 1;
            self.agg.sum[r] = self.agg.sum[r].saturating_add(d.amount);
            self.agg.first[r] = self.agg.first[r].min(ts);
            self.agg.last[r] = self.agg.last[r].max(ts);
            for it in &d.items {
                self.agg.product.entry(it.0).or_default().insert(row);
            }
        } else {
            self.agg.pending.entry(ts).or_default().push(row);
        }
        self.orders.delta.entry(row).or_default().push(d);
        self.touch(&[row]);
        Ok(())
    }

    /// Replaces a customer's cart.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_cart(&mut self, id: &CustomerId, cart: Vec<SavedItem>) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.cart = cart)
    }

    /// Replaces a customer's favourites.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_favourites(
        &mut self,
        id: &CustomerId,
        items: Vec<SavedItem>,
    ) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.favourites = items)
    }

    /// Records a message event.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn push_message(
        &mut self,
        id: &CustomerId,
        event: MessageEvent,
    ) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.messages.push(event))
    }

    /// Sets a customer's LINE state.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_line(&mut self, id: &CustomerId, line: LineStatus) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        self.customers.line[row as usize] = line;
        self.touch(&[row]);
        Ok(())
    }

    fn edit_side(
        &mut self,
        id: &CustomerId,
        f: impl FnOnce(&mut Side),
    ) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        f(self.customers.side[row as usize].get_or_insert_with(Default::default));
        self.touch(&[row]);
        Ok(())
    }

    /// Sets a product's status; leaves about cart and favourite items are recomputed.
    pub fn set_product(&mut self, product: impl Into<String>, status: ProductStatus) {
        self.ctx.set_product(product, status);
        self.rebuild_leaves_where(|c| matches!(c, Condition::ItemChange { .. }));
    }

    /// Supplies an uploaded list; `list` leaves are recomputed.
    pub fn set_list(
        &mut self,
        name: impl Into<String>,
        members: impl IntoIterator<Item = CustomerId>,
    ) {
        self.ctx.set_list(name, members);
        self.rebuild_leaves_where(|c| matches!(c, Condition::InList { .. }));
    }

    fn remove_from_indexes(&mut self, row: u32) {
        let mut ps = Vec::new();
        self.orders.products_until(row, i64::MAX, &mut ps);
        for p in ps {
            if let Some(b) = self.agg.product.get_mut(&p) {
                b.remove(row);
            }
        }
    }

    /// Recomputes a customer's aggregates and index entries from its orders up to `now`.
    fn refresh_aggregates(&mut self, row: u32) {
        let (mut count, mut sum, mut first, mut last) = (0u32, 0i64, i64::MAX, i64::MIN);
        let now = self.now;
        let f = SymFilter::new(&Default::default(), &self.syms);
        let mut future = Vec::new();
        self.orders.for_each(row, &f, &mut |ts, v| {
            if ts <= now {
                count += 1;
                sum = sum.saturating_add(v);
                first = first.min(ts);
                last = last.max(ts);
            } else {
                future.push(ts);
            }
        });
        let r = row as usize;
        (self.agg.count[r], self.agg.sum[r], self.agg.first[r], self.agg.last[r]) =
            (count, sum, first, last);
        let mut ps = Vec::new();
        self.orders.products_until(row, now, &mut ps);
        for p in ps {
            self.agg.product.entry(p).or_default().insert(row);
        }
        for ts in future {
            self.agg.pending.entry(ts).or_default().push(row);
        }
    }

    // ----- segments -----

    /// Registers (or replaces) a named segment and computes its members. Other segments may
    /// refer to it with `segment "name"` once registered.
    ///
    /// The definition is first checked against the engine's data ([`Engine::validate`]), so
    /// a misspelt attribute is an error rather than a segment of everyone (`!=`) or nobody
    /// (`=`). An engine with no customers and nothing declared has nothing to check against
    /// and skips the check; use [`Engine::declare`] for names the data does not show yet, or
    /// [`Engine::register_unchecked`] for the plain semantics.
    ///
    /// # Errors
    /// [`SegmentError::Schema`], [`SegmentError::UnknownSegment`], [`SegmentError::Cycle`],
    /// [`SegmentError::UnknownList`].
    pub fn register(
        &mut self,
        name: impl Into<String>,
        def: SegmentDefinition,
    ) -> Result<(), SegmentError> {
        if !self.customers.ids.is_empty() || !self.declared.is_empty() {
            self.validate(&def)?;
        }
        self.register_unchecked(name, def)
    }

    /// [`Engine::register`] without the check against the data: a missing attribute is simply
    /// missing for every customer (see [`AttrTest`](super::AttrTest)).
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`], [`SegmentError::Cycle`], [`SegmentError::UnknownList`].
    pub fn register_unchecked(
        &mut self,
        name: impl Into<String>,
        def: SegmentDefinition,
    ) -> Result<(), SegmentError> {
        let name = name.into();
        self.ctx.define_segment(name.clone(), def.clone())?;
        let root = expand(&self.ctx, def.condition(), 0)?;
        let plan = self.plan(&root)?;
        let members = self.combine(&plan);
        self.segments.insert(name, Registered { root, plan, snapshot: members.clone(), members });
        Ok(())
    }

    /// Checks a definition against [`Engine::schema`] (see [`SegmentDefinition::validate`]).
    ///
    /// # Errors
    /// [`SegmentError::Schema`] with every problem found.
    pub fn validate(&self, def: &SegmentDefinition) -> Result<(), SegmentError> {
        def.validate(&self.schema())
    }

    /// Declares names the data may not show yet (an attribute no customer has so far, a new
    /// product), added to [`Engine::schema`].
    pub fn declare(&mut self, schema: &Schema) {
        self.declared.merge(schema);
    }

    /// What the engine's data holds: every customer's attribute names and value types, the
    /// product IDs, SKUs and categories of orders, subscriptions, carts, favourites and the
    /// catalogue, plus everything [`Engine::declare`]d.
    #[must_use]
    pub fn schema(&self) -> Schema {
        let mut s = self.declared.clone();
        s.add_catalogue(&self.ctx);
        for side in self.customers.side.iter().flatten() {
            for (n, v) in &side.attributes {
                s.add_attribute(n.clone(), AttrKind::of(v));
            }
            for p in side.subscriptions.iter().filter_map(|x| x.product.as_ref()) {
                s.add_product(p.clone());
            }
            for i in side.cart.iter().chain(&side.favourites) {
                s.add_product(i.product.clone());
            }
        }
        // Mark symbols first (orders repeat them), then one string per distinct symbol.
        let o = &self.orders;
        let delta = || o.delta.values().flatten().flat_map(|d| d.items.iter());
        let set = |base: &[u32], pick: fn(&(u32, u32, u32, i64)) -> u32| {
            let mut seen = vec![false; self.syms.len()];
            for i in base.iter().copied().chain(delta().map(pick)) {
                if let Some(x) = seen.get_mut(i as usize) {
                    *x = true;
                }
            }
            seen
        };
        let names = |seen: Vec<bool>| -> Vec<String> {
            (0..seen.len())
                .filter(|&i| seen[i])
                .filter_map(|i| self.syms.name(u32::try_from(i).ok()?))
                .map(str::to_owned)
                .collect()
        };
        names(set(&o.item_product, |i| i.0)).into_iter().for_each(|p| s.add_product(p));
        names(set(&o.item_sku, |i| i.1)).into_iter().for_each(|x| s.add_sku(x));
        names(set(&o.item_category, |i| i.2)).into_iter().for_each(|c| s.add_category(c));
        s
    }

    fn plan(&mut self, c: &Condition) -> Result<Plan, SegmentError> {
        Ok(match c {
            Condition::And { children } => {
                Plan::And(children.iter().map(|c| self.plan(c)).collect::<Result<_, _>>()?)
            }
            Condition::Or { children } => {
                Plan::Or(children.iter().map(|c| self.plan(c)).collect::<Result<_, _>>()?)
            }
            Condition::Not { child } => Plan::Not(Box::new(self.plan(child)?)),
            leaf => Plan::Leaf(self.leaf(leaf)?),
        })
    }

    fn leaf(&mut self, c: &Condition) -> Result<usize, SegmentError> {
        let text = c.to_string();
        if let Some(&i) = self.leaf_index.get(&text) {
            return Ok(i);
        }
        if let Condition::InList { name } = c
            && !self.ctx.lists.contains_key(name)
        {
            return Err(SegmentError::UnknownList(name.clone()));
        }
        let mut l = LeafCache {
            cond: c.clone(),
            text: text.clone(),
            bits: RoaringBitmap::new(),
            wheel: BTreeMap::new(),
        };
        self.fill_leaf(&mut l);
        self.leaves.push(l);
        self.leaf_index.insert(text, self.leaves.len() - 1);
        Ok(self.leaves.len() - 1)
    }

    /// Computes a leaf for every customer (bits and wheel).
    fn fill_leaf(&self, l: &mut LeafCache) {
        let env = Env::new(&self.ctx, self.now);
        let mut bits = Vec::new();
        l.wheel.clear();
        for row in 0..self.customers.len() {
            // Leaves never fail here: lists are checked when the leaf is created.
            let Ok(n) = eval(&l.cond, &self.view(row), &env, false, 0) else { continue };
            if n.result {
                bits.push(row);
            }
            if let Some(h) = n.horizon {
                l.wheel.entry(h.div_euclid(HOUR)).or_default().push((row, h));
            }
        }
        l.bits = RoaringBitmap::from_sorted_iter(bits).unwrap_or_default();
    }

    fn rebuild_all_leaves(&mut self) {
        self.rebuild_leaves_where(|_| true);
    }

    fn rebuild_leaves_where(&mut self, pred: impl Fn(&Condition) -> bool) {
        let mut leaves = std::mem::take(&mut self.leaves);
        for l in leaves.iter_mut().filter(|l| pred(&l.cond)) {
            self.fill_leaf(l);
        }
        self.leaves = leaves;
        self.recombine_all();
    }

    fn recombine_all(&mut self) {
        let names: Vec<String> = self.segments.keys().cloned().collect();
        for n in names {
            let plan = self.segments[&n].plan.clone();
            let m = self.combine(&plan);
            if let Some(s) = self.segments.get_mut(&n) {
                s.members = m;
            }
        }
    }

    /// Re-evaluates every leaf for some customers, then their memberships.
    fn touch(&mut self, rows: &[u32]) {
        let env = Env::new(&self.ctx, self.now);
        let mut leaves = std::mem::take(&mut self.leaves);
        for l in &mut leaves {
            for &row in rows {
                let Ok(n) = eval(&l.cond, &self.view(row), &env, false, 0) else { continue };
                if n.result {
                    l.bits.insert(row);
                } else {
                    l.bits.remove(row);
                }
                if let Some(h) = n.horizon {
                    l.wheel.entry(h.div_euclid(HOUR)).or_default().push((row, h));
                }
            }
        }
        self.leaves = leaves;
        for s in self.segments.values_mut() {
            for &row in rows {
                if row_in(&s.plan, &self.leaves, row) {
                    s.members.insert(row);
                } else {
                    s.members.remove(row);
                }
            }
        }
    }

    /// Moves `now` forward: applies orders that are now in the past to the aggregates and
    /// re-evaluates exactly the customers whose leaves were due to change.
    ///
    /// # Errors
    /// [`SegmentError::Invalid`] if `now` would go backwards (use
    /// [`Engine::evaluate_as_of`] for the past).
    pub fn advance_to(&mut self, now: DateTime<Utc>) -> Result<(), SegmentError> {
        let t = secs(&now);
        if t < self.now {
            return Err(SegmentError::invalid("now cannot move backwards; use evaluate_as_of"));
        }
        self.now = t;
        let due_orders: Vec<i64> = self.agg.pending.range(..=t).map(|(k, _)| *k).collect();
        let mut rows = RoaringBitmap::new();
        for k in due_orders {
            for r in self.agg.pending.remove(&k).unwrap_or_default() {
                rows.insert(r);
            }
        }
        for r in &rows {
            self.refresh_aggregates(r);
        }
        let env = Env::new(&self.ctx, t);
        let mut leaves = std::mem::take(&mut self.leaves);
        let mut changed = rows.clone();
        for l in &mut leaves {
            let keys: Vec<i64> = l.wheel.range(..=t.div_euclid(HOUR)).map(|(k, _)| *k).collect();
            let mut due = RoaringBitmap::new();
            for k in keys {
                for (row, h) in l.wheel.remove(&k).unwrap_or_default() {
                    if h <= t {
                        due.insert(row);
                    } else {
                        l.wheel.entry(k).or_default().push((row, h));
                    }
                }
            }
            due |= &rows;
            for row in &due {
                let Ok(n) = eval(&l.cond, &self.view(row), &env, false, 0) else { continue };
                let was = l.bits.contains(row);
                if n.result != was {
                    changed.insert(row);
                    if n.result {
                        l.bits.insert(row);
                    } else {
                        l.bits.remove(row);
                    }
                }
                if let Some(h) = n.horizon {
                    l.wheel.entry(h.div_euclid(HOUR)).or_default().push((row, h));
                }
            }
        }
        self.leaves = leaves;
        for s in self.segments.values_mut() {
            for row in &changed {
                if row_in(&s.plan, &self.leaves, row) {
                    s.members.insert(row);
                } else {
                    s.members.remove(row);
                }
            }
        }
        Ok(())
    }

    fn registered(&self, name: &str) -> Result<&Registered, SegmentError> {
        self.segments.get(name).ok_or_else(|| SegmentError::UnknownSegment(name.to_owned()))
    }

    /// Current members of a registered segment (rows).
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn members(&self, name: &str) -> Result<&RoaringBitmap, SegmentError> {
        Ok(&self.registered(name)?.members)
    }

    /// Exact size of a registered segment.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn count(&self, name: &str) -> Result<u64, SegmentError> {
        Ok(self.registered(name)?.members.len())
    }

    /// Recombines the cached leaf bitmaps of a registered segment (what happens after one
    /// leaf's bitmap changed) and returns the members.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn recombine(&mut self, name: &str) -> Result<u64, SegmentError> {
        let plan = self.registered(name)?.plan.clone();
        let m = self.combine(&plan);
        let n = m.len();
        if let Some(s) = self.segments.get_mut(name) {
            s.members = m;
        }
        Ok(n)
    }

    fn combine(&self, p: &Plan) -> RoaringBitmap {
        match self.combine_plan(p) {
            Lit::Pos(b) => b.into_owned(),
            Lit::Neg(b) => &self.all - b.as_ref(),
        }
    }

    /// Combines cached leaf bitmaps without copying leaves or materialising complements:
    /// `and` starts from its smallest positive child and subtracts negated ones.
    fn combine_plan(&self, p: &Plan) -> Lit<'_> {
        match p {
            Plan::Leaf(i) => Lit::Pos(Cow::Borrowed(&self.leaves[*i].bits)),
            Plan::Not(c) => self.combine_plan(c).negate(),
            Plan::And(cs) | Plan::Or(cs) => Lit::join(
                &self.all,
                matches!(p, Plan::And(_)),
                cs.iter().map(|c| self.combine_plan(c)),
            ),
        }
    }

    /// Per-leaf and per-step counts of a registered segment.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn funnel(&self, name: &str) -> Result<Funnel, SegmentError> {
        let s = self.registered(name)?;
        let mut leaf_ids = Vec::new();
        collect_leaves(&s.plan, &mut leaf_ids);
        let leaves = leaf_ids
            .iter()
            .map(|&i| (self.leaves[i].text.clone(), self.leaves[i].bits.len()))
            .collect();
        let mut steps = Vec::new();
        if let (Plan::And(ps), Condition::And { children }) = (&s.plan, &s.root) {
            let mut acc = self.all.clone();
            for (p, c) in ps.iter().zip(children) {
                acc &= self.combine(p);
                steps.push((c.to_string(), acc.len()));
            }
        }
        Ok(Funnel { total: s.members.len(), leaves, steps })
    }

    /// Overlap of two registered segments.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn overlap(&self, a: &str, b: &str) -> Result<Overlap, SegmentError> {
        let (x, y) = (&self.registered(a)?.members, &self.registered(b)?.members);
        let both = x.intersection_len(y);
        Ok(Overlap { both, only_first: x.len() - both, only_second: y.len() - both })
    }

    /// Who entered and left a registered segment since the previous call (or registration).
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn changes(&mut self, name: &str) -> Result<Changes, SegmentError> {
        let s = self
            .segments
            .get_mut(name)
            .ok_or_else(|| SegmentError::UnknownSegment(name.to_owned()))?;
        let entered = &s.members - &s.snapshot;
        let left = &s.snapshot - &s.members;
        s.snapshot = s.members.clone();
        Ok(Changes { entered: self.ids(&entered), left: self.ids(&left) })
    }

    /// The next instant a customer's membership of a registered segment flips by time alone.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`], [`SegmentError::UnknownCustomer`].
    pub fn next_change(&self, name: &str, id: &CustomerId) -> Result<NextChange, SegmentError> {
        let s = self.registered(name)?;
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        next_change_view(&s.root, &self.view(row), &self.ctx, self.now)
    }

    /// Evaluates any definition at any instant from the raw columns (no cached state used):
    /// order leaves are fused scans over the clustered order columns.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`], [`SegmentError::UnknownList`].
    pub fn evaluate_as_of(
        &self,
        def: &SegmentDefinition,
        now: DateTime<Utc>,
    ) -> Result<RoaringBitmap, SegmentError> {
        let root = expand(&self.ctx, def.condition(), 0)?;
        let t = secs(&now);
        let mut leaves: Vec<&Condition> = root.leaves();
        leaves.dedup_by(|a, b| a == b);
        let bits = self.raw_leaves(&leaves, t)?;
        Ok(self.combine_with(&root, &leaves, &bits))
    }

    /// Evaluates a registered segment at the engine's `now` from maintained state: order
    /// aggregates and "ever bought" indexes for order leaves, maintained bitmaps otherwise.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn evaluate_from_state(&self, name: &str) -> Result<RoaringBitmap, SegmentError> {
        let s = self.registered(name)?;
        let mut leaf_ids = Vec::new();
        collect_leaves(&s.plan, &mut leaf_ids);
        let leaves: Vec<StateLeaf<'_>> = s
            .root
            .leaves()
            .into_iter()
            .zip(leaf_ids)
            .map(|(c, id)| match self.state_pred(c) {
                Some(p) => StateLeaf::Pred(p),
                None => StateLeaf::Lit(
                    self.state_kernel(c).unwrap_or(Lit::Pos(Cow::Borrowed(&self.leaves[id].bits))),
                ),
            })
            .collect();
        let mut next = 0;
        Ok(match self.combine_state(&s.root, &leaves, &mut next) {
            Lit::Pos(b) => b.into_owned(),
            Lit::Neg(b) => &self.all - b.as_ref(),
        })
    }

    /// Like [`Engine::combine_lits`], but column predicates under an `and` only test the
    /// customers its bitmap children leave (candidate-driven), instead of scanning every row.
    fn combine_state<'b>(
        &self,
        c: &Condition,
        leaves: &'b [StateLeaf<'_>],
        next: &mut usize,
    ) -> Lit<'b> {
        let n = self.customers.len();
        let take = |next: &mut usize| {
            let l = &leaves[*next];
            *next += 1;
            l
        };
        match c {
            Condition::And { children } => {
                let (mut pos, mut neg, mut preds) = (Vec::new(), Vec::new(), Vec::new());
                for ch in children {
                    if ch.is_leaf() {
                        match take(next) {
                            StateLeaf::Pred(p) => preds.push(p),
                            StateLeaf::Lit(Lit::Pos(b)) => pos.push(Cow::Borrowed(b.as_ref())),
                            StateLeaf::Lit(Lit::Neg(b)) => neg.push(Cow::Borrowed(b.as_ref())),
                        }
                    } else {
                        match self.combine_state(ch, leaves, next) {
                            Lit::Pos(b) => pos.push(b),
                            Lit::Neg(b) => neg.push(b),
                        }
                    }
                }
                pos.sort_by_key(|b| b.len());
                let mut acc = match (pos.first(), preds.first()) {
                    (Some(b), _) => b.as_ref().clone(),
                    (None, Some(p)) => dense(n, 1, p),
                    (None, None) => self.all.clone(),
                };
                for b in pos.iter().skip(1) {
                    acc &= b.as_ref();
                }
                for b in &neg {
                    acc -= b.as_ref();
                }
                if !preds.is_empty() {
                    acc = RoaringBitmap::from_sorted_iter(
                        acc.iter().filter(|&r| preds.iter().all(|p| p(r as usize))),
                    )
                    .unwrap_or_default();
                }
                Lit::Pos(Cow::Owned(acc))
            }
            Condition::Or { .. } | Condition::Not { .. } => {
                // Materialise this subtree's leaves as bitmaps and reuse the general combiner.
                let start = *next;
                let count = c.leaves().len();
                *next += count;
                let lits: Vec<Lit<'b>> = leaves[start..start + count]
                    .iter()
                    .map(|l| match l {
                        StateLeaf::Pred(p) => Lit::Pos(Cow::Owned(dense(n, 1, p))),
                        StateLeaf::Lit(Lit::Pos(b)) => Lit::Pos(Cow::Borrowed(b.as_ref())),
                        StateLeaf::Lit(Lit::Neg(b)) => Lit::Neg(Cow::Borrowed(b.as_ref())),
                    })
                    .collect();
                let mut k = 0;
                match self.combine_lits(c, &lits, &mut k) {
                    Lit::Pos(b) => Lit::Pos(Cow::Owned(b.into_owned())),
                    Lit::Neg(b) => Lit::Neg(Cow::Owned(b.into_owned())),
                }
            }
            _ => match take(next) {
                StateLeaf::Pred(p) => Lit::Pos(Cow::Owned(dense(n, 1, p))),
                StateLeaf::Lit(Lit::Pos(b)) => Lit::Pos(Cow::Borrowed(b.as_ref())),
                StateLeaf::Lit(Lit::Neg(b)) => Lit::Neg(Cow::Borrowed(b.as_ref())),
            },
        }
    }

    /// A per-customer predicate over maintained aggregate columns, for order leaves that
    /// have one (all-time unfiltered counts and sums; first / last order tests).
    fn state_pred<'a>(
        &'a self,
        c: &'a Condition,
    ) -> Option<Box<dyn Fn(usize) -> bool + Sync + 'a>> {
        let now = self.now;
        let tz = self.tz;
        match c {
            Condition::Orders { filter, window: Window::AllTime, measure, op, value }
                if filter.is_empty() =>
            {
                let (cnt, sum) = (&self.agg.count, &self.agg.sum);
                let (m, op, v) = (*measure, *op, *value);
                Some(match (m, op) {
                    (Measure::Sum, CmpOp::Ge) => Box::new(move |r| sum[r] >= v),
                    (Measure::Sum, CmpOp::Gt) => Box::new(move |r| sum[r] > v),
                    (Measure::Count, CmpOp::Ge) => Box::new(move |r| i64::from(cnt[r]) >= v),
                    _ => Box::new(move |r| {
                        measure_test(i64::from(cnt[r]), i128::from(sum[r]), m, op, v)
                    }),
                })
            }
            Condition::Date {
                field: DateField::LastOrder { filter } | DateField::FirstOrder { filter },
                test,
            } if filter.is_empty() => {
                let col = if matches!(c, Condition::Date { field: DateField::LastOrder { .. }, .. })
                {
                    &self.agg.last
                } else {
                    &self.agg.first
                };
                // No order is stored as i64::MIN / i64::MAX: such rows never match.
                let ok = |t: i64| t != i64::MIN && t != i64::MAX;
                Some(match test {
                    // `now - t op v` is `t op' now - v`: one comparison per customer.
                    DateTest::Age { op: CmpOp::Gt, value } => {
                        let b = now - value.as_secs();
                        Box::new(move |r| ok(col[r]) && col[r] < b)
                    }
                    DateTest::Age { op: CmpOp::Ge, value } => {
                        let b = now - value.as_secs();
                        Box::new(move |r| ok(col[r]) && col[r] <= b)
                    }
                    t => Box::new(move |r| ok(col[r]) && date_test(Some(col[r]), t, now, tz).0),
                })
            }
            _ => None,
        }
    }

    /// Combines leaf literals (in depth-first order) without materialising complements:
    /// `and` intersects positives smallest first and subtracts negatives.
    fn combine_lits<'b>(&self, c: &Condition, lits: &'b [Lit<'_>], next: &mut usize) -> Lit<'b> {
        match c {
            Condition::Not { child } => self.combine_lits(child, lits, next).negate(),
            Condition::And { children } | Condition::Or { children } => {
                let kids: Vec<Lit<'b>> =
                    children.iter().map(|ch| self.combine_lits(ch, lits, next)).collect();
                Lit::join(&self.all, matches!(c, Condition::And { .. }), kids)
            }
            _ => {
                let l = match &lits[*next] {
                    Lit::Pos(b) => Lit::Pos(Cow::Borrowed(b.as_ref())),
                    Lit::Neg(b) => Lit::Neg(Cow::Borrowed(b.as_ref())),
                };
                *next += 1;
                l
            }
        }
    }

    fn combine_with(
        &self,
        c: &Condition,
        leaves: &[&Condition],
        bits: &[RoaringBitmap],
    ) -> RoaringBitmap {
        match c {
            Condition::And { children } => {
                let mut acc = self.all.clone();
                for ch in children {
                    acc &= self.combine_with(ch, leaves, bits);
                }
                acc
            }
            Condition::Or { children } => {
                let mut acc = RoaringBitmap::new();
                for ch in children {
                    acc |= self.combine_with(ch, leaves, bits);
                }
                acc
            }
            Condition::Not { child } => &self.all - &self.combine_with(child, leaves, bits),
            leaf => {
                leaves.iter().position(|l| *l == leaf).map(|i| bits[i].clone()).unwrap_or_default()
            }
        }
    }

    /// A leaf's bitmap computed from maintained aggregates, if it has such a kernel.
    fn state_kernel(&self, c: &Condition) -> Option<Lit<'_>> {
        match c {
            Condition::Orders {
                filter,
                window: Window::AllTime,
                measure: Measure::Count,
                op,
                value,
            } => {
                let sf = SymFilter::new(filter, &self.syms);
                let ps = sf.products_only()?;
                let any = match (op, value) {
                    (CmpOp::Ge, 1) | (CmpOp::Gt, 0) | (CmpOp::Ne, 0) => true,
                    (CmpOp::Eq, 0) | (CmpOp::Lt, 1) | (CmpOp::Le, 0) => false,
                    _ => return None,
                };
                let mut u = RoaringBitmap::new();
                for p in ps {
                    if let Some(b) = self.agg.product.get(p) {
                        u |= b;
                    }
                }
                Some(if any { Lit::Pos(Cow::Owned(u)) } else { Lit::Neg(Cow::Owned(u)) })
            }
            _ => None,
        }
    }

    /// Leaf bitmaps from the raw columns at `now`. Order leaves are grouped by (filter,
    /// window) and all groups are computed in one pass over the clustered orders.
    fn raw_leaves(
        &self,
        leaves: &[&Condition],
        now: i64,
    ) -> Result<Vec<RoaringBitmap>, SegmentError> {
        let n = self.customers.len();
        let tz = self.tz;
        let env = Env::new(&self.ctx, now);
        let mut out: Vec<Option<RoaringBitmap>> = vec![None; leaves.len()];
        let mut groups: Vec<(String, Group)> = Vec::new();
        let mut order_leaves: Vec<(usize, usize, OrderTest<'_>)> = Vec::new();
        for (i, c) in leaves.iter().enumerate() {
            let (filter, window, test) = match c {
                Condition::Orders { filter, window, measure, op, value } => {
                    (filter, window.clone(), OrderTest::Measure(*measure, *op, *value))
                }
                Condition::Date { field: DateField::FirstOrder { filter }, test } => {
                    (filter, Window::AllTime, OrderTest::Date(false, test))
                }
                Condition::Date { field: DateField::LastOrder { filter }, test } => {
                    (filter, Window::AllTime, OrderTest::Date(true, test))
                }
                _ => {
                    out[i] = Some(self.raw_other(c, now, &env)?);
                    continue;
                }
            };
            let (lo, hi) = window_bounds(&window, now, tz);
            let key = format!("{filter}|{lo}|{hi}");
            let g = match groups.iter().position(|(k, _)| *k == key) {
                Some(g) => g,
                None => {
                    let filter = SymFilter::new(filter, &self.syms);
                    let shape = if filter.is_unfiltered() {
                        Shape::All
                    } else if let Some(&[p]) = filter.products_only() {
                        Shape::Product(p)
                    } else {
                        Shape::General
                    };
                    groups.push((key, Group { filter, shape, needs: Needs::default(), lo, hi }));
                    groups.len() - 1
                }
            };
            let needs = &mut groups[g].1.needs;
            match &test {
                OrderTest::Measure(Measure::Count, ..) => {}
                OrderTest::Measure(..) => needs.sum = true,
                OrderTest::Date(true, _) => needs.last = true,
                OrderTest::Date(false, _) => needs.first = true,
            }
            order_leaves.push((i, g, test));
        }
        if !order_leaves.is_empty() {
            let groups: Vec<Group> = groups.into_iter().map(|(_, g)| g).collect();
            let bits = self.scan_groups(&groups, &order_leaves, now);
            for ((i, _, _), b) in order_leaves.iter().zip(bits) {
                out[*i] = Some(b);
            }
        }
        let _ = n;
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A non-order leaf from the customer columns (or per customer for side facts).
    fn raw_other(
        &self,
        c: &Condition,
        now: i64,
        env: &Env<'_>,
    ) -> Result<RoaringBitmap, SegmentError> {
        let n = self.customers.len();
        let tz = self.tz;
        Ok(match c {
            Condition::Line { state } => {
                let (line, s) = (&self.customers.line, *state);
                dense(n, self.threads, |r| line_test(line[r], s))
            }
            Condition::Date { field: DateField::Birthday, test } => {
                let birth = &self.customers.birth;
                dense(n, self.threads, |r| birthday_hit(birth[r], test, now, tz))
            }
            other => {
                if let Condition::InList { name } = other
                    && !self.ctx.lists.contains_key(name)
                {
                    return Err(SegmentError::UnknownList(name.clone()));
                }
                let mut rows = Vec::new();
                for row in 0..n {
                    if eval(other, &self.view(row), env, false, 0)?.result {
                        rows.push(row);
                    }
                }
                RoaringBitmap::from_sorted_iter(rows).unwrap_or_default()
            }
        })
    }

    /// Evaluates every order leaf: for each group, one pass over the customers computes
    /// `(count, sum, first, last)` per customer and tests the group's leaves on it at once.
    fn scan_groups(
        &self,
        groups: &[Group],
        leaves: &[(usize, usize, OrderTest<'_>)],
        now: i64,
    ) -> Vec<RoaringBitmap> {
        let o = &self.orders;
        let fast = o.dead.is_empty()
            && o.delta.is_empty()
            && o.single_item()
            && groups.len() <= 8
            && groups.iter().all(|g| matches!(g.shape, Shape::All | Shape::Product(_)));
        if fast {
            let n = self.customers.len();
            let tz = self.tz;
            let max_ts = o.max_ts;
            return dense_bytes(n, self.threads, leaves.len(), |b0, outs| {
                fused_kernel(o, groups, leaves, now, tz, max_ts, b0, n as usize, outs);
            });
        }
        let mut out: Vec<Option<RoaringBitmap>> = vec![None; leaves.len()];
        for (gi, g) in groups.iter().enumerate() {
            let idx: Vec<usize> = (0..leaves.len()).filter(|&j| leaves[j].1 == gi).collect();
            let tests: Vec<&OrderTest<'_>> = idx.iter().map(|&j| &leaves[j].2).collect();
            for (j, b) in idx.into_iter().zip(self.group_bits(g, &tests, now)) {
                out[j] = Some(b);
            }
        }
        out.into_iter().map(Option::unwrap_or_default).collect()
    }

    fn group_bits(&self, g: &Group, tests: &[&OrderTest<'_>], now: i64) -> Vec<RoaringBitmap> {
        let o = &self.orders;
        let tz = self.tz;
        let all_in = g.lo == i64::MIN && g.hi >= o.max_ts;
        let single = o.single_item();
        let mut special = o.dead.clone();
        special.extend(o.delta.keys().copied());
        let (lo, hi) = (g.lo, g.hi);
        let row_agg = |r: usize| -> (i64, i64, i64, i64) {
            let row = u32::try_from(r).unwrap_or(u32::MAX);
            let (a, b) = (o.start[r] as usize, o.start[r + 1] as usize);
            let (mut c, mut sum, mut first, mut last) = (0i64, 0i64, i64::MAX, i64::MIN);
            if !special.is_empty() && special.contains(row) {
                o.for_each(row, &g.filter, &mut |t, v| {
                    if t >= lo && t <= hi {
                        c += 1;
                        sum = sum.saturating_add(v);
                        first = first.min(t);
                        last = last.max(t);
                    }
                });
                return (c, sum, first, last);
            }
            match g.shape {
                Shape::All if all_in => {
                    let ts = &o.ts[a..b];
                    c = i64::try_from(b - a).unwrap_or(i64::MAX);
                    sum = o.amount.sum(a..b);
                    first = ts.iter().copied().min().unwrap_or(i64::MAX);
                    last = ts.iter().copied().max().unwrap_or(i64::MIN);
                }
                Shape::All => {
                    for (k, &t) in o.ts[a..b].iter().enumerate() {
                        let x = o.amount.get(a + k);
                        if t >= lo && t <= hi {
                            c += 1;
                            sum += x;
                            first = first.min(t);
                            last = last.max(t);
                        }
                    }
                }
                Shape::Product(p) if single => {
                    let ps = &o.item_product[a..b];
                    if ps.contains(&p) {
                        for (k, &x) in ps.iter().enumerate() {
                            let t = o.ts[a + k];
                            if x == p && t >= lo && t <= hi {
                                c += 1;
                                sum += o.item_value.get(a + k);
                                first = first.min(t);
                                last = last.max(t);
                            }
                        }
                    }
                }
                _ => {
                    o.for_each(row, &g.filter, &mut |t, v| {
                        if t >= lo && t <= hi {
                            c += 1;
                            sum = sum.saturating_add(v);
                            first = first.min(t);
                            last = last.max(t);
                        }
                    });
                }
            }
            (c, sum, first, last)
        };
        let test = |t: &OrderTest<'_>, (c, sum, first, last): (i64, i64, i64, i64)| {
            t.hit(c, i128::from(sum), first, last, now, tz)
        };
        dense_k(self.customers.len(), self.threads, tests.len(), |r, bits| {
            let a = row_agg(r);
            for (j, t) in tests.iter().enumerate() {
                bits[j] = test(t, a);
            }
        })
    }
}

/// The fused scan over clustered single-item orders: one pass over the customers computes
/// every group (all orders / one product) and tests every order leaf, writing whole bytes of
/// the outputs for the customers `b0 * 8 ..`.
#[allow(clippy::too_many_arguments)]
fn fused_kernel(
    o: &Orders,
    groups: &[Group],
    leaves: &[(usize, usize, OrderTest<'_>)],
    now: i64,
    tz: FixedOffset,
    max_ts: i64,
    b0: usize,
    n: usize,
    outs: &mut [&mut [u8]],
) {
    let len = outs.first().map_or(0, |x| x.len());
    let (start, ts, amount, product, value) =
        (&o.start, &o.ts, &o.amount, &o.item_product, &o.item_value);
    let mut aggs = [(0i64, 0i64, i64::MAX, i64::MIN); 8];
    // Product groups that only count over all time share one pass over the product column.
    let count_only: Vec<(usize, u32)> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| match g.shape {
            Shape::Product(p)
                if g.lo == i64::MIN
                    && g.hi >= max_ts
                    && !(g.needs.sum || g.needs.first || g.needs.last) =>
            {
                Some((i, p))
            }
            _ => None,
        })
        .collect();
    for byte in 0..len {
        let base = (b0 + byte) * 8;
        for r in base..(base + 8).min(n) {
            let (a, b) = (start[r] as usize, start[r + 1] as usize);
            if !count_only.is_empty() {
                let mut counts = [0i64; 8];
                let ps = &product[a..b];
                // Fixed-arity loops vectorise; the general one does not.
                match *count_only.as_slice() {
                    [(_, p0)] => counts[0] = ps.iter().map(|&x| i64::from(x == p0)).sum(),
                    [(_, p0), (_, p1)] => {
                        let (mut c0, mut c1) = (0u32, 0u32);
                        for &x in ps {
                            c0 += u32::from(x == p0);
                            c1 += u32::from(x == p1);
                        }
                        counts[0] = i64::from(c0);
                        counts[1] = i64::from(c1);
                    }
                    _ => {
                        for &x in ps {
                            for (k, &(_, p)) in count_only.iter().enumerate() {
                                counts[k] += i64::from(x == p);
                            }
                        }
                    }
                }
                for (k, &(i, _)) in count_only.iter().enumerate() {
                    aggs[i] = (counts[k], 0, i64::MAX, i64::MIN);
                }
            }
            for (gi, (g, agg)) in groups.iter().zip(aggs.iter_mut()).enumerate() {
                if count_only.iter().any(|&(i, _)| i == gi) {
                    continue;
                }
                let (lo, hi) = (g.lo, g.hi);
                let all_in = lo == i64::MIN && hi >= max_ts;
                *agg = (0, 0, i64::MAX, i64::MIN);
                match g.shape {
                    Shape::All => {
                        // Orders are in time order within a customer (see `load_columns`).
                        let t = &ts[a..b];
                        let (s0, e0) = if all_in {
                            (0, t.len())
                        } else {
                            (t.partition_point(|&x| x < lo), t.partition_point(|&x| x <= hi))
                        };
                        if e0 > s0 {
                            *agg = (
                                i64::try_from(e0 - s0).unwrap_or(i64::MAX),
                                if g.needs.sum { amount.sum(a + s0..a + e0) } else { 0 },
                                t[s0],
                                t[e0 - 1],
                            );
                        }
                    }
                    Shape::Product(p) if !product[a..b].contains(&p) => {}
                    Shape::Product(p)
                        if all_in && !(g.needs.sum || g.needs.first || g.needs.last) =>
                    {
                        // Counting only: the instants and values are never read.
                        agg.0 = i64::try_from(product[a..b].iter().filter(|&&x| x == p).count())
                            .unwrap_or(i64::MAX);
                    }
                    _ => {
                        let want = if let Shape::Product(p) = g.shape { Some(p) } else { None };
                        for i in a..b {
                            let t = ts[i];
                            if t >= lo && t <= hi && want.is_none_or(|p| product[i] == p) {
                                let v = if want.is_some() { value.get(i) } else { amount.get(i) };
                                *agg = (agg.0 + 1, agg.1 + v, agg.2.min(t), agg.3.max(t));
                            }
                        }
                    }
                }
            }
            for ((_, g, test), out) in leaves.iter().zip(outs.iter_mut()) {
                let (c, sum, first, last) = aggs[*g];
                let hit = test.hit(c, i128::from(sum), first, last, now, tz);
                out[byte] |= u8::from(hit) << (r - base);
            }
        }
    }
}

/// A leaf in the state path: a bitmap, or a per-customer test over maintained columns.
enum StateLeaf<'a> {
    Lit(Lit<'a>),
    Pred(Box<dyn Fn(usize) -> bool + Sync + 'a>),
}

/// A leaf's customers, or their complement (kept implicit until needed).
enum Lit<'a> {
    Pos(Cow<'a, RoaringBitmap>),
    Neg(Cow<'a, RoaringBitmap>),
}

impl<'a> Lit<'a> {
    fn negate(self) -> Self {
        match self {
            Self::Pos(b) => Self::Neg(b),
            Self::Neg(b) => Self::Pos(b),
        }
    }

    /// `and` (or `or`) of literals without materialising complements: `and` intersects the
    /// positives smallest first and subtracts the negatives; `or` uses
    /// `a ∨ ¬b ∨ ¬c = ¬((b ∧ c) − a)`. `all` is the universe, for an `and` of negatives only.
    fn join(all: &RoaringBitmap, and: bool, kids: impl IntoIterator<Item = Self>) -> Self {
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for k in kids {
            match k {
                Self::Pos(b) => pos.push(b),
                Self::Neg(b) => neg.push(b),
            }
        }
        if and {
            pos.sort_by_key(|b| b.len());
            let mut acc = pos.first().map_or_else(|| all.clone(), |b| b.as_ref().clone());
            for b in pos.iter().skip(1) {
                acc &= b.as_ref();
            }
            for b in &neg {
                acc -= b.as_ref();
            }
            Self::Pos(Cow::Owned(acc))
        } else {
            let mut union = RoaringBitmap::new();
            for b in &pos {
                union |= b.as_ref();
            }
            if neg.is_empty() {
                return Self::Pos(Cow::Owned(union));
            }
            neg.sort_by_key(|b| b.len());
            let mut inner = neg[0].as_ref().clone();
            for b in neg.iter().skip(1) {
                inner &= b.as_ref();
            }
            inner -= &union;
            Self::Neg(Cow::Owned(inner))
        }
    }
}

/// Orders matching one filter inside `[lo, hi]`.
struct Group {
    filter: SymFilter,
    shape: Shape,
    needs: Needs,
    lo: i64,
    hi: i64,
}

/// Which aggregates a group's leaves read.
#[derive(Clone, Copy, Default)]
struct Needs {
    sum: bool,
    first: bool,
    last: bool,
}

/// The shape of a group's filter, for specialised scan loops.
#[derive(Clone, Copy)]
enum Shape {
    /// Every order.
    All,
    /// Orders containing one product.
    Product(u32),
    /// Anything else.
    General,
}

/// What an order leaf tests on its group's aggregate.
enum OrderTest<'a> {
    Measure(Measure, CmpOp, i64),
    /// (last order?, test).
    Date(bool, &'a DateTest),
}

/// Inlines `segment "x"` references from the context's named segments.
fn expand(ctx: &Context, c: &Condition, depth: usize) -> Result<Condition, SegmentError> {
    if depth > 64 {
        return Err(SegmentError::Cycle(vec!["segment references nested too deeply".into()]));
    }
    let kids = |cs: &[Condition]| -> Result<Vec<Condition>, SegmentError> {
        cs.iter().map(|c| expand(ctx, c, depth + 1)).collect()
    };
    Ok(match c {
        Condition::And { children } => Condition::And { children: kids(children)? },
        Condition::Or { children } => Condition::Or { children: kids(children)? },
        Condition::Not { child } => {
            Condition::Not { child: Box::new(expand(ctx, child, depth + 1)?) }
        }
        Condition::InSegment { name } => {
            let d = ctx.segment(name).ok_or_else(|| SegmentError::UnknownSegment(name.clone()))?;
            expand(ctx, d.condition(), depth + 1)?
        }
        leaf => leaf.clone(),
    })
}

/// Whether a birthday test holds (the birth date's instant is local midnight in `tz`).
fn birthday_hit(birth: Option<NaiveDate>, test: &DateTest, now: i64, tz: FixedOffset) -> bool {
    match test {
        // The local month of local midnight is the date's month: no time-zone arithmetic.
        DateTest::MonthIs { month } => birth.is_some_and(|d| chrono::Datelike::month(&d) == *month),
        t => date_test(birth.map(|d| day_start(date_to_day(d), tz)), t, now, tz).0,
    }
}

impl OrderTest<'_> {
    /// The leaf's value on its group's `(count, sum, first, last)` (first/last are
    /// `i64::MAX` / `i64::MIN` when there is no matching order).
    #[inline]
    fn hit(&self, c: i64, sum: i128, first: i64, last: i64, now: i64, tz: FixedOffset) -> bool {
        match self {
            Self::Measure(m, op, v) => measure_test(c, sum, *m, *op, *v),
            Self::Date(is_last, DateTest::Age { op, value }) => {
                c > 0 && op.apply(now - if *is_last { last } else { first }, value.as_secs())
            }
            Self::Date(is_last, dt) => {
                c > 0 && date_test(Some(if *is_last { last } else { first }), dt, now, tz).0
            }
        }
    }
}

fn row_in(p: &Plan, leaves: &[LeafCache], row: u32) -> bool {
    match p {
        Plan::Leaf(i) => leaves[*i].bits.contains(row),
        Plan::Not(c) => !row_in(c, leaves, row),
        Plan::And(cs) => cs.iter().all(|c| row_in(c, leaves, row)),
        Plan::Or(cs) => cs.iter().any(|c| row_in(c, leaves, row)),
    }
}

fn collect_leaves(p: &Plan, out: &mut Vec<usize>) {
    match p {
        Plan::Leaf(i) => out.push(*i),
        Plan::Not(c) => collect_leaves(c, out),
        Plan::And(cs) | Plan::Or(cs) => cs.iter().for_each(|c| collect_leaves(c, out)),
    }
}

/// A bitmap of the rows `0..n` where `pred` holds, computed on `threads` threads.
fn dense(n: u32, threads: usize, pred: impl Fn(usize) -> bool + Sync) -> RoaringBitmap {
    let nn = n as usize;
    dense_bytes(n, threads, 1, |b0, outs| {
        let Some(out) = outs.first_mut() else { return };
        for (byte, x) in out.iter_mut().enumerate() {
            let base = (b0 + byte) * 8;
            if base + 8 <= nn {
                let mut v = 0u8;
                for j in 0..8 {
                    v |= u8::from(pred(base + j)) << j;
                }
                *x = v;
            } else {
                for r in base..nn {
                    *x |= u8::from(pred(r)) << (r - base);
                }
            }
        }
    })
    .pop()
    .unwrap_or_default()
}

/// Bitmaps of the rows `0..n` for `k` predicates computed together by `f(row, results)`.
fn dense_k(
    n: u32,
    threads: usize,
    k: usize,
    f: impl Fn(usize, &mut [bool]) + Sync,
) -> Vec<RoaringBitmap> {
    let nn = n as usize;
    dense_bytes(n, threads, k, |b0, outs| {
        let mut res = vec![false; k];
        let len = outs.first().map_or(0, |o| o.len());
        for byte in 0..len {
            let base = (b0 + byte) * 8;
            for r in base..(base + 8).min(nn) {
                f(r, &mut res);
                for (o, &b) in outs.iter_mut().zip(&res) {
                    o[byte] |= u8::from(b) << (r - base);
                }
            }
        }
    })
}

/// Runs `fill(first_byte, outputs)` on `threads` threads, each owning a byte range of all `k`
/// bitsets over rows `0..n`, and converts the bitsets to Roaring bitmaps.
fn dense_bytes(
    n: u32,
    threads: usize,
    k: usize,
    fill: impl Fn(usize, &mut [&mut [u8]]) + Sync,
) -> Vec<RoaringBitmap> {
    let n = n as usize;
    let nbytes = n.div_ceil(8);
    let mut bufs: Vec<Vec<u8>> = (0..k).map(|_| vec![0u8; nbytes]).collect();
    let parts = if threads <= 1 || n < 100_000 { 1 } else { threads };
    let chunk = nbytes.div_ceil(parts).max(1);
    let mut slices: Vec<Vec<&mut [u8]>> = (0..parts).map(|_| Vec::with_capacity(k)).collect();
    for b in &mut bufs {
        for (p, c) in b.chunks_mut(chunk).enumerate() {
            slices[p].push(c);
        }
    }
    if parts == 1 {
        if let Some(s) = slices.first_mut() {
            fill(0, s);
        }
    } else {
        std::thread::scope(|sc| {
            for (p, mut s) in slices.into_iter().enumerate() {
                let fill = &fill;
                sc.spawn(move || fill(p * chunk, &mut s));
            }
        });
    }
    bufs.iter().map(|b| RoaringBitmap::from_lsb0_bytes(0, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_bitmaps_match_the_predicate_across_thread_splits() {
        for (n, threads) in [(0u32, 2usize), (7, 1), (100_003, 2), (250_001, 3)] {
            let pred = |r: usize| r % 7 == 3 || r.is_multiple_of(64);
            let got = dense(n, threads, pred);
            let want: RoaringBitmap = (0..n).filter(|&r| pred(r as usize)).collect();
            assert_eq!(got, want, "n={n} threads={threads}");
            let ks = dense_k(n, threads, 2, |r, out| {
                out[0] = pred(r);
                out[1] = !pred(r);
            });
            assert_eq!(ks[0], want);
            assert_eq!(ks[1].len(), u64::from(n) - want.len());
        }
    }
}
