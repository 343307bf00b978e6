//! The `server` example's configuration: a TOML file plus environment variables for the
//! secrets. Every error names the key that is wrong or missing.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, Utc};
use enishi::app::{Brand, Enishi, Pages, PagesError, RunOptions, ScheduledCampaign};
use enishi::campaign::scenario::ScenarioSet;
use enishi::campaign::{
    Campaign, DeliveryPolicy, FrequencyCap, Holdout, MessageTemplate, QuietHours,
};
use enishi::clock::SimulatedClock;
use enishi::commerce::EcforceClient;
use enishi::hub::{Backoff, Destination, ENISHI, Hub, ReplyRule, ReplyRules};
use enishi::line::webhook::ChannelSecret;
use enishi::line::{LineClient, RedisRateLimiter};
use enishi::link::{ForwardedFor, LineLogin, LinkIncentive};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub line: LineSection,
    pub shop: ShopSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub service: ServiceSection,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<CampaignSection>,
    /// LINE Login as a second way to link (`LINE_LOGIN_CHANNEL_SECRET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_login: Option<LineLoginSection>,
    /// The customer pages' shop name, logo, colour, URLs and texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<BrandSection>,
    /// Points or a coupon for each customer's first link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_incentive: Option<IncentiveSection>,
    /// Demos and tests only: a fast clock shared by every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<SimulationSection>,
    /// The webhook hub: the shop's other LINE tools behind enishi's webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubSection>,
}

/// `[hub]`: where LINE's webhook goes on to, and who answers which events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// How long a worker holds a body it is sending (above every destination's timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<f64>,
    /// The longest a worker waits before looking at the queue again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_secs: Option<f64>,
    /// Who answers events no `[[hub.reply]]` rule matches (default `enishi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_owner: Option<String>,
    #[serde(default, rename = "destination")]
    pub destinations: Vec<HubDestinationSection>,
    #[serde(default, rename = "reply")]
    pub replies: Vec<HubReplySection>,
}

/// `[[hub.destination]]`: one other tool.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubDestinationSection {
    /// `[a-z0-9_-]`: the label in metrics, logs, the queue and reply rules.
    pub name: String,
    pub url: String,
    /// The environment variable holding the tool's own channel secret: bodies are signed
    /// with it. Without it LINE's signature is passed through (the tool shares the channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Only these event types (`message`, `follow`, `postback`, ...); default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Exponential back-off between attempts, from `retry_min_secs` to `retry_max_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_min_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_max_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
}

/// `[[hub.reply]]`: events matching one condition are answered by `owner` (a destination's
/// name, or `enishi`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubReplySection {
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandSection {
    pub name: String,
    pub logo_url: Option<String>,
    pub url: Option<String>,
    pub login_url: Option<String>,
    pub password_reset_url: Option<String>,
    pub contact: Option<String>,
    pub contact_url: Option<String>,
    pub line_url: Option<String>,
    pub primary_color: Option<String>,
    /// Text overrides by key (see docs/pages.md).
    #[serde(default)]
    pub texts: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncentiveSection {
    /// The ledger ID: a new ID rewards customers again.
    pub id: String,
    /// Points granted through ecforce; or `coupon_name` and `coupon_code`.
    pub points: Option<u32>,
    pub coupon_name: Option<String>,
    pub coupon_code: Option<String>,
    /// Links made from this instant on are not rewarded.
    pub until: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    /// The Messaging API base URL (a fake, in tests).
    pub api_base_url: Option<String>,
    /// The data API base URL (a fake, in tests).
    pub data_base_url: Option<String>,
    /// Redis shared by every instance for LINE's channel-wide rate limit (`ENISHI_REDIS_URL`
    /// overrides); without it each process paces alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The key prefix in Redis (one per channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopSection {
    pub base_url: String,
    /// Customer sign-ins per hour the shop allows (ecforce: 5 for the whole shop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_limit_per_hour: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    #[serde(default = "default_storage")]
    pub url: String,
    #[serde(default = "default_schema")]
    pub schema: String,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self { url: default_storage(), schema: default_schema() }
    }
}

fn default_storage() -> String {
    "sqlite://enishi.sqlite".into()
}

