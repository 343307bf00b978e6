//! Triggers: what starts a scenario for a customer, as occurrences derived from the customer's
//! facts alone (so every worker, at any tick, derives the same occurrence keys).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::state::{CustomerState, ProductChange, ProductEvent};
use super::step::Delay;
use crate::segment::{OrderFact, OrderKind, SavedItem, SubscriptionState};

/// What starts a scenario for a customer. Each trigger yields *occurrences*: an anchor instant
/// the steps are timed from and a key that names the occurrence in the batch ID
/// `<scenario>/<step>/<customer>/<occurrence>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Trigger {
    /// The cart holds items. Anchor: the last cart change; key: its Unix seconds. Built-in
    /// exit: any order placed after the anchor (`ordered`). A newer cart change replaces the
    /// occurrence; an emptied cart ends it.
    CartAbandoned,
    /// An order was placed. Anchor: the order; key: the order ID.
    OrderPlaced {
        /// Only orders containing one of these products (any order if empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        products: Vec<String>,
        /// Only one-off or only subscription orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<OrderKind>,
        /// Only the customer's n-th order (1 = the first order, for the F2 series).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nth: Option<u32>,
        /// Only the latest matching order (a newer one replaces the occurrence).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        latest_only: bool,
    },
    /// A subscription was canceled. Anchor: `canceled_at`; key: the subscription ID.
    SubscriptionCanceled {
        /// Only these cancel reasons (any if empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<String>,
    },
    /// An active subscription has completed `deliveries` deliveries: the next one is due.
    /// Anchor: the next scheduled delivery (use negative delays to send before it); key:
    /// `<subscription>.d<deliveries>`. The occurrence ends when the delivery happens or the
    /// subscription stops.
    SubscriptionDelivery {
        /// Deliveries completed (2 = the 3rd delivery is next, the churn point).
        deliveries: u32,
    },
    /// An active subscription reached `months` months. Anchor: the start plus that many
    /// local calendar months; key: `<subscription>.m<months>`.
    SubscriptionMilestone {
        /// The milestones, in months.
        months: Vec<u32>,
        /// Only subscriptions to these products (any if empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        products: Vec<String>,
    },
    /// The customer's birthday month begins (local midnight of the 1st). Key: the year, so
    /// once a year.
    BirthdayMonth,
    /// After the latest order, the customer's spend over `window` is within `within` yen of
    /// the next rank's threshold. Anchor: the latest order; key: its ID.
    NextRank {
        /// The ranks, by threshold.
        ranks: Vec<Rank>,
        /// The spend window (e.g. `365d`).
        window: Delay,
        /// Send when `0 < threshold − spend ≤ within`.
        within: i64,
    },
    /// A product in the customer's cart or favourites was restocked, got cheaper than when
    /// it was saved, or is down to its last unit. Anchor: the product change; key:
    /// `<product>@<unix seconds>`.
    ProductChange {
        /// Which change.
        change: ProductChange,
        /// Where the product must be saved.
        #[serde(default)]
        source: SavedSource,
    },
    /// The customer linked their LINE account. Anchor: `linked_at`; key: `first` when
    /// `first_only` (once per customer, ever), else the Unix seconds of the link.
    Linked {
        /// Only the first link ever.
        #[serde(default)]
        first_only: bool,
    },
    /// A LINE user who is not linked to any customer followed the account. Anchor: the
    /// follow; key: its Unix seconds. Recipients are `line:<user ID>` pseudo customers.
    /// Built-in exit: the friend links (`linked`).
    FollowedUnlinked,
    /// The customer registered. Anchor: `registered_at`; key: `registered`.
    Registered,
    /// The customer entered a segment (DSL). Anchor: the entry instant (exact when time alone
    /// made the customer enter: predicted with `next_change`); key: the local entry date.
    /// Built-in exit: the customer left the segment (`left_segment`).
    SegmentEntry {
        /// The segment, in the DSL.
        segment: String,
    },
    /// Fixed instants (a launch, a sale). Key: the local `YYYYMMDD-HHMM`.
    Date {
        /// The instants.
        at: Vec<DateTime<FixedOffset>>,
    },
}

/// A membership rank and the spend that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rank {
    /// The rank's name, shown in messages.
    pub name: String,
    /// The spend (yen) that reaches it.
    pub threshold: i64,
}

/// Where a saved product sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SavedSource {
    /// The cart.
    Cart,
    /// The favourites.
    Favourites,
    /// Either.
    #[default]
    Saved,
}

