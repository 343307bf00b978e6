//! Sending: reply, push, multicast, narrowcast (+ progress), broadcast, validation, quota.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{bad_parameter, json_object, respond_with};
use crate::testkit::line::config::FakeQuota;
use crate::testkit::line::endpoint::Endpoint;
use crate::testkit::line::faults::mix;
use crate::testkit::line::respond::{self, CONFLICT_MESSAGE, Detail};
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{
    AcceptedKey, App, Ctx, NarrowcastJob, RETRY_KEY_LIFETIME, RecordedDelivery, SendRecord, Sends,
    lock,
};
use crate::testkit::line::validate::{self, Check, index, join};

/// A validated send, ready to be accepted.
struct Outgoing<'a> {
    ctx: &'a Ctx,
    /// Deliverable recipients (blocked users already removed).
    recipients: Vec<String>,
    messages: Arc<[Value]>,
    unit: Option<String>,
    notification_disabled: bool,
    /// Whether the send counts against the monthly quota (replies do not).
    charged: bool,
    /// Whether the response carries `sentMessages` (reply and push).
    sent_messages: bool,
}

/// The 409 LINE gives for a retry key it has already accepted.
fn conflict(accepted: &AcceptedKey) -> Response {
    let mut body = json!({ "message": CONFLICT_MESSAGE });
    if let Some(sent) = &accepted.sent_messages {
        body["sentMessages"] = sent.clone();
    }
    let mut response = respond::json(StatusCode::CONFLICT, &body);
    if let Ok(value) = HeaderValue::from_str(&accepted.request_id) {
        response.headers_mut().insert("x-line-accepted-request-id", value);
    }
    response
}

/// `Err(409)` when the request's retry key was already accepted (and is still remembered).
fn check_retry_key(sends: &mut Sends, ctx: &Ctx) -> Result<(), Response> {
    let Some(key) = &ctx.retry_key else { return Ok(()) };
    match sends.keys.get(key) {
        Some(accepted) if accepted.at.elapsed() < RETRY_KEY_LIFETIME => Err(conflict(accepted)),
        _ => Ok(()),
    }
}

/// `Err(429)` when charging `count` messages would pass the monthly limit.
fn check_quota(sends: &Sends, count: usize) -> Result<(), Response> {
    match sends.quota {
        FakeQuota::Limited(limit) if sends.used.saturating_add(count as u64) > limit => {
            Err(respond::quota_exceeded())
        }
        _ => Ok(()),
    }
}

fn remaining_quota(sends: &Sends) -> Option<u64> {
    match sends.quota {
        FakeQuota::Limited(limit) => Some(limit.saturating_sub(sends.used)),
        FakeQuota::Unlimited => None,
    }
}

/// Message types LINE gives a quote token for.
fn quotable(message: &Value) -> bool {
    matches!(
        message.get("type").and_then(Value::as_str),
        Some("text" | "textV2" | "sticker" | "image" | "video")
    )
}

/// `sentMessages` for `messages`, with fresh message IDs.
fn sent_messages(sends: &mut Sends, messages: &[Value]) -> Value {
    messages
        .iter()
        .map(|message| {
            sends.next_message_id += 1;
            let id = 500_000_000_000_000_000 + sends.next_message_id;
            let mut sent = json!({ "id": id.to_string() });
            if quotable(message) {
                let bytes: Vec<u8> = [mix(id), mix(id ^ 0xA5A5), mix(id ^ 0x5A5A)]
                    .iter()
                    .flat_map(|n| n.to_be_bytes())
                    .collect();
                sent["quoteToken"] =
                    json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
            }
            sent
        })
        .collect()
}

/// Records the deliveries and the retry key. Call with the checks done, under the same lock.
fn record(sends: &mut Sends, out: &Outgoing<'_>) -> Option<Value> {
    if out.charged {
        sends.used = sends.used.saturating_add(out.recipients.len() as u64);
    }
    let sent = out.sent_messages.then(|| sent_messages(sends, &out.messages));
    let at = Utc::now();
    let request_id = out.ctx.request_id.to_string();
    sends.deliveries.extend(out.recipients.iter().map(|to| RecordedDelivery {
        endpoint: out.ctx.endpoint,
        to: to.clone(),
        messages: Arc::clone(&out.messages),
        request_id: request_id.clone(),
        retry_key: out.ctx.retry_key.clone(),
        notification_disabled: out.notification_disabled,
        aggregation_unit: out.unit.clone(),
        at,
    }));
    if let Some(key) = &out.ctx.retry_key {
        sends.keys.insert(
            key.clone(),
            AcceptedKey {
                request_id: Arc::clone(&out.ctx.request_id),
                sent_messages: sent.clone(),
                at: tokio::time::Instant::now(),
            },
        );
    }
    sent
}

