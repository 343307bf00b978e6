//! Audiences beyond uploads: click- and impression-based audiences built from a broadcast or
//! narrowcast the fake accepted (its recipients who "clicked" or "opened", by the same fixed
//! ratios as the statistics), listing with paging and filters, renaming, and audiences shared
//! by the Business Manager.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::audience::{is_ready, members};
use super::{bad_parameter, json_object, respond_with};
use crate::testkit::line::platform::AudienceMeta;
use crate::testkit::line::respond::{self, Detail};
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, AudienceGroup, AudienceJob, Ctx, lock};
use crate::testkit::line::validate::Check;

const MAX_AUDIENCES: usize = 1000;
const LIFETIME_SECS: i64 = 180 * 24 * 3600;
/// Shares of a send's recipients who clicked / opened (as in the per-request statistics).
const CLICKED_PERCENT: usize = 20;
const OPENED_PERCENT: usize = 60;

fn audience_error(message: &str, code: &str, property: Option<&str>) -> Response {
    let detail = match property {
        Some(property) => Detail::new(property, code),
        None => Detail::message_only(code),
    };
    respond::error_with(StatusCode::BAD_REQUEST, message, &[detail])
}

fn not_found() -> Response {
    audience_error("audience group not found", "AUDIENCE_GROUP_NOT_FOUND", None)
}

fn check_name(description: &str) -> Result<(), Response> {
    if (1..=120).contains(&description.chars().count()) {
        Ok(())
    } else {
        Err(audience_error(
            "The audience name must be 1 to 120 characters",
            "AUDIENCE_GROUP_NAME_SIZE_OVER",
            Some("description"),
        ))
    }
}

/// The kind of an audience (`UPLOAD` unless created here).
pub(super) fn kind_of(app: &App, id: i64) -> &'static str {
    lock(&app.platform).audience_meta.get(&id).map_or("UPLOAD", |m| m.kind)
}

fn create_from_send(
    app: &App,
    body: &Map<String, Value>,
    kind: &'static str,
    percent: usize,
) -> Result<Response, Response> {
    let mut check = Check::new();
    let description = check.required_str(body, "", "description").map(str::to_owned);
    let request_id = check.required_str(body, "", "requestId").map(str::to_owned);
    let click_url = if kind == "CLICK" {
        check.optional_str(body, "", "clickUrl").map(str::to_owned)
    } else {
        None
    };
    if let Some(url) = &click_url {
        check.chars("clickUrl", url, 1, 2000);
    }
    check.finish()?;
    let (description, request_id) =
        (description.unwrap_or_default(), request_id.unwrap_or_default());
    check_name(&description)?;
    let recipients = {
        let sends = lock(&app.sends);
        let record = sends.records.get(&request_id).ok_or_else(|| {
            audience_error(
                "The request ID is not of a broadcast or narrowcast sent in the last 60 days",
                "AUDIENCE_GROUP_REQUESTID_INVALID",
                Some("requestId"),
            )
        })?;
        let take = record.recipients.len() * percent / 100;
        record.recipients.iter().take(take).cloned().collect::<Vec<_>>()
    };
    let mut audiences = lock(&app.audiences);
    if audiences.groups.len() >= MAX_AUDIENCES {
        return Err(audience_error("Too many audiences", "AUDIENCE_GROUP_COUNT_MAX_OVER", None));
    }
    let id = 1_000_000_000_000 + i64::try_from(app.next_seq()).unwrap_or(0);
    let created = Utc::now().timestamp();
    let now = app.clock.now();
    audiences.next_job += 1;
    let job = AudienceJob {
        id: audiences.next_job,
        description: None,
        ids: recipients,
        created_unix: created,
        created_at: now,
    };
    audiences.groups.insert(
        id,
        AudienceGroup {
            id,
            description: description.clone(),
            is_ifa: false,
            created_unix: created,
            created_at: now,
            jobs: vec![job],
        },
    );
    drop(audiences);
    lock(&app.platform).audience_meta.insert(
        id,
        AudienceMeta { kind, request_id: request_id.clone(), click_url: click_url.clone() },
    );
    let mut answer = json!({
        "audienceGroupId": id,
        "createRoute": "MESSAGING_API",
        "type": kind,
        "description": description,
        "created": created,
        "permission": "READ_WRITE",
        "expireTimestamp": created + LIFETIME_SECS,
        "isIfaAudience": false,
        "requestId": request_id,
    });
    if let Some(url) = click_url {
        answer["clickUrl"] = json!(url);
    }
    Ok(respond::json(StatusCode::ACCEPTED, &answer))
}

pub(super) fn create_click(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| create_from_send(app, &json_object(&input)?, "CLICK", CLICKED_PERCENT))
}

pub(super) fn create_imp(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| create_from_send(app, &json_object(&input)?, "IMP", OPENED_PERCENT))
}

fn parse_id(input: &Input) -> Result<i64, Response> {
    input.param(0).parse().map_err(|_| bad_parameter("audienceGroupId", "must be an integer"))
}

