//! The dispatcher: claims due batches from the journal and sends them to LINE with bounded
//! concurrency under the client's rate limiter.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::control::CampaignControl;
use super::progress::{Progress, Tracker};
use super::report::{DeliveryReport, RunStats, RunStatus};
use super::step::{Action, Sent, step};
use crate::CampaignId;
use crate::campaign::batch::{Batch, BatchOutcome, CampaignState, PauseReason, Transport};
use crate::campaign::journal::{Claimed, DeliveryJournal, JournalError};
use crate::line::{Accepted, LineClient, LineError, MulticastRequest, PushRequest, Recipient};
use crate::retry::{Backoff, RetryRule};

/// A dispatcher run failed (the journal could not be read or written, or the configuration
/// is invalid). Send failures are not errors: they are in the [`DeliveryReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The delivery journal failed. Batches this worker held stay in flight until their lease
    /// runs out; then any worker sends them again with the same retry key.
    #[error("dispatching campaign `{campaign}` failed in the delivery journal")]
    Journal {
        /// The campaign.
        campaign: CampaignId,
        /// The journal's error.
        #[source]
        source: JournalError,
    },
    /// The dispatcher was configured with an invalid value.
    #[error("invalid dispatcher configuration: {0}")]
    Config(String),
    /// The lease is not longer than one send with all of the client's retries, so another
    /// worker could re-send a batch while this one is still sending it.
    #[error(
        "invalid dispatcher configuration: the lease ({lease:?}) must be longer than one send \
         with all of the LINE client's retries ({retry_budget:?}: its retry policy's \
         max_elapsed plus one request timeout); lengthen the lease or shorten the retries"
    )]
    LeaseTooShort {
        /// The configured lease.
        lease: Duration,
        /// The longest one send may take with all of the client's retries.
        retry_budget: Duration,
    },
}

/// Sends the batches of a campaign from a [`DeliveryJournal`], exactly once each.
///
/// Every batch is in the journal, with its `X-Line-Retry-Key`, before it is sent. A worker
/// claims due batches (the journal hands each to one worker at a time, under a lease), sends
/// them with at most [`concurrency`](DispatcherBuilder::concurrency) requests in flight, paced
/// by the [`LineClient`]'s rate limiter (shared by all clones of the client, and across
/// processes when the client uses a shared limiter), and writes each outcome back. A worker
/// that crashes leaves its batches in flight; when their lease runs out any worker re-sends
/// them with the same retry key, and LINE answers 409 for those it had accepted.
///
/// Several dispatchers (in one process or on several machines) may run the same campaign on
/// one shared journal.
///
/// ```no_run
/// # async fn run(client: enishi::line::LineClient, plan: Vec<enishi::campaign::Batch>)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use enishi::campaign::{DeliveryJournal, Dispatcher, MemoryJournal};
///
/// let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
/// journal.enqueue(&plan).await?;
/// let dispatcher = Dispatcher::builder(client, journal).worker("worker-1").build()?;
/// let report = dispatcher.run(&"spring-sale".parse()?).await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct Dispatcher {
    shared: Arc<Shared>,
    concurrency: usize,
    claim_chunk: usize,
    lease: Duration,
    poll_interval: Duration,
    progress_interval: Duration,
    max_attempts: u32,
    progress: watch::Sender<Progress>,
    /// Set by [`Dispatcher::stop`]: claim nothing more.
    stopping: Arc<AtomicBool>,
}

