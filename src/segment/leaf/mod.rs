//! Leaf condition families, one file each: a family's DSL parsing, printing, evaluation and
//! SQL live together, so a new condition is one new file plus one line in each dispatcher
//! (`dsl::Parser::leaf`, `Display for Condition`, `eval::eval_leaf`, `sql::Compiler::leaf`).
//!
//! Family functions take the whole [`Condition`] and are only called by the dispatchers with
//! their own variant; the `let ... else` fallbacks exist so a dispatch slip is an answer of
//! "no" or an error, never a panic.

use super::ast::Condition;
use super::error::SegmentError;

pub(super) mod attr;
pub(super) mod bucket;
pub(super) mod calc;
pub(super) mod cart;
pub(super) mod date;
pub(super) mod line;
pub(super) mod list;
pub(super) mod messages;
pub(super) mod orders;
pub(super) mod subscription;

/// A family's SQL compiler handed another family's condition (a dispatch bug).
fn mismatch(c: &Condition) -> SegmentError {
    SegmentError::invalid(format!("internal: `{c}` reached the wrong SQL leaf compiler"))
}
