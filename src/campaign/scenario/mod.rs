//! Step scenarios: a trigger, timed steps with conditions and templates, and exits.
//!
//! See `docs/scenarios.md`. The core is pure (no I/O): the host feeds a [`ScenarioState`] with
//! facts ([`ScenarioInput`]), calls [`ScenarioState::tick`] at (or after) each
//! [`Tick::next_wake`], and enqueues the returned batches into the delivery journal, whose
//! insert-if-absent `enqueue` makes a repeated or concurrent tick harmless.

mod catalogue;
mod definition;
mod error;
mod state;
mod step;
mod tick;
mod trigger;

pub use catalogue::{CatalogueParams, catalogue, catalogue_set};
pub use definition::{
    ExitDef, Priority, Scenario, ScenarioDef, ScenarioFile, ScenarioSet, StepChannels, StepDef,
    Unclicked,
};
pub use error::ScenarioError;
pub use state::{
    CustomerState, Friend, ProductChange, ProductEvent, ScenarioInput, ScenarioState,
    UnknownCustomer,
};
pub use step::Delay;
pub use tick::{
    MAX_LATE, Outcome, RoutedSend, ScenarioEvent, SendPolicy, SkipReason, Tick, Unrestricted,
};
pub use trigger::{COMMON_VARIABLES, Rank, SavedSource, Trigger};
