//! The chat store: hand-offs to staff, attributes the chat wrote, survey progress and the
//! conversation log, scoped to one LINE channel. The checks of what a caller passes are pure
//! functions here, so every backend refuses exactly the same input.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};

use crate::segment::AttrValue;
use crate::{CustomerId, LineUserId};

/// The longest [`LogEntry::text`], in characters: [`LogEntry::new`] truncates to it.
pub const LOG_TEXT_MAX_CHARS: usize = 2_000;

/// The longest hand-off reason, in characters.
pub const HANDOFF_REASON_MAX_CHARS: usize = 1_000;

/// The longest name (attribute key, survey, log kind, intent), in bytes.
pub const NAME_MAX_BYTES: usize = 128;

/// The longest attribute value, in bytes of its JSON form.
pub const ATTRIBUTE_VALUE_MAX_BYTES: usize = 16 * 1024;

/// A running hand-off to staff: while it runs, the bot leaves the user's messages to people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandOff {
    /// The LINE user talking to staff.
    pub line_user: LineUserId,
    /// Why the bot handed off (the intent, or what the user asked for).
    pub reason: String,
    /// When it started (millisecond precision).
    pub since: DateTime<Utc>,
    /// The last message of the user or of staff (millisecond precision).
    pub last_activity: DateTime<Utc>,
}

impl HandOff {
    /// A hand-off (for stores written outside enishi); times are kept to the millisecond.
    #[must_use]
    pub fn new(
        line_user: LineUserId,
        reason: impl Into<String>,
        since: DateTime<Utc>,
        last_activity: DateTime<Utc>,
    ) -> Self {
        Self {
            line_user,
            reason: reason.into(),
            since: trunc_ms(since),
            last_activity: trunc_ms(last_activity),
        }
    }
}

/// Which way a logged message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// From the user (a message, a postback, a follow).
    Inbound,
    /// To the user (a reply, a push, staff's answer).
    Outbound,
}

impl Direction {
    /// The name stored in databases: `inbound` or `outbound`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    /// Parses a stored name (strict: stores are input enishi owns).
    ///
    /// # Errors
    /// [`ChatStoreError::Corrupt`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, ChatStoreError> {
        match s {
            "inbound" => Ok(Self::Inbound),
            "outbound" => Ok(Self::Outbound),
            other => Err(ChatStoreError::Corrupt(format!("unknown Direction {other:?}"))),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the conversation log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEntry {
    /// The LINE user of the conversation.
    pub line_user: LineUserId,
    /// The user's customer, when linked.
    pub customer: Option<CustomerId>,
    /// Which way the message went.
    pub direction: Direction,
    /// What it was: `text`, `sticker`, `image`, `postback`, `follow`, `reply`, `push`,
    /// `handoff`, `survey`, ... (1 to 128 bytes, no control characters).
    pub kind: String,
    /// The text (at most [`LOG_TEXT_MAX_CHARS`] characters, no NUL).
    pub text: String,
    /// The intent the router recognised, if any (1 to 128 bytes, no control characters).
    pub intent: Option<String>,
    /// When (millisecond precision).
    pub at: DateTime<Utc>,
}

impl LogEntry {
    /// An entry without customer or intent. `text` is truncated to [`LOG_TEXT_MAX_CHARS`]
    /// characters and its NUL characters become U+FFFD (no database keeps NUL in text); `at` is
    /// kept to the millisecond.
    #[must_use]
    pub fn new(
        line_user: LineUserId,
        direction: Direction,
        kind: impl Into<String>,
        text: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let text =
            text.chars().take(LOG_TEXT_MAX_CHARS).map(|c| if c == '\0' { '\u{FFFD}' } else { c });
        Self {
            line_user,
            customer: None,
            direction,
            kind: kind.into(),
            text: text.collect(),
            intent: None,
            at: trunc_ms(at),
        }
    }

    /// Sets the customer.
    #[must_use]
    pub fn with_customer(mut self, customer: CustomerId) -> Self {
        self.customer = Some(customer);
        self
    }

    /// Sets the intent.
    #[must_use]
    pub fn with_intent(mut self, intent: impl Into<String>) -> Self {
        self.intent = Some(intent.into());
        self
    }
}

/// Where a user is in a survey.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SurveyProgress {
    /// The survey's name (1 to 128 bytes, no control characters).
    pub survey: String,
    /// The next question to ask (the chatbot's numbering).
    pub step: u32,
    /// When the user started it (millisecond precision).
    pub started_at: DateTime<Utc>,
}

impl SurveyProgress {
    /// Progress in `survey`; `started_at` is kept to the millisecond.
    #[must_use]
    pub fn new(survey: impl Into<String>, step: u32, started_at: DateTime<Utc>) -> Self {
        Self { survey: survey.into(), step, started_at: trunc_ms(started_at) }
    }
}

/// Why a chat store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatStoreError {
    /// An argument was refused before anything was written (an empty key, a NUL character,
    /// a value too long). The value is not repeated: it may be a customer's message.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was passed.
        what: &'static str,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A configuration value (a schema name, the channel, a URL) was refused.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidConfig {
        /// What was configured.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// The store holds a value enishi cannot read back.
    #[error("the chat store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The backend failed (connection, SQL, a panicked worker).
    #[error("the {backend} chat store failed")]
    Backend {
        /// `memory`, `sqlite` or `postgres`.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ChatStoreError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { backend, source: source.into() }
    }
}

