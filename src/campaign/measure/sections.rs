//! The figures other parts add to the results report: per delivery channel, per rich menu,
//! and the chatbot's conversations.

use serde::{Deserialize, Serialize};

/// One delivery channel's figures for the results report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChannelStats {
    /// The channel's name (`line`, `pnp`, `email`, `sms`).
    pub channel: String,
    /// Customers whose message the channel accepted.
    pub sent: u64,
    /// Customers whose message is known delivered.
    pub delivered: u64,
    /// Customers who clicked a tracked link after the send.
    pub clicked: u64,
    /// Customers who bought within the window after the send.
    pub converted: u64,
    /// Converted ÷ sent, when anything was sent.
    pub conversion_rate: Option<f64>,
    /// Conversion rate minus the holdout's, in percentage points (`None` without a holdout).
    pub uplift_points: Option<f64>,
}

impl ChannelStats {
    /// Figures for one channel; the conversion rate is computed from `converted` and `sent`.
    #[must_use]
    pub fn new(
        channel: impl Into<String>,
        sent: u64,
        delivered: u64,
        clicked: u64,
        converted: u64,
        uplift_points: Option<f64>,
    ) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let conversion_rate = (sent > 0).then(|| converted as f64 / sent as f64);
        Self {
            channel: channel.into(),
            sent,
            delivered,
            clicked,
            converted,
            conversion_rate,
            uplift_points,
        }
    }
}

/// One rich menu's figures for the results report. LINE withholds them (`None`) below its
/// privacy threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RichMenuStats {
    /// The shop's key of the menu (e.g. `mypage`).
    pub menu: String,
    /// LINE's rich-menu ID.
    pub rich_menu_id: String,
    /// Impressions of the menu.
    pub impressions: Option<u64>,
    /// Distinct users who saw it.
    pub unique_impressions: Option<u64>,
    /// Taps on its areas, in area order.
    pub area_clicks: Vec<u64>,
}

impl RichMenuStats {
    /// Figures for one menu.
    #[must_use]
    pub fn new(
        menu: impl Into<String>,
        rich_menu_id: impl Into<String>,
        impressions: Option<u64>,
        unique_impressions: Option<u64>,
        area_clicks: Vec<u64>,
    ) -> Self {
        Self {
            menu: menu.into(),
            rich_menu_id: rich_menu_id.into(),
            impressions,
            unique_impressions,
            area_clicks,
        }
    }

    /// Taps on all areas, when LINE reported the figures.
    #[must_use]
    pub fn clicks(&self) -> Option<u64> {
        self.impressions.map(|_| self.area_clicks.iter().sum())
    }

    /// Taps per impression, when LINE reported the figures and there were impressions.
    #[must_use]
    pub fn click_rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        match (self.clicks(), self.impressions) {
            (Some(c), Some(i)) if i > 0 => Some(c as f64 / i as f64),
            _ => None,
        }
    }
}

/// The chatbot's side of the results: conversations, replies, hand-offs, survey answers
/// (`ChatBot::summary` gives them; `ResultsReport::with_conversations` shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConversationStats {
    /// Distinct LINE users in a conversation.
    pub conversations: u64,
    /// Messages, postbacks and follows received.
    pub inbound: u64,
    /// Messages the bot sent.
    pub replies: u64,
    /// Hand-offs to staff.
    pub handoffs: u64,
    /// Survey questions sent.
    pub surveys_started: u64,
    /// Survey answers stored.
    pub survey_answers: u64,
}

impl ConversationStats {
    /// Stats from counts.
    #[must_use]
    pub fn new(
        conversations: u64,
        inbound: u64,
        replies: u64,
        handoffs: u64,
        surveys_started: u64,
        survey_answers: u64,
    ) -> Self {
        Self { conversations, inbound, replies, handoffs, surveys_started, survey_answers }
    }

    /// Survey answers per question sent, when any was sent.
    #[must_use]
    pub fn survey_answer_rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.surveys_started > 0).then(|| self.survey_answers as f64 / self.surveys_started as f64)
    }
}

