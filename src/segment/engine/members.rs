//! [`Members`]: the customers of a segment as the engine answers them, in customer IDs.
//!
//! Internally a segment is a Roaring bitmap of rows; `Members` keeps that bitmap (borrowed from
//! the engine or owned) next to the row → ID column, so handing out a result copies nothing and
//! only the caller's reads (`contains`, `iter`, `to_vec`) touch IDs.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;

use roaring::RoaringBitmap;

use super::store::RowIndex;
use crate::CustomerId;

/// The members of a segment, as [`CustomerId`]s.
///
/// Returned by [`Engine::members`](super::Engine::members) (a view of the maintained
/// membership), [`Engine::evaluate_from_state`](super::Engine::evaluate_from_state),
/// [`Engine::evaluate_as_of`](super::Engine::evaluate_as_of) and
/// [`evaluate_columns`](super::evaluate_columns) (which own their result). It borrows the
/// customer IDs of the engine (or of the [`CustomerColumns`](super::CustomerColumns)) it came
/// from; [`to_vec`](Self::to_vec) copies the IDs out.
///
/// Iteration is in row order: the order in which the engine first saw each customer
/// ([`Engine::upsert_customer`](super::Engine::upsert_customer) or the rows of
/// [`Engine::load_columns`](super::Engine::load_columns)), or the row order of the columns for
/// [`evaluate_columns`](super::evaluate_columns). Two `Members` are equal when they hold the
/// same IDs in the same order.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use enishi::CustomerId;
/// use enishi::segment::{Context, CustomerFacts, Engine, SegmentDefinition};
///
/// let mut engine = Engine::new(Context::new(Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()));
/// for (id, linked) in [("c-1", true), ("c-2", false), ("c-3", true)] {
///     let mut facts = CustomerFacts::new(CustomerId::new(id)?);
///     facts.line.linked = linked;
///     engine.upsert_customer(facts);
/// }
/// engine.register("linked", SegmentDefinition::parse("line linked")?)?;
///
/// let members = engine.members("linked")?;
/// assert_eq!(members.len(), 2);
/// assert!(members.contains(&CustomerId::new("c-3")?));
/// assert!(!members.contains(&CustomerId::new("c-2")?));
/// let ids: Vec<&str> = members.iter().map(CustomerId::as_str).collect();
/// assert_eq!(ids, ["c-1", "c-3"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Members<'a> {
    /// Row → customer ID.
    ids: &'a [CustomerId],
    /// Customer ID → row, when the source keeps one (the engine does, bulk columns do not).
    index: Option<&'a RowIndex>,
    /// The member rows; every row is below `ids.len()`.
    rows: Cow<'a, RoaringBitmap>,
}

impl<'a> Members<'a> {
    /// Members given by `rows` of `ids` (every row must be below `ids.len()`).
    pub(crate) fn new(
        ids: &'a [CustomerId],
        index: Option<&'a RowIndex>,
        rows: Cow<'a, RoaringBitmap>,
    ) -> Self {
        debug_assert!(rows.max().is_none_or(|r| (r as usize) < ids.len()));
        Self { ids, index, rows }
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.rows.len()
    }

    /// Whether the segment has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether a customer is a member. Constant time for the engine's results; for
    /// [`evaluate_columns`](super::evaluate_columns), which keeps no ID index, a scan of the
    /// members.
    #[must_use]
    pub fn contains(&self, id: &CustomerId) -> bool {
        match self.index {
            Some(index) => index.get(self.ids, id).is_some_and(|row| self.rows.contains(row)),
            None => self.iter().any(|m| m == id),
        }
    }

    /// The members' IDs in row order (see the type's docs).
    #[must_use]
    pub fn iter(&self) -> MembersIter<'_> {
        MembersIter { ids: self.ids, rows: self.rows.iter() }
    }

    /// The members' IDs in row order, copied out.
    #[must_use]
    pub fn to_vec(&self) -> Vec<CustomerId> {
        self.iter().cloned().collect()
    }
}

impl<'m> IntoIterator for &'m Members<'_> {
    type Item = &'m CustomerId;
    type IntoIter = MembersIter<'m>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for Members<'_> {
    fn eq(&self, other: &Self) -> bool {
        if std::ptr::eq(self.ids, other.ids) {
            return self.rows == other.rows;
        }
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Members<'_> {}

/// Lists the IDs, like a `Vec<CustomerId>`.
impl fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The IDs of [`Members`] in row order ([`Members::iter`]).
#[derive(Clone)]
pub struct MembersIter<'m> {
    ids: &'m [CustomerId],
    rows: roaring::bitmap::Iter<'m>,
}

impl<'m> Iterator for MembersIter<'m> {
    type Item = &'m CustomerId;

    fn next(&mut self) -> Option<Self::Item> {
        let ids = self.ids;
        self.rows.next().map(|row| &ids[row as usize])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl DoubleEndedIterator for MembersIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let ids = self.ids;
        self.rows.next_back().map(|row| &ids[row as usize])
    }
}

impl ExactSizeIterator for MembersIter<'_> {}

impl FusedIterator for MembersIter<'_> {}

impl fmt::Debug for MembersIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MembersIter").field("remaining", &self.rows.len()).finish()
    }
}
