//! The state path: a registered segment evaluated from maintained aggregates and "ever
//! bought" indexes instead of scanning orders.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::combine::{LeafSet, Lit, RowTest, combine};
use super::store::SymFilter;
use super::{Engine, Members};
use crate::segment::ast::{CmpOp, Condition, DateField, DateTest, Measure, Window};
use crate::segment::error::SegmentError;
use crate::segment::eval::{date_test, measure_test};

impl Engine {
    /// Evaluates a registered segment at the engine's `now` from maintained state: order
    /// aggregates and "ever bought" indexes for order leaves, maintained bitmaps otherwise.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn evaluate_from_state(&self, name: &str) -> Result<Members<'_>, SegmentError> {
        let s = self.registered(name)?;
        let mut in_plan = vec![false; self.leaves.len()];
        let mut ids = Vec::new();
        s.plan.leaf_ids(&mut ids);
        ids.into_iter().for_each(|i| in_plan[i] = true);
        // The plan's leaves from state where a kernel exists; every other leaf as cached.
        let leaves: Vec<LeafSet<'_>> = self
            .leaves
            .iter()
            .zip(in_plan)
            .map(|(l, used)| match used.then(|| self.state_pred(&l.cond)).flatten() {
                Some(test) => LeafSet::Test(test),
                None => match used.then(|| self.state_kernel(&l.cond)).flatten() {
                    Some(lit) => LeafSet::Bits(lit),
                    None => LeafSet::rows(&l.bits),
                },
            })
            .collect();
        let rows = combine(&s.plan, &leaves, &self.all, self.customers.len(), self.threads)
            .into_rows(&self.all);
        Ok(self.members_of(Cow::Owned(rows)))
    }

    /// A per-customer predicate over maintained aggregate columns, for order leaves that
    /// have one (all-time unfiltered counts and sums; first / last order tests).
    pub(super) fn state_pred<'a>(&'a self, c: &'a Condition) -> Option<RowTest<'a>> {
        let now = self.now;
        let tz = self.tz;
        match c {
            Condition::Orders { filter, window: Window::AllTime, measure, op, value }
                if filter.is_empty() =>
            {
                let (cnt, sum) = (&self.agg.count, &self.agg.sum);
                let (m, op, v) = (*measure, *op, *value);
                Some(match (m, op) {
                    (Measure::Sum, CmpOp::Ge) => RowTest::new(move |r| sum[r] >= v),
                    (Measure::Sum, CmpOp::Gt) => RowTest::new(move |r| sum[r] > v),
                    (Measure::Count, CmpOp::Ge) => RowTest::new(move |r| i64::from(cnt[r]) >= v),
                    _ => RowTest::new(move |r| {
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
                        RowTest::new(move |r| ok(col[r]) && col[r] < b)
                    }
                    DateTest::Age { op: CmpOp::Ge, value } => {
                        let b = now - value.as_secs();
                        RowTest::new(move |r| ok(col[r]) && col[r] <= b)
                    }
                    t => RowTest::new(move |r| ok(col[r]) && date_test(Some(col[r]), t, now, tz).0),
                })
            }
            _ => None,
        }
    }

    /// A leaf's bitmap computed from maintained aggregates, if it has such a kernel.
    pub(super) fn state_kernel(&self, c: &Condition) -> Option<Lit<'_>> {
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
                let u = match ps {
                    // One product (the usual case): its index, borrowed, not copied.
                    [p] => match self.agg.product.get(p) {
                        Some(b) => Cow::Borrowed(b),
                        None => Cow::Owned(RoaringBitmap::new()),
                    },
                    ps => {
                        let mut u = RoaringBitmap::new();
                        for p in ps {
                            if let Some(b) = self.agg.product.get(p) {
                                u |= b;
                            }
                        }
                        Cow::Owned(u)
                    }
                };
                Some(if any { Lit::Pos(u) } else { Lit::Neg(u) })
            }
            _ => None,
        }
    }
}
