//! Errors of scenario definitions.

use crate::campaign::TemplateError;
use crate::segment::SegmentError;

/// A scenario definition could not be loaded or failed validation.
///
/// Every variant names the scenario (and the step, where there is one) so a marketer editing a
/// TOML file can find the line to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The JSON text did not parse (the field path is in the message).
    #[error("the scenario JSON does not fit the scenario format")]
    Json(#[source] serde_path_to_error::Error<serde_json::Error>),
    /// The TOML text did not parse.
    #[cfg(feature = "toml")]
    #[error("the scenario TOML does not fit the scenario format")]
    Toml(#[source] toml::de::Error),
    /// A scenario name cannot become a campaign ID `scenario.<name>` (1–55 characters of
    /// `[A-Za-z0-9_-]`), or a step name is not such a slug.
    #[error("scenario {scenario:?}: bad name {name:?}: {reason}")]
    BadName {
        /// The scenario.
        scenario: String,
        /// The rejected name.
        name: String,
        /// What a valid name looks like.
        reason: &'static str,
    },
    /// Two scenarios, or two steps of one scenario, share a name.
    #[error("scenario {scenario:?}: duplicate name {name:?}")]
    Duplicate {
        /// The scenario.
        scenario: String,
        /// The repeated name.
        name: String,
    },
    /// A scenario has no steps.
    #[error("scenario {scenario:?} has no steps")]
    NoSteps {
        /// The scenario.
        scenario: String,
    },
    /// A delay or time of day is malformed or does not fit the trigger.
    #[error("scenario {scenario:?}, step {step:?}: bad delay {value:?}: {reason}")]
    BadDelay {
        /// The scenario.
        scenario: String,
        /// The step.
        step: String,
        /// The rejected text.
        value: String,
        /// Why.
        reason: String,
    },
    /// A segment condition (audience, step condition, exit, segment-entry trigger) did not
    /// parse.
    #[error("scenario {scenario:?}, {place}: invalid segment condition")]
    Segment {
        /// The scenario (or `segments` for the file's named segments).
        scenario: String,
        /// Where the condition is (`audience`, `step "3h" condition`, `exit 1`, ...).
        place: String,
        /// The segment parser's error.
        #[source]
        source: SegmentError,
    },
    /// A condition refers to a named segment (`segment "loyal"`) that is neither in the file
    /// nor registered.
    #[error("scenario {scenario:?}, {place}: unknown segment {segment:?} (known: {known})")]
    UnknownSegment {
        /// The scenario.
        scenario: String,
        /// Where the reference is.
        place: String,
        /// The unknown name.
        segment: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A message template uses a variable the scenario's trigger does not provide.
    #[error(
        "scenario {scenario:?}, step {step:?}: template variable `{variable}` is missing: \
         trigger {trigger} provides {available}"
    )]
    MissingVariable {
        /// The scenario.
        scenario: String,
        /// The step.
        step: String,
        /// The variable.
        variable: String,
        /// The trigger kind.
        trigger: &'static str,
        /// The variables that exist, comma-separated.
        available: String,
    },
    /// A message template is malformed (see [`TemplateError`] for the position).
    #[error("scenario {scenario:?}, step {step:?}: invalid message template")]
    Template {
        /// The scenario.
        scenario: String,
        /// The step.
        step: String,
        /// The template compiler's error.
        #[source]
        source: TemplateError,
    },
    /// A trigger or exit parameter is out of range (no ranks, zero months, ...).
    #[error("scenario {scenario:?}: invalid {what}: {reason}")]
    Invalid {
        /// The scenario.
        scenario: String,
        /// What is invalid.
        what: &'static str,
        /// Why.
        reason: String,
    },
}
