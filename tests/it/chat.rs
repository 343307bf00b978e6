//! The chatbot: its store (memory, SQLite, PostgreSQL) through the conformance suite and
//! through `Storage`.

mod store;
