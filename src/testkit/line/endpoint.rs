//! The operations the fake LINE server implements, and their rate-limit classes.

use std::fmt;

use super::config::FakeRateLimit;

macro_rules! endpoints {
    ($($(#[$doc:meta])* $name:ident => $method:literal $path:literal, $class:ident, $host:ident;)*) => {
        /// One operation of the LINE API served by [`FakeLine`](super::FakeLine).
        ///
        /// LINE counts rate limits per endpoint, where the same path with another method is another
        /// endpoint; so does the fake. Used to read counters
        /// ([`FakeLine::request_count`](super::FakeLine::request_count)) and to aim
        /// [`Faults`](super::Faults) at some operations only.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Endpoint {
            $($(#[$doc])* $name,)*
        }

        impl Endpoint {
            /// Every endpoint, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$name,)*];

            /// The HTTP method, e.g. `"POST"`.
            #[must_use]
            pub const fn method(self) -> &'static str {
                match self { $(Self::$name => $method,)* }
            }

            /// The path with its parameters in braces, e.g. `/v2/bot/profile/{userId}`.
            #[must_use]
            pub const fn path(self) -> &'static str {
                match self { $(Self::$name => $path,)* }
            }

            /// The rate-limit class whose [`FakeRateLimit`] applies to this endpoint.
            #[must_use]
            pub const fn class(self) -> FakeEndpointClass {
                match self { $(Self::$name => FakeEndpointClass::$class,)* }
            }

            /// Whether LINE serves this endpoint on the data host (`api-data.line.me`).
            #[must_use]
            pub const fn on_data_host(self) -> bool {
                match self { $(Self::$name => matches!(Host::$host, Host::Data),)* }
            }
        }
    };
}

/// Which of the two hosts an endpoint lives on.
enum Host {
    Api,
    Data,
}

endpoints! {
    /// `POST /v2/bot/message/reply`
    Reply => "POST" "/v2/bot/message/reply", Reply, Api;
    /// `POST /v2/bot/message/push`
    Push => "POST" "/v2/bot/message/push", Push, Api;
    /// `POST /v2/bot/message/multicast`
    Multicast => "POST" "/v2/bot/message/multicast", Multicast, Api;
    /// `POST /v2/bot/message/narrowcast`
    Narrowcast => "POST" "/v2/bot/message/narrowcast", Narrowcast, Api;
    /// `GET /v2/bot/message/progress/narrowcast`
    NarrowcastProgress => "GET" "/v2/bot/message/progress/narrowcast", General, Api;
    /// `POST /v2/bot/message/broadcast`
    Broadcast => "POST" "/v2/bot/message/broadcast", Broadcast, Api;
    /// `POST /v2/bot/message/validate/reply`
    ValidateReply => "POST" "/v2/bot/message/validate/reply", General, Api;
    /// `POST /v2/bot/message/validate/push`
    ValidatePush => "POST" "/v2/bot/message/validate/push", General, Api;
    /// `POST /v2/bot/message/validate/multicast`
    ValidateMulticast => "POST" "/v2/bot/message/validate/multicast", General, Api;
    /// `POST /v2/bot/message/validate/narrowcast`
    ValidateNarrowcast => "POST" "/v2/bot/message/validate/narrowcast", General, Api;
    /// `POST /v2/bot/message/validate/broadcast`
    ValidateBroadcast => "POST" "/v2/bot/message/validate/broadcast", General, Api;
    /// `GET /v2/bot/message/quota`
    Quota => "GET" "/v2/bot/message/quota", General, Api;
    /// `GET /v2/bot/message/quota/consumption`
    QuotaConsumption => "GET" "/v2/bot/message/quota/consumption", General, Api;
    /// `GET /v2/bot/profile/{userId}`
    Profile => "GET" "/v2/bot/profile/{userId}", General, Api;
    /// `GET /v2/bot/followers/ids`
    FollowerIds => "GET" "/v2/bot/followers/ids", General, Api;
    /// `GET /v2/bot/info`
    BotInfo => "GET" "/v2/bot/info", General, Api;
    /// `POST /v2/bot/user/{userId}/linkToken`
    LinkToken => "POST" "/v2/bot/user/{userId}/linkToken", General, Api;
    /// `POST /v2/bot/chat/loading/start`
    ShowLoading => "POST" "/v2/bot/chat/loading/start", General, Api;
    /// `POST /v2/bot/chat/markAsRead`
    MarkAsRead => "POST" "/v2/bot/chat/markAsRead", General, Api;
    /// `POST /v2/bot/richmenu`
    RichMenuCreate => "POST" "/v2/bot/richmenu", RichMenuCreate, Api;
    /// `POST /v2/bot/richmenu/validate`
    RichMenuValidate => "POST" "/v2/bot/richmenu/validate", General, Api;
    /// `POST /v2/bot/richmenu/{richMenuId}/content` (data host)
    RichMenuUploadImage => "POST" "/v2/bot/richmenu/{richMenuId}/content", General, Data;
    /// `GET /v2/bot/richmenu/{richMenuId}/content` (data host)
    RichMenuDownloadImage => "GET" "/v2/bot/richmenu/{richMenuId}/content", General, Data;
    /// `GET /v2/bot/richmenu/{richMenuId}`
    RichMenuGet => "GET" "/v2/bot/richmenu/{richMenuId}", General, Api;
    /// `DELETE /v2/bot/richmenu/{richMenuId}`
    RichMenuDelete => "DELETE" "/v2/bot/richmenu/{richMenuId}", RichMenuDelete, Api;
    /// `GET /v2/bot/richmenu/list`
    RichMenuList => "GET" "/v2/bot/richmenu/list", RichMenuList, Api;
    /// `POST /v2/bot/user/all/richmenu/{richMenuId}`
    DefaultRichMenuSet => "POST" "/v2/bot/user/all/richmenu/{richMenuId}", General, Api;
    /// `GET /v2/bot/user/all/richmenu`
    DefaultRichMenuGet => "GET" "/v2/bot/user/all/richmenu", General, Api;
    /// `DELETE /v2/bot/user/all/richmenu`
    DefaultRichMenuCancel => "DELETE" "/v2/bot/user/all/richmenu", General, Api;
    /// `POST /v2/bot/user/{userId}/richmenu/{richMenuId}`
    UserRichMenuLink => "POST" "/v2/bot/user/{userId}/richmenu/{richMenuId}", General, Api;
    /// `GET /v2/bot/user/{userId}/richmenu`
    UserRichMenuGet => "GET" "/v2/bot/user/{userId}/richmenu", General, Api;
    /// `DELETE /v2/bot/user/{userId}/richmenu`
    UserRichMenuUnlink => "DELETE" "/v2/bot/user/{userId}/richmenu", General, Api;
    /// `POST /v2/bot/richmenu/bulk/link`
    RichMenuBulkLink => "POST" "/v2/bot/richmenu/bulk/link", General, Api;
    /// `POST /v2/bot/richmenu/bulk/unlink`
    RichMenuBulkUnlink => "POST" "/v2/bot/richmenu/bulk/unlink", General, Api;
    /// `POST /v2/bot/richmenu/alias`
    RichMenuAliasCreate => "POST" "/v2/bot/richmenu/alias", General, Api;
    /// `POST /v2/bot/richmenu/alias/{richMenuAliasId}`
    RichMenuAliasUpdate => "POST" "/v2/bot/richmenu/alias/{richMenuAliasId}", General, Api;
    /// `GET /v2/bot/richmenu/alias/{richMenuAliasId}`
    RichMenuAliasGet => "GET" "/v2/bot/richmenu/alias/{richMenuAliasId}", General, Api;
    /// `GET /v2/bot/richmenu/alias/list`
    RichMenuAliasList => "GET" "/v2/bot/richmenu/alias/list", General, Api;
    /// `DELETE /v2/bot/richmenu/alias/{richMenuAliasId}`
    RichMenuAliasDelete => "DELETE" "/v2/bot/richmenu/alias/{richMenuAliasId}", RichMenuDelete, Api;
    /// `POST /v2/bot/audienceGroup/upload`
    AudienceCreate => "POST" "/v2/bot/audienceGroup/upload", Audience, Api;
    /// `PUT /v2/bot/audienceGroup/upload`
    AudienceAdd => "PUT" "/v2/bot/audienceGroup/upload", Audience, Api;
    /// `GET /v2/bot/audienceGroup/{audienceGroupId}`
    AudienceGet => "GET" "/v2/bot/audienceGroup/{audienceGroupId}", Audience, Api;
    /// `DELETE /v2/bot/audienceGroup/{audienceGroupId}`
    AudienceDelete => "DELETE" "/v2/bot/audienceGroup/{audienceGroupId}", Audience, Api;
    /// `GET /v2/bot/insight/message/event`
    InsightMessageEvent => "GET" "/v2/bot/insight/message/event", Insight, Api;
    /// `GET /v2/bot/insight/message/event/aggregation`
    InsightUnitStatistics => "GET" "/v2/bot/insight/message/event/aggregation", Insight, Api;
    /// `GET /v2/bot/message/aggregation/info`
    AggregationUnitInfo => "GET" "/v2/bot/message/aggregation/info", General, Api;
    /// `GET /v2/bot/message/aggregation/list`
    AggregationUnitList => "GET" "/v2/bot/message/aggregation/list", General, Api;
    /// `GET /v2/bot/membership/list`
    MembershipList => "GET" "/v2/bot/membership/list", General, Api;
    /// `GET /v2/bot/membership/subscription/{userId}`
    MembershipSubscription => "GET" "/v2/bot/membership/subscription/{userId}", General, Api;
    /// `GET /v2/bot/membership/{membershipId}/users/ids`
    MembershipUserIds => "GET" "/v2/bot/membership/{membershipId}/users/ids", General, Api;
    /// `GET /v2/bot/insight/message/delivery`
    InsightDelivery => "GET" "/v2/bot/insight/message/delivery", General, Api;
    /// `GET /v2/bot/insight/followers`
    InsightFollowers => "GET" "/v2/bot/insight/followers", General, Api;
    /// `GET /v2/bot/message/delivery/{kind}` (`reply`, `push`, `multicast`, `broadcast`)
    SentCount => "GET" "/v2/bot/message/delivery/{kind}", General, Api;
    /// `POST /v2/bot/audienceGroup/click`
    AudienceClick => "POST" "/v2/bot/audienceGroup/click", Audience, Api;
    /// `POST /v2/bot/audienceGroup/imp`
    AudienceImp => "POST" "/v2/bot/audienceGroup/imp", Audience, Api;
    /// `PUT /v2/bot/audienceGroup/{audienceGroupId}/updateDescription`
    AudienceRename => "PUT" "/v2/bot/audienceGroup/{audienceGroupId}/updateDescription", Audience, Api;
    /// `GET /v2/bot/audienceGroup/list`
    AudienceList => "GET" "/v2/bot/audienceGroup/list", Audience, Api;
    /// `GET /v2/bot/audienceGroup/shared/list`
    SharedAudienceList => "GET" "/v2/bot/audienceGroup/shared/list", Audience, Api;
    /// `GET /v2/bot/audienceGroup/shared/{audienceGroupId}`
    SharedAudienceGet => "GET" "/v2/bot/audienceGroup/shared/{audienceGroupId}", Audience, Api;
    /// `GET /v2/bot/message/{messageId}/content` (data host)
    MessageContent => "GET" "/v2/bot/message/{messageId}/content", General, Data;
    /// `GET /v2/bot/message/{messageId}/content/preview` (data host)
    MessageContentPreview => "GET" "/v2/bot/message/{messageId}/content/preview", General, Data;
    /// `GET /v2/bot/message/{messageId}/content/transcoding` (data host)
    MessageContentTranscoding => "GET" "/v2/bot/message/{messageId}/content/transcoding", General, Data;
    /// `POST /oauth2/v2.1/token` (JWT assertion; no bearer token)
    TokenIssueV21 => "POST" "/oauth2/v2.1/token", General, Api;
    /// `GET /oauth2/v2.1/verify`
    TokenVerifyV21 => "GET" "/oauth2/v2.1/verify", General, Api;
    /// `POST /oauth2/v2.1/revoke`
    TokenRevokeV21 => "POST" "/oauth2/v2.1/revoke", General, Api;
    /// `GET /oauth2/v2.1/tokens/kid`
    TokenKeyIds => "GET" "/oauth2/v2.1/tokens/kid", General, Api;
    /// `POST /oauth2/v3/token` (stateless; no bearer token)
    TokenIssueStateless => "POST" "/oauth2/v3/token", General, Api;
    /// `POST /v2/bot/coupon`
    CouponCreate => "POST" "/v2/bot/coupon", General, Api;
    /// `GET /v2/bot/coupon`
    CouponList => "GET" "/v2/bot/coupon", General, Api;
    /// `GET /v2/bot/coupon/{couponId}`
    CouponGet => "GET" "/v2/bot/coupon/{couponId}", General, Api;
    /// `PUT /v2/bot/coupon/{couponId}/close`
    CouponClose => "PUT" "/v2/bot/coupon/{couponId}/close", General, Api;
    /// `POST /v2/bot/richmenu/batch`
    RichMenuBatch => "POST" "/v2/bot/richmenu/batch", RichMenuBatch, Api;
    /// `POST /v2/bot/richmenu/validate/batch`
    RichMenuBatchValidate => "POST" "/v2/bot/richmenu/validate/batch", General, Api;
    /// `GET /v2/bot/richmenu/progress/batch`
    RichMenuBatchProgress => "GET" "/v2/bot/richmenu/progress/batch", RichMenuBatchProgress, Api;
    /// `GET /v2/bot/insight/richmenu/{richMenuId}/summary`
    RichMenuInsightSummary => "GET" "/v2/bot/insight/richmenu/{richMenuId}/summary", Insight, Api;
    /// `GET /v2/bot/insight/richmenu/{richMenuId}/daily`
    RichMenuInsightDaily => "GET" "/v2/bot/insight/richmenu/{richMenuId}/daily", Insight, Api;
    /// LINE notification message (PNP) to a hashed phone number.
    PnpPush => "POST" "/bot/pnp/push", Push, Api;
}

impl Endpoint {
    /// The number of endpoints (the length of [`Endpoint::ALL`]).
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Position in [`Endpoint::ALL`], used to index per-endpoint counters.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// Whether the endpoint is one of the channel access token (OAuth) endpoints, which are
    /// authenticated by a JWT assertion or the channel secret instead of a bearer token.
    #[must_use]
    pub const fn is_oauth(self) -> bool {
        matches!(
            self,
            Self::TokenIssueV21
                | Self::TokenVerifyV21
                | Self::TokenRevokeV21
                | Self::TokenKeyIds
                | Self::TokenIssueStateless
        )
    }

    /// Whether LINE accepts `X-Line-Retry-Key` here (push, multicast, narrowcast, broadcast).
    #[must_use]
    pub const fn allows_retry_key(self) -> bool {
        matches!(self, Self::Push | Self::Multicast | Self::Narrowcast | Self::Broadcast)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method(), self.path())
    }
}

