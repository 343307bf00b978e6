//! The app's chatbot: its customer context from the synced shop and the link store, and the
//! attributes it writes (survey answers, opt-outs) fed back into the segment facts.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use crate::chat::{AttributeListener, ChatBotBuilder, ContextSource, CustomerContext};
use crate::commerce::BoxError;
use crate::segment::AttrValue;
use crate::{CustomerId, LineUserId};

use super::{Enishi, Inner};

/// Configures the app's chatbot on top of the defaults (rules, surveys, staff, texts).
pub(super) type ChatSetup = Box<dyn FnOnce(ChatBotBuilder) -> ChatBotBuilder + Send>;

/// The app, reached from the chatbot it owns (set once the app is built).
#[derive(Clone, Default)]
pub(super) struct AppRef(Arc<OnceLock<Weak<Inner>>>);

impl AppRef {
    pub(super) fn set(&self, inner: &Arc<Inner>) {
        let _ = self.0.set(Arc::downgrade(inner));
    }

    fn app(&self) -> Option<Enishi> {
        self.0.get().and_then(Weak::upgrade).map(|inner| Enishi { inner })
    }
}

/// Answers "who is this LINE user at the shop" from the app.
pub(super) struct AppContext {
    pub(super) app: AppRef,
    /// Rank names with the yen spent from which they apply, ascending.
    pub(super) ladder: Vec<(String, i64)>,
}

#[async_trait::async_trait]
impl ContextSource for AppContext {
    async fn customer_of(&self, user: &LineUserId) -> Result<Option<CustomerContext>, BoxError> {
        let Some(app) = self.app.app() else { return Ok(None) };
        let Some(link) = app.storage().links().link_of_user(user).await? else { return Ok(None) };
        let id = link.customer;
        let mut brain = app.inner.brain.lock().await;
        app.ensure_loaded(&mut brain).await.map_err(|e| Box::new(e) as BoxError)?;
        let mirror = brain.mirror();
        let customer = mirror.customer(&id);
        let mut orders = mirror.orders_of(&id);
        orders.sort_by_key(|o| std::cmp::Reverse(o.ordered_at));
        orders.truncate(3);
        let total_spent = customer.as_ref().and_then(|c| c.total_spent.as_ref()).map(|m| m.minor);
        let next_rank = self
            .ladder
            .iter()
            .find(|(_, from)| *from > total_spent.unwrap_or(0))
            .map(|(name, from)| (name.clone(), from - total_spent.unwrap_or(0)));
        let context = CustomerContext {
            id: Some(id.clone()),
            name: customer.as_ref().and_then(|c| c.name.clone()),
            points: customer.as_ref().and_then(|c| c.points),
            points_expire_at: customer.as_ref().and_then(|c| c.points_expire_at),
            rank: customer
                .as_ref()
                .and_then(|c| c.rank.as_ref())
                .and_then(|r| r.label.clone().or_else(|| r.code.clone())),
            total_spent,
            next_rank,
            orders,
            subscriptions: mirror.subscriptions_of(&id),
        };
        Ok(Some(context))
    }
}

/// Feeds the chat's attributes into the facts at once.
pub(super) struct AppAttributes {
    pub(super) app: AppRef,
}

#[async_trait::async_trait]
impl AttributeListener for AppAttributes {
    async fn attribute_set(&self, customer: &CustomerId, key: &str, value: &AttrValue) {
        let Some(app) = self.app.app() else { return };
        let now = app.now();
        let mut brain = app.inner.brain.lock().await;
        if app.ensure_loaded(&mut brain).await.is_ok() {
            brain.set_chat_attribute(customer, key, value.clone(), now);
        }
    }
}

/// The chat's attributes by customer, as the brain merges them.
pub(super) type ChatAttributes = std::collections::HashMap<CustomerId, BTreeMap<String, AttrValue>>;
