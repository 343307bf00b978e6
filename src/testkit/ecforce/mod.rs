//! A fake ecforce admin API server: JSON:API pages shaped after the public evidence about
//! ecforce's API v2, generated from the common model, with paging, `q[...]` filters,
//! `include` / `lighter`, auth failures, faults on demand and a seeded demo shop.

mod demo;
mod labels;
mod render;
mod server;

pub use demo::{EcforceDemo, EcforceDemoSpec};
pub use server::{
    DEFAULT_ECFORCE_TOKEN, EcforceFault, FakeEcforce, FakeEcforceBuilder, FakeEcforceRequest,
    FakeLogin,
};
