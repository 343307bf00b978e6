//! enishi's integration tests: one binary, one module per area.

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "client")]
mod budget;
mod campaign;
#[cfg(all(feature = "testkit", feature = "email"))]
mod channels;
#[cfg(feature = "client")]
mod chat;
mod commerce;
mod coupons;
mod error;
mod experiment;
#[cfg(feature = "client")]
mod hub;
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
#[cfg(feature = "testkit")]
mod richmenu;
mod segment;
mod stores;
mod testkit_line;
mod webhook;
