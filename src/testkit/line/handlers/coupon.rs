//! Coupons: create (with LINE's field limits), list (status filter, paging), get, close.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{bad_parameter, json_object, page_offset, page_token, respond_with};
use crate::testkit::line::faults::mix;
use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, StoredCoupon, lock};
use crate::testkit::line::validate::{Check, join};

/// The time zones LINE accepts (`CouponCreateRequest.timezone`).
const TIMEZONES: &[&str] = &[
    "ETC_GMT_MINUS_12",
    "ETC_GMT_MINUS_11",
    "PACIFIC_HONOLULU",
    "AMERICA_ANCHORAGE",
    "AMERICA_LOS_ANGELES",
    "AMERICA_PHOENIX",
    "AMERICA_CHICAGO",
    "AMERICA_NEW_YORK",
    "AMERICA_CARACAS",
    "AMERICA_SANTIAGO",
    "AMERICA_ST_JOHNS",
    "AMERICA_SAO_PAULO",
    "ETC_GMT_MINUS_2",
    "ATLANTIC_CAPE_VERDE",
    "EUROPE_LONDON",
    "EUROPE_PARIS",
    "EUROPE_ISTANBUL",
    "EUROPE_MOSCOW",
    "ASIA_TEHRAN",
    "ASIA_TBILISI",
    "ASIA_KABUL",
    "ASIA_TASHKENT",
    "ASIA_COLOMBO",
    "ASIA_KATHMANDU",
    "ASIA_ALMATY",
    "ASIA_RANGOON",
    "ASIA_BANGKOK",
    "ASIA_TAIPEI",
    "ASIA_TOKYO",
    "AUSTRALIA_DARWIN",
    "AUSTRALIA_SYDNEY",
    "ASIA_VLADIVOSTOK",
    "ETC_GMT_PLUS_12",
    "PACIFIC_TONGATAPU",
];

/// List page size: default and maximum.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

fn int_in(
    check: &mut Check,
    object: &Map<String, Value>,
    path: &str,
    field: &str,
    ok: impl Fn(i64) -> bool,
    rule: &str,
) {
    if let Some(v) = check.required_int(object, path, field)
        && !ok(v)
    {
        check.add(&join(path, field), rule);
    }
}

/// Validates a `CouponCreateRequest`.
fn coupon_object(check: &mut Check, body: &Map<String, Value>) {
    if let Some(title) = check.required_str(body, "", "title") {
        check.chars("title", title, 1, 60);
    }
    if let Some(d) = check.optional_str(body, "", "description") {
        check.chars("description", d, 0, 1000);
    }
    if let Some(c) = check.optional_str(body, "", "usageCondition") {
        check.chars("usageCondition", c, 0, 100);
    }
    for field in ["imageUrl", "barcodeImageUrl", "couponCode"] {
        check.optional_str(body, "", field);
    }
    let start = check.required_int(body, "", "startTimestamp");
    let end = check.required_int(body, "", "endTimestamp");
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        check.add("endTimestamp", "must be after startTimestamp");
    }
    int_in(check, body, "", "maxUseCountPerTicket", |v| v == 1 || v == -1, "must be 1 or -1");
    match check.required_str(body, "", "visibility") {
        Some("UNLISTED" | "PUBLIC") | None => {}
        Some(_) => check.add("visibility", "must be one of UNLISTED, PUBLIC"),
    }
    match check.required_str(body, "", "timezone") {
        Some(zone) if !TIMEZONES.contains(&zone) => {
            check.add("timezone", "must be one of the supported time zones");
        }
        _ => {}
    }
    match body.get("acquisitionCondition").and_then(Value::as_object) {
        None => check.add("acquisitionCondition", "must be specified"),
        Some(a) => match check.required_str(a, "acquisitionCondition", "type") {
            Some("normal") | None => {}
            Some("lottery") => {
                let path = "acquisitionCondition";
                int_in(
                    check,
                    a,
                    path,
                    "lotteryProbability",
                    |v| (1..=99).contains(&v),
                    "must be between 1 and 99",
                );
                int_in(
                    check,
                    a,
                    path,
                    "maxAcquireCount",
                    |v| v == -1 || (1..=999_999).contains(&v),
                    "must be between 1 and 999999, or -1",
                );
            }
            Some(_) => check.add("acquisitionCondition.type", "must be one of normal, lottery"),
        },
    }
    match body.get("reward") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => reward(check, r),
        Some(_) => check.add("reward", "must be an object"),
    }
}

