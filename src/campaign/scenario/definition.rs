//! Scenario definitions: the serde form (JSON always, TOML with the `toml` feature), and their
//! validation into a [`ScenarioSet`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveTime};
use serde::{Deserialize, Serialize};

use super::error::ScenarioError;
use super::step::{Delay, parse_time_of_day};
use super::trigger::{COMMON_VARIABLES, Trigger};
use crate::CampaignId;
use crate::campaign::{ChannelKind, Purpose, TextTemplate};
use crate::segment::{Context, SegmentDefinition};

/// How a step competes for the frequency cap, and what happens when the cap is full.
///
/// Within one tick, a customer's due steps are offered to the cap highest priority first.
/// A capped `high` step is deferred until the cap frees (it is tried again on every tick); a
/// capped `normal` step is deferred for at most its `max_defer` (default 24 h) after it fell
/// due and then skipped; a capped `low` step is skipped at once.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Priority {
    /// Skipped when capped.
    Low,
    /// Deferred for up to `max_defer` when capped.
    #[default]
    Normal,
    /// Deferred until the cap frees.
    High,
}

/// A condition that ends a scenario's occurrence for a customer for good (no later steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ExitDef {
    /// An order (containing one of `products`, if given) was placed after the anchor.
    Ordered {
        /// Only orders containing one of these products.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        products: Vec<String>,
    },
    /// The customer matches a segment (DSL).
    Segment {
        /// The segment.
        segment: String,
    },
}

/// One step: when, under which condition, which message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// The step's name, used in batch IDs (`[A-Za-z0-9_-]`, unique in the scenario).
    pub name: String,
    /// Offset from the trigger's anchor (`3h`, `7d`, `-5d`).
    pub delay: Delay,
    /// Local time of day (`HH:MM`): the step is due at that time on the local day `delay`
    /// whole days after the anchor's day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// A segment (DSL) the customer must match when the step falls due; otherwise the step is
    /// skipped (later steps still run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The message template (`{{ variable }}` or `{{ variable | default }}` placeholders, as
    /// in campaign templates).
    pub message: String,
    /// A variable whose value picks one of `variants` (e.g. `cancel_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_by: Option<String>,
    /// Templates by the value of `variant_by`; `message` is the fallback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, String>,
    /// For `normal` priority: how long after falling due a capped step may wait (default
    /// `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_defer: Option<Delay>,
    /// Channels beyond LINE push: with them the step also reaches customers who blocked the
    /// account or never linked it (by e-mail, SMS or, transactional only, LINE notification
    /// messages), routed by `enishi::channel`. Without them the step is LINE push only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<StepChannels>,
}

/// A step's channel routing (see `docs/channels.md`): its purpose, the channel order, the
/// unclicked-LINE rule and the content for e-mail and SMS. The step's `message` is the LINE
/// message, the notification message and the e-mail's text.
///
/// ```toml
/// channels = { purpose = "marketing", email_subject = "{{ name }}さんへ", sms = "...",
///              email_after_unclicked = { messages = 3, days = 30 } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StepChannels {
    /// `marketing` (default: consent needed for e-mail and SMS, never PNP) or `transactional`.
    #[serde(default = "marketing")]
    pub purpose: Purpose,
    /// The channels in the order tried; empty: the purpose's default order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<ChannelKind>,
    /// "No tracked click on the last `messages` LINE messages within `days` days → e-mail".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_after_unclicked: Option<Unclicked>,
    /// The e-mail subject (a template); without it the step sends no e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    /// The SMS text (a template); without it the step sends no SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
}

fn marketing() -> Purpose {
    Purpose::Marketing
}

impl StepChannels {
    /// Routing for `purpose` with its default order and no e-mail or SMS content yet.
    #[must_use]
    pub fn new(purpose: Purpose) -> Self {
        Self {
            purpose,
            order: Vec::new(),
            email_after_unclicked: None,
            email_subject: None,
            sms: None,
        }
    }

