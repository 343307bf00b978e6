//! Columnar storage: customer columns, orders clustered by customer (CSR) plus a delta of
//! appended orders, symbol interning, and the maintained per-customer aggregates.

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{DateTime, NaiveDate, Utc};
use roaring::RoaringBitmap;

use crate::CustomerId;
use crate::segment::ast::{OrderFilter, OrderKind};
use crate::segment::data::{
    AttrValue, Friendship, LineStatus, MessageEvent, OrderFact, SavedItem, SubscriptionFact,
};
use crate::segment::eval::View;
use crate::segment::time::secs;

/// No symbol.
pub(crate) const NONE: u32 = u32::MAX;

/// No instant (an instant chrono cannot represent, so never a real one).
pub(crate) const NO_INSTANT: i64 = i64::MIN;

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

/// An integer column stored as `u16` or `u32` offsets from a base when the values span less
/// than 2^16 or 2^32 (yen amounts, Unix seconds of a few decades), `i64` otherwise.
#[derive(Debug, Clone)]
pub(crate) enum IntCol {
    N16 { base: i64, v: Vec<u16> },
    N32 { base: i64, v: Vec<u32> },
    Wide(Vec<i64>),
}

impl Default for IntCol {
    fn default() -> Self {
        Self::N16 { base: 0, v: Vec::new() }
    }
}

/// Runs `$e` with `$v` bound to the offsets (or values) and `$base` to the base (0 for wide).
macro_rules! by_width {
    ($col:expr, $base:ident, $v:ident => $e:expr) => {
        match $col {
            IntCol::N16 { base: $base, v: $v } => $e,
            IntCol::N32 { base: $base, v: $v } => $e,
            IntCol::Wide($v) => {
                let $base = &0i64;
                $e
            }
        }
    };
}

