//! The coupon step: plan a campaign whose recipients each get one coupon, through the journal.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{CouponPool, CouponPoolError};
use crate::campaign::journal::{DeliveryJournal, JournalError};
use crate::campaign::plan::{Campaign, Contact, PlanError, Planner};
use crate::campaign::{Batch, Transport};
use crate::line::message::Message;
use crate::line::message::limits::MESSAGES_MAX;
use crate::{BatchId, CouponId, CustomerId};

/// The template variable a pool code fills, unless [`CouponStep::variable`] names another.
pub const DEFAULT_COUPON_VARIABLE: &str = "coupon_code";

/// Where a coupon step's coupon comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CouponSource {
    /// A coupon made with the coupon API
    /// ([`LineClient::create_coupon`](crate::line::LineClient::create_coupon)): the step adds
    /// its coupon message after the campaign's messages.
    Line(CouponId),
    /// A code from the shop's pool of this name ([`CouponPool`]): each recipient claims one,
    /// and the campaign's messages show it through the `{{ coupon_code }}` variable.
    Pool(String),
}

/// What [`CouponStep::issue`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CouponIssueReport {
    /// Customers whose coupon was already in the journal (issued by an earlier run).
    pub already_issued: u64,
    /// Customers given a coupon by this run (their batches written to the journal).
    pub issued: u64,
    /// Candidates the campaign's policy left out (not linked, holdout, frequency cap, ...).
    pub excluded: u64,
    /// Recipients left without a coupon because the pool ran out.
    pub pool_exhausted: u64,
}

/// A campaign or scenario step that gives each recipient one coupon, exactly once: a LINE
/// coupon or a code from the shop's pool.
///
/// Exactly once comes from three records, each idempotent:
/// - the pool: a customer's claim returns the code they already hold, so a run repeated after
///   a crash claims nothing new;
/// - the journal: each recipient gets their own push batch, `<campaign>#coupon:<customer>`,
///   written before it is sent; a customer who has one is never planned again, and writing
///   the same batch twice stores it once;
/// - LINE: the batch's retry key makes a re-send after a crash a 409, not a second message.
///
/// Run [`issue`](Self::issue) then the [`Dispatcher`](crate::campaign::Dispatcher) for the
/// campaign; repeat both after a crash. See `docs/coupons.md`.
#[derive(Debug, Clone)]
pub struct CouponStep {
    campaign: Campaign,
    source: CouponSource,
    variable: String,
}

/// Why a coupon step could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CouponStepError {
    /// The campaign could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The pool failed.
    #[error(transparent)]
    Pool(#[from] CouponPoolError),
    /// A pool source without a pool, or a batch that cannot be formed.
    #[error("coupon step `{campaign}`: {reason}")]
    Invalid {
        /// The campaign.
        campaign: String,
        /// What is wrong.
        reason: String,
    },
}

impl CouponStep {
    /// A step sending `campaign`'s messages with a coupon from `source`.
    #[must_use]
    pub fn new(campaign: Campaign, source: CouponSource) -> Self {
        Self { campaign, source, variable: DEFAULT_COUPON_VARIABLE.to_owned() }
    }

    /// Names the template variable a pool code fills (default `coupon_code`).
    #[must_use]
    pub fn variable(mut self, name: impl Into<String>) -> Self {
        self.variable = name.into();
        self
    }

    /// The campaign.
    #[must_use]
    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// The source.
    #[must_use]
    pub fn source(&self) -> &CouponSource {
        &self.source
    }

    /// The journal ID of `customer`'s coupon batch: `<campaign>#coupon:<customer>`.
    ///
    /// # Errors
    /// [`CouponStepError::Invalid`] when the ID would be over 200 bytes.
    pub fn batch_id(&self, customer: &CustomerId) -> Result<BatchId, CouponStepError> {
        BatchId::new(format!("{}#coupon:{customer}", self.campaign.id())).map_err(|e| {
            CouponStepError::Invalid {
                campaign: self.campaign.id().to_string(),
                reason: format!("no batch ID for customer `{customer}`: {e}"),
            }
        })
    }

