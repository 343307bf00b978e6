//! Webhook hub tests: the queue conformance suite on every store, and the hub against real
//! HTTP receivers on loopback that fail, slow down, restart, with enishi crashing mid-stream.

#[cfg(feature = "app")]
mod app;
mod forward;
mod queue;
