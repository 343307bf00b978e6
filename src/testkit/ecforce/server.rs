//! The fake ecforce server: state, request handling and the accept loop.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};

use super::render::{self, Shape};
use crate::commerce::model::compare_ids;
use crate::commerce::time::parse_jst_datetime;
use crate::commerce::{Cursor, Customer, Order, Product, Record, Subscription};
use crate::{CustomerId, LineUserId};

/// The admin API token the fake accepts unless configured otherwise.
pub const DEFAULT_ECFORCE_TOKEN: &str = "fake-ecforce-token";

/// A customer login the fake's sign-in endpoint accepts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeLogin {
    /// The customer it signs in.
    pub customer: CustomerId,
    /// The password.
    pub password: String,
    /// Whether sign-in answers `202 Accepted` (SMS verification required).
    pub sms_verification: bool,
}

impl FakeLogin {
    /// A login.
    #[must_use]
    pub fn new(customer: CustomerId, password: impl Into<String>) -> Self {
        Self { customer, password: password.into(), sms_verification: false }
    }

    /// Requires SMS verification.
    #[must_use]
    pub fn sms(mut self) -> Self {
        self.sms_verification = true;
        self
    }
}

/// A record the fake serves; deleted ones appear only with `q[with_deleted]=1`.
trait Row: Record {
    fn deleted(&self) -> bool {
        false
    }
}

impl Row for Customer {
    fn deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}
impl Row for Order {}
impl Row for Subscription {}
impl Row for Product {}

struct Table<T> {
    feed: BTreeMap<Cursor, T>,
    by_id: HashMap<String, Cursor>,
    /// The feed's keys in order (all, and deleted ones), rebuilt after changes, to count
    /// matches without a scan.
    index: Option<(Vec<Cursor>, Vec<Cursor>)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { feed: BTreeMap::new(), by_id: HashMap::new(), index: None }
    }
}

impl<T: Row> Table<T> {
    fn upsert(&mut self, record: T) {
        self.index = None;
        let cursor = record.cursor();
        if let Some(old) = self.by_id.insert(record.record_id().to_owned(), cursor.clone()) {
            self.feed.remove(&old);
        }
        self.feed.insert(cursor, record);
    }

    fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).and_then(|c| self.feed.get(c))
    }

    fn remove(&mut self, id: &str) -> Option<T> {
        self.index = None;
        let cursor = self.by_id.remove(id)?;
        self.feed.remove(&cursor)
    }

    /// Filtered records, in the order asked for, one page of them.
    fn select(&self, filter: &Filter) -> Vec<&T> {
        let lower = filter.gteq.map_or(Bound::Unbounded, |t| Bound::Included(Cursor::before(t)));
        let upper = filter.lt.map_or(Bound::Unbounded, |t| Bound::Excluded(Cursor::before(t)));
        if filter.lt.is_some_and(|lt| filter.gteq.is_some_and(|gteq| lt <= gteq)) {
            return Vec::new();
        }
        let range = self.feed.range((lower, upper)).filter(|(c, r)| {
            (filter.with_deleted || !r.deleted())
                && filter.id_gt.as_deref().is_none_or(|gt| compare_ids(&c.id, gt).is_gt())
        });
        let skip = filter.per * (filter.page.saturating_sub(1));
        if filter.sort_by_id {
            let mut all: Vec<_> = range.collect();
            all.sort_by(|a, b| compare_ids(&a.0.id, &b.0.id));
            all.into_iter().skip(skip).take(filter.per).map(|(_, r)| r).collect()
        } else {
            range.skip(skip).take(filter.per).map(|(_, r)| r).collect()
        }
    }

    fn filtered_count(&mut self, filter: &Filter) -> usize {
        if filter.id_gt.is_some() {
            // Only used within one second: a short range.
            let unpaged = Filter { page: 1, per: usize::MAX, ..filter.clone() };
            return self.select(&unpaged).len();
        }
        let (all, deleted) = self.index.get_or_insert_with(|| {
            let all = self.feed.keys().cloned().collect();
            let deleted = self.feed.iter().filter(|(_, r)| r.deleted()).map(|(c, _)| c.clone());
            (all, deleted.collect())
        });
        let count = |index: &[Cursor]| {
            let lo = filter.gteq.map_or(0, |t| index.partition_point(|c| c.updated_at < t));
            let hi = filter.lt.map_or(index.len(), |t| index.partition_point(|c| c.updated_at < t));
            hi.saturating_sub(lo)
        };
        let hidden = if filter.with_deleted { 0 } else { count(deleted) };
        count(all) - hidden
    }
}

