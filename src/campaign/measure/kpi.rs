//! KPI arithmetic from plain facts: sends, clicks, blocks, orders and LINE's aggregate
//! statistics. No I/O; every figure is reproducible from the input.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike as _, Duration, FixedOffset, NaiveDate, Offset as _, Utc};
use serde::{Deserialize, Serialize};

use super::report::{CampaignResult, Kpis, ResultsReport, StepResult, TimelinePoint, Uplift};
use super::track::{Click, LinkContext};
use crate::campaign::{BatchRecord, BatchStatus};
use crate::{CampaignId, CustomerId};

/// Two-sided 95 % normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// One message to one customer, or one holdout customer who was left out on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendFact {
    /// The campaign, or `scenario.<name>`.
    pub campaign: CampaignId,
    /// The scenario step, if any.
    pub step: Option<String>,
    /// The customer.
    pub customer: CustomerId,
    /// When it was sent (for a holdout customer: when it would have been).
    pub at: DateTime<Utc>,
    /// The customer is in the holdout (control) group and got nothing.
    pub holdout: bool,
    /// LINE accepted the send (always `false` for holdout).
    pub delivered: bool,
    /// The A/B arm, if any.
    pub arm: Option<String>,
}

impl SendFact {
    /// A send LINE accepted.
    #[must_use]
    pub fn sent(
        campaign: CampaignId,
        step: Option<String>,
        customer: CustomerId,
        at: DateTime<Utc>,
    ) -> Self {
        Self { campaign, step, customer, at, holdout: false, delivered: true, arm: None }
    }

    /// A holdout customer, kept from the send at `at`.
    #[must_use]
    pub fn holdout(
        campaign: CampaignId,
        step: Option<String>,
        customer: CustomerId,
        at: DateTime<Utc>,
    ) -> Self {
        Self { campaign, step, customer, at, holdout: true, delivered: false, arm: None }
    }

    /// Marks the send as not delivered (LINE did not accept it).
    #[must_use]
    pub fn undelivered(mut self) -> Self {
        self.delivered = false;
        self
    }

    /// Sets the A/B arm.
    #[must_use]
    pub fn with_arm(mut self, arm: impl Into<String>) -> Self {
        self.arm = Some(arm.into());
        self
    }

    /// One fact per recipient of every sent or failed batch of the journal (pending, in-flight
    /// and cancelled batches were not sent). Scenario steps come from the batch ID
    /// (`<scenario>/<step>/<customer>/<occurrence>`); a sent batch is timed when the journal
    /// marked it sent.
    #[must_use]
    pub fn from_records(records: &[BatchRecord]) -> Vec<Self> {
        let mut out = Vec::new();
        for record in records {
            let delivered = match record.status {
                BatchStatus::Sent => true,
                BatchStatus::Failed => false,
                _ => continue,
            };
            let at = if delivered { record.updated_at } else { record.batch.not_before };
            let step = LinkContext::step_of(&record.batch.id);
            for recipient in &record.batch.recipients {
                out.push(Self {
                    campaign: record.batch.campaign.clone(),
                    step: step.clone(),
                    customer: recipient.customer.clone(),
                    at,
                    holdout: false,
                    delivered,
                    arm: record.batch.arm.clone(),
                });
            }
        }
        out
    }
}

/// A customer blocked the account (an `unfollow` webhook event, mapped to the customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockFact {
    /// Who.
    pub customer: CustomerId,
    /// When (the event's timestamp).
    pub at: DateTime<Utc>,
}

impl BlockFact {
    /// `customer` blocked at `at`.
    #[must_use]
    pub fn new(customer: CustomerId, at: DateTime<Utc>) -> Self {
        Self { customer, at }
    }
}

/// An order from the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurchaseFact {
    /// Who ordered.
    pub customer: CustomerId,
    /// When.
    pub at: DateTime<Utc>,
    /// The order total in the currency's minor unit (yen).
    pub amount: u64,
}

