//! The one combiner: a segment's `and` / `or` / `not` tree over numbered leaves, evaluated on
//! whole bitmaps ([`combine`]) or for one row ([`Plan::holds`]).
//!
//! Every path (cached leaves, raw scans at any instant, maintained state) hands the combiner
//! its leaves as [`LeafSet`]s, so they differ only in how leaves are computed, never in how
//! they are combined.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::dense::dense;
use crate::segment::ast::Condition;

/// A condition tree whose leaves are numbers (into the engine's leaf cache, or into a list
/// of the leaves of one evaluation).
#[derive(Debug, Clone)]
pub(super) enum Plan {
    And(Vec<Self>),
    Or(Vec<Self>),
    Not(Box<Self>),
    Leaf(usize),
}

impl Plan {
    /// The plan of an expanded condition (no `segment` references left), each leaf numbered
    /// by `number`.
    pub(super) fn build<'c, E>(
        c: &'c Condition,
        number: &mut impl FnMut(&'c Condition) -> Result<usize, E>,
    ) -> Result<Self, E> {
        let all = |cs: &'c [Condition], number: &mut _| -> Result<Vec<Self>, E> {
            cs.iter().map(|c| Self::build(c, number)).collect()
        };
        Ok(match c {
            Condition::And { children } => Self::And(all(children, number)?),
            Condition::Or { children } => Self::Or(all(children, number)?),
            Condition::Not { child } => Self::Not(Box::new(Self::build(child, number)?)),
            leaf => Self::Leaf(number(leaf)?),
        })
    }

    /// The plan's value for one row, given each leaf's value for that row.
    pub(super) fn holds(&self, leaf: &impl Fn(usize) -> bool) -> bool {
        match self {
            Self::Leaf(i) => leaf(*i),
            Self::Not(c) => !c.holds(leaf),
            Self::And(cs) => cs.iter().all(|c| c.holds(leaf)),
            Self::Or(cs) => cs.iter().any(|c| c.holds(leaf)),
        }
    }

    /// The leaf numbers, depth first.
    pub(super) fn leaf_ids(&self, out: &mut Vec<usize>) {
        match self {
            Self::Leaf(i) => out.push(*i),
            Self::Not(c) => c.leaf_ids(out),
            Self::And(cs) | Self::Or(cs) => cs.iter().for_each(|c| c.leaf_ids(out)),
        }
    }
}

/// A per-row test, shared by the threads of a dense fill, with a filter over many rows made
/// from the same closure: one call filters all candidates in a loop the test is inlined into,
/// instead of a call through a pointer per row.
pub(super) struct RowTest<'a> {
    one: Box<dyn Fn(usize) -> bool + Sync + 'a>,
    many: Box<RowsFilter<'a>>,
}

/// Keeps the rows of a list a test holds for.
type RowsFilter<'a> = dyn Fn(&mut Vec<u32>) + Sync + 'a;

impl<'a> RowTest<'a> {
    /// The test `test`.
    pub(super) fn new(test: impl Fn(usize) -> bool + Sync + Clone + 'a) -> Self {
        let inlined = test.clone();
        Self { one: Box::new(test), many: Box::new(move |rows| keep(rows, &inlined)) }
    }

    /// Whether the test holds for `row`.
    pub(super) fn holds(&self, row: usize) -> bool {
        (self.one)(row)
    }

    /// Keeps the rows the test holds for, in order.
    fn retain(&self, rows: &mut Vec<u32>) {
        (self.many)(rows);
    }
}

/// Keeps the `rows` `test` holds for. Without a branch on the outcome (`retain` has one): a
/// mispredicted branch would discard the loads already under way for the rows after it.
fn keep(rows: &mut Vec<u32>, test: &impl Fn(usize) -> bool) {
    let mut kept = 0;
    for i in 0..rows.len() {
        let r = rows[i];
        rows[kept] = r;
        kept += usize::from(test(r as usize));
    }
    rows.truncate(kept);
}

