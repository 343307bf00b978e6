//! The leaf cache: one Roaring bitmap and one time wheel per distinct leaf, shared by every
//! registered segment that uses the leaf.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::combine::Plan;
use super::{Engine, HOUR, LeafCache};
use crate::segment::ast::Condition;
use crate::segment::error::SegmentError;
use crate::segment::eval::{Env, eval};

impl Engine {
    /// The plan of an expanded condition, its leaves numbered in the leaf cache.
    pub(super) fn plan(&mut self, c: &Condition) -> Result<Plan, SegmentError> {
        Plan::build(c, &mut |leaf| self.leaf(leaf))
    }

    /// The cache index of a leaf, computing it for every customer the first time.
    pub(super) fn leaf(&mut self, c: &Condition) -> Result<usize, SegmentError> {
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
    pub(super) fn fill_leaf(&self, l: &mut LeafCache) {
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

    pub(super) fn rebuild_all_leaves(&mut self) {
        self.rebuild_leaves_where(|_| true);
    }

    pub(super) fn rebuild_leaves_where(&mut self, pred: impl Fn(&Condition) -> bool) {
        let mut leaves = std::mem::take(&mut self.leaves);
        for l in leaves.iter_mut().filter(|l| pred(&l.cond)) {
            self.fill_leaf(l);
        }
        self.leaves = leaves;
        self.recombine_all();
    }

    pub(super) fn recombine_all(&mut self) {
        let names: Vec<String> = self.segments.keys().cloned().collect();
        for n in names {
            let plan = self.segments[&n].plan.clone();
            let m = self.combine(&plan);
            if let Some(s) = self.segments.get_mut(&n) {
                s.members = m;
            }
        }
    }
}
