//! What the app knows between calls: a mirror of the synced shop, the segment engine over its
//! facts, the scenario state, and each customer's link. Built from the storage on first use,
//! then kept current incrementally (only the customers a sync or a link change touched).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AppError, Enishi};
use crate::campaign::Contact;
use crate::campaign::DeliveryPolicy;
use crate::campaign::Vars;
use crate::campaign::scenario::{ScenarioInput, ScenarioSet, ScenarioState};
use crate::commerce::sync::{Dataset, SyncBatch, SyncResource, SyncSink, Syncer};
use crate::commerce::{BoxError, Cursor};
use crate::link::{BackendLinkImport, CustomerLink};
use crate::segment::{
    AttrValue, Context, CustomerFacts, Engine, Friendship, Schema, SegmentDefinition,
};
use crate::{CustomerId, LineUserId};

/// What one [`Enishi::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncSummary {
    /// Records read from the shop.
    pub records: u64,
    /// Customers whose facts were re-evaluated (new records, a new link, a follow change).
    pub changed: u64,
    /// Targetable customers held.
    pub customers: u64,
    /// Of those, linked to a LINE user.
    pub linked: u64,
    /// Links imported from the shop's own LINE ID field.
    pub imported_links: u64,
}

/// What one [`Enishi::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickSummary {
    /// Batches planned by the tick.
    pub planned: u64,
    /// Of those, new in the journal (the rest were planned before).
    pub enqueued: u64,
    /// Steps skipped (cap, holdout, condition, unreachable, ...).
    pub skipped: u64,
    /// When the scenarios have something to do next.
    pub next_wake: Option<DateTime<Utc>>,
}

pub(super) struct Brain {
    loaded: bool,
    mirror: Dataset,
    engine: Engine,
    scenarios: Option<ScenarioState>,
    set: Option<ScenarioSet>,
    policy: DeliveryPolicy,
    links: HashMap<CustomerId, CustomerLink>,
    facts: HashMap<CustomerId, CustomerFacts>,
    active_since: DateTime<Utc>,
    /// Names declared by the host, kept across reloads.
    declared: Schema,
    /// Attributes the chatbot wrote (survey answers, opt-outs), merged into the facts.
    chat_attributes: super::chat::ChatAttributes,
}

impl Brain {
    pub(super) fn new(
        set: Option<ScenarioSet>,
        policy: DeliveryPolicy,
        active_since: DateTime<Utc>,
    ) -> Self {
        Self {
            loaded: false,
            mirror: Dataset::new(),
            engine: Engine::new(Context::new(active_since)),
            scenarios: None,
            set,
            policy,
            links: HashMap::new(),
            facts: HashMap::new(),
            active_since,
            declared: Schema::new(),
            chat_attributes: super::chat::ChatAttributes::new(),
        }
    }

    pub(super) fn unload(&mut self) {
        let declared = std::mem::take(&mut self.declared);
        *self = Self::new(self.set.take(), self.policy.clone(), self.active_since);
        self.declared = declared;
    }

    /// The facts a segment and a scenario see: the shop's, with the link store's LINE status.
    fn with_link(&self, mut facts: CustomerFacts) -> CustomerFacts {
        let link = self.links.get(&facts.id);
        apply_link(&mut facts, link);
        facts
    }

    /// The synced shop.
    pub(super) fn mirror(&self) -> &Dataset {
        &self.mirror
    }

    /// The segment engine, advanced to `now` (for the rich menus).
    pub(super) fn menu_engine(&mut self, now: DateTime<Utc>) -> &mut Engine {
        let _ = self.engine.advance_to(now);
        &mut self.engine
    }

    /// The targetable customers.
    pub(super) fn customer_ids(&self) -> Vec<CustomerId> {
        self.mirror.targetable_ids()
    }

    /// Shows the segment engine links and follows the link store has now (`fresh`, or one
    /// `link` a webhook just made), ahead of the next sync, which tells the scenarios and the
    /// links map (so they are left as they are here).
    pub(super) fn see_links(&mut self, fresh: &HashMap<CustomerId, CustomerLink>) {
        let changed: Vec<CustomerId> =
            self.facts.keys().filter(|id| self.links.get(*id) != fresh.get(*id)).cloned().collect();
        for id in changed {
            if let Some(mut facts) = self.facts.get(&id).cloned() {
                apply_link(&mut facts, fresh.get(&id));
                self.engine.upsert_customer(facts);
            }
        }
    }

