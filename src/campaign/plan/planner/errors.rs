//! Why a candidate gets no message, and why a plan fails.

use super::*;

/// How many affected customers an error lists by ID (the rest are counted).
const LISTED_CUSTOMERS: usize = 10;

/// Why a candidate gets no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExclusionReason {
    /// The customer has not linked a LINE account.
    NotLinked,
    /// The LINE user blocked the account or never added it.
    NotFollowing,
    /// No marketing consent.
    NoConsent,
    /// On the campaign's exclusion list.
    Excluded,
    /// An earlier candidate has the same LINE user (listed twice, or two customers linked to
    /// one LINE account): one message is enough.
    DuplicateLineUser,
    /// In the global holdout group.
    Holdout,
    /// The frequency cap is reached.
    FrequencyCap,
    /// A template variable has no value and no default ([`OnRenderError::Exclude`]).
    MissingVariable,
    /// The rendered message breaks LINE's limits ([`OnRenderError::Exclude`]).
    InvalidMessage,
}

impl ExclusionReason {
    /// Every reason, in the order they are checked.
    pub const ALL: [Self; 9] = [
        Self::NotLinked,
        Self::NotFollowing,
        Self::NoConsent,
        Self::Excluded,
        Self::DuplicateLineUser,
        Self::Holdout,
        Self::FrequencyCap,
        Self::MissingVariable,
        Self::InvalidMessage,
    ];

    /// The snake_case name used in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotLinked => "not_linked",
            Self::NotFollowing => "not_following",
            Self::NoConsent => "no_consent",
            Self::Excluded => "excluded",
            Self::DuplicateLineUser => "duplicate_line_user",
            Self::Holdout => "holdout",
            Self::FrequencyCap => "frequency_cap",
            Self::MissingVariable => "missing_variable",
            Self::InvalidMessage => "invalid_message",
        }
    }
}

impl fmt::Display for ExclusionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Some customers by ID, and how many there are in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AffectedCustomers {
    /// The first few, in candidate order.
    pub first: Vec<CustomerId>,
    /// How many in all.
    pub count: u64,
}

impl AffectedCustomers {
    pub(super) fn add(&mut self, customer: &CustomerId) {
        if self.first.len() < LISTED_CUSTOMERS {
            self.first.push(customer.clone());
        }
        self.count += 1;
    }
}

impl fmt::Display for AffectedCustomers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} customer{}", self.count, if self.count == 1 { "" } else { "s" })?;
        for (i, c) in self.first.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            f.write_str(c.as_str())?;
        }
        let more = self.count.saturating_sub(self.first.len() as u64);
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

/// A variable some recipients have no value for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MissingVariable {
    /// The variable.
    pub name: String,
    /// The customers without it.
    pub customers: AffectedCustomers,
}

impl fmt::Display for MissingVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` missing for {}", self.name, self.customers)
    }
}

/// Planning failed; nothing was planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The campaign definition cannot be planned (no arms, bad weights, 0 or more than 5
    /// messages, a static message breaking LINE's limits, ...).
    #[error("campaign `{campaign}` cannot be planned: {reason}")]
    InvalidCampaign {
        /// The campaign.
        campaign: CampaignId,
        /// What is wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Template variables without value or default, by variable.
    #[error("campaign `{campaign}`: template variables without value or default: {}", list(.missing))]
    MissingVariables {
        /// The campaign.
        campaign: CampaignId,
        /// One entry per variable, in order of first occurrence.
        missing: Vec<MissingVariable>,
    },
    /// Rendered messages break LINE's limits for some recipients.
    #[error("campaign `{campaign}`: rendered messages break LINE's limits for {customers}")]
    InvalidMessages {
        /// The campaign.
        campaign: CampaignId,
        /// The affected customers.
        customers: AffectedCustomers,
        /// The first violation found.
        #[source]
        source: ValidationError,
    },
}

fn list(missing: &[MissingVariable]) -> String {
    missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl PlanError {
    pub(super) fn invalid(campaign: &CampaignId, reason: impl Into<String>) -> Self {
        Self::InvalidCampaign { campaign: campaign.clone(), reason: reason.into(), source: None }
    }
}