/// Checks the retry key and the quota, then records: the whole of "LINE accepts a send".
fn accept(app: &App, out: &Outgoing<'_>) -> Result<Option<Value>, Response> {
    let mut sends = lock(&app.sends);
    check_retry_key(&mut sends, out.ctx)?;
    if out.charged {
        check_quota(&sends, out.recipients.len())?;
    }
    Ok(record(&mut sends, out))
}

/// Takes the validated `messages` array out of the body.
fn take_messages(body: &mut Map<String, Value>) -> Arc<[Value]> {
    match body.remove("messages") {
        Some(Value::Array(list)) => list.into(),
        _ => Arc::from(Vec::new()),
    }
}

fn notification_disabled(body: &Map<String, Value>) -> bool {
    body.get("notificationDisabled").and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn reply(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        let token = check.required_str(&body, "", "replyToken").map(str::to_owned);
        validate::messages(&mut check, &body);
        check.finish()?;
        let token = token.unwrap_or_default();
        let messages = take_messages(&mut body);
        let mut sends = lock(&app.sends);
        let user = match sends.reply_tokens.get_mut(&token) {
            Some((user, used)) if !*used => {
                *used = true;
                user.clone()
            }
            _ => return Err(respond::error(StatusCode::BAD_REQUEST, "Invalid reply token")),
        };
        let blocked = app.users.read().unwrap_or_else(PoisonError::into_inner).is_blocked(&user);
        let out = Outgoing {
            ctx,
            recipients: if blocked { Vec::new() } else { vec![user] },
            messages,
            unit: None,
            notification_disabled: notification_disabled(&body),
            charged: false,
            sent_messages: true,
        };
        let sent = record(&mut sends, &out);
        Ok(respond::json(StatusCode::OK, &json!({ "sentMessages": sent })))
    })
}

pub(super) fn push(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        let to = check.required_str(&body, "", "to").map(str::to_owned);
        if let Some(to) = &to
            && !validate::is_push_target(to)
        {
            check.add("to", "must be a user, group or room ID (^[UCR][0-9a-f]{32}$)");
        }
        validate::messages(&mut check, &body);
        super::coupon::coupon_messages(app, &mut check, &body);
        let unit = validate::aggregation_units(&mut check, &body);
        check.finish()?;
        let to = to.unwrap_or_default();
        let out = Outgoing {
            ctx,
            recipients: app.deliverable([to.as_str()]),
            messages: take_messages(&mut body),
            unit,
            notification_disabled: notification_disabled(&body),
            charged: true,
            sent_messages: true,
        };
        let sent = accept(app, &out)?;
        Ok(respond::json(StatusCode::OK, &json!({ "sentMessages": sent })))
    })
}

/// `POST /bot/pnp/push`: a LINE notification message to a phone number normalised to E.164 and
/// hashed with SHA-256 (64 lowercase hex digits), with an optional `X-Line-Delivery-Tag` (16 to
/// 100 characters) that comes back in the `delivery` webhook event.
pub(super) fn pnp_push(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let tag = match input.headers.get("x-line-delivery-tag") {
            None => None,
            Some(v) => match v.to_str() {
                Ok(t) if (16..=100).contains(&t.chars().count()) => Some(t.to_owned()),
                _ => {
                    return Err(respond::error_with(
                        StatusCode::BAD_REQUEST,
                        "The value for the 'X-Line-Delivery-Tag' header is invalid",
                        &[Detail::new("X-Line-Delivery-Tag", "must be 16 to 100 characters")],
                    ));
                }
            },
        };
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        let to = check.required_str(&body, "", "to").map(str::to_owned);
        if let Some(to) = &to
            && !(to.len() == 64 && to.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            check.add("to", "must be a SHA-256 hash (64 lowercase hex digits) of an E.164 number");
        }
        validate::messages(&mut check, &body);
        check.finish()?;
        let out = Outgoing {
            ctx,
            recipients: vec![to.unwrap_or_default()],
            messages: take_messages(&mut body),
            unit: None,
            notification_disabled: notification_disabled(&body),
            charged: true,
            sent_messages: false,
        };
        let mut sends = lock(&app.sends);
        if out.recipients.iter().any(|to| sends.pnp_not_users.contains(to)) {
            return Err(respond::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The phone number does not belong to a LINE user who can receive notification messages",
            ));
        }
        check_quota(&sends, 1)?;
        record(&mut sends, &out);
        if let Some(tag) = tag {
            sends.pnp_tags.insert(ctx.request_id.to_string(), tag);
        }
        Ok(respond::ok_empty())
    })
}

