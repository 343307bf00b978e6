//! Rich menus: create, validate, image upload (data host), get/list/delete, default menu,
//! per-user link/unlink, bulk link/unlink, aliases, batch control and statistics.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{Datelike as _, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{bad_parameter, json_object, respond_with};
use crate::testkit::line::endpoint::Endpoint;
use crate::testkit::line::faults::mix;
use crate::testkit::line::respond::{self, Detail};
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, Menu, MenuBatchJob, Menus, lock};
use crate::testkit::line::validate::{self, Check, index, join};

/// LINE allows at most this many rich menus per channel.
const MAX_RICH_MENUS: usize = 1000;
/// Largest rich menu image.
const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// Validates a rich menu object (`RichMenuRequest`).
fn rich_menu_object(check: &mut Check, object: &Map<String, Value>) {
    match object.get("size").and_then(Value::as_object) {
        Some(size) => {
            let width = check.required_int(size, "size", "width");
            let height = check.required_int(size, "size", "height");
            if width.is_some_and(|w| !(800..=2500).contains(&w)) {
                check.add("size.width", "must be between 800 and 2500");
            }
            if height.is_some_and(|h| h < 250) {
                check.add("size.height", "must be at least 250");
            }
            if let (Some(width), Some(height)) = (width, height)
                && height > 0
                && (width as f64) / (height as f64) < 1.45
            {
                check.add("size", "width / height must be at least 1.45");
            }
        }
        None => check.add("size", "must be specified"),
    }
    match object.get("selected") {
        Some(Value::Bool(_)) => {}
        None | Some(Value::Null) => check.add("selected", "must be specified"),
        Some(_) => check.add("selected", "must be a boolean"),
    }
    if let Some(name) = check.required_str(object, "", "name") {
        check.chars("name", name, 1, 300);
    }
    if let Some(text) = check.required_str(object, "", "chatBarText") {
        check.chars("chatBarText", text, 1, 14);
    }
    if let Some(areas) = check.required_array(object, "", "areas", 0, 20) {
        for (i, area) in areas.iter().enumerate() {
            let path = index("areas", i);
            let Some(area) = area.as_object() else {
                check.add(&path, "must be an object");
                continue;
            };
            match area.get("bounds").and_then(Value::as_object) {
                Some(bounds) => {
                    let bounds_path = join(&path, "bounds");
                    for (field, min) in [("x", 0), ("y", 0), ("width", 1), ("height", 1)] {
                        if check.required_int(bounds, &bounds_path, field).is_some_and(|v| v < min)
                        {
                            check
                                .add(&join(&bounds_path, field), format!("must be at least {min}"));
                        }
                    }
                }
                None => check.add(&join(&path, "bounds"), "must be specified"),
            }
            match area.get("action") {
                Some(action) => validate::action(check, action, &join(&path, "action"), false),
                None => check.add(&join(&path, "action"), "must be specified"),
            }
        }
    }
}

fn menu_json(id: &str, menu: &Menu) -> Value {
    let mut body = menu.body.clone();
    body.insert("richMenuId".into(), json!(id));
    Value::Object(body)
}

fn menu_not_found() -> Response {
    respond::error(StatusCode::NOT_FOUND, "richmenu not found")
}

fn image_required() -> Response {
    respond::error(StatusCode::BAD_REQUEST, "must upload richmenu image before applying it to user")
}

/// The menu `id`, checked to exist and to have an image.
fn usable_menu(menus: &Menus, id: &str) -> Result<(), Response> {
    match menus.by_id.get(id) {
        None => Err(menu_not_found()),
        Some(menu) if menu.image.is_none() => Err(image_required()),
        Some(_) => Ok(()),
    }
}

fn check_user(user_id: &str) -> Result<(), Response> {
    if validate::is_user_id(user_id) {
        Ok(())
    } else {
        Err(bad_parameter("userId", "must match ^U[0-9a-f]{32}$"))
    }
}

