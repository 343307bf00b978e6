//! Incremental sync: pull changes from a [`CommerceBackend`] into a local dataset.
//!
//! Each page is handed to a [`SyncSink`] together with the cursor after it, and the sink
//! stores both atomically. A restarted sync reads the stored cursor and resumes strictly after
//! it, so after a crash nothing is lost and nothing is applied twice; upserts by ID make even
//! an overlapping re-read harmless. Every walk is bounded by its start time, so a record
//! changed during the walk is picked up by the next run.
//!
//! [`Dataset`] is an in-memory sink holding the customer facts and orders the segment engine
//! reads; `SqliteDataset` (feature `sqlite`) and `PostgresDataset` (feature `postgres`) keep
//! the same in a database; hosts with their own store implement [`SyncSink`] (and can check it
//! with `commerce::conformance::sink`, feature `testkit`).

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use super::postgres_dataset::PostgresDataset;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use super::sqlite_dataset::SqliteDataset;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::backend::{CommerceBackend, ListQuery, PageStream, next_item};
use super::error::{BoxError, CommerceError};
use super::model::{Cursor, Customer, Order, Product, Subscription};
use crate::CustomerId;

/// The resources a sync pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncResource {
    /// Customers.
    Customers,
    /// Orders with line items.
    Orders,
    /// Subscription contracts.
    Subscriptions,
    /// Products with variants.
    Products,
}

impl SyncResource {
    /// Every resource, in sync order.
    pub const ALL: [Self; 4] = [Self::Customers, Self::Orders, Self::Subscriptions, Self::Products];
}

/// One page of changes to apply, with the cursor to store with it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SyncBatch {
    /// Customers.
    Customers(Vec<Customer>),
    /// Orders.
    Orders(Vec<Order>),
    /// Subscriptions.
    Subscriptions(Vec<Subscription>),
    /// Products.
    Products(Vec<Product>),
}

impl SyncBatch {
    /// Which resource the batch holds.
    #[must_use]
    pub fn resource(&self) -> SyncResource {
        match self {
            Self::Customers(_) => SyncResource::Customers,
            Self::Orders(_) => SyncResource::Orders,
            Self::Subscriptions(_) => SyncResource::Subscriptions,
            Self::Products(_) => SyncResource::Products,
        }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Customers(r) => r.len(),
            Self::Orders(r) => r.len(),
            Self::Subscriptions(r) => r.len(),
            Self::Products(r) => r.len(),
        }
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where synced data goes.
#[async_trait]
pub trait SyncSink: Send + Sync {
    /// The stored cursor of a resource (`None`: never synced).
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError>;

    /// Upserts the batch's records by ID **and** stores `cursor` for its resource, atomically:
    /// after a crash either both are visible or neither is.
    ///
    /// # Errors
    /// When the store cannot be written (the sync stops; the cursor is not advanced).
    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError>;
}

/// A [`SyncSink`] that can read back what it holds: where the storage handle keeps the synced
/// shop (`SqliteDataset`, `PostgresDataset`, or an in-memory [`Dataset`]). The conformance
/// suite `commerce::conformance::sink` checks an implementation.
#[async_trait]
pub trait StoredDataset: SyncSink + fmt::Debug {
    /// Everything held, with the cursors that produced it.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn load(&self) -> Result<Dataset, BoxError>;
}

#[async_trait]
impl StoredDataset for Dataset {
    async fn load(&self) -> Result<Self, BoxError> {
        Ok(Self { state: Mutex::new(self.lock().clone()) })
    }
}

/// Progress of a running sync, reported after every page.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SyncProgress {
    /// The resource being synced.
    pub resource: SyncResource,
    /// Pages applied so far in this run (all resources).
    pub pages: u64,
    /// Records applied so far in this run (all resources).
    pub records: u64,
    /// Records rejected (could not be decoded) so far.
    pub rejected: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl SyncProgress {
    /// Records per second so far.
    #[must_use]
    pub fn records_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.records as f64 / secs } else { 0.0 }
    }
}

/// What a finished sync did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SyncReport {
    /// Records applied per resource.
    pub records: HashMap<SyncResource, u64>,
    /// Pages applied.
    pub pages: u64,
    /// Records that could not be decoded (decode errors naming the field).
    pub rejected: Vec<CommerceError>,
    /// Problems in records that were applied anyway (decode errors naming the field).
    pub warnings: Vec<CommerceError>,
    /// Resources the backend does not support (skipped).
    pub skipped: Vec<SyncResource>,
    /// Wall time.
    pub elapsed: Duration,
}