/// A leaf as the combiner receives it.
pub(super) enum LeafSet<'a> {
    /// The leaf's rows (or their complement).
    Bits(Lit<'a>),
    /// A per-row test over columns: under an `and` it only tests the rows the other
    /// children leave (candidate-driven) instead of every row.
    Test(RowTest<'a>),
}

impl<'a> LeafSet<'a> {
    /// A leaf given by a borrowed bitmap.
    pub(super) fn rows(bits: &'a RoaringBitmap) -> Self {
        Self::Bits(Lit::Pos(Cow::Borrowed(bits)))
    }
}

/// A set of rows, or its complement (kept implicit until needed).
pub(super) enum Lit<'a> {
    Pos(Cow<'a, RoaringBitmap>),
    Neg(Cow<'a, RoaringBitmap>),
}

impl<'a> Lit<'a> {
    fn negate(self) -> Self {
        match self {
            Self::Pos(b) => Self::Neg(b),
            Self::Neg(b) => Self::Pos(b),
        }
    }

    fn borrowed(&self) -> Lit<'_> {
        match self {
            Self::Pos(b) => Lit::Pos(Cow::Borrowed(b.as_ref())),
            Self::Neg(b) => Lit::Neg(Cow::Borrowed(b.as_ref())),
        }
    }

    /// The rows, materialising a complement against `all`.
    pub(super) fn into_rows(self, all: &RoaringBitmap) -> RoaringBitmap {
        match self {
            Self::Pos(b) => b.into_owned(),
            Self::Neg(b) => all - b.as_ref(),
        }
    }

    /// `and` of literals: intersects the positives smallest first and subtracts the
    /// negatives (`all` is the universe, for an `and` of negatives only).
    fn and(all: &RoaringBitmap, kids: Vec<Self>) -> RoaringBitmap {
        let (mut pos, neg) = split(kids);
        pos.sort_by_key(|b| b.len());
        if let [smallest, .., largest] = pos.as_slice()
            && smallest.len().saturating_mul(16) >= all.len()
        {
            // Every set is dense (stored as 64 Ki-bit words): word-wise operations cost the
            // same at any density, while each result that turns sparse is converted to a list
            // of its rows. Largest first, smallest last: one conversion, of the fewest rows.
            let mut acc = largest.as_ref().clone();
            for b in pos[1..pos.len() - 1].iter().rev() {
                acc &= b.as_ref();
            }
            for b in &neg {
                acc -= b.as_ref();
            }
            acc &= smallest.as_ref();
            return acc;
        }
        let mut acc = pos.first().map_or_else(|| all.clone(), |b| b.as_ref().clone());
        for b in pos.iter().skip(1) {
            acc &= b.as_ref();
        }
        for b in &neg {
            acc -= b.as_ref();
        }
        acc
    }

    /// `or` of literals without materialising complements: `a ∨ ¬b ∨ ¬c = ¬((b ∧ c) − a)`.
    fn or(kids: Vec<Self>) -> Self {
        let (pos, mut neg) = split(kids);
        let mut union = RoaringBitmap::new();
        for b in &pos {
            union |= b.as_ref();
        }
        if neg.is_empty() {
            return Self::Pos(Cow::Owned(union));
        }
        neg.sort_by_key(|b| b.len());
        let mut inner = neg[0].as_ref().clone();
        for b in neg.iter().skip(1) {
            inner &= b.as_ref();
        }
        inner -= &union;
        Self::Neg(Cow::Owned(inner))
    }
}

type Sets<'a> = Vec<Cow<'a, RoaringBitmap>>;

fn split(kids: Vec<Lit<'_>>) -> (Sets<'_>, Sets<'_>) {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for k in kids {
        match k {
            Lit::Pos(b) => pos.push(b),
            Lit::Neg(b) => neg.push(b),
        }
    }
    (pos, neg)
}

/// Combines the leaves of `plan` over the rows `all` (= `0..rows`) without copying leaf
/// bitmaps or materialising complements; per-row tests run on up to `threads` threads.
pub(super) fn combine<'b>(
    plan: &Plan,
    leaves: &'b [LeafSet<'_>],
    all: &'b RoaringBitmap,
    rows: u32,
    threads: usize,
) -> Lit<'b> {
    match plan {
        Plan::Leaf(i) => match &leaves[*i] {
            LeafSet::Bits(l) => l.borrowed(),
            LeafSet::Test(t) => Lit::Pos(Cow::Owned(dense(rows, threads, |r| t.holds(r)))),
        },
        Plan::Not(c) => combine(c, leaves, all, rows, threads).negate(),
        Plan::Or(cs) => {
            Lit::or(cs.iter().map(|c| combine(c, leaves, all, rows, threads)).collect())
        }
        Plan::And(cs) => {
            let mut tests = Vec::new();
            let mut kids = Vec::with_capacity(cs.len());
            for c in cs {
                if let Plan::Leaf(i) = c
                    && let LeafSet::Test(t) = &leaves[*i]
                {
                    tests.push(t);
                } else {
                    kids.push(combine(c, leaves, all, rows, threads));
                }
            }
            let Some(&first) = tests.first() else {
                return Lit::Pos(Cow::Owned(Lit::and(all, kids)));
            };
            if !kids.iter().any(|k| matches!(k, Lit::Pos(_))) {
                // No bitmap narrows the candidates: the first test scans every row.
                kids.push(Lit::Pos(Cow::Owned(dense(rows, threads, |r| first.holds(r)))));
            }
            let candidates = Lit::and(all, kids);
            Lit::Pos(Cow::Owned(filter_rows(&candidates, &tests, threads)))
        }
    }
}

