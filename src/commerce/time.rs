//! ecforce's timestamps: offset-less JST (`YYYY/MM/DD HH:MM:SS`) in responses, `YYYY-MM-DD
//! HH:MM:SS` (also JST) in filters. Converted explicitly so no code path guesses a time zone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::clock::jst;

/// Parses an ecforce datetime into a UTC instant.
///
/// Accepts the response form `2026/01/15 09:30:00`, the request form `2026-01-15 09:30:00`
/// (both JST without offset) and RFC 3339 with an offset (`2022-12-20T13:52:36.000+09:00`,
/// seen on one ecforce resource). Returns `None` for anything else.
#[must_use]
pub(crate) fn parse_jst_datetime(text: &str) -> Option<DateTime<Utc>> {
    // The fixed layout starts and ends with a digit, so it needs no trimming (most values).
    let naive = fixed_layout(text.as_bytes()).or_else(|| fixed_layout(text.trim().as_bytes()));
    if let Some(naive) = naive {
        return jst().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc));
    }
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y/%m/%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"));
    match naive {
        Ok(naive) => jst().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)),
        Err(_) => DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc)),
    }
}

/// The common case without chrono's format interpreter (ecforce pages hold several datetimes
/// per record): exactly `YYYY?MM?DD HH:MM:SS` with `?` one of `/` and `-`.
fn fixed_layout(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() != 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    fixed_date(&b[..10])?.and_hms_opt(digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?)
}

/// Exactly `YYYY?MM?DD` with `?` one of `/` and `-` (customers' birthdays, one per record).
fn fixed_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || !matches!(b[4], b'/' | b'-') || b[7] != b[4] {
        return None;
    }
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// The value of a run of ASCII digits.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// Parses an ecforce date (`YYYY/MM/DD` in responses, `YYYY-MM-DD` in requests).
#[must_use]
pub(crate) fn parse_ecforce_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(date) = fixed_date(text.as_bytes()) {
        return Some(date);
    }
    NaiveDate::parse_from_str(text, "%Y/%m/%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .ok()
}

/// Formats a UTC instant as ecforce's filter form in JST: `YYYY-MM-DD HH:MM:SS`.
#[must_use]
pub(crate) fn format_jst_filter(instant: DateTime<Utc>) -> String {
    instant.with_timezone(&jst()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Formats a UTC instant as ecforce's response form in JST: `YYYY/MM/DD HH:MM:SS`.
/// (What ecforce sends; only the fake ecforce server writes it.)
#[cfg(any(test, feature = "testkit"))]
#[must_use]
pub(crate) fn format_jst_response(instant: DateTime<Utc>) -> String {
    instant.with_timezone(&jst()).format("%Y/%m/%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike};

    use super::*;

    #[test]
    fn jst_to_utc_crosses_the_date_line() {
        // 08:59:59 JST on New Year's Day is still the previous year in UTC.
        let t = parse_jst_datetime("2026/01/01 08:59:59").unwrap();
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2025, 12, 31, 23));
        let t = parse_jst_datetime("2026/01/01 09:00:00").unwrap();
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2026, 1, 1, 0));
    }

    #[test]
    fn both_separators_and_rfc3339_are_accepted() {
        let a = parse_jst_datetime("2026/01/15 09:30:00").unwrap();
        let b = parse_jst_datetime("2026-01-15 09:30:00").unwrap();
        let c = parse_jst_datetime("2026-01-15T09:30:00.000+09:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_rfc3339(), "2026-01-15T00:30:00+00:00");
        assert_eq!(format_jst_filter(a), "2026-01-15 09:30:00");
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in ["", "2026/13/01 00:00:00", "2026/01/15", "yesterday", "2026/01/15 25:00:00"] {
            assert_eq!(parse_jst_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn filter_format_round_trips() {
        let t = parse_jst_datetime("2024/02/29 23:59:59").unwrap();
        assert_eq!(format_jst_filter(t), "2024-02-29 23:59:59");
        assert_eq!(format_jst_response(t), "2024/02/29 23:59:59");
        assert_eq!(parse_jst_datetime(&format_jst_filter(t)), Some(t));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_ecforce_date("1990/06/01"), NaiveDate::from_ymd_opt(1990, 6, 1));
        assert_eq!(parse_ecforce_date("1990-06-01"), NaiveDate::from_ymd_opt(1990, 6, 1));
        assert_eq!(parse_ecforce_date("1990/02/30"), None);
    }
}
