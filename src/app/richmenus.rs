//! Rich menus that follow the app's segments: [`EnishiBuilder::rich_menus`] hands the app a
//! [`RichMenuReconciler`] and the segments its rules name; the app runs a full pass when the
//! segment engine says someone crosses a rule's boundary by time alone, after each sync that
//! changed something, and a pass over the affected users at once on a link, an unlink, a
//! follow or an unfollow.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::{AppError, Enishi, EnishiBuilder};
use crate::link::CustomerLink;
use crate::richmenu::{Friend, MenuKey, ReconcileReport, RichMenuError, RichMenuReconciler};
use crate::segment::{Engine, SegmentDefinition};
use crate::{CustomerId, LineUserId};

/// How long a webhook or a page waits for the menu switch its change causes.
const MENU_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the builder holds until `build`.
pub(super) struct MenuSetup {
    reconciler: RichMenuReconciler,
    segments: Vec<(String, SegmentDefinition)>,
}

/// The app's rich-menu state.
pub(super) struct AppMenus {
    reconciler: RichMenuReconciler,
    segments: Vec<(String, SegmentDefinition)>,
    /// One pass at a time in this process (a webhook's and the service loop's).
    pass: tokio::sync::Mutex<()>,
    /// When a rule's segment next changes by time alone; `None` before the first pass.
    next_wake: Mutex<Option<Option<DateTime<Utc>>>>,
    /// Per-user menu switches made by this app.
    switches: AtomicU64,
}

impl EnishiBuilder {
    /// Keeps every friend's rich menu equal to the one `reconciler`'s rules pick (see
    /// [`crate::richmenu`]). `segments` defines each segment the rules name; the app registers
    /// them in its segment engine. [`Enishi::run`] runs a full pass when a segment changes by
    /// time alone (the engine's `next_change`) and after each sync that changed something; a
    /// link, an unlink, a follow or an unfollow switches that friend's menu at once.
    pub fn rich_menus<S: Into<String>>(
        mut self,
        reconciler: RichMenuReconciler,
        segments: impl IntoIterator<Item = (S, SegmentDefinition)>,
    ) -> Self {
        let segments = segments.into_iter().map(|(n, d)| (n.into(), d)).collect();
        self.rich_menus = Some(MenuSetup { reconciler, segments });
        self
    }
}

impl MenuSetup {
    /// Checks that every rule names a given segment.
    pub(super) fn build(self) -> Result<AppMenus, AppError> {
        let names: HashSet<&str> = self.segments.iter().map(|(n, _)| n.as_str()).collect();
        for (i, (segment, _)) in self.reconciler.rules().rules.iter().enumerate() {
            if !names.contains(segment.as_str()) {
                return Err(AppError::Config(format!(
                    "rich menu rules[{i}] names segment `{segment}`, which `rich_menus` does not define"
                )));
            }
        }
        Ok(AppMenus {
            reconciler: self.reconciler,
            segments: self.segments,
            pass: tokio::sync::Mutex::new(()),
            next_wake: Mutex::new(None),
            switches: AtomicU64::new(0),
        })
    }
}

impl AppMenus {
    pub(super) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    fn count(&self, report: &ReconcileReport, full: bool) {
        self.switches.fetch_add(report.switches, Ordering::Relaxed);
        metrics::counter!("enishi_rich_menu_switches_total").increment(report.switches);
        metrics::counter!("enishi_rich_menu_calls_total").increment(report.calls);
        let kind = if full { "full" } else { "users" };
        metrics::counter!("enishi_rich_menu_passes_total", "kind" => kind).increment(1);
    }

    /// Registers the rules' segments in a (freshly loaded) engine.
    fn register(&self, engine: &mut Engine, checked: bool) -> Result<(), AppError> {
        for (name, def) in &self.segments {
            if engine.members(name).is_err() {
                if checked {
                    engine.register(name, def.clone())?;
                } else {
                    engine.register_unchecked(name, def.clone())?;
                }
            }
        }
        Ok(())
    }

    /// Whether a full pass is due: never ran, or a segment boundary has passed.
    fn due(&self, now: DateTime<Utc>) -> bool {
        match *self.next_wake.lock().unwrap_or_else(PoisonError::into_inner) {
            None => true,
            Some(wake) => wake.is_some_and(|w| w <= now),
        }
    }
}

impl Enishi {
    /// The rich-menu reconciler (with [`EnishiBuilder::rich_menus`]), e.g. for its
    /// statistics in the results report.
    #[must_use]
    pub fn rich_menu_reconciler(&self) -> Option<&RichMenuReconciler> {
        self.inner.rich_menus.as_ref().map(|m| &m.reconciler)
    }

    /// Per-user rich-menu switches this app made so far.
    #[must_use]
    pub fn rich_menu_switches(&self) -> u64 {
        self.inner.rich_menus.as_ref().map_or(0, AppMenus::switches)
    }

    /// When the rich-menu rules next change for someone by time alone, as of the last full
    /// pass (`None`: no pass yet, or nothing changes by time alone).
    #[must_use]
    pub fn rich_menu_next_wake(&self) -> Option<DateTime<Utc>> {
        let menus = self.inner.rich_menus.as_ref()?;
        menus.next_wake.lock().unwrap_or_else(PoisonError::into_inner).flatten()
    }

