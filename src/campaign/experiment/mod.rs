//! Offer experiments: A/B arms and a holdout on a test share of the audience, an
//! anytime-valid sequential test of their conversion rates, and the roll-out of the winner
//! to the rest of the audience, which is not planned (so never sent) until the test decides.

mod sequential;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use sequential::{
    Comparison, SequentialTest, SequentialTestError, Simulation, SimulationResult, Tally, simulate,
};

use super::journal::{DeliveryJournal, JournalError};
use super::measure::{PurchaseFact, SendFact};
use super::plan::{Campaign, Contact, DeliveryPolicy, Plan, PlanError, Planner, salted_hash};
use crate::{CampaignId, CustomerId};

/// The tally of each arm and of the holdout at one look.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExperimentCounts {
    /// Arm name → tally of customers it was delivered to.
    pub arms: BTreeMap<String, Tally>,
    /// The holdout: customers of the test share kept from every arm.
    pub holdout: Tally,
}

impl ExperimentCounts {
    /// Counts from facts: every delivered send of `campaign` with an arm counts for its arm,
    /// every holdout fact for the holdout; a customer converts with an order within `window`
    /// after their send (or holdout time).
    #[must_use]
    pub fn from_facts(
        campaign: &CampaignId,
        sends: &[SendFact],
        orders: &[PurchaseFact],
        window: Duration,
    ) -> Self {
        let mut by_customer: HashMap<&CustomerId, Vec<DateTime<Utc>>> = HashMap::new();
        for o in orders {
            by_customer.entry(&o.customer).or_default().push(o.at);
        }
        let converted = |customer: &CustomerId, at: DateTime<Utc>| {
            by_customer
                .get(customer)
                .is_some_and(|times| times.iter().any(|t| *t >= at && *t <= at + window))
        };
        let mut out = Self::default();
        let mut seen = HashSet::new();
        for s in sends.iter().filter(|s| &s.campaign == campaign) {
            if !seen.insert(&s.customer) {
                continue;
            }
            if s.holdout {
                out.holdout.add(converted(&s.customer, s.at));
            } else if s.delivered
                && let Some(arm) = &s.arm
            {
                out.arms.entry(arm.clone()).or_default().add(converted(&s.customer, s.at));
            }
        }
        out
    }
}

/// What the sequential test says at one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// The arm that beats every other arm, if the test found one.
    pub winner: Option<String>,
    /// Every pairwise comparison `(a, b, reading)` with `a` before `b` by name.
    pub comparisons: Vec<(String, String, Comparison)>,
    /// The best arm by rate against the holdout, if there is a holdout.
    pub uplift: Option<(String, Comparison)>,
}

/// Where an experiment stands after [`OfferExperiment::advance`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExperimentStatus {
    /// No winner yet: keep measuring.
    Running(Verdict),
    /// `winner` won; the rest of the audience (`rolled_out` customers) is in the journal
    /// under the roll-out campaign.
    RolledOut {
        /// The winning arm (as recorded on the roll-out's batches).
        winner: String,
        /// Recipients of the roll-out.
        rolled_out: u64,
    },
}

/// An experiment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The experiment's set-up is wrong.
    #[error("experiment `{campaign}`: {reason}")]
    Invalid {
        /// The campaign.
        campaign: CampaignId,
        /// What is wrong.
        reason: String,
    },
}

/// An offer experiment: the arms of an A/B [`Campaign`] go to a test share of the audience
/// (with the policy's holdout held out); the rest waits, unplanned, until
/// [`advance`](Self::advance) finds a winner with the [`SequentialTest`], and then gets the
/// winner's messages as the campaign `<id>.rollout`.
///
/// The roll-out is recorded in the journal (its batches carry the winner's arm name), so a
/// crash and a second `advance` keep the first winner and plan nothing twice.
#[derive(Debug, Clone)]
pub struct OfferExperiment {
    campaign: Campaign,
    test_share_basis_points: u16,
    test: SequentialTest,
}

impl OfferExperiment {
    /// An experiment of `campaign`'s arms (`Campaign::ab`, at least two) on a 20 % test
    /// share, with the default [`SequentialTest`].
    #[must_use]
    pub fn new(campaign: Campaign) -> Self {
        Self { campaign, test_share_basis_points: 2000, test: SequentialTest::default() }
    }

    /// Sets the test share in percent (capped at 100).
    #[must_use]
    pub fn test_share_percent(mut self, percent: u8) -> Self {
        self.test_share_basis_points = u16::from(percent.min(100)) * 100;
        self
    }

    /// Sets the sequential test.
    #[must_use]
    pub fn sequential_test(mut self, test: SequentialTest) -> Self {
        self.test = test;
        self
    }

    /// The test campaign.
    #[must_use]
    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// The ID the winner's roll-out runs under: `<id>.rollout`.
    ///
    /// # Errors
    /// [`ExperimentError::Invalid`] when the ID would be too long.
    pub fn rollout_id(&self) -> Result<CampaignId, ExperimentError> {
        CampaignId::new(format!("{}.rollout", self.campaign.id()))
            .map_err(|e| self.invalid(format!("no roll-out campaign ID: {e}")))
    }

    /// Whether `customer` is in the test share (a salted hash of the customer ID, stable
    /// across runs and independent of the arm split).
    #[must_use]
    pub fn in_test(&self, customer: &CustomerId) -> bool {
        let salt = format!("{}#test", self.campaign.salt());
        salted_hash(&salt, customer.as_str()) % 10_000 < u64::from(self.test_share_basis_points)
    }

