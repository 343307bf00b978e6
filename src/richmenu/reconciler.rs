//! The reconciler: desired menus in, the fewest LINE calls out, exactly once across crashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use super::RichMenuError;
use super::rules::{MenuKey, MenuRules, MenuSpec};
use super::store::{MenuOperation, MenuOperationKind, RichMenuStore, StoredMenu};
use crate::line::{
    LineClient, RICH_MENU_BULK_CHUNK, RichMenuAlias, RichMenuBatchOperation, RichMenuBatchPhase,
    RichMenuBatchRequest, RichMenuInsightSummary,
};
use crate::{LineUserId, RichMenuId};

/// What one [`RichMenuReconciler::reconcile`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Friends whose desired menu was computed.
    pub users: u64,
    /// Users whose per-user menu changed in this pass (including finished leftovers).
    pub switches: u64,
    /// Users linked by bulk link calls.
    pub linked: u64,
    /// Users unlinked by bulk unlink calls.
    pub unlinked: u64,
    /// Users moved by `richmenu/batch` requests.
    pub batched: u64,
    /// Operations left over from an earlier pass (a crash) that this pass finished.
    pub resumed: u64,
    /// LINE calls this pass made.
    pub calls: u64,
    /// Menus created (first run, or a spec changed).
    pub menus_created: u64,
}

/// What [`RichMenuReconciler::repair_drift`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriftReport {
    /// Users checked with LINE.
    pub checked: u64,
    /// Users whose menu on LINE differed from the one recorded (now recorded as on LINE, so
    /// the next pass fixes them).
    pub drifted: Vec<LineUserId>,
}

/// Statistics of one menu over a period, for the results report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MenuStatistics {
    /// The shop's key.
    pub key: MenuKey,
    /// LINE's ID.
    pub rich_menu_id: RichMenuId,
    /// LINE's summary (below the privacy threshold when LINE withheld the figures).
    pub summary: RichMenuInsightSummary,
}

impl MenuStatistics {
    /// Impressions of the menu (`None` below LINE's privacy threshold).
    #[must_use]
    pub fn impressions(&self) -> Option<u64> {
        self.summary.impression.as_ref().map(|i| i.metrics.count)
    }

    /// Taps on all its areas (`None` below LINE's privacy threshold).
    #[must_use]
    pub fn clicks(&self) -> Option<u64> {
        self.impressions().map(|_| self.summary.clicks.iter().map(|c| c.metrics.count).sum())
    }

    /// The figures as a row of the results report
    /// ([`ResultsReport::with_rich_menus`](crate::campaign::ResultsReport::with_rich_menus)).
    #[must_use]
    pub fn to_report(&self) -> crate::campaign::RichMenuStats {
        let impression = self.summary.impression.as_ref();
        crate::campaign::RichMenuStats::new(
            self.key.as_str(),
            self.rich_menu_id.as_str(),
            impression.map(|i| i.metrics.count),
            impression.map(|i| i.metrics.unique_users),
            self.summary.clicks.iter().map(|c| c.metrics.count).collect(),
        )
    }
}

/// Keeps every friend's per-user rich menu equal to the one [`MenuRules`] pick. See the
/// [module docs](super).
///
/// Each pass first finishes what an earlier pass left unsettled (re-checking with LINE, so a
/// call that took effect before a crash is not made again), then makes the declared menus
/// exist, then applies the difference between the desired and the applied menus.
#[derive(Clone)]
pub struct RichMenuReconciler {
    client: LineClient,
    store: Arc<dyn RichMenuStore>,
    specs: Arc<[MenuSpec]>,
    rules: MenuRules,
    batch_threshold: usize,
    poll_interval: Duration,
    batch_attempts: u32,
}

