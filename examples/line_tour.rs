//! Calls every endpoint the LINE client offers, against any LINE-compatible server.
//!
//! ```sh
//! # against an in-process FakeLine; exits 0 only if every call succeeded
//! cargo run --all-features --example line_tour -- --demo
//! # against another server (LINE itself, a mock, a proxy)
//! cargo run --all-features --example line_tour -- \
//!     --api-base http://127.0.0.1:8080 --data-base http://127.0.0.1:8081 --token T \
//!     --user U0123456789abcdef0123456789abcdef
//! ```
//!
//! Prints one line per call, `<step> ok|error|skipped <detail>`, and ends with
//! `line_tour: calls=N ok=N errors=N skipped=N`. Calls that need something only the server's
//! owner has (a reply token, a message ID, the assertion key) are skipped unless given.
//!
//! The tour is the list `STEPS`: adding a call is one line there plus its function.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use enishi::line::message::{Action, Message};
use enishi::line::{
    AccessToken, AssertionKey, AudienceListQuery, Bounds, BroadcastRequest, ChannelTokenClient,
    CouponCreateRequest, CouponReward, CouponStatus, LineClient, MulticastRequest,
    NarrowcastRecipient, NarrowcastRequest, PushRequest, ReplyRequest, RichMenu, RichMenuAlias,
    RichMenuBatchOperation, RichMenuBatchRequest, RichMenuSize, RotatingToken, SendKind, SentKind,
    TokenKind,
};
use enishi::testkit::{self as fake, FakeContent, FakeLine};
use enishi::{
    AggregationUnit, AudienceGroupId, CouponId, LineUserId, RequestId, RichMenuAliasId, RichMenuId,
};
use futures_util::StreamExt;
use secrecy::SecretString;

/// Calls every endpoint of enishi's LINE client against a LINE-compatible server.
#[derive(Debug, clap::Parser)]
#[command(name = "line_tour", version)]
struct Args {
    /// Run against an in-process FakeLine (ignores the server flags).
    #[arg(long)]
    demo: bool,
    /// The JSON API base URL (LINE: https://api.line.me).
    #[arg(long, required_unless_present = "demo")]
    api_base: Option<String>,
    /// The data API base URL (LINE: https://api-data.line.me).
    #[arg(long, required_unless_present = "demo")]
    data_base: Option<String>,
    /// The channel access token.
    #[arg(long, env = "LINE_CHANNEL_ACCESS_TOKEN", required_unless_present = "demo")]
    token: Option<String>,
    /// A friend's user ID for the per-user calls (skipped without one).
    #[arg(long)]
    user: Option<String>,
    /// A reply token from a webhook event (reply is skipped without one).
    #[arg(long)]
    reply_token: Option<String>,
    /// A `markAsReadToken` from a webhook event.
    #[arg(long)]
    mark_as_read_token: Option<String>,
    /// The ID of an image/video message a user sent (content calls are skipped without one).
    #[arg(long)]
    message_id: Option<String>,
    /// A membership plan ID (member IDs are skipped without one).
    #[arg(long)]
    membership_id: Option<i64>,
    /// The channel ID, for the channel access token calls.
    #[arg(long)]
    channel_id: Option<String>,
    /// The channel secret, for stateless tokens by secret and v2.1 revocation.
    #[arg(long, env = "LINE_CHANNEL_SECRET")]
    channel_secret: Option<String>,
    /// The kid of the registered assertion key.
    #[arg(long)]
    assertion_kid: Option<String>,
    /// A file holding the assertion private key (JWK).
    #[arg(long)]
    assertion_key: Option<std::path::PathBuf>,
}

/// What a step did, besides failing.
enum Done {
    Ok(String),
    Skipped(&'static str),
}

type StepResult = Result<Done, Box<dyn std::error::Error + Send + Sync>>;
type StepFuture<'a> = Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;
type StepFn = for<'a> fn(&'a Tour) -> StepFuture<'a>;