impl Trigger {
    /// The trigger's name in messages (`cart_abandoned`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CartAbandoned => "cart_abandoned",
            Self::OrderPlaced { .. } => "order_placed",
            Self::SubscriptionCanceled { .. } => "subscription_canceled",
            Self::SubscriptionDelivery { .. } => "subscription_delivery",
            Self::SubscriptionMilestone { .. } => "subscription_milestone",
            Self::BirthdayMonth => "birthday_month",
            Self::NextRank { .. } => "next_rank",
            Self::ProductChange { .. } => "product_change",
            Self::Linked { .. } => "linked",
            Self::FollowedUnlinked => "followed_unlinked",
            Self::Registered => "registered",
            Self::SegmentEntry { .. } => "segment_entry",
            Self::Date { .. } => "date",
        }
    }

    /// The template variables this trigger provides (besides [`COMMON_VARIABLES`] and
    /// `attr.<name>`).
    #[must_use]
    pub fn variables(&self) -> &'static [&'static str] {
        match self {
            Self::CartAbandoned => &["cart_count", "cart_items", "cart_total"],
            Self::OrderPlaced { .. } => &["order_id", "order_total", "products"],
            Self::SubscriptionCanceled { .. } => &["subscription_id", "product", "cancel_reason"],
            Self::SubscriptionDelivery { .. } => {
                &["subscription_id", "product", "deliveries", "next_delivery_date"]
            }
            Self::SubscriptionMilestone { .. } => &["subscription_id", "product", "months"],
            Self::BirthdayMonth => &["month"],
            Self::NextRank { .. } => &["next_rank", "amount_to_next_rank", "spend"],
            Self::ProductChange { .. } => &["product", "price", "old_price"],
            Self::Linked { .. } | Self::Registered | Self::SegmentEntry { .. } => &[],
            Self::FollowedUnlinked => &[],
            Self::Date { .. } => &["date"],
        }
    }
}

/// Variables every scenario offers: `customer_id` and `name` (the `name` attribute, or
/// `お客様`).
pub const COMMON_VARIABLES: &[&str] = &["customer_id", "name"];

/// One occurrence of a trigger for one customer.
#[derive(Debug, Clone)]
pub(crate) struct Occurrence {
    pub(crate) key: String,
    pub(crate) anchor: DateTime<Utc>,
    pub(crate) vars: Vec<(&'static str, String)>,
    /// A built-in exit that holds now (`ordered`, ...).
    pub(crate) exit: Option<&'static str>,
    /// A built-in condition that fails now (`next_rank`: not within reach).
    pub(crate) holds: bool,
}

impl Occurrence {
    fn new(key: String, anchor: DateTime<Utc>) -> Self {
        Self { key, anchor, vars: Vec::new(), exit: None, holds: true }
    }

    fn var(mut self, name: &'static str, value: impl ToString) -> Self {
        self.vars.push((name, value.to_string()));
        self
    }
}

/// The shop-wide facts triggers read besides the customer.
#[derive(Debug)]
pub(crate) struct World<'a> {
    pub(crate) tz: FixedOffset,
    pub(crate) product_events: &'a HashMap<String, Vec<ProductEvent>>,
}

fn local_date(t: DateTime<Utc>, tz: FixedOffset) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

fn local_midnight(d: NaiveDate, tz: FixedOffset) -> Option<DateTime<Utc>> {
    d.and_hms_opt(0, 0, 0)?.and_local_timezone(tz).single().map(|t| t.with_timezone(&Utc))
}

/// Occurrences of `trigger` for a customer at `now`. Facts dated after `now` have not
/// happened yet. [`Trigger::SegmentEntry`] and [`Trigger::FollowedUnlinked`] are handled by
/// the state (they need memory or a friend record).
pub(crate) fn occurrences(
    trigger: &Trigger,
    c: &CustomerState,
    world: &World<'_>,
    now: DateTime<Utc>,
) -> Vec<Occurrence> {
    let facts = Facts::new(c, world, now);
    match trigger {
        Trigger::CartAbandoned => facts.cart_abandoned().into_iter().collect(),
        Trigger::OrderPlaced { products, kind, nth, latest_only } => {
            facts.orders_placed(products, *kind, *nth, *latest_only)
        }
        Trigger::SubscriptionCanceled { reasons } => facts.subscriptions_canceled(reasons),
        Trigger::SubscriptionDelivery { deliveries } => facts.deliveries_due(*deliveries),
        Trigger::SubscriptionMilestone { months, products } => facts.milestones(months, products),
        Trigger::BirthdayMonth => facts.birthday_months(),
        Trigger::NextRank { ranks, window, within } => {
            facts.next_rank(ranks, *window, *within).into_iter().collect()
        }
        Trigger::ProductChange { change, source } => facts.product_changes(*change, *source),
        Trigger::Linked { first_only } => facts.linked(*first_only).into_iter().collect(),
        Trigger::Registered => facts
            .at_or_before(c.facts.registered_at)
            .map(|at| Occurrence::new("registered".to_owned(), at))
            .into_iter()
            .collect(),
        Trigger::Date { at } => at
            .iter()
            .map(|t| {
                let key = t.format("%Y%m%d-%H%M").to_string();
                Occurrence::new(key, t.with_timezone(&Utc)).var("date", t.format("%Y-%m-%d"))
            })
            .collect(),
        Trigger::SegmentEntry { .. } | Trigger::FollowedUnlinked => Vec::new(),
    }
}

