//! The LINE platform: Messaging API client, message objects and their limits, webhooks.
//!
//! See `docs/line.md` for a tour.

#[cfg(feature = "client")]
mod client;
mod message;
mod validate;
pub mod webhook;

#[cfg(feature = "client")]
pub use client::*;
pub use message::*;
pub use validate::{ValidationError, Validator, Violation};
