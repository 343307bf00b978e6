//! The engine's input model: plain data about one customer, the product catalogue and the
//! evaluation context.
//!
//! Adapters (the commerce module, a host's own store) convert their models into these types.
//! Conventions every adapter must follow:
//!
//! - instants are UTC ([`DateTime<Utc>`]); evaluation uses whole seconds;
//! - `orders` holds confirmed orders only (drop canceled ones); amounts are integer yen,
//!   including tax, after discounts (the adapter documents its choice);
//! - facts dated after the evaluation's `now` are ignored (they "have not happened yet"), which
//!   is what makes as-of evaluation work; states without a timestamp (subscription state,
//!   attributes, link state, stock) are taken as they are.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ast::{MessageKind, OrderKind, SegmentDefinition, SubscriptionState};
use super::error::SegmentError;
use super::time::tokyo;
use crate::CustomerId;

/// Everything the engine knows about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerFacts {
    /// The shop's customer ID.
    pub id: CustomerId,
    /// Free attributes (rank, sex, labels, opt-in flags, points, skin type, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrValue>,
    /// Birth date, if known.
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    /// Membership registration.
    #[serde(default)]
    pub registered_at: Option<DateTime<Utc>>,
    /// LINE link and friendship.
    #[serde(default)]
    pub line: LineStatus,
    /// Confirmed orders (any order).
    #[serde(default)]
    pub orders: Vec<OrderFact>,
    /// Subscriptions (定期), current state.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFact>,
    /// Current cart lines.
    #[serde(default)]
    pub cart: Vec<SavedItem>,
    /// Current favourites.
    #[serde(default)]
    pub favourites: Vec<SavedItem>,
    /// Message events (received, opened, clicked).
    #[serde(default)]
    pub messages: Vec<MessageEvent>,
}

impl CustomerFacts {
    /// A customer with no facts yet.
    #[must_use]
    pub fn new(id: CustomerId) -> Self {
        Self {
            id,
            attributes: BTreeMap::new(),
            birth_date: None,
            registered_at: None,
            line: LineStatus::default(),
            orders: Vec::new(),
            subscriptions: Vec::new(),
            cart: Vec::new(),
            favourites: Vec::new(),
            messages: Vec::new(),
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum AttrValue {
    /// Text (`{"text": "gold"}`).
    Text(String),
    /// Integer (`{"int": 1200}`).
    Int(i64),
    /// Boolean (`{"bool": true}`).
    Bool(bool),
    /// Instant (`{"time": "2025-01-01T00:00:00Z"}`).
    Time(DateTime<Utc>),
    /// A list of texts such as labels (`{"list": ["vip"]}`).
    List(Vec<String>),
}

/// LINE link and friendship state of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineStatus {
    /// The shop account is linked to a LINE user.
    #[serde(default)]
    pub linked: bool,
    /// When the link was made.
    #[serde(default)]
    pub linked_at: Option<DateTime<Utc>>,
    /// Whether the linked LINE user follows the official account.
    #[serde(default)]
    pub friendship: Friendship,
}

/// Friendship of a LINE user with the official account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Friendship {
    /// Unknown or never followed.
    #[default]
    Unknown,
    /// Follows (last event was `follow`).
    Following,
    /// Blocked (last event was `unfollow`).
    Blocked,
}

/// A confirmed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFact {
    /// The shop's order ID.
    pub id: String,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// Total in yen.
    pub amount: i64,
    /// One-off or subscription order.
    pub kind: OrderKind,
    /// Line items.
    #[serde(default)]
    pub items: Vec<LineItemFact>,
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineItemFact {
    /// Product ID.
    pub product: String,
    /// SKU code.
    #[serde(default)]
    pub sku: Option<String>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// Quantity.
    pub quantity: u32,
    /// Unit price in yen.
    pub unit_price: i64,
}

/// A subscription (定期購入).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFact {
    /// The shop's subscription ID.
    pub id: String,
    /// Current state.
    pub state: SubscriptionState,
    /// Subscribed product.
    #[serde(default)]
    pub product: Option<String>,
    /// Start (a subscription starting after `now` is ignored).
    pub started_at: DateTime<Utc>,
    /// Cancellation instant, if canceled.
    #[serde(default)]
    pub canceled_at: Option<DateTime<Utc>>,
    /// Cancellation survey answer.
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// Deliveries completed so far.
    #[serde(default)]
    pub deliveries: u32,
    /// Next scheduled delivery.
    #[serde(default)]
    pub next_delivery_at: Option<DateTime<Utc>>,
}

