//! Statistics: per request (narrowcast/broadcast), per aggregation unit, and the unit names used
//! this month. The numbers are derived from the recorded deliveries with fixed ratios (per
//! request) or ratios fixed by the unit's name (per unit, so reports built on the fake show
//! steps that differ); only the shapes (and LINE's "below 20 is null" privacy rule) are LINE's.

use std::collections::{BTreeMap, HashSet};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde_json::{Value, json};

use super::{bad_parameter, page_offset, page_token, respond_with};
use crate::testkit::line::endpoint::Endpoint;
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, lock};
use crate::testkit::line::validate;

/// LINE reports statistics in UTC+9.
fn jst(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    match FixedOffset::east_opt(9 * 3600) {
        Some(offset) => at.with_timezone(&offset),
        None => at.fixed_offset(),
    }
}

/// LINE hides any figure below 20.
fn private(n: u64) -> Value {
    if n < 20 { Value::Null } else { json!(n) }
}

/// Percentages of recipients who open and who click.
#[derive(Clone, Copy)]
struct Ratios {
    /// Unique users who opened.
    opened: u64,
    /// Unique users who tapped a URL.
    clicked: u64,
}

/// The ratios of per-request statistics.
const REQUEST_RATIOS: Ratios = Ratios { opened: 60, clicked: 20 };

/// Ratios fixed by an aggregation unit's name (FNV-1a): opens 40–74 %, clicks 5–24 %.
fn unit_ratios(unit: &str) -> Ratios {
    let hash = unit
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Ratios { opened: 40 + hash % 35, clicked: 5 + (hash >> 32) % 20 }
}

/// `n × percent / 100`.
fn share(n: u64, percent: u64) -> u64 {
    n * percent / 100
}

