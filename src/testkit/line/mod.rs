//! A fake LINE Messaging API server.

// Handlers return `Result<_, Response>` so `?` can short-circuit with a LINE error; the large
// `Err` is fine on this cold path of a test server.
#![allow(clippy::result_large_err)]

mod account_link;
mod config;
mod endpoint;
mod faults;
mod handlers;
mod platform;
mod respond;
mod server;
mod state;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use account_link::{DialogOutcome, FakeDialog};
pub use config::{FakeQuota, FakeRateLimit, FakeUser, FaultTiming, Faults, user_id};
pub use endpoint::{Endpoint, FakeEndpointClass};
pub use handlers::{
    TEST_ASSERTION_KEY_JWK, TEST_ASSERTION_KID, TEST_CHANNEL_ID, TEST_CHANNEL_SECRET,
};
pub use platform::{FakeContent, RecordedRequest};
pub use state::{Counters, IssuedLinkToken, RecordedDelivery, RichMenuSwitch};

use state::{App, Settings, lock};

/// The channel access token a [`FakeLine`] accepts unless configured otherwise.
pub const DEFAULT_CHANNEL_ACCESS_TOKEN: &str = "fake-channel-access-token";

/// Errors from starting or configuring a [`FakeLine`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A listener could not be bound on 127.0.0.1.
    #[error("could not bind the fake server on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// A configuration value is out of range.
    #[error("invalid fake server configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `faults.server_error`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A user ID does not match `^U[0-9a-f]{32}$`.
    #[error("invalid LINE user ID {0:?}: expected `U` followed by 32 lowercase hex digits")]
    InvalidUserId(String),
}

/// A fake LINE Messaging API server on 127.0.0.1, for offline tests, examples and benchmarks.
///
/// It listens on two ephemeral ports, one for the API host ([`api_base_url`](Self::api_base_url),
/// standing in for `https://api.line.me`) and one for the data host
/// ([`data_base_url`](Self::data_base_url), `https://api-data.line.me`); each serves only the
/// endpoints LINE serves there, so a client that uploads a rich menu image to the wrong host
/// gets a 404 as it would from LINE.
///
/// The fake parses request bodies itself (it shares no types with enishi's client) and behaves
/// as LINE documents: bearer-token authentication, LINE-style error bodies with `details`,
/// `x-line-request-id` on every response, per-endpoint token-bucket rate limits, retry keys
/// answered with 409 and `x-line-accepted-request-id`, a monthly quota, and seeded fault
/// injection. Every accepted message is recorded per recipient ([`deliveries`](Self::deliveries)).
///
/// It stops when dropped (in-flight requests finish), and runs on whatever tokio runtime
/// [`FakeLineBuilder::start`] is awaited on, including a plain `#[tokio::test]`.
///
/// # Example
///
/// ```
/// use enishi::testkit::{FakeEndpointClass, FakeLine, FakeRateLimit};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let line = FakeLine::builder()
///     .channel_access_token("test-token")
///     .rate_limit(FakeEndpointClass::Push, FakeRateLimit::per_second(2000))
///     .start()
///     .await?;
/// let user = enishi::testkit::user_id(1);
///
/// let response = reqwest::Client::new()
///     .post(format!("{}/v2/bot/message/push", line.api_base_url()))
///     .bearer_auth("test-token")
///     .json(&serde_json::json!({ "to": user, "messages": [{ "type": "text", "text": "hi" }] }))
///     .send()
///     .await?;
/// assert_eq!(response.status(), 200);
/// assert!(response.headers().contains_key("x-line-request-id"));
/// assert_eq!(line.messages_for(&user), [serde_json::json!({ "type": "text", "text": "hi" })]);
/// # Ok(())
/// # }
/// ```
pub struct FakeLine {
    app: Arc<App>,
    api_addr: SocketAddr,
    data_addr: SocketAddr,
    shutdown: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FakeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeLine")
            .field("api_addr", &self.api_addr)
            .field("data_addr", &self.data_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeLine {
    fn drop(&mut self) {
        // Tells the accept loops and every connection to shut down gracefully.
        let _ = self.shutdown.send(());
    }
}

impl FakeLine {
    /// A builder with LINE's default rate limits, no quota, no faults and seed 0.
    pub fn builder() -> FakeLineBuilder {
        FakeLineBuilder::default()
    }

    /// Starts a fake with the default configuration.
    ///
    /// # Errors
    /// [`TestkitError::Bind`] when no port could be bound.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::builder().start().await
    }

    /// Base URL of the API host, e.g. `http://127.0.0.1:41234` (no trailing slash).
    #[must_use]
    pub fn api_base_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Base URL of the data host (rich menu images), e.g. `http://127.0.0.1:41235`.
    #[must_use]
    pub fn data_base_url(&self) -> String {
        format!("http://{}", self.data_addr)
    }

    /// The channel access token the fake accepts.
    #[must_use]
    pub fn channel_access_token(&self) -> &str {
        &self.app.token
    }

    /// Registers a user (or replaces one with the same ID).
    ///
    /// # Errors
    /// [`TestkitError::InvalidUserId`] when the ID is not a LINE user ID.
    pub fn add_user(&self, user: FakeUser) -> Result<(), TestkitError> {
        if !validate::is_user_id(&user.user_id) {
            return Err(TestkitError::InvalidUserId(user.user_id));
        }
        self.app.users.write().unwrap_or_else(PoisonError::into_inner).insert(user);
        Ok(())
    }

    /// Registers friends with default profiles.
    ///
    /// # Errors
    /// [`TestkitError::InvalidUserId`] for the first ID that is not a LINE user ID (those before
    /// it are registered).
    pub fn add_friends<I>(&self, user_ids: I) -> Result<(), TestkitError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        user_ids.into_iter().try_for_each(|id| self.add_user(FakeUser::new(id.as_ref())))
    }