/// The tour, in order: later steps use what earlier ones created.
const STEPS: &[(&str, StepFn)] = &[
    ("bot_info", |t| Box::pin(bot_info(t))),
    ("quota", |t| Box::pin(quota(t))),
    ("quota_consumption", |t| Box::pin(quota_consumption(t))),
    ("profile", |t| Box::pin(profile(t))),
    ("follower_ids", |t| Box::pin(follower_ids(t))),
    ("issue_link_token", |t| Box::pin(issue_link_token(t))),
    ("show_loading", |t| Box::pin(show_loading(t))),
    ("mark_as_read", |t| Box::pin(mark_as_read(t))),
    ("validate_messages", |t| Box::pin(validate_messages(t))),
    ("push", |t| Box::pin(push(t))),
    ("reply", |t| Box::pin(reply(t))),
    ("multicast", |t| Box::pin(multicast(t))),
    ("broadcast", |t| Box::pin(broadcast(t))),
    ("create_audience", |t| Box::pin(create_audience(t))),
    ("add_to_audience", |t| Box::pin(add_to_audience(t))),
    ("audience_group", |t| Box::pin(audience_group(t))),
    ("rename_audience", |t| Box::pin(rename_audience(t))),
    ("audience_groups", |t| Box::pin(audience_groups(t))),
    ("create_click_audience", |t| Box::pin(create_click_audience(t))),
    ("create_impression_audience", |t| Box::pin(create_impression_audience(t))),
    ("shared_audience_groups", |t| Box::pin(shared_audience_groups(t))),
    ("shared_audience_group", |t| Box::pin(shared_audience_group(t))),
    ("narrowcast", |t| Box::pin(narrowcast(t))),
    ("narrowcast_progress", |t| Box::pin(narrowcast_progress(t))),
    ("delete_audience", |t| Box::pin(delete_audience(t))),
    ("message_statistics", |t| Box::pin(message_statistics(t))),
    ("aggregation_unit_statistics", |t| Box::pin(aggregation_unit_statistics(t))),
    ("aggregation_unit_usage", |t| Box::pin(aggregation_unit_usage(t))),
    ("aggregation_units", |t| Box::pin(aggregation_units(t))),
    ("delivery_statistics", |t| Box::pin(delivery_statistics(t))),
    ("follower_statistics", |t| Box::pin(follower_statistics(t))),
    ("sent_count", |t| Box::pin(sent_count(t))),
    ("membership_plans", |t| Box::pin(membership_plans(t))),
    ("membership_subscriptions", |t| Box::pin(membership_subscriptions(t))),
    ("membership_member_ids", |t| Box::pin(membership_member_ids(t))),
    ("content_transcoding", |t| Box::pin(content_transcoding(t))),
    ("message_content", |t| Box::pin(message_content(t))),
    ("message_content_preview", |t| Box::pin(message_content_preview(t))),
    ("validate_rich_menu", |t| Box::pin(validate_rich_menu(t))),
    ("create_rich_menu", |t| Box::pin(create_rich_menu(t))),
    ("upload_rich_menu_image", |t| Box::pin(upload_rich_menu_image(t))),
    ("rich_menu", |t| Box::pin(rich_menu(t))),
    ("rich_menus", |t| Box::pin(rich_menus(t))),
    ("set_default_rich_menu", |t| Box::pin(set_default_rich_menu(t))),
    ("default_rich_menu", |t| Box::pin(default_rich_menu(t))),
    ("cancel_default_rich_menu", |t| Box::pin(cancel_default_rich_menu(t))),
    ("link_rich_menu", |t| Box::pin(link_rich_menu(t))),
    ("user_rich_menu", |t| Box::pin(user_rich_menu(t))),
    ("unlink_rich_menu", |t| Box::pin(unlink_rich_menu(t))),
    ("bulk_link_rich_menu", |t| Box::pin(bulk_link_rich_menu(t))),
    ("bulk_unlink_rich_menu", |t| Box::pin(bulk_unlink_rich_menu(t))),
    ("validate_rich_menu_batch", |t| Box::pin(validate_rich_menu_batch(t))),
    ("rich_menu_batch", |t| Box::pin(rich_menu_batch(t))),
    ("rich_menu_batch_progress", |t| Box::pin(rich_menu_batch_progress(t))),
    ("rich_menu_insight_summary", |t| Box::pin(rich_menu_insight_summary(t))),
    ("rich_menu_insight_daily", |t| Box::pin(rich_menu_insight_daily(t))),
    ("create_rich_menu_alias", |t| Box::pin(create_rich_menu_alias(t))),
    ("update_rich_menu_alias", |t| Box::pin(update_rich_menu_alias(t))),
    ("rich_menu_alias", |t| Box::pin(rich_menu_alias(t))),
    ("rich_menu_aliases", |t| Box::pin(rich_menu_aliases(t))),
    ("delete_rich_menu_alias", |t| Box::pin(delete_rich_menu_alias(t))),
    ("delete_rich_menu", |t| Box::pin(delete_rich_menu(t))),
    ("create_coupon", |t| Box::pin(create_coupon(t))),
    ("coupon", |t| Box::pin(coupon(t))),
    ("coupons", |t| Box::pin(coupons(t))),
    ("all_coupons", |t| Box::pin(all_coupons(t))),
    ("push_coupon", |t| Box::pin(push_coupon(t))),
    ("close_coupon", |t| Box::pin(close_coupon(t))),
    ("issue_token_v21", |t| Box::pin(issue_token_v21(t))),
    ("verify_token_v21", |t| Box::pin(verify_token_v21(t))),
    ("token_key_ids_v21", |t| Box::pin(token_key_ids_v21(t))),
    ("revoke_token_v21", |t| Box::pin(revoke_token_v21(t))),
    ("issue_token_stateless", |t| Box::pin(issue_token_stateless(t))),
    ("issue_token_stateless_with_secret", |t| Box::pin(issue_token_stateless_with_secret(t))),
    ("rotating_token_source", |t| Box::pin(rotating_token_source(t))),
];

