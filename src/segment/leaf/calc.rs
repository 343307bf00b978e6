//! Integer arithmetic: `calc attr points + sum(orders last 30d) >= 5000`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::Condition;
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, expr};
use crate::segment::sql::{Compiler, sym};

impl Parser {
    /// The leaf starting with "calc".
    pub(in crate::segment) fn parse_calc(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let left = self.expr()?;
        let op = self.op()?;
        let right = self.expr()?;
        Ok(Condition::Compare { left, op, right })
    }
}

/// Writes `compare` as DSL text.
pub(crate) fn print_compare(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Compare { left, op, right } = c else { return Ok(()) };
    write!(f, "calc {left} {} {right}", op.symbol())
}

/// `compare` for one customer.
pub(crate) fn eval_compare<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Compare { left, op, right } = c else { return Ok(Leaf::mismatch()) };
    Ok({
        let mut horizon = None;
        let l = expr(left, v, env, &mut horizon);
        let r = expr(right, v, env, &mut horizon);
        let result = matches!((l, r), (Some(a), Some(b)) if op.apply(a, b));
        let show = |x: Option<i128>| x.map_or("missing".into(), |x| x.to_string());
        Leaf {
            result,
            observed: ex!(explain, "left {}, right {}", show(l), show(r)),
            comparison: ex!(explain, "{} {} {}", show(l), op.symbol(), show(r)),
            horizon,
        }
    })
}

impl Compiler<'_> {
    /// `compare` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_compare(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Compare { left, op, right } = c else { return Err(mismatch(c)) };
        Ok(format!("{} {} {}", self.expr(left), sym(*op), self.expr(right)))
    }
}
