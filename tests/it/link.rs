//! ID linking: store conformance (memory, SQLite, PostgreSQL), the account-link flow, LINE Login.

mod conformance;
mod flow;
mod login;