    /// Marks a user as having blocked (`true`) or unblocked (`false`) the account; registers
    /// the user if unknown. Blocked users get no profile, are not followers, and receive nothing.
    ///
    /// # Errors
    /// [`TestkitError::InvalidUserId`] when the ID is not a LINE user ID.
    pub fn set_blocked(&self, user_id: &str, blocked: bool) -> Result<(), TestkitError> {
        if !validate::is_user_id(user_id) {
            return Err(TestkitError::InvalidUserId(user_id.to_owned()));
        }
        let mut users = self.app.users.write().unwrap_or_else(PoisonError::into_inner);
        let user = users.by_id.get(user_id).cloned().unwrap_or_else(|| FakeUser::new(user_id));
        users.insert(user.blocked(blocked));
        Ok(())
    }

    /// Issues a single-use reply token for `user_id`, as a webhook event would carry. The reply
    /// endpoint answers `400 Invalid reply token` for tokens not issued here or already used.
    ///
    /// # Errors
    /// [`TestkitError::InvalidUserId`] when the ID is not a LINE user ID.
    pub fn issue_reply_token(&self, user_id: &str) -> Result<String, TestkitError> {
        issue_reply_token(&self.app, user_id)
    }

    /// The loading animations shown so far: `(user ID, seconds)`.
    #[must_use]
    pub fn loading_shown(&self) -> Vec<(String, u64)> {
        lock(&self.app.loading_shown).clone()
    }

    /// The `markAsRead` tokens received so far.
    #[must_use]
    pub fn read_tokens(&self) -> Vec<String> {
        lock(&self.app.read_tokens).clone()
    }

    /// Every delivery so far, in acceptance order (one per recipient per accepted request).
    #[must_use]
    pub fn deliveries(&self) -> Vec<RecordedDelivery> {
        lock(&self.app.sends).deliveries.clone()
    }