fn default_schema() -> String {
    "enishi".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    /// Proxies of your own in front of the server (their `X-Forwarded-For` is believed).
    #[serde(default)]
    pub trusted_proxies: u8,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self { listen: default_listen(), public_url: None, trusted_proxies: 0 }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    #[serde(default = "default_sync")]
    pub sync_interval_secs: f64,
    #[serde(default = "default_tick")]
    pub tick_interval_secs: f64,
    #[serde(default = "default_dispatch")]
    pub dispatch_interval_secs: f64,
    #[serde(default = "default_workers")]
    pub workers: usize,
    pub scenario_file: Option<PathBuf>,
    /// How long a link URL stays valid, in seconds on the service's clock.
    pub link_ticket_ttl_secs: Option<u64>,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            sync_interval_secs: default_sync(),
            tick_interval_secs: default_tick(),
            dispatch_interval_secs: default_dispatch(),
            workers: default_workers(),
            scenario_file: None,
            link_ticket_ttl_secs: None,
        }
    }
}

fn default_sync() -> f64 {
    300.0
}
fn default_tick() -> f64 {
    10.0
}
fn default_dispatch() -> f64 {
    1.0
}
fn default_workers() -> usize {
    2
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    #[serde(default = "default_cap")]
    pub max_sends_per_week: u32,
    /// `HH:MM-HH:MM` in JST, or empty for none.
    #[serde(default = "default_quiet")]
    pub quiet_hours: String,
    #[serde(default)]
    pub holdout_percent: u8,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self { max_sends_per_week: default_cap(), quiet_hours: default_quiet(), holdout_percent: 0 }
    }
}

fn default_cap() -> u32 {
    2
}
fn default_quiet() -> String {
    "21:00-09:00".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSection {
    pub id: String,
    pub segment: String,
    pub text: String,
    pub at: DateTime<FixedOffset>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineLoginSection {
    /// The LINE Login channel ID (same provider as the Messaging API channel).
    pub channel_id: String,
    /// The request header the shop's proxy sets to the signed-in customer's ID.
    pub session_header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSection {
    /// The simulated instant at `anchor`.
    pub start: DateTime<Utc>,
    /// The wall-clock instant the simulation started.
    pub anchor: DateTime<Utc>,
    /// Simulated seconds per real second.
    pub speed: u32,
    /// Where the simulated clock stops.
    pub until: DateTime<Utc>,
}

/// A config error, naming the key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

/// Reads and checks the file (not the environment: see [`Config::build`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let config: Config = toml::from_str(&text)
        .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.to_string().trim())))?;
    config.check()?;
    Ok(config)
}

fn env(name: &str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConfigError(format!("{name}: the environment variable is not set")))
}

fn interval(key: &str, secs: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(secs)
        .map_err(|e| bad(key, e))
        .and_then(|d| if d.is_zero() { Err(bad(key, "must be more than 0")) } else { Ok(d) })
}

fn quiet_hours(text: &str) -> Result<Option<QuietHours>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let key = "policy.quiet_hours";
    let (a, b) = text.split_once('-').ok_or_else(|| bad(key, "expected HH:MM-HH:MM"))?;
    let parse = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|e| bad(key, e));
    Ok(Some(QuietHours::new(parse(a)?, parse(b)?)))
}

/// What [`Config::build`] makes.
pub struct Built {
    pub app: Enishi,
    pub run: RunOptions,
}

impl Config {
    fn check(&self) -> Result<(), ConfigError> {
        url::Url::parse(&self.shop.base_url).map_err(|e| bad("shop.base_url", e))?;
        interval("service.sync_interval_secs", self.service.sync_interval_secs)?;
        interval("service.tick_interval_secs", self.service.tick_interval_secs)?;
        interval("service.dispatch_interval_secs", self.service.dispatch_interval_secs)?;
        quiet_hours(&self.policy.quiet_hours)?;
        if self.policy.holdout_percent > 100 {
            return Err(bad("policy.holdout_percent", "must be 0 to 100"));
        }
        for (i, c) in self.campaigns.iter().enumerate() {
            SegmentDefinition::parse(&c.segment)
                .map_err(|e| bad(&format!("campaign[{i}].segment"), e))?;
            MessageTemplate::text(&c.text).map_err(|e| bad(&format!("campaign[{i}].text"), e))?;
            c.id.parse::<enishi::CampaignId>().map_err(|e| bad(&format!("campaign[{i}].id"), e))?;
        }
        self.pages()?;
        self.incentive()?;
        if let Some(hub) = &self.hub {
            // Everything but the secrets (from the environment at start).
            let queue = Arc::new(enishi::hub::MemoryHubQueue::new());
            build_hub(hub, ChannelSecret::new("config-check"), queue, false).map_err(|e| {
                ConfigError(e.to_string().trim_start_matches("config error: ").into())
            })?;
        }
        Ok(())
    }

