//! The Messaging API account-link flow driver (feature `client`).
//!
//! ```text
//! Start ──issue link token──▶ LinkStarted ──customer logs in──▶ NonceIssued ──accountLink ok──▶ Linked
//!                                                                    └──accountLink failed──▶ Failed
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use super::LinkError;
use super::attempts::AttemptLimiter;
use super::grant::{IncentiveOutcome, IncentiveSetup};
use super::replies::{LinkReplyTexts, ReplyVars};
use super::secret::OneTimeSecret;
use super::store::{
    ConflictPolicy, Link, LinkConflict, LinkOutcome, LinkSource, LinkStore, LinkStoreError,
    RejectReason, Ticket, TicketKind,
};
use super::write_back::{LinkWriteBack, WriteBackRetry, WriteBackTask};
use crate::commerce::CustomerAuthenticator;
use crate::line::message::{Action, Message};
use crate::line::webhook::{Event, EventKind, LinkResult};
use crate::line::{
    Bounds, LineClient, LinkToken, PushRequest, ReplyRequest, RichMenu, RichMenuSize,
};
use crate::{CustomerId, LineUserId, RetryKey};

/// LINE's account-link dialog host.
pub const DEFAULT_ACCESS_BASE_URL: &str = "https://access.line.me";

/// The postback data [`link_rich_menu`] sends and [`AccountLinker::handle_event`] answers.
pub const DEFAULT_LINK_POSTBACK: &str = "enishi:link";

/// The postback data that starts unlinking (an "unlink" rich-menu area sends it).
pub const DEFAULT_UNLINK_POSTBACK: &str = "enishi:unlink";

/// How an account link ended (the `accountLink` webhook event, step 3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountLinkOutcome {
    /// The link was stored (or already existed).
    Linked(LinkOutcome),
    /// The LINE user or the customer is linked to someone else (policy
    /// [`ConflictPolicy::Reject`]): nothing changed; the customer should contact the shop.
    Conflict(LinkConflict),
    /// The nonce was unknown (forged), already used (replayed), expired or issued for another
    /// LINE user: nothing was written.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// LINE reported `link.result = failed` (e.g. someone else opened the dialog).
    Failed,
}

impl AccountLinkOutcome {
    /// The `outcome` label of logs and metrics: `linked`, `already_linked`, `replaced`,
    /// `conflict`, `rejected` or `failed`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Linked(LinkOutcome::Linked(_)) => "linked",
            Self::Linked(LinkOutcome::AlreadyLinked(_)) => "already_linked",
            Self::Linked(LinkOutcome::Replaced { .. }) => "replaced",
            Self::Conflict(_) => "conflict",
            Self::Rejected { .. } => "rejected",
            Self::Failed => "failed",
        }
    }

    /// The `reason` label: `unknown`, `replayed`, `expired` or `mismatched` for a rejection,
    /// `none` otherwise.
    #[must_use]
    pub fn reason_label(&self) -> &'static str {
        match self {
            Self::Rejected { reason: RejectReason::Unknown } => "unknown",
            Self::Rejected { reason: RejectReason::Replayed } => "replayed",
            Self::Rejected { reason: RejectReason::Expired } => "expired",
            Self::Rejected { reason: RejectReason::Mismatched } => "mismatched",
            _ => "none",
        }
    }
}

/// One account-link outcome, as reported to a [`LinkOutcomeHook`]. Never carries the nonce or
/// the link token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountLinkReport {
    /// What happened.
    pub outcome: AccountLinkOutcome,
    /// The LINE user, when the event names one (a failed link does not).
    pub line_user: Option<LineUserId>,
    /// The customer, when known (the link's, the refused link's, or the failed nonce's).
    pub customer: Option<CustomerId>,
    /// Whether enishi replied to the user in LINE (see [`LinkReplyTexts`]).
    pub replied: bool,
    /// The link incentive's outcome, for a new link when one is configured.
    pub incentive: Option<IncentiveOutcome>,
}