    /// A `delivery` webhook event (as LINE sends it when a notification message reached the
    /// phone) for every PNP delivery so far: `delivery.data` is the request's
    /// `X-Line-Delivery-Tag`, or the hashed phone number when it had none.
    #[must_use]
    pub fn pnp_delivery_events(&self) -> Vec<Value> {
        let sends = lock(&self.app.sends);
        sends
            .deliveries
            .iter()
            .filter(|d| d.endpoint == Endpoint::PnpPush)
            .map(|d| {
                let data = sends.pnp_tags.get(&d.request_id).unwrap_or(&d.to);
                serde_json::json!({
                    "type": "delivery",
                    "mode": "active",
                    "timestamp": d.at.timestamp_millis(),
                                        "webhookEventId": format!("pnp-{}", d.request_id),
                    "deliveryContext": { "isRedelivery": false },
                    "delivery": { "data": data },
                })
            })
            .collect()
    }

    /// Marks a phone number (SHA-256 of its E.164 form, as `PhoneNumber::hashed` gives it) as
    /// belonging to no LINE user: `POST /bot/pnp/push` to it is answered 422 and delivers
    /// nothing.
    pub fn set_pnp_not_a_line_user(&self, hashed_phone: &str) {
        lock(&self.app.sends).pnp_not_users.insert(hashed_phone.to_owned());
    }

    /// The number of deliveries so far.
    #[must_use]
    pub fn delivery_count(&self) -> usize {
        lock(&self.app.sends).deliveries.len()
    }

    /// The deliveries to one recipient.
    #[must_use]
    pub fn deliveries_to(&self, to: &str) -> Vec<RecordedDelivery> {
        lock(&self.app.sends).deliveries.iter().filter(|d| d.to == to).cloned().collect()
    }

    /// Every message object `to` received, in order, flattened across requests.
    #[must_use]
    pub fn messages_for(&self, to: &str) -> Vec<Value> {
        let sends = lock(&self.app.sends);
        sends
            .deliveries
            .iter()
            .filter(|d| d.to == to)
            .flat_map(|d| d.messages.iter().cloned())
            .collect()
    }

