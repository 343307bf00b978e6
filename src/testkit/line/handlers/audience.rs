//! Upload audiences by JSON: create, add IDs, get (status IN_PROGRESS → READY), delete.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{bad_parameter, json_object, respond_with};
use crate::testkit::line::respond::{self, Detail};
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, AudienceGroup, AudienceJob, Ctx, lock};
use crate::testkit::line::validate::{self, Check, index, join};

/// LINE keeps at most this many audiences per channel.
const MAX_AUDIENCES: usize = 1000;
/// IDs per JSON upload.
const MAX_IDS: usize = 10_000;
/// Audiences expire after 180 days.
const LIFETIME_SECS: i64 = 180 * 24 * 3600;

/// A LINE Manage Audience error: `message` plus one detail carrying the error code.
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

/// Validates `audiences` (≤ 10,000 `{id}` objects; with user IDs, every one well-formed).
fn audience_ids(body: &Map<String, Value>, is_ifa: bool) -> Result<Vec<String>, Response> {
    let list = match body.get("audiences") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            let mut check = Check::new();
            check.add("audiences", "must be an array");
            return Err(check.finish().err().unwrap_or_else(respond::server_error));
        }
    };
    if list.len() > MAX_IDS {
        return Err(audience_error(
            "Too many audience IDs",
            "UPLOAD_AUDIENCE_GROUP_TOO_MANY_AUDIENCE_IDS",
            Some("audiences"),
        ));
    }
    let mut ids = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str);
        match id {
            Some(id) if is_ifa || validate::is_user_id(id) => ids.push(id.to_owned()),
            // One bad ID fails the whole request, as LINE documents.
            _ => {
                return Err(audience_error(
                    "Invalid audience ID format",
                    "UPLOAD_AUDIENCE_GROUP_INVALID_AUDIENCE_ID_FORMAT",
                    Some(&join(&index("audiences", i), "id")),
                ));
            }
        }
    }
    Ok(ids)
}

fn upload_description(check: &mut Check, body: &Map<String, Value>) -> Option<String> {
    let description = check.optional_str(body, "", "uploadDescription")?;
    check.chars("uploadDescription", description, 0, 300);
    Some(description.to_owned())
}

/// Whether the audience has finished its first upload.
pub(super) fn is_ready(app: &App, group: &AudienceGroup) -> bool {
    app.clock.since(group.created_at) >= app.audience_ready_after
}

fn job_status(app: &App, job: &AudienceJob) -> &'static str {
    let elapsed = app.clock.since(job.created_at);
    if elapsed >= app.audience_ready_after {
        "FINISHED"
    } else if elapsed >= app.audience_ready_after / 2 {
        "WORKING"
    } else {
        "QUEUED"
    }
}

/// The users added by the audience's finished jobs.
pub(super) fn members(app: &App, group: &AudienceGroup) -> BTreeSet<String> {
    group
        .jobs
        .iter()
        .filter(|job| job_status(app, job) == "FINISHED")
        .flat_map(|job| job.ids.iter().cloned())
        .collect()
}

pub(super) fn create(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        let description = check.required_str(&body, "", "description").map(str::to_owned);
        let is_ifa = check.optional_bool(&body, "", "isIfaAudience").unwrap_or(false);
        let upload = upload_description(&mut check, &body);
        check.finish()?;
        let description = description.unwrap_or_default();
        if !(1..=120).contains(&description.chars().count()) {
            return Err(audience_error(
                "The audience name must be 1 to 120 characters",
                "AUDIENCE_GROUP_NAME_SIZE_OVER",
                Some("description"),
            ));
        }
        let ids = audience_ids(&body, is_ifa)?;
        let mut audiences = lock(&app.audiences);
        if audiences.groups.len() >= MAX_AUDIENCES {
            return Err(audience_error(
                "Too many audiences",
                "AUDIENCE_GROUP_COUNT_MAX_OVER",
                None,
            ));
        }
        let id = 1_000_000_000_000 + i64::try_from(app.next_seq()).unwrap_or(0);
        let created = Utc::now().timestamp();
        let now = app.clock.now();
        audiences.next_job += 1;
        let job = AudienceJob {
            id: audiences.next_job,
            description: upload,
            ids,
            created_unix: created,
            created_at: now,
        };
        audiences.groups.insert(
            id,
            AudienceGroup {
                id,
                description: description.clone(),
                is_ifa,
                created_unix: created,
                created_at: now,
                jobs: vec![job],
            },
        );
        Ok(respond::json(
            StatusCode::ACCEPTED,
            &json!({
                "audienceGroupId": id,
                "createRoute": "MESSAGING_API",
                "type": "UPLOAD",
                "description": description,
                "created": created,
                "permission": "READ_WRITE",
                "expireTimestamp": created + LIFETIME_SECS,
                "isIfaAudience": is_ifa,
            }),
        ))
    })
}

pub(super) fn add(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        let id = check.required_int(&body, "", "audienceGroupId");
        let upload = upload_description(&mut check, &body);
        check.finish()?;
        let id = id.unwrap_or_default();
        let is_ifa =
            lock(&app.audiences).groups.get(&id).map(|g| g.is_ifa).ok_or_else(not_found)?;
        let ids = audience_ids(&body, is_ifa)?;
        let mut audiences = lock(&app.audiences);
        audiences.next_job += 1;
        let job_id = audiences.next_job;
        let group = audiences.groups.get_mut(&id).ok_or_else(not_found)?;
        group.jobs.push(AudienceJob {
            id: job_id,
            description: upload,
            ids,
            created_unix: Utc::now().timestamp(),
            created_at: app.clock.now(),
        });
        Ok(respond::accepted_empty())
    })
}

fn parse_id(input: &Input) -> Result<i64, Response> {
    input.param(0).parse().map_err(|_| bad_parameter("audienceGroupId", "must be an integer"))
}

pub(super) fn get(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id = parse_id(&input)?;
        let audiences = lock(&app.audiences);
        let group = audiences.groups.get(&id).ok_or_else(not_found)?;
        let status = if is_ready(app, group) { "READY" } else { "IN_PROGRESS" };
        let jobs: Vec<Value> = group
            .jobs
            .iter()
            .rev()
            .take(50)
            .map(|job| {
                let mut value = json!({
                    "audienceGroupJobId": job.id,
                    "audienceGroupId": group.id,
                    "type": "DIFF_ADD",
                    "jobStatus": job_status(app, job),
                    "audienceCount": job.ids.len(),
                    "created": job.created_unix,
                });
                if let Some(description) = &job.description {
                    value["description"] = json!(description);
                }
                value
            })
            .collect();
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "audienceGroup": {
                    "audienceGroupId": group.id,
                    "createRoute": "MESSAGING_API",
                    "type": super::audience_manage::kind_of(app, group.id),
                    "description": group.description,
                    "status": status,
                    "audienceCount": members(app, group).len(),
                    "created": group.created_unix,
                    "permission": "READ_WRITE",
                    "isIfaAudience": group.is_ifa,
                    "expireTimestamp": group.created_unix + LIFETIME_SECS,
                },
                "jobs": jobs,
            }),
        ))
    })
}

pub(super) fn delete(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id = parse_id(&input)?;
        lock(&app.audiences).groups.remove(&id).ok_or_else(not_found)?;
        Ok(respond::ok_empty())
    })
}