/// A group of endpoints that share one configured [`FakeRateLimit`].
///
/// Every endpoint has its own token bucket (LINE limits per endpoint), filled at the rate of its
/// class; the exception is [`FakeEndpointClass::Audience`], whose endpoints share one bucket because
/// LINE's Manage Audience limit covers all of them together.
///
/// These are LINE's own classes, one per documented limit; the client's pacing groups them more
/// coarsely ([`line::EndpointClass`](crate::line::EndpointClass)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FakeEndpointClass {
    /// Reply: 2,000 requests per second.
    Reply,
    /// Push: 2,000 requests per second.
    Push,
    /// Multicast: 200 requests per second (a third-party figure LINE has not confirmed).
    Multicast,
    /// Narrowcast: 60 requests per hour.
    Narrowcast,
    /// Broadcast: 60 requests per hour.
    Broadcast,
    /// Every Manage Audience endpoint, together: 60 requests per minute.
    Audience,
    /// Create rich menu: 100 requests per hour.
    RichMenuCreate,
    /// Delete rich menu and delete rich menu alias: 100 requests per hour each.
    RichMenuDelete,
    /// Get rich menu list: 10 requests per second since 2026-05-26 (a third-party figure LINE
    /// has not confirmed).
    RichMenuList,
    /// Statistics (insight) endpoints: 60 requests per hour each.
    Insight,
    /// Rich-menu batch control: 3 requests per hour.
    RichMenuBatch,
    /// Rich-menu batch progress: 100 requests per hour.
    RichMenuBatchProgress,
    /// Everything else: 2,000 requests per second each.
    General,
}

