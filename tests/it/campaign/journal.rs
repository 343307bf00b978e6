//! Tests of the delivery journals.
