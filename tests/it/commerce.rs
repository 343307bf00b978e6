//! Tests: commerce (the backend trait, in-memory backend, ecforce adapter, sync).

#[cfg(feature = "testkit")]
mod conformance;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod ecforce;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod ecforce_labels;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod ecforce_truth;
#[cfg(all(feature = "testkit", feature = "ecforce", feature = "axum"))]
mod ecforce_webhook;
#[cfg(feature = "testkit")]
mod sink;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod sync;
