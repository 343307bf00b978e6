//! Rules: which intent answers a message, a postback or a follow.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::normalize::normalize;
use crate::commerce::{BoxError, Order, Subscription};
use crate::line::message::Message;
use crate::{CustomerId, LineUserId};

/// What answers a conversation turn.
#[derive(Clone)]
#[non_exhaustive]
pub enum Intent {
    /// 注文状況: the latest orders with their status.
    OrderStatus,
    /// 次回お届け: active subscriptions and their next delivery.
    NextDelivery,
    /// ポイント: the balance and when it expires.
    Points,
    /// 会員ランク: the rank and the distance to the next.
    Rank,
    /// 連携: the link button.
    Link,
    /// 連携解除: the unlink button.
    Unlink,
    /// 配信停止: marketing messages stop (stored as consent; campaigns and scenarios honour it).
    OptOut,
    /// 配信再開: marketing messages resume.
    OptIn,
    /// ヘルプ: what the bot understands.
    Help,
    /// 担当者: hand the conversation to staff.
    HandOff,
    /// Starts the survey with this ID.
    Survey(String),
    /// The welcome after a follow.
    Welcome,
    /// Nothing matched.
    Fallback,
    /// A sticker, an image or another message that is not text.
    NotText,
    /// A fixed reply (a minijinja template over the conversation).
    Reply(String),
    /// The shop's own handler.
    Custom(Arc<dyn ChatHandler>),
}

impl Intent {
    /// The intent's name in logs, metrics and the conversation log.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::OrderStatus => "order_status",
            Self::NextDelivery => "next_delivery",
            Self::Points => "points",
            Self::Rank => "rank",
            Self::Link => "link",
            Self::Unlink => "unlink",
            Self::OptOut => "opt_out",
            Self::OptIn => "opt_in",
            Self::Help => "help",
            Self::HandOff => "handoff",
            Self::Survey(_) => "survey",
            Self::Welcome => "welcome",
            Self::Fallback => "fallback",
            Self::NotText => "not_text",
            Self::Reply(_) => "reply",
            Self::Custom(h) => h.name(),
        }
    }

    /// The intent a quick-reply postback names (`intent` action), for the built-in ones.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "order_status" => Self::OrderStatus,
            "next_delivery" => Self::NextDelivery,
            "points" => Self::Points,
            "rank" => Self::Rank,
            "link" => Self::Link,
            "unlink" => Self::Unlink,
            "opt_out" => Self::OptOut,
            "opt_in" => Self::OptIn,
            "help" => Self::Help,
            "handoff" => Self::HandOff,
            _ => return None,
        })
    }
}

impl fmt::Debug for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shop's own intent.
#[async_trait::async_trait]
pub trait ChatHandler: Send + Sync + 'static {
    /// Its name in logs and metrics.
    fn name(&self) -> &str;
    /// The reply (1 to 5 messages; none sends nothing).
    async fn handle(&self, conversation: &Conversation) -> Result<Vec<Message>, BoxError>;
}

/// The linked customer, as a handler sees them.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CustomerContext {
    /// The customer.
    pub id: Option<CustomerId>,
    /// Their name.
    pub name: Option<String>,
    /// Their latest orders, newest first (at most 3).
    pub orders: Vec<Order>,
    /// Their active subscriptions (定期).
    pub subscriptions: Vec<Subscription>,
    /// Their points balance.
    pub points: Option<i64>,
    /// When the points expire.
    pub points_expire_at: Option<DateTime<Utc>>,
    /// Their rank's label.
    pub rank: Option<String>,
    /// What they spent in all (yen).
    pub total_spent: Option<i64>,
    /// The next rank and the yen still to spend for it.
    pub next_rank: Option<(String, i64)>,
}

/// Where the chatbot learns who a LINE user is at the shop (the app answers from its synced
/// data and link store).
#[async_trait::async_trait]
pub trait ContextSource: Send + Sync + 'static {
    /// The linked customer of `user`, or `None` when the user is not linked.
    async fn customer_of(&self, user: &LineUserId) -> Result<Option<CustomerContext>, BoxError>;
}

/// One turn of the conversation, as an intent sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Conversation {
    /// Who wrote.
    pub line_user: LineUserId,
    /// The linked customer, if any.
    pub customer: Option<CustomerContext>,
    /// What they wrote, as received (`None` for postbacks and follows).
    pub text: Option<String>,
    /// The parameters of the signed postback that started this turn (see
    /// [`Rule::postback`] and [`ChatBot::postback_data`](super::ChatBot::postback_data)).
    pub params: std::collections::BTreeMap<String, String>,
}

/// How a rule matches.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(Vec<String>),
    Contains(Vec<String>),
    Regex(Regex),
    Follow,
    Postback(String),
}