/// A cart line or a favourite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedItem {
    /// Product ID.
    pub product: String,
    /// When it was added (items added after `now` are ignored).
    pub added_at: DateTime<Utc>,
    /// Unit price in yen when it was added.
    pub price_at_add: i64,
}

/// A message event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Received, opened or clicked.
    pub kind: MessageKind,
    /// The campaign (or scenario step) it belongs to.
    #[serde(default)]
    pub campaign: Option<String>,
}

/// Current state of a product in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductStatus {
    /// Current unit price in yen.
    pub price: i64,
    /// Units in stock.
    pub stock: i64,
    /// Last time stock went from 0 to more than 0.
    #[serde(default)]
    pub restocked_at: Option<DateTime<Utc>>,
}

/// Everything an evaluation needs besides the customer: `now`, the time zone, the product
/// catalogue, uploaded lists and named segments.
#[derive(Debug, Clone)]
pub struct Context {
    now: DateTime<Utc>,
    tz: FixedOffset,
    pub(crate) catalog: HashMap<String, ProductStatus>,
    pub(crate) lists: HashMap<String, HashSet<CustomerId>>,
    pub(crate) segments: HashMap<String, SegmentDefinition>,
}

impl Context {
    /// A context at `now` in Asia/Tokyo with no catalogue, lists or segments.
    #[must_use]
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            tz: tokyo(),
            catalog: HashMap::new(),
            lists: HashMap::new(),
            segments: HashMap::new(),
        }
    }

    /// Evaluation instant.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Time zone of calendar days and months.
    #[must_use]
    pub fn tz(&self) -> FixedOffset {
        self.tz
    }

    /// The same context at another instant (as-of evaluation).
    #[must_use]
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        Self { now, ..self.clone() }
    }

    /// Sets the time zone.
    #[must_use]
    pub fn with_tz(mut self, tz: FixedOffset) -> Self {
        self.tz = tz;
        self
    }

    /// Sets a product's current status.
    pub fn set_product(&mut self, product: impl Into<String>, status: ProductStatus) {
        self.catalog.insert(product.into(), status);
    }

    /// A product's status.
    #[must_use]
    pub fn product(&self, product: &str) -> Option<&ProductStatus> {
        self.catalog.get(product)
    }

    /// Supplies an uploaded list (replacing one of the same name).
    pub fn set_list(
        &mut self,
        name: impl Into<String>,
        members: impl IntoIterator<Item = CustomerId>,
    ) {
        self.lists.insert(name.into(), members.into_iter().collect());
    }

    /// Registers a named segment that other segments may refer to.
    ///
    /// # Errors
    /// [`SegmentError::Cycle`] when the new definition would make references circular, and
    /// [`SegmentError::UnknownSegment`] when it refers to an unregistered segment.
    pub fn define_segment(
        &mut self,
        name: impl Into<String>,
        def: SegmentDefinition,
    ) -> Result<(), SegmentError> {
        let name = name.into();
        check_refs(&self.segments, &name, &def)?;
        self.segments.insert(name, def);
        Ok(())
    }

    /// A named segment.
    #[must_use]
    pub fn segment(&self, name: &str) -> Option<&SegmentDefinition> {
        self.segments.get(name)
    }
}

/// Rejects references to unknown segments and cycles through `name`.
pub(crate) fn check_refs(
    known: &HashMap<String, SegmentDefinition>,
    name: &str,
    def: &SegmentDefinition,
) -> Result<(), SegmentError> {
    fn walk(
        known: &HashMap<String, SegmentDefinition>,
        root: &str,
        def: &SegmentDefinition,
        path: &mut Vec<String>,
    ) -> Result<(), SegmentError> {
        for r in def.condition().segment_refs() {
            path.push(r.to_owned());
            if r == root {
                return Err(SegmentError::Cycle(path.clone()));
            }
            let next = known.get(r).ok_or_else(|| SegmentError::UnknownSegment(r.to_owned()))?;
            walk(known, root, next, path)?;
            path.pop();
        }
        Ok(())
    }
    walk(known, name, def, &mut vec![name.to_owned()])
}
