//! The segment AST: one definition, serialised as strict versioned JSON or written in the DSL.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bucket::BUCKETS;
use super::error::SegmentError;
use super::time::Span;

/// The JSON format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Deepest nesting a definition may have, counting every condition and every expression
/// node on the way from the root (`and`/`or`/`not`, a `calc` and its nested sums and
/// products). Flat chains (`a and b and ...`, `1 + 2 + ...`) are one level however long.
/// Deeper definitions are refused with [`SegmentError::TooDeep`], so every walk over a
/// definition is bounded and its JSON form stays within `serde_json`'s nesting limit.
pub const MAX_DEPTH: usize = 32;

/// A validated segment definition.
///
/// Build one from the DSL ([`SegmentDefinition::parse`]), from JSON
/// ([`SegmentDefinition::from_json`]) or from a [`Condition`] ([`SegmentDefinition::new`]).
/// `Display` prints the DSL; [`SegmentDefinition::to_json`] prints the JSON form
/// `{"version": 1, "condition": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DefinitionWire", into = "DefinitionWire")]
pub struct SegmentDefinition {
    condition: Condition,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionWire {
    version: u32,
    condition: Condition,
}

impl TryFrom<DefinitionWire> for SegmentDefinition {
    type Error = SegmentError;
    fn try_from(w: DefinitionWire) -> Result<Self, Self::Error> {
        if w.version != FORMAT_VERSION {
            return Err(SegmentError::invalid(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                w.version
            )));
        }
        Self::new(w.condition)
    }
}

impl From<SegmentDefinition> for DefinitionWire {
    fn from(d: SegmentDefinition) -> Self {
        Self { version: FORMAT_VERSION, condition: d.condition }
    }
}

impl SegmentDefinition {
    /// Validates `condition` and wraps it.
    ///
    /// # Errors
    /// [`SegmentError::Invalid`] naming the first rule the condition breaks.
    pub fn new(condition: Condition) -> Result<Self, SegmentError> {
        condition.validate()?;
        Ok(Self { condition })
    }

    /// Parses the text DSL.
    ///
    /// # Errors
    /// [`SegmentError::Parse`] with line, column and what was expected, or
    /// [`SegmentError::Invalid`].
    pub fn parse(text: &str) -> Result<Self, SegmentError> {
        Self::new(super::dsl::parse(text)?)
    }

    /// Parses the strict JSON form (unknown fields and other versions are rejected).
    ///
    /// # Errors
    /// [`SegmentError::Json`] saying what was wrong and where.
    pub fn from_json(json: &str) -> Result<Self, SegmentError> {
        serde_json::from_str(json).map_err(|e| SegmentError::Json(e.to_string()))
    }

    /// The JSON form.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The root condition.
    #[must_use]
    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

impl std::fmt::Display for SegmentDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.condition, f)
    }
}

