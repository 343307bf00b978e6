//! A fake ecforce admin API server: JSON:API pages shaped like ecforce's, generated from the
//! common model, with paging, `q[...]` filters, auth failures, 429s and malformed records.

mod render;
mod server;

pub use server::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeEcforceBuilder, FakeLogin};
