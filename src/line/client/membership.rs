//! Memberships (LINE's paid subscription plans): the plans, a user's subscriptions, and the
//! IDs of a plan's members.

use std::collections::VecDeque;

use futures_util::Stream;
use serde::Deserialize;

use super::error::LineError;
use super::model::line_enum;
use super::request::Request;
use crate::LineUserId;

/// The most member IDs LINE returns per page.
const MEMBERS_PAGE_MAX: u32 = 1000;

line_enum!(
    /// The currency of a membership plan.
    MembershipCurrency {
        /// Japanese yen.
        Jpy = "JPY",
        /// New Taiwan dollar.
        Twd = "TWD",
        /// Thai baht.
        Thb = "THB",
    }
);

/// A membership plan of the account.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MembershipPlan {
    /// The plan ID.
    pub membership_id: i64,
    /// The plan's title.
    pub title: String,
    /// The plan's description.
    #[serde(default)]
    pub description: Option<String>,
    /// What members get.
    #[serde(default)]
    pub benefits: Vec<String>,
    /// The monthly price.
    pub price: f64,
    /// The currency of the price.
    pub currency: MembershipCurrency,
    /// Current members (absent in a user's subscription).
    #[serde(default)]
    pub member_count: Option<u64>,
    /// The most members the plan accepts, if limited.
    #[serde(default)]
    pub member_limit: Option<u64>,
    /// Whether the plan is bought in the LINE app (in-app purchase).
    #[serde(default)]
    pub is_in_app_purchase: Option<bool>,
    /// Whether the plan is published.
    #[serde(default)]
    pub is_published: Option<bool>,
}

/// A user's side of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MembershipMember {
    /// The user's member number in the plan.
    pub membership_no: u64,
    /// When the user joined, epoch seconds.
    pub joined_time: i64,
    /// The next billing date, `yyyy-MM-dd` in UTC+9.
    #[serde(default)]
    pub next_billing_date: Option<String>,
    /// Months subscribed in total.
    #[serde(default)]
    pub total_subscription_months: Option<u32>,
}

/// One plan a user subscribes to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MembershipSubscription {
    /// The plan.
    pub membership: MembershipPlan,
    /// The user's membership in it.
    pub user: MembershipMember,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembersPage {
    #[serde(default)]
    user_ids: Vec<LineUserId>,
    #[serde(default)]
    next: Option<String>,
}

impl super::LineClient {
    /// The account's membership plans.
    ///
    /// # Errors
    /// [`LineError::Api`] (404 when the account has no membership feature),
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn membership_plans(&self) -> Result<Vec<MembershipPlan>, LineError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            memberships: Vec<MembershipPlan>,
        }
        let request = Request::get("membership_plans", "/v2/bot/membership/list");
        Ok(self.execute(request).await?.json::<Wire>()?.memberships)
    }

    /// The plans a user subscribes to (empty when none).
    ///
    /// # Errors
    /// [`LineError::Api`] (400 for an invalid user ID, 404 when LINE has no membership
    /// information for the user), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn membership_subscriptions(
        &self,
        user: &LineUserId,
    ) -> Result<Vec<MembershipSubscription>, LineError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            subscriptions: Vec<MembershipSubscription>,
        }
        let request = Request::get(
            "membership_subscription",
            format!("/v2/bot/membership/subscription/{user}"),
        );
        Ok(self.execute(request).await?.json::<Wire>()?.subscriptions)
    }

    /// The IDs of a plan's members (friends who agreed to the terms and are active), as a
    /// stream fetching pages of `page_size` (1–1,000; LINE's default 300 when `None`).
    pub fn membership_member_ids(
        &self,
        membership_id: i64,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<LineUserId, LineError>> + Send + '_ {
        let limit = page_size.map(|n| n.clamp(1, MEMBERS_PAGE_MAX));
        let state = (None::<String>, false, VecDeque::<LineUserId>::new());
        futures_util::stream::try_unfold(
            state,
            move |(mut next, mut done, mut buffer)| async move {
                loop {
                    if let Some(id) = buffer.pop_front() {
                        return Ok(Some((id, (next, done, buffer))));
                    }
                    if done {
                        return Ok(None);
                    }
                    let request = Request::get(
                        "membership_member_ids",
                        format!("/v2/bot/membership/{membership_id}/users/ids"),
                    )
                    .query_opt("limit", limit)
                    .query_opt("start", next.as_deref());
                    let page: MembersPage = self.execute(request).await?.json()?;
                    done = page.next.is_none() || page.user_ids.is_empty();
                    next = page.next;
                    buffer.extend(page.user_ids);
                }
            },
        )
    }
}
