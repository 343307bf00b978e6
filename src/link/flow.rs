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
use super::attempts::{AttemptLimit, AttemptLimiter};
use super::secret::OneTimeSecret;
use super::store::{
    ConflictPolicy, DEFAULT_TICKET_TTL, Link, LinkConflict, LinkOutcome, LinkSource, LinkStore,
    LinkStoreError, RejectReason, Ticket, TicketKind,
};
use super::write_back::{LinkWriteBack, WriteBackRetry, WriteBackTask};
use crate::commerce::CustomerAuthenticator;
use crate::line::message::{Action, Message};
use crate::line::webhook::{Event, EventKind, LinkResult};
use crate::line::{Bounds, LineClient, LinkToken, ReplyRequest, RichMenu, RichMenuSize};
use crate::{CustomerId, LineUserId};

/// LINE's account-link dialog host.
pub const DEFAULT_ACCESS_BASE_URL: &str = "https://access.line.me";

/// The postback data [`link_rich_menu`] sends and [`AccountLinker::handle_event`] answers.
pub const DEFAULT_LINK_POSTBACK: &str = "enishi:link";

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
}

/// Host hook fired once per `accountLink` event with a final outcome, success or not (a store
/// failure, which a redelivery may fix, is not final and not reported).
#[async_trait::async_trait]
pub trait LinkOutcomeHook: Send + Sync + fmt::Debug + 'static {
    /// An account link ended.
    async fn on_account_link(&self, report: &AccountLinkReport);
}

/// What enishi replies in LINE after an `accountLink` event (with the event's reply token;
/// LINE sends none with a failed link). `None` sends nothing. The defaults are Japanese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReplyTexts {
    /// After the link was stored.
    pub linked: Option<String>,
    /// After a conflict: the accounts are linked to others; contact the shop.
    pub conflict: Option<String>,
    /// After a rejected nonce (forged, used, expired, another user's): start again.
    pub rejected: Option<String>,
}

impl Default for LinkReplyTexts {
    fn default() -> Self {
        Self {
            linked: Some(
                "ショップのアカウントと連携しました。連携はいつでも解除できます。".into(),
            ),
            conflict: Some(
                "アカウント連携ができませんでした。このLINEアカウントかショップのアカウントが、\
                 すでに別のアカウントと連携されています。お手数ですが、ショップまでお問い合わせください。"
                    .into(),
            ),
            rejected: Some(
                "アカウント連携ができませんでした。手続きの有効期限が切れたか、無効な手続きです。\
                 お手数ですが、リッチメニューからもう一度お試しください。"
                    .into(),
            ),
        }
    }
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

/// Configures an [`AccountLinker`]. Setters never fail; [`build`](Self::build) reports the
/// first bad value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct AccountLinkerBuilder {
    client: LineClient,
    store: Arc<dyn LinkStore>,
    link_page: String,
    access_base: String,
    redirects: Vec<String>,
    policy: ConflictPolicy,
    ttl: Duration,
    authenticator: Option<Arc<dyn CustomerAuthenticator>>,
    hook: Option<Arc<dyn LinkHook>>,
    outcome_hook: Option<Arc<dyn LinkOutcomeHook>>,
    write_back: Option<Arc<dyn LinkWriteBack>>,
    retry: WriteBackRetry,
    postback: String,
    message_text: String,
    button_label: String,
    reply_texts: LinkReplyTexts,
    attempt_limit: Option<AttemptLimit>,
}

impl fmt::Debug for AccountLinkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountLinkerBuilder")
            .field("link_page", &self.link_page)
            .field("access_base", &self.access_base)
            .finish_non_exhaustive()
    }
}

impl AccountLinkerBuilder {
    /// LINE's dialog host (default [`DEFAULT_ACCESS_BASE_URL`]; tests point it at a fake).
    pub fn access_base_url(mut self, url: impl Into<String>) -> Self {
        self.access_base = url.into();
        self
    }

    /// Allows redirecting to `url` after a step (any URL starting with it, same origin).
    pub fn allow_redirect(mut self, url: impl Into<String>) -> Self {
        self.redirects.push(url.into());
        self
    }