    /// Sets the channel order.
    #[must_use]
    pub fn order(mut self, order: Vec<ChannelKind>) -> Self {
        self.order = order;
        self
    }

    /// "No click on the last `messages` LINE messages within `days` days → e-mail".
    #[must_use]
    pub fn email_after_unclicked(mut self, messages: u32, days: u32) -> Self {
        self.email_after_unclicked = Some(Unclicked { messages, days });
        self
    }

    /// Lets the step go by e-mail with this subject template.
    #[must_use]
    pub fn email_subject(mut self, subject: impl Into<String>) -> Self {
        self.email_subject = Some(subject.into());
        self
    }

    /// Lets the step go by SMS with this text template.
    #[must_use]
    pub fn sms(mut self, text: impl Into<String>) -> Self {
        self.sms = Some(text.into());
        self
    }
}

/// The unclicked-LINE rule of [`StepChannels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unclicked {
    /// The last this many LINE messages (at least 1).
    pub messages: u32,
    /// Within this many days (at least 1).
    pub days: u32,
}

impl StepDef {
    /// A step sending `message` `delay` after the anchor.
    #[must_use]
    pub fn new(name: impl Into<String>, delay: Delay, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            delay,
            at: None,
            condition: None,
            message: message.into(),
            variant_by: None,
            variants: BTreeMap::new(),
            max_defer: None,
            channels: None,
        }
    }

    /// Routes the step across channels.
    #[must_use]
    pub fn channels(mut self, channels: StepChannels) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Sets the local time of day.
    #[must_use]
    pub fn at(mut self, hh_mm: impl Into<String>) -> Self {
        self.at = Some(hh_mm.into());
        self
    }

    /// Sets the condition (DSL).
    #[must_use]
    pub fn condition(mut self, dsl: impl Into<String>) -> Self {
        self.condition = Some(dsl.into());
        self
    }

    /// Adds a variant for `variant_by = value`.
    #[must_use]
    pub fn variant(
        mut self,
        by: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        self.variant_by = Some(by.into());
        self.variants.insert(value.into(), message.into());
        self
    }
}

/// A scenario as written in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDef {
    /// The name (`[A-Za-z0-9_-]`, ≤ 55 characters); the campaign ID is `scenario.<name>`.
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The catalogue use cases it covers (`UC-06`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub use_cases: Vec<String>,
    /// What starts it.
    pub trigger: Trigger,
    /// A segment (DSL) every recipient must match when a step falls due (besides being
    /// linked and following).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The steps.
    pub steps: Vec<StepDef>,
    /// Exit conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exits: Vec<ExitDef>,
    /// Priority under the frequency cap.
    #[serde(default)]
    pub priority: Priority,
}

impl ScenarioDef {
    /// A scenario with no steps, exits or audience yet.
    #[must_use]
    pub fn new(name: impl Into<String>, trigger: Trigger) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            use_cases: Vec::new(),
            trigger,
            audience: None,
            steps: Vec::new(),
            exits: Vec::new(),
            priority: Priority::Normal,
        }
    }

    /// Sets the description and use cases.
    #[must_use]
    pub fn describe(mut self, description: impl Into<String>, use_cases: &[&str]) -> Self {
        self.description = description.into();
        self.use_cases = use_cases.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Adds a step.
    #[must_use]
    pub fn step(mut self, step: StepDef) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds an exit.
    #[must_use]
    pub fn exit(mut self, exit: ExitDef) -> Self {
        self.exits.push(exit);
        self
    }

    /// Sets the audience (DSL).
    #[must_use]
    pub fn audience(mut self, dsl: impl Into<String>) -> Self {
        self.audience = Some(dsl.into());
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// A definitions file: named segments the conditions may refer to, and scenarios.
///
/// ```toml
/// [segments]
/// loyal = "orders last 365d sum >= 50000"
///
/// [[scenario]]
/// name = "cart_abandon"
/// trigger = { type = "cart_abandoned" }
/// steps = [ { name = "3h", delay = "3h", message = "{{ name }}さん、お買い忘れはありませんか？" } ]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Named segments (DSL), usable as `segment "name"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segments: BTreeMap<String, String>,
    /// The scenarios.
    #[serde(default, alias = "scenarios")]
    pub scenario: Vec<ScenarioDef>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) delay: Delay,
    pub(crate) at: Option<NaiveTime>,
    pub(crate) condition: Option<SegmentDefinition>,
    pub(crate) template: TextTemplate,
    pub(crate) variant_by: Option<String>,
    pub(crate) variants: BTreeMap<String, TextTemplate>,
    pub(crate) max_defer: Duration,
    pub(crate) channels: Option<Channels>,
}