    /// [`see_links`](Self::see_links) for one customer's new link.
    pub(super) fn see_link(&mut self, link: &CustomerLink) {
        if let Some(mut facts) = self.facts.get(&link.link.customer).cloned() {
            apply_link(&mut facts, Some(link));
            self.engine.upsert_customer(facts);
        }
    }

    /// A chat attribute changed: re-evaluate that customer.
    pub(super) fn set_chat_attribute(
        &mut self,
        customer: &CustomerId,
        key: &str,
        value: AttrValue,
        now: DateTime<Utc>,
    ) {
        self.chat_attributes.entry(customer.clone()).or_default().insert(key.to_owned(), value);
        self.refresh(std::slice::from_ref(customer), now);
    }

    /// Re-evaluates `ids` from the mirror and the known links.
    fn refresh(&mut self, ids: &[CustomerId], now: DateTime<Utc>) {
        for facts in self.mirror.facts_of(ids) {
            let mut facts = self.with_link(facts);
            // Scenario messages say `{{ name }}`: the shop's name for the customer.
            if let Some(name) = self.mirror.customer(&facts.id).and_then(|c| c.name) {
                facts.attributes.insert("name".to_owned(), AttrValue::Text(name));
            }
            if let Some(chat) = self.chat_attributes.get(&facts.id) {
                facts.attributes.extend(chat.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            // 配信停止 in the chat: the scenarios see no LINE user to message.
            let opted_out = opted_out(&facts);
            let line_user =
                self.links.get(&facts.id).filter(|_| !opted_out).map(|l| l.link.line_user.clone());
            self.engine.upsert_customer(facts.clone());
            if let Some(state) = &mut self.scenarios {
                state.upsert_customer(facts.clone(), line_user);
            }
            self.facts.insert(facts.id.clone(), facts);
        }
        let _ = self.engine.advance_to(now);
    }
}

/// Sets the facts' LINE status from the customer's link (`None`: not linked).
fn apply_link(facts: &mut CustomerFacts, link: Option<&CustomerLink>) {
    facts.line.linked = link.is_some();
    facts.line.linked_at = link.map(|l| l.link.linked_at);
    facts.line.friendship = match link {
        Some(l) if !l.following() => Friendship::Blocked,
        Some(_) => Friendship::Following,
        None => Friendship::Unknown,
    };
}

/// Whether the customer sent 配信停止 in the chat.
fn opted_out(facts: &CustomerFacts) -> bool {
    facts.attributes.get(crate::chat::OPT_OUT_ATTRIBUTE) == Some(&AttrValue::Bool(true))
}

/// A sink that writes to the stored dataset first, then to the mirror, and notes which
/// customers the records touch.
struct Tee<'a> {
    stored: &'a dyn SyncSink,
    mirror: &'a Dataset,
    touched: Mutex<BTreeSet<CustomerId>>,
    /// A subscription named its customer by shop number only: refresh everyone.
    everyone: std::sync::atomic::AtomicBool,
    records: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl SyncSink for Tee<'_> {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        self.stored.cursor(resource).await
    }

    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut touched: Vec<CustomerId> = Vec::new();
        match &batch {
            SyncBatch::Customers(r) => touched.extend(r.iter().map(|c| c.id.clone())),
            SyncBatch::Orders(r) => touched.extend(r.iter().filter_map(|o| o.customer_id.clone())),
            SyncBatch::Subscriptions(r) => {
                for s in r {
                    match s.customer.as_deref().and_then(|c| CustomerId::new(c).ok()) {
                        Some(id) => touched.push(id),
                        None => self.everyone.store(true, Relaxed),
                    }
                }
            }
            SyncBatch::Products(_) => {}
        }
        self.records.fetch_add(batch.len() as u64, Relaxed);
        self.stored.apply(batch.clone(), cursor.clone()).await?;
        self.mirror.apply(batch, cursor).await?;
        self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(touched);
        Ok(())
    }
}

