//! 定期 from the chat: skipping the next delivery, asked and confirmed by quick reply.

use chrono::{DateTime, Utc};

use super::ChatError;
use super::bot::{ChatBot, ChatOutcome};
use super::postback::PostbackCommand;
use super::store::Direction;
use super::texts::Vars;
use crate::LineUserId;
use crate::clock::format_jst_date_ja;
use crate::commerce::CommerceError;
use crate::line::message::{Action, Message, QuickReply, QuickReplyItem};
use crate::line::webhook::Event;

impl ChatBot {
    /// `skip_ask` (confirm) and `skip_do` (skip) for one of the user's own subscriptions.
    pub(super) async fn skip(
        &self,
        event: &Event,
        user: &LineUserId,
        cmd: &PostbackCommand,
        now: DateTime<Utc>,
    ) -> Result<ChatOutcome, ChatError> {
        let ignored = ChatOutcome { ignored: true, ..ChatOutcome::default() };
        let Some(sub_id) = cmd.param("sub") else { return Ok(ignored) };
        let customer = self.inner.context.customer_of(user).await.ok().flatten();
        // Only a subscription of this user's customer: a signed button forwarded elsewhere does
        // nothing.
        let Some(sub) =
            customer.as_ref().and_then(|c| c.subscriptions.iter().find(|s| s.id == sub_id))
        else {
            return Ok(ignored);
        };
        let vars = Vars {
            item: sub.items.first().and_then(|i| i.name.clone()).unwrap_or_else(|| "定期便".into()),
            date: sub.next_delivery_at.map_or_else(|| "未定".into(), format_jst_date_ja),
            ..Vars::default()
        };
        let (text, buttons) = if cmd.action == "skip_ask" {
            let yes = self.inner.signer.sign("skip_do", &[("sub", sub_id)]);
            let no = self.inner.signer.sign("intent", &[("i", "help")]);
            let buttons = QuickReply::new([
                QuickReplyItem::new(Action::postback("スキップする", yes)),
                QuickReplyItem::new(Action::postback("やめる", no)),
            ]);
            (self.say("skip_ask", &vars), Some(buttons))
        } else {
            let key = match &self.inner.commerce {
                None => "skip_unavailable",
                Some(shop) => match shop.skip_next_delivery(sub_id).await {
                    Ok(()) => {
                        tracing::info!(target: "enishi::chat", subscription = sub_id, "next delivery skipped from the chat");
                        "skip_done"
                    }
                    Err(CommerceError::NotImplemented { .. }) => "skip_unavailable",
                    Err(e) => {
                        tracing::warn!(target: "enishi::chat", subscription = sub_id, error = %e, "the skip failed");
                        "skip_failed"
                    }
                },
            };
            (self.say(key, &vars), None)
        };
        let mut message = Message::text(text.clone());
        if let Some(buttons) = buttons {
            message = message.with_quick_reply(buttons);
        }
        let (replied, pushed) = self.send(event, user, vec![message]).await?;
        let customer_id = customer.and_then(|c| c.id);
        let kind = if pushed { "push" } else { "reply" };
        self.log(user, customer_id, Direction::Outbound, kind, &text, Some("skip_next"), now)
            .await?;
        Ok(ChatOutcome {
            intent: Some("skip_next".into()),
            replied,
            pushed,
            ..ChatOutcome::default()
        })
    }
}
