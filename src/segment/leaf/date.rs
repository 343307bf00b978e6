//! Date tests on one instant of the customer: registration, birthday, LINE link, first and last order, date attributes.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{Condition, DateField, Window};
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, date_field, date_test, describe_date_test, min_opt};
use crate::segment::sql::Compiler;
use crate::segment::time::fmt_ts;

impl Parser {
    /// The leaf starting with "registered".
    pub(in crate::segment) fn parse_date(&mut self) -> Result<Condition, ParseError> {
        let field = self.date_field()?;
        let test = self.date_test()?;
        Ok(Condition::Date { field, test })
    }
}

/// Writes `date` as DSL text.
pub(crate) fn print_date(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Date { field, test } = c else { return Ok(()) };
    write!(f, "{field} {test}")
}

/// `date` for one customer.
pub(crate) fn eval_date<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Date { field, test } = c else { return Ok(Leaf::mismatch()) };
    let now = env.now;
    let tz = env.tz;
    Ok({
        let (t, field_h) = date_field(field, v, env);
        let (result, h) = date_test(t, test, now, tz);
        let shown = match (field, v.birth_date()) {
            (DateField::Birthday, Some(d)) => d.to_string(),
            _ => t.map_or("missing".into(), fmt_ts),
        };
        Leaf {
            result,
            observed: ex!(explain, "{shown}"),
            comparison: ex!(explain, "{}", describe_date_test(t, test, now, tz)),
            horizon: min_opt(field_h, h),
        }
    })
}

impl Compiler<'_> {
    /// `date` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_birthday(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Date { field: DateField::Birthday, test } = c else {
            return Err(mismatch(c));
        };
        self.birthday(test)
    }

    /// `date` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_date(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Date { field, test } = c else { return Err(mismatch(c)) };
        Ok({
            let e = match field {
                DateField::Registered => "c.registered_at".to_string(),
                DateField::LinkedAt => "c.line_linked_at".to_string(),
                DateField::Attribute { name } => {
                    format!("(SELECT a.time_value {} AND a.kind = 'time')", self.attr_rows(name))
                }
                DateField::FirstOrder { filter } | DateField::LastOrder { filter } => {
                    let f =
                        if matches!(field, DateField::FirstOrder { .. }) { "MIN" } else { "MAX" };
                    format!(
                        "(SELECT {f}(x.placed_at) FROM ({}) x)",
                        self.matching_orders(filter, &Window::AllTime)
                    )
                }
                DateField::Birthday => String::new(),
            };
            self.date_test(&e, test)
        })
    }
}