impl SyncReport {
    /// Records applied in total.
    #[must_use]
    pub fn total_records(&self) -> u64 {
        self.records.values().sum()
    }
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The backend failed; the sync resumes from the last stored cursor next time.
    #[error("reading {resource:?} failed")]
    Backend {
        /// The resource being read.
        resource: SyncResource,
        /// The backend's error.
        #[source]
        source: CommerceError,
    },
    /// The sink failed.
    #[error("storing {resource:?} failed")]
    Sink {
        /// The resource being stored.
        resource: SyncResource,
        /// The sink's error.
        #[source]
        source: BoxError,
    },
}

type ProgressFn<'a> = Box<dyn FnMut(&SyncProgress) + Send + 'a>;

/// Runs an incremental sync from a backend into a sink.
///
/// ```
/// use enishi::commerce::InMemoryBackend;
/// use enishi::commerce::sync::{Dataset, Syncer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shop = InMemoryBackend::new();
/// let dataset = Dataset::new();
/// let report = Syncer::new(&shop).run(&dataset).await?;
/// assert_eq!(report.total_records(), 0);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Syncer<'a> {
    backend: &'a dyn CommerceBackend,
    resources: Vec<SyncResource>,
    page_size: u32,
    progress: Option<ProgressFn<'a>>,
}

impl fmt::Debug for Syncer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("backend", &self.backend.name())
            .field("resources", &self.resources)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl<'a> Syncer<'a> {
    /// A sync of every resource with the backend's default page size.
    pub fn new(backend: &'a dyn CommerceBackend) -> Self {
        Self { backend, resources: SyncResource::ALL.to_vec(), page_size: 0, progress: None }
    }

    /// Syncs only these resources.
    pub fn resources(mut self, resources: &[SyncResource]) -> Self {
        self.resources = resources.to_vec();
        self
    }

    /// Records per page (0: the backend's default).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size;
        self
    }

    /// Called after every page (records/s, pages) — for long first syncs.
    pub fn on_progress(mut self, report: impl FnMut(&SyncProgress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(report));
        self
    }

    /// Runs the sync: for each resource, reads every change after the stored cursor up to
    /// now, applying page by page.
    ///
    /// # Errors
    /// [`SyncError`] when the backend or the sink fails; what was applied stays applied, and
    /// the next run resumes after it.
    pub async fn run(&mut self, sink: &dyn SyncSink) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let mut report = SyncReport::default();
        let until = Utc::now();
        for resource in self.resources.clone() {
            let since = sink
                .cursor(resource)
                .await
                .map_err(|source| SyncError::Sink { resource, source })?;
            let query = ListQuery { since, until: Some(until), page_size: self.page_size };
            let outcome = match resource {
                SyncResource::Customers => {
                    self.drain(
                        resource,
                        self.backend.customers(query),
                        SyncBatch::Customers,
                        sink,
                        &mut report,
                        started,
                    )
                    .await
                }
                SyncResource::Orders => {
                    self.drain(
                        resource,
                        self.backend.orders(query),
                        SyncBatch::Orders,
                        sink,
                        &mut report,
                        started,
                    )
                    .await
                }
                SyncResource::Subscriptions => {
                    self.drain(
                        resource,
                        self.backend.subscriptions(query),
                        SyncBatch::Subscriptions,
                        sink,
                        &mut report,
                        started,
                    )
                    .await
                }
                SyncResource::Products => {
                    self.drain(
                        resource,
                        self.backend.products(query),
                        SyncBatch::Products,
                        sink,
                        &mut report,
                        started,
                    )
                    .await
                }
            };
            match outcome {
                Err(SyncError::Backend {
                    source: CommerceError::NotImplemented { .. }, ..
                }) => {
                    report.skipped.push(resource);
                }
                other => other?,
            }
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn drain<T>(
        &mut self,
        resource: SyncResource,
        mut stream: PageStream<'_, T>,
        wrap: fn(Vec<T>) -> SyncBatch,
        sink: &dyn SyncSink,
        report: &mut SyncReport,
        started: Instant,
    ) -> Result<(), SyncError> {
        while let Some(page) = next_item(&mut stream).await {
            let page = page.map_err(|source| SyncError::Backend { resource, source })?;
            let n = page.records.len() as u64;
            report.rejected.extend(page.rejected);
            report.warnings.extend(page.warnings);
            let Some(cursor) = page.cursor else { continue };
            sink.apply(wrap(page.records), cursor)
                .await
                .map_err(|source| SyncError::Sink { resource, source })?;
            report.pages += 1;
            *report.records.entry(resource).or_default() += n;
            tracing::debug!(
                target: "enishi::sync",
                resource = ?resource,
                records = n,
                page = report.pages,
                "sync page stored"
            );
            if let Some(progress) = &mut self.progress {
                progress(&SyncProgress {
                    resource,
                    pages: report.pages,
                    records: report.total_records(),
                    rejected: report.rejected.len() as u64,
                    elapsed: started.elapsed(),
                });
            }
        }
        Ok(())
    }
}

