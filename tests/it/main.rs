//! enishi's integration tests: one binary, one module per area.

mod campaign;
mod commerce;
mod line_client;
mod link;
mod message;
mod segment;
mod testkit_line;
mod webhook;