/// What the steps share.
struct Tour {
    client: LineClient,
    api_base: String,
    http: reqwest::Client,
    user: Option<LineUserId>,
    friends: Vec<LineUserId>,
    reply_token: Option<String>,
    mark_as_read_token: Option<String>,
    message_id: Option<String>,
    membership_id: Option<i64>,
    channel_secret: Option<SecretString>,
    key: Option<Arc<AssertionKey>>,
    /// The assertion key's JWK, for the rotating source (which owns its own key).
    jwk: Option<SecretString>,
    state: Mutex<State>,
}

/// What earlier steps created.
#[derive(Default)]
struct State {
    broadcast: Option<RequestId>,
    narrowcast: Option<RequestId>,
    audience: Option<AudienceGroupId>,
    shared_audience: Option<AudienceGroupId>,
    menu: Option<RichMenuId>,
    v21: Option<AccessToken>,
    coupon: Option<CouponId>,
    menu_batch: Option<RequestId>,
}

impl Tour {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn user(&self) -> Result<&LineUserId, Done> {
        self.user.as_ref().ok_or(Done::Skipped("no --user"))
    }

    fn tokens(&self) -> Result<ChannelTokenClient, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ChannelTokenClient::new(&self.api_base, self.http.clone())?)
    }
}

macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(done) => return Ok(done),
        }
    };
}

fn ok(detail: impl Into<String>) -> StepResult {
    Ok(Done::Ok(detail.into()))
}

fn text(s: &str) -> Vec<Message> {
    vec![Message::text(s)]
}

fn menu_alias() -> Result<RichMenuAliasId, enishi::IdError> {
    RichMenuAliasId::new("line-tour")
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

fn tour_menu() -> RichMenu {
    RichMenu::new("line-tour", "メニュー", RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 2500, 843), Action::uri("マイページ", "https://shop.example/my"))
}

async fn bot_info(t: &Tour) -> StepResult {
    let info = t.client.bot_info().await?;
    ok(format!("bot={}", info.user_id))
}

async fn quota(t: &Tour) -> StepResult {
    let q = t.client.quota().await?;
    ok(q.kind.as_str())
}

async fn quota_consumption(t: &Tour) -> StepResult {
    ok(format!("used={}", t.client.quota_consumption().await?))
}

async fn profile(t: &Tour) -> StepResult {
    let user = need!(t.user());
    let p = t.client.profile(user).await?;
    ok(format!("name={}", p.display_name))
}

async fn follower_ids(t: &Tour) -> StepResult {
    let ids: Vec<_> = t.client.follower_ids(Some(2)).take(3).collect().await;
    let ids = ids.into_iter().collect::<Result<Vec<_>, _>>()?;
    ok(format!("first_ids={}", ids.len()))
}

async fn issue_link_token(t: &Tour) -> StepResult {
    let user = need!(t.user());
    t.client.issue_link_token(user).await?;
    ok("issued")
}

async fn show_loading(t: &Tour) -> StepResult {
    let user = need!(t.user());
    t.client.show_loading(user, 5).await?;
    ok("5s")
}

async fn mark_as_read(t: &Tour) -> StepResult {
    let token =
        need!(t.mark_as_read_token.as_deref().ok_or(Done::Skipped("no --mark-as-read-token")));
    t.client.mark_as_read(token).await?;
    ok("read")
}

