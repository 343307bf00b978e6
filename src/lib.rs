#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`line`](mod@line): the LINE Messaging API client, typed message objects
//!   ([`line::message`]) with local validation of LINE's limits, and webhooks.
//! - [`segment`]: the pure segment engine.
//! - [`recommend`]: rankings, co-purchase associations, personal recommendations and product
//!   carousels from the shop's data (pure).
//! - [`retry`]: retry decisions, back-off, `Retry-After` and pacing, shared by every HTTP
//!   caller of the crate.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "app")]
#[cfg_attr(docsrs, doc(cfg(feature = "app")))]
pub mod app;
pub mod campaign;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod channel;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod chat;
pub mod clock;
pub mod commerce;
#[cfg(feature = "testkit")]
mod conformance;
mod error;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod hub;
mod ids;
pub mod line;
pub mod link;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod recommend;
mod redact;
pub mod retry;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod richmenu;
pub mod segment;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod storage;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use error::{Error, Result};
pub use ids::{
    AggregationUnit, AudienceGroupId, BatchId, CampaignId, CouponId, CustomerId, IdError,
    LineGroupId, LineRoomId, LineUserId, MessageId, RequestId, RetryKey, RichMenuAliasId,
    RichMenuId, WebhookEventId,
};

/// Every code block in `docs/` compiles: each page is a doctest module (non-Rust blocks carry
/// their language, `sh`, `toml`, `text`, ...). The pages use the optional features, so they are
/// tested with `cargo test --all-features`, as CI does; the cookbook is tested with any features.
#[cfg(doctest)]
mod docs {
    #[doc = include_str!("../docs/cookbook.md")]
    struct Cookbook;
    #[doc = include_str!("../docs/performance.md")]
    struct Performance;

    #[cfg(all(feature = "testkit", feature = "sqlite", feature = "toml", feature = "ecforce"))]
    mod pages {
        #[doc = include_str!("../docs/architecture.md")]
        struct Architecture;
        #[cfg(feature = "email")]
        #[doc = include_str!("../docs/channels.md")]
        struct Channels;
        #[doc = include_str!("../docs/commerce.md")]
        struct Commerce;
        #[cfg(feature = "client")]
        #[doc = include_str!("../docs/coupons.md")]
        struct Coupons;
        #[doc = include_str!("../docs/coexistence.md")]
        struct Coexistence;
        #[doc = include_str!("../docs/delivery.md")]
        struct Delivery;
        #[cfg(feature = "client")]
        #[doc = include_str!("../docs/experiments.md")]
        struct Experiments;
        #[doc = include_str!("../docs/line-messages.md")]
        struct LineMessages;
        #[doc = include_str!("../docs/line.md")]
        struct Line;
        #[doc = include_str!("../docs/line-api.md")]
        struct LineApi;
        #[doc = include_str!("../docs/linking.md")]
        struct Linking;
        #[doc = include_str!("../docs/operations.md")]
        struct Operations;
        #[cfg(feature = "app")]
        #[doc = include_str!("../docs/pages.md")]
        struct Pages;
        #[cfg(feature = "app")]
        #[doc = include_str!("../docs/chat.md")]
        struct Chat;
        #[doc = include_str!("../docs/recommendations.md")]
        struct Recommendations;
        #[doc = include_str!("../docs/results.md")]
        struct Results;
        #[doc = include_str!("../docs/richmenus.md")]
        struct RichMenus;
        #[doc = include_str!("../docs/scenarios.md")]
        struct Scenarios;
        #[doc = include_str!("../docs/segments.md")]
        struct Segments;
        #[doc = include_str!("../docs/testing.md")]
        struct Testing;
        #[doc = include_str!("../docs/testkit.md")]
        struct Testkit;
        #[doc = include_str!("../docs/webhooks.md")]
        struct Webhooks;
    }
}
