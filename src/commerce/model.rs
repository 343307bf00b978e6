//! The common model every backend maps its data onto. Almost every attribute is optional
//! because some cart does not have it; times are UTC instants, money is integer minor units.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{CustomerId, LineUserId};

/// An ISO 4217 currency code (three upper-case ASCII letters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Japanese yen (no minor unit: amounts are whole yen).
    pub const JPY: Self = Self(*b"JPY");
    /// US dollar (minor unit: cents).
    pub const USD: Self = Self(*b"USD");

    /// Validates a code such as `"JPY"`.
    ///
    /// # Errors
    /// When `code` is not three upper-case ASCII letters.
    pub fn new(code: &str) -> Result<Self, String> {
        match code.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(format!("not an ISO 4217 currency code: {code:?}")),
        }
    }

    /// The code as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

/// An amount of money in the currency's minor unit (yen for JPY, cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units (may be negative, e.g. an adjustment).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in minor units.
    #[must_use]
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Whole yen.
    #[must_use]
    pub fn jpy(yen: i64) -> Self {
        Self::new(yen, Currency::JPY)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

/// A position in a backend's change feed: the last record read, in the order
/// `(updated_at, id)`. Reads "since" a cursor return records strictly after it.
///
/// IDs made only of ASCII digits order numerically (ecforce's IDs are numbers sent as strings);
/// other IDs order byte-wise. Backends must list records in this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// When the last record read was updated.
    pub updated_at: DateTime<Utc>,
    /// The last record's ID.
    pub id: String,
}

impl Cursor {
    /// The cursor just after a record.
    #[must_use]
    pub fn new(updated_at: DateTime<Utc>, id: impl Into<String>) -> Self {
        Self { updated_at, id: id.into() }
    }

    /// A cursor before every record updated at or after `instant`.
    #[must_use]
    pub fn before(instant: DateTime<Utc>) -> Self {
        Self { updated_at: instant, id: String::new() }
    }
}

/// Compares two record IDs in change-feed order (numeric IDs numerically).
#[must_use]
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if numeric(a) && numeric(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

impl Ord for Cursor {
    fn cmp(&self, other: &Self) -> Ordering {
        self.updated_at.cmp(&other.updated_at).then_with(|| compare_ids(&self.id, &other.id))
    }
}

impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A record in a change feed: it has an ID and an update time.
pub trait Record {
    /// The record's ID as the backend gives it.
    fn record_id(&self) -> &str;
    /// When the record last changed.
    fn updated_at(&self) -> DateTime<Utc>;
    /// The record's position in the change feed.
    fn cursor(&self) -> Cursor {
        Cursor::new(self.updated_at(), self.record_id())
    }
}

/// A code plus its display label (sex, rank).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coded {
    /// The backend's code or ID, when it gives one.
    pub code: Option<String>,
    /// The display label, when it gives one.
    pub label: Option<String>,
}

/// A shop customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Customer {
    /// The backend's customer ID.
    pub id: CustomerId,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// Sex (code and label).
    pub sex: Option<Coded>,
    /// Membership rank (ID and name).
    pub rank: Option<Coded>,
    /// Point balance.
    pub points: Option<i64>,
    /// Total spend as the backend reports it.
    pub total_spent: Option<Money>,
    /// Number of orders as the backend reports it.
    pub order_count: Option<u32>,
    /// First completed order.
    pub first_order_at: Option<DateTime<Utc>>,
    /// Last completed order.
    pub last_order_at: Option<DateTime<Utc>>,
    /// Marketing opt-in.
    pub opt_in: Option<bool>,
    /// Labels / tags.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The LINE user linked on the backend's record.
    pub line_user_id: Option<LineUserId>,
    /// When the LINE user was linked.
    pub line_linked_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last updated (the change-feed key).
    pub updated_at: DateTime<Utc>,
    /// Deleted (soft delete), when the backend reports deletions.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Customer {
    /// A customer with only an ID and update time; set the other fields directly.
    #[must_use]
    pub fn new(id: CustomerId, updated_at: DateTime<Utc>) -> Self {
        Self {
            id,
            email: None,
            name: None,
            birth_date: None,
            sex: None,
            rank: None,
            points: None,
            total_spent: None,
            order_count: None,
            first_order_at: None,
            last_order_at: None,
            opt_in: None,
            labels: Vec::new(),
            line_user_id: None,
            line_linked_at: None,
            created_at: None,
            updated_at,
            deleted_at: None,
        }
    }
}

impl Record for Customer {
    fn record_id(&self) -> &str {
        self.id.as_str()
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// An order's state, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OrderState {
    /// Placed, not yet completed.
    Pending,
    /// Completed (confirmed / shipped).
    Completed,
    /// Canceled.
    Canceled,
    /// A state this crate does not know (the raw value).
    Other(String),
}

/// One line of an order (or of a subscription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineItem {
    /// The variant's SKU.
    pub sku: Option<String>,
    /// The product's ID or code.
    pub product: Option<String>,
    /// The product's name.
    pub name: Option<String>,
    /// Quantity.
    pub quantity: u32,
    /// Unit price.
    pub unit_price: Option<Money>,
    /// The subscription this line belongs to.
    pub subscription_id: Option<String>,
}

