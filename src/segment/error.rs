//! Errors of the segment engine.

use std::fmt;

use super::schema::SchemaError;

/// Why a segment definition, an evaluation or a compilation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The definition is well-formed but breaks a rule (a month of 13, an empty bucket range,
    /// an unsupported format version, ...).
    #[error("invalid segment: {0}")]
    Invalid(String),
    /// The definition nests deeper than [`MAX_DEPTH`](super::MAX_DEPTH) levels.
    #[error("segment nested too deeply: more than {limit} levels of and/or/not and expressions")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The definition does not fit the data it is checked against (unknown attributes,
    /// wrong types, unknown product IDs ...): every problem found, in order.
    #[error("segment does not fit the data: {}", join(.0))]
    Schema(Vec<SchemaError>),
    /// The text DSL did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The JSON form did not parse (unknown field, wrong type, ...).
    #[error("invalid segment JSON: {0}")]
    Json(String),
    /// A `segment "name"` reference names no segment known to the evaluator.
    #[error("unknown segment {0:?}: register it before referring to it")]
    UnknownSegment(String),
    /// A `list "name"` condition names a list that was not supplied.
    #[error("unknown list {0:?}: supply it before evaluating")]
    UnknownList(String),
    /// Segment references form a cycle (the names, in order).
    #[error("segment references form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A customer is not known to the engine.
    #[error("unknown customer {0:?}")]
    UnknownCustomer(String),
    /// The condition cannot be expressed in the requested SQL dialect.
    #[error("cannot compile to {dialect} SQL: {construct}: {reason}")]
    NotExpressible {
        /// The SQL dialect.
        dialect: &'static str,
        /// The construct that failed (its DSL text).
        construct: String,
        /// Why it cannot be expressed.
        reason: String,
    },
    /// An evaluator cannot answer a condition from the data it was given (it would need
    /// facts its input does not carry); use another evaluator for it.
    #[error("{evaluator} cannot evaluate {construct}: {reason}")]
    Unsupported {
        /// The evaluator, e.g. `evaluate_columns`.
        evaluator: &'static str,
        /// The condition (its DSL text).
        construct: String,
        /// Why, and what to use instead.
        reason: String,
    },
}

fn join(problems: &[SchemaError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl SegmentError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}

/// A DSL syntax error with its 1-based position and what the parser expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What the parser expected, e.g. `a comparison operator (=, !=, <, <=, >, >=)`.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )
    }
}