// The wide arm of `by_width!` converts `i64` to `i64`.
#[allow(clippy::useless_conversion)]
impl IntCol {
    pub(crate) fn new(v: Vec<i64>) -> Self {
        let (lo, hi) = v.iter().fold((i64::MAX, i64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        if v.is_empty() {
            return Self::default();
        }
        // Non-negative columns keep base 0 while they fit, so their offsets are the values.
        let span = |max: i64| {
            if lo >= 0 && hi <= max {
                Some(0)
            } else {
                hi.checked_sub(lo).filter(|&d| d <= max).map(|_| lo)
            }
        };
        if let Some(base) = span(i64::from(u16::MAX)) {
            Self::N16 {
                base,
                v: v.iter().map(|&x| u16::try_from(x - base).unwrap_or_default()).collect(),
            }
        } else if let Some(base) = span(i64::from(u32::MAX)) {
            Self::N32 {
                base,
                v: v.iter().map(|&x| u32::try_from(x - base).unwrap_or_default()).collect(),
            }
        } else {
            Self::Wide(v)
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> i64 {
        by_width!(self, base, v => base + i64::from(v[i]))
    }

    /// Sum of a range.
    #[inline]
    pub(crate) fn sum(&self, r: std::ops::Range<usize>) -> i64 {
        let n = i64::try_from(r.len()).unwrap_or(i64::MAX);
        let s = match self {
            // At most 2^32 offsets below 2^32 each: the sum fits a `u64`, which vectorises.
            Self::N16 { base, v } => {
                i128::from(*base) * i128::from(n)
                    + i128::from(v[r].iter().map(|&x| u64::from(x)).sum::<u64>())
            }
            Self::N32 { base, v } => {
                i128::from(*base) * i128::from(n)
                    + i128::from(v[r].iter().map(|&x| u64::from(x)).sum::<u64>())
            }
            Self::Wide(v) => v[r].iter().map(|&x| i128::from(x)).sum(),
        };
        i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
    }

    /// Within a range sorted ascending, the sub-range of values in `[lo, hi]`.
    #[inline]
    pub(crate) fn within(
        &self,
        r: std::ops::Range<usize>,
        lo: i64,
        hi: i64,
    ) -> std::ops::Range<usize> {
        let a = r.start;
        let (s, e) = by_width!(self, base, v => {
            // Bounds moved into offset space (saturating: no offset is below 0).
            let (lo, hi) = (lo.saturating_sub(*base), hi.saturating_sub(*base));
            let t = &v[r];
            (
                t.partition_point(|&x| i64::from(x) < lo),
                t.partition_point(|&x| i64::from(x) <= hi),
            )
        });
        a + s..a + e.max(s)
    }

    /// Largest value (`None` when empty).
    pub(crate) fn max(&self) -> Option<i64> {
        by_width!(self, base, v => v.iter().max().map(|&x| base + i64::from(x)))
    }

    fn bytes(&self) -> usize {
        by_width!(self, _base, v => capacity_bytes(v))
    }
}

/// Bytes reserved by a vector.
fn capacity_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// Orders clustered by customer. The base holds bulk-loaded orders, each a one-off order with
/// one line item (no SKU or category, its value the order amount), in time order within a
/// customer; everything else arrives as delta rows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Orders {
    /// Per customer, its first order (length = customers + 1).
    pub(crate) start: Vec<u32>,
    pub(crate) ts: IntCol,
    pub(crate) amount: IntCol,
    /// The product of each base order's line item.
    pub(crate) product: Vec<u32>,
    /// Orders appended since the base was built.
    pub(crate) delta: HashMap<u32, Vec<DeltaOrder>>,
    /// Customers whose base orders were replaced (their base rows are ignored).
    pub(crate) dead: RoaringBitmap,
    /// Latest order instant stored.
    pub(crate) max_ts: i64,
}

/// [`DeltaOrder::kind`] of the base orders (one-off).
const BASE_KIND: u8 = 0;

impl Orders {
    pub(crate) fn new() -> Self {
        Self { start: vec![0], max_ts: i64::MIN, ..Self::default() }
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
        if filter.kind.is_none_or(|k| k == BASE_KIND) {
            for o in self.range(row) {
                if !filter.has_items || filter.item(self.product[o], NONE, NONE) {
                    f(self.ts.get(o), self.amount.get(o));
                }
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
            if self.ts.get(o) <= now {
                out.push(self.product[o]);
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
            + self.ts.bytes()
            + self.amount.bytes()
            + self.product.capacity() * 4
            + self.delta.values().map(|v| 64 + v.len() * 64).sum::<usize>()
            + self.dead.serialized_size()
    }
}

/// Customer ID → row: a hash table of rows only, hashed and compared through the ID column
/// (the IDs are stored once, in [`Customers::ids`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct RowIndex {
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl RowIndex {
    /// The row of `id`, given the ID column the rows index.
    #[inline]
    pub(crate) fn get(&self, ids: &[CustomerId], id: &CustomerId) -> Option<u32> {
        let h = self.hasher.hash_one(id);
        self.table.find(h, |&r| ids.get(r as usize) == Some(id)).copied()
    }

    /// Records `row` for `id` (absent so far); `ids` is the ID column, `ids[row]` may be missing
    /// yet.
    pub(crate) fn insert(&mut self, ids: &[CustomerId], id: &CustomerId, row: u32) {
        let hasher = &self.hasher;
        let h = hasher.hash_one(id);
        self.table
            .insert_unique(h, row, |&r| ids.get(r as usize).map_or(0, |x| hasher.hash_one(x)));
    }

    /// Reserves room for `more` rows.
    pub(crate) fn reserve(&mut self, ids: &[CustomerId], more: usize) {
        let hasher = &self.hasher;
        self.table.reserve(more, |&r| ids.get(r as usize).map_or(0, |x| hasher.hash_one(x)));
    }

    fn bytes(&self) -> usize {
        // Buckets (at most 7/8 full) of one row and one control byte each.
        (self.table.capacity() * 8 / 7) * 5 + 64
    }
}

/// LINE state as columns: `line linked` reads the link flags alone (1 byte a customer, not
/// the whole 16-byte [`LineStatus`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct LineCols {
    pub(crate) linked: Vec<bool>,
    linked_at: Vec<Option<DateTime<Utc>>>,
    friendship: Vec<Friendship>,
}

impl LineCols {
    pub(crate) fn push(&mut self, l: LineStatus) {
        self.linked.push(l.linked);
        self.linked_at.push(l.linked_at);
        self.friendship.push(l.friendship);
    }

    pub(crate) fn set(&mut self, row: usize, l: LineStatus) {
        self.linked[row] = l.linked;
        self.linked_at[row] = l.linked_at;
        self.friendship[row] = l.friendship;
    }

    pub(crate) fn get(&self, row: usize) -> LineStatus {
        LineStatus {
            linked: self.linked[row],
            linked_at: self.linked_at[row],
            friendship: self.friendship[row],
        }
    }

    fn bytes(&self) -> usize {
        self.linked.capacity()
            + self.linked_at.capacity() * std::mem::size_of::<Option<DateTime<Utc>>>()
            + self.friendship.capacity() * std::mem::size_of::<Friendship>()
    }
}

/// Customer columns.
#[derive(Debug, Default, Clone)]
pub(crate) struct Customers {
    pub(crate) ids: Vec<CustomerId>,
    pub(crate) index: RowIndex,
    pub(crate) line: LineCols,
    pub(crate) birth: Vec<Option<NaiveDate>>,
    /// Registration instants ([`NO_INSTANT`] when unknown).
    pub(crate) registered: Vec<i64>,
    pub(crate) side: Vec<Option<Box<Side>>>,
}

impl Customers {
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.ids.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn bytes(&self) -> usize {
        // An ID is a pointer and length here, and two reference counts beside its bytes.
        let id_overhead = std::mem::size_of::<CustomerId>() + 2 * std::mem::size_of::<usize>();
        self.ids.iter().map(|i| i.as_str().len() + id_overhead).sum::<usize>()
            + self.index.bytes()
            + self.line.bytes()
            + self.birth.capacity() * std::mem::size_of::<Option<NaiveDate>>()
            + self.registered.capacity() * 8
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
        Some(self.customers.registered[self.row as usize]).filter(|&t| t != NO_INSTANT)
    }
    fn line(&self) -> LineStatus {
        self.customers.line.get(self.row as usize)
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
