//! The channel dispatcher: claims a campaign's batches from the journal and sends each through
//! its channel, under per-channel rate limits.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::optout::{OptOutStore, UnsubscribeLinks};
use super::route::Contacts;
use super::{Address, Channel, ChannelError, ChannelKind, ChannelSend, Purpose, route};
use crate::campaign::{Batch, BatchOutcome, Claimed, DeliveryJournal, FailureKind, JournalError};
use crate::{BatchId, CampaignId};

/// What one [`ChannelDispatcher::run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelRun {
    /// Batches sent (accepted by the channel), by channel.
    pub sent: HashMap<ChannelKind, u64>,
    /// Batches failed for good.
    pub failed: u64,
    /// Batches put back for a later attempt.
    pub retried: u64,
    /// Batches whose provider refused the recipient and whose message went on to the next
    /// channel of the step's order (a new batch in the journal); also counted in `failed`.
    pub fell_through: u64,
    /// The run stopped on [`crash_after`](ChannelDispatcherBuilder::crash_after), leaving
    /// its claimed batches in flight as a crashed worker would.
    pub crashed: bool,
}

impl ChannelRun {
    /// Sends on all channels.
    #[must_use]
    pub fn total_sent(&self) -> u64 {
        self.sent.values().sum()
    }
}

/// Paces one channel: at most `per_second` sends per second.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Sends a campaign's batches from a [`DeliveryJournal`] through their [`Channel`]s.
///
/// A batch's transport says its channel; the customer's address is looked up at send time in
/// [`Contacts`] (and checked again), and an opt-out recorded since planning stops the send. Each
/// batch is claimed under a lease; a worker that crashes leaves its batches in flight and any
/// worker sends them once the lease runs out (LINE push with the same retry key; e-mail with
/// the same `Message-ID`).
pub struct ChannelDispatcher {
    journal: Arc<dyn DeliveryJournal>,
    contacts: Arc<dyn Contacts>,
    channels: HashMap<ChannelKind, Arc<dyn Channel>>,
    pacers: HashMap<ChannelKind, Pacer>,
    opt_outs: Option<Arc<dyn OptOutStore>>,
    links: Option<UnsubscribeLinks>,
    worker: String,
    lease: Duration,
    claim: usize,
    max_attempts: u32,
    retry_after: Duration,
    poll: Duration,
    crash_after: Option<u64>,
}