    fn pages(&self) -> Result<Option<Pages>, ConfigError> {
        let Some(b) = &self.brand else { return Ok(None) };
        let mut brand = Brand::new(&b.name);
        let urls = [
            (&b.logo_url, Brand::logo_url as fn(Brand, String) -> Brand),
            (&b.url, Brand::url),
            (&b.login_url, Brand::login_url),
            (&b.password_reset_url, Brand::password_reset_url),
            (&b.contact_url, Brand::contact_url),
            (&b.line_url, Brand::line_url),
        ];
        for (value, set) in urls {
            if let Some(v) = value {
                brand = set(brand, v.clone());
            }
        }
        if let Some(c) = &b.contact {
            brand = brand.contact(c);
        }
        if let Some(c) = &b.primary_color {
            brand = brand.primary_color(c);
        }
        let mut pages = Pages::builder().brand(brand);
        for (key, text) in &b.texts {
            pages = pages.text(key, text);
        }
        pages.build().map(Some).map_err(|e| match e {
            PagesError::UnknownText { ref key, .. } => bad(&format!("brand.texts.{key}"), &e),
            PagesError::Brand { field, .. } => bad(&format!("brand.{field}"), &e),
            other => bad("brand", other),
        })
    }

    fn incentive(&self) -> Result<Option<LinkIncentive>, ConfigError> {
        let Some(i) = &self.link_incentive else { return Ok(None) };
        let incentive = match (i.points, &i.coupon_name, &i.coupon_code) {
            (Some(p), None, None) if p > 0 => LinkIncentive::points(&i.id, p),
            (None, Some(name), Some(code)) => LinkIncentive::coupon(&i.id, name, code),
            _ => {
                return Err(bad(
                    "link_incentive",
                    "set `points` (> 0), or `coupon_name` and `coupon_code`",
                ));
            }
        };
        Ok(Some(match i.until {
            Some(until) => incentive.until(until.to_utc()),
            None => incentive,
        }))
    }

    fn policy(&self) -> Result<DeliveryPolicy, ConfigError> {
        let mut policy = DeliveryPolicy::new().with_frequency_cap(FrequencyCap::new(
            self.policy.max_sends_per_week,
            TimeDelta::days(7),
        ));
        if let Some(q) = quiet_hours(&self.policy.quiet_hours)? {
            policy = policy.with_quiet_hours(q);
        }
        if self.policy.holdout_percent > 0 {
            policy = policy.with_holdout(Holdout::percent("enishi", self.policy.holdout_percent));
        }
        Ok(policy)
    }