pub(super) fn multicast(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        let mut to = Vec::new();
        if let Some(list) = check.required_array(&body, "", "to", 1, 500) {
            for (i, id) in list.iter().enumerate() {
                match id.as_str() {
                    Some(id) if validate::is_user_id(id) => to.push(id.to_owned()),
                    _ => check.add(&index("to", i), "must be a user ID (^U[0-9a-f]{32}$)"),
                }
            }
        }
        validate::messages(&mut check, &body);
        super::coupon::coupon_messages(app, &mut check, &body);
        let unit = validate::aggregation_units(&mut check, &body);
        check.finish()?;
        // A user listed twice gets the message once.
        let mut seen = std::collections::HashSet::new();
        to.retain(|id| seen.insert(id.clone()));
        let out = Outgoing {
            ctx,
            recipients: app.deliverable(to.iter().map(String::as_str)),
            messages: take_messages(&mut body),
            unit,
            notification_disabled: notification_disabled(&body),
            charged: true,
            sent_messages: false,
        };
        accept(app, &out)?;
        Ok(respond::ok_empty())
    })
}

pub(super) fn broadcast(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        validate::messages(&mut check, &body);
        check.finish()?;
        let friends: Vec<String> = {
            let users = app.users.read().unwrap_or_else(PoisonError::into_inner);
            users.friends().map(str::to_owned).collect()
        };
        let out = Outgoing {
            ctx,
            recipients: friends,
            messages: take_messages(&mut body),
            unit: None,
            notification_disabled: notification_disabled(&body),
            charged: true,
            sent_messages: false,
        };
        let mut sends = lock(&app.sends);
        check_retry_key(&mut sends, ctx)?;
        check_quota(&sends, out.recipients.len())?;
        record(&mut sends, &out);
        sends.records.insert(
            ctx.request_id.to_string(),
            SendRecord {
                endpoint: Endpoint::Broadcast,
                accepted_wall: Utc::now(),
                accepted_at: app.clock.now(),
                recipients: out.recipients.clone().into(),
                messages: Arc::clone(&out.messages),
                narrowcast: None,
            },
        );
        Ok(respond::ok_empty())
    })
}

/// A narrowcast `recipient` tree.
enum Recipient {
    Audience(i64),
    Redelivery(String),
    And(Vec<Self>),
    Or(Vec<Self>),
    Not(Box<Self>),
}

/// Validates a recipient object and builds its tree; counts audience and redelivery leaves.
fn recipient(
    check: &mut Check,
    value: &Value,
    path: &str,
    leaves: &mut usize,
) -> Option<Recipient> {
    let Some(object) = value.as_object() else {
        check.add(path, "must be a recipient object");
        return None;
    };
    match check.required_str(object, path, "type")? {
        "audience" => {
            *leaves += 1;
            check.required_int(object, path, "audienceGroupId").map(Recipient::Audience)
        }
        "redelivery" => {
            *leaves += 1;
            check
                .required_str(object, path, "requestId")
                .map(|id| Recipient::Redelivery(id.to_owned()))
        }
        "operator" => {
            let present: Vec<&str> =
                ["and", "or", "not"].into_iter().filter(|k| object.contains_key(*k)).collect();
            if present.len() != 1 {
                check.add(path, "an operator needs exactly one of and, or, not");
                return None;
            }
            let op = present[0];
            if op == "not" {
                let inner = recipient(check, &object[op], &join(path, op), leaves)?;
                return Some(Recipient::Not(Box::new(inner)));
            }
            let list = check.required_array(object, path, op, 1, 10)?;
            let children: Vec<Recipient> = list
                .iter()
                .enumerate()
                .filter_map(|(i, child)| {
                    recipient(check, child, &index(&join(path, op), i), leaves)
                })
                .collect();
            Some(if op == "and" { Recipient::And(children) } else { Recipient::Or(children) })
        }
        _ => {
            check.add(&join(path, "type"), "must be one of audience, redelivery, operator");
            None
        }
    }
}