/// A validated [`StepChannels`].
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    pub(crate) def: StepChannels,
    pub(crate) email_subject: Option<TextTemplate>,
    pub(crate) sms: Option<TextTemplate>,
}

/// A validated exit.
#[derive(Debug, Clone)]
pub(crate) enum Exit {
    Ordered(Vec<String>),
    Segment(Box<SegmentDefinition>),
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) def: ScenarioDef,
    pub(crate) campaign: CampaignId,
    pub(crate) audience: Option<SegmentDefinition>,
    pub(crate) entry: Option<SegmentDefinition>,
    pub(crate) steps: Vec<Step>,
    pub(crate) exits: Vec<Exit>,
}

impl Scenario {
    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The campaign ID its batches carry (`scenario.<name>`).
    #[must_use]
    pub fn campaign(&self) -> &CampaignId {
        &self.campaign
    }

    /// The definition it was made from.
    #[must_use]
    pub fn definition(&self) -> &ScenarioDef {
        &self.def
    }

    /// The step names, in order.
    #[must_use]
    pub fn step_names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Validated scenarios with the named segments they refer to.
#[derive(Debug, Clone)]
pub struct ScenarioSet {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) context: Context,
}

fn slug(v: &str, max: usize) -> bool {
    (1..=max).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ScenarioSet {
    /// Validates scenarios against the named segments of `segments` (DSL text by name).
    ///
    /// # Errors
    /// [`ScenarioError`] naming the first problem: bad names, duplicates, bad delays or times,
    /// conditions that do not parse, unknown segments, template variables the trigger does
    /// not provide.
    pub fn new(
        segments: &BTreeMap<String, String>,
        scenarios: Vec<ScenarioDef>,
    ) -> Result<Self, ScenarioError> {
        let mut context = Context::new(chrono::DateTime::UNIX_EPOCH);
        define_segments(&mut context, segments)?;
        let known = if segments.is_empty() {
            "none".to_owned()
        } else {
            segments.keys().cloned().collect::<Vec<_>>().join(", ")
        };
        let mut names = BTreeSet::new();
        let mut out = Vec::with_capacity(scenarios.len());
        for def in scenarios {
            if !names.insert(def.name.clone()) {
                return Err(ScenarioError::Duplicate {
                    scenario: def.name.clone(),
                    name: def.name,
                });
            }
            out.push(compile(def, (&context, &known))?);
        }
        Ok(Self { scenarios: out, context })
    }

    /// Loads and validates a definitions file in JSON ([`ScenarioFile`]).
    ///
    /// # Errors
    /// [`ScenarioError::Json`] with the field path, then as [`ScenarioSet::new`].
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: ScenarioFile =
            serde_path_to_error::deserialize(de).map_err(ScenarioError::Json)?;
        Self::new(&file.segments, file.scenario)
    }

    /// Loads and validates a definitions file in TOML ([`ScenarioFile`]).
    ///
    /// # Errors
    /// [`ScenarioError::Toml`], then as [`ScenarioSet::new`].
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(ScenarioError::Toml)?;
        Self::new(&file.segments, file.scenario)
    }

    /// The scenarios, in definition order.
    #[must_use]
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// A scenario by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.def.name == name)
    }
}