pub(super) fn create(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        rich_menu_object(&mut check, &body);
        check.finish()?;
        let mut menus = lock(&app.menus);
        if menus.by_id.len() >= MAX_RICH_MENUS {
            return Err(respond::error(
                StatusCode::BAD_REQUEST,
                "The maximum number of rich menus has been reached",
            ));
        }
        let n = app.next_seq();
        let id = format!("richmenu-{:016x}{:016x}", mix(app.seed ^ n), mix(n));
        menus.by_id.insert(id.clone(), Menu { body, image: None });
        menus.order.push(id.clone());
        Ok(respond::json(StatusCode::OK, &json!({ "richMenuId": id })))
    })
}

pub(super) fn validate(_app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        rich_menu_object(&mut check, &body);
        check.finish()?;
        Ok(respond::ok_empty())
    })
}

pub(super) fn upload_image(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id = input.param(0).to_owned();
        let content_type = input
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        if content_type != "image/jpeg" && content_type != "image/png" {
            return Err(respond::error_with(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                &[Detail::new("Content-Type", "must be image/jpeg or image/png")],
            ));
        }
        let Some(bytes) = input.body.clone() else {
            return Err(respond::error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
        };
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(respond::error(
                StatusCode::BAD_REQUEST,
                "The image must be 1 MB or smaller",
            ));
        }
        let Some((width, height)) = crate::line::image_size(&content_type, &bytes) else {
            return Err(respond::error(
                StatusCode::BAD_REQUEST,
                "The image is not a valid JPEG or PNG image",
            ));
        };
        let mut check = Check::new();
        if !(800..=2500).contains(&width) {
            check.add("image.width", "must be between 800 and 2500");
        }
        if height < 250 {
            check.add("image.height", "must be at least 250");
        }
        if height > 0 && f64::from(width) / f64::from(height) < 1.45 {
            check.add("image", "width / height must be at least 1.45");
        }
        check.finish()?;
        let mut menus = lock(&app.menus);
        let Some(menu) = menus.by_id.get_mut(&id) else { return Err(menu_not_found()) };
        if menu.image.is_some() {
            return Err(respond::error(
                StatusCode::BAD_REQUEST,
                "An image has already been uploaded to the richmenu",
            ));
        }
        menu.image = Some((content_type, bytes));
        Ok(respond::ok_empty())
    })
}

pub(super) fn download_image(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let menus = lock(&app.menus);
    let Some((content_type, bytes)) = menus.by_id.get(input.param(0)).and_then(|m| m.image.clone())
    else {
        return respond::not_found();
    };
    let mut response = Response::new(Body::from(bytes));
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

pub(super) fn get(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let menus = lock(&app.menus);
    let id = input.param(0);
    match menus.by_id.get(id) {
        Some(menu) => respond::json(StatusCode::OK, &menu_json(id, menu)),
        None => menu_not_found(),
    }
}

pub(super) fn delete(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let mut menus = lock(&app.menus);
    let id = input.param(0).to_owned();
    if menus.by_id.remove(&id).is_none() {
        return menu_not_found();
    }
    menus.order.retain(|m| *m != id);
    menus.links.retain(|_, m| *m != id);
    if menus.default.as_deref() == Some(id.as_str()) {
        menus.default = None;
    }
    respond::ok_empty()
}

pub(super) fn list(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let menus = lock(&app.menus);
    let list: Vec<Value> = menus
        .order
        .iter()
        .filter_map(|id| menus.by_id.get(id).map(|menu| menu_json(id, menu)))
        .collect();
    respond::json(StatusCode::OK, &json!({ "richmenus": list }))
}

pub(super) fn set_default(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut menus = lock(&app.menus);
        let id = input.param(0).to_owned();
        usable_menu(&menus, &id)?;
        menus.default = Some(id);
        Ok(respond::ok_empty())
    })
}