    /// A full rich-menu pass at the app's now: every linked, following customer gets the menu
    /// the rules pick from the segments as of the last sync, and users no longer linked go back
    /// to the default menu. Cheap when nothing changed. Does nothing without
    /// [`EnishiBuilder::rich_menus`].
    ///
    /// # Errors
    /// [`AppError::RichMenu`] (what was recorded is finished by the next pass),
    /// [`AppError::Segment`]; loading errors as [`sync`](Self::sync).
    pub async fn reconcile_rich_menus(&self) -> Result<ReconcileReport, AppError> {
        let Some(menus) = &self.inner.rich_menus else { return Ok(ReconcileReport::default()) };
        let _pass = menus.pass.lock().await;
        let rules = menus.reconciler.rules();
        let (mut desired, linked, wake) = {
            let mut brain = self.inner.brain.lock().await;
            self.ensure_loaded(&mut brain).await?;
            let now = self.now();
            // The link store's links now, not the last sync's: a link, an unlink or a follow
            // since (on any instance) must not be undone by this pass.
            let ids = brain.customer_ids();
            let links: HashMap<CustomerId, CustomerLink> = self
                .storage()
                .links()
                .links_of_customers(&ids)
                .await?
                .into_iter()
                .map(|l| (l.link.customer.clone(), l))
                .collect();
            brain.see_links(&links);
            let engine = brain.menu_engine(now);
            menus.register(engine, self.inner.check_segments)?;
            let friends: Vec<Friend> = links
                .values()
                .map(|l| {
                    Friend::new(l.link.line_user.clone(), Some(l.link.customer.clone()))
                        .following(l.following())
                })
                .collect();
            let desired = rules.desired(engine, &friends)?;
            let wake = rules.next_wake(engine, links.keys())?;
            let linked: HashSet<LineUserId> = friends.into_iter().map(|f| f.user).collect();
            (desired, linked, wake)
        };
        let applied = menus.reconciler.store().applied().await.map_err(RichMenuError::from)?;
        let default = rules.default_menu();
        desired.extend(
            applied.into_keys().filter(|u| !linked.contains(u)).map(|u| (u, default.clone())),
        );
        let report = menus.reconciler.reconcile(&desired).await?;
        *menus.next_wake.lock().unwrap_or_else(PoisonError::into_inner) = Some(wake);
        menus.count(&report, true);
        Ok(report)
    }

    /// Switches these users' rich menus at once (after a link, an unlink, a follow): each
    /// linked, following user gets the menu the rules pick (the engine first sees the link),
    /// an unlinked one the default menu; a user who blocked the account is left alone. No
    /// `richmenu/batch` request is used. Does nothing without [`EnishiBuilder::rich_menus`].
    ///
    /// # Errors
    /// As [`reconcile_rich_menus`](Self::reconcile_rich_menus); [`AppError::Links`].
    pub async fn refresh_rich_menus(
        &self,
        users: &[LineUserId],
    ) -> Result<ReconcileReport, AppError> {
        let Some(menus) = &self.inner.rich_menus else { return Ok(ReconcileReport::default()) };
        let _pass = menus.pass.lock().await;
        let store = self.storage().links();
        let rules = menus.reconciler.rules();
        let mut desired: Vec<(LineUserId, MenuKey)> = Vec::new();
        for user in users {
            let link = match store.link_of_user(user).await? {
                Some(link) => store
                    .links_of_customers(std::slice::from_ref(&link.customer))
                    .await?
                    .into_iter()
                    .find(|l| l.link.line_user == *user),
                None => None,
            };
            let Some(link) = link else {
                let following = store.follow_status(user).await?.is_none_or(|f| f.following);
                if following {
                    desired.push((user.clone(), rules.default_menu().clone()));
                }
                continue;
            };
            if !link.following() {
                continue;
            }
            let mut brain = self.inner.brain.lock().await;
            self.ensure_loaded(&mut brain).await?;
            brain.see_link(&link);
            let engine = brain.menu_engine(self.now());
            menus.register(engine, self.inner.check_segments)?;
            let friend = Friend::new(user.clone(), Some(link.link.customer.clone()));
            desired.append(&mut rules.desired(engine, std::slice::from_ref(&friend))?);
        }
        if desired.is_empty() {
            return Ok(ReconcileReport::default());
        }
        let report = menus.reconciler.reconcile_users(&desired).await?;
        menus.count(&report, false);
        tracing::info!(target: "enishi::richmenu", users = users.len(), switches = report.switches, "rich menus switched after a link or follow change");
        Ok(report)
    }

    /// [`refresh_rich_menus`](Self::refresh_rich_menus) for a webhook or a page, in a task
    /// waited for at most [`MENU_WAIT`]: the answer is not held up for long while a full pass
    /// (a batch being polled) has the lock. A failure is logged and counted, and the next full
    /// pass puts it right.
    pub(super) async fn menus_after_change(&self, users: &[LineUserId]) {
        if self.inner.rich_menus.is_none() || users.is_empty() {
            return;
        }
        let (app, users) = (self.clone(), users.to_vec());
        let task = tokio::spawn(async move {
            if let Err(e) = app.refresh_rich_menus(&users).await {
                metrics::counter!("enishi_errors_total", "what" => "rich_menu").increment(1);
                tracing::warn!(target: "enishi::richmenu", error = %e, "rich menus not switched; the next full pass will");
            }
        });
        if tokio::time::timeout(MENU_WAIT, task).await.is_err() {
            tracing::debug!(target: "enishi::richmenu", "rich-menu switch continues in the background");
        }
    }

    /// The service loop's rich-menu step: a full pass when none ran yet, when a segment
    /// boundary passed, or after a sync that changed something.
    pub(super) async fn menu_round(&self, synced_changes: bool) -> Result<(), AppError> {
        let Some(menus) = &self.inner.rich_menus else { return Ok(()) };
        if synced_changes || menus.due(self.now()) {
            self.reconcile_rich_menus().await?;
        }
        Ok(())
    }
}
