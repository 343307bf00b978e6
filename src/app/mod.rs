//! The front door: one [`Enishi`] app wires LINE, the shop, the storage and the policy into
//! the whole loop (feature `app`).
//!
//! ```no_run
//! # async fn run(line: enishi::line::LineClient,
//! #     shop: std::sync::Arc<dyn enishi::commerce::CommerceBackend>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use enishi::app::Enishi;
//! use enishi::campaign::{Campaign, MessageTemplate};
//! use enishi::segment::SegmentDefinition;
//! use enishi::storage::Storage;
//!
//! let app = Enishi::builder()
//!     .line(line)
//!     .storage(Storage::from_url("sqlite://enishi.sqlite").await?)
//!     .commerce(shop)
//!     .build()?;
//! app.sync().await?;
//! let segment = SegmentDefinition::parse("line linked and orders count = 1")?;
//! let campaign = Campaign::new("f2".parse()?, [MessageTemplate::text("{{name}}さま、2回目は送料無料です")?]);
//! let plan = app.plan(&campaign, &segment).await?;
//! println!("{}", plan.dry_run());
//! let report = app.send(plan).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! Data flows one way: shop → [`sync`](Enishi::sync) → facts (with link and follow status
//! from the link store) → segment engine and scenario state → audience →
//! [`plan`](Enishi::plan) → journal → dispatcher → LINE. [`Enishi::run`] runs the loop as a
//! service; the lower modules stay public for hosts who assemble their own.

mod brain;
mod channels;
mod chat;
mod link_pages;
mod pages;
mod richmenus;
mod routes;
mod service;

pub use metrics_exporter_prometheus::PrometheusHandle;
pub use pages::{Brand, DEFAULT_LINE_URL, Pages, PagesBuilder, PagesError, Problem, View};
pub use routes::{SessionCustomer, install_prometheus};

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use brain::{SyncSummary, TickSummary};
pub use service::{RunOptions, RunReport, ScheduledCampaign};

use crate::CampaignId;
use crate::campaign::scenario::ScenarioSet;
use crate::campaign::{
    Campaign, DeliveryPolicy, DeliveryReport, DispatchError, Dispatcher, JournalError, LinkTracker,
    Plan, PlanError, TrackError,
};
use crate::clock::{Clock, SystemClock};
use crate::commerce::sync::SyncError;
use crate::commerce::{BoxError, CommerceBackend, CustomerAuthenticator};
use crate::line::LineClient;
use crate::line::webhook::ChannelSecret;
use crate::link::{AccountLinker, LinkError, LinkIncentive, LinkStoreError};
use crate::segment::{SegmentDefinition, SegmentError};
use crate::storage::{Storage, StorageError};

