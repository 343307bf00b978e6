//! The coupon API (2025-08): create, list, get and close (discontinue) coupons. A coupon is
//! created once and then sent to customers with the coupon message
//! ([`Message::coupon`](crate::line::message::Message::coupon)).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::model::{line_enum, path_segment};
use super::request::Request;
use crate::CouponId;
use crate::line::Validator;

/// The most coupons one list call returns (`limit`).
pub const COUPON_LIST_MAX: u32 = 100;
/// `title`: 1 to 60 characters.
pub const COUPON_TITLE_MAX: usize = 60;
/// `description`: at most 1,000 characters.
pub const COUPON_DESCRIPTION_MAX: usize = 1000;
/// `usageCondition`: at most 100 characters.
pub const COUPON_USAGE_CONDITION_MAX: usize = 100;
/// `acquisitionCondition.maxAcquireCount` of a lottery: at most 999,999 (or -1, no limit).
pub const COUPON_MAX_ACQUIRE_COUNT: i64 = 999_999;

line_enum!(
    /// Who can see or get a coupon.
    CouponVisibility {
        /// Only customers it is sent to.
        Unlisted = "UNLISTED",
        /// Anyone who finds it.
        Public = "PUBLIC",
        /// Private (returned by LINE, not accepted when creating).
        Private = "PRIVATE",
    }
);

line_enum!(
    /// A coupon's life: created as a draft in the console, running, or closed.
    CouponStatus {
        /// Not published.
        Draft = "DRAFT",
        /// Usable.
        Running = "RUNNING",
        /// Discontinued or expired.
        Closed = "CLOSED",
    }
);

line_enum!(
    /// The time zone a coupon's start and end are read in. LINE accepts 34 zones; the ones
    /// of LINE's coupon markets are named here, any other is `CouponTimezone::from("EUROPE_LONDON")`.
    CouponTimezone {
        /// Japan (UTC+9).
        AsiaTokyo = "ASIA_TOKYO",
        /// Taiwan (UTC+8).
        AsiaTaipei = "ASIA_TAIPEI",
        /// Thailand (UTC+7).
        AsiaBangkok = "ASIA_BANGKOK",
    }
);

line_enum!(
    /// The benefit a coupon gives.
    CouponRewardType {
        /// Money back.
        CashBack = "cashBack",
        /// A discount.
        Discount = "discount",
        /// Something free.
        Free = "free",
        /// A gift.
        Gift = "gift",
        /// Anything else.
        Others = "others",
    }
);

line_enum!(
    /// How a discount or cash back is priced.
    PriceInfoType {
        /// A fixed amount off (`fixedAmount`).
        Fixed = "fixed",
        /// A percentage (`percentage`, 1–99).
        Percentage = "percentage",
        /// An explicit price (`originalPrice` → `priceAfterDiscount`; discounts only).
        Explicit = "explicit",
    }
);

line_enum!(
    /// How customers get a coupon.
    AcquisitionType {
        /// Everyone who opens it.
        Normal = "normal",
        /// A lottery.
        Lottery = "lottery",
        /// By referral (returned by LINE, not accepted when creating).
        Referral = "referral",
    }
);

/// The price of a discount or a cash back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PriceInfo {
    /// Fixed, percentage or explicit.
    #[serde(rename = "type")]
    pub kind: PriceInfoType,
    /// The amount off (fixed), in the currency's unit (yen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_amount: Option<i64>,
    /// The percentage (1–99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i64>,
    /// The price after the discount (explicit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_after_discount: Option<i64>,
    /// The original price (explicit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_price: Option<i64>,
    /// The currency (`JPY`, `THB`, `TWD`), as LINE returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl PriceInfo {
    fn of(kind: PriceInfoType) -> Self {
        Self {
            kind,
            fixed_amount: None,
            percentage: None,
            price_after_discount: None,
            original_price: None,
            currency: None,
        }
    }
}

