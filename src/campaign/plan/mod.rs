//! Campaign planning: who gets which message when, as [`Batch`](super::Batch)es, without I/O.

mod policy;
mod split;
mod template;

pub use policy::{DeliveryPolicy, FrequencyCap, Holdout, QuietHours, SendHistory};
pub use split::{arm_index, bucket, salted_hash};
pub use template::{MessageTemplate, RenderError, TemplateError, TextTemplate, Vars};