impl std::str::FromStr for SegmentDefinition {
    type Err = SegmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A node of the segment tree: a combinator or a leaf condition on one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Condition {
    /// All children hold (an empty `and` holds for everyone).
    And {
        /// The children.
        children: Vec<Self>,
    },
    /// At least one child holds (an empty `or` holds for nobody).
    Or {
        /// The children.
        children: Vec<Self>,
    },
    /// The child does not hold.
    Not {
        /// The negated condition.
        child: Box<Self>,
    },
    /// A test on a customer attribute (rank, sex, labels, opt-in, points, ...).
    Attribute {
        /// Attribute name.
        name: String,
        /// The test.
        test: AttrTest,
    },
    /// LINE link or friendship state.
    Line {
        /// The state tested.
        state: LineState,
    },
    /// A test on one instant or date of the customer (registration, birthday, first order, ...).
    Date {
        /// Which instant.
        field: DateField,
        /// The test.
        test: DateTest,
    },
    /// Count, sum or average of the customer's orders matching a filter, inside a window.
    Orders {
        /// Which orders and line items count.
        #[serde(default, skip_serializing_if = "OrderFilter::is_empty")]
        filter: OrderFilter,
        /// The time window (default: all time up to `now`).
        #[serde(default, skip_serializing_if = "Window::is_all_time")]
        window: Window,
        /// What is measured.
        measure: Measure,
        /// The comparison.
        op: CmpOp,
        /// The threshold (yen for sums and averages).
        value: i64,
    },
    /// The customer has at least one subscription (定期) satisfying every given test.
    Subscription {
        /// Required state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<SubscriptionState>,
        /// Subscribed product is one of these (any when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        products: Vec<String>,
        /// Cancel reason is one of these (any when empty; a subscription without a reason
        /// never matches a non-empty list).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cancel_reasons: Vec<String>,
        /// Completed deliveries compared with a number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deliveries: Option<CountTest>,
        /// Test on the start instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started: Option<DateTest>,
        /// Test on the cancellation instant (never matches a subscription without one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canceled: Option<DateTest>,
        /// Test on the next delivery instant (never matches a subscription without one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_delivery: Option<DateTest>,
    },
    /// The cart holds at least `min_items` items, was last changed at least `after` ago, and
    /// no order was placed since that change.
    CartAbandoned {
        /// Minimum time since the last cart change.
        after: Span,
        /// Minimum number of cart lines (at least 1).
        min_items: u32,
    },
    /// A cart or favourite item's product changed since it was added.
    ItemChange {
        /// Where the item is.
        source: ItemSource,
        /// What changed.
        change: ItemChangeKind,
        /// Only these products (any when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        products: Vec<String>,
    },
    /// Number of message events (received, opened, clicked) inside a window.
    Messages {
        /// The event kind.
        kind: MessageKind,
        /// Only these campaigns (any when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        campaigns: Vec<String>,
        /// The time window.
        #[serde(default, skip_serializing_if = "Window::is_all_time")]
        window: Window,
        /// The comparison.
        op: CmpOp,
        /// The threshold.
        value: i64,
    },
    /// Member of another named segment.
    InSegment {
        /// The segment's name.
        name: String,
    },
    /// Member of an uploaded list (or an externally supplied audience such as LINE's
    /// impression- or click-based audiences).
    InList {
        /// The list's name.
        name: String,
    },
    /// The customer's deterministic random bucket (0..10,000) is in `from..to`.
    Bucket {
        /// The experiment's salt; different salts give independent assignments.
        salt: String,
        /// First bucket (inclusive).
        from: u32,
        /// End bucket (exclusive, at most 10,000).
        to: u32,
    },
    /// Integer arithmetic on attributes and order aggregates against another expression.
    Compare {
        /// Left side.
        left: Expr,
        /// The comparison.
        op: CmpOp,
        /// Right side.
        right: Expr,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CmpOp {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    /// Every operator, for generators and docs.
    pub const ALL: [Self; 6] = [Self::Eq, Self::Ne, Self::Lt, Self::Le, Self::Gt, Self::Ge];

    /// Applies the operator to two ordered values.
    #[must_use]
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }

    /// The operator's symbol.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A literal attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer (yen, points, ...).
    Int(i64),
    /// Text.
    Text(String),
    /// An instant, written `{"time": "2025-06-01T00:00:00Z"}` in JSON and `@2025-06-01T00:00:00Z`
    /// in the DSL.
    Time {
        /// The instant.
        time: DateTime<Utc>,
    },
}

/// A test on one attribute.
///
/// Missing values: `exists` / `missing` test presence; `!=` and `notIn` match a missing
/// attribute (as Shopify does); every other test is false on a missing attribute. Values of
/// different types are unequal and unordered (ordering comparisons are false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum AttrTest {
    /// Compare with a literal.
    Compare {
        /// The comparison.
        op: CmpOp,
        /// The literal.
        value: Value,
    },
    /// The attribute is present.
    Exists,
    /// The attribute is absent.
    Missing,
    /// Equal to one of the values.
    In {
        /// The values.
        values: Vec<Value>,
    },
    /// Equal to none of the values (true when missing).
    NotIn {
        /// The values.
        values: Vec<Value>,
    },
    /// A list attribute (labels, tags) contains the text.
    Contains {
        /// The item.
        value: String,
    },
}

/// LINE state of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LineState {
    /// The shop account is linked to a LINE account.
    Linked,
    /// The linked LINE user currently follows the official account.
    Following,
    /// The linked LINE user blocked (unfollowed) the official account.
    Blocked,
}

/// The instant a [`Condition::Date`] tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum DateField {
    /// Membership registration.
    Registered,
    /// Birth date (a date: its instant is local midnight in the evaluation time zone).
    Birthday,
    /// When the LINE link was made.
    LinkedAt,
    /// The first order matching the filter, up to `now`.
    FirstOrder {
        /// Which orders count.
        #[serde(default, skip_serializing_if = "OrderFilter::is_empty")]
        filter: OrderFilter,
    },
    /// The last order matching the filter, up to `now`.
    LastOrder {
        /// Which orders count.
        #[serde(default, skip_serializing_if = "OrderFilter::is_empty")]
        filter: OrderFilter,
    },
    /// A time-valued attribute.
    Attribute {
        /// The attribute name.
        name: String,
    },
}

