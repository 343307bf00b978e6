//! An exactly-once ledger for link incentives: points or a coupon granted once per customer
//! (say, on the first LINE link).
//!
//! See [`IncentiveLedger`] for the claim → grant → settle protocol.

use std::fmt;

use chrono::{DateTime, Utc};

use super::store::{LinkStoreError, trunc_ms};
use crate::CustomerId;

/// The longest incentive ID, in bytes.
const MAX_INCENTIVE_BYTES: usize = 128;

/// Where one customer's grant of one incentive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantState {
    /// Claimed and not settled yet: in flight, or interrupted (a crash mid-grant).
    Claimed,
    /// The grant was applied.
    Granted,
    /// The grant was refused for good; it is not retried.
    Failed,
}

impl GrantState {
    /// The name stored in databases: `claimed`, `granted` or `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Granted => "granted",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name (strict: stores are input enishi owns).
    ///
    /// # Errors
    /// [`LinkStoreError::Corrupt`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, LinkStoreError> {
        match s {
            "claimed" => Ok(Self::Claimed),
            "granted" => Ok(Self::Granted),
            "failed" => Ok(Self::Failed),
            other => Err(LinkStoreError::Corrupt(format!("unknown GrantState {other:?}"))),
        }
    }

    /// `true` once the outcome is recorded ([`Granted`](Self::Granted) or
    /// [`Failed`](Self::Failed)).
    #[must_use]
    pub fn is_settled(self) -> bool {
        !matches!(self, Self::Claimed)
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One customer's grant of one incentive, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncentiveGrant {
    /// The incentive's ID, e.g. `link-2026-12`.
    pub incentive: String,
    /// The customer.
    pub customer: CustomerId,
    /// Where the grant stands.
    pub state: GrantState,
    /// When it was claimed (millisecond precision).
    pub claimed_at: DateTime<Utc>,
    /// When it was settled (millisecond precision); `None` while [`GrantState::Claimed`].
    pub settled_at: Option<DateTime<Utc>>,
    /// What was granted (`100 points`, a coupon code) or why it failed.
    pub detail: Option<String>,
}

impl IncentiveGrant {
    /// A new claim, made at `now`.
    pub(crate) fn claimed(incentive: &str, customer: &CustomerId, now: DateTime<Utc>) -> Self {
        Self {
            incentive: incentive.to_owned(),
            customer: customer.clone(),
            state: GrantState::Claimed,
            claimed_at: trunc_ms(now),
            settled_at: None,
            detail: None,
        }
    }

    /// This claim, settled at `now` as `state` with `detail`.
    pub(crate) fn settle(
        mut self,
        state: GrantState,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        self.state = state;
        self.settled_at = Some(trunc_ms(now));
        self.detail = detail.map(str::to_owned);
        self
    }
}

/// What [`IncentiveLedger::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// This caller holds the claim: grant, then [`settle`](IncentiveLedger::settle) (or
    /// [`release`](IncentiveLedger::release) when nothing was applied).
    New(IncentiveGrant),
    /// Someone settled it already (granted or failed): do nothing.
    Settled(IncentiveGrant),
    /// Claimed and not settled (in flight elsewhere, or a crash mid-grant): do nothing; an
    /// operator reconciles it (see [`unsettled`](IncentiveLedger::unsettled)).
    InFlight(IncentiveGrant),
}

impl Claim {
    /// The grant as the ledger records it.
    #[must_use]
    pub fn grant(&self) -> &IncentiveGrant {
        match self {
            Self::New(g) | Self::Settled(g) | Self::InFlight(g) => g,
        }
    }

    /// `true` when this caller holds the claim (and must grant, then settle or release).
    #[must_use]
    pub fn is_new(&self) -> bool {
        matches!(self, Self::New(_))
    }

    /// How an existing record answers a claim that did not insert it.
    pub(crate) fn existing(grant: IncentiveGrant) -> Self {
        if grant.state.is_settled() { Self::Settled(grant) } else { Self::InFlight(grant) }
    }
}

