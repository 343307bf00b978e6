//! Shop-wide delivery rules every campaign obeys: a frequency cap across campaigns, quiet hours
//! and a global holdout group.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Days, FixedOffset, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::split;
use crate::campaign::SendRecord;
use crate::{CampaignId, CustomerId, LineUserId};

/// The rules that apply to every campaign of a shop.
///
/// The default applies none of them; [`DeliveryPolicy::recommended`] is a sensible start.
///
/// ```
/// use chrono::{NaiveTime, TimeDelta};
/// use enishi::campaign::{DeliveryPolicy, FrequencyCap, Holdout, QuietHours};
///
/// let policy = DeliveryPolicy::new()
///     .with_frequency_cap(FrequencyCap::new(2, TimeDelta::days(7)))
///     .with_quiet_hours(QuietHours::new(
///         NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
///         NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
///     ))
///     .with_holdout(Holdout::percent("holdout-2026", 5));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryPolicy {
    /// At most so many messages per LINE user per window, across all campaigns.
    pub frequency_cap: Option<FrequencyCap>,
    /// Sends due in quiet hours wait until they end.
    pub quiet_hours: Option<QuietHours>,
    /// Customers kept out of every campaign, to measure uplift against.
    pub holdout: Option<Holdout>,
    /// How a narrowcast may use the monthly quota: LINE's `upToRemainingQuota` and
    /// `forbidPartialDelivery` (see [`DeliveryPolicy::narrowcast_limit`]; default: the whole
    /// target or nothing, refused by LINE when the quota cannot cover it).
    pub narrowcast_quota: crate::campaign::forecast::NarrowcastQuotaPolicy,
}

impl DeliveryPolicy {
    /// No cap, no quiet hours, no holdout.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// At most 2 messages per user per 7 days, quiet from 21:00 to 09:00 Japan time, no holdout.
    #[must_use]
    pub fn recommended() -> Self {
        Self::new()
            .with_frequency_cap(FrequencyCap::new(2, TimeDelta::days(7)))
            .with_quiet_hours(QuietHours::new(hm(21, 0), hm(9, 0)))
    }

    /// Sets the frequency cap.
    #[must_use]
    pub fn with_frequency_cap(mut self, cap: FrequencyCap) -> Self {
        self.frequency_cap = Some(cap);
        self
    }

    /// Sets the quiet hours.
    #[must_use]
    pub fn with_quiet_hours(mut self, quiet_hours: QuietHours) -> Self {
        self.quiet_hours = Some(quiet_hours);
        self
    }

    /// Sets the global holdout group.
    #[must_use]
    pub fn with_holdout(mut self, holdout: Holdout) -> Self {
        self.holdout = Some(holdout);
        self
    }

    /// Sets how narrowcasts may use the monthly quota.
    #[must_use]
    pub fn with_narrowcast_quota(
        mut self,
        policy: crate::campaign::forecast::NarrowcastQuotaPolicy,
    ) -> Self {
        self.narrowcast_quota = policy;
        self
    }

    /// The narrowcast `limit` this policy sets (`upToRemainingQuota`,
    /// `forbidPartialDelivery`), with at most `max` recipients: pass it to
    /// [`NarrowcastRequest::limit`](crate::line::NarrowcastRequest::limit).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    #[must_use]
    pub fn narrowcast_limit(&self, max: Option<u64>) -> crate::line::NarrowcastLimit {
        crate::campaign::forecast::narrowcast_limit(self.narrowcast_quota, max)
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// At most `max_sends` messages per LINE user in any window of length `window`, counting
/// every campaign's sends (sent and planned).
///
/// A send at `t` is allowed when every window of length `window` that contains `t` holds fewer
/// than `max_sends` other sends: planned future sends count too, so a campaign planned for
/// today cannot push a user over the cap of one already planned for tomorrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    max_sends: u32,
    window: TimeDelta,
}

impl FrequencyCap {
    /// At most `max_sends` per `window` (e.g. 2 per 7 days). `max_sends == 0` allows nothing;
    /// a window of zero or less caps nothing.
    #[must_use]
    pub fn new(max_sends: u32, window: TimeDelta) -> Self {
        Self { max_sends, window }
    }

