//! Tests: commerce (the backend trait, in-memory backend, ecforce adapter, sync).

mod conformance;
