//! Limits password attempts per client address on the link page, and finds that address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many password attempts one client address may make in a sliding window. A successful
/// login gives its attempt back, so only failures (wrong password, unusable link token) use
/// the allowance up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptLimit {
    /// Attempts allowed in one window (at least 1).
    pub attempts: u32,
    /// The window.
    pub per: Duration,
}

impl Default for AttemptLimit {
    /// 10 attempts per 15 minutes.
    fn default() -> Self {
        Self { attempts: 10, per: Duration::from_secs(15 * 60) }
    }
}

impl AttemptLimit {
    /// A limit of `attempts` (at least 1) per `per`.
    #[must_use]
    pub fn new(attempts: u32, per: Duration) -> Self {
        Self { attempts: attempts.max(1), per }
    }
}

/// Whether to believe `X-Forwarded-For` when finding the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedFor {
    /// Use the connecting address only (the default): anyone can send the header, so
    /// believing it lets one client pose as many and escape the limit.
    #[default]
    Ignore,
    /// The server sits behind this many proxies of its own, each appending the address it saw
    /// to `X-Forwarded-For`. The client is the entry that many places from the right; entries
    /// further left were written by the client and are not believed.
    TrustedProxies(u8),
}

/// The client's address: `peer` (the connecting address, e.g. from axum's `ConnectInfo`), or
/// with [`ForwardedFor::TrustedProxies`] the address the outermost trusted proxy saw. A missing
/// or unreadable header falls back to `peer`.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, forwarded: ForwardedFor) -> IpAddr {
    let ForwardedFor::TrustedProxies(hops) = forwarded else { return peer };
    if hops == 0 {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110 §5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let Some(entry) = entries.len().checked_sub(usize::from(hops)).and_then(|i| entries.get(i))
    else {
        return peer;
    };
    parse_forwarded(entry).unwrap_or(peer)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The key a client is counted under: an IPv4 address, or an IPv6 /64 (one host usually has
/// a whole /64, so counting single IPv6 addresses would not limit anyone).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The most client keys kept; past it the one idle longest is forgotten (an attacker with that
/// many addresses escapes a per-address limit anyway; refusing everyone would let them lock
/// every customer out).
const MAX_CLIENTS: usize = 65_536;

/// Counts attempts per client key in a sliding window.
#[derive(Debug)]
pub(crate) struct AttemptLimiter {
    limit: AttemptLimit,
    seen: Mutex<HashMap<IpAddr, VecDeque<DateTime<Utc>>>>,
}

impl AttemptLimiter {
    pub(crate) fn new(limit: AttemptLimit) -> Self {
        Self { limit, seen: Mutex::new(HashMap::new()) }
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limit.per).unwrap_or(chrono::Duration::MAX)
    }

    /// Records an attempt by `ip` at `now`, or says how long until the next one is allowed.
    pub(crate) fn try_acquire(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), Duration> {
        let window = self.window();
        let live = |t: &DateTime<Utc>| now.signed_duration_since(*t) < window;
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = client_key(ip);
        if !seen.contains_key(&key) && seen.len() >= MAX_CLIENTS {
            seen.retain(|_, times| times.back().is_some_and(live));
            if seen.len() >= MAX_CLIENTS {
                let idle =
                    seen.iter().min_by_key(|(_, times)| times.back().copied()).map(|(k, _)| *k);
                if let Some(idle) = idle {
                    seen.remove(&idle);
                }
            }
        }
        let times = seen.entry(key).or_default();
        while times.front().is_some_and(|t| !live(t)) {
            times.pop_front();
        }
        if times.len() >= self.limit.attempts as usize {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = (oldest + window).signed_duration_since(now);
            return Err(wait.to_std().unwrap_or(Duration::ZERO));
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives back the attempt `ip` made at `at` (it succeeded).
    pub(crate) fn refund(&self, ip: IpAddr, at: DateTime<Utc>) {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(times) = seen.get_mut(&client_key(ip))
            && let Some(i) = times.iter().rposition(|t| *t == at)
        {
            times.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn limits_per_address_in_a_sliding_window_and_refunds_successes() {
        let l = AttemptLimiter::new(AttemptLimit::new(3, Duration::from_secs(60)));
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        for s in 0..3 {
            l.try_acquire(a, at(s)).unwrap();
        }
        assert_eq!(l.try_acquire(a, at(10)), Err(Duration::from_secs(50)));
        l.try_acquire(b, at(10)).unwrap();
        // The first attempt leaves the window at 60 s.
        l.try_acquire(a, at(60)).unwrap();
        assert!(l.try_acquire(a, at(60)).is_err());
        l.refund(a, at(60));
        l.try_acquire(a, at(60)).unwrap();
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let l = AttemptLimiter::new(AttemptLimit::new(1, Duration::from_secs(60)));
        l.try_acquire("2001:db8:1:2::1".parse().unwrap(), at(0)).unwrap();
        assert!(l.try_acquire("2001:db8:1:2:ffff::9".parse().unwrap(), at(1)).is_err());
        l.try_acquire("2001:db8:1:3::1".parse().unwrap(), at(1)).unwrap();
        l.try_acquire("198.51.100.1".parse().unwrap(), at(1)).unwrap();
        assert!(l.try_acquire("::ffff:198.51.100.1".parse().unwrap(), at(2)).is_err());
    }

    #[test]
    fn forgets_the_idlest_client_when_full() {
        let l = AttemptLimiter::new(AttemptLimit::new(1, Duration::from_secs(86_400)));
        for i in 0..MAX_CLIENTS {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(i).unwrap()));
            l.try_acquire(ip, at(i64::try_from(i).unwrap())).unwrap();
        }
        let newcomer: IpAddr = "203.0.113.200".parse().unwrap();
        l.try_acquire(newcomer, at(70_000)).unwrap();
        assert_eq!(l.seen.lock().unwrap().len(), MAX_CLIENTS);
        // 0.0.0.0 was idle longest and is forgotten (coming back evicts 0.0.0.1); the
        // recent ones are still limited.
        l.try_acquire("0.0.0.0".parse().unwrap(), at(70_001)).unwrap();
        assert!(l.try_acquire("0.0.255.255".parse().unwrap(), at(70_002)).is_err());
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_when_configured() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 198.51.100.9".parse().unwrap());
        h.append("x-forwarded-for", "[2001:db8::5]:443".parse().unwrap());
        assert_eq!(client_ip(peer, &h, ForwardedFor::Ignore), peer);
        let one = client_ip(peer, &h, ForwardedFor::TrustedProxies(1));
        assert_eq!(one, "2001:db8::5".parse::<IpAddr>().unwrap());
        let two = client_ip(peer, &h, ForwardedFor::TrustedProxies(2));
        assert_eq!(two, "198.51.100.9".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &h, ForwardedFor::TrustedProxies(9)), peer);
        assert_eq!(client_ip(peer, &http::HeaderMap::new(), ForwardedFor::TrustedProxies(1)), peer);
        let mut bad = http::HeaderMap::new();
        bad.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(client_ip(peer, &bad, ForwardedFor::TrustedProxies(1)), peer);
    }
}
