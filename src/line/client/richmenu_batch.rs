//! Rich-menu batch control (`/v2/bot/richmenu/batch`, its progress and validation) and rich-menu
//! statistics (`/v2/bot/insight/richmenu/{richMenuId}/summary` and `/daily`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::model::{line_enum, path_segment};
use super::ratelimit::EndpointClass;
use super::request::Request;
use crate::line::{ValidationError, Validator};
use crate::{RequestId, RichMenuId};

/// The most operations one `richmenu/batch` request may carry.
pub const RICH_MENU_BATCH_MAX_OPERATIONS: usize = 1_000;

/// One operation of a rich-menu batch request: it acts on **every** user linked to `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum RichMenuBatchOperation {
    /// Every user linked to `from` is linked to `to` instead.
    Link {
        /// The menu the users have now.
        from: RichMenuId,
        /// The menu they get.
        to: RichMenuId,
    },
    /// Every user linked to `from` loses the per-user menu (and sees the default).
    Unlink {
        /// The menu the users have now.
        from: RichMenuId,
    },
    /// Every per-user menu of the account is removed.
    UnlinkAll,
}

/// A `richmenu/batch` request: operations plus an optional resume key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
#[non_exhaustive]
pub struct RichMenuBatchRequest {
    /// The operations (1 to 1,000), applied in order.
    pub operations: Vec<RichMenuBatchOperation>,
    /// `^[a-zA-Z0-9_-]{1,100}$`: sending the same key again (within 14 days) resumes the
    /// request and processes only the users not yet processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_request_key: Option<String>,
}

impl RichMenuBatchRequest {
    /// A request with these operations and no resume key.
    pub fn new(operations: Vec<RichMenuBatchOperation>) -> Self {
        Self { operations, resume_request_key: None }
    }

    /// Sets the resume key (checked when sent).
    pub fn resume_request_key(mut self, key: impl Into<String>) -> Self {
        self.resume_request_key = Some(key.into());
        self
    }

    /// Checks the request against LINE's rules without sending it.
    ///
    /// # Errors
    /// [`ValidationError`] naming the first field that is wrong.
    pub fn check(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        v.count("operations", self.operations.len(), 1, RICH_MENU_BATCH_MAX_OPERATIONS);
        if let Some(key) = &self.resume_request_key
            && !is_resume_key(key)
        {
            v.violation_at("resumeRequestKey", "must match ^[a-zA-Z0-9_-]{1,100}$");
        }
        v.finish()
    }
}

/// Whether `key` matches `^[a-zA-Z0-9_-]{1,100}$`.
#[must_use]
pub fn is_resume_key(key: &str) -> bool {
    (1..=100).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

line_enum!(
    /// Where a rich-menu batch request stands.
    RichMenuBatchPhase {
        /// Still running.
        Ongoing = "ongoing",
        /// Done for every user.
        Succeeded = "succeeded",
        /// Stopped: some users may not have been processed (send the request again with the
        /// same resume key to finish it).
        Failed = "failed",
    }
);

/// The progress of a rich-menu batch request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuBatchProgress {
    /// The phase.
    pub phase: RichMenuBatchPhase,
    /// When LINE accepted the request.
    pub accepted_time: DateTime<Utc>,
    /// When it succeeded or failed.
    #[serde(default)]
    pub completed_time: Option<DateTime<Utc>>,
}

/// A count and the number of distinct users behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuMetrics {
    /// Impressions or taps.
    #[serde(default)]
    pub count: u64,
    /// Distinct users.
    #[serde(default)]
    pub unique_users: u64,
}

/// One day's figures.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuDailyMetrics {
    /// `yyyyMMdd` (UTC+9).
    pub date: String,
    /// Impressions or taps that day.
    #[serde(default)]
    pub count: u64,
    /// Distinct users that day.
    #[serde(default)]
    pub unique_users: u64,
}

/// The taps on one area of a menu.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RichMenuAreaClicks<M> {
    /// The area, kept as LINE sent it.
    #[serde(default)]
    pub bounds: serde_json::Value,
    /// The figures.
    pub metrics: M,
}

