//! The rich-menu reconciler against the fake LINE server, and its stores.

mod reconcile;
mod store;