/// A test on an instant `t`. Every test is false when `t` is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum DateTest {
    /// Rolling age: `now − t` compared with a span (`age > 30d`: more than 30×24 h ago).
    Age {
        /// The comparison.
        op: CmpOp,
        /// The span.
        value: Span,
    },
    /// Calendar days: `local_date(now) − local_date(t)` in the evaluation time zone compared
    /// with a number (`days_ago = 7`: on the local day a week ago; negative means the future).
    DaysAgo {
        /// The comparison.
        op: CmpOp,
        /// The number of days.
        days: i32,
    },
    /// Absolute half-open range `from <= t < to`.
    Between {
        /// Start (inclusive).
        from: DateTime<Utc>,
        /// End (exclusive).
        to: DateTime<Utc>,
    },
    /// The local month of `t` is `month` (1–12).
    MonthIs {
        /// 1 = January.
        month: u32,
    },
    /// The local month of `t` is the local month of `now` (birthday month).
    InCurrentMonth,
    /// The local month and day of `t` are today's (anniversary); Feb-29 falls on Feb-28 in
    /// common years.
    AnniversaryToday,
}

/// Which orders and line items an order condition looks at.
///
/// An item matches when its product is in `products`, its SKU in `skus` and its category in
/// `categories` (each list that is non-empty). With an item list, an order matches when at
/// least one of its items matches, and sums add the matching items' `unit_price × quantity`;
/// without one, every order matches and sums add order amounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderFilter {
    /// Product IDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    /// SKU codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<String>,
    /// Categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Only one-off or only subscription orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OrderKind>,
}

impl OrderFilter {
    /// No restriction.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.has_items() && self.kind.is_none()
    }

    /// Whether the filter looks at line items.
    #[must_use]
    pub fn has_items(&self) -> bool {
        !(self.products.is_empty() && self.skus.is_empty() && self.categories.is_empty())
    }

    /// Whether one line item matches the item lists (every non-empty list must contain it;
    /// a missing SKU or category never matches a non-empty list).
    pub(crate) fn matches_item(
        &self,
        product: &str,
        sku: Option<&str>,
        category: Option<&str>,
    ) -> bool {
        (self.products.is_empty() || self.products.iter().any(|p| p == product))
            && (self.skus.is_empty() || sku.is_some_and(|s| self.skus.iter().any(|x| x == s)))
            && (self.categories.is_empty()
                || category.is_some_and(|c| self.categories.iter().any(|x| x == c)))
    }
}

/// One-off or subscription (定期) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum OrderKind {
    /// A one-off order.
    OneOff,
    /// An order created by a subscription.
    Subscription,
}

/// A time window, always capped at `now` (events after `now` have not happened yet).
///
/// Windows are inclusive of `now`: rolling `(now − span, now]`; calendar `[local midnight of
/// (today − (days − 1)), now]` so `calendar 1d` is "today"; between `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Window {
    /// Everything up to `now`.
    #[default]
    AllTime,
    /// Rolling: the last `span` before `now`.
    Last {
        /// Window length (more than 0).
        span: Span,
    },
    /// Calendar: the last `days` local calendar days including today.
    CalendarDays {
        /// Number of days (at least 1).
        days: u32,
    },
    /// Absolute `[from, to)`.
    Between {
        /// Start (inclusive).
        from: DateTime<Utc>,
        /// End (exclusive).
        to: DateTime<Utc>,
    },
}

impl Window {
    /// Whether this is [`Window::AllTime`].
    #[must_use]
    pub fn is_all_time(&self) -> bool {
        matches!(self, Self::AllTime)
    }
}

/// What an order condition measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Measure {
    /// Number of matching orders.
    Count,
    /// Total yen.
    Sum,
    /// `sum / count`, compared exactly; false when there are no matching orders.
    Avg,
}

/// A comparison of a count with a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountTest {
    /// The comparison.
    pub op: CmpOp,
    /// The number.
    pub value: i64,
}

/// Subscription state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SubscriptionState {
    /// Delivering.
    Active,
    /// Paused (skips deliveries).
    Paused,
    /// Canceled.
    Canceled,
}

/// Where an item of [`Condition::ItemChange`] sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ItemSource {
    /// In the cart.
    Cart,
    /// In the favourites.
    Favourites,
    /// In either.
    Saved,
}

