//! Audiences beyond uploads: click- and impression-based retargeting audiences, listing with
//! paging, renaming, deleting, and audiences shared through the Business Manager.

use serde::{Deserialize, Serialize};

use super::audience::{AudienceGroup, AudienceGroupStatus};
use super::error::LineError;
use super::ratelimit::EndpointClass;
use super::request::Request;
use crate::line::Validator;
use crate::{AudienceGroupId, RequestId};

/// The most audiences LINE returns per list page.
const LIST_PAGE_MAX: u32 = 40;

fn managed(request: Request) -> Request {
    // All Manage Audience endpoints share LINE's one limit (60/minute).
    request
        .class(EndpointClass::Audience)
        .bucket("audience")
        .timeout(std::time::Duration::from_secs(30))
}

/// Filters of [`LineClient::audience_groups`](super::LineClient::audience_groups) and
/// [`LineClient::shared_audience_groups`](super::LineClient::shared_audience_groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct AudienceListQuery {
    page: u32,
    size: Option<u32>,
    description: Option<String>,
    status: Option<AudienceGroupStatus>,
    include_external_public_groups: Option<bool>,
    create_route: Option<String>,
}

impl AudienceListQuery {
    /// Page `page` (1-based) of every audience.
    pub fn page(page: u32) -> Self {
        Self { page, ..Self::default() }
    }

    /// Audiences per page (1–40, LINE's default 20).
    pub fn size(mut self, size: u32) -> Self {
        self.size = Some(size);
        self
    }

    /// Only audiences whose name contains `text` (case-insensitive).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Only audiences in this state.
    pub fn status(mut self, status: AudienceGroupStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether to include public audiences of other channels of the same bot (LINE's
    /// default: yes). Ignored by the shared list.
    pub fn include_external_public_groups(mut self, include: bool) -> Self {
        self.include_external_public_groups = Some(include);
        self
    }

    /// Only audiences created this way: `OA_MANAGER`, `MESSAGING_API`, `POINT_AD`,
    /// `AD_MANAGER`.
    pub fn create_route(mut self, route: impl Into<String>) -> Self {
        self.create_route = Some(route.into());
        self
    }

    /// This query, for the next page.
    pub fn next_page(mut self) -> Self {
        self.page = self.page.saturating_add(1);
        self
    }

    fn apply(&self, request: Request, shared: bool) -> Result<Request, LineError> {
        let mut v = Validator::new();
        if self.page == 0 {
            v.violation_at("page", "must be 1 or more");
        }
        if let Some(size) = self.size
            && !(1..=LIST_PAGE_MAX).contains(&size)
        {
            v.violation_at("size", "must be 1 to 40");
        }
        v.finish()?;
        let request = request
            .query("page", self.page)
            .query_opt("description", self.description.as_deref())
            .query_opt("status", self.status.as_ref().map(AudienceGroupStatus::as_str))
            .query_opt("size", self.size)
            .query_opt("createRoute", self.create_route.as_deref());
        Ok(if shared {
            request
        } else {
            request.query_opt("includesExternalPublicGroups", self.include_external_public_groups)
        })
    }
}

/// One page of audiences.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudienceGroupPage {
    /// The audiences on this page.
    #[serde(default)]
    pub audience_groups: Vec<AudienceGroup>,
    /// Whether another page follows.
    #[serde(default)]
    pub has_next_page: bool,
    /// Audiences matching the filter, on all pages.
    #[serde(default)]
    pub total_count: u64,
    /// Of those, audiences this channel can change.
    #[serde(default)]
    pub read_write_audience_group_total_count: Option<u64>,
    /// This page's number.
    #[serde(default)]
    pub page: u32,
    /// The page size.
    #[serde(default)]
    pub size: u32,
}

/// Who owns a shared audience.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudienceOwner {
    /// The service that owns it (e.g. `bizmanager`).
    #[serde(default)]
    pub service_type: Option<String>,
    /// The owner's ID.
    #[serde(default)]
    pub id: Option<String>,
    /// The owner's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A shared audience and its owner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SharedAudienceGroup {
    /// The audience.
    pub audience_group: AudienceGroup,
    /// Its owner.
    #[serde(default)]
    pub owner: Option<AudienceOwner>,
}

fn check_name(v: &mut Validator, description: &str) {
    v.char_len("description", description, 1, 120);
}

