//! Tests: webhook.
