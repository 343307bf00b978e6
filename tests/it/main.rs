//! enishi's integration tests: one binary, one module per area.

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "client")]
mod budget;
mod campaign;
#[cfg(feature = "client")]
mod chat;
mod commerce;
mod error;
#[cfg(feature = "client")]
mod hub;
mod line_client;
mod link;
mod message;
#[cfg(feature = "axum")]
mod pages;
#[cfg(feature = "postgres")]
mod pg;
mod report;
mod segment;
mod stores;
mod testkit_line;
mod webhook;
