//! Configuration values for the fake LINE server.

use std::time::Duration;

use super::endpoint::Endpoint;

/// A token-bucket rate limit: `count` tokens per `period`, holding at most `capacity` tokens.
///
/// The bucket starts full. Each request takes one token; a request that finds the bucket empty
/// gets LINE's rate-limit 429 and changes nothing. This is the server's limit; the client paces
/// itself with [`line::RateLimit`](crate::line::RateLimit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeRateLimit {
    /// Tokens added per second; `None` means unlimited.
    per_second: Option<f64>,
    capacity: u32,
}

impl FakeRateLimit {
    /// `count` requests per second, with a bucket of `count` tokens.
    #[must_use]
    pub const fn per_second(count: u32) -> Self {
        Self { per_second: Some(count as f64), capacity: count }
    }

    /// `count` requests per minute, with a bucket of `count` tokens.
    #[must_use]
    pub const fn per_minute(count: u32) -> Self {
        Self { per_second: Some(count as f64 / 60.0), capacity: count }
    }

    /// `count` requests per hour, with a bucket of `count` tokens ("60 per hour" refills one
    /// token a minute, as LINE describes it).
    #[must_use]
    pub const fn per_hour(count: u32) -> Self {
        Self { per_second: Some(count as f64 / 3600.0), capacity: count }
    }

    /// `count` requests per `period`, with a bucket of `count` tokens. A zero period means
    /// unlimited.
    #[must_use]
    pub fn per(count: u32, period: Duration) -> Self {
        if period.is_zero() {
            return Self::unlimited();
        }
        Self { per_second: Some(f64::from(count) / period.as_secs_f64()), capacity: count }
    }

    /// No limit at all.
    #[must_use]
    pub const fn unlimited() -> Self {
        Self { per_second: None, capacity: 0 }
    }

    /// The same refill rate with a bucket of `capacity` tokens (the largest burst allowed).
    #[must_use]
    pub const fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Tokens added per second, or `None` when unlimited.
    #[must_use]
    pub const fn tokens_per_second(&self) -> Option<f64> {
        self.per_second
    }

    /// The bucket size (meaningless when unlimited).
    #[must_use]
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }
}

/// The channel's monthly message limit, counted as LINE counts it: one message per request per
/// deliverable recipient (message objects in a request do not multiply the count; replies and
/// recipients who blocked the account are free). The client reads it as a
/// [`line::Quota`](crate::line::Quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FakeQuota {
    /// No target limit (`{"type":"none"}`). The default.
    #[default]
    Unlimited,
    /// At most this many messages this month (`{"type":"limited","value":N}`).
    Limited(u64),
}

/// When a failure injected by [`Faults`] happens relative to LINE accepting the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultTiming {
    /// The request fails before anything happens: nothing is delivered, no retry key is used up.
    #[default]
    BeforeAcceptance,
    /// The request is carried out (messages delivered, retry key accepted, rich menu created...)
    /// and then fails: a retry with the same retry key gets 409. This is the case retry keys exist
    /// for.
    AfterAcceptance,
    /// Each injected failure picks one of the two above, half and half (seeded).
    Either,
}

/// Failures to inject, drawn deterministically from the server's seed.
///
/// Every request to a selected endpoint draws its fate from the seed and its position among the
/// selected requests, so the same seed and the same sequence of requests always gives the same
/// faults. The three failure fractions are exclusive and must sum to at most 1; `slow` is drawn
/// independently and adds `slow_delay` before the request is handled.
///
/// Requests that fail authentication, or are rate limited by the real bucket, draw no fault.
///
/// ```
/// use enishi::testkit::{Endpoint, FaultTiming, Faults};
///
/// let faults = Faults {
///     server_error: 0.2,
///     timing: FaultTiming::AfterAcceptance,
///     endpoints: Some(vec![Endpoint::Push]),
///     ..Faults::default()
/// };
/// assert!(faults.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// Fraction of requests answered `500 {"message":"Internal server error"}`.
    pub server_error: f64,
    /// Fraction of requests answered with LINE's rate-limit 429.
    pub rate_limited: f64,
    /// Fraction of requests whose connection is closed without any response.
    pub dropped: f64,
    /// Fraction of requests delayed by `slow_delay` before they are handled.
    pub slow: f64,
    /// How long a slow request waits.
    pub slow_delay: Duration,
    /// When 500s and dropped connections happen relative to acceptance.
    pub timing: FaultTiming,
    /// The endpoints that get faults; `None` means all of them.
    pub endpoints: Option<Vec<Endpoint>>,
}