impl fmt::Debug for ChannelDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDispatcher")
            .field("worker", &self.worker)
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ChannelDispatcher`]; [`build`](Self::build) reports the first invalid value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct ChannelDispatcherBuilder {
    inner: ChannelDispatcher,
    rates: Vec<(ChannelKind, u32)>,
}

impl fmt::Debug for ChannelDispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDispatcherBuilder")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ChannelDispatcherBuilder {
    /// Adds a channel (one per kind; a later one replaces an earlier).
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.inner.channels.insert(channel.kind(), channel);
        self
    }

    /// At most `per_second` sends per second on `channel` (default: unpaced; LINE is paced by
    /// its client's rate limiter anyway).
    pub fn rate_limit(mut self, channel: ChannelKind, per_second: u32) -> Self {
        self.rates.push((channel, per_second));
        self
    }

    /// Opt-outs checked before every send.
    pub fn opt_outs(mut self, store: Arc<dyn OptOutStore>) -> Self {
        self.inner.opt_outs = Some(store);
        self
    }

    /// Unsubscribe links put in every e-mail (and its `List-Unsubscribe` header).
    pub fn unsubscribe_links(mut self, links: UnsubscribeLinks) -> Self {
        self.inner.links = Some(links);
        self
    }

    /// The worker's name (default `channel-worker-<pid>`).
    pub fn worker(mut self, name: impl Into<String>) -> Self {
        self.inner.worker = name.into();
        self
    }

    /// How long a claimed batch belongs to this worker (default 2 minutes).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.inner.lease = lease;
        self
    }

    /// How often an idle worker looks for due batches (default 200 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.inner.poll = interval;
        self
    }

    /// Attempts before a retryable failure becomes final (default 5).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.inner.max_attempts = attempts;
        self
    }

    /// The wait before a retryable failure is tried again (default 5 s).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.inner.retry_after = wait;
        self
    }

    /// Crash drill: after `sends` sends the run returns at once, leaving the batches it has
    /// claimed but not sent in flight, as a worker killed at that moment would. For tests and
    /// demos of crash recovery.
    pub fn crash_after(mut self, sends: u64) -> Self {
        self.inner.crash_after = Some(sends);
        self
    }

    /// Builds the dispatcher.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] for a zero lease, attempt count or rate, an empty worker
    /// name, or no channel at all.
    pub fn build(mut self) -> Result<ChannelDispatcher, ChannelError> {
        let bad = |message: &str| ChannelError::Unsupported {
            channel: ChannelKind::Line,
            message: format!("invalid channel dispatcher configuration: {message}"),
        };
        if self.inner.channels.is_empty() {
            return Err(bad("add at least one channel"));
        }
        if self.inner.lease.is_zero() || self.inner.max_attempts == 0 {
            return Err(bad("the lease and max_attempts must be above zero"));
        }
        if self.inner.worker.trim().is_empty() {
            return Err(bad("the worker name must not be empty"));
        }
        for (channel, rate) in self.rates {
            if rate == 0 {
                return Err(bad("a rate limit must be at least 1 per second"));
            }
            self.inner.pacers.insert(
                channel,
                Pacer { interval: Duration::from_secs(1) / rate, next: Mutex::new(Instant::now()) },
            );
        }
        Ok(self.inner)
    }
}

enum Fate {
    Sent(ChannelKind),
    Failed,
    FellThrough,
    Retry,
}

impl ChannelDispatcher {
    /// A builder over `journal`, looking customers up in `contacts`.
    pub fn builder(
        journal: Arc<dyn DeliveryJournal>,
        contacts: Arc<dyn Contacts>,
    ) -> ChannelDispatcherBuilder {
        ChannelDispatcherBuilder {
            inner: Self {
                journal,
                contacts,
                channels: HashMap::new(),
                pacers: HashMap::new(),
                opt_outs: None,
                links: None,
                worker: format!("channel-worker-{}", std::process::id()),
                lease: Duration::from_secs(120),
                claim: 16,
                max_attempts: 5,
                retry_after: Duration::from_secs(5),
                poll: Duration::from_millis(200),
                crash_after: None,
            },
            rates: Vec::new(),
        }
    }

    /// Sends the batches of `campaign` until none is pending or in flight (waiting for
    /// batches scheduled later and for other workers' leases to run out).
    ///
    /// # Errors
    /// [`ChannelError::Transient`] when the journal fails (batches this worker held stay in
    /// flight until their lease runs out).
    pub async fn run(&self, campaign: &CampaignId) -> Result<ChannelRun, ChannelError> {
        let mut run = ChannelRun::default();
        let mut sends = 0u64;
        loop {
            let claimed = self
                .journal
                .claim(campaign, &self.worker, self.claim, Utc::now(), self.lease)
                .await
                .map_err(journal_err)?;
            if claimed.is_empty() {
                let counts = self.journal.counts(campaign).await.map_err(journal_err)?;
                if counts.is_finished() {
                    return Ok(run);
                }
                tokio::time::sleep(self.poll).await;
                continue;
            }
            for c in claimed {
                if self.crash_after.is_some_and(|k| sends >= k) {
                    tracing::warn!(target: "enishi::channel", worker = %self.worker, "crash drill: stopping with batches in flight");
                    run.crashed = true;
                    return Ok(run);
                }
                match self.one(c).await? {
                    Fate::Sent(kind) => {
                        *run.sent.entry(kind).or_default() += 1;
                        sends += 1;
                    }
                    Fate::Failed => run.failed += 1,
                    Fate::FellThrough => {
                        run.failed += 1;
                        run.fell_through += 1;
                    }
                    Fate::Retry => run.retried += 1,
                }
            }
        }
    }

    async fn fail(
        &self,
        c: &Claimed,
        kind: FailureKind,
        error: String,
    ) -> Result<Fate, ChannelError> {
        tracing::info!(target: "enishi::channel", batch = %c.batch.id, %error, "batch failed");
        let outcome = BatchOutcome::Failed { kind, status: None, request_id: None, error };
        self.journal.complete(&c.batch.id, &outcome, Utc::now()).await.map_err(journal_err)?;
        Ok(Fate::Failed)
    }

    async fn one(&self, c: Claimed) -> Result<Fate, ChannelError> {
        let batch = &c.batch;
        let Some(kind) = ChannelKind::of_transport(batch.transport) else {
            return self.fail(&c, FailureKind::Rejected, "unknown transport".into()).await;
        };
        let Some(channel) = self.channels.get(&kind) else {
            return self
                .fail(&c, FailureKind::Rejected, format!("no {kind} channel is configured"))
                .await;
        };
        let [recipient] = batch.recipients.as_slice() else {
            return self
                .fail(&c, FailureKind::Rejected, "a channel batch has exactly one recipient".into())
                .await;
        };
        let customer = &recipient.customer;
        let reach = self.contacts.reach(customer).await?;
        let address = match (kind, reach.as_ref()) {
            // LINE push goes to the user in the batch (it is the address planned).
            (ChannelKind::Line, _) => Address::Line(recipient.line_user.clone()),
            (_, None) => {
                return self
                    .fail(
                        &c,
                        FailureKind::InvalidRecipient,
                        "the customer is no longer known".into(),
                    )
                    .await;
            }
            (_, Some(reach)) => {
                // The address as it is now, checked again; consent was checked when planning.
                match route::check(kind, Purpose::Transactional, reach, &|_| true, &|_| false) {
                    Ok(a) => a,
                    Err(skip) => {
                        return self.refused(&c, Some(reach), format!("{kind}: {skip}")).await;
                    }
                }
            }
        };
        if let Some(store) = &self.opt_outs
            && store.is_opted_out(customer, kind).await?
        {
            return self
                .fail(&c, FailureKind::Rejected, format!("the customer unsubscribed from {kind}"))
                .await;
        }
        let mut send = ChannelSend::new(
            batch.id.clone(),
            batch.campaign.clone(),
            customer.clone(),
            address,
            batch.messages.clone(),
        );
        send.retry_key = batch.retry_key.clone();
        if let Some(links) = &self.links
            && kind != ChannelKind::Line
        {
            send.unsubscribe_url = Some(links.url(customer, kind));
        }
        if let Some(pacer) = self.pacers.get(&kind) {
            pacer.wait().await;
        }
        match channel.send(&send).await {
            Ok(receipt) => {
                let outcome = BatchOutcome::Accepted {
                    request_id: receipt
                        .provider_id
                        .as_deref()
                        .and_then(|id| crate::RequestId::new(id).ok()),
                    already_accepted: receipt.already_accepted,
                };
                self.journal
                    .complete(&batch.id, &outcome, Utc::now())
                    .await
                    .map_err(journal_err)?;
                Ok(Fate::Sent(kind))
            }
            Err(e) if e.is_retryable() && c.attempts < self.max_attempts => {
                tracing::info!(target: "enishi::channel", batch = %batch.id, error = %e, "retrying later");
                let at = Utc::now()
                    + chrono::TimeDelta::from_std(self.retry_after)
                        .unwrap_or(chrono::TimeDelta::seconds(5));
                self.journal.release(&batch.id, at, Utc::now()).await.map_err(journal_err)?;
                Ok(Fate::Retry)
            }
            Err(e) if e.failure_kind() == FailureKind::InvalidRecipient => {
                self.refused(&c, reach.as_ref(), crate::error::chain_message(&e)).await
            }
            Err(e) => {
                let kind = e.failure_kind();
                self.fail(&c, kind, crate::error::chain_message(&e)).await
            }
        }
    }

    /// The batch's channel cannot reach the customer (the provider refused the recipient, or
    /// the address is no longer valid): the message falls through to the first of the
    /// batch's fallbacks that can carry it now, as a new batch in the same journal whose ID
    /// extends this one's, written **before** this batch is failed with the reason. A crash in
    /// between leaves this batch in flight; its next attempt is refused again and writes the
    /// same fallback batch once more, which the journal keeps once. Without a usable fallback
    /// the batch fails as [`FailureKind::InvalidRecipient`].
    async fn refused(
        &self,
        c: &Claimed,
        reach: Option<&route::Reach>,
        why: String,
    ) -> Result<Fate, ChannelError> {
        let batch = &c.batch;
        let mut passed = Vec::new();
        for (i, fb) in batch.fallbacks.iter().enumerate() {
            let Some(kind) = ChannelKind::of_transport(fb.transport) else { continue };
            if !self.channels.contains_key(&kind) {
                passed.push(format!("{kind}: not configured"));
                continue;
            }
            let usable = match (kind, reach) {
                (_, None) => Err("the customer is no longer known".to_owned()),
                (ChannelKind::Line, Some(_)) => Ok(()),
                (_, Some(r)) => {
                    route::check(kind, Purpose::Transactional, r, &|_| true, &|_| false)
                        .map(|_| ())
                        .map_err(|skip| skip.to_string())
                }
            };
            if let Err(skip) = usable {
                passed.push(format!("{kind}: {skip}"));
                continue;
            }
            if let Some(store) = &self.opt_outs
                && store.is_opted_out(&batch.recipients[0].customer, kind).await?
            {
                passed.push(format!("{kind}: unsubscribed"));
                continue;
            }
            let Ok(id) = BatchId::new(format!("{}/{kind}", batch.id)) else {
                passed.push(format!("{kind}: the batch ID would be too long"));
                continue;
            };
            let next = Batch::new(
                id.clone(),
                batch.campaign.clone(),
                fb.transport,
                batch.recipients.clone(),
                fb.messages.clone(),
                batch.not_before.max(Utc::now()),
            )
            .with_fallbacks(batch.fallbacks[i + 1..].to_vec());
            match self.journal.enqueue(std::slice::from_ref(&next)).await {
                Ok(_) | Err(JournalError::Conflict(_)) => {}
                Err(e) => return Err(journal_err(e)),
            }
            let mut error = why;
            for p in passed {
                error.push_str(&format!("; passed over {p}"));
            }
            error.push_str(&format!("; falls through to {kind} as batch {id}"));
            tracing::info!(target: "enishi::channel", batch = %batch.id, next = %id, %error, "falling through to the next channel");
            let outcome = BatchOutcome::Failed {
                kind: FailureKind::InvalidRecipient,
                status: None,
                request_id: None,
                error,
            };
            self.journal.complete(&batch.id, &outcome, Utc::now()).await.map_err(journal_err)?;
            return Ok(Fate::FellThrough);
        }
        let mut error = why;
        for p in passed {
            error.push_str(&format!("; passed over {p}"));
        }
        self.fail(c, FailureKind::InvalidRecipient, error).await
    }
}

fn journal_err(e: JournalError) -> ChannelError {
    ChannelError::Transient {
        channel: ChannelKind::Line,
        message: "the delivery journal failed".into(),
        source: Some(Box::new(e)),
    }
}
