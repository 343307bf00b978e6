//! Audience groups uploaded from user IDs, so a segment can be sent by narrowcast.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::model::line_enum;
use super::ratelimit::EndpointClass;
use super::request::Request;
use crate::line::Validator;
use crate::{AudienceGroupId, LineUserId};

/// The most user IDs LINE accepts in one JSON upload.
pub const AUDIENCE_UPLOAD_CHUNK: usize = 10_000;
/// LINE asks for a timeout of at least 30 s on audience calls.
const AUDIENCE_TIMEOUT: Duration = Duration::from_secs(30);
/// All audience endpoints share one limit (60/minute), hence one bucket.
const AUDIENCE_BUCKET: &str = "audience";

line_enum!(
    /// The state of an audience group.
    AudienceGroupStatus {
        /// Being built.
        InProgress = "IN_PROGRESS",
        /// Ready: usable by narrowcast.
        Ready = "READY",
        /// Building failed.
        Failed = "FAILED",
        /// Past its 180-day life.
        Expired = "EXPIRED",
        /// Inactive.
        Inactive = "INACTIVE",
        /// Being re-activated.
        Activating = "ACTIVATING",
    }
);

/// An audience group as LINE describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudienceGroup {
    /// The ID.
    pub audience_group_id: AudienceGroupId,
    /// The name (unique per channel, case-insensitive).
    #[serde(default)]
    pub description: Option<String>,
    /// The state (absent in the creation answer, where it is implicitly in progress).
    #[serde(default)]
    pub status: Option<AudienceGroupStatus>,
    /// The type (`UPLOAD`, `CLICK`, ...).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The number of users (after LINE dropped IDs it cannot use).
    #[serde(default)]
    pub audience_count: Option<u64>,
    /// Creation time, epoch seconds.
    #[serde(default)]
    pub created: Option<i64>,
    /// Expiry time, epoch seconds.
    #[serde(default)]
    pub expire_timestamp: Option<i64>,
}

impl AudienceGroup {
    /// Whether narrowcast can use it now.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.status == Some(AudienceGroupStatus::Ready)
    }
}

#[derive(Serialize)]
struct IdWire<'a> {
    id: &'a LineUserId,
}

fn wire_ids(ids: &[LineUserId]) -> Vec<IdWire<'_>> {
    ids.iter().map(|id| IdWire { id }).collect()
}

impl super::LineClient {
    /// Creates an upload audience from user IDs. More than 10,000 IDs are sent as one creation
    /// and then additions of at most 10,000 each (one at a time: LINE allows 10 concurrent
    /// jobs per audience). LINE builds it asynchronously: poll [`audience_group`](Self::audience_group)
    /// until it is ready. Check IDs first: one invalid ID fails a whole upload.
    ///
    /// # Errors
    /// [`LineError::Validation`] (empty list, description not 1–120 characters); then the
    /// first failing call's error.
    pub async fn create_audience(
        &self,
        description: &str,
        ids: &[LineUserId],
    ) -> Result<AudienceGroup, LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            description: &'a str,
            is_ifa_audience: bool,
            audiences: Vec<IdWire<'a>>,
        }
        let mut v = Validator::new();
        v.char_len("description", description, 1, 120);
        v.count("audiences", ids.len(), 1, usize::MAX);
        v.finish()?;
        let (first, rest) = ids.split_at(ids.len().min(AUDIENCE_UPLOAD_CHUNK));
        let request =
            audience_request(Request::post("create_audience", "/v2/bot/audienceGroup/upload"))
                .json(&Wire { description, is_ifa_audience: false, audiences: wire_ids(first) })?;
        let group: AudienceGroup = self.execute(request).await?.json()?;
        if !rest.is_empty() {
            self.add_to_audience(group.audience_group_id, rest).await?;
        }
        Ok(group)
    }

    /// Adds user IDs to an upload audience, in calls of at most 10,000. Users can never be
    /// removed from an audience: build a new one instead.
    ///
    /// # Errors
    /// [`LineError::Validation`] for an empty list; then the first failing call's error.
    pub async fn add_to_audience(
        &self,
        audience: AudienceGroupId,
        ids: &[LineUserId],
    ) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            audience_group_id: AudienceGroupId,
            audiences: Vec<IdWire<'a>>,
        }
        let mut v = Validator::new();
        v.count("audiences", ids.len(), 1, usize::MAX);
        v.finish()?;
        for chunk in ids.chunks(AUDIENCE_UPLOAD_CHUNK) {
            let request =
                audience_request(Request::put("add_to_audience", "/v2/bot/audienceGroup/upload"))
                    .json(&Wire { audience_group_id: audience, audiences: wire_ids(chunk) })?;
            self.execute(request).await?;
        }
        Ok(())
    }

    /// An audience group and its status.
    ///
    /// # Errors
    /// [`LineError::Api`] (400/404 for an unknown ID), [`LineError::Transport`],
    /// [`LineError::Decode`].
    pub async fn audience_group(
        &self,
        audience: AudienceGroupId,
    ) -> Result<AudienceGroup, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            audience_group: AudienceGroup,
        }
        let request = audience_request(Request::get(
            "get_audience",
            format!("/v2/bot/audienceGroup/{audience}"),
        ));
        Ok(self.execute(request).await?.json::<Wire>()?.audience_group)
    }
}

fn audience_request(request: Request) -> Request {
    request.class(EndpointClass::Audience).bucket(AUDIENCE_BUCKET).timeout(AUDIENCE_TIMEOUT)
}