/// One customer's facts as of `now`, read by each trigger.
struct Facts<'a> {
    c: &'a CustomerState,
    world: &'a World<'a>,
    now: DateTime<Utc>,
    /// Orders placed by `now`, oldest first.
    orders: Vec<&'a OrderFact>,
}

impl<'a> Facts<'a> {
    fn new(c: &'a CustomerState, world: &'a World<'a>, now: DateTime<Utc>) -> Self {
        let mut orders: Vec<_> = c.facts.orders.iter().filter(|o| o.placed_at <= now).collect();
        orders.sort_by_key(|o| o.placed_at);
        Self { c, world, now, orders }
    }

    /// `t`, if it has happened by `now`.
    fn at_or_before(&self, t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        t.filter(|t| *t <= self.now)
    }

    /// The cart as of its last change, ending when an order follows it.
    fn cart_abandoned(&self) -> Option<Occurrence> {
        let items: Vec<_> = self.c.facts.cart.iter().filter(|i| i.added_at <= self.now).collect();
        let last_add = items.iter().map(|i| i.added_at).max();
        let anchor = match (self.c.cart_updated_at, last_add) {
            (Some(u), Some(a)) => Some(u.max(a)),
            (u, a) => u.or(a),
        };
        let anchor = anchor.filter(|a| *a <= self.now && !items.is_empty())?;
        let total: i64 = items.iter().map(|i| i.price_at_add).sum();
        let names: Vec<&str> = items.iter().map(|i| i.product.as_str()).collect();
        let mut o = Occurrence::new(anchor.timestamp().to_string(), anchor)
            .var("cart_count", items.len())
            .var("cart_items", names.join("、"))
            .var("cart_total", total);
        if self.orders.iter().any(|o| o.placed_at > anchor) {
            o.exit = Some("ordered");
        }
        Some(o)
    }

