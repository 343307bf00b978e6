//! The workers: one task per destination, claiming due bodies and POSTing them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::forward::{DELIVERY_ID_HEADER, Destination, HubInner};
use super::queue::QueuedItem;
use crate::line::webhook::{SIGNATURE_HEADER, sign};

/// The running workers of a [`Hub`](super::Hub). Dropping this stops them at once (bodies in
/// flight are left leased and sent again after the lease, as after a crash);
/// [`shutdown`](Self::shutdown) stops claiming and waits for the bodies in flight.
pub struct HubWorker {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl fmt::Debug for HubWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubWorker").field("tasks", &self.tasks.len()).finish()
    }
}

impl HubWorker {
    pub(super) fn spawn(inner: Arc<HubInner>) -> Self {
        let (stop, _) = watch::channel(false);
        let tasks = (0..inner.destinations.len())
            .map(|d| tokio::spawn(run(Arc::clone(&inner), d, stop.subscribe())))
            .collect();
        Self { tasks, stop }
    }

    /// Stops claiming new bodies and waits until the ones in flight are finished.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for HubWorker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run(inner: Arc<HubInner>, d: usize, mut stop: watch::Receiver<bool>) {
    let dest = Arc::clone(&inner.destinations[d]);
    let wake = Arc::clone(&inner.wake[d]);
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut seed = rand::random::<u64>();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = dest.concurrency.saturating_sub(in_flight.len());
        let mut saturated = free == 0;
        if free > 0 {
            match inner.queue.claim(&dest.name, Utc::now(), inner.lease, free).await {
                Ok(items) => {
                    saturated = items.len() == free;
                    for item in items {
                        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        in_flight.spawn(deliver(Arc::clone(&inner), Arc::clone(&dest), item, seed));
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "enishi::hub", destination = %dest.name, error = %e,
                        "the hub queue could not be read; trying again");
                }
            }
        }
        // How long to sleep when nothing finishes and nothing new comes: until the next retry
        // or lease end, at most the poll interval.
        let nap = if saturated {
            inner.poll
        } else {
            match inner.queue.next_due(&dest.name).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(inner.poll).min(inner.poll),
                _ => inner.poll,
            }
        };
        let nap = if nap.is_zero() { inner.poll } else { nap };
        tokio::select! {
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = wake.notified() => {}
            () = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Whether a failed attempt is worth repeating: transport errors, timeouts, 408, 429, 5xx.
fn retryable(status: Option<http::StatusCode>) -> bool {
    status.is_none_or(|s| s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429)
}

async fn deliver(inner: Arc<HubInner>, dest: Arc<Destination>, item: QueuedItem, seed: u64) {
    let signature = match (&item.signature, &dest.secret) {
        (Some(line), None) => line.clone(),
        (_, Some(own)) => sign(own, &item.body),
        (None, None) => sign(&inner.channel_secret, &item.body),
    };
    let sent = inner
        .http
        .post(&dest.url)
        .header(http::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_ID_HEADER, &item.key)
        .timeout(dest.timeout)
        .body(item.body.clone())
        .send()
        .await;
    let label = dest.name.clone();
    let (status, retry_after, error) = match sent {
        Ok(r) if r.status().is_success() => {
            let now = Utc::now();
            match inner.queue.complete(item.id, &item.lease, now).await {
                Ok(true) => {
                    metrics::counter!("enishi_hub_forwarded_total", "destination" => label.clone())
                        .increment(1);
                    let lag = (now - item.enqueued_at).to_std().unwrap_or_default();
                    metrics::histogram!("enishi_hub_lag_seconds", "destination" => label)
                        .record(lag.as_secs_f64());
                }
                Ok(false) => tracing::warn!(target: "enishi::hub", destination = %dest.name,
                    id = item.id, "delivered after the lease ran out; another worker may resend it"),
                Err(e) => tracing::warn!(target: "enishi::hub", destination = %dest.name,
                    id = item.id, error = %e, "delivered, but the queue could not record it; it will be resent"),
            }
            return;
        }
        Ok(r) => {
            let wait = crate::retry::retry_after(r.headers(), Utc::now());
            (Some(r.status()), wait, format!("HTTP {}", r.status().as_u16()))
        }
        Err(e) => {
            let what = if e.is_timeout() { "timed out" } else { "could not connect or send" };
            (None, None, what.to_owned())
        }
    };
    let attempts = item.attempts.saturating_add(1);
    let now = Utc::now();
    if !retryable(status) || attempts >= dest.max_attempts {
        tracing::warn!(target: "enishi::hub", destination = %dest.name, id = item.id, attempts,
            error = %error, "a forwarded webhook was dead-lettered");
        if let Err(e) = inner.queue.dead_letter(item.id, &item.lease, attempts, &error, now).await {
            tracing::warn!(target: "enishi::hub", destination = %dest.name, error = %e,
                "the queue could not dead-letter a body; it will be tried again");
        }
        metrics::counter!("enishi_hub_dead_lettered_total", "destination" => label).increment(1);
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let wait = dest.backoff.delay(attempts, &mut rng).unwrap_or(Duration::ZERO);
    let wait = retry_after.map_or(wait, |ra| ra.max(wait));
    let not_before = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    tracing::debug!(target: "enishi::hub", destination = %dest.name, id = item.id, attempts,
        error = %error, wait_ms = wait.as_millis() as u64, "forwarding failed; retrying later");
    if let Err(e) = inner.queue.retry(item.id, &item.lease, attempts, not_before, &error).await {
        tracing::warn!(target: "enishi::hub", destination = %dest.name, error = %e,
            "the queue could not schedule a retry; the lease will run out and it is tried again");
    }
    metrics::counter!("enishi_hub_retried_total", "destination" => label).increment(1);
}
