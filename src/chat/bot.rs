//! The chatbot: one webhook event in, the right reply out (or none, while staff have it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ChatError;
use super::postback::{PostbackCommand, Signer, Verified};
use super::router::{ContextSource, Conversation, Intent, Rule, default_rules};
use super::store::{ChatStore, Direction, LogEntry, SurveyProgress};
use super::survey::Survey;
use super::texts::{QUICK, Texts, Vars};
use crate::line::message::{Action, Message, QuickReply, QuickReplyItem};
use crate::line::webhook::{Event, EventKind, MessageContent, Source};
use crate::line::{LineClient, PushRequest, ReplyRequest};
use crate::link::AccountLinker;
use crate::segment::AttrValue;
use crate::{CustomerId, LineGroupId, LineUserId, RetryKey};

/// The attribute the 配信停止 intent sets to `true` (配信再開: `false`); the app treats a
/// customer with it as not consenting to marketing messages.
pub const OPT_OUT_ATTRIBUTE: &str = "line_opt_out";

/// Told when a chat answer sets a customer attribute (the app refreshes that customer's facts,
/// so segments and scenario triggers see it at once).
#[async_trait::async_trait]
pub trait AttributeListener: Send + Sync + 'static {
    /// `customer`'s `key` is now `value`.
    async fn attribute_set(&self, customer: &CustomerId, key: &str, value: &AttrValue);
}

/// What one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatOutcome {
    /// The intent that answered, if any.
    pub intent: Option<String>,
    /// Answered with the event's reply token.
    pub replied: bool,
    /// Answered by push (the reply token had expired or was used).
    pub pushed: bool,
    /// Staff have the conversation: the bot stayed silent (or it was handed over now).
    pub handed_off: bool,
    /// A postback claiming to be the bot's failed its signature: ignored.
    pub forged: bool,
    /// A survey answer was stored.
    pub survey_answer: bool,
    /// Not for the bot (another part of enishi, an event type it does not answer).
    pub ignored: bool,
}

/// What the log says about the conversations of a period ([`ChatBot::summary`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatSummary {
    /// Distinct LINE users who wrote or were written to.
    pub conversations: usize,
    /// Messages, postbacks and follows received.
    pub inbound: usize,
    /// Messages the bot sent (replies and pushes).
    pub replies: usize,
    /// Hand-offs to staff.
    pub handoffs: usize,
    /// Survey questions sent.
    pub surveys_started: usize,
    /// Survey answers stored.
    pub survey_answers: usize,
}

impl From<ChatSummary> for crate::campaign::ConversationStats {
    fn from(s: ChatSummary) -> Self {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        Self::new(
            n(s.conversations),
            n(s.inbound),
            n(s.replies),
            n(s.handoffs),
            n(s.surveys_started),
            n(s.survey_answers),
        )
    }
}

/// The chatbot (see the [module documentation](super)). Cheap to clone.
#[derive(Clone)]
pub struct ChatBot {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) line: LineClient,
    pub(super) store: Arc<dyn ChatStore>,
    pub(super) context: Arc<dyn ContextSource>,
    pub(super) rules: Vec<Rule>,
    pub(super) texts: Texts,
    pub(super) surveys: Vec<Survey>,
    pub(super) signer: Signer,
    pub(super) staff_group: Option<LineGroupId>,
    pub(super) staff_webhook: Option<url::Url>,
    pub(super) http: reqwest::Client,
    pub(super) idle: Duration,
    pub(super) mark_as_read: bool,
    pub(super) loading: Option<u32>,
    pub(super) skip_postbacks: Vec<String>,
    pub(super) linker: Option<AccountLinker>,
    pub(super) listener: Option<Arc<dyn AttributeListener>>,
    pub(super) retention: Option<Duration>,
    pub(super) commerce: Option<Arc<dyn crate::commerce::CommerceBackend>>,
}

