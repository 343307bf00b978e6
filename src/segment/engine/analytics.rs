//! What a preview UI asks of registered segments: members, counts, funnels, overlaps,
//! entered/left and the next change by time alone.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::combine::{LeafSet, Plan, combine};
use super::{Changes, Engine, Funnel, Members, Overlap};
use crate::CustomerId;
use crate::segment::ast::Condition;
use crate::segment::error::SegmentError;
use crate::segment::eval::{NextChange, next_change_view};

impl Engine {
    /// Current members of a registered segment (a view of the maintained membership: nothing
    /// is copied).
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn members(&self, name: &str) -> Result<Members<'_>, SegmentError> {
        Ok(self.members_of(Cow::Borrowed(&self.registered(name)?.members)))
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

    /// The members of a plan over the cached leaf bitmaps.
    pub(super) fn combine(&self, plan: &Plan) -> RoaringBitmap {
        let leaves: Vec<LeafSet<'_>> = self.leaves.iter().map(|l| LeafSet::rows(&l.bits)).collect();
        combine(plan, &leaves, &self.all, self.customers.len(), self.threads).into_rows(&self.all)
    }

    /// Per-leaf and per-step counts of a registered segment.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`].
    pub fn funnel(&self, name: &str) -> Result<Funnel, SegmentError> {
        let s = self.registered(name)?;
        let mut leaf_ids = Vec::new();
        s.plan.leaf_ids(&mut leaf_ids);
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
        let ids = |rows| self.members_of(Cow::Owned(rows)).to_vec();
        Ok(Changes { entered: ids(entered), left: ids(left) })
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
}
