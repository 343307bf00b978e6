//! The co-purchase model (customers who bought A also bought B) and personal
//! recommendations from it (item-to-item over the customer's recency-weighted history).

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::data::{Catalogue, PurchaseLog};
use super::ranking::{RankBy, Sales, Window};
use crate::CustomerId;

/// How the model learns and recommends. Every setter accepts any value (out-of-range values
/// are clamped when used).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelParams {
    /// Learn from purchases strictly before this instant (and recommend as of it).
    pub as_of: DateTime<Utc>,
    /// How far back purchases count (default 365 days).
    pub lookback: Duration,
    /// A pair A → B is kept when at least this many customers bought both (default 3).
    pub min_pair_customers: u32,
    /// Associations kept per product, best first (default 30).
    pub neighbours: usize,
    /// A customer's most recent distinct products used (default 100): caps the cost of
    /// the few customers who bought almost everything.
    pub max_items_per_customer: usize,
    /// Half-life of a past purchase's weight in personal recommendations (default 90 days).
    pub half_life: Duration,
    /// Products the customer bought this recently are not recommended (default 30 days).
    pub exclude_recent: Duration,
    /// The window of the popularity fallback (best-sellers by units, default 30 days).
    pub popularity_window: Duration,
    /// How much a pair's score leans towards popular products B: the score of A → B is
    /// `both / (buyers(A)^a × buyers(B)^(1 − a))`; 0.5 is the cosine, 1 the confidence
    /// (default 0.7: popular products B count a little more, which buys hit rate).
    pub asymmetry: f64,
    /// Worker threads (default: the available parallelism).
    pub threads: usize,
}

impl ModelParams {
    /// Defaults, learning before `as_of`.
    #[must_use]
    pub fn new(as_of: DateTime<Utc>) -> Self {
        Self {
            as_of,
            lookback: Duration::days(365),
            min_pair_customers: 3,
            neighbours: 30,
            max_items_per_customer: 100,
            half_life: Duration::days(90),
            exclude_recent: Duration::days(30),
            popularity_window: Duration::days(30),
            asymmetry: 0.7,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        }
    }

    /// Sets how far back purchases count.
    #[must_use]
    pub fn lookback(mut self, lookback: Duration) -> Self {
        self.lookback = lookback;
        self
    }

    /// Sets the minimum number of customers who bought both products of a pair.
    #[must_use]
    pub fn min_pair_customers(mut self, n: u32) -> Self {
        self.min_pair_customers = n;
        self
    }

    /// Sets the associations kept per product.
    #[must_use]
    pub fn neighbours(mut self, n: usize) -> Self {
        self.neighbours = n;
        self
    }

    /// Sets the half-life of a past purchase's weight.
    #[must_use]
    pub fn half_life(mut self, half_life: Duration) -> Self {
        self.half_life = half_life;
        self
    }

    /// Sets how recent a purchase keeps its product out of the recommendations.
    #[must_use]
    pub fn exclude_recent(mut self, window: Duration) -> Self {
        self.exclude_recent = window;
        self
    }

    /// Sets the popularity fallback's window.
    #[must_use]
    pub fn popularity_window(mut self, window: Duration) -> Self {
        self.popularity_window = window;
        self
    }

    /// Sets the pair score's lean towards popular products (0 to 1).
    #[must_use]
    pub fn asymmetry(mut self, a: f64) -> Self {
        self.asymmetry = a;
        self
    }

    /// Sets the number of worker threads.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
}

/// An association rule A → B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Association {
    /// A: the product bought.
    pub antecedent: String,
    /// B: the product also bought.
    pub consequent: String,
    /// Customers who bought both.
    pub customers: u32,
    /// Share of all buyers who bought both.
    pub support: f64,
    /// Share of A's buyers who bought B.
    pub confidence: f64,
    /// Confidence over B's share of all buyers (> 1: more than chance).
    pub lift: f64,
    /// The ranking score (`both / (buyers(A)^a × buyers(B)^(1 − a))`, see
    /// [`ModelParams::asymmetry`]).
    pub score: f64,
}