async fn validate_messages(t: &Tour) -> StepResult {
    t.client.validate_messages(SendKind::Push, &text("検証")).await?;
    ok("valid")
}

async fn push(t: &Tour) -> StepResult {
    let user = need!(t.user());
    let sent = t.client.push(PushRequest::new(user.clone(), text("line_tour: push"))).await?;
    ok(format!("messages={}", sent.sent_messages.len()))
}

async fn reply(t: &Tour) -> StepResult {
    let token = need!(t.reply_token.clone().ok_or(Done::Skipped("no --reply-token")));
    t.client.reply(ReplyRequest::new(token, text("line_tour: reply"))).await?;
    ok("replied")
}

async fn multicast(t: &Tour) -> StepResult {
    if t.friends.is_empty() {
        return Ok(Done::Skipped("no --user"));
    }
    t.client
        .multicast(MulticastRequest::new(t.friends.clone(), text("line_tour: multicast")))
        .await?;
    ok(format!("to={}", t.friends.len()))
}

async fn broadcast(t: &Tour) -> StepResult {
    let accepted = t.client.broadcast(BroadcastRequest::new(text("line_tour: broadcast"))).await?;
    let id = accepted.request_id.clone();
    t.state().broadcast = id;
    ok("accepted")
}

async fn create_audience(t: &Tour) -> StepResult {
    if t.friends.is_empty() {
        return Ok(Done::Skipped("no --user"));
    }
    let group = t.client.create_audience("line_tour", &t.friends[..1]).await?;
    t.state().audience = Some(group.audience_group_id);
    ok(format!("id={}", group.audience_group_id))
}

async fn add_to_audience(t: &Tour) -> StepResult {
    let id = need!(t.state().audience.ok_or(Done::Skipped("no audience")));
    t.client.add_to_audience(id, &t.friends).await?;
    ok(format!("added={}", t.friends.len()))
}

async fn audience_group(t: &Tour) -> StepResult {
    let id = need!(t.state().audience.ok_or(Done::Skipped("no audience")));
    let group = t.client.audience_group(id).await?;
    ok(format!("status={:?}", group.status.map(|s| s.as_str().to_owned())))
}

async fn rename_audience(t: &Tour) -> StepResult {
    let id = need!(t.state().audience.ok_or(Done::Skipped("no audience")));
    t.client.rename_audience(id, "line_tour (renamed)").await?;
    ok("renamed")
}

async fn audience_groups(t: &Tour) -> StepResult {
    let page = t.client.audience_groups(&AudienceListQuery::page(1).size(40)).await?;
    ok(format!("total={}", page.total_count))
}

async fn create_click_audience(t: &Tour) -> StepResult {
    let request = need!(t.state().broadcast.clone().ok_or(Done::Skipped("no broadcast")));
    let group = t.client.create_click_audience("line_tour clicks", &request, None).await?;
    ok(format!("id={}", group.audience_group_id))
}

async fn create_impression_audience(t: &Tour) -> StepResult {
    let request = need!(t.state().broadcast.clone().ok_or(Done::Skipped("no broadcast")));
    let group = t.client.create_impression_audience("line_tour opens", &request).await?;
    ok(format!("id={}", group.audience_group_id))
}

async fn shared_audience_groups(t: &Tour) -> StepResult {
    let page = t.client.shared_audience_groups(&AudienceListQuery::page(1)).await?;
    t.state().shared_audience = page.audience_groups.first().map(|g| g.audience_group_id);
    ok(format!("total={}", page.total_count))
}

async fn shared_audience_group(t: &Tour) -> StepResult {
    let id = need!(t.state().shared_audience.ok_or(Done::Skipped("no shared audience")));
    let shared = t.client.shared_audience_group(id).await?;
    ok(format!("owner={:?}", shared.owner.and_then(|o| o.name)))
}

async fn narrowcast(t: &Tour) -> StepResult {
    let id = need!(t.state().audience.ok_or(Done::Skipped("no audience")));
    let request = NarrowcastRequest::new(text("line_tour: narrowcast"))
        .recipient(NarrowcastRecipient::audience(id));
    let accepted = t.client.narrowcast(request).await?;
    t.state().narrowcast = accepted.request_id.clone();
    ok("accepted")
}

async fn narrowcast_progress(t: &Tour) -> StepResult {
    let id = need!(t.state().narrowcast.clone().ok_or(Done::Skipped("no narrowcast")));
    let progress = t.client.narrowcast_progress(&id).await?;
    ok(format!("phase={}", progress.phase.as_str()))
}

