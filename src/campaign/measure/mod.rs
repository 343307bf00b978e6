//! Measured results: tracked links, KPIs and the results report.
//!
//! - [`LinkTracker`] rewrites the http(s) links of a send's messages into signed redirect URLs
//!   ([`track_route`], feature `axum`) that record each click ([`Click`]) in a [`ClickStore`]
//!   before redirecting to exactly the original URL. LINE counts opens and clicks only in
//!   aggregate; tracked clicks are per customer, so they feed segments ("clicked campaign X")
//!   and the KPIs.
//! - [`ReportInput`] takes plain facts (sends and holdout customers, clicks, blocks, orders,
//!   LINE's per-unit statistics) and [`ReportInput::build`] computes the KPIs per campaign and
//!   step, with the conversion uplift over the holdout and its 95 % interval.
//! - [`ResultsReport`] is serde data, prints as a terminal table and renders as a
//!   self-contained HTML page with charts ([`ResultsReport::to_html`]).

mod coupon;
mod kpi;
#[cfg(feature = "postgres")]
mod postgres;
mod report;
mod sections;
#[cfg(feature = "sqlite")]
mod sqlite;
mod track;

pub use coupon::{
    CouponIssueFact, CouponRedemption, CouponResult, coupon_redemptions, coupon_results,
};
#[cfg(feature = "client")]
pub use kpi::fetch_unit_stats;
pub use kpi::{
    BlockFact, Bucket, LineStatsFact, PurchaseFact, ReportInput, ReportOptions, SendFact, uplift,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresClickStore;
pub use report::{CampaignResult, Kpis, ResultsReport, StepResult, TimelinePoint, Uplift};
pub use sections::{ChannelStats, ConversationStats, CouponStats, RichMenuStats};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteClickStore;
pub use track::{
    Click, ClickResponse, ClickStore, ClickStoreError, DEFAULT_CLICK_WINDOW, LinkContext,
    LinkTracker, MemoryClickStore, TrackError, TrackedLink, handle_click, unique_clicks,
};
#[cfg(feature = "axum")]
pub use track::{DEFAULT_INVALID_LINK_PAGE, track_route, track_route_with};