/// Why a product is recommended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Customers who bought `product` (which this customer bought) often bought it too.
    BoughtTogether {
        /// The product the customer bought.
        product: String,
    },
    /// A best-seller (the fallback when history says too little).
    Popular,
}

impl Reason {
    /// The explanation shown to the customer, in Japanese
    /// (`〇〇を購入された方に人気`, `いま人気の商品`).
    #[must_use]
    pub fn explain(&self, catalogue: &Catalogue) -> String {
        match self {
            Self::BoughtTogether { product } => {
                let name = catalogue.get(product).map_or(product.as_str(), |i| i.name.as_str());
                format!("{name}を購入された方に人気")
            }
            Self::Popular => "いま人気の商品".to_owned(),
        }
    }
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recommendation {
    /// The product's ID.
    pub product: String,
    /// The score (higher is better; popularity fallbacks score 0).
    pub score: f32,
    /// Why.
    pub reason: Reason,
}

const NONE: u32 = u32::MAX;

/// One product's neighbours: (product, customers who bought both, score), best first.
type Neighbours = Vec<(u32, u32, f32)>;

/// The co-purchase model learnt from a [`PurchaseLog`] before [`ModelParams::as_of`].
#[derive(Debug, Clone)]
pub struct CoPurchaseModel {
    params: ModelParams,
    items: usize,
    /// Customers with at least one purchase in the lookback.
    buyers_total: u64,
    base: i64,
    /// Customer → distinct items (sorted), with the last purchase (seconds after `base`).
    cust_off: Vec<usize>,
    cust_items: Vec<u32>,
    cust_last: Vec<u32>,
    /// Distinct buyers per item.
    item_buyers: Vec<u32>,
    /// Item → neighbours, best first.
    nb_off: Vec<usize>,
    nb_item: Vec<u32>,
    nb_count: Vec<u32>,
    nb_score: Vec<f32>,
    /// Best-sellers by units over the popularity window, best first.
    popular: Vec<u32>,
    /// `(customer, item)`, sorted.
    subscribed: Vec<(u32, u32)>,
}

/// The purchase rows in `[lo, hi)` grouped by customer (a counting sort): the offsets per
/// customer and the rows packed as `item << 32 | (at - lo)`.
fn group_by_customer(
    log: &PurchaseLog,
    lo: i64,
    hi: i64,
    n_items: usize,
) -> (Vec<usize>, Vec<u64>) {
    let n_cust = log.customers();
    let in_window = |r: usize| {
        let at = log.at[r];
        at >= lo && at < hi && (log.item[r] as usize) < n_items
    };
    let mut cust_off = vec![0usize; n_cust + 1];
    for r in (0..log.len()).filter(|&r| in_window(r)) {
        cust_off[log.customer[r] as usize + 1] += 1;
    }
    for c in 0..n_cust {
        cust_off[c + 1] += cust_off[c];
    }
    let mut fill = cust_off.clone();
    let mut packed = vec![0u64; cust_off[n_cust]];
    for r in (0..log.len()).filter(|&r| in_window(r)) {
        let c = log.customer[r] as usize;
        let rel = u64::try_from(log.at[r] - lo).unwrap_or(0);
        packed[fill[c]] = (u64::from(log.item[r]) << 32) | rel;
        fill[c] += 1;
    }
    (cust_off, packed)
}

/// The transpose of customer → items: buyers per item, offsets per item, and the buyers.
fn buyers_of_items(
    cust_off: &[usize],
    cust_items: &[u32],
    n_items: usize,
) -> (Vec<u32>, Vec<usize>, Vec<u32>) {
    let mut item_buyers = vec![0u32; n_items];
    for &i in cust_items {
        item_buyers[i as usize] += 1;
    }
    let mut ic_off = vec![0usize; n_items + 1];
    for i in 0..n_items {
        ic_off[i + 1] = ic_off[i] + item_buyers[i] as usize;
    }
    let mut fill = ic_off.clone();
    let mut ic_cust = vec![0u32; cust_items.len()];
    for c in 0..cust_off.len().saturating_sub(1) {
        for &i in &cust_items[cust_off[c]..cust_off[c + 1]] {
            ic_cust[fill[i as usize]] = u32::try_from(c).unwrap_or(NONE);
            fill[i as usize] += 1;
        }
    }
    (item_buyers, ic_off, ic_cust)
}

/// The threads' neighbour lists, in item order, as flat columns with offsets per item.
#[allow(clippy::type_complexity)]
fn flatten_neighbours(
    per_item: Vec<Vec<(usize, Neighbours)>>,
    n_items: usize,
) -> (Vec<usize>, Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut lists: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); n_items];
    for part in per_item {
        for (a, list) in part {
            lists[a] = list;
        }
    }
    let mut nb_off = Vec::with_capacity(n_items + 1);
    nb_off.push(0);
    let (mut nb_item, mut nb_count, mut nb_score) = (Vec::new(), Vec::new(), Vec::new());
    for list in lists {
        for (b, n, s) in list {
            nb_item.push(b);
            nb_count.push(n);
            nb_score.push(s);
        }
        nb_off.push(nb_item.len());
    }
    (nb_off, nb_item, nb_count, nb_score)
}

