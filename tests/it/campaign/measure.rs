//! Tests of campaign measure.
