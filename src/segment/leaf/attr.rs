//! Attribute tests: `attr NAME = value`, `exists`, `in [...]`, `contains`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{AttrTest, CmpOp, Condition};
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, attr_test, show_attr};
use crate::segment::print::{name, quote, values_list};
use crate::segment::sql::Compiler;

impl Parser {
    /// The leaf starting with "attr".
    pub(in crate::segment) fn parse_attr(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let name = self.name("an attribute name")?;
        let test = self.attr_test()?;
        Ok(Condition::Attribute { name, test })
    }
}

/// Writes `attribute` as DSL text.
pub(crate) fn print_attribute(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Attribute { name: n, test } = c else { return Ok(()) };
    {
        let t = match test {
            AttrTest::Compare { op, value } => format!("{} {value}", op.symbol()),
            AttrTest::Exists => "exists".into(),
            AttrTest::Missing => "missing".into(),
            AttrTest::In { values } => format!("in [{}]", values_list(values)),
            AttrTest::NotIn { values } => format!("not in [{}]", values_list(values)),
            AttrTest::Contains { value } => format!("contains {}", quote(value)),
        };
        write!(f, "attr {} {t}", name(n))
    }
}

/// `attribute` for one customer.
pub(crate) fn eval_attribute<V: View>(
    c: &Condition,
    v: &V,
    _env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Attribute { name, test } = c else { return Ok(Leaf::mismatch()) };
    Ok({
        let val = v.attribute(name);
        Leaf {
            result: attr_test(val, test),
            observed: ex!(explain, "{}", val.map_or("missing".into(), show_attr)),
            comparison: None,
            horizon: None,
        }
    })
}

impl Compiler<'_> {
    /// `attribute` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_attribute(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Attribute { name, test } = c else { return Err(mismatch(c)) };
        Ok({
            let rows = self.attr_rows(name);
            match test {
                AttrTest::Exists => format!("EXISTS (SELECT 1 {rows})"),
                AttrTest::Missing => format!("NOT EXISTS (SELECT 1 {rows})"),
                AttrTest::Compare { op: CmpOp::Ne, value } => {
                    format!("NOT EXISTS (SELECT 1 {rows} AND {})", self.typed_eq(value, CmpOp::Eq))
                }
                AttrTest::Compare { op, value } => {
                    format!("EXISTS (SELECT 1 {rows} AND {})", self.typed_eq(value, *op))
                }
                AttrTest::In { values } | AttrTest::NotIn { values } => {
                    let any = values
                        .iter()
                        .map(|v| format!("({})", self.typed_eq(v, CmpOp::Eq)))
                        .collect::<Vec<_>>()
                        .join(" OR ");
                    let e = format!("EXISTS (SELECT 1 {rows} AND ({any}))");
                    if matches!(test, AttrTest::In { .. }) { e } else { format!("NOT {e}") }
                }
                AttrTest::Contains { value } => {
                    format!(
                        "EXISTS (SELECT 1 {rows} AND a.kind = 'list' AND a.text_value = {})",
                        self.s(value)
                    )
                }
            }
        })
    }
}