fn threads_of(p: &ModelParams) -> usize {
    p.threads.clamp(1, 64)
}

impl CoPurchaseModel {
    /// Learns the model: each customer's distinct products (most recent first, capped), then
    /// for every product A the products B its buyers also bought, with counts, kept when at
    /// least [`min_pair_customers`](ModelParams::min_pair_customers) bought both, ordered by
    /// score ([`ModelParams::asymmetry`]; ties by product ID).
    #[must_use]
    pub fn build(log: &PurchaseLog, catalogue: &Catalogue, params: ModelParams) -> Self {
        let hi = params.as_of.timestamp();
        let lo = hi.saturating_sub(params.lookback.num_seconds().clamp(0, u32::MAX.into()));
        let n_items = catalogue.len();
        let n_cust = log.customers();
        let threads = threads_of(&params);

        // 1. Rows in the window grouped by customer (counting sort), packed item<<32 | at-lo.
        let (cust_off, mut packed) = group_by_customer(log, lo, hi, n_items);

        // 2. Per customer: distinct items with their last purchase, the most recent capped.
        let cap = params.max_items_per_customer.max(1);
        let ranges = split_ranges(n_cust, threads);
        let parts: Vec<(Vec<u32>, Vec<u32>, Vec<u32>)> = std::thread::scope(|s| {
            let mut rest: &mut [u64] = &mut packed;
            let mut handles = Vec::new();
            for &(a, b) in &ranges {
                let (mine, tail) = rest.split_at_mut(cust_off[b] - cust_off[a]);
                rest = tail;
                let offs = &cust_off[a..=b];
                handles.push(s.spawn(move || distinct_items(mine, offs, cap)));
            }
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        drop(packed);
        let total: usize = parts.iter().map(|p| p.0.len()).sum();
        let mut cust_items = Vec::with_capacity(total);
        let mut cust_last = Vec::with_capacity(total);
        let mut cust_off = Vec::with_capacity(n_cust + 1);
        cust_off.push(0usize);
        for (items, last, lens) in parts {
            cust_items.extend_from_slice(&items);
            cust_last.extend_from_slice(&last);
            for len in lens {
                let prev = *cust_off.last().unwrap_or(&0);
                cust_off.push(prev + len as usize);
            }
        }
        let buyers_total = (0..n_cust).filter(|&c| cust_off[c + 1] > cust_off[c]).count() as u64;

        // 3. Item → buyers (transpose).
        let (item_buyers, ic_off, ic_cust) = buyers_of_items(&cust_off, &cust_items, n_items);

        // 4. Neighbours of every item, in parallel over items.
        let min_pair = params.min_pair_customers.max(1);
        let keep = params.neighbours.max(1);
        let next = AtomicUsize::new(0);
        let per_item: Vec<Vec<(usize, Neighbours)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let ctx = PairCtx {
                        ic_off: &ic_off,
                        ic_cust: &ic_cust,
                        cust_off: &cust_off,
                        cust_items: &cust_items,
                        item_buyers: &item_buyers,
                        catalogue,
                        min_pair,
                        keep,
                        alpha: if params.asymmetry.is_finite() {
                            params.asymmetry.clamp(0.0, 1.0)
                        } else {
                            0.5
                        },
                    };
                    let next = &next;
                    s.spawn(move || ctx.run(next))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        drop(ic_cust);
        let (nb_off, nb_item, nb_count, nb_score) = flatten_neighbours(per_item, n_items);

        // 5. The popularity fallback and the subscriptions.
        let window = Window { from: params.as_of - params.popularity_window, until: params.as_of };
        let sales = Sales::of(log, catalogue, window);
        let popular: Vec<u32> = sales
            .best_sellers(catalogue, None, RankBy::Units, 200, false)
            .iter()
            .filter_map(|r| catalogue.index_of(&r.product))
            .collect();
        let mut subscribed = log.subscribed.clone();
        subscribed.sort_unstable();
        subscribed.dedup();

        Self {
            params,
            items: n_items,
            buyers_total,
            base: lo,
            cust_off,
            cust_items,
            cust_last,
            item_buyers,
            nb_off,
            nb_item,
            nb_count,
            nb_score,
            popular,
            subscribed,
        }
    }

    /// The parameters the model was built with.
    #[must_use]
    pub fn params(&self) -> &ModelParams {
        &self.params
    }

    /// Customers with at least one purchase in the lookback.
    #[must_use]
    pub fn buyers(&self) -> u64 {
        self.buyers_total
    }

    /// Number of association rules kept.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.nb_item.len()
    }

    /// Association rules A → B for a product, best first (empty for an unknown product).
    #[must_use]
    pub fn associations(&self, catalogue: &Catalogue, product: &str) -> Vec<Association> {
        let Some(a) = catalogue.index_of(product).filter(|&a| (a as usize) < self.items) else {
            return Vec::new();
        };
        let a_id = catalogue.item(a).map_or_else(String::new, |i| i.id.clone());
        let total = self.buyers_total.max(1) as f64;
        let (s, e) = (self.nb_off[a as usize], self.nb_off[a as usize + 1]);
        (s..e)
            .filter_map(|k| {
                let b = self.nb_item[k];
                let both = f64::from(self.nb_count[k]);
                let confidence = both / f64::from(self.item_buyers[a as usize].max(1));
                let b_share = f64::from(self.item_buyers[b as usize].max(1)) / total;
                Some(Association {
                    antecedent: a_id.clone(),
                    consequent: catalogue.item(b)?.id.clone(),
                    customers: self.nb_count[k],
                    support: both / total,
                    confidence,
                    lift: confidence / b_share,
                    score: f64::from(self.nb_score[k]),
                })
            })
            .collect()
    }

    /// Whether customer `c` (a log index) bought anything in the lookback.
    #[must_use]
    pub fn has_history(&self, c: usize) -> bool {
        !self.history(u32::try_from(c).unwrap_or(NONE)).0.is_empty()
    }

    fn history(&self, c: u32) -> (&[u32], &[u32]) {
        let c = c as usize;
        if c + 1 >= self.cust_off.len() {
            return (&[], &[]);
        }
        let (s, e) = (self.cust_off[c], self.cust_off[c + 1]);
        (&self.cust_items[s..e], &self.cust_last[s..e])
    }

    /// Whether the product is kept out of `c`'s recommendations at `now`: not available,
    /// subscribed to, or bought within `exclude_recent`.
    fn excluded(&self, catalogue: &Catalogue, c: u32, b: u32, now: i64) -> bool {
        if !catalogue.available(b) || self.subscribed.binary_search(&(c, b)).is_ok() {
            return true;
        }
        let (items, last) = self.history(c);
        items.binary_search(&b).is_ok_and(|k| {
            self.base + i64::from(last[k]) >= now - self.params.exclude_recent.num_seconds()
        })
    }

    /// Top-`k` personal recommendations for customer `c` (an index of the log the model was
    /// built from) at the model's `as_of`.
    fn recommend_into(
        &self,
        catalogue: &Catalogue,
        c: u32,
        k: usize,
        scratch: &mut Scratch,
        out: &mut Vec<(u32, u32, f32)>,
    ) {
        out.clear();
        let now = self.params.as_of.timestamp();
        let half_life = self.params.half_life.num_seconds().max(1) as f32;
        let (items, last) = self.history(c);
        for (&a, &t) in items.iter().zip(last) {
            let age = (now - (self.base + i64::from(t))).max(0) as f32;
            let w = (-(age / half_life) * std::f32::consts::LN_2).exp();
            let (s, e) = (self.nb_off[a as usize], self.nb_off[a as usize + 1]);
            for j in s..e {
                let b = self.nb_item[j] as usize;
                let v = w * self.nb_score[j];
                if scratch.score[b] == 0.0 {
                    scratch.touched.push(self.nb_item[j]);
                }
                scratch.score[b] += v;
                if v > scratch.best[b] || (v == scratch.best[b] && scratch.from[b] > a) {
                    scratch.best[b] = v;
                    scratch.from[b] = a;
                }
            }
        }
        for &b in &scratch.touched {
            if !self.excluded(catalogue, c, b, now) {
                let i = b as usize;
                out.push((b, scratch.from[i], scratch.score[i]));
            }
        }
        for &b in &scratch.touched {
            let i = b as usize;
            scratch.score[i] = 0.0;
            scratch.best[i] = 0.0;
            scratch.from[i] = NONE;
        }
        scratch.touched.clear();
        let by_score = |x: &(u32, u32, f32), y: &(u32, u32, f32)| {
            y.2.total_cmp(&x.2).then(catalogue.id_rank(x.0).cmp(&catalogue.id_rank(y.0)))
        };
        if out.len() > k {
            out.select_nth_unstable_by(k, by_score);
            out.truncate(k);
        }
        out.sort_by(by_score);
        // Fill with best-sellers.
        for &p in &self.popular {
            if out.len() >= k {
                break;
            }
            if !out.iter().any(|x| x.0 == p) && !self.excluded(catalogue, c, p, now) {
                out.push((p, NONE, 0.0));
            }
        }
    }

    /// Top-`k` personal recommendations for a customer (best-sellers for one without
    /// history), each with its reason.
    #[must_use]
    pub fn recommend(
        &self,
        log: &PurchaseLog,
        catalogue: &Catalogue,
        customer: &CustomerId,
        k: usize,
    ) -> Vec<Recommendation> {
        let c = log.customer_index(customer).unwrap_or(NONE);
        let mut scratch = Scratch::new(self.items);
        let mut out = Vec::new();
        self.recommend_into(catalogue, c, k, &mut scratch, &mut out);
        out.iter().filter_map(|&(b, from, score)| to_rec(catalogue, b, from, score)).collect()
    }

    /// "A buyers → B" (UC-14): products bought with `product`, best first, left out when the
    /// customer bought them recently, subscribes to them or they cannot be bought.
    #[must_use]
    pub fn bought_with(
        &self,
        log: &PurchaseLog,
        catalogue: &Catalogue,
        customer: Option<&CustomerId>,
        product: &str,
        k: usize,
    ) -> Vec<Recommendation> {
        let Some(a) = catalogue.index_of(product).filter(|&a| (a as usize) < self.items) else {
            return Vec::new();
        };
        let c = customer.and_then(|c| log.customer_index(c)).unwrap_or(NONE);
        let now = self.params.as_of.timestamp();
        let (s, e) = (self.nb_off[a as usize], self.nb_off[a as usize + 1]);
        (s..e)
            .filter(|&j| !self.excluded(catalogue, c, self.nb_item[j], now))
            .take(k)
            .filter_map(|j| to_rec(catalogue, self.nb_item[j], a, self.nb_score[j]))
            .collect()
    }

    /// The top-`k` of every customer of the log, computed in parallel.
    #[must_use]
    pub fn recommend_all(
        &self,
        catalogue: &Catalogue,
        customers: usize,
        k: usize,
    ) -> Recommendations {
        let threads = threads_of(&self.params);
        let mut items = vec![NONE; customers * k];
        let mut from = vec![NONE; customers * k];
        let chunk = customers.div_ceil(threads * 16).max(1);
        {
            let slots: Vec<(usize, &mut [u32], &mut [u32])> = items
                .chunks_mut(chunk * k.max(1))
                .zip(from.chunks_mut(chunk * k.max(1)))
                .enumerate()
                .map(|(n, (i, f))| (n * chunk, i, f))
                .collect();
            let slots = std::sync::Mutex::new(slots.into_iter());
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let slots = &slots;
                    s.spawn(move || {
                        let mut scratch = Scratch::new(self.items);
                        let mut out = Vec::new();
                        loop {
                            let slot = slots.lock().ok().and_then(|mut it| it.next());
                            let Some((start, is, fs)) = slot else { break };
                            let n = is.len() / k.max(1);
                            for j in 0..n {
                                let c = u32::try_from(start + j).unwrap_or(NONE);
                                self.recommend_into(catalogue, c, k, &mut scratch, &mut out);
                                for (slot, &(b, f, _)) in out.iter().enumerate() {
                                    is[j * k + slot] = b;
                                    fs[j * k + slot] = f;
                                }
                            }
                        }
                    });
                }
            });
        }
        Recommendations { k, items, from }
    }

    /// The popularity baseline for every customer: best-sellers of the popularity window,
    /// with the same exclusions as the personal recommendations.
    #[must_use]
    pub fn popular_all(
        &self,
        catalogue: &Catalogue,
        customers: usize,
        k: usize,
    ) -> Recommendations {
        let now = self.params.as_of.timestamp();
        let mut items = vec![NONE; customers * k];
        for c in 0..customers {
            let cu = u32::try_from(c).unwrap_or(NONE);
            let mut n = 0;
            for &p in &self.popular {
                if n >= k {
                    break;
                }
                if !self.excluded(catalogue, cu, p, now) {
                    items[c * k + n] = p;
                    n += 1;
                }
            }
        }
        let from = vec![NONE; items.len()];
        Recommendations { k, items, from }
    }
}

