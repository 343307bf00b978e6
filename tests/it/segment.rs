//! Tests: segment.
