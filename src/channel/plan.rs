//! Planning a campaign step across channels: one batch per customer, on one channel, in the
//! campaign's journal, under the shop's delivery policy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::optout::OptOutStore;
use super::route::{Contacts, LineEngagement, Reach, Routing, Skip};
use super::{ChannelError, ChannelKind, Purpose};
use crate::campaign::scenario::RoutedSend;
use crate::campaign::{
    Batch, BatchFallback, BatchRecipient, DeliveryJournal, DeliveryPolicy, JournalError, SendRecord,
};
use crate::line::message::Message;
use crate::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId};

/// The subject and text of an e-mail; the HTML part is rendered from the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailContent {
    /// The subject.
    pub subject: String,
    /// The plain-text body (blank lines separate paragraphs; URLs become links in HTML).
    pub text: String,
}

impl EmailContent {
    /// An e-mail with this subject and text.
    #[must_use]
    pub fn new(subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self { subject: subject.into(), text: text.into() }
    }
}

/// One step of a campaign (or scenario) as the channels see it: purpose, routing and the
/// content for each channel (a channel without content is skipped when routing).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChannelStep {
    /// The campaign.
    pub campaign: CampaignId,
    /// The step's name (part of every batch ID: one message per customer per step).
    pub step: String,
    /// Marketing or transactional.
    pub purpose: Purpose,
    /// The channel order and the unclicked-LINE rule.
    pub routing: Routing,
    /// LINE push messages.
    pub line: Vec<Message>,
    /// LINE notification messages (default: the LINE messages).
    pub pnp: Vec<Message>,
    /// The e-mail.
    pub email: Option<EmailContent>,
    /// The SMS text.
    pub sms: Option<String>,
}

impl ChannelStep {
    /// A step with no content yet and the default routing for `purpose`.
    #[must_use]
    pub fn new(campaign: CampaignId, step: impl Into<String>, purpose: Purpose) -> Self {
        Self {
            campaign,
            step: step.into(),
            purpose,
            routing: Routing::for_purpose(purpose),
            line: Vec::new(),
            pnp: Vec::new(),
            email: None,
            sms: None,
        }
    }

    /// Sets the routing.
    #[must_use]
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Sets the LINE messages.
    #[must_use]
    pub fn line(mut self, messages: Vec<Message>) -> Self {
        self.line = messages;
        self
    }

    /// Sets the notification messages (when they differ from the LINE messages).
    #[must_use]
    pub fn pnp(mut self, messages: Vec<Message>) -> Self {
        self.pnp = messages;
        self
    }

    /// Sets the e-mail.
    #[must_use]
    pub fn email(mut self, email: EmailContent) -> Self {
        self.email = Some(email);
        self
    }

    /// Sets the SMS text.
    #[must_use]
    pub fn sms(mut self, text: impl Into<String>) -> Self {
        self.sms = Some(text.into());
        self
    }

    /// The step of a scenario send: its campaign, purpose, routing (the purpose's default
    /// order unless the step names one) and content (the message for LINE, PNP and the
    /// e-mail's text; the e-mail subject and SMS text when the step has them).
    #[must_use]
    pub fn from_routed(send: &RoutedSend) -> Self {
        let ch = &send.channels;
        let mut routing = Routing::for_purpose(ch.purpose);
        if !ch.order.is_empty() {
            routing = routing.order(ch.order.clone());
        }
        if let Some(u) = ch.email_after_unclicked {
            routing = routing.email_after_unclicked(u.messages, u.days);
        }
        let name = send.batch.id.as_str().split('/').nth(1).unwrap_or_default().to_owned();
        let mut step = Self::new(send.batch.campaign.clone(), name, ch.purpose)
            .routing(routing)
            .line(send.batch.messages.clone());
        if let Some(subject) = &send.email_subject {
            step = step.email(EmailContent::new(subject.clone(), send.text()));
        }
        if let Some(sms) = &send.sms {
            step = step.sms(sms.clone());
        }
        step
    }

    fn has_content(&self, channel: ChannelKind) -> bool {
        match channel {
            ChannelKind::Line => !self.line.is_empty(),
            ChannelKind::Pnp => !self.pnp.is_empty() || !self.line.is_empty(),
            ChannelKind::Email => self.email.is_some(),
            ChannelKind::Sms => self.sms.as_deref().is_some_and(|s| !s.is_empty()),
        }
    }

