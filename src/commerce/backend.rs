//! The backend trait: one object-safe async trait every cart adapter implements.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_core::Stream;

use super::error::CommerceError;
use super::model::{Cursor, Customer, Order, Product, Subscription};
use crate::{CustomerId, LineUserId};

/// `Result` with a [`CommerceError`].
pub type CommerceResult<T> = Result<T, CommerceError>;

/// A boxed, `Send` stream.
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// A lazily fetched sequence of pages. A fatal error (auth, transport) ends the stream;
/// a record that cannot be decoded is reported in [`Page::rejected`] and the read goes on.
pub type PageStream<'a, T> = BoxStream<'a, CommerceResult<Page<T>>>;

/// What a list read returns: records changed after `since`, up to `until`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct ListQuery {
    /// Only records strictly after this change-feed position (`None`: from the start).
    pub since: Option<Cursor>,
    /// Only records updated strictly before this instant (`None`: no bound). Bounding a walk
    /// by its start time means a record changed during the walk is read by the next walk,
    /// never twice by this one.
    pub until: Option<DateTime<Utc>>,
    /// Records per page wanted (the backend may cap it; ecforce: 100). 0 means the default.
    pub page_size: u32,
}

impl ListQuery {
    /// Everything, from the start.
    pub fn all() -> Self {
        Self::default()
    }

    /// Records after `cursor`.
    pub fn since(cursor: Cursor) -> Self {
        Self { since: Some(cursor), ..Self::default() }
    }

    /// Sets the upper bound.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size;
        self
    }

    /// Whether a record at `position` falls inside this query.
    #[must_use]
    pub fn contains(&self, position: &Cursor) -> bool {
        self.since.as_ref().is_none_or(|since| position > since)
            && self.until.is_none_or(|until| position.updated_at < until)
    }
}

/// One page of a list read.
#[derive(Debug)]
#[non_exhaustive]
pub struct Page<T> {
    /// The records decoded, in change-feed order.
    pub records: Vec<T>,
    /// Records that could not be decoded ([`CommerceError::Decode`] naming the field).
    pub rejected: Vec<CommerceError>,
    /// The position after this page (rejected records included): persist it, and a later
    /// read `since` it resumes exactly after this page. `None` when the page was empty.
    pub cursor: Option<Cursor>,
    /// Problems in records that were kept anyway (for example an order item the backend
    /// referred to but did not send): [`CommerceError::Decode`] naming the field.
    pub warnings: Vec<CommerceError>,
}

impl<T> Page<T> {
    /// A page.
    #[must_use]
    pub fn new(records: Vec<T>, rejected: Vec<CommerceError>, cursor: Option<Cursor>) -> Self {
        Self { records, rejected, cursor, warnings: Vec::new() }
    }

    /// The page with these warnings.
    #[must_use]
    pub fn with_warnings(mut self, warnings: Vec<CommerceError>) -> Self {
        self.warnings = warnings;
        self
    }
}

/// What a backend can do beyond reading customers and orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Lists subscription contracts.
    pub subscriptions: bool,
    /// Lists products.
    pub products: bool,
    /// Stores the LINE user ID on the customer record.
    pub line_link: bool,
    /// Grants points.
    pub points: bool,
}

impl Capabilities {
    /// Every capability.
    #[must_use]
    pub fn all() -> Self {
        Self { subscriptions: true, products: true, line_link: true, points: true }
    }

    /// Only reading customers and orders.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }
}

/// A stream that fails at once with [`CommerceError::NotImplemented`].
#[must_use]
pub fn not_implemented_stream<'a, T: Send + 'a>(
    operation: &'static str,
    backend: &'static str,
) -> PageStream<'a, T> {
    Box::pin(Once(Some(Err(CommerceError::NotImplemented { operation, backend }))))
}

struct Once<T>(Option<T>);

impl<T> Unpin for Once<T> {}

impl<T> Stream for Once<T> {
    type Item = T;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::task::Poll::Ready(self.0.take())
    }
}

