//! Quota, consumption and message statistics (opens and clicks for campaign KPIs).

use chrono::NaiveDate;
use serde::Deserialize;

use super::error::LineError;
use super::model::line_enum;
use super::ratelimit::EndpointClass;
use super::request::Request;
use crate::line::Validator;
use crate::{AggregationUnit, RequestId};

line_enum!(
    /// Whether the monthly message quota is limited.
    QuotaType {
        /// No limit.
        None = "none",
        /// Limited to `value` messages a month.
        Limited = "limited",
    }
);

/// The monthly message quota.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Quota {
    /// Limited or not.
    #[serde(rename = "type")]
    pub kind: QuotaType,
    /// The limit, when limited.
    #[serde(default)]
    pub value: Option<u64>,
}

/// The overview of a send's statistics. LINE reports values below 20 as `null` (`None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StatisticsOverview {
    /// The request ID (per-request statistics only).
    #[serde(default)]
    pub request_id: Option<RequestId>,
    /// When the send happened, epoch seconds (per-request statistics only).
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Messages delivered (per-request statistics only).
    #[serde(default)]
    pub delivered: Option<u64>,
    /// Users who opened at least one message.
    #[serde(default)]
    pub unique_impression: Option<u64>,
    /// Users who tapped at least one URL.
    #[serde(default)]
    pub unique_click: Option<u64>,
    /// Users who started a video or audio.
    #[serde(default)]
    pub unique_media_played: Option<u64>,
    /// Users who played a video or audio to the end.
    #[serde(default)]
    pub unique_media_played_100_percent: Option<u64>,
}

/// Statistics of one message (bubble) of a send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MessageStatistics {
    /// The message's position in the send (1-based).
    pub seq: u32,
    /// Opens.
    #[serde(default)]
    pub impression: Option<u64>,
    /// Users who opened it.
    #[serde(default)]
    pub unique_impression: Option<u64>,
    /// Media plays.
    #[serde(default)]
    pub media_played: Option<u64>,
    /// Users who played media.
    #[serde(default)]
    pub unique_media_played: Option<u64>,
}

/// Statistics of one URL in a send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClickStatistics {
    /// The message's position in the send (1-based).
    pub seq: u32,
    /// The URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Taps.
    #[serde(default)]
    pub click: Option<u64>,
    /// Users who tapped.
    #[serde(default)]
    pub unique_click: Option<u64>,
    /// Users who tapped, among this request's recipients.
    #[serde(default)]
    pub unique_click_of_request: Option<u64>,
}

/// Interaction statistics of a send or of an aggregation unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InteractionStatistics {
    /// Totals.
    #[serde(default)]
    pub overview: StatisticsOverview,
    /// Per message.
    #[serde(default)]
    pub messages: Vec<MessageStatistics>,
    /// Per URL.
    #[serde(default)]
    pub clicks: Vec<ClickStatistics>,
}

fn yyyymmdd(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

impl super::LineClient {
    /// The monthly message quota.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn quota(&self) -> Result<Quota, LineError> {
        self.execute(Request::get("quota", "/v2/bot/message/quota")).await?.json()
    }

    /// Messages sent this month that count against the quota.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn quota_consumption(&self) -> Result<u64, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            total_usage: u64,
        }
        let request = Request::get("quota_consumption", "/v2/bot/message/quota/consumption");
        Ok(self.execute(request).await?.json::<Wire>()?.total_usage)
    }

    /// Statistics of one narrowcast or broadcast by its request ID (60 calls/hour). Numbers
    /// keep changing for 14 days after the send.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn message_statistics(
        &self,
        request_id: &RequestId,
    ) -> Result<InteractionStatistics, LineError> {
        let request = Request::get("message_statistics", "/v2/bot/insight/message/event")
            .class(EndpointClass::Insight)
            .query("requestId", request_id);
        self.execute(request).await?.json()
    }

    /// Statistics of every push and multicast tagged with an aggregation unit, between two
    /// dates (UTC+9, `to` at most 30 days after `from`; 60 calls/hour).
    ///
    /// # Errors
    /// [`LineError::Validation`] for a bad date range; [`LineError::Api`],
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn aggregation_unit_statistics(
        &self,
        unit: &AggregationUnit,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<InteractionStatistics, LineError> {
        let mut v = Validator::new();
        let days = (to - from).num_days();
        if !(0..=30).contains(&days) {
            v.violation_at("to", format!("must be 0 to 30 days after `from` (got {days})"));
        }
        v.finish()?;
        let request = Request::get(
            "aggregation_unit_statistics",
            "/v2/bot/insight/message/event/aggregation",
        )
        .class(EndpointClass::Insight)
        .query("customAggregationUnit", unit)
        .query("from", yyyymmdd(from))
        .query("to", yyyymmdd(to));
        self.execute(request).await?.json()
    }

    /// How many aggregation unit names were used this month.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn aggregation_unit_usage(&self) -> Result<u64, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            num_of_custom_aggregation_units: u64,
        }
        let request = Request::get("aggregation_unit_usage", "/v2/bot/message/aggregation/info");
        Ok(self.execute(request).await?.json::<Wire>()?.num_of_custom_aggregation_units)
    }

    /// The aggregation unit names used this month (all pages).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn aggregation_units(&self) -> Result<Vec<String>, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            #[serde(default)]
            custom_aggregation_units: Vec<String>,
            #[serde(default)]
            next: Option<String>,
        }
        let mut units = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = Request::get("aggregation_units", "/v2/bot/message/aggregation/list")
                .query("limit", 100)
                .query_opt("start", next.as_deref());
            let page: Wire = self.execute(request).await?.json()?;
            let empty = page.custom_aggregation_units.is_empty();
            units.extend(page.custom_aggregation_units);
            match page.next {
                Some(n) if !empty => next = Some(n),
                _ => return Ok(units),
            }
        }
    }
}
