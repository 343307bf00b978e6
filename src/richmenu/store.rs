//! Where the reconciler keeps what it applied and what it is about to apply.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::rules::MenuKey;
use crate::{LineUserId, RequestId, RichMenuId};

/// A rich-menu store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RichMenuStoreError {
    /// The storage backend failed (I/O, connection, SQL).
    #[error("rich-menu store failed: {message}")]
    Storage {
        /// What the store was doing.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored value could not be read back.
    #[error("rich-menu store holds an unreadable {what}: {message}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        message: String,
    },
    /// The operation is not pending in the store (never recorded, or settled already).
    #[error("rich-menu operation `{0}` is not pending")]
    NotPending(String),
    /// An operation with this ID is recorded with other content.
    #[error("rich-menu operation `{0}` is already recorded with different content")]
    Conflict(String),
}

impl RichMenuStoreError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn storage(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// A menu the reconciler made on LINE: its key, the fingerprint of the spec it was made
/// from, and LINE's ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredMenu {
    /// The shop's key.
    pub key: MenuKey,
    /// [`MenuSpec::fingerprint`](super::MenuSpec::fingerprint) of what was uploaded.
    pub fingerprint: String,
    /// LINE's ID.
    pub rich_menu_id: RichMenuId,
}

impl StoredMenu {
    /// A stored menu.
    #[must_use]
    pub fn new(key: MenuKey, fingerprint: impl Into<String>, rich_menu_id: RichMenuId) -> Self {
        Self { key, fingerprint: fingerprint.into(), rich_menu_id }
    }
}

/// What one recorded operation does on LINE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MenuOperationKind {
    /// One bulk link call: these users (≤ 500) get `menu`.
    Link {
        /// The menu.
        menu: RichMenuId,
        /// The users.
        users: Vec<LineUserId>,
    },
    /// One bulk unlink call: these users (≤ 500) lose their per-user menu.
    Unlink {
        /// The users.
        users: Vec<LineUserId>,
    },
    /// One `richmenu/batch` request moving every user of `from` to `to` (`None`: unlinked).
    Batch {
        /// The menu the users have.
        from: RichMenuId,
        /// The menu they get.
        to: Option<RichMenuId>,
        /// The users the reconciler expects on `from` (settled to `to` when it succeeds).
        users: Vec<LineUserId>,
        /// The `resumeRequestKey` every attempt carries.
        resume_key: String,
        /// The request ID of the last attempt LINE accepted, once known.
        request_id: Option<RequestId>,
    },
}

/// An operation recorded before its call and settled after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MenuOperation {
    /// A unique ID (also the batch resume key).
    pub id: String,
    /// What it does.
    pub kind: MenuOperationKind,
}

impl MenuOperation {
    /// An operation.
    #[must_use]
    pub fn new(id: impl Into<String>, kind: MenuOperationKind) -> Self {
        Self { id: id.into(), kind }
    }

    /// The users it concerns.
    #[must_use]
    pub fn users(&self) -> &[LineUserId] {
        match &self.kind {
            MenuOperationKind::Link { users, .. }
            | MenuOperationKind::Unlink { users }
            | MenuOperationKind::Batch { users, .. } => users,
        }
    }

    /// The per-user menu every user has once it succeeded.
    #[must_use]
    pub fn target(&self) -> Option<&RichMenuId> {
        match &self.kind {
            MenuOperationKind::Link { menu, .. } => Some(menu),
            MenuOperationKind::Unlink { .. } => None,
            MenuOperationKind::Batch { to, .. } => to.as_ref(),
        }
    }

    /// The user → menu rows it settles to.
    #[must_use]
    pub fn outcome(&self) -> Vec<(LineUserId, Option<RichMenuId>)> {
        let target = self.target().cloned();
        self.users().iter().map(|u| (u.clone(), target.clone())).collect()
    }
}