    fn scenarios(&self) -> Result<Option<ScenarioSet>, ConfigError> {
        let Some(path) = &self.service.scenario_file else { return Ok(None) };
        let key = "service.scenario_file";
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(key, format!("{}: {e}", path.display())))?;
        let set = if path.extension().is_some_and(|e| e == "json") {
            ScenarioSet::from_json(&text)
        } else {
            ScenarioSet::from_toml(&text)
        };
        set.map(Some).map_err(|e| bad(key, e))
    }

    /// Reads the secrets from the environment, opens the storage and builds the app.
    pub async fn build(&self, worker: Option<String>) -> Result<Built, Box<dyn std::error::Error>> {
        let token = env("LINE_CHANNEL_ACCESS_TOKEN")?;
        let secret = env("LINE_CHANNEL_SECRET")?;
        let shop_token = env("ECFORCE_API_TOKEN")?;
        let storage_url =
            std::env::var("ENISHI_STORAGE_URL").unwrap_or_else(|_| self.storage.url.clone());
        let mut line = LineClient::builder().channel_access_token(token);
        if let Some(url) = &self.line.api_base_url {
            line = line.base_url(url);
        }
        if let Some(url) = &self.line.data_base_url {
            line = line.data_base_url(url);
        }
        let redis = std::env::var("ENISHI_REDIS_URL").ok().or_else(|| self.line.redis_url.clone());
        if let Some(url) = redis {
            let prefix = self.line.redis_prefix.clone().unwrap_or_else(|| "enishi:line".into());
            let limiter = RedisRateLimiter::connect(&url, prefix)
                .await
                .map_err(|e| Box::<dyn std::error::Error>::from(format!("line.redis_url: {e}")))?;
            line = line.rate_limiter(Arc::new(limiter));
        }
        let line = line.build()?;
        let shop = Arc::new(
            EcforceClient::builder(&self.shop.base_url, shop_token)
                .min_interval(Duration::from_millis(if self.simulation.is_some() {
                    0
                } else {
                    200
                }))
                .sign_in_limit(
                    self.shop.sign_in_limit_per_hour.unwrap_or(5),
                    Duration::from_secs(3600),
                )
                .build()?,
        );
        let storage = Storage::builder(&storage_url).schema(&self.storage.schema).open().await?;
        let storage_links = storage.links();
        let storage_hub = storage.clone();
        let mut app = Enishi::builder()
            .line(line)
            .storage(storage)
            .commerce(shop.clone())
            .authenticator(shop)
            .policy(self.policy()?)
            .channel_secret(ChannelSecret::new(secret.clone()));
        if self.server.trusted_proxies > 0 {
            app = app.forwarded_for(ForwardedFor::TrustedProxies(self.server.trusted_proxies));
        }
        if let Some(url) = &self.server.public_url {
            app = app.public_url(url);
            if let Ok(key) = std::env::var("ENISHI_TRACKING_KEY") {
                app = app.tracking_key(key.into_bytes());
            }
        }
        if let Some(set) = self.scenarios()? {
            app = app.scenarios(set);
        }
        if let Some(login) = &self.line_login {
            let public = self.server.public_url.as_deref().ok_or_else(|| {
                bad("server.public_url", "LINE Login needs the URL its callback is reached at")
            })?;
            let secret = env("LINE_LOGIN_CHANNEL_SECRET")?;
            let callback = format!("{}/login/line/callback", public.trim_end_matches('/'));
            let built =
                LineLogin::builder(&login.channel_id, secret, callback, storage_links.clone());
            let header = login.session_header.to_ascii_lowercase();
            let session = move |h: &axum::http::HeaderMap| {
                h.get(header.as_str())?.to_str().ok()?.parse::<enishi::CustomerId>().ok()
            };
            app = app.line_login(built, session);
        }
        if let Some(sim) = &self.simulation {
            app = app
                .clock(SimulatedClock::anchored(sim.start, sim.speed, sim.anchor).until(sim.until));
        }
        if let Some(pages) = self.pages()? {
            app = app.pages(pages);
        }
        if let Some(incentive) = self.incentive()? {
            app = app.link_incentive(incentive);
        }
        if let Some(ttl) = self.service.link_ticket_ttl_secs {
            app = app.link_ticket_ttl(Duration::from_secs(ttl));
        }
        if let Some(worker) = worker {
            app = app.worker(worker);
        }
        if let Some(hub) = &self.hub {
            let queue = storage_hub.hub_queue().await?;
            app = app.hub(build_hub(hub, ChannelSecret::new(secret.clone()), queue, true)?);
        }
        let app = app.build()?;
        let mut run = RunOptions::new()
            .sync_interval(interval("service.sync_interval_secs", self.service.sync_interval_secs)?)
            .tick_interval(interval("service.tick_interval_secs", self.service.tick_interval_secs)?)
            .dispatch_interval(interval(
                "service.dispatch_interval_secs",
                self.service.dispatch_interval_secs,
            )?)
            .workers(self.service.workers);
        for c in &self.campaigns {
            let campaign = Campaign::new(c.id.parse()?, [MessageTemplate::text(&c.text)?]);
            let segment = SegmentDefinition::parse(&c.segment)?;
            run = run.campaign(ScheduledCampaign::new(campaign, segment, c.at.to_utc()));
        }
        Ok(Built { app, run })
    }
}

