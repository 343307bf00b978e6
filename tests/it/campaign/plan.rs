//! Tests of campaign plan.
