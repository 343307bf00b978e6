//! Endpoint handlers. Each is a plain function: the prologue (auth, rate limit, faults) already
//! ran, and nothing here awaits, so no lock is ever held across an await.

mod audience;
mod audience_manage;
mod content;
mod coupon;
mod delivery;
mod insight;
mod membership;
mod messaging;
mod richmenu;
mod token;
mod users;

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};

use super::endpoint::Endpoint;
use super::respond::{self, Detail};
use super::server::{Handler, Input};
use super::validate::Check;

pub(crate) use token::public_key_of;
pub use token::{TEST_ASSERTION_KEY_JWK, TEST_ASSERTION_KID, TEST_CHANNEL_ID, TEST_CHANNEL_SECRET};

/// The handler for `endpoint`.
pub(crate) fn handler(endpoint: Endpoint) -> Handler {
    match endpoint {
        Endpoint::Reply => messaging::reply,
        Endpoint::Push => messaging::push,
        Endpoint::Multicast => messaging::multicast,
        Endpoint::Narrowcast => messaging::narrowcast,
        Endpoint::NarrowcastProgress => messaging::narrowcast_progress,
        Endpoint::Broadcast => messaging::broadcast,
        Endpoint::ValidateReply
        | Endpoint::ValidatePush
        | Endpoint::ValidateMulticast
        | Endpoint::ValidateNarrowcast
        | Endpoint::ValidateBroadcast => messaging::validate_messages,
        Endpoint::Quota => messaging::quota,
        Endpoint::QuotaConsumption => messaging::quota_consumption,
        Endpoint::Profile => users::profile,
        Endpoint::FollowerIds => users::follower_ids,
        Endpoint::BotInfo => users::bot_info,
        Endpoint::LinkToken => users::link_token,
        Endpoint::ShowLoading => users::show_loading,
        Endpoint::MarkAsRead => users::mark_as_read,
        Endpoint::RichMenuCreate => richmenu::create,
        Endpoint::RichMenuValidate => richmenu::validate,
        Endpoint::RichMenuUploadImage => richmenu::upload_image,
        Endpoint::RichMenuDownloadImage => richmenu::download_image,
        Endpoint::RichMenuGet => richmenu::get,
        Endpoint::RichMenuDelete => richmenu::delete,
        Endpoint::RichMenuList => richmenu::list,
        Endpoint::DefaultRichMenuSet => richmenu::set_default,
        Endpoint::DefaultRichMenuGet => richmenu::get_default,
        Endpoint::DefaultRichMenuCancel => richmenu::cancel_default,
        Endpoint::UserRichMenuLink => richmenu::link_user,
        Endpoint::UserRichMenuGet => richmenu::get_user,
        Endpoint::UserRichMenuUnlink => richmenu::unlink_user,
        Endpoint::RichMenuBulkLink => richmenu::bulk_link,
        Endpoint::RichMenuBulkUnlink => richmenu::bulk_unlink,
        Endpoint::RichMenuAliasCreate => richmenu::alias_create,
        Endpoint::RichMenuAliasUpdate => richmenu::alias_update,
        Endpoint::RichMenuAliasGet => richmenu::alias_get,
        Endpoint::RichMenuAliasList => richmenu::alias_list,
        Endpoint::RichMenuAliasDelete => richmenu::alias_delete,
        Endpoint::AudienceCreate => audience::create,
        Endpoint::AudienceAdd => audience::add,
        Endpoint::AudienceGet => audience::get,
        Endpoint::AudienceDelete => audience::delete,
        Endpoint::InsightMessageEvent => insight::message_event,
        Endpoint::InsightUnitStatistics => insight::unit_statistics,
        Endpoint::AggregationUnitInfo => insight::unit_info,
        Endpoint::AggregationUnitList => insight::unit_list,
        Endpoint::MembershipList => membership::list,
        Endpoint::MembershipSubscription => membership::subscription,
        Endpoint::MembershipUserIds => membership::user_ids,
        Endpoint::InsightDelivery => delivery::insight_delivery,
        Endpoint::InsightFollowers => delivery::followers,
        Endpoint::SentCount => delivery::sent_count,
        Endpoint::AudienceClick => audience_manage::create_click,
        Endpoint::AudienceImp => audience_manage::create_imp,
        Endpoint::AudienceRename => audience_manage::rename,
        Endpoint::AudienceList => audience_manage::list,
        Endpoint::SharedAudienceList => audience_manage::shared_list,
        Endpoint::SharedAudienceGet => audience_manage::shared_get,
        Endpoint::MessageContent => content::content,
        Endpoint::MessageContentPreview => content::preview,
        Endpoint::MessageContentTranscoding => content::transcoding,
        Endpoint::TokenIssueV21 => token::issue_v21,
        Endpoint::TokenVerifyV21 => token::verify_v21,
        Endpoint::TokenRevokeV21 => token::revoke_v21,
        Endpoint::TokenKeyIds => token::key_ids,
        Endpoint::TokenIssueStateless => token::issue_stateless,
        Endpoint::CouponCreate => coupon::create,
        Endpoint::CouponList => coupon::list,
        Endpoint::CouponGet => coupon::get,
        Endpoint::CouponClose => coupon::close,
        Endpoint::RichMenuBatch => richmenu::batch,
        Endpoint::RichMenuBatchValidate => richmenu::validate_batch,
        Endpoint::RichMenuBatchProgress => richmenu::batch_progress,
        Endpoint::RichMenuInsightSummary => richmenu::insight_summary,
        Endpoint::RichMenuInsightDaily => richmenu::insight_daily,
        Endpoint::PnpPush => messaging::pnp_push,
    }
}

/// Lets handlers use `?` on `Result<_, Response>`.
fn respond_with(f: impl FnOnce() -> Result<Response, Response>) -> Response {
    f().unwrap_or_else(|response| response)
}

/// The request body as JSON, or LINE's 413 / 415 / 400.
fn json_body(input: &Input) -> Result<Value, Response> {
    let Some(body) = &input.body else {
        return Err(respond::error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
    };
    let is_json =
        input.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(respond::error_with(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            &[Detail::new("Content-Type", "must be application/json")],
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        respond::error_with(
            StatusCode::BAD_REQUEST,
            "The request body could not be parsed as JSON",
            &[Detail::message_only(e.to_string())],
        )
    })
}

/// The body as a JSON object, or a 400 saying it is not one.
fn json_object(input: &Input) -> Result<Map<String, Value>, Response> {
    match json_body(input)? {
        Value::Object(map) => Ok(map),
        _ => {
            let mut check = Check::new();
            check.add("", "The request body must be a JSON object");
            Err(check.finish().err().unwrap_or_else(respond::server_error))
        }
    }
}

/// A 400 for a path or query parameter with a bad value.
fn bad_parameter(name: &str, message: &str) -> Response {
    respond::error_with(
        StatusCode::BAD_REQUEST,
        &format!("The value for the '{name}' parameter is invalid"),
        &[Detail::new(name, message)],
    )
}

/// Encodes a paging position as an opaque `next` token.
fn page_token(kind: &str, offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{offset}"))
}

/// Decodes a `start` token made by [`page_token`] for the same `kind`.
fn page_offset(kind: &str, token: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(kind)?.strip_prefix(':')?.parse().ok()
}
