//! Tests: segment (language, semantics, engine, SQL).

mod arb;
mod bucket;
mod cold;
mod engine;
mod lang;
mod limits;
mod members;
mod schema;
mod semantics;
mod snapshot;
mod sql;
