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
