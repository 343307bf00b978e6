//! The in-memory link store.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::incentive::{
    Claim, GrantState, IncentiveGrant, IncentiveLedger, check_incentive, check_settle, no_claim,
};
use super::secret::TicketKey;
use super::store::{
    AuditRecord, ConflictPolicy, CustomerLink, FollowStatus, Link, LinkOutcome, LinkPlan,
    LinkSource, LinkStore, LinkStoreError, Redeemed, TICKET_GRACE_MS, Ticket, TicketKind,
    check_ticket, failed_audit, plan_link, trunc_ms, unlink_audit,
};
use crate::{CustomerId, LineUserId};

/// The in-memory link store (and [`IncentiveLedger`]): one process, lost on restart. For
/// tests, demos and as the reference behaviour of the conformance suite.
#[derive(Debug, Clone, Default)]
pub struct MemoryLinkStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    links: HashMap<LineUserId, Link>,
    by_customer: HashMap<CustomerId, LineUserId>,
    tickets: HashMap<TicketKey, (Ticket, Option<i64>)>,
    follow: HashMap<LineUserId, FollowStatus>,
    audit: Vec<AuditRecord>,
    grants: HashMap<(String, CustomerId), IncentiveGrant>,
}

impl MemoryInner {
    fn apply(&mut self, plan: LinkPlan) -> Result<LinkOutcome, LinkStoreError> {
        for l in &plan.delete {
            self.links.remove(&l.line_user);
            self.by_customer.remove(&l.customer);
        }
        if let Some(l) = plan.insert {
            self.by_customer.insert(l.customer.clone(), l.line_user.clone());
            self.links.insert(l.line_user.clone(), l);
        }
        self.audit.extend(plan.audit);
        plan.outcome.map_err(LinkStoreError::Conflict)
    }

    fn plan(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> LinkPlan {
        let by_user = self.links.get(line_user).cloned();
        let by_customer = self
            .by_customer
            .get(customer)
            .and_then(|u| self.links.get(u))
            .filter(|l| &l.line_user != line_user)
            .cloned();
        plan_link(by_user, by_customer, line_user, customer, source, policy, now)
    }

    fn take(
        &mut self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let ticket = check_ticket(kind, self.tickets.get(key).cloned(), line_user, now)?;
        if let Some(entry) = self.tickets.get_mut(key) {
            entry.1 = Some(now.timestamp_millis());
        }
        Ok(ticket)
    }
}

impl MemoryLinkStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // Every mutation completes before anything can panic: a poisoned map is consistent.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl LinkStore for MemoryLinkStore {
    async fn put_ticket(&self, ticket: &Ticket) -> Result<(), LinkStoreError> {
        let mut inner = self.lock();
        if inner.tickets.contains_key(&ticket.key) {
            return Err(LinkStoreError::DuplicateTicket(ticket.kind));
        }
        inner.tickets.insert(ticket.key.clone(), (ticket.clone(), None));
        Ok(())
    }

