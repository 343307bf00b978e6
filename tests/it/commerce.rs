//! Tests: commerce.
