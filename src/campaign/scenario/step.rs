//! Step timing: delays and local times of day.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// How long after (or, negative, before) the trigger's anchor a step is due: a whole number
/// followed by `d`, `h`, `m` or `s`, optionally signed (`3h`, `24h`, `7d`, `-5d`, `0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Delay(i64);

/// Delays beyond about ten years are refused so instant arithmetic never overflows.
const MAX_DELAY_SECS: i64 = 10 * 366 * 86_400;

impl Delay {
    /// A delay of `secs` seconds (negative: before the anchor).
    ///
    /// # Errors
    /// A message when `secs` is beyond ±10 years.
    pub fn from_secs(secs: i64) -> Result<Self, String> {
        if secs.abs() <= MAX_DELAY_SECS {
            Ok(Self(secs))
        } else {
            Err(format!("{secs} seconds is beyond ±10 years"))
        }
    }

    /// `n` hours (for constants; `n` is small).
    pub(crate) const fn hours(n: i64) -> Self {
        Self(n * 3600)
    }

    /// `n` days (for constants; `n` is small).
    pub(crate) const fn days(n: i64) -> Self {
        Self(n * 86_400)
    }

    /// The delay in seconds.
    #[must_use]
    pub fn as_secs(self) -> i64 {
        self.0
    }

    /// Whole days, if the delay is a whole number of days.
    #[must_use]
    pub fn whole_days(self) -> Option<i64> {
        (self.0 % 86_400 == 0).then_some(self.0 / 86_400)
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, s) = if self.0 < 0 { ("-", -self.0) } else { ("", self.0) };
        let (n, unit) = if s != 0 && s % 86_400 == 0 {
            (s / 86_400, 'd')
        } else if s != 0 && s % 3600 == 0 {
            (s / 3600, 'h')
        } else if s != 0 && s % 60 == 0 {
            (s / 60, 'm')
        } else {
            (s, 's')
        };
        write!(f, "{sign}{n}{unit}")
    }
}

impl FromStr for Delay {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("{text:?} is not a whole number followed by d, h, m or s (e.g. 3h, 7d, -5d)")
        };
        let (neg, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let unit = body.chars().last().ok_or_else(bad)?;
        let mult = match unit {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let digits = &body[..body.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let secs = n.checked_mul(mult).ok_or_else(bad)?;
        Self::from_secs(if neg { -secs } else { secs })
    }
}

impl TryFrom<String> for Delay {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Delay> for String {
    fn from(value: Delay) -> Self {
        value.to_string()
    }
}

/// When a step is due: `anchor + delay`, or with a local time of day, that time on the local
/// calendar day `delay` whole days after the anchor's day.
pub(crate) fn due_at(
    anchor: DateTime<Utc>,
    delay: Delay,
    at: Option<NaiveTime>,
    tz: FixedOffset,
) -> DateTime<Utc> {
    match (at, delay.whole_days()) {
        (Some(time), Some(days)) => {
            let day = anchor.with_timezone(&tz).date_naive() + Duration::days(days);
            day.and_time(time)
                .and_local_timezone(tz)
                .single()
                .map_or(anchor, |t| t.with_timezone(&Utc))
        }
        _ => anchor + Duration::seconds(delay.as_secs()),
    }
}

/// Parses `HH:MM` (24-hour clock).
pub(crate) fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| "expected a local time of day as HH:MM (e.g. 10:00)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_and_print() {
        for (text, secs) in [("3h", 10_800), ("24h", 86_400), ("-5d", -432_000), ("0s", 0)] {
            let d: Delay = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
        }
        assert_eq!(Delay::from_secs(86_400).unwrap().to_string(), "1d");
        for bad in ["", "3", "h", "3x", "--3h", "3.5h", "99999999d"] {
            assert!(bad.parse::<Delay>().is_err(), "{bad}");
        }
    }
}