/// Whether a narrowcast has completed successfully by now.
fn narrowcast_succeeded(app: &App, record: &SendRecord) -> bool {
    record.narrowcast.as_ref().is_some_and(|job| job.failure.is_none())
        && app.clock.since(record.accepted_at) >= app.narrowcast_duration
}

/// Resolves a recipient tree to user IDs.
fn resolve(
    app: &App,
    recipient: &Recipient,
    friends: &BTreeSet<String>,
) -> Result<BTreeSet<String>, Response> {
    Ok(match recipient {
        Recipient::Audience(id) => {
            let audiences = lock(&app.audiences);
            let Some(group) = audiences.groups.get(id) else {
                return Err(respond::error_with(
                    StatusCode::BAD_REQUEST,
                    "audience group not found",
                    &[Detail::message_only("AUDIENCE_GROUP_NOT_FOUND")],
                ));
            };
            if !super::audience::is_ready(app, group) {
                return Err(respond::error(
                    StatusCode::BAD_REQUEST,
                    "The audience group is not ready yet",
                ));
            }
            super::audience::members(app, group)
        }
        Recipient::Redelivery(request_id) => {
            let sends = lock(&app.sends);
            match sends.records.get(request_id) {
                Some(record) if narrowcast_succeeded(app, record) => {
                    record.recipients.iter().cloned().collect()
                }
                _ => {
                    return Err(respond::error_with(
                        StatusCode::BAD_REQUEST,
                        "The request ID for redelivery is invalid",
                        &[Detail::new("recipient.requestId", "must be a completed narrowcast")],
                    ));
                }
            }
        }
        Recipient::And(children) => {
            let mut sets = children.iter().map(|c| resolve(app, c, friends));
            let mut result = sets.next().transpose()?.unwrap_or_default();
            for set in sets {
                let set = set?;
                result.retain(|id| set.contains(id));
            }
            result
        }
        Recipient::Or(children) => {
            let mut result = BTreeSet::new();
            for child in children {
                result.extend(resolve(app, child, friends)?);
            }
            result
        }
        Recipient::Not(inner) => {
            let excluded = resolve(app, inner, friends)?;
            friends.difference(&excluded).cloned().collect()
        }
    })
}

