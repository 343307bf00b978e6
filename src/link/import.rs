//! Links read from the commerce backend during sync (e.g. ecforce's own `line_id` field).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::Utc;

use super::{ConflictPolicy, LinkOutcome, LinkSource, LinkStore, LinkStoreError};
use crate::commerce::sync::{SyncBatch, SyncResource, SyncSink};
use crate::commerce::{BoxError, Cursor};

/// A [`SyncSink`] that forwards every page to another sink and first stores the LINE links the
/// backend already knows (customers whose record carries a LINE user ID) in a [`LinkStore`],
/// with [`LinkSource::Backend`].
///
/// A backend link that contradicts a link already in the store (made through the account-link
/// flow or LINE Login, which the customer proved) is not applied: the store keeps its link, the
/// conflict is audited by the store and counted in [`ImportCounts::conflicts`]. A failing store
/// fails the page, so the sync stops without advancing its cursor and the page is read again
/// next time (storing the same link twice changes nothing).
///
/// ```no_run
/// # async fn demo(backend: &dyn enishi::commerce::CommerceBackend,
/// #               store: std::sync::Arc<dyn enishi::link::LinkStore>)
/// #               -> Result<(), Box<dyn std::error::Error>> {
/// use enishi::commerce::sync::{Dataset, Syncer};
/// use enishi::link::BackendLinkImport;
///
/// let dataset = Dataset::new();
/// let sink = BackendLinkImport::new(store, &dataset);
/// Syncer::new(backend).run(&sink).await?;
/// println!("{:?}", sink.counts());
/// # Ok(()) }
/// ```
pub struct BackendLinkImport<'a> {
    store: Arc<dyn LinkStore>,
    inner: &'a dyn SyncSink,
    linked: AtomicU64,
    unchanged: AtomicU64,
    conflicts: AtomicU64,
}

/// What a [`BackendLinkImport`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportCounts {
    /// New links stored.
    pub linked: u64,
    /// Links the store already had.
    pub unchanged: u64,
    /// Backend links that contradict the store's links and were not applied.
    pub conflicts: u64,
}

impl fmt::Debug for BackendLinkImport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendLinkImport").field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl<'a> BackendLinkImport<'a> {
    /// Stores backend links in `store`, then forwards each page to `inner`.
    #[must_use]
    pub fn new(store: Arc<dyn LinkStore>, inner: &'a dyn SyncSink) -> Self {
        Self {
            store,
            inner,
            linked: AtomicU64::new(0),
            unchanged: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    #[must_use]
    pub fn counts(&self) -> ImportCounts {
        ImportCounts {
            linked: self.linked.load(Ordering::Relaxed),
            unchanged: self.unchanged.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl SyncSink for BackendLinkImport<'_> {
    async fn cursor(&self, resource: SyncResource) -> Result<Option<Cursor>, BoxError> {
        self.inner.cursor(resource).await
    }

    async fn apply(&self, batch: SyncBatch, cursor: Cursor) -> Result<(), BoxError> {
        if let SyncBatch::Customers(customers) = &batch {
            let now = Utc::now();
            for c in customers {
                let Some(user) = &c.line_user_id else { continue };
                let outcome = self
                    .store
                    .link(user, &c.id, LinkSource::Backend, ConflictPolicy::Reject, now)
                    .await;
                let counter = match outcome {
                    Ok(LinkOutcome::AlreadyLinked(_)) => &self.unchanged,
                    Ok(_) => &self.linked,
                    Err(LinkStoreError::Conflict(_)) => &self.conflicts,
                    Err(e) => return Err(Box::new(e)),
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.inner.apply(batch, cursor).await
    }
}