/// What changed for a cart or favourite item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ItemChangeKind {
    /// Restocked at or after the item was added (and up to `now`), and in stock now.
    Restocked,
    /// The current price is below the price when the item was added.
    PriceDropped,
    /// Exactly one left in stock.
    LastOne,
}

/// A message event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MessageKind {
    /// A message was delivered to the customer.
    Received,
    /// The customer opened it (from an impression audience or the shop's own tracking).
    Opened,
    /// The customer clicked in it (from a click audience or tracked links).
    Clicked,
}

/// An integer expression. Missing values (absent attributes, non-integer attributes) and
/// overflow make the whole comparison false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Expr {
    /// A literal.
    Number {
        /// The value.
        value: i64,
    },
    /// An integer attribute.
    Attribute {
        /// The attribute name.
        name: String,
    },
    /// Number of matching orders in the window (0 when none).
    OrderCount {
        /// Which orders.
        #[serde(default, skip_serializing_if = "OrderFilter::is_empty")]
        filter: OrderFilter,
        /// The window.
        #[serde(default, skip_serializing_if = "Window::is_all_time")]
        window: Window,
    },
    /// Total yen of matching orders in the window (0 when none).
    OrderSum {
        /// Which orders.
        #[serde(default, skip_serializing_if = "OrderFilter::is_empty")]
        filter: OrderFilter,
        /// The window.
        #[serde(default, skip_serializing_if = "Window::is_all_time")]
        window: Window,
    },
    /// A chain of additions and subtractions, `first ± rest[0] ± rest[1] ...`, computed left
    /// to right. Long chains stay flat (one node), so a sum of a million terms needs no deep
    /// nesting; `rest` holds at least one term.
    Sum {
        /// The first operand.
        first: Box<Self>,
        /// The following operands with their operators (at least one).
        rest: Vec<SumTerm>,
    },
    /// A chain of multiplications `factors[0] * factors[1] * ...`, computed left to right
    /// (at least two factors).
    Product {
        /// The factors.
        factors: Vec<Self>,
    },
}

/// `+` or `-` in an [`Expr::Sum`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AddOp {
    /// `+`
    #[serde(rename = "+")]
    Add,
    /// `-`
    #[serde(rename = "-")]
    Sub,
}

impl AddOp {
    /// The operator's symbol.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
        }
    }
}

/// One `+ expr` or `- expr` of an [`Expr::Sum`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumTerm {
    /// Add or subtract.
    pub op: AddOp,
    /// The operand.
    pub expr: Expr,
}

impl Expr {
    /// The direct operands of a sum or product (none for a leaf), left to right.
    #[must_use]
    pub fn operands(&self) -> Vec<&Self> {
        match self {
            Self::Sum { first, rest } => {
                std::iter::once(&**first).chain(rest.iter().map(|t| &t.expr)).collect()
            }
            Self::Product { factors } => factors.iter().collect(),
            Self::Number { .. }
            | Self::Attribute { .. }
            | Self::OrderCount { .. }
            | Self::OrderSum { .. } => Vec::new(),
        }
    }
}

impl Condition {
    /// Whether this is a leaf (not `and`, `or`, `not`).
    #[must_use]
    pub fn is_leaf(&self) -> bool {
        !matches!(self, Self::And { .. } | Self::Or { .. } | Self::Not { .. })
    }

