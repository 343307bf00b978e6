//! Keeping leaf bitmaps and memberships current as data changes and time passes: only the
//! touched customers, or those whose leaves' time wheels are due, are re-evaluated.

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use super::{Engine, HOUR};
use crate::segment::error::SegmentError;
use crate::segment::eval::{Env, eval};
use crate::segment::time::secs;

impl Engine {
    /// Re-evaluates every leaf for some customers, then their memberships.
    pub(super) fn touch(&mut self, rows: &[u32]) {
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
                if s.plan.holds(&|i| self.leaves[i].bits.contains(row)) {
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
                if s.plan.holds(&|i| self.leaves[i].bits.contains(row)) {
                    s.members.insert(row);
                } else {
                    s.members.remove(row);
                }
            }
        }
        Ok(())
    }
}
