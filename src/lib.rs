#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`line`](mod@line): the LINE Messaging API client, typed message objects with local
//!   validation of LINE's limits, and webhooks.
//! - [`segment`]: the pure segment engine.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod campaign;
pub mod commerce;
mod error;
mod ids;
pub mod line;
pub mod link;
#[cfg(feature = "postgres")]
mod postgres_util;
pub mod segment;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use error::{Error, Result};
pub use ids::{
    AggregationUnit, AudienceGroupId, BatchId, CampaignId, CustomerId, IdError, LineGroupId,
    LineRoomId, LineUserId, MessageId, RequestId, RetryKey, RichMenuAliasId, RichMenuId,
    WebhookEventId,
};

#[cfg(doctest)]
#[doc = include_str!("../docs/cookbook.md")]
struct CookbookDoctests;
