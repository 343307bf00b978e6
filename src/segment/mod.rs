//! The segment engine: a pure query engine over customer data (no I/O, no tokio, no reqwest).
