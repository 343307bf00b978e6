//! Campaign delivery and scenarios.

mod dispatch;
mod journal;
mod measure;
mod plan;
mod plan_pinned;
mod scenario;