/// Statistics of a menu over a period. LINE omits everything but the ID when the unique
/// clicks are under its privacy threshold: then `impression` is `None` and `clicks` empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuInsight<I, C> {
    /// The menu.
    pub rich_menu_id: RichMenuId,
    /// First day counted (`yyyyMMdd`).
    #[serde(default)]
    pub metrics_from: Option<String>,
    /// Last day counted (`yyyyMMdd`).
    #[serde(default)]
    pub metrics_to: Option<String>,
    /// Impressions of the whole menu.
    #[serde(default)]
    pub impression: Option<RichMenuImpression<I>>,
    /// Taps per area, in the menu's area order.
    #[serde(default = "Vec::new")]
    pub clicks: Vec<RichMenuAreaClicks<C>>,
}

/// The impressions of a menu.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RichMenuImpression<M> {
    /// The figures.
    pub metrics: M,
}

/// [`LineClient::rich_menu_insight_summary`](super::LineClient::rich_menu_insight_summary)'s
/// answer: totals over the period.
pub type RichMenuInsightSummary = RichMenuInsight<RichMenuMetrics, RichMenuMetrics>;
/// [`LineClient::rich_menu_insight_daily`](super::LineClient::rich_menu_insight_daily)'s
/// answer: one entry per day.
pub type RichMenuInsightDaily =
    RichMenuInsight<Vec<RichMenuDailyMetrics>, Vec<RichMenuDailyMetrics>>;

impl<I, C> RichMenuInsight<I, C> {
    /// Whether LINE withheld the figures (too few unique clicks).
    #[must_use]
    pub fn below_threshold(&self) -> bool {
        self.impression.is_none()
    }
}

fn check_period(from: NaiveDate, to: NaiveDate, max_days: i64) -> Result<(), ValidationError> {
    let mut v = Validator::new();
    if to < from {
        v.violation_at("to", "must not be before `from`");
    } else if (to - from).num_days() > max_days {
        v.violation_at("to", format!("must be at most {max_days} days after `from`"));
    }
    v.finish()
}

impl super::LineClient {
    /// Sends a rich-menu batch request (**3 calls/hour**, paced by
    /// [`EndpointClass::RichMenuBatch`]) and returns its request ID, for
    /// [`rich_menu_batch_progress`](Self::rich_menu_batch_progress). LINE applies it
    /// asynchronously. Not retried: after a failure, send it again with the same resume key.
    ///
    /// # Errors
    /// [`LineError::Validation`] before sending; [`LineError::Api`], [`LineError::Transport`];
    /// [`LineError::Decode`] when LINE sent no `x-line-request-id`.
    pub async fn rich_menu_batch(
        &self,
        request: &RichMenuBatchRequest,
    ) -> Result<RequestId, LineError> {
        request.check()?;
        let call = Request::post("rich_menu_batch", "/v2/bot/richmenu/batch")
            .class(EndpointClass::RichMenuBatch)
            .json(request)?;
        let answer = self.execute(call).await?;
        match answer.request_id.clone() {
            Some(id) => Ok(id),
            None => Err(LineError::Decode {
                endpoint: answer.endpoint,
                status: answer.status,
                request_id: None,
                body: String::from_utf8_lossy(&answer.body).into_owned(),
                source: serde_json::Error::io(std::io::Error::other(
                    "the response carries no x-line-request-id",
                )),
            }),
        }
    }

    /// Asks LINE to validate a batch request (not counted against the 3/hour limit).
    ///
    /// # Errors
    /// [`LineError::Validation`] locally; [`LineError::Api`] with LINE's details.
    pub async fn validate_rich_menu_batch(
        &self,
        request: &RichMenuBatchRequest,
    ) -> Result<(), LineError> {
        request.check()?;
        let call = Request::post("validate_rich_menu_batch", "/v2/bot/richmenu/validate/batch")
            .json(request)?;
        self.execute(call).await?;
        Ok(())
    }

