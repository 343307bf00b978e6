//! Printing conditions as DSL text. `parse(print(c)) == c` for every valid condition.

use std::fmt::{self, Display, Formatter, Write as _};

use chrono::{DateTime, Utc};

use super::ast::{Condition, DateField, DateTest, Expr, OrderFilter, OrderKind, Value, Window};
use super::leaf;

/// Words that must be quoted when used as names.
const RESERVED: &[&str] =
    &["and", "or", "not", "all", "any", "true", "false", "in", "exists", "missing", "contains"];

pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn name(s: &str) -> String {
    let mut chars = s.chars();
    let ok_start = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok_rest = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok_start && ok_rest && !RESERVED.contains(&s) { s.to_owned() } else { quote(s) }
}

pub(super) fn time(t: &DateTime<Utc>) -> String {
    format!("@{}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

pub(super) fn str_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

pub(super) fn str_set(v: &[String]) -> String {
    if v.len() == 1 { format!("= {}", quote(&v[0])) } else { format!("in {}", str_list(v)) }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(&quote(s)),
            Self::Time { time: t } => f.write_str(&time(t)),
        }
    }
}

impl Display for OrderFilter {
    /// `{product = "1", kind = subscription}`, or nothing when empty.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        let mut terms = Vec::new();
        if !self.products.is_empty() {
            terms.push(format!("product {}", str_set(&self.products)));
        }
        if !self.skus.is_empty() {
            terms.push(format!("sku {}", str_set(&self.skus)));
        }
        if !self.categories.is_empty() {
            terms.push(format!("category {}", str_set(&self.categories)));
        }
        if let Some(k) = self.kind {
            terms.push(format!(
                "kind = {}",
                match k {
                    OrderKind::OneOff => "one_off",
                    OrderKind::Subscription => "subscription",
                }
            ));
        }
        write!(f, "{{{}}}", terms.join(", "))
    }
}

impl Display for Window {
    /// `last 30d`, `calendar 7d`, `between @a and @b`, or nothing for all time.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllTime => Ok(()),
            Self::Last { span } => write!(f, "last {span}"),
            Self::CalendarDays { days } => write!(f, "calendar {days}d"),
            Self::Between { from, to } => write!(f, "between {} and {}", time(from), time(to)),
        }
    }
}

impl Display for DateTest {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Age { op, value } => write!(f, "age {} {value}", op.symbol()),
            Self::DaysAgo { op, days } => write!(f, "days_ago {} {days}", op.symbol()),
            Self::Between { from, to } => write!(f, "between {} and {}", time(from), time(to)),
            Self::MonthIs { month } => write!(f, "month = {month}"),
            Self::InCurrentMonth => f.write_str("month = current"),
            Self::AnniversaryToday => f.write_str("anniversary today"),
        }
    }
}

impl Display for DateField {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registered => f.write_str("registered"),
            Self::Birthday => f.write_str("birthday"),
            Self::LinkedAt => f.write_str("linked_at"),
            Self::FirstOrder { filter } => join(f, &["first_order".into(), filter.to_string()]),
            Self::LastOrder { filter } => join(f, &["last_order".into(), filter.to_string()]),
            Self::Attribute { name: n } => write!(f, "date_attr {}", name(n)),
        }
    }
}

/// Writes the non-empty parts separated by single spaces.
pub(super) fn join(f: &mut Formatter<'_>, parts: &[String]) -> fmt::Result {
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
    f.write_str(&parts.join(" "))
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // Written straight to the formatter, one chain at a time: a flat chain of a million
        // terms prints without building nested strings.
        fn operand(f: &mut Formatter<'_>, e: &Expr, paren: bool) -> fmt::Result {
            if paren { write!(f, "({e})") } else { write!(f, "{e}") }
        }
        match self {
            Self::Number { value } => write!(f, "{value}"),
            Self::Attribute { name: n } => write!(f, "attr {}", name(n)),
            Self::OrderCount { filter, window } => {
                f.write_str("count(")?;
                join(f, &["orders".into(), filter.to_string(), window.to_string()])?;
                f.write_str(")")
            }
            Self::OrderSum { filter, window } => {
                f.write_str("sum(")?;
                join(f, &["orders".into(), filter.to_string(), window.to_string()])?;
                f.write_str(")")
            }
            Self::Sum { first, rest } => {
                // A nested sum needs parentheses to stay its own node; a product binds tighter.
                operand(f, first, matches!(**first, Self::Sum { .. }))?;
                for t in rest {
                    write!(f, " {} ", t.op.symbol())?;
                    operand(f, &t.expr, matches!(t.expr, Self::Sum { .. }))?;
                }
                Ok(())
            }
            Self::Product { factors } => {
                for (i, e) in factors.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" * ")?;
                    }
                    operand(f, e, matches!(e, Self::Sum { .. } | Self::Product { .. }))?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::And { children } | Self::Or { children } if children.len() < 2 => {
                let head = if matches!(self, Self::And { .. }) { "all" } else { "any" };
                write!(f, "{head}(")?;
                if let Some(c) = children.first() {
                    write!(f, "{c}")?;
                }
                f.write_str(")")
            }
            Self::And { children } => {
                let parts: Vec<String> = children
                    .iter()
                    .map(|c| match c {
                        Self::And { children: g } | Self::Or { children: g } if g.len() >= 2 => {
                            format!("({c})")
                        }
                        _ => c.to_string(),
                    })
                    .collect();
                f.write_str(&parts.join(" and "))
            }
            Self::Or { children } => {
                let parts: Vec<String> = children
                    .iter()
                    .map(|c| match c {
                        Self::Or { children: g } if g.len() >= 2 => format!("({c})"),
                        _ => c.to_string(),
                    })
                    .collect();
                f.write_str(&parts.join(" or "))
            }
            Self::Not { child } => match &**child {
                Self::And { children: g } | Self::Or { children: g } if g.len() >= 2 => {
                    write!(f, "not ({child})")
                }
                _ => write!(f, "not {child}"),
            },
            Self::Attribute { .. } => leaf::attr::print_attribute(self, f),
            Self::Line { .. } => leaf::line::print_line(self, f),
            Self::Date { .. } => leaf::date::print_date(self, f),
            Self::Orders { .. } => leaf::orders::print_orders(self, f),
            Self::Subscription { .. } => leaf::subscription::print_subscription(self, f),
            Self::CartAbandoned { .. } => leaf::cart::print_cart_abandoned(self, f),
            Self::ItemChange { .. } => leaf::cart::print_item_change(self, f),
            Self::Messages { .. } => leaf::messages::print_messages(self, f),
            Self::InSegment { .. } => leaf::list::print_in_segment(self, f),
            Self::InList { .. } => leaf::list::print_in_list(self, f),
            Self::Bucket { .. } => leaf::bucket::print_bucket(self, f),
            Self::Compare { .. } => leaf::calc::print_compare(self, f),
        }
    }
}

pub(super) fn values_list(v: &[Value]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
