//! Tests of campaign dispatch.