/// What a coupon gives: its type and, for a discount or cash back, the price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CouponReward {
    /// The kind of benefit.
    #[serde(rename = "type")]
    pub kind: CouponRewardType,
    /// The price, for a discount or a cash back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_info: Option<PriceInfo>,
}

impl CouponReward {
    /// `amount` (yen) off.
    #[must_use]
    pub fn discount_fixed(amount: i64) -> Self {
        let mut price = PriceInfo::of(PriceInfoType::Fixed);
        price.fixed_amount = Some(amount);
        Self { kind: CouponRewardType::Discount, price_info: Some(price) }
    }

    /// `percent` % off (1–99).
    #[must_use]
    pub fn discount_percent(percent: i64) -> Self {
        let mut price = PriceInfo::of(PriceInfoType::Percentage);
        price.percentage = Some(percent);
        Self { kind: CouponRewardType::Discount, price_info: Some(price) }
    }

    /// `original` reduced to `after`.
    #[must_use]
    pub fn discount_explicit(original: i64, after: i64) -> Self {
        let mut price = PriceInfo::of(PriceInfoType::Explicit);
        price.original_price = Some(original);
        price.price_after_discount = Some(after);
        Self { kind: CouponRewardType::Discount, price_info: Some(price) }
    }

    /// `amount` (yen) back.
    #[must_use]
    pub fn cash_back_fixed(amount: i64) -> Self {
        let mut price = PriceInfo::of(PriceInfoType::Fixed);
        price.fixed_amount = Some(amount);
        Self { kind: CouponRewardType::CashBack, price_info: Some(price) }
    }

    /// `percent` % back (1–99).
    #[must_use]
    pub fn cash_back_percent(percent: i64) -> Self {
        let mut price = PriceInfo::of(PriceInfoType::Percentage);
        price.percentage = Some(percent);
        Self { kind: CouponRewardType::CashBack, price_info: Some(price) }
    }

    /// Something free (free shipping, a free item).
    #[must_use]
    pub fn free() -> Self {
        Self { kind: CouponRewardType::Free, price_info: None }
    }

    /// A gift.
    #[must_use]
    pub fn gift() -> Self {
        Self { kind: CouponRewardType::Gift, price_info: None }
    }

    /// Any other benefit.
    #[must_use]
    pub fn others() -> Self {
        Self { kind: CouponRewardType::Others, price_info: None }
    }

    fn validate(&self, v: &mut Validator) {
        let allowed: &[PriceInfoType] = match self.kind {
            CouponRewardType::Discount => {
                &[PriceInfoType::Fixed, PriceInfoType::Percentage, PriceInfoType::Explicit]
            }
            CouponRewardType::CashBack => &[PriceInfoType::Fixed, PriceInfoType::Percentage],
            _ => &[],
        };
        let Some(price) = &self.price_info else { return };
        v.field("priceInfo", |v| {
            if !allowed.contains(&price.kind) {
                v.violation_at("type", format!("is not allowed for a {} reward", self.kind));
                return;
            }
            match price.kind {
                PriceInfoType::Fixed => match price.fixed_amount {
                    Some(a) if a >= 1 => {}
                    _ => v.violation_at("fixedAmount", "must be at least 1"),
                },
                PriceInfoType::Percentage => match price.percentage {
                    Some(p) if (1..=99).contains(&p) => {}
                    _ => v.violation_at("percentage", "must be 1 to 99"),
                },
                PriceInfoType::Explicit => match (price.original_price, price.price_after_discount)
                {
                    (Some(o), Some(a)) if a >= 0 && a < o => {}
                    _ => v.violation(
                        "originalPrice and priceAfterDiscount must be set, with \
                         0 <= priceAfterDiscount < originalPrice",
                    ),
                },
                PriceInfoType::Unknown(_) => {}
            }
        });
    }
}

/// How customers get the coupon: everyone, or a lottery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AcquisitionCondition {
    /// Normal or lottery.
    #[serde(rename = "type")]
    pub kind: AcquisitionType,
    /// Chance of winning a lottery, 1–99 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lottery_probability: Option<i64>,
    /// The most coupons a lottery hands out (≤ 999,999; -1: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_acquire_count: Option<i64>,
}

