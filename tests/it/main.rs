//! enishi's integration tests: one binary, one module per area.

mod line_client;
mod message;
mod segment;
mod testkit_line;
mod webhook;