/// Where a [`RichMenuReconciler`](super::RichMenuReconciler) keeps the menus it made, the
/// per-user menu it last applied to each user, and the operations not yet settled.
///
/// Implementations: [`MemoryRichMenuStore`], `SqliteRichMenuStore` (feature `sqlite`),
/// `PostgresRichMenuStore` (feature `postgres`); every one passes
/// `richmenu::conformance` (feature `testkit`).
#[async_trait]
pub trait RichMenuStore: Send + Sync + fmt::Debug + 'static {
    /// The menus made so far, in key order.
    ///
    /// # Errors
    /// Backend errors.
    async fn menus(&self) -> Result<Vec<StoredMenu>, RichMenuStoreError>;

    /// Stores a menu, replacing the one under the same key.
    ///
    /// # Errors
    /// Backend errors.
    async fn put_menu(&self, menu: &StoredMenu) -> Result<(), RichMenuStoreError>;

    /// Every user's last applied per-user menu (users without one are absent).
    ///
    /// # Errors
    /// Backend errors; [`RichMenuStoreError::Corrupt`].
    async fn applied(&self) -> Result<HashMap<LineUserId, RichMenuId>, RichMenuStoreError>;

    /// Overwrites applied rows (`None` removes one) without an operation: for drift repair,
    /// which records what LINE really shows.
    ///
    /// # Errors
    /// Backend errors.
    async fn set_applied(
        &self,
        rows: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError>;

    /// Records an operation as pending, before its call. Recording the same operation again
    /// is a no-op.
    ///
    /// # Errors
    /// [`RichMenuStoreError::Conflict`] when the ID is recorded with other content; backend
    /// errors.
    async fn record(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError>;

    /// Replaces a pending operation (a batch's new request ID).
    ///
    /// # Errors
    /// [`RichMenuStoreError::NotPending`]; backend errors.
    async fn update(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError>;

    /// The pending operations, oldest first.
    ///
    /// # Errors
    /// Backend errors; [`RichMenuStoreError::Corrupt`].
    async fn pending(&self) -> Result<Vec<MenuOperation>, RichMenuStoreError>;

    /// Atomically marks a pending operation settled and writes `applied` rows (`None`
    /// removes one).
    ///
    /// # Errors
    /// [`RichMenuStoreError::NotPending`] (nothing written); backend errors.
    async fn settle(
        &self,
        id: &str,
        applied: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError>;
}

#[derive(Debug, Default)]
struct Inner {
    menus: BTreeMap<String, StoredMenu>,
    applied: HashMap<LineUserId, RichMenuId>,
    /// Every operation ever recorded, oldest first, with whether it is settled.
    ops: Vec<(MenuOperation, bool)>,
    index: HashMap<String, usize>,
}

/// A [`RichMenuStore`] in memory (tests, demos, a single process that may re-check
/// everything after a restart).
#[derive(Debug, Default)]
pub struct MemoryRichMenuStore {
    inner: Mutex<Inner>,
}

impl MemoryRichMenuStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn apply_rows(
    applied: &mut HashMap<LineUserId, RichMenuId>,
    rows: &[(LineUserId, Option<RichMenuId>)],
) {
    for (user, menu) in rows {
        match menu {
            Some(menu) => {
                applied.insert(user.clone(), menu.clone());
            }
            None => {
                applied.remove(user);
            }
        }
    }
}

#[async_trait]
impl RichMenuStore for MemoryRichMenuStore {
    async fn menus(&self) -> Result<Vec<StoredMenu>, RichMenuStoreError> {
        Ok(self.lock().menus.values().cloned().collect())
    }

    async fn put_menu(&self, menu: &StoredMenu) -> Result<(), RichMenuStoreError> {
        self.lock().menus.insert(menu.key.as_str().to_owned(), menu.clone());
        Ok(())
    }

    async fn applied(&self) -> Result<HashMap<LineUserId, RichMenuId>, RichMenuStoreError> {
        Ok(self.lock().applied.clone())
    }

    async fn set_applied(
        &self,
        rows: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        apply_rows(&mut self.lock().applied, rows);
        Ok(())
    }

    async fn record(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let mut inner = self.lock();
        if let Some(&i) = inner.index.get(&op.id) {
            return if inner.ops[i].0 == *op {
                Ok(())
            } else {
                Err(RichMenuStoreError::Conflict(op.id.clone()))
            };
        }
        let i = inner.ops.len();
        inner.ops.push((op.clone(), false));
        inner.index.insert(op.id.clone(), i);
        Ok(())
    }

    async fn update(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let mut inner = self.lock();
        match inner.index.get(&op.id).copied() {
            Some(i) if !inner.ops[i].1 => {
                inner.ops[i].0 = op.clone();
                Ok(())
            }
            _ => Err(RichMenuStoreError::NotPending(op.id.clone())),
        }
    }

    async fn pending(&self) -> Result<Vec<MenuOperation>, RichMenuStoreError> {
        Ok(self
            .lock()
            .ops
            .iter()
            .filter(|(_, settled)| !settled)
            .map(|(op, _)| op.clone())
            .collect())
    }

    async fn settle(
        &self,
        id: &str,
        applied: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        let mut inner = self.lock();
        match inner.index.get(id).copied() {
            Some(i) if !inner.ops[i].1 => {
                inner.ops[i].1 = true;
                apply_rows(&mut inner.applied, applied);
                Ok(())
            }
            _ => Err(RichMenuStoreError::NotPending(id.to_owned())),
        }
    }
}
