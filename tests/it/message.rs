//! Tests: message.
