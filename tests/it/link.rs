//! Tests: link.