#[derive(Clone)]
struct Filter {
    with_deleted: bool,
    gteq: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
    id_gt: Option<String>,
    sort_by_id: bool,
    page: usize,
    per: usize,
}

/// An answer the fake gives instead of serving a request (see [`FakeEcforce::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EcforceFault {
    /// `429 Too Many Requests`, with `Retry-After: <secs>` or (ecforce's usual) without.
    RateLimited {
        /// The `Retry-After` seconds, if sent.
        retry_after: Option<u64>,
    },
    /// `500` with ecforce's `AOR9999` envelope (practitioners see transient ones).
    ServerError,
    /// An HTML error page with this status, as a proxy or Cloudflare serves it (a 403 one is
    /// a WAF block, not a token problem).
    HtmlPage {
        /// The HTTP status.
        status: u16,
    },
}

#[derive(Default)]
struct Data {
    customers: Table<Customer>,
    orders: Table<Order>,
    subscriptions: Table<Subscription>,
    products: Table<Product>,
    malformed: HashSet<String>,
    logins: HashMap<String, FakeLogin>,
    points: Vec<(CustomerId, i64, String)>,
    faults: VecDeque<EcforceFault>,
    reject_points: bool,
    max_per: Option<usize>,
    default_lighter: bool,
    item_link_type: Option<String>,
    missing_items: HashSet<String>,
    ignored_params: HashSet<String>,
    sign_in_limit: Option<(usize, std::time::Duration)>,
    sign_in_times: VecDeque<tokio::time::Instant>,
    sign_in_requires_token: bool,
    requests: u64,
    sign_ins: u64,
    log: Vec<FakeEcforceRequest>,
    labels: super::labels::LabelBook,
}

/// One request the fake answered (for asserting what a client sent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeEcforceRequest {
    /// The method.
    pub method: String,
    /// The path, e.g. `/api/v2/admin/customers.json`.
    pub path: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// Whether it carried the admin token.
    pub authorized: bool,
}

struct Shared {
    token: String,
    data: Mutex<Data>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Configures a [`FakeEcforce`].
#[derive(Debug)]
#[must_use]
pub struct FakeEcforceBuilder {
    token: String,
}

impl FakeEcforceBuilder {
    /// The admin API token the fake accepts (default [`DEFAULT_ECFORCE_TOKEN`]).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// Starts the server on 127.0.0.1 (a free port).
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(self) -> std::io::Result<FakeEcforce> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { token: self.token, data: Mutex::default() });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            // The server runs until the fake is dropped (the task is aborted then).
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeEcforce { addr, shared, task })
    }
}

/// A fake ecforce shop on 127.0.0.1, shaped after the public evidence about ecforce's admin
/// API v2 rather than after enishi's adapter. Dropping it stops the server.
///
/// What it does like ecforce (as far as public material shows): customer `number` ≠ `id`,
/// subscriptions naming their customer by number (`include=customer` adds the ID), no
/// customer `name` (names on the billing address, `include=billing_address`), no variant
/// `stock`, `payment_state` apart from `state`, 退会 / blacklisted customers, deleted customers
/// only with `q[with_deleted]=1`, `include` and `lighter` honoured (the shop's default shape
/// is configurable), the flat points body only (422 otherwise), unpermitted `PUT` parameters
/// (such as `line_id_linked_at`) dropped with 200. Faults on demand: 429 with and without
/// `Retry-After`, 5xx, HTML error pages, a smaller `per` cap, odd item linkage, missing items.
///
/// ```
/// use enishi::commerce::{CommerceBackendExt, Customer, EcforceClient};
/// use enishi::testkit::{FakeEcforce, DEFAULT_ECFORCE_TOKEN};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shop = FakeEcforce::builder().start().await?;
/// shop.insert_customers([Customer::new(enishi::CustomerId::new("1")?, chrono::Utc::now())]);
/// let client = EcforceClient::builder(shop.base_url(), DEFAULT_ECFORCE_TOKEN)
///     .min_interval(std::time::Duration::ZERO)
///     .build()?;
/// assert_eq!(client.all_customers().await?.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct FakeEcforce {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeEcforce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEcforce").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakeEcforce {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whole seconds: ecforce shows no sub-second precision, and neither does the fake.
fn second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

