//! What a data set holds (attribute names and types, product IDs, SKUs, categories), and
//! checking a definition against it so a typo is an error instead of "everyone" or "nobody".
//!
//! The pure semantics stay as they are (a missing attribute is missing, see [`AttrTest`]);
//! this is a separate check that callers who know their data run before trusting a count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::ast::{AttrTest, Condition, DateField, Expr, OrderFilter, SegmentDefinition, Value};
use super::data::{AttrValue, Context, CustomerFacts};
use super::error::SegmentError;

/// The type of an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AttrKind {
    /// Text.
    Text,
    /// Integer.
    Int,
    /// Boolean.
    Bool,
    /// Instant.
    Time,
    /// List of texts.
    List,
}

impl AttrKind {
    /// The kind of a stored value.
    #[must_use]
    pub fn of(v: &AttrValue) -> Self {
        match v {
            AttrValue::Text(_) => Self::Text,
            AttrValue::Int(_) => Self::Int,
            AttrValue::Bool(_) => Self::Bool,
            AttrValue::Time(_) => Self::Time,
            AttrValue::List(_) => Self::List,
        }
    }

    fn of_literal(v: &Value) -> Self {
        match v {
            Value::Bool(_) => Self::Bool,
            Value::Int(_) => Self::Int,
            Value::Text(_) => Self::Text,
            Value::Time { .. } => Self::Time,
        }
    }
}

impl fmt::Display for AttrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Int => "integer",
            Self::Bool => "boolean",
            Self::Time => "instant",
            Self::List => "list",
        })
    }
}

/// A kind of name a definition refers to, other than attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A product ID.
    Product,
    /// A SKU code.
    Sku,
    /// A category.
    Category,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Product => "product",
            Self::Sku => "SKU",
            Self::Category => "category",
        })
    }
}

/// One way a definition does not fit a [`Schema`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// No customer has this attribute (and none was declared).
    #[error("unknown attribute {name:?}{}", hint(suggestion.as_deref()))]
    UnknownAttribute {
        /// The name in the definition.
        name: String,
        /// The closest known attribute, if one is close.
        suggestion: Option<String>,
    },
    /// The attribute exists, but the definition uses it as another type (a boolean compared
    /// with text, `contains` on a number, `calc` on text, ...), so the test could never hold.
    #[error("attribute {name:?} holds {} values, but the segment uses it as {found}", kinds(.holds))]
    WrongType {
        /// The attribute.
        name: String,
        /// The types its values have in the data.
        holds: Vec<AttrKind>,
        /// How the definition uses it, e.g. `` `= "yes"` (text) ``.
        found: String,
    },
    /// A product ID, SKU or category the data never mentions.
    #[error("unknown {kind} {name:?}{}", hint(suggestion.as_deref()))]
    UnknownName {
        /// What kind of name.
        kind: NameKind,
        /// The name in the definition.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
}

fn hint(s: Option<&str>) -> String {
    s.map_or_else(String::new, |s| format!(" (did you mean {s:?}?)"))
}

fn kinds(k: &[AttrKind]) -> String {
    k.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ")
}

/// The names a data set holds: attributes with the types of their values, product IDs, SKUs
/// and categories. Derive one from the data ([`Schema::from_customers`],
/// [`Engine::schema`](super::Engine::schema)), declare what the data does not show yet, and
/// check definitions with [`SegmentDefinition::validate`].
///
/// Attributes are always checked. Product IDs, SKUs and categories are checked only when the
/// schema knows at least one name of that kind (a data set without line items says nothing
/// about SKUs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    attributes: BTreeMap<String, BTreeSet<AttrKind>>,
    products: BTreeSet<String>,
    skus: BTreeSet<String>,
    categories: BTreeSet<String>,
}