fn to_rec(catalogue: &Catalogue, b: u32, from: u32, score: f32) -> Option<Recommendation> {
    let product = catalogue.item(b)?.id.clone();
    let reason = match catalogue.item(from) {
        Some(a) if from != NONE => Reason::BoughtTogether { product: a.id.clone() },
        _ => Reason::Popular,
    };
    Some(Recommendation { product, score, reason })
}

/// Every customer's top-`k` in flat columns (customer index × k).
#[derive(Debug, Clone)]
pub struct Recommendations {
    k: usize,
    items: Vec<u32>,
    from: Vec<u32>,
}

impl Recommendations {
    /// Recommendations per customer.
    #[must_use]
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of customers.
    #[must_use]
    pub fn customers(&self) -> usize {
        self.items.len().checked_div(self.k).unwrap_or(0)
    }

    /// Catalogue indices recommended to customer `c`, best first.
    pub fn items_of(&self, c: usize) -> impl Iterator<Item = u32> + '_ {
        let row = self.items.get(c * self.k..(c + 1) * self.k).unwrap_or(&[]);
        row.iter().copied().take_while(|&i| i != NONE)
    }

    /// Customer `c`'s recommendations with their reasons.
    #[must_use]
    pub fn of(&self, catalogue: &Catalogue, c: usize) -> Vec<Recommendation> {
        let from = self.from.get(c * self.k..(c + 1) * self.k).unwrap_or(&[]);
        self.items_of(c).zip(from).filter_map(|(b, &f)| to_rec(catalogue, b, f, 0.0)).collect()
    }
}