impl AcquisitionCondition {
    /// Everyone who opens the coupon gets it.
    #[must_use]
    pub fn normal() -> Self {
        Self { kind: AcquisitionType::Normal, lottery_probability: None, max_acquire_count: None }
    }

    /// A lottery won with `probability` % (1–99), at most `max_acquire_count` winners (-1: no
    /// limit).
    #[must_use]
    pub fn lottery(probability: i64, max_acquire_count: i64) -> Self {
        Self {
            kind: AcquisitionType::Lottery,
            lottery_probability: Some(probability),
            max_acquire_count: Some(max_acquire_count),
        }
    }
}

/// A coupon to create (`POST /v2/bot/coupon`). Checked against LINE's limits before it is sent.
///
/// ```
/// use chrono::{TimeZone as _, Utc};
/// use enishi::line::{CouponCreateRequest, CouponReward};
///
/// let coupon = CouponCreateRequest::new(
///     "春の10%オフクーポン",
///     Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap(),
/// )
/// .reward(CouponReward::discount_percent(10))
/// .description("オンラインストアで使えます");
/// assert!(coupon.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
#[non_exhaustive]
pub struct CouponCreateRequest {
    /// Title shown in the coupon list (1–60 characters).
    pub title: String,
    /// Details shown to customers (≤ 1,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Conditions of use (≤ 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_condition: Option<String>,
    /// Usable from (sent as epoch seconds).
    #[serde(with = "chrono::serde::ts_seconds")]
    pub start_timestamp: DateTime<Utc>,
    /// Usable until (sent as epoch seconds).
    #[serde(with = "chrono::serde::ts_seconds")]
    pub end_timestamp: DateTime<Utc>,
    /// How often one ticket can be used: 1, or -1 for no limit.
    pub max_use_count_per_ticket: i64,
    /// Who can see it (default [`CouponVisibility::Unlisted`]: only those it is sent to).
    pub visibility: CouponVisibility,
    /// The zone of the start and end (default [`CouponTimezone::AsiaTokyo`]).
    pub timezone: CouponTimezone,
    /// How it is acquired (default [`AcquisitionCondition::normal`]).
    pub acquisition_condition: AcquisitionCondition,
    /// What it gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<CouponReward>,
    /// Main image (HTTPS URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Barcode image for in-store use (HTTPS URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode_image_url: Option<String>,
    /// A code the customer presents (e.g. the shop's own coupon code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
}