/// What the send tasks share.
struct Shared {
    client: LineClient,
    journal: Arc<dyn DeliveryJournal>,
    worker: String,
    /// Back-off and attempt budget of batches that failed retryably.
    retry: RetryRule,
    /// Jitter for the back-off (seeded by [`DispatcherBuilder::jitter_seed`]).
    rng: Mutex<StdRng>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("worker", &self.shared.worker)
            .field("client", &self.shared.client)
            .field("journal", &self.shared.journal)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Dispatcher`]. Setters never fail; [`build`](Self::build) reports the first
/// invalid value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct DispatcherBuilder {
    client: LineClient,
    journal: Arc<dyn DeliveryJournal>,
    worker: Option<String>,
    concurrency: usize,
    lease: Duration,
    backoff: (Duration, Duration),
    max_attempts: u32,
    poll_interval: Duration,
    progress_interval: Duration,
    jitter_seed: Option<u64>,
}

impl fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("worker", &self.worker)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("backoff", &self.backoff)
            .field("max_attempts", &self.max_attempts)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl DispatcherBuilder {
    /// The worker's name, recorded with its claims (default: `<hostname-less pid>-<random>`).
    /// Give each worker its own name.
    pub fn worker(mut self, name: impl Into<String>) -> Self {
        self.worker = Some(name.into());
        self
    }

    /// The most sends in flight at once (default 64, at least 1). The client's rate limiter
    /// paces them; concurrency only has to cover the latency (2,000 push/s at 20 ms needs 40).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// How long a claimed batch belongs to this worker (default 2 minutes). If the worker dies,
    /// other workers (or the restarted one) send the batch again after this long, with the same
    /// retry key. It must be longer than one send with all the client's retries (the client's
    /// [`RetryPolicy::max_elapsed`](crate::line::RetryPolicy::max_elapsed) plus one
    /// [request timeout](crate::line::LineClientBuilder::request_timeout)):
    /// [`build`](Self::build) checks.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Back-off for batches that failed retryably after the client's own retries: the batch
    /// goes back to the journal, due again after `initial` doubling per attempt up to `max`,
    /// with jitter (default 1 s to 60 s).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// How many times this worker sends a batch that keeps failing retryably before it records
    /// it as failed (default 5, at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Seeds the RNG that jitters the retry back-off, for reproducible runs (default: seeded
    /// from the thread-local RNG).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// How often an idle worker looks for due batches and for state changes (default 200 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How often progress is refreshed from the journal's counts (default 1 s).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Builds the dispatcher.
    ///
    /// # Errors
    /// [`DispatchError::Config`] for a zero concurrency, lease or attempt count, or an empty
    /// worker name; [`DispatchError::LeaseTooShort`] when the lease does not outlast one send
    /// with all of the client's retries.
    pub fn build(self) -> Result<Dispatcher, DispatchError> {
        if self.concurrency == 0 {
            return Err(DispatchError::Config("concurrency must be at least 1".into()));
        }
        if self.max_attempts == 0 {
            return Err(DispatchError::Config("max_attempts must be at least 1".into()));
        }
        if self.lease.is_zero() {
            return Err(DispatchError::Config("the lease must be longer than zero".into()));
        }
        let retry_budget = send_budget(&self.client);
        if self.lease <= retry_budget {
            return Err(DispatchError::LeaseTooShort { lease: self.lease, retry_budget });
        }
        let worker = match self.worker {
            Some(w) if w.trim().is_empty() => {
                return Err(DispatchError::Config("the worker name must not be empty".into()));
            }
            Some(w) => w,
            None => format!("worker-{}-{:08x}", std::process::id(), rand::rng().random::<u32>()),
        };
        let (progress, _) = watch::channel(Progress::default());
        let (initial, max) = self.backoff;
        let rng = match self.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Ok(Dispatcher {
            shared: Arc::new(Shared {
                client: self.client,
                journal: self.journal,
                worker,
                retry: RetryRule::new(Backoff::exponential(initial, max))
                    .max_attempts(self.max_attempts),
                rng: Mutex::new(rng),
            }),
            concurrency: self.concurrency,
            // Claim in chunks so a fast campaign does not make one journal round trip per send.
            claim_chunk: (self.concurrency / 4).max(1),
            lease: self.lease,
            poll_interval: self.poll_interval.max(Duration::from_millis(1)),
            progress_interval: self.progress_interval,
            max_attempts: self.max_attempts,
            progress,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// What one send task ended with.
enum Done {
    Sent {
        recipients: u64,
        already_accepted: bool,
    },
    Failed,
    /// Back to pending after a retryable failure.
    Released,
    /// Back to pending without a request to LINE (the campaign stopped, or the shared rate
    /// limiter could not be reached): not an attempt.
    NotSent,
    /// Back to pending, and the campaign is paused for this reason.
    Paused {
        reason: PauseReason,
    },
}

impl Dispatcher {
    /// A builder for a dispatcher sending through `client`, with `journal` shared by all
    /// workers of a campaign.
    pub fn builder(client: LineClient, journal: Arc<dyn DeliveryJournal>) -> DispatcherBuilder {
        DispatcherBuilder {
            client,
            journal,
            worker: None,
            concurrency: 64,
            lease: Duration::from_secs(120),
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            max_attempts: 5,
            poll_interval: Duration::from_millis(200),
            progress_interval: Duration::from_secs(1),
            jitter_seed: None,
        }
    }

    /// The worker's name.
    #[must_use]
    pub fn worker(&self) -> &str {
        &self.shared.worker
    }

    /// Progress of the current (or last) run; the receiver sees every update while
    /// [`run`](Self::run) is going.
    #[must_use]
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// A handle to pause, resume or cancel `campaign` (for every worker sharing the journal).
    #[must_use]
    pub fn control(&self, campaign: &CampaignId) -> CampaignControl {
        CampaignControl::new(Arc::clone(&self.shared.journal), campaign.clone())
    }

    /// Sends the due batches of `campaign` until none is pending or in flight (waiting for
    /// batches scheduled later and for other workers' batches), or until the campaign is paused
    /// or cancelled. Returns the report of the whole campaign as the journal has it.
    ///
    /// A paused campaign (operator, or LINE's monthly quota exhausted) returns at once with
    /// [`RunStatus::Paused`]; [`CampaignControl::resume`] and a new `run` continue where it
    /// stopped.
    ///
    /// # Errors
    /// [`DispatchError::Journal`] when the journal fails.
    pub async fn run(&self, campaign: &CampaignId) -> Result<DeliveryReport, DispatchError> {
        self.run_until(campaign, false).await
    }

    /// Stops claiming, for a graceful shutdown: every run (of this dispatcher and its clones'
    /// callers) returns once the sends it has in flight are finished and written back, so
    /// nothing is left in flight to wait for its lease. Not undone.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether [`stop`](Self::stop) was called.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Sends the batches of `campaign` that are due now, and returns once none is due and
    /// none of this worker's sends is in flight: batches scheduled later (a scenario's next
    /// step, after quiet hours) wait for a later call. What a long-running service's workers
    /// call in a loop over the campaigns they know. The report is the campaign's as the
    /// journal has it.
    ///
    /// # Errors
    /// [`DispatchError::Journal`] when the journal fails.
    pub async fn run_due(&self, campaign: &CampaignId) -> Result<DeliveryReport, DispatchError> {
        self.run_until(campaign, true).await
    }

    async fn run_until(
        &self,
        campaign: &CampaignId,
        until_idle: bool,
    ) -> Result<DeliveryReport, DispatchError> {
        let err = |source| DispatchError::Journal { campaign: campaign.clone(), source };
        let mut run = self.start(campaign).await.map_err(err)?;
        run.until_idle = until_idle;
        loop {
            match self.claim_more(campaign, &mut run).await.map_err(err)? {
                Flow::Again => {}
                Flow::Collect => self.collect(campaign, &mut run).await.map_err(err)?,
                Flow::Finished => break,
            }
        }
        self.finish(campaign, run).await.map_err(err)
    }

    /// Reads where the campaign stands and publishes the first progress.
    async fn start(&self, campaign: &CampaignId) -> Result<Run, JournalError> {
        let journal = &self.shared.journal;
        let tracker = Tracker::new(journal.counts(campaign).await?, journal.state(campaign).await?);
        let run = Run {
            started: Instant::now(),
            tracker,
            halt: Arc::new(AtomicBool::new(false)),
            tasks: JoinSet::new(),
            stats: RunStats { worker: self.shared.worker.clone(), ..RunStats::default() },
            stopped: None,
            last_refresh: Instant::now(),
            until_idle: false,
        };
        self.progress.send_replace(run.tracker.snapshot(run.started.elapsed()));
        Ok(run)
    }

    /// Claims due batches into free slots and spawns their sends; notices a stopped campaign
    /// and the end of the work.
    async fn claim_more(&self, campaign: &CampaignId, run: &mut Run) -> Result<Flow, JournalError> {
        let journal = &self.shared.journal;
        let room = self.concurrency - run.tasks.len();
        let stopping = self.stopping.load(Ordering::Relaxed);
        if stopping && run.tasks.is_empty() {
            return Ok(Flow::Finished);
        }
        let wants_claim = run.stopped.is_none()
            && !stopping
            && (run.tasks.is_empty() || room >= self.claim_chunk);
        if wants_claim {
            let claimed =
                journal.claim(campaign, &self.shared.worker, room, Utc::now(), self.lease).await?;
            if !claimed.is_empty() {
                for claim in claimed {
                    let shared = Arc::clone(&self.shared);
                    let halt = Arc::clone(&run.halt);
                    run.tasks.spawn(async move { shared.send_batch(claim, &halt).await });
                }
                return Ok(Flow::Again);
            }
            let state = journal.state(campaign).await?;
            if state != CampaignState::Running {
                tracing::info!(
                    target: "enishi::dispatch",
                    campaign = campaign.as_str(),
                    worker = self.shared.worker.as_str(),
                    state = ?state,
                    "campaign stopped: draining the sends in flight"
                );
                run.halt.store(true, Ordering::Relaxed);
                run.tracker.set_state(state.clone());
                run.stopped = Some(state);
                return Ok(Flow::Again);
            }
            if run.tasks.is_empty() {
                let counts = journal.counts(campaign).await?;
                let finished = counts.is_finished();
                run.tracker.refresh(counts);
                self.progress.send_replace(run.tracker.snapshot(run.started.elapsed()));
                if finished || run.until_idle {
                    return Ok(Flow::Finished);
                }
                // Batches due later, or held by another worker: look again soon.
                tokio::time::sleep(self.poll_interval).await;
                return Ok(Flow::Again);
            }
        }
        if run.tasks.is_empty() {
            return Ok(if run.stopped.is_some() { Flow::Finished } else { Flow::Again });
        }
        Ok(Flow::Collect)
    }

    /// Waits for sends to finish, but not longer than a poll, so state changes and batches
    /// that became due are seen while all slots are busy; records what they did.
    async fn collect(&self, campaign: &CampaignId, run: &mut Run) -> Result<(), JournalError> {
        let joined = tokio::select! {
            joined = run.tasks.join_next() => joined,
            () = tokio::time::sleep(self.poll_interval) => None,
        };
        let mut finished: Vec<_> = joined.into_iter().collect();
        while let Some(more) = run.tasks.try_join_next() {
            finished.push(more);
        }
        for joined in finished {
            match joined {
                Ok(done) => run.record(done?),
                // A send task panicked (a bug): its batch stays in flight until the lease runs
                // out and is then re-sent with its retry key.
                Err(e) => tracing::error!(
                    target: "enishi::dispatch",
                    campaign = campaign.as_str(),
                    error = %e,
                    "a send task panicked; its batch is re-sent when its lease runs out"
                ),
            }
        }
        if run.last_refresh.elapsed() >= self.progress_interval {
            run.last_refresh = Instant::now();
            run.tracker.refresh(self.shared.journal.counts(campaign).await?);
        }
        self.progress.send_replace(run.tracker.snapshot(run.started.elapsed()));
        Ok(())
    }

    /// Settles a cancel, reads the final counts and builds the report.
    async fn finish(
        &self,
        campaign: &CampaignId,
        mut run: Run,
    ) -> Result<DeliveryReport, JournalError> {
        let journal = &self.shared.journal;
        let state = journal.state(campaign).await?;
        if state == CampaignState::Cancelled {
            // Batches released while the cancel was under way went back to pending: cancel
            // them too.
            journal.set_state(campaign, &state, Utc::now()).await?;
        }
        let counts = journal.counts(campaign).await?;
        let status = match state {
            CampaignState::Cancelled => RunStatus::Cancelled,
            CampaignState::Paused { reason } if !counts.is_finished() => {
                RunStatus::Paused { reason: reason.to_string() }
            }
            _ if counts.is_finished() => RunStatus::Completed,
            // Running but stopped: only when the pause was lifted while this run drained.
            _ => match run.stopped {
                Some(CampaignState::Paused { reason }) => {
                    RunStatus::Paused { reason: reason.to_string() }
                }
                _ => RunStatus::Completed,
            },
        };
        run.tracker.refresh(counts);
        let elapsed = run.started.elapsed();
        self.progress.send_replace(run.tracker.snapshot(elapsed));
        run.stats.elapsed_secs = elapsed.as_secs_f64();
        let records = journal.records(campaign).await?;
        Ok(DeliveryReport::from_records(campaign.clone(), status, &records, run.stats))
    }
}

/// One `run` in progress.
struct Run {
    started: Instant,
    tracker: Tracker,
    /// Set once the campaign stops: claimed batches go back unsent.
    halt: Arc<AtomicBool>,
    tasks: JoinSet<Result<Done, JournalError>>,
    stats: RunStats,
    stopped: Option<CampaignState>,
    last_refresh: Instant,
    /// Return once nothing is due rather than once everything is sent ([`Dispatcher::run_due`]).
    until_idle: bool,
}

/// What the run loop does next.
enum Flow {
    /// Claim (or look at the state) again.
    Again,
    /// Wait for sends in flight.
    Collect,
    /// Nothing left to do.
    Finished,
}

impl Run {
    /// Counts what one send task did.
    fn record(&mut self, done: Done) {
        match done {
            Done::Sent { recipients, already_accepted } => {
                self.stats.requests += 1;
                self.stats.batches_sent += 1;
                self.stats.already_accepted += u64::from(already_accepted);
                self.tracker.sent(recipients);
                self.tracker.requested(1);
            }
            Done::Failed => {
                self.stats.requests += 1;
                self.stats.batches_failed += 1;
                self.tracker.failed();
                self.tracker.requested(1);
            }
            Done::Released => {
                self.stats.released += 1;
                self.stats.requests += 1;
                self.tracker.requested(1);
            }
            Done::NotSent => self.stats.released += 1,
            Done::Paused { reason } => {
                self.stats.released += 1;
                self.stats.requests += 1;
                self.tracker.requested(1);
                self.halt.store(true, Ordering::Relaxed);
                let state = CampaignState::Paused { reason };
                self.tracker.set_state(state.clone());
                self.stopped.get_or_insert(state);
            }
        }
    }
}

impl Shared {
    /// Sends one claimed batch (unless the campaign stopped), decides its fate with
    /// [`step`] from the journal's attempt count, and writes that to the journal.
    async fn send_batch(&self, claim: Claimed, halt: &AtomicBool) -> Result<Done, JournalError> {
        let Claimed { batch, attempts, .. } = claim;
        let sent = if halt.load(Ordering::Relaxed) {
            Sent::Halted
        } else {
            Sent::from_result(send(&self.client, &batch).await)
        };
        let action = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            step(&self.retry, attempts, sent, &mut *rng)
        };
        let now = Utc::now();
        let later = |after: Duration| {
            chrono::Duration::from_std(after)
                .ok()
                .and_then(|after| now.checked_add_signed(after))
                .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
        };
        let journal = &self.journal;
        match action {
            Action::Complete(outcome) => {
                journal.complete(&batch.id, &outcome, now).await?;
                Ok(match outcome {
                    BatchOutcome::Accepted { already_accepted, .. } => {
                        tracing::debug!(
                            target: "enishi::dispatch",
                            campaign = batch.campaign.as_str(),
                            batch = batch.id.as_str(),
                            recipients = batch.recipients.len(),
                            attempts,
                            already_accepted,
                            "batch sent"
                        );
                        Done::Sent { recipients: batch.recipients.len() as u64, already_accepted }
                    }
                    BatchOutcome::Failed { kind, status, error, .. } => {
                        tracing::warn!(
                            target: "enishi::dispatch",
                            batch = batch.id.as_str(),
                            attempts,
                            kind = ?kind,
                            status,
                            error = error.as_str(),
                            "batch failed for good"
                        );
                        Done::Failed
                    }
                })
            }
            Action::RetryLater { after, counted: true } => {
                journal.release(&batch.id, later(after), now).await?;
                Ok(Done::Released)
            }
            Action::RetryLater { after, counted: false } => {
                // Nothing reached LINE (the shared limiter fails closed): wait and try again
                // without using up an attempt, however long the outage lasts.
                tracing::warn!(
                    target: "enishi::dispatch",
                    batch = batch.id.as_str(),
                    retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                    "the shared rate limiter is unreachable: batch put back unsent"
                );
                journal.release_unsent(&batch.id, later(after), now).await?;
                Ok(Done::NotSent)
            }
            Action::GiveBack => {
                journal.release_unsent(&batch.id, batch.not_before, now).await?;
                Ok(Done::NotSent)
            }
            Action::Pause { reason } => {
                journal.release(&batch.id, now, now).await?;
                // Do not turn an operator's cancel into a pause.
                if journal.state(&batch.campaign).await? == CampaignState::Running {
                    tracing::warn!(
                        target: "enishi::dispatch",
                        campaign = batch.campaign.as_str(),
                        reason = %reason,
                        "pausing the campaign"
                    );
                    let state = CampaignState::Paused { reason: reason.clone() };
                    journal.set_state(&batch.campaign, &state, now).await?;
                }
                Ok(Done::Paused { reason })
            }
        }
    }
}

/// Sends one batch with its retry key.
async fn send(client: &LineClient, batch: &Batch) -> Result<Accepted, LineError> {
    match batch.transport {
        Transport::Push => {
            let [recipient] = batch.recipients.as_slice() else {
                return Err(LineError::Validation(crate::line::ValidationError::new(
                    "to",
                    format!(
                        "a push batch must have exactly one recipient (got {})",
                        batch.recipients.len()
                    ),
                )));
            };
            let mut req = PushRequest::new(
                Recipient::User(recipient.line_user.clone()),
                batch.messages.clone(),
            )
            .retry_key(batch.retry_key.clone());
            if let Some(unit) = &batch.aggregation_unit {
                req = req.aggregation_unit(unit.clone());
            }
            Ok(client.push(req).await?.accepted)
        }
        Transport::Multicast => {
            let to = batch.recipients.iter().map(|r| r.line_user.clone()).collect();
            // One batch is one LINE request: at most 500 recipients, one retry key.
            let mut req = MulticastRequest::new(to, batch.messages.clone())
                .retry_key(batch.retry_key.clone());
            if let Some(unit) = &batch.aggregation_unit {
                req = req.aggregation_unit(unit.clone());
            }
            client.multicast(req).await
        }
        // A channel batch (notification message, e-mail, SMS) is not LINE push or multicast:
        // only the channel dispatcher can send it.
        other => Err(LineError::Config(format!(
            "batch `{}` goes by {}: send it with enishi::channel::ChannelDispatcher",
            batch.id,
            other.as_str()
        ))),
    }
}

/// The longest one send may take with all of `client`'s retries: its retry policy's time
/// budget plus the last attempt's request timeout (one timeout when it never retries).
fn send_budget(client: &LineClient) -> Duration {
    let policy = client.retry_policy();
    let timeout = client.request_timeout();
    if policy.attempts_budget() <= 1 { timeout } else { policy.elapsed_budget() + timeout }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::RetryPolicy;

    fn builder(policy: RetryPolicy, timeout: Duration) -> DispatcherBuilder {
        let client = LineClient::builder()
            .channel_access_token("t")
            .retry_policy(policy)
            .request_timeout(timeout)
            .build()
            .unwrap();
        Dispatcher::builder(client, Arc::new(crate::campaign::MemoryJournal::new()))
    }

    #[test]
    fn the_lease_must_outlast_the_clients_retry_budget() {
        let s = Duration::from_secs;
        let policy = RetryPolicy::default().max_elapsed(s(60));
        // 60 s of retries + a 30 s timeout = 90 s.
        let err = builder(policy.clone(), s(30)).lease(s(90)).build().unwrap_err();
        assert!(
            matches!(err, DispatchError::LeaseTooShort { lease, retry_budget }
                if lease == s(90) && retry_budget == s(90)),
            "{err:?}"
        );
        let err = builder(policy.clone(), s(30)).lease(s(20)).build().unwrap_err().to_string();
        assert!(err.contains("lease (20s)") && err.contains("retries (90s"), "{err}");
        assert!(builder(policy, s(30)).lease(s(91)).build().is_ok());
        // A client that never retries needs only one timeout.
        assert!(builder(RetryPolicy::never(), s(10)).lease(s(11)).build().is_ok());
        // The defaults fit together.
        assert!(builder(RetryPolicy::default(), s(30)).build().is_ok());
    }
}
