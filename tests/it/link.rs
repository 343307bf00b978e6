//! ID linking: store conformance (memory, SQLite, PostgreSQL), the account-link flow, LINE Login.

mod conformance;
#[cfg(feature = "axum")]
mod e2e;
mod flow;
mod import;
#[cfg(feature = "client")]
mod incentive;
mod login;
mod outcomes;
mod password;
#[cfg(feature = "client")]
mod rewards;
mod write_back;
