//! What the scenarios see: customers' facts, unlinked LINE friends, product changes, and what
//! was already sent or decided.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::definition::{Scenario, ScenarioSet};
use super::tick::{SendPolicy, Unrestricted};
use crate::campaign::{BatchRecord, SendHistory, SendRecord};
use crate::segment::{
    CustomerFacts, Friendship, LineStatus, OrderFact, ProductStatus, SavedItem, SubscriptionFact,
};
use crate::{CustomerId, LineUserId};

/// One customer as the scenarios see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CustomerState {
    /// The segment engine's facts (orders, cart, subscriptions, birthday, LINE state, ...).
    pub facts: CustomerFacts,
    /// The linked LINE user, if any.
    pub line_user: Option<LineUserId>,
    /// The last cart change (an item removed counts too); defaults to the newest item's
    /// `added_at`.
    pub cart_updated_at: Option<DateTime<Utc>>,
}

impl CustomerState {
    /// A customer from facts and the linked LINE user.
    #[must_use]
    pub fn new(facts: CustomerFacts, line_user: Option<LineUserId>) -> Self {
        Self { facts, line_user, cart_updated_at: None }
    }

    /// Linked, with a LINE user, and not blocking the account.
    #[must_use]
    pub fn reachable(&self) -> bool {
        self.line_user.is_some()
            && self.facts.line.linked
            && self.facts.line.friendship != Friendship::Blocked
    }
}

/// A LINE friend who is not linked to a customer (the link invitation's audience).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Friend {
    /// The LINE user.
    pub line_user: LineUserId,
    /// The last follow.
    pub followed_at: DateTime<Utc>,
    /// Still following (no unfollow since).
    pub following: bool,
    /// Linked since.
    pub linked: bool,
}

/// A product change that can trigger messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProductChange {
    /// Stock went from 0 to more than 0.
    Restocked,
    /// The price went down.
    PriceDropped,
    /// Stock went down to exactly 1.
    LastOne,
}

/// A product change at an instant, derived from successive [`ScenarioInput::Product`]
/// statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProductEvent {
    /// The product.
    pub product: String,
    /// What changed.
    pub change: ProductChange,
    /// When.
    pub at: DateTime<Utc>,
    /// The price after the change.
    pub price: i64,
}

/// Something that happened, fed to [`ScenarioState::apply`] in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScenarioInput {
    /// Adds a customer or replaces everything known about one.
    Customer {
        /// The facts.
        facts: Box<CustomerFacts>,
        /// The linked LINE user.
        line_user: Option<LineUserId>,
    },
    /// The cart now holds `items` (empty: emptied).
    CartUpdated {
        /// The customer.
        customer: CustomerId,
        /// When.
        at: DateTime<Utc>,
        /// The cart's lines.
        items: Vec<SavedItem>,
    },
    /// The favourites now hold `items`.
    FavouritesUpdated {
        /// The customer.
        customer: CustomerId,
        /// The favourites.
        items: Vec<SavedItem>,
    },
    /// An order was placed (confirmed).
    OrderPlaced {
        /// The customer.
        customer: CustomerId,
        /// The order.
        order: OrderFact,
    },
    /// A subscription was created or changed (replaced by ID): a delivery, a cancellation
    /// with its reason, ...
    SubscriptionUpdated {
        /// The customer.
        customer: CustomerId,
        /// The subscription's new state.
        subscription: SubscriptionFact,
    },
    /// A product's new price and stock; restocks, price drops and "last one" are derived.
    Product {
        /// The product.
        product: String,
        /// When.
        at: DateTime<Utc>,
        /// Its new status.
        status: ProductStatus,
    },
    /// A customer linked a LINE user.
    Linked {
        /// The customer.
        customer: CustomerId,
        /// The LINE user.
        line_user: LineUserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A LINE user followed (or re-followed) the account.
    Followed {
        /// The LINE user.
        line_user: LineUserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A LINE user blocked the account.
    Unfollowed {
        /// The LINE user.
        line_user: LineUserId,
    },
}

/// An input named a customer the state does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario input names unknown customer {0}")]
#[non_exhaustive]
pub struct UnknownCustomer(pub CustomerId);

/// Who a step goes to: a customer, or an unlinked LINE friend.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Who {
    Customer(CustomerId),
    Friend(LineUserId),
}

/// Segment-entry memory of one (scenario, customer).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry {
    pub(crate) member: bool,
    pub(crate) entered: Option<DateTime<Utc>>,
    pub(crate) predicted: Option<DateTime<Utc>>,
}