    /// The most sends allowed per window.
    #[must_use]
    pub fn max_sends(&self) -> u32 {
        self.max_sends
    }

    /// The window's length.
    #[must_use]
    pub fn window(&self) -> TimeDelta {
        self.window
    }

    /// The earliest send time a [`SendHistory`] must cover when planning sends at `at` (pass it
    /// to `DeliveryJournal::sends_since`).
    #[must_use]
    pub fn history_since(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at - self.window.max(TimeDelta::zero())
    }

    /// Whether one more send to `user` at `at` stays within the cap.
    #[must_use]
    pub fn allows(&self, history: &SendHistory, user: &LineUserId, at: DateTime<Utc>) -> bool {
        self.allows_times(history.times(user), at)
    }

    /// Whether one more send at `at` stays within the cap, given the user's send times (sorted).
    pub(super) fn allows_times(&self, times: &[DateTime<Utc>], at: DateTime<Utc>) -> bool {
        if self.window <= TimeDelta::zero() {
            return true;
        }
        if self.max_sends == 0 {
            return false;
        }
        if times.len() < self.max_sends as usize {
            return true; // Fewer sends in all history than the cap: no window can be full.
        }
        self.busiest_window(times, at) < self.max_sends as usize
    }

    /// The most sends of `times` (sorted) in one window `[s, s + window)` with `s` in
    /// `(at - window, at]`, i.e. a window that contains `at`.
    fn busiest_window(&self, times: &[DateTime<Utc>], at: DateTime<Utc>) -> usize {
        let lo = at - self.window;
        let hi = at + self.window;
        let first = times.partition_point(|t| *t <= lo);
        let last = times.partition_point(|t| *t < hi);
        let near = &times[first..last];
        // The count of a window is largest when it starts at one of the sends (or just above
        // `lo`, which covers every send up to `at`); sends are few per user, so this is cheap.
        let count_from = |start: DateTime<Utc>| {
            let end = start + self.window;
            near.iter().filter(|t| **t >= start && **t < end).count()
        };
        let opening = near.iter().filter(|t| **t <= at).count();
        near.iter().filter(|t| **t <= at).map(|t| count_from(*t)).fold(opening, usize::max)
    }
}

/// Hours in which nothing is sent: a send due then is deferred to their end, not dropped.
///
/// The hours are local to a fixed UTC offset, Japan time (`+09:00`, which has no daylight
/// saving) unless [`QuietHours::with_offset`] says otherwise. A start after the end wraps
/// midnight (21:00–09:00); a start equal to the end means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
    offset: FixedOffset,
}

/// Japan Standard Time, UTC+09:00 all year.
use crate::clock::jst;

impl QuietHours {
    /// Quiet from `start` (inclusive) to `end` (exclusive), Japan time.
    #[must_use]
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end, offset: jst() }
    }

    /// The same hours at another fixed UTC offset (the shop's time zone).
    #[must_use]
    pub fn with_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }

    /// Local start time.
    #[must_use]
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Local end time.
    #[must_use]
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// The UTC offset the hours are local to.
    #[must_use]
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Whether `at` falls in quiet hours.
    #[must_use]
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.defer(at) != at
    }

    /// `at` itself outside quiet hours, else the instant they end.
    #[must_use]
    pub fn defer(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&self.offset).naive_local();
        let (date, time) = (local.date(), local.time());
        let end_on = |date: chrono::NaiveDate| {
            date.and_time(self.end).and_local_timezone(self.offset).single().map(|t| t.to_utc())
        };
        let deferred = if self.start < self.end {
            (self.start <= time && time < self.end).then(|| end_on(date))
        } else if self.start > self.end {
            if time >= self.start {
                Some(date.checked_add_days(Days::new(1)).and_then(end_on))
            } else if time < self.end {
                Some(end_on(date))
            } else {
                None
            }
        } else {
            None
        };
        // A fixed offset maps every local time to exactly one instant; `None` only at the end
        // of chrono's calendar, where deferring is meaningless.
        deferred.flatten().unwrap_or(at)
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{} ({})", self.start.format("%H:%M"), self.end.format("%H:%M"), self.offset)
    }
}