struct Scratch {
    score: Vec<f32>,
    best: Vec<f32>,
    from: Vec<u32>,
    touched: Vec<u32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self { score: vec![0.0; n], best: vec![0.0; n], from: vec![NONE; n], touched: Vec::new() }
    }
}

/// `n` customers in `parts` contiguous ranges.
fn split_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let step = n.div_ceil(parts.max(1)).max(1);
    (0..n).step_by(step).map(|a| (a, (a + step).min(n))).collect()
}

/// Distinct items of each customer in `offs` (offsets into `rows`, rebased), the most
/// recent `cap` kept: (items, last times, per-customer lengths).
fn distinct_items(rows: &mut [u64], offs: &[usize], cap: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let base = offs[0];
    let mut items = Vec::with_capacity(rows.len());
    let mut last = Vec::with_capacity(rows.len());
    let mut lens = Vec::with_capacity(offs.len().saturating_sub(1));
    let mut seg: Vec<(u32, u32)> = Vec::new();
    for w in offs.windows(2) {
        let rows = &mut rows[w[0] - base..w[1] - base];
        rows.sort_unstable();
        seg.clear();
        for &p in rows.iter() {
            let (i, t) = ((p >> 32) as u32, (p & 0xFFFF_FFFF) as u32);
            match seg.last_mut() {
                Some(x) if x.0 == i => x.1 = t, // sorted: the later time wins
                _ => seg.push((i, t)),
            }
        }
        if seg.len() > cap {
            seg.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            seg.truncate(cap);
            seg.sort_unstable();
        }
        for &(i, t) in &seg {
            items.push(i);
            last.push(t);
        }
        lens.push(u32::try_from(seg.len()).unwrap_or(u32::MAX));
    }
    (items, last, lens)
}