    /// Recipient/message pairs delivered more than once, with their counts: empty when every
    /// recipient got each distinct message object at most once.
    #[must_use]
    pub fn duplicate_deliveries(&self) -> Vec<(String, Value, usize)> {
        let sends = lock(&self.app.sends);
        let mut counts: std::collections::HashMap<(&str, String), (usize, &Value)> =
            std::collections::HashMap::new();
        for delivery in &sends.deliveries {
            for message in delivery.messages.iter() {
                let entry = counts
                    .entry((delivery.to.as_str(), message.to_string()))
                    .or_insert((0, message));
                entry.0 += 1;
            }
        }
        let mut duplicates: Vec<(String, Value, usize)> = counts
            .into_iter()
            .filter(|(_, (count, _))| *count > 1)
            .map(|((to, _), (count, message))| (to.to_owned(), message.clone(), count))
            .collect();
        duplicates
            .sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.to_string().cmp(&b.1.to_string())));
        duplicates
    }

    /// Requests routed to `endpoint` (counted before authentication, so rejected ones count).
    #[must_use]
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.app.stats.endpoint_count(endpoint)
    }

    /// Requests whose path is exactly `path`, e.g. `/v2/bot/message/push`, on either host.
    #[must_use]
    pub fn path_count(&self, path: &str) -> u64 {
        self.app.path_count(path)
    }

    /// Responses sent with HTTP status `status` (dropped connections are not responses).
    #[must_use]
    pub fn status_count(&self, status: u16) -> u64 {
        self.app.stats.status_count(status)
    }

    /// A snapshot of the response counters.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.app.stats.snapshot()
    }

    /// Messages counted against the monthly quota so far (as `quota/consumption` reports).
    #[must_use]
    pub fn quota_used(&self) -> u64 {
        lock(&self.app.sends).used
    }

    /// Changes the monthly quota.
    pub fn set_quota(&self, quota: FakeQuota) {
        lock(&self.app.sends).quota = quota;
    }

    /// Sets the messages counted this month so far (as if sent before the test): later sends
    /// add to it, `quota/consumption` reports it, and the quota is checked against it.
    pub fn set_quota_used(&self, used: u64) {
        lock(&self.app.sends).used = used;
    }

    /// Replaces the fault configuration and restarts its draw sequence.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] when a fraction is out of range.
    pub fn set_faults(&self, faults: Faults) -> Result<(), TestkitError> {
        faults.validate()?;
        self.app.set_faults(faults);
        Ok(())
    }

    /// Changes the rate limit of a class; its buckets start full again.
    pub fn set_rate_limit(&self, class: FakeEndpointClass, limit: FakeRateLimit) {
        self.app.set_rate_limit(class, limit);
    }

    /// Link tokens issued so far.
    #[must_use]
    pub fn issued_link_tokens(&self) -> Vec<IssuedLinkToken> {
        lock(&self.app.link_tokens).clone()
    }

    /// The rich menu linked to `user_id` through the API, if any.
    #[must_use]
    pub fn rich_menu_of(&self, user_id: &str) -> Option<String> {
        lock(&self.app.menus).links.get(user_id).cloned()
    }

    /// The coupons created through the API, in creation order, with their status (`RUNNING`
    /// or `CLOSED`).
    #[must_use]
    pub fn coupons(&self) -> Vec<(String, String)> {
        let coupons = lock(&self.app.coupons);
        coupons
            .order
            .iter()
            .filter_map(|id| Some((id.clone(), coupons.by_id.get(id)?.status.to_owned())))
            .collect()
    }

    /// Every change of a per-user rich menu so far, in order (links, unlinks, bulk and batch
    /// operations; a switch whose `from` equals `to` changed nothing).
    #[must_use]
    pub fn rich_menu_switches(&self) -> Vec<RichMenuSwitch> {
        lock(&self.app.menus).switches.clone()
    }

    /// The number of recorded per-user menu switches.
    #[must_use]
    pub fn rich_menu_switch_count(&self) -> usize {
        lock(&self.app.menus).switches.len()
    }

    /// Every user's per-user rich menu (users without one are absent).
    #[must_use]
    pub fn rich_menu_links(&self) -> std::collections::HashMap<String, String> {
        lock(&self.app.menus).links.clone()
    }

    /// Links `user_id` to `menu_id` (or unlinks it, with `None`) behind the client's back, as
    /// an operator in the LINE Official Account Manager would: for drift-repair tests. Not
    /// recorded as a switch.
    pub fn set_rich_menu_of(&self, user_id: &str, menu_id: Option<&str>) {
        let mut menus = lock(&self.app.menus);
        match menu_id {
            Some(menu) => menus.links.insert(user_id.to_owned(), menu.to_owned()),
            None => menus.links.remove(user_id),
        };
    }

    /// Makes the next `richmenu/batch` request stop after processing `users` users: its
    /// progress then reports `failed`, and sending it again with the same `resumeRequestKey`
    /// processes the rest (a crash on LINE's side mid-batch).
    pub fn interrupt_next_rich_menu_batch(&self, users: usize) {
        lock(&self.app.menus).interrupt_next_batch = Some(users);
    }

    /// How long a batch request reports `ongoing` before `succeeded` or `failed` (on the
    /// fake's job clock; default zero).
    pub fn set_rich_menu_batch_duration(&self, duration: Duration) {
        lock(&self.app.menus).batch_duration = duration;
    }

    /// Makes the next request to `endpoint` take effect and then drop its connection without
    /// a response, as if the caller crashed before reading it. Implemented for the rich-menu
    /// link, unlink, bulk and batch endpoints.
    pub fn crash_after_next(&self, endpoint: Endpoint) {
        lock(&self.app.menus).crash_after.push(endpoint);
    }

    /// The default rich menu set through the API, if any.
    #[must_use]
    pub fn default_rich_menu(&self) -> Option<String> {
        lock(&self.app.menus).default.clone()
    }

    /// Moves the clock of narrowcast progress and audience jobs forward by `by`: every
    /// narrowcast and audience job is then `by` older. With
    /// [`manual_clock`](FakeLineBuilder::manual_clock) this is the only way they age;
    /// otherwise real (tokio) time counts too.
    pub fn advance(&self, by: Duration) {
        self.app.clock.advance(by);
    }

    /// Forgets deliveries, retry keys, counters, quota usage, reply and link tokens, rich menus
    /// audiences and coupons, and refills every rate-limit bucket. Keeps the configuration and users.
    pub fn reset(&self) {
        self.app.reset();
    }

    /// The bot's user ID (what `bot/info` answers and webhooks carry as `destination`).
    #[must_use]
    pub fn bot_user_id(&self) -> &str {
        &self.app.bot_user_id
    }

    /// The channel ID (see [`FakeLineBuilder::channel_id`]).
    #[must_use]
    pub fn channel_id(&self) -> &str {
        &self.app.channel_id
    }

    /// Adds a membership plan, given as LINE lists it (`membershipId`, `title`,
    /// `description`, `benefits`, `price`, `currency`, `memberLimit`, `isInAppPurchase`,
    /// `isPublished`); `memberCount` is computed. Replaces a plan with the same ID.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] when the plan has no integer `membershipId`.
    pub fn add_membership_plan(&self, plan: Value) -> Result<(), TestkitError> {
        let Some(id) = plan.get("membershipId").and_then(Value::as_i64) else {
            return Err(TestkitError::InvalidConfig {
                field: "membershipId".into(),
                reason: "a plan needs an integer membershipId".into(),
            });
        };
        let mut platform = lock(&self.app.platform);
        platform.plans.retain(|p| p.get("membershipId").and_then(Value::as_i64) != Some(id));
        platform.plans.push(plan);
        Ok(())
    }

    /// Subscribes a user to a membership plan (joined now).
    ///
    /// # Errors
    /// [`TestkitError::InvalidUserId`] for a bad user ID; [`TestkitError::InvalidConfig`] for
    /// an unknown plan.
    pub fn add_membership_member(
        &self,
        membership_id: i64,
        user_id: &str,
    ) -> Result<(), TestkitError> {
        if !validate::is_user_id(user_id) {
            return Err(TestkitError::InvalidUserId(user_id.to_owned()));
        }
        let mut platform = lock(&self.app.platform);
        if !platform
            .plans
            .iter()
            .any(|p| p.get("membershipId").and_then(Value::as_i64) == Some(membership_id))
        {
            return Err(TestkitError::InvalidConfig {
                field: "membershipId".into(),
                reason: format!("no plan {membership_id}"),
            });
        }
        let members = platform.members.entry(membership_id).or_default();
        if !members.iter().any(|m| m.user_id == user_id) {
            let no = members.len() as u64 + 1;
            members.push(platform::Member {
                user_id: user_id.to_owned(),
                no,
                joined_unix: chrono::Utc::now().timestamp(),
            });
        }
        Ok(())
    }

    /// Stores content a user sent in message `message_id`, for the content endpoints.
    pub fn add_content(&self, message_id: impl Into<String>, content: FakeContent) {
        lock(&self.app.platform).contents.insert(message_id.into(), content);
    }

    /// Adds an audience shared with the channel by the Business Manager.
    pub fn add_shared_audience(&self, id: i64, description: &str, owner: &str) {
        lock(&self.app.platform).shared.insert(
            id,
            platform::SharedAudience {
                id,
                description: description.to_owned(),
                owner: owner.to_owned(),
                created_unix: chrono::Utc::now().timestamp(),
            },
        );
    }

    /// Turns request recording on or off (see [`FakeLineBuilder::record_requests`]).
    pub fn set_recording(&self, on: bool) {
        lock(&self.app.platform).recording = on;
    }

    /// The requests recorded so far, in arrival order.
    #[must_use]
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.app.platform).recorded.clone()
    }

    /// Channel access tokens issued and still valid (not expired, not revoked).
    #[must_use]
    pub fn active_token_count(&self) -> usize {
        let now = self.app.clock.now();
        lock(&self.app.platform).tokens.values().filter(|t| now < t.expires_at).count()
    }

    /// Revokes every issued channel access token, as if an operator revoked them in the
    /// console: calls with them get 401 from now on.
    pub fn revoke_all_issued_tokens(&self) {
        lock(&self.app.platform).tokens.clear();
    }

    /// Stops the server and waits for the accept loops to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(());
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