impl LineItem {
    /// A line with a SKU and quantity.
    #[must_use]
    pub fn new(sku: Option<String>, quantity: u32) -> Self {
        Self { sku, product: None, name: None, quantity, unit_price: None, subscription_id: None }
    }
}

/// An order with its line items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Order {
    /// The backend's order ID.
    pub id: String,
    /// The customer (absent on backends without customer accounts).
    pub customer_id: Option<CustomerId>,
    /// State, normalized.
    pub state: OrderState,
    /// Total.
    pub total: Option<Money>,
    /// When the order was placed.
    pub ordered_at: Option<DateTime<Utc>>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// The subscription that produced the order.
    pub subscription_id: Option<String>,
    /// Line items.
    #[serde(default)]
    pub items: Vec<LineItem>,
    /// Last updated (the change-feed key).
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// An order with an ID, state and update time; set the other fields directly.
    #[must_use]
    pub fn new(id: impl Into<String>, state: OrderState, updated_at: DateTime<Utc>) -> Self {
        Self {
            id: id.into(),
            customer_id: None,
            state,
            total: None,
            ordered_at: None,
            completed_at: None,
            subscription_id: None,
            items: Vec::new(),
            updated_at,
        }
    }
}

impl Record for Order {
    fn record_id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// A subscription (定期) contract's state, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SubscriptionState {
    /// Delivering.
    Active,
    /// Paused (ecforce `suspend`).
    Paused,
    /// Canceled.
    Canceled,
    /// A state this crate does not know (the raw value).
    Other(String),
}

/// A subscription contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subscription {
    /// The backend's subscription ID.
    pub id: String,
    /// The customer (ecforce gives the customer *number*; see the adapter's docs).
    pub customer: Option<String>,
    /// State, normalized.
    pub state: SubscriptionState,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Paused.
    pub paused_at: Option<DateTime<Utc>>,
    /// Canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Why it was canceled.
    pub cancel_reason: Option<String>,
    /// Next scheduled delivery.
    pub next_delivery_at: Option<DateTime<Utc>>,
    /// Deliveries so far.
    pub deliveries: Option<u32>,
    /// The delivery cycle as the backend words it.
    pub cycle: Option<String>,
    /// Items.
    #[serde(default)]
    pub items: Vec<LineItem>,
    /// Last updated (the change-feed key).
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// A subscription with an ID, state and update time; set the other fields directly.
    #[must_use]
    pub fn new(id: impl Into<String>, state: SubscriptionState, updated_at: DateTime<Utc>) -> Self {
        Self {
            id: id.into(),
            customer: None,
            state,
            started_at: None,
            paused_at: None,
            canceled_at: None,
            cancel_reason: None,
            next_delivery_at: None,
            deliveries: None,
            cycle: None,
            items: Vec::new(),
            updated_at,
        }
    }
}

impl Record for Subscription {
    fn record_id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// A product's variant (the sellable SKU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// The variant's ID.
    pub id: String,
    /// SKU.
    pub sku: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Price.
    pub price: Option<Money>,
    /// Stock on hand (`None`: unknown or unlimited).
    pub stock: Option<i64>,
}

impl Variant {
    /// A variant with an ID and SKU.
    #[must_use]
    pub fn new(id: impl Into<String>, sku: Option<String>) -> Self {
        Self { id: id.into(), sku, name: None, price: None, stock: None }
    }
}

/// A product with its variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Product {
    /// The product's ID.
    pub id: String,
    /// Product code.
    pub code: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Price (the master variant's).
    pub price: Option<Money>,
    /// Whether it is sold as a subscription.
    pub is_recurring: Option<bool>,
    /// Variants.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Last updated (the change-feed key).
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// A product with an ID and update time.
    #[must_use]
    pub fn new(id: impl Into<String>, updated_at: DateTime<Utc>) -> Self {
        Self {
            id: id.into(),
            code: None,
            name: None,
            price: None,
            is_recurring: None,
            variants: Vec::new(),
            updated_at,
        }
    }
}

impl Record for Product {
    fn record_id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_order_numerically() {
        assert_eq!(compare_ids("9", "10"), Ordering::Less);
        assert_eq!(compare_ids("010", "9"), Ordering::Greater);
        assert_eq!(compare_ids("a", "b"), Ordering::Less);
        let t = chrono::DateTime::UNIX_EPOCH;
        assert!(Cursor::before(t) < Cursor::new(t, "1"));
    }

    #[test]
    fn currency_is_validated() {
        assert_eq!(Currency::new("JPY"), Ok(Currency::JPY));
        assert!(Currency::new("jpy").is_err());
        assert!(Currency::new("JPYY").is_err());
        assert_eq!(Money::jpy(799).to_string(), "799 JPY");
    }
}
