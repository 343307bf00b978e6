//! Rich menus: create, validate, image upload (data host), get/list/delete, default menu,
//! per-user link/unlink, bulk link/unlink, aliases.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{bad_parameter, json_object, respond_with};
use crate::testkit::line::faults::mix;
use crate::testkit::line::respond::{self, Detail};
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, Menu, Menus, lock};
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
        menus.links.insert(user, id);
        Ok(respond::ok_empty())
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
        lock(&app.menus).links.remove(user);
        Ok(respond::ok_empty())
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
            menus.links.insert(user, id.clone());
        }
        Ok(respond::accepted_empty())
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
            menus.links.remove(&user);
        }
        Ok(respond::accepted_empty())
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