    /// The progress of a batch request (100 calls/hour; kept 14 days).
    ///
    /// # Errors
    /// [`LineError::Api`] (404 for an unknown request), [`LineError::Transport`],
    /// [`LineError::Decode`].
    pub async fn rich_menu_batch_progress(
        &self,
        request_id: &RequestId,
    ) -> Result<RichMenuBatchProgress, LineError> {
        let call = Request::get("rich_menu_batch_progress", "/v2/bot/richmenu/progress/batch")
            .class(EndpointClass::RichMenuManage)
            .query("requestId", request_id.as_str());
        self.execute(call).await?.json()
    }

    /// A menu's impressions and taps per area over `from..=to` (days in UTC+9, at most 396
    /// days apart; 60 calls/hour, an unconfirmed figure).
    ///
    /// # Errors
    /// [`LineError::Validation`] for a bad period; [`LineError::Api`] (404 for an unknown
    /// menu), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn rich_menu_insight_summary(
        &self,
        menu: &RichMenuId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RichMenuInsightSummary, LineError> {
        check_period(from, to, 396)?;
        let path = format!("/v2/bot/insight/richmenu/{}/summary", path_segment(menu.as_str()));
        let call = Request::get("rich_menu_insight_summary", path)
            .class(EndpointClass::Insight)
            .query("from", from.format("%Y%m%d"))
            .query("to", to.format("%Y%m%d"));
        self.execute(call).await?.json()
    }

    /// A menu's impressions and taps per area, per day over `from..=to` (at most 99 days
    /// apart).
    ///
    /// # Errors
    /// As [`rich_menu_insight_summary`](Self::rich_menu_insight_summary).
    pub async fn rich_menu_insight_daily(
        &self,
        menu: &RichMenuId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RichMenuInsightDaily, LineError> {
        check_period(from, to, 99)?;
        let path = format!("/v2/bot/insight/richmenu/{}/daily", path_segment(menu.as_str()));
        let call = Request::get("rich_menu_insight_daily", path)
            .class(EndpointClass::Insight)
            .query("from", from.format("%Y%m%d"))
            .query("to", to.format("%Y%m%d"));
        self.execute(call).await?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_requests_serialise_as_line_documents_them() {
        let a = RichMenuId::new("richmenu-a").unwrap();
        let b = RichMenuId::new("richmenu-b").unwrap();
        let req = RichMenuBatchRequest::new(vec![
            RichMenuBatchOperation::Link { from: a.clone(), to: b },
            RichMenuBatchOperation::Unlink { from: a },
            RichMenuBatchOperation::UnlinkAll,
        ])
        .resume_request_key("k-1");
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"operations": [
                {"type": "link", "from": "richmenu-a", "to": "richmenu-b"},
                {"type": "unlink", "from": "richmenu-a"},
                {"type": "unlinkAll"}], "resumeRequestKey": "k-1"})
        );
        assert!(req.check().is_ok());
        assert!(RichMenuBatchRequest::new(vec![]).check().is_err());
        let bad = RichMenuBatchRequest::new(vec![RichMenuBatchOperation::UnlinkAll])
            .resume_request_key("no spaces");
        assert!(bad.check().is_err());
    }

    #[test]
    fn insight_below_threshold_decodes() {
        let s: RichMenuInsightSummary =
            serde_json::from_str(r#"{"richMenuId":"richmenu-1"}"#).unwrap();
        assert!(s.below_threshold());
        let d: RichMenuInsightDaily = serde_json::from_str(
            r#"{"richMenuId":"richmenu-1","metricsFrom":"20260213","metricsTo":"20260214",
               "impression":{"metrics":[{"date":"20260213","count":3,"uniqueUsers":2}]},
               "clicks":[{"bounds":{"x":0,"y":0,"width":1,"height":1},
                          "metrics":[{"date":"20260213","count":1,"uniqueUsers":1}]}]}"#,
        )
        .unwrap();
        assert_eq!(d.impression.unwrap().metrics[0].count, 3);
        assert_eq!(d.clicks.len(), 1);
    }
}