impl PurchaseFact {
    /// An order of `amount` by `customer` at `at`.
    #[must_use]
    pub fn new(customer: CustomerId, at: DateTime<Utc>, amount: u64) -> Self {
        Self { customer, at, amount }
    }
}

/// LINE's aggregate statistics of one campaign or step over a date range (from
/// `LineClient::aggregation_unit_statistics` for the step's aggregation unit). LINE hides
/// figures below 20 (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineStatsFact {
    /// The campaign, or `scenario.<name>`.
    pub campaign: CampaignId,
    /// The scenario step, if any.
    pub step: Option<String>,
    /// First day (in the report's time zone; LINE counts in UTC+9).
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// Users who opened (`overview.uniqueImpression`).
    pub unique_impression: Option<u64>,
    /// Users who tapped a URL (`overview.uniqueClick`).
    pub unique_click: Option<u64>,
}

impl LineStatsFact {
    /// Statistics of `campaign`/`step` from `from` to `to`.
    #[must_use]
    pub fn new(
        campaign: CampaignId,
        step: Option<String>,
        from: NaiveDate,
        to: NaiveDate,
        unique_impression: Option<u64>,
        unique_click: Option<u64>,
    ) -> Self {
        Self { campaign, step, from, to, unique_impression, unique_click }
    }

    /// From the client's answer.
    #[cfg(feature = "client")]
    #[must_use]
    pub fn from_statistics(
        campaign: CampaignId,
        step: Option<String>,
        from: NaiveDate,
        to: NaiveDate,
        stats: &crate::line::InteractionStatistics,
    ) -> Self {
        Self::new(
            campaign,
            step,
            from,
            to,
            stats.overview.unique_impression,
            stats.overview.unique_click,
        )
    }
}

/// Fetches LINE's statistics of one aggregation unit from `from` to `to` (UTC+9 days, both
/// included), one call per bucket so the report can chart opens over time, and labels them
/// with the campaign and step the unit stands for. LINE allows 60 statistics calls an hour;
/// the client paces them ([`EndpointClass::Insight`](crate::line::EndpointClass)).
///
/// # Errors
/// The first [`LineError`](crate::line::LineError) of a call.
#[cfg(feature = "client")]
pub async fn fetch_unit_stats(
    client: &crate::line::LineClient,
    unit: &crate::AggregationUnit,
    campaign: &CampaignId,
    step: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
    bucket: Bucket,
) -> Result<Vec<LineStatsFact>, crate::line::LineError> {
    let mut facts = Vec::new();
    let mut start = from;
    while start <= to {
        let next = match bucket {
            Bucket::Day => start + Duration::days(1),
            Bucket::Week => bucket.start(start) + Duration::days(7),
        };
        let end = (next - Duration::days(1)).min(to);
        let stats = client.aggregation_unit_statistics(unit, start, end).await?;
        facts.push(LineStatsFact::from_statistics(
            campaign.clone(),
            step.map(str::to_owned),
            start,
            end,
            &stats,
        ));
        start = next;
    }
    Ok(facts)
}

/// How wide a point of the charts is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Bucket {
    /// One point per day.
    Day,
    /// One point per week (starting Monday).
    #[default]
    Week,
}

impl Bucket {
    /// The first day of the bucket holding `day`.
    #[must_use]
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => day,
            Self::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        }
    }
}

/// Windows, time zone and bucket of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReportOptions {
    /// The report's title.
    pub title: String,
    /// An order within this long after a send converts it (default 7 days).
    pub conversion_window: Duration,
    /// Time zone offset of dates and buckets, in seconds east of UTC (default +9 h, JST).
    pub utc_offset_seconds: i32,
    /// Chart resolution (default weekly).
    pub bucket: Bucket,
    /// A customer's clicks on one link within this long of their counted click count once
    /// (default 24 hours; see [`unique_clicks`](crate::campaign::unique_clicks)).
    #[serde(default = "default_click_window")]
    pub click_window: Duration,
}