impl super::LineClient {
    /// Creates an audience of the users who tapped a URL in a broadcast or narrowcast sent in
    /// the last 60 days (`click_url`: that URL only; `None`: any URL of the send).
    ///
    /// # Errors
    /// [`LineError::Validation`] (name not 1–120 characters, URL over 2,000 characters);
    /// [`LineError::Api`] (e.g. an unknown request ID), [`LineError::Transport`],
    /// [`LineError::Decode`].
    pub async fn create_click_audience(
        &self,
        description: &str,
        request_id: &RequestId,
        click_url: Option<&str>,
    ) -> Result<AudienceGroup, LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            description: &'a str,
            request_id: &'a RequestId,
            #[serde(skip_serializing_if = "Option::is_none")]
            click_url: Option<&'a str>,
        }
        let mut v = Validator::new();
        check_name(&mut v, description);
        if let Some(url) = click_url {
            v.char_len("clickUrl", url, 1, 2000);
        }
        v.finish()?;
        let request =
            managed(Request::post("create_click_audience", "/v2/bot/audienceGroup/click"))
                .json(&Wire { description, request_id, click_url })?;
        self.execute(request).await?.json()
    }

    /// Creates an audience of the users who opened a broadcast or narrowcast sent in the
    /// last 60 days.
    ///
    /// # Errors
    /// As [`create_click_audience`](Self::create_click_audience).
    pub async fn create_impression_audience(
        &self,
        description: &str,
        request_id: &RequestId,
    ) -> Result<AudienceGroup, LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            description: &'a str,
            request_id: &'a RequestId,
        }
        let mut v = Validator::new();
        check_name(&mut v, description);
        v.finish()?;
        let request = managed(Request::post("create_imp_audience", "/v2/bot/audienceGroup/imp"))
            .json(&Wire { description, request_id })?;
        self.execute(request).await?.json()
    }

    /// Renames an audience.
    ///
    /// # Errors
    /// [`LineError::Validation`] (name not 1–120 characters); [`LineError::Api`] (unknown
    /// audience, or a name already used), [`LineError::Transport`].
    pub async fn rename_audience(
        &self,
        audience: AudienceGroupId,
        description: &str,
    ) -> Result<(), LineError> {
        #[derive(Serialize)]
        struct Wire<'a> {
            description: &'a str,
        }
        let mut v = Validator::new();
        check_name(&mut v, description);
        v.finish()?;
        let request = managed(Request::put(
            "rename_audience",
            format!("/v2/bot/audienceGroup/{audience}/updateDescription"),
        ))
        .json(&Wire { description })?;
        self.execute(request).await?;
        Ok(())
    }

    /// Deletes an audience (narrowcasts already accepted are not affected).
    ///
    /// # Errors
    /// [`LineError::Api`] (unknown audience), [`LineError::Transport`].
    pub async fn delete_audience(&self, audience: AudienceGroupId) -> Result<(), LineError> {
        let request = managed(Request::delete(
            "delete_audience",
            format!("/v2/bot/audienceGroup/{audience}"),
        ));
        self.execute(request).await?;
        Ok(())
    }

    /// One page of the channel's audiences; follow
    /// [`has_next_page`](AudienceGroupPage::has_next_page) with
    /// [`AudienceListQuery::next_page`].
    ///
    /// # Errors
    /// [`LineError::Validation`] (page 0, size outside 1–40); [`LineError::Api`],
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn audience_groups(
        &self,
        query: &AudienceListQuery,
    ) -> Result<AudienceGroupPage, LineError> {
        let request = query
            .apply(managed(Request::get("list_audiences", "/v2/bot/audienceGroup/list")), false)?;
        self.execute(request).await?.json()
    }

    /// One page of the audiences shared with the channel through the Business Manager.
    ///
    /// # Errors
    /// As [`audience_groups`](Self::audience_groups).
    pub async fn shared_audience_groups(
        &self,
        query: &AudienceListQuery,
    ) -> Result<AudienceGroupPage, LineError> {
        let request = query.apply(
            managed(Request::get("list_shared_audiences", "/v2/bot/audienceGroup/shared/list")),
            true,
        )?;
        self.execute(request).await?.json()
    }

    /// A shared audience and its owner.
    ///
    /// # Errors
    /// [`LineError::Api`] (unknown audience), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn shared_audience_group(
        &self,
        audience: AudienceGroupId,
    ) -> Result<SharedAudienceGroup, LineError> {
        let request = managed(Request::get(
            "get_shared_audience",
            format!("/v2/bot/audienceGroup/shared/{audience}"),
        ));
        self.execute(request).await?.json()
    }
}
