//! The planner: candidates + campaign + policy + history → batches and a dry-run summary.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::admit::{ADMITTED, Gate, PARALLEL_FROM, Verdicts};
use super::dry_run::{ArmSummary, DryRun, Plan, Sample};
use super::policy::{DeliveryPolicy, SendHistory};
use super::split;
use super::template::{MessageTemplate, RenderError, Vars};
use crate::campaign::{Batch, BatchRecipient, Transport};
use crate::line::ValidationError;
use crate::line::message::{Message, validate_messages};
use crate::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId, RetryKey};

/// Most recipients of one multicast request (LINE's limit).
pub const MULTICAST_MAX_RECIPIENTS: usize = 500;

mod errors;
mod layout;

pub use errors::{AffectedCustomers, ExclusionReason, MissingVariable, PlanError};
use layout::Layout;

/// One candidate recipient: a segment member or an entry of an explicit list, with what
/// decides whether (and with what) a message may reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Contact {
    /// The shop customer.
    pub customer: CustomerId,
    /// The linked LINE user, if the customer linked their account.
    pub line_user: Option<LineUserId>,
    /// The LINE user follows the official account (added it and has not blocked it).
    pub following: bool,
    /// The customer agreed to receive marketing messages.
    pub consent: bool,
    /// Personal template variables (name, rank gap, product, coupon code, ...).
    pub vars: Vars,
}

impl Contact {
    /// A customer not linked to LINE, not following, without consent: set what applies.
    #[must_use]
    pub fn new(customer: CustomerId) -> Self {
        Self { customer, line_user: None, following: false, consent: false, vars: Vars::new() }
    }

    /// A customer linked to `line_user`, following the account and consenting.
    #[must_use]
    pub fn reachable(customer: CustomerId, line_user: LineUserId) -> Self {
        Self::new(customer).linked_to(line_user).with_following(true).with_consent(true)
    }

    /// Sets the linked LINE user.
    #[must_use]
    pub fn linked_to(mut self, line_user: LineUserId) -> Self {
        self.line_user = Some(line_user);
        self
    }

    /// Sets whether the LINE user follows the account (`false`: blocked or never added).
    #[must_use]
    pub fn with_following(mut self, following: bool) -> Self {
        self.following = following;
        self
    }

    /// Sets marketing consent.
    #[must_use]
    pub fn with_consent(mut self, consent: bool) -> Self {
        self.consent = consent;
        self
    }

    /// Adds a template variable.
    #[must_use]
    pub fn with_var(mut self, name: impl AsRef<str>, value: impl fmt::Display) -> Self {
        self.vars.insert(name, value.to_string());
        self
    }

    /// Replaces the template variables.
    #[must_use]
    pub fn with_vars(mut self, vars: Vars) -> Self {
        self.vars = vars;
        self
    }
}

/// One variant of an A/B test: its share of recipients and its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    name: String,
    weight: u32,
    messages: Vec<MessageTemplate>,
}

impl Arm {
    /// Arm `name` receiving `weight / (sum of weights)` of the recipients, with 1 to 5
    /// messages.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        weight: u32,
        messages: impl IntoIterator<Item = MessageTemplate>,
    ) -> Self {
        Self { name: name.into(), weight, messages: messages.into_iter().collect() }
    }

    /// The arm's name (stored on its batches).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arm's weight.
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// What to do with a recipient whose message cannot be rendered (a variable without value or
/// default, or a result breaking LINE's limits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnRenderError {
    /// Planning fails, listing the affected customers (the default).
    #[default]
    Fail,
    /// The recipient is left out and counted under the reason.
    Exclude,
}

/// A campaign: messages (or A/B arms), schedule and options. The audience is the contacts
/// given to [`Planner::plan`] (a segment's members or an explicit list).
///
/// ```
/// use enishi::CampaignId;
/// use enishi::campaign::{Arm, Campaign, MessageTemplate};
///
/// let spring = Campaign::new(
///     CampaignId::new("spring-2026")?,
///     [MessageTemplate::text("{{ name | お客様 }}、春のセールは {{ coupon }} で10%オフ")?],
/// )
/// .with_var("coupon", "SPRING10");
///
/// let test = Campaign::ab(
///     CampaignId::new("cart-reminder-test")?,
///     [
///         Arm::new("video", 1, [MessageTemplate::text("動画で見る使い方")?]),
///         Arm::new("coupon", 1, [MessageTemplate::text("本日限定クーポン")?]),
///     ],
/// );
/// # let _ = (spring, test);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Campaign {
    id: CampaignId,
    arms: Vec<Arm>,
    ab: bool,
    send_at: Option<DateTime<Utc>>,
    vars: Vars,
    salt: Option<String>,
    on_render_error: OnRenderError,
    aggregation_unit: Option<AggregationUnit>,
    excluded: HashSet<CustomerId>,
    samples: usize,
}

