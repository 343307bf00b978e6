//! Delivery counts from the recorded deliveries: per day (UTC+9) and way of sending, per
//! sending endpoint, and the follower figures. A simplification: LINE makes a day's figures
//! `ready` a day or so later; the fake has them at once (the future is `unready`).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use serde_json::json;

use super::{bad_parameter, respond_with};
use crate::clock::jst;
use crate::testkit::line::endpoint::Endpoint;
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, lock};

/// The `date` query parameter (`yyyyMMdd`), and whether figures exist for it yet.
fn date(input: &Input) -> Result<(NaiveDate, bool), Response> {
    let text = input.query_param("date").unwrap_or_default();
    let date = NaiveDate::parse_from_str(&text, "%Y%m%d")
        .map_err(|_| bad_parameter("date", "must be yyyyMMdd"))?;
    let today = Utc::now().with_timezone(&jst()).date_naive();
    Ok((date, date <= today))
}

/// Messages delivered on `date` by `endpoint`: one per message object per recipient.
fn delivered(app: &App, date: NaiveDate, endpoint: Endpoint) -> u64 {
    let offset = jst();
    lock(&app.sends)
        .deliveries
        .iter()
        .filter(|d| d.endpoint == endpoint && d.at.with_timezone(&offset).date_naive() == date)
        .map(|d| d.messages.len() as u64)
        .sum()
}

pub(super) fn insight_delivery(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let (date, ready) = date(&input)?;
        if !ready {
            return Ok(respond::json(StatusCode::OK, &json!({ "status": "unready" })));
        }
        let count = |endpoint| delivered(app, date, endpoint);
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "status": "ready",
                "broadcast": 0,
                "targeting": 0,
                "autoResponse": 0,
                "welcomeResponse": 0,
                "chat": 0,
                "apiBroadcast": count(Endpoint::Broadcast),
                "apiPush": count(Endpoint::Push),
                "apiMulticast": count(Endpoint::Multicast),
                "apiNarrowcast": count(Endpoint::Narrowcast),
                "apiReply": count(Endpoint::Reply),
            }),
        ))
    })
}

pub(super) fn followers(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let (_, ready) = date(&input)?;
        if !ready {
            return Ok(respond::json(StatusCode::OK, &json!({ "status": "unready" })));
        }
        let users = app.users.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let followers = users.order.len();
        let blocks = users.order.iter().filter(|u| users.is_blocked(u)).count();
        Ok(respond::json(
            StatusCode::OK,
            &json!({
                "status": "ready",
                "followers": followers,
                "targetedReaches": followers - blocks,
                "blocks": blocks,
            }),
        ))
    })
}

pub(super) fn sent_count(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let endpoint = match input.param(0) {
            "reply" => Endpoint::Reply,
            "push" => Endpoint::Push,
            "multicast" => Endpoint::Multicast,
            "broadcast" => Endpoint::Broadcast,
            _ => return Err(respond::not_found()),
        };
        let (date, ready) = date(&input)?;
        if !ready {
            return Ok(respond::json(StatusCode::OK, &json!({ "status": "unready" })));
        }
        Ok(respond::json(
            StatusCode::OK,
            &json!({ "status": "ready", "success": delivered(app, date, endpoint) }),
        ))
    })
}
