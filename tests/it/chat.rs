//! The chatbot: its store (memory, SQLite, PostgreSQL) through the conformance suite and
//! through `Storage`; the bot itself through the app's webhook against the fakes.

#[cfg(feature = "app")]
mod bot;
mod store;
