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

mod analytics;
mod cold;
mod columns;
mod combine;
mod dense;
mod fused;
mod incremental;
mod leaves;
mod members;
mod registry;
mod scan;
mod state;
mod store;

pub use self::cold::evaluate_columns;
pub use self::members::{Members, MembersIter};

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use roaring::RoaringBitmap;

use self::combine::Plan;
use self::store::{Aggregates, Customers, Interner, Orders, RowView};
use super::ast::{Condition, DateTest};
use super::data::Context;
use super::error::SegmentError;
use super::eval::date_test;
use super::schema::Schema;
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
            threads: default_threads(),
            declared: Schema::new(),
        }
    }

    /// Threads used by full scans, by the raw path's pass over many candidates' orders and by
    /// the state path's tests of many rows (default 2, or 1 when this process may run on one
    /// CPU only).
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
    pub(crate) fn row_of(&self, id: &CustomerId) -> Option<u32> {
        self.customers.index.get(&self.customers.ids, id)
    }

    /// The public face of a bitmap of this engine's rows.
    fn members_of<'a>(&'a self, rows: Cow<'a, RoaringBitmap>) -> Members<'a> {
        Members::new(&self.customers.ids, Some(&self.customers.index), rows)
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

    fn view(&self, row: u32) -> RowView<'_> {
        RowView { row, customers: &self.customers, orders: &self.orders, syms: &self.syms }
    }
}

/// Two threads, or one when this process may run on one CPU only (a second thread would only
/// take turns with the first). Read once: the lookup reads cgroup files.
fn default_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(2)))
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
