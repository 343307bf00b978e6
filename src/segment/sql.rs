//! Compiling a segment to SQL (PostgreSQL, BigQuery) over the documented table layout.
//!
//! Compilation is pure: `now` and the time zone come from the [`Context`] and every calendar
//! boundary is computed here and written as a literal instant, so the database's clock and
//! session time zone never matter. Every leaf is wrapped in `COALESCE(..., FALSE)` so SQL's
//! three-valued logic cannot change the meaning of `not`.
//!
//! Tables (`docs/segments.md` has the full layout): `customers`, `customer_attributes`,
//! `orders`, `order_items`, `subscriptions`, `cart_items`, `favourites`, `products`,
//! `message_events`, `list_members`.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::Datelike;

use super::ast::{
    AddOp, CmpOp, Condition, DateField, DateTest, Expr, OrderFilter, OrderKind, SegmentDefinition,
    Value, Window,
};
use super::data::Context;
use super::error::SegmentError;
use super::eval::window_bounds;
use super::time::{DAY, day_start, day_to_date, is_leap, local_day, local_month_day, secs};

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL 11 or later.
    Postgres,
    /// Google BigQuery (GoogleSQL).
    BigQuery,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::BigQuery => "BigQuery",
        }
    }
}

/// Where to compile to: a dialect and an optional schema (PostgreSQL) or dataset (BigQuery)
/// that qualifies every table name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SqlTarget {
    dialect: Dialect,
    schema: Option<String>,
}

impl SqlTarget {
    /// PostgreSQL with unqualified table names.
    pub fn postgres() -> Self {
        Self { dialect: Dialect::Postgres, schema: None }
    }

    /// BigQuery with unqualified table names.
    pub fn bigquery() -> Self {
        Self { dialect: Dialect::BigQuery, schema: None }
    }

    /// Qualifies table names with a schema or dataset (quoted as an identifier).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// A compiled query: SQL text with placeholders, and the text values to bind to them.
///
/// Every text that comes from the definition (attribute names and values, product IDs, SKUs,
/// categories, list names, campaigns, cancel reasons, bucket salts) is a bind parameter and
/// never part of `sql`, so no quoting rule or server setting (such as PostgreSQL's
/// `standard_conforming_strings`) can turn it into SQL. Integers, instants and dates are
/// written by the compiler from typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlQuery {
    /// The SQL text. PostgreSQL placeholders are `$1::text`, `$2::text`, ...; BigQuery ones are
    /// the named parameters `@p1`, `@p2`, ... (all of type `STRING`).
    pub sql: String,
    /// The values in placeholder order: `params[0]` binds `$1` / `@p1`. Equal values share
    /// one placeholder.
    pub params: Vec<String>,
}

impl SqlQuery {
    /// The BigQuery parameter names with their values: `("p1", params[0])`, ...
    pub fn named_params(&self) -> impl Iterator<Item = (String, &str)> {
        self.params.iter().enumerate().map(|(i, v)| (format!("p{}", i + 1), v.as_str()))
    }
}

/// Most bind parameters one PostgreSQL statement can carry (the protocol counts them in 16 bits).
const PG_MAX_PARAMS: usize = 65_535;

/// Compiles `def` into a query returning the `customer_id` of every member at `ctx.now()`.
///
/// # Errors
/// [`SegmentError::UnknownSegment`] / [`SegmentError::Cycle`] for references `ctx` cannot
/// resolve, and [`SegmentError::NotExpressible`] for conditions the dialect cannot express
/// (including a PostgreSQL query that would need more than 65,535 distinct text values).
pub fn compile_sql(
    def: &SegmentDefinition,
    ctx: &Context,
    target: &SqlTarget,
) -> Result<SqlQuery, SegmentError> {
    let c = Compiler {
        ctx,
        t: target,
        now: secs(&ctx.now()),
        off: i64::from(ctx.tz().local_minus_utc()),
        params: RefCell::default(),
    };
    let pred = c.cond(def.condition(), 0)?;
    let sql = format!(
        "SELECT c.customer_id FROM {} c WHERE {pred} ORDER BY c.customer_id",
        c.table("customers")
    );
    let params = c.params.into_inner().values;
    if target.dialect == Dialect::Postgres && params.len() > PG_MAX_PARAMS {
        return Err(SegmentError::NotExpressible {
            dialect: target.dialect.name(),
            construct: format!("{} distinct text values", params.len()),
            reason: format!("a statement binds at most {PG_MAX_PARAMS} parameters"),
        });
    }
    Ok(SqlQuery { sql, params })
}

