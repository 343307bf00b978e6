//! Link incentives (UC-02): points or a coupon for linking, granted once per customer.

use chrono::{DateTime, Utc};

/// What a customer gets for linking their LINE account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reward {
    /// Points added to the customer's balance at the shop (the backend's `grant_points`).
    Points {
        /// How many.
        points: u32,
    },
    /// A coupon code shown on the done page and in the LINE reply (the shop set it up in its
    /// cart; enishi only hands it out).
    Coupon {
        /// What the coupon is, as the customer reads it (e.g. `送料無料クーポン`).
        name: String,
        /// The code to enter at checkout.
        code: String,
    },
}

impl Reward {
    /// How the customer reads it: `100ポイント` or the coupon's name.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::Points { points } => format!("{}ポイント", group_thousands(*points)),
            Self::Coupon { name, .. } => name.clone(),
        }
    }

    /// The coupon code, for a coupon.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Points { .. } => None,
            Self::Coupon { code, .. } => Some(code),
        }
    }
}

/// A link incentive: one [`Reward`] per customer, on their first link, optionally only for
/// links made before a deadline. The `id` names the ledger entry: a new campaign with a new id
/// rewards customers again; the same id never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIncentive {
    id: String,
    reward: Reward,
    deadline: Option<DateTime<Utc>>,
}

impl LinkIncentive {
    /// `points` for linking, recorded under `id` (e.g. `link-2026`).
    #[must_use]
    pub fn points(id: impl Into<String>, points: u32) -> Self {
        Self { id: id.into(), reward: Reward::Points { points }, deadline: None }
    }

    /// A coupon for linking, recorded under `id`.
    #[must_use]
    pub fn coupon(id: impl Into<String>, name: impl Into<String>, code: impl Into<String>) -> Self {
        let reward = Reward::Coupon { name: name.into(), code: code.into() };
        Self { id: id.into(), reward, deadline: None }
    }

    /// Only links made before `deadline` are rewarded.
    #[must_use]
    pub fn until(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The ledger id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The reward.
    #[must_use]
    pub fn reward(&self) -> &Reward {
        &self.reward
    }

    /// The deadline, if any.
    #[must_use]
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Whether a link made at `now` is rewarded.
    #[must_use]
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.deadline.is_none_or(|d| now < d)
    }

    /// The deadline as the customer reads it (`2026年12月31日`, JST), if any.
    #[must_use]
    pub fn deadline_ja(&self) -> Option<String> {
        // The last instant still rewarded, so a midnight deadline reads as the day before.
        self.deadline.map(|d| crate::clock::format_jst_date_ja(d - chrono::Duration::seconds(1)))
    }
}

fn group_thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_a_customer_reads_them() {
        assert_eq!(LinkIncentive::points("a", 1500).reward().label(), "1,500ポイント");
        assert_eq!(LinkIncentive::points("a", 100).reward().label(), "100ポイント");
        let c = LinkIncentive::coupon("c", "送料無料クーポン", "LINE10");
        assert_eq!(c.reward().label(), "送料無料クーポン");
        assert_eq!(c.reward().code(), Some("LINE10"));
    }

    #[test]
    fn a_deadline_closes_the_incentive_and_reads_in_jst() {
        // 2027-01-01 00:00 JST = 2026-12-31 15:00 UTC: the last rewarded day is Dec 31.
        let deadline = "2026-12-31T15:00:00Z".parse().unwrap();
        let i = LinkIncentive::points("a", 100).until(deadline);
        assert!(i.is_open("2026-12-31T14:59:59Z".parse().unwrap()));
        assert!(!i.is_open(deadline));
        assert_eq!(i.deadline_ja().as_deref(), Some("2026年12月31日"));
    }
}