/// Registers named segments in dependency order; a reference to an unknown name is an error.
fn define_segments(
    ctx: &mut Context,
    segments: &BTreeMap<String, String>,
) -> Result<(), ScenarioError> {
    let mut pending: Vec<(&String, SegmentDefinition)> = Vec::new();
    for (name, text) in segments {
        let def = SegmentDefinition::parse(text).map_err(|source| ScenarioError::Segment {
            scenario: "segments".to_owned(),
            place: format!("segment {name:?}"),
            source,
        })?;
        pending.push((name, def));
    }
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for (name, def) in pending {
            let ready = def.condition().segment_refs().iter().all(|r| ctx.segment(r).is_some());
            if ready {
                ctx.define_segment(name.clone(), def).map_err(|source| ScenarioError::Segment {
                    scenario: "segments".to_owned(),
                    place: format!("segment {name:?}"),
                    source,
                })?;
            } else {
                rest.push((name, def));
            }
        }
        if rest.len() == before {
            let (name, def) = &rest[0];
            let missing = def
                .condition()
                .segment_refs()
                .into_iter()
                .find(|r| ctx.segment(r).is_none() && !segments.contains_key(*r));
            return Err(match missing {
                Some(m) => ScenarioError::UnknownSegment {
                    scenario: "segments".to_owned(),
                    place: format!("segment {name:?}"),
                    segment: m.to_owned(),
                    known: segments.keys().cloned().collect::<Vec<_>>().join(", "),
                },
                None => ScenarioError::Invalid {
                    scenario: "segments".to_owned(),
                    what: "segment references",
                    reason: format!("segment {name:?} is part of a reference cycle"),
                },
            });
        }
        pending = rest;
    }
    Ok(())
}

fn condition(
    (ctx, known): (&Context, &str),
    scenario: &str,
    place: String,
    text: &str,
) -> Result<SegmentDefinition, ScenarioError> {
    let def = SegmentDefinition::parse(text).map_err(|source| ScenarioError::Segment {
        scenario: scenario.to_owned(),
        place: place.clone(),
        source,
    })?;
    if let Some(r) = def.condition().segment_refs().into_iter().find(|r| ctx.segment(r).is_none()) {
        return Err(ScenarioError::UnknownSegment {
            scenario: scenario.to_owned(),
            place,
            segment: r.to_owned(),
            known: known.to_owned(),
        });
    }
    Ok(def)
}

