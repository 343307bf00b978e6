//! [`Enishi::run`]: the loop a shop's process runs — periodic incremental sync, scenario ticks
//! when they fall due, scheduled campaigns, and dispatcher workers — until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{AppError, Enishi};
use crate::campaign::Campaign;
use crate::segment::SegmentDefinition;
use crate::storage::Leadership;

/// A campaign [`Enishi::run`] plans and enqueues once its time comes (on the app's clock).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduledCampaign {
    /// The campaign.
    pub campaign: Campaign,
    /// Its audience.
    pub segment: SegmentDefinition,
    /// When to plan it.
    pub at: DateTime<Utc>,
}

impl ScheduledCampaign {
    /// `campaign` to the members of `segment`, planned at `at`.
    #[must_use]
    pub fn new(campaign: Campaign, segment: SegmentDefinition, at: DateTime<Utc>) -> Self {
        Self { campaign, segment, at }
    }
}

/// How [`Enishi::run`] paces itself. The defaults suit a shop: sync every 5 minutes, look at
/// the scenarios every 10 s, two dispatcher workers polling every second.
#[derive(Debug, Clone)]
#[must_use]
pub struct RunOptions {
    sync_interval: Duration,
    tick_interval: Duration,
    dispatch_interval: Duration,
    workers: usize,
    campaigns: Vec<ScheduledCampaign>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_secs(300),
            tick_interval: Duration::from_secs(10),
            dispatch_interval: Duration::from_secs(1),
            workers: 2,
            campaigns: Vec::new(),
        }
    }
}

impl RunOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wall time between incremental syncs of the shop.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// Wall time between looks at the scenarios' next wake-up.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Wall time a dispatcher worker rests when nothing is due.
    pub fn dispatch_interval(mut self, interval: Duration) -> Self {
        self.dispatch_interval = interval;
        self
    }

    /// Dispatcher workers in this process (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Adds a campaign to plan and enqueue when its time comes.
    pub fn campaign(mut self, scheduled: ScheduledCampaign) -> Self {
        self.campaigns.push(scheduled);
        self
    }
}

/// What a [`Enishi::run`] did, once it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Syncs that succeeded.
    pub syncs: u64,
    /// Scenario ticks.
    pub ticks: u64,
    /// Scheduled campaigns this process planned.
    pub campaigns_planned: u64,
    /// Batches this process' workers got accepted.
    pub batches_sent: u64,
    /// Errors logged and retried.
    pub errors: u64,
    /// Per-user rich-menu switches during the run (full passes, links and follows).
    pub menu_switches: u64,
}

#[derive(Default)]
struct Counters {
    syncs: AtomicU64,
    ticks: AtomicU64,
    planned: AtomicU64,
    sent: AtomicU64,
    errors: AtomicU64,
    /// Scheduled campaigns planned by this process (an empty audience enqueues nothing).
    planned_ids: std::sync::Mutex<std::collections::HashSet<crate::CampaignId>>,
}

impl Counters {
    fn error(&self, what: &'static str, e: &AppError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("enishi_errors_total", "what" => what).increment(1);
        tracing::warn!(target: "enishi::app", what, error = %e, "failed; retrying later");
    }
}

impl Enishi {
    /// Runs the whole loop until `shutdown` completes:
    ///
    /// - one process of all sharing the storage leads (PostgreSQL advisory lock; SQLite and
    ///   memory belong to one process): it syncs the shop every
    ///   [`sync_interval`](RunOptions::sync_interval), ticks the scenarios when their next
    ///   wake-up has come, and plans the scheduled campaigns;
    /// - every process runs [`workers`](RunOptions::workers) dispatcher workers sending what
    ///   is due in the campaigns it knows;
    /// - with a [hub](super::EnishiBuilder::hub), every process runs its workers, forwarding
    ///   the queued webhooks to the other tools (a shared PostgreSQL queue leases each body to
    ///   one of them).
    ///
    /// Failures are logged, counted (`enishi_errors_total`) and retried on the next round; a
    /// lost lead is noticed and sought again. On shutdown the workers stop claiming and finish
    /// (and write back) the sends in flight, so nothing waits for a lease.
    ///
    /// # Errors
    /// Never at present; the `Result` leaves room for setup failures.
    pub async fn run(
        &self,
        options: RunOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RunReport, AppError> {
        let counters = Arc::new(Counters::default());
        let menu_switches = self.rich_menu_switches();
        let (stop_tx, stop_rx) = watch::channel(false);
        for s in &options.campaigns {
            self.watch_campaign(s.campaign.id().clone());
        }
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (app, options, counters, stop) =
                (self.clone(), options.clone(), Arc::clone(&counters), stop_rx.clone());
            tasks.spawn(async move { app.lead(&options, &counters, stop).await });
        }
        for _ in 0..options.workers {
            let (app, counters, stop) = (self.clone(), Arc::clone(&counters), stop_rx.clone());
            let interval = options.dispatch_interval;
            tasks.spawn(async move { app.work(interval, &counters, stop).await });
        }
        // The webhook hub's workers forward the queued bodies to the other tools.
        let hub = self.inner.hub.as_ref().map(crate::hub::Hub::spawn);
        shutdown.await;
        tracing::info!(target: "enishi::app", "shutting down: finishing the sends in flight");
        self.inner.dispatcher.stop();
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        if let Some(hub) = hub {
            hub.shutdown().await;
        }
        let report = RunReport {
            syncs: counters.syncs.load(Ordering::Relaxed),
            ticks: counters.ticks.load(Ordering::Relaxed),
            campaigns_planned: counters.planned.load(Ordering::Relaxed),
            batches_sent: counters.sent.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            menu_switches: self.rich_menu_switches() - menu_switches,
        };
        tracing::info!(target: "enishi::app", ?report, "stopped");
        Ok(report)
    }

