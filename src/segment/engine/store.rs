//! Columnar storage: customer columns, orders clustered by customer (CSR) plus a delta of
//! appended orders, symbol interning, and the maintained per-customer aggregates.

use std::collections::HashMap;

use chrono::NaiveDate;
use roaring::RoaringBitmap;

use crate::CustomerId;
use crate::segment::ast::{OrderFilter, OrderKind};
use crate::segment::data::{
    AttrValue, LineStatus, MessageEvent, OrderFact, SavedItem, SubscriptionFact,
};
use crate::segment::eval::View;
use crate::segment::time::secs;

/// No symbol.
pub(crate) const NONE: u32 = u32::MAX;

/// Interned strings (product IDs, SKUs, categories).
#[derive(Debug, Default, Clone)]
pub(crate) struct Interner {
    map: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        self.map.insert(s.to_owned(), i);
        self.names.push(s.to_owned());
        i
    }

    /// Number of symbols.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The string of a symbol (`None` for [`NONE`]).
    pub(crate) fn name(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(String::as_str)
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.names.iter().map(|s| s.capacity() * 2 + 48).sum()
    }
}

/// Facts that are not columns: attributes, subscriptions, cart, favourites, messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct Side {
    pub(crate) attributes: std::collections::BTreeMap<String, AttrValue>,
    pub(crate) subscriptions: Vec<SubscriptionFact>,
    pub(crate) cart: Vec<SavedItem>,
    pub(crate) favourites: Vec<SavedItem>,
    pub(crate) messages: Vec<MessageEvent>,
}

/// One appended order (kept row-wise until the next compaction).
#[derive(Debug, Clone)]
pub(crate) struct DeltaOrder {
    pub(crate) ts: i64,
    pub(crate) amount: i64,
    pub(crate) kind: u8,
    /// (product, sku, category, unit price × quantity).
    pub(crate) items: Vec<(u32, u32, u32, i64)>,
}

pub(crate) fn kind_code(k: OrderKind) -> u8 {
    match k {
        OrderKind::OneOff => 0,
        _ => 1,
    }
}

/// A filter resolved to symbols. `None` lists mean "any"; an empty list matches nothing.
pub(crate) struct SymFilter {
    kind: Option<u8>,
    has_items: bool,
    products: Option<Vec<u32>>,
    skus: Option<Vec<u32>>,
    categories: Option<Vec<u32>>,
}

impl SymFilter {
    pub(crate) fn new(f: &OrderFilter, syms: &Interner) -> Self {
        let set =
            |v: &[String]| (!v.is_empty()).then(|| v.iter().filter_map(|s| syms.get(s)).collect());
        Self {
            kind: f.kind.map(kind_code),
            has_items: f.has_items(),
            products: set(&f.products),
            skus: set(&f.skus),
            categories: set(&f.categories),
        }
    }

    #[inline]
    fn item(&self, p: u32, s: u32, c: u32) -> bool {
        self.products.as_ref().is_none_or(|v| v.contains(&p))
            && self.skus.as_ref().is_none_or(|v| v.contains(&s))
            && self.categories.as_ref().is_none_or(|v| v.contains(&c))
    }

    /// No restriction at all.
    pub(crate) fn is_unfiltered(&self) -> bool {
        self.kind.is_none() && !self.has_items
    }

    /// Only a product list (no SKU, category or kind): answerable from the product index.
    pub(crate) fn products_only(&self) -> Option<&[u32]> {
        if self.kind.is_none() && self.skus.is_none() && self.categories.is_none() {
            self.products.as_deref()
        } else {
            None
        }
    }
}

/// An integer column stored as `i32` when every value fits (halving the bytes a scan reads),
/// `i64` otherwise.
#[derive(Debug, Clone)]
pub(crate) enum IntCol {
    Narrow(Vec<i32>),
    Wide(Vec<i64>),
}

impl Default for IntCol {
    fn default() -> Self {
        Self::Narrow(Vec::new())
    }
}

