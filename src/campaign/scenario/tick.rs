//! The planning step: which steps are due, which exited, which the cap defers.

use std::cmp::Reverse;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::definition::{Exit, Priority, Scenario, Step, StepChannels};
use super::state::{CustomerState, Entry, Round, ScenarioState, Who};
use super::step::due_at;
use super::trigger::{
    Occurrence, Trigger, World, entry_occurrence, follow_occurrence, occurrences,
};
use crate::campaign::{
    Batch, BatchRecipient, DeliveryPolicy, SendHistory, Transport, Vars, customer_send_key,
};
use crate::line::message::Message;
use crate::segment::{Context, NextChange, matches, next_change};
use crate::{AggregationUnit, BatchId, CustomerId, LineUserId};

/// Quiet hours, the frequency cap and the holdout, as the scenarios apply them. The campaign
/// [`DeliveryPolicy`] implements it, so scenarios and campaigns share one set of rules.
///
/// `earliest` must be deterministic (a function of `due` only) so every worker computes the
/// same `not_before` for a batch.
pub trait SendPolicy: fmt::Debug + Send + Sync {
    /// The earliest instant at or after `due` a message may go out (quiet hours push it to
    /// the end of the quiet period).
    fn earliest(&self, due: DateTime<Utc>) -> DateTime<Utc>;

    /// Whether one more message to `user` at `at` stays within the cap, given every
    /// campaign's and scenario's sends.
    fn permits(&self, history: &SendHistory, user: &LineUserId, at: DateTime<Utc>) -> bool;

    /// Whether the customer is in the holdout group (never sent to, for uplift).
    fn holds_out(&self, _customer: &CustomerId) -> bool {
        false
    }
}

impl SendPolicy for DeliveryPolicy {
    fn earliest(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        self.quiet_hours.map_or(due, |q| q.defer(due))
    }

    fn permits(&self, history: &SendHistory, user: &LineUserId, at: DateTime<Utc>) -> bool {
        self.frequency_cap.is_none_or(|cap| cap.allows(history, user, at))
    }

    fn holds_out(&self, customer: &CustomerId) -> bool {
        self.holdout.as_ref().is_some_and(|h| h.contains(customer))
    }
}

/// No quiet hours, no cap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unrestricted;

impl SendPolicy for Unrestricted {
    fn earliest(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        due
    }

    fn permits(&self, _: &SendHistory, _: &LineUserId, _: DateTime<Utc>) -> bool {
        true
    }
}

/// Why a step was not sent (for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The step's condition, the scenario's audience or the trigger's own condition did not
    /// hold when the step fell due.
    Condition,
    /// The frequency cap was full (low priority, or normal past `max_defer`).
    Capped,
    /// The step was more than [`MAX_LATE`] overdue when first examined (a worker outage, a
    /// customer who became reachable long after).
    Stale,
    /// The customer is in the policy's holdout group.
    Holdout,
    /// The template could not be rendered (a variable without value or default).
    Template,
}

/// A step is skipped as stale when first examined more than this long after it fell due.
pub const MAX_LATE: Duration = Duration::days(3);

/// What happened to one step (or occurrence) of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// A batch was planned.
    Sent {
        /// Its ID.
        batch: BatchId,
        /// The LINE user.
        line_user: LineUserId,
        /// When it may go out (after quiet hours).
        not_before: DateTime<Utc>,
    },
    /// The step was skipped for good.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
    /// The occurrence exited: no later step is sent.
    Exited {
        /// The exit (`ordered`, `segment`, `left_segment`, `linked`, ...).
        reason: String,
    },
}

/// One decision of a tick, serde-able for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScenarioEvent {
    /// When the tick decided.
    pub at: DateTime<Utc>,
    /// The scenario.
    pub scenario: String,
    /// The step (none for an exit).
    pub step: Option<String>,
    /// The customer (`line:<user>` for an unlinked friend).
    pub customer: CustomerId,
    /// The occurrence key.
    pub occurrence: String,
    /// What happened.
    pub outcome: Outcome,
}

