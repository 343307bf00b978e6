//! Carts and favourites. No cart API exposes them (ecforce has none), so the host feeds events
//! from its storefront tag or webhooks, and cart-abandon and restock / price-drop triggers read
//! the result.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::CustomerId;

/// Which list an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedList {
    /// The shopping cart.
    Cart,
    /// Favourites (お気に入り).
    Favourites,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartEventKind {
    /// The SKU was added (quantity adds up for the cart).
    Added,
    /// The SKU was removed.
    Removed,
    /// The customer bought: the cart is emptied.
    Purchased,
}

/// One event from the host's storefront. Strict: the host owns this format, so unknown fields
/// are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartEvent {
    /// The customer.
    pub customer: CustomerId,
    /// Cart or favourites.
    pub list: SavedList,
    /// What happened.
    pub kind: CartEventKind,
    /// The SKU (ignored for `purchased`).
    #[serde(default)]
    pub sku: Option<String>,
    /// Quantity (default 1).
    #[serde(default = "one")]
    pub quantity: u32,
    /// When it happened.
    pub at: DateTime<Utc>,
}

fn one() -> u32 {
    1
}

/// A SKU held in a cart or favourites list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CartLine {
    /// The SKU.
    pub sku: String,
    /// Quantity (1 for favourites).
    pub quantity: u32,
    /// When it was first added.
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Lists {
    lines: BTreeMap<String, CartLine>,
    last_change: Option<DateTime<Utc>>,
}

/// Every customer's cart and favourites, built from [`CartEvent`]s the host ingests.
///
/// ```
/// use enishi::commerce::{CartBook, CartEvent, CartEventKind, SavedList};
/// use enishi::CustomerId;
/// let book = CartBook::new();
/// let t = chrono::Utc::now();
/// book.ingest(&CartEvent { customer: CustomerId::new("1").unwrap(), list: SavedList::Cart,
///     kind: CartEventKind::Added, sku: Some("SKU-1".into()), quantity: 1, at: t });
/// assert_eq!(book.abandoned(t + chrono::TimeDelta::hours(2), chrono::TimeDelta::hours(1)).len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct CartBook {
    lists: Mutex<HashMap<(CustomerId, SavedList), Lists>>,
}

impl CartBook {
    /// An empty book.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(CustomerId, SavedList), Lists>> {
        self.lists.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies one event. Events may arrive out of order only per list: an event older than
    /// the list's last change is ignored (returns `false`).
    pub fn ingest(&self, event: &CartEvent) -> bool {
        let mut lists = self.lock();
        let list = lists.entry((event.customer.clone(), event.list)).or_default();
        if list.last_change.is_some_and(|last| event.at < last) {
            return false;
        }
        list.last_change = Some(event.at);
        match (event.kind, &event.sku) {
            (CartEventKind::Purchased, _) => list.lines.clear(),
            (CartEventKind::Added, Some(sku)) => {
                let favourites = event.list == SavedList::Favourites;
                let line = list.lines.entry(sku.clone()).or_insert(CartLine {
                    sku: sku.clone(),
                    quantity: 0,
                    added_at: event.at,
                });
                line.quantity =
                    if favourites { 1 } else { line.quantity.saturating_add(event.quantity) };
            }
            (CartEventKind::Removed, Some(sku)) => {
                list.lines.remove(sku);
            }
            (_, None) => return false,
        }
        true
    }

    /// A customer's cart or favourites.
    #[must_use]
    pub fn lines(&self, customer: &CustomerId, list: SavedList) -> Vec<CartLine> {
        self.lock()
            .get(&(customer.clone(), list))
            .map(|l| l.lines.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Customers whose non-empty cart has not changed for at least `idle` at `now`
    /// (cart-abandon candidates), with their cart lines.
    #[must_use]
    pub fn abandoned(
        &self,
        now: DateTime<Utc>,
        idle: TimeDelta,
    ) -> Vec<(CustomerId, Vec<CartLine>)> {
        let mut out: Vec<_> = self
            .lock()
            .iter()
            .filter(|((_, list), l)| {
                *list == SavedList::Cart
                    && !l.lines.is_empty()
                    && l.last_change.is_some_and(|at| now - at >= idle)
            })
            .map(|((c, _), l)| (c.clone(), l.lines.values().cloned().collect()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Customers holding `sku` in a cart or favourites (restock / price-drop audiences).
    #[must_use]
    pub fn holders(&self, sku: &str) -> Vec<(CustomerId, SavedList)> {
        let mut out: Vec<_> = self
            .lock()
            .iter()
            .filter(|(_, l)| l.lines.contains_key(sku))
            .map(|((c, list), _)| (c.clone(), *list))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: CartEventKind, list: SavedList, sku: Option<&str>, at: i64) -> CartEvent {
        CartEvent {
            customer: CustomerId::new("7").unwrap(),
            list,
            kind,
            sku: sku.map(str::to_owned),
            quantity: 2,
            at: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    #[test]
    fn cart_abandon_and_purchase() {
        let book = CartBook::new();
        assert!(book.ingest(&ev(CartEventKind::Added, SavedList::Cart, Some("A"), 0)));
        assert!(book.ingest(&ev(CartEventKind::Added, SavedList::Cart, Some("A"), 10)));
        let id = CustomerId::new("7").unwrap();
        assert_eq!(book.lines(&id, SavedList::Cart)[0].quantity, 4);
        let now = DateTime::from_timestamp(3600, 0).unwrap();
        assert!(book.abandoned(now, TimeDelta::hours(1)).is_empty(), "idle 59:50 only");
        let later = DateTime::from_timestamp(3610, 0).unwrap();
        assert_eq!(book.abandoned(later, TimeDelta::hours(1)).len(), 1);
        // A stale event is ignored; a purchase empties the cart.
        assert!(!book.ingest(&ev(CartEventKind::Removed, SavedList::Cart, Some("A"), 5)));
        assert!(book.ingest(&ev(CartEventKind::Purchased, SavedList::Cart, None, 20)));
        assert!(book.abandoned(later, TimeDelta::hours(1)).is_empty());
    }

    #[test]
    fn favourites_are_holders_and_events_are_strict() {
        let book = CartBook::new();
        book.ingest(&ev(CartEventKind::Added, SavedList::Favourites, Some("B"), 0));
        assert_eq!(book.holders("B").len(), 1);
        assert!(book.holders("A").is_empty());
        let bad = r#"{"customer":"1","list":"cart","kind":"added","sku":"A","at":"2026-01-01T00:00:00Z","extra":1}"#;
        assert!(serde_json::from_str::<CartEvent>(bad).is_err());
    }
}