    /// What to do with conflicting links (default [`ConflictPolicy::Reject`]).
    pub fn conflict_policy(mut self, policy: ConflictPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Lifetime of link-token and nonce tickets (default 10 minutes, LINE's link-token life).
    pub fn ticket_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Lets [`AccountLinker::complete_with_password`] check email + password.
    pub fn authenticator(mut self, auth: Arc<dyn CustomerAuthenticator>) -> Self {
        self.authenticator = Some(auth);
        self
    }

    /// A hook fired once per new link.
    pub fn hook(mut self, hook: Arc<dyn LinkHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// A hook fired with every final `accountLink` outcome: linked, conflict, rejected, failed.
    pub fn outcome_hook(mut self, hook: Arc<dyn LinkOutcomeHook>) -> Self {
        self.outcome_hook = Some(hook);
        self
    }

    /// What to reply in LINE after an `accountLink` event (default [`LinkReplyTexts::default`]).
    pub fn reply_texts(mut self, texts: LinkReplyTexts) -> Self {
        self.reply_texts = texts;
        self
    }

    /// Password attempts allowed per client address in
    /// [`AccountLinker::complete_with_password`] (default [`AttemptLimit::default`]:
    /// 10 per 15 minutes).
    pub fn password_attempt_limit(mut self, limit: AttemptLimit) -> Self {
        self.attempt_limit = Some(limit);
        self
    }

    /// No per-address limit on password attempts (the host limits them itself).
    pub fn without_password_attempt_limit(mut self) -> Self {
        self.attempt_limit = None;
        self
    }

    /// Writes links back to the commerce backend, retried in the background.
    pub fn write_back(mut self, write_back: Arc<dyn LinkWriteBack>, retry: WriteBackRetry) -> Self {
        self.write_back = Some(write_back);
        self.retry = retry;
        self
    }

    /// The postback data that starts the flow (default [`DEFAULT_LINK_POSTBACK`]).
    pub fn postback_data(mut self, data: impl Into<String>) -> Self {
        self.postback = data.into();
        self
    }

    /// The text and button label of the reply carrying the link URL.
    pub fn link_message(mut self, text: impl Into<String>, label: impl Into<String>) -> Self {
        self.message_text = text.into();
        self.button_label = label.into();
        self
    }

    /// Builds the linker.
    ///
    /// # Errors
    /// [`LinkError::InvalidConfig`] for an unparsable or non-HTTP(S) URL or a zero TTL.
    pub fn build(self) -> Result<AccountLinker, LinkError> {
        let parse = |what: &'static str, s: &str| {
            let url = Url::parse(s)
                .map_err(|e| LinkError::InvalidConfig { what, reason: format!("{s:?}: {e}") })?;
            if matches!(url.scheme(), "http" | "https") && url.host().is_some() {
                Ok(url)
            } else {
                Err(LinkError::InvalidConfig {
                    what,
                    reason: format!("{s:?} is not an http(s) URL"),
                })
            }
        };
        if self.ttl.is_zero() {
            return Err(LinkError::InvalidConfig {
                what: "ticket TTL",
                reason: "must be > 0".into(),
            });
        }
        Ok(AccountLinker {
            inner: Arc::new(Inner {
                link_page: parse("link page URL", &self.link_page)?,
                access_base: parse("access base URL", &self.access_base)?,
                redirects: self
                    .redirects
                    .iter()
                    .map(|r| parse("redirect URL", r))
                    .collect::<Result<_, _>>()?,
                client: self.client,
                store: self.store,
                policy: self.policy,
                ttl: self.ttl,
                authenticator: self.authenticator,
                hook: self.hook,
                outcome_hook: self.outcome_hook,
                write_back: self.write_back,
                retry: self.retry,
                postback: self.postback,
                message_text: self.message_text,
                button_label: self.button_label,
                reply_texts: self.reply_texts,
                attempts: self.attempt_limit.map(AttemptLimiter::new),
            }),
        })
    }
}

impl AccountLinker {
    /// A builder. `link_page` is the shop's page that logs the customer in; enishi appends
    /// `linkToken=…` to it.
    pub fn builder(
        client: LineClient,
        store: Arc<dyn LinkStore>,
        link_page: impl Into<String>,
    ) -> AccountLinkerBuilder {
        AccountLinkerBuilder {
            client,
            store,
            link_page: link_page.into(),
            access_base: DEFAULT_ACCESS_BASE_URL.into(),
            redirects: Vec::new(),
            policy: ConflictPolicy::Reject,
            ttl: DEFAULT_TICKET_TTL,
            authenticator: None,
            hook: None,
            outcome_hook: None,
            write_back: None,
            retry: WriteBackRetry::default(),
            postback: DEFAULT_LINK_POSTBACK.into(),
            message_text: "ショップのアカウントと連携すると、お得な情報をお届けします。連携はいつでも解除できます。".into(),
            button_label: "アカウント連携".into(),
            reply_texts: LinkReplyTexts::default(),
            attempt_limit: Some(AttemptLimit::default()),
        }
    }

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

    /// Step 2: the host authenticated `customer` on the link page; consumes the link token,
    /// binds a fresh nonce to the customer and the token's LINE user, and returns LINE's
    /// account-link dialog URL to redirect the browser to.
    ///
    /// # Errors
    /// [`LinkError::Store`] with a [`super::RejectReason`] for an unknown, used or expired
    /// link token (nothing written); store errors.
    pub async fn complete_login(
        &self,
        link_token: &LinkToken,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<NonceIssued, LinkError> {
        let key = OneTimeSecret::from_received(link_token.expose()).key();
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
                let (outcome, customer) = match result {
                    Ok((outcome, ticket)) => (outcome, ticket.customer),
                    Err(LinkStoreError::Conflict(c)) => {
                        let customer = Some(c.customer.clone());
                        (AccountLinkOutcome::Conflict(c), customer)
                    }
                    Err(LinkStoreError::Rejected { reason, .. }) => {
                        (AccountLinkOutcome::Rejected { reason }, None)
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
                self.report_account_link(event, user, customer, outcome).await
            }
            EventKind::Follow(_) | EventKind::Unfollow => {
                let Some(user) = user else { return Ok(LinkEventOutcome::Ignored) };
                let following = matches!(event.kind, EventKind::Follow(_));
                self.inner.store.set_following(&user, following, at).await?;
                Ok(LinkEventOutcome::FollowChanged { line_user: user, following })
            }
            EventKind::Postback(p) if p.data == self.inner.postback => {
                let Some(user) = user else { return Ok(LinkEventOutcome::Ignored) };
                let started = self.start(&user, now).await?;
                if let Some(token) = &event.reply_token {
                    let message =
                        started.message(&self.inner.message_text, &self.inner.button_label);
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
    ) -> Result<(LinkOutcome, Option<WriteBackTask>), LinkError> {
        let outcome =
            self.inner.store.link(line_user, customer, source, self.inner.policy, now).await?;
        let task = self.after_link(&outcome).await;
        Ok((outcome, task))
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
    /// link ended, then returns the outcome as `handle_event` always did.
    async fn report_account_link(
        &self,
        event: &Event,
        line_user: Option<LineUserId>,
        customer: Option<CustomerId>,
        outcome: AccountLinkOutcome,
    ) -> Result<LinkEventOutcome, LinkError> {
        let texts = &self.inner.reply_texts;
        let text = match &outcome {
            AccountLinkOutcome::Linked(_) => texts.linked.as_deref(),
            AccountLinkOutcome::Conflict(_) => texts.conflict.as_deref(),
            // A redelivered or duplicated event of a link that worked presents a used nonce:
            // telling that user "it failed" would be the very lie this reply exists to avoid.
            AccountLinkOutcome::Rejected { reason: RejectReason::Replayed }
                if event.is_redelivery() || self.is_linked(line_user.as_ref()).await =>
            {
                None
            }
            AccountLinkOutcome::Rejected { .. } => texts.rejected.as_deref(),
            AccountLinkOutcome::Failed => None,
        };
        let mut replied = false;
        if let (Some(text), Some(token)) = (text, &event.reply_token) {
            let request = ReplyRequest::new(token.clone(), vec![Message::text(text)]);
            match self.inner.client.reply(request).await {
                Ok(_) => replied = true,
                // The outcome stands either way; a redelivery could not change it.
                Err(e) => tracing::warn!(
                    target: "enishi::link",
                    outcome = outcome.label(),
                    error = %e,
                    "could not reply to the LINE user after the account link"
                ),
            }
        }
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
        let report = AccountLinkReport { outcome, line_user, customer, replied };
        if let Some(hook) = &self.inner.outcome_hook {
            hook.on_account_link(&report).await;
        }
        match report.outcome {
            AccountLinkOutcome::Linked(outcome) => {
                let write_back = self.after_link(&outcome).await;
                Ok(LinkEventOutcome::Linked { outcome, write_back })
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

    async fn is_linked(&self, line_user: Option<&LineUserId>) -> bool {
        match line_user {
            Some(u) => matches!(self.inner.store.link_of_user(u).await, Ok(Some(_))),
            None => false,
        }
    }

    async fn after_link(&self, outcome: &LinkOutcome) -> Option<WriteBackTask> {
        if !outcome.is_new() {
            return None;
        }
        if let Some(hook) = &self.inner.hook {
            hook.on_new_link(outcome).await;
        }
        // A link read from the backend is already there: writing it back would be a no-op.
        if outcome.link().source == LinkSource::Backend {
            return None;
        }
        self.inner
            .write_back
            .as_ref()
            .map(|wb| self.spawn_write_back(Arc::clone(wb), outcome.link().clone(), true))
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
