//! Unlinking from LINE: the unlink postback replies with a button to the unlink page, which
//! carries a one-time ticket bound to the LINE user; the page confirms, then unlinks.

use chrono::{DateTime, Utc};
use url::Url;

use super::LinkError;
use super::flow::{AccountLinker, LinkEventOutcome};
use super::replies::{LinkReplyTexts, ReplyVars};
use super::secret::OneTimeSecret;
use super::store::{Link, LinkStoreError, Ticket, TicketKind};
use super::write_back::WriteBackTask;
use crate::line::message::{Action, ButtonsTemplate, Message};
use crate::line::{PushRequest, ReplyRequest};
use crate::{LineUserId, RetryKey};

/// An unlink finished on the unlink page ([`AccountLinker::finish_unlink`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Unlinked {
    /// The LINE user who asked.
    pub line_user: LineUserId,
    /// The link removed, or `None` when there was none.
    pub removed: Option<Link>,
    /// The background clearing of the link at the shop, when configured.
    pub write_back: Option<WriteBackTask>,
    /// Whether the user was told in LINE.
    pub told: bool,
}

impl AccountLinker {
    /// Issues a one-time unlink ticket for `line_user` and returns the unlink page URL
    /// carrying it (`?ticket=…`).
    ///
    /// # Errors
    /// [`LinkError::InvalidConfig`] without an unlink page; store errors.
    pub async fn start_unlink(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Url, LinkError> {
        let Some(page) = &self.inner.unlink_page else {
            return Err(LinkError::InvalidConfig {
                what: "unlink page URL",
                reason: "not set".into(),
            });
        };
        let secret = OneTimeSecret::generate();
        let ticket = Ticket::new(TicketKind::UnlinkToken, secret.key(), now, self.inner.ttl)
            .with_line_user(line_user.clone());
        self.inner.store.put_ticket(&ticket).await?;
        let mut url = page.clone();
        url.query_pairs_mut().append_pair("ticket", secret.expose());
        Ok(url)
    }

    /// The LINE user an unlink ticket belongs to, without spending it (for the confirm page).
    ///
    /// # Errors
    /// [`LinkError::Store`] with a reject reason for an unknown, used or expired ticket.
    pub async fn unlink_ticket_user(
        &self,
        ticket: &str,
        now: DateTime<Utc>,
    ) -> Result<LineUserId, LinkError> {
        let key = OneTimeSecret::from_received(ticket).key();
        let ticket = self.inner.store.peek_ticket(TicketKind::UnlinkToken, &key, None, now).await?;
        ticket_user(ticket.line_user)
    }

    /// Spends the unlink ticket and unlinks its LINE user (clearing the link at the shop when
    /// a write-back is configured), then tells the user in LINE (a push whose retry key is
    /// derived from the ticket, so a retried call is delivered once).
    ///
    /// # Errors
    /// [`LinkError::Store`] with a reject reason for an unknown, used or expired ticket; store
    /// errors.
    pub async fn finish_unlink(
        &self,
        ticket: &str,
        now: DateTime<Utc>,
    ) -> Result<Unlinked, LinkError> {
        let key = OneTimeSecret::from_received(ticket).key();
        let taken = self.inner.store.take_ticket(TicketKind::UnlinkToken, &key, None, now).await?;
        let line_user = ticket_user(taken.line_user)?;
        let (removed, write_back) = self.unlink_user(&line_user, true, now).await?;
        let vars = ReplyVars::with_incentive(&self.inner.shop_name, None);
        let mut told = false;
        if removed.is_some()
            && let Some(text) =
                LinkReplyTexts::render(self.inner.reply_texts.unlinked.as_deref(), &vars)
        {
            let retry = RetryKey::derive(&format!("enishi:unlinked:{}", key.as_str()));
            let push =
                PushRequest::new(line_user.clone(), vec![Message::text(text)]).retry_key(retry);
            match self.inner.client.push(push).await {
                Ok(_) => told = true,
                Err(e) => {
                    tracing::warn!(target: "enishi::link", error = %e, "could not tell the LINE user about the unlink")
                }
            }
        }
        tracing::info!(
            target: "enishi::link",
            line_user = line_user.as_str(),
            customer = removed.as_ref().map(|l| l.customer.as_str()),
            told,
            "unlinked on the unlink page"
        );
        metrics::counter!("enishi_unlinks_total", "linked" => if removed.is_some() { "yes" } else { "no" }).increment(1);
        Ok(Unlinked { line_user, removed, write_back, told })
    }

    /// The unlink message: the prompt and a button to the unlink page with a fresh ticket
    /// (the texts of [`LinkReplyTexts`]).
    ///
    /// # Errors
    /// [`LinkError::InvalidConfig`] without an unlink page; store errors.
    pub async fn unlink_message(
        &self,
        user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Message, LinkError> {
        let texts = &self.inner.reply_texts;
        let url = self.start_unlink(user, now).await?;
        let vars = ReplyVars::with_incentive(&self.inner.shop_name, None);
        let prompt = LinkReplyTexts::render(texts.unlink_prompt.as_deref(), &vars)
            .unwrap_or_else(|| texts.unlink_label.clone());
        Ok(Message::template(
            texts.unlink_label.clone(),
            ButtonsTemplate::new(prompt)
                .with_actions([Action::uri(&texts.unlink_label, url.as_str())]),
        ))
    }

    /// The unlink postback: replies with [`unlink_message`](Self::unlink_message) (nothing
    /// when no unlink page is configured).
    pub(super) async fn reply_unlink_message(
        &self,
        user: &LineUserId,
        reply_token: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkEventOutcome, LinkError> {
        if self.inner.unlink_page.is_none() {
            return Ok(LinkEventOutcome::Ignored);
        }
        let message = self.unlink_message(user, now).await?;
        self.inner
            .client
            .reply(ReplyRequest::new(reply_token.to_owned(), vec![message]))
            .await
            .map_err(LinkError::Line)?;
        Ok(LinkEventOutcome::UnlinkStarted)
    }
}

fn ticket_user(user: Option<LineUserId>) -> Result<LineUserId, LinkError> {
    user.ok_or_else(|| {
        LinkError::Store(LinkStoreError::Corrupt("an unlink ticket without a LINE user".into()))
    })
}
