//! Order aggregates: `orders {filter} window count|sum|avg op value`, `bought`, `never bought`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{CmpOp, Condition, Measure};
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, describe_measure, measure_test, order_agg};
use crate::segment::print::join;
use crate::segment::sql::{Compiler, sym};

impl Parser {
    /// The leaf starting with "orders".
    pub(in crate::segment) fn parse_orders(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let filter = self.opt_filter()?;
        let window = self.opt_window()?;
        let i = self.one_of(&["count", "sum", "avg"], "a measure")?;
        let measure = [Measure::Count, Measure::Sum, Measure::Avg][i];
        let op = self.op()?;
        let value = self.int()?;
        Ok(Condition::Orders { filter, window, measure, op, value })
    }

    /// The leaf starting with "bought".
    pub(in crate::segment) fn parse_bought(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let filter = self.opt_filter()?;
        let window = self.opt_window()?;
        Ok(Condition::Orders { filter, window, measure: Measure::Count, op: CmpOp::Ge, value: 1 })
    }

    /// The leaf starting with "never".
    pub(in crate::segment) fn parse_never(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        self.kw("bought")?;
        let filter = self.opt_filter()?;
        let window = self.opt_window()?;
        Ok(Condition::Orders { filter, window, measure: Measure::Count, op: CmpOp::Eq, value: 0 })
    }
}

/// Writes `orders` as DSL text.
pub(crate) fn print_orders(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Orders { filter, window, measure, op, value } = c else { return Ok(()) };
    {
        if *measure == Measure::Count && *op == CmpOp::Ge && *value == 1 {
            return join(f, &["bought".into(), filter.to_string(), window.to_string()]);
        }
        if *measure == Measure::Count && *op == CmpOp::Eq && *value == 0 {
            return join(f, &["never bought".into(), filter.to_string(), window.to_string()]);
        }
        let m = match measure {
            Measure::Count => "count",
            Measure::Sum => "sum",
            Measure::Avg => "avg",
        };
        join(
            f,
            &[
                "orders".into(),
                filter.to_string(),
                window.to_string(),
                format!("{m} {} {value}", op.symbol()),
            ],
        )
    }
}

/// `orders` for one customer.
pub(crate) fn eval_orders<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Orders { filter, window, measure, op, value } = c else {
        return Ok(Leaf::mismatch());
    };
    let now = env.now;
    let tz = env.tz;
    Ok({
        let a = order_agg(v, filter, window, now, tz);
        let result = measure_test(a.count, a.sum, *measure, *op, *value);
        Leaf {
            result,
            observed: ex!(explain, "{} matching orders totalling ¥{}", a.count, a.sum),
            comparison: ex!(explain, "{}", describe_measure(a.count, a.sum, *measure, *op, *value)),
            horizon: a.horizon,
        }
    })
}

impl Compiler<'_> {
    /// `orders` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_orders(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Orders { filter, window, measure, op, value } = c else {
            return Err(mismatch(c));
        };
        Ok({
            let pred = match measure {
                Measure::Count => format!("q.n {} {value}", sym(*op)),
                Measure::Sum => format!("q.s {} {value}", sym(*op)),
                Measure::Avg => format!("q.n > 0 AND q.s {} {value} * q.n", sym(*op)),
            };
            format!(
                "EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(x.v), 0) AS s FROM ({}) x) q WHERE {pred})",
                self.matching_orders(filter, window)
            )
        })
    }
}