fn secs(key: &str, value: Option<f64>) -> Result<Option<Duration>, ConfigError> {
    value.map(|v| interval(key, v)).transpose()
}

/// One `[[hub.destination]]`; with `read_secret`, reads its secret from the environment.
fn hub_destination(
    i: usize,
    d: &HubDestinationSection,
    read_secret: bool,
) -> Result<Destination, ConfigError> {
    let key = |k: &str| format!("hub.destination[{i}].{k}");
    url::Url::parse(&d.url).map_err(|e| bad(&key("url"), e))?;
    let mut dest = Destination::new(&d.name, &d.url);
    if let Some(n) = d.max_attempts {
        dest = dest.max_attempts(n);
    }
    let min = secs(&key("retry_min_secs"), d.retry_min_secs)?;
    let max = secs(&key("retry_max_secs"), d.retry_max_secs)?;
    if min.is_some() || max.is_some() {
        let min = min.unwrap_or(Duration::from_secs(1));
        let max = max.unwrap_or(Duration::from_secs(300)).max(min);
        dest = dest.backoff(Backoff::exponential(min, max));
    }
    if let Some(t) = secs(&key("timeout_secs"), d.timeout_secs)? {
        dest = dest.timeout(t);
    }
    if let Some(events) = &d.events {
        dest = dest.events(events.iter().cloned());
    }
    match &d.secret_env {
        Some(var) if read_secret => dest = dest.secret(ChannelSecret::new(env(var)?)),
        // Checking the file: a placeholder, so the destination is checked as signing itself.
        Some(_) => dest = dest.secret(ChannelSecret::new("config-check")),
        None => {}
    }
    Ok(dest)
}

fn hub_rules(hub: &HubSection) -> Result<ReplyRules, ConfigError> {
    let names: Vec<&str> = hub.destinations.iter().map(|d| d.name.as_str()).collect();
    let known = |key: &str, owner: &str| {
        if owner == ENISHI || names.contains(&owner) {
            Ok(())
        } else {
            Err(bad(key, format!("`{owner}` is neither `enishi` nor a hub.destination name")))
        }
    };
    let mut rules = ReplyRules::new();
    for (i, r) in hub.replies.iter().enumerate() {
        let key = format!("hub.reply[{i}]");
        known(&format!("{key}.owner"), &r.owner)?;
        let owner = r.owner.clone();
        let rule = match (&r.event_type, &r.text_prefix, &r.text_contains, &r.postback_prefix) {
            (Some(t), None, None, None) => ReplyRule::event_type(owner, t),
            (None, Some(p), None, None) => ReplyRule::text_prefix(owner, p),
            (None, None, Some(k), None) => ReplyRule::text_contains(owner, k),
            (None, None, None, Some(p)) => ReplyRule::postback_prefix(owner, p),
            _ => {
                return Err(bad(
                    &key,
                    "set exactly one of event_type, text_prefix, text_contains, postback_prefix",
                ));
            }
        };
        rules = rules.rule(rule);
    }
    if let Some(owner) = &hub.default_owner {
        known("hub.default_owner", owner)?;
        rules = rules.default_owner(owner);
    }
    Ok(rules)
}

/// The hub of `[hub]` over `queue` (the storage's), verifying with the channel's `secret`.
fn build_hub(
    hub: &HubSection,
    secret: ChannelSecret,
    queue: Arc<dyn enishi::hub::HubQueue>,
    read_secrets: bool,
) -> Result<Hub, Box<dyn std::error::Error>> {
    let mut builder = Hub::builder(secret).queue_shared(queue).reply_rules(hub_rules(hub)?);
    if let Some(lease) = secs("hub.lease_secs", hub.lease_secs)? {
        builder = builder.lease(lease);
    }
    if let Some(poll) = secs("hub.poll_interval_secs", hub.poll_interval_secs)? {
        builder = builder.poll_interval(poll);
    }
    for (i, d) in hub.destinations.iter().enumerate() {
        builder = builder.destination(hub_destination(i, d, read_secrets)?);
    }
    builder.build().map_err(|e| bad("hub", e).into())
}
