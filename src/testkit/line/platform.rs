//! State of the 2025–26 endpoints the fake serves: memberships, content users sent, audience
//! kinds and shared audiences, issued channel access tokens, and the request recorder.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;

use super::endpoint::Endpoint;

/// Content a user sent (an image, video, audio or file message), served by the fake's data
/// host at `/v2/bot/message/{messageId}/content`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeContent {
    /// The `Content-Type` to answer with.
    pub content_type: String,
    /// The bytes.
    pub data: Bytes,
    /// The preview image, for images and videos.
    pub preview: Option<Bytes>,
    /// The preparation status: `processing`, `succeeded` (default) or `failed`.
    pub transcoding: String,
}

impl FakeContent {
    /// Content of `content_type`, ready to download.
    #[must_use]
    pub fn new(content_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            content_type: content_type.into(),
            data: data.into(),
            preview: None,
            transcoding: "succeeded".to_owned(),
        }
    }

    /// With a preview image.
    #[must_use]
    pub fn preview(mut self, preview: impl Into<Bytes>) -> Self {
        self.preview = Some(preview.into());
        self
    }

    /// With a preparation status (`processing`, `succeeded`, `failed`).
    #[must_use]
    pub fn transcoding(mut self, status: impl Into<String>) -> Self {
        self.transcoding = status.into();
        self
    }
}

/// One request the fake received while recording
/// ([`FakeLineBuilder::record_requests`](super::FakeLineBuilder::record_requests)), as sent:
/// for checking every request a client makes against LINE's API description.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The endpoint it was routed to.
    pub endpoint: Endpoint,
    /// Whether it came to the data host.
    pub data_host: bool,
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/v2/bot/profile/U...`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The headers (including `Authorization`: keep recordings out of logs).
    pub headers: HeaderMap,
    /// The body (empty when it was over the size limit).
    pub body: Bytes,
}

/// A membership member.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) user_id: String,
    pub(crate) no: u64,
    pub(crate) joined_unix: i64,
}

/// What kind of audience a non-upload audience is.
#[derive(Debug, Clone)]
pub(crate) struct AudienceMeta {
    pub(crate) kind: &'static str,
    pub(crate) request_id: String,
    pub(crate) click_url: Option<String>,
}

/// A shared audience (owned by the Business Manager).
#[derive(Debug, Clone)]
pub(crate) struct SharedAudience {
    pub(crate) id: i64,
    pub(crate) description: String,
    pub(crate) owner: String,
    pub(crate) created_unix: i64,
}

/// A channel access token the fake issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedAccessToken {
    /// `None` for stateless tokens.
    pub(crate) key_id: Option<String>,
    pub(crate) expires_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Platform {
    /// Plans as LINE lists them (`membershipId`, `title`, ...), without `memberCount`.
    pub(crate) plans: Vec<Value>,
    pub(crate) members: BTreeMap<i64, Vec<Member>>,
    pub(crate) contents: HashMap<String, FakeContent>,
    pub(crate) audience_meta: HashMap<i64, AudienceMeta>,
    pub(crate) shared: BTreeMap<i64, SharedAudience>,
    pub(crate) tokens: HashMap<String, IssuedAccessToken>,
    pub(crate) recording: bool,
    pub(crate) recorded: Vec<RecordedRequest>,
}