/// Host hook fired once per `accountLink` event with a final outcome, success or not (a store
/// failure, which a redelivery may fix, is not final and not reported).
#[async_trait::async_trait]
pub trait LinkOutcomeHook: Send + Sync + fmt::Debug + 'static {
    /// An account link ended.
    async fn on_account_link(&self, report: &AccountLinkReport);
}

/// Host hook fired once per **new** link (e.g. grant points on first link). A webhook
/// redelivery presents a consumed nonce and never reaches the hook again.
#[async_trait::async_trait]
pub trait LinkHook: Send + Sync + fmt::Debug + 'static {
    /// A new link was stored.
    async fn on_new_link(&self, outcome: &LinkOutcome);
}

/// Step 1 done: a link token was issued for a LINE user.
#[derive(Clone)]
#[non_exhaustive]
pub struct LinkStarted {
    /// The LINE user.
    pub line_user: LineUserId,
    /// The shop's link page with `linkToken` in its query (treat as a secret: single use).
    pub link_url: Url,
    /// When the link token (and this URL) stops working.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for LinkStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkStarted")
            .field("line_user", &self.line_user)
            .field("link_url", &"<redacted: carries the link token>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl LinkStarted {
    /// A buttons-template message carrying the link URL, for replying to the user.
    #[must_use]
    pub fn message(&self, text: &str, label: &str) -> Message {
        link_buttons(self.link_url.as_str(), text, label)
    }
}

/// Step 2 done: the customer logged in; send the browser to `redirect` (LINE's dialog).
#[derive(Clone)]
#[non_exhaustive]
pub struct NonceIssued {
    /// The customer bound to the nonce.
    pub customer: CustomerId,
    /// The LINE user the link token was issued for.
    pub line_user: LineUserId,
    /// `https://access.line.me/dialog/bot/accountLink?linkToken=…&nonce=…`.
    pub redirect: Url,
    /// When the nonce expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NonceIssued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssued")
            .field("customer", &self.customer)
            .field("line_user", &self.line_user)
            .field("redirect", &"<redacted: carries the link token and nonce>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What [`AccountLinker::handle_event`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkEventOutcome {
    /// `accountLink` ok: the link was stored (or already existed).
    Linked {
        /// What the store did.
        outcome: LinkOutcome,
        /// The background write-back, when configured and the link is new.
        write_back: Option<WriteBackTask>,
        /// The link incentive's outcome, for a new link when one is configured.
        incentive: Option<IncentiveOutcome>,
    },
    /// `accountLink` failed: the nonce was consumed, nothing linked.
    Failed {
        /// The customer the nonce was bound to.
        customer: Option<CustomerId>,
    },
    /// `follow` / `unfollow`: the follow status was updated.
    FollowChanged {
        /// The user.
        line_user: LineUserId,
        /// Whether the user now follows the account.
        following: bool,
    },
    /// The link postback: a link token was issued and the link message replied.
    Started(LinkStarted),
    /// The unlink postback: an unlink ticket was issued and the unlink message replied.
    UnlinkStarted,
    /// Not an event the link flow handles.
    Ignored,
}

/// Drives the account-link flow. Cheap to clone.
#[derive(Clone)]
pub struct AccountLinker {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) client: LineClient,
    pub(super) store: Arc<dyn LinkStore>,
    pub(super) link_page: Url,
    pub(super) access_base: Url,
    pub(super) redirects: Vec<Url>,
    pub(super) policy: ConflictPolicy,
    pub(super) ttl: Duration,
    pub(super) authenticator: Option<Arc<dyn CustomerAuthenticator>>,
    pub(super) hook: Option<Arc<dyn LinkHook>>,
    pub(super) outcome_hook: Option<Arc<dyn LinkOutcomeHook>>,
    pub(super) write_back: Option<Arc<dyn LinkWriteBack>>,
    pub(super) retry: WriteBackRetry,
    pub(super) postback: String,
    pub(super) message_text: String,
    pub(super) button_label: String,
    pub(super) reply_texts: LinkReplyTexts,
    pub(super) attempts: Option<AttemptLimiter>,
    pub(super) shop_name: String,
    pub(super) unlink_page: Option<Url>,
    pub(super) unlink_postback: String,
    pub(super) incentive: Option<IncentiveSetup>,
}

/// A link made directly ([`AccountLinker::link_direct`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct DirectLink {
    /// What the store did.
    pub outcome: LinkOutcome,
    /// The background write-back, when configured and the link is new.
    pub write_back: Option<WriteBackTask>,
    /// The link incentive's outcome, for a new link when one is configured.
    pub incentive: Option<IncentiveOutcome>,
}