/// Waits for the next item of a stream (no `futures` dependency needed).
pub async fn next_item<S: Stream + Unpin + ?Sized>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// A shop's commerce backend (ecforce, an in-memory dataset, Shopify, ...).
///
/// Object safe: use it as `Arc<dyn CommerceBackend>`. Only [`name`](Self::name),
/// [`customers`](Self::customers), [`orders`](Self::orders) and [`customer`](Self::customer)
/// are required; the others default to [`CommerceError::NotImplemented`]. Helpers live in
/// [`CommerceBackendExt`]. Every adapter should pass `commerce::conformance` (feature
/// `testkit`).
#[async_trait]
pub trait CommerceBackend: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and logs (`"ecforce"`).
    fn name(&self) -> &'static str;

    /// What the backend supports.
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    /// Customers in change-feed order.
    fn customers(&self, query: ListQuery) -> PageStream<'_, Customer>;

    /// Orders with their line items, in change-feed order.
    fn orders(&self, query: ListQuery) -> PageStream<'_, Order>;

    /// Subscription contracts in change-feed order.
    fn subscriptions(&self, query: ListQuery) -> PageStream<'_, Subscription> {
        let _ = query;
        not_implemented_stream("subscriptions", self.name())
    }

    /// Products with their variants, in change-feed order.
    fn products(&self, query: ListQuery) -> PageStream<'_, Product> {
        let _ = query;
        not_implemented_stream("products", self.name())
    }

    /// One customer.
    ///
    /// # Errors
    /// [`CommerceError::NotFound`] when there is no such customer; others as the backend fails.
    async fn customer(&self, id: &CustomerId) -> CommerceResult<Customer>;

    /// Stores (`Some`) or clears (`None`) the LINE user linked to a customer on the backend's
    /// customer record.
    ///
    /// # Errors
    /// [`CommerceError::NotImplemented`] when the backend cannot; [`CommerceError::NotFound`]
    /// when there is no such customer.
    async fn set_line_user(
        &self,
        id: &CustomerId,
        line: Option<&LineUserId>,
    ) -> CommerceResult<()> {
        let _ = (id, line);
        Err(CommerceError::NotImplemented { operation: "set_line_user", backend: self.name() })
    }

    /// Skips the next delivery of a subscription (定期): the one after is delivered as planned.
    ///
    /// # Errors
    /// [`CommerceError::NotImplemented`] when the backend cannot; [`CommerceError::NotFound`]
    /// when there is no such subscription; [`CommerceError::NotApplied`] when the backend
    /// answered but did not store it.
    async fn skip_next_delivery(&self, subscription: &str) -> CommerceResult<()> {
        let _ = subscription;
        Err(CommerceError::NotImplemented { operation: "skip_next_delivery", backend: self.name() })
    }

    /// Grants points to a customer (an ID-link incentive). `reason` is shown to the shop.
    ///
    /// # Errors
    /// [`CommerceError::NotImplemented`] when the backend cannot; [`CommerceError::NotFound`]
    /// when there is no such customer.
    async fn grant_points(&self, id: &CustomerId, points: i64, reason: &str) -> CommerceResult<()> {
        let _ = (id, points, reason);
        Err(CommerceError::NotImplemented { operation: "grant_points", backend: self.name() })
    }
}

/// Reads every page of a stream into one vector (records and rejected records).
///
/// # Errors
/// The first fatal error of the stream.
pub async fn collect_pages<T>(
    mut stream: PageStream<'_, T>,
) -> CommerceResult<(Vec<T>, Vec<CommerceError>)> {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    while let Some(page) = next_item(&mut stream).await {
        let page = page?;
        records.extend(page.records);
        rejected.extend(page.rejected);
    }
    Ok((records, rejected))
}

/// Helpers for every [`CommerceBackend`] (including `dyn CommerceBackend`).
#[async_trait]
pub trait CommerceBackendExt: CommerceBackend {
    /// Every customer (a convenience for small shops and tests; stream for large ones).
    ///
    /// # Errors
    /// The first fatal error; records that could not be decoded are skipped.
    async fn all_customers(&self) -> CommerceResult<Vec<Customer>> {
        Ok(collect_pages(self.customers(ListQuery::all())).await?.0)
    }

    /// Every order (see [`all_customers`](Self::all_customers)).
    ///
    /// # Errors
    /// The first fatal error; records that could not be decoded are skipped.
    async fn all_orders(&self) -> CommerceResult<Vec<Order>> {
        Ok(collect_pages(self.orders(ListQuery::all())).await?.0)
    }

    /// Customers changed after `cursor`.
    fn customers_since(&self, cursor: Cursor) -> PageStream<'_, Customer> {
        self.customers(ListQuery::since(cursor))
    }

    /// Orders changed after `cursor`.
    fn orders_since(&self, cursor: Cursor) -> PageStream<'_, Order> {
        self.orders(ListQuery::since(cursor))
    }

    /// Stores the LINE user on the customer record.
    ///
    /// # Errors
    /// As [`CommerceBackend::set_line_user`].
    async fn link_line(&self, id: &CustomerId, line: &LineUserId) -> CommerceResult<()> {
        self.set_line_user(id, Some(line)).await
    }

    /// Clears the LINE user on the customer record.
    ///
    /// # Errors
    /// As [`CommerceBackend::set_line_user`].
    async fn unlink_line(&self, id: &CustomerId) -> CommerceResult<()> {
        self.set_line_user(id, None).await
    }
}

impl<B: CommerceBackend + ?Sized> CommerceBackendExt for B {}
