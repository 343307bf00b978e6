//! The reference evaluator: one customer, one condition, an explanation and the next instant
//! the answer may change.
//!
//! Leaf semantics live here once, written against the [`View`] trait; the reference evaluator
//! implements it over [`CustomerFacts`], the columnar engine over its own storage.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use super::ast::{
    AddOp, AttrTest, CmpOp, Condition, DateField, DateTest, Expr, LineState, Measure, MessageKind,
    OrderFilter, SegmentDefinition, Value, Window,
};
use super::data::{
    AttrValue, Context, CustomerFacts, Friendship, LineStatus, MessageEvent, SavedItem,
    SubscriptionFact,
};
use super::error::SegmentError;
use super::leaf;
use super::time::{
    anniversary_is, date_to_day, day_start, day_to_date, fmt_ts, local_day, local_month_day,
    next_month_start, secs,
};
use crate::CustomerId;

/// How a customer's facts are read by the leaf semantics.
pub(crate) trait View {
    fn id(&self) -> &CustomerId;
    fn attribute(&self, name: &str) -> Option<&AttrValue>;
    fn birth_date(&self) -> Option<NaiveDate>;
    fn registered_at(&self) -> Option<i64>;
    fn line(&self) -> LineStatus;
    fn subscriptions(&self) -> &[SubscriptionFact];
    fn cart(&self) -> &[SavedItem];
    fn favourites(&self) -> &[SavedItem];
    fn messages(&self) -> &[MessageEvent];
    /// Calls `f(placed_at, value)` for every order matching `filter`, whatever its time.
    /// `value` is the order amount, or the matching items' total when the filter has items.
    fn orders(&self, filter: &OrderFilter, f: &mut dyn FnMut(i64, i64));
}

impl View for CustomerFacts {
    fn id(&self) -> &CustomerId {
        &self.id
    }
    fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.attributes.get(name)
    }
    fn birth_date(&self) -> Option<NaiveDate> {
        self.birth_date
    }
    fn registered_at(&self) -> Option<i64> {
        self.registered_at.as_ref().map(secs)
    }
    fn line(&self) -> LineStatus {
        self.line
    }
    fn subscriptions(&self) -> &[SubscriptionFact] {
        &self.subscriptions
    }
    fn cart(&self) -> &[SavedItem] {
        &self.cart
    }
    fn favourites(&self) -> &[SavedItem] {
        &self.favourites
    }
    fn messages(&self) -> &[MessageEvent] {
        &self.messages
    }
    fn orders(&self, filter: &OrderFilter, f: &mut dyn FnMut(i64, i64)) {
        for o in &self.orders {
            if filter.kind.is_some_and(|k| k != o.kind) {
                continue;
            }
            if !filter.has_items() {
                f(secs(&o.placed_at), o.amount);
                continue;
            }
            let mut hit = false;
            let mut total = 0i64;
            for it in &o.items {
                if filter.matches_item(&it.product, it.sku.as_deref(), it.category.as_deref()) {
                    hit = true;
                    total =
                        total.saturating_add(it.unit_price.saturating_mul(i64::from(it.quantity)));
                }
            }
            if hit {
                f(secs(&o.placed_at), total);
            }
        }
    }
}

/// Why a customer is (or is not) in a segment: one node per condition node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Explain {
    /// The node's value.
    pub result: bool,
    /// `and`, `or`, `not`, or the leaf's DSL text.
    pub node: String,
    /// Leaves: the value looked at (e.g. `3 matching orders`, `missing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Leaves: the comparison made (e.g. `3 >= 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    /// Child nodes (for a `segment` reference: the referenced segment's root).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Self>,
}

impl Explain {
    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let mark = if self.result { "✓" } else { "✗" };
        write!(f, "{:indent$}{mark} {}", "", self.node, indent = depth * 2)?;
        if let Some(o) = &self.observed {
            write!(f, "  [saw {o}")?;
            if let Some(c) = &self.comparison {
                write!(f, "; {c}")?;
            }
            f.write_str("]")?;
        }
        writeln!(f)?;
        self.children.iter().try_for_each(|c| c.write(f, depth + 1))
    }
}

