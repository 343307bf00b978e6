//! What a send will cost before it runs: messages this month against the channel's quota,
//! the yen by the plan's tariff, and a budget that refuses or trims a send.
//!
//! LINE counts one message per recipient per request (the message objects in one request do
//! not multiply it; replies are free) and bills by the month: each plan includes some free
//! messages, and on plans that allow more, each one above them has a price. A narrowcast
//! reserves quota for its whole target reach until its delivery count is settled.
//!
//! 1. Describe what will be sent as [`SendStep`]s: from a campaign's dry run
//!    ([`SendStep::campaign`]), from a simulation of scenarios over the rest of the month
//!    ([`simulate_scenarios`]), or a narrowcast's reservation ([`SendStep::narrowcast`]).
//! 2. Read the channel's quota and consumption from LINE ([`QuotaStatus::fetch`], feature
//!    `client`).
//! 3. [`Forecast::run`] with the plan's [`Tariff`] and a [`Budget`]: the [`ForecastReport`]
//!    says how many messages, how much quota is left, what it costs, and which steps were
//!    dropped (lowest priority first) and why.
//!
//! ```
//! use enishi::campaign::forecast::{Budget, Forecast, QuotaStatus, SendStep, Tariff};
//!
//! let quota = QuotaStatus { limit: Some(30_000), used: 29_000 };
//! let report = Forecast::new(Tariff::standard(), quota)
//!     .step(SendStep::new("spring-sale", 5, 800))
//!     .step(SendStep::new("review-reminder", 1, 700))
//!     .budget(Budget::new().max_yen(1_000))
//!     .run();
//! assert_eq!(report.messages, 800);
//! assert_eq!(report.dropped[0].step.name, "review-reminder");
//! println!("{report}");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::DryRun;
use super::scenario::{Outcome, Priority, ScenarioState};

/// A LINE Official Account plan's tariff: the monthly fee, the free messages included, and the
/// price of each message above them (`None`: the plan allows no messages above them).
///
/// The presets follow LINE's published Japanese plans (コミュニケーション / ライト /
/// スタンダード: 200 / 5,000 / 30,000 free messages). Fees and the per-message price change
/// and vary by contract: check them against yours and set your own with [`Tariff::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tariff {
    /// The plan's name.
    pub plan: String,
    /// The monthly fee in yen (tax excluded).
    pub monthly_fee_yen: u64,
    /// Messages included each month.
    pub free_messages: u64,
    /// The price of each message above them, in yen; `None` when the plan allows none.
    pub yen_per_extra_message: Option<u64>,
}

impl Tariff {
    /// A tariff of your own.
    #[must_use]
    pub fn new(
        plan: impl Into<String>,
        monthly_fee_yen: u64,
        free_messages: u64,
        yen_per_extra_message: Option<u64>,
    ) -> Self {
        Self { plan: plan.into(), monthly_fee_yen, free_messages, yen_per_extra_message }
    }

    /// コミュニケーションプラン: 200 free messages, ¥0, no additional messages.
    #[must_use]
    pub fn communication() -> Self {
        Self::new("communication", 0, 200, None)
    }

    /// ライトプラン: 5,000 free messages, ¥5,000 a month, no additional messages.
    #[must_use]
    pub fn light() -> Self {
        Self::new("light", 5_000, 5_000, None)
    }

    /// スタンダードプラン: 30,000 free messages, ¥15,000 a month, ¥3 per additional message
    /// (LINE lowers the price in tiers for large volumes: set your contract's price with
    /// [`Tariff::with_extra_price`]).
    #[must_use]
    pub fn standard() -> Self {
        Self::new("standard", 15_000, 30_000, Some(3))
    }

    /// The same plan with another price per additional message.
    #[must_use]
    pub fn with_extra_price(mut self, yen: Option<u64>) -> Self {
        self.yen_per_extra_message = yen;
        self
    }

