//! Membership of other segments (`segment "name"`) and uploaded lists (`list "name"`).
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::Condition;
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View};
use crate::segment::print::quote;
use crate::segment::sql::Compiler;

impl Parser {
    /// The leaf starting with "segment".
    pub(in crate::segment) fn parse_segment(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        Ok(Condition::InSegment { name: self.string()? })
    }

    /// The leaf starting with "list".
    pub(in crate::segment) fn parse_list(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        Ok(Condition::InList { name: self.string()? })
    }
}

/// Writes `in_segment` as DSL text.
pub(crate) fn print_in_segment(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::InSegment { name: n } = c else { return Ok(()) };
    write!(f, "segment {}", quote(n))
}

/// Writes `in_list` as DSL text.
pub(crate) fn print_in_list(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::InList { name: n } = c else { return Ok(()) };
    write!(f, "list {}", quote(n))
}

/// `in_list` for one customer.
pub(crate) fn eval_in_list<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::InList { name } = c else { return Ok(Leaf::mismatch()) };
    Ok({
        let list =
            env.ctx.lists.get(name).ok_or_else(|| SegmentError::UnknownList(name.clone()))?;
        let result = list.contains(v.id());
        Leaf {
            result,
            observed: ex!(explain, "{} members", list.len()),
            comparison: None,
            horizon: None,
        }
    })
}

impl Compiler<'_> {
    /// `in_list` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_in_list(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::InList { name } = c else { return Err(mismatch(c)) };
        Ok(format!(
            "EXISTS (SELECT 1 FROM {} l WHERE l.list_name = {} AND l.customer_id = c.customer_id)",
            self.table("list_members"),
            self.s(name)
        ))
    }
}
