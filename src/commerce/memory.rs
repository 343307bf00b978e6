//! `InMemoryBackend`: a backend over data the host (or a test) loads itself.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures_core::Stream;

use super::backend::{
    Capabilities, CommerceBackend, CommerceResult, ListQuery, Page, PageStream,
    not_implemented_stream,
};
use super::error::CommerceError;
use super::model::{Cursor, Customer, Order, Product, Record, Subscription};
use crate::{CustomerId, LineUserId};

const NAME: &str = "memory";
const DEFAULT_PAGE: usize = 100;

/// One resource: records by ID plus their change-feed order.
#[derive(Debug)]
struct Table<T> {
    by_id: HashMap<String, T>,
    feed: BTreeMap<Cursor, ()>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { by_id: HashMap::new(), feed: BTreeMap::new() }
    }
}

impl<T: Record + Clone> Table<T> {
    fn upsert(&mut self, record: T) {
        if let Some(old) = self.by_id.get(record.record_id()) {
            self.feed.remove(&old.cursor());
        }
        self.feed.insert(record.cursor(), ());
        self.by_id.insert(record.record_id().to_owned(), record);
    }

    fn page(&self, after: Option<&Cursor>, query: &ListQuery, size: usize) -> Vec<T> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.feed
            .range((lower, Bound::Unbounded))
            .map(|(cursor, ())| cursor)
            .take_while(|cursor| query.until.is_none_or(|until| cursor.updated_at < until))
            .take(size)
            .filter_map(|cursor| self.by_id.get(&cursor.id).cloned())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Data {
    customers: Table<Customer>,
    orders: Table<Order>,
    subscriptions: Table<Subscription>,
    products: Table<Product>,
    points_granted: Vec<(CustomerId, i64, String)>,
}

/// A [`CommerceBackend`] over records held in memory: for tests, examples, and hosts that load
/// their shop data themselves (from JSON, CSV, another system).
///
/// Cheap to clone (clones share the data). Reads page by keyset (`(updated_at, id)` after the
/// last record), so records changed during a read are never skipped. Writes set `updated_at`
/// to the current time, so a linked customer shows up in the next incremental read.
///
/// ```
/// use enishi::commerce::{CommerceBackendExt, Customer, InMemoryBackend};
/// use enishi::CustomerId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), enishi::commerce::CommerceError> {
/// let shop = InMemoryBackend::new();
/// shop.upsert_customer(Customer::new(CustomerId::new("1").unwrap(), chrono::Utc::now()));
/// assert_eq!(shop.all_customers().await?.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryBackend {
    data: Arc<Mutex<Data>>,
    capabilities: Capabilities,
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryBackend {
    /// An empty backend with every capability.
    #[must_use]
    pub fn new() -> Self {
        Self { data: Arc::default(), capabilities: Capabilities::all() }
    }

    /// Restricts what the backend claims to support; the rest answer `NotImplemented`
    /// (useful to test how a host handles a less capable cart).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave a table half-updated (each upsert is
        // two map operations on owned values), so a poisoned lock is still consistent.
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Inserts or replaces a customer.
    pub fn upsert_customer(&self, customer: Customer) {
        self.lock().customers.upsert(customer);
    }

    /// Inserts or replaces an order.
    pub fn upsert_order(&self, order: Order) {
        self.lock().orders.upsert(order);
    }

    /// Inserts or replaces a subscription.
    pub fn upsert_subscription(&self, subscription: Subscription) {
        self.lock().subscriptions.upsert(subscription);
    }

    /// Inserts or replaces a product.
    pub fn upsert_product(&self, product: Product) {
        self.lock().products.upsert(product);
    }

    /// Marks a customer as changed now (as if edited in the shop). Returns `false` when there
    /// is no such customer.
    pub fn touch_customer(&self, id: &CustomerId) -> bool {
        let mut data = self.lock();
        let Some(mut customer) = data.customers.by_id.get(id.as_str()).cloned() else {
            return false;
        };
        customer.updated_at = later_than(customer.updated_at);
        data.customers.upsert(customer);
        true
    }

    /// The points granted so far: `(customer, points, reason)`.
    #[must_use]
    pub fn points_granted(&self) -> Vec<(CustomerId, i64, String)> {
        self.lock().points_granted.clone()
    }

    /// Loads customers from a JSON array (the [`Customer`] serde shape).
    ///
    /// # Errors
    /// When the JSON does not match.
    pub fn load_customers_json(&self, json: &str) -> Result<usize, serde_json::Error> {
        let customers: Vec<Customer> = serde_json::from_str(json)?;
        let n = customers.len();
        let mut data = self.lock();
        for customer in customers {
            data.customers.upsert(customer);
        }
        Ok(n)
    }

    fn stream<T: Record + Clone + Send + 'static>(
        &self,
        query: ListQuery,
        table: fn(&Data) -> &Table<T>,
    ) -> PageStream<'static, T> {
        Box::pin(MemoryPages { backend: self.clone(), table, query, done: false })
    }
}