impl Enishi {
    /// Loads the mirror, engine and scenario state from the storage (once).
    pub(super) async fn ensure_loaded<'a>(
        &'a self,
        brain: &mut tokio::sync::MutexGuard<'a, Brain>,
    ) -> Result<(), AppError> {
        if brain.loaded {
            return Ok(());
        }
        let now = self.now();
        let mirror = self.inner.storage.dataset().load().await.map_err(AppError::Dataset)?;
        let mut fresh = Brain::new(brain.set.clone(), brain.policy.clone(), brain.active_since);
        fresh.mirror = mirror;
        fresh.engine = Engine::new(Context::new(now));
        fresh.declared = brain.declared.clone();
        fresh.chat_attributes = self
            .inner
            .storage
            .chat()
            .attributes()
            .await
            .map_err(|e| AppError::Dataset(Box::new(e)))?
            .into_iter()
            .collect();
        fresh.engine.declare(&fresh.declared);
        if let Some(set) = &fresh.set {
            let mut state = ScenarioState::new(set.clone(), fresh.active_since)
                .with_policy(fresh.policy.clone());
            let journal = self.inner.storage.journal();
            for scenario in set.scenarios() {
                state.load_journal(&journal.records(scenario.campaign()).await?);
            }
            fresh.scenarios = Some(state);
        }
        let ids: Vec<CustomerId> = fresh.mirror.targetable_ids();
        for l in self.inner.storage.links().links_of_customers(&ids).await? {
            fresh.links.insert(l.link.customer.clone(), l);
        }
        fresh.refresh(&ids, now);
        fresh.loaded = true;
        tracing::info!(
            target: "enishi::app",
            customers = ids.len(),
            linked = fresh.links.len(),
            "state loaded from storage"
        );
        **brain = fresh;
        Ok(())
    }

    /// Reads what changed in the shop since the last sync (incremental, from the stored
    /// cursors), imports the links the shop itself knows, refreshes every customer's link and
    /// follow status from the link store in one batched read, and re-evaluates the customers
    /// any of that touched in the segment engine and the scenario state.
    ///
    /// # Errors
    /// [`AppError::Missing`] without a commerce backend; [`AppError::Sync`] (the next sync
    /// resumes from the last stored page), [`AppError::Links`], [`AppError::Dataset`].
    pub async fn sync(&self) -> Result<SyncSummary, AppError> {
        let backend = self
            .inner
            .commerce
            .clone()
            .ok_or(AppError::Missing("a commerce backend (`commerce`)"))?;
        let mut brain = self.inner.brain.lock().await;
        self.ensure_loaded(&mut brain).await?;
        let now = self.now();
        let stored = self.inner.storage.dataset();
        let links = self.inner.storage.links();
        let (records, mut touched, everyone, imported) = {
            let tee = Tee {
                stored: stored.as_ref(),
                mirror: &brain.mirror,
                touched: Mutex::new(BTreeSet::new()),
                everyone: false.into(),
                records: 0.into(),
            };
            let import = BackendLinkImport::new(links.clone(), &tee);
            let report = Syncer::new(backend.as_ref()).run(&import).await?;
            tracing::info!(
                target: "enishi::sync",
                records = report.total_records(),
                pages = report.pages,
                rejected = report.rejected.len(),
                "shop synced"
            );
            let imported = import.counts().linked;
            drop(import);
            let touched =
                tee.touched.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            (tee.records.into_inner(), touched, tee.everyone.into_inner(), imported)
        };
        let all: Vec<CustomerId> = brain.mirror.targetable_ids();
        if everyone {
            touched.extend(all.iter().cloned());
        }
        // Links and follow status change outside the sync (webhooks, on any instance).
        let fresh: HashMap<CustomerId, CustomerLink> = links
            .links_of_customers(&all)
            .await?
            .into_iter()
            .map(|l| (l.link.customer.clone(), l))
            .collect();
        let brain = &mut *brain;
        for id in &all {
            let (before, after) = (brain.links.get(id), fresh.get(id));
            if before != after {
                touched.insert(id.clone());
                note_link_change(brain.scenarios.as_mut(), before, after);
            }
        }
        brain.links = fresh;
        let touched: Vec<CustomerId> = touched.into_iter().collect();
        brain.refresh(&touched, now);
        let summary = SyncSummary {
            records,
            changed: touched.len() as u64,
            customers: all.len() as u64,
            linked: brain.links.len() as u64,
            imported_links: imported,
        };
        metrics::gauge!("enishi_customers").set(summary.customers as f64);
        metrics::gauge!("enishi_linked_customers").set(summary.linked as f64);
        metrics::counter!("enishi_sync_records_total").increment(records);
        Ok(summary)
    }

    /// The members of `segment` (as of the last sync) as the planner's contacts: link and
    /// follow status, consent, and the template variables `name`, `orders`, `customer_id`
    /// and `attr.<name>`. One read of the link store for the whole audience. The segment is
    /// checked first ([`validate`](Self::validate)) unless the app was built with
    /// [`unchecked_segments`](super::EnishiBuilder::unchecked_segments).
    ///
    /// # Errors
    /// [`AppError::Segment`] for an invalid segment; [`AppError::Dataset`],
    /// [`AppError::Links`] while loading the state.
    pub async fn audience(&self, segment: &SegmentDefinition) -> Result<Vec<Contact>, AppError> {
        let mut brain = self.inner.brain.lock().await;
        self.ensure_loaded(&mut brain).await?;
        let name = "enishi.app.audience";
        if self.inner.check_segments {
            // Checked once there is data or a declaration to check against.
            brain.engine.register(name, segment.clone())?;
        } else {
            brain.engine.register_unchecked(name, segment.clone())?;
        }
        let members = brain.engine.members(name)?.to_vec();
        let contacts = members.iter().map(|id| self.contact(&brain, id)).collect();
        Ok(contacts)
    }

    fn contact(&self, brain: &Brain, id: &CustomerId) -> Contact {
        let mut contact = Contact::new(id.clone());
        if let Some(link) = brain.links.get(id) {
            contact =
                contact.linked_to(link.link.line_user.clone()).with_following(link.following());
        }
        let facts = brain.facts.get(id);
        let consent = match &self.inner.consent_attribute {
            Some(attr) => facts
                .and_then(|f| f.attributes.get(attr))
                .is_some_and(|v| *v == AttrValue::Bool(true)),
            None => true,
        };
        // 配信停止 in the chat: no marketing message, whatever the shop's own flag says.
        let consent = consent && !facts.is_some_and(opted_out);
        let mut vars = Vars::new().with("customer_id", id);
        let name = brain.mirror.customer(id).and_then(|c| c.name);
        vars.insert("name", name.unwrap_or_else(|| "お客様".to_owned()));
        vars.insert("orders", facts.map_or(0, |f| f.orders.len()).to_string());
        if let Some(f) = facts {
            for (k, v) in &f.attributes {
                if let AttrValue::Text(t) = v {
                    vars.insert(format!("attr.{k}"), t.clone());
                } else if let AttrValue::Int(i) = v {
                    vars.insert(format!("attr.{k}"), i.to_string());
                }
            }
        }
        contact.with_consent(consent).with_vars(vars)
    }

    /// Applies the chat log's retention, at most hourly.
    async fn purge_chat_log(&self) {
        let Some(chat) = &self.inner.chat else { return };
        let now = self.now();
        {
            let mut last = self.inner.chat_purged.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| now - t < chrono::TimeDelta::hours(1)) {
                return;
            }
            *last = Some(now);
        }
        match chat.purge_log(now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(target: "enishi::chat", purged = n, "old conversation log purged")
            }
            Err(e) => {
                tracing::warn!(target: "enishi::chat", error = %e, "the conversation log could not be purged")
            }
        }
    }

    /// Runs the scenarios at the app's now: plans the steps that fell due (with the frequency
    /// cap over every campaign's sends in the journal) and enqueues them. A tick repeated, late
    /// or after a restart plans the same batch IDs, which the journal stores once.
    ///
    /// # Errors
    /// [`AppError::Journal`]; loading errors as [`sync`](Self::sync).
    pub async fn tick(&self) -> Result<TickSummary, AppError> {
        self.purge_chat_log().await;
        let mut brain = self.inner.brain.lock().await;
        self.ensure_loaded(&mut brain).await?;
        let now = self.now();
        let journal = self.inner.storage.journal();
        let Some(state) = brain.scenarios.as_mut() else { return Ok(TickSummary::default()) };
        let window =
            self.inner.policy.frequency_cap.map_or(chrono::TimeDelta::days(7), |c| c.window());
        let sends = journal.sends_since(now - window).await?;
        let own: BTreeSet<_> =
            state.scenarios().scenarios().iter().map(|s| s.campaign().clone()).collect();
        let others: Vec<_> = sends.iter().filter(|s| !own.contains(&s.campaign)).collect();
        state.note_sends(others);
        let tick = state.tick(now);
        if !tick.routed.is_empty() {
            // `EnishiBuilder::build` refuses such steps (the app sends LINE only); should one
            // get here, say so loudly rather than pass over it quietly.
            tracing::warn!(
                target: "enishi::scenario",
                steps = tick.routed.len(),
                "scenario steps with channels are not sent by the app: route them with \
                 ChannelPlanner::plan_scenario and send them with a ChannelDispatcher"
            );
        }
        let enqueued = journal.enqueue(&tick.batches).await?;
        let skipped = tick
            .events
            .iter()
            .filter(|e| matches!(e.outcome, crate::campaign::scenario::Outcome::Skipped { .. }))
            .count() as u64;
        let summary = TickSummary {
            planned: tick.batches.len() as u64,
            enqueued,
            skipped,
            next_wake: tick.next_wake,
        };
        tracing::info!(
            target: "enishi::scenario",
            at = %now,
            planned = summary.planned,
            enqueued = summary.enqueued,
            skipped = summary.skipped,
            "scenario tick"
        );
        metrics::counter!("enishi_scenario_batches_total").increment(enqueued);
        Ok(summary)
    }

    /// Feeds a LINE user's follow (or unfollow) to the scenarios at once (a friend who is not
    /// linked yet can only be reached this way). Linked customers' changes also arrive with
    /// the next sync, from the link store.
    pub(super) async fn note_follow(&self, user: LineUserId, following: bool, at: DateTime<Utc>) {
        let mut brain = self.inner.brain.lock().await;
        if let Some(state) = brain.scenarios.as_mut() {
            let input = if following {
                ScenarioInput::Followed { line_user: user, at }
            } else {
                ScenarioInput::Unfollowed { line_user: user }
            };
            let _ = state.apply(input);
        }
    }

    /// Declares names the shop's data may not show yet (a new product, an attribute no
    /// customer has so far), so segments naming them pass the check.
    pub async fn declare(&self, schema: &Schema) {
        let mut brain = self.inner.brain.lock().await;
        brain.declared.merge(schema);
        brain.engine.declare(schema);
    }

    /// Checks `segment` against the names in the synced data and the declared ones: a
    /// misspelt attribute or an unknown product is an error with a "did you mean".
    ///
    /// # Errors
    /// [`AppError::Segment`]; loading errors as [`sync`](Self::sync).
    pub async fn validate(&self, segment: &SegmentDefinition) -> Result<(), AppError> {
        let mut brain = self.inner.brain.lock().await;
        self.ensure_loaded(&mut brain).await?;
        Ok(brain.engine.validate(segment)?)
    }

    /// Every targetable customer's facts as of the last sync, with link and follow status,
    /// sorted by customer ID: what segments and scenarios see (export it, or feed your own
    /// [`Engine`] for funnels and explanations).
    ///
    /// # Errors
    /// Loading errors as [`sync`](Self::sync).
    pub async fn facts(&self) -> Result<Vec<CustomerFacts>, AppError> {
        let mut brain = self.inner.brain.lock().await;
        self.ensure_loaded(&mut brain).await?;
        let mut facts: Vec<CustomerFacts> = brain.facts.values().cloned().collect();
        facts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(facts)
    }

    /// When the scenarios have something to do next (`None`: nothing until new input).
    pub async fn next_wake(&self) -> Option<DateTime<Utc>> {
        let brain = self.inner.brain.lock().await;
        brain.scenarios.as_ref().and_then(ScenarioState::next_wake)
    }
}

/// Tells the scenarios about a new link or a follow change seen in the link store.
fn note_link_change(
    state: Option<&mut ScenarioState>,
    before: Option<&CustomerLink>,
    after: Option<&CustomerLink>,
) {
    let (Some(state), Some(after)) = (state, after) else { return };
    let user = after.link.line_user.clone();
    if before.is_none_or(|b| b.link != after.link) {
        let _ = state.apply(ScenarioInput::Linked {
            customer: after.link.customer.clone(),
            line_user: user.clone(),
            at: after.link.linked_at,
        });
    }
    let was_following = before.is_none_or(CustomerLink::following);
    if was_following && !after.following() {
        let _ = state.apply(ScenarioInput::Unfollowed { line_user: user });
    } else if !was_following && after.following() {
        let at = after.follow.as_ref().map_or(after.link.linked_at, |f| f.updated_at);
        let _ = state.apply(ScenarioInput::Followed { line_user: user, at });
    }
}