/// A step with [`channels`](super::StepDef::channels) due for one customer: routed across
/// channels by `enishi::channel` (`ChannelPlanner::plan_scenario`), which writes one batch
/// under [`batch`](Self::batch)'s ID on whichever channel carries it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RoutedSend {
    /// The step's message as a LINE push batch: its ID, campaign, recipient (the customer and
    /// the key their sends are counted under), rendered text and earliest send time.
    pub batch: Batch,
    /// The step's routing.
    pub channels: StepChannels,
    /// The rendered e-mail subject, if the step may go by e-mail (the text is the message).
    pub email_subject: Option<String>,
    /// The rendered SMS text, if the step may go by SMS.
    pub sms: Option<String>,
}

impl RoutedSend {
    /// The rendered step message.
    #[must_use]
    pub fn text(&self) -> &str {
        match self.batch.messages.first() {
            Some(Message::Text(t)) => &t.text,
            _ => "",
        }
    }
}

/// The result of a tick.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Tick {
    /// Push batches to enqueue (one recipient each, rendered for them).
    pub batches: Vec<Batch>,
    /// Steps with channels, to route with `enishi::channel` (never in `batches`).
    pub routed: Vec<RoutedSend>,
    /// Every decision taken.
    pub events: Vec<ScenarioEvent>,
    /// When to tick next at the latest (`None`: only new input can make anything due).
    pub next_wake: Option<DateTime<Utc>>,
    /// Batch IDs that could not be formed (a customer ID too long for a batch ID).
    pub invalid: Vec<String>,
}

/// Where the planner is: scenario, recipient, instant.
struct Here<'a> {
    si: usize,
    who: &'a Who,
    /// Linked and following: LINE-only steps apply.
    line_reachable: bool,
    rcpt: &'a CustomerId,
    customer: Option<&'a CustomerState>,
    now: DateTime<Utc>,
    ctx: &'a Context,
}

struct Candidate {
    priority: Priority,
    due: DateTime<Utc>,
    scenario: usize,
    step: usize,
    id: String,
    occurrence: String,
    text: String,
    /// The rendered e-mail subject and SMS text of a step with channels.
    routed: Option<(Option<String>, Option<String>)>,
}

/// The recipient's customer ID: the customer, or `line:<user>` for an unlinked friend.
fn who_id(who: &Who) -> Option<CustomerId> {
    match who {
        Who::Customer(c) => Some(c.clone()),
        Who::Friend(u) => CustomerId::new(format!("line:{u}")).ok(),
    }
}

/// The template variables of one send: the occurrence's, `customer_id`, `name` and
/// `attr.<name>` for every attribute.
fn vars_of(occ: &Occurrence, customer: Option<&CustomerState>, rcpt: &CustomerId) -> Vars {
    let mut vars = Vars::new().with("customer_id", rcpt).with("name", "お客様");
    if let Some(c) = customer {
        for (k, v) in &c.facts.attributes {
            vars.insert(format!("attr.{k}"), attr_text(v));
        }
        if let Some(name) = c.facts.attributes.get("name") {
            vars.insert("name", attr_text(name));
        }
    }
    for (k, v) in &occ.vars {
        vars.insert(k, v.as_str());
    }
    vars
}

fn attr_text(v: &crate::segment::AttrValue) -> String {
    use crate::segment::AttrValue;
    match v {
        AttrValue::Text(s) => s.clone(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Time(t) => t.to_rfc3339(),
        AttrValue::List(l) => l.join("、"),
    }
}

fn render(step: &Step, vars: &Vars) -> Option<String> {
    let template = step
        .variant_by
        .as_deref()
        .and_then(|by| vars.get(by))
        .and_then(|v| step.variants.get(v))
        .unwrap_or(&step.template);
    template.render(vars).ok()
}

impl ScenarioState {
    /// Plans every step due at `now`: returns push batches (insert them with the journal's
    /// `enqueue`), the decisions taken, and when to tick next.
    ///
    /// Only customers whose wake-up time has come (or whose facts changed) are examined. For
    /// each occurrence of each scenario's trigger, a step is due at `anchor + delay` (or at
    /// its local time of day), moved past quiet hours by the policy. When due: an exit that
    /// holds ends the occurrence; otherwise the audience and step condition are tested, then
    /// the frequency cap (highest priority first). A step decided once (sent or skipped) is
    /// never offered again by this state; a late tick sends every step that fell due since.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Tick {
        let mut out = Tick::default();
        let ctx = self.scenarios().context.at(now);
        for who in self.due(now) {
            let next = self.round().examine(&who, now, &ctx, &mut out);
            self.wake_at(who, next);
        }
        out.next_wake = self.next_wake();
        out
    }
}

