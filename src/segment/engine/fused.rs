//! The fused kernel of the raw path's fastest case.

use chrono::FixedOffset;
use roaring::RoaringBitmap;

use super::scan::{Group, OrderTest, Shape};
use super::store::Orders;

/// Aggregates per group: (count, sum, first, last).
type Aggs = [(i64, i64, i64, i64); 8];

/// Product groups that only count over all time: they share one pass over the product column.
fn count_only(groups: &[Group], max_ts: i64) -> Vec<(usize, u32)> {
    groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| match g.shape {
            Shape::Product(p)
                if g.lo == i64::MIN
                    && g.hi >= max_ts
                    && !(g.needs.sum || g.needs.first || g.needs.last) =>
            {
                Some((i, p))
            }
            _ => None,
        })
        .collect()
}

/// The fused scan over clustered single-item orders: one pass over the customers computes
/// every group (all orders / one product) and tests every order leaf, writing whole bytes of
/// the outputs for the customers `b0 * 8 ..`.
#[allow(clippy::too_many_arguments)]
pub(super) fn fused_kernel(
    o: &Orders,
    groups: &[Group],
    leaves: &[(usize, usize, OrderTest<'_>)],
    now: i64,
    tz: FixedOffset,
    max_ts: i64,
    b0: usize,
    n: usize,
    outs: &mut [&mut [u8]],
) {
    let len = outs.first().map_or(0, |x| x.len());
    let mut aggs: Aggs = [(0, 0, i64::MAX, i64::MIN); 8];
    let count_only = count_only(groups, max_ts);
    for byte in 0..len {
        let base = (b0 + byte) * 8;
        for r in base..(base + 8).min(n) {
            row_aggs(o, groups, &count_only, max_ts, r, &mut aggs);
            for ((_, g, test), out) in leaves.iter().zip(outs.iter_mut()) {
                let (c, sum, first, last) = aggs[*g];
                let hit = test.hit(c, i128::from(sum), first, last, now, tz);
                out[byte] |= u8::from(hit) << (r - base);
            }
        }
    }
}

/// Candidates below this are read on one thread: a spawned thread costs tens of
/// microseconds, about what a thousand candidates' order ranges take.
const PARALLEL_ROWS: usize = 16_384;

/// Candidates whose order ranges are touched together before they are aggregated, so that
/// their cache misses overlap instead of following one another.
const BATCH: usize = 16;

/// The same fused pass over the given rows only (their order ranges, in row order): each
/// leaf's rows among them. Large candidate sets are split over `threads` threads, each
/// taking a contiguous share of the rows (so the results concatenate in row order).
#[allow(clippy::too_many_arguments)]
pub(super) fn fused_rows(
    o: &Orders,
    groups: &[Group],
    leaves: &[(usize, usize, OrderTest<'_>)],
    now: i64,
    tz: FixedOffset,
    rows: &RoaringBitmap,
    threads: usize,
) -> Vec<RoaringBitmap> {
    let rows = super::combine::rows_of(rows);
    let parts = if threads > 1 && rows.len() >= PARALLEL_ROWS { threads } else { 1 };
    let chunk = rows.len().div_ceil(parts).max(1);
    let part = |rows: &[u32]| fused_part(o, groups, leaves, now, tz, rows);
    let hits: Vec<Vec<Vec<u32>>> = if parts == 1 {
        vec![part(&rows)]
    } else {
        std::thread::scope(|s| {
            let mut chunks = rows.chunks(chunk);
            let own = chunks.next().unwrap_or_default();
            let spawned: Vec<_> = chunks.map(|c| s.spawn(move || part(c))).collect();
            // This thread takes the first share instead of waiting idle.
            let mut hits = vec![part(own)];
            for h in spawned {
                hits.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
            hits
        })
    };
    (0..leaves.len())
        .map(|j| {
            let rows = hits.iter().flat_map(|h| h[j].iter().copied());
            RoaringBitmap::from_sorted_iter(rows).unwrap_or_default()
        })
        .collect()
}

/// [`fused_rows`] over one share of the rows (ascending): per leaf, the rows it holds for.
fn fused_part(
    o: &Orders,
    groups: &[Group],
    leaves: &[(usize, usize, OrderTest<'_>)],
    now: i64,
    tz: FixedOffset,
    rows: &[u32],
) -> Vec<Vec<u32>> {
    let mut aggs: Aggs = [(0, 0, i64::MAX, i64::MIN); 8];
    let count_only = count_only(groups, o.max_ts);
    let mut hits: Vec<Vec<u32>> = vec![Vec::new(); leaves.len()];
    for batch in rows.chunks(BATCH) {
        touch(o, batch);
        for &r in batch {
            row_aggs(o, groups, &count_only, o.max_ts, r as usize, &mut aggs);
            for ((_, g, test), h) in leaves.iter().zip(hits.iter_mut()) {
                let (c, sum, first, last) = aggs[*g];
                if test.hit(c, i128::from(sum), first, last, now, tz) {
                    h.push(r);
                }
            }
        }
    }
    hits
}

/// Reads the first and last order of each row's range in every column, in a loop of
/// independent loads: the candidates' ranges are far apart, so each is a cache miss, and
/// issued together they overlap (the aggregation loop after them, one customer at a time,
/// would wait for each in turn). Plain loads, not prefetch instructions: the crate has no
/// `unsafe`.
#[inline]
fn touch(o: &Orders, rows: &[u32]) {
    let (start, ts, amount, product) = (&o.start, &o.ts, &o.amount, &o.product);
    let mut acc = 0i64;
    for &r in rows {
        let (a, b) = (start[r as usize] as usize, start[r as usize + 1] as usize);
        if a < b {
            acc ^= ts.get(a) ^ ts.get(b - 1) ^ amount.get(a) ^ amount.get(b - 1);
            acc ^= i64::from(product[a] ^ product[b - 1]);
        }
    }
    std::hint::black_box(acc);
}

/// Every group's aggregates for customer row `r`.
#[inline]
// `i` indexes three columns, one of them an `IntCol`.
#[allow(clippy::needless_range_loop)]
fn row_aggs(
    o: &Orders,
    groups: &[Group],
    count_only: &[(usize, u32)],
    max_ts: i64,
    r: usize,
    aggs: &mut Aggs,
) {
    let (start, ts, amount, product) = (&o.start, &o.ts, &o.amount, &o.product);
    let (a, b) = (start[r] as usize, start[r + 1] as usize);
    if !count_only.is_empty() {
        let mut counts = [0i64; 8];
        let ps = &product[a..b];
        // Fixed-arity loops vectorise; the general one does not.
        match *count_only {
            [(_, p0)] => counts[0] = ps.iter().map(|&x| i64::from(x == p0)).sum(),
            [(_, p0), (_, p1)] => {
                let (mut c0, mut c1) = (0u32, 0u32);
                for &x in ps {
                    c0 += u32::from(x == p0);
                    c1 += u32::from(x == p1);
                }
                counts[0] = i64::from(c0);
                counts[1] = i64::from(c1);
            }
            _ => {
                for &x in ps {
                    for (k, &(_, p)) in count_only.iter().enumerate() {
                        counts[k] += i64::from(x == p);
                    }
                }
            }
        }
        for (k, &(i, _)) in count_only.iter().enumerate() {
            aggs[i] = (counts[k], 0, i64::MAX, i64::MIN);
        }
    }
    for (gi, (g, agg)) in groups.iter().zip(aggs.iter_mut()).enumerate() {
        if count_only.iter().any(|&(i, _)| i == gi) {
            continue;
        }
        let (lo, hi) = (g.lo, g.hi);
        let all_in = lo == i64::MIN && hi >= max_ts;
        *agg = (0, 0, i64::MAX, i64::MIN);
        match g.shape {
            Shape::All => {
                // Orders are in time order within a customer (see `load_columns`).
                let w = if all_in { a..b } else { ts.within(a..b, lo, hi) };
                if !w.is_empty() {
                    *agg = (
                        i64::try_from(w.len()).unwrap_or(i64::MAX),
                        if g.needs.sum { amount.sum(w.clone()) } else { 0 },
                        ts.get(w.start),
                        ts.get(w.end - 1),
                    );
                }
            }
            Shape::Product(p) if !product[a..b].contains(&p) => {}
            Shape::Product(p) if all_in && !(g.needs.sum || g.needs.first || g.needs.last) => {
                // Counting only: the instants and values are never read.
                agg.0 = i64::try_from(product[a..b].iter().filter(|&&x| x == p).count())
                    .unwrap_or(i64::MAX);
            }
            _ => {
                let want = if let Shape::Product(p) = g.shape { Some(p) } else { None };
                for i in a..b {
                    let t = ts.get(i);
                    if t >= lo && t <= hi && want.is_none_or(|p| product[i] == p) {
                        let v = amount.get(i);
                        *agg = (agg.0 + 1, agg.1 + v, agg.2.min(t), agg.3.max(t));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use crate::segment::engine::cold::tests::random_columns;
    use crate::segment::{Context, Engine, SegmentDefinition, evaluate_columns};

    /// Enough candidates to split the raw candidate pass and the state path's row tests over
    /// threads: one thread, two and three give the same members as the cold path.
    #[test]
    fn thread_splits_match_one_thread_and_the_cold_path() {
        let (n, m) = (100_000usize, 300_000usize);
        let now = 1_751_295_600i64;
        let (c, o) = random_columns(n, m, 20, now);
        let ctx = Context::new(DateTime::from_timestamp(now, 0).unwrap());
        // Linked and born in the first quarter: about 17,500 candidates, under a quarter of
        // the customers, so the raw path reads only their order ranges; without the product
        // leaves, the state path tests as many rows against its order aggregates.
        let quarter = "line linked and (birthday month = 1 or birthday month = 2 or \
                       birthday month = 3) and orders sum >= 10000 and last_order age > 30d";
        let products = format!(
            "{quarter} and bought {{product = \"1\"}} and never bought {{product = \"2\"}}"
        );
        let cases: Vec<_> = [quarter, products.as_str()]
            .into_iter()
            .map(|text| {
                let def = SegmentDefinition::parse(text).unwrap();
                let want = evaluate_columns(&def, &c, &o, &ctx).unwrap().to_vec();
                assert!(want.len() > 500, "{text}: {}", want.len());
                (text, def, want)
            })
            .collect();
        for threads in [1, 2, 3] {
            let mut engine = Engine::new(ctx.clone()).with_threads(threads);
            engine.load_columns(c.clone(), o.clone()).unwrap();
            for (text, def, want) in &cases {
                let raw = engine.evaluate_as_of(def, ctx.now()).unwrap().to_vec();
                assert_eq!(&raw, want, "raw, {threads} threads: {text}");
                engine.register(*text, def.clone()).unwrap();
                let state = engine.evaluate_from_state(text).unwrap().to_vec();
                assert_eq!(&state, want, "state, {threads} threads: {text}");
            }
        }
    }
}
