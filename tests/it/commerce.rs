//! Tests: commerce (the backend trait, in-memory backend, ecforce adapter, sync).

#[cfg(feature = "testkit")]
mod conformance;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod ecforce;
#[cfg(feature = "ecforce")]
mod fixtures;
#[cfg(all(feature = "testkit", feature = "ecforce"))]
mod sync;
