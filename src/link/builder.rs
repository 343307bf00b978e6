//! Configuring the account-link flow.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::LinkError;
use super::attempts::{AttemptLimit, AttemptLimiter};
use super::flow::{
    AccountLinker, DEFAULT_ACCESS_BASE_URL, DEFAULT_LINK_POSTBACK, DEFAULT_UNLINK_POSTBACK, Inner,
    LinkHook, LinkOutcomeHook,
};
use super::grant::IncentiveSetup;
use super::incentive::IncentiveLedger;
use super::replies::LinkReplyTexts;
use super::reward::LinkIncentive;
use super::store::{ConflictPolicy, DEFAULT_TICKET_TTL, LinkStore};
use super::write_back::{LinkWriteBack, WriteBackRetry};
use crate::commerce::{CommerceBackend, CustomerAuthenticator};
use crate::line::LineClient;

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
    shop_name: String,
    unlink_page: Option<String>,
    unlink_postback: String,
    incentive: Option<IncentiveSetup>,
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

    /// The shop's name, as the LINE replies say it (`{{ shop }}`; default `ショップ`).
    pub fn shop_name(mut self, name: impl Into<String>) -> Self {
        self.shop_name = name.into();
        self
    }

    /// The unlink page (e.g. `https://shop.example/unlink`): the unlink postback replies with
    /// a button to it carrying a one-time `ticket` (see [`AccountLinker::start_unlink`]).
    /// Without it the unlink postback is not answered.
    pub fn unlink_page(mut self, url: impl Into<String>) -> Self {
        self.unlink_page = Some(url.into());
        self
    }

    /// The postback data that starts unlinking (default [`DEFAULT_UNLINK_POSTBACK`]).
    pub fn unlink_postback_data(mut self, data: impl Into<String>) -> Self {
        self.unlink_postback = data.into();
        self
    }

    /// Rewards each customer's first link once (UC-02): points through `backend`'s
    /// `grant_points`, or a coupon code handed out; recorded in `ledger` so a replay, a second
    /// instance or a re-link never grants again.
    pub fn incentive(
        mut self,
        incentive: LinkIncentive,
        ledger: Arc<dyn IncentiveLedger>,
        backend: Arc<dyn CommerceBackend>,
    ) -> Self {
        self.incentive = Some(IncentiveSetup { incentive, ledger, backend });
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
        self.reply_texts.check()?;
        let unlink_page =
            self.unlink_page.as_deref().map(|u| parse("unlink page URL", u)).transpose()?;
        Ok(AccountLinker {
            inner: Arc::new(Inner {
                unlink_page,
                unlink_postback: self.unlink_postback,
                shop_name: self.shop_name,
                incentive: self.incentive,
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
            shop_name: "ショップ".into(),
            unlink_page: None,
            unlink_postback: DEFAULT_UNLINK_POSTBACK.into(),
            incentive: None,
        }
    }
}