impl FakeEcforce {
    /// A builder.
    pub fn builder() -> FakeEcforceBuilder {
        FakeEcforceBuilder { token: DEFAULT_ECFORCE_TOKEN.into() }
    }

    /// The shop's base URL (`http://127.0.0.1:<port>`), for [`EcforceClient::builder`](crate::commerce::EcforceClient::builder).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Removes every record, login, fault, switch and counter.
    pub fn reset(&self) {
        *self.shared.lock() = Data::default();
    }

    /// Adds or replaces customers (times are truncated to whole seconds). A customer with
    /// `deleted_at` is served only to `q[with_deleted]=1`; `withdrawn` is served as the 退会
    /// state, `name` on the billing address. Without a `number`, one unlike the ID is made up.
    pub fn insert_customers(&self, customers: impl IntoIterator<Item = Customer>) {
        let mut data = self.shared.lock();
        for mut c in customers {
            c.updated_at = second(c.updated_at);
            data.customers.upsert(c);
        }
    }

    /// Adds or replaces orders (`payment_state` defaults to `completed`, or `voided` when
    /// `paid` is `Some(false)`).
    pub fn insert_orders(&self, orders: impl IntoIterator<Item = Order>) {
        let mut data = self.shared.lock();
        for mut o in orders {
            o.updated_at = second(o.updated_at);
            data.orders.upsert(o);
        }
    }

    /// Adds or replaces subscriptions. `customer` is the customer's **ID**: the fake serves the
    /// customer's `number` as `customer_number`, as ecforce does.
    pub fn insert_subscriptions(&self, subscriptions: impl IntoIterator<Item = Subscription>) {
        let mut data = self.shared.lock();
        for mut s in subscriptions {
            s.updated_at = second(s.updated_at);
            data.subscriptions.upsert(s);
        }
    }

    /// Adds or replaces products.
    pub fn insert_products(&self, products: impl IntoIterator<Item = Product>) {
        let mut data = self.shared.lock();
        for mut p in products {
            p.updated_at = second(p.updated_at);
            data.products.upsert(p);
        }
    }

    /// Marks a customer as edited now (as a shop admin would).
    pub fn touch_customer(&self, id: &CustomerId) {
        self.edit_customer(id, |_| {});
    }

    /// Edits a customer as a shop admin would (its `updated_at` moves to now).
    pub fn edit_customer(&self, id: &CustomerId, edit: impl FnOnce(&mut Customer)) {
        let mut data = self.shared.lock();
        if let Some(mut c) = data.customers.remove(id.as_str()) {
            edit(&mut c);
            c.updated_at = second(Utc::now()).max(c.updated_at + TimeDelta::seconds(1));
            data.customers.upsert(c);
        }
    }

    /// Serves this customer with a malformed `buy_total` (a string that is not a number).
    pub fn corrupt_customer(&self, id: &CustomerId) {
        self.shared.lock().malformed.insert(id.as_str().to_owned());
    }

