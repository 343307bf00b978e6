//! The cold path: a segment evaluated straight from unsorted customer and order columns,
//! with no engine state built first.
//!
//! Customer leaves become dense bitsets; the children of a top-level `and` that read no orders
//! are combined first into a candidate set, so one pass over the order columns only
//! accumulates (count, sum, first, last) per (filter, window) group for candidates, in compact
//! arrays indexed by the candidate's rank. Order leaves are then tested on those aggregates
//! with the same helpers the engine's scans use, and the tree is combined word by word.

use std::borrow::Cow;
use std::cell::Cell;

use roaring::RoaringBitmap;

use super::scan::OrderTest;
use super::{CustomerColumns, Members, OrderColumns, birthday_hit, expand};
use crate::CustomerId;
use crate::segment::ast::{
    Condition, DateField, Expr, Measure, OrderFilter, OrderKind, SegmentDefinition, Window,
};
use crate::segment::data::{
    AttrValue, Context, LineStatus, MessageEvent, SavedItem, SubscriptionFact,
};
use crate::segment::error::SegmentError;
use crate::segment::eval::{Env, View, eval, line_test, window_bounds};
use crate::segment::time::secs;

const EVALUATOR: &str = "evaluate_columns";

/// Orders below this are scanned on one thread (spawning costs more than it saves).
const PARALLEL_ORDERS: usize = 1 << 20;

/// [`PARALLEL_ORDERS`], or never when this process may run on one CPU only (a second thread
/// would only take turns with the first). Read once: the lookup reads cgroup files.
fn parallel_from() -> usize {
    static FROM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *FROM.get_or_init(|| match std::thread::available_parallelism() {
        Ok(n) if n.get() < 2 => usize::MAX,
        _ => PARALLEL_ORDERS,
    })
}

/// Evaluates a segment directly from bulk columns, without building an [`Engine`](super::Engine):
/// row `i` of `customers` is customer `i`, and each row of `orders` is a confirmed one-off order
/// with a single line item (quantity 1, unit price = amount), exactly as
/// [`Engine::load_columns`](super::Engine::load_columns) reads them. Order rows need not be
/// sorted. `ctx` gives `now`, the time zone, lists and named segments. Returns the members,
/// borrowing the IDs of `customers`.
///
/// Customer facts the columns do not carry are missing (no attributes, registration, LINE
/// friendship, subscriptions, cart, favourites or messages), as in an engine loaded from the
/// same columns. Customer IDs are used as given (for lists and buckets); they are not checked
/// for uniqueness.
///
/// Work is one pass over the order columns (two threads for large inputs), accumulating only
/// what the definition's order leaves need, and only for customers that pass the top-level
/// `and`'s customer conditions.
///
/// # Errors
/// [`SegmentError::Invalid`] when column lengths differ or an order names an unknown customer
/// row or product; [`SegmentError::Unsupported`] for conditions that need per-customer order
/// lists (`cart abandoned`, `calc` over order counts or sums): evaluate those with an
/// [`Engine`](super::Engine) or the reference evaluator; [`SegmentError::UnknownSegment`],
/// [`SegmentError::UnknownList`] and [`SegmentError::Cycle`] as the other evaluators.
pub fn evaluate_columns<'a>(
    def: &SegmentDefinition,
    customers: &'a CustomerColumns,
    orders: &OrderColumns,
    ctx: &Context,
) -> Result<Members<'a>, SegmentError> {
    let rows = evaluate_with(def, customers, orders, ctx, parallel_from())?;
    Ok(Members::new(&customers.ids, None, Cow::Owned(rows)))
}