/// Now, but strictly after `previous`, so every write moves the record forward in the feed.
fn later_than(previous: DateTime<Utc>) -> DateTime<Utc> {
    Utc::now().max(previous + TimeDelta::milliseconds(1))
}

struct MemoryPages<T> {
    backend: InMemoryBackend,
    table: fn(&Data) -> &Table<T>,
    query: ListQuery,
    done: bool,
}

impl<T: Record + Clone> Stream for MemoryPages<T> {
    type Item = CommerceResult<Page<T>>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let size = match self.query.page_size {
            0 => DEFAULT_PAGE,
            n => n as usize,
        };
        let records = {
            let data = self.backend.lock();
            (self.table)(&data).page(self.query.since.as_ref(), &self.query, size)
        };
        if records.len() < size {
            self.done = true;
        }
        if records.is_empty() {
            return Poll::Ready(None);
        }
        let cursor = records.last().map(Record::cursor);
        self.query.since.clone_from(&cursor);
        Poll::Ready(Some(Ok(Page::new(records, Vec::new(), cursor))))
    }
}

impl<T> Unpin for MemoryPages<T> {}

#[async_trait]
impl CommerceBackend for InMemoryBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn customers(&self, query: ListQuery) -> PageStream<'_, Customer> {
        self.stream(query, |d| &d.customers)
    }

    fn orders(&self, query: ListQuery) -> PageStream<'_, Order> {
        self.stream(query, |d| &d.orders)
    }

    fn subscriptions(&self, query: ListQuery) -> PageStream<'_, Subscription> {
        if !self.capabilities.subscriptions {
            return not_implemented_stream("subscriptions", NAME);
        }
        self.stream(query, |d| &d.subscriptions)
    }

    fn products(&self, query: ListQuery) -> PageStream<'_, Product> {
        if !self.capabilities.products {
            return not_implemented_stream("products", NAME);
        }
        self.stream(query, |d| &d.products)
    }

    async fn customer(&self, id: &CustomerId) -> CommerceResult<Customer> {
        self.lock().customers.by_id.get(id.as_str()).cloned().ok_or_else(|| {
            CommerceError::NotFound { backend: NAME, what: format!("customer {id}") }
        })
    }

    async fn set_line_user(
        &self,
        id: &CustomerId,
        line: Option<&LineUserId>,
    ) -> CommerceResult<()> {
        if !self.capabilities.line_link {
            return Err(CommerceError::NotImplemented {
                operation: "set_line_user",
                backend: NAME,
            });
        }
        let mut data = self.lock();
        let Some(mut customer) = data.customers.by_id.get(id.as_str()).cloned() else {
            return Err(CommerceError::NotFound { backend: NAME, what: format!("customer {id}") });
        };
        customer.updated_at = later_than(customer.updated_at);
        customer.line_linked_at = line.map(|_| customer.updated_at);
        customer.line_user_id = line.cloned();
        data.customers.upsert(customer);
        Ok(())
    }

    async fn skip_next_delivery(&self, subscription: &str) -> CommerceResult<()> {
        let mut data = self.lock();
        let Some(mut sub) = data.subscriptions.by_id.get(subscription).cloned() else {
            return Err(CommerceError::NotFound {
                backend: NAME,
                what: format!("subscription {subscription}"),
            });
        };
        sub.skip_next_delivery = Some(true);
        sub.updated_at = later_than(sub.updated_at);
        data.subscriptions.upsert(sub);
        Ok(())
    }

    async fn grant_points(&self, id: &CustomerId, points: i64, reason: &str) -> CommerceResult<()> {
        if !self.capabilities.points {
            return Err(CommerceError::NotImplemented { operation: "grant_points", backend: NAME });
        }
        let mut data = self.lock();
        let Some(mut customer) = data.customers.by_id.get(id.as_str()).cloned() else {
            return Err(CommerceError::NotFound { backend: NAME, what: format!("customer {id}") });
        };
        customer.points = Some(customer.points.unwrap_or(0) + points);
        customer.updated_at = later_than(customer.updated_at);
        data.customers.upsert(customer);
        data.points_granted.push((id.clone(), points, reason.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_customers_from_json_with_only_the_required_fields() {
        let shop = InMemoryBackend::new();
        let json = r#"[{"id":"1","updated_at":"2026-01-01T00:00:00Z","email":"a@example.com"},
                       {"id":"2","updated_at":"2026-01-02T00:00:00Z","labels":["VIP"]}]"#;
        assert_eq!(shop.load_customers_json(json).unwrap(), 2);
        assert!(shop.load_customers_json(r#"[{"id":""}]"#).is_err());
        let data = shop.lock();
        assert_eq!(data.customers.by_id["2"].labels, ["VIP"]);
    }
}
