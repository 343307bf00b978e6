//! Product content from the shop's own data: best-sellers, rising items, co-purchase
//! associations, personal recommendations, and product carousels for LINE.
//!
//! Pure computation (no I/O, no tokio, no reqwest), like [`segment`](crate::segment): the host
//! feeds it the synced catalogue and orders and gets rankings, rules and per-customer picks.
//!
//! - [`Catalogue`] and [`PurchaseLog`]: the input in compact columnar form (dense indices,
//!   one row per purchased line), built from synced [`Product`](crate::commerce::Product)s,
//!   [`Order`](crate::commerce::Order)s and [`Subscription`](crate::commerce::Subscription)s.
//! - [`Sales`]: best-sellers per category and window (units or revenue) and rising items.
//! - [`CoPurchaseModel`]: "customers who bought A also bought B" with support, confidence and
//!   lift ([`Association`]), and personal recommendations from each customer's
//!   recency-weighted history ([`Recommendation`], explained by its [`Reason`] in Japanese),
//!   leaving out what the customer bought recently or subscribes to and what cannot be bought.
//!   Deterministic: ties are broken by product ID.
//! - [`evaluate`]: a time-split offline evaluation (hit rate@k, NDCG@k) against the popularity
//!   baseline.
//! - [`ProductCards`], [`RecommendationStep`], [`recommendation_vars`]: Flex carousels per
//!   customer within LINE's limits, and the wiring into campaigns and scenarios (UC-14,
//!   UC-17, UC-18).
//!
//! ```
//! use chrono::{TimeZone as _, Utc};
//! use enishi::CustomerId;
//! use enishi::recommend::{Catalogue, CatalogueItem, CoPurchaseModel, ModelParams, PurchaseLog};
//!
//! let catalogue = Catalogue::from_items(vec![
//!     CatalogueItem::new("1", "化粧水"),
//!     CatalogueItem::new("2", "乳液"),
//!     CatalogueItem::new("3", "シャンプー"),
//! ]);
//! let t = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap().timestamp();
//! let mut log = PurchaseLog::new();
//! for n in 0..5 {
//!     let c = log.customer(&CustomerId::new(format!("c{n}"))?);
//!     log.push(c, 0, t, 1, 1_980); // 化粧水 …
//!     log.push(c, 1, t + 60, 1, 2_480); // … bought with 乳液
//! }
//! let newcomer = log.customer(&CustomerId::new("new")?);
//! log.push(newcomer, 0, t, 1, 1_980);
//!
//! let as_of = Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap();
//! let model = CoPurchaseModel::build(&log, &catalogue, ModelParams::new(as_of));
//! let recs = model.recommend(&log, &catalogue, &CustomerId::new("new")?, 3);
//! assert_eq!(recs[0].product, "2");
//! assert_eq!(recs[0].reason.explain(&catalogue), "化粧水を購入された方に人気");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/recommendations.md` for the method, the evaluation and the wiring.

mod content;
mod data;
mod eval;
mod model;
mod ranking;

pub use content::{
    CARD_NAME_MAX, Card, ContentError, FLEX_BUBBLE_JSON_MAX, FLEX_CAROUSEL_JSON_MAX, Pick,
    ProductCards, ProductCardsBuilder, ProductContent, RecommendationStep, recommendation_vars,
    yen_text,
};
pub use data::{Catalogue, CatalogueItem, PurchaseLog};
pub use eval::{Evaluation, Scores, TestSet, evaluate, score};
pub use model::{
    Association, CoPurchaseModel, ModelParams, Reason, Recommendation, Recommendations,
};
pub use ranking::{RankBy, Ranked, Sales, Window, best_sellers};

#[cfg(test)]
mod tests;
