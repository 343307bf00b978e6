//! Registering named segments and checking definitions against the engine's data.

use super::Engine;
use super::{Registered, expand};
use crate::segment::ast::SegmentDefinition;
use crate::segment::error::SegmentError;
use crate::segment::schema::{AttrKind, Schema};

impl Engine {
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
    /// missing for every customer (see [`AttrTest`](crate::segment::AttrTest)).
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
        names(set(&o.product, |i| i.0)).into_iter().for_each(|p| s.add_product(p));
        names(set(&[], |i| i.1)).into_iter().for_each(|x| s.add_sku(x));
        names(set(&[], |i| i.2)).into_iter().for_each(|c| s.add_category(c));
        s
    }

    pub(super) fn registered(&self, name: &str) -> Result<&Registered, SegmentError> {
        self.segments.get(name).ok_or_else(|| SegmentError::UnknownSegment(name.to_owned()))
    }
}