impl fmt::Display for Explain {
    /// An indented tree, one node per line, `✓` / `✗` for true / false.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// The result of evaluating one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Evaluation {
    /// Whether the customer is in the segment.
    pub result: bool,
    /// Why.
    pub explain: Explain,
    /// The earliest later instant at which the answer may change if the data stays the same
    /// (a safe lower bound: the answer may also stay the same then); `None` if never.
    pub recheck_at: Option<DateTime<Utc>>,
}

/// When a customer's membership next flips as time passes (with the data unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum NextChange {
    /// Membership never changes by the passage of time alone.
    Never,
    /// Membership flips exactly at this instant.
    At(DateTime<Utc>),
    /// No flip found up to this instant after the search limit; check again then.
    NotBefore(DateTime<Utc>),
}

/// Evaluates `def` for one customer at `ctx.now()`, with an explanation tree.
///
/// # Errors
/// [`SegmentError::UnknownSegment`] / [`SegmentError::UnknownList`] for references the
/// context cannot resolve.
pub fn evaluate(
    def: &SegmentDefinition,
    customer: &CustomerFacts,
    ctx: &Context,
) -> Result<Evaluation, SegmentError> {
    let env = Env::new(ctx, secs(&ctx.now()));
    let n = eval(def.condition(), customer, &env, true, 0)?;
    Ok(Evaluation {
        result: n.result,
        explain: n.explain.unwrap_or_else(|| leaf_explain(true, String::new(), None, None)),
        recheck_at: n.horizon.and_then(|t| DateTime::from_timestamp(t, 0)),
    })
}

/// Whether the customer is in the segment at `ctx.now()` (no explanation; short-circuits).
///
/// # Errors
/// As [`evaluate`].
pub fn matches(
    def: &SegmentDefinition,
    customer: &CustomerFacts,
    ctx: &Context,
) -> Result<bool, SegmentError> {
    let env = Env::new(ctx, secs(&ctx.now()));
    Ok(eval(def.condition(), customer, &env, false, 0)?.result)
}

/// How many candidate instants [`next_change`] examines before giving up.
pub const NEXT_CHANGE_SEARCH_LIMIT: usize = 4_096;

/// The next instant after `ctx.now()` at which the customer's membership flips if no new data
/// arrives, so a host can schedule a wake-up instead of sweeping every customer nightly.
///
/// # Errors
/// As [`evaluate`].
pub fn next_change(
    def: &SegmentDefinition,
    customer: &CustomerFacts,
    ctx: &Context,
) -> Result<NextChange, SegmentError> {
    next_change_view(def.condition(), customer, ctx, secs(&ctx.now()))
}

pub(crate) fn next_change_view<V: View>(
    cond: &Condition,
    view: &V,
    ctx: &Context,
    now: i64,
) -> Result<NextChange, SegmentError> {
    let first = eval(cond, view, &Env::new(ctx, now), false, 0)?;
    let mut t = now;
    let mut horizon = first.horizon;
    for _ in 0..NEXT_CHANGE_SEARCH_LIMIT {
        let Some(h) = horizon else { return Ok(NextChange::Never) };
        t = h.max(t + 1);
        let n = eval(cond, view, &Env::new(ctx, t), false, 0)?;
        if n.result != first.result {
            return Ok(DateTime::from_timestamp(t, 0).map_or(NextChange::Never, NextChange::At));
        }
        horizon = n.horizon;
    }
    Ok(DateTime::from_timestamp(t, 0).map_or(NextChange::Never, NextChange::NotBefore))
}

/// Evaluation environment: the context with `now` as whole seconds.
pub(crate) struct Env<'a> {
    pub(crate) ctx: &'a Context,
    pub(crate) now: i64,
    pub(crate) tz: FixedOffset,
}

impl<'a> Env<'a> {
    pub(crate) fn new(ctx: &'a Context, now: i64) -> Self {
        Self { ctx, now, tz: ctx.tz() }
    }
}

