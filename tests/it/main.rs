//! enishi's integration tests: one binary, one module per area.

#[cfg(feature = "app")]
mod app;
mod campaign;
#[cfg(feature = "client")]
mod chat;
mod commerce;
mod error;
mod line_client;
mod link;
mod message;
#[cfg(feature = "axum")]
mod pages;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "testkit")]
mod recommend;
mod report;
mod segment;
mod stores;
mod testkit_line;
mod webhook;