impl Round<'_> {
    /// The key `who`'s sends are counted under, their state, and whether LINE reaches them
    /// (linked and following); `None` when no step can reach them now (woken again by a link
    /// or follow).
    fn recipient(&self, who: &Who) -> Option<(LineUserId, Option<CustomerState>, bool)> {
        match who {
            Who::Customer(id) => {
                let c = self.customer(id)?;
                let reachable = c.reachable();
                if !reachable && !self.has_channel_steps() {
                    return None;
                }
                // A customer without a LINE user is counted under their customer key (as
                // `enishi::channel` journals them), so the cap spans every channel.
                let key = c.line_user.clone().unwrap_or_else(|| customer_send_key(id));
                Some((key, Some(c.clone()), reachable))
            }
            Who::Friend(u) => {
                let f = self.friend(u)?;
                f.following.then(|| (u.clone(), None, true))
            }
        }
    }

    /// Examines one customer or friend; returns their next wake-up.
    fn examine(
        &mut self,
        who: &Who,
        now: DateTime<Utc>,
        ctx: &Context,
        out: &mut Tick,
    ) -> Option<DateTime<Utc>> {
        let (line_user, customer, line_reachable) = self.recipient(who)?;
        let rcpt = who_id(who)?;
        let mut next: Option<DateTime<Utc>> = None;
        let mut wake = |t: DateTime<Utc>| next = Some(next.map_or(t, |n: DateTime<Utc>| n.min(t)));
        // Facts dated after `now` have not happened yet; wake when the first of them does.
        if let Some(t) = customer.as_ref().and_then(|c| first_fact_after(c, now)) {
            wake(t);
        }
        let mut cands = Vec::new();
        for (si, sc) in self.scenarios().iter().enumerate() {
            let occs: Vec<Occurrence> = match (&sc.def.trigger, who, &customer) {
                (Trigger::FollowedUnlinked, Who::Friend(u), None) => {
                    let Some(f) = self.friend(u) else { continue };
                    let mut o = follow_occurrence(f.followed_at);
                    if f.linked {
                        o.exit = Some("linked");
                    }
                    vec![o]
                }
                (Trigger::FollowedUnlinked, ..) | (_, Who::Friend(_), _) => continue,
                (Trigger::SegmentEntry { .. }, Who::Customer(id), Some(c)) => {
                    let Some(def) = sc.entry.clone() else { continue };
                    self.segment_entry(si, id, c, &def, ctx, &mut wake)
                }
                (_, _, Some(c)) => {
                    let world = World { tz: ctx.tz(), product_events: self.product_events() };
                    occurrences(&sc.def.trigger, c, &world, now)
                }
                _ => continue,
            };
            for occ in occs {
                let at = Here {
                    si,
                    who,
                    line_reachable,
                    rcpt: &rcpt,
                    customer: customer.as_ref(),
                    now,
                    ctx,
                };
                self.plan_occurrence(&at, &occ, out, &mut cands, &mut wake);
            }
        }
        // The frequency cap, highest priority first, then earliest due.
        cands.sort_by_key(|c| (Reverse(c.priority), c.due, c.scenario, c.step));
        for c in cands {
            let sc = &self.scenarios()[c.scenario];
            let step = &sc.steps[c.step];
            let event = |outcome| ScenarioEvent {
                at: now,
                scenario: sc.def.name.clone(),
                step: Some(step.name.clone()),
                customer: rcpt.clone(),
                occurrence: c.occurrence.clone(),
                outcome,
            };
            // A deferred step waiting into the quiet hours waits for their end.
            let quiet_until = self.policy().earliest(now);
            if quiet_until > now && c.due < now {
                wake(quiet_until);
            } else if self.policy().permits(self.memory.sends(), &line_user, now) {
                let Ok(id) = BatchId::new(c.id.clone()) else {
                    out.invalid.push(c.id);
                    continue;
                };
                let mut batch = Batch::new(
                    id.clone(),
                    sc.campaign.clone(),
                    Transport::Push,
                    vec![BatchRecipient { customer: rcpt.clone(), line_user: line_user.clone() }],
                    vec![Message::text(c.text)],
                    c.due,
                );
                if let Ok(unit) = AggregationUnit::new(&sc.def.name) {
                    batch = batch.with_aggregation_unit(unit);
                }
                out.events.push(event(Outcome::Sent {
                    batch: id,
                    line_user: line_user.clone(),
                    not_before: c.due,
                }));
                match (c.routed, &step.channels) {
                    (Some((email_subject, sms)), Some(ch)) => out.routed.push(RoutedSend {
                        batch,
                        channels: ch.def.clone(),
                        email_subject,
                        sms,
                    }),
                    _ => out.batches.push(batch),
                }
                self.memory.sent(c.id, &line_user, now.max(c.due));
            } else if c.priority == Priority::Low
                || (c.priority == Priority::Normal && now > c.due + step.max_defer)
            {
                out.events.push(event(Outcome::Skipped { reason: SkipReason::Capped }));
                self.memory.decide(c.id);
            } else {
                // Deferred: try again on the next hourly tick.
                wake(now + Duration::hours(1));
            }
        }
        next
    }

    /// Memory of a segment-entry trigger; returns the live occurrence.
    fn segment_entry(
        &mut self,
        si: usize,
        id: &CustomerId,
        c: &CustomerState,
        def: &crate::segment::SegmentDefinition,
        ctx: &Context,
        wake: &mut impl FnMut(DateTime<Utc>),
    ) -> Vec<Occurrence> {
        let now = ctx.now();
        let member = matches(def, &c.facts, ctx).unwrap_or(false);
        let e: &mut Entry = self.memory.entry(si, id);
        if member && !e.member {
            // Entered: exactly when predicted if time alone did it, else now.
            e.entered = Some(e.predicted.filter(|p| *p <= now).unwrap_or(now));
        }
        e.member = member;
        e.predicted = None;
        match next_change(def, &c.facts, ctx) {
            Ok(NextChange::At(t)) => {
                e.predicted = Some(t);
                wake(t);
            }
            Ok(NextChange::NotBefore(t)) => wake(t),
            _ => {}
        }
        let tz = ctx.tz();
        e.entered
            .map(|t| {
                let mut o = entry_occurrence(t, tz);
                if !member {
                    o.exit = Some("left_segment");
                }
                o
            })
            .into_iter()
            .collect()
    }

    fn plan_occurrence(
        &mut self,
        here: &Here<'_>,
        occ: &Occurrence,
        out: &mut Tick,
        cands: &mut Vec<Candidate>,
        wake: &mut impl FnMut(DateTime<Utc>),
    ) {
        let Here { si, who, line_reachable, rcpt, customer, now, ctx } = *here;
        let ended_key = (si, who.clone(), occ.key.clone());
        if self.memory.has_ended(&ended_key) {
            return;
        }
        let sc: &Scenario = &self.scenarios()[si];
        let mut exit_checked = false;
        for (k, step) in sc.steps.iter().enumerate() {
            if !line_reachable && step.channels.is_none() {
                continue; // LINE only: offered once the customer links and follows
            }
            let due = self.policy().earliest(due_at(occ.anchor, step.delay, step.at, ctx.tz()));
            if due < self.active_since() {
                continue;
            }
            let id = format!("{}/{}/{}/{}", sc.def.name, step.name, rcpt, occ.key);
            if self.memory.is_decided(&id) {
                continue;
            }
            if due > now {
                wake(due);
                continue;
            }
            if !exit_checked {
                exit_checked = true;
                if let Some(reason) = exit_reason(sc, occ, customer, ctx) {
                    out.events.push(ScenarioEvent {
                        at: now,
                        scenario: sc.def.name.clone(),
                        step: None,
                        customer: rcpt.clone(),
                        occurrence: occ.key.clone(),
                        outcome: Outcome::Exited { reason },
                    });
                    self.memory.end(ended_key);
                    return;
                }
            }
            let vars = vars_of(occ, customer, rcpt);
            let mut text = render(step, &vars);
            let routed = match &step.channels {
                Some(ch) => {
                    let r = |t: &Option<crate::campaign::TextTemplate>| match t {
                        Some(t) => t.render(&vars).map(Some).map_err(|_| ()),
                        None => Ok(None),
                    };
                    match (r(&ch.email_subject), r(&ch.sms)) {
                        (Ok(e), Ok(s)) => Some((e, s)),
                        _ => {
                            text = None; // a template without value: skipped as Template
                            None
                        }
                    }
                }
                None => None,
            };
            // The condition comes before the holdout: a held-out customer counts only where the
            // step would have been sent, or the holdout group is biased for uplift.
            let skip = if now - due > MAX_LATE {
                Some(SkipReason::Stale)
            } else if !occ.holds || !conditions_hold(sc, step, customer, ctx) {
                Some(SkipReason::Condition)
            } else if self.policy().holds_out(rcpt) {
                Some(SkipReason::Holdout)
            } else if text.is_none() {
                Some(SkipReason::Template)
            } else {
                None
            };
            if let Some(reason) = skip {
                out.events.push(ScenarioEvent {
                    at: now,
                    scenario: sc.def.name.clone(),
                    step: Some(step.name.clone()),
                    customer: rcpt.clone(),
                    occurrence: occ.key.clone(),
                    outcome: Outcome::Skipped { reason },
                });
                self.memory.decide(id);
                continue;
            }
            cands.push(Candidate {
                priority: sc.def.priority,
                due,
                scenario: si,
                step: k,
                id,
                occurrence: occ.key.clone(),
                text: text.unwrap_or_default(),
                routed,
            });
        }
    }
}