/// A share of all customers kept out of every campaign, chosen by a salted hash of the customer
/// ID, so the same customers stay held out as long as the salt stays.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdout {
    salt: String,
    basis_points: u16,
}

impl Holdout {
    /// Holds out `percent` % of customers (values above 100 mean 100).
    #[must_use]
    pub fn percent(salt: impl Into<String>, percent: u8) -> Self {
        Self::basis_points(salt, u16::from(percent.min(100)) * 100)
    }

    /// Holds out `basis_points` / 10,000 of customers (250 = 2.5 %; above 10,000 means all).
    #[must_use]
    pub fn basis_points(salt: impl Into<String>, basis_points: u16) -> Self {
        Self { salt: salt.into(), basis_points: basis_points.min(10_000) }
    }

    /// The salt. Changing it draws a new holdout group.
    #[must_use]
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The share held out, in basis points (1/10,000).
    #[must_use]
    pub fn share_basis_points(&self) -> u16 {
        self.basis_points
    }

    /// Whether `customer` is in the holdout group.
    #[must_use]
    pub fn contains(&self, customer: &CustomerId) -> bool {
        split::bucket(&self.salt, customer) < u32::from(self.basis_points)
    }
}

impl fmt::Debug for Holdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holdout")
            .field("salt", &self.salt)
            .field("percent", &(f64::from(self.basis_points) / 100.0))
            .finish()
    }
}

/// Past and planned sends per LINE user, indexed once for frequency caps.
///
/// Build it from the journal's `sends_since(cap.history_since(now))`, plan one or more
/// campaigns against it, and [`SendHistory::record`] each plan's sends when planning several
/// campaigns back to back without enqueueing in between.
#[derive(Debug, Clone, Default)]
pub struct SendHistory {
    by_user: HashMap<LineUserId, Vec<DateTime<Utc>>, split::FastBuild>,
    sends: usize,
}

impl SendHistory {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes send records (any order, any campaign).
    #[must_use]
    pub fn from_records(records: &[SendRecord]) -> Self {
        Self::index(records.iter())
    }

    fn index<'r>(records: impl Iterator<Item = &'r SendRecord>) -> Self {
        let mut history = Self::new();
        for r in records {
            history.by_user.entry(r.line_user.clone()).or_default().push(r.at);
            history.sends += 1;
        }
        for times in history.by_user.values_mut() {
            times.sort_unstable();
        }
        history
    }

    /// Indexes send records except those of `campaign`: use it to plan (or re-plan, when
    /// resuming) `campaign` itself, whose own journal entries must not count against it — a
    /// re-plan then comes out exactly as the first plan did, so its batches match the journal's.
    #[must_use]
    pub fn from_records_except(records: &[SendRecord], campaign: &CampaignId) -> Self {
        Self::index(records.iter().filter(|r| &r.campaign != campaign))
    }

    /// Adds one send.
    pub fn record(&mut self, user: &LineUserId, at: DateTime<Utc>) {
        let times = match self.by_user.get_mut(user) {
            Some(times) => times,
            None => self.by_user.entry(user.clone()).or_default(),
        };
        let i = times.partition_point(|t| *t <= at);
        times.insert(i, at);
        self.sends += 1;
    }

    /// The send times of `user`, oldest first.
    #[must_use]
    pub fn times(&self, user: &LineUserId) -> &[DateTime<Utc>] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }

    /// Every user with sends, and their send times (oldest first), in no particular order.
    pub(super) fn users(&self) -> impl Iterator<Item = (&LineUserId, &[DateTime<Utc>])> {
        self.by_user.iter().map(|(user, times)| (user, times.as_slice()))
    }

    /// How many sends the history holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sends
    }

    /// Whether the history holds no send.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sends == 0
    }
}

impl From<&[SendRecord]> for SendHistory {
    fn from(records: &[SendRecord]) -> Self {
        Self::from_records(records)
    }
}