impl fmt::Debug for RichMenuReconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RichMenuReconciler")
            .field("store", &self.store)
            .field("menus", &self.specs.len())
            .field("rules", &self.rules)
            .field("batch_threshold", &self.batch_threshold)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RichMenuReconciler`]. Setters never fail; [`build`](Self::build) checks.
#[derive(Debug)]
#[must_use = "a builder does nothing until you call `build`"]
pub struct RichMenuReconcilerBuilder {
    client: LineClient,
    store: Arc<dyn RichMenuStore>,
    specs: Vec<MenuSpec>,
    rules: Option<MenuRules>,
    batch_threshold: usize,
    poll_interval: Duration,
    batch_attempts: u32,
}

impl RichMenuReconcilerBuilder {
    /// Declares a menu.
    pub fn menu(mut self, spec: MenuSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// The rules (required).
    pub fn rules(mut self, rules: MenuRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// The fewest users for which a whole-menu move (every user of one menu to the same
    /// menu) uses one `richmenu/batch` request instead of bulk calls (default 5,000: LINE
    /// allows only 3 batch requests an hour). `usize::MAX` never uses batches.
    pub fn batch_threshold(mut self, users: usize) -> Self {
        self.batch_threshold = users;
        self
    }

    /// How often a batch request's progress is polled (default 60 s; LINE allows 100 polls
    /// an hour).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How many times a failed batch request is resumed before the pass gives up
    /// (default 5; the operation stays pending for the next pass).
    pub fn batch_attempts(mut self, attempts: u32) -> Self {
        self.batch_attempts = attempts;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`RichMenuError::Config`] without rules, for two menus under one key, or for a rule
    /// or default naming an undeclared menu.
    pub fn build(self) -> Result<RichMenuReconciler, RichMenuError> {
        let config =
            |field: String, reason: &str| RichMenuError::Config { field, reason: reason.into() };
        let rules = self.rules.ok_or_else(|| config("rules".into(), "must be set"))?;
        let mut keys = HashSet::new();
        for (i, spec) in self.specs.iter().enumerate() {
            if !keys.insert(spec.key.clone()) {
                return Err(config(format!("menus[{i}].key"), "is declared twice"));
            }
        }
        if !keys.contains(&rules.default) {
            return Err(config("rules.default".into(), "names a menu that is not declared"));
        }
        for (i, (_, key)) in rules.rules.iter().enumerate() {
            if !keys.contains(key) {
                return Err(config(
                    format!("rules[{i}].menu"),
                    "names a menu that is not declared",
                ));
            }
        }
        if self.batch_attempts == 0 {
            return Err(config("batch_attempts".into(), "must be at least 1"));
        }
        Ok(RichMenuReconciler {
            client: self.client,
            store: self.store,
            specs: self.specs.into(),
            rules,
            batch_threshold: self.batch_threshold.max(1),
            poll_interval: self.poll_interval,
            batch_attempts: self.batch_attempts,
        })
    }
}

/// One planned group: users moving from one applied menu to one target.
type Move = (Option<RichMenuId>, Option<RichMenuId>);

impl RichMenuReconciler {
    /// A builder over a LINE client and a store.
    pub fn builder(client: LineClient, store: Arc<dyn RichMenuStore>) -> RichMenuReconcilerBuilder {
        RichMenuReconcilerBuilder {
            client,
            store,
            specs: Vec::new(),
            rules: None,
            batch_threshold: 5_000,
            poll_interval: Duration::from_secs(60),
            batch_attempts: 5,
        }
    }

    /// The rules.
    pub fn rules(&self) -> &MenuRules {
        &self.rules
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn RichMenuStore> {
        &self.store
    }

    /// Makes every declared menu exist on LINE (creating, uploading the image and pointing
    /// its alias only when it is new or its spec changed) and makes the default menu LINE's
    /// default. Returns key → LINE ID. Called by every pass.
    ///
    /// # Errors
    /// [`RichMenuError::Line`], [`RichMenuError::Store`].
    pub async fn provision(&self) -> Result<HashMap<MenuKey, RichMenuId>, RichMenuError> {
        self.provision_counting(&mut ReconcileReport::default()).await
    }

    async fn provision_counting(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<HashMap<MenuKey, RichMenuId>, RichMenuError> {
        let stored: HashMap<MenuKey, StoredMenu> =
            self.store.menus().await?.into_iter().map(|m| (m.key.clone(), m)).collect();
        let mut ids = HashMap::new();
        for spec in self.specs.iter() {
            let fingerprint = spec.fingerprint();
            if let Some(menu) = stored.get(&spec.key).filter(|m| m.fingerprint == fingerprint) {
                ids.insert(spec.key.clone(), menu.rich_menu_id.clone());
                continue;
            }
            let id = self.client.create_rich_menu(&spec.menu).await?;
            self.client.upload_rich_menu_image(&id, spec.image.clone()).await?;
            report.calls += 2;
            if let Some(alias) = &spec.alias {
                report.calls += 1;
                let created = self
                    .client
                    .create_rich_menu_alias(&RichMenuAlias::new(alias.clone(), id.clone()))
                    .await;
                if created.is_err() {
                    report.calls += 1;
                    self.client.update_rich_menu_alias(alias, &id).await?;
                }
            }
            if spec.key == self.rules.default {
                report.calls += 1;
                self.client.set_default_rich_menu(&id).await?;
            }
            self.store
                .put_menu(&StoredMenu::new(spec.key.clone(), fingerprint, id.clone()))
                .await?;
            tracing::info!(menu = %spec.key, rich_menu_id = %id, "rich menu created");
            report.menus_created += 1;
            ids.insert(spec.key.clone(), id);
        }
        Ok(ids)
    }

    /// One pass: finishes leftovers, provisions the menus, then applies the difference between
    /// `desired` (user → menu key, e.g. from [`MenuRules::desired`]) and what was applied.
    /// Users not in `desired` are not touched.
    ///
    /// # Errors
    /// [`RichMenuError::Line`] / [`RichMenuError::Store`] (what was recorded stays pending and
    /// the next pass finishes it); [`RichMenuError::Config`] for a key no menu is declared
    /// under; [`RichMenuError::BatchFailed`].
    pub async fn reconcile(
        &self,
        desired: &[(LineUserId, MenuKey)],
    ) -> Result<ReconcileReport, RichMenuError> {
        self.reconcile_with(desired, true).await
    }

    /// A pass over a few users (a link, a follow): like [`reconcile`](Self::reconcile) but
    /// never with a `richmenu/batch` request, which would move every user of a menu, not only
    /// these.
    ///
    /// # Errors
    /// As [`reconcile`](Self::reconcile).
    pub async fn reconcile_users(
        &self,
        desired: &[(LineUserId, MenuKey)],
    ) -> Result<ReconcileReport, RichMenuError> {
        self.reconcile_with(desired, false).await
    }

    async fn reconcile_with(
        &self,
        desired: &[(LineUserId, MenuKey)],
        batches: bool,
    ) -> Result<ReconcileReport, RichMenuError> {
        let mut report =
            ReconcileReport { users: desired.len() as u64, ..ReconcileReport::default() };
        self.resume_counting(&mut report).await?;
        let ids = self.provision_counting(&mut report).await?;
        let applied = self.store.applied().await?;
        let mut moves: BTreeMap<Move, Vec<LineUserId>> = BTreeMap::new();
        for (user, key) in desired {
            let target = if *key == self.rules.default {
                None
            } else {
                Some(ids.get(key).cloned().ok_or_else(|| RichMenuError::Config {
                    field: "desired".into(),
                    reason: format!("menu {key} is not declared"),
                })?)
            };
            let current = applied.get(user).cloned();
            if current != target {
                moves.entry((current, target)).or_default().push(user.clone());
            }
        }
        if moves.is_empty() {
            return Ok(report);
        }
        // Whole-menu moves become batch operations: every user recorded on `from` whose menu
        // this pass decides moves to one target, and there are enough of them to be worth one
        // of the 3 batch calls an hour. Users on `from` this pass leaves alone (those who
        // blocked the account) move with them: LINE's batch moves everyone on `from`.
        let wanted: HashSet<&LineUserId> = desired.iter().map(|(u, _)| u).collect();
        let mut on_menu: HashMap<&RichMenuId, usize> = HashMap::new();
        let mut untouched: HashMap<&RichMenuId, Vec<LineUserId>> = HashMap::new();
        for (user, menu) in &applied {
            if wanted.contains(user) {
                *on_menu.entry(menu).or_default() += 1;
            } else {
                untouched.entry(menu).or_default().push(user.clone());
            }
        }
        let mut batch_ops = Vec::new();
        let mut bulk: BTreeMap<Option<RichMenuId>, Vec<LineUserId>> = BTreeMap::new();
        for ((from, to), mut users) in moves {
            let whole = from.as_ref().is_some_and(|f| on_menu.get(f) == Some(&users.len()));
            match from {
                Some(from) if batches && whole && users.len() >= self.batch_threshold => {
                    users.extend(untouched.remove(&from).unwrap_or_default());
                    batch_ops.push((from, to, users));
                }
                _ => bulk.entry(to).or_default().extend(users),
            }
        }
        // Batches first: they act on whoever is on `from` at LINE, so nobody else may be
        // linked to a `from` before they ran.
        for (from, to, users) in split_batches(batch_ops, &mut bulk) {
            {
                let op = MenuOperation::new(
                    new_id(),
                    MenuOperationKind::Batch {
                        from,
                        to,
                        users,
                        resume_key: String::new(),
                        request_id: None,
                    },
                );
                let op = with_resume_key(op);
                self.store.record(&op).await?;
                let moved = self.run_batch(op, &mut report).await?;
                report.batched += moved;
                report.switches += moved;
            }
        }
        for (target, users) in bulk {
            for chunk in users.chunks(RICH_MENU_BULK_CHUNK) {
                let kind = match &target {
                    Some(menu) => {
                        MenuOperationKind::Link { menu: menu.clone(), users: chunk.to_vec() }
                    }
                    None => MenuOperationKind::Unlink { users: chunk.to_vec() },
                };
                let op = MenuOperation::new(new_id(), kind);
                self.store.record(&op).await?;
                self.call_bulk(&op, op.users()).await?;
                report.calls += 1;
                self.store.settle(&op.id, &op.outcome()).await?;
                let n = chunk.len() as u64;
                report.switches += n;
                if target.is_some() { report.linked += n } else { report.unlinked += n }
            }
        }
        tracing::info!(
            users = report.users,
            switches = report.switches,
            calls = report.calls,
            "rich menus reconciled"
        );
        Ok(report)
    }

    /// Finishes the operations an earlier pass recorded but did not settle (it crashed, or a
    /// call failed): bulk operations are re-checked user by user with LINE and only the users
    /// not yet switched are switched; batches are sent again with their resume key, which
    /// makes LINE process only the users it has not processed. [`reconcile`](Self::reconcile)
    /// calls this first. Returns the number of operations finished.
    ///
    /// # Errors
    /// As [`reconcile`](Self::reconcile).
    pub async fn resume(&self) -> Result<u64, RichMenuError> {
        let mut report = ReconcileReport::default();
        self.resume_counting(&mut report).await?;
        Ok(report.resumed)
    }

    async fn resume_counting(&self, report: &mut ReconcileReport) -> Result<(), RichMenuError> {
        for op in self.store.pending().await? {
            tracing::warn!(operation = %op.id, users = op.users().len(), "resuming a rich-menu operation");
            match &op.kind {
                MenuOperationKind::Batch { .. } => {
                    let moved = self.run_batch(op, report).await?;
                    report.switches += moved;
                }
                MenuOperationKind::Link { .. } | MenuOperationKind::Unlink { .. } => {
                    let target = op.target().cloned();
                    let mut missing = Vec::new();
                    for user in op.users() {
                        report.calls += 1;
                        if self.client.user_rich_menu(user).await? != target {
                            missing.push(user.clone());
                        }
                    }
                    if !missing.is_empty() {
                        self.call_bulk(&op, &missing).await?;
                        report.calls += 1;
                        report.switches += missing.len() as u64;
                    }
                    self.store.settle(&op.id, &op.outcome()).await?;
                }
            }
            report.resumed += 1;
        }
        Ok(())
    }

    async fn call_bulk(
        &self,
        op: &MenuOperation,
        users: &[LineUserId],
    ) -> Result<(), RichMenuError> {
        match op.target() {
            Some(menu) => self.client.bulk_link_rich_menu(users, menu).await?,
            None => self.client.bulk_unlink_rich_menu(users).await?,
        }
        Ok(())
    }

    /// Sends (or resumes) a batch operation until LINE reports it succeeded, then settles it.
    /// Returns the users it moved.
    async fn run_batch(
        &self,
        mut op: MenuOperation,
        report: &mut ReconcileReport,
    ) -> Result<u64, RichMenuError> {
        let MenuOperationKind::Batch { from, to, resume_key, request_id, .. } = op.kind.clone()
        else {
            return Ok(0);
        };
        let request = RichMenuBatchRequest::new(vec![match to {
            Some(to) => RichMenuBatchOperation::Link { from, to },
            None => RichMenuBatchOperation::Unlink { from },
        }])
        .resume_request_key(resume_key);
        let mut current = request_id;
        let mut attempts = 0;
        loop {
            let id = match current.take() {
                Some(id) => id,
                None => {
                    if attempts >= self.batch_attempts {
                        return Err(RichMenuError::BatchFailed {
                            operation: op.id.clone(),
                            attempts,
                        });
                    }
                    attempts += 1;
                    report.calls += 1;
                    let id = self.client.rich_menu_batch(&request).await?;
                    if let MenuOperationKind::Batch { request_id, .. } = &mut op.kind {
                        *request_id = Some(id.clone());
                    }
                    self.store.update(&op).await?;
                    id
                }
            };
            let phase = loop {
                report.calls += 1;
                let progress = match self.client.rich_menu_batch_progress(&id).await {
                    Ok(progress) => progress,
                    // LINE keeps progress 14 days: an unknown request is sent again with its
                    // resume key, which processes only the users not yet processed.
                    Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {
                        break RichMenuBatchPhase::Failed;
                    }
                    Err(e) => return Err(e.into()),
                };
                if progress.phase != RichMenuBatchPhase::Ongoing {
                    break progress.phase;
                }
                tokio::time::sleep(self.poll_interval).await;
            };
            match phase {
                RichMenuBatchPhase::Succeeded => break,
                phase => {
                    tracing::warn!(operation = %op.id, %phase, "rich-menu batch did not succeed; resuming it");
                }
            }
        }
        self.store.settle(&op.id, &op.outcome()).await?;
        Ok(op.users().len() as u64)
    }

    /// Compares what LINE shows for `users` with what was recorded, one `GET` per user (2,000
    /// a second). Users that differ are recorded as LINE shows them, so the next
    /// [`reconcile`](Self::reconcile) pass puts them right.
    ///
    /// # Errors
    /// [`RichMenuError::Line`], [`RichMenuError::Store`].
    pub async fn repair_drift(&self, users: &[LineUserId]) -> Result<DriftReport, RichMenuError> {
        let applied = self.store.applied().await?;
        let mut report = DriftReport::default();
        let mut rows = Vec::new();
        for user in users {
            report.checked += 1;
            let actual = self.client.user_rich_menu(user).await?;
            if actual.as_ref() != applied.get(user) {
                rows.push((user.clone(), actual));
                report.drifted.push(user.clone());
            }
        }
        self.store.set_applied(&rows).await?;
        if !report.drifted.is_empty() {
            tracing::warn!(drifted = report.drifted.len(), "rich menus drifted on LINE");
        }
        Ok(report)
    }

    /// LINE's statistics of every current menu over `from..=to` (days in UTC+9), for the
    /// results report. 60 calls an hour: one per menu.
    ///
    /// # Errors
    /// [`RichMenuError::Line`], [`RichMenuError::Store`].
    pub async fn statistics(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MenuStatistics>, RichMenuError> {
        let mut out = Vec::new();
        for menu in self.store.menus().await? {
            let summary =
                self.client.rich_menu_insight_summary(&menu.rich_menu_id, from, to).await?;
            out.push(MenuStatistics { key: menu.key, rich_menu_id: menu.rich_menu_id, summary });
        }
        Ok(out)
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn with_resume_key(mut op: MenuOperation) -> MenuOperation {
    let id = op.id.clone();
    if let MenuOperationKind::Batch { resume_key, .. } = &mut op.kind {
        *resume_key = id;
    }
    op
}

/// Keeps the batch moves LINE can run in any order: a move whose target is another move's
/// source would have its users moved again by that one, so it goes back to the bulk calls
/// (which run after every batch).
fn split_batches(
    moves: Vec<(RichMenuId, Option<RichMenuId>, Vec<LineUserId>)>,
    bulk: &mut BTreeMap<Option<RichMenuId>, Vec<LineUserId>>,
) -> Vec<(RichMenuId, Option<RichMenuId>, Vec<LineUserId>)> {
    let sources: HashSet<RichMenuId> = moves.iter().map(|(from, _, _)| from.clone()).collect();
    let mut kept = Vec::new();
    for (from, to, users) in moves {
        if to.as_ref().is_some_and(|t| sources.contains(t)) {
            bulk.entry(to).or_default().extend(users);
        } else {
            kept.push((from, to, users));
        }
    }
    kept
}