/// A node's value, its explanation (when asked for) and its horizon.
pub(crate) struct Node {
    pub(crate) result: bool,
    pub(crate) explain: Option<Explain>,
    /// Earliest instant > now at which the value may change (a lower bound), if any.
    pub(crate) horizon: Option<i64>,
}

pub(super) fn leaf_explain(
    result: bool,
    node: String,
    observed: Option<String>,
    cmp: Option<String>,
) -> Explain {
    Explain { result, node, observed, comparison: cmp, children: Vec::new() }
}

pub(crate) fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Keeps only candidates strictly after `now`.
pub(super) fn after(now: i64, t: i64) -> Option<i64> {
    (t > now).then_some(t)
}

const MAX_DEPTH: usize = 64;

/// Evaluates a condition for one customer.
pub(crate) fn eval<V: View>(
    cond: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
    depth: usize,
) -> Result<Node, SegmentError> {
    if depth > MAX_DEPTH {
        return Err(SegmentError::Cycle(vec![format!("nesting deeper than {MAX_DEPTH}")]));
    }
    match cond {
        Condition::And { children } | Condition::Or { children } => {
            let is_and = matches!(cond, Condition::And { .. });
            let mut kids = Vec::new();
            let mut horizon_all = None;
            let mut decided: Option<Option<i64>> = None;
            for c in children {
                let n = eval(c, v, env, explain, depth + 1)?;
                if n.result != is_and && decided.is_none() {
                    // The first child that decides the result bounds when it can change.
                    decided = Some(n.horizon);
                }
                horizon_all = min_opt(horizon_all, n.horizon);
                if let Some(e) = n.explain {
                    kids.push(e);
                }
                if decided.is_some() && !explain {
                    break;
                }
            }
            let result = if is_and { decided.is_none() } else { decided.is_some() };
            let horizon = decided.unwrap_or(horizon_all);
            let explain = explain.then(|| Explain {
                result,
                node: if is_and { "and" } else { "or" }.into(),
                observed: None,
                comparison: None,
                children: kids,
            });
            Ok(Node { result, explain, horizon })
        }
        Condition::Not { child } => {
            let n = eval(child, v, env, explain, depth + 1)?;
            let explain = n.explain.map(|e| Explain {
                result: !n.result,
                node: "not".into(),
                observed: None,
                comparison: None,
                children: vec![e],
            });
            Ok(Node { result: !n.result, explain, horizon: n.horizon })
        }
        Condition::InSegment { name } => {
            let def =
                env.ctx.segment(name).ok_or_else(|| SegmentError::UnknownSegment(name.clone()))?;
            let n = eval(def.condition(), v, env, explain, depth + 1)?;
            let explain = n.explain.map(|e| Explain {
                result: n.result,
                node: cond.to_string(),
                observed: None,
                comparison: None,
                children: vec![e],
            });
            Ok(Node { result: n.result, explain, horizon: n.horizon })
        }
        leaf => {
            let l = eval_leaf(leaf, v, env, explain)?;
            let explain =
                explain.then(|| leaf_explain(l.result, leaf.to_string(), l.observed, l.comparison));
            Ok(Node { result: l.result, explain, horizon: l.horizon })
        }
    }
}

pub(crate) struct Leaf {
    pub(crate) result: bool,
    pub(crate) observed: Option<String>,
    pub(crate) comparison: Option<String>,
    pub(crate) horizon: Option<i64>,
}

impl Leaf {
    /// A family evaluator handed another family's condition: a dispatch bug, answered "no".
    pub(crate) fn mismatch() -> Self {
        Self { result: false, observed: None, comparison: None, horizon: None }
    }
}

