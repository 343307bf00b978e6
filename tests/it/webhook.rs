//! Webhook tests: signature verification, parsing, de-duplication, the axum service.

mod corpus;
mod dedup;
mod events;
mod props;
#[cfg(feature = "axum")]
mod service;