fn reward(check: &mut Check, r: &Map<String, Value>) {
    let allowed: &[&str] = match check.required_str(r, "reward", "type") {
        Some("discount") => &["fixed", "percentage", "explicit"],
        Some("cashBack") => &["fixed", "percentage"],
        Some("free" | "gift" | "others") | None => &[],
        Some(_) => {
            check.add("reward.type", "must be one of cashBack, discount, free, gift, others");
            return;
        }
    };
    let Some(price) = r.get("priceInfo").and_then(Value::as_object) else { return };
    let path = "reward.priceInfo";
    match check.required_str(price, path, "type") {
        None => {}
        Some(kind) if !allowed.contains(&kind) => {
            check.add(&join(path, "type"), "is not allowed for this reward type");
        }
        Some("fixed") => {
            int_in(check, price, path, "fixedAmount", |v| v >= 1, "must be at least 1")
        }
        Some("percentage") => int_in(
            check,
            price,
            path,
            "percentage",
            |v| (1..=99).contains(&v),
            "must be between 1 and 99",
        ),
        Some(_) => {
            let original = check.required_int(price, path, "originalPrice");
            let after = check.required_int(price, path, "priceAfterDiscount");
            if let (Some(o), Some(a)) = (original, after)
                && !(0..o).contains(&a)
            {
                check.add(&join(path, "priceAfterDiscount"), "must be less than originalPrice");
            }
        }
    }
}

fn coupon_not_found() -> Response {
    respond::error(StatusCode::NOT_FOUND, "Coupon not found")
}

pub(super) fn create(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let body = json_object(&input)?;
        let mut check = Check::new();
        coupon_object(&mut check, &body);
        check.finish()?;
        let n = app.next_seq();
        let id = format!("COUPON_{:016x}", mix(app.seed ^ n ^ 0xC0));
        let created = chrono::Utc::now().timestamp();
        let mut coupons = lock(&app.coupons);
        coupons.order.push(id.clone());
        coupons.by_id.insert(id.clone(), StoredCoupon { body, status: "RUNNING", created });
        Ok(respond::json(StatusCode::OK, &json!({ "couponId": id })))
    })
}

/// Every `status` value of the query string.
fn statuses(input: &Input) -> Vec<String> {
    let Some(query) = input.query.as_deref() else { return Vec::new() };
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "status")
        .map(|(_, v)| v.into_owned())
        .collect()
}

pub(super) fn list(app: &App, _ctx: &Ctx, input: Input) -> Response {
    respond_with(|| {
        let wanted = statuses(&input);
        if let Some(bad) =
            wanted.iter().find(|s| !matches!(s.as_str(), "DRAFT" | "RUNNING" | "CLOSED"))
        {
            return Err(bad_parameter(
                "status",
                &format!("must be one of DRAFT, RUNNING, CLOSED (got {bad})"),
            ));
        }
        let limit = match input.query_param("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(bad_parameter("limit", "must be between 1 and 100")),
            },
        };
        let offset = match input.query_param("start") {
            None => 0,
            Some(token) => page_offset("coupon", &token)
                .ok_or_else(|| bad_parameter("start", "is not a valid page token"))?,
        };
        let coupons = lock(&app.coupons);
        let matching: Vec<&String> = coupons
            .order
            .iter()
            .filter(|id| {
                wanted.is_empty()
                    || coupons.by_id.get(*id).is_some_and(|c| wanted.iter().any(|w| w == c.status))
            })
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| {
                let c = coupons.by_id.get(*id)?;
                Some(json!({ "couponId": id, "title": c.body.get("title").cloned().unwrap_or(Value::Null) }))
            })
            .collect();
        let mut body = json!({ "items": items });
        if offset + limit < matching.len() {
            body["next"] = json!(page_token("coupon", offset + limit));
        }
        Ok(respond::json(StatusCode::OK, &body))
    })
}

pub(super) fn get(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let coupons = lock(&app.coupons);
    let id = input.param(0);
    let Some(c) = coupons.by_id.get(id) else { return coupon_not_found() };
    let mut body = c.body.clone();
    body.insert("couponId".into(), json!(id));
    body.insert("status".into(), json!(c.status));
    body.insert("createdTimestamp".into(), json!(c.created));
    if let Some(max) =
        c.body.get("acquisitionCondition").and_then(|a| a.get("maxAcquireCount")).cloned()
    {
        body.insert("maxAcquireCount".into(), max);
    }
    body.insert("maxTicketPerUser".into(), json!(1));
    respond::json(StatusCode::OK, &Value::Object(body))
}

pub(super) fn close(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let mut coupons = lock(&app.coupons);
    let Some(c) = coupons.by_id.get_mut(input.param(0)) else { return coupon_not_found() };
    if c.status == "CLOSED" {
        return respond::error(StatusCode::GONE, "The coupon is already closed");
    }
    c.status = "CLOSED";
    respond::ok_empty()
}

/// Checks that every coupon message of a push or multicast names a running coupon of this
/// account, as LINE does.
pub(super) fn coupon_messages(app: &App, check: &mut Check, body: &Map<String, Value>) {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else { return };
    let coupons = lock(&app.coupons);
    for (i, message) in messages.iter().enumerate() {
        if message.get("type").and_then(Value::as_str) != Some("coupon") {
            continue;
        }
        let Some(id) = message.get("couponId").and_then(Value::as_str) else { continue };
        let path = format!("messages[{i}].couponId");
        match coupons.by_id.get(id) {
            None => check.add(&path, "The coupon does not exist"),
            Some(c) if c.status != "RUNNING" => check.add(&path, "The coupon is not running"),
            Some(_) => {}
        }
    }
}