/// Validates one definition into a scenario: its name, trigger, audience, steps and exits,
/// each checked in that order so the first error reported is the first in the file.
fn compile(def: ScenarioDef, ctx: (&Context, &str)) -> Result<Scenario, ScenarioError> {
    let campaign = campaign_id(&def.name)?;
    if def.steps.is_empty() {
        return Err(ScenarioError::NoSteps { scenario: def.name });
    }
    let entry = trigger_entry(&def, ctx)?;
    check_friends_only(&def)?;
    let audience = def
        .audience
        .as_deref()
        .map(|a| condition(ctx, &def.name, "audience".to_owned(), a))
        .transpose()?;
    let steps = StepCompiler::new(&def, ctx).compile_all(&def.steps)?;
    let exits = def
        .exits
        .iter()
        .enumerate()
        .map(|(i, e)| compile_exit(ctx, &def.name, i, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Scenario { def, campaign, audience, entry, steps, exits })
}

/// The scenario's campaign ID, `scenario.<name>`, from a valid name.
fn campaign_id(name: &str) -> Result<CampaignId, ScenarioError> {
    let bad = |reason| ScenarioError::BadName {
        scenario: name.to_owned(),
        name: name.to_owned(),
        reason,
    };
    if !slug(name, 55) {
        return Err(bad("expected 1 to 55 characters of [A-Za-z0-9_-]"));
    }
    CampaignId::new(format!("scenario.{name}")).map_err(|_| bad("not a campaign ID"))
}

fn invalid(name: &str, what: &'static str, reason: &str) -> ScenarioError {
    ScenarioError::Invalid { scenario: name.to_owned(), what, reason: reason.to_owned() }
}

/// Checks the trigger's own settings; for a segment entry, compiles its segment.
fn trigger_entry(
    def: &ScenarioDef,
    ctx: (&Context, &str),
) -> Result<Option<SegmentDefinition>, ScenarioError> {
    let name = &def.name;
    match &def.trigger {
        Trigger::SegmentEntry { segment } => {
            Ok(Some(condition(ctx, name, "trigger segment".to_owned(), segment)?))
        }
        Trigger::NextRank { ranks, within, .. } if ranks.is_empty() || *within <= 0 => {
            Err(invalid(name, "next_rank", "needs at least one rank and within > 0"))
        }
        Trigger::SubscriptionMilestone { months, .. }
            if months.is_empty() || months.contains(&0) =>
        {
            Err(invalid(name, "subscription_milestone", "months must be ≥ 1"))
        }
        Trigger::Date { at } if at.is_empty() => {
            Err(invalid(name, "date", "needs at least one instant"))
        }
        _ => Ok(None),
    }
}

/// `followed_unlinked` reaches friends who have no customer facts: no condition can apply.
fn check_friends_only(def: &ScenarioDef) -> Result<(), ScenarioError> {
    let friends_only = matches!(def.trigger, Trigger::FollowedUnlinked);
    if friends_only && (def.audience.is_some() || def.steps.iter().any(|s| s.condition.is_some())) {
        return Err(invalid(
            &def.name,
            "condition",
            "followed_unlinked reaches LINE friends who are not customers yet: segment \
             conditions have no facts to test",
        ));
    }
    Ok(())
}

fn compile_exit(
    ctx: (&Context, &str),
    scenario: &str,
    i: usize,
    exit: &ExitDef,
) -> Result<Exit, ScenarioError> {
    Ok(match exit {
        ExitDef::Ordered { products } => Exit::Ordered(products.clone()),
        ExitDef::Segment { segment } => {
            Exit::Segment(Box::new(condition(ctx, scenario, format!("exit {}", i + 1), segment)?))
        }
    })
}

/// Compiles the steps of one scenario against the variables its trigger offers.
struct StepCompiler<'a> {
    ctx: (&'a Context, &'a str),
    scenario: &'a str,
    trigger: &'a Trigger,
    /// Template variables in scope: the common ones and the trigger's.
    available: Vec<&'static str>,
}

impl<'a> StepCompiler<'a> {
    fn new(def: &'a ScenarioDef, ctx: (&'a Context, &'a str)) -> Self {
        let mut available: Vec<&str> = COMMON_VARIABLES.to_vec();
        available.extend_from_slice(def.trigger.variables());
        Self { ctx, scenario: &def.name, trigger: &def.trigger, available }
    }

    fn compile_all(&self, defs: &[StepDef]) -> Result<Vec<Step>, ScenarioError> {
        let mut names = BTreeSet::new();
        let mut steps = Vec::with_capacity(defs.len());
        for s in defs {
            if !slug(&s.name, 40) {
                return Err(ScenarioError::BadName {
                    scenario: self.scenario.to_owned(),
                    name: s.name.clone(),
                    reason: "a step name is 1 to 40 characters of [A-Za-z0-9_-]",
                });
            }
            if !names.insert(s.name.as_str()) {
                return Err(ScenarioError::Duplicate {
                    scenario: self.scenario.to_owned(),
                    name: s.name.clone(),
                });
            }
            steps.push(self.step(s)?);
        }
        Ok(steps)
    }