/// Configures and starts a [`FakeLine`]. Setters never fail; [`start`](Self::start) reports
/// the first bad value.
#[must_use = "a FakeLineBuilder does nothing until you call `start`"]
pub struct FakeLineBuilder {
    token: String,
    seed: u64,
    verified: bool,
    narrowcast_duration: Duration,
    narrowcast_min_recipients: usize,
    audience_ready_after: Duration,
    manual_clock: bool,
    limits: Vec<FakeRateLimit>,
    faults: Faults,
    quota: FakeQuota,
    quota_used: u64,
    users: Vec<FakeUser>,
    channel_id: String,
    channel_secret: String,
    assertion_keys: Vec<(String, String)>,
    bot_user_id: Option<String>,
    record_requests: bool,
}

impl fmt::Debug for FakeLineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeLineBuilder")
            .field("token", &"<redacted>")
            .field("seed", &self.seed)
            .field("verified", &self.verified)
            .field("narrowcast_duration", &self.narrowcast_duration)
            .field("narrowcast_min_recipients", &self.narrowcast_min_recipients)
            .field("audience_ready_after", &self.audience_ready_after)
            .field("manual_clock", &self.manual_clock)
            .field("limits", &self.limits)
            .field("faults", &self.faults)
            .field("quota", &self.quota)
            .field("users", &self.users.len())
            .field("channel_id", &self.channel_id)
            .field("channel_secret", &"<redacted>")
            .field("assertion_kids", &self.assertion_keys.iter().map(|k| &k.0).collect::<Vec<_>>())
            .field("bot_user_id", &self.bot_user_id)
            .field("record_requests", &self.record_requests)
            .finish()
    }
}