/// Bind parameters collected while compiling, each distinct value once.
#[derive(Default)]
struct Params {
    values: Vec<String>,
    index: HashMap<String, usize>,
}

pub(super) struct Compiler<'a> {
    ctx: &'a Context,
    t: &'a SqlTarget,
    pub(super) now: i64,
    off: i64,
    params: RefCell<Params>,
}

pub(super) fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

impl Compiler<'_> {
    pub(super) fn pg(&self) -> bool {
        self.t.dialect == Dialect::Postgres
    }

    pub(super) fn table(&self, name: &str) -> String {
        match (&self.t.schema, self.t.dialect) {
            (Some(s), Dialect::Postgres) => format!("\"{}\".{name}", s.replace('"', "\"\"")),
            (Some(s), Dialect::BigQuery) => {
                // A quoted identifier takes string escapes: escape `\` before the backtick.
                format!("`{}`.{name}", s.replace('\\', "\\\\").replace('`', "\\`"))
            }
            (None, _) => name.to_owned(),
        }
    }

    /// A bind parameter holding `v` (its placeholder).
    pub(super) fn s(&self, v: &str) -> String {
        let mut p = self.params.borrow_mut();
        let n = match p.index.get(v) {
            Some(&n) => n,
            None => {
                p.values.push(v.to_owned());
                let n = p.values.len();
                p.index.insert(v.to_owned(), n);
                n
            }
        };
        if self.pg() { format!("${n}::text") } else { format!("@p{n}") }
    }

    pub(super) fn list(&self, v: &[String]) -> String {
        v.iter().map(|x| self.s(x)).collect::<Vec<_>>().join(", ")
    }

    /// A literal instant.
    pub(super) fn ts(&self, t: i64) -> String {
        let text = chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S+00").to_string())
            .unwrap_or_else(|| "1970-01-01 00:00:00+00".into());
        if self.pg() { format!("TIMESTAMPTZ '{text}'") } else { format!("TIMESTAMP '{text}'") }
    }

    pub(super) fn date(&self, day: i64) -> String {
        format!("DATE '{}'", day_to_date(day).format("%Y-%m-%d"))
    }

    pub(super) fn trunc(&self, e: &str) -> String {
        if self.pg() {
            format!("date_trunc('second', {e})")
        } else {
            format!("TIMESTAMP_TRUNC({e}, SECOND)")
        }
    }

    /// Local month / day of an instant expression.
    pub(super) fn local_part(&self, e: &str, part: &str) -> String {
        if self.pg() {
            format!(
                "EXTRACT({part} FROM ({e} AT TIME ZONE 'UTC') + INTERVAL '{} seconds')",
                self.off
            )
        } else {
            let sign = if self.off < 0 { '-' } else { '+' };
            let a = self.off.abs();
            format!(
                "EXTRACT({part} FROM {e} AT TIME ZONE '{sign}{:02}:{:02}')",
                a / 3600,
                a % 3600 / 60
            )
        }
    }

    /// `floor(e) op b` for an instant expression and whole seconds `b`, as half-open ranges.
    pub(super) fn instant_cmp(&self, e: &str, op: CmpOp, b: i64) -> String {
        match op {
            CmpOp::Le => format!("{e} < {}", self.ts(b + 1)),
            CmpOp::Lt => format!("{e} < {}", self.ts(b)),
            CmpOp::Ge => format!("{e} >= {}", self.ts(b)),
            CmpOp::Gt => format!("{e} >= {}", self.ts(b + 1)),
            CmpOp::Eq => format!("({e} >= {} AND {e} < {})", self.ts(b), self.ts(b + 1)),
            CmpOp::Ne => format!("NOT ({e} >= {} AND {e} < {})", self.ts(b), self.ts(b + 1)),
        }
    }

    /// `local_day(e) op k` as instant ranges.
    pub(super) fn day_cmp(&self, e: &str, op: CmpOp, k: i64) -> String {
        let start = |d: i64| self.ts(day_start(d, tz_of(self.off)));
        match op {
            CmpOp::Le => format!("{e} < {}", start(k + 1)),
            CmpOp::Lt => format!("{e} < {}", start(k)),
            CmpOp::Ge => format!("{e} >= {}", start(k)),
            CmpOp::Gt => format!("{e} >= {}", start(k + 1)),
            CmpOp::Eq => format!("({e} >= {} AND {e} < {})", start(k), start(k + 1)),
            CmpOp::Ne => format!("NOT ({e} >= {} AND {e} < {})", start(k), start(k + 1)),
        }
    }

    pub(super) fn window(&self, col: &str, w: &Window) -> String {
        let (lo, hi) = window_bounds(w, self.now, tz_of(self.off));
        if lo == i64::MIN {
            format!("{col} < {}", self.ts(hi + 1))
        } else if lo > hi {
            "FALSE".into()
        } else {
            format!("{col} >= {} AND {col} < {}", self.ts(lo), self.ts(hi + 1))
        }
    }

    pub(super) fn cond(&self, c: &Condition, depth: usize) -> Result<String, SegmentError> {
        if depth > 64 {
            return Err(SegmentError::Cycle(vec!["segment references nested too deeply".into()]));
        }
        Ok(match c {
            Condition::And { children } if children.is_empty() => "TRUE".into(),
            Condition::Or { children } if children.is_empty() => "FALSE".into(),
            Condition::And { children } | Condition::Or { children } => {
                let j = if matches!(c, Condition::And { .. }) { " AND " } else { " OR " };
                let parts: Result<Vec<_>, _> =
                    children.iter().map(|x| self.cond(x, depth + 1)).collect();
                format!("({})", parts?.join(j))
            }
            Condition::Not { child } => format!("(NOT {})", self.cond(child, depth + 1)?),
            Condition::InSegment { name } => {
                let d = self
                    .ctx
                    .segment(name)
                    .ok_or_else(|| SegmentError::UnknownSegment(name.clone()))?;
                self.cond(d.condition(), depth + 1)?
            }
            leaf => format!("COALESCE(({}), FALSE)", self.leaf(leaf)?),
        })
    }

    pub(super) fn attr_rows(&self, name: &str) -> String {
        format!(
            "FROM {} a WHERE a.customer_id = c.customer_id AND a.name = {}",
            self.table("customer_attributes"),
            self.s(name)
        )
    }

    pub(super) fn typed_eq(&self, v: &Value, op: CmpOp) -> String {
        let (kind, col, lit) = match v {
            Value::Int(n) => ("int", "a.int_value".to_string(), n.to_string()),
            Value::Bool(b) => ("bool", "a.bool_value".to_string(), b.to_string().to_uppercase()),
            Value::Text(t) => (
                "text",
                if self.pg() { "a.text_value COLLATE \"C\"".into() } else { "a.text_value".into() },
                self.s(t),
            ),
            Value::Time { time } => ("time", self.trunc("a.time_value"), self.ts(secs(time))),
        };
        format!("a.kind = '{kind}' AND {col} {} {lit}", op.symbol().replace("!=", "<>"))
    }

    pub(super) fn leaf(&self, c: &Condition) -> Result<String, SegmentError> {
        let cust = self.table("customers");
        let _ = cust;
        Ok(match c {
            Condition::Attribute { .. } => self.sql_attribute(c)?,
            Condition::Line { .. } => self.sql_line(c)?,
            Condition::Date { field: DateField::Birthday, .. } => self.sql_birthday(c)?,
            Condition::Date { .. } => self.sql_date(c)?,
            Condition::Orders { .. } => self.sql_orders(c)?,
            Condition::Subscription { .. } => self.sql_subscription(c)?,
            Condition::CartAbandoned { .. } => self.sql_cart_abandoned(c)?,
            Condition::ItemChange { .. } => self.sql_item_change(c)?,
            Condition::Messages { .. } => self.sql_messages(c)?,
            Condition::InList { .. } => self.sql_in_list(c)?,
            Condition::Bucket { .. } => self.sql_bucket(c)?,
            Condition::Compare { .. } => self.sql_compare(c)?,
            Condition::And { .. }
            | Condition::Or { .. }
            | Condition::Not { .. }
            | Condition::InSegment { .. } => {
                return Err(SegmentError::NotExpressible {
                    dialect: self.t.dialect.name(),
                    construct: c.to_string(),
                    reason: "combinators are not leaves".into(),
                });
            }
        })
    }

    /// Orders of the customer matching `filter` in `window`, as rows `(placed_at, v)`.
    pub(super) fn matching_orders(&self, f: &OrderFilter, w: &Window) -> String {
        let orders = self.table("orders");
        let mut cond =
            vec!["o.customer_id = c.customer_id".to_string(), self.window("o.placed_at", w)];
        if let Some(k) = f.kind {
            cond.push(format!(
                "o.kind = '{}'",
                match k {
                    OrderKind::OneOff => "one_off",
                    _ => "subscription",
                }
            ));
        }
        if !f.has_items() {
            return format!(
                "SELECT o.placed_at, o.amount AS v FROM {orders} o WHERE {}",
                cond.join(" AND ")
            );
        }
        cond.push("i.order_id = o.order_id AND i.customer_id = o.customer_id".into());
        if !f.products.is_empty() {
            cond.push(format!("i.product_id IN ({})", self.list(&f.products)));
        }
        if !f.skus.is_empty() {
            cond.push(format!("i.sku IN ({})", self.list(&f.skus)));
        }
        if !f.categories.is_empty() {
            cond.push(format!("i.category IN ({})", self.list(&f.categories)));
        }
        format!(
            "SELECT o.order_id, MIN(o.placed_at) AS placed_at, SUM(i.quantity * i.unit_price) AS v \
             FROM {orders} o, {} i WHERE {} GROUP BY o.order_id",
            self.table("order_items"),
            cond.join(" AND ")
        )
    }

    pub(super) fn date_test(&self, e: &str, t: &DateTest) -> String {
        let tz = tz_of(self.off);
        match t {
            DateTest::Age { op, value } => {
                self.instant_cmp(e, flip(*op), self.now - value.as_secs())
            }
            DateTest::DaysAgo { op, days } => {
                self.day_cmp(e, flip(*op), local_day(self.now, tz) - i64::from(*days))
            }
            DateTest::Between { from, to } => {
                format!("{e} >= {} AND {e} < {}", self.ts(secs(from)), self.ts(secs(to)))
            }
            DateTest::MonthIs { month } => format!("{} = {month}", self.local_part(e, "MONTH")),
            DateTest::InCurrentMonth => {
                format!("{} = {}", self.local_part(e, "MONTH"), local_month_day(self.now, tz).0)
            }
            DateTest::AnniversaryToday => {
                let (m, d) = local_month_day(self.now, tz);
                let (me, de) = (self.local_part(e, "MONTH"), self.local_part(e, "DAY"));
                let mut s = format!("({me} = {m} AND {de} = {d})");
                if self.feb28_common() {
                    s = format!("({s} OR ({me} = 2 AND {de} = 29))");
                }
                s
            }
        }
    }

    pub(super) fn feb28_common(&self) -> bool {
        let today = day_to_date(local_day(self.now, tz_of(self.off)));
        today.month() == 2 && today.day() == 28 && !is_leap(today.year())
    }

    /// Birthday tests in date space: the birthday's instant is local midnight of the date.
    pub(super) fn birthday(&self, t: &DateTest) -> Result<String, SegmentError> {
        let b = "c.birth_date";
        let today = local_day(self.now, tz_of(self.off));
        // `day(b) * DAY - off  op  x`  ⇔  a condition on the day number.
        let day_cmp = |op: CmpOp, x: i64| -> String {
            let y = x + self.off;
            let (fl, ce) = (y.div_euclid(DAY), -((-y).div_euclid(DAY)));
            match op {
                CmpOp::Lt => format!("{b} <= {}", self.date(ce - 1)),
                CmpOp::Le => format!("{b} <= {}", self.date(fl)),
                CmpOp::Gt => format!("{b} >= {}", self.date(fl + 1)),
                CmpOp::Ge => format!("{b} >= {}", self.date(ce)),
                CmpOp::Eq if y % DAY == 0 => format!("{b} = {}", self.date(fl)),
                CmpOp::Eq => "FALSE".into(),
                CmpOp::Ne if y % DAY == 0 => format!("{b} <> {}", self.date(fl)),
                CmpOp::Ne => format!("{b} IS NOT NULL"),
            }
        };
        Ok(match t {
            DateTest::Age { op, value } => day_cmp(flip(*op), self.now - value.as_secs()),
            DateTest::DaysAgo { op, days } => {
                let k = today - i64::from(*days);
                format!("{b} {} {}", sym(flip(*op)), self.date(k))
            }
            DateTest::Between { from, to } => {
                format!("{} AND {}", day_cmp(CmpOp::Ge, secs(from)), day_cmp(CmpOp::Lt, secs(to)))
            }
            DateTest::MonthIs { month } => format!("EXTRACT(MONTH FROM {b}) = {month}"),
            DateTest::InCurrentMonth => {
                format!("EXTRACT(MONTH FROM {b}) = {}", day_to_date(today).month())
            }
            DateTest::AnniversaryToday => {
                let d = day_to_date(today);
                let mut s = format!(
                    "(EXTRACT(MONTH FROM {b}) = {} AND EXTRACT(DAY FROM {b}) = {})",
                    d.month(),
                    d.day()
                );
                if self.feb28_common() {
                    s = format!(
                        "({s} OR (EXTRACT(MONTH FROM {b}) = 2 AND EXTRACT(DAY FROM {b}) = 29))"
                    );
                }
                s
            }
        })
    }

    pub(super) fn expr(&self, e: &Expr) -> String {
        let num = if self.pg() { "NUMERIC" } else { "BIGNUMERIC" };
        match e {
            Expr::Number { value } => format!("CAST({value} AS {num})"),
            Expr::Attribute { name } => {
                format!(
                    "(SELECT CAST(a.int_value AS {num}) {} AND a.kind = 'int')",
                    self.attr_rows(name)
                )
            }
            Expr::OrderCount { filter, window } => {
                format!(
                    "(SELECT CAST(COUNT(*) AS {num}) FROM ({}) x)",
                    self.matching_orders(filter, window)
                )
            }
            Expr::OrderSum { filter, window } => format!(
                "(SELECT CAST(COALESCE(SUM(x.v), 0) AS {num}) FROM ({}) x)",
                self.matching_orders(filter, window)
            ),
            Expr::Sum { first, rest } => {
                // Flat, like the AST: one pair of parentheses around the whole chain.
                let mut out = format!("({}", self.expr(first));
                for t in rest {
                    out.push_str(if t.op == AddOp::Add { " + " } else { " - " });
                    out.push_str(&self.expr(&t.expr));
                }
                out.push(')');
                out
            }
            Expr::Product { factors } => format!(
                "({})",
                factors.iter().map(|e| self.expr(e)).collect::<Vec<_>>().join(" * ")
            ),
        }
    }
}