async fn delete_audience(t: &Tour) -> StepResult {
    let id = need!(t.state().audience.ok_or(Done::Skipped("no audience")));
    t.client.delete_audience(id).await?;
    ok("deleted")
}

async fn message_statistics(t: &Tour) -> StepResult {
    let id = need!(t.state().broadcast.clone().ok_or(Done::Skipped("no broadcast")));
    let stats = t.client.message_statistics(&id).await?;
    ok(format!("messages={}", stats.messages.len()))
}

async fn aggregation_unit_statistics(t: &Tour) -> StepResult {
    let unit = AggregationUnit::new("line_tour")?;
    let today = chrono::Utc::now().date_naive();
    t.client.aggregation_unit_statistics(&unit, today - chrono::Days::new(7), today).await?;
    ok("7 days")
}

async fn aggregation_unit_usage(t: &Tour) -> StepResult {
    ok(format!("units={}", t.client.aggregation_unit_usage().await?))
}

async fn aggregation_units(t: &Tour) -> StepResult {
    ok(format!("units={}", t.client.aggregation_units().await?.len()))
}

async fn delivery_statistics(t: &Tour) -> StepResult {
    let stats = t.client.delivery_statistics(chrono::Utc::now().date_naive()).await?;
    ok(format!("status={} push={:?}", stats.status.as_str(), stats.api_push))
}

async fn follower_statistics(t: &Tour) -> StepResult {
    let stats = t.client.follower_statistics(chrono::Utc::now().date_naive()).await?;
    ok(format!("status={} followers={:?}", stats.status.as_str(), stats.followers))
}

async fn sent_count(t: &Tour) -> StepResult {
    let today = chrono::Utc::now().date_naive();
    let mut counts = Vec::new();
    for kind in SentKind::ALL {
        counts.push(format!("{:?}", t.client.sent_count(kind, today).await?.success));
    }
    ok(counts.join(","))
}

async fn membership_plans(t: &Tour) -> StepResult {
    ok(format!("plans={}", t.client.membership_plans().await?.len()))
}

async fn membership_subscriptions(t: &Tour) -> StepResult {
    let user = need!(t.user());
    ok(format!("subscriptions={}", t.client.membership_subscriptions(user).await?.len()))
}

async fn membership_member_ids(t: &Tour) -> StepResult {
    let id = need!(t.membership_id.ok_or(Done::Skipped("no --membership-id")));
    let ids: Vec<_> = t.client.membership_member_ids(id, Some(1)).collect().await;
    let ids = ids.into_iter().collect::<Result<Vec<_>, _>>()?;
    ok(format!("members={}", ids.len()))
}

async fn content_transcoding(t: &Tour) -> StepResult {
    let id = need!(t.message_id.as_deref().ok_or(Done::Skipped("no --message-id")));
    ok(t.client.content_transcoding(id).await?.as_str())
}

async fn message_content(t: &Tour) -> StepResult {
    let id = need!(t.message_id.as_deref().ok_or(Done::Skipped("no --message-id")));
    let mut stream = t.client.message_content(id).await?;
    let (mut bytes, mut chunks) = (0, 0);
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
        chunks += 1;
    }
    ok(format!("bytes={bytes} chunks={chunks}"))
}

async fn message_content_preview(t: &Tour) -> StepResult {
    let id = need!(t.message_id.as_deref().ok_or(Done::Skipped("no --message-id")));
    let mut stream = t.client.message_content_preview(id).await?;
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    ok(format!("bytes={bytes}"))
}

async fn validate_rich_menu(t: &Tour) -> StepResult {
    t.client.validate_rich_menu(&tour_menu()).await?;
    ok("valid")
}

async fn create_rich_menu(t: &Tour) -> StepResult {
    let id = t.client.create_rich_menu(&tour_menu()).await?;
    t.state().menu = Some(id.clone());
    ok(format!("id={id}"))
}

fn menu(t: &Tour) -> Result<RichMenuId, Done> {
    t.state().menu.clone().ok_or(Done::Skipped("no rich menu"))
}

async fn upload_rich_menu_image(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    t.client.upload_rich_menu_image(&id, png(2500, 843)).await?;
    ok("uploaded")
}

async fn rich_menu(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    let info = t.client.rich_menu(&id).await?;
    ok(format!("name={}", info.name))
}

