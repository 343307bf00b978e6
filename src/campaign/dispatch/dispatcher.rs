//! The dispatcher: claims due batches from the journal and sends them to LINE with bounded
//! concurrency under the client's rate limiter.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::classify::{classify, pause_reason};
use super::control::CampaignControl;
use super::progress::{Progress, Tracker};
use super::report::{DeliveryReport, RunStats, RunStatus};
use crate::campaign::batch::{
    Batch, BatchOutcome, CampaignState, FailureKind, PauseReason, Transport,
};
use crate::campaign::journal::{DeliveryJournal, JournalError};
use crate::line::{Accepted, LineClient, LineError, MulticastRequest, PushRequest, Recipient};
use crate::{BatchId, CampaignId};

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
}

/// What the send tasks share.
struct Shared {
    client: LineClient,
    journal: Arc<dyn DeliveryJournal>,
    worker: String,
    backoff: (Duration, Duration),
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
    /// retry key. It must be longer than one send with all the client's retries.
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
    /// worker name.
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
        let worker = match self.worker {
            Some(w) if w.trim().is_empty() => {
                return Err(DispatchError::Config("the worker name must not be empty".into()));
            }
            Some(w) => w,
            None => format!("worker-{}-{:08x}", std::process::id(), rand::rng().random::<u32>()),
        };
        let (progress, _) = watch::channel(Progress::default());
        Ok(Dispatcher {
            shared: Arc::new(Shared {
                client: self.client,
                journal: self.journal,
                worker,
                backoff: self.backoff,
            }),
            concurrency: self.concurrency,
            // Claim in chunks so a fast campaign does not make one journal round trip per send.
            claim_chunk: (self.concurrency / 4).max(1),
            lease: self.lease,
            poll_interval: self.poll_interval.max(Duration::from_millis(1)),
            progress_interval: self.progress_interval,
            max_attempts: self.max_attempts,
            progress,
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
    NotSent {
        batch: BatchId,
    },
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
        let journal = &self.shared.journal;
        let err = |source| DispatchError::Journal { campaign: campaign.clone(), source };
        let started = Instant::now();
        let mut tracker = Tracker::new(
            journal.counts(campaign).await.map_err(err)?,
            journal.state(campaign).await.map_err(err)?,
        );
        self.progress.send_replace(tracker.snapshot(started.elapsed()));
        let halt = Arc::new(AtomicBool::new(false));
        let mut tasks: JoinSet<Result<Done, JournalError>> = JoinSet::new();
        let mut attempts: HashMap<BatchId, u32> = HashMap::new();
        let mut stats = RunStats { worker: self.shared.worker.clone(), ..RunStats::default() };
        let mut stopped: Option<CampaignState> = None;
        let mut last_refresh = Instant::now();

        loop {
            let room = self.concurrency - tasks.len();
            let wants_claim = stopped.is_none() && (tasks.is_empty() || room >= self.claim_chunk);
            if wants_claim {
                let claimed = journal
                    .claim(campaign, &self.shared.worker, room, Utc::now(), self.lease)
                    .await
                    .map_err(err)?;
                if claimed.is_empty() {
                    let state = journal.state(campaign).await.map_err(err)?;
                    if state != CampaignState::Running {
                        halt.store(true, Ordering::Relaxed);
                        tracker.set_state(state.clone());
                        stopped = Some(state);
                        continue;
                    }
                    if tasks.is_empty() {
                        let counts = journal.counts(campaign).await.map_err(err)?;
                        let finished = counts.is_finished();
                        tracker.refresh(counts);
                        self.progress.send_replace(tracker.snapshot(started.elapsed()));
                        if finished {
                            break;
                        }
                        // Batches due later, or held by another worker: look again soon.
                        tokio::time::sleep(self.poll_interval).await;
                        continue;
                    }
                } else {
                    for batch in claimed {
                        let counter = attempts.entry(batch.id.clone()).or_default();
                        *counter += 1;
                        let attempt = *counter;
                        let last_attempt = attempt >= self.max_attempts;
                        let shared = Arc::clone(&self.shared);
                        let halt = Arc::clone(&halt);
                        tasks.spawn(async move {
                            shared.send_batch(batch, attempt, last_attempt, &halt).await
                        });
                    }
                    continue;
                }
            }
            if tasks.is_empty() {
                if stopped.is_some() {
                    break;
                }
                continue;
            }
            // Wait for a send to finish, but not longer than a poll, so state changes and
            // batches that became due are seen while all slots are busy.
            let joined = tokio::select! {
                joined = tasks.join_next() => joined,
                () = tokio::time::sleep(self.poll_interval) => None,
            };
            let mut finished = Vec::new();
            finished.extend(joined);
            while let Some(more) = tasks.try_join_next() {
                finished.push(more);
            }
            for joined in finished {
                let done = match joined {
                    Ok(done) => done.map_err(err)?,
                    // A send task panicked (a bug): its batch stays in flight until the lease
                    // runs out and is then re-sent with its retry key.
                    Err(_) => continue,
                };
                match done {
                    Done::Sent { recipients, already_accepted } => {
                        stats.requests += 1;
                        stats.batches_sent += 1;
                        stats.already_accepted += u64::from(already_accepted);
                        tracker.sent(recipients);
                        tracker.requested(1);
                    }
                    Done::Failed => {
                        stats.requests += 1;
                        stats.batches_failed += 1;
                        tracker.failed();
                        tracker.requested(1);
                    }
                    Done::Released => {
                        stats.released += 1;
                        stats.requests += 1;
                        tracker.requested(1);
                    }
                    Done::NotSent { batch } => {
                        stats.released += 1;
                        if let Some(n) = attempts.get_mut(&batch) {
                            *n = n.saturating_sub(1);
                        }
                    }
                    Done::Paused { reason } => {
                        stats.released += 1;
                        stats.requests += 1;
                        tracker.requested(1);
                        halt.store(true, Ordering::Relaxed);
                        let state = CampaignState::Paused { reason };
                        tracker.set_state(state.clone());
                        stopped.get_or_insert(state);
                    }
                }
            }
            if last_refresh.elapsed() >= self.progress_interval {
                last_refresh = Instant::now();
                tracker.refresh(journal.counts(campaign).await.map_err(err)?);
            }
            self.progress.send_replace(tracker.snapshot(started.elapsed()));
        }

        let state = journal.state(campaign).await.map_err(err)?;
        if state == CampaignState::Cancelled {
            // Batches released while the cancel was under way went back to pending: cancel
            // them too.
            journal.set_state(campaign, &state, Utc::now()).await.map_err(err)?;
        }
        let counts = journal.counts(campaign).await.map_err(err)?;
        let status = match state {
            CampaignState::Cancelled => RunStatus::Cancelled,
            CampaignState::Paused { reason } if !counts.is_finished() => {
                RunStatus::Paused { reason: reason.to_string() }
            }
            _ if counts.is_finished() => RunStatus::Completed,
            // Running but stopped: only when the pause was lifted while this run drained.
            _ => match stopped {
                Some(CampaignState::Paused { reason }) => {
                    RunStatus::Paused { reason: reason.to_string() }
                }
                _ => RunStatus::Completed,
            },
        };
        tracker.refresh(counts);
        let elapsed = started.elapsed();
        self.progress.send_replace(tracker.snapshot(elapsed));
        stats.elapsed_secs = elapsed.as_secs_f64();
        let records = journal.records(campaign).await.map_err(err)?;
        Ok(DeliveryReport::from_records(campaign.clone(), status, &records, stats))
    }
}

impl Shared {
    /// Sends one claimed batch and writes its outcome to the journal.
    async fn send_batch(
        &self,
        batch: Batch,
        attempt: u32,
        last_attempt: bool,
        halt: &AtomicBool,
    ) -> Result<Done, JournalError> {
        if halt.load(Ordering::Relaxed) {
            // The campaign stopped after this batch was claimed: give it back unsent.
            self.journal.release(&batch.id, batch.not_before, Utc::now()).await?;
            return Ok(Done::NotSent { batch: batch.id });
        }
        let result = send(&self.client, &batch).await;
        let now = Utc::now();
        match result {
            Ok(accepted) => {
                let outcome = BatchOutcome::Accepted {
                    request_id: accepted.effective_request_id().cloned(),
                    already_accepted: accepted.already_accepted,
                };
                self.journal.complete(&batch.id, &outcome, now).await?;
                Ok(Done::Sent {
                    recipients: batch.recipients.len() as u64,
                    already_accepted: accepted.already_accepted,
                })
            }
            Err(error) => {
                if let Some(reason) = pause_reason(&error) {
                    self.journal.release(&batch.id, now, now).await?;
                    // Do not turn an operator's cancel into a pause.
                    if self.journal.state(&batch.campaign).await? == CampaignState::Running {
                        let state = CampaignState::Paused { reason: reason.clone() };
                        self.journal.set_state(&batch.campaign, &state, now).await?;
                    }
                    return Ok(Done::Paused { reason });
                }
                if matches!(error, LineError::RateLimiter { .. }) {
                    // Nothing reached LINE (the shared limiter fails closed): wait and try
                    // again without using up an attempt, however long the outage lasts.
                    let due = now + self.backoff(attempt);
                    self.journal.release(&batch.id, due, now).await?;
                    return Ok(Done::NotSent { batch: batch.id });
                }
                let kind = classify(&error);
                if kind == FailureKind::Retryable && !last_attempt {
                    let due = now + self.backoff(attempt);
                    self.journal.release(&batch.id, due, now).await?;
                    return Ok(Done::Released);
                }
                let outcome = BatchOutcome::Failed {
                    kind,
                    status: error.status().map(|s| s.as_u16()),
                    request_id: error.request_id().cloned(),
                    error: crate::error::chain_message(&error),
                };
                self.journal.complete(&batch.id, &outcome, now).await?;
                Ok(Done::Failed)
            }
        }
    }