    fn messages(&self, channel: ChannelKind) -> Vec<Message> {
        match channel {
            ChannelKind::Line => self.line.clone(),
            ChannelKind::Pnp if self.pnp.is_empty() => self.line.clone(),
            ChannelKind::Pnp => self.pnp.clone(),
            ChannelKind::Email => self
                .email
                .as_ref()
                .map(|e| vec![Message::text(e.subject.clone()), Message::text(e.text.clone())])
                .unwrap_or_default(),
            ChannelKind::Sms => self.sms.iter().map(|t| Message::text(t.clone())).collect(),
        }
    }

    /// The batch ID of `customer`'s message in this step, whatever the channel.
    #[must_use]
    pub fn batch_id(&self, customer: &CustomerId) -> Option<BatchId> {
        BatchId::new(format!("{}/{}/{}/1", self.campaign, self.step, customer)).ok()
    }
}

/// Why a customer gets no message in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelExclusion {
    /// In the shop's holdout group.
    Holdout,
    /// The frequency cap is reached (counting every channel).
    FrequencyCapped,
    /// No channel can reach the customer; why each was passed over.
    Unreachable(Vec<(ChannelKind, Skip)>),
    /// Already planned in this step (on whichever channel): never twice.
    AlreadyPlanned,
}

/// The outcome of planning one step.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChannelPlan {
    /// One batch per routed customer.
    pub batches: Vec<Batch>,
    /// Which channel each routed customer got.
    pub routed: Vec<(CustomerId, ChannelKind)>,
    /// Who gets nothing, and why.
    pub excluded: Vec<(CustomerId, ChannelExclusion)>,
}

impl ChannelPlan {
    /// How many customers are routed to `channel`.
    #[must_use]
    pub fn count(&self, channel: ChannelKind) -> usize {
        self.routed.iter().filter(|(_, c)| *c == channel).count()
    }

    /// How many customers no channel can reach.
    #[must_use]
    pub fn unreachable(&self) -> usize {
        self.excluded.iter().filter(|(_, e)| matches!(e, ChannelExclusion::Unreachable(_))).count()
    }
}

/// Routes and plans campaign steps across channels into one [`DeliveryJournal`].
///
/// Every customer gets at most one batch per step (its ID does not name the channel, and the
/// journal stores an ID once); the shop's [`DeliveryPolicy`] applies across channels: the
/// frequency cap counts every channel's sends in the journal, quiet hours defer every channel,
/// the holdout gets nothing on any channel.
#[derive(Debug, Clone)]
pub struct ChannelPlanner {
    journal: Arc<dyn DeliveryJournal>,
    policy: DeliveryPolicy,
    opt_outs: Option<Arc<dyn OptOutStore>>,
    engagement: LineEngagement,
}

/// The journal key of a customer's sends: the linked LINE user, or for a customer without one
/// a stable key in LINE user ID form derived from the customer ID (never a real LINE user), so
/// the frequency cap counts every channel.
#[must_use]
pub fn journal_key(reach: &Reach) -> LineUserId {
    reach.line_user.clone().unwrap_or_else(|| customer_key(&reach.customer))
}

pub(crate) fn customer_key(customer: &CustomerId) -> LineUserId {
    crate::campaign::customer_send_key(customer)
}

/// One customer's send in one step, for [`ChannelPlanner::plan_sends`].
#[derive(Debug, Clone)]
pub(crate) struct StepSend<'a> {
    pub(crate) step: &'a ChannelStep,
    pub(crate) reach: &'a Reach,
    pub(crate) id: Option<BatchId>,
    pub(crate) not_before: DateTime<Utc>,
    /// The aggregation unit of a LINE push (a scenario's name).
    pub(crate) unit: Option<AggregationUnit>,
}

/// What one planning round knows: the batches already in the journal, every customer's
/// recent sends (for the cap), the IDs planned so far.
struct Round {
    existing: HashSet<BatchId>,
    sends: HashMap<LineUserId, Vec<DateTime<Utc>>>,
    seen: HashSet<BatchId>,
    now: DateTime<Utc>,
}

fn journal_read(e: JournalError) -> ChannelError {
    ChannelError::Transient {
        channel: ChannelKind::Line,
        message: "reading the delivery journal".into(),
        source: Some(Box::new(e)),
    }
}

impl ChannelPlanner {
    /// A planner writing to `journal` under `policy`.
    #[must_use]
    pub fn new(journal: Arc<dyn DeliveryJournal>, policy: DeliveryPolicy) -> Self {
        Self { journal, policy, opt_outs: None, engagement: LineEngagement::new() }
    }

