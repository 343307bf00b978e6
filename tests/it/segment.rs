//! Tests: segment (language, semantics, engine, SQL).

mod arb;
mod lang;
mod semantics;