impl Schema {
    /// An empty schema.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of some customers' facts.
    #[must_use]
    pub fn from_customers<'a>(customers: impl IntoIterator<Item = &'a CustomerFacts>) -> Self {
        let mut s = Self::new();
        for c in customers {
            s.add_customer(c);
        }
        s
    }

    /// Adds the names one customer's facts use.
    pub fn add_customer(&mut self, c: &CustomerFacts) {
        for (name, v) in &c.attributes {
            self.add_attribute(name.clone(), AttrKind::of(v));
        }
        for o in &c.orders {
            for i in &o.items {
                self.add_line_item(&i.product, i.sku.as_deref(), i.category.as_deref());
            }
        }
        for s in &c.subscriptions {
            if let Some(p) = &s.product {
                self.add_product(p.clone());
            }
        }
        for i in c.cart.iter().chain(&c.favourites) {
            self.add_product(i.product.clone());
        }
    }

    /// Adds the products of a catalogue.
    pub fn add_catalogue(&mut self, ctx: &Context) {
        self.products.extend(ctx.catalog.keys().cloned());
    }

    /// Declares an attribute (one the data may not show yet) with the type of its values.
    pub fn add_attribute(&mut self, name: impl Into<String>, kind: AttrKind) {
        self.attributes.entry(name.into()).or_default().insert(kind);
    }

    /// [`Schema::add_attribute`], by value.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, kind: AttrKind) -> Self {
        self.add_attribute(name, kind);
        self
    }

    /// Declares a product ID.
    pub fn add_product(&mut self, id: impl Into<String>) {
        self.products.insert(id.into());
    }

    /// Declares a SKU code.
    pub fn add_sku(&mut self, sku: impl Into<String>) {
        self.skus.insert(sku.into());
    }

    /// Declares a category.
    pub fn add_category(&mut self, category: impl Into<String>) {
        self.categories.insert(category.into());
    }

    /// Declares the names of one line item.
    pub fn add_line_item(&mut self, product: &str, sku: Option<&str>, category: Option<&str>) {
        self.products.insert(product.to_owned());
        if let Some(s) = sku {
            self.skus.insert(s.to_owned());
        }
        if let Some(c) = category {
            self.categories.insert(c.to_owned());
        }
    }

    /// Adds everything another schema knows.
    pub fn merge(&mut self, other: &Self) {
        for (name, kinds) in &other.attributes {
            self.attributes.entry(name.clone()).or_default().extend(kinds);
        }
        self.products.extend(other.products.iter().cloned());
        self.skus.extend(other.skus.iter().cloned());
        self.categories.extend(other.categories.iter().cloned());
    }

    /// The types an attribute's values have, or `None` for an unknown attribute.
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<Vec<AttrKind>> {
        self.attributes.get(name).map(|k| k.iter().copied().collect())
    }

    /// Every known attribute name, sorted.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.attributes.keys().map(String::as_str)
    }

    /// Whether nothing is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
            && self.products.is_empty()
            && self.skus.is_empty()
            && self.categories.is_empty()
    }

    /// Every way `def` does not fit this schema, in the order they appear (empty when it fits).
    /// Referenced segments (`segment "name"`) are not followed: check each where it is defined.
    #[must_use]
    pub fn check(&self, def: &SegmentDefinition) -> Vec<SchemaError> {
        let mut out = Vec::new();
        self.cond(def.condition(), &mut out);
        out
    }

    fn cond(&self, c: &Condition, out: &mut Vec<SchemaError>) {
        match c {
            Condition::And { children } | Condition::Or { children } => {
                children.iter().for_each(|c| self.cond(c, out));
            }
            Condition::Not { child } => self.cond(child, out),
            Condition::Attribute { name, test } => self.attr_test(name, test, out),
            Condition::Date { field, .. } => match field {
                DateField::Attribute { name } => {
                    self.attr_use(name, &[AttrKind::Time], || "a date".into(), out);
                }
                DateField::FirstOrder { filter } | DateField::LastOrder { filter } => {
                    self.filter(filter, out);
                }
                DateField::Registered | DateField::Birthday | DateField::LinkedAt => {}
            },
            Condition::Orders { filter, .. } => self.filter(filter, out),
            Condition::Subscription { products, .. } | Condition::ItemChange { products, .. } => {
                self.names(NameKind::Product, products, out);
            }
            Condition::Compare { left, right, .. } => {
                self.expr(left, out);
                self.expr(right, out);
            }
            Condition::Line { .. }
            | Condition::CartAbandoned { .. }
            | Condition::Messages { .. }
            | Condition::InSegment { .. }
            | Condition::InList { .. }
            | Condition::Bucket { .. } => {}
        }
    }

    fn expr(&self, e: &Expr, out: &mut Vec<SchemaError>) {
        match e {
            Expr::Attribute { name } => {
                self.attr_use(name, &[AttrKind::Int], || "an integer in `calc`".into(), out);
            }
            Expr::OrderCount { filter, .. } | Expr::OrderSum { filter, .. } => {
                self.filter(filter, out);
            }
            Expr::Number { .. } => {}
            Expr::Sum { .. } | Expr::Product { .. } => {
                e.operands().into_iter().for_each(|x| self.expr(x, out));
            }
        }
    }

    fn attr_test(&self, name: &str, test: &AttrTest, out: &mut Vec<SchemaError>) {
        let literal = |v: &Value| format!("{v} ({})", AttrKind::of_literal(v));
        match test {
            AttrTest::Exists | AttrTest::Missing => self.attr_use(name, &[], String::new, out),
            AttrTest::Compare { op, value } => {
                let k = AttrKind::of_literal(value);
                self.attr_use(name, &[k], || format!("`{} {}`", op.symbol(), literal(value)), out);
            }
            AttrTest::In { values } | AttrTest::NotIn { values } => {
                let mut ks: Vec<AttrKind> = values.iter().map(AttrKind::of_literal).collect();
                ks.sort();
                ks.dedup();
                let shown = values.iter().map(literal).collect::<Vec<_>>().join(", ");
                self.attr_use(name, &ks, || format!("one of [{shown}]"), out);
            }
            AttrTest::Contains { .. } => {
                self.attr_use(name, &[AttrKind::List], || "a list (`contains`)".into(), out);
            }
        }
    }

    /// An attribute used as one of `wanted` (any type when empty).
    fn attr_use(
        &self,
        name: &str,
        wanted: &[AttrKind],
        found: impl FnOnce() -> String,
        out: &mut Vec<SchemaError>,
    ) {
        let Some(holds) = self.attributes.get(name) else {
            let suggestion = closest(name, self.attributes.keys());
            out.push(SchemaError::UnknownAttribute { name: name.to_owned(), suggestion });
            return;
        };
        if !wanted.is_empty() && !wanted.iter().any(|k| holds.contains(k)) {
            out.push(SchemaError::WrongType {
                name: name.to_owned(),
                holds: holds.iter().copied().collect(),
                found: found(),
            });
        }
    }

    fn filter(&self, f: &OrderFilter, out: &mut Vec<SchemaError>) {
        self.names(NameKind::Product, &f.products, out);
        self.names(NameKind::Sku, &f.skus, out);
        self.names(NameKind::Category, &f.categories, out);
    }

    fn names(&self, kind: NameKind, names: &[String], out: &mut Vec<SchemaError>) {
        let known = match kind {
            NameKind::Product => &self.products,
            NameKind::Sku => &self.skus,
            NameKind::Category => &self.categories,
        };
        if known.is_empty() {
            return;
        }
        for n in names.iter().filter(|n| !known.contains(*n)) {
            let suggestion = closest(n, known.iter());
            out.push(SchemaError::UnknownName { kind, name: n.clone(), suggestion });
        }
    }
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo
/// (at most a third of the name's characters, and at least one, differ).
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .map(|k| (strsim::levenshtein(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

impl SegmentDefinition {
    /// Checks the definition against the names and types a data set holds: an unknown
    /// attribute (with the closest known name as a suggestion), an attribute used as the
    /// wrong type, or an unknown product ID, SKU or category.
    ///
    /// ```
    /// use enishi::segment::{AttrKind, Schema, SegmentDefinition, SegmentError};
    ///
    /// let schema = Schema::new().with_attribute("opt_in", AttrKind::Bool);
    /// let typo = SegmentDefinition::parse("attr opt_inn != true")?;
    /// let e = typo.validate(&schema).unwrap_err();
    /// assert!(e.to_string().contains(r#"unknown attribute "opt_inn" (did you mean "opt_in"?)"#));
    /// let text = SegmentDefinition::parse(r#"attr opt_in = "yes""#)?;
    /// assert!(text.validate(&schema).is_err());
    /// SegmentDefinition::parse("attr opt_in = true")?.validate(&schema)?;
    /// # Ok::<(), SegmentError>(())
    /// ```
    ///
    /// # Errors
    /// [`SegmentError::Schema`] with every problem found.
    pub fn validate(&self, schema: &Schema) -> Result<(), SegmentError> {
        let problems = schema.check(self);
        if problems.is_empty() { Ok(()) } else { Err(SegmentError::Schema(problems)) }
    }
}
