//! Users: profile, follower IDs, bot info, link tokens.

use std::sync::PoisonError;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

use super::{bad_parameter, json_object, page_offset, page_token, respond_with};
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, IssuedLinkToken, lock};
use crate::testkit::line::validate;

pub(super) fn profile(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let user_id = input.param(0);
    if !validate::is_user_id(user_id) {
        return bad_parameter("userId", "must match ^U[0-9a-f]{32}$");
    }
    let users = app.users.read().unwrap_or_else(PoisonError::into_inner);
    match users.by_id.get(user_id).filter(|u| !u.blocked) {
        Some(user) => {
            let mut body = json!({ "displayName": user.display_name, "userId": user.user_id });
            if let Some(language) = &user.language {
                body["language"] = json!(language);
            }
            if let Some(url) = &user.picture_url {
                body["pictureUrl"] = json!(url);
            }
            if let Some(message) = &user.status_message {
                body["statusMessage"] = json!(message);
            }
            respond::json(StatusCode::OK, &body)
        }
        None => respond::not_found(),
    }
}

pub(super) fn follower_ids(app: &App, _ctx: &Ctx, input: Input) -> Response {
    if !app.verified {
        return respond::error(
            StatusCode::FORBIDDEN,
            "Access to this API is not available for your account",
        );
    }
    let limit = match input.query_param("limit") {
        None => 300,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return bad_parameter("limit", "must be an integer between 1 and 1000"),
        },
    };
    let start = match input.query_param("start") {
        None => 0,
        Some(token) => match page_offset("followers", &token) {
            Some(offset) => offset,
            None => {
                return bad_parameter("start", "is not a continuation token issued by this API");
            }
        },
    };
    let users = app.users.read().unwrap_or_else(PoisonError::into_inner);
    let friends: Vec<&str> = users.friends().collect();
    let page: Vec<&str> = friends.iter().skip(start).take(limit).copied().collect();
    let mut body = json!({ "userIds": page });
    let end = start.saturating_add(limit);
    if end < friends.len() {
        body["next"] = json!(page_token("followers", end));
    }
    respond::json(StatusCode::OK, &body)
}

pub(super) fn bot_info(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let bot_user = &app.bot_user_id;
    respond::json(
        StatusCode::OK,
        &json!({
            "userId": bot_user,
            "basicId": "@enishi-fake",
            "displayName": "enishi fake LINE account",
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }),
    )
}

pub(super) fn link_token(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let user_id = input.param(0);
    if !validate::is_user_id(user_id) {
        return bad_parameter("userId", "must match ^U[0-9a-f]{32}$");
    }
    let token: String = rand::rng().sample_iter(Alphanumeric).take(32).map(char::from).collect();
    lock(&app.link_tokens).push(IssuedLinkToken {
        user_id: user_id.to_owned(),
        link_token: token.clone(),
        at: Utc::now(),
    });
    respond::json(StatusCode::OK, &json!({ "linkToken": token }))
}

pub(super) fn show_loading(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let chat = body.get("chatId").and_then(Value::as_str).unwrap_or_default();
        if !validate::is_user_id(chat) {
            return Err(bad_parameter("chatId", "must be a user ID (^U[0-9a-f]{32}$)"));
        }
        let seconds = body.get("loadingSeconds").map_or(Some(20), Value::as_u64);
        match seconds {
            Some(s) if (5..=60).contains(&s) && s.is_multiple_of(5) => {
                lock(&app.loading_shown).push((chat.to_owned(), s));
                Ok(respond::accepted_empty())
            }
            _ => Err(bad_parameter("loadingSeconds", "must be 5 to 60, a multiple of 5")),
        }
    })
}

pub(super) fn mark_as_read(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        match body.get("markAsReadToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => {
                lock(&app.read_tokens).push(token.to_owned());
                Ok(respond::ok_empty())
            }
            _ => Err(bad_parameter("markAsReadToken", "is required")),
        }
    })
}
