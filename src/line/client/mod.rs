//! The LINE Messaging API client.

mod audience;
mod audience_manage;
mod content;
mod coupon;
mod delivery;
mod error;
mod insight;
mod line_client;
mod membership;
mod messaging;
mod model;
mod pnp;
mod ratelimit;
#[cfg(feature = "redis")]
mod redis_limit;
mod request;
mod retry;
mod richmenu;
mod richmenu_batch;
mod token;
mod users;

pub use crate::retry::{Decision, RateLimit, StopReason};
pub use audience::{AUDIENCE_UPLOAD_CHUNK, AudienceGroup, AudienceGroupStatus};
pub use audience_manage::{
    AudienceGroupPage, AudienceListQuery, AudienceOwner, SharedAudienceGroup,
};
pub use content::{ContentStream, TranscodingStatus};
pub use coupon::{
    AcquisitionCondition, AcquisitionType, COUPON_DESCRIPTION_MAX, COUPON_LIST_MAX,
    COUPON_MAX_ACQUIRE_COUNT, COUPON_TITLE_MAX, COUPON_USAGE_CONDITION_MAX, CouponCreateRequest,
    CouponInfo, CouponPage, CouponReward, CouponRewardType, CouponStatus, CouponSummary,
    CouponTimezone, CouponVisibility, PriceInfo, PriceInfoType,
};
pub use delivery::{DeliveryStatistics, FollowerStatistics, SentCount, SentKind, StatisticsStatus};
pub use error::{ApiError, ErrorDetail, LineError};
pub use insight::{
    ClickStatistics, InteractionStatistics, MessageStatistics, Quota, QuotaType, StatisticsOverview,
};
pub use line_client::{DEFAULT_BASE_URL, DEFAULT_DATA_BASE_URL, LineClient, LineClientBuilder};
pub use membership::{
    MembershipCurrency, MembershipMember, MembershipPlan, MembershipSubscription,
};
pub use messaging::{
    Accepted, BroadcastRequest, ChunkOutcome, MULTICAST_CHUNK, MulticastReport, MulticastRequest,
    NarrowcastLimit, NarrowcastPhase, NarrowcastProgress, NarrowcastRecipient, NarrowcastRequest,
    PushRequest, PushResponse, Recipient, ReplyRequest, ReplyResponse, SendKind, SentMessage,
};
pub use pnp::{PnpPushRequest, PnpResponse, hash_phone_number};
pub use ratelimit::{EndpointClass, LocalRateLimiter, RateLimiter, RateLimiterError, RateLimits};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_limit::{RedisGrant, RedisRateLimiter};
pub use retry::{CallOutcome, RetryPolicy};
pub use richmenu::{
    Bounds, ImageType, RICH_MENU_BULK_CHUNK, RICH_MENU_IMAGE_MAX_BYTES, RichMenu, RichMenuAlias,
    RichMenuArea, RichMenuInfo, RichMenuSize,
};
pub use richmenu_batch::{
    RICH_MENU_BATCH_MAX_OPERATIONS, RichMenuAreaClicks, RichMenuBatchOperation, RichMenuBatchPhase,
    RichMenuBatchProgress, RichMenuBatchRequest, RichMenuDailyMetrics, RichMenuImpression,
    RichMenuInsight, RichMenuInsightDaily, RichMenuInsightSummary, RichMenuMetrics, is_resume_key,
};
pub use token::{
    AccessToken, AssertionIssuer, AssertionKey, ChannelTokenClient, IssuedToken,
    MAX_V21_TOKEN_LIFETIME, RotatingToken, StaticToken, TokenInfo, TokenIssuer, TokenKind,
    TokenSource,
};
pub use users::{BotInfo, ChatMode, LinkToken, MarkAsReadMode, Profile};
