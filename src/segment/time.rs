//! Time primitives shared by every evaluator: spans, time zones, calendar days and windows.
//!
//! All evaluation happens on whole Unix seconds (`i64`); sub-second parts of timestamps are
//! dropped (floored) before any comparison, so every evaluator and the SQL compiler agree.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, Utc};
use serde::{Deserialize, Serialize};

use super::error::SegmentError;

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// The default time zone: Asia/Tokyo, a fixed UTC+09:00 offset.
///
/// Japan has observed no daylight saving time since 1951, so a fixed offset is exact for every
/// date a shop will evaluate; no time-zone database is needed.
#[must_use]
pub fn tokyo() -> FixedOffset {
    // 9 hours is always a valid offset; the fallback only exists to avoid a panic path.
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A non-negative length of time with one-second resolution, written `30d`, `3h`, `15m` or `45s`.
///
/// `24h` and `1d` are the same span; the canonical text form uses the largest unit that divides
/// the span exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(i64);

/// Spans longer than this (about 1,000 years) are rejected, so arithmetic never overflows.
const MAX_SPAN_SECS: i64 = 1_000 * 366 * DAY;

impl Span {
    /// A span of `n` seconds.
    ///
    /// # Errors
    /// [`SegmentError::Invalid`] when `n` is negative or longer than about 1,000 years.
    pub fn from_secs(n: i64) -> Result<Self, SegmentError> {
        if (0..=MAX_SPAN_SECS).contains(&n) {
            Ok(Self(n))
        } else {
            Err(SegmentError::invalid(format!("span of {n} seconds is outside 0s..=1000 years")))
        }
    }

    /// A span of `n` days (of 86,400 s).
    ///
    /// # Errors
    /// As [`Span::from_secs`].
    pub fn days(n: i64) -> Result<Self, SegmentError> {
        Self::from_secs(n.saturating_mul(DAY))
    }

    /// A span of `n` hours.
    ///
    /// # Errors
    /// As [`Span::from_secs`].
    pub fn hours(n: i64) -> Result<Self, SegmentError> {
        Self::from_secs(n.saturating_mul(3600))
    }

    /// The length in seconds.
    #[must_use]
    pub fn as_secs(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s != 0 && s % DAY == 0 {
            write!(f, "{}d", s / DAY)
        } else if s != 0 && s % 3600 == 0 {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl FromStr for Span {
    type Err = SegmentError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            SegmentError::invalid(format!(
                "span {text:?} is not a whole number followed by d, h, m or s (e.g. 30d)"
            ))
        };
        let unit = text.chars().last().ok_or_else(bad)?;
        let mult = match unit {
            'd' => DAY,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        Self::from_secs(n.checked_mul(mult).ok_or_else(bad)?)
    }
}

impl TryFrom<String> for Span {
    type Error = SegmentError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Span> for String {
    fn from(value: Span) -> Self {
        value.to_string()
    }
}

/// Whole Unix seconds of an instant (sub-second parts floored).
pub(crate) fn secs(t: &DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// The local calendar day of `ts` as days since 1970-01-01 (local).
pub(crate) fn local_day(ts: i64, tz: FixedOffset) -> i64 {
    (ts + i64::from(tz.local_minus_utc())).div_euclid(DAY)
}

/// The instant local midnight starts `day` (days since 1970-01-01, local).
pub(crate) fn day_start(day: i64, tz: FixedOffset) -> i64 {
    day * DAY - i64::from(tz.local_minus_utc())
}

/// The calendar date of a day number.
pub(crate) fn day_to_date(day: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from(day)
        .ok()
        .and_then(|d| epoch.checked_add_signed(chrono::Duration::days(i64::from(d))))
        .unwrap_or(epoch)
}

/// The day number of a calendar date.
pub(crate) fn date_to_day(date: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days()
}

/// Local (month, day) of an instant.
pub(crate) fn local_month_day(ts: i64, tz: FixedOffset) -> (u32, u32) {
    let d = day_to_date(local_day(ts, tz));
    (d.month(), d.day())
}

/// The instant the local month after the one containing `ts` begins.
pub(crate) fn next_month_start(ts: i64, tz: FixedOffset) -> i64 {
    let d = day_to_date(local_day(ts, tz));
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d);
    day_start(date_to_day(first), tz)
}

/// Whether a (month, day) anniversary falls on `today`: Feb-29 anniversaries fall on Feb-28 in
/// years without a Feb-29.
pub(crate) fn anniversary_is(month: u32, day: u32, today: NaiveDate) -> bool {
    if (month, day) == (today.month(), today.day()) {
        return true;
    }
    month == 2 && day == 29 && today.month() == 2 && today.day() == 28 && !is_leap(today.year())
}

pub(crate) fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// An instant as RFC 3339 text for explanations and SQL literals.
pub(crate) fn fmt_ts(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("@{ts}s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_text_round_trips_canonically() {
        for (text, secs, canon) in
            [("30d", 30 * DAY, "30d"), ("24h", DAY, "1d"), ("90m", 5400, "90m"), ("0s", 0, "0s")]
        {
            let s: Span = text.parse().unwrap();
            assert_eq!(s.as_secs(), secs);
            assert_eq!(s.to_string(), canon);
        }
        for bad in ["", "d", "3", "-3d", "3w", "1.5h", "99999999999999999d"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tokyo_days_start_at_15_utc() {
        let tz = tokyo();
        // 2025-03-01T15:00:00Z is 2025-03-02T00:00 in Tokyo.
        let t = DateTime::parse_from_rfc3339("2025-03-01T15:00:00Z").unwrap().timestamp();
        assert_eq!(day_start(local_day(t, tz), tz), t);
        assert_eq!(local_day(t - 1, tz) + 1, local_day(t, tz));
        assert_eq!(local_month_day(t, tz), (3, 2));
    }

    #[test]
    fn feb_29_anniversary_is_feb_28_in_common_years() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(anniversary_is(2, 29, d(2025, 2, 28)));
        assert!(!anniversary_is(2, 29, d(2025, 3, 1)));
        assert!(anniversary_is(2, 29, d(2024, 2, 29)));
        assert!(!anniversary_is(2, 29, d(2024, 2, 28)));
    }
}
