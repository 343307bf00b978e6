//! Tests: segment (language, semantics, engine, SQL).

mod arb;
mod bucket;
mod cold;
mod engine;
mod lang;
mod limits;
mod schema;
mod semantics;
mod snapshot;
mod sql;
