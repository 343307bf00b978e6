//! Tests: testkit_line.