impl std::fmt::Debug for ChatBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatBot")
            .field("rules", &self.inner.rules.len())
            .field("surveys", &self.inner.surveys.len())
            .field("idle", &self.inner.idle)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ChatBot`]; [`build`](Self::build) reports the first bad setting.
#[must_use]
pub struct ChatBotBuilder {
    line: LineClient,
    store: Arc<dyn ChatStore>,
    context: Arc<dyn ContextSource>,
    rules: Vec<Rule>,
    texts: BTreeMap<String, String>,
    shop: String,
    surveys: Vec<Survey>,
    key: Vec<u8>,
    staff_group: Option<LineGroupId>,
    staff_webhook: Option<String>,
    idle: Duration,
    mark_as_read: bool,
    loading: Option<u32>,
    skip_postbacks: Vec<String>,
    linker: Option<AccountLinker>,
    listener: Option<Arc<dyn AttributeListener>>,
    retention: Option<Duration>,
    commerce: Option<Arc<dyn crate::commerce::CommerceBackend>>,
}

impl std::fmt::Debug for ChatBotBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatBotBuilder").field("shop", &self.shop).finish_non_exhaustive()
    }
}

impl ChatBot {
    /// A builder: the LINE client, where the chat state lives, and who a LINE user is at the
    /// shop. `postback_key` signs the postbacks the bot issues (32 random bytes, kept secret).
    pub fn builder(
        line: LineClient,
        store: Arc<dyn ChatStore>,
        context: Arc<dyn ContextSource>,
        postback_key: impl Into<Vec<u8>>,
    ) -> ChatBotBuilder {
        ChatBotBuilder {
            line,
            store,
            context,
            rules: Vec::new(),
            texts: BTreeMap::new(),
            shop: "ショップ".into(),
            surveys: Vec::new(),
            key: postback_key.into(),
            staff_group: None,
            staff_webhook: None,
            idle: Duration::from_secs(30 * 60),
            mark_as_read: false,
            loading: Some(5),
            skip_postbacks: Vec::new(),
            linker: None,
            listener: None,
            retention: Some(Duration::from_secs(180 * 24 * 3600)),
            commerce: None,
        }
    }
}

impl ChatBotBuilder {
    /// Rules tried before the built-in ones (first match wins).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Replaces one reply text (a minijinja template; see `docs/chat.md` for keys).
    pub fn text(mut self, key: impl Into<String>, template: impl Into<String>) -> Self {
        self.texts.insert(key.into(), template.into());
        self
    }

    /// The shop's name in the replies.
    pub fn shop_name(mut self, name: impl Into<String>) -> Self {
        self.shop = name.into();
        self
    }

    /// A survey, started by a rule with [`Intent::Survey`] (added here for the keyword
    /// `アンケート` when it is the first survey).
    pub fn survey(mut self, survey: Survey) -> Self {
        if self.surveys.is_empty() {
            let rule = Rule::contains(["アンケート"], Intent::Survey(survey.id.clone()));
            self = self.rule(rule);
        }
        self.surveys.push(survey);
        self
    }

    /// Hand-offs are announced to this LINE group (staff answer there; `#bot U…` gives the
    /// conversation back to the bot).
    pub fn staff_group(mut self, group: LineGroupId) -> Self {
        self.staff_group = Some(group);
        self
    }

    /// Hand-offs are also POSTed as JSON to this URL (a helpdesk).
    pub fn staff_webhook(mut self, url: impl Into<String>) -> Self {
        self.staff_webhook = Some(url.into());
        self
    }

    /// How long a hand-off lasts without a message before the bot takes over (default 30 min).
    pub fn handoff_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Marks each message as read with its token (for accounts that turned automatic read
    /// receipts off).
    pub fn mark_as_read(mut self, on: bool) -> Self {
        self.mark_as_read = on;
        self
    }

    /// Seconds of loading animation while an answer is prepared (default 5; `None` shows none).
    pub fn loading_animation(mut self, seconds: Option<u32>) -> Self {
        self.loading = seconds;
        self
    }

    /// Link and unlink buttons come from this linker; its postbacks are left to it.
    pub fn linker(mut self, linker: AccountLinker, postbacks: &[&str]) -> Self {
        self.linker = Some(linker);
        self.skip_postbacks.extend(postbacks.iter().map(|p| (*p).to_owned()));
        self
    }

    /// Told of each attribute a survey answer or an opt-out sets.
    pub fn on_attribute(mut self, listener: Arc<dyn AttributeListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The shop's backend, for the changes a customer may make from the chat (skipping the
    /// next delivery of a 定期, where the backend supports it).
    pub fn commerce(mut self, backend: Arc<dyn crate::commerce::CommerceBackend>) -> Self {
        self.commerce = Some(backend);
        self
    }

    /// How long the conversation log is kept (default 180 days; `None` keeps it all).
    /// [`ChatBot::purge_log`] applies it; the app does so on its ticks.
    pub fn log_retention(mut self, keep: Option<Duration>) -> Self {
        self.retention = keep;
        self
    }

    /// Builds the bot.
    ///
    /// # Errors
    /// [`ChatError::Config`]: an unknown text key, a template that does not compile, a
    /// survey without questions or with bad choices, a short postback key, a bad webhook URL.
    pub fn build(self) -> Result<ChatBot, ChatError> {
        if self.key.len() < 16 {
            return Err(ChatError::Config("the postback key needs at least 16 bytes".into()));
        }
        for survey in &self.surveys {
            survey.check().map_err(ChatError::Config)?;
        }
        let staff_webhook = self
            .staff_webhook
            .map(|u| {
                url::Url::parse(&u)
                    .map_err(|e| ChatError::Config(format!("staff webhook `{u}`: {e}")))
            })
            .transpose()?;
        Ok(ChatBot {
            inner: Arc::new(Inner {
                texts: Texts::new(&self.shop, &self.texts)?,
                line: self.line,
                store: self.store,
                context: self.context,
                rules: self.rules.into_iter().chain(default_rules()).collect(),
                surveys: self.surveys,
                signer: Signer::new(&self.key),
                staff_group: self.staff_group,
                staff_webhook,
                http: reqwest::Client::new(),
                idle: self.idle,
                mark_as_read: self.mark_as_read,
                loading: self.loading,
                skip_postbacks: self.skip_postbacks,
                linker: self.linker,
                listener: self.listener,
                retention: self.retention,
                commerce: self.commerce,
            }),
        })
    }
}

/// What the user sent.
enum Input {
    Text(String),
    Other(&'static str),
    Postback(String),
    Follow,
}

impl ChatBot {
    /// The chat state.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ChatStore> {
        &self.inner.store
    }

    /// Signed postback data for the shop's own buttons: a postback with it runs the
    /// [`Rule::postback`] rule for `action`, its `params` in [`Conversation::params`]. Keep
    /// actions and parameters short (LINE allows 300 characters of data).
    #[must_use]
    pub fn postback_data(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.inner.signer.sign(action, params)
    }

    /// What happened in the conversations since `since`, from the log: for reports.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn summary(&self, since: DateTime<Utc>) -> Result<ChatSummary, ChatError> {
        let log = self.inner.store.log_since(since).await?;
        let mut users: Vec<&LineUserId> = log.iter().map(|e| &e.line_user).collect();
        users.sort();
        users.dedup();
        let outbound = |intent: Option<&str>| {
            log.iter()
                .filter(|e| e.direction == Direction::Outbound)
                .filter(|e| intent.is_none() || e.intent.as_deref() == intent)
                .count()
        };
        Ok(ChatSummary {
            conversations: users.len(),
            inbound: log
                .iter()
                .filter(|e| e.direction == Direction::Inbound && e.kind != "survey")
                .count(),
            replies: outbound(None),
            handoffs: outbound(Some("handoff")),
            surveys_started: outbound(Some("survey")),
            survey_answers: log.iter().filter(|e| e.kind == "survey").count(),
        })
    }

    /// Deletes the log older than the retention (`log_retention`); how many entries.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn purge_log(&self, now: DateTime<Utc>) -> Result<u64, ChatError> {
        let Some(keep) = self.inner.retention else { return Ok(0) };
        let keep = chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::MAX);
        Ok(self.inner.store.purge_log(now - keep).await?)
    }

    /// Handles one webhook event: routes it, answers (reply token, or a push once when the
    /// token is spent), logs both sides. Silent while staff have the conversation.
    ///
    /// # Errors
    /// [`ChatError::Store`] when the chat state cannot be read or written (the event may be
    /// redelivered).
    pub async fn handle(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        let ignored = ChatOutcome { ignored: true, ..ChatOutcome::default() };
        let user = match &event.source {
            Some(Source::Group { group_id, .. }) => {
                return self.staff_command(event, group_id, now).await;
            }
            Some(Source::User { user_id: Some(u) }) => match LineUserId::new(u.as_str()) {
                Ok(u) => u,
                Err(_) => return Ok(ignored),
            },
            _ => return Ok(ignored),
        };
        let input = match &event.kind {
            EventKind::Message(MessageContent::Text(t)) => Input::Text(t.text.clone()),
            EventKind::Message(m) => Input::Other(message_kind(m)),
            EventKind::Postback(p) if self.inner.skip_postbacks.contains(&p.data) => {
                return Ok(ignored);
            }
            EventKind::Postback(p) => Input::Postback(p.data.clone()),
            EventKind::Follow(_) => Input::Follow,
            _ => return Ok(ignored),
        };
        self.mark_read(event).await;
        let (kind, text) = match &input {
            Input::Text(t) => ("text", t.clone()),
            Input::Other(k) => (*k, String::new()),
            Input::Postback(d) => ("postback", d.clone()),
            Input::Follow => ("follow", String::new()),
        };
        self.log(&user, None, Direction::Inbound, kind, &text, None, now).await?;
        if !matches!(input, Input::Follow)
            && let Some(handoff) =
                self.inner.store.active_handoff(&user, self.inner.idle, now).await?
        {
            self.inner.store.touch_handoff(&user, now).await?;
            self.forward_to_staff(&handoff, &text).await;
            return Ok(ChatOutcome { handed_off: true, ..ChatOutcome::default() });
        }
        let intent = match input {
            Input::Text(t) => {
                let n = super::normalize::normalize(&t);
                self.inner
                    .rules
                    .iter()
                    .find(|r| r.matches_text(&n))
                    .map_or(Intent::Fallback, |r| r.intent().clone())
            }
            Input::Other(_) => Intent::NotText,
            Input::Follow => self
                .inner
                .rules
                .iter()
                .find(|r| r.is_follow())
                .map_or(Intent::Welcome, |r| r.intent().clone()),
            Input::Postback(data) => {
                match self.inner.signer.verify(&data) {
                    Verified::Command(cmd) => {
                        return self.command(event, &user, &cmd, &text, now).await;
                    }
                    Verified::Forged => {
                        tracing::warn!(target: "enishi::chat", line_user = user.as_str(), "a forged chat postback was ignored");
                        metrics::counter!("enishi_chat_postbacks_ignored_total", "reason" => "forged").increment(1);
                        return Ok(ChatOutcome {
                            forged: true,
                            ignored: true,
                            ..ChatOutcome::default()
                        });
                    }
                    Verified::Foreign => {
                        metrics::counter!("enishi_chat_postbacks_ignored_total", "reason" => "foreign").increment(1);
                        return Ok(ignored);
                    }
                }
            }
        };
        self.answer(event, &user, intent, &text, now).await
    }

    /// A verified postback: a quick-reply intent or a survey answer.
    async fn command(
        &self,
        event: &Event,
        user: &LineUserId,
        cmd: &PostbackCommand,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        match cmd.action.as_str() {
            "intent" => match cmd.param("i").and_then(Intent::from_name) {
                Some(intent) => self.answer(event, user, intent, text, now).await,
                None => Ok(ChatOutcome { ignored: true, ..ChatOutcome::default() }),
            },
            "survey" => self.survey_answer(event, user, cmd, now).await,
            "skip_ask" | "skip_do" => self.skip(event, user, cmd, now).await,
            action => match self.inner.rules.iter().find(|r| r.matches_postback(action)) {
                Some(rule) => {
                    let intent = rule.intent().clone();
                    self.answer_with(event, user, intent, text, cmd.params.clone(), now).await
                }
                None => Ok(ChatOutcome { ignored: true, ..ChatOutcome::default() }),
            },
        }
    }

    async fn answer(
        &self,
        event: &Event,
        user: &LineUserId,
        intent: Intent,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        self.answer_with(event, user, intent, text, BTreeMap::new(), now).await
    }

    async fn answer_with(
        &self,
        event: &Event,
        user: &LineUserId,
        intent: Intent,
        text: &str,
        params: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        if let Some(seconds) = self.inner.loading
            && !matches!(
                intent,
                Intent::Welcome | Intent::Fallback | Intent::Help | Intent::NotText
            )
            && let Err(e) = self.inner.line.show_loading(user, seconds).await
        {
            tracing::debug!(target: "enishi::chat", error = %e, "no loading animation");
        }
        let customer = match self.inner.context.customer_of(user).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: "enishi::chat", error = %e, "the customer context could not be read");
                None
            }
        };
        let conversation =
            Conversation { line_user: user.clone(), customer, text: Some(text.to_owned()), params };
        let mut outcome =
            ChatOutcome { intent: Some(intent.name().to_owned()), ..ChatOutcome::default() };
        let messages = self.messages(&intent, &conversation, now, &mut outcome).await?;
        let (replied, pushed) = self.send(event, user, messages.clone()).await?;
        outcome.replied = replied;
        outcome.pushed = pushed;
        let customer = conversation.customer.as_ref().and_then(|c| c.id.clone());
        for m in &messages {
            let said =
                serde_json::to_value(m).ok().and_then(|v| v["text"].as_str().map(str::to_owned));
            let kind = if pushed { "push" } else { "reply" };
            self.log(
                user,
                customer.clone(),
                Direction::Outbound,
                kind,
                &said.unwrap_or_default(),
                Some(intent.name()),
                now,
            )
            .await?;
        }
        metrics::counter!("enishi_chat_answers_total", "intent" => intent.name().to_owned())
            .increment(1);
        Ok(outcome)
    }

    /// The reply of `intent` for this conversation.
    async fn messages(
        &self,
        intent: &Intent,
        conv: &Conversation,
        now: DateTime<Utc>,
        outcome: &mut ChatOutcome,
    ) -> Result<Vec<Message>, ChatError> {
        let c = conv.customer.as_ref();
        let vars = Vars::of(c);
        let say = |key: &str| self.say(key, &vars);
        let linked = c.and_then(|c| c.id.clone());
        Ok(match intent {
            Intent::OrderStatus | Intent::NextDelivery | Intent::Points | Intent::Rank if linked.is_none() => {
                self.link_invite(&conv.line_user, now).await
            }
            Intent::OrderStatus => {
                let key = if vars.orders.is_empty() { "order_none" } else { "order_status" };
                vec![Message::text(say(key))]
            }
            Intent::NextDelivery => {
                let key = if vars.subscriptions.is_empty() { "next_none" } else { "next_delivery" };
                let mut message = Message::text(say(key));
                // The first active 定期 not skipped yet gets a skip button.
                let skippable = c.into_iter().flat_map(|c| &c.subscriptions).find(|s| {
                    s.state == crate::commerce::SubscriptionState::Active
                        && s.skip_next_delivery != Some(true)
                        && s.next_delivery_at.is_some()
                });
                if let (Some(sub), true) = (skippable, self.inner.commerce.is_some()) {
                    let data = self.inner.signer.sign("skip_ask", &[("sub", &sub.id)]);
                    let mut items = vec![QuickReplyItem::new(Action::postback("次回をスキップ", data))];
                    items.extend(self.quick_replies().items.into_iter().take(2));
                    message = message.with_quick_reply(QuickReply::new(items));
                }
                vec![message]
            }
            Intent::Points => {
                let vars = Vars { points: vars.points.or(Some(0)), ..vars.clone() };
                vec![Message::text(self.say("points", &vars))]
            }
            Intent::Rank => {
                let vars = Vars { rank: vars.rank.clone().or(Some("一般".into())), ..vars.clone() };
                vec![Message::text(self.say("rank", &vars))]
            }
            Intent::Link if linked.is_some() => vec![Message::text(say("already_linked"))],
            Intent::Link => self.link_invite(&conv.line_user, now).await,
            Intent::Unlink if linked.is_none() => vec![Message::text(say("not_linked"))],
            Intent::Unlink => self.unlink_button(&conv.line_user, now).await,
            Intent::OptOut | Intent::OptIn => {
                if let Some(id) = &linked {
                    self.set_attribute(id, super::OPT_OUT_ATTRIBUTE, AttrValue::Bool(matches!(intent, Intent::OptOut)), now).await?;
                }
                vec![Message::text(say(if matches!(intent, Intent::OptOut) { "opt_out" } else { "opt_in" }))]
            }
            Intent::Help | Intent::Fallback => {
                let key = if matches!(intent, Intent::Help) { "help" } else { "fallback" };
                vec![Message::text(say(key)).with_quick_reply(self.quick_replies())]
            }
            Intent::HandOff => {
                outcome.handed_off = true;
                if self.inner.store.start_handoff(&conv.line_user, "requested", now).await? {
                    self.notify_staff(conv).await;
                }
                vec![Message::text(say("handoff"))]
            }
            Intent::Survey(id) => match linked {
                Some(_) => self.start_survey(&conv.line_user, id, now).await?,
                None => {
                    let mut m = vec![Message::text(say("survey_needs_link"))];
                    m.extend(self.link_invite(&conv.line_user, now).await.into_iter().skip(1));
                    m
                }
            },
            Intent::Welcome => {
                let mut m = vec![Message::text(say("welcome"))];
                if linked.is_none() {
                    m.extend(self.link_invite(&conv.line_user, now).await.into_iter().skip(1));
                }
                m
            }
            Intent::NotText => vec![Message::text(say("not_text"))],
            Intent::Reply(template) => {
                let env = minijinja::Environment::new();
                match env.render_str(template, minijinja::value::Serde(&vars)) {
                    Ok(text) => vec![Message::text(text)],
                    Err(e) => {
                        tracing::error!(target: "enishi::chat", error = %e, "a reply template failed");
                        Vec::new()
                    }
                }
            }
            Intent::Custom(handler) => handler.handle(conv).await.unwrap_or_else(|e| {
                tracing::error!(target: "enishi::chat", intent = handler.name(), error = %e, "a chat handler failed");
                Vec::new()
            }),
        })
    }

    pub(super) fn say(&self, key: &str, vars: &Vars) -> String {
        self.inner.texts.render(key, vars).unwrap_or_else(|e| {
            tracing::error!(target: "enishi::chat", key, error = %e, "a chat text failed");
            String::new()
        })
    }

    pub(super) fn quick_replies(&self) -> QuickReply {
        QuickReply::new(QUICK.iter().map(|(intent, label)| {
            QuickReplyItem::new(Action::postback(
                *label,
                self.inner.signer.sign("intent", &[("i", intent)]),
            ))
        }))
    }

    /// The invitation to link, with the link button when a linker is set.
    async fn link_invite(&self, user: &LineUserId, now: DateTime<Utc>) -> Vec<Message> {
        let text = self.say("link_invite", &Vars::default());
        let mut messages = vec![Message::text(text.clone())];
        if let Some(linker) = &self.inner.linker {
            match linker.start(user, now).await {
                Ok(started) => messages.push(linker.link_message(&started)),
                Err(e) => tracing::warn!(target: "enishi::chat", error = %e, "no link button"),
            }
        }
        messages
    }

    async fn unlink_button(&self, user: &LineUserId, now: DateTime<Utc>) -> Vec<Message> {
        let Some(linker) = &self.inner.linker else { return Vec::new() };
        match linker.unlink_message(user, now).await {
            Ok(message) => vec![message],
            Err(e) => {
                tracing::warn!(target: "enishi::chat", error = %e, "no unlink button");
                Vec::new()
            }
        }
    }

    async fn set_attribute(
        &self,
        customer: &CustomerId,
        key: &str,
        value: AttrValue,
        now: DateTime<Utc>,
    ) -> Result<(), ChatError> {
        self.inner.store.set_attribute(customer, key, &value, now).await?;
        if let Some(listener) = &self.inner.listener {
            listener.attribute_set(customer, key, &value).await;
        }
        Ok(())
    }

    async fn start_survey(
        &self,
        user: &LineUserId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, ChatError> {
        let Some(survey) = self.inner.surveys.iter().find(|s| s.id == id) else {
            return Ok(Vec::new());
        };
        let progress = SurveyProgress::new(id, 0, now);
        self.inner.store.set_survey(user, Some(&progress)).await?;
        Ok(vec![self.question(survey, 0)])
    }

    fn question(&self, survey: &Survey, step: usize) -> Message {
        let q = &survey.questions[step];
        let step_text = step.to_string();
        let items = q.choices.iter().enumerate().map(|(i, (label, _))| {
            let data = self
                .inner
                .signer
                .sign("survey", &[("s", &survey.id), ("q", &step_text), ("v", &i.to_string())]);
            QuickReplyItem::new(Action::postback(label.as_str(), data))
        });
        Message::text(q.text.clone()).with_quick_reply(QuickReply::new(items))
    }

    async fn survey_answer(
        &self,
        event: &Event,
        user: &LineUserId,
        cmd: &PostbackCommand,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        let stale = ChatOutcome { ignored: true, ..ChatOutcome::default() };
        let (Some(id), Some(step), Some(choice)) = (cmd.param("s"), cmd.param("q"), cmd.param("v"))
        else {
            return Ok(stale);
        };
        let (Ok(step), Ok(choice)) = (step.parse::<usize>(), choice.parse::<usize>()) else {
            return Ok(stale);
        };
        let Some(survey) = self.inner.surveys.iter().find(|s| s.id == id) else { return Ok(stale) };
        // Only the question being asked counts: an old button tapped again changes nothing.
        let asked = self.inner.store.survey_of(user).await?;
        if asked.as_ref().is_none_or(|p| p.survey != id || p.step as usize != step) {
            return Ok(stale);
        }
        let (Some(question), Ok(Some(customer))) =
            (survey.questions.get(step), self.inner.context.customer_of(user).await)
        else {
            return Ok(stale);
        };
        let (Some((_, value)), Some(customer_id)) =
            (question.choices.get(choice), customer.id.clone())
        else {
            return Ok(stale);
        };
        self.set_attribute(&customer_id, &question.attribute, AttrValue::Text(value.clone()), now)
            .await?;
        self.log(
            user,
            Some(customer_id),
            Direction::Inbound,
            "survey",
            &format!("{}={value}", question.attribute),
            Some("survey"),
            now,
        )
        .await?;
        let next = step + 1;
        let messages = if next < survey.questions.len() {
            let progress = SurveyProgress::new(id, u32::try_from(next).unwrap_or(u32::MAX), now);
            self.inner.store.set_survey(user, Some(&progress)).await?;
            vec![self.question(survey, next)]
        } else {
            self.inner.store.set_survey(user, None).await?;
            vec![Message::text(self.say("survey_thanks", &Vars::default()))]
        };
        let said: Vec<String> = messages
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok()?["text"].as_str().map(str::to_owned))
            .collect();
        let (replied, pushed) = self.send(event, user, messages).await?;
        for text in said {
            let kind = if pushed { "push" } else { "reply" };
            let intent = Some("survey_answer");
            self.log(user, customer.id.clone(), Direction::Outbound, kind, &text, intent, now)
                .await?;
        }
        metrics::counter!("enishi_chat_survey_answers_total").increment(1);
        Ok(ChatOutcome {
            intent: Some("survey".into()),
            replied,
            pushed,
            survey_answer: true,
            ..ChatOutcome::default()
        })
    }

    /// Replies with the event's token; when LINE refuses the token (expired, used), pushes
    /// once with a retry key derived from the event. Never both: a reply that may have gone
    /// out (a timeout) is not followed by a push.
    pub(super) async fn send(
        &self,
        event: &Event,
        user: &LineUserId,
        messages: Vec<Message>,
    ) -> Result<(bool, bool), ChatError> {
        if messages.is_empty() {
            return Ok((false, false));
        }
        if let Some(token) = &event.reply_token {
            match self.inner.line.reply(ReplyRequest::new(token.clone(), messages.clone())).await {
                Ok(_) => return Ok((true, false)),
                Err(e) if e.status().is_some_and(|s| s.as_u16() == 400) => {
                    tracing::info!(target: "enishi::chat", "the reply token was refused: pushing instead");
                }
                Err(e) => {
                    tracing::warn!(target: "enishi::chat", error = %e, "the reply may not have reached the user");
                    return Ok((false, false));
                }
            }
        }
        let mut push = PushRequest::new(user.clone(), messages);
        if let Some(id) = &event.webhook_event_id {
            push = push.retry_key(RetryKey::derive(&format!("enishi:chat:{}", id.as_str())));
        }
        match self.inner.line.push(push).await {
            Ok(_) => Ok((false, true)),
            // LINE accepted this retry key before: the one push went out already.
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 409) => Ok((false, true)),
            // A reason that may pass (5xx, timeout): answer the event with an error so LINE
            // redelivers it; the same retry key makes the second push the only one.
            Err(e) if e.is_retryable() => Err(ChatError::Delivery(e.to_string())),
            Err(e) => {
                tracing::warn!(target: "enishi::chat", error = %e, "the push fallback failed");
                Ok((false, false))
            }
        }
    }

    async fn mark_read(&self, event: &Event) {
        if !self.inner.mark_as_read {
            return;
        }
        if let EventKind::Message(m) = &event.kind
            && let Some(token) = read_token(m)
            && let Err(e) = self.inner.line.mark_as_read(token).await
        {
            tracing::debug!(target: "enishi::chat", error = %e, "could not mark as read");
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn log(
        &self,
        user: &LineUserId,
        customer: Option<CustomerId>,
        direction: Direction,
        kind: &str,
        text: &str,
        intent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), ChatError> {
        let mut entry = LogEntry::new(user.clone(), direction, kind, text, at);
        if let Some(customer) = customer {
            entry = entry.with_customer(customer);
        }
        if let Some(intent) = intent {
            entry = entry.with_intent(intent);
        }
        self.inner.store.append_log(&entry).await?;
        Ok(())
    }
}

fn message_kind(m: &MessageContent) -> &'static str {
    match m {
        MessageContent::Text(_) => "text",
        MessageContent::Image(_) => "image",
        MessageContent::Video(_) => "video",
        MessageContent::Audio(_) => "audio",
        MessageContent::File(_) => "file",
        MessageContent::Location(_) => "location",
        MessageContent::Sticker(_) => "sticker",
        _ => "other",
    }
}

fn read_token(m: &MessageContent) -> Option<&str> {
    match m {
        MessageContent::Text(t) => t.mark_as_read_token.as_deref(),
        MessageContent::Image(t) => t.mark_as_read_token.as_deref(),
        MessageContent::Video(t) => t.mark_as_read_token.as_deref(),
        MessageContent::Audio(t) => t.mark_as_read_token.as_deref(),
        MessageContent::File(t) => t.mark_as_read_token.as_deref(),
        MessageContent::Location(t) => t.mark_as_read_token.as_deref(),
        MessageContent::Sticker(t) => t.mark_as_read_token.as_deref(),
        _ => None,
    }
}