    /// The yen the messages above the free ones cost when `total` messages are sent in the
    /// month (`None`: the plan does not allow that many).
    #[must_use]
    pub fn extra_cost(&self, total: u64) -> Option<u64> {
        let extra = total.saturating_sub(self.free_messages);
        match self.yen_per_extra_message {
            _ if extra == 0 => Some(0),
            Some(price) => Some(extra.saturating_mul(price)),
            None => None,
        }
    }
}

/// The channel's monthly quota and what was used of it, as LINE reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaStatus {
    /// The monthly limit (`GET /v2/bot/message/quota`), `None` when unlimited.
    pub limit: Option<u64>,
    /// Messages counted this month (`GET /v2/bot/message/quota/consumption`).
    pub used: u64,
}

impl QuotaStatus {
    /// Messages left this month (`None`: unlimited).
    #[must_use]
    pub fn remaining(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.used))
    }

    /// Reads both from LINE.
    ///
    /// # Errors
    /// What the client returns ([`crate::line::LineError`]).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub async fn fetch(client: &crate::line::LineClient) -> Result<Self, crate::line::LineError> {
        let quota = client.quota().await?;
        let used = client.quota_consumption().await?;
        let limit = match quota.kind {
            crate::line::QuotaType::Limited => quota.value,
            _ => None,
        };
        Ok(Self { limit, used })
    }
}

/// Where a step's count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    /// Counted by hand.
    Other,
    /// A campaign's dry run (push or multicast: one message per recipient).
    Campaign,
    /// A scenario step, simulated over the rest of the month.
    Scenario,
    /// A narrowcast, reserving its whole target reach.
    Narrowcast,
}

/// Something that will be sent this month: a name, a priority (higher is kept longer) and the
/// messages LINE will count for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendStep {
    /// What it is (`campaign`, `scenario/step`, ...).
    pub name: String,
    /// Higher is kept longer; a budget drops the lowest first.
    pub priority: u8,
    /// Messages LINE counts for it.
    pub messages: u64,
    /// Where the count comes from.
    pub kind: StepKind,
}

impl SendStep {
    /// A step counted by hand.
    #[must_use]
    pub fn new(name: impl Into<String>, priority: u8, messages: u64) -> Self {
        Self { name: name.into(), priority, messages, kind: StepKind::Other }
    }

    /// A campaign from its dry run: one message per recipient (LINE counts recipients, not
    /// message objects).
    #[must_use]
    pub fn campaign(dry_run: &DryRun, priority: u8) -> Self {
        Self {
            name: dry_run.campaign.to_string(),
            priority,
            messages: dry_run.recipients,
            kind: StepKind::Campaign,
        }
    }

    /// A narrowcast to `target_reach` users: LINE reserves all of it from the quota until the
    /// delivery count is settled, so the forecast counts all of it.
    #[must_use]
    pub fn narrowcast(name: impl Into<String>, priority: u8, target_reach: u64) -> Self {
        Self { name: name.into(), priority, messages: target_reach, kind: StepKind::Narrowcast }
    }
}

/// The priority of a scenario's steps in a forecast: high 3, normal 2, low 1.
#[must_use]
pub fn scenario_priority(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
    }
}

/// Runs `state` forward from `from` to `until` (e.g. the end of the month) as its ticks
/// would, and counts the sends of each scenario step as a [`SendStep`] (`scenario/step`),
/// with the scenario's priority. The state is consumed by the simulation: pass a copy built
/// from the same input, never the live one.
#[must_use]
pub fn simulate_scenarios(
    state: &mut ScenarioState,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<SendStep> {
    let priorities: BTreeMap<String, u8> = state
        .scenarios()
        .scenarios()
        .iter()
        .map(|s| (s.name().to_owned(), scenario_priority(s.def.priority)))
        .collect();
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut now = from;
    // Each tick decides every step due by `now` once; the loop ends when nothing is due
    // before `until`.
    for _ in 0..100_000 {
        let tick = state.tick(now);
        for e in &tick.events {
            if matches!(e.outcome, Outcome::Sent { .. }) {
                let step = e.step.clone().unwrap_or_default();
                *counts.entry((e.scenario.clone(), step)).or_default() += 1;
            }
        }
        match tick.next_wake {
            Some(next) if next <= until && next > now => now = next,
            _ => break,
        }
    }
    counts
        .into_iter()
        .map(|((scenario, step), n)| SendStep {
            priority: priorities.get(&scenario).copied().unwrap_or(2),
            name: format!("{scenario}/{step}"),
            messages: n,
            kind: StepKind::Scenario,
        })
        .collect()
}

/// What a budget does when the forecast is over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverBudget {
    /// Drop the lowest-priority steps until the rest fits (the default).
    #[default]
    Trim,
    /// Send nothing.
    Refuse,
}