async fn rich_menus(t: &Tour) -> StepResult {
    ok(format!("menus={}", t.client.rich_menus().await?.len()))
}

async fn set_default_rich_menu(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    t.client.set_default_rich_menu(&id).await?;
    ok("set")
}

async fn default_rich_menu(t: &Tour) -> StepResult {
    ok(format!("default={:?}", t.client.default_rich_menu().await?.map(|m| m.to_string())))
}

async fn cancel_default_rich_menu(t: &Tour) -> StepResult {
    t.client.cancel_default_rich_menu().await?;
    ok("cancelled")
}

async fn link_rich_menu(t: &Tour) -> StepResult {
    let (id, user) = (need!(menu(t)), need!(t.user()));
    t.client.link_rich_menu(user, &id).await?;
    ok("linked")
}

async fn user_rich_menu(t: &Tour) -> StepResult {
    let user = need!(t.user());
    ok(format!("menu={:?}", t.client.user_rich_menu(user).await?.map(|m| m.to_string())))
}

async fn unlink_rich_menu(t: &Tour) -> StepResult {
    let user = need!(t.user());
    t.client.unlink_rich_menu(user).await?;
    ok("unlinked")
}

async fn bulk_link_rich_menu(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    if t.friends.is_empty() {
        return Ok(Done::Skipped("no --user"));
    }
    t.client.bulk_link_rich_menu(&t.friends, &id).await?;
    ok(format!("users={}", t.friends.len()))
}

async fn bulk_unlink_rich_menu(t: &Tour) -> StepResult {
    if t.friends.is_empty() {
        return Ok(Done::Skipped("no --user"));
    }
    t.client.bulk_unlink_rich_menu(&t.friends).await?;
    ok(format!("users={}", t.friends.len()))
}

async fn create_rich_menu_alias(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    t.client.create_rich_menu_alias(&RichMenuAlias::new(menu_alias()?, id)).await?;
    ok("created")
}

async fn update_rich_menu_alias(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    t.client.update_rich_menu_alias(&menu_alias()?, &id).await?;
    ok("updated")
}

async fn rich_menu_alias(t: &Tour) -> StepResult {
    let alias = t.client.rich_menu_alias(&menu_alias()?).await?;
    ok(format!("menu={}", alias.rich_menu_id))
}

async fn rich_menu_aliases(t: &Tour) -> StepResult {
    ok(format!("aliases={}", t.client.rich_menu_aliases().await?.len()))
}

async fn delete_rich_menu_alias(t: &Tour) -> StepResult {
    t.client.delete_rich_menu_alias(&menu_alias()?).await?;
    ok("deleted")
}

/// Moves every user of the tour's menu off it in one `richmenu/batch` request.
fn tour_batch(t: &Tour) -> Result<RichMenuBatchRequest, Done> {
    let from = menu(t)?;
    Ok(RichMenuBatchRequest::new(vec![RichMenuBatchOperation::Unlink { from }])
        .resume_request_key("line-tour"))
}

async fn validate_rich_menu_batch(t: &Tour) -> StepResult {
    let request = need!(tour_batch(t));
    t.client.validate_rich_menu_batch(&request).await?;
    ok("valid")
}

async fn rich_menu_batch(t: &Tour) -> StepResult {
    let request = need!(tour_batch(t));
    let id = t.client.rich_menu_batch(&request).await?;
    t.state().menu_batch = Some(id.clone());
    ok(format!("request={id}"))
}

async fn rich_menu_batch_progress(t: &Tour) -> StepResult {
    let id = need!(t.state().menu_batch.clone().ok_or(Done::Skipped("no batch request")));
    let progress = t.client.rich_menu_batch_progress(&id).await?;
    ok(format!("phase={:?}", progress.phase))
}

/// The last seven days of the tour's menu statistics (JST dates).
fn insight_days() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!());
    let today = chrono::Utc::now().with_timezone(&jst).date_naive();
    (today - chrono::Duration::days(7), today - chrono::Duration::days(1))
}

async fn rich_menu_insight_summary(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    let (from, to) = insight_days();
    let summary = t.client.rich_menu_insight_summary(&id, from, to).await?;
    ok(format!("areas={}", summary.clicks.len()))
}

async fn rich_menu_insight_daily(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    let (from, to) = insight_days();
    let daily = t.client.rich_menu_insight_daily(&id, from, to).await?;
    ok(format!("areas={}", daily.clicks.len()))
}