/// What the state decided or learned from the journal: the tick's only mutable memory.
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// Batch IDs planned, sent or skipped for good.
    decided: HashSet<String>,
    /// (scenario, who, occurrence) that exited.
    ended: HashSet<(usize, Who, String)>,
    entries: HashMap<(usize, CustomerId), Entry>,
    /// Send instants per LINE user, for the frequency cap.
    sends: SendHistory,
}

impl Memory {
    /// The step batch `id` was planned, sent or skipped for good.
    pub(super) fn is_decided(&self, id: &str) -> bool {
        self.decided.contains(id)
    }

    /// Never offers the step batch `id` again (skipped for good).
    pub(super) fn decide(&mut self, id: String) {
        self.decided.insert(id);
    }

    /// The step batch `id` goes to `user` at `at`: decided, and counted for the cap.
    pub(super) fn sent(&mut self, id: String, user: &LineUserId, at: DateTime<Utc>) {
        self.sends.record(user, at);
        self.decided.insert(id);
    }

    /// Sends so far, for the frequency cap.
    pub(super) fn sends(&self) -> &SendHistory {
        &self.sends
    }

    /// The occurrence `key` of scenario `si` for `who` exited.
    pub(super) fn has_ended(&self, key: &(usize, Who, String)) -> bool {
        self.ended.contains(key)
    }

    /// Ends the occurrence `key`: none of its steps is offered again.
    pub(super) fn end(&mut self, key: (usize, Who, String)) {
        self.ended.insert(key);
    }

    /// The segment-entry memory of scenario `si` for customer `id`.
    pub(super) fn entry(&mut self, si: usize, id: &CustomerId) -> &mut Entry {
        self.entries.entry((si, id.clone())).or_default()
    }
}

/// Customers and friends due for a look, earliest first, each listed once.
#[derive(Debug, Default)]
struct WakeQueue {
    queue: BTreeSet<(DateTime<Utc>, Who)>,
    at: HashMap<Who, DateTime<Utc>>,
}

impl WakeQueue {
    fn set(&mut self, who: Who, at: Option<DateTime<Utc>>) {
        if let Some(old) = self.at.remove(&who) {
            self.queue.remove(&(old, who.clone()));
        }
        if let Some(at) = at {
            self.queue.insert((at, who.clone()));
            self.at.insert(who, at);
        }
    }

    fn due(&self, now: DateTime<Utc>) -> Vec<Who> {
        self.queue.iter().take_while(|(t, _)| *t <= now).map(|(_, w)| w.clone()).collect()
    }

    fn first(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(t, _)| *t)
    }
}

/// What one tick works with: the definitions, policy and facts read-only, and the
/// [`Memory`] of decisions to update. The references live as long as the state's borrow,
/// not the view's, so a scenario can be held while the memory changes.
#[derive(Debug)]
pub(super) struct Round<'a> {
    set: &'a ScenarioSet,
    policy: &'a dyn SendPolicy,
    active_since: DateTime<Utc>,
    customers: &'a BTreeMap<CustomerId, CustomerState>,
    friends: &'a BTreeMap<LineUserId, Friend>,
    product_events: &'a HashMap<String, Vec<ProductEvent>>,
    /// The decisions so far.
    pub(super) memory: &'a mut Memory,
}

impl<'a> Round<'a> {
    /// The compiled scenarios, in definition order.
    pub(super) fn scenarios(&self) -> &'a [Scenario] {
        &self.set.scenarios
    }

    /// Whether a step of any scenario has channels (then customers LINE cannot reach are
    /// examined too).
    pub(super) fn has_channel_steps(&self) -> bool {
        self.set.scenarios.iter().any(|s| s.steps.iter().any(|st| st.channels.is_some()))
    }

    /// Quiet hours, cap and holdout.
    pub(super) fn policy(&self) -> &'a dyn SendPolicy {
        self.policy
    }

    /// Steps due before this instant are never sent.
    pub(super) fn active_since(&self) -> DateTime<Utc> {
        self.active_since
    }

    /// A customer's state.
    pub(super) fn customer(&self, id: &CustomerId) -> Option<&'a CustomerState> {
        self.customers.get(id)
    }

    /// An unlinked friend.
    pub(super) fn friend(&self, user: &LineUserId) -> Option<&'a Friend> {
        self.friends.get(user)
    }

    /// Product changes by product.
    pub(super) fn product_events(&self) -> &'a HashMap<String, Vec<ProductEvent>> {
        self.product_events
    }
}