    /// Capped exponential back-off with equal jitter.
    fn backoff(&self, attempt: u32) -> chrono::Duration {
        let (initial, max) = self.backoff;
        let step = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(max);
        let half = step / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        let wait = half + half.mul_f64(jitter);
        chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
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
                .retry_keys(vec![batch.retry_key.clone()])
                .concurrency(1);
            if let Some(unit) = &batch.aggregation_unit {
                req = req.aggregation_unit(unit.clone());
            }
            let report = client.multicast(req).await?;
            match report.chunks.into_iter().next() {
                Some(chunk) => chunk.result,
                None => Err(LineError::Validation(crate::line::ValidationError::new(
                    "to",
                    "must hold at least one user ID",
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let client = LineClient::new("t").unwrap();
        let shared = Shared {
            client,
            journal: Arc::new(crate::campaign::MemoryJournal::new()),
            worker: "w".into(),
            backoff: (Duration::from_secs(1), Duration::from_secs(8)),
        };
        for (attempt, (lo, hi)) in
            [(1, (500, 1000)), (2, (1000, 2000)), (4, (4000, 8000)), (9, (4000, 8000))]
        {
            for _ in 0..50 {
                let ms = shared.backoff(attempt).num_milliseconds();
                assert!((lo..=hi).contains(&ms), "attempt {attempt}: {ms}");
            }
        }
    }
}