struct PairCtx<'a> {
    ic_off: &'a [usize],
    ic_cust: &'a [u32],
    cust_off: &'a [usize],
    cust_items: &'a [u32],
    item_buyers: &'a [u32],
    catalogue: &'a Catalogue,
    min_pair: u32,
    keep: usize,
    alpha: f64,
}

impl PairCtx<'_> {
    fn run(&self, next: &AtomicUsize) -> Vec<(usize, Neighbours)> {
        const BLOCK: usize = 32;
        let n = self.item_buyers.len();
        let mut counts = vec![0u32; n];
        let mut touched: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            if start >= n {
                break;
            }
            for a in start..(start + BLOCK).min(n) {
                for &c in &self.ic_cust[self.ic_off[a]..self.ic_off[a + 1]] {
                    let c = c as usize;
                    for &b in &self.cust_items[self.cust_off[c]..self.cust_off[c + 1]] {
                        let slot = &mut counts[b as usize];
                        if *slot == 0 {
                            touched.push(b);
                        }
                        *slot += 1;
                    }
                }
                let na = f64::from(self.item_buyers[a]).powf(self.alpha);
                let mut list: Vec<(u32, u32, f32)> = touched
                    .iter()
                    .filter(|&&b| b as usize != a && counts[b as usize] >= self.min_pair)
                    .map(|&b| {
                        let both = counts[b as usize];
                        let nb = f64::from(self.item_buyers[b as usize]);
                        (b, both, (f64::from(both) / (na * nb.powf(1.0 - self.alpha))) as f32)
                    })
                    .collect();
                for &b in &touched {
                    counts[b as usize] = 0;
                }
                touched.clear();
                let cmp = |x: &(u32, u32, f32), y: &(u32, u32, f32)| {
                    y.2.total_cmp(&x.2)
                        .then(self.catalogue.id_rank(x.0).cmp(&self.catalogue.id_rank(y.0)))
                };
                if list.len() > self.keep {
                    list.select_nth_unstable_by(self.keep, cmp);
                    list.truncate(self.keep);
                }
                list.sort_by(cmp);
                if !list.is_empty() {
                    out.push((a, list));
                }
            }
        }
        out
    }
}
