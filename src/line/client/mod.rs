//! The LINE Messaging API client.

mod audience;
mod error;
mod insight;
mod line_client;
mod messaging;
mod model;
mod pnp;
mod ratelimit;
#[cfg(feature = "redis")]
mod redis_limit;
mod request;
mod retry;
mod richmenu;
mod users;

pub use crate::retry::{Decision, RateLimit, StopReason};
pub use audience::{AUDIENCE_UPLOAD_CHUNK, AudienceGroup, AudienceGroupStatus};
pub use error::{ApiError, ErrorDetail, LineError};
pub use insight::{
    ClickStatistics, InteractionStatistics, MessageStatistics, Quota, QuotaType, StatisticsOverview,
};
pub use line_client::{DEFAULT_BASE_URL, DEFAULT_DATA_BASE_URL, LineClient, LineClientBuilder};
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
pub use users::{BotInfo, ChatMode, LinkToken, MarkAsReadMode, Profile};