pub(super) fn eval_leaf<V: View>(
    cond: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    Ok(match cond {
        Condition::Attribute { .. } => leaf::attr::eval_attribute(cond, v, env, explain)?,
        Condition::Line { .. } => leaf::line::eval_line(cond, v, env, explain)?,
        Condition::Date { .. } => leaf::date::eval_date(cond, v, env, explain)?,
        Condition::Orders { .. } => leaf::orders::eval_orders(cond, v, env, explain)?,
        Condition::Subscription { .. } => {
            leaf::subscription::eval_subscription(cond, v, env, explain)?
        }
        Condition::CartAbandoned { .. } => leaf::cart::eval_cart_abandoned(cond, v, env, explain)?,
        Condition::ItemChange { .. } => leaf::cart::eval_item_change(cond, v, env, explain)?,
        Condition::Messages { .. } => leaf::messages::eval_messages(cond, v, env, explain)?,
        Condition::InList { .. } => leaf::list::eval_in_list(cond, v, env, explain)?,
        Condition::Bucket { .. } => leaf::bucket::eval_bucket(cond, v, env, explain)?,
        Condition::Compare { .. } => leaf::calc::eval_compare(cond, v, env, explain)?,
        Condition::And { .. }
        | Condition::Or { .. }
        | Condition::Not { .. }
        | Condition::InSegment { .. } => {
            // Combinators are handled by `eval`; reaching here is a bug, answer "no".
            Leaf::mismatch()
        }
    })
}

pub(super) fn message_kind(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Received => "received",
        MessageKind::Opened => "opened",
        MessageKind::Clicked => "clicked",
    }
}

/// Per-customer aggregate of matching orders inside a window.
pub(crate) struct Agg {
    pub(crate) count: i64,
    pub(crate) sum: i128,
    pub(crate) horizon: Option<i64>,
}

pub(crate) fn order_agg<V: View>(
    v: &V,
    filter: &OrderFilter,
    window: &Window,
    now: i64,
    tz: FixedOffset,
) -> Agg {
    let (lo, hi) = window_bounds(window, now, tz);
    let mut a = Agg { count: 0, sum: 0, horizon: None };
    v.orders(filter, &mut |ts, val| {
        if ts >= lo && ts <= hi {
            a.count += 1;
            a.sum += i128::from(val);
        }
        a.horizon = min_opt(a.horizon, window_horizon(window, ts, now, tz));
    });
    a
}

pub(crate) fn measure_test(count: i64, sum: i128, m: Measure, op: CmpOp, value: i64) -> bool {
    match m {
        Measure::Count => op.apply(count, value),
        Measure::Sum => op.apply(sum, i128::from(value)),
        // avg op v  <=>  sum op v × count, for count > 0: exact, no rounding.
        Measure::Avg => count > 0 && op.apply(sum, i128::from(value) * i128::from(count)),
    }
}

pub(super) fn describe_measure(count: i64, sum: i128, m: Measure, op: CmpOp, value: i64) -> String {
    match m {
        Measure::Count => format!("{count} {} {value}", op.symbol()),
        Measure::Sum => format!("{sum} {} {value}", op.symbol()),
        Measure::Avg if count == 0 => "no orders: no average".into(),
        Measure::Avg => format!("{sum}/{count} {} {value}", op.symbol()),
    }
}

pub(super) fn show_attr(v: &AttrValue) -> String {
    match v {
        AttrValue::Text(s) => format!("{s:?}"),
        AttrValue::Int(n) => n.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Time(t) => fmt_ts(secs(t)),
        AttrValue::List(l) => format!("{l:?}"),
        #[allow(unreachable_patterns)]
        _ => "?".into(),
    }
}

