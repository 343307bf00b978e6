//! The LINE platform: Messaging API client, message objects and their limits, webhooks.
//!
//! - The client (`LineClient`, feature `client`), its requests, responses, errors, pacing and
//!   retries are here, at `enishi::line`, with the local [`ValidationError`].
//! - [`message`]: the message objects enishi sends ([`message::Message`], ...) and LINE's
//!   limits on them ([`message::limits`]).
//! - [`webhook`]: what LINE sends: signature check, parsing (the received event and message
//!   types), de-duplication.
//!
//! See `docs/line.md` for a tour.

#[cfg(feature = "client")]
mod channels;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod image;
pub mod message;
mod validate;
pub mod webhook;

#[cfg(feature = "client")]
pub use channels::{ChannelRouteError, LineChannel, LineChannels};
#[cfg(feature = "client")]
pub use client::*;
#[cfg(feature = "client")]
pub(crate) use image::image_size;
pub use validate::{ValidationError, Validator, Violation};