impl CouponCreateRequest {
    /// An unlisted, single-use, normal coupon usable from `start` to `end` (Tokyo time zone).
    pub fn new(title: impl Into<String>, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            title: title.into(),
            description: None,
            usage_condition: None,
            start_timestamp: start,
            end_timestamp: end,
            max_use_count_per_ticket: 1,
            visibility: CouponVisibility::Unlisted,
            timezone: CouponTimezone::AsiaTokyo,
            acquisition_condition: AcquisitionCondition::normal(),
            reward: None,
            image_url: None,
            barcode_image_url: None,
            coupon_code: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the conditions of use.
    pub fn usage_condition(mut self, condition: impl Into<String>) -> Self {
        self.usage_condition = Some(condition.into());
        self
    }

    /// Sets the reward.
    pub fn reward(mut self, reward: CouponReward) -> Self {
        self.reward = Some(reward);
        self
    }

    /// Sets the visibility.
    pub fn visibility(mut self, visibility: CouponVisibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Sets the time zone.
    pub fn timezone(mut self, timezone: CouponTimezone) -> Self {
        self.timezone = timezone;
        self
    }

    /// Sets how the coupon is acquired.
    pub fn acquisition(mut self, condition: AcquisitionCondition) -> Self {
        self.acquisition_condition = condition;
        self
    }

    /// Lets one ticket be used any number of times (`maxUseCountPerTicket = -1`).
    pub fn unlimited_use(mut self) -> Self {
        self.max_use_count_per_ticket = -1;
        self
    }

    /// Sets the main image URL.
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }

    /// Sets the barcode image URL.
    pub fn barcode_image_url(mut self, url: impl Into<String>) -> Self {
        self.barcode_image_url = Some(url.into());
        self
    }

    /// Sets the code the customer presents.
    pub fn coupon_code(mut self, code: impl Into<String>) -> Self {
        self.coupon_code = Some(code.into());
        self
    }

    /// Checks the coupon against LINE's limits, as [`LineClient::create_coupon`](super::LineClient::create_coupon)
    /// does before sending it.
    ///
    /// # Errors
    /// [`ValidationError`](crate::line::ValidationError) naming each field that breaks a limit.
    pub fn check(&self) -> Result<(), crate::line::ValidationError> {
        let mut v = Validator::new();
        self.validate(&mut v);
        v.finish()
    }

    fn validate(&self, v: &mut Validator) {
        v.char_len("title", &self.title, 1, COUPON_TITLE_MAX);
        if let Some(d) = &self.description {
            v.char_len("description", d, 0, COUPON_DESCRIPTION_MAX);
        }
        if let Some(c) = &self.usage_condition {
            v.char_len("usageCondition", c, 0, COUPON_USAGE_CONDITION_MAX);
        }
        if self.end_timestamp <= self.start_timestamp {
            v.violation_at("endTimestamp", "must be after startTimestamp");
        }
        if !matches!(self.max_use_count_per_ticket, 1 | -1) {
            v.violation_at("maxUseCountPerTicket", "must be 1, or -1 for no limit");
        }
        if matches!(self.visibility, CouponVisibility::Private) {
            v.violation_at("visibility", "must be UNLISTED or PUBLIC");
        }
        for (field, url) in
            [("imageUrl", &self.image_url), ("barcodeImageUrl", &self.barcode_image_url)]
        {
            if let Some(url) = url {
                v.url(field, url, &["https"], 2000);
            }
        }
        v.field("acquisitionCondition", |v| {
            let a = &self.acquisition_condition;
            match a.kind {
                AcquisitionType::Normal => {}
                AcquisitionType::Lottery => {
                    match a.lottery_probability {
                        Some(p) if (1..=99).contains(&p) => {}
                        _ => v.violation_at("lotteryProbability", "must be 1 to 99"),
                    }
                    match a.max_acquire_count {
                        Some(-1) => {}
                        Some(n) if (1..=COUPON_MAX_ACQUIRE_COUNT).contains(&n) => {}
                        _ => v.violation_at(
                            "maxAcquireCount",
                            "must be 1 to 999999, or -1 for no limit",
                        ),
                    }
                }
                _ => v.violation_at("type", "must be normal or lottery"),
            }
        });
        if let Some(reward) = &self.reward {
            v.field("reward", |v| reward.validate(v));
        }
    }
}

/// A coupon in a list: its ID and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CouponSummary {
    /// The ID.
    pub coupon_id: CouponId,
    /// The title.
    #[serde(default)]
    pub title: String,
}

/// One page of [`LineClient::coupons`](super::LineClient::coupons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CouponPage {
    /// The coupons.
    #[serde(default)]
    pub items: Vec<CouponSummary>,
    /// The token of the next page, if there is one.
    #[serde(default)]
    pub next: Option<String>,
}