/// [`evaluate_columns`] using two threads from `parallel_from` orders on.
fn evaluate_with(
    def: &SegmentDefinition,
    customers: &CustomerColumns,
    orders: &OrderColumns,
    ctx: &Context,
    parallel_from: usize,
) -> Result<RoaringBitmap, SegmentError> {
    let c = customers;
    let n = c.ids.len();
    if c.line_linked.len() != n || c.birth_date.len() != n {
        return Err(SegmentError::invalid("customer columns have different lengths"));
    }
    let m = orders.customer.len();
    if orders.placed_at.len() != m || orders.amount.len() != m || orders.product.len() != m {
        return Err(SegmentError::invalid("order columns have different lengths"));
    }
    if u32::try_from(n).is_err() {
        return Err(SegmentError::invalid("more than 2^32 customers"));
    }
    let now = secs(&ctx.now());
    let tz = ctx.tz();
    let env = Env::new(ctx, now);
    let root = expand(ctx, def.condition(), 0)?;
    let mut leaves: Vec<&Condition> = Vec::new();
    for l in root.leaves() {
        if !leaves.contains(&l) {
            leaves.push(l);
        }
    }

    let Classified { groups, mut bits, order_leaves } = classify(&leaves, c, &env)?;
    let is_order = |l: &Condition| order_leaves.iter().any(|(i, ..)| leaves[*i] == l);
    let reads = |c: &Condition| c.leaves().into_iter().any(is_order);

    // Candidates: the customers every order-free child of a top-level `and` accepts.
    let (pre, rest): (Vec<&Condition>, Vec<&Condition>) = match &root {
        Condition::And { children } => children.iter().partition(|ch| !reads(ch)),
        r if reads(r) => (vec![], vec![r]),
        r => (vec![r], vec![]),
    };
    let mut cand = ones(n);
    for ch in pre {
        and_in(&mut cand, &combine(ch, &leaves, &bits, n));
    }
    // Index checks cover every order row, candidate or not, as `Engine::load_columns` does.
    if !rest.is_empty() {
        let rank = ranks(&cand);
        let k = rank.last().copied().unwrap_or(0) as usize
            + cand.last().map_or(0, |w| w.count_ones() as usize);
        let (specs, stride) = layout(&groups, &orders.product_names);
        let accs = scan(orders, n, &cand, &rank, &specs, stride, k, parallel_from)?;
        for (i, g, test) in &order_leaves {
            bits[*i] = Some(test_candidates(test, &specs[*g], &cand, &accs, now, tz));
        }
        for ch in rest {
            and_in(&mut cand, &combine(ch, &leaves, &bits, n));
        }
    } else if let Some(bad) = first_bad_index(orders, n) {
        return Err(bad);
    }
    let bytes: Vec<u8> = cand.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(RoaringBitmap::from_lsb0_bytes(0, &bytes))
}

/// The leaves of one evaluation, sorted out: order leaves join a (filter, window) group;
/// customer leaves become bits.
struct Classified<'a> {
    groups: Vec<GroupSpec<'a>>,
    /// Per leaf: its bits when it reads no orders.
    bits: Vec<Option<Bits>>,
    /// (leaf index, group index, test) of every order leaf.
    order_leaves: Vec<(usize, usize, OrderTest<'a>)>,
}

fn classify<'a>(
    leaves: &[&'a Condition],
    c: &CustomerColumns,
    env: &Env<'_>,
) -> Result<Classified<'a>, SegmentError> {
    let (now, tz) = (env.now, env.tz);
    let mut groups: Vec<GroupSpec<'_>> = Vec::new();
    let mut bits: Vec<Option<Bits>> = vec![None; leaves.len()];
    let mut order_leaves: Vec<(usize, usize, OrderTest<'_>)> = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let (filter, window, test) = match leaf {
            Condition::Orders { filter, window, measure, op, value } => {
                (filter, window, OrderTest::Measure(*measure, *op, *value))
            }
            Condition::Date { field: DateField::FirstOrder { filter }, test } => {
                (filter, &Window::AllTime, OrderTest::Date(false, test))
            }
            Condition::Date { field: DateField::LastOrder { filter }, test } => {
                (filter, &Window::AllTime, OrderTest::Date(true, test))
            }
            Condition::CartAbandoned { .. } => {
                return Err(unsupported(leaf, "it compares each customer's orders with the cart"));
            }
            Condition::Compare { left, right, .. } if reads_orders(left) || reads_orders(right) => {
                return Err(unsupported(
                    leaf,
                    "`calc` over order counts or sums is not aggregated here",
                ));
            }
            other => {
                bits[i] = Some(customer_leaf(other, c, env)?);
                continue;
            }
        };
        let (lo, hi) = window_bounds(window, now, tz);
        let g = match groups.iter().position(|g| g.filter == filter && g.lo == lo && g.hi == hi) {
            Some(g) => g,
            None => {
                groups.push(GroupSpec { filter, lo, hi, sum: false, first: false, last: false });
                groups.len() - 1
            }
        };
        match test {
            OrderTest::Measure(Measure::Count, ..) => {}
            OrderTest::Measure(..) => groups[g].sum = true,
            OrderTest::Date(true, _) => groups[g].last = true,
            OrderTest::Date(false, _) => groups[g].first = true,
        }
        order_leaves.push((i, g, test));
    }
    Ok(Classified { groups, bits, order_leaves })
}

