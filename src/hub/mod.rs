//! The webhook hub: run beside the shop's other LINE tools (feature `client`).
//!
//! LINE allows one webhook URL per channel. The hub takes it: enishi receives LINE's webhook
//! once, verifies and de-duplicates it, handles what it should, and forwards the body to the
//! shop's other tools ([`Destination`]s), each through its own persistent queue
//! ([`HubQueue`]: memory, SQLite, PostgreSQL), so a tool that is down loses nothing.
//!
//! - **Signatures.** A destination of the same channel gets LINE's body and LINE's own
//!   `x-line-signature` unchanged. A destination with its own secret
//!   ([`Destination::secret`]) gets the body signed with that secret. A body the hub had to
//!   cut (a filter dropped events, or events of several users were split) is re-signed with
//!   the destination's secret, or the channel's.
//! - **Filters.** [`Destination::events`] forwards only the listed event types (`message`,
//!   `follow`, `postback`, ...): the body then carries only the matching events.
//! - **Order.** Events are queued per LINE user (or group, room). A destination gets one
//!   user's events in LINE's order; a failing event holds back that user's later events for
//!   that destination only.
//! - **Retry.** Each destination has its own [`Backoff`] (exponential with jitter by default)
//!   and attempt limit; past it the body goes to the dead-letter list
//!   ([`HubQueue::dead_letters`], [`HubQueue::requeue_dead`]).
//! - **Delivery.** At least once, exactly once unless the hub crashes between a destination's
//!   answer and recording it: the resend then carries the same `x-enishi-delivery-id` and
//!   LINE's `webhookEventId`s, which LINE already asks every webhook receiver to de-duplicate.
//! - **Replies.** [`ReplyRules`] say which tool answers which events, so two tools never reply
//!   to the same message: [`ReplyRules::guard`] keeps enishi's own handler away from events
//!   another tool owns.
//! - **Metrics** (`metrics` facade, label `destination`): `enishi_hub_forwarded_total`,
//!   `enishi_hub_retried_total`, `enishi_hub_dead_lettered_total`, and the histogram
//!   `enishi_hub_lag_seconds` (queueing to delivery).
//!
//! See `docs/coexistence.md`.

mod forward;
mod queue;
mod reply;
#[cfg(feature = "axum")]
mod service;
mod worker;

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;

pub use forward::{DELIVERY_ID_HEADER, Destination, Hub, HubBuilder, HubError};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use queue::PostgresHubQueue;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use queue::SqliteHubQueue;
pub use queue::{DeadLetter, HubQueue, MemoryHubQueue, NewItem, QueueError, QueuedItem};
pub use reply::{ENISHI, ReplyRule, ReplyRules};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use service::HubService;
pub use worker::HubWorker;

#[doc(no_inline)]
pub use crate::retry::Backoff;