pub(super) fn get_default(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    match &lock(&app.menus).default {
        Some(id) => respond::json(StatusCode::OK, &json!({ "richMenuId": id })),
        None => respond::error(StatusCode::NOT_FOUND, "no default richmenu"),
    }
}

pub(super) fn cancel_default(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    lock(&app.menus).default = None;
    respond::ok_empty()
}

pub(super) fn link_user(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let (user, id) = (input.param(0).to_owned(), input.param(1).to_owned());
        check_user(&user)?;
        let mut menus = lock(&app.menus);
        usable_menu(&menus, &id)?;
        menus.switch(&user, Some(&id), Endpoint::UserRichMenuLink);
        Ok(crash_or(&mut menus, Endpoint::UserRichMenuLink, respond::ok_empty()))
    })
}

pub(super) fn get_user(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let user = input.param(0);
        check_user(user)?;
        match lock(&app.menus).links.get(user) {
            Some(id) => Ok(respond::json(StatusCode::OK, &json!({ "richMenuId": id }))),
            None => Err(respond::error(StatusCode::NOT_FOUND, "the user has no richmenu")),
        }
    })
}

pub(super) fn unlink_user(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let user = input.param(0);
        check_user(user)?;
        let mut menus = lock(&app.menus);
        menus.switch(user, None, Endpoint::UserRichMenuUnlink);
        Ok(crash_or(&mut menus, Endpoint::UserRichMenuUnlink, respond::ok_empty()))
    })
}

/// Validates `userIds` (1 to 500 user IDs).
fn user_ids(check: &mut Check, body: &Map<String, Value>) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(list) = check.required_array(body, "", "userIds", 1, 500) {
        for (i, id) in list.iter().enumerate() {
            match id.as_str() {
                Some(id) if validate::is_user_id(id) => ids.push(id.to_owned()),
                _ => check.add(&index("userIds", i), "must be a user ID (^U[0-9a-f]{32}$)"),
            }
        }
    }
    ids
}

pub(super) fn bulk_link(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        let id = check.required_str(&body, "", "richMenuId").map(str::to_owned);
        let ids = user_ids(&mut check, &body);
        check.finish()?;
        let id = id.unwrap_or_default();
        let mut menus = lock(&app.menus);
        usable_menu(&menus, &id)?;
        // LINE applies this asynchronously ("normally within a few seconds"); the fake at once.
        for user in ids {
            menus.switch(&user, Some(&id), Endpoint::RichMenuBulkLink);
        }
        Ok(crash_or(&mut menus, Endpoint::RichMenuBulkLink, respond::accepted_empty()))
    })
}

pub(super) fn bulk_unlink(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        let ids = user_ids(&mut check, &body);
        check.finish()?;
        let mut menus = lock(&app.menus);
        for user in ids {
            menus.switch(&user, None, Endpoint::RichMenuBulkUnlink);
        }
        Ok(crash_or(&mut menus, Endpoint::RichMenuBulkUnlink, respond::accepted_empty()))
    })
}

/// `^[a-z0-9_-]{1,32}$` (the spec's pattern: lowercase only).
fn is_alias_id(value: &str) -> bool {
    (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn alias_not_found() -> Response {
    respond::error(StatusCode::BAD_REQUEST, "richmenu alias not found")
}

pub(super) fn alias_create(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        let alias = check.required_str(&body, "", "richMenuAliasId").map(str::to_owned);
        if alias.as_deref().is_some_and(|a| !is_alias_id(a)) {
            check.add("richMenuAliasId", "must match ^[a-z0-9_-]{1,32}$");
        }
        let id = check.required_str(&body, "", "richMenuId").map(str::to_owned);
        check.finish()?;
        let (alias, id) = (alias.unwrap_or_default(), id.unwrap_or_default());
        let mut menus = lock(&app.menus);
        if !menus.by_id.contains_key(&id) {
            return Err(respond::error(StatusCode::BAD_REQUEST, "richmenu not found"));
        }
        if menus.aliases.contains_key(&alias) {
            return Err(respond::error(StatusCode::BAD_REQUEST, "conflict richmenu alias id"));
        }
        menus.aliases.insert(alias, id);
        Ok(respond::ok_empty())
    })
}

