//! Sending a campaign: the dispatcher, its control handle, progress and the final report.
//!
//! See `docs/delivery.md` for the guarantees (exactly once per recipient, across crashes and
//! workers) and how to run several workers.

mod classify;
mod control;
mod dispatcher;
mod progress;
mod report;
mod step;

pub use control::CampaignControl;
pub use dispatcher::{DispatchError, Dispatcher, DispatcherBuilder};
pub use progress::Progress;
pub use report::{DeliveryReport, FailedBatch, RunStats, RunStatus};