    /// Answers the next `n` requests with 429 and `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        self.fail_next(n, EcforceFault::RateLimited { retry_after: Some(retry_after_secs) });
    }

    /// Answers the next `n` requests (admin API and sign-in) with `fault` instead of serving
    /// them; queued after faults already pending.
    pub fn fail_next(&self, n: u32, fault: EcforceFault) {
        let mut data = self.shared.lock();
        data.faults.extend(std::iter::repeat_n(fault, n as usize));
    }

    /// Refuses every points grant with 422, whatever its body (a shop whose points API is off).
    pub fn reject_points(&self, on: bool) {
        self.shared.lock().reject_points = on;
    }

    /// Serves at most `per` records a page whatever is asked (`meta` stays truthful).
    pub fn cap_per(&self, per: Option<usize>) {
        self.shared.lock().max_per = per.map(|p| p.max(1));
    }

    /// The shop's default shape when a request sends no `lighter` (default: the full shape).
    pub fn default_lighter(&self, lighter: bool) {
        self.shared.lock().default_lighter = lighter;
    }

    /// The type written in `relationships.order_items.data[]` (default `order_item`, as the
    /// included resources): practitioners report `order_items` and `order-item` there.
    pub fn item_link_type(&self, kind: &str) {
        self.shared.lock().item_link_type = Some(kind.to_owned());
    }

    /// Links this order's (or subscription's) items without side-loading them.
    pub fn hide_items_of(&self, id: &str) {
        self.shared.lock().missing_items.insert(id.to_owned());
    }

    /// Silently drops this customer parameter on `PUT` (200, unchanged), as ecforce does for
    /// parameters a shop does not permit.
    pub fn ignore_customer_param(&self, name: &str) {
        self.shared.lock().ignored_params.insert(name.to_owned());
    }

    /// Limits customer sign-in to `attempts` per `window` for the whole shop (429 beyond).
    pub fn sign_in_limit(&self, attempts: usize, window: std::time::Duration) {
        self.shared.lock().sign_in_limit = Some((attempts, window));
    }

    /// Makes customer sign-in require the admin token (401 without it).
    pub fn sign_in_requires_token(&self, on: bool) {
        self.shared.lock().sign_in_requires_token = on;
    }

    /// Registers a customer login for `POST /api/v2/customers/sign_in`.
    pub fn add_login(&self, email: impl Into<String>, login: FakeLogin) {
        self.shared.lock().logins.insert(email.into(), login);
    }

    /// One subscription as the fake holds it now.
    #[must_use]
    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.shared.lock().subscriptions.get(id).cloned()
    }

    /// A customer as the fake holds it.
    #[must_use]
    pub fn customer(&self, id: &CustomerId) -> Option<Customer> {
        self.shared.lock().customers.get(id.as_str()).cloned()
    }

    /// The customer number the fake serves for a customer.
    #[must_use]
    pub fn customer_number(&self, id: &CustomerId) -> Option<String> {
        self.shared.lock().customers.get(id.as_str()).map(render::customer_number)
    }

    /// Points granted through the API: `(customer, signed points, description)`.
    #[must_use]
    pub fn points_granted(&self) -> Vec<(CustomerId, i64, String)> {
        self.shared.lock().points.clone()
    }

    /// Admin API requests answered so far (faults included).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests
    }

    /// Every request answered so far (admin API and sign-in), oldest first.
    #[must_use]
    pub fn request_log(&self) -> Vec<FakeEcforceRequest> {
        self.shared.lock().log.clone()
    }

    /// Labels the fake holds: `(id, name, type)`.
    #[must_use]
    pub fn labels(&self) -> Vec<(String, String, String)> {
        self.shared.lock().labels.labels()
    }

    /// `PUT admin/labeling` requests answered so far.
    #[must_use]
    pub fn labeling_requests(&self) -> u64 {
        self.shared.lock().labels.labelings()
    }

    /// Customer sign-in requests answered so far.
    #[must_use]
    pub fn sign_in_requests(&self) -> u64 {
        self.shared.lock().sign_ins
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, &json!({ "errors": [{ "code": code, "message": message }] }))
}

fn fault(f: &EcforceFault) -> Response {
    match f {
        EcforceFault::RateLimited { retry_after: Some(secs) } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "Too Many Requests",
        )
            .into_response(),
        EcforceFault::RateLimited { retry_after: None } => {
            (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response()
        }
        EcforceFault::ServerError => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "AOR9999", "予期せぬエラーが発生しました。")
        }
        EcforceFault::HtmlPage { status } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>\
             <body><h1>Sorry, you have been blocked</h1><p>Error 1020</p></body></html>",
        )
            .into_response(),
    }
}

fn filter(query: &HashMap<String, String>, max_per: Option<usize>) -> Filter {
    let time = |k: &str| query.get(k).and_then(|v| parse_jst_datetime(v));
    let per = query.get("per").and_then(|p| p.parse().ok()).unwrap_or(20).clamp(1, 100);
    Filter {
        with_deleted: query.get("q[with_deleted]").is_some_and(|v| v == "1" || v == "true"),
        gteq: time("q[updated_at_gteq]"),
        lt: time("q[updated_at_lt]"),
        id_gt: query.get("q[id_gt]").cloned(),
        sort_by_id: query.get("sort").is_some_and(|s| s == "id"),
        page: query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1),
        per: max_per.map_or(per, |m| per.min(m)),
    }
}

