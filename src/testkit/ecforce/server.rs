//! The fake ecforce server: state, request handling and the accept loop.

use std::collections::{BTreeMap, HashMap, HashSet};
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

use super::render;
use crate::commerce::{
    Cursor, Customer, Order, Product, Record, Subscription, compare_ids, parse_jst_datetime,
};
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

struct Table<T> {
    feed: BTreeMap<Cursor, T>,
    by_id: HashMap<String, Cursor>,
    /// The feed's keys in order, rebuilt after changes, to count matches without a scan.
    index: Option<Vec<Cursor>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { feed: BTreeMap::new(), by_id: HashMap::new(), index: None }
    }
}

impl<T: Record> Table<T> {
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
        let range = self.feed.range((lower, upper)).filter(|(c, _)| {
            filter.id_gt.as_deref().is_none_or(|gt| compare_ids(&c.id, gt).is_gt())
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
        let index = self.index.get_or_insert_with(|| self.feed.keys().cloned().collect());
        let lo = filter.gteq.map_or(0, |t| index.partition_point(|c| c.updated_at < t));
        let hi = filter.lt.map_or(index.len(), |t| index.partition_point(|c| c.updated_at < t));
        hi.saturating_sub(lo)
    }
}

#[derive(Clone)]
struct Filter {
    gteq: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
    id_gt: Option<String>,
    sort_by_id: bool,
    page: usize,
    per: usize,
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
    rate_limit_next: u32,
    retry_after_secs: u64,
    requests: u64,
    sign_ins: u64,
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

/// A fake ecforce shop on 127.0.0.1. Dropping it stops the server.
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

    /// Removes every record, login, fault and counter.
    pub fn reset(&self) {
        *self.shared.lock() = Data::default();
    }

    /// Adds or replaces customers (times are truncated to whole seconds).
    pub fn insert_customers(&self, customers: impl IntoIterator<Item = Customer>) {
        let mut data = self.shared.lock();
        for mut c in customers {
            c.updated_at = second(c.updated_at);
            data.customers.upsert(c);
        }
    }

    /// Adds or replaces orders.
    pub fn insert_orders(&self, orders: impl IntoIterator<Item = Order>) {
        let mut data = self.shared.lock();
        for mut o in orders {
            o.updated_at = second(o.updated_at);
            data.orders.upsert(o);
        }
    }

    /// Adds or replaces subscriptions.
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
        let mut data = self.shared.lock();
        if let Some(mut c) = data.customers.remove(id.as_str()) {
            c.updated_at = second(Utc::now()).max(c.updated_at + TimeDelta::seconds(1));
            data.customers.upsert(c);
        }
    }

    /// Serves this customer with a malformed `buy_total` (a string that is not a number).
    pub fn corrupt_customer(&self, id: &CustomerId) {
        self.shared.lock().malformed.insert(id.as_str().to_owned());
    }

    /// Answers the next `n` admin requests with 429 and `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        let mut data = self.shared.lock();
        data.rate_limit_next = n;
        data.retry_after_secs = retry_after_secs;
    }

    /// Registers a customer login for `POST /api/v2/customers/sign_in`.
    pub fn add_login(&self, email: impl Into<String>, login: FakeLogin) {
        self.shared.lock().logins.insert(email.into(), login);
    }

    /// A customer as the fake holds it.
    #[must_use]
    pub fn customer(&self, id: &CustomerId) -> Option<Customer> {
        self.shared.lock().customers.get(id.as_str()).cloned()
    }

    /// Points granted through the API: `(customer, points, description)`.
    #[must_use]
    pub fn points_granted(&self) -> Vec<(CustomerId, i64, String)> {
        self.shared.lock().points.clone()
    }

    /// Admin API requests answered so far (429s included).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests
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

fn filter(query: &HashMap<String, String>) -> Filter {
    let time = |k: &str| query.get(k).and_then(|v| parse_jst_datetime(v));
    Filter {
        gteq: time("q[updated_at_gteq]"),
        lt: time("q[updated_at_lt]"),
        id_gt: query.get("q[id_gt]").cloned(),
        sort_by_id: query.get("sort").is_some_and(|s| s == "id"),
        page: query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1),
        per: query.get("per").and_then(|p| p.parse().ok()).unwrap_or(20).clamp(1, 100),
    }
}