pub(super) fn alias_update(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let alias = input.param(0).to_owned();
        let body = json_object(&input)?;
        let mut check = Check::new();
        let id = check.required_str(&body, "", "richMenuId").map(str::to_owned);
        check.finish()?;
        let id = id.unwrap_or_default();
        let mut menus = lock(&app.menus);
        if !menus.by_id.contains_key(&id) {
            return Err(respond::error(StatusCode::BAD_REQUEST, "richmenu not found"));
        }
        match menus.aliases.get_mut(&alias) {
            Some(target) => *target = id,
            None => return Err(alias_not_found()),
        }
        Ok(respond::ok_empty())
    })
}

pub(super) fn alias_get(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let menus = lock(&app.menus);
    let alias = input.param(0);
    match menus.aliases.get(alias) {
        Some(id) => {
            respond::json(StatusCode::OK, &json!({ "richMenuAliasId": alias, "richMenuId": id }))
        }
        None => respond::error(StatusCode::NOT_FOUND, "richmenu alias not found"),
    }
}

pub(super) fn alias_list(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let menus = lock(&app.menus);
    let aliases: Vec<Value> = menus
        .aliases
        .iter()
        .map(|(alias, id)| json!({ "richMenuAliasId": alias, "richMenuId": id }))
        .collect();
    respond::json(StatusCode::OK, &json!({ "aliases": aliases }))
}

pub(super) fn alias_delete(app: &App, _ctx: &Ctx, input: Input) -> Response {
    if lock(&app.menus).aliases.remove(input.param(0)).is_some() {
        respond::ok_empty()
    } else {
        alias_not_found()
    }
}

/// `response`, or a dropped connection when `endpoint` was armed to crash after this request.
fn crash_or(menus: &mut Menus, endpoint: Endpoint, response: Response) -> Response {
    if menus.take_crash(endpoint) { respond::drop_connection() } else { response }
}

/// One validated batch operation.
enum BatchOp {
    Link { from: String, to: String },
    Unlink { from: String },
    UnlinkAll,
}

/// Validates a `RichMenuBatchRequest` body: its operations and resume key.
fn batch_request(body: &Map<String, Value>) -> Result<(Vec<BatchOp>, Option<String>), Response> {
    let mut check = Check::new();
    let mut ops = Vec::new();
    if let Some(list) = check.required_array(body, "", "operations", 1, 1000) {
        for (i, op) in list.iter().enumerate() {
            let path = index("operations", i);
            let Some(op) = op.as_object() else {
                check.add(&path, "must be an object");
                continue;
            };
            match check.required_str(op, &path, "type") {
                Some("link") => {
                    let from = check.required_str(op, &path, "from").map(str::to_owned);
                    let to = check.required_str(op, &path, "to").map(str::to_owned);
                    if let (Some(from), Some(to)) = (from, to) {
                        ops.push(BatchOp::Link { from, to });
                    }
                }
                Some("unlink") => {
                    if let Some(from) = check.required_str(op, &path, "from") {
                        ops.push(BatchOp::Unlink { from: from.to_owned() });
                    }
                }
                Some("unlinkAll") => ops.push(BatchOp::UnlinkAll),
                Some(_) => check.add(&join(&path, "type"), "must be link, unlink or unlinkAll"),
                None => {}
            }
        }
    }
    let key = check.optional_str(body, "", "resumeRequestKey").map(str::to_owned);
    if let Some(key) = &key
        && !is_resume_key(key)
    {
        check.add("resumeRequestKey", "must match ^[a-zA-Z0-9_-]{1,100}$");
    }
    check.finish()?;
    Ok((ops, key))
}