/// Compares an attribute with a literal: `Some(ordering)` when the types match.
pub(super) fn attr_cmp(a: &AttrValue, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (AttrValue::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (AttrValue::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (AttrValue::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (AttrValue::Time(x), Value::Time { time: y }) => Some(secs(x).cmp(&secs(y))),
        _ => None,
    }
}

/// The attribute semantics (see [`AttrTest`] for the missing-value rules).
pub(crate) fn attr_test(val: Option<&AttrValue>, test: &AttrTest) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match test {
        AttrTest::Exists => val.is_some(),
        AttrTest::Missing => val.is_none(),
        AttrTest::Compare { op, value } => match val.map(|a| attr_cmp(a, value)) {
            None => *op == CmpOp::Ne,
            Some(None) => *op == CmpOp::Ne,
            Some(Some(o)) => match op {
                CmpOp::Eq => o == Equal,
                CmpOp::Ne => o != Equal,
                CmpOp::Lt => o == Less,
                CmpOp::Le => o != Greater,
                CmpOp::Gt => o == Greater,
                CmpOp::Ge => o != Less,
            },
        },
        AttrTest::In { values } => {
            val.is_some_and(|a| values.iter().any(|x| attr_cmp(a, x) == Some(Equal)))
        }
        AttrTest::NotIn { values } => {
            !val.is_some_and(|a| values.iter().any(|x| attr_cmp(a, x) == Some(Equal)))
        }
        AttrTest::Contains { value } => {
            matches!(val, Some(AttrValue::List(l)) if l.contains(value))
        }
    }
}

pub(crate) fn line_test(l: LineStatus, s: LineState) -> bool {
    match s {
        LineState::Linked => l.linked,
        LineState::Following => l.linked && l.friendship == Friendship::Following,
        LineState::Blocked => l.linked && l.friendship == Friendship::Blocked,
    }
}

/// The instant a date field holds at `now`, and when a future order may change it.
pub(super) fn date_field<V: View>(
    field: &DateField,
    v: &V,
    env: &Env<'_>,
) -> (Option<i64>, Option<i64>) {
    let now = env.now;
    match field {
        DateField::Registered => (v.registered_at(), None),
        DateField::Birthday => (v.birth_date().map(|d| day_start(date_to_day(d), env.tz)), None),
        DateField::LinkedAt => (v.line().linked_at.as_ref().map(secs), None),
        DateField::FirstOrder { filter } | DateField::LastOrder { filter } => {
            let first = matches!(field, DateField::FirstOrder { .. });
            let mut best: Option<i64> = None;
            let mut next = None;
            v.orders(filter, &mut |ts, _| {
                if ts <= now {
                    best = Some(match best {
                        None => ts,
                        Some(b) if first => b.min(ts),
                        Some(b) => b.max(ts),
                    });
                } else {
                    next = min_opt(next, Some(ts));
                }
            });
            (best, next)
        }
        DateField::Attribute { name } => match v.attribute(name) {
            Some(AttrValue::Time(t)) => (Some(secs(t)), None),
            _ => (None, None),
        },
    }
}

/// The date-test semantics and the earliest later instant the result may change.
pub(crate) fn date_test(
    t: Option<i64>,
    test: &DateTest,
    now: i64,
    tz: FixedOffset,
) -> (bool, Option<i64>) {
    let Some(t) = t else { return (false, None) };
    match test {
        DateTest::Age { op, value } => {
            let v = value.as_secs();
            let h = min_opt(after(now, t + v), after(now, t + v + 1));
            (op.apply(now - t, v), h)
        }
        DateTest::DaysAgo { op, days } => {
            let dt = local_day(t, tz);
            let d = i64::from(*days);
            let h =
                min_opt(after(now, day_start(dt + d, tz)), after(now, day_start(dt + d + 1, tz)));
            (op.apply(local_day(now, tz) - dt, d), h)
        }
        DateTest::Between { from, to } => (t >= secs(from) && t < secs(to), None),
        DateTest::MonthIs { month } => (local_month_day(t, tz).0 == *month, None),
        DateTest::InCurrentMonth => (
            local_month_day(t, tz).0 == local_month_day(now, tz).0,
            Some(next_month_start(now, tz)),
        ),
        DateTest::AnniversaryToday => {
            let (m, d) = local_month_day(t, tz);
            let today = local_day(now, tz);
            (anniversary_is(m, d, day_to_date(today)), Some(day_start(today + 1, tz)))
        }
    }
}

pub(super) fn describe_date_test(
    t: Option<i64>,
    test: &DateTest,
    now: i64,
    tz: FixedOffset,
) -> String {
    let Some(t) = t else { return "missing: false".into() };
    match test {
        DateTest::Age { op, value } => {
            format!("age {} {} {value}", fmt_age(now - t), op.symbol())
        }
        DateTest::DaysAgo { op, days } => {
            format!("{} days ago {} {days}", local_day(now, tz) - local_day(t, tz), op.symbol())
        }
        DateTest::Between { from, to } => {
            format!("{} <= t < {}", fmt_ts(secs(from)), fmt_ts(secs(to)))
        }
        DateTest::MonthIs { month } => format!("month {} = {month}", local_month_day(t, tz).0),
        DateTest::InCurrentMonth => {
            format!("month {} = current {}", local_month_day(t, tz).0, local_month_day(now, tz).0)
        }
        DateTest::AnniversaryToday => {
            let (m, d) = local_month_day(t, tz);
            let (tm, td) = local_month_day(now, tz);
            format!("{m:02}-{d:02} vs today {tm:02}-{td:02}")
        }
    }
}

/// An age in seconds as `12d 3h 4m 5s` (only the non-zero parts; `-` for the future).
pub(super) fn fmt_age(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let parts: Vec<String> =
        [(s / 86_400, "d"), (s % 86_400 / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, u)| format!("{n}{u}"))
            .collect();
    if parts.is_empty() { "0s".into() } else { format!("{sign}{}", parts.join(" ")) }
}

/// Inclusive bounds `[lo, hi]` in whole seconds of a window at `now`.
pub(crate) fn window_bounds(w: &Window, now: i64, tz: FixedOffset) -> (i64, i64) {
    match w {
        Window::AllTime => (i64::MIN, now),
        Window::Last { span } => (now - span.as_secs() + 1, now),
        Window::CalendarDays { days } => {
            (day_start(local_day(now, tz) - i64::from(*days) + 1, tz), now)
        }
        Window::Between { from, to } => (secs(from), (secs(to) - 1).min(now)),
    }
}

/// The earliest instant after `now` at which an event at `ts` enters or leaves the window.
pub(crate) fn window_horizon(w: &Window, ts: i64, now: i64, tz: FixedOffset) -> Option<i64> {
    let enter = after(now, ts);
    let leave = match w {
        Window::AllTime | Window::Between { .. } => None,
        Window::Last { span } => after(now, ts + span.as_secs()),
        Window::CalendarDays { days } => {
            after(now, day_start(local_day(ts, tz) + i64::from(*days), tz))
        }
    };
    min_opt(enter, leave)
}

pub(super) fn expr<V: View>(
    e: &Expr,
    v: &V,
    env: &Env<'_>,
    horizon: &mut Option<i64>,
) -> Option<i128> {
    const LIMIT: i128 = 1 << 100;
    let bound = |x: i128| (x.abs() < LIMIT).then_some(x);
    match e {
        Expr::Number { value } => Some(i128::from(*value)),
        Expr::Attribute { name } => match v.attribute(name) {
            Some(AttrValue::Int(n)) => Some(i128::from(*n)),
            _ => None,
        },
        Expr::OrderCount { filter, window } | Expr::OrderSum { filter, window } => {
            let a = order_agg(v, filter, window, env.now, env.tz);
            *horizon = min_opt(*horizon, a.horizon);
            Some(if matches!(e, Expr::OrderCount { .. }) { i128::from(a.count) } else { a.sum })
        }
        Expr::Sum { first, rest } => {
            let mut acc = expr(first, v, env, horizon)?;
            for t in rest {
                let x = expr(&t.expr, v, env, horizon)?;
                acc = bound(match t.op {
                    AddOp::Add => acc + x,
                    AddOp::Sub => acc - x,
                })?;
            }
            Some(acc)
        }
        Expr::Product { factors } => {
            let (first, rest) = factors.split_first()?;
            let mut acc = expr(first, v, env, horizon)?;
            for e in rest {
                acc = acc.checked_mul(expr(e, v, env, horizon)?).and_then(bound)?;
            }
            Some(acc)
        }
    }
}
