//! Tests of campaign scenario.