    /// Plans the test phase: the arms for the contacts in the test share.
    ///
    /// # Errors
    /// [`ExperimentError::Plan`]; [`ExperimentError::Invalid`] with fewer than two arms.
    pub fn plan_test(
        &self,
        planner: &Planner<'_>,
        contacts: &[Contact],
        now: DateTime<Utc>,
    ) -> Result<Plan, ExperimentError> {
        if self.campaign.arms().len() < 2 {
            return Err(self.invalid("an experiment needs at least two arms".to_owned()));
        }
        let test: Vec<Contact> =
            contacts.iter().filter(|c| self.in_test(&c.customer)).cloned().collect();
        Ok(planner.plan(&self.campaign, &test, now)?)
    }

    /// Holdout facts for the contacts of the test share that `policy`'s holdout keeps out, at
    /// `at`: add them to the sends counted by [`ExperimentCounts::from_facts`].
    #[must_use]
    pub fn holdout_facts(
        &self,
        policy: &DeliveryPolicy,
        contacts: &[Contact],
        at: DateTime<Utc>,
    ) -> Vec<SendFact> {
        let Some(holdout) = &policy.holdout else { return Vec::new() };
        contacts
            .iter()
            .filter(|c| self.in_test(&c.customer) && holdout.contains(&c.customer))
            .map(|c| SendFact::holdout(self.campaign.id().clone(), None, c.customer.clone(), at))
            .collect()
    }

    /// Reads the test: every pair of arms is compared at level α / (number of pairs)
    /// (Bonferroni), and an arm wins when it is significantly better than every other arm.
    #[must_use]
    pub fn evaluate(&self, counts: &ExperimentCounts) -> Verdict {
        let names: Vec<&String> = self
            .campaign
            .arms()
            .iter()
            .filter_map(|a| counts.arms.get_key_value(a.name()).map(|(k, _)| k))
            .collect();
        let tally = |name: &str| counts.arms.get(name).copied().unwrap_or_default();
        let pairs = (names.len() * names.len().saturating_sub(1) / 2).max(1);
        let test = self.test.at_level(self.test.alpha / pairs as f64);
        let mut comparisons = Vec::new();
        let mut beaten: HashMap<&str, usize> = HashMap::new();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let reading = test.compare(tally(a), tally(b));
                if reading.significant {
                    let better = if reading.difference > 0.0 { a } else { b };
                    *beaten.entry(better.as_str()).or_default() += 1;
                }
                comparisons.push(((*a).clone(), (*b).clone(), reading));
            }
        }
        let arms_total = self.campaign.arms().len();
        let winner = (names.len() == arms_total && arms_total >= 2)
            .then(|| {
                beaten.iter().find(|(_, n)| **n == arms_total - 1).map(|(a, _)| (*a).to_owned())
            })
            .flatten();
        let uplift = (counts.holdout.exposed > 0)
            .then(|| {
                let best =
                    names.iter().max_by(|a, b| tally(a).rate().total_cmp(&tally(b).rate()))?;
                Some(((*best).clone(), self.test.compare(tally(best), counts.holdout)))
            })
            .flatten();
        Verdict { winner, comparisons, uplift }
    }

    /// One step of the experiment, run whenever new conversions are known (idempotent): when
    /// the roll-out is already in the journal it reports it; otherwise it evaluates `counts`
    /// and, when an arm wins, plans the contacts outside the test share with the winner's
    /// messages under [`rollout_id`](Self::rollout_id) and writes them to the journal. Then
    /// dispatch the roll-out campaign.
    ///
    /// # Errors
    /// [`ExperimentError::Plan`], [`ExperimentError::Journal`], [`ExperimentError::Invalid`].
    pub async fn advance(
        &self,
        planner: &Planner<'_>,
        contacts: &[Contact],
        journal: &dyn DeliveryJournal,
        counts: &ExperimentCounts,
        now: DateTime<Utc>,
    ) -> Result<ExperimentStatus, ExperimentError> {
        let rollout = self.rollout_id()?;
        let records = journal.records(&rollout).await?;
        if let Some(first) = records.first() {
            let winner = first.batch.arm.clone().unwrap_or_default();
            let rolled_out = records.iter().map(|r| r.batch.recipients.len() as u64).sum();
            return Ok(ExperimentStatus::RolledOut { winner, rolled_out });
        }
        let verdict = self.evaluate(counts);
        let Some(winner) = verdict.winner.clone() else {
            return Ok(ExperimentStatus::Running(verdict));
        };
        let campaign = self
            .campaign
            .only_arm(rollout.clone(), &winner)
            .ok_or_else(|| self.invalid(format!("the winner `{winner}` is not an arm")))?;
        let rest: Vec<Contact> =
            contacts.iter().filter(|c| !self.in_test(&c.customer)).cloned().collect();
        let plan = planner.plan(&campaign, &rest, now)?;
        let rolled_out = plan.summary.recipients;
        journal.enqueue(&plan.batches).await?;
        tracing::info!(
            campaign = %self.campaign.id(), %winner, rolled_out,
            "offer experiment found a winner: rolling it out to the rest of the audience"
        );
        Ok(ExperimentStatus::RolledOut { winner, rolled_out })
    }

    fn invalid(&self, reason: String) -> ExperimentError {
        ExperimentError::Invalid { campaign: self.campaign.id().clone(), reason }
    }
}
