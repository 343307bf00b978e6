//! Tests: segment (language, semantics, engine, SQL).

mod arb;
mod engine;
mod lang;
mod semantics;
mod sql;