/// Limits on a month's sends. With none set, only the channel's remaining quota and the
/// plan's allowance apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub struct Budget {
    max_messages: Option<u64>,
    max_yen: Option<u64>,
    ignore_quota: bool,
    over: OverBudget,
}

impl Budget {
    /// No limit beyond the quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many messages for these steps.
    pub fn max_messages(mut self, n: u64) -> Self {
        self.max_messages = Some(n);
        self
    }

    /// At most this many yen of additional messages for these steps.
    pub fn max_yen(mut self, yen: u64) -> Self {
        self.max_yen = Some(yen);
        self
    }

    /// Plan past the remaining quota (LINE then refuses the sends past it).
    pub fn ignore_quota(mut self, yes: bool) -> Self {
        self.ignore_quota = yes;
        self
    }

    /// Trim (default) or refuse.
    pub fn over_budget(mut self, over: OverBudget) -> Self {
        self.over = over;
        self
    }
}

/// Why a step was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The budget's message limit.
    MessageBudget,
    /// The budget's yen limit.
    YenBudget,
    /// The channel's remaining monthly quota.
    Quota,
    /// The plan allows no messages above its free ones.
    PlanAllowance,
}

impl DropReason {
    /// A short explanation, for reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageBudget => "over the message budget",
            Self::YenBudget => "over the yen budget",
            Self::Quota => "over the remaining monthly quota",
            Self::PlanAllowance => "over the plan's free messages (the plan allows no more)",
        }
    }
}

/// A step left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dropped {
    /// The step.
    pub step: SendStep,
    /// Why.
    pub reason: DropReason,
}

/// A narrowcast counted at the remaining quota rather than its whole reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capped {
    /// The step, with its whole reach.
    pub step: SendStep,
    /// The messages counted (what LINE will deliver).
    pub messages: u64,
}

/// A forecast's inputs; [`run`](Self::run) it.
#[derive(Debug, Clone)]
#[must_use]
pub struct Forecast {
    tariff: Tariff,
    quota: QuotaStatus,
    steps: Vec<SendStep>,
    budget: Budget,
    narrowcast: NarrowcastQuotaPolicy,
}

impl Forecast {
    /// A forecast for a channel on `tariff` whose quota stands at `quota`.
    pub fn new(tariff: Tariff, quota: QuotaStatus) -> Self {
        Self {
            tariff,
            quota,
            steps: Vec::new(),
            budget: Budget::default(),
            narrowcast: NarrowcastQuotaPolicy::default(),
        }
    }