/// One campaign's (or experiment arm's) coupons for the results report: issued, redeemed,
/// the orders they are attributed to, and the campaign's conversion against its holdout when
/// the report knows it (`CouponResult::to_report`; `ResultsReport::with_coupons` shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponStats {
    /// The campaign.
    pub campaign: String,
    /// The experiment arm, when the campaign had several.
    pub arm: Option<String>,
    /// Customers a coupon was sent to.
    pub issued: u64,
    /// Of those, redeemed in an order within the window.
    pub redeemed: u64,
    /// Distinct orders the redemptions are attributed to.
    pub orders: u64,
    /// Their revenue, in yen.
    pub revenue: u64,
    /// The campaign's conversion rate (of sent), when the report has the campaign.
    pub conversion_rate: Option<f64>,
    /// Its holdout group's conversion rate, when it had a holdout.
    pub holdout_conversion_rate: Option<f64>,
}

impl CouponStats {
    /// Figures for one campaign (and arm), without conversion figures.
    #[must_use]
    pub fn new(
        campaign: impl Into<String>,
        arm: Option<String>,
        issued: u64,
        redeemed: u64,
        orders: u64,
        revenue: u64,
    ) -> Self {
        Self {
            campaign: campaign.into(),
            arm,
            issued,
            redeemed,
            orders,
            revenue,
            conversion_rate: None,
            holdout_conversion_rate: None,
        }
    }

    /// Redeemed ÷ issued, when any was issued.
    #[must_use]
    pub fn redemption_rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.issued > 0).then(|| self.redeemed as f64 / self.issued as f64)
    }

    /// Conversion rate minus the holdout's, in percentage points, when both are known.
    #[must_use]
    pub fn uplift_points(&self) -> Option<f64> {
        Some((self.conversion_rate? - self.holdout_conversion_rate?) * 100.0)
    }

    /// The row's label: the campaign, with its arm.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.arm {
            Some(arm) => format!("{} / {arm}", self.campaign),
            None => self.campaign.clone(),
        }
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn uplift(points: Option<f64>) -> String {
    points.map_or_else(|| "–".to_owned(), |u| format!("{u:+.1}pt"))
}

/// The coupon lines of the terminal report.
pub(super) fn coupons_text(
    f: &mut std::fmt::Formatter<'_>,
    coupons: &[CouponStats],
) -> std::fmt::Result {
    if coupons.is_empty() {
        return Ok(());
    }
    writeln!(
        f,
        "\ncoupons (issued, redeemed, redemption rate, orders, revenue, conversion, holdout conversion, uplift)"
    )?;
    for c in coupons {
        writeln!(
            f,
            "  {:<20} {:>8} {:>8} {:>7} {:>7} {:>10} {:>7} {:>7} {:>8}",
            c.label(),
            c.issued,
            c.redeemed,
            rate(c.redemption_rate()),
            c.orders,
            c.revenue,
            rate(c.conversion_rate),
            rate(c.holdout_conversion_rate),
            uplift(c.uplift_points())
        )?;
    }
    Ok(())
}

/// The coupon table of the HTML report.
pub(super) fn coupons_html(out: &mut String, coupons: &[CouponStats]) {
    use std::fmt::Write as _;
    if coupons.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Coupons</h2><table><thead><tr><th>campaign / arm</th><th>issued</th>\
         <th>redeemed</th><th>redemption rate</th><th>orders attributed</th><th>revenue</th>\
         <th>conversion rate</th><th>holdout conversion</th><th>uplift vs holdout</th></tr></thead><tbody>",
    );
    for c in coupons {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            super::report::escape_html(&c.label()),
            c.issued,
            c.redeemed,
            rate(c.redemption_rate()),
            c.orders,
            c.revenue,
            rate(c.conversion_rate),
            rate(c.holdout_conversion_rate),
            uplift(c.uplift_points())
        );
    }
    out.push_str("</tbody></table></section>");
}