/// An order leaf's bits over the candidates, from their accumulated group aggregates.
fn test_candidates(
    test: &OrderTest<'_>,
    g: &Group,
    cand: &Bits,
    accs: &[Accs],
    now: i64,
    tz: chrono::FixedOffset,
) -> Bits {
    let mut out = vec![0u64; cand.len()];
    let mut slot = 0usize;
    for (&word, o) in cand.iter().zip(out.iter_mut()) {
        let mut x = word;
        while x != 0 {
            let b = x.trailing_zeros();
            x &= x - 1;
            // Parts hold ascending slot ranges: the last one starting at or before.
            let part = accs.iter().rev().find(|a| a.from <= slot).unwrap_or(&accs[0]);
            let r = part.record(slot);
            let hit = test.hit(
                r[g.count],
                g.sum.map_or(0, |s| get_sum(r, s)),
                g.first.map_or(i64::MAX, |f| r[f]),
                g.last.map_or(i64::MIN, |l| r[l]),
                now,
                tz,
            );
            *o |= u64::from(hit) << b;
            slot += 1;
        }
    }
    out
}

fn unsupported(leaf: &Condition, why: &str) -> SegmentError {
    SegmentError::Unsupported {
        evaluator: EVALUATOR,
        construct: leaf.to_string(),
        reason: format!("{why}; evaluate it with an Engine or the reference evaluator"),
    }
}

fn reads_orders(e: &Expr) -> bool {
    match e {
        Expr::Number { .. } | Expr::Attribute { .. } => false,
        Expr::OrderCount { .. } | Expr::OrderSum { .. } => true,
        Expr::Sum { .. } | Expr::Product { .. } => e.operands().into_iter().any(reads_orders),
    }
}

fn bad_index() -> SegmentError {
    SegmentError::invalid("an order refers to an unknown customer row or product")
}

fn first_bad_index(o: &OrderColumns, n: usize) -> Option<SegmentError> {
    let np = o.product_names.len();
    let max_c = o.customer.iter().copied().max();
    let max_p = o.product.iter().copied().max();
    (max_c.is_some_and(|c| c as usize >= n) || max_p.is_some_and(|p| p as usize >= np))
        .then(bad_index)
}

/// A dense bitset over rows `0..n` (bit `r % 64` of word `r / 64`).
type Bits = Vec<u64>;

fn ones(n: usize) -> Bits {
    let mut b = vec![u64::MAX; n.div_ceil(64)];
    if let Some(last) = b.last_mut()
        && !n.is_multiple_of(64)
    {
        *last = (1u64 << (n % 64)) - 1;
    }
    b
}

fn and_in(acc: &mut Bits, other: &Bits) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a &= b);
}

fn bits_where(n: usize, pred: impl Fn(usize) -> bool) -> Bits {
    let mut b = vec![0u64; n.div_ceil(64)];
    for (w, word) in b.iter_mut().enumerate() {
        let base = w * 64;
        for r in base..(base + 64).min(n) {
            *word |= u64::from(pred(r)) << (r - base);
        }
    }
    b
}

/// Number of set bits before each word.
fn ranks(b: &Bits) -> Vec<u32> {
    let mut acc = 0u32;
    b.iter()
        .map(|w| {
            let r = acc;
            acc += w.count_ones();
            r
        })
        .collect()
}

/// Combines leaf bitsets word by word.
fn combine(c: &Condition, leaves: &[&Condition], bits: &[Option<Bits>], n: usize) -> Bits {
    match c {
        Condition::And { children } => {
            let mut acc = ones(n);
            for ch in children {
                and_in(&mut acc, &combine(ch, leaves, bits, n));
            }
            acc
        }
        Condition::Or { children } => {
            let mut acc = vec![0u64; n.div_ceil(64)];
            for ch in children {
                let b = combine(ch, leaves, bits, n);
                acc.iter_mut().zip(&b).for_each(|(a, b)| *a |= b);
            }
            acc
        }
        Condition::Not { child } => {
            let mut acc = combine(child, leaves, bits, n);
            acc.iter_mut().zip(ones(n)).for_each(|(a, m)| *a = !*a & m);
            acc
        }
        leaf => leaves
            .iter()
            .position(|l| *l == leaf)
            .and_then(|i| bits[i].clone())
            .unwrap_or_else(|| vec![0u64; n.div_ceil(64)]),
    }
}