impl Campaign {
    /// A campaign sending `messages` (1 to 5) to every recipient.
    #[must_use]
    pub fn new(id: CampaignId, messages: impl IntoIterator<Item = MessageTemplate>) -> Self {
        let arm = Arm::new("", 1, messages);
        Self::with_arms(id, vec![arm], false)
    }

    /// An A/B test: each recipient gets the messages of one arm, chosen by a salted hash of the
    /// customer ID (the salt is the campaign ID unless [`Campaign::with_salt`] says otherwise).
    #[must_use]
    pub fn ab(id: CampaignId, arms: impl IntoIterator<Item = Arm>) -> Self {
        Self::with_arms(id, arms.into_iter().collect(), true)
    }

    fn with_arms(id: CampaignId, arms: Vec<Arm>, ab: bool) -> Self {
        Self {
            id,
            arms,
            ab,
            send_at: None,
            vars: Vars::new(),
            salt: None,
            on_render_error: OnRenderError::Fail,
            aggregation_unit: None,
            excluded: HashSet::new(),
            samples: 3,
        }
    }

    /// Sends at `at` (or when planned, if later). Without it, sends when planned.
    #[must_use]
    pub fn send_at(mut self, at: DateTime<Utc>) -> Self {
        self.send_at = Some(at);
        self
    }

    /// A campaign-wide template variable (a coupon code, a sale's end date, ...). It fills its
    /// placeholders for every recipient, before personal variables are looked at.
    #[must_use]
    pub fn with_var(mut self, name: impl AsRef<str>, value: impl fmt::Display) -> Self {
        self.vars.insert(name, value.to_string());
        self
    }

    /// Salts the arm split: a new salt reshuffles recipients between arms.
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = Some(salt.into());
        self
    }

    /// What to do with a recipient whose message cannot be rendered.
    #[must_use]
    pub fn on_render_error(mut self, on_render_error: OnRenderError) -> Self {
        self.on_render_error = on_render_error;
        self
    }

    /// Counts opens and clicks of every batch under this aggregation unit.
    #[must_use]
    pub fn with_aggregation_unit(mut self, unit: AggregationUnit) -> Self {
        self.aggregation_unit = Some(unit);
        self
    }

    /// Leaves these customers out (a suppression list, recent complainers, ...).
    #[must_use]
    pub fn exclude(mut self, customers: impl IntoIterator<Item = CustomerId>) -> Self {
        self.excluded.extend(customers);
        self
    }

    /// How many rendered samples per arm the dry run shows (default 3).
    #[must_use]
    pub fn with_samples(mut self, samples: usize) -> Self {
        self.samples = samples;
        self
    }

    /// The campaign's ID.
    #[must_use]
    pub fn id(&self) -> &CampaignId {
        &self.id
    }

    /// The arms (one unnamed arm for a campaign without A/B test).
    #[must_use]
    pub fn arms(&self) -> &[Arm] {
        &self.arms
    }

    /// The same campaign under another ID, sending every recipient arm `arm`'s messages (the
    /// arm's name still marks its batches): an experiment's roll-out of its winner. `None`
    /// when there is no such arm.
    pub(crate) fn only_arm(&self, id: CampaignId, arm: &str) -> Option<Self> {
        let winner = self.arms.iter().find(|a| a.name == arm)?.clone();
        let mut out = self.clone();
        out.salt = Some(self.salt().to_owned());
        out.id = id;
        out.arms = vec![winner];
        out.ab = true;
        Some(out)
    }

    /// When to send: the schedule, or `now` if later.
    pub(super) fn send_at_or(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.send_at.map_or(now, |at| at.max(now))
    }

    /// Whether `customer` is on the exclusion list.
    pub(super) fn is_excluded(&self, customer: &CustomerId) -> bool {
        !self.excluded.is_empty() && self.excluded.contains(customer)
    }

    /// The salt of the arm split.
    #[must_use]
    pub fn salt(&self) -> &str {
        self.salt.as_deref().unwrap_or(self.id.as_str())
    }
}

