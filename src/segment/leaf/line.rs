//! LINE state: `line linked`, `line following`, `line blocked`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{Condition, LineState};
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, line_test};
use crate::segment::sql::Compiler;

impl Parser {
    /// The leaf starting with "line".
    pub(in crate::segment) fn parse_line(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let i = self.one_of(&["linked", "following", "blocked"], "a LINE state")?;
        let state = [LineState::Linked, LineState::Following, LineState::Blocked][i];
        Ok(Condition::Line { state })
    }
}

/// Writes `line` as DSL text.
pub(crate) fn print_line(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Line { state } = c else { return Ok(()) };
    f.write_str(match state {
        LineState::Linked => "line linked",
        LineState::Following => "line following",
        LineState::Blocked => "line blocked",
    })
}

/// `line` for one customer.
pub(crate) fn eval_line<V: View>(
    c: &Condition,
    v: &V,
    _env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Line { state } = c else { return Ok(Leaf::mismatch()) };
    Ok({
        let l = v.line();
        Leaf {
            result: line_test(l, *state),
            observed: ex!(explain, "linked={}, friendship={:?}", l.linked, l.friendship),
            comparison: None,
            horizon: None,
        }
    })
}

impl Compiler<'_> {
    /// `line` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_line(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Line { state } = c else { return Err(mismatch(c)) };
        Ok(match state {
            LineState::Linked => "c.line_linked".into(),
            LineState::Following => "c.line_linked AND c.line_friendship = 'following'".into(),
            LineState::Blocked => "c.line_linked AND c.line_friendship = 'blocked'".into(),
        })
    }
}
