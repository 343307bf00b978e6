//! Hand-off to staff: the bot falls silent for the user, staff are told (a LINE group, a
//! helpdesk webhook), and the bot takes over again on `#bot U…` in the group, through
//! [`ChatBot::end_handoff`], or after the idle time.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ChatError;
use super::bot::{ChatBot, ChatOutcome};
use super::router::Conversation;
use super::store::{Direction, HandOff};
use super::texts::Vars;
use crate::line::message::Message;
use crate::line::webhook::{Event, EventKind, MessageContent};
use crate::line::{PushRequest, ReplyRequest};
use crate::{LineGroupId, LineUserId};

impl ChatBot {
    /// Gives the conversation back to the bot and tells the user.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn end_handoff(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        let ended = self.inner.store.end_handoff(user).await?;
        if ended {
            let text = self.say("handback", &Vars::default());
            if let Err(e) = self
                .inner
                .line
                .push(PushRequest::new(user.clone(), vec![Message::text(text.clone())]))
                .await
            {
                tracing::warn!(target: "enishi::chat", error = %e, "could not tell the user the bot is back");
            }
            self.log(user, None, Direction::Outbound, "handback", &text, Some("handback"), now)
                .await?;
            tracing::info!(target: "enishi::chat", line_user = user.as_str(), "hand-off ended");
        }
        Ok(ended)
    }

    /// A message in a group: from the staff group, `#bot U…` ends that user's hand-off.
    pub(super) async fn staff_command(
        &self,
        event: &Event,
        group: &str,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        let ignored = ChatOutcome { ignored: true, ..ChatOutcome::default() };
        let staff = self.inner.staff_group.as_ref().is_some_and(|g| g.as_str() == group);
        let EventKind::Message(MessageContent::Text(t)) = &event.kind else { return Ok(ignored) };
        let Some(target) = t.text.trim().strip_prefix("#bot").map(str::trim) else {
            return Ok(ignored);
        };
        let Ok(user) = LineUserId::new(target) else { return Ok(ignored) };
        if !staff {
            return Ok(ignored);
        }
        let ended = self.end_handoff(&user, now).await?;
        if let Some(token) = &event.reply_token {
            let text = if ended {
                "ボットの対応に戻しました。"
            } else {
                "このお客さまは担当者対応中ではありません。"
            };
            let _ = self
                .inner
                .line
                .reply(ReplyRequest::new(token.clone(), vec![Message::text(text)]))
                .await;
        }
        Ok(ChatOutcome {
            intent: Some("handback".into()),
            handed_off: ended,
            ..ChatOutcome::default()
        })
    }

    /// Tells staff a conversation is theirs: the group (with the customer) and the webhook.
    pub(super) async fn notify_staff(&self, conv: &Conversation) {
        let c = conv.customer.as_ref();
        let mut vars = Vars::of(c);
        vars.user = conv.line_user.as_str().to_owned();
        vars.text = conv.text.clone().unwrap_or_default();
        if c.is_none() {
            vars.name = String::new();
        }
        if let Some(group) = &self.inner.staff_group {
            let text = self.say("handoff_staff", &vars);
            self.push_group(group, text).await;
        }
        if let Some(url) = &self.inner.staff_webhook {
            let body = json!({
                "type": "handoff",
                "lineUserId": conv.line_user.as_str(),
                "customerId": c.and_then(|c| c.id.as_ref()).map(crate::CustomerId::as_str),
                "name": c.and_then(|c| c.name.clone()),
                "text": conv.text,
                "orders": vars.orders.len(),
                "points": vars.points,
                "rank": vars.rank,
            });
            match self.inner.http.post(url.clone()).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(target: "enishi::chat", status = r.status().as_u16(), "the staff webhook refused the hand-off")
                }
                Err(e) => {
                    tracing::warn!(target: "enishi::chat", error = %e, "the staff webhook is unreachable")
                }
            }
        }
        tracing::info!(target: "enishi::chat", line_user = conv.line_user.as_str(), "handed off to staff");
        metrics::counter!("enishi_chat_handoffs_total").increment(1);
    }

    /// While staff have it, the user's messages are passed on to the staff group.
    pub(super) async fn forward_to_staff(&self, handoff: &HandOff, text: &str) {
        if let Some(group) = &self.inner.staff_group {
            let said = if text.is_empty() { "（スタンプ・画像など）" } else { text };
            self.push_group(group, format!("{}: {said}", handoff.line_user.as_str())).await;
        }
    }

    async fn push_group(&self, group: &LineGroupId, text: String) {
        let push = PushRequest::new(group.clone(), vec![Message::text(text)]);
        if let Err(e) = self.inner.line.push(push).await {
            tracing::warn!(target: "enishi::chat", error = %e, "could not tell the staff group");
        }
    }
}