/// The state scenarios run over: definitions, policy, facts, and what was decided.
///
/// [`ScenarioState::tick`] is the planning step. It is deterministic: the batch IDs
/// `<scenario>/<step>/<customer>/<occurrence>` come from the facts alone, so a tick run twice,
/// late, or by two workers over the same facts plans the same batches, which the journal's
/// insert-if-absent `enqueue` stores once. The state also remembers what it planned (and what
/// the journal reports, [`ScenarioState::load_journal`]) so it does not offer a step again.
pub struct ScenarioState {
    set: ScenarioSet,
    policy: Box<dyn SendPolicy>,
    active_since: DateTime<Utc>,
    customers: BTreeMap<CustomerId, CustomerState>,
    friends: BTreeMap<LineUserId, Friend>,
    owner: HashMap<LineUserId, CustomerId>,
    product_events: HashMap<String, Vec<ProductEvent>>,
    memory: Memory,
    wake: WakeQueue,
}

impl fmt::Debug for ScenarioState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioState")
            .field("scenarios", &self.set.scenarios.len())
            .field("policy", &self.policy)
            .field("active_since", &self.active_since)
            .field("customers", &self.customers.len())
            .field("friends", &self.friends.len())
            .field("done", &self.memory.decided.len())
            .finish_non_exhaustive()
    }
}

impl ScenarioState {
    /// A state for `set`, with no customers yet and no send policy. Steps that fell due
    /// before `active_since` are never sent (scenarios do not backfill history).
    #[must_use]
    pub fn new(set: ScenarioSet, active_since: DateTime<Utc>) -> Self {
        Self {
            set,
            policy: Box::new(Unrestricted),
            active_since,
            customers: BTreeMap::new(),
            friends: BTreeMap::new(),
            owner: HashMap::new(),
            product_events: HashMap::new(),
            memory: Memory::default(),
            wake: WakeQueue::default(),
        }
    }

    /// Sets the frequency cap and quiet hours.
    #[must_use]
    pub fn with_policy(mut self, policy: impl SendPolicy + 'static) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// The scenarios.
    #[must_use]
    pub fn scenarios(&self) -> &ScenarioSet {
        &self.set
    }

    /// A customer's state.
    #[must_use]
    pub fn customer(&self, id: &CustomerId) -> Option<&CustomerState> {
        self.customers.get(id)
    }

    /// Number of customers.
    #[must_use]
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// New facts: look at `who` on the next tick.
    fn touch(&mut self, who: Who) {
        self.wake.set(who, Some(DateTime::<Utc>::MIN_UTC));
    }

    /// Looks at `who` again at `at` (`None`: only when new facts arrive).
    pub(super) fn wake_at(&mut self, who: Who, at: Option<DateTime<Utc>>) {
        self.wake.set(who, at);
    }

    /// Customers and friends whose wake-up time has come by `now`.
    pub(super) fn due(&self, now: DateTime<Utc>) -> Vec<Who> {
        self.wake.due(now)
    }

    /// The view one tick plans with.
    pub(super) fn round(&mut self) -> Round<'_> {
        Round {
            set: &self.set,
            policy: self.policy.as_ref(),
            active_since: self.active_since,
            customers: &self.customers,
            friends: &self.friends,
            product_events: &self.product_events,
            memory: &mut self.memory,
        }
    }

