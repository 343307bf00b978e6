//! Commerce backends: the shop data (customers, orders, subscriptions, products) enishi segments
//! and messages on, and the customer authentication the link flow uses.
//!
//! - [`CommerceBackend`]: one object-safe trait every cart implements (ecforce built in behind
//!   the `ecforce` feature; [`InMemoryBackend`] for tests and self-loaded data), with helpers in
//!   [`CommerceBackendExt`] and one semantic error, [`CommerceError`].
//! - [`CustomerAuthenticator`]: email + password → customer ID, for the ID-link flow.
//! - [`CartBook`]: carts and favourites, which no cart API exposes, fed by the host.
//! - [`sync`](mod@sync): incremental pull into a local dataset, resumable after a crash.
//!
//! See `docs/commerce.md` for implementing the trait for another cart.

mod auth;
mod backend;
mod cart;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod dataset_rows;
#[cfg(feature = "ecforce")]
mod ecforce;
mod error;
mod facts;
mod memory;
pub(crate) mod model;
#[cfg(feature = "postgres")]
mod postgres_dataset;
#[cfg(feature = "sqlite")]
mod sqlite_dataset;
pub mod sync;
#[cfg(feature = "ecforce")]
pub(crate) mod time;

pub use auth::{AuthError, CustomerAuthenticator, Password};
pub use backend::{
    BoxStream, Capabilities, CommerceBackend, CommerceBackendExt, CommerceResult, ListQuery, Page,
    PageStream, collect_pages, next_item, not_implemented_stream,
};
pub use cart::{CartBook, CartEvent, CartEventKind, CartLine, SavedList};
#[cfg(feature = "ecforce")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecforce")))]
pub use ecforce::*;
pub use error::{BoxError, CommerceError};
pub use facts::customer_facts;
pub use memory::InMemoryBackend;
pub use model::{
    Coded, Currency, Cursor, Customer, Exclusion, LineItem, Money, Order, OrderState, Product,
    Record, Subscription, SubscriptionState, Variant,
};