/// `^[a-zA-Z0-9_-]{1,100}$`.
fn is_resume_key(key: &str) -> bool {
    (1..=100).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks that every menu an operation names exists (and, for a `to`, has an image).
fn batch_menus(menus: &Menus, ops: &[BatchOp]) -> Result<(), Response> {
    for op in ops {
        match op {
            BatchOp::Link { from, to } => {
                if !menus.by_id.contains_key(from) {
                    return Err(menu_not_found());
                }
                usable_menu(menus, to)?;
            }
            BatchOp::Unlink { from } if !menus.by_id.contains_key(from) => {
                return Err(menu_not_found());
            }
            BatchOp::Unlink { .. } | BatchOp::UnlinkAll => {}
        }
    }
    Ok(())
}

pub(super) fn batch(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let (ops, key) = batch_request(&body)?;
        let mut guard = lock(&app.menus);
        let menus = &mut *guard;
        batch_menus(menus, &ops)?;
        let mut processed =
            key.as_ref().and_then(|k| menus.resume_keys.get(k).cloned()).unwrap_or_default();
        let mut budget = menus.interrupt_next_batch.take().unwrap_or(usize::MAX);
        let mut failed = false;
        'ops: for op in &ops {
            let (from, to) = match op {
                BatchOp::Link { from, to } => (Some(from.as_str()), Some(to.clone())),
                BatchOp::Unlink { from } => (Some(from.as_str()), None),
                BatchOp::UnlinkAll => (None, None),
            };
            // LINE processes the users linked to `from` when the request runs; in a fixed
            // order here, so an interrupted request is reproducible.
            let mut users: Vec<String> = menus
                .links
                .iter()
                .filter(|(user, menu)| {
                    from.is_none_or(|f| menu.as_str() == f) && !processed.contains(*user)
                })
                .map(|(user, _)| user.clone())
                .collect();
            users.sort_unstable();
            for user in users {
                if budget == 0 {
                    failed = true;
                    break 'ops;
                }
                budget -= 1;
                menus.switch(&user, to.as_deref(), Endpoint::RichMenuBatch);
                processed.insert(user);
            }
        }
        if let Some(key) = key {
            menus.resume_keys.insert(key, processed);
        }
        let job = MenuBatchJob { accepted_at: app.clock.now(), accepted_wall: Utc::now(), failed };
        menus.batches.insert(ctx.request_id.to_string(), job);
        Ok(crash_or(menus, Endpoint::RichMenuBatch, respond::accepted_empty()))
    })
}

pub(super) fn validate_batch(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let (ops, _) = batch_request(&body)?;
        batch_menus(&lock(&app.menus), &ops)?;
        Ok(respond::ok_empty())
    })
}

pub(super) fn batch_progress(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let Some(request_id) = input.query_param("requestId").filter(|id| !id.is_empty()) else {
        return bad_parameter("requestId", "must be specified");
    };
    let menus = lock(&app.menus);
    let Some(job) = menus.batches.get(&request_id) else { return respond::not_found() };
    let accepted = job.accepted_wall.to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = if app.clock.since(job.accepted_at) < menus.batch_duration {
        json!({ "phase": "ongoing", "acceptedTime": accepted })
    } else {
        let took = chrono::Duration::from_std(menus.batch_duration).unwrap_or_default();
        let completed = (job.accepted_wall + took).to_rfc3339_opts(SecondsFormat::Millis, true);
        let phase = if job.failed { "failed" } else { "succeeded" };
        json!({ "phase": phase, "acceptedTime": accepted, "completedTime": completed })
    };
    respond::json(StatusCode::OK, &body)
}

/// Below this many unique users LINE withholds a menu's statistics (a privacy threshold; the
/// fake uses 20, like message statistics).
const INSIGHT_THRESHOLD: u64 = 20;