    /// The earliest instant a tick has something to do (`None`: only new input can).
    #[must_use]
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.wake.first()
    }

    /// Adds a customer or replaces everything known about one.
    pub fn upsert_customer(&mut self, facts: CustomerFacts, line_user: Option<LineUserId>) {
        let id = facts.id.clone();
        if let Some(u) = &line_user {
            self.owner.insert(u.clone(), id.clone());
        }
        let cart_updated_at = self.customers.get(&id).and_then(|c| c.cart_updated_at);
        self.customers.insert(id.clone(), CustomerState { facts, line_user, cart_updated_at });
        self.touch(Who::Customer(id));
    }

    fn customer_mut(&mut self, id: &CustomerId) -> Result<&mut CustomerState, UnknownCustomer> {
        self.touch(Who::Customer(id.clone()));
        self.customers.get_mut(id).ok_or_else(|| UnknownCustomer(id.clone()))
    }

    /// Applies one input. Inputs should arrive in time order.
    ///
    /// # Errors
    /// [`UnknownCustomer`] when the input names a customer never upserted.
    pub fn apply(&mut self, input: ScenarioInput) -> Result<(), UnknownCustomer> {
        match input {
            ScenarioInput::Customer { facts, line_user } => self.upsert_customer(*facts, line_user),
            ScenarioInput::CartUpdated { customer, at, items } => {
                let c = self.customer_mut(&customer)?;
                c.facts.cart = items;
                c.cart_updated_at = Some(at);
            }
            ScenarioInput::FavouritesUpdated { customer, items } => {
                self.customer_mut(&customer)?.facts.favourites = items;
            }
            ScenarioInput::OrderPlaced { customer, order } => {
                self.customer_mut(&customer)?.facts.orders.push(order);
            }
            ScenarioInput::SubscriptionUpdated { customer, subscription } => {
                let subs = &mut self.customer_mut(&customer)?.facts.subscriptions;
                match subs.iter_mut().find(|s| s.id == subscription.id) {
                    Some(s) => *s = subscription,
                    None => subs.push(subscription),
                }
            }
            ScenarioInput::Product { product, at, status } => self.set_product(product, at, status),
            ScenarioInput::Linked { customer, line_user, at } => {
                let following = self.friends.get(&line_user).is_some_and(|f| f.following);
                if let Some(f) = self.friends.get_mut(&line_user) {
                    f.linked = true;
                }
                self.touch(Who::Friend(line_user.clone()));
                self.owner.insert(line_user.clone(), customer.clone());
                let c = self.customer_mut(&customer)?;
                c.line_user = Some(line_user);
                let friendship =
                    if following { Friendship::Following } else { c.facts.line.friendship };
                c.facts.line = LineStatus { linked: true, linked_at: Some(at), friendship };
            }
            ScenarioInput::Followed { line_user, at } => {
                self.set_friendship(&line_user, Friendship::Following);
                if !self.owner.contains_key(&line_user) {
                    self.friends.insert(
                        line_user.clone(),
                        Friend {
                            line_user: line_user.clone(),
                            followed_at: at,
                            following: true,
                            linked: false,
                        },
                    );
                    self.touch(Who::Friend(line_user));
                }
            }
            ScenarioInput::Unfollowed { line_user } => {
                self.set_friendship(&line_user, Friendship::Blocked);
                if let Some(f) = self.friends.get_mut(&line_user) {
                    f.following = false;
                }
                self.touch(Who::Friend(line_user));
            }
        }
        Ok(())
    }

    fn set_friendship(&mut self, user: &LineUserId, friendship: Friendship) {
        if let Some(id) = self.owner.get(user).cloned() {
            if let Some(c) = self.customers.get_mut(&id) {
                c.facts.line.friendship = friendship;
            }
            self.touch(Who::Customer(id));
        }
    }

    /// Sets a product's status at `at`, recording a restock, price drop or "last one" against
    /// the previous status, and wakes the customers who saved the product.
    pub fn set_product(&mut self, product: String, at: DateTime<Utc>, status: ProductStatus) {
        let before = self.set.context.product(&product).copied();
        if let Some(b) = before {
            let mut push = |change| {
                self.product_events.entry(product.clone()).or_default().push(ProductEvent {
                    product: product.clone(),
                    change,
                    at,
                    price: status.price,
                });
            };
            if b.stock <= 0 && status.stock > 0 {
                push(ProductChange::Restocked);
            }
            if status.price < b.price {
                push(ProductChange::PriceDropped);
            }
            if b.stock != 1 && status.stock == 1 {
                push(ProductChange::LastOne);
            }
        }
        self.set.context.set_product(product.clone(), status);
        let saved: Vec<CustomerId> = self
            .customers
            .values()
            .filter(|c| {
                c.facts.cart.iter().chain(&c.facts.favourites).any(|i| i.product == product)
            })
            .map(|c| c.facts.id.clone())
            .collect();
        for id in saved {
            self.touch(Who::Customer(id));
        }
    }

    /// Product changes recorded so far, by product.
    #[must_use]
    pub fn product_events(&self, product: &str) -> &[ProductEvent] {
        self.product_events.get(product).map_or(&[], Vec::as_slice)
    }

    /// Remembers the scenario batches the journal already holds (after a restart, or from
    /// another worker), so they are not offered again, and counts them for the cap.
    pub fn load_journal<'a>(&mut self, records: impl IntoIterator<Item = &'a BatchRecord>) {
        for r in records {
            self.memory.decided.insert(r.batch.id.as_str().to_owned());
            for rcp in &r.batch.recipients {
                self.memory.sends.record(&rcp.line_user, r.batch.not_before);
            }
        }
    }

    /// Counts other campaigns' sends (the journal's `sends_since`, without this state's own
    /// scenario batches) against the frequency cap.
    pub fn note_sends<'a>(&mut self, sends: impl IntoIterator<Item = &'a SendRecord>) {
        for s in sends {
            self.memory.sends.record(&s.line_user, s.at);
        }
    }
}