async fn delete_rich_menu(t: &Tour) -> StepResult {
    let id = need!(menu(t));
    t.client.delete_rich_menu(&id).await?;
    ok("deleted")
}

fn key(t: &Tour) -> Result<Arc<AssertionKey>, Done> {
    t.key.clone().ok_or(Done::Skipped("no --assertion-key/--assertion-kid/--channel-id"))
}

async fn create_coupon(t: &Tour) -> StepResult {
    let start = chrono::Utc::now();
    let coupon =
        CouponCreateRequest::new("line_tour 10%OFF", start, start + chrono::Duration::days(7))
            .reward(CouponReward::discount_percent(10));
    let id = t.client.create_coupon(&coupon).await?;
    t.state().coupon = Some(id.clone());
    ok(format!("coupon={id}"))
}

fn tour_coupon(t: &Tour) -> Result<CouponId, Done> {
    t.state().coupon.clone().ok_or(Done::Skipped("no coupon created"))
}

async fn coupon(t: &Tour) -> StepResult {
    let id = need!(tour_coupon(t));
    let info = t.client.coupon(&id).await?;
    ok(format!("status={:?}", info.status))
}

async fn coupons(t: &Tour) -> StepResult {
    let page = t.client.coupons(&[CouponStatus::Running], None, Some(10)).await?;
    ok(format!("items={}", page.items.len()))
}

async fn all_coupons(t: &Tour) -> StepResult {
    ok(format!("coupons={}", t.client.all_coupons(&[]).await?.len()))
}

async fn push_coupon(t: &Tour) -> StepResult {
    let user = need!(t.user());
    let id = need!(tour_coupon(t));
    let request = PushRequest::new(user.clone(), vec![Message::coupon(id.as_str())]);
    let sent = t.client.push(request).await?;
    ok(format!("messages={}", sent.sent_messages.len()))
}

async fn close_coupon(t: &Tour) -> StepResult {
    let id = need!(tour_coupon(t));
    t.client.close_coupon(&id).await?;
    ok("closed")
}

async fn issue_token_v21(t: &Tour) -> StepResult {
    let key = need!(key(t));
    let issued = t.tokens()?.issue_v21(&key, Duration::from_secs(3600)).await?;
    t.state().v21 = Some(issued.access_token);
    ok(format!("expires_in={}", issued.expires_in))
}

async fn verify_token_v21(t: &Tour) -> StepResult {
    let token = need!(t.state().v21.clone().ok_or(Done::Skipped("no v2.1 token")));
    let info = t.tokens()?.verify(&token).await?;
    ok(format!("expires_in={}", info.expires_in))
}

async fn token_key_ids_v21(t: &Tour) -> StepResult {
    let key = need!(key(t));
    ok(format!("kids={}", t.tokens()?.valid_key_ids(&key).await?.len()))
}

async fn revoke_token_v21(t: &Tour) -> StepResult {
    let key = need!(key(t));
    let secret = need!(t.channel_secret.as_ref().ok_or(Done::Skipped("no --channel-secret")));
    let token = need!(t.state().v21.clone().ok_or(Done::Skipped("no v2.1 token")));
    t.tokens()?.revoke_v21(key.channel_id(), secret, &token).await?;
    ok("revoked")
}

async fn issue_token_stateless(t: &Tour) -> StepResult {
    let key = need!(key(t));
    let issued = t.tokens()?.issue_stateless(&key).await?;
    ok(format!("expires_in={}", issued.expires_in))
}

async fn issue_token_stateless_with_secret(t: &Tour) -> StepResult {
    let key = need!(key(t));
    let secret = need!(t.channel_secret.as_ref().ok_or(Done::Skipped("no --channel-secret")));
    let issued = t.tokens()?.issue_stateless_with_secret(key.channel_id(), secret).await?;
    ok(format!("expires_in={}", issued.expires_in))
}