/// The http(s) URLs a message links to (action `uri`s and imagemap `linkUri`s), in order.
fn urls(message: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match (key.as_str(), item) {
                        ("uri" | "linkUri", Value::String(url))
                            if (url.starts_with("https://") || url.starts_with("http://"))
                                && !out.contains(url) =>
                        {
                            out.push(url.clone());
                        }
                        _ => walk(item, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(message, &mut out);
    out
}

fn is_media(message: &Value) -> bool {
    matches!(message.get("type").and_then(Value::as_str), Some("video" | "audio"))
}

/// `messages[]` and `clicks[]` entries for messages seen by `n` users.
fn per_message(messages: &[Value], n: u64, ratios: Ratios) -> (Vec<Value>, Vec<Value>) {
    let mut stats = Vec::new();
    let mut clicks = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let media =
            |percent| if is_media(message) { private(share(n, percent)) } else { Value::Null };
        stats.push(json!({
            "seq": i + 1,
            "impression": private(share(n, ratios.opened + 5)),
            "mediaPlayed": media(40),
            "mediaPlayed25Percent": media(35),
            "mediaPlayed50Percent": media(30),
            "mediaPlayed75Percent": media(25),
            "mediaPlayed100Percent": media(20),
            "uniqueMediaPlayed": media(30),
            "uniqueMediaPlayed25Percent": media(28),
            "uniqueMediaPlayed50Percent": media(25),
            "uniqueMediaPlayed75Percent": media(22),
            "uniqueMediaPlayed100Percent": media(18),
        }));
        for url in urls(message) {
            clicks.push(json!({
                "seq": i + 1,
                "url": url,
                "click": private(share(n, ratios.clicked + 5)),
                "uniqueClick": private(share(n, ratios.clicked)),
                "uniqueClickOfRequest": private(share(n, ratios.clicked)),
            }));
        }
    }
    (stats, clicks)
}

/// The overview figures shared by both statistics endpoints.
fn overview(messages: &[Value], n: u64, ratios: Ratios) -> serde_json::Map<String, Value> {
    let any_url = messages.iter().any(|m| !urls(m).is_empty());
    let any_media = messages.iter().any(is_media);
    let mut map = serde_json::Map::new();
    map.insert("uniqueImpression".into(), private(share(n, ratios.opened)));
    map.insert(
        "uniqueClick".into(),
        if any_url { private(share(n, ratios.clicked)) } else { Value::Null },
    );
    map.insert(
        "uniqueMediaPlayed".into(),
        if any_media { private(share(n, 30)) } else { Value::Null },
    );
    map.insert(
        "uniqueMediaPlayed100Percent".into(),
        if any_media { private(share(n, 18)) } else { Value::Null },
    );
    map
}

pub(super) fn message_event(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let Some(request_id) = input.query_param("requestId").filter(|id| !id.is_empty()) else {
        return bad_parameter("requestId", "must be specified");
    };
    let sends = lock(&app.sends);
    let Some(record) = sends.records.get(&request_id) else {
        return bad_parameter(
            "requestId",
            "must be the request ID of a narrowcast or broadcast message",
        );
    };
    let n = record.recipients.len() as u64;
    let completed = record.endpoint == Endpoint::Broadcast
        || app.clock.since(record.accepted_at) >= app.narrowcast_duration;
    let mut overview = overview(&record.messages, n, REQUEST_RATIOS);
    overview.insert("requestId".into(), json!(request_id));
    overview.insert("timestamp".into(), json!(record.accepted_wall.timestamp()));
    overview.insert("delivered".into(), if completed { json!(n) } else { Value::Null });
    let (messages, clicks) = per_message(&record.messages, n, REQUEST_RATIOS);
    respond::json(
        StatusCode::OK,
        &json!({ "overview": overview, "messages": messages, "clicks": clicks }),
    )
}

fn parse_date(input: &Input, name: &str) -> Result<NaiveDate, Response> {
    input
        .query_param(name)
        .filter(|raw| raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|raw| NaiveDate::parse_from_str(&raw, "%Y%m%d").ok())
        .ok_or_else(|| bad_parameter(name, "must be a date in yyyyMMdd format"))
}

pub(super) fn unit_statistics(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let unit = input.query_param("customAggregationUnit").unwrap_or_default();
        if !validate::is_aggregation_unit(&unit) {
            return Err(bad_parameter("customAggregationUnit", "must match ^[a-zA-Z0-9_]{1,30}$"));
        }
        let from = parse_date(&input, "from")?;
        let to = parse_date(&input, "to")?;
        if to < from || (to - from).num_days() > 30 {
            return Err(bad_parameter(
                "to",
                "must be on or after from, and at most 30 days after it",
            ));
        }
        let sends = lock(&app.sends);
        let mut users = HashSet::new();
        let mut messages: Vec<Value> = Vec::new();
        for delivery in &sends.deliveries {
            let day = jst(delivery.at).date_naive();
            if delivery.aggregation_unit.as_deref() == Some(unit.as_str())
                && from <= day
                && day <= to
            {
                users.insert(delivery.to.as_str());
                // One representative message per position.
                for (i, message) in delivery.messages.iter().enumerate() {
                    if messages.len() <= i {
                        messages.push(message.clone());
                    }
                }
            }
        }
        let n = users.len() as u64;
        let ratios = unit_ratios(&unit);
        let (per_message, clicks) = per_message(&messages, n, ratios);
        Ok(respond::json(
            StatusCode::OK,
            &json!({ "overview": overview(&messages, n, ratios), "messages": per_message, "clicks": clicks }),
        ))
    })
}

/// Aggregation unit names used this month (UTC+9), in order of first use.
fn units_this_month(app: &App) -> Vec<String> {
    let now = jst(Utc::now());
    let sends = lock(&app.sends);
    let mut first_use: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for delivery in &sends.deliveries {
        let Some(unit) = &delivery.aggregation_unit else { continue };
        let at = jst(delivery.at);
        if at.year() == now.year() && at.month() == now.month() && seen.insert(unit.clone()) {
            first_use.entry(delivery.at).or_default().push(unit.clone());
        }
    }
    first_use.into_values().flatten().collect()
}

pub(super) fn unit_info(app: &App, _ctx: &Ctx, _input: Input) -> Response {
    let count = units_this_month(app).len();
    respond::json(StatusCode::OK, &json!({ "numOfCustomAggregationUnits": count }))
}

pub(super) fn unit_list(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let limit = match input.query_param("limit") {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return bad_parameter("limit", "must be an integer between 1 and 100"),
        },
    };
    let start = match input.query_param("start") {
        None => 0,
        Some(token) => match page_offset("units", &token) {
            Some(offset) => offset,
            None => {
                return bad_parameter("start", "is not a continuation token issued by this API");
            }
        },
    };
    let units = units_this_month(app);
    let page: Vec<&String> = units.iter().skip(start).take(limit).collect();
    let mut body = json!({ "customAggregationUnits": page });
    let end = start.saturating_add(limit);
    if end < units.len() {
        body["next"] = json!(page_token("units", end));
    }
    respond::json(StatusCode::OK, &body)
}
