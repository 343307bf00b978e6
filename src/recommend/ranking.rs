//! Best-sellers per category and window (by units or revenue) and rising items, in one pass
//! over the purchase columns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::data::{Catalogue, PurchaseLog};

/// What a ranking orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RankBy {
    /// Units sold.
    #[default]
    Units,
    /// Revenue in yen.
    Revenue,
}

/// A half-open time window `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub until: DateTime<Utc>,
}

impl Window {
    /// The `days` days before `until`.
    #[must_use]
    pub fn days_before(until: DateTime<Utc>, days: i64) -> Self {
        Self { from: until - chrono::Duration::days(days), until }
    }

    /// The window of the same length just before this one.
    #[must_use]
    pub fn previous(&self) -> Self {
        Self { from: self.from - (self.until - self.from), until: self.from }
    }

    fn secs(&self) -> (i64, i64) {
        (self.from.timestamp(), self.until.timestamp())
    }
}

/// One ranked product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ranked {
    /// 1-based rank.
    pub rank: u32,
    /// The product's ID.
    pub product: String,
    /// Units sold in the window.
    pub units: u64,
    /// Revenue in the window, in yen.
    pub revenue: i64,
    /// Units sold in the previous window of the same length (for rising items).
    pub previous_units: u64,
}

/// Units and revenue per item over a window (dense by catalogue index).
#[derive(Debug, Clone)]
pub struct Sales {
    units: Vec<u64>,
    revenue: Vec<i64>,
    previous: Vec<u64>,
}

impl Sales {
    /// Sums the log over `window` (and the window before it, for rising items).
    #[must_use]
    pub fn of(log: &PurchaseLog, catalogue: &Catalogue, window: Window) -> Self {
        let n = catalogue.len();
        let mut s = Self { units: vec![0; n], revenue: vec![0; n], previous: vec![0; n] };
        let (from, until) = window.secs();
        let (pfrom, _) = window.previous().secs();
        for r in 0..log.len() {
            let at = log.at[r];
            let i = log.item[r] as usize;
            if i >= n || at < pfrom || at >= until {
                continue;
            }
            if at >= from {
                s.units[i] += u64::from(log.units[r]);
                s.revenue[i] = s.revenue[i].saturating_add(log.revenue[r]);
            } else {
                s.previous[i] += u64::from(log.units[r]);
            }
        }
        s
    }

    fn ranked(&self, catalogue: &Catalogue, items: Vec<u32>) -> Vec<Ranked> {
        items
            .into_iter()
            .enumerate()
            .filter_map(|(k, i)| {
                let item = catalogue.item(i)?;
                Some(Ranked {
                    rank: u32::try_from(k + 1).unwrap_or(u32::MAX),
                    product: item.id.clone(),
                    units: self.units[i as usize],
                    revenue: self.revenue[i as usize],
                    previous_units: self.previous[i as usize],
                })
            })
            .collect()
    }

    /// The top `limit` items (in `category` if given, available ones only if asked), best
    /// first, ties by product ID. Items without a sale in the window are left out.
    #[must_use]
    pub fn best_sellers(
        &self,
        catalogue: &Catalogue,
        category: Option<&str>,
        by: RankBy,
        limit: usize,
        available_only: bool,
    ) -> Vec<Ranked> {
        let mut items: Vec<u32> = (0..self.units.len())
            .filter_map(|i| u32::try_from(i).ok())
            .filter(|&i| self.units[i as usize] > 0)
            .filter(|&i| !available_only || catalogue.available(i))
            .filter(|&i| {
                category
                    .is_none_or(|c| catalogue.item(i).is_some_and(|it| it.category() == Some(c)))
            })
            .collect();
        let key = |i: u32| match by {
            RankBy::Units => i128::from(self.units[i as usize]),
            RankBy::Revenue => i128::from(self.revenue[i as usize]),
        };
        items.sort_by(|&a, &b| {
            key(b).cmp(&key(a)).then(catalogue.id_rank(a).cmp(&catalogue.id_rank(b)))
        });
        items.truncate(limit);
        self.ranked(catalogue, items)
    }

    /// The top `limit` of every category (by the item's first category).
    #[must_use]
    pub fn best_sellers_by_category(
        &self,
        catalogue: &Catalogue,
        by: RankBy,
        limit: usize,
        available_only: bool,
    ) -> BTreeMap<String, Vec<Ranked>> {
        let mut categories: Vec<&str> =
            catalogue.items().iter().filter_map(|i| i.category()).collect();
        categories.sort_unstable();
        categories.dedup();
        categories
            .into_iter()
            .map(|c| {
                (c.to_owned(), self.best_sellers(catalogue, Some(c), by, limit, available_only))
            })
            .collect()
    }

    /// Rising items: at least `min_units` sold in the window, ordered by growth over the
    /// previous window (`(units + 1) / (previous + 1)`), then units, then product ID.
    #[must_use]
    pub fn rising(&self, catalogue: &Catalogue, min_units: u64, limit: usize) -> Vec<Ranked> {
        let mut items: Vec<u32> = (0..self.units.len())
            .filter_map(|i| u32::try_from(i).ok())
            .filter(|&i| self.units[i as usize] >= min_units.max(1))
            .filter(|&i| self.units[i as usize] > self.previous[i as usize])
            .filter(|&i| catalogue.available(i))
            .collect();
        // Compare (u+1)/(p+1) exactly by cross-multiplying.
        let growth = |a: u32, b: u32| {
            let (ua, pa) =
                (u128::from(self.units[a as usize]) + 1, u128::from(self.previous[a as usize]) + 1);
            let (ub, pb) =
                (u128::from(self.units[b as usize]) + 1, u128::from(self.previous[b as usize]) + 1);
            (ub * pa).cmp(&(ua * pb))
        };
        items.sort_by(|&a, &b| {
            growth(a, b)
                .then(self.units[b as usize].cmp(&self.units[a as usize]))
                .then(catalogue.id_rank(a).cmp(&catalogue.id_rank(b)))
        });
        items.truncate(limit);
        self.ranked(catalogue, items)
    }
}

/// Best-sellers over `window` (convenience over [`Sales::of`] and [`Sales::best_sellers`]).
#[must_use]
pub fn best_sellers(
    log: &PurchaseLog,
    catalogue: &Catalogue,
    window: Window,
    category: Option<&str>,
    by: RankBy,
    limit: usize,
) -> Vec<Ranked> {
    Sales::of(log, catalogue, window).best_sellers(catalogue, category, by, limit, true)
}
