//! Campaign delivery: plan recipients, personalise messages and send them through LINE, once
//! each, within LINE's rate limits.
//!
//! The parts, in the order data flows through them:
//! - planning turns a segment (or a list) into [`Batch`]es: recipients = segment ∩ linked ∩
//!   following ∩ consent, minus frequency-capped, holdout and quiet-hour exclusions;
//! - the [`DeliveryJournal`] stores every batch, with its `X-Line-Retry-Key`, before it is
//!   sent, and its outcome after;
//! - the dispatcher claims due batches from the journal and sends them with bounded
//!   concurrency under the client's (optionally Redis-shared) rate limiter.
//!
//! Every [`DeliveryJournal`] and [`ClickStore`] passes one conformance suite
//! (`campaign::conformance`, feature `testkit`), which a host runs against its own store too.

mod batch;
mod channels;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
mod coupon;
#[cfg(feature = "client")]
mod dispatch;
mod experiment;
pub mod forecast;
mod journal;
mod measure;
mod plan;
pub mod scenario;

pub use batch::{
    Batch, BatchFallback, BatchOutcome, BatchRecipient, BatchRecord, BatchStatus, CampaignState,
    FailureKind, JournalCounts, PauseReason, SendRecord, Transport,
};
pub use channels::{ChannelKind, Purpose, customer_send_key};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use coupon::PostgresCouponPool;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use coupon::SqliteCouponPool;
pub use coupon::{
    COUPON_CODE_MAX_BYTES, CouponClaim, CouponIssueReport, CouponPool, CouponPoolError,
    CouponSource, CouponStep, CouponStepError, DEFAULT_COUPON_VARIABLE, MemoryCouponPool,
    PoolCounts,
};
#[cfg(feature = "client")]
pub use dispatch::{
    CampaignControl, DeliveryReport, DispatchError, Dispatcher, DispatcherBuilder, FailedBatch,
    Progress, RunStats, RunStatus,
};
pub use experiment::{
    Comparison, ExperimentCounts, ExperimentError, ExperimentStatus, OfferExperiment,
    SequentialTest, SequentialTestError, Simulation, SimulationResult, Tally, Verdict, simulate,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use journal::PostgresJournal;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use journal::SqliteJournal;
pub use journal::{Claimed, DeliveryJournal, JournalError, MemoryJournal};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use measure::PostgresClickStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use measure::SqliteClickStore;
#[cfg(feature = "client")]
pub use measure::fetch_unit_stats;
pub use measure::{
    BlockFact, Bucket, CampaignResult, ChannelStats, Click, ClickResponse, ClickStore,
    ClickStoreError, ConversationStats, CouponIssueFact, CouponRedemption, CouponResult,
    CouponStats, DEFAULT_CLICK_WINDOW, Kpis, LineStatsFact, LinkContext, LinkTracker,
    MemoryClickStore, PurchaseFact, ReportInput, ReportOptions, ResultsReport, RichMenuStats,
    SendFact, StepResult, TimelinePoint, TrackError, TrackedLink, Uplift, coupon_redemptions,
    coupon_results, handle_click, unique_clicks, uplift,
};
#[cfg(feature = "axum")]
pub use measure::{DEFAULT_INVALID_LINK_PAGE, track_route, track_route_with};
pub use plan::{
    AffectedCustomers, Arm, ArmSummary, Campaign, Contact, DeliveryPolicy, DryRun, ExclusionReason,
    FrequencyCap, Holdout, MULTICAST_MAX_RECIPIENTS, MessageTemplate, MissingVariable,
    OnRenderError, Plan, PlanError, Planner, QuietHours, RenderError, Sample, SendHistory,
    TemplateError, TextTemplate, Vars, arm_index, bucket, salted_hash,
};