    /// Adds a step.
    pub fn step(mut self, step: SendStep) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = SendStep>) -> Self {
        self.steps.extend(steps);
        self
    }

    /// The budget (default: the quota only).
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// How the narrowcasts will use the quota (the policy's
    /// [`narrowcast_quota`](super::DeliveryPolicy::narrowcast_quota)): with
    /// [`UpToRemainingQuota`](NarrowcastQuotaPolicy::UpToRemainingQuota), a narrowcast the
    /// remaining quota cannot cover is counted at what is left (LINE delivers to that many)
    /// instead of dropped; otherwise it is dropped whole, as LINE refuses or cancels it.
    pub fn narrowcast_policy(mut self, policy: NarrowcastQuotaPolicy) -> Self {
        self.narrowcast = policy;
        self
    }

    /// Under `upToRemainingQuota`, takes back narrowcasts dropped for the quota at what the
    /// quota still allows; returns them with their counted messages.
    fn cap_narrowcasts(
        &self,
        kept: &mut Vec<usize>,
        dropped: &mut Vec<(usize, DropReason)>,
    ) -> Vec<(usize, u64)> {
        let mut capped = Vec::new();
        if self.narrowcast != NarrowcastQuotaPolicy::UpToRemainingQuota
            || self.budget.over == OverBudget::Refuse
        {
            return capped;
        }
        let Some(left) = self.quota.remaining() else { return capped };
        // Highest priority first, as they were kept.
        for at in (0..dropped.len()).rev() {
            let (i, reason) = dropped[at];
            let step = &self.steps[i];
            if step.kind != StepKind::Narrowcast || reason != DropReason::Quota {
                continue;
            }
            let total: u64 = self.counted(kept, &capped);
            let n = step.messages.min(left.saturating_sub(total));
            if n == 0 || self.over(total + n).is_some() {
                continue;
            }
            dropped.remove(at);
            kept.push(i);
            capped.push((i, n));
        }
        capped
    }

    /// The messages of `kept`, capped narrowcasts at their capped count.
    fn counted(&self, kept: &[usize], capped: &[(usize, u64)]) -> u64 {
        kept.iter()
            .map(|&i| capped.iter().find(|c| c.0 == i).map_or(self.steps[i].messages, |c| c.1))
            .sum()
    }

    /// Why `messages` more (on top of what is used) do not fit, if they do not.
    fn over(&self, messages: u64) -> Option<DropReason> {
        let used = self.quota.used;
        let total = used.saturating_add(messages);
        if let Some(max) = self.budget.max_messages
            && messages > max
        {
            return Some(DropReason::MessageBudget);
        }
        if !self.budget.ignore_quota
            && let Some(left) = self.quota.remaining()
            && messages > left
        {
            return Some(DropReason::Quota);
        }
        let extra = self.tariff.extra_cost(total)?;
        let before = self.tariff.extra_cost(used).unwrap_or(0);
        if let Some(max) = self.budget.max_yen
            && extra.saturating_sub(before) > max
        {
            return Some(DropReason::YenBudget);
        }
        None
    }

    /// Keeps what fits: the lowest-priority steps are dropped first (among equal priorities,
    /// the last added), or everything when the budget refuses.
    #[must_use]
    pub fn run(self) -> ForecastReport {
        let wanted: u64 = self.steps.iter().map(|s| s.messages).sum();
        let mut order: Vec<usize> = (0..self.steps.len()).collect();
        // Highest priority first; stable, so earlier steps come first among equals.
        order.sort_by_key(|&i| std::cmp::Reverse(self.steps[i].priority));
        let mut kept = order.clone();
        let mut dropped_idx: Vec<(usize, DropReason)> = Vec::new();
        loop {
            let total: u64 = kept.iter().map(|&i| self.steps[i].messages).sum();
            let Some(reason) = self.over(total).or_else(|| {
                // A plan without extra messages cannot go past its free ones.
                let fits = self.tariff.extra_cost(self.quota.used.saturating_add(total)).is_some();
                (!fits).then_some(DropReason::PlanAllowance)
            }) else {
                break;
            };
            if self.budget.over == OverBudget::Refuse {
                dropped_idx.extend(kept.drain(..).map(|i| (i, reason)));
                break;
            }
            match kept.pop() {
                Some(i) => dropped_idx.push((i, reason)),
                None => break,
            }
        }
        let capped = self.cap_narrowcasts(&mut kept, &mut dropped_idx);
        let messages = self.counted(&kept, &capped);
        let used_after = self.quota.used.saturating_add(messages);
        let cost_yen = self
            .tariff
            .extra_cost(used_after)
            .unwrap_or(0)
            .saturating_sub(self.tariff.extra_cost(self.quota.used).unwrap_or(0));
        let mut kept_steps: Vec<SendStep> = Vec::new();
        for i in 0..self.steps.len() {
            if kept.contains(&i) {
                let mut step = self.steps[i].clone();
                if let Some(&(_, n)) = capped.iter().find(|c| c.0 == i) {
                    step.messages = n;
                }
                kept_steps.push(step);
            }
        }
        ForecastReport {
            plan: self.tariff.plan.clone(),
            wanted,
            messages,
            quota_limit: self.quota.limit,
            quota_used: self.quota.used,
            quota_left: self.quota.remaining().map(|l| l.saturating_sub(messages)),
            cost_yen,
            refused: self.budget.over == OverBudget::Refuse && !dropped_idx.is_empty(),
            kept: kept_steps,
            capped: capped
                .iter()
                .map(|&(i, n)| Capped { step: self.steps[i].clone(), messages: n })
                .collect(),
            dropped: dropped_idx
                .into_iter()
                .map(|(i, reason)| Dropped { step: self.steps[i].clone(), reason })
                .collect(),
        }
    }
}