/// A client whose token is issued and rotated from the assertion key, calling `bot/info`.
async fn rotating_token_source(t: &Tour) -> StepResult {
    let key = need!(key(t));
    // The source owns its key: read it again from the same JWK the tour was given.
    let jwk = need!(t.jwk.as_ref().ok_or(Done::Skipped("no assertion key")));
    let key = AssertionKey::from_jwk(key.channel_id(), key.kid(), jwk)?;
    let source = Arc::new(RotatingToken::new(t.tokens()?, key, TokenKind::Stateless));
    let client = LineClient::builder()
        .token_source(source.clone())
        .base_url(t.api_base.clone())
        .http_client(t.http.clone())
        .build()?;
    client.bot_info().await?;
    ok(format!("issued={}", source.issued_count()))
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("line_tour: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let demo = args.demo;
    let (fake, tour) = match if demo { demo_tour(args).await } else { server_tour(args) } {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("line_tour: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut oks, mut errors, mut skipped) = (0, 0, 0);
    for (name, step) in STEPS {
        match step(&tour).await {
            Ok(Done::Ok(detail)) => {
                oks += 1;
                println!("{name} ok {detail}");
            }
            Ok(Done::Skipped(why)) => {
                skipped += 1;
                println!("{name} skipped {why}");
            }
            Err(e) => {
                errors += 1;
                println!("{name} error {e}");
            }
        }
    }
    if let Some(line) = &fake {
        let c = line.counters();
        println!(
            "fake: requests={} unmatched={} http_401={}",
            c.requests, c.unmatched, c.unauthorized
        );
    }
    println!("line_tour: calls={} ok={oks} errors={errors} skipped={skipped}", STEPS.len());
    let success = errors == 0 && (!demo || skipped == 0);
    if success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

type Setup = Result<(Option<FakeLine>, Tour), Box<dyn std::error::Error + Send + Sync>>;

fn server_tour(args: Args) -> Setup {
    let api_base = args.api_base.unwrap_or_default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let client = LineClient::builder()
        .channel_access_token(args.token.unwrap_or_default())
        .base_url(api_base.clone())
        .data_base_url(args.data_base.unwrap_or_default())
        .http_client(http.clone())
        .build()?;
    let user = args.user.as_deref().map(str::parse::<LineUserId>).transpose()?;
    let (key, jwk) = match (&args.assertion_key, &args.assertion_kid, &args.channel_id) {
        (Some(path), Some(kid), Some(channel)) => {
            let jwk = SecretString::from(std::fs::read_to_string(path)?);
            let key = AssertionKey::from_jwk(channel.clone(), kid.clone(), &jwk)?;
            (Some(Arc::new(key)), Some(jwk))
        }
        _ => (None, None),
    };
    Ok((
        None,
        Tour {
            client,
            api_base,
            http,
            friends: user.iter().cloned().collect(),
            user,
            reply_token: args.reply_token,
            mark_as_read_token: args.mark_as_read_token,
            message_id: args.message_id,
            membership_id: args.membership_id,
            channel_secret: args.channel_secret.map(SecretString::from),
            key,
            jwk,
            state: Mutex::default(),
        },
    ))
}

async fn demo_tour(_args: Args) -> Setup {
    let friends: Vec<String> = (1..=5).map(fake::user_id).collect();
    let line = FakeLine::builder()
        .friends(&friends)
        .audience_ready_after(Duration::ZERO)
        .narrowcast_duration(Duration::ZERO)
        .no_rate_limits()
        .start()
        .await?;
    line.add_membership_plan(serde_json::json!({
        "membershipId": 3189, "title": "定期便メンバー", "description": "毎月のお届け",
        "benefits": ["送料無料"], "price": 500.0, "currency": "JPY",
    }))?;
    line.add_membership_member(3189, &friends[0])?;
    line.add_content(
        "100001",
        FakeContent::new("image/jpeg", vec![7u8; 200_000]).preview(vec![1u8; 1000]),
    );
    line.add_shared_audience(4_000_000_000_001, "共有オーディエンス", "enishi demo business");
    let reply_token = line.issue_reply_token(&friends[0])?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .http_client(http.clone())
        .build()?;
    let jwk = SecretString::from(fake::TEST_ASSERTION_KEY_JWK.to_owned());
    let key = AssertionKey::from_jwk(fake::TEST_CHANNEL_ID, fake::TEST_ASSERTION_KID, &jwk)?;
    let friends: Vec<LineUserId> = friends.iter().map(|f| f.parse()).collect::<Result<_, _>>()?;
    let tour = Tour {
        client,
        api_base: line.api_base_url(),
        http,
        user: friends.first().cloned(),
        friends,
        reply_token: Some(reply_token),
        mark_as_read_token: Some("line-tour-read-token".into()),
        message_id: Some("100001".into()),
        membership_id: Some(3189),
        channel_secret: Some(SecretString::from(fake::TEST_CHANNEL_SECRET.to_owned())),
        key: Some(Arc::new(key)),
        jwk: Some(jwk),
        state: Mutex::default(),
    };
    Ok((Some(line), tour))
}
