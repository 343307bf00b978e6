//! The LINE platform: Messaging API client, message objects and their limits, webhooks.
//!
//! See `docs/line.md` for a tour.

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod image;
pub mod message;
mod validate;
pub mod webhook;

#[cfg(feature = "client")]
pub use client::*;
#[cfg(feature = "client")]
pub(crate) use image::image_size;
pub use validate::{ValidationError, Validator, Violation};