/// What a forecast found. Its `Display` is the operator's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForecastReport {
    /// The tariff's plan.
    pub plan: String,
    /// Messages of every step, before the budget.
    pub wanted: u64,
    /// Messages of the steps kept.
    pub messages: u64,
    /// The monthly quota (`None`: unlimited).
    pub quota_limit: Option<u64>,
    /// Used this month before these sends.
    pub quota_used: u64,
    /// Left after these sends (`None`: unlimited).
    pub quota_left: Option<u64>,
    /// The yen the kept steps add (messages above the free ones).
    pub cost_yen: u64,
    /// The budget refused the whole send.
    pub refused: bool,
    /// The steps kept, in the order given (a capped narrowcast with its capped count).
    pub kept: Vec<SendStep>,
    /// Narrowcasts kept at the remaining quota (`upToRemainingQuota`): part of their target
    /// gets nothing.
    pub capped: Vec<Capped>,
    /// The steps dropped, in the order dropped (lowest priority first).
    pub dropped: Vec<Dropped>,
}

impl fmt::Display for ForecastReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.quota_left.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
        writeln!(
            f,
            "forecast ({} plan): messages {} of {} wanted, quota left {left} (used {}), cost ¥{}",
            self.plan, self.messages, self.wanted, self.quota_used, self.cost_yen
        )?;
        if self.refused {
            writeln!(f, "  refused: the budget does not allow this send")?;
        }
        for c in &self.capped {
            writeln!(
                f,
                "  capped {} at the remaining quota: {} of {} recipients (upToRemainingQuota)",
                c.step.name, c.messages, c.step.messages
            )?;
        }
        for d in &self.dropped {
            writeln!(
                f,
                "  dropped {} (priority {}, {} messages): {}",
                d.step.name,
                d.step.priority,
                d.step.messages,
                d.reason.as_str()
            )?;
        }
        Ok(())
    }
}

/// How a narrowcast may use the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NarrowcastQuotaPolicy {
    /// Send to the whole target; LINE refuses it if the quota cannot cover the reach.
    #[default]
    WholeTarget,
    /// Send to as many as the remaining quota allows (`upToRemainingQuota`).
    UpToRemainingQuota,
    /// All or nobody: up to the remaining quota, and nobody when it cannot cover everyone
    /// (`upToRemainingQuota` + `forbidPartialDelivery`).
    AllOrNothing,
}

/// The narrowcast `limit` for a policy.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
#[must_use]
pub fn narrowcast_limit(
    policy: NarrowcastQuotaPolicy,
    max: Option<u64>,
) -> crate::line::NarrowcastLimit {
    let base =
        max.map_or_else(crate::line::NarrowcastLimit::default, crate::line::NarrowcastLimit::max);
    match policy {
        NarrowcastQuotaPolicy::WholeTarget => base,
        NarrowcastQuotaPolicy::UpToRemainingQuota => base.up_to_remaining_quota(false),
        NarrowcastQuotaPolicy::AllOrNothing => base.up_to_remaining_quota(true),
    }
}
