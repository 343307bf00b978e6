//! Granting a link incentive exactly once: claim in the ledger, grant at the shop, settle.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::incentive::{Claim, GrantState, IncentiveLedger};
use super::reward::{LinkIncentive, Reward};
use crate::CustomerId;
use crate::commerce::CommerceBackend;

/// What became of a link incentive for one new link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncentiveOutcome {
    /// Granted now: points added at the shop, or the coupon handed out.
    Granted(Reward),
    /// This customer had it already (an earlier link, another instance, a replay).
    AlreadyGranted,
    /// The link came after the deadline.
    Closed,
    /// A grant for this customer is under way elsewhere, or was cut off mid-way (a crash
    /// after asking the shop): never granted twice, it waits for an operator (see
    /// [`IncentiveLedger::unsettled`]).
    Pending,
    /// The shop refused or failed the grant; recorded as failed for an operator.
    Failed(String),
}

impl IncentiveOutcome {
    /// The reward, when granted now.
    #[must_use]
    pub fn granted(&self) -> Option<&Reward> {
        match self {
            Self::Granted(reward) => Some(reward),
            _ => None,
        }
    }

    /// The `outcome` label of logs and metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Granted(_) => "granted",
            Self::AlreadyGranted => "already_granted",
            Self::Closed => "closed",
            Self::Pending => "pending",
            Self::Failed(_) => "failed",
        }
    }
}

/// A configured incentive with where it is recorded and granted.
#[derive(Clone)]
pub(super) struct IncentiveSetup {
    pub(super) incentive: LinkIncentive,
    pub(super) ledger: Arc<dyn IncentiveLedger>,
    pub(super) backend: Arc<dyn CommerceBackend>,
}

impl IncentiveSetup {
    /// Grants the incentive to `customer` at most once: claim in the ledger, grant, settle.
    pub(super) async fn grant(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> IncentiveOutcome {
        let outcome = self.try_grant(customer, now).await;
        let cust = customer.as_str();
        match &outcome {
            IncentiveOutcome::Failed(reason) => tracing::error!(
                target: "enishi::link", incentive = self.incentive.id(), customer = cust, reason = reason.as_str(),
                "the link incentive could not be granted: grant it by hand"
            ),
            IncentiveOutcome::Pending => tracing::warn!(
                target: "enishi::link", incentive = self.incentive.id(), customer = cust,
                "the link incentive is pending (in flight elsewhere or interrupted)"
            ),
            o => tracing::info!(
                target: "enishi::link", incentive = self.incentive.id(), customer = cust, outcome = o.label(),
                "link incentive"
            ),
        }
        metrics::counter!("enishi_link_incentives_total", "outcome" => outcome.label())
            .increment(1);
        outcome
    }

    async fn try_grant(&self, customer: &CustomerId, now: DateTime<Utc>) -> IncentiveOutcome {
        let id = self.incentive.id();
        if !self.incentive.is_open(now) {
            return IncentiveOutcome::Closed;
        }
        match self.ledger.claim(id, customer, now).await {
            Ok(Claim::New(_)) => {}
            Ok(Claim::Settled(_)) => return IncentiveOutcome::AlreadyGranted,
            Ok(Claim::InFlight(_)) => return IncentiveOutcome::Pending,
            Err(e) => return IncentiveOutcome::Failed(format!("the ledger failed: {e}")),
        }
        let reward = self.incentive.reward().clone();
        let result = match &reward {
            Reward::Points { points } => self
                .backend
                .grant_points(customer, i64::from(*points), "LINE連携特典")
                .await
                .map(|()| points.to_string()),
            Reward::Coupon { code, .. } => Ok(code.clone()),
        };
        let (state, detail, outcome) = match result {
            Ok(detail) => (GrantState::Granted, detail, IncentiveOutcome::Granted(reward)),
            // Whether the shop applied it is unknown after most errors: never retried.
            Err(e) => (GrantState::Failed, e.to_string(), IncentiveOutcome::Failed(e.to_string())),
        };
        match self.ledger.settle(id, customer, state, Some(&detail), now).await {
            Ok(_) => outcome,
            // The claim stays: no second grant; `unsettled` shows it.
            Err(_) => IncentiveOutcome::Pending,
        }
    }
}
