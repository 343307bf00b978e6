//! Tests: line_client.
