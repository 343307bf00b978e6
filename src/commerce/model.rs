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
pub(crate) fn compare_ids(a: &str, b: &str) -> Ordering {
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
    /// The shop's own customer number when it differs from the ID (ecforce: a hex string such
    /// as `02ae6cdbef`, which subscriptions refer to).
    #[serde(default)]
    pub number: Option<String>,
    /// The customer withdrew from the shop (ecforce: 退会). Never messaged.
    #[serde(default)]
    pub withdrawn: bool,
    /// The shop blacklisted the customer. Never messaged.
    #[serde(default)]
    pub blacklisted: bool,
    /// The customer asked for no e-mail (ecforce `mail_delivery_stop`). It stops e-mail, not
    /// LINE: kept as a fact, it does not exclude the customer.
    #[serde(default)]
    pub email_stopped: Option<bool>,
    /// Prefecture (ecforce: from the billing address).
    #[serde(default)]
    pub prefecture: Option<String>,
    /// When the customer's points expire.
    #[serde(default)]
    pub points_expire_at: Option<DateTime<Utc>>,
    /// The phone number as the shop stores it (ecforce: a `mobile` attribute if the shop has
    /// one, else the billing address's `full_tel` or `tel01`-`tel02`-`tel03`, else `tel`);
    /// checked and normalised to E.164 only when a message is routed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Why a customer must not be targeted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exclusion {
    /// Deleted in the shop.
    Deleted,
    /// Withdrew from the shop (退会).
    Withdrawn,
    /// Blacklisted by the shop.
    Blacklisted,
}

impl Exclusion {
    /// A short name (`deleted`, `withdrawn`, `blacklisted`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Withdrawn => "withdrawn",
            Self::Blacklisted => "blacklisted",
        }
    }
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
            number: None,
            withdrawn: false,
            blacklisted: false,
            email_stopped: None,
            prefecture: None,
            points_expire_at: None,
            phone: None,
        }
    }

    /// Why this customer must not be targeted (deleted, withdrawn or blacklisted), if so.
    #[must_use]
    pub fn exclusion(&self) -> Option<Exclusion> {
        if self.deleted_at.is_some() {
            Some(Exclusion::Deleted)
        } else if self.withdrawn {
            Some(Exclusion::Withdrawn)
        } else if self.blacklisted {
            Some(Exclusion::Blacklisted)
        } else {
            None
        }
    }

    /// Whether segments and sends may include this customer (no [`exclusion`](Self::exclusion)).
    #[must_use]
    pub fn is_targetable(&self) -> bool {
        self.exclusion().is_none()
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
    /// The product's category names.
    #[serde(default)]
    pub categories: Vec<String>,
}

impl LineItem {
    /// A line with a SKU and quantity.
    #[must_use]
    pub fn new(sku: Option<String>, quantity: u32) -> Self {
        Self {
            sku,
            product: None,
            name: None,
            quantity,
            unit_price: None,
            subscription_id: None,
            categories: Vec::new(),
        }
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
    /// The backend's payment state as it words it (ecforce `payment_state`: `completed`,
    /// `voided`, `auth_failed`, ...).
    #[serde(default)]
    pub payment_state: Option<String>,
    /// Whether the payment went through, as the adapter's mapping reads `payment_state`
    /// (`None`: unknown, taken as paid).
    #[serde(default)]
    pub paid: Option<bool>,
    /// The customer's nth order (ecforce `times`; 2 is the F2 conversion).
    #[serde(default)]
    pub nth: Option<u32>,
    /// Shipped.
    #[serde(default)]
    pub shipped_at: Option<DateTime<Utc>>,
    /// Delivered.
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Coupon codes or names used on the order.
    #[serde(default)]
    pub coupons: Vec<String>,
    /// Line items the backend referred to but did not send (the order is kept; see the page's
    /// warnings).
    #[serde(default)]
    pub items_missing: u32,
}

impl Order {
    /// Whether the order counts as a purchase: not canceled, and not known to be unpaid
    /// (voided, failed authorisation, ...).
    #[must_use]
    pub fn is_purchase(&self) -> bool {
        self.state != OrderState::Canceled && self.paid != Some(false)
    }

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
            payment_state: None,
            paid: None,
            nth: None,
            shipped_at: None,
            delivered_at: None,
            coupons: Vec::new(),
            items_missing: 0,
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
    /// The customer's ID (ecforce: from `relationships.customer`, requested with
    /// `include=customer`).
    pub customer: Option<String>,
    /// The customer's shop number (ecforce `customer_number`), joined on
    /// [`Customer::number`] when the ID is missing.
    #[serde(default)]
    pub customer_number: Option<String>,
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
    /// The customer skips the next scheduled delivery.
    #[serde(default)]
    pub skip_next_delivery: Option<bool>,
    /// Orders the subscription has produced (ecforce `orders_count`).
    #[serde(default)]
    pub orders_count: Option<u32>,
    /// Orders left under a fixed-count contract (回数縛り).
    #[serde(default)]
    pub remaining_orders: Option<u32>,
    /// Why it was paused, as the shop words it.
    #[serde(default)]
    pub suspend_reason: Option<String>,
    /// The shop's pause-reason IDs.
    #[serde(default)]
    pub suspend_reason_ids: Vec<String>,
    /// The shop's cancel-reason IDs.
    #[serde(default)]
    pub cancel_reason_ids: Vec<String>,
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
            customer_number: None,
            skip_next_delivery: None,
            orders_count: None,
            remaining_orders: None,
            suspend_reason: None,
            suspend_reason_ids: Vec::new(),
            cancel_reason_ids: Vec::new(),
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
    /// Whether it is on sale.
    #[serde(default)]
    pub for_sale: Option<bool>,
    /// An image URL (ecforce: the thumbnail), for carousels and Flex messages.
    #[serde(default)]
    pub image_url: Option<String>,
    /// Category names.
    #[serde(default)]
    pub categories: Vec<String>,
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
            for_sale: None,
            image_url: None,
            categories: Vec::new(),
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