/// Candidates at which [`filter_rows`] splits its tests over threads. A spawned thread costs
/// tens of microseconds and starts with cold caches: measured on 2 cores, a split of some
/// 40,000 candidates (a state query) was slower than one thread.
const PARALLEL_TESTS: usize = 65_536;

/// The rows of `bitmap`, in order, taken out in bulk: one row at a time through roaring's
/// iterator cost a state query as much as its row tests.
pub(super) fn rows_of(bitmap: &RoaringBitmap) -> Vec<u32> {
    let mut rows = vec![0; usize::try_from(bitmap.len()).unwrap_or(usize::MAX)];
    let filled = bitmap.iter().next_many(&mut rows).len();
    rows.truncate(filled);
    rows
}

/// The candidates every test holds for. Each test runs over the survivors of the tests before
/// it, in a tight loop whose iterations are independent, so the cache misses of far-apart rows
/// overlap; the test that keeps the fewest rows of a small sample runs first. Large sets are
/// split over `threads` threads, each taking a contiguous share of the rows.
fn filter_rows(
    candidates: &RoaringBitmap,
    tests: &[&RowTest<'_>],
    threads: usize,
) -> RoaringBitmap {
    let mut rows = rows_of(candidates);
    let step = rows.len() / 64 + 1;
    let mut order: Vec<(usize, &RowTest<'_>)> = tests
        .iter()
        .map(|t| (rows.iter().step_by(step).filter(|&&r| t.holds(r as usize)).count(), *t))
        .collect();
    order.sort_by_key(|(kept, _)| *kept);
    let run = |rows: &mut Vec<u32>| {
        for (_, t) in &order {
            t.retain(rows);
        }
    };
    if threads <= 1 || rows.len() < PARALLEL_TESTS {
        run(&mut rows);
        return RoaringBitmap::from_sorted_iter(rows).unwrap_or_default();
    }
    let chunk = rows.len().div_ceil(threads);
    let mut parts: Vec<Vec<u32>> = rows.chunks(chunk).map(<[u32]>::to_vec).collect();
    std::thread::scope(|s| {
        let mut rest = parts.iter_mut();
        let own = rest.next();
        let run = &run;
        for p in rest {
            s.spawn(move || run(p));
        }
        // This thread takes the first share instead of waiting idle.
        if let Some(p) = own {
            run(p);
        }
    });
    RoaringBitmap::from_sorted_iter(parts.into_iter().flatten()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_of_literals_is_the_intersection_less_the_negatives_dense_or_sparse() {
        let all: RoaringBitmap = (0..200_000).collect();
        let set = |step: u32, offset: u32| -> RoaringBitmap {
            (0..200_000).filter(|r| r % step == offset).collect()
        };
        // Dense sets (every one at least 1/16 of the rows), then with a sparse one among them.
        for sparse in [None, Some(997)] {
            let mut pos = vec![set(2, 0), set(3, 1), set(5, 2)];
            if let Some(step) = sparse {
                pos.push(set(step, 4));
            }
            let neg = set(7, 3);
            let mut want = all.clone();
            for p in &pos {
                want &= p;
            }
            want -= &neg;
            let kids = pos
                .iter()
                .map(|p| Lit::Pos(Cow::Borrowed(p)))
                .chain([Lit::Neg(Cow::Borrowed(&neg))])
                .collect();
            assert_eq!(Lit::and(&all, kids), want, "sparse: {sparse:?}");
        }
    }
}