/// Plans campaigns under a [`DeliveryPolicy`] and a [`SendHistory`]. Pure: no I/O, no clock
/// (`now` is an argument), the same inputs always give the same plan.
///
/// ```
/// use chrono::Utc;
/// use enishi::campaign::{Campaign, Contact, DeliveryPolicy, MessageTemplate, Planner, SendHistory};
/// use enishi::{CampaignId, CustomerId, LineUserId};
///
/// let contacts = vec![Contact::reachable(
///     CustomerId::new("c-1")?,
///     LineUserId::new(format!("U{}", "0".repeat(32)))?,
/// )
/// .with_var("name", "花子")];
/// let campaign = Campaign::new(
///     CampaignId::new("welcome")?,
///     [MessageTemplate::text("{{ name }}さん、ようこそ")?],
/// );
/// let policy = DeliveryPolicy::recommended();
/// let history = SendHistory::new(); // from the journal's `sends_since`
/// let plan = Planner::new(&policy).with_history(&history).plan(&campaign, &contacts, Utc::now())?;
/// println!("{}", plan.dry_run());
/// assert_eq!(plan.dry_run().recipients, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Planner<'a> {
    policy: &'a DeliveryPolicy,
    history: Option<&'a SendHistory>,
    /// Candidates from which work is split over threads (lowered by tests to check that both
    /// ways plan the same).
    parallel_from: usize,
}

impl<'a> Planner<'a> {
    /// A planner applying `policy`, without send history.
    #[must_use]
    pub fn new(policy: &'a DeliveryPolicy) -> Self {
        Self { policy, history: None, parallel_from: PARALLEL_FROM }
    }

    /// Counts these past and planned sends against the frequency cap.
    #[must_use]
    pub fn with_history(mut self, history: &'a SendHistory) -> Self {
        self.history = Some(history);
        self
    }

    /// Plans `campaign` for `contacts` (in this order: it decides batch composition, so keep
    /// it stable, e.g. sorted by customer, to re-plan identically).
    ///
    /// From 50,000 candidates on, planning uses every core: the checks and the layout on two
    /// scoped threads, a personalised campaign's batches on rayon's global pool (size it with
    /// `rayon::ThreadPoolBuilder::build_global` if the service must keep cores free). It blocks
    /// its caller for as long as it takes (about half a second for a million personalised
    /// recipients on two cores): in an async service, call it from `spawn_blocking`.
    ///
    /// Candidates are checked in the order of [`ExclusionReason::ALL`] and counted under the
    /// first reason that applies. Holdout comes before the frequency cap, so the holdout group
    /// depends on nothing but the customer ID.
    ///
    /// # Errors
    /// [`PlanError::InvalidCampaign`] for a campaign that cannot be planned;
    /// [`PlanError::MissingVariables`] / [`PlanError::InvalidMessages`] when messages cannot
    /// be rendered for some recipients and the campaign says [`OnRenderError::Fail`].
    pub fn plan(
        &self,
        campaign: &Campaign,
        contacts: &[Contact],
        now: DateTime<Utc>,
    ) -> Result<Plan, PlanError> {
        let arms = prepare_arms(campaign)?;
        let empty = SendHistory::new();
        let mut gate = Gate::new(self.policy, self.history.unwrap_or(&empty), campaign, now);
        gate.parallel_from = self.parallel_from;
        let split = ArmSplit::new(campaign, &arms);
        let mut excluded = [0u64; ExclusionReason::ALL.len()];
        let admitted = gate.admit(contacts, &|customer| split.arm_of(customer));
        for &verdict in &admitted.verdicts {
            if let Some(n) = excluded.get_mut(usize::from(verdict)) {
                *n += 1;
            }
        }
        if arms.iter().all(|a| a.statics.is_none()) {
            let (batches, layout) =
                self.plan_pushes(campaign, &arms, contacts, &admitted, &gate, &mut excluded)?;
            return Ok(layout.finish(batches, &gate, now, contacts.len() as u64, excluded));
        }
        let picks = pick(&arms, contacts, &admitted, self.parallel_from);
        drop(admitted);
        // In candidate order, decide which batch every recipient lands in (cheap, one thread),
        // then make the batches on two threads: their numbers are known by then.
        let mut layout = Layout::new(campaign, &arms, picks.len());
        let mut failures = RenderFailures::default();
        for p in picks.into_iter().flatten() {
            if let Some(reason) = layout.add(&arms, p, &mut failures)? {
                excluded[reason as usize] += 1;
            }
        }
        failures.into_result(&campaign.id)?;
        for arm in 0..arms.len() {
            layout.flush(arm, &arms);
        }
        let batches = layout.build(&arms, gate.not_before, self.parallel_from)?;
        Ok(layout.finish(batches, &gate, now, contacts.len() as u64, excluded))
    }

