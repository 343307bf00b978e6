//! Where "now" comes from for the parts of enishi that plan by the calendar (sync, scenario
//! ticks, campaign schedules, planning).
//!
//! A shop runs on [`SystemClock`]. Demos and tests run weeks in seconds on a
//! [`SimulatedClock`], whose instants lie in the past, so every batch it plans is already due
//! by the wall clock the journal's claims and leases use.

use std::fmt;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

/// Japan Standard Time: UTC+9 all year (Japan has no daylight saving time).
pub(crate) fn jst() -> FixedOffset {
    const NINE_HOURS: FixedOffset = match FixedOffset::east_opt(9 * 3600) {
        Some(offset) => offset,
        None => panic!("+09:00 is a valid offset"),
    };
    NINE_HOURS
}

/// A date as a Japanese customer reads it, in JST: `2026年12月31日`.
pub(crate) fn format_jst_date_ja(instant: DateTime<Utc>) -> String {
    instant.with_timezone(&jst()).format("%Y年%-m月%-d日").to_string()
}

/// A source of the current instant.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at `start` and runs `speed` times faster than the wall clock.
///
/// Two processes given the same `start`, `speed` and wall-clock anchor (see
/// [`SimulatedClock::anchored`]) read the same instant, so instances of a simulated service
/// agree on the time, across restarts too.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedClock {
    start: DateTime<Utc>,
    speed: u32,
    anchor: Anchor,
    until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
enum Anchor {
    /// This process' monotonic clock when the simulation started.
    Monotonic(Instant),
    /// The wall-clock instant the simulation started (shared between processes).
    Wall(DateTime<Utc>),
}

impl SimulatedClock {
    /// A clock reading `start` now and advancing `speed` simulated seconds per real second
    /// (`speed` 0 is taken as 1).
    #[must_use]
    pub fn starting_at(start: DateTime<Utc>, speed: u32) -> Self {
        Self { start, speed: speed.max(1), anchor: Anchor::Monotonic(Instant::now()), until: None }
    }

    /// A clock that read `start` at the wall-clock instant `anchor` and advances `speed`
    /// simulated seconds per real second since: what several processes share.
    #[must_use]
    pub fn anchored(start: DateTime<Utc>, speed: u32, anchor: DateTime<Utc>) -> Self {
        Self { start, speed: speed.max(1), anchor: Anchor::Wall(anchor), until: None }
    }

    /// Stops the clock at `limit`: it reads `limit` from then on (a simulation that must not
    /// run into the wall clock's future).
    #[must_use]
    pub fn until(mut self, limit: DateTime<Utc>) -> Self {
        self.until = Some(limit);
        self
    }

    /// The simulated instant at which the clock started.
    #[must_use]
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Simulated seconds per real second.
    #[must_use]
    pub fn speed(&self) -> u32 {
        self.speed
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let real = match self.anchor {
            Anchor::Monotonic(at) => TimeDelta::from_std(at.elapsed()).unwrap_or(TimeDelta::MAX),
            Anchor::Wall(at) => (Utc::now() - at).max(TimeDelta::zero()),
        };
        let simulated = real.checked_mul(i32::try_from(self.speed).unwrap_or(i32::MAX));
        let now = simulated
            .and_then(|d| self.start.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.until.map_or(now, |limit| now.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_anchored_clock_reads_the_same_in_two_places() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let anchor = Utc::now() - TimeDelta::seconds(10);
        let a = SimulatedClock::anchored(start, 3600, anchor);
        let b = SimulatedClock::anchored(start, 3600, anchor);
        let (ta, tb) = (a.now(), b.now());
        // Ten real seconds are ten simulated hours, give or take the time between the reads.
        assert!(ta >= start + TimeDelta::hours(10));
        assert!((tb - ta).num_seconds().abs() < 3600 * 60, "{ta} vs {tb}");
    }

    #[test]
    fn a_clock_stops_at_its_limit() {
        let start = Utc::now() - TimeDelta::days(10);
        let limit = start + TimeDelta::hours(1);
        let c = SimulatedClock::anchored(start, 1_000_000, Utc::now() - TimeDelta::seconds(60))
            .until(limit);
        assert_eq!(c.now(), limit);
    }

    #[test]
    fn speed_zero_is_one() {
        let c = SimulatedClock::starting_at(Utc::now(), 0);
        assert_eq!(c.speed(), 1);
    }
}