/// A leaf that reads no orders, for every customer row.
fn customer_leaf(
    leaf: &Condition,
    c: &CustomerColumns,
    env: &Env<'_>,
) -> Result<Bits, SegmentError> {
    let n = c.ids.len();
    let (now, tz) = (env.now, env.tz);
    Ok(match leaf {
        Condition::Line { state } => bits_where(n, |r| {
            line_test(LineStatus { linked: c.line_linked[r], ..Default::default() }, *state)
        }),
        Condition::Date { field: DateField::Birthday, test } => {
            bits_where(n, |r| birthday_hit(c.birth_date[r], test, now, tz))
        }
        other => {
            if let Condition::InList { name } = other
                && !env.ctx.lists.contains_key(name)
            {
                return Err(SegmentError::UnknownList(name.clone()));
            }
            let read_orders = Cell::new(false);
            let mut b = vec![0u64; n.div_ceil(64)];
            for r in 0..n {
                let v = ColumnRow { c, row: r, read_orders: &read_orders };
                if eval(other, &v, env, false, 0)?.result {
                    b[r / 64] |= 1 << (r % 64);
                }
            }
            // Guard: a leaf whose semantics read orders would have seen none here.
            if read_orders.get() {
                return Err(unsupported(other, "it reads each customer's order list"));
            }
            b
        }
    })
}

/// One customer row as the leaf semantics see it (no orders: order leaves are aggregated).
struct ColumnRow<'a> {
    c: &'a CustomerColumns,
    row: usize,
    read_orders: &'a Cell<bool>,
}

impl View for ColumnRow<'_> {
    fn id(&self) -> &CustomerId {
        &self.c.ids[self.row]
    }
    fn attribute(&self, _: &str) -> Option<&AttrValue> {
        None
    }
    fn birth_date(&self) -> Option<chrono::NaiveDate> {
        self.c.birth_date[self.row]
    }
    fn registered_at(&self) -> Option<i64> {
        None
    }
    fn line(&self) -> LineStatus {
        LineStatus { linked: self.c.line_linked[self.row], ..Default::default() }
    }
    fn subscriptions(&self) -> &[SubscriptionFact] {
        &[]
    }
    fn cart(&self) -> &[SavedItem] {
        &[]
    }
    fn favourites(&self) -> &[SavedItem] {
        &[]
    }
    fn messages(&self) -> &[MessageEvent] {
        &[]
    }
    fn orders(&self, _: &OrderFilter, _: &mut dyn FnMut(i64, i64)) {
        self.read_orders.set(true);
    }
}

/// Orders matching one filter inside `[lo, hi]`, and which aggregates its leaves read.
struct GroupSpec<'a> {
    filter: &'a OrderFilter,
    lo: i64,
    hi: i64,
    sum: bool,
    first: bool,
    last: bool,
}

/// A group resolved against the product names, with the offsets of its aggregates in a
/// customer's accumulator record (`None` when no leaf reads that aggregate).
struct Group {
    /// Whether an order of product `p` matches the filter.
    matches: Vec<bool>,
    lo: i64,
    hi: i64,
    count: usize,
    /// Two words: low 64 bits, then high 64 bits of an `i128`.
    sum: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
}

/// Per-candidate accumulators: one record of `stride` words per candidate, all groups side by
/// side, so an order touches one cache line (records are padded to 64 bytes when they fit).
struct Accs {
    /// First candidate slot held.
    from: usize,
    words: Vec<i64>,
    /// Index of the first record (aligns records to cache lines).
    base: usize,
    stride: usize,
}

impl Accs {
    fn new(groups: &[Group], stride: usize, from: usize, k: usize) -> Self {
        let mut tmpl = vec![0i64; stride];
        for g in groups {
            if let Some(f) = g.first {
                tmpl[f] = i64::MAX;
            }
            if let Some(l) = g.last {
                tmpl[l] = i64::MIN;
            }
        }
        // Start records on a 64-byte boundary: capacity is reserved first, so the buffer
        // never moves (the address is only inspected).
        let mut words: Vec<i64> = Vec::with_capacity(k * stride + 8);
        let base = (8 - (words.as_ptr() as usize / 8) % 8) % 8;
        words.resize(base, 0);
        for _ in 0..k {
            words.extend_from_slice(&tmpl);
        }
        Self { from, words, base, stride }
    }