fn default_click_window() -> Duration {
    super::track::DEFAULT_CLICK_WINDOW
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: "Campaign results".to_owned(),
            conversion_window: Duration::days(7),
            utc_offset_seconds: 9 * 3600,
            bucket: Bucket::Week,
            click_window: super::track::DEFAULT_CLICK_WINDOW,
        }
    }
}

impl ReportOptions {
    /// Sets the title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the conversion window.
    #[must_use]
    pub fn with_conversion_window(mut self, window: Duration) -> Self {
        self.conversion_window = window;
        self
    }

    /// Sets the chart bucket.
    #[must_use]
    pub fn with_bucket(mut self, bucket: Bucket) -> Self {
        self.bucket = bucket;
        self
    }

    /// Sets the click window (see [`ReportOptions::click_window`]).
    #[must_use]
    pub fn with_click_window(mut self, window: Duration) -> Self {
        self.click_window = window;
        self
    }

    /// Sets the time zone offset (seconds east of UTC; out-of-range values fall back to UTC).
    #[must_use]
    pub fn with_utc_offset_seconds(mut self, seconds: i32) -> Self {
        self.utc_offset_seconds = seconds;
        self
    }

    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_seconds).unwrap_or_else(|| Utc.fix())
    }
}

/// Everything a report is computed from. Fill it from the journal
/// ([`SendFact::from_records`]), the holdout list, the click store, `unfollow` webhook events,
/// the shop's orders and LINE's statistics; then call [`ReportInput::build`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReportInput {
    /// Sends and holdout customers.
    pub sends: Vec<SendFact>,
    /// Tracked-link clicks.
    pub clicks: Vec<Click>,
    /// Blocks (unfollow events).
    pub blocks: Vec<BlockFact>,
    /// Orders.
    pub orders: Vec<PurchaseFact>,
    /// LINE aggregate statistics.
    pub line_stats: Vec<LineStatsFact>,
}

/// Times of one customer's events, sorted.
type Timeline = HashMap<CustomerId, Vec<(DateTime<Utc>, u64)>>;

fn index(events: impl Iterator<Item = (CustomerId, DateTime<Utc>, u64)>) -> Timeline {
    let mut map: Timeline = HashMap::new();
    for (customer, at, amount) in events {
        map.entry(customer).or_default().push((at, amount));
    }
    for list in map.values_mut() {
        list.sort_unstable();
    }
    map
}

/// Events of `customer` in `[from, from + window]` (both ends included).
fn within<'a>(
    index: &'a Timeline,
    customer: &CustomerId,
    from: DateTime<Utc>,
    window: Duration,
) -> &'a [(DateTime<Utc>, u64)] {
    let Some(list) = index.get(customer) else { return &[] };
    let start = list.partition_point(|(at, _)| *at < from);
    let end = list.partition_point(|(at, _)| *at <= from + window);
    &list[start..end.max(start)]
}

/// Counters of one group of sends.
#[derive(Debug, Default, Clone)]
struct Tally {
    sent: u64,
    delivered: u64,
    blocked_1d: u64,
    blocked_7d: u64,
    converted: u64,
    revenue: u64,
    holdout: u64,
    holdout_blocked_7d: u64,
    holdout_converted: u64,
    holdout_revenue: u64,
    clickers: BTreeSet<CustomerId>,
    clicks: u64,
    opened: Option<u64>,
    clicked_line: Option<u64>,
}