    /// A campaign whose every arm is personalised: every admitted contact is one push batch,
    /// numbered in candidate order. Each contact is rendered and made into its batch in one go,
    /// written straight into its place in the plan: on rayon's threads for large audiences, so
    /// the halves need no joining (a copy of every batch) and a slower thread gives work away.
    /// A contact whose messages do not render leaves a gap, recorded with its render error;
    /// the rare plan with gaps is counted (or failed), compacted and renumbered afterwards.
    fn plan_pushes<'c>(
        &self,
        campaign: &'c Campaign,
        arms: &[PreparedArm],
        contacts: &[Contact],
        admitted: &Verdicts,
        gate: &Gate<'_>,
        excluded: &mut [u64; ExclusionReason::ALL.len()],
    ) -> Result<(Vec<Batch>, Layout<'c>), PlanError> {
        use rayon::prelude::*;

        // Admitted contacts are linked: their verdicts alone say who they are.
        let order: Vec<usize> =
            (0..contacts.len()).filter(|&i| admitted.verdicts[i] == ADMITTED).collect();
        // Where a contact's messages did not render, and why: rare, so one lock will do.
        let gaps = std::sync::Mutex::new(Vec::new());
        let make = |maker: &mut BatchMaker<'_>, pos: usize, i: usize| {
            let arm = admitted.arms[i] as usize;
            push_batch(maker, arms, &contacts[i], arm, pos + 1).unwrap_or_else(|gap| {
                gaps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((pos, gap));
                maker.batch(pos + 1, &arms[arm].name, Transport::Push, Vec::new(), Vec::new())
            })
        };
        let mut batches = Vec::new();
        if order.len() < self.parallel_from {
            let mut maker = BatchMaker::new(campaign, gate.not_before);
            batches = order.iter().enumerate().map(|(pos, &i)| make(&mut maker, pos, i)).collect();
        } else {
            order
                .par_iter()
                .enumerate()
                .with_min_len(PUSH_CHUNK.min(self.parallel_from).max(1))
                .map_init(
                    || BatchMaker::new(campaign, gate.not_before),
                    |m, (pos, &i)| make(m, pos, i),
                )
                .collect_into_vec(&mut batches);
        }
        let mut gaps = gaps.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        gaps.sort_unstable_by_key(|&(pos, _)| pos);

        let mut layout = Layout::new(campaign, arms, 0);
        if let [out] = layout.arms_out.as_mut_slice() {
            out.recipients = order.len() as u64;
        } else {
            for &i in &order {
                layout.arms_out[admitted.arms[i] as usize].recipients += 1;
            }
        }
        let gap_positions: Vec<usize> = gaps.iter().map(|&(pos, _)| pos).collect();
        if let Some(&first_gap) = gap_positions.first() {
            // The reasons, in candidate order, as planning one contact after another finds them.
            let mut failures = RenderFailures::default();
            for (pos, gap) in gaps {
                let c = &contacts[order[pos]];
                let reason = match gap {
                    Gap::NotLinked => ExclusionReason::NotLinked,
                    Gap::Render(e) => excluded_for(campaign, e, &c.customer, &mut failures)?,
                };
                excluded[reason as usize] += 1;
                layout.arms_out[admitted.arms[order[pos]] as usize].recipients -= 1;
            }
            failures.into_result(&campaign.id)?;
            let mut pos = 0;
            let mut left = gap_positions.iter().peekable();
            batches.retain(|_| {
                let gap = left.next_if_eq(&&pos).is_some();
                pos += 1;
                !gap
            });
            let mut maker = BatchMaker::new(campaign, gate.not_before);
            for (k, batch) in batches.iter_mut().enumerate().skip(first_gap) {
                maker.renumber(batch, k + 1);
            }
        }
        for out in &mut layout.arms_out {
            out.batches = out.recipients;
        }
        layout.samples = push_samples(campaign, arms, &batches, &order, &gap_positions, admitted);
        Ok((batches, layout))
    }

    /// This planner, splitting work over threads from `parallel_from` candidates on.
    #[cfg(test)]
    fn parallel_from(mut self, parallel_from: usize) -> Self {
        self.parallel_from = parallel_from;
        self
    }
}