/// A rule: a matcher and the intent it starts. Rules are tried in order; the first match wins.
#[derive(Debug, Clone)]
pub struct Rule {
    matcher: Matcher,
    intent: Intent,
}

impl Rule {
    /// The message is one of `words` (after normalisation).
    #[must_use]
    pub fn exact<S: AsRef<str>>(words: impl IntoIterator<Item = S>, intent: Intent) -> Self {
        let words = words.into_iter().map(|w| normalize(w.as_ref())).collect();
        Self { matcher: Matcher::Exact(words), intent }
    }

    /// The message contains one of `words` (after normalisation).
    #[must_use]
    pub fn contains<S: AsRef<str>>(words: impl IntoIterator<Item = S>, intent: Intent) -> Self {
        let words = words.into_iter().map(|w| normalize(w.as_ref())).collect();
        Self { matcher: Matcher::Contains(words), intent }
    }

    /// The normalised message matches `pattern` (its hiragana is folded to katakana like the
    /// message's; write letters in lower case).
    ///
    /// # Errors
    /// The pattern does not compile.
    pub fn regex(pattern: &str, intent: Intent) -> Result<Self, regex::Error> {
        let pattern = super::normalize::fold_pattern(pattern);
        Ok(Self { matcher: Matcher::Regex(Regex::new(&pattern)?), intent })
    }

    /// A signed postback with this action (data made by
    /// [`ChatBot::postback_data`](super::ChatBot::postback_data)); its parameters reach the
    /// intent in [`Conversation::params`].
    #[must_use]
    pub fn postback(action: impl Into<String>, intent: Intent) -> Self {
        Self { matcher: Matcher::Postback(action.into()), intent }
    }

    /// A follow (or unblock).
    #[must_use]
    pub fn follow(intent: Intent) -> Self {
        Self { matcher: Matcher::Follow, intent }
    }

    pub(crate) fn matches_text(&self, normalized: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(words) => words.iter().any(|w| w == normalized),
            Matcher::Contains(words) => words.iter().any(|w| normalized.contains(w.as_str())),
            Matcher::Regex(re) => re.is_match(normalized),
            Matcher::Follow | Matcher::Postback(_) => false,
        }
    }

    pub(crate) fn matches_postback(&self, action: &str) -> bool {
        matches!(&self.matcher, Matcher::Postback(a) if a == action)
    }

    pub(crate) fn is_follow(&self) -> bool {
        matches!(self.matcher, Matcher::Follow)
    }

    pub(crate) fn intent(&self) -> &Intent {
        &self.intent
    }
}

/// The built-in rules, in order (more specific first: 連携解除 before 連携).
#[must_use]
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::contains(["担当者", "オペレーター", "人と話", "スタッフ"], Intent::HandOff),
        Rule::contains(["連携解除", "連携を解除"], Intent::Unlink),
        Rule::contains(["連携"], Intent::Link),
        Rule::contains(["配信再開", "配信を再開"], Intent::OptIn),
        Rule::contains(["配信停止", "配信を停止", "配信不要"], Intent::OptOut),
        Rule::contains(["次回", "定期", "お届け日"], Intent::NextDelivery),
        Rule::contains(["注文", "配送", "発送", "届かない"], Intent::OrderStatus),
        Rule::contains(["ポイント"], Intent::Points),
        Rule::contains(["ランク"], Intent::Rank),
        Rule::exact(["ヘルプ", "help", "使い方", "メニュー"], Intent::Help),
        Rule::follow(Intent::Welcome),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(rules: &[Rule], text: &str) -> String {
        let n = normalize(text);
        rules
            .iter()
            .find(|r| r.matches_text(&n))
            .map_or("fallback", |r| r.intent().name())
            .to_owned()
    }

    #[test]
    fn keywords_match_whatever_the_width_or_kana() {
        let rules = default_rules();
        assert_eq!(route(&rules, "注文状況を教えて"), "order_status");
        assert_eq!(route(&rules, "ﾎﾟｲﾝﾄ"), "points");
        assert_eq!(route(&rules, "ぽいんと いくつ?"), "points");
        assert_eq!(route(&rules, "連携解除したい"), "unlink");
        assert_eq!(route(&rules, "連携"), "link");
        assert_eq!(route(&rules, "ＨＥＬＰ"), "help");
        assert_eq!(route(&rules, "担当者と話したい"), "handoff");
        assert_eq!(route(&rules, "次回のお届けはいつ"), "next_delivery");
        assert_eq!(route(&rules, "こんにちは"), "fallback");
    }

    #[test]
    fn a_regex_rule_reads_the_normalised_text() {
        let rule =
            Rule::regex(r"^返品(したい|方法)", Intent::Reply("返品はこちら".into())).unwrap();
        assert!(rule.matches_text(&normalize("返品したい")));
        assert!(!rule.matches_text(&normalize("返品")));
        assert!(Rule::regex("(", Intent::Help).is_err());
    }
}