fn add_opt(total: &mut Option<u64>, value: Option<u64>) {
    if let Some(v) = value {
        *total = Some(total.unwrap_or(0) + v);
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Wilson score interval of `x` successes in `n` trials.
fn wilson(x: u64, n: u64, z: f64) -> (f64, f64) {
    let n = n as f64;
    let p = x as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// Uplift `p1 − p0` of `x1/n1` (treatment) over `x0/n0` (holdout) with Newcombe's hybrid
/// score interval (method 10 of Newcombe 1998, from two Wilson intervals) at 95 %. `None`
/// when either group is empty.
#[must_use]
pub fn uplift(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<Uplift> {
    if n1 == 0 || n0 == 0 || x1 > n1 || x0 > n0 {
        return None;
    }
    let (p1, p0) = (x1 as f64 / n1 as f64, x0 as f64 / n0 as f64);
    let (l1, u1) = wilson(x1, n1, Z95);
    let (l0, u0) = wilson(x0, n0, Z95);
    let d = p1 - p0;
    let low = d - ((p1 - l1).powi(2) + (u0 - p0).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p0 - l0).powi(2)).sqrt();
    Some(Uplift {
        difference: d,
        low,
        high,
        relative: (p0 > 0.0).then(|| d / p0),
        confidence: 0.95,
        method: "newcombe_hybrid_score".to_owned(),
    })
}

impl Tally {
    fn kpis(&self) -> Kpis {
        Kpis {
            sent: self.sent,
            delivered: self.delivered,
            opened: self.opened,
            open_rate: self.opened.and_then(|o| ratio(o, self.delivered)),
            clicked_line: self.clicked_line,
            clickers: self.clickers.len() as u64,
            clicks: self.clicks,
            click_rate: ratio(self.clickers.len() as u64, self.delivered),
            blocked_1d: self.blocked_1d,
            blocked_7d: self.blocked_7d,
            block_rate_1d: ratio(self.blocked_1d, self.sent),
            block_rate_7d: ratio(self.blocked_7d, self.sent),
            conversions: self.converted,
            conversion_rate: ratio(self.converted, self.sent),
            revenue: self.revenue,
            holdout: self.holdout,
            holdout_block_rate_7d: ratio(self.holdout_blocked_7d, self.holdout),
            holdout_conversions: self.holdout_converted,
            holdout_conversion_rate: ratio(self.holdout_converted, self.holdout),
            holdout_revenue: self.holdout_revenue,
            uplift: uplift(self.converted, self.sent, self.holdout_converted, self.holdout),
        }
    }
}

type Key = (CampaignId, Option<String>);

impl ReportInput {
    /// An empty input.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes every KPI per campaign and step, and the chart series.
    ///
    /// Definitions (per send, so a customer who gets a step twice counts twice):
    /// - *sent*: treatment sends; *delivered*: those LINE accepted;
    /// - *opened*, *clicked (LINE)*: LINE's unique impressions and clicks, summed over the
    ///   statistics facts (hidden figures are left out); open rate = opened / delivered;
    /// - *clickers*: distinct customers with a tracked click; click rate = clickers /
    ///   delivered; *clicks*: tracked clicks counted once per link and customer per
    ///   [`ReportOptions::click_window`] (a replayed link adds nothing);
    /// - *blocked within 1 / 7 days*: sends after which the customer's block came no later
    ///   than exactly 24 h / 168 h (both ends inclusive); rate over sent;
    /// - *conversions*: sends followed by at least one order within the conversion window
    ///   (inclusive); revenue sums those orders (an order after two sends counts for both);
    /// - *uplift*: treatment conversion rate − holdout conversion rate, with Newcombe's 95 %
    ///   interval ([`uplift`]).
    #[must_use]
    pub fn build(&self, options: &ReportOptions) -> ResultsReport {
        let offset = options.offset();
        let blocks = index(self.blocks.iter().map(|b| (b.customer.clone(), b.at, 0)));
        let orders = index(self.orders.iter().map(|o| (o.customer.clone(), o.at, o.amount)));
        let day = |at: DateTime<Utc>| at.with_timezone(&offset).date_naive();

        let mut steps: BTreeMap<Key, Tally> = BTreeMap::new();
        let mut totals: BTreeMap<CampaignId, Tally> = BTreeMap::new();
        let mut buckets: BTreeMap<(Key, NaiveDate), Tally> = BTreeMap::new();
        // Steps are listed in the order they first happened.
        let mut first: HashMap<Key, DateTime<Utc>> = HashMap::new();
        for send in &self.sends {
            let key = (send.campaign.clone(), send.step.clone());
            let seen = first.entry(key.clone()).or_insert(send.at);
            *seen = (*seen).min(send.at);
            let bucket = options.bucket.start(day(send.at));
            let blocked = |window| !within(&blocks, &send.customer, send.at, window).is_empty();
            let (b1, b7) = (blocked(Duration::days(1)), blocked(Duration::days(7)));
            let bought = within(&orders, &send.customer, send.at, options.conversion_window);
            let revenue: u64 = bought.iter().map(|(_, amount)| amount).sum();
            let tallies = [
                steps.entry(key.clone()).or_default(),
                totals.entry(send.campaign.clone()).or_default(),
                buckets.entry((key, bucket)).or_default(),
            ];
            for t in tallies {
                if send.holdout {
                    t.holdout += 1;
                    t.holdout_blocked_7d += u64::from(b7);
                    t.holdout_converted += u64::from(!bought.is_empty());
                    t.holdout_revenue += revenue;
                } else {
                    t.sent += 1;
                    t.delivered += u64::from(send.delivered);
                    t.blocked_1d += u64::from(b1);
                    t.blocked_7d += u64::from(b7);
                    t.converted += u64::from(!bought.is_empty());
                    t.revenue += revenue;
                }
            }
        }
        for click in super::track::unique_clicks(&self.clicks, options.click_window) {
            let key = (click.campaign.clone(), click.step.clone());
            for t in [steps.entry(key).or_default(), totals.entry(click.campaign).or_default()] {
                t.clickers.insert(click.customer.clone());
                t.clicks += 1;
            }
        }
        for stat in &self.line_stats {
            let key = (stat.campaign.clone(), stat.step.clone());
            let bucket = options.bucket.start(stat.from);
            for t in [
                steps.entry(key.clone()).or_default(),
                totals.entry(stat.campaign.clone()).or_default(),
                buckets.entry((key, bucket)).or_default(),
            ] {
                add_opt(&mut t.opened, stat.unique_impression);
                add_opt(&mut t.clicked_line, stat.unique_click);
            }
        }

        let mut campaigns: Vec<CampaignResult> = totals
            .into_iter()
            .map(|(campaign, tally)| CampaignResult {
                is_scenario: campaign.as_str().starts_with("scenario."),
                campaign,
                totals: tally.kpis(),
                steps: Vec::new(),
            })
            .collect();
        for ((campaign, step), tally) in steps {
            let timeline = buckets
                .iter()
                .filter(|((k, _), _)| k.0 == campaign && k.1 == step)
                .map(|((_, start), t)| {
                    let k = t.kpis();
                    TimelinePoint {
                        start: *start,
                        sent: k.sent,
                        open_rate: k.open_rate,
                        block_rate_7d: k.block_rate_7d,
                        conversion_rate: k.conversion_rate,
                        holdout_conversion_rate: k.holdout_conversion_rate,
                    }
                })
                .collect();
            if let Some(c) = campaigns.iter_mut().find(|c| c.campaign == campaign) {
                c.steps.push(StepResult { step, kpis: tally.kpis(), timeline });
            }
        }
        for c in &mut campaigns {
            c.steps.sort_by_key(|s| {
                (first.get(&(c.campaign.clone(), s.step.clone())).copied(), s.step.clone())
            });
        }
        ResultsReport {
            title: options.title.clone(),
            conversion_window_hours: options.conversion_window.num_hours(),
            utc_offset_seconds: options.utc_offset_seconds,
            bucket: options.bucket,
            campaigns,
            conversations: None,
            rich_menus: Vec::new(),
            channels: Vec::new(),
            coupons: Vec::new(),
        }
    }
}