/// Assigns each customer an arm by weight, stably (a salted hash of the customer ID).
struct ArmSplit {
    hasher: split::SaltedHasher,
    weights: Vec<u32>,
    total_weight: u64,
}

impl ArmSplit {
    fn new(campaign: &Campaign, arms: &[PreparedArm]) -> Self {
        let weights: Vec<u32> = arms.iter().map(|a| a.weight).collect();
        let total_weight = weights.iter().map(|&w| u64::from(w)).sum();
        Self { hasher: split::SaltedHasher::new(campaign.salt()), weights, total_weight }
    }

    fn arm_of(&self, customer: &CustomerId) -> u32 {
        if self.weights.len() == 1 {
            return 0;
        }
        let hash = self.hasher.hash(customer.as_str());
        let arm = split::pick(&self.weights, split::scale(hash, self.total_weight)).unwrap_or(0);
        // An arm index fits in `u32`: no campaign has four billion arms.
        u32::try_from(arm).unwrap_or(0)
    }
}

/// An admitted contact: who, the arm, and for a personalised arm, the rendered messages.
struct Pick<'c> {
    customer: &'c CustomerId,
    user: &'c LineUserId,
    arm: usize,
    rendered: Option<Result<Vec<Message>, RenderError>>,
}

/// The [`Pick`] of every admitted (and so linked) contact, in contact order, in parts.
/// Rendering depends on nothing but the contact, so large audiences are picked (and rendered,
/// for personalised arms) on two threads; the parts are laid out one after the other, not
/// joined (a copy).
fn pick<'c>(
    arms: &[PreparedArm],
    contacts: &'c [Contact],
    admitted: &Verdicts,
    parallel_from: usize,
) -> [Vec<Pick<'c>>; 2] {
    let run = |from: usize, contacts: &'c [Contact]| {
        let verdicts = &admitted.verdicts[from..from + contacts.len()];
        let count = verdicts.iter().filter(|&&v| v == ADMITTED).count();
        let mut out = Vec::with_capacity(count);
        for (k, (c, _)) in
            contacts.iter().zip(verdicts).enumerate().filter(|(_, (_, v))| **v == ADMITTED)
        {
            let Some(user) = &c.line_user else { continue };
            let arm = admitted.arms[from + k] as usize;
            let rendered =
                arms[arm].statics.is_none().then(|| render(&arms[arm].templates, &c.vars));
            out.push(Pick { customer: &c.customer, user, arm, rendered });
        }
        out
    };
    if contacts.len() < parallel_from {
        return [run(0, contacts), Vec::new()];
    }
    let mid = contacts.len() / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| run(mid, &contacts[mid..]));
        let first = run(0, &contacts[..mid]);
        [first, second.join().unwrap_or_else(|e| std::panic::resume_unwind(e))]
    })
}

/// Batches per unit of work a thread takes when push batches are made in parallel.
const PUSH_CHUNK: usize = 4096;

/// Why a contact admitted to a push-only plan has no batch.
enum Gap {
    /// Not linked after all (admission admits linked contacts only).
    NotLinked,
    /// Its messages did not render.
    Render(RenderError),
}

/// The push batch number `seq` for `contact` on arm `arm`, or why it has none.
fn push_batch(
    maker: &mut BatchMaker<'_>,
    arms: &[PreparedArm],
    contact: &Contact,
    arm: usize,
    seq: usize,
) -> Result<Batch, Gap> {
    let user = contact.line_user.as_ref().ok_or(Gap::NotLinked)?;
    let messages = render(&arms[arm].templates, &contact.vars).map_err(Gap::Render)?;
    let recipient = BatchRecipient { customer: contact.customer.clone(), line_user: user.clone() };
    Ok(maker.batch(seq, &arms[arm].name, Transport::Push, vec![recipient], messages))
}

