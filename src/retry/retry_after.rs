//! The `Retry-After` response header.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;

/// The `Retry-After` header of `headers` as a wait from `now`: delta-seconds or an HTTP date
/// (a date in the past is a zero wait). `None` when the header is absent or unreadable.
#[must_use]
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    parse_retry_after(headers.get(http::header::RETRY_AFTER)?.to_str().ok()?, now)
}

/// A `Retry-After` value as a wait from `now`: delta-seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`).
#[must_use]
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_table() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z").unwrap().to_utc();
        let s = Duration::from_secs;
        let table = [
            ("3", Some(s(3))),
            (" 120 ", Some(s(120))),
            ("0", Some(s(0))),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(s(30))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(s(0))),
            ("soon", None),
            ("-1", None),
            ("", None),
        ];
        for (value, want) in table {
            assert_eq!(parse_retry_after(value, now), want, "{value:?}");
        }
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(s(7)));
    }
}
