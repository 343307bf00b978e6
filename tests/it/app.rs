//! The front door: the storage handle, the `Enishi` app (sync, audience, plan, send, scenarios,
//! routes) and its service loop, against the fake LINE and fake ecforce.

mod channels;
pub(crate) mod harness;
mod observe;
#[cfg(feature = "postgres")]
mod outage;
mod plan_send;
mod richmenus;
mod service;
mod storage;
mod sync;
mod webhook;