impl fmt::Debug for AccountLinker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("AccountLinker")
            .field("store", &i.store)
            .field("link_page", &i.link_page.as_str())
            .field("access_base", &i.access_base.as_str())
            .field("policy", &i.policy)
            .field("ttl", &i.ttl)
            .finish_non_exhaustive()
    }
}

impl AccountLinker {
    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn LinkStore> {
        &self.inner.store
    }

    /// Step 1: issues a link token for `line_user` and returns the link page URL carrying it.
    ///
    /// # Errors
    /// [`LinkError::Line`] when LINE refuses (e.g. the user is not a friend); store errors.
    pub async fn start(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<LinkStarted, LinkError> {
        let token = self.inner.client.issue_link_token(line_user).await.map_err(LinkError::Line)?;
        let ticket = Ticket::new(
            TicketKind::LinkToken,
            OneTimeSecret::from_received(token.expose()).key(),
            now,
            self.inner.ttl,
        )
        .with_line_user(line_user.clone());
        self.inner.store.put_ticket(&ticket).await?;
        let mut link_url = self.inner.link_page.clone();
        link_url.query_pairs_mut().append_pair("linkToken", token.expose());
        Ok(LinkStarted { line_user: line_user.clone(), link_url, expires_at: ticket.expires_at })
    }

    /// The link message for a started link: the configured text and button
    /// ([`AccountLinkerBuilder::link_message`](super::AccountLinkerBuilder::link_message)) opening its link URL.
    #[must_use]
    pub fn link_message(&self, started: &LinkStarted) -> Message {
        started.message(&self.inner.message_text, &self.inner.button_label)
    }

    /// Step 2: the host authenticated `customer` on the link page; consumes the link token,
    /// binds a fresh nonce to the customer and the token's LINE user, and returns LINE's
    /// account-link dialog URL to redirect the browser to.
    ///
    /// # Errors
    /// [`LinkError::Store`] with a [`super::RejectReason`] for an unknown, used or expired
    /// link token (nothing written); [`LinkStoreError::Conflict`] under
    /// [`ConflictPolicy::Reject`] when the LINE user or the customer is linked to someone
    /// else (the link token stays usable); store errors.
    pub async fn complete_login(
        &self,
        link_token: &LinkToken,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<NonceIssued, LinkError> {
        let key = OneTimeSecret::from_received(link_token.expose()).key();
        // A conflict leaves the link token usable: the customer may have signed in with
        // another of their accounts by mistake.
        let peeked = self.inner.store.peek_ticket(TicketKind::LinkToken, &key, None, now).await?;
        if let Some(user) = &peeked.line_user {
            self.check_conflict(user, customer).await?;
        }
        let token_ticket =
            self.inner.store.take_ticket(TicketKind::LinkToken, &key, None, now).await?;
        let line_user = token_ticket.line_user.ok_or_else(|| {
            LinkError::Store(LinkStoreError::Corrupt("a link token without a LINE user".into()))
        })?;
        let nonce = OneTimeSecret::generate();
        // The nonce lives no longer than the link token it travels with.
        let ticket = Ticket::new(TicketKind::Nonce, nonce.key(), now, self.inner.ttl)
            .with_customer(customer.clone())
            .with_line_user(line_user.clone());
        let mut ticket = ticket;
        ticket.expires_at = ticket.expires_at.min(token_ticket.expires_at);
        self.inner.store.put_ticket(&ticket).await?;
        let mut redirect = self.inner.access_base.join("/dialog/bot/accountLink").map_err(|e| {
            LinkError::InvalidConfig { what: "access base URL", reason: e.to_string() }
        })?;
        redirect
            .query_pairs_mut()
            .append_pair("linkToken", link_token.expose())
            .append_pair("nonce", nonce.expose());
        Ok(NonceIssued {
            customer: customer.clone(),
            line_user,
            redirect,
            expires_at: ticket.expires_at,
        })
    }

    /// Handles a webhook event: `accountLink` (step 3), `follow`/`unfollow`, and the link
    /// postback (replies with the link message). Other events are [`LinkEventOutcome::Ignored`].
    ///
    /// Every final `accountLink` outcome, success or not, is replied to the user
    /// ([`LinkReplyTexts`]), logged (`tracing`, target `enishi::link`), counted
    /// (`enishi_link_outcomes_total{outcome, reason}`, `metrics` facade) and passed to the
    /// [`LinkOutcomeHook`] before this returns.
    ///
    /// # Errors
    /// [`LinkError::Store`] with a reject reason for an unknown, replayed (redelivered),
    /// expired or mismatched nonce (nothing written), a conflict, store and LINE errors.
    pub async fn handle_event(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<LinkEventOutcome, LinkError> {
        let at = event.time().unwrap_or(now);
        let user = event.source.as_ref().and_then(|s| s.line_user_id());
        match &event.kind {
            EventKind::AccountLink(link) => {
                let key = OneTimeSecret::from_received(link.nonce.as_str()).key();
                let result = match (&link.result, &user) {
                    (LinkResult::Ok, Some(user)) => self
                        .inner
                        .store
                        .redeem_nonce(&key, user, self.inner.policy, now)
                        .await
                        .map(|r| (AccountLinkOutcome::Linked(r.outcome), r.ticket)),
                    (LinkResult::Ok, None) => {
                        tracing::warn!(
                            target: "enishi::link",
                            outcome = "error",
                            reason = "missing_user",
                            "accountLink event without a source user: nothing linked"
                        );
                        outcome_counter("error", "missing_user");
                        return Err(LinkError::MissingUser);
                    }
                    _ => self
                        .inner
                        .store
                        .fail_nonce(&key, now)
                        .await
                        .map(|t| (AccountLinkOutcome::Failed, t)),
                };
                let (outcome, customer, ticket_user) = match result {
                    Ok((outcome, ticket)) => (outcome, ticket.customer, ticket.line_user),
                    Err(LinkStoreError::Conflict(c)) => {
                        let customer = Some(c.customer.clone());
                        (AccountLinkOutcome::Conflict(c), customer, None)
                    }
                    Err(LinkStoreError::Rejected { reason, .. }) => {
                        (AccountLinkOutcome::Rejected { reason }, None, None)
                    }
                    Err(e) => {
                        // Not final: the event is answered with an error and may come again.
                        tracing::error!(
                            target: "enishi::link",
                            outcome = "error",
                            reason = "store",
                            error = %e,
                            "the account link could not be stored"
                        );
                        outcome_counter("error", "store");
                        return Err(e.into());
                    }
                };
                self.report_account_link(event, user, customer, outcome, ticket_user, now).await
            }
            EventKind::Follow(_) | EventKind::Unfollow => {
                let Some(user) = user else { return Ok(LinkEventOutcome::Ignored) };
                let following = matches!(event.kind, EventKind::Follow(_));
                self.inner.store.set_following(&user, following, at).await?;
                Ok(LinkEventOutcome::FollowChanged { line_user: user, following })
            }
            EventKind::Postback(p) if p.data == self.inner.unlink_postback => {
                let Some(user) = user else { return Ok(LinkEventOutcome::Ignored) };
                match &event.reply_token {
                    Some(token) => self.reply_unlink_message(&user, token, now).await,
                    None => Ok(LinkEventOutcome::Ignored),
                }
            }
            EventKind::Postback(p) if p.data == self.inner.postback => {
                let Some(user) = user else { return Ok(LinkEventOutcome::Ignored) };
                let started = self.start(&user, now).await?;
                if let Some(token) = &event.reply_token {
                    let message = self.link_message(&started);
                    self.inner
                        .client
                        .reply(ReplyRequest::new(token.clone(), vec![message]))
                        .await
                        .map_err(LinkError::Line)?;
                }
                Ok(LinkEventOutcome::Started(started))
            }
            _ => Ok(LinkEventOutcome::Ignored),
        }
    }

    /// Links directly (LINE Login, backend sync, admin), firing the hook and write-back for a
    /// new link like the account-link flow does. Links read from the commerce backend during
    /// sync (e.g. ecforce's own LINE ID field) use [`LinkSource::Backend`]: they are recorded
    /// with that source and not written back.
    ///
    /// # Errors
    /// [`LinkError::Store`] (a conflict under the reject policy; store errors).
    pub async fn link_direct(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        now: DateTime<Utc>,
    ) -> Result<DirectLink, LinkError> {
        let outcome =
            self.inner.store.link(line_user, customer, source, self.inner.policy, now).await?;
        let (write_back, incentive) = self.after_link(&outcome, now).await;
        Ok(DirectLink { outcome, write_back, incentive })
    }

    /// Unlinks a LINE user (LINE requires users can unlink at any time), optionally clearing
    /// the link in the commerce backend in the background.
    ///
    /// # Errors
    /// Store errors.
    pub async fn unlink_user(
        &self,
        line_user: &LineUserId,
        write_back: bool,
        now: DateTime<Utc>,
    ) -> Result<(Option<Link>, Option<WriteBackTask>), LinkError> {
        let removed = self.inner.store.unlink_user(line_user, now).await?;
        let task = match (&removed, write_back, &self.inner.write_back) {
            (Some(link), true, Some(wb)) => {
                Some(self.spawn_write_back(Arc::clone(wb), link.clone(), false))
            }
            _ => None,
        };
        Ok((removed, task))
    }

    /// Checks a redirect target against the configured URLs: same scheme, host and port, and
    /// the configured path or one under it (`/mypage` admits `/mypage/…`, not `/mypage-evil`).
    /// Guards against open redirects.
    ///
    /// # Errors
    /// [`LinkError::RedirectNotAllowed`].
    pub fn checked_redirect(&self, target: &str) -> Result<Url, LinkError> {
        let deny = || LinkError::RedirectNotAllowed(target.to_owned());
        let url = Url::parse(target).map_err(|_| deny())?;
        let ok = self.inner.redirects.iter().any(|allowed| {
            allowed.origin() == url.origin()
                && super::redirect::path_within(allowed.path(), url.path())
                && url.username().is_empty()
                && url.password().is_none()
        });
        if ok { Ok(url) } else { Err(deny()) }
    }

    /// Tells the user (LINE reply), the shop (log, metric) and the host (hook) how an account
    /// link ended, then returns the outcome as `handle_event` always did. A new link is
    /// rewarded (and written back) before the reply, so the reply can say so.
    async fn report_account_link(
        &self,
        event: &Event,
        line_user: Option<LineUserId>,
        customer: Option<CustomerId>,
        outcome: AccountLinkOutcome,
        ticket_user: Option<LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<LinkEventOutcome, LinkError> {
        let (write_back, incentive) = match &outcome {
            AccountLinkOutcome::Linked(linked) => self.after_link(linked, now).await,
            _ => (None, None),
        };
        let replied = self
            .tell_link_outcome(event, line_user.as_ref(), &outcome, incentive.as_ref(), ticket_user)
            .await;
        let (label, reason) = (outcome.label(), outcome.reason_label());
        let user = line_user.as_ref().map(LineUserId::as_str);
        let cust = customer.as_ref().map(CustomerId::as_str);
        if let AccountLinkOutcome::Linked(_) = &outcome {
            tracing::info!(
                target: "enishi::link",
                outcome = label, reason, line_user = user, customer = cust, replied,
                "account link stored"
            );
        } else {
            tracing::warn!(
                target: "enishi::link",
                outcome = label, reason, line_user = user, customer = cust, replied,
                "account link not stored"
            );
        }
        outcome_counter(label, reason);
        let report = AccountLinkReport { outcome, line_user, customer, replied, incentive };
        if let Some(hook) = &self.inner.outcome_hook {
            hook.on_account_link(&report).await;
        }
        match report.outcome {
            AccountLinkOutcome::Linked(outcome) => {
                Ok(LinkEventOutcome::Linked { outcome, write_back, incentive: report.incentive })
            }
            AccountLinkOutcome::Failed => {
                Ok(LinkEventOutcome::Failed { customer: report.customer })
            }
            AccountLinkOutcome::Conflict(c) => Err(LinkStoreError::Conflict(c).into()),
            AccountLinkOutcome::Rejected { reason } => {
                Err(LinkStoreError::Rejected { kind: TicketKind::Nonce, reason }.into())
            }
        }
    }

    /// Replies (or, for a failed link, pushes) the outcome to the user; whether it was sent.
    async fn tell_link_outcome(
        &self,
        event: &Event,
        line_user: Option<&LineUserId>,
        outcome: &AccountLinkOutcome,
        incentive: Option<&IncentiveOutcome>,
        ticket_user: Option<LineUserId>,
    ) -> bool {
        let texts = &self.inner.reply_texts;
        let granted = incentive.and_then(IncentiveOutcome::granted);
        let vars = ReplyVars::with_incentive(
            &self.inner.shop_name,
            granted.and(self.inner.incentive.as_ref().map(|s| &s.incentive)),
        );
        let render = |t: &Option<String>| LinkReplyTexts::render(t.as_deref(), &vars);
        let messages: Vec<String> = match outcome {
            AccountLinkOutcome::Linked(_) => {
                let reward = granted.and_then(|_| render(&texts.incentive));
                render(&texts.linked).into_iter().chain(reward).collect()
            }
            AccountLinkOutcome::Conflict(_) => render(&texts.conflict).into_iter().collect(),
            // A redelivered or duplicated event of a link that worked presents a used nonce:
            // telling that user "it failed" would be the very lie this reply exists to avoid.
            AccountLinkOutcome::Rejected { reason: RejectReason::Replayed }
                if event.is_redelivery() || self.is_linked(line_user).await =>
            {
                Vec::new()
            }
            AccountLinkOutcome::Rejected { .. } => render(&texts.rejected).into_iter().collect(),
            AccountLinkOutcome::Failed => {
                // LINE sends no reply token with a failed link: push to the user the link was
                // started for, once (the retry key is the event's own).
                return match (render(&texts.failed), ticket_user) {
                    (Some(text), Some(user)) => {
                        let mut push = PushRequest::new(user, vec![Message::text(text)]);
                        if let Some(id) = &event.webhook_event_id {
                            let key = format!("enishi:link-failed:{}", id.as_str());
                            push = push.retry_key(RetryKey::derive(&key));
                        }
                        self.send_or_warn(
                            self.inner.client.push(push).await.map(drop),
                            outcome.label(),
                        )
                    }
                    _ => false,
                };
            }
        };
        match (messages.is_empty(), &event.reply_token) {
            (false, Some(token)) => {
                let request = ReplyRequest::new(
                    token.clone(),
                    messages.into_iter().map(Message::text).collect(),
                );
                self.send_or_warn(self.inner.client.reply(request).await.map(drop), outcome.label())
            }
            _ => false,
        }
    }

    fn send_or_warn(
        &self,
        sent: Result<(), crate::line::LineError>,
        outcome: &'static str,
    ) -> bool {
        match sent {
            Ok(()) => true,
            // The outcome stands either way; a redelivery could not change it.
            Err(e) => {
                tracing::warn!(
                    target: "enishi::link",
                    outcome,
                    error = %e,
                    "could not tell the LINE user how the account link ended"
                );
                false
            }
        }
    }

    async fn is_linked(&self, line_user: Option<&LineUserId>) -> bool {
        match line_user {
            Some(u) => matches!(self.inner.store.link_of_user(u).await, Ok(Some(_))),
            None => false,
        }
    }

    /// Under [`ConflictPolicy::Reject`], refuses before LINE's dialog a link that the store
    /// would refuse after it: the customer learns it on the page, with who to contact.
    async fn check_conflict(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
    ) -> Result<(), LinkError> {
        if self.inner.policy != ConflictPolicy::Reject {
            return Ok(());
        }
        let user_link = self.inner.store.link_of_user(line_user).await?;
        let customer_link = self.inner.store.link_of_customer(customer).await?;
        let user_linked_to = user_link.map(|l| l.customer).filter(|c| c != customer);
        let customer_linked_to = customer_link.map(|l| l.line_user).filter(|u| u != line_user);
        if user_linked_to.is_none() && customer_linked_to.is_none() {
            return Ok(());
        }
        Err(LinkStoreError::Conflict(LinkConflict {
            line_user: line_user.clone(),
            customer: customer.clone(),
            user_linked_to,
            customer_linked_to,
        })
        .into())
    }

    /// After a stored link: for a new one, the hook, the incentive and the write-back.
    async fn after_link(
        &self,
        outcome: &LinkOutcome,
        now: DateTime<Utc>,
    ) -> (Option<WriteBackTask>, Option<IncentiveOutcome>) {
        if !outcome.is_new() {
            return (None, None);
        }
        if let Some(hook) = &self.inner.hook {
            hook.on_new_link(outcome).await;
        }
        let link = outcome.link();
        // Links enishi did not make (read from the shop, set by an admin) are not rewarded.
        let incentive = match (&self.inner.incentive, link.source) {
            (Some(setup), LinkSource::AccountLink | LinkSource::LineLogin) => {
                Some(setup.grant(&link.customer, now).await)
            }
            _ => None,
        };
        // A link read from the backend is already there: writing it back would be a no-op.
        if link.source == LinkSource::Backend {
            return (None, incentive);
        }
        let write_back = self
            .inner
            .write_back
            .as_ref()
            .map(|wb| self.spawn_write_back(Arc::clone(wb), link.clone(), true));
        (write_back, incentive)
    }

    fn spawn_write_back(
        &self,
        wb: Arc<dyn LinkWriteBack>,
        link: Link,
        write: bool,
    ) -> WriteBackTask {
        super::write_back::spawn(wb, link, write, self.inner.retry.rule())
    }
}

/// Counts one account-link outcome (`enishi_link_outcomes_total{outcome, reason}`) through the
/// `metrics` facade: a no-op until the host installs a recorder.
fn outcome_counter(outcome: &'static str, reason: &'static str) {
    metrics::counter!("enishi_link_outcomes_total", "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// A buttons-template message whose button opens `link_url`.
#[must_use]
pub fn link_buttons(link_url: &str, text: &str, label: &str) -> Message {
    Message::template(
        "アカウント連携",
        crate::line::message::ButtonsTemplate::new(text)
            .with_actions([Action::uri(label, link_url)]),
    )
}

/// A half-size rich menu with one full-width area that sends the link postback
/// ([`DEFAULT_LINK_POSTBACK`] unless the linker was configured otherwise). Upload a
/// 2500×843 image for it and link it to unlinked users (or make it the default).
pub fn link_rich_menu(chat_bar_text: &str, label: &str, postback_data: &str) -> RichMenu {
    RichMenu::new("enishi account link", chat_bar_text, RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 2500, 843), Action::postback(label, postback_data))
        .selected(true)
}