impl IntCol {
    pub(crate) fn new(v: Vec<i64>) -> Self {
        if v.iter().all(|&x| i32::try_from(x).is_ok()) {
            Self::Narrow(v.into_iter().map(|x| i32::try_from(x).unwrap_or_default()).collect())
        } else {
            Self::Wide(v)
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> i64 {
        match self {
            Self::Narrow(v) => i64::from(v[i]),
            Self::Wide(v) => v[i],
        }
    }

    /// Sum of a range.
    #[inline]
    pub(crate) fn sum(&self, r: std::ops::Range<usize>) -> i64 {
        match self {
            Self::Narrow(v) => v[r].iter().map(|&x| i64::from(x)).sum(),
            Self::Wide(v) => v[r].iter().sum(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Narrow(v) => v.capacity() * 4,
            Self::Wide(v) => v.capacity() * 8,
        }
    }
}

/// Orders clustered by customer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Orders {
    /// Per customer, its first order (length = customers + 1).
    pub(crate) start: Vec<u32>,
    pub(crate) ts: Vec<i64>,
    pub(crate) amount: IntCol,
    pub(crate) kind: Vec<u8>,
    /// Per order, its first item (length = orders + 1).
    pub(crate) item_start: Vec<u32>,
    pub(crate) item_product: Vec<u32>,
    pub(crate) item_sku: Vec<u32>,
    pub(crate) item_category: Vec<u32>,
    pub(crate) item_value: IntCol,
    /// Orders appended since the base was built.
    pub(crate) delta: HashMap<u32, Vec<DeltaOrder>>,
    /// Customers whose base orders were replaced (their base rows are ignored).
    pub(crate) dead: RoaringBitmap,
    /// Latest order instant stored.
    pub(crate) max_ts: i64,
    /// Every base order has exactly one item.
    single: bool,
}

impl Orders {
    pub(crate) fn new() -> Self {
        Self {
            start: vec![0],
            item_start: vec![0],
            max_ts: i64::MIN,
            single: true,
            ..Self::default()
        }
    }

    /// Whether every base order has exactly one item (then item `i` belongs to order `i`).
    pub(crate) fn single_item(&self) -> bool {
        self.single
    }

    /// Recomputes [`Orders::single_item`] after the base changed.
    pub(crate) fn refresh_single(&mut self) {
        self.single = self.item_start.len() == self.ts.len() + 1
            && self.item_start.windows(2).all(|w| w[1] == w[0] + 1);
    }

    /// Base order range of a customer.
    #[inline]
    pub(crate) fn range(&self, row: u32) -> std::ops::Range<usize> {
        let r = row as usize;
        if r + 1 >= self.start.len() || self.dead.contains(row) {
            return 0..0;
        }
        self.start[r] as usize..self.start[r + 1] as usize
    }

    /// Calls `f(ts, value)` for every order of `row` matching `filter`.
    pub(crate) fn for_each(&self, row: u32, filter: &SymFilter, f: &mut dyn FnMut(i64, i64)) {
        for o in self.range(row) {
            if filter.kind.is_some_and(|k| k != self.kind[o]) {
                continue;
            }
            if !filter.has_items {
                f(self.ts[o], self.amount.get(o));
                continue;
            }
            let (mut hit, mut total) = (false, 0i64);
            for i in self.item_start[o] as usize..self.item_start[o + 1] as usize {
                if filter.item(self.item_product[i], self.item_sku[i], self.item_category[i]) {
                    hit = true;
                    total = total.saturating_add(self.item_value.get(i));
                }
            }
            if hit {
                f(self.ts[o], total);
            }
        }
        for d in self.delta.get(&row).into_iter().flatten() {
            if filter.kind.is_some_and(|k| k != d.kind) {
                continue;
            }
            if !filter.has_items {
                f(d.ts, d.amount);
                continue;
            }
            let (mut hit, mut total) = (false, 0i64);
            for &(p, s, c, v) in &d.items {
                if filter.item(p, s, c) {
                    hit = true;
                    total = total.saturating_add(v);
                }
            }
            if hit {
                f(d.ts, total);
            }
        }
    }

    /// Products of every order of `row` placed at or before `now`.
    pub(crate) fn products_until(&self, row: u32, now: i64, out: &mut Vec<u32>) {
        for o in self.range(row) {
            if self.ts[o] <= now {
                out.extend_from_slice(
                    &self.item_product
                        [self.item_start[o] as usize..self.item_start[o + 1] as usize],
                );
            }
        }
        for d in self.delta.get(&row).into_iter().flatten() {
            if d.ts <= now {
                out.extend(d.items.iter().map(|i| i.0));
            }
        }
    }

    pub(crate) fn to_delta(o: &OrderFact, syms: &mut Interner) -> DeltaOrder {
        DeltaOrder {
            ts: secs(&o.placed_at),
            amount: o.amount,
            kind: kind_code(o.kind),
            items: o
                .items
                .iter()
                .map(|i| {
                    (
                        syms.intern(&i.product),
                        i.sku.as_deref().map_or(NONE, |s| syms.intern(s)),
                        i.category.as_deref().map_or(NONE, |s| syms.intern(s)),
                        i.unit_price.saturating_mul(i64::from(i.quantity)),
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.start.capacity() * 4
            + self.ts.capacity() * 8
            + self.amount.bytes()
            + self.kind.capacity()
            + self.item_start.capacity() * 4
            + self.item_product.capacity() * 4
            + self.item_sku.capacity() * 4
            + self.item_category.capacity() * 4
            + self.item_value.bytes()
            + self.delta.values().map(|v| 64 + v.len() * 64).sum::<usize>()
            + self.dead.serialized_size()
    }
}

/// Customer columns.
#[derive(Debug, Default, Clone)]
pub(crate) struct Customers {
    pub(crate) ids: Vec<CustomerId>,
    pub(crate) index: HashMap<CustomerId, u32>,
    pub(crate) line: Vec<LineStatus>,
    pub(crate) birth: Vec<Option<NaiveDate>>,
    pub(crate) registered: Vec<Option<i64>>,
    pub(crate) side: Vec<Option<Box<Side>>>,
}

impl Customers {
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.ids.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.ids.iter().map(|i| i.as_str().len() + 24).sum::<usize>()
            + self.index.capacity() * (24 + 4 + 8)
            + self.index.len() * 16
            + self.line.capacity() * std::mem::size_of::<LineStatus>()
            + self.birth.capacity() * std::mem::size_of::<Option<NaiveDate>>()
            + self.registered.capacity() * 16
            + self.side.capacity() * 8
            + self.side.iter().flatten().map(|_| std::mem::size_of::<Side>() + 256).sum::<usize>()
    }
}

/// Per-customer aggregates over orders placed up to the engine's `now`, maintained as orders
/// arrive, plus "ever bought" indexes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Aggregates {
    pub(crate) count: Vec<u32>,
    pub(crate) sum: Vec<i64>,
    pub(crate) first: Vec<i64>,
    pub(crate) last: Vec<i64>,
    pub(crate) product: HashMap<u32, RoaringBitmap>,
    /// Orders after `now`, applied when time reaches them: (instant, customer).
    pub(crate) pending: std::collections::BTreeMap<i64, Vec<u32>>,
}

impl Aggregates {
    pub(crate) fn bytes(&self) -> usize {
        self.count.capacity() * 4
            + self.sum.capacity() * 8
            + self.first.capacity() * 8
            + self.last.capacity() * 8
            + self.product.values().map(|b| b.serialized_size() + 32).sum::<usize>()
            + self.pending.values().map(|v| 48 + v.len() * 4).sum::<usize>()
    }
}

/// A customer as seen by the leaf semantics.
pub(crate) struct RowView<'a> {
    pub(crate) row: u32,
    pub(crate) customers: &'a Customers,
    pub(crate) orders: &'a Orders,
    pub(crate) syms: &'a Interner,
}

const NO_SIDE: &Side = &Side {
    attributes: std::collections::BTreeMap::new(),
    subscriptions: Vec::new(),
    cart: Vec::new(),
    favourites: Vec::new(),
    messages: Vec::new(),
};

impl RowView<'_> {
    fn side(&self) -> &Side {
        self.customers.side[self.row as usize].as_deref().unwrap_or(NO_SIDE)
    }
}

impl View for RowView<'_> {
    fn id(&self) -> &CustomerId {
        &self.customers.ids[self.row as usize]
    }
    fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.side().attributes.get(name)
    }
    fn birth_date(&self) -> Option<NaiveDate> {
        self.customers.birth[self.row as usize]
    }
    fn registered_at(&self) -> Option<i64> {
        self.customers.registered[self.row as usize]
    }
    fn line(&self) -> LineStatus {
        self.customers.line[self.row as usize]
    }
    fn subscriptions(&self) -> &[SubscriptionFact] {
        &self.side().subscriptions
    }
    fn cart(&self) -> &[SavedItem] {
        &self.side().cart
    }
    fn favourites(&self) -> &[SavedItem] {
        &self.side().favourites
    }
    fn messages(&self) -> &[MessageEvent] {
        &self.side().messages
    }
    fn orders(&self, filter: &OrderFilter, f: &mut dyn FnMut(i64, i64)) {
        self.orders.for_each(self.row, &SymFilter::new(filter, self.syms), f);
    }
}