    /// Plans the campaign for the `contacts` who have no coupon batch in `journal` yet, gives
    /// each recipient a coupon (claiming a code from `pool` for a pool source) and writes one
    /// push batch per recipient to the journal. Dispatch the campaign afterwards. Running it
    /// again (after a crash, or with more contacts) issues nothing twice.
    ///
    /// # Errors
    /// [`CouponStepError::Plan`], [`CouponStepError::Journal`], [`CouponStepError::Pool`] (not
    /// for an empty pool: those recipients are counted in
    /// [`CouponIssueReport::pool_exhausted`]), [`CouponStepError::Invalid`] for a pool source
    /// without a pool or more than 5 messages with the coupon message.
    pub async fn issue(
        &self,
        planner: &Planner<'_>,
        contacts: &[Contact],
        journal: &dyn DeliveryJournal,
        pool: Option<&dyn CouponPool>,
        now: DateTime<Utc>,
    ) -> Result<CouponIssueReport, CouponStepError> {
        let id = self.campaign.id();
        let done: HashSet<CustomerId> = journal
            .records(id)
            .await?
            .into_iter()
            .flat_map(|r| r.batch.recipients.into_iter().map(|r| r.customer))
            .collect();
        let mut report = CouponIssueReport::default();
        let mut candidates: Vec<Contact> = Vec::with_capacity(contacts.len());
        for contact in contacts {
            if done.contains(&contact.customer) {
                report.already_issued += 1;
            } else {
                candidates.push(contact.clone());
            }
        }
        let plan = match &self.source {
            CouponSource::Line(_) => planner.plan(&self.campaign, &candidates, now)?,
            CouponSource::Pool(name) => {
                let Some(pool) = pool else {
                    return Err(self.invalid("a pool source needs a coupon pool"));
                };
                // Who would receive it: plan with a stand-in code, then claim real codes for
                // those recipients only (the policy's exclusions do not use up codes).
                let stand_in: Vec<Contact> =
                    candidates.iter().map(|c| c.clone().with_var(&self.variable, "-")).collect();
                let dry = planner.plan(&self.campaign, &stand_in, now)?;
                let mut codes: HashMap<CustomerId, String> = HashMap::new();
                for batch in &dry.batches {
                    for recipient in &batch.recipients {
                        if report.pool_exhausted > 0 {
                            report.pool_exhausted += 1;
                            continue;
                        }
                        match pool.claim(name, &recipient.customer, now).await {
                            Ok(claim) => {
                                codes.insert(recipient.customer.clone(), claim.code);
                            }
                            Err(CouponPoolError::Exhausted { .. }) => {
                                tracing::warn!(
                                    campaign = %id, pool = %name,
                                    "coupon pool ran out: the remaining recipients get no coupon"
                                );
                                report.pool_exhausted += 1;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                let with_codes: Vec<Contact> = candidates
                    .iter()
                    .filter_map(|c| {
                        let code = codes.get(&c.customer)?;
                        Some(c.clone().with_var(&self.variable, code))
                    })
                    .collect();
                planner.plan(&self.campaign, &with_codes, now)?
            }
        };
        report.excluded = plan.summary.excluded_total();
        if matches!(self.source, CouponSource::Pool(_)) {
            report.excluded = report.excluded.saturating_sub(report.pool_exhausted);
        }
        let mut batches = Vec::new();
        for batch in plan.batches {
            let mut messages = batch.messages.clone();
            if let CouponSource::Line(coupon) = &self.source {
                messages.push(Message::coupon(coupon.as_str()));
                if messages.len() > MESSAGES_MAX {
                    return Err(self.invalid("the campaign has 5 messages: no room for the coupon"));
                }
            }
            for recipient in &batch.recipients {
                let mut one = Batch::new(
                    self.batch_id(&recipient.customer)?,
                    batch.campaign.clone(),
                    Transport::Push,
                    vec![recipient.clone()],
                    messages.clone(),
                    batch.not_before,
                );
                one.arm.clone_from(&batch.arm);
                one.aggregation_unit.clone_from(&batch.aggregation_unit);
                batches.push(one);
            }
        }
        report.issued = journal.enqueue(&batches).await?;
        tracing::info!(
            campaign = %id, issued = report.issued, already = report.already_issued,
            exhausted = report.pool_exhausted, "coupon step planned"
        );
        Ok(report)
    }

    fn invalid(&self, reason: &str) -> CouponStepError {
        CouponStepError::Invalid {
            campaign: self.campaign.id().to_string(),
            reason: reason.to_owned(),
        }
    }
}
