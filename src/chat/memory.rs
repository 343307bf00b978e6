//! The in-memory chat store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::store::{
    ChatStore, ChatStoreError, HandOff, LogEntry, SurveyProgress, attribute_json, check_entry,
    check_reason, check_survey, from_ms, idle_cutoff_ms, trunc_ms,
};
use crate::segment::AttrValue;
use crate::{CustomerId, LineUserId};

/// The in-memory chat store: one process, lost on restart. For tests, demos and as the
/// reference behaviour of the conformance suite.
///
/// Clones share the data. [`with_channel`](Self::with_channel) gives a handle of another LINE
/// channel onto the same memory, as the SQL stores keep several channels in one database.
#[derive(Debug, Clone, Default)]
pub struct MemoryChatStore {
    inner: Arc<Mutex<HashMap<Arc<str>, ChannelData>>>,
    channel: Arc<str>,
}

#[derive(Debug, Default)]
struct ChannelData {
    handoffs: HashMap<LineUserId, HandOff>,
    /// Per customer and key: the value and when it was written (ms).
    attributes: BTreeMap<CustomerId, BTreeMap<String, (AttrValue, i64)>>,
    surveys: HashMap<LineUserId, SurveyProgress>,
    /// In append order.
    log: Vec<LogEntry>,
}

impl ChannelData {
    /// The log, oldest first; entries at one instant in append order (a stable sort).
    fn log_sorted(&self, keep: impl Fn(&LogEntry) -> bool) -> Vec<&LogEntry> {
        let mut out: Vec<&LogEntry> = self.log.iter().filter(|e| keep(e)).collect();
        out.sort_by_key(|e| e.at);
        out
    }
}

impl MemoryChatStore {
    /// An empty store (its channel is unnamed).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle of `channel` onto this store's memory: it sees only that channel's data.
    #[must_use]
    pub fn with_channel(&self, channel: &str) -> Self {
        Self { inner: Arc::clone(&self.inner), channel: channel.into() }
    }

    /// Runs `f` on this channel's data.
    fn with<T>(&self, f: impl FnOnce(&mut ChannelData) -> T) -> T {
        // Every mutation completes before anything can panic: a poisoned map is consistent.
        let mut inner: MutexGuard<'_, _> =
            self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(inner.entry(Arc::clone(&self.channel)).or_default())
    }
}

#[async_trait::async_trait]
impl ChatStore for MemoryChatStore {
    async fn start_handoff(
        &self,
        user: &LineUserId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        check_reason(reason)?;
        let now = trunc_ms(now);
        Ok(self.with(|d| match d.handoffs.get_mut(user) {
            Some(h) => {
                h.last_activity = h.last_activity.max(now);
                false
            }
            None => {
                d.handoffs.insert(user.clone(), HandOff::new(user.clone(), reason, now, now));
                true
            }
        }))
    }

    async fn active_handoff(
        &self,
        user: &LineUserId,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<HandOff>, ChatStoreError> {
        let cutoff = idle_cutoff_ms(idle, now);
        Ok(self.with(|d| {
            let h = d.handoffs.get(user)?;
            if h.last_activity.timestamp_millis() < cutoff {
                d.handoffs.remove(user);
                return None;
            }
            Some(h.clone())
        }))
    }

    async fn touch_handoff(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError> {
        let now = trunc_ms(now);
        Ok(self.with(|d| {
            d.handoffs.get_mut(user).map(|h| h.last_activity = h.last_activity.max(now)).is_some()
        }))
    }

    async fn end_handoff(&self, user: &LineUserId) -> Result<bool, ChatStoreError> {
        Ok(self.with(|d| d.handoffs.remove(user).is_some()))
    }

    async fn handoffs(&self) -> Result<Vec<HandOff>, ChatStoreError> {
        let mut out: Vec<HandOff> = self.with(|d| d.handoffs.values().cloned().collect());
        out.sort_by(|a, b| (a.since, a.line_user.as_str()).cmp(&(b.since, b.line_user.as_str())));
        Ok(out)
    }

    async fn set_attribute(
        &self,
        customer: &CustomerId,
        key: &str,
        value: &AttrValue,
        now: DateTime<Utc>,
    ) -> Result<(), ChatStoreError> {
        attribute_json(key, value)?;
        let now = now.timestamp_millis();
        self.with(|d| {
            let attrs = d.attributes.entry(customer.clone()).or_default();
            match attrs.get(key) {
                Some((_, at)) if *at > now => {}
                _ => {
                    attrs.insert(key.to_owned(), (value.clone(), now));
                }
            }
        });
        Ok(())
    }

    async fn attributes(
        &self,
    ) -> Result<BTreeMap<CustomerId, BTreeMap<String, AttrValue>>, ChatStoreError> {
        Ok(self.with(|d| {
            d.attributes
                .iter()
                .map(|(c, attrs)| {
                    let values = attrs.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect();
                    (c.clone(), values)
                })
                .collect()
        }))
    }

    async fn set_survey(
        &self,
        user: &LineUserId,
        progress: Option<&SurveyProgress>,
    ) -> Result<(), ChatStoreError> {
        check_survey(progress)?;
        self.with(|d| match progress {
            Some(p) => {
                let p = SurveyProgress::new(p.survey.clone(), p.step, p.started_at);
                d.surveys.insert(user.clone(), p);
            }
            None => {
                d.surveys.remove(user);
            }
        });
        Ok(())
    }

    async fn survey_of(&self, user: &LineUserId) -> Result<Option<SurveyProgress>, ChatStoreError> {
        Ok(self.with(|d| d.surveys.get(user).cloned()))
    }

    async fn append_log(&self, entry: &LogEntry) -> Result<(), ChatStoreError> {
        check_entry(entry)?;
        let mut entry = entry.clone();
        entry.at = from_ms(entry.at.timestamp_millis());
        self.with(|d| d.log.push(entry));
        Ok(())
    }

    async fn log_of(
        &self,
        user: &LineUserId,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ChatStoreError> {
        Ok(self.with(|d| {
            let all = d.log_sorted(|e| &e.line_user == user);
            let skip = all.len().saturating_sub(limit);
            all.into_iter().skip(skip).cloned().collect()
        }))
    }

    async fn log_since(&self, since: DateTime<Utc>) -> Result<Vec<LogEntry>, ChatStoreError> {
        let since = since.timestamp_millis();
        Ok(self.with(|d| {
            d.log_sorted(|e| e.at.timestamp_millis() >= since).into_iter().cloned().collect()
        }))
    }

    async fn purge_log(&self, before: DateTime<Utc>) -> Result<u64, ChatStoreError> {
        let before = before.timestamp_millis();
        Ok(self.with(|d| {
            let len = d.log.len();
            d.log.retain(|e| e.at.timestamp_millis() >= before);
            (len - d.log.len()) as u64
        }))
    }
}
