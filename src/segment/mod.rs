//! The segment engine: a pure query engine over customer data (no I/O, no tokio, no reqwest).
//!
//! A segment is one [`SegmentDefinition`]: a tree of `and` / `or` / `not` over typed leaf
//! conditions (attributes, LINE state, dates and birthdays, orders with line-item filters,
//! subscriptions, carts and favourites, message engagement, other segments, uploaded lists,
//! random buckets and integer arithmetic). It has two surfaces that print and parse each other:
//! strict versioned JSON (serde) and a readable text DSL.
//!
//! ```
//! use enishi::segment::SegmentDefinition;
//!
//! let q3 = SegmentDefinition::parse(
//!     "line linked and birthday month = 6 and orders sum >= 50000
//!      and last_order age > 30d and bought {product = \"1\"} and never bought {product = \"2\"}",
//! )?;
//! let json = q3.to_json();
//! assert_eq!(SegmentDefinition::from_json(&json)?, q3);
//! assert_eq!(SegmentDefinition::parse(&q3.to_string())?, q3);
//! # Ok::<(), enishi::segment::SegmentError>(())
//! ```
//!
//! Evaluators, all pure and all agreeing on the same semantics:
//!
//! - [`evaluate`] / [`matches()`] / [`next_change`]: the reference evaluator over one customer's
//!   [`CustomerFacts`], with an [`Explain`] tree;
//! - [`Engine`]: columnar per-customer state with maintained aggregates and cached Roaring
//!   bitmaps per leaf, updated incrementally (counts, funnels, overlaps, entered/left, as-of),
//!   answering in customer IDs ([`Members`]);
//! - [`compile_sql`]: the same definition as PostgreSQL or BigQuery SQL over a documented
//!   table layout, with every text value as a bind parameter ([`SqlQuery`]).
//!
//! A definition can be checked against the data it will run on ([`Schema`],
//! [`SegmentDefinition::validate`], [`Engine::validate`]): a misspelt attribute is then an
//! error naming the closest known one instead of a segment of everyone or of nobody.
//!
//! Semantics (time zone, `now`, windows, boundaries, missing values, leap days) are written
//! down in `docs/segments.md`; `now` and the time zone are always explicit inputs (default
//! Asia/Tokyo, a fixed +09:00 offset: Japan has no daylight saving time).

/// Builds an explanation string only when explaining (defined before the modules: a
/// `macro_rules!` is visible only in code after it).
macro_rules! ex {
    ($explain:expr, $($arg:tt)*) => {
        if $explain { Some(format!($($arg)*)) } else { None }
    };
}

mod ast;
mod bucket;
mod data;
mod dsl;
mod engine;
mod error;
mod eval;
mod leaf;
mod print;
mod schema;
mod sql;
mod time;

pub use ast::{
    AddOp, AttrTest, CmpOp, Condition, CountTest, DateField, DateTest, Expr, FORMAT_VERSION,
    ItemChangeKind, ItemSource, LineState, MAX_DEPTH, Measure, MessageKind, OrderFilter, OrderKind,
    SegmentDefinition, SubscriptionState, SumTerm, Value, Window,
};
pub use bucket::{BUCKETS, bucket};
pub use data::{
    AttrValue, Context, CustomerFacts, Friendship, LineItemFact, LineStatus, MessageEvent,
    OrderFact, ProductStatus, SavedItem, SubscriptionFact,
};
pub use engine::{
    Changes, CustomerColumns, Engine, Funnel, Members, MembersIter, OrderColumns, Overlap,
    evaluate_columns,
};
pub use error::{ParseError, SegmentError};
pub use eval::{
    Evaluation, Explain, NEXT_CHANGE_SEARCH_LIMIT, NextChange, evaluate, matches, next_change,
};
pub use schema::{AttrKind, NameKind, Schema, SchemaError};
pub use sql::{Dialect, SqlQuery, SqlTarget, compile_sql};
pub use time::{Span, tokyo};
