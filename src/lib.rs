//! # enishi (縁, "a bond")
//!
//! An embeddable library that lets an online shop link its customers' LINE accounts to their
//! shop accounts, and then send each linked customer the right LINE message at the right time.
//!
//! ## Modules
//!
//! - [`line`](mod@line): the LINE Messaging API client, typed message objects with local validation of
//!   LINE's limits, and webhooks.
//!
//! ## Optional features
//!
//! - `client` (default): the LINE Messaging API client (reqwest, tokio timers).
//! - `rustls` (default): TLS through rustls. `native-tls`: the platform's TLS instead.
//! - `sqlite`: embedded SQLite stores. `postgres`: PostgreSQL stores.
//! - `axum`: axum integration for webhooks.
//! - `testkit`: fake LINE servers for offline tests, examples and benchmarks.
//!
//! With `--no-default-features` only the pure parts compile: IDs, message objects, validation,
//! webhook verification and parsing, and the segment engine. They never touch tokio or reqwest.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod ids;
pub mod line;
pub mod segment;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use error::{Error, Result};
pub use ids::{
    AggregationUnit, AudienceGroupId, CustomerId, IdError, LineGroupId, LineRoomId, LineUserId,
    MessageId, RequestId, RetryKey, RichMenuAliasId, RichMenuId, WebhookEventId,
};