impl Default for FakeLineBuilder {
    fn default() -> Self {
        Self {
            token: DEFAULT_CHANNEL_ACCESS_TOKEN.to_owned(),
            seed: 0,
            verified: true,
            narrowcast_duration: Duration::from_millis(300),
            narrowcast_min_recipients: 0,
            audience_ready_after: Duration::from_millis(200),
            manual_clock: false,
            limits: FakeEndpointClass::ALL.iter().map(|c| c.line_default()).collect(),
            faults: Faults::default(),
            quota: FakeQuota::Unlimited,
            quota_used: 0,
            users: Vec::new(),
            channel_id: TEST_CHANNEL_ID.to_owned(),
            channel_secret: TEST_CHANNEL_SECRET.to_owned(),
            assertion_keys: vec![(
                TEST_ASSERTION_KID.to_owned(),
                TEST_ASSERTION_KEY_JWK.to_owned(),
            )],
            bot_user_id: None,
            record_requests: false,
        }
    }
}

impl FakeLineBuilder {
    /// The channel access token requests must carry as `Authorization: Bearer <token>`
    /// (default [`DEFAULT_CHANNEL_ACCESS_TOKEN`]).
    pub fn channel_access_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// The rate limit of one class of endpoints (default: [`FakeEndpointClass::line_default`]).
    pub fn rate_limit(mut self, class: FakeEndpointClass, limit: FakeRateLimit) -> Self {
        self.limits[class.index()] = limit;
        self
    }