pub(super) fn sym(op: CmpOp) -> &'static str {
    if op == CmpOp::Ne { "<>" } else { op.symbol() }
}

pub(super) fn tz_of(off: i64) -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(i32::try_from(off).unwrap_or(0))
        .unwrap_or_else(super::time::tokyo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str, target: &SqlTarget, tz_hours: i32) -> String {
        compile_query(text, target, tz_hours).sql
    }

    fn compile_query(text: &str, target: &SqlTarget, tz_hours: i32) -> SqlQuery {
        let now = chrono::DateTime::parse_from_rfc3339("2025-02-28T03:00:00Z").unwrap().to_utc();
        let ctx =
            Context::new(now).with_tz(chrono::FixedOffset::east_opt(tz_hours * 3600).unwrap());
        compile_sql(&SegmentDefinition::parse(text).unwrap(), &ctx, target).unwrap()
    }

    #[test]
    fn postgres_local_parts_use_the_context_offset() {
        let sql = compile("registered month = 2", &SqlTarget::postgres(), 9);
        assert!(
            sql.contains("(c.registered_at AT TIME ZONE 'UTC') + INTERVAL '32400 seconds'"),
            "{sql}"
        );
        let sql = compile("registered month = 2", &SqlTarget::bigquery(), -7);
        assert!(sql.contains("AT TIME ZONE '-07:00'"), "{sql}");
    }

    #[test]
    fn feb_29_anniversaries_are_added_on_feb_28_of_common_years() {
        let sql = compile("birthday anniversary today", &SqlTarget::postgres(), 9);
        assert!(
            sql.contains(
                "EXTRACT(MONTH FROM c.birth_date) = 2 AND EXTRACT(DAY FROM c.birth_date) = 29"
            ),
            "{sql}"
        );
    }

    #[test]
    fn text_values_are_parameters_and_identifiers_are_quoted_per_dialect() {
        let text = r#"attr rank = "o'neil\\" and list "o'neil\\""#;
        let pg = compile_query(text, &SqlTarget::postgres().with_schema("s\"x"), 9);
        assert_eq!(pg.params, ["rank", r"o'neil\"], "{}", pg.sql);
        assert!(pg.sql.contains("a.name = $1::text"), "{}", pg.sql);
        assert!(pg.sql.contains("COLLATE \"C\" = $2::text"), "{}", pg.sql);
        assert!(pg.sql.contains("l.list_name = $2::text"), "{}", pg.sql);
        assert!(!pg.sql.contains("neil"), "{}", pg.sql);
        assert!(pg.sql.contains(r#""s""x".customers"#), "{}", pg.sql);
        let bq = compile_query(text, &SqlTarget::bigquery().with_schema(r"d\`x"), 9);
        assert!(bq.sql.contains("a.text_value = @p2"), "{}", bq.sql);
        assert!(!bq.sql.contains("neil"), "{}", bq.sql);
        assert!(bq.sql.contains(r"`d\\\`x`.customers"), "{}", bq.sql);
        let named: Vec<_> = bq.named_params().collect();
        assert_eq!(named, [("p1".to_string(), "rank"), ("p2".to_string(), r"o'neil\")]);
    }
}