/// Checks `from` and `to` (`yyyyMMdd`, at most `max_days` apart) and returns the days.
fn insight_period(input: &Input, max_days: i64) -> Result<Vec<NaiveDate>, Response> {
    let day = |name: &str| {
        input
            .query_param(name)
            .filter(|v| v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| NaiveDate::parse_from_str(&v, "%Y%m%d").ok())
            .ok_or_else(|| bad_parameter(name, "must be a date in yyyyMMdd format"))
    };
    let (from, to) = (day("from")?, day("to")?);
    if to < from || (to - from).num_days() > max_days {
        return Err(bad_parameter("to", "the aggregation period exceeds the allowed maximum"));
    }
    Ok(from.iter_days().take_while(|d| *d <= to).collect())
}

/// The fake's deterministic statistics for one menu and day: each user linked to the menu
/// sees it twice a day and taps area `i` every `i + 2` days.
fn insight_day(users: u64, areas: usize, day: NaiveDate) -> (Value, Vec<Value>) {
    let n = u64::from(day.day());
    let impression = json!({ "count": users * 2, "uniqueUsers": users });
    let clicks = (0..areas as u64)
        .map(|i| {
            let tappers = if n % (i + 2) == 0 { users / (i + 2) } else { users / (i + 4) };
            json!({ "count": tappers + tappers / 2, "uniqueUsers": tappers })
        })
        .collect();
    (impression, clicks)
}

fn insight(app: &App, input: &Input, daily: bool) -> Response {
    respond_with(|| {
        let days = insight_period(input, if daily { 99 } else { 396 })?;
        let id = input.param(0);
        let menus = lock(&app.menus);
        let Some(menu) = menus.by_id.get(id) else { return Err(menu_not_found()) };
        let users = menus.links.values().filter(|m| m.as_str() == id).count() as u64;
        let bounds: Vec<Value> = menu
            .body
            .get("areas")
            .and_then(Value::as_array)
            .map(|areas| {
                areas.iter().map(|a| a.get("bounds").cloned().unwrap_or(Value::Null)).collect()
            })
            .unwrap_or_default();
        if users < INSIGHT_THRESHOLD {
            return Ok(respond::json(StatusCode::OK, &json!({ "richMenuId": id })));
        }
        let fmt = |d: &NaiveDate| d.format("%Y%m%d").to_string();
        let per_day: Vec<(String, Value, Vec<Value>)> = days
            .iter()
            .map(|d| {
                let (imp, clicks) = insight_day(users, bounds.len(), *d);
                (fmt(d), imp, clicks)
            })
            .collect();
        let sum = |values: &mut dyn Iterator<Item = &Value>| {
            let (mut count, mut unique) = (0, 0);
            for v in values {
                count += v["count"].as_u64().unwrap_or(0);
                unique = unique.max(v["uniqueUsers"].as_u64().unwrap_or(0));
            }
            json!({ "count": count, "uniqueUsers": unique })
        };
        let dated = |date: &str, v: &Value| json!({ "date": date, "count": v["count"], "uniqueUsers": v["uniqueUsers"] });
        let impression = if daily {
            Value::Array(per_day.iter().map(|(d, imp, _)| dated(d, imp)).collect())
        } else {
            sum(&mut per_day.iter().map(|(_, imp, _)| imp))
        };
        let clicks: Vec<Value> = bounds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let metrics = if daily {
                    Value::Array(per_day.iter().map(|(d, _, c)| dated(d, &c[i])).collect())
                } else {
                    sum(&mut per_day.iter().map(|(_, _, c)| &c[i]))
                };
                json!({ "bounds": b, "metrics": metrics })
            })
            .collect();
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "richMenuId": id,
                "metricsFrom": days.first().map(fmt),
                "metricsTo": days.last().map(fmt),
                "impression": { "metrics": impression },
                "clicks": clicks,
            }),
        ))
    })
}

pub(super) fn insight_summary(app: &App, _ctx: &Ctx, input: Input) -> Response {
    insight(app, &input, false)
}

pub(super) fn insight_daily(app: &App, _ctx: &Ctx, input: Input) -> Response {
    insight(app, &input, true)
}