    /// Turns every rate limit off.
    pub fn no_rate_limits(mut self) -> Self {
        self.limits.iter_mut().for_each(|limit| *limit = FakeRateLimit::unlimited());
        self
    }

    /// The monthly message quota (default unlimited).
    pub fn quota(mut self, quota: FakeQuota) -> Self {
        self.quota = quota;
        self
    }

    /// Messages already counted this month when the server starts (default 0); see
    /// [`FakeLine::set_quota_used`].
    pub fn quota_used(mut self, used: u64) -> Self {
        self.quota_used = used;
        self
    }

    /// Faults to inject (default none).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The seed for fault draws and generated IDs (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Registers a user.
    pub fn user(mut self, user: FakeUser) -> Self {
        self.users.push(user);
        self
    }

    /// Registers friends with default profiles.
    pub fn friends<I>(mut self, user_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.users.extend(user_ids.into_iter().map(|id| FakeUser::new(id.as_ref())));
        self
    }

    /// How long a narrowcast takes from `waiting` through `sending` to `succeeded`
    /// (default 300 ms; each phase lasts a third of it).
    pub fn narrowcast_duration(mut self, duration: Duration) -> Self {
        self.narrowcast_duration = duration;
        self
    }

    /// The fewest recipients a narrowcast may end up with before it fails with `errorCode` 2.
    /// LINE's figure is 50; the default is 0 so small tests can narrowcast.
    pub fn narrowcast_min_recipients(mut self, count: usize) -> Self {
        self.narrowcast_min_recipients = count;
        self
    }

    /// How long an upload audience (and each job adding IDs) stays `IN_PROGRESS` before
    /// `READY` (default 200 ms).
    pub fn audience_ready_after(mut self, duration: Duration) -> Self {
        self.audience_ready_after = duration;
        self
    }

    /// Times narrowcast progress and audience jobs with a manual clock: they then age only
    /// when [`FakeLine::advance`] is called, never with real time, so a test decides exactly
    /// when a narrowcast moves on or an audience becomes `READY`, however slow the machine is.
    /// Rate limits still refill in real time (they pace real clients).
    ///
    /// ```
    /// use std::time::Duration;
    /// use enishi::testkit::FakeLine;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let line = FakeLine::builder()
    ///     .manual_clock()
    ///     .audience_ready_after(Duration::from_secs(60))
    ///     .start()
    ///     .await?;
    /// // ... create an audience: it stays IN_PROGRESS, whatever the wall clock says ...
    /// line.advance(Duration::from_secs(60));
    /// // ... now it is READY ...
    /// # Ok(())
    /// # }
    /// ```
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// The channel ID JWT assertions must name (default [`TEST_CHANNEL_ID`]).
    pub fn channel_id(mut self, id: impl Into<String>) -> Self {
        self.channel_id = id.into();
        self
    }

    /// The channel secret (default [`TEST_CHANNEL_SECRET`]), for stateless tokens by secret
    /// and v2.1 revocation.
    pub fn channel_secret(mut self, secret: impl Into<String>) -> Self {
        self.channel_secret = secret.into();
        self
    }

    /// Registers an assertion public key under `kid`, given as a JWK with at least `n` and
    /// `e` (a private JWK works too: only its public half is read). The test key
    /// [`TEST_ASSERTION_KEY_JWK`] is registered as [`TEST_ASSERTION_KID`] by default.
    pub fn assertion_key(mut self, kid: impl Into<String>, jwk: impl Into<String>) -> Self {
        self.assertion_keys.push((kid.into(), jwk.into()));
        self
    }

    /// The bot's user ID (default: one derived from the seed).
    pub fn bot_user_id(mut self, id: impl Into<String>) -> Self {
        self.bot_user_id = Some(id.into());
        self
    }

