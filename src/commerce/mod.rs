//! Commerce backends: the shop data (customers, orders, subscriptions, products) enishi segments
//! and messages on, and the customer authentication the link flow uses.

mod auth;

pub use auth::{AuthError, CustomerAuthenticator, Password};