pub(super) fn rename(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id = parse_id(&input)?;
        let body = json_object(&input)?;
        let mut check = Check::new();
        let description = check.required_str(&body, "", "description").map(str::to_owned);
        check.finish()?;
        let description = description.unwrap_or_default();
        check_name(&description)?;
        let mut audiences = lock(&app.audiences);
        audiences.groups.get_mut(&id).ok_or_else(not_found)?.description = description;
        Ok(respond::ok_empty())
    })
}

/// `page`, `size`, `description`, `status`, `createRoute` of a list request.
struct ListQuery {
    page: usize,
    size: usize,
    description: Option<String>,
    status: Option<String>,
    create_route: Option<String>,
}

fn list_query(input: &Input) -> Result<ListQuery, Response> {
    let page = input
        .query_param("page")
        .ok_or_else(|| bad_parameter("page", "is required"))?
        .parse::<usize>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| bad_parameter("page", "must be 1 or higher"))?;
    let size = match input.query_param("size") {
        None => 20,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|s| (1..=40).contains(s))
            .ok_or_else(|| bad_parameter("size", "must be 1 to 40"))?,
    };
    if let Some(flag) = input.query_param("includesExternalPublicGroups")
        && flag != "true"
        && flag != "false"
    {
        return Err(bad_parameter("includesExternalPublicGroups", "must be true or false"));
    }
    let status = input.query_param("status");
    if let Some(status) = &status
        && !["IN_PROGRESS", "READY", "FAILED", "EXPIRED", "INACTIVE", "ACTIVATING"]
            .contains(&status.as_str())
    {
        return Err(bad_parameter("status", "is not an audience status"));
    }
    Ok(ListQuery {
        page,
        size,
        description: input.query_param("description").map(|d| d.to_lowercase()),
        status,
        create_route: input.query_param("createRoute"),
    })
}

fn page_of(items: Vec<Value>, query: &ListQuery, read_write: usize) -> Response {
    let total = items.len();
    let start = (query.page - 1).saturating_mul(query.size);
    let page: Vec<Value> = items.into_iter().skip(start).take(query.size).collect();
    respond::json(
        StatusCode::OK,
        &json!({
            "audienceGroups": page,
            "hasNextPage": start + query.size < total,
            "totalCount": total,
            "readWriteAudienceGroupTotalCount": read_write,
            "page": query.page,
            "size": query.size,
        }),
    )
}

fn matches(query: &ListQuery, description: &str, status: &str, route: &str) -> bool {
    query.description.as_ref().is_none_or(|d| description.to_lowercase().contains(d))
        && query.status.as_ref().is_none_or(|s| s == status)
        && query.create_route.as_ref().is_none_or(|r| r == route)
}

pub(super) fn list(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let query = list_query(&input)?;
        let audiences = lock(&app.audiences);
        let meta = lock(&app.platform).audience_meta.clone();
        let items: Vec<Value> = audiences
            .groups
            .values()
            .rev()
            .filter_map(|group| {
                let status = if is_ready(app, group) { "READY" } else { "IN_PROGRESS" };
                if !matches(&query, &group.description, status, "MESSAGING_API") {
                    return None;
                }
                let extra = meta.get(&group.id);
                let mut item = json!({
                    "audienceGroupId": group.id,
                    "createRoute": "MESSAGING_API",
                    "type": extra.map_or("UPLOAD", |m| m.kind),
                    "description": group.description,
                    "status": status,
                    "audienceCount": members(app, group).len(),
                    "created": group.created_unix,
                    "permission": "READ_WRITE",
                    "isIfaAudience": group.is_ifa,
                    "expireTimestamp": group.created_unix + LIFETIME_SECS,
                });
                if let Some(extra) = extra {
                    item["requestId"] = json!(extra.request_id);
                    if let Some(url) = &extra.click_url {
                        item["clickUrl"] = json!(url);
                    }
                }
                Some(item)
            })
            .collect();
        let read_write = items.len();
        Ok(page_of(items, &query, read_write))
    })
}

fn shared_item(audience: &crate::testkit::line::platform::SharedAudience) -> Value {
    json!({
        "audienceGroupId": audience.id,
        "createRoute": "AD_MANAGER",
        "type": "UPLOAD",
        "description": audience.description,
        "status": "READY",
        "audienceCount": 0,
        "created": audience.created_unix,
        "permission": "READ",
        "isIfaAudience": false,
        "expireTimestamp": audience.created_unix + LIFETIME_SECS,
    })
}

pub(super) fn shared_list(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let query = list_query(&input)?;
        let platform = lock(&app.platform);
        let items: Vec<Value> = platform
            .shared
            .values()
            .filter(|a| matches(&query, &a.description, "READY", "AD_MANAGER"))
            .map(shared_item)
            .collect();
        Ok(page_of(items, &query, 0))
    })
}

pub(super) fn shared_get(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id = parse_id(&input)?;
        let platform = lock(&app.platform);
        let audience = platform.shared.get(&id).ok_or_else(not_found)?;
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "audienceGroup": shared_item(audience),
                "jobs": [],
                "owner": { "serviceType": "bizmanager", "id": "fake-business", "name": audience.owner },
            }),
        ))
    })
}
