//! The LINE platform: Messaging API client, message objects and their limits, webhooks.
//!
//! See `docs/line.md` for a tour.

mod validate;

pub use validate::{ValidationError, Validator, Violation};