    /// Records every routed request ([`FakeLine::recorded_requests`]), e.g. to check each
    /// against LINE's OpenAPI description. Off by default: recordings grow without bound.
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record_requests = on;
        self
    }

    /// Whether the account is verified or premium (default true). Unverified accounts get 403
    /// from the followers endpoint, as on LINE.
    pub fn verified_account(mut self, verified: bool) -> Self {
        self.verified = verified;
        self
    }

    /// Binds both hosts on 127.0.0.1 (ephemeral ports) and starts serving on the current tokio
    /// runtime.
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] for bad fault fractions or an empty token,
    /// [`TestkitError::InvalidUserId`] for a bad registered user,
    /// [`TestkitError::Bind`] when no port could be bound.
    pub async fn start(self) -> Result<FakeLine, TestkitError> {
        self.faults.validate()?;
        if self.token.is_empty() || self.token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(TestkitError::InvalidConfig {
                field: "channel_access_token".into(),
                reason: "must be non-empty, without spaces or control characters".into(),
            });
        }
        if let Some(user) = self.users.iter().find(|u| !validate::is_user_id(&u.user_id)) {
            return Err(TestkitError::InvalidUserId(user.user_id.clone()));
        }
        let mut assertion_keys = std::collections::HashMap::new();
        for (kid, jwk) in &self.assertion_keys {
            let key = handlers::public_key_of(jwk).ok_or_else(|| TestkitError::InvalidConfig {
                field: format!("assertion_key({kid})"),
                reason: "not a JWK with base64url `n` and `e`".into(),
            })?;
            assertion_keys.insert(kid.clone(), key);
        }
        let bot_user_id = self.bot_user_id.unwrap_or_else(|| config::user_id(self.seed ^ 0xB07));
        if !validate::is_user_id(&bot_user_id) {
            return Err(TestkitError::InvalidUserId(bot_user_id));
        }
        let app = Arc::new(App::new(Settings {
            token: self.token,
            seed: self.seed,
            verified: self.verified,
            narrowcast_duration: self.narrowcast_duration,
            narrowcast_min_recipients: self.narrowcast_min_recipients,
            audience_ready_after: self.audience_ready_after,
            manual_clock: self.manual_clock,
            limits: self.limits,
            faults: self.faults,
            quota: self.quota,
            users: self.users,
            channel_id: self.channel_id,
            channel_secret: self.channel_secret,
            assertion_keys,
            bot_user_id,
            record_requests: self.record_requests,
        }));
        lock(&app.sends).used = self.quota_used;
        let api = TcpListener::bind(("127.0.0.1", 0)).await.map_err(TestkitError::Bind)?;
        let data = TcpListener::bind(("127.0.0.1", 0)).await.map_err(TestkitError::Bind)?;
        let api_addr = api.local_addr().map_err(TestkitError::Bind)?;
        let data_addr = data.local_addr().map_err(TestkitError::Bind)?;
        let (shutdown, signal) = watch::channel(());
        let tasks = vec![
            tokio::spawn(server::accept_loop(
                api,
                Arc::clone(&app),
                server::router(&app, false),
                signal.clone(),
            )),
            tokio::spawn(server::accept_loop(
                data,
                Arc::clone(&app),
                server::router(&app, true),
                signal,
            )),
        ];
        Ok(FakeLine { app, api_addr, data_addr, shutdown, tasks })
    }
}

/// See [`FakeLine::issue_reply_token`].
fn issue_reply_token(app: &App, user_id: &str) -> Result<String, TestkitError> {
    if !validate::is_user_id(user_id) {
        return Err(TestkitError::InvalidUserId(user_id.to_owned()));
    }
    let n = app.next_seq();
    let token = format!("{:016x}{:016x}", faults::mix(app.seed ^ n ^ 0x4E91), faults::mix(n));
    lock(&app.sends).reply_tokens.insert(token.clone(), (user_id.to_owned(), false));
    Ok(token)
}