/// The first samples of each arm of a push-only plan, in candidate order: `batches` are the
/// batches of the contacts `order` lists, less those at the positions `gaps` lists.
fn push_samples(
    campaign: &Campaign,
    arms: &[PreparedArm],
    batches: &[Batch],
    order: &[usize],
    gaps: &[usize],
    admitted: &Verdicts,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut taken = vec![0usize; arms.len()];
    let mut wanted = arms.len();
    let positions = (0..order.len()).filter(|pos| gaps.binary_search(pos).is_err());
    for (batch, pos) in batches.iter().zip(positions) {
        if wanted == 0 || campaign.samples == 0 {
            break;
        }
        let arm = admitted.arms[order[pos]] as usize;
        if taken[arm] == campaign.samples {
            continue;
        }
        taken[arm] += 1;
        if taken[arm] == campaign.samples {
            wanted -= 1;
        }
        let Some(recipient) = batch.recipients.first() else { continue };
        samples.push(Sample {
            arm: campaign.ab.then(|| arms[arm].name.clone()),
            customer: recipient.customer.clone(),
            messages: batch.messages.clone(),
        });
    }
    samples
}

/// A recipient's rendered messages, or why they are left out (see [`excluded_for`]).
fn rendered_or_excluded(
    campaign: &Campaign,
    rendered: Result<Vec<Message>, RenderError>,
    customer: &CustomerId,
    failures: &mut RenderFailures,
) -> Result<Result<Vec<Message>, ExclusionReason>, PlanError> {
    match rendered {
        Ok(messages) => Ok(Ok(messages)),
        Err(e) => excluded_for(campaign, e, customer, failures).map(Err),
    }
}

/// Why a recipient whose messages did not render is left out. A recipient the campaign fails
/// on is recorded in `failures`; a template that renders to something that is not a message
/// fails planning.
fn excluded_for(
    campaign: &Campaign,
    error: RenderError,
    customer: &CustomerId,
    failures: &mut RenderFailures,
) -> Result<ExclusionReason, PlanError> {
    let fail = campaign.on_render_error == OnRenderError::Fail;
    match error {
        RenderError::MissingVariable { name } => {
            if fail {
                failures.missing(name, customer);
            }
            Ok(ExclusionReason::MissingVariable)
        }
        RenderError::Invalid(e) => {
            if fail {
                failures.invalid(e, customer);
            }
            Ok(ExclusionReason::InvalidMessage)
        }
        e => Err(PlanError::InvalidCampaign {
            campaign: campaign.id.clone(),
            reason: "a template renders to something that is not a message".to_owned(),
            source: Some(Box::new(e)),
        }),
    }
}

/// Makes a campaign's batches on one thread.
struct BatchMaker<'a> {
    campaign: &'a Campaign,
    /// Copies of the IDs every batch holds, for this thread alone: clones only count
    /// references, and two threads counting on one counter would fight over its cache line.
    id: CampaignId,
    unit: Option<AggregationUnit>,
    not_before: DateTime<Utc>,
    buf: String,
}

impl<'a> BatchMaker<'a> {
    fn new(campaign: &'a Campaign, not_before: DateTime<Utc>) -> Self {
        let shared = &campaign.id;
        let id = CampaignId::new(shared.as_str()).unwrap_or_else(|_| shared.clone());
        let unit = campaign
            .aggregation_unit
            .as_ref()
            .map(|u| AggregationUnit::new(u.as_str()).unwrap_or_else(|_| u.clone()));
        let buf = String::with_capacity(id.as_str().len() + 21);
        Self { campaign, id, unit, not_before, buf }
    }

    /// The ID of batch number `seq` (from 1).
    fn batch_id(&mut self, seq: usize) -> BatchId {
        // Fixed width: IDs sort in plan order up to 10 million batches and do not change
        // when a re-plan has a few more candidates.
        BatchId::numbered(&self.id, seq, &mut self.buf)
    }

    /// Batch number `seq` of arm `arm`.
    fn batch(
        &mut self,
        seq: usize,
        arm: &str,
        transport: Transport,
        recipients: Vec<BatchRecipient>,
        messages: Vec<Message>,
    ) -> Batch {
        let id = self.batch_id(seq);
        let mut batch =
            Batch::new(id, self.id.clone(), transport, recipients, messages, self.not_before);
        // Set in place: a batch is 200 bytes, and each builder call would move it.
        if self.campaign.ab {
            batch.arm = Some(arm.to_owned());
        }
        batch.aggregation_unit.clone_from(&self.unit);
        batch
    }