/// A coupon as LINE returns it. Every field is optional: LINE owns this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CouponInfo {
    /// The ID.
    pub coupon_id: Option<CouponId>,
    /// The title.
    pub title: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// Conditions of use.
    pub usage_condition: Option<String>,
    /// Draft, running or closed.
    pub status: Option<CouponStatus>,
    /// Usable from (epoch seconds).
    pub start_timestamp: Option<i64>,
    /// Usable until (epoch seconds).
    pub end_timestamp: Option<i64>,
    /// Created (epoch seconds).
    pub created_timestamp: Option<i64>,
    /// Uses per ticket (-1: no limit).
    pub max_use_count_per_ticket: Option<i64>,
    /// The most coupons handed out in total.
    pub max_acquire_count: Option<i64>,
    /// The most tickets one user can get.
    pub max_ticket_per_user: Option<i64>,
    /// Visibility.
    pub visibility: Option<CouponVisibility>,
    /// Time zone.
    pub timezone: Option<CouponTimezone>,
    /// How it is acquired.
    pub acquisition_condition: Option<AcquisitionCondition>,
    /// What it gives.
    pub reward: Option<CouponReward>,
    /// Main image.
    pub image_url: Option<String>,
    /// Barcode image.
    pub barcode_image_url: Option<String>,
    /// The code the customer presents.
    pub coupon_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedWire {
    coupon_id: CouponId,
}

impl super::LineClient {
    /// Creates a coupon (`POST /v2/bot/coupon`). Not retried: a lost answer may have created
    /// it, so look for it with [`coupons`](Self::coupons) before creating it again.
    ///
    /// # Errors
    /// [`LineError::Validation`] before sending (title, lengths, times, lottery, price);
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn create_coupon(&self, coupon: &CouponCreateRequest) -> Result<CouponId, LineError> {
        coupon.check()?;
        let request = Request::post("create_coupon", "/v2/bot/coupon").json(coupon)?;
        Ok(self.execute(request).await?.json::<CreatedWire>()?.coupon_id)
    }

    /// One page of the account's coupons (`GET /v2/bot/coupon`), optionally only those in
    /// `statuses`; `limit` is 1 to 100 (LINE's default 20), `start` the previous page's
    /// [`CouponPage::next`].
    ///
    /// # Errors
    /// [`LineError::Validation`] for a `limit` outside 1–100; [`LineError::Api`],
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn coupons(
        &self,
        statuses: &[CouponStatus],
        start: Option<&str>,
        limit: Option<u32>,
    ) -> Result<CouponPage, LineError> {
        if let Some(limit) = limit
            && !(1..=COUPON_LIST_MAX).contains(&limit)
        {
            let mut v = Validator::new();
            v.violation_at("limit", format!("must be 1 to {COUPON_LIST_MAX} (got {limit})"));
            v.finish()?;
        }
        let mut request = Request::get("list_coupons", "/v2/bot/coupon");
        for status in statuses {
            request = request.query("status", status.as_str());
        }
        let request = request.query_opt("start", start).query_opt("limit", limit);
        self.execute(request).await?.json()
    }

    /// Every coupon of the account (in `statuses`, or all), following the pages.
    ///
    /// # Errors
    /// As [`coupons`](Self::coupons).
    pub async fn all_coupons(
        &self,
        statuses: &[CouponStatus],
    ) -> Result<Vec<CouponSummary>, LineError> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self.coupons(statuses, start.as_deref(), Some(COUPON_LIST_MAX)).await?;
            out.extend(page.items);
            match page.next {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// One coupon (`GET /v2/bot/coupon/{couponId}`).
    ///
    /// # Errors
    /// [`LineError::Api`] (404 when unknown), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn coupon(&self, coupon: &CouponId) -> Result<CouponInfo, LineError> {
        let path = format!("/v2/bot/coupon/{}", path_segment(coupon.as_str()));
        self.execute(Request::get("get_coupon", path)).await?.json()
    }

    /// Closes (discontinues) a coupon (`PUT /v2/bot/coupon/{couponId}/close`): customers can no
    /// longer get or use it. Closing a closed coupon is not an error.
    ///
    /// # Errors
    /// [`LineError::Api`] (404 when unknown), [`LineError::Transport`].
    pub async fn close_coupon(&self, coupon: &CouponId) -> Result<(), LineError> {
        let path = format!("/v2/bot/coupon/{}/close", path_segment(coupon.as_str()));
        match self.execute(Request::put("close_coupon", path)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(http::StatusCode::GONE) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
