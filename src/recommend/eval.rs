//! Offline evaluation on a time split: learn before day T, recommend as of T, and score the
//! top-k against what each customer bought in the test window after T, next to the
//! popularity baseline with the same exclusions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::data::{Catalogue, PurchaseLog};
use super::model::{CoPurchaseModel, ModelParams, Recommendations};

/// What customers bought in the test window: distinct catalogue indices per customer.
#[derive(Debug, Clone)]
pub struct TestSet {
    off: Vec<usize>,
    items: Vec<u32>,
}

impl TestSet {
    /// Distinct products each customer bought in `[from, until)`.
    #[must_use]
    pub fn of(log: &PurchaseLog, from: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        let (lo, hi) = (from.timestamp(), until.timestamp());
        let n = log.customers();
        let mut off = vec![0usize; n + 1];
        let inside = |r: usize| log.at[r] >= lo && log.at[r] < hi;
        for r in (0..log.len()).filter(|&r| inside(r)) {
            off[log.customer[r] as usize + 1] += 1;
        }
        for c in 0..n {
            off[c + 1] += off[c];
        }
        let mut fill = off.clone();
        let mut items = vec![0u32; off[n]];
        for r in (0..log.len()).filter(|&r| inside(r)) {
            let c = log.customer[r] as usize;
            items[fill[c]] = log.item[r];
            fill[c] += 1;
        }
        // Deduplicate within each customer, compacting.
        let mut out_off = vec![0usize; n + 1];
        let mut w = 0;
        for c in 0..n {
            let seg = &mut items[off[c]..off[c + 1]];
            seg.sort_unstable();
            let mut prev = None;
            for k in off[c]..off[c + 1] {
                let v = items[k];
                if prev != Some(v) {
                    items[w] = v;
                    w += 1;
                    prev = Some(v);
                }
            }
            out_off[c + 1] = w;
        }
        items.truncate(w);
        Self { off: out_off, items }
    }

    /// Distinct products customer `c` bought in the window (sorted).
    #[must_use]
    pub fn bought(&self, c: usize) -> &[u32] {
        match (self.off.get(c), self.off.get(c + 1)) {
            (Some(&s), Some(&e)) => &self.items[s..e],
            _ => &[],
        }
    }
}

/// Hit rate and NDCG at k over a set of customers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Scores {
    /// Customers scored.
    pub customers: u64,
    /// Share of them who bought at least one of their top-k.
    pub hit_rate: f64,
    /// Mean NDCG@k (binary relevance: bought in the test window).
    pub ndcg: f64,
}

/// Scores every customer `c` with `eligible(c)` and test purchases.
#[must_use]
pub fn score(recs: &Recommendations, test: &TestSet, eligible: impl Fn(usize) -> bool) -> Scores {
    let k = recs.k();
    let (mut n, mut hits, mut ndcg) = (0u64, 0u64, 0.0f64);
    for c in 0..recs.customers() {
        let bought = test.bought(c);
        if bought.is_empty() || !eligible(c) {
            continue;
        }
        n += 1;
        let mut dcg = 0.0;
        let mut hit = false;
        for (rank, item) in recs.items_of(c).enumerate() {
            if bought.binary_search(&item).is_ok() {
                hit = true;
                dcg += 1.0 / ((rank + 2) as f64).log2();
            }
        }
        let ideal: f64 = (0..bought.len().min(k)).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
        if hit {
            hits += 1;
        }
        if ideal > 0.0 {
            ndcg += dcg / ideal;
        }
    }
    let d = n.max(1) as f64;
    Scores { customers: n, hit_rate: hits as f64 / d, ndcg: ndcg / d }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evaluation {
    /// k.
    pub k: usize,
    /// The recommender's scores.
    pub model: Scores,
    /// The popularity baseline's scores (best-sellers before T, same exclusions).
    pub baseline: Scores,
}

/// Time-split evaluation: learns with `params` (before `params.as_of` = T), recommends the
/// top-`k` to every customer as of T, and scores customers who bought before T (in the
/// lookback) and in `[T, until)`, against the popularity baseline.
#[must_use]
pub fn evaluate(
    log: &PurchaseLog,
    catalogue: &Catalogue,
    params: ModelParams,
    until: DateTime<Utc>,
    k: usize,
) -> Evaluation {
    let as_of = params.as_of;
    let model = CoPurchaseModel::build(log, catalogue, params);
    let recs = model.recommend_all(catalogue, log.customers(), k);
    let popular = model.popular_all(catalogue, log.customers(), k);
    let test = TestSet::of(log, as_of, until);
    let warm = |c: usize| model.has_history(c);
    Evaluation { k, model: score(&recs, &test, warm), baseline: score(&popular, &test, warm) }
}
