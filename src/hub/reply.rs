//! Who answers which events, so that two tools never reply to the same message.

use crate::line::webhook::{Event, EventKind, MessageContent};

/// The owner name of enishi itself in [`ReplyRules`].
pub const ENISHI: &str = "enishi";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    EventType(String),
    TextPrefix(String),
    TextContains(String),
    PostbackPrefix(String),
}

/// One rule: events it matches are answered by `owner` (a destination's name, or [`ENISHI`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRule {
    owner: String,
    matcher: Matcher,
}

impl ReplyRule {
    /// Events of type `event_type` (`follow`, `message`, `postback`, ...).
    #[must_use]
    pub fn event_type(owner: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self { owner: owner.into(), matcher: Matcher::EventType(event_type.into()) }
    }

    /// Text messages starting with `prefix`.
    #[must_use]
    pub fn text_prefix(owner: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { owner: owner.into(), matcher: Matcher::TextPrefix(prefix.into()) }
    }

    /// Text messages containing `keyword`.
    #[must_use]
    pub fn text_contains(owner: impl Into<String>, keyword: impl Into<String>) -> Self {
        Self { owner: owner.into(), matcher: Matcher::TextContains(keyword.into()) }
    }

    /// Postbacks whose `data` starts with `prefix`.
    #[must_use]
    pub fn postback_prefix(owner: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { owner: owner.into(), matcher: Matcher::PostbackPrefix(prefix.into()) }
    }

    /// The owner of the events this rule matches.
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn matches(&self, event: &Event) -> bool {
        let text = match &event.kind {
            EventKind::Message(MessageContent::Text(t)) => Some(t.text.as_str()),
            _ => None,
        };
        match &self.matcher {
            Matcher::EventType(t) => event.type_str() == t,
            Matcher::TextPrefix(p) => text.is_some_and(|t| t.starts_with(p.as_str())),
            Matcher::TextContains(k) => text.is_some_and(|t| t.contains(k.as_str())),
            Matcher::PostbackPrefix(p) => {
                matches!(&event.kind, EventKind::Postback(pb) if pb.data.starts_with(p.as_str()))
            }
        }
    }
}

/// Which tool answers which events: the first matching rule's owner, else the default owner
/// ([`ENISHI`] unless set). With no rule at all nobody's replies are restricted (the hub
/// forwards reply tokens unchanged and enishi's handler sees every event).
///
/// ```
/// use enishi::hub::{ENISHI, ReplyRule, ReplyRules};
/// use enishi::line::webhook::parse;
///
/// let rules = ReplyRules::new()
///     .rule(ReplyRule::postback_prefix("lstep", "lstep:"))
///     .rule(ReplyRule::text_prefix("lstep", "予約"))
///     .rule(ReplyRule::event_type(ENISHI, "accountLink"));
/// let body = r#"{"destination":"U0","events":[{"type":"message","timestamp":1,
///   "source":{"type":"user","userId":"U1"},"replyToken":"r","mode":"active",
///   "webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
///   "message":{"type":"text","id":"1","quoteToken":"q","text":"予約したい"}}]}"#;
/// let event = &parse(body.as_bytes())?.events[0];
/// assert_eq!(rules.owner(event), "lstep");
/// assert!(!rules.enishi_replies(event));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyRules {
    rules: Vec<ReplyRule>,
    default_owner: Option<String>,
}

impl ReplyRules {
    /// No rules.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule (tried after the ones already held).
    #[must_use]
    pub fn rule(mut self, rule: ReplyRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Who owns events no rule matches (default [`ENISHI`]).
    #[must_use]
    pub fn default_owner(mut self, owner: impl Into<String>) -> Self {
        self.default_owner = Some(owner.into());
        self
    }

    /// `true` when no rule and no default owner is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.default_owner.is_none()
    }

    /// Who answers `event`.
    #[must_use]
    pub fn owner(&self, event: &Event) -> &str {
        self.rules
            .iter()
            .find(|r| r.matches(event))
            .map(ReplyRule::owner)
            .or(self.default_owner.as_deref())
            .unwrap_or(ENISHI)
    }

    /// Whether enishi's own handler may reply to `event`.
    #[must_use]
    pub fn enishi_replies(&self, event: &Event) -> bool {
        self.is_empty() || self.owner(event) == ENISHI
    }

    /// The event's JSON without its `replyToken` when `destination` does not own it and
    /// rules are set; `None` when it goes unchanged.
    pub(crate) fn strip_for(&self, destination: &str, event: &Event) -> Option<String> {
        if self.is_empty() || event.reply_token.is_none() || self.owner(event) == destination {
            return None;
        }
        let mut value = event.to_value();
        value.as_object_mut()?.remove("replyToken");
        serde_json::to_string(&value).ok()
    }

    /// Wraps enishi's own webhook handler so that it only sees events enishi answers
    /// (feature `axum`): events another tool owns are left to that tool.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn guard(
        &self,
        handler: impl crate::line::webhook::EventHandler,
    ) -> impl crate::line::webhook::EventHandler {
        Guard { rules: self.clone(), handler }
    }
}

#[cfg(feature = "axum")]
struct Guard<H> {
    rules: ReplyRules,
    handler: H,
}

#[cfg(feature = "axum")]
#[async_trait::async_trait]
impl<H: crate::line::webhook::EventHandler> crate::line::webhook::EventHandler for Guard<H> {
    async fn handle(
        &self,
        delivery: crate::line::webhook::Delivery,
    ) -> Result<(), crate::line::webhook::HandlerError> {
        if self.rules.enishi_replies(&delivery.event) {
            self.handler.handle(delivery).await
        } else {
            tracing::debug!(target: "enishi::hub", owner = self.rules.owner(&delivery.event),
                event = delivery.event.type_str(), "left to the tool that owns it");
            Ok(())
        }
    }
}