/// The exactly-once ledger of incentive grants, scoped like the link store it lives in (one
/// LINE channel).
///
/// Object safe (`Arc<dyn IncentiveLedger>`); implemented by the link stores
/// ([`MemoryLinkStore`](super::MemoryLinkStore), `SqliteLinkStore`, `PostgresLinkStore`), in
/// the same database as the links, and checked by the link conformance suite
/// (`enishi::link::conformance`, feature `testkit`).
///
/// A grant goes through the ledger in three steps: [`claim`](IncentiveLedger::claim) it
/// (atomic: of any number of concurrent claims, in any number of processes sharing the store,
/// exactly one is [`Claim::New`]), apply it in the commerce backend, then record what happened:
///
/// - the backend applied it: [`settle`](IncentiveLedger::settle) as [`GrantState::Granted`],
///   with what was granted (`"100 points"`, the coupon code) as the detail;
/// - the backend refused it for good (say, the customer is not eligible):
///   [`settle`](IncentiveLedger::settle) as [`GrantState::Failed`], with the reason;
/// - the backend refused it before processing anything (a 4xx on a validation, a connection
///   that never opened): [`release`](IncentiveLedger::release) it, so a later attempt may claim
///   it again;
/// - the outcome is unknown (a timeout, a crash mid-grant): do nothing. The claim stays in
///   flight, every later claim is [`Claim::InFlight`], and an operator reconciles it from
///   [`unsettled`](IncentiveLedger::unsettled) after checking the backend.
///
/// A grant is therefore applied at most once; it is applied exactly once when every failure
/// is either certain (released and retried) or reconciled.
///
/// ```
/// use chrono::Utc;
/// use enishi::CustomerId;
/// use enishi::link::{Claim, GrantState, IncentiveLedger, MemoryLinkStore};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // In production: `storage.incentives()`, the same database as the links.
/// let ledger = MemoryLinkStore::new();
/// let customer = CustomerId::new("C-1")?;
/// match ledger.claim("link-2026-12", &customer, Utc::now()).await? {
///     Claim::New(_) => {
///         // ... add 100 points in the shop's backend, then:
///         let (granted, now) = (GrantState::Granted, Utc::now());
///         ledger.settle("link-2026-12", &customer, granted, Some("100 points"), now).await?;
///     }
///     // Granted (or failed) already, or in flight elsewhere: nothing to do.
///     _ => {}
/// }
/// let again = ledger.claim("link-2026-12", &customer, Utc::now()).await?;
/// assert!(matches!(again, Claim::Settled(_)));
/// # Ok(()) }
/// ```
///
/// Incentive IDs are 1 to 128 bytes without control characters; a detail has no NUL
/// character. Anything else is [`LinkStoreError::InvalidConfig`], and nothing is written.
/// `now` is a parameter so tests control the clock; times are kept to the millisecond.
#[async_trait::async_trait]
pub trait IncentiveLedger: Send + Sync + fmt::Debug + 'static {
    /// Claims `incentive` for `customer`, atomically: a new claim is [`Claim::New`] for
    /// exactly one caller, whatever the number of concurrent callers and processes.
    ///
    /// # Errors
    /// [`LinkStoreError::InvalidConfig`] for an invalid incentive ID; backend errors.
    async fn claim(
        &self,
        incentive: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Claim, LinkStoreError>;

    /// Records the outcome of a claim this caller holds ([`GrantState::Granted`] or
    /// [`GrantState::Failed`]) with a detail; returns the settled grant.
    ///
    /// # Errors
    /// [`LinkStoreError::NoClaimInFlight`] when there is no unsettled claim (never claimed,
    /// released, or settled already: the recorded outcome is kept);
    /// [`LinkStoreError::InvalidConfig`] for an invalid incentive ID or detail, or `state`
    /// [`GrantState::Claimed`]; backend errors.
    async fn settle(
        &self,
        incentive: &str,
        customer: &CustomerId,
        state: GrantState,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IncentiveGrant, LinkStoreError>;

    /// Drops a claim whose grant certainly did not apply (the backend refused before
    /// processing), so a later attempt may claim again. Releasing a claim that does not exist
    /// (never claimed, or released already) does nothing.
    ///
    /// # Errors
    /// [`LinkStoreError::NoClaimInFlight`] when the grant is settled (a settled grant is never
    /// dropped); [`LinkStoreError::InvalidConfig`] for an invalid incentive ID; backend errors.
    async fn release(&self, incentive: &str, customer: &CustomerId) -> Result<(), LinkStoreError>;

    /// The grant of `incentive` to `customer`, `None` when it was never claimed (or released).
    ///
    /// # Errors
    /// [`LinkStoreError::InvalidConfig`] for an invalid incentive ID; backend errors.
    async fn grant_of(
        &self,
        incentive: &str,
        customer: &CustomerId,
    ) -> Result<Option<IncentiveGrant>, LinkStoreError>;

    /// Claims made before `older_than` and still unsettled (for an operator to reconcile),
    /// oldest first.
    ///
    /// # Errors
    /// Backend errors.
    async fn unsettled(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<IncentiveGrant>, LinkStoreError>;
}

// ---- shared checks -----------------------------------------------------------------------

/// Checks an incentive ID (input enishi's host owns: strict).
pub(crate) fn check_incentive(incentive: &str) -> Result<(), LinkStoreError> {
    let reason = if incentive.is_empty() {
        "must not be empty"
    } else if incentive.len() > MAX_INCENTIVE_BYTES {
        "must be at most 128 bytes"
    } else if incentive.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(LinkStoreError::InvalidConfig {
        what: "incentive ID",
        value: incentive.chars().take(MAX_INCENTIVE_BYTES).collect(),
        reason,
    })
}

/// Checks the arguments of a settle: the incentive ID, a settled state and the detail.
pub(crate) fn check_settle(
    incentive: &str,
    state: GrantState,
    detail: Option<&str>,
) -> Result<(), LinkStoreError> {
    check_incentive(incentive)?;
    if !state.is_settled() {
        return Err(LinkStoreError::InvalidConfig {
            what: "settled state",
            value: state.as_str().to_owned(),
            reason: "a claim settles as granted or failed",
        });
    }
    if detail.is_some_and(|d| d.contains('\0')) {
        return Err(LinkStoreError::InvalidConfig {
            what: "grant detail",
            value: String::new(),
            reason: "must not contain NUL characters",
        });
    }
    Ok(())
}

/// The error of a settle or release that found no unsettled claim; `found` is the record.
pub(crate) fn no_claim(
    incentive: &str,
    customer: &CustomerId,
    found: Option<&IncentiveGrant>,
) -> LinkStoreError {
    LinkStoreError::NoClaimInFlight {
        incentive: incentive.to_owned(),
        customer: customer.clone(),
        settled: found.map(|g| g.state).filter(|s| s.is_settled()),
    }
}

/// Reads a stored grant back (the SQL stores).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn grant_from_row(
    incentive: String,
    customer: String,
    state: &str,
    claimed_at_ms: i64,
    settled_at_ms: Option<i64>,
    detail: Option<String>,
) -> Result<IncentiveGrant, LinkStoreError> {
    use super::store::from_ms;
    Ok(IncentiveGrant {
        incentive,
        customer: super::store::customer(customer)?,
        state: GrantState::parse(state)?,
        claimed_at: from_ms(claimed_at_ms),
        settled_at: settled_at_ms.map(from_ms),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incentive_ids_are_checked() {
        assert!(check_incentive("link-2026-12").is_ok());
        assert!(check_incentive(&"x".repeat(128)).is_ok());
        for bad in ["", "a\nb", "\0", &"x".repeat(129)] {
            let e = check_incentive(bad).unwrap_err();
            assert!(matches!(e, LinkStoreError::InvalidConfig { what: "incentive ID", .. }));
        }
    }

    #[test]
    fn settle_needs_a_settled_state_and_a_detail_without_nul() {
        assert!(check_settle("i", GrantState::Granted, Some("100 points")).is_ok());
        assert!(check_settle("i", GrantState::Failed, None).is_ok());
        assert!(check_settle("i", GrantState::Claimed, None).is_err());
        assert!(check_settle("i", GrantState::Granted, Some("a\0b")).is_err());
        assert!(check_settle("", GrantState::Granted, None).is_err());
    }

    #[test]
    fn grant_states_round_trip() {
        for s in [GrantState::Claimed, GrantState::Granted, GrantState::Failed] {
            assert_eq!(GrantState::parse(s.as_str()).unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        assert!(matches!(GrantState::parse("paid"), Err(LinkStoreError::Corrupt(_))));
    }
}