    async fn take_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        self.lock().take(kind, key, line_user, now)
    }

    async fn peek_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        check_ticket(kind, self.lock().tickets.get(key).cloned(), line_user, now)
    }

    async fn redeem_nonce(
        &self,
        key: &TicketKey,
        line_user: &LineUserId,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, LinkStoreError> {
        let mut inner = self.lock();
        let row = inner.tickets.get(key).cloned();
        let ticket = check_ticket(TicketKind::Nonce, row, Some(line_user), now)?;
        let Some(customer) = ticket.customer.clone() else {
            return Err(LinkStoreError::Corrupt("a nonce without a customer".into()));
        };
        inner.take(TicketKind::Nonce, key, Some(line_user), now)?;
        let plan = inner.plan(line_user, &customer, LinkSource::AccountLink, policy, now);
        let outcome = inner.apply(plan)?;
        Ok(Redeemed { ticket, outcome })
    }

    async fn fail_nonce(
        &self,
        key: &TicketKey,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let mut inner = self.lock();
        let ticket = inner.take(TicketKind::Nonce, key, None, now)?;
        inner.audit.push(failed_audit(&ticket, now));
        Ok(ticket)
    }

    async fn link(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, LinkStoreError> {
        let mut inner = self.lock();
        let plan = inner.plan(line_user, customer, source, policy, now);
        inner.apply(plan)
    }

    async fn unlink_user(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        let mut inner = self.lock();
        let removed = inner.links.remove(line_user);
        if let Some(l) = &removed {
            inner.by_customer.remove(&l.customer);
            inner.audit.push(unlink_audit(l, now));
        }
        Ok(removed)
    }

    async fn unlink_customer(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        let mut inner = self.lock();
        let removed = inner.by_customer.remove(customer).and_then(|u| inner.links.remove(&u));
        if let Some(l) = &removed {
            inner.audit.push(unlink_audit(l, now));
        }
        Ok(removed)
    }

    async fn link_of_user(&self, line_user: &LineUserId) -> Result<Option<Link>, LinkStoreError> {
        Ok(self.lock().links.get(line_user).cloned())
    }

    async fn link_of_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Link>, LinkStoreError> {
        let inner = self.lock();
        Ok(inner.by_customer.get(customer).and_then(|u| inner.links.get(u)).cloned())
    }

    async fn links_of_customers(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<CustomerLink>, LinkStoreError> {
        let inner = self.lock();
        Ok(customers
            .iter()
            .filter_map(|c| inner.by_customer.get(c).and_then(|u| inner.links.get(u)))
            .map(|l| CustomerLink::new(l.clone(), inner.follow.get(&l.line_user).cloned()))
            .collect())
    }

    async fn set_following(
        &self,
        line_user: &LineUserId,
        following: bool,
        at: DateTime<Utc>,
    ) -> Result<(), LinkStoreError> {
        let at = trunc_ms(at);
        let mut inner = self.lock();
        let entry = inner
            .follow
            .entry(line_user.clone())
            .or_insert(FollowStatus { following, updated_at: at });
        if at >= entry.updated_at {
            *entry = FollowStatus { following, updated_at: at };
        }
        Ok(())
    }

    async fn follow_status(
        &self,
        line_user: &LineUserId,
    ) -> Result<Option<FollowStatus>, LinkStoreError> {
        Ok(self.lock().follow.get(line_user).copied())
    }

    async fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, LinkStoreError> {
        Ok(self.lock().audit.iter().rev().take(limit).cloned().collect())
    }

    async fn purge_tickets(&self, now: DateTime<Utc>) -> Result<u64, LinkStoreError> {
        let cutoff = now.timestamp_millis().saturating_sub(TICKET_GRACE_MS);
        let mut inner = self.lock();
        let before = inner.tickets.len();
        inner.tickets.retain(|_, (t, consumed)| {
            t.expires_at.timestamp_millis() > cutoff && consumed.is_none_or(|c| c > cutoff)
        });
        Ok((before - inner.tickets.len()) as u64)
    }
}

fn grant_key(incentive: &str, customer: &CustomerId) -> (String, CustomerId) {
    (incentive.to_owned(), customer.clone())
}

/// Oldest first, then by incentive and customer (byte order, as the SQL stores sort).
fn unsettled_order(g: &IncentiveGrant) -> (DateTime<Utc>, &str, &str) {
    (g.claimed_at, &g.incentive, g.customer.as_str())
}

#[async_trait::async_trait]
impl IncentiveLedger for MemoryLinkStore {
    async fn claim(
        &self,
        incentive: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Claim, LinkStoreError> {
        check_incentive(incentive)?;
        let mut inner = self.lock();
        match inner.grants.entry(grant_key(incentive, customer)) {
            Entry::Occupied(e) => Ok(Claim::existing(e.get().clone())),
            Entry::Vacant(e) => {
                Ok(Claim::New(e.insert(IncentiveGrant::claimed(incentive, customer, now)).clone()))
            }
        }
    }

    async fn settle(
        &self,
        incentive: &str,
        customer: &CustomerId,
        state: GrantState,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IncentiveGrant, LinkStoreError> {
        check_settle(incentive, state, detail)?;
        let mut inner = self.lock();
        match inner.grants.get_mut(&grant_key(incentive, customer)) {
            Some(g) if !g.state.is_settled() => {
                *g = g.clone().settle(state, detail, now);
                Ok(g.clone())
            }
            found => Err(no_claim(incentive, customer, found.as_deref())),
        }
    }

    async fn release(&self, incentive: &str, customer: &CustomerId) -> Result<(), LinkStoreError> {
        check_incentive(incentive)?;
        let mut inner = self.lock();
        let key = grant_key(incentive, customer);
        match inner.grants.get(&key) {
            None => Ok(()),
            Some(g) if g.state.is_settled() => Err(no_claim(incentive, customer, Some(g))),
            Some(_) => {
                inner.grants.remove(&key);
                Ok(())
            }
        }
    }

    async fn grant_of(
        &self,
        incentive: &str,
        customer: &CustomerId,
    ) -> Result<Option<IncentiveGrant>, LinkStoreError> {
        check_incentive(incentive)?;
        Ok(self.lock().grants.get(&grant_key(incentive, customer)).cloned())
    }

    async fn unsettled(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<IncentiveGrant>, LinkStoreError> {
        let before = trunc_ms(older_than);
        let mut out: Vec<IncentiveGrant> = self
            .lock()
            .grants
            .values()
            .filter(|g| !g.state.is_settled() && g.claimed_at < before)
            .cloned()
            .collect();
        out.sort_by(|a, b| unsettled_order(a).cmp(&unsettled_order(b)));
        Ok(out)
    }
}