pub(super) fn narrowcast(app: &App, ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let mut body = json_object(&input)?;
        let mut check = Check::new();
        validate::messages(&mut check, &body);
        let mut leaves = 0;
        let tree = match body.get("recipient") {
            None | Some(Value::Null) => None,
            Some(value) => recipient(&mut check, value, "recipient", &mut leaves),
        };
        if leaves > 10 {
            check.add("recipient", "at most 10 audience and redelivery objects in total");
        }
        if body.get("filter").is_some_and(|filter| !filter.is_object()) {
            check.add("filter", "must be an object");
        }
        let (mut max, mut up_to_remaining, mut forbid_partial) = (None, false, false);
        if let Some(limit) = body.get("limit") {
            match limit.as_object() {
                Some(limit) => {
                    if limit.contains_key("max") {
                        match check.required_int(limit, "limit", "max") {
                            Some(n) if n >= 1 => {
                                max = Some(usize::try_from(n).unwrap_or(usize::MAX))
                            }
                            Some(_) => check.add("limit.max", "must be at least 1"),
                            None => {}
                        }
                    }
                    up_to_remaining =
                        check.optional_bool(limit, "limit", "upToRemainingQuota").unwrap_or(false);
                    forbid_partial = check
                        .optional_bool(limit, "limit", "forbidPartialDelivery")
                        .unwrap_or(false);
                    if forbid_partial && !up_to_remaining {
                        check.add(
                            "limit.forbidPartialDelivery",
                            "requires upToRemainingQuota to be true",
                        );
                    }
                }
                None => check.add("limit", "must be an object"),
            }
        }
        check.finish()?;

        let friends: BTreeSet<String> = {
            let users = app.users.read().unwrap_or_else(PoisonError::into_inner);
            users.friends().map(str::to_owned).collect()
        };
        let targets = match &tree {
            Some(tree) => resolve(app, tree, &friends)?,
            None => friends.clone(),
        };
        let mut recipients = app.deliverable(targets.iter().map(String::as_str));
        if let Some(max) = max {
            recipients.truncate(max);
        }
        let target = recipients.len() as u64;

        let mut sends = lock(&app.sends);
        check_retry_key(&mut sends, ctx)?;
        let mut failure = None;
        if let Some(remaining) = remaining_quota(&sends)
            && recipients.len() as u64 > remaining
        {
            if !up_to_remaining {
                return Err(respond::quota_exceeded());
            }
            if forbid_partial {
                failure = Some((
                    5,
                    "Message delivery was canceled to prevent delivery to only part of the target",
                ));
            }
            recipients.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        if failure.is_none() && recipients.len() < app.narrowcast_min_recipients {
            failure = Some((2, "The number of recipients was below the minimum"));
        }
        if failure.is_some() {
            recipients.clear();
        }
        let out = Outgoing {
            ctx,
            recipients,
            messages: take_messages(&mut body),
            unit: None,
            notification_disabled: notification_disabled(&body),
            charged: true,
            sent_messages: false,
        };
        record(&mut sends, &out);
        sends.records.insert(
            ctx.request_id.to_string(),
            SendRecord {
                endpoint: Endpoint::Narrowcast,
                accepted_wall: Utc::now(),
                accepted_at: app.clock.now(),
                recipients: out.recipients.into(),
                messages: out.messages,
                narrowcast: Some(NarrowcastJob { target, failure }),
            },
        );
        Ok(respond::accepted_empty())
    })
}

pub(super) fn narrowcast_progress(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let Some(request_id) = input.query_param("requestId").filter(|id| !id.is_empty()) else {
        return bad_parameter("requestId", "must be specified");
    };
    let sends = lock(&app.sends);
    let Some(record) =
        sends.records.get(&request_id).filter(|r| r.endpoint == Endpoint::Narrowcast)
    else {
        return respond::not_found();
    };
    let Some(job) = &record.narrowcast else { return respond::not_found() };
    let duration = app.narrowcast_duration;
    let elapsed = app.clock.since(record.accepted_at);
    let millis = |d: std::time::Duration| {
        chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero())
    };
    let accepted = record.accepted_wall.to_rfc3339_opts(SecondsFormat::Millis, true);
    let completed =
        (record.accepted_wall + millis(duration)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = if elapsed >= duration {
        match job.failure {
            Some((code, description)) => json!({
                "phase": "failed",
                "failedDescription": description,
                "errorCode": code,
                "acceptedTime": accepted,
                "completedTime": completed,
            }),
            None => json!({
                "phase": "succeeded",
                "successCount": record.recipients.len(),
                "failureCount": 0,
                "targetCount": job.target,
                "acceptedTime": accepted,
                "completedTime": completed,
            }),
        }
    } else if elapsed >= duration / 3 {
        json!({ "phase": "sending", "targetCount": job.target, "acceptedTime": accepted })
    } else {
        json!({ "phase": "waiting", "acceptedTime": accepted })
    };
    respond::json(StatusCode::OK, &body)
}

pub(super) fn validate_messages(_app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        validate::messages(&mut check, &body);
        check.finish()?;
        Ok(respond::ok_empty())
    })
}

pub(super) fn quota(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let body = match lock(&app.sends).quota {
        FakeQuota::Unlimited => json!({ "type": "none" }),
        FakeQuota::Limited(value) => json!({ "type": "limited", "value": value }),
    };
    respond::json(StatusCode::OK, &body)
}

pub(super) fn quota_consumption(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let used = lock(&app.sends).used;
    respond::json(StatusCode::OK, &json!({ "totalUsage": used }))
}