/// Subscriptions by the ID of the held customer they belong to: by the customer ID they carry,
/// else by the customer number (ecforce's `sub_order` names only the number).
fn subscriptions_by_customer(state: &DatasetState) -> HashMap<&str, Vec<&Subscription>> {
    let by_number: HashMap<&str, &str> = state
        .customers
        .values()
        .filter_map(|c| c.number.as_deref().map(|n| (n, c.id.as_str())))
        .collect();
    let mut out: HashMap<&str, Vec<&Subscription>> = HashMap::new();
    for sub in state.subscriptions.values() {
        let by_id = sub.customer.as_deref().filter(|id| state.customers.contains_key(*id));
        let by_number = || sub.customer_number.as_deref().and_then(|n| by_number.get(n).copied());
        if let Some(id) = by_id.or_else(by_number) {
            out.entry(id).or_default().push(sub);
        }
    }
    out
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct DatasetState {
    customers: HashMap<String, Customer>,
    orders: HashMap<String, Order>,
    subscriptions: HashMap<String, Subscription>,
    products: HashMap<String, Product>,
    cursors: HashMap<SyncResource, Cursor>,
}

/// An in-memory [`SyncSink`]: the local shop dataset (customers, orders, subscriptions,
/// products) with the cursors that produced it. Serializable, so a host can persist it as
/// one snapshot (data and cursors together, hence consistent after a crash).
#[derive(Debug, Default)]
pub struct Dataset {
    state: Mutex<DatasetState>,
}

impl Dataset {
    /// An empty dataset.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, DatasetState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of customers held.
    #[must_use]
    pub fn customer_count(&self) -> usize {
        self.lock().customers.len()
    }

    /// Number of orders held.
    #[must_use]
    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }

    /// One customer.
    #[must_use]
    pub fn customer(&self, id: &CustomerId) -> Option<Customer> {
        self.lock().customers.get(id.as_str()).cloned()
    }

    /// A customer's orders (the input for purchase-history segments).
    #[must_use]
    pub fn orders_of(&self, id: &CustomerId) -> Vec<Order> {
        let mut orders: Vec<Order> = self
            .lock()
            .orders
            .values()
            .filter(|o| o.customer_id.as_ref() == Some(id))
            .cloned()
            .collect();
        orders.sort_by(|a, b| a.id.cmp(&b.id));
        orders
    }

    /// A customer's subscriptions (joined by ID, else by the customer's shop number).
    #[must_use]
    pub fn subscriptions_of(&self, id: &CustomerId) -> Vec<Subscription> {
        let state = self.lock();
        let mut subs: Vec<Subscription> = subscriptions_by_customer(&state)
            .get(id.as_str())
            .into_iter()
            .flatten()
            .map(|s| (*s).clone())
            .collect();
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        subs
    }

    /// Every targetable customer's facts for the segment engine, sorted by customer ID (see
    /// [`customer_facts`](super::customer_facts) for the mapping). Deleted, withdrawn (退会) and
    /// blacklisted customers ([`Customer::exclusion`]) are left out, so no segment, campaign or
    /// scenario built on these facts ever reaches them. Subscriptions join their customer by
    /// ID, else by the customer's shop number ([`Customer::number`]).
    #[must_use]
    pub fn segment_facts(&self) -> Vec<crate::segment::CustomerFacts> {
        self.facts_where(|_| true)
    }

    /// The IDs of every held, targetable customer, sorted: who [`segment_facts`](Self::segment_facts)
    /// covers, without building their facts.
    #[must_use]
    pub fn targetable_ids(&self) -> Vec<CustomerId> {
        let mut ids: Vec<CustomerId> = self
            .lock()
            .customers
            .values()
            .filter(|c| c.is_targetable())
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The facts of those of `customers` that are held and targetable (see
    /// [`segment_facts`](Self::segment_facts)), sorted by customer ID: what an incremental sync
    /// re-evaluates.
    #[must_use]
    pub fn facts_of(&self, customers: &[CustomerId]) -> Vec<crate::segment::CustomerFacts> {
        let wanted: std::collections::HashSet<&CustomerId> = customers.iter().collect();
        self.facts_where(|id| wanted.contains(id))
    }

    fn facts_where(
        &self,
        wanted: impl Fn(&CustomerId) -> bool,
    ) -> Vec<crate::segment::CustomerFacts> {
        let state = self.lock();
        let mut orders: HashMap<&CustomerId, Vec<&Order>> = HashMap::new();
        for o in state.orders.values() {
            if let Some(id) = o.customer_id.as_ref().filter(|id| wanted(id)) {
                orders.entry(id).or_default().push(o);
            }
        }
        let subscriptions = subscriptions_by_customer(&state);
        let mut facts: Vec<_> = state
            .customers
            .values()
            .filter(|c| c.is_targetable() && wanted(&c.id))
            .map(|c| {
                super::customer_facts(
                    c,
                    orders.get(&c.id).into_iter().flatten().copied(),
                    subscriptions.get(c.id.as_str()).into_iter().flatten().copied(),
                )
            })
            .collect();
        facts.sort_by(|a, b| a.id.cmp(&b.id));
        facts
    }

    /// How the held customers split: `(targetable, excluded)` (see [`Customer::exclusion`]).
    #[must_use]
    pub fn targetable_and_excluded(&self) -> (usize, usize) {
        let state = self.lock();
        let targetable = state.customers.values().filter(|c| c.is_targetable()).count();
        (targetable, state.customers.len() - targetable)
    }

    /// Subscriptions held, and how many of them are attached to a held customer (by ID, else
    /// by customer number).
    #[must_use]
    pub fn subscriptions_joined(&self) -> (usize, usize) {
        let state = self.lock();
        let joined = subscriptions_by_customer(&state).values().map(Vec::len).sum();
        (state.subscriptions.len(), joined)
    }

    /// Orders held, and how many of them count as purchases ([`Order::is_purchase`]).
    #[must_use]
    pub fn purchases(&self) -> (usize, usize) {
        let state = self.lock();
        (state.orders.len(), state.orders.values().filter(|o| o.is_purchase()).count())
    }

    /// Calls `f` for every customer (iteration order unspecified).
    pub fn for_each_customer(&self, mut f: impl FnMut(&Customer)) {
        self.lock().customers.values().for_each(&mut f);
    }

    /// Calls `f` for every order (iteration order unspecified).
    pub fn for_each_order(&self, mut f: impl FnMut(&Order)) {
        self.lock().orders.values().for_each(&mut f);
    }

    /// The stored cursor of a resource.
    #[must_use]
    pub fn stored_cursor(&self, resource: SyncResource) -> Option<Cursor> {
        self.lock().cursors.get(&resource).cloned()
    }

    /// The dataset as JSON (data and cursors in one snapshot).
    ///
    /// # Errors
    /// When serialization fails.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&*self.lock())
    }

    /// A dataset from [`to_json`](Self::to_json) output.
    ///
    /// # Errors
    /// When the JSON does not match.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Ok(Self { state: Mutex::new(serde_json::from_str(json)?) })
    }
}

#[async_trait]
impl SyncSink for Dataset {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        Ok(self.stored_cursor(resource))
    }

    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        // One lock for the records and the cursor: readers never see one without the other.
        let mut state = self.lock();
        let resource = batch.resource();
        match batch {
            SyncBatch::Customers(records) => {
                state.customers.extend(records.into_iter().map(|r| (r.id.as_str().to_owned(), r)));
            }
            SyncBatch::Orders(records) => {
                state.orders.extend(records.into_iter().map(|r| (r.id.clone(), r)))
            }
            SyncBatch::Subscriptions(records) => {
                state.subscriptions.extend(records.into_iter().map(|r| (r.id.clone(), r)));
            }
            SyncBatch::Products(records) => {
                state.products.extend(records.into_iter().map(|r| (r.id.clone(), r)))
            }
        }
        state.cursors.insert(resource, cursor);
        Ok(())
    }
}