fn list<T: Record>(
    table: &mut Table<T>,
    query: &HashMap<String, String>,
    render: impl Fn(&T) -> (Value, Vec<Value>),
) -> Value {
    let filter = filter(query);
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

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if strip_json(path) == "/api/v2/customers/sign_in" && method == Method::POST {
        return sign_in(&shared, &body);
    }
    let Some(rest) = path.strip_prefix("/api/v2/admin/") else {
        return error(StatusCode::NOT_FOUND, "A0000", "no such endpoint");
    };
    let expected = format!("Token token=\"{}\"", shared.token);
    let authorized =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let mut data = shared.lock();
    data.requests += 1;
    if data.rate_limit_next > 0 {
        data.rate_limit_next -= 1;
        let retry_after = data.retry_after_secs.to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after)],
            "Too Many Requests",
        )
            .into_response();
    }
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "ASS1001", "認証に失敗しました。");
    }
    let segments: Vec<&str> = rest.split('/').map(strip_json).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["customers"]) => {
            let malformed = data.malformed.clone();
            reply(
                StatusCode::OK,
                &list(&mut data.customers, &query, |c| {
                    (render::customer(c, malformed.contains(c.id.as_str())), Vec::new())
                }),
            )
        }
        (&Method::GET, ["orders"]) => {
            reply(StatusCode::OK, &list(&mut data.orders, &query, render::order))
        }
        (&Method::GET, ["subs_orders"]) => reply(
            StatusCode::OK,
            &list(&mut data.subscriptions, &query, |s| (render::subscription(s), Vec::new())),
        ),
        (&Method::GET, ["products"]) => {
            reply(StatusCode::OK, &list(&mut data.products, &query, render::product))
        }
        (&Method::GET, ["customers", id]) => match data.customers.get(id) {
            Some(c) => reply(
                StatusCode::OK,
                &json!({ "data": render::customer(c, data.malformed.contains(*id)) }),
            ),
            None => error(StatusCode::NOT_FOUND, "ACU2001", "customerが見つかりません。"),
        },
        (&Method::PUT, ["customers", id]) => {
            let Some(mut c) = data.customers.remove(id) else {
                return error(StatusCode::NOT_FOUND, "ACU2001", "customerが見つかりません。");
            };
            let attrs = &body["customer"];
            if let Some(line) = attrs.get("line_id") {
                c.line_user_id = line.as_str().and_then(|l| LineUserId::new(l).ok());
                c.line_linked_at = attrs
                    .get("line_id_linked_at")
                    .and_then(Value::as_str)
                    .and_then(parse_jst_datetime)
                    .filter(|_| c.line_user_id.is_some());
            }
            c.updated_at = second(Utc::now()).max(c.updated_at + TimeDelta::seconds(1));
            let doc = json!({ "data": render::customer(&c, false) });
            data.customers.upsert(c);
            reply(StatusCode::OK, &doc)
        }
        (&Method::POST, ["customers", id, "points"]) => {
            let points = body["point"]["point"].as_i64();
            let (Some(points), Some(customer_id)) = (points, CustomerId::new(*id).ok()) else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "ACU3001",
                    "pointパラメータが正しくありません。",
                );
            };
            let Some(mut c) = data.customers.remove(id) else {
                return error(StatusCode::NOT_FOUND, "ACU2001", "customerが見つかりません。");
            };
            c.points = Some(c.points.unwrap_or(0) + points);
            c.updated_at = second(Utc::now()).max(c.updated_at + TimeDelta::seconds(1));
            let total = c.points;
            data.customers.upsert(c);
            let reason = body["point"]["point_event_description"].as_str().unwrap_or("").to_owned();
            data.points.push((customer_id, points, reason.clone()));
            reply(
                StatusCode::CREATED,
                &json!({ "data": { "id": data.points.len().to_string(), "type": "point",
                "attributes": { "id": data.points.len(), "customer_id": id.parse::<i64>().ok(), "point": points,
                "point_total": total, "point_event_description": reason } } }),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "A0000", "no such endpoint"),
    }
}

fn sign_in(shared: &Shared, body: &Value) -> Response {
    let mut data = shared.lock();
    data.sign_ins += 1;
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