    /// A dispatcher worker: sends what is due, rests, again.
    async fn work(&self, interval: Duration, counters: &Counters, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.dispatch_due().await {
                Ok(sent) => {
                    counters.sent.fetch_add(sent, Ordering::Relaxed);
                    if sent > 0 {
                        continue;
                    }
                }
                Err(e) => counters.error("dispatch", &e),
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Seeks the lead; while leading, syncs, ticks and plans scheduled campaigns.
    async fn lead(
        &self,
        options: &RunOptions,
        counters: &Counters,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut lead: Option<Leadership> = None;
        let mut last_sync: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            if lead.as_ref().is_some_and(|l| !l.is_held()) {
                tracing::warn!(target: "enishi::app", "lost the lead (database connection)");
                lead = None;
            }
            if lead.is_none() {
                match self.storage().try_lead("enishi.lead").await {
                    Ok(Some(l)) => {
                        tracing::info!(target: "enishi::app", "leading: sync, ticks, campaigns");
                        // Another process may have led meanwhile: read everything afresh.
                        self.unload().await;
                        lead = Some(l);
                        last_sync = None;
                    }
                    Ok(None) => {}
                    Err(e) => counters.error("lead", &AppError::Storage(e)),
                }
            }
            if lead.is_some() {
                self.lead_round(options, counters, &mut last_sync).await;
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(options.tick_interval) => {}
            }
        }
    }

    async fn lead_round(
        &self,
        options: &RunOptions,
        counters: &Counters,
        last_sync: &mut Option<tokio::time::Instant>,
    ) {
        let sync_due = last_sync.is_none_or(|at| at.elapsed() >= options.sync_interval);
        let mut changed = false;
        if sync_due && self.inner.commerce.is_some() {
            match self.sync().await {
                Ok(summary) => {
                    changed = summary.changed > 0;
                    counters.syncs.fetch_add(1, Ordering::Relaxed);
                    *last_sync = Some(tokio::time::Instant::now());
                }
                Err(e) => return counters.error("sync", &e),
            }
        }
        if let Err(e) = self.plan_scheduled(options, counters).await {
            counters.error("campaign", &e);
        }
        let due = self.next_wake().await.is_some_and(|at| at <= self.now());
        if due || sync_due {
            match self.tick().await {
                Ok(_) => {
                    counters.ticks.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => counters.error("tick", &e),
            }
        }
        if let Err(e) = self.menu_round(changed).await {
            counters.error("rich_menu", &e);
        }
    }

    /// Plans the scheduled campaigns whose time has come and that the journal does not hold
    /// yet (a plan is enqueued in one call, so a crash leaves all of it or none).
    async fn plan_scheduled(
        &self,
        options: &RunOptions,
        counters: &Counters,
    ) -> Result<(), AppError> {
        let now = self.now();
        let journal = self.storage().journal();
        for s in options.campaigns.iter().filter(|s| s.at <= now) {
            let done = |c: &Counters| {
                c.planned_ids
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(s.campaign.id())
            };
            if done(counters) || journal.counts(s.campaign.id()).await?.batches() > 0 {
                continue;
            }
            let plan = self.plan(&s.campaign, &s.segment).await?;
            let enqueued = self.enqueue(plan).await?;
            counters.planned.fetch_add(1, Ordering::Relaxed);
            counters
                .planned_ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(s.campaign.id().clone());
            tracing::info!(
                target: "enishi::app",
                campaign = s.campaign.id().as_str(),
                batches = enqueued,
                "scheduled campaign enqueued"
            );
        }
        Ok(())
    }

    /// Forgets the in-memory state; the next call reads it from the storage.
    async fn unload(&self) {
        self.inner.brain.lock().await.unload();
    }
}