    fn record(&self, slot: usize) -> &[i64] {
        let a = self.base + (slot - self.from) * self.stride;
        &self.words[a..a + self.stride]
    }
}

fn get_sum(r: &[i64], at: usize) -> i128 {
    (i128::from(r[at + 1]) << 64) | i128::from(r[at] as u64)
}

fn put_sum(r: &mut [i64], at: usize, v: i128) {
    // Splitting an i128 into its two halves: truncation is the point.
    #[allow(clippy::cast_possible_truncation)]
    {
        r[at] = v as u64 as i64;
        r[at + 1] = (v >> 64) as i64;
    }
}

/// Resolves the groups and lays out their aggregates in one record; returns the stride.
fn layout(specs: &[GroupSpec<'_>], names: &[String]) -> (Vec<Group>, usize) {
    let mut w = 0usize;
    let mut take = |on: bool, size: usize| {
        on.then(|| {
            w += size;
            w - size
        })
    };
    let groups = specs
        .iter()
        .map(|g| {
            // Column orders are one-off orders with one item: the filter's kind and item rules
            // decide per product, once.
            let kind_ok = g.filter.kind.is_none_or(|x| x == OrderKind::OneOff);
            let matches = names
                .iter()
                .map(|p| kind_ok && (!g.filter.has_items() || g.filter.matches_item(p, None, None)))
                .collect();
            let count = take(true, 1).unwrap_or(0);
            Group {
                matches,
                lo: g.lo,
                hi: g.hi,
                count,
                sum: take(g.sum, 2),
                first: take(g.first, 1),
                last: take(g.last, 1),
            }
        })
        .collect();
    let stride = if w <= 8 { 8 } else { w };
    (groups, stride)
}

/// One pass over the orders accumulating every group for the candidate customers; on two
/// threads for large inputs, each owning half of the candidates (so each thread's records
/// are half as many and stay closer in cache). Checks every row's customer and product index.
#[allow(clippy::too_many_arguments)]
fn scan(
    o: &OrderColumns,
    n: usize,
    cand: &Bits,
    rank: &[u32],
    groups: &[Group],
    stride: usize,
    k: usize,
    parallel_from: usize,
) -> Result<Vec<Accs>, SegmentError> {
    if o.customer.len() < parallel_from || cand.len() < 2 {
        let mut a = Accs::new(groups, stride, 0, k);
        let all = 0..o.product.len();
        return scan_range(o, n, cand, rank, groups, all, &mut a).map(|()| vec![a]);
    }
    let half = cand.len() / 2;
    let (mut c0, mut c1) = (cand.clone(), cand.clone());
    c0[half..].iter_mut().for_each(|w| *w = 0);
    c1[..half].iter_mut().for_each(|w| *w = 0);
    let split = rank[half] as usize;
    let mut x = Accs::new(groups, stride, 0, split);
    let mut y = Accs::new(groups, stride, split, k - split);
    let (c1, y_ref) = (&c1, &mut y);
    let (a, b) = std::thread::scope(|s| {
        // Each thread checks the product indexes of half of the rows.
        let mid = o.product.len() / 2;
        let h = s.spawn(move || scan_range(o, n, c1, rank, groups, mid..o.product.len(), y_ref));
        let a = scan_range(o, n, &c0, rank, groups, 0..mid, &mut x);
        // A panic in the scan is a bug; surface it rather than hide it.
        (a, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    a?;
    b?;
    Ok(vec![x, y])
}

/// Orders per block: the block's hit list stays in L1.
const BLOCK: usize = 4096;

fn scan_range(
    o: &OrderColumns,
    n: usize,
    cand: &Bits,
    rank: &[u32],
    groups: &[Group],
    check_products: std::ops::Range<usize>,
    acc: &mut Accs,
) -> Result<(), SegmentError> {
    let np = o.product_names.len();
    if o.product[check_products].iter().max().is_some_and(|&p| p as usize >= np) {
        return Err(bad_index());
    }
    let (cs, ps, ts, am) = (&o.customer, &o.product, &o.placed_at, &o.amount);
    let mut max_c = 0u32;
    let mut hits = [0u16; BLOCK];
    for (b0, cb) in cs.chunks(BLOCK).enumerate() {
        // Phase 1, branch-free: note the block's orders of candidates (and the index maximum).
        let mut k = 0usize;
        for (j, &c) in cb.iter().enumerate() {
            max_c = max_c.max(c);
            let w = cand.get(c as usize >> 6).copied().unwrap_or(0);
            hits[k] = j as u16;
            k += ((w >> (c & 63)) & 1) as usize;
        }
        if max_c as usize >= n {
            return Err(bad_index());
        }
        // Phase 2: the hits' loads are independent, so their cache misses overlap.
        for &j in &hits[..k] {
            let i = b0 * BLOCK + usize::from(j);
            let c = cs[i] as usize;
            let (w, bit) = (cand[c >> 6], c & 63);
            let slot = rank[c >> 6] as usize + (w & ((1u64 << bit) - 1)).count_ones() as usize;
            let (p, t, a) = (ps[i] as usize, ts[i], am[i]);
            let at = acc.base + (slot - acc.from) * acc.stride;
            let r = &mut acc.words[at..at + acc.stride];
            for g in groups {
                // A product out of range fails the other thread's check: skip it here.
                if g.matches.get(p).copied().unwrap_or(false) && t >= g.lo && t <= g.hi {
                    r[g.count] += 1;
                    if let Some(s) = g.sum {
                        put_sum(r, s, get_sum(r, s) + i128::from(a));
                    }
                    if let Some(f) = g.first {
                        r[f] = r[f].min(t);
                    }
                    if let Some(l) = g.last {
                        r[l] = r[l].max(t);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::{DateTime, NaiveDate};

    use super::*;
    use crate::segment::Engine;

    /// `n` customers (70 % linked to LINE, born in 1990 on the first of a random month) and
    /// `m` orders over the 400 days before `now` of `products` products, from a fixed seed.
    pub(in crate::segment::engine) fn random_columns(
        n: usize,
        m: usize,
        products: u64,
        now: i64,
    ) -> (CustomerColumns, OrderColumns) {
        let mut x = 0x5eed_u64;
        let mut next = |k: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % k
        };
        let mut c = CustomerColumns::default();
        for i in 0..n {
            c.ids.push(CustomerId::new(format!("c{i}")).unwrap());
            c.line_linked.push(next(10) < 7);
            c.birth_date.push(NaiveDate::from_ymd_opt(1990, 1 + next(12) as u32, 1));
        }
        let mut o = OrderColumns {
            product_names: (0..products).map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        for _ in 0..m {
            o.customer.push(next(n as u64) as u32);
            o.placed_at.push(now - next(400 * 86_400) as i64 + 86_400);
            o.amount.push(300 + next(20_000) as i64);
            o.product.push(next(products) as u32);
        }
        (c, o)
    }

    /// The two-thread split (each thread owning half of the candidates) gives the same
    /// members as one thread and as the engine.
    #[test]
    fn two_thread_split_matches_one_thread_and_the_engine() {
        let (n, m) = (3_000usize, 40_000usize);
        let now = 1_751_295_600i64;
        let (c, o) = random_columns(n, m, 50, now);
        let ctx = Context::new(DateTime::from_timestamp(now, 0).unwrap());
        let mut engine = Engine::new(ctx.clone());
        engine.load_columns(c.clone(), o.clone()).unwrap();
        for text in [
            "line linked and birthday month = 6 and orders sum >= 50000 and last_order age > 30d \
             and bought {product = \"1\"} and never bought {product = \"2\"}",
            "orders count >= 17 or not (last_order age < 20d and orders avg > 9000)",
            "line linked and (orders last 30d sum >= 10000 or bought {product = \"7\"})",
        ] {
            let def = SegmentDefinition::parse(text).unwrap();
            let one = evaluate_with(&def, &c, &o, &ctx, usize::MAX).unwrap();
            let two = evaluate_with(&def, &c, &o, &ctx, 0).unwrap();
            assert_eq!(one, two, "{text}");
            let members = Members::new(&c.ids, None, Cow::Borrowed(&one));
            assert_eq!(members, engine.evaluate_as_of(&def, ctx.now()).unwrap(), "{text}");
            assert!(!one.is_empty() && one.len() < n as u64, "{text}: {}", one.len());
        }
    }
}