/// The chatbot's storage, scoped to one LINE channel: hand-offs to staff, customer attributes
/// written by the chat, survey progress and the conversation log.
///
/// Object safe (`Arc<dyn ChatStore>`); implemented by [`MemoryChatStore`](super::MemoryChatStore),
/// `SqliteChatStore` (feature `sqlite`) and `PostgresChatStore` (feature `postgres`), which
/// all pass one conformance suite (`enishi::chat::conformance`, feature `testkit`: run it
/// against your own store too). Several processes may share one SQL store: of concurrent
/// [`start_handoff`](Self::start_handoff) calls for one user exactly one starts it.
///
/// `now` is a parameter so tests control the clock; times are kept to the millisecond. Names
/// (attribute keys, surveys, log kinds, intents) are 1 to 128 bytes without control characters,
/// texts hold no NUL character: anything else is [`ChatStoreError::InvalidInput`] and nothing is
/// written.
#[async_trait::async_trait]
pub trait ChatStore: Send + Sync + fmt::Debug + 'static {
    /// Starts a hand-off to staff for `user`, or refreshes the activity of the one running;
    /// `true` when it started now. A refresh keeps the reason and start time. A hand-off gone
    /// idle but not ended yet is refreshed too: ask [`active_handoff`](Self::active_handoff)
    /// first to end an idle one.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidInput`] for a reason with NUL or over
    /// [`HANDOFF_REASON_MAX_CHARS`] characters; backend errors.
    async fn start_handoff(
        &self,
        user: &LineUserId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError>;

    /// The user's running hand-off: one whose last activity is within `idle` of `now`
    /// (`now - last_activity <= idle`). An idle one is ended (removed) and `None` returned;
    /// one that another process refreshed meanwhile is kept.
    ///
    /// # Errors
    /// Backend errors.
    async fn active_handoff(
        &self,
        user: &LineUserId,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<HandOff>, ChatStoreError>;

    /// Records activity (a customer or staff message) on a running hand-off; `false` when
    /// none runs. The last activity never moves back in time.
    ///
    /// # Errors
    /// Backend errors.
    async fn touch_handoff(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatStoreError>;

    /// Ends the hand-off (the bot takes over again); `false` when none ran.
    ///
    /// # Errors
    /// Backend errors.
    async fn end_handoff(&self, user: &LineUserId) -> Result<bool, ChatStoreError>;

    /// Every hand-off not ended yet (including idle ones no call has ended), oldest first
    /// (for staff tools).
    ///
    /// # Errors
    /// Backend errors.
    async fn handoffs(&self) -> Result<Vec<HandOff>, ChatStoreError>;

    /// Stores a customer attribute written by the chat (a survey answer, the marketing
    /// opt-out), replacing the key's value unless the stored one was written after `now`.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidInput`] for an invalid key or a value over
    /// [`ATTRIBUTE_VALUE_MAX_BYTES`] as JSON; backend errors.
    async fn set_attribute(
        &self,
        customer: &CustomerId,
        key: &str,
        value: &AttrValue,
        now: DateTime<Utc>,
    ) -> Result<(), ChatStoreError>;

    /// Every attribute the chat wrote, by customer (merged into the segment facts by the app).
    ///
    /// # Errors
    /// [`ChatStoreError::Corrupt`] for a stored value that is not an attribute value; backend
    /// errors.
    async fn attributes(
        &self,
    ) -> Result<BTreeMap<CustomerId, BTreeMap<String, AttrValue>>, ChatStoreError>;

    /// Records where the user is in a survey; `None` clears it.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidInput`] for an invalid survey name; backend errors.
    async fn set_survey(
        &self,
        user: &LineUserId,
        progress: Option<&SurveyProgress>,
    ) -> Result<(), ChatStoreError>;

    /// Where the user is in a survey, `None` when in none.
    ///
    /// # Errors
    /// Backend errors.
    async fn survey_of(&self, user: &LineUserId) -> Result<Option<SurveyProgress>, ChatStoreError>;

    /// Appends an entry to the conversation log.
    ///
    /// # Errors
    /// [`ChatStoreError::InvalidInput`] for an invalid kind or intent, or a text with NUL or
    /// over [`LOG_TEXT_MAX_CHARS`] characters (build entries with [`LogEntry::new`]); backend
    /// errors.
    async fn append_log(&self, entry: &LogEntry) -> Result<(), ChatStoreError>;

    /// The user's last `limit` entries, oldest first (entries at one instant in the order
    /// they were appended).
    ///
    /// # Errors
    /// Backend errors.
    async fn log_of(
        &self,
        user: &LineUserId,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ChatStoreError>;

    /// Every entry at or after `since`, oldest first (for reports).
    ///
    /// # Errors
    /// Backend errors.
    async fn log_since(&self, since: DateTime<Utc>) -> Result<Vec<LogEntry>, ChatStoreError>;

    /// Deletes the entries older than `before` (the retention setting); returns how many.
    ///
    /// # Errors
    /// Backend errors.
    async fn purge_log(&self, before: DateTime<Utc>) -> Result<u64, ChatStoreError>;
}

// ---- shared checks and conversions -------------------------------------------------------

pub(crate) fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_ms(t.timestamp_millis())
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The last activity a hand-off needs to be running at `now`: idle when it is older.
pub(crate) fn idle_cutoff_ms(idle: Duration, now: DateTime<Utc>) -> i64 {
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_sub(idle_ms)
}

fn invalid(what: &'static str, reason: &'static str) -> ChatStoreError {
    ChatStoreError::InvalidInput { what, reason }
}

/// Checks a name: an attribute key, a survey, a log kind or an intent.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), ChatStoreError> {
    if name.is_empty() {
        Err(invalid(what, "must not be empty"))
    } else if name.len() > NAME_MAX_BYTES {
        Err(invalid(what, "must be at most 128 bytes"))
    } else if name.chars().any(char::is_control) {
        Err(invalid(what, "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// Checks a hand-off reason.
pub(crate) fn check_reason(reason: &str) -> Result<(), ChatStoreError> {
    if reason.contains('\0') {
        Err(invalid("hand-off reason", "must not contain NUL characters"))
    } else if reason.chars().nth(HANDOFF_REASON_MAX_CHARS).is_some() {
        Err(invalid("hand-off reason", "must be at most 1000 characters"))
    } else {
        Ok(())
    }
}

/// Checks an attribute and returns its value as stored: its serde JSON.
pub(crate) fn attribute_json(key: &str, value: &AttrValue) -> Result<String, ChatStoreError> {
    check_name("attribute key", key)?;
    let json = serde_json::to_string(value)
        .map_err(|_| invalid("attribute value", "must serialise to JSON"))?;
    if json.len() > ATTRIBUTE_VALUE_MAX_BYTES {
        return Err(invalid("attribute value", "must be at most 16 KiB as JSON"));
    }
    Ok(json)
}

/// Reads a stored attribute value back.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn attribute_from_json(json: &str) -> Result<AttrValue, ChatStoreError> {
    serde_json::from_str(json)
        .map_err(|e| ChatStoreError::Corrupt(format!("an attribute value is not one: {e}")))
}

/// Checks survey progress.
pub(crate) fn check_survey(progress: Option<&SurveyProgress>) -> Result<(), ChatStoreError> {
    progress.map_or(Ok(()), |p| check_name("survey name", &p.survey))
}

/// Checks a log entry.
pub(crate) fn check_entry(entry: &LogEntry) -> Result<(), ChatStoreError> {
    check_name("log kind", &entry.kind)?;
    if let Some(intent) = &entry.intent {
        check_name("intent", intent)?;
    }
    if entry.text.contains('\0') {
        Err(invalid("log text", "must not contain NUL characters"))
    } else if entry.text.chars().nth(LOG_TEXT_MAX_CHARS).is_some() {
        Err(invalid("log text", "must be at most 2000 characters"))
    } else {
        Ok(())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn user(s: String) -> Result<LineUserId, ChatStoreError> {
    LineUserId::new(s).map_err(|e| ChatStoreError::Corrupt(e.to_string()))
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn customer(s: String) -> Result<CustomerId, ChatStoreError> {
    CustomerId::new(s).map_err(|e| ChatStoreError::Corrupt(e.to_string()))
}

/// A stored log row, in the SQL stores' column order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) type LogRow = (String, Option<String>, String, String, String, Option<String>, i64);

/// The columns of a log row, in [`LogRow`]'s order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const LOG_COLUMNS: &str =
    "line_user_id, customer_id, direction, kind, text, intent, at_ms";

/// Reads a stored log row back.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn entry_from_row(
    (u, c, direction, kind, text, intent, at): LogRow,
) -> Result<LogEntry, ChatStoreError> {
    Ok(LogEntry {
        line_user: user(u)?,
        customer: c.map(customer).transpose()?,
        direction: Direction::parse(&direction)?,
        kind,
        text,
        intent,
        at: from_ms(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u() -> LineUserId {
        LineUserId::new(format!("U{:032x}", 1)).unwrap()
    }

    #[test]
    fn log_text_is_truncated_by_characters_and_loses_nul() {
        let e = LogEntry::new(u(), Direction::Inbound, "text", &"あ".repeat(2_500), Utc::now());
        assert_eq!(e.text.chars().count(), LOG_TEXT_MAX_CHARS);
        assert!(check_entry(&e).is_ok());
        let e = LogEntry::new(u(), Direction::Inbound, "text", "a\0b", Utc::now());
        assert_eq!(e.text, "a\u{FFFD}b");
    }

    #[test]
    fn names_and_texts_are_checked() {
        assert!(check_name("k", "opt_out").is_ok());
        for bad in ["", "a\nb", "\0", &"x".repeat(129)] {
            assert!(matches!(check_name("k", bad), Err(ChatStoreError::InvalidInput { .. })));
        }
        assert!(check_reason(&"x".repeat(1_000)).is_ok());
        assert!(check_reason(&"x".repeat(1_001)).is_err());
        assert!(check_reason("a\0").is_err());
        let mut e = LogEntry::new(u(), Direction::Outbound, "reply", "hi", Utc::now());
        e.text = "x".repeat(2_001);
        assert!(check_entry(&e).is_err());
        e.text = "a\0".into();
        assert!(check_entry(&e).is_err());
        let e = LogEntry::new(u(), Direction::Outbound, "reply", "hi", Utc::now()).with_intent("");
        assert!(check_entry(&e).is_err());
    }

    #[test]
    fn attribute_values_are_stored_as_their_json() {
        let json = attribute_json("opt_out", &AttrValue::Bool(true)).unwrap();
        assert_eq!(json, r#"{"bool":true}"#);
        let big = AttrValue::Text("x".repeat(ATTRIBUTE_VALUE_MAX_BYTES));
        assert!(attribute_json("k", &big).is_err());
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        {
            assert_eq!(attribute_from_json(&json).unwrap(), AttrValue::Bool(true));
            assert!(matches!(attribute_from_json("{}"), Err(ChatStoreError::Corrupt(_))));
        }
    }

    #[test]
    fn directions_round_trip() {
        for d in [Direction::Inbound, Direction::Outbound] {
            assert_eq!(Direction::parse(d.as_str()).unwrap(), d);
        }
        assert!(matches!(Direction::parse("sideways"), Err(ChatStoreError::Corrupt(_))));
    }

    #[test]
    fn idle_cutoff_saturates() {
        let now = Utc::now();
        assert!(idle_cutoff_ms(Duration::MAX, now) < 0);
        assert_eq!(idle_cutoff_ms(Duration::from_secs(1), now), now.timestamp_millis() - 1_000);
    }
}