    /// Every leaf, depth first, left to right.
    #[must_use]
    pub fn leaves(&self) -> Vec<&Self> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Self>) {
        match self {
            Self::And { children } | Self::Or { children } => {
                children.iter().for_each(|c| c.collect_leaves(out));
            }
            Self::Not { child } => child.collect_leaves(out),
            leaf => out.push(leaf),
        }
    }

    /// Names of segments this condition refers to.
    #[must_use]
    pub fn segment_refs(&self) -> Vec<&str> {
        self.leaves()
            .into_iter()
            .filter_map(|l| match l {
                Self::InSegment { name } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Checks every rule the type system cannot express, including the nesting limit
    /// [`MAX_DEPTH`].
    ///
    /// # Errors
    /// [`SegmentError::TooDeep`], or [`SegmentError::Invalid`] naming the rule broken.
    pub fn validate(&self) -> Result<(), SegmentError> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<(), SegmentError> {
        if depth > MAX_DEPTH {
            return Err(SegmentError::TooDeep { limit: MAX_DEPTH });
        }
        let bad = |m: String| Err(SegmentError::Invalid(m));
        match self {
            Self::And { children } | Self::Or { children } => {
                children.iter().try_for_each(|c| c.validate_at(depth + 1))
            }
            Self::Not { child } => child.validate_at(depth + 1),
            Self::Attribute { name, test } => {
                check_name("attribute", name)?;
                match test {
                    AttrTest::In { values } | AttrTest::NotIn { values } if values.is_empty() => {
                        bad(format!("attribute {name}: `in` needs at least one value"))
                    }
                    _ => Ok(()),
                }
            }
            Self::Line { .. } => Ok(()),
            Self::Date { field, test } => {
                if let DateField::FirstOrder { filter } | DateField::LastOrder { filter } = field {
                    check_filter(filter)?;
                }
                if let DateField::Attribute { name } = field {
                    check_name("attribute", name)?;
                }
                check_date_test(test)
            }
            Self::Orders { filter, window, .. } => {
                check_filter(filter)?;
                check_window(window)
            }
            Self::Subscription { started, canceled, next_delivery, .. } => {
                for t in [started, canceled, next_delivery].into_iter().flatten() {
                    check_date_test(t)?;
                }
                Ok(())
            }
            Self::CartAbandoned { min_items, .. } => {
                if *min_items == 0 {
                    bad("cart abandoned: items must be at least 1".into())
                } else {
                    Ok(())
                }
            }
            Self::ItemChange { .. } => Ok(()),
            Self::Messages { window, .. } => check_window(window),
            Self::InSegment { name } => check_name("segment", name),
            Self::InList { name } => check_name("list", name),
            Self::Bucket { from, to, .. } => {
                if from > to || *to > BUCKETS {
                    bad(format!("bucket range {from}..{to} must satisfy from <= to <= {BUCKETS}"))
                } else {
                    Ok(())
                }
            }
            Self::Compare { left, right, .. } => {
                check_expr(left, depth + 1)?;
                check_expr(right, depth + 1)
            }
        }
    }
}

fn check_name(what: &str, name: &str) -> Result<(), SegmentError> {
    if name.is_empty() {
        Err(SegmentError::invalid(format!("{what} name must not be empty")))
    } else {
        Ok(())
    }
}

fn check_filter(f: &OrderFilter) -> Result<(), SegmentError> {
    let _ = f;
    Ok(())
}

fn check_window(w: &Window) -> Result<(), SegmentError> {
    match w {
        Window::Last { span } if span.as_secs() == 0 => {
            Err(SegmentError::invalid("window `last 0s` is empty: use a span above 0"))
        }
        Window::CalendarDays { days: 0 } => {
            Err(SegmentError::invalid("window `calendar 0d` is empty: use at least 1 day"))
        }
        Window::Between { from, to } if from >= to => Err(SegmentError::invalid(format!(
            "window between {from} and {to} is empty: `from` must be before `to`"
        ))),
        _ => Ok(()),
    }
}

fn check_date_test(t: &DateTest) -> Result<(), SegmentError> {
    match t {
        DateTest::MonthIs { month } if !(1..=12).contains(month) => {
            Err(SegmentError::invalid(format!("month {month} is not in 1..=12")))
        }
        DateTest::Between { from, to } if from >= to => Err(SegmentError::invalid(format!(
            "date between {from} and {to} is empty: `from` must be before `to`"
        ))),
        DateTest::DaysAgo { days, .. } if days.unsigned_abs() > 1_000_000 => {
            Err(SegmentError::invalid(format!("days_ago {days} is out of range")))
        }
        _ => Ok(()),
    }
}

fn check_expr(e: &Expr, depth: usize) -> Result<(), SegmentError> {
    if depth > MAX_DEPTH {
        return Err(SegmentError::TooDeep { limit: MAX_DEPTH });
    }
    match e {
        Expr::Number { .. } => Ok(()),
        Expr::Attribute { name } => check_name("attribute", name),
        Expr::OrderCount { filter, window } | Expr::OrderSum { filter, window } => {
            check_filter(filter)?;
            check_window(window)
        }
        Expr::Sum { rest, .. } if rest.is_empty() => {
            Err(SegmentError::invalid("a sum needs at least two operands"))
        }
        Expr::Product { factors } if factors.len() < 2 => {
            Err(SegmentError::invalid("a product needs at least two factors"))
        }
        Expr::Sum { .. } | Expr::Product { .. } => {
            e.operands().into_iter().try_for_each(|x| check_expr(x, depth + 1))
        }
    }
}