impl Faults {
    /// No faults (the default).
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks that every fraction is within 0..=1 and the exclusive ones sum to at most 1.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`](super::TestkitError::InvalidConfig) naming the bad field.
    pub fn validate(&self) -> Result<(), super::TestkitError> {
        let fractions = [
            ("server_error", self.server_error),
            ("rate_limited", self.rate_limited),
            ("dropped", self.dropped),
            ("slow", self.slow),
        ];
        for (field, value) in fractions {
            if !(0.0..=1.0).contains(&value) {
                return Err(super::TestkitError::InvalidConfig {
                    field: format!("faults.{field}"),
                    reason: format!("must be a fraction between 0 and 1, got {value}"),
                });
            }
        }
        let total = self.server_error + self.rate_limited + self.dropped;
        if total > 1.0 + f64::EPSILON {
            return Err(super::TestkitError::InvalidConfig {
                field: "faults".into(),
                reason: format!(
                    "server_error + rate_limited + dropped must be at most 1, got {total}"
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn applies_to(&self, endpoint: Endpoint) -> bool {
        self.endpoints.as_ref().is_none_or(|list| list.contains(&endpoint))
    }

    pub(crate) fn is_inert(&self) -> bool {
        self.server_error == 0.0
            && self.rate_limited == 0.0
            && self.dropped == 0.0
            && self.slow == 0.0
    }
}

/// A LINE user the fake knows about: it has a profile, is listed by the followers endpoint while
/// a friend, and receives nothing once it has blocked the account.
///
/// Users the fake does not know are treated as friends without a profile: pushes to them are
/// recorded, but the profile endpoint answers 404 for them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeUser {
    /// The user ID, `U` + 32 lowercase hex digits.
    pub user_id: String,
    /// Display name returned by the profile endpoint.
    pub display_name: String,
    /// BCP 47 language tag, if the user consented to share it.
    pub language: Option<String>,
    /// Profile picture URL.
    pub picture_url: Option<String>,
    /// Status message.
    pub status_message: Option<String>,
    /// Whether the user has blocked the account (then: no profile, not a follower, no deliveries).
    pub blocked: bool,
}

impl FakeUser {
    /// A friend with the given ID and a display name derived from it.
    #[must_use]
    pub fn new(user_id: impl Into<String>) -> Self {
        let user_id = user_id.into();
        let display_name = format!("user {}", user_id.get(1..7).unwrap_or(&user_id));
        Self {
            user_id,
            display_name,
            language: Some("ja".into()),
            picture_url: None,
            status_message: None,
            blocked: false,
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// Sets the language tag (`None`: the user has not consented to share it).
    #[must_use]
    pub fn language(mut self, language: Option<String>) -> Self {
        self.language = language;
        self
    }

    /// Sets the picture URL.
    #[must_use]
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }

    /// Sets the status message.
    #[must_use]
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }

    /// Marks the user as having blocked the account.
    #[must_use]
    pub fn blocked(mut self, blocked: bool) -> Self {
        self.blocked = blocked;
        self
    }
}

/// A deterministic, valid LINE user ID for test user number `n` (`U` + 32 lowercase hex digits).
///
/// ```
/// let id = enishi::testkit::user_id(7);
/// assert_eq!(id.len(), 33);
/// assert!(id.starts_with('U'));
/// assert_eq!(id, enishi::testkit::user_id(7));
/// ```
#[must_use]
pub fn user_id(n: u64) -> String {
    let hi = super::faults::mix(n ^ 0x5EED_1D00);
    let lo = super::faults::mix(hi ^ n);
    format!("U{hi:016x}{lo:016x}")
}
