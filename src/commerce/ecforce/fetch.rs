//! Reading one record by ID (`GET admin/<resource>/:id`): what a webhook hint re-fetches.

use super::client::{Call, Resource};
use super::wire::parse_page_with;
use std::fmt;

use async_trait::async_trait;
use http::Method;

use super::client::EcforceClient;
use super::wire::{BACKEND, EcforcePage};
use crate::CustomerId;
use crate::commerce::backend::{CommerceBackend, CommerceResult};
use crate::commerce::error::CommerceError;
use crate::commerce::model::{Order, Product, Subscription};
use crate::commerce::sync::{SyncBatch, SyncResource};

/// Reads one record of a resource by its ID, fresh from the backend.
///
/// `EcforceWebhook` (feature `axum`) uses it to turn an (unsigned, shop-templated)
/// webhook into trusted data: only the record's ID is taken from the webhook, everything else
/// is read back through the API. [`EcforceClient`] implements it; implement it for another
/// backend (or a test double) to use the same receiver.
#[async_trait]
pub trait RecordFetcher: Send + Sync + fmt::Debug + 'static {
    /// The record `id` of `resource`, as a one-record batch ready for a
    /// [`SyncSink`](crate::commerce::sync::SyncSink).
    ///
    /// # Errors
    /// [`CommerceError::NotFound`] when there is no such record (deleted, or a wrong ID);
    /// [`CommerceError::NotImplemented`] for a resource the backend cannot read; others as the
    /// backend fails.
    async fn fetch(&self, resource: SyncResource, id: &str) -> CommerceResult<SyncBatch>;
}

fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// The one record of a show body (`data` is an object), or why there is none.
fn single<T>(page: CommerceResult<EcforcePage<T>>, what: &str) -> CommerceResult<T> {
    let mut page = page?;
    if let Some(e) = page.rejected.pop() {
        return Err(e);
    }
    page.records
        .pop()
        .ok_or_else(|| CommerceError::NotFound { backend: BACKEND, what: what.to_owned() })
}

impl EcforceClient {
    /// `GET` one record with the same includes as the list reads, and `lighter=0` to pin the
    /// full shape.
    async fn show(&self, path: &str, resource: Resource, what: &str) -> CommerceResult<String> {
        let query = [("include", resource.include().to_owned()), ("lighter", "0".to_owned())];
        match self.send(Method::GET, path, &query, None, Call::idempotent(self.retry())).await {
            Ok((_, _, body)) => Ok(body),
            Err(CommerceError::NotFound { backend, .. }) => {
                Err(CommerceError::NotFound { backend, what: what.to_owned() })
            }
            Err(e) => Err(e),
        }
    }

    /// One order with its line items (`GET admin/orders/:id`).
    ///
    /// # Errors
    /// [`CommerceError::NotFound`] when there is no such order; [`CommerceError::Decode`] when
    /// the record cannot be decoded; others as the request fails.
    pub async fn order(&self, id: &str) -> CommerceResult<Order> {
        let what = format!("order {id}");
        let path = format!("api/v2/admin/orders/{}.json", segment(id));
        let body = self.show(&path, Resource::Orders, &what).await?;
        single(parse_page_with(&body, self.state_mapping()), &what)
    }

    /// One subscription contract with its items (`GET admin/subs_orders/:id`).
    ///
    /// # Errors
    /// As [`order`](Self::order).
    pub async fn subscription(&self, id: &str) -> CommerceResult<Subscription> {
        let what = format!("subscription {id}");
        let path = format!("api/v2/admin/subs_orders/{}.json", segment(id));
        let body = self.show(&path, Resource::Subscriptions, &what).await?;
        single(parse_page_with(&body, self.state_mapping()), &what)
    }

    /// One product with its variants (`GET admin/products/:id`).
    ///
    /// # Errors
    /// As [`order`](Self::order).
    pub async fn product(&self, id: &str) -> CommerceResult<Product> {
        let what = format!("product {id}");
        let path = format!("api/v2/admin/products/{}.json", segment(id));
        let body = self.show(&path, Resource::Products, &what).await?;
        single(parse_page_with(&body, self.state_mapping()), &what)
    }
}

#[async_trait]
impl RecordFetcher for EcforceClient {
    async fn fetch(&self, resource: SyncResource, id: &str) -> CommerceResult<SyncBatch> {
        Ok(match resource {
            SyncResource::Customers => {
                let id = CustomerId::new(id).map_err(|_| CommerceError::NotFound {
                    backend: BACKEND,
                    what: format!("customer {id:?}"),
                })?;
                SyncBatch::Customers(vec![self.customer(&id).await?])
            }
            SyncResource::Orders => SyncBatch::Orders(vec![self.order(id).await?]),
            SyncResource::Subscriptions => {
                SyncBatch::Subscriptions(vec![self.subscription(id).await?])
            }
            SyncResource::Products => SyncBatch::Products(vec![self.product(id).await?]),
        })
    }
}
