//! Campaign planning: who gets which message when, as [`Batch`](super::Batch)es, without I/O.
//!
//! Recipients = candidates (a segment's members or an explicit list) ∩ linked ∩ following ∩
//! consenting, minus the campaign's exclusion list, the global holdout group and users at
//! their frequency cap. Sends due in quiet hours are deferred to their end. Identical content
//! goes out by multicast in chunks of 500, personalised content by push. LINE's narrowcast to
//! an uploaded audience is not used.

mod admit;
mod dry_run;
mod planner;
mod policy;
mod split;
mod template;

pub use dry_run::{ArmSummary, DryRun, Plan, Sample};
pub use planner::{
    AffectedCustomers, Arm, Campaign, Contact, ExclusionReason, MULTICAST_MAX_RECIPIENTS,
    MissingVariable, OnRenderError, PlanError, Planner,
};
pub use policy::{DeliveryPolicy, FrequencyCap, Holdout, QuietHours, SendHistory};
pub use split::{arm_index, bucket, salted_hash};
pub use template::{MessageTemplate, RenderError, TemplateError, TextTemplate, Vars};