    /// Honour these opt-outs when routing.
    #[must_use]
    pub fn opt_outs(mut self, store: Arc<dyn OptOutStore>) -> Self {
        self.opt_outs = Some(store);
        self
    }

    /// LINE sends and clicks for the unclicked-LINE rule.
    #[must_use]
    pub fn engagement(mut self, engagement: LineEngagement) -> Self {
        self.engagement = engagement;
        self
    }

    /// Plans `step` for `audience` at `now` (nothing is written).
    ///
    /// # Errors
    /// [`ChannelError`] when the journal or the opt-out store cannot be read.
    pub async fn plan(
        &self,
        step: &ChannelStep,
        audience: &[Reach],
        now: DateTime<Utc>,
    ) -> Result<ChannelPlan, ChannelError> {
        let not_before = self.policy.quiet_hours.as_ref().map_or(now, |q| q.defer(now));
        let sends: Vec<StepSend<'_>> = audience
            .iter()
            .map(|reach| StepSend {
                step,
                reach,
                id: step.batch_id(&reach.customer),
                not_before,
                unit: None,
            })
            .collect();
        self.plan_sends(&sends, now).await
    }

    /// Plans one send per item, each with its own step, batch ID and earliest time (a
    /// scenario tick's steps); the policy, de-duplication and routing are those of
    /// [`plan`](Self::plan).
    pub(crate) async fn plan_sends(
        &self,
        sends: &[StepSend<'_>],
        now: DateTime<Utc>,
    ) -> Result<ChannelPlan, ChannelError> {
        let mut campaigns: Vec<&CampaignId> = sends.iter().map(|s| &s.step.campaign).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        let mut existing: HashSet<BatchId> = HashSet::new();
        for campaign in campaigns {
            let records = self.journal.records(campaign).await.map_err(journal_read)?;
            existing.extend(records.into_iter().map(|r| r.batch.id));
        }
        let history: Vec<SendRecord> = match &self.policy.frequency_cap {
            Some(cap) => {
                self.journal.sends_since(cap.history_since(now)).await.map_err(journal_read)?
            }
            None => Vec::new(),
        };
        let mut ctx = Round { existing, sends: HashMap::new(), seen: HashSet::new(), now };
        for r in history {
            ctx.sends.entry(r.line_user).or_default().push(r.at);
        }
        let mut plan = ChannelPlan::default();
        for send in sends {
            self.plan_one(&mut ctx, send, &mut plan).await?;
        }
        Ok(plan)
    }

    /// Routes one customer of one step into `plan`.
    async fn plan_one(
        &self,
        ctx: &mut Round,
        send: &StepSend<'_>,
        plan: &mut ChannelPlan,
    ) -> Result<(), ChannelError> {
        let (step, reach, not_before) = (send.step, send.reach, send.not_before);
        let customer = &reach.customer;
        let Some(id) = send.id.clone() else {
            plan.excluded.push((
                customer.clone(),
                ChannelExclusion::Unreachable(vec![(
                    ChannelKind::Line,
                    Skip::InvalidAddress("customer ID too long for a batch ID".into()),
                )]),
            ));
            return Ok(());
        };
        if !ctx.seen.insert(id.clone()) {
            return Ok(());
        }
        if ctx.existing.contains(&id) {
            plan.excluded.push((customer.clone(), ChannelExclusion::AlreadyPlanned));
            return Ok(());
        }
        if self.policy.holdout.as_ref().is_some_and(|h| h.contains(customer)) {
            plan.excluded.push((customer.clone(), ChannelExclusion::Holdout));
            return Ok(());
        }
        let key = journal_key(reach);
        if let Some(cap) = &self.policy.frequency_cap {
            let since = cap.history_since(ctx.now);
            let mut keys = vec![customer_key(customer)];
            keys.extend(reach.line_user.clone());
            keys.dedup();
            let count: usize = keys
                .iter()
                .filter_map(|k| ctx.sends.get(k))
                .map(|times| times.iter().filter(|t| **t >= since).count())
                .sum();
            if count >= cap.max_sends() as usize {
                plan.excluded.push((customer.clone(), ChannelExclusion::FrequencyCapped));
                return Ok(());
            }
        }
        let mut opted = HashSet::new();
        if let Some(store) = &self.opt_outs {
            for c in ChannelKind::ALL {
                if store.is_opted_out(customer, c).await? {
                    opted.insert(c);
                }
            }
        }
        let (usable, skipped) = step.routing.candidates(
            step.purpose,
            reach,
            &self.engagement,
            ctx.now,
            &|c| step.has_content(c),
            &|c| opted.contains(&c),
        );
        let mut usable = usable.into_iter().map(|(c, _)| c);
        let Some(channel) = usable.next() else {
            tracing::debug!(target: "enishi::channel", customer = %customer, "unreachable");
            plan.excluded.push((customer.clone(), ChannelExclusion::Unreachable(skipped)));
            return Ok(());
        };
        let fallbacks: Vec<BatchFallback> =
            usable.map(|c| BatchFallback::new(c.transport(), step.messages(c))).collect();
        let recipient = BatchRecipient { customer: customer.clone(), line_user: key.clone() };
        let mut batch = Batch::new(
            id,
            step.campaign.clone(),
            channel.transport(),
            vec![recipient],
            step.messages(channel),
            not_before,
        )
        .with_fallbacks(fallbacks);
        if let (ChannelKind::Line, Some(unit)) = (channel, send.unit.clone()) {
            batch = batch.with_aggregation_unit(unit);
        }
        // Counted at once, so the cap holds within one plan too.
        ctx.sends.entry(key).or_default().push(not_before);
        plan.batches.push(batch);
        plan.routed.push((customer.clone(), channel));
        Ok(())
    }

    /// Plans `step` and writes its batches to the journal; returns the plan. Planning again
    /// (a re-run, a second worker) writes nothing twice: customers already planned in the
    /// step are [`ChannelExclusion::AlreadyPlanned`], and the journal keeps one batch per ID.
    ///
    /// # Errors
    /// [`ChannelError`] when the journal or the opt-out store fails.
    pub async fn plan_and_enqueue(
        &self,
        step: &ChannelStep,
        audience: &[Reach],
        now: DateTime<Utc>,
    ) -> Result<ChannelPlan, ChannelError> {
        let plan = self.plan(step, audience, now).await?;
        self.write(&plan).await?;
        Ok(plan)
    }

    /// Routes the steps with channels of a scenario tick ([`Tick::routed`]) and writes them
    /// to the journal: one batch per send, under the tick's batch ID whichever channel
    /// carries it, so a re-run tick, a second worker or a planner run again writes nothing
    /// twice. Each customer's reach comes from `contacts` (an unknown customer is
    /// unreachable); the policy, opt-outs and routing are those of
    /// [`plan_and_enqueue`](Self::plan_and_enqueue), the earliest send time the tick's.
    ///
    /// [`Tick::routed`]: crate::campaign::scenario::Tick::routed
    ///
    /// # Errors
    /// [`ChannelError`] when the contacts, the journal or the opt-out store fail.
    pub async fn plan_scenario(
        &self,
        routed: &[RoutedSend],
        contacts: &dyn Contacts,
        now: DateTime<Utc>,
    ) -> Result<ChannelPlan, ChannelError> {
        let mut items = Vec::with_capacity(routed.len());
        for r in routed {
            let Some(recipient) = r.batch.recipients.first() else { continue };
            let customer = &recipient.customer;
            let reach =
                contacts.reach(customer).await?.unwrap_or_else(|| Reach::new(customer.clone()));
            items.push((ChannelStep::from_routed(r), reach, r));
        }
        let sends: Vec<StepSend<'_>> = items
            .iter()
            .map(|(step, reach, r)| StepSend {
                step,
                reach,
                id: Some(r.batch.id.clone()),
                not_before: r.batch.not_before,
                unit: r.batch.aggregation_unit.clone(),
            })
            .collect();
        let plan = self.plan_sends(&sends, now).await?;
        self.write(&plan).await?;
        Ok(plan)
    }

    /// Writes a plan's batches to the journal, keeping any another planner wrote first.
    async fn write(&self, plan: &ChannelPlan) -> Result<(), ChannelError> {
        let store_err = |e: JournalError| ChannelError::Transient {
            channel: ChannelKind::Line,
            message: "writing the delivery journal".into(),
            source: Some(Box::new(e)),
        };
        match self.journal.enqueue(&plan.batches).await {
            Ok(_) => Ok(()),
            // Another planner wrote some of these IDs (perhaps on another channel) in the
            // meantime: write the rest one by one, keeping theirs.
            Err(JournalError::Conflict(_)) => {
                for b in &plan.batches {
                    match self.journal.enqueue(std::slice::from_ref(b)).await {
                        Ok(_) | Err(JournalError::Conflict(_)) => {}
                        Err(e) => return Err(store_err(e)),
                    }
                }
                Ok(())
            }
            Err(e) => Err(store_err(e)),
        }
    }
}