    /// Gives `batch` number `seq`: its ID and the retry key derived from it.
    fn renumber(&mut self, batch: &mut Batch, seq: usize) {
        batch.id = self.batch_id(seq);
        batch.retry_key = RetryKey::derive(batch.id.as_str());
    }
}

/// Recipients whose messages could not be rendered, when the campaign fails on them.
#[derive(Default)]
struct RenderFailures {
    missing: Vec<MissingVariable>,
    invalid: Option<(AffectedCustomers, ValidationError)>,
}

impl RenderFailures {
    fn missing(&mut self, name: String, customer: &CustomerId) {
        match self.missing.iter_mut().find(|m| m.name == name) {
            Some(m) => m.customers.add(customer),
            None => {
                let mut customers = AffectedCustomers::default();
                customers.add(customer);
                self.missing.push(MissingVariable { name, customers });
            }
        }
    }

    fn invalid(&mut self, error: ValidationError, customer: &CustomerId) {
        // The first error stands for all: they come from the same templates.
        let (customers, _) =
            self.invalid.get_or_insert_with(|| (AffectedCustomers::default(), error));
        customers.add(customer);
    }

    /// Whether any recipient failed (planning will fail).
    fn is_failing(&self) -> bool {
        !self.missing.is_empty() || self.invalid.is_some()
    }

    fn into_result(self, campaign: &CampaignId) -> Result<(), PlanError> {
        if !self.missing.is_empty() {
            return Err(PlanError::MissingVariables {
                campaign: campaign.clone(),
                missing: self.missing,
            });
        }
        if let Some((customers, source)) = self.invalid {
            return Err(PlanError::InvalidMessages {
                campaign: campaign.clone(),
                customers,
                source,
            });
        }
        Ok(())
    }
}

/// An arm ready to plan: campaign variables bound, static messages checked.
struct PreparedArm {
    name: String,
    weight: u32,
    templates: Vec<MessageTemplate>,
    /// The messages when every template is static: identical content, multicast.
    statics: Option<Vec<Message>>,
}

fn prepare_arms(campaign: &Campaign) -> Result<Vec<PreparedArm>, PlanError> {
    let id = &campaign.id;
    if campaign.arms.is_empty() {
        return Err(PlanError::invalid(id, "an A/B campaign needs at least one arm"));
    }
    if campaign.arms.iter().all(|a| a.weight == 0) {
        return Err(PlanError::invalid(id, "every arm has weight 0"));
    }
    let mut names = HashSet::new();
    campaign
        .arms
        .iter()
        .map(|arm| {
            let which = if campaign.ab { format!("arm `{}`", arm.name) } else { "the campaign".to_owned() };
            if campaign.ab && (arm.name.is_empty() || !names.insert(arm.name.as_str())) {
                return Err(PlanError::invalid(id, format!("{which}: arm names must be non-empty and distinct")));
            }
            if !(1..=crate::line::message::limits::MESSAGES_MAX).contains(&arm.messages.len()) {
                return Err(PlanError::invalid(
                    id,
                    format!("{which} has {} messages; 1 to 5 can be sent at once", arm.messages.len()),
                ));
            }
            let templates = arm
                .messages
                .iter()
                .map(|t| t.bind(&campaign.vars))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PlanError::InvalidCampaign {
                    campaign: id.clone(),
                    reason: format!("{which}: a message breaks LINE's limits once campaign variables are filled in"),
                    source: Some(Box::new(e)),
                })?;
            let statics = templates
                .iter()
                .map(|t| t.as_static().cloned())
                .collect::<Option<Vec<_>>>();
            if let Some(messages) = &statics {
                validate_messages(messages).map_err(|e| PlanError::InvalidCampaign {
                    campaign: id.clone(),
                    reason: format!("{which}: a message breaks LINE's limits"),
                    source: Some(Box::new(e)),
                })?;
            }
            Ok(PreparedArm { name: arm.name.clone(), weight: arm.weight, templates, statics })
        })
        .collect()
}

fn render(templates: &[MessageTemplate], vars: &Vars) -> Result<Vec<Message>, RenderError> {
    // Exactly as many as there are templates: collecting a `Result` iterator would reserve
    // room for four messages (a kilobyte) per recipient.
    let mut messages = Vec::with_capacity(templates.len());
    for t in templates {
        messages.push(t.render(vars)?);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests;
