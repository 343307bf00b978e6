//! What the published conformance suites share (feature `testkit`): the suites themselves are
//! `commerce::conformance`, `link::conformance`, `line::webhook::conformance` and
//! `campaign::conformance`.

use std::ops::Index;
use std::sync::Arc;

/// The handles a check works with: one or more handles onto one store, used round-robin, so
/// `handles[1]` is the second handle, or the first again when there is only one. Several
/// handles (several connections, pools or processes' worth) make the checks' races cross
/// them, as between processes in production.
#[derive(Debug)]
pub(crate) struct Handles<'a, T: ?Sized>(&'a [Arc<T>]);

impl<'a, T: ?Sized> Handles<'a, T> {
    /// The handles of one check.
    ///
    /// # Panics
    /// When there are none: a check needs at least one handle.
    #[track_caller]
    pub(crate) fn new(handles: &'a [Arc<T>]) -> Self {
        assert!(!handles.is_empty(), "the conformance check was given no store handle");
        Self(handles)
    }

    /// How many handles there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Every handle, once.
    pub(crate) fn iter(&self) -> std::slice::Iter<'a, Arc<T>> {
        self.0.iter()
    }
}

impl<T: ?Sized> Index<usize> for Handles<'_, T> {
    type Output = Arc<T>;

    fn index(&self, i: usize) -> &Arc<T> {
        &self.0[i % self.0.len()]
    }
}

impl<'a, T: ?Sized> IntoIterator for &Handles<'a, T> {
    type Item = &'a Arc<T>;
    type IntoIter = std::slice::Iter<'a, Arc<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