    fn step(&self, s: &StepDef) -> Result<Step, ScenarioError> {
        let (at, max_defer) = self.timing(s)?;
        let condition = s
            .condition
            .as_deref()
            .map(|c| condition(self.ctx, self.scenario, format!("step {:?} condition", s.name), c))
            .transpose()?;
        let template = self.template(s, &s.message)?;
        let variants = s
            .variants
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.template(s, v)?)))
            .collect::<Result<BTreeMap<_, _>, ScenarioError>>()?;
        if let Some(by) = &s.variant_by
            && !self.in_scope(by)
        {
            return Err(self.missing(s, by.clone()));
        }
        let channels = s.channels.as_ref().map(|c| self.channels(s, c)).transpose()?;
        Ok(Step {
            channels,
            name: s.name.clone(),
            delay: s.delay,
            at,
            condition,
            template,
            variant_by: s.variant_by.clone(),
            variants,
            max_defer,
        })
    }

    /// The step's local time of day (only with a whole-day delay) and how long the cap may
    /// defer it (24 h unless set).
    fn timing(&self, s: &StepDef) -> Result<(Option<NaiveTime>, Duration), ScenarioError> {
        let bad_delay = |value: String, reason: String| ScenarioError::BadDelay {
            scenario: self.scenario.to_owned(),
            step: s.name.clone(),
            value,
            reason,
        };
        let at = match &s.at {
            Some(text) => {
                let t = parse_time_of_day(text).map_err(|r| bad_delay(text.clone(), r))?;
                if s.delay.whole_days().is_none() {
                    return Err(bad_delay(
                        s.delay.to_string(),
                        "with a time of day (`at`) the delay must be whole days".into(),
                    ));
                }
                Some(t)
            }
            None => None,
        };
        let max_defer = s.max_defer.map_or(Duration::hours(24), |d| Duration::seconds(d.as_secs()));
        if max_defer < Duration::zero() {
            return Err(bad_delay(
                s.max_defer.map(|d| d.to_string()).unwrap_or_default(),
                "max_defer cannot be negative".into(),
            ));
        }
        Ok((at, max_defer))
    }

    /// The step's channels: a sensible rule, templates whose variables are in scope.
    fn channels(&self, s: &StepDef, c: &StepChannels) -> Result<Channels, ScenarioError> {
        let bad = |reason: &str| {
            invalid(self.scenario, "channels", &format!("step {:?}: {reason}", s.name))
        };
        if matches!(self.trigger, Trigger::FollowedUnlinked) {
            return Err(bad("followed_unlinked reaches LINE friends only: no other channel"));
        }
        if c.email_after_unclicked.is_some_and(|u| u.messages == 0 || u.days == 0) {
            return Err(bad("email_after_unclicked needs messages and days of at least 1"));
        }
        if c.purpose == Purpose::Marketing && c.order.contains(&ChannelKind::Pnp) {
            return Err(bad("LINE notification messages (pnp) are for transactional steps only"));
        }
        let template = |t: &Option<String>| t.as_deref().map(|t| self.template(s, t)).transpose();
        Ok(Channels {
            def: c.clone(),
            email_subject: template(&c.email_subject)?,
            sms: template(&c.sms)?,
        })
    }

    /// A message template whose variables are all in scope.
    fn template(&self, s: &StepDef, text: &str) -> Result<TextTemplate, ScenarioError> {
        let t = TextTemplate::parse(text).map_err(|source| ScenarioError::Template {
            scenario: self.scenario.to_owned(),
            step: s.name.clone(),
            source,
        })?;
        if let Some(v) = t.variables().find(|v| !self.in_scope(v)) {
            return Err(self.missing(s, v.to_owned()));
        }
        Ok(t)
    }

    /// A trigger or common variable, or any customer attribute.
    fn in_scope(&self, variable: &str) -> bool {
        self.available.contains(&variable) || variable.starts_with("attr.")
    }

    fn missing(&self, s: &StepDef, variable: String) -> ScenarioError {
        ScenarioError::MissingVariable {
            scenario: self.scenario.to_owned(),
            step: s.name.clone(),
            variable,
            trigger: self.trigger.kind(),
            available: self.available.join(", "),
        }
    }
}