fn list<T: Row>(
    table: &mut Table<T>,
    query: &HashMap<String, String>,
    max_per: Option<usize>,
    render: impl Fn(&T) -> (Value, Vec<Value>),
) -> Value {
    let filter = filter(query, max_per);
    let total = table.filtered_count(&filter);
    let rows = table.select(&filter);
    let mut data = Vec::with_capacity(rows.len());
    let mut included = Vec::new();
    for row in &rows {
        let (resource, side) = render(row);
        data.push(resource);
        included.extend(side);
    }
    let mut doc = json!({
        "data": data,
        "meta": { "total_count": total, "page": filter.page, "per": filter.per, "count": rows.len(),
                  "total_pages": total.div_ceil(filter.per) },
    });
    if !included.is_empty() {
        doc["included"] = Value::Array(included);
    }
    doc
}

fn strip_json(segment: &str) -> &str {
    segment.strip_suffix(".json").unwrap_or(segment)
}

/// A lenient 0/1 flag as ecforce reads request parameters.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "0" | "false" => Some(false),
            "1" | "true" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The signed amount of a points body in ecforce-go's flat shape, or why it is refused.
fn points_body(body: &Value) -> Result<(i64, String), &'static str> {
    let point = match &body["point"] {
        Value::Number(n) => n.as_i64().filter(|p| *p >= 0),
        Value::String(s) => s.parse::<i64>().ok().filter(|p| *p >= 0),
        _ => None,
    }
    .ok_or("pointパラメータが正しくありません。")?;
    let add = flag(&body["addition_and_subtraction"])
        .ok_or("addition_and_subtractionパラメータが正しくありません。")?;
    let with_event = body["point_event_id"].as_i64().is_some();
    let created = flag(&body["with_create"]) == Some(true)
        && body["name"].as_str().is_some_and(|n| !n.is_empty());
    if !with_event && !created {
        return Err("point_event_idを入力してください。");
    }
    let description = body["description"].as_str().or(body["name"].as_str()).unwrap_or("");
    Ok((if add { point } else { -point }, description.to_owned()))
}

/// One request as the fake reads it: a body that is not JSON reads as `null`.
struct Request {
    method: Method,
    /// Without a trailing `/`.
    path: String,
    query: HashMap<String, String>,
    body: Value,
    /// It carried the admin token.
    authorized: bool,
}

impl Request {
    fn read(method: Method, uri: &Uri, headers: &HeaderMap, body: &[u8], token: &str) -> Self {
        let query = uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let expected = format!("Token token=\"{token}\"");
        let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            == Some(expected.as_str());
        Self {
            method,
            path: uri.path().trim_end_matches('/').to_owned(),
            query,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            authorized,
        }
    }

    fn log_entry(&self) -> FakeEcforceRequest {
        FakeEcforceRequest {
            method: self.method.to_string(),
            path: self.path.clone(),
            query: self.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            authorized: self.authorized,
        }
    }

    fn is_sign_in(&self) -> bool {
        strip_json(&self.path) == "/api/v2/customers/sign_in" && self.method == Method::POST
    }
}

/// Logs the request, plays the next queued fault, checks the token, then routes.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Request::read(method, &uri, &headers, &body, &shared.token);
    let mut data = shared.lock();
    data.log.push(req.log_entry());
    if req.is_sign_in() {
        data.sign_ins += 1;
        if let Some(f) = data.faults.pop_front() {
            return fault(&f);
        }
        return sign_in(&mut data, &req.body, req.authorized);
    }
    let Some(rest) = req.path.strip_prefix("/api/v2/admin/") else {
        return no_such_endpoint();
    };
    data.requests += 1;
    if let Some(f) = data.faults.pop_front() {
        return fault(&f);
    }
    if !req.authorized {
        return error(StatusCode::UNAUTHORIZED, "ASS1001", "認証に失敗しました。");
    }
    admin(&mut data, &req, rest)
}

fn no_such_endpoint() -> Response {
    error(StatusCode::NOT_FOUND, "A0000", "no such endpoint")
}

fn customer_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "ACU2001", "customerが見つかりません。")
}

/// A changed record's `updated_at`: now, to the second, and always later than before.
fn touched(updated_at: DateTime<Utc>) -> DateTime<Utc> {
    second(Utc::now()).max(updated_at + TimeDelta::seconds(1))
}