    fn orders_placed(
        &self,
        products: &[String],
        kind: Option<OrderKind>,
        nth: Option<u32>,
        latest_only: bool,
    ) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for (i, o) in self.orders.iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if nth.is_some_and(|k| k != n)
                || kind.is_some_and(|k| k != o.kind)
                || (!products.is_empty()
                    && !o.items.iter().any(|it| products.contains(&it.product)))
            {
                continue;
            }
            let names: Vec<&str> = o.items.iter().map(|it| it.product.as_str()).collect();
            out.push(
                Occurrence::new(o.id.clone(), o.placed_at)
                    .var("order_id", &o.id)
                    .var("order_total", o.amount)
                    .var("products", names.join("、")),
            );
        }
        if latest_only && out.len() > 1 {
            out.drain(..out.len() - 1);
        }
        out
    }

    fn subscriptions_canceled(&self, reasons: &[String]) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for s in &self.c.facts.subscriptions {
            let Some(at) = self.at_or_before(s.canceled_at) else { continue };
            let reason = s.cancel_reason.clone().unwrap_or_default();
            if s.state != SubscriptionState::Canceled
                || (!reasons.is_empty() && !reasons.contains(&reason))
            {
                continue;
            }
            out.push(
                Occurrence::new(s.id.clone(), at)
                    .var("subscription_id", &s.id)
                    .var("product", s.product.clone().unwrap_or_default())
                    .var("cancel_reason", reason),
            );
        }
        out
    }

    /// Active subscriptions with exactly `deliveries` done, anchored at the next delivery.
    fn deliveries_due(&self, deliveries: u32) -> Vec<Occurrence> {
        let tz = self.world.tz;
        self.c
            .facts
            .subscriptions
            .iter()
            .filter(|s| {
                s.state == SubscriptionState::Active
                    && s.deliveries == deliveries
                    && s.started_at <= self.now
            })
            .filter_map(|s| {
                let next = s.next_delivery_at?;
                Some(
                    Occurrence::new(format!("{}.d{deliveries}", s.id), next)
                        .var("subscription_id", &s.id)
                        .var("product", s.product.clone().unwrap_or_default())
                        .var("deliveries", s.deliveries)
                        .var("next_delivery_date", local_date(next, tz)),
                )
            })
            .collect()
    }

    /// Every listed month of every active subscription, in local calendar months.
    fn milestones(&self, months: &[u32], products: &[String]) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for s in &self.c.facts.subscriptions {
            let product = s.product.clone().unwrap_or_default();
            if s.state != SubscriptionState::Active
                || s.started_at > self.now
                || (!products.is_empty() && !products.contains(&product))
            {
                continue;
            }
            let start = s.started_at.with_timezone(&self.world.tz);
            for &m in months {
                let Some(anchor) = start.checked_add_months(Months::new(m)) else { continue };
                out.push(
                    Occurrence::new(format!("{}.m{m}", s.id), anchor.with_timezone(&Utc))
                        .var("subscription_id", &s.id)
                        .var("product", &product)
                        .var("months", m),
                );
            }
        }
        out
    }

    fn birthday_months(&self) -> Vec<Occurrence> {
        let Some(birth) = self.c.facts.birth_date else { return Vec::new() };
        let tz = self.world.tz;
        let year = local_date(self.now, tz).year();
        // Next year's occurrence too, so the state knows when to wake up.
        [year - 1, year, year + 1]
            .into_iter()
            .filter_map(|y| {
                let anchor = local_midnight(NaiveDate::from_ymd_opt(y, birth.month(), 1)?, tz)?;
                Some(Occurrence::new(y.to_string(), anchor).var("month", birth.month()))
            })
            .collect()
    }

    /// The spend over `window` against the next rank; holds only within `within` of it.
    fn next_rank(&self, ranks: &[Rank], window: Delay, within: i64) -> Option<Occurrence> {
        let last = self.orders.last()?;
        let from = self.now - Duration::seconds(window.as_secs());
        let spend: i64 = self
            .orders
            .iter()
            .filter(|o| o.placed_at > from)
            .map(|o| o.amount)
            .fold(0i64, i64::saturating_add);
        let next = ranks.iter().filter(|r| r.threshold > spend).min_by_key(|r| r.threshold);
        let mut o = Occurrence::new(last.id.clone(), last.placed_at).var("spend", spend);
        match next {
            Some(r) if r.threshold - spend <= within => {
                o = o.var("next_rank", &r.name).var("amount_to_next_rank", r.threshold - spend);
            }
            _ => o.holds = false,
        }
        Some(o)
    }

    /// Changes of saved products after they were saved (a price drop: below the saved price).
    fn product_changes(&self, change: ProductChange, source: SavedSource) -> Vec<Occurrence> {
        let f = &self.c.facts;
        let lists: &[&[SavedItem]] = match source {
            SavedSource::Cart => &[&f.cart],
            SavedSource::Favourites => &[&f.favourites],
            SavedSource::Saved => &[&f.cart, &f.favourites],
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for item in lists.iter().flat_map(|l| l.iter()) {
            let Some(events) = self.world.product_events.get(&item.product) else { continue };
            for e in events {
                if e.change != change
                    || e.at > self.now
                    || e.at < item.added_at
                    || (change == ProductChange::PriceDropped && e.price >= item.price_at_add)
                {
                    continue;
                }
                let key = format!("{}@{}", item.product, e.at.timestamp());
                if seen.insert(key.clone()) {
                    out.push(
                        Occurrence::new(key, e.at)
                            .var("product", &item.product)
                            .var("price", e.price)
                            .var("old_price", item.price_at_add),
                    );
                }
            }
        }
        out
    }

    fn linked(&self, first_only: bool) -> Option<Occurrence> {
        let line = &self.c.facts.line;
        let at = self.at_or_before(line.linked_at.filter(|_| line.linked))?;
        let key = if first_only { "first".to_owned() } else { at.timestamp().to_string() };
        Some(Occurrence::new(key, at))
    }
}

/// The occurrence of a segment entry at `entered`.
pub(crate) fn entry_occurrence(entered: DateTime<Utc>, tz: FixedOffset) -> Occurrence {
    Occurrence::new(entered.with_timezone(&tz).format("%Y%m%d").to_string(), entered)
}

/// The occurrence of an unlinked friend's follow.
pub(crate) fn follow_occurrence(followed: DateTime<Utc>) -> Occurrence {
    Occurrence::new(followed.timestamp().to_string(), followed)
}
