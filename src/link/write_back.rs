//! Writing links back to the commerce backend (e.g. ecforce's `line_id` field).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Link;
use crate::commerce::{CommerceBackend, CommerceBackendExt};
use crate::retry::{Backoff, RetryRule, Verdict};

/// An error of a [`LinkWriteBack`].
pub type WriteBackError = Box<dyn std::error::Error + Send + Sync>;

/// Writes links back to the commerce backend (e.g. ecforce's LINE ID field). The lead
/// implements it for the commerce backend; the link flow retries it in the background and
/// never lets it block or undo storing the link.
#[async_trait::async_trait]
pub trait LinkWriteBack: Send + Sync + fmt::Debug + 'static {
    /// Records `link` in the backend.
    ///
    /// # Errors
    /// Any error: the call is retried.
    async fn write_link(&self, link: &Link) -> Result<(), WriteBackError>;

    /// Clears `link` from the backend after an unlink.
    ///
    /// # Errors
    /// Any error: the call is retried.
    async fn clear_link(&self, link: &Link) -> Result<(), WriteBackError>;
}

/// How write-backs are retried: `attempts` in all, waiting `first_delay`, doubling each time up
/// to `max_delay`, each wait jittered (between half and all of the step: the crate's shared
/// [`Backoff::exponential`](crate::retry::Backoff::exponential)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBackRetry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
}

impl Default for WriteBackRetry {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl WriteBackRetry {
    /// A policy.
    #[must_use]
    pub fn new(attempts: u32, first_delay: Duration, max_delay: Duration) -> Self {
        Self { attempts: attempts.max(1), first_delay, max_delay }
    }

    /// The shared retry rule this configuration stands for.
    pub fn rule(&self) -> RetryRule {
        RetryRule::new(Backoff::exponential(self.first_delay, self.max_delay))
            .max_attempts(self.attempts)
    }
}

/// A write-back running in the background.
#[derive(Debug)]
pub struct WriteBackTask(tokio::task::JoinHandle<Result<u32, WriteBackError>>);

impl WriteBackTask {
    /// Waits for it; returns the attempts it took.
    ///
    /// # Errors
    /// The last attempt's error when every attempt failed.
    pub async fn wait(self) -> Result<u32, WriteBackError> {
        self.0.await.map_err(|e| Box::new(e) as WriteBackError)?
    }
}

/// Runs a write-back (`write`) or a clear in the background, retried by `rule`; each failure
/// is logged (target `enishi::link`), the last one as an error.
pub(super) fn spawn(
    wb: Arc<dyn LinkWriteBack>,
    link: Link,
    write: bool,
    rule: RetryRule,
) -> WriteBackTask {
    let action = if write { "write" } else { "clear" };
    WriteBackTask(tokio::spawn(async move {
        let mut attempt = 1;
        loop {
            let result =
                if write { wb.write_link(&link).await } else { wb.clear_link(&link).await };
            let error = match result {
                Ok(()) => return Ok(attempt),
                Err(e) => e,
            };
            let decision =
                rule.decide(Verdict::TRANSIENT, attempt, Duration::ZERO, &mut rand::rng());
            let Some(wait) = decision.wait() else {
                tracing::error!(
                    target: "enishi::link",
                    action,
                    customer = link.customer.as_str(),
                    attempts = attempt,
                    error = %error,
                    "the link write-back to the commerce backend failed for good"
                );
                return Err(error);
            };
            tracing::warn!(
                target: "enishi::link",
                action,
                customer = link.customer.as_str(),
                attempt,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "the link write-back failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }))
}

/// Any commerce backend can take link write-backs: the link is set on (or cleared from) the
/// customer record with [`CommerceBackend::set_line_user`]. Backends without that operation
/// answer `NotImplemented`, which the linker reports after its retries. (The linker never
/// writes back links whose source is the backend itself.)
#[async_trait]
impl LinkWriteBack for Arc<dyn CommerceBackend> {
    async fn write_link(&self, link: &Link) -> Result<(), WriteBackError> {
        self.link_line(&link.customer, &link.line_user).await.map_err(Into::into)
    }

    async fn clear_link(&self, link: &Link) -> Result<(), WriteBackError> {
        self.set_line_user(&link.customer, None).await.map_err(Into::into)
    }
}
