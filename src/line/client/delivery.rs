//! Delivery counts: messages delivered per day and channel of sending, sent counts per
//! endpoint, and the follower figures of a day.

use chrono::NaiveDate;
use serde::Deserialize;

use super::error::LineError;
use super::model::line_enum;
use super::request::Request;

line_enum!(
    /// Whether a day's figures are available.
    StatisticsStatus {
        /// Counted: the figures are final.
        Ready = "ready",
        /// Not counted yet (figures are ready a day or so later).
        Unready = "unready",
        /// The date is before the period LINE keeps figures for.
        OutOfService = "out_of_service",
    }
);

/// Messages delivered on one day (UTC+9), by how they were sent. Figures are `None` until
/// [`status`](Self::status) is ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeliveryStatistics {
    /// Whether the figures are available.
    pub status: StatisticsStatus,
    /// Broadcasts from the account manager.
    #[serde(default)]
    pub broadcast: Option<u64>,
    /// Targeted messages from the account manager.
    #[serde(default)]
    pub targeting: Option<u64>,
    /// Auto-response messages.
    #[serde(default)]
    pub auto_response: Option<u64>,
    /// Greeting messages.
    #[serde(default)]
    pub welcome_response: Option<u64>,
    /// Chat messages from staff.
    #[serde(default)]
    pub chat: Option<u64>,
    /// Broadcasts through the API.
    #[serde(default)]
    pub api_broadcast: Option<u64>,
    /// Push messages through the API.
    #[serde(default)]
    pub api_push: Option<u64>,
    /// Multicasts through the API.
    #[serde(default)]
    pub api_multicast: Option<u64>,
    /// Narrowcasts through the API.
    #[serde(default)]
    pub api_narrowcast: Option<u64>,
    /// Replies through the API.
    #[serde(default)]
    pub api_reply: Option<u64>,
}

/// Follower figures of one day (UTC+9).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FollowerStatistics {
    /// Whether the figures are available.
    pub status: StatisticsStatus,
    /// Times users added the account as a friend for the first time, up to that day.
    #[serde(default)]
    pub followers: Option<u64>,
    /// Users reachable by demographic targeting.
    #[serde(default)]
    pub targeted_reaches: Option<u64>,
    /// Users blocking the account.
    #[serde(default)]
    pub blocks: Option<u64>,
}

/// The endpoint whose sent-message count [`LineClient::sent_count`](super::LineClient::sent_count)
/// asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SentKind {
    /// Replies.
    Reply,
    /// Push messages.
    Push,
    /// Multicasts.
    Multicast,
    /// Broadcasts.
    Broadcast,
}

impl SentKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Reply, Self::Push, Self::Multicast, Self::Broadcast];

    fn path_segment(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Push => "push",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
        }
    }
}

/// Messages sent by one endpoint on one day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SentCount {
    /// Whether the figure is available.
    pub status: StatisticsStatus,
    /// Messages sent, once ready.
    #[serde(default)]
    pub success: Option<u64>,
}

fn yyyymmdd(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

impl super::LineClient {
    /// Messages delivered on `date` (UTC+9), by how they were sent.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn delivery_statistics(
        &self,
        date: NaiveDate,
    ) -> Result<DeliveryStatistics, LineError> {
        let request = Request::get("delivery_statistics", "/v2/bot/insight/message/delivery")
            .query("date", yyyymmdd(date));
        self.execute(request).await?.json()
    }

    /// Follower figures of `date` (UTC+9).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn follower_statistics(
        &self,
        date: NaiveDate,
    ) -> Result<FollowerStatistics, LineError> {
        let request = Request::get("follower_statistics", "/v2/bot/insight/followers")
            .query("date", yyyymmdd(date));
        self.execute(request).await?.json()
    }

    /// Messages sent by one endpoint on `date` (UTC+9).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn sent_count(
        &self,
        kind: SentKind,
        date: NaiveDate,
    ) -> Result<SentCount, LineError> {
        let request =
            Request::get("sent_count", format!("/v2/bot/message/delivery/{}", kind.path_segment()))
                .query("date", yyyymmdd(date));
        self.execute(request).await?.json()
    }
}