/// The admin API's route table (`rest` is the path after `/api/v2/admin/`).
fn admin(data: &mut Data, req: &Request, rest: &str) -> Response {
    let segments: Vec<&str> = rest.split('/').map(strip_json).collect();
    if let Some(r) = labels(data, req, &segments) {
        return r;
    }
    // The rendering settings are copied so the handlers can change the tables they render.
    let numbers: HashMap<String, String> = if rest.starts_with("subs_orders") {
        data.customers
            .feed
            .values()
            .map(|c| (c.id.as_str().to_owned(), render::customer_number(c)))
            .collect()
    } else {
        HashMap::new()
    };
    let item_link_type = data.item_link_type.clone().unwrap_or_else(|| "order_item".to_owned());
    let missing_items = data.missing_items.clone();
    let shape = Shape {
        include: req
            .query
            .get("include")
            .map(|i| i.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default(),
        lighter: match req.query.get("lighter").map(String::as_str) {
            Some("1" | "true") => true,
            Some(_) => false,
            None => data.default_lighter,
        },
        item_link_type: &item_link_type,
        missing_items: &missing_items,
        numbers: &numbers,
    };
    match (&req.method, segments.as_slice()) {
        (&Method::GET, [resource]) => index(data, &req.query, &shape, resource),
        (&Method::GET, [resource, id]) => show(data, &req.query, &shape, resource, id),
        (&Method::PUT, ["customers", id]) => update_customer(data, &req.body, &shape, id),
        (&Method::PUT, ["subs_orders", id]) => update_subscription(data, &req.body, &shape, id),
        (&Method::POST, ["customers", id, "points"]) => add_points(data, &req.body, id),
        _ => no_such_endpoint(),
    }
}

/// The label endpoints, which change customers' label lists.
fn labels(data: &mut Data, req: &Request, segments: &[&str]) -> Option<Response> {
    let (labels, customers) = (&mut data.labels, &mut data.customers);
    let mut edit = |id: &str, f: &mut dyn FnMut(&mut Vec<String>)| {
        let Some(mut c) = customers.remove(id) else { return false };
        f(&mut c.labels);
        c.updated_at = touched(c.updated_at);
        customers.upsert(c);
        true
    };
    super::labels::handle(labels, &req.method, segments, &req.query, &req.body, &mut edit)
}

/// `GET /<resource>`: one page of a collection.
fn index(
    data: &mut Data,
    query: &HashMap<String, String>,
    shape: &Shape<'_>,
    resource: &str,
) -> Response {
    let max_per = data.max_per;
    let doc = match resource {
        "customers" => {
            let malformed = &data.malformed;
            list(&mut data.customers, query, max_per, |c| {
                render::customer(c, malformed.contains(c.id.as_str()), shape)
            })
        }
        "orders" => list(&mut data.orders, query, max_per, |o| render::order(o, shape)),
        "subs_orders" => {
            list(&mut data.subscriptions, query, max_per, |s| render::subscription(s, shape))
        }
        "products" => list(&mut data.products, query, max_per, |p| render::product(p, shape)),
        _ => return no_such_endpoint(),
    };
    reply(StatusCode::OK, &doc)
}

/// `GET /<resource>/<id>`: one record with what it includes.
fn show(
    data: &Data,
    query: &HashMap<String, String>,
    shape: &Shape<'_>,
    resource: &str,
    id: &str,
) -> Response {
    let found = match resource {
        "customers" => {
            let with_deleted = query.get("q[with_deleted]").is_some_and(|v| v == "1");
            match data.customers.get(id) {
                Some(c) if with_deleted || c.deleted_at.is_none() => {
                    render::customer(c, data.malformed.contains(id), shape)
                }
                _ => return customer_not_found(),
            }
        }
        "orders" => match data.orders.get(id) {
            Some(o) => render::order(o, shape),
            None => return error(StatusCode::NOT_FOUND, "AOR2001", "orderが見つかりません。"),
        },
        "subs_orders" => match data.subscriptions.get(id) {
            Some(s) => render::subscription(s, shape),
            None => {
                return error(StatusCode::NOT_FOUND, "ASO2001", "subs_orderが見つかりません。");
            }
        },
        "products" => match data.products.get(id) {
            Some(p) => render::product(p, shape),
            None => return error(StatusCode::NOT_FOUND, "A0000", "productが見つかりません。"),
        },
        _ => return no_such_endpoint(),
    };
    let (resource, included) = found;
    reply(StatusCode::OK, &json!({ "data": resource, "included": included }))
}

/// `PUT /customers/<id>`: only permitted parameters are applied; the rest are dropped without
/// a word, as ecforce does (`line_id_linked_at` is not writable).
fn update_customer(data: &mut Data, body: &Value, shape: &Shape<'_>, id: &str) -> Response {
    let Some(mut c) = data.customers.remove(id) else {
        return customer_not_found();
    };
    let attrs = &body["customer"];
    let permitted = |k: &str| !data.ignored_params.contains(k);
    if let Some(line) = attrs.get("line_id").filter(|_| permitted("line_id")) {
        c.line_user_id = line.as_str().and_then(|l| LineUserId::new(l).ok());
        if c.line_user_id.is_none() {
            c.line_linked_at = None;
        }
    }
    if let Some(optin) = attrs.get("optin").and_then(flag).filter(|_| permitted("optin")) {
        c.opt_in = Some(optin);
    }
    if let Some(stop) =
        attrs.get("mail_delivery_stop").and_then(flag).filter(|_| permitted("mail_delivery_stop"))
    {
        c.email_stopped = Some(stop);
    }
    c.updated_at = touched(c.updated_at);
    let (resource, _) = render::customer(&c, false, shape);
    data.customers.upsert(c);
    reply(StatusCode::OK, &json!({ "data": resource }))
}

/// `PUT /subs_orders/<id>`: `skip_next_scheduled_delivery` is applied; other parameters
/// are dropped.
fn update_subscription(data: &mut Data, body: &Value, shape: &Shape<'_>, id: &str) -> Response {
    let Some(mut s) = data.subscriptions.remove(id) else {
        return error(StatusCode::NOT_FOUND, "ASO2001", "subs_orderが見つかりません。");
    };
    if let Some(skip) = body["subs_order"].get("skip_next_scheduled_delivery").and_then(flag) {
        s.skip_next_delivery = Some(skip);
    }
    s.updated_at = touched(s.updated_at);
    let (resource, _) = render::subscription(&s, shape);
    data.subscriptions.upsert(s);
    reply(StatusCode::OK, &json!({ "data": resource }))
}

/// `POST /customers/<id>/points`: adds (or takes) points and answers the created record.
fn add_points(data: &mut Data, body: &Value, id: &str) -> Response {
    let Some(mut c) = data.customers.remove(id) else {
        return customer_not_found();
    };
    let parsed = if data.reject_points {
        Err("ポイントを付与できません。")
    } else {
        points_body(body)
    };
    let (points, description) = match parsed {
        Ok(p) => p,
        Err(message) => {
            data.customers.upsert(c);
            return error(StatusCode::UNPROCESSABLE_ENTITY, "ACU3001", message);
        }
    };
    c.points = Some(c.points.unwrap_or(0) + points);
    c.updated_at = touched(c.updated_at);
    let total = c.points;
    let customer_id = c.id.clone();
    data.customers.upsert(c);
    data.points.push((customer_id, points, description.clone()));
    let n = data.points.len();
    reply(
        StatusCode::CREATED,
        &json!({ "data": { "id": n.to_string(), "type": "point", "attributes": {
        "id": n, "customer_id": render::num_id(id), "point_event_id": body["point_event_id"].as_i64().unwrap_or(1_000_000 + n as i64),
        "point_event_name": body["name"].as_str().unwrap_or(""), "point_event_description": description,
        "point": points.abs(), "point_total": total,
        "created_at": crate::commerce::time::format_jst_response(Utc::now()), "deleted_at": null } } }),
    )
}

fn sign_in(data: &mut Data, body: &Value, authorized: bool) -> Response {
    if data.sign_in_requires_token && !authorized {
        return error(StatusCode::UNAUTHORIZED, "ASS1001", "認証に失敗しました。");
    }
    if let Some((limit, window)) = data.sign_in_limit {
        let now = tokio::time::Instant::now();
        while data.sign_in_times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            data.sign_in_times.pop_front();
        }
        if data.sign_in_times.len() >= limit {
            return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        }
        data.sign_in_times.push_back(now);
    }
    let email = body["customer"]["email"].as_str().unwrap_or("");
    let password = body["customer"]["password"].as_str().unwrap_or("");
    match data.logins.get(email) {
        Some(login) if login.password == password => {
            if login.sms_verification {
                return reply(StatusCode::ACCEPTED, &json!({}));
            }
            reply(
                StatusCode::OK,
                &json!({ "id": login.customer.as_str().parse::<i64>().ok(), "email": email,
                "authentication_token": "fake-customer-token" }),
            )
        }
        _ => {
            error(StatusCode::UNAUTHORIZED, "ACU1001", "メールアドレスまたはパスワードが違います。")
        }
    }
}