impl FakeEndpointClass {
    /// Every class.
    pub const ALL: &'static [Self] = &[
        Self::Reply,
        Self::Push,
        Self::Multicast,
        Self::Narrowcast,
        Self::Broadcast,
        Self::Audience,
        Self::RichMenuCreate,
        Self::RichMenuDelete,
        Self::RichMenuList,
        Self::Insight,
        Self::RichMenuBatch,
        Self::RichMenuBatchProgress,
        Self::General,
    ];

    /// LINE's documented default limit for this class (see `line-platform.md` §6), with a
    /// bucket capacity equal to the per-period count.
    #[must_use]
    pub const fn line_default(self) -> FakeRateLimit {
        match self {
            Self::Reply | Self::Push | Self::General => FakeRateLimit::per_second(2000),
            Self::Multicast => FakeRateLimit::per_second(200),
            Self::RichMenuList => FakeRateLimit::per_second(10),
            Self::Narrowcast | Self::Broadcast | Self::Insight => FakeRateLimit::per_hour(60),
            Self::Audience => FakeRateLimit::per_minute(60),
            Self::RichMenuCreate | Self::RichMenuDelete | Self::RichMenuBatchProgress => {
                FakeRateLimit::per_hour(100)
            }
            Self::RichMenuBatch => FakeRateLimit::per_hour(3),
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}
