//! Memberships: plans, a user's subscriptions, and members' IDs with paging (1–1,000 per
//! page, default 300).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, Duration as ChronoDuration, FixedOffset, Offset as _, TimeZone, Utc};
use serde_json::{Value, json};

use super::{bad_parameter, page_offset, page_token, respond_with};
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, lock};
use crate::testkit::line::validate;

const PAGE_DEFAULT: usize = 300;
const PAGE_MAX: usize = 1000;

fn plan_id(plan: &Value) -> Option<i64> {
    plan.get("membershipId").and_then(Value::as_i64)
}

pub(super) fn list(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let platform = lock(&app.platform);
    if platform.plans.is_empty() {
        return respond::error(StatusCode::NOT_FOUND, "Not found membership");
    }
    let plans: Vec<Value> = platform
        .plans
        .iter()
        .map(|plan| {
            let mut plan = plan.clone();
            let count = plan_id(&plan).and_then(|id| platform.members.get(&id)).map_or(0, Vec::len);
            plan["memberCount"] = json!(count);
            for (field, default) in [
                ("memberLimit", Value::Null),
                ("isInAppPurchase", json!(false)),
                ("isPublished", json!(true)),
            ] {
                if plan.get(field).is_none() {
                    plan[field] = default;
                }
            }
            plan
        })
        .collect();
    respond::json(StatusCode::OK, &json!({ "memberships": plans }))
}

pub(super) fn subscription(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let user = input.param(0);
        if !validate::is_user_id(user) {
            return Err(bad_parameter("userId", "must match ^U[0-9a-f]{32}$"));
        }
        let platform = lock(&app.platform);
        let jst = FixedOffset::east_opt(9 * 3600).unwrap_or(Utc.fix());
        let mut subscriptions = Vec::new();
        for plan in &platform.plans {
            let Some(id) = plan_id(plan) else { continue };
            let Some(member) =
                platform.members.get(&id).and_then(|m| m.iter().find(|m| m.user_id == user))
            else {
                continue;
            };
            let mut membership = json!({});
            for field in ["membershipId", "title", "description", "benefits", "price", "currency"] {
                if let Some(value) = plan.get(field) {
                    membership[field] = value.clone();
                }
            }
            let joined = jst.timestamp_opt(member.joined_unix, 0).single();
            let next = joined.map(|j| (j + ChronoDuration::days(30)).date_naive());
            let months = joined.map_or(1, |j| {
                let now = Utc::now().with_timezone(&jst);
                let months = (now.year() - j.year()) * 12 + now.month() as i32 - j.month() as i32;
                months.max(0) + 1
            });
            subscriptions.push(json!({
                "membership": membership,
                "user": {
                    "membershipNo": member.no,
                    "joinedTime": member.joined_unix,
                    "nextBillingDate": next.map(|d| d.format("%Y-%m-%d").to_string()),
                    "totalSubscriptionMonths": months,
                },
            }));
        }
        Ok(respond::json(StatusCode::OK, &json!({ "subscriptions": subscriptions })))
    })
}

pub(super) fn user_ids(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let id: i64 = input
            .param(0)
            .parse()
            .map_err(|_| bad_parameter("membershipId", "must be an integer"))?;
        let limit = match input.query_param("limit") {
            None => PAGE_DEFAULT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
                _ => return Err(bad_parameter("limit", "must be 1 to 1000")),
            },
        };
        let kind = format!("membership{id}");
        let offset = match input.query_param("start") {
            None => 0,
            Some(token) => page_offset(&kind, &token)
                .ok_or_else(|| bad_parameter("start", "is incorrect or expired"))?,
        };
        let platform = lock(&app.platform);
        if !platform.plans.iter().any(|p| plan_id(p) == Some(id)) {
            return Err(respond::error(StatusCode::NOT_FOUND, "Not found membership"));
        }
        let users = app.users.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only friends who are active appear.
        let members: Vec<&str> = platform
            .members
            .get(&id)
            .map(|m| {
                m.iter().map(|m| m.user_id.as_str()).filter(|u| !users.is_blocked(u)).collect()
            })
            .unwrap_or_default();
        let page: Vec<&str> = members.iter().skip(offset).take(limit).copied().collect();
        let mut body = json!({ "userIds": page });
        if offset + limit < members.len() {
            body["next"] = json!(page_token(&kind, offset + limit));
        }
        Ok(respond::json(StatusCode::OK, &body))
    })
}