/// What the app could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The builder lacks a required part.
    #[error("the app needs {0}: set it on the builder")]
    Missing(&'static str),
    /// An invalid setting.
    #[error("invalid app setting: {0}")]
    Config(String),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the shop failed; the next sync resumes from the stored cursors.
    #[error("the shop sync failed")]
    Sync(#[from] SyncError),
    /// The synced shop could not be read back.
    #[error("the synced shop could not be read")]
    Dataset(#[source] BoxError),
    /// The link store failed.
    #[error(transparent)]
    Links(#[from] LinkStoreError),
    /// The link flow could not be set up.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A segment is invalid.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A campaign could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The delivery journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The dispatcher failed.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// Tracked links could not be set up.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// LINE Login could not be set up.
    #[error(transparent)]
    Login(#[from] crate::link::LoginError),
    /// The customer pages could not be built.
    #[error(transparent)]
    Pages(#[from] PagesError),
    /// The chatbot could not be set up.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    /// A rich-menu pass failed; the next pass finishes what was recorded.
    #[error(transparent)]
    RichMenu(#[from] crate::richmenu::RichMenuError),
}

/// The app's tick sends LINE only: a step with `channels` would be marked done without being
/// sent, so such a set is refused when the app is built rather than dropped at run time.
fn refuse_routed_steps(set: &ScenarioSet) -> Result<(), AppError> {
    for scenario in set.scenarios() {
        if let Some(step) = scenario.steps.iter().find(|s| s.channels.is_some()) {
            return Err(AppError::Config(format!(
                "scenario `{}` step `{}` has `channels`, which the app does not send (it sends \
                 LINE only): route such steps with ChannelPlanner::plan_scenario and a \
                 ChannelDispatcher (docs/channels.md), or remove `channels`",
                scenario.name(),
                step.name
            )));
        }
    }
    Ok(())
}

/// The app: see the [module documentation](self). Cheap to clone.
#[derive(Clone)]
pub struct Enishi {
    inner: Arc<Inner>,
}

struct Inner {
    line: LineClient,
    storage: Storage,
    commerce: Option<Arc<dyn CommerceBackend>>,
    policy: DeliveryPolicy,
    clock: Arc<dyn Clock>,
    secret: Option<ChannelSecret>,
    linker: Option<AccountLinker>,
    tracker: Option<LinkTracker>,
    dispatcher: Dispatcher,
    consent_attribute: Option<String>,
    forwarded_for: crate::link::ForwardedFor,
    check_segments: bool,
    line_login: Option<(crate::link::LineLogin, Arc<dyn routes::SessionCustomer>)>,
    pages: Pages,
    incentive: Option<LinkIncentive>,
    chat: Option<crate::chat::ChatBot>,
    /// When the chat log was last purged (hourly, on a tick).
    chat_purged: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    brain: tokio::sync::Mutex<brain::Brain>,
    campaigns: Mutex<BTreeSet<CampaignId>>,
    unsubscribe: Option<crate::channel::UnsubscribeLinks>,
    /// The webhook hub in front of the webhook route (see [`EnishiBuilder::hub`]).
    hub: Option<crate::hub::Hub>,
    /// Rich menus that follow the segments ([`EnishiBuilder::rich_menus`]).
    rich_menus: Option<richmenus::AppMenus>,
    /// The official account this app serves, one of several ([`EnishiBuilder::channel`]).
    channel: Option<crate::line::LineChannel>,
}

impl fmt::Debug for Enishi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enishi")
            .field("storage", &self.inner.storage)
            .field("commerce", &self.inner.commerce.is_some())
            .field("clock", &self.inner.clock)
            .field("linking", &self.inner.linker.is_some())
            .field("tracking", &self.inner.tracker.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Enishi`]; [`line`](Self::line) and [`storage`](Self::storage) are required.
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Default)]
pub struct EnishiBuilder {
    line: Option<LineClient>,
    storage: Option<Storage>,
    commerce: Option<Arc<dyn CommerceBackend>>,
    authenticator: Option<Arc<dyn CustomerAuthenticator>>,
    policy: Option<DeliveryPolicy>,
    clock: Option<Arc<dyn Clock>>,
    scenarios: Option<ScenarioSet>,
    secret: Option<ChannelSecret>,
    public_url: Option<String>,
    tracking_key: Option<Vec<u8>>,
    worker: Option<String>,
    concurrency: Option<usize>,
    consent_attribute: Option<String>,
    ticket_ttl: Option<Duration>,
    forwarded_for: crate::link::ForwardedFor,
    unchecked_segments: bool,
    line_login: Option<(crate::link::LineLoginBuilder, Arc<dyn routes::SessionCustomer>)>,
    pages: Option<Pages>,
    incentive: Option<LinkIncentive>,
    access_base_url: Option<String>,
    attempt_limit: Option<crate::link::AttemptLimit>,
    write_back: bool,
    chat: Option<(Vec<u8>, chat::ChatSetup)>,
    rank_ladder: Vec<(String, i64)>,
    unsubscribe: Option<crate::channel::UnsubscribeLinks>,
    hub: Option<crate::hub::Hub>,
    /// Rich menus that follow the segments.
    rich_menus: Option<richmenus::MenuSetup>,
    /// One official account of several.
    channel: Option<crate::line::LineChannel>,
}

impl fmt::Debug for EnishiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnishiBuilder")
            .field("storage", &self.storage)
            .field("public_url", &self.public_url)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl EnishiBuilder {
    /// The LINE client (required).
    pub fn line(mut self, client: LineClient) -> Self {
        self.line = Some(client);
        self
    }

    /// Where everything is kept (required; see [`Storage::from_url`]).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The shop (needed by [`Enishi::sync`]).
    pub fn commerce(mut self, backend: Arc<dyn CommerceBackend>) -> Self {
        self.commerce = Some(backend);
        self
    }

    /// Checks the e-mail and password customers sign in with on the link page.
    pub fn authenticator(mut self, authenticator: Arc<dyn CustomerAuthenticator>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Frequency cap, quiet hours and holdout, for campaigns and scenarios alike (default
    /// [`DeliveryPolicy::recommended`]).
    pub fn policy(mut self, policy: DeliveryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Where "now" comes from (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The step scenarios [`Enishi::tick`] runs.
    pub fn scenarios(mut self, set: ScenarioSet) -> Self {
        self.scenarios = Some(set);
        self
    }

    /// The channel secret webhooks are signed with (needed by [`Enishi::webhook_router`]).
    pub fn channel_secret(mut self, secret: ChannelSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The URL this app is reachable at, e.g. `https://line.example-shop.jp`: the link page
    /// is `{public_url}/link` and tracked links `{public_url}/t/…`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The key tracked links are signed with (with [`public_url`](Self::public_url): enables
    /// the tracked-link routes).
    pub fn tracking_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.tracking_key = Some(key.into());
        self
    }

    /// This process' worker name in the journal (default: the dispatcher's).
    pub fn worker(mut self, name: impl Into<String>) -> Self {
        self.worker = Some(name.into());
        self
    }

    /// Sends in flight per dispatcher run (default: the dispatcher's).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// The boolean attribute that records marketing consent (e.g. `opt_in`); without it,
    /// following the LINE account counts as consent.
    pub fn consent_attribute(mut self, name: impl Into<String>) -> Self {
        self.consent_attribute = Some(name.into());
        self
    }

    /// How long a link URL and its sign-in stay valid, on the app's clock (default: the
    /// linker's).
    pub fn link_ticket_ttl(mut self, ttl: Duration) -> Self {
        self.ticket_ttl = Some(ttl);
        self
    }

    /// Whether to believe `X-Forwarded-For` for the client address the link page limits
    /// sign-in attempts by (default: no; behind your own proxies, say how many).
    pub fn forwarded_for(mut self, forwarded: crate::link::ForwardedFor) -> Self {
        self.forwarded_for = forwarded;
        self
    }

    /// Skips checking segments against the data before planning: a misspelt attribute is
    /// then simply missing for everyone (default: checked).
    pub fn unchecked_segments(mut self) -> Self {
        self.unchecked_segments = true;
        self
    }

    /// LINE Login as a second way to link (`GET /login/line` starts it for the customer
    /// signed in to the shop, `GET /login/line/callback` finishes it; build `login` with
    /// `{public_url}/login/line/callback` as its redirect URI). `session` says which customer
    /// a request's shop session belongs to.
    pub fn line_login(
        mut self,
        login: crate::link::LineLoginBuilder,
        session: impl routes::SessionCustomer + 'static,
    ) -> Self {
        self.line_login = Some((login, Arc::new(session)));
        self
    }

    /// The customer pages: the shop's name, logo, colours and texts (default: Japanese pages
    /// for a shop called `ショップ`). The LINE replies take the shop's name from it too.
    pub fn pages(mut self, pages: Pages) -> Self {
        self.pages = Some(pages);
        self
    }

    /// LINE's account-link dialog host (default `https://access.line.me`; tests point it at
    /// the testkit's `FakeLine::serve_account_link_dialog`).
    pub fn line_access_base_url(mut self, url: impl Into<String>) -> Self {
        self.access_base_url = Some(url.into());
        self
    }

    /// Failed password attempts allowed per client address on the link page (default
    /// [`AttemptLimit::default`](crate::link::AttemptLimit::default): 10 per 15 minutes).
    pub fn password_attempt_limit(mut self, limit: crate::link::AttemptLimit) -> Self {
        self.attempt_limit = Some(limit);
        self
    }

    /// Writes each new link back to the commerce backend (ecforce: the customer's LINE ID
    /// field) and clears it on unlink, retried in the background; needs a commerce backend.
    pub fn link_write_back(mut self, on: bool) -> Self {
        self.write_back = on;
        self
    }

    /// Answers what customers write to the shop's LINE account (see [`crate::chat`]): the
    /// built-in intents over the customer's synced orders, 定期, points and rank, hand-off to
    /// staff, surveys. `postback_key` signs the bot's postbacks (at least 16 secret bytes);
    /// `setup` adds rules, surveys, staff and texts to the defaults.
    pub fn chat(
        mut self,
        postback_key: impl Into<Vec<u8>>,
        setup: impl FnOnce(crate::chat::ChatBotBuilder) -> crate::chat::ChatBotBuilder + Send + 'static,
    ) -> Self {
        self.chat = Some((postback_key.into(), Box::new(setup)));
        self
    }

    /// The shop's ranks, for the chat's "¥… to the next rank": each name with the yen spent
    /// from which it applies.
    pub fn rank_ladder<S: Into<String>>(
        mut self,
        ranks: impl IntoIterator<Item = (S, i64)>,
    ) -> Self {
        self.rank_ladder = ranks.into_iter().map(|(n, y)| (n.into(), y)).collect();
        self.rank_ladder.sort_by_key(|(_, y)| *y);
        self
    }

    /// Rewards each customer's first link once (points through the commerce backend, or a
    /// coupon code), shown on the pages and in the LINE reply; recorded in the storage so
    /// replays, instances and re-links never grant twice. Needs a commerce backend.
    pub fn link_incentive(mut self, incentive: LinkIncentive) -> Self {
        self.incentive = Some(incentive);
        self
    }

    /// Serves `/unsubscribe/{token}` (the links e-mails and SMS carry, see
    /// `docs/channels.md`), recording opt-outs in the storage's
    /// [`opt_outs`](Storage::opt_outs), which [`Enishi::channel_planner`] honours.
    pub fn unsubscribe_links(mut self, links: crate::channel::UnsubscribeLinks) -> Self {
        self.unsubscribe = Some(links);
        self
    }

    /// Puts the webhook hub in front of the webhook route, so the shop's other LINE tools keep
    /// working beside enishi: each body is verified once, queued in `hub`'s persistent queue
    /// for every destination (build it on [`Storage::hub_queue`] and the same channel secret),
    /// then handled here; [`Enishi::run`] runs the hub's workers. The hub's
    /// [`ReplyRules`](crate::hub::ReplyRules) keep enishi's own replies (the chat, the link
    /// flow's messages) away from events another tool owns; follows and unfollows are still
    /// recorded. See `docs/coexistence.md`.
    pub fn hub(mut self, hub: crate::hub::Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The account linker, when the app has a public URL to serve its pages from.
    fn build_linker(
        &mut self,
        line: &LineClient,
        storage: &Storage,
        pages: &Pages,
    ) -> Result<Option<AccountLinker>, AppError> {
        let Some(url) = self.public_url.clone() else { return Ok(None) };
        let mut linker =
            AccountLinker::builder(line.clone(), storage.links(), format!("{url}/link"))
                .shop_name(pages.brand().name())
                .unlink_page(format!("{url}/unlink"));
        if let Some(auth) = self.authenticator.take() {
            linker = linker.authenticator(auth);
        }
        if let Some(ttl) = self.ticket_ttl {
            linker = linker.ticket_ttl(ttl);
        }
        if let Some(access) = &self.access_base_url {
            linker = linker.access_base_url(access);
        }
        if let Some(limit) = self.attempt_limit {
            linker = linker.password_attempt_limit(limit);
        }
        if self.write_back {
            let shop = self.commerce.clone().ok_or(AppError::Missing(
                "a commerce backend (`commerce`) to write links back to",
            ))?;
            linker = linker.write_back(Arc::new(shop), crate::link::WriteBackRetry::default());
        }
        if let Some(incentive) = &self.incentive {
            let shop = self.commerce.clone().ok_or(AppError::Missing(
                "a commerce backend (`commerce`) to grant the link incentive",
            ))?;
            linker = linker.incentive(incentive.clone(), storage.incentives(), shop);
        }
        Ok(Some(linker.build()?))
    }

    /// Builds the app.
    ///
    /// # Errors
    /// [`AppError::Missing`] without a LINE client (or [`channel`](Self::channel)) or storage; [`AppError::Link`],
    /// [`AppError::Track`] or [`AppError::Dispatch`] for an invalid setting.
    pub fn build(mut self) -> Result<Enishi, AppError> {
        let line = (self.line.take().or_else(|| self.channel.as_ref().map(|c| c.client().clone())))
            .ok_or(AppError::Missing("a LINE client (`line`)"))?;
        let storage = self.storage.take().ok_or(AppError::Missing("a storage (`storage`)"))?;
        let clock = self.clock.take().unwrap_or_else(|| Arc::new(SystemClock));
        let policy = self.policy.take().unwrap_or_else(DeliveryPolicy::recommended);
        let pages = self.pages.take().unwrap_or_default();
        let linker = self.build_linker(&line, &storage, &pages)?;
        let app_ref = chat::AppRef::default();
        let chat = match self.chat {
            Some((key, setup)) => {
                let context =
                    Arc::new(chat::AppContext { app: app_ref.clone(), ladder: self.rank_ladder });
                let mut bot =
                    crate::chat::ChatBot::builder(line.clone(), storage.chat(), context, key)
                        .shop_name(pages.brand().name())
                        .on_attribute(Arc::new(chat::AppAttributes { app: app_ref.clone() }));
                if let Some(shop) = &self.commerce {
                    bot = bot.commerce(Arc::clone(shop));
                }
                if let Some(linker) = &linker {
                    bot = bot.linker(
                        linker.clone(),
                        &[crate::link::DEFAULT_LINK_POSTBACK, crate::link::DEFAULT_UNLINK_POSTBACK],
                    );
                }
                Some(setup(bot).build()?)
            }
            None => None,
        };
        let line_login = match self.line_login {
            Some((login, session)) => {
                let login = match &linker {
                    Some(linker) => login.linker(linker.clone()),
                    None => login,
                };
                Some((login.build()?, session))
            }
            None => None,
        };
        let tracker = match (&self.public_url, self.tracking_key) {
            (Some(url), Some(key)) => Some(LinkTracker::new(key, &format!("{url}/t/"))?),
            _ => None,
        };
        let mut dispatcher = Dispatcher::builder(line.clone(), storage.journal());
        if let Some(worker) = self.worker {
            dispatcher = dispatcher.worker(worker);
        }
        if let Some(n) = self.concurrency {
            dispatcher = dispatcher.concurrency(n);
        }
        let dispatcher = dispatcher.poll_interval(Duration::from_millis(50)).build()?;
        let mut campaigns = BTreeSet::new();
        if let Some(set) = &self.scenarios {
            refuse_routed_steps(set)?;
            campaigns.extend(set.scenarios().iter().map(|s| s.campaign().clone()));
        }
        let brain = brain::Brain::new(self.scenarios, policy.clone(), clock.now());
        let rich_menus = self.rich_menus.map(richmenus::MenuSetup::build).transpose()?;
        let app = Enishi {
            inner: Arc::new(Inner {
                line,
                storage,
                commerce: self.commerce,
                policy,
                clock,
                secret: self.secret,
                linker,
                tracker,
                dispatcher,
                consent_attribute: self.consent_attribute,
                forwarded_for: self.forwarded_for,
                check_segments: !self.unchecked_segments,
                line_login,
                pages,
                incentive: self.incentive,
                chat,
                chat_purged: Mutex::new(None),
                brain: tokio::sync::Mutex::new(brain),
                campaigns: Mutex::new(campaigns),
                unsubscribe: self.unsubscribe,
                hub: self.hub,
                rich_menus,
                channel: self.channel,
            }),
        };
        app_ref.set(&app.inner);
        Ok(app)
    }
}

impl Enishi {
    /// A builder.
    pub fn builder() -> EnishiBuilder {
        EnishiBuilder::default()
    }

    /// The storage.
    #[must_use]
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// A channel planner over the storage's journal, under the app's delivery policy and
    /// honouring the storage's opt-outs (those the unsubscribe route records).
    #[must_use]
    pub fn channel_planner(&self) -> crate::channel::ChannelPlanner {
        crate::channel::ChannelPlanner::new(self.inner.storage.journal(), self.inner.policy.clone())
            .opt_outs(self.inner.storage.opt_outs())
    }

    /// The unsubscribe links the app serves, for the channel dispatcher's e-mails and SMS.
    #[must_use]
    pub fn unsubscribe_links(&self) -> Option<&crate::channel::UnsubscribeLinks> {
        self.inner.unsubscribe.as_ref()
    }

    /// The LINE client.
    #[must_use]
    pub fn line(&self) -> &LineClient {
        &self.inner.line
    }

    /// The current instant on the app's clock.
    #[must_use]
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// The webhook hub, when configured (see [`EnishiBuilder::hub`]).
    #[must_use]
    pub fn hub(&self) -> Option<&crate::hub::Hub> {
        self.inner.hub.as_ref()
    }

    /// Whether enishi answers `event` itself: always without a hub, else as the hub's
    /// [`ReplyRules`](crate::hub::ReplyRules) say.
    fn answers(&self, event: &crate::line::webhook::Event) -> bool {
        self.inner.hub.as_ref().is_none_or(|h| h.reply_rules().enishi_replies(event))
    }

    /// The chatbot, when configured.
    #[must_use]
    pub fn chat(&self) -> Option<&crate::chat::ChatBot> {
        self.inner.chat.as_ref()
    }

    /// The customer pages.
    #[must_use]
    pub fn pages(&self) -> &Pages {
        &self.inner.pages
    }

    /// The link incentive, while it is open (before its deadline).
    #[must_use]
    pub fn open_incentive(&self) -> Option<&LinkIncentive> {
        self.inner.incentive.as_ref().filter(|i| i.is_open(self.now()))
    }

    /// The delivery policy.
    #[must_use]
    pub fn policy(&self) -> &DeliveryPolicy {
        &self.inner.policy
    }

    /// The account linker (with a [`public_url`](EnishiBuilder::public_url)).
    #[must_use]
    pub fn linker(&self) -> Option<&AccountLinker> {
        self.inner.linker.as_ref()
    }

    /// The link tracker (with a public URL and a tracking key).
    #[must_use]
    pub fn tracker(&self) -> Option<&LinkTracker> {
        self.inner.tracker.as_ref()
    }

    /// Campaigns the dispatcher workers of [`run`](Self::run) and
    /// [`dispatch_due`](Self::dispatch_due) look at: the scenarios', those enqueued through
    /// this app, and those added with [`watch_campaign`](Self::watch_campaign).
    #[must_use]
    pub fn campaigns(&self) -> Vec<CampaignId> {
        self.lock_campaigns().iter().cloned().collect()
    }

    /// Adds a campaign to the ones the dispatcher workers send (one enqueued by another
    /// process, or before a restart).
    pub fn watch_campaign(&self, campaign: CampaignId) {
        self.lock_campaigns().insert(campaign);
    }

    fn lock_campaigns(&self) -> std::sync::MutexGuard<'_, BTreeSet<CampaignId>> {
        self.inner.campaigns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plans `campaign` for the members of `segment` under the app's policy: their contacts
    /// (link, follow status, consent, variables) from the last [`sync`](Self::sync), the
    /// frequency cap counting every send in the journal.
    ///
    /// # Errors
    /// [`AppError::Segment`] for a segment naming unknown products or attributes,
    /// [`AppError::Journal`], [`AppError::Plan`].
    pub async fn plan(
        &self,
        campaign: &Campaign,
        segment: &SegmentDefinition,
    ) -> Result<Plan, AppError> {
        self.plan_with(campaign, segment, &self.inner.policy).await
    }

    /// Like [`plan`](Self::plan) under another policy (a transactional notice without quiet
    /// hours, a test send without holdout).
    ///
    /// # Errors
    /// As [`plan`](Self::plan).
    pub async fn plan_with(
        &self,
        campaign: &Campaign,
        segment: &SegmentDefinition,
        policy: &DeliveryPolicy,
    ) -> Result<Plan, AppError> {
        let contacts = self.audience(segment).await?;
        let now = self.now();
        let window = policy.frequency_cap.map_or(chrono::TimeDelta::days(7), |c| c.window());
        let sends = self.inner.storage.journal().sends_since(now - window).await?;
        let history = crate::campaign::SendHistory::from_records_except(&sends, campaign.id());
        let plan = crate::campaign::Planner::new(policy)
            .with_history(&history)
            .plan(campaign, &contacts, now)?;
        tracing::info!(
            target: "enishi::app",
            campaign = campaign.id().as_str(),
            audience = contacts.len(),
            recipients = plan.dry_run().recipients,
            "campaign planned"
        );
        Ok(plan)
    }

    /// Writes the plan's batches to the journal (insert-if-absent: a plan enqueued twice is
    /// stored once) and has the dispatcher workers send them; returns how many were new.
    ///
    /// # Errors
    /// [`AppError::Journal`].
    pub async fn enqueue(&self, plan: Plan) -> Result<u64, AppError> {
        let batches = plan.into_batches();
        for b in &batches {
            self.watch_campaign(b.campaign.clone());
        }
        Ok(self.inner.storage.journal().enqueue(&batches).await?)
    }

    /// Enqueues the plan and sends it now, returning when every batch of the campaign is sent
    /// or failed (or the campaign was paused).
    ///
    /// # Errors
    /// [`AppError::Journal`], [`AppError::Dispatch`].
    pub async fn send(&self, plan: Plan) -> Result<DeliveryReport, AppError> {
        let campaign = plan.dry_run().campaign.clone();
        self.enqueue(plan).await?;
        Ok(self.inner.dispatcher.run(&campaign).await?)
    }

    /// Sends what is due now in every campaign the app knows; returns the batches sent.
    ///
    /// # Errors
    /// [`AppError::Dispatch`].
    pub async fn dispatch_due(&self) -> Result<u64, AppError> {
        let mut sent = 0;
        for campaign in self.campaigns() {
            let report = self.inner.dispatcher.run_due(&campaign).await?;
            sent += report.this_run.batches_sent;
        }
        Ok(sent)
    }
}