/// The earliest instant after `now` at which one of the customer's dated facts happens.
fn first_fact_after(c: &CustomerState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let f = &c.facts;
    let subs = f.subscriptions.iter().flat_map(|s| [Some(s.started_at), s.canceled_at]);
    let saved = f.cart.iter().chain(&f.favourites).map(|i| Some(i.added_at));
    f.orders
        .iter()
        .map(|o| Some(o.placed_at))
        .chain(subs)
        .chain(saved)
        .chain([c.cart_updated_at, f.registered_at, f.line.linked_at])
        .flatten()
        .filter(|t| *t > now)
        .min()
}

fn exit_reason(
    sc: &Scenario,
    occ: &Occurrence,
    customer: Option<&CustomerState>,
    ctx: &Context,
) -> Option<String> {
    if let Some(r) = occ.exit {
        return Some(r.to_owned());
    }
    let c = customer?;
    let now = ctx.now();
    for e in &sc.exits {
        match e {
            Exit::Ordered(products) => {
                let hit = c.facts.orders.iter().any(|o| {
                    o.placed_at > occ.anchor
                        && o.placed_at <= now
                        && (products.is_empty()
                            || o.items.iter().any(|i| products.contains(&i.product)))
                });
                if hit {
                    return Some("ordered".to_owned());
                }
            }
            Exit::Segment(def) => {
                if matches(def, &c.facts, ctx).unwrap_or(false) {
                    return Some("segment".to_owned());
                }
            }
        }
    }
    None
}

fn conditions_hold(
    sc: &Scenario,
    step: &Step,
    customer: Option<&CustomerState>,
    ctx: &Context,
) -> bool {
    let Some(c) = customer else { return true };
    [&sc.audience, &step.condition]
        .into_iter()
        .flatten()
        .all(|def| matches(def, &c.facts, ctx).unwrap_or(false))
}
