//! Random buckets: `bucket "salt" in 0..1000` (see [`bucket`](crate::segment::bucket)).
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::Condition;
use crate::segment::bucket::bucket;
use crate::segment::dsl::{Parser, Tok};
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View};
use crate::segment::print::quote;
use crate::segment::sql::Compiler;

impl Parser {
    /// The leaf starting with "bucket".
    pub(in crate::segment) fn parse_bucket(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let salt = self.string()?;
        self.kw("in")?;
        let from = self.u32()?;
        self.expect(&Tok::DotDot)?;
        let to = self.u32()?;
        Ok(Condition::Bucket { salt, from, to })
    }
}

/// Writes `bucket` as DSL text.
pub(crate) fn print_bucket(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Bucket { salt, from, to } = c else { return Ok(()) };
    write!(f, "bucket {} in {from}..{to}", quote(salt))
}

/// `bucket` for one customer.
pub(crate) fn eval_bucket<V: View>(
    c: &Condition,
    v: &V,
    _env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Bucket { salt, from, to } = c else { return Ok(Leaf::mismatch()) };
    Ok({
        let b = bucket(salt, v.id().as_str());
        Leaf {
            result: (*from..*to).contains(&b),
            observed: ex!(explain, "bucket {b}"),
            comparison: ex!(explain, "{from} <= {b} < {to}"),
            horizon: None,
        }
    })
}

impl Compiler<'_> {
    /// `bucket` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_bucket(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Bucket { salt, from, to } = c else { return Err(mismatch(c)) };
        Ok({
            let b = if self.pg() {
                format!(
                    "(('x' || substr(encode(sha256(convert_to({} || ':' || c.customer_id, 'UTF8')), 'hex'), 1, 14))::bit(56)::bigint % 10000)",
                    self.s(salt)
                )
            } else {
                format!(
                    "MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256(CONCAT({}, ':', c.customer_id))), 1, 14)) AS INT64), 10000)",
                    self.s(salt)
                )
            };
            format!("{b} >= {from} AND {b} < {to}")
        })
    }
}
