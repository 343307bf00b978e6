//! The raw path: leaf bitmaps computed from the columns at any instant, order leaves grouped
//! by (filter, window) and scanned together.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, Utc};
use roaring::RoaringBitmap;

use super::combine::{LeafSet, Plan, combine};
use super::dense::{dense, dense_bytes, dense_k};
use super::fused::{fused_kernel, fused_rows};
use super::store::SymFilter;
use super::{Engine, Members};
use super::{birthday_hit, expand};
use crate::segment::ast::{
    CmpOp, Condition, DateField, DateTest, LineState, Measure, SegmentDefinition, Window,
};
use crate::segment::error::SegmentError;
use crate::segment::eval::{Env, date_test, eval, line_test, measure_test, window_bounds};
use crate::segment::time::secs;

impl Engine {
    /// Evaluates any definition at any instant from the raw columns (no cached state used):
    /// order leaves are fused scans over the clustered order columns.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`], [`SegmentError::UnknownList`].
    pub fn evaluate_as_of(
        &self,
        def: &SegmentDefinition,
        now: DateTime<Utc>,
    ) -> Result<Members<'_>, SegmentError> {
        let root = expand(&self.ctx, def.condition(), 0)?;
        // Each distinct leaf is computed once, however often the tree repeats it.
        let mut conds: Vec<&Condition> = Vec::new();
        let plan = Plan::build(&root, &mut |leaf| {
            Ok::<_, SegmentError>(conds.iter().position(|c| *c == leaf).unwrap_or_else(|| {
                conds.push(leaf);
                conds.len() - 1
            }))
        })?;
        let now = secs(&now);
        let n = self.customers.len();
        // First every leaf that reads no order columns, over all customers.
        let is_order: Vec<bool> = conds.iter().map(|c| reads_order_columns(c)).collect();
        let others: Vec<&Condition> =
            conds.iter().zip(&is_order).filter(|(_, o)| !**o).map(|(c, _)| *c).collect();
        let mut other_bits = self.raw_leaves(&others, now, None)?.into_iter();
        let mut bits: Vec<RoaringBitmap> = is_order
            .iter()
            .map(|&o| if o { RoaringBitmap::new() } else { other_bits.next().unwrap_or_default() })
            .collect();
        // Then the order leaves: when the order-free children of a top-level `and` leave few
        // candidates, only the candidates' order ranges are read (orders are clustered by
        // customer); a leaf is then exact for the candidates only, which is all the `and`
        // reads of it.
        let within =
            self.candidates(&plan, &is_order, &bits).filter(|c| c.len() * 4 < u64::from(n));
        let orders: Vec<&Condition> =
            conds.iter().zip(&is_order).filter(|(_, o)| **o).map(|(c, _)| *c).collect();
        if !orders.is_empty() {
            let mut order_bits = self.raw_leaves(&orders, now, within.as_ref())?.into_iter();
            for (b, _) in bits.iter_mut().zip(&is_order).filter(|(_, o)| **o) {
                *b = order_bits.next().unwrap_or_default();
            }
        }
        let leaves: Vec<LeafSet<'_>> = bits.iter().map(LeafSet::rows).collect();
        let rows = combine(&plan, &leaves, &self.all, n, self.threads).into_rows(&self.all);
        Ok(self.members_of(Cow::Owned(rows)))
    }

    /// The rows every order-free child of a top-level `and` accepts, when the `and` has both
    /// order-free children and children that read order columns.
    fn candidates(
        &self,
        plan: &Plan,
        is_order: &[bool],
        bits: &[RoaringBitmap],
    ) -> Option<RoaringBitmap> {
        let Plan::And(kids) = plan else { return None };
        let reads = |p: &Plan| {
            let mut ids = Vec::new();
            p.leaf_ids(&mut ids);
            ids.into_iter().any(|i| is_order[i])
        };
        let pre: Vec<Plan> = kids.iter().filter(|k| !reads(k)).cloned().collect();
        if pre.is_empty() || pre.len() == kids.len() {
            return None;
        }
        let leaves: Vec<LeafSet<'_>> = bits.iter().map(LeafSet::rows).collect();
        let n = self.customers.len();
        Some(combine(&Plan::And(pre), &leaves, &self.all, n, self.threads).into_rows(&self.all))
    }

    /// Leaf bitmaps from the raw columns at `now`. Order leaves are grouped by (filter,
    /// window) and all groups are computed in one pass over the clustered orders.
    /// With `within`, order leaves are exact for those rows only (and empty elsewhere).
    pub(super) fn raw_leaves(
        &self,
        leaves: &[&Condition],
        now: i64,
        within: Option<&RoaringBitmap>,
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
            let bits = self.scan_groups(&groups, &order_leaves, now, within);
            for ((i, _, _), b) in order_leaves.iter().zip(bits) {
                out[*i] = Some(b);
            }
        }
        let _ = n;
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A non-order leaf from the customer columns (or per customer for side facts).
    pub(super) fn raw_other(
        &self,
        c: &Condition,
        now: i64,
        env: &Env<'_>,
    ) -> Result<RoaringBitmap, SegmentError> {
        let n = self.customers.len();
        let tz = self.tz;
        Ok(match c {
            Condition::Line { state: LineState::Linked } => {
                // The link flags alone: 1 byte a customer.
                let linked = &self.customers.line.linked;
                dense(n, self.threads, |r| linked[r])
            }
            Condition::Line { state } => {
                let (line, s) = (&self.customers.line, *state);
                dense(n, self.threads, |r| line_test(line.get(r), s))
            }
            Condition::Date { field: DateField::Birthday, test: DateTest::MonthIs { month } } => {
                // `birthday_hit`'s month arm, with the test chosen once rather than per row.
                let (birth, month) = (&self.customers.birth, *month);
                dense(n, self.threads, |r| {
                    birth[r].is_some_and(|d| chrono::Datelike::month(&d) == month)
                })
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
    pub(super) fn scan_groups(
        &self,
        groups: &[Group],
        leaves: &[(usize, usize, OrderTest<'_>)],
        now: i64,
        within: Option<&RoaringBitmap>,
    ) -> Vec<RoaringBitmap> {
        let o = &self.orders;
        let fast = o.dead.is_empty()
            && o.delta.is_empty()
            && groups.len() <= 8
            && groups.iter().all(|g| matches!(g.shape, Shape::All | Shape::Product(_)));
        if fast && let Some(rows) = within {
            return fused_rows(o, groups, leaves, now, self.tz, rows, self.threads);
        }
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
            for (j, b) in idx.into_iter().zip(self.group_bits(g, &tests, now, within)) {
                out[j] = Some(b);
            }
        }
        out.into_iter().map(Option::unwrap_or_default).collect()
    }

    pub(super) fn group_bits(
        &self,
        g: &Group,
        tests: &[&OrderTest<'_>],
        now: i64,
        within: Option<&RoaringBitmap>,
    ) -> Vec<RoaringBitmap> {
        let o = &self.orders;
        let tz = self.tz;
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
                Shape::All => {
                    // Base orders are in time order within a customer (see `load_columns`).
                    let w = o.ts.within(a..b, lo, hi);
                    if !w.is_empty() {
                        c = i64::try_from(w.len()).unwrap_or(i64::MAX);
                        sum = o.amount.sum(w.clone());
                        first = o.ts.get(w.start);
                        last = o.ts.get(w.end - 1);
                    }
                }
                Shape::Product(p) => {
                    let ps = &o.product[a..b];
                    if ps.contains(&p) {
                        for (k, &x) in ps.iter().enumerate() {
                            let t = o.ts.get(a + k);
                            if x == p && t >= lo && t <= hi {
                                c += 1;
                                sum += o.amount.get(a + k);
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
        let Some(rows) = within else {
            return dense_k(self.customers.len(), self.threads, tests.len(), |r, bits| {
                let a = row_agg(r);
                for (j, t) in tests.iter().enumerate() {
                    bits[j] = test(t, a);
                }
            });
        };
        // Only the given rows' order ranges, in row order (ascending addresses).
        let mut hits: Vec<Vec<u32>> = vec![Vec::new(); tests.len()];
        for r in rows {
            let a = row_agg(r as usize);
            for (t, h) in tests.iter().zip(hits.iter_mut()) {
                if test(t, a) {
                    h.push(r);
                }
            }
        }
        hits.into_iter().map(|h| RoaringBitmap::from_sorted_iter(h).unwrap_or_default()).collect()
    }
}

/// Whether a leaf is computed from the order columns (grouped by filter and window).
fn reads_order_columns(c: &Condition) -> bool {
    matches!(
        c,
        Condition::Orders { .. }
            | Condition::Date {
                field: DateField::FirstOrder { .. } | DateField::LastOrder { .. },
                ..
            }
    )
}

/// Orders matching one filter inside `[lo, hi]`.
pub(super) struct Group {
    pub(super) filter: SymFilter,
    pub(super) shape: Shape,
    pub(super) needs: Needs,
    pub(super) lo: i64,
    pub(super) hi: i64,
}

/// Which aggregates a group's leaves read.
#[derive(Clone, Copy, Default)]
pub(super) struct Needs {
    pub(super) sum: bool,
    pub(super) first: bool,
    pub(super) last: bool,
}

/// The shape of a group's filter, for specialised scan loops.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// Every order.
    All,
    /// Orders containing one product.
    Product(u32),
    /// Anything else.
    General,
}

/// What an order leaf tests on its group's aggregate.
pub(super) enum OrderTest<'a> {
    Measure(Measure, CmpOp, i64),
    /// (last order?, test).
    Date(bool, &'a DateTest),
}

impl OrderTest<'_> {
    /// The leaf's value on its group's `(count, sum, first, last)` (first/last are
    /// `i64::MAX` / `i64::MIN` when there is no matching order).
    #[inline]
    pub(super) fn hit(
        &self,
        c: i64,
        sum: i128,
        first: i64,
        last: i64,
        now: i64,
        tz: FixedOffset,
    ) -> bool {
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
