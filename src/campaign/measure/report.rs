//! The results report: data (serde), a terminal table (`Display`) and a self-contained HTML
//! page with inline SVG charts.

use std::fmt::{self, Write as _};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::kpi::Bucket;
use super::sections::{ChannelStats, ConversationStats, CouponStats, RichMenuStats};
use crate::CampaignId;

/// Treatment minus holdout conversion rate, with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Uplift {
    /// `p_treatment − p_holdout` (a fraction: 0.02 is 2 points).
    pub difference: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// `difference / p_holdout`, when the holdout converted at all.
    pub relative: Option<f64>,
    /// The interval's confidence level (0.95).
    pub confidence: f64,
    /// How the interval is computed (`newcombe_hybrid_score`).
    pub method: String,
}

impl Uplift {
    /// The interval excludes zero.
    #[must_use]
    pub fn is_significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The KPIs of a campaign, a step, or one chart bucket. Rates are fractions (0.25 = 25 %);
/// `None` when the denominator is zero or LINE hid the figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Kpis {
    /// Treatment sends.
    pub sent: u64,
    /// Sends LINE accepted.
    pub delivered: u64,
    /// LINE's unique impressions (sum of the figures LINE did not hide).
    pub opened: Option<u64>,
    /// `opened / delivered`.
    pub open_rate: Option<f64>,
    /// LINE's unique clicks (aggregate).
    pub clicked_line: Option<u64>,
    /// Distinct customers who clicked a tracked link.
    pub clickers: u64,
    /// Tracked-link clicks that count: one per link and customer per click window
    /// ([`unique_clicks`](crate::campaign::unique_clicks)), so replays add nothing.
    #[serde(default)]
    pub clicks: u64,
    /// `clickers / delivered`.
    pub click_rate: Option<f64>,
    /// Sends followed by a block within 1 day.
    pub blocked_1d: u64,
    /// Sends followed by a block within 7 days.
    pub blocked_7d: u64,
    /// `blocked_1d / sent`.
    pub block_rate_1d: Option<f64>,
    /// `blocked_7d / sent`.
    pub block_rate_7d: Option<f64>,
    /// Sends followed by an order within the conversion window.
    pub conversions: u64,
    /// `conversions / sent`.
    pub conversion_rate: Option<f64>,
    /// Order totals within the window (minor unit).
    pub revenue: u64,
    /// Holdout customers.
    pub holdout: u64,
    /// Holdout block rate within 7 days (the baseline).
    pub holdout_block_rate_7d: Option<f64>,
    /// Holdout customers who ordered within the window.
    pub holdout_conversions: u64,
    /// `holdout_conversions / holdout`.
    pub holdout_conversion_rate: Option<f64>,
    /// Holdout order totals within the window.
    pub holdout_revenue: u64,
    /// Conversion uplift over the holdout, when both groups are non-empty.
    pub uplift: Option<Uplift>,
}

/// One chart point: the sends of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelinePoint {
    /// First day of the bucket.
    pub start: NaiveDate,
    /// Treatment sends in the bucket.
    pub sent: u64,
    /// Open rate.
    pub open_rate: Option<f64>,
    /// Block rate within 7 days.
    pub block_rate_7d: Option<f64>,
    /// Conversion rate.
    pub conversion_rate: Option<f64>,
    /// Holdout conversion rate.
    pub holdout_conversion_rate: Option<f64>,
}

/// The results of one step (or of a campaign without steps: `step` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepResult {
    /// The scenario step.
    pub step: Option<String>,
    /// Its KPIs.
    pub kpis: Kpis,
    /// Its KPIs per bucket of send time.
    pub timeline: Vec<TimelinePoint>,
}

/// The results of one campaign or scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignResult {
    /// The campaign, or `scenario.<name>`.
    pub campaign: CampaignId,
    /// The ID starts with `scenario.`.
    pub is_scenario: bool,
    /// All its sends together.
    pub totals: Kpis,
    /// Per step.
    pub steps: Vec<StepResult>,
}

/// Measured results of campaigns and scenarios. Build it with
/// [`ReportInput::build`](crate::campaign::ReportInput::build); print it (`Display` is a
/// terminal table), serialise it, or render it with [`ResultsReport::to_html`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResultsReport {
    /// Title.
    pub title: String,
    /// The conversion window, hours.
    pub conversion_window_hours: i64,
    /// Time zone of dates, seconds east of UTC.
    pub utc_offset_seconds: i32,
    /// Chart resolution.
    pub bucket: Bucket,
    /// Per campaign.
    pub campaigns: Vec<CampaignResult>,
    /// What the chatbot's conversations did in the period, when there is a chatbot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<ConversationStats>,
    /// LINE's statistics per rich menu in the period, when the shop's menus are reconciled
    /// (`RichMenuReconciler::statistics`; `ResultsReport::with_rich_menus` shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rich_menus: Vec<RichMenuStats>,
    /// Results per delivery channel (LINE push, notification messages, e-mail, SMS), when the
    /// campaign went out on several (`ChannelResults::to_report`;
    /// `ResultsReport::with_channels` shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelStats>,
    /// Coupons issued and redeemed per campaign (and arm), with orders attributed
    /// (`coupon_results`, `CouponResult::to_report`; `ResultsReport::with_coupons` shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<CouponStats>,
}

fn points(uplift: Option<f64>) -> String {
    uplift.map_or_else(|| "–".to_owned(), |u| format!("{u:+.1}pt"))
}

fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "<20".to_owned(), |n| n.to_string())
}

fn uplift_text(uplift: Option<&Uplift>) -> String {
    uplift.map_or_else(
        || "–".to_owned(),
        |u| {
            format!(
                "{:+.1}pt [{:+.1}, {:+.1}]{}",
                u.difference * 100.0,
                u.low * 100.0,
                u.high * 100.0,
                if u.is_significant() { " *" } else { "" }
            )
        },
    )
}

fn label(campaign: &CampaignId, step: Option<&str>) -> String {
    match step {
        Some(step) => format!("{campaign} / {step}"),
        None => campaign.to_string(),
    }
}

/// Columns of the terminal table and the HTML table.
const HEADERS: [&str; 14] = [
    "campaign / step",
    "sent",
    "deliv.",
    "opened",
    "open",
    "clickers",
    "click",
    "block 1d",
    "block 7d",
    "conv.",
    "conv. rate",
    "revenue",
    "holdout conv.",
    "uplift (95% CI)",
];

fn cells(name: String, k: &Kpis) -> [String; 14] {
    [
        name,
        k.sent.to_string(),
        k.delivered.to_string(),
        count(k.opened),
        pct(k.open_rate),
        k.clickers.to_string(),
        pct(k.click_rate),
        pct(k.block_rate_1d),
        pct(k.block_rate_7d),
        k.conversions.to_string(),
        pct(k.conversion_rate),
        k.revenue.to_string(),
        if k.holdout == 0 {
            "–".to_owned()
        } else {
            format!("{} (n={})", pct(k.holdout_conversion_rate), k.holdout)
        },
        uplift_text(k.uplift.as_ref()),
    ]
}

impl ResultsReport {
    /// Table rows: each campaign's total (if it has several steps), then its steps.
    fn rows(&self) -> Vec<(bool, [String; 14])> {
        let mut rows = Vec::new();
        for c in &self.campaigns {
            let several = c.steps.len() > 1 || c.steps.iter().any(|s| s.step.is_some());
            if several {
                rows.push((true, cells(format!("{} (all)", c.campaign), &c.totals)));
            }
            for s in &c.steps {
                let name = if several {
                    format!("  {}", s.step.as_deref().unwrap_or("(no step)"))
                } else {
                    label(&c.campaign, s.step.as_deref())
                };
                rows.push((!several, cells(name, &s.kpis)));
            }
        }
        rows
    }

    /// Every step as a chart series: (label, timeline).
    fn series(&self) -> Vec<(String, &[TimelinePoint])> {
        self.campaigns
            .iter()
            .flat_map(|c| {
                c.steps.iter().map(|s| (label(&c.campaign, s.step.as_deref()), &s.timeline[..]))
            })
            .collect()
    }
}

impl fmt::Display for ResultsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        let mut widths = HEADERS.map(|h| h.chars().count());
        for (_, row) in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        writeln!(f, "{}", self.title)?;
        writeln!(
            f,
            "(conversion window {} h; rates of delivered for open/click, of sent otherwise; * = interval excludes 0)",
            self.conversion_window_hours
        )?;
        let line = |f: &mut fmt::Formatter<'_>, row: &[String]| -> fmt::Result {
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                if i == 0 {
                    write!(f, "{cell}{}", " ".repeat(pad))?;
                } else {
                    write!(f, "  {}{cell}", " ".repeat(pad))?;
                }
            }
            writeln!(f)
        };
        line(f, &HEADERS.map(str::to_owned))?;
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        writeln!(f, "{}", "-".repeat(total))?;
        for (_, row) in &rows {
            line(f, row)?;
        }
        if !self.rich_menus.is_empty() {
            writeln!(f, "\nrich menus (impressions, taps, taps per impression)")?;
            for m in &self.rich_menus {
                writeln!(
                    f,
                    "  {:<16} {:>10} {:>10} {:>7}",
                    m.menu,
                    count(m.impressions),
                    count(m.clicks()),
                    pct(m.click_rate())
                )?;
            }
        }
        super::sections::coupons_text(f, &self.coupons)?;
        if !self.channels.is_empty() {
            writeln!(
                f,
                "\nchannels (sent, delivered, clicked, converted, conversion rate, uplift vs holdout)"
            )?;
            for c in &self.channels {
                writeln!(
                    f,
                    "  {:<8} {:>8} {:>9} {:>8} {:>9} {:>7} {:>8}",
                    c.channel,
                    c.sent,
                    c.delivered,
                    c.clicked,
                    c.converted,
                    pct(c.conversion_rate),
                    points(c.uplift_points)
                )?;
            }
        }
        Ok(())
    }
}

/// Escapes text for HTML content and attribute values.
#[must_use]
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colour-blind-friendly palette (Okabe–Ito, then Tableau).
const COLORS: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C564B", "#7F7F7F",
    "#BCBD22", "#17BECF",
];

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// A "nice" upper bound for an axis: 1, 2, 2.5 or 5 × 10ⁿ above `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 0.01;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * magnitude >= max * 1.05 {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

const CHART_W: f64 = 1120.0;
const CHART_H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;

/// A named line: (date, value) points; `None` breaks the line.
type Series = (String, Vec<(NaiveDate, Option<f64>)>);

/// Where a line chart's dates and rates land in the SVG.
struct Frame {
    first: NaiveDate,
    last: NaiveDate,
    /// Days from the first to the last date (at least 1).
    span: f64,
    y_max: f64,
    plot_w: f64,
    plot_h: f64,
}

impl Frame {
    /// The frame for `dates` (sorted) and the largest value of `series`; `None` without dates.
    fn new(dates: &[NaiveDate], series: &[Series]) -> Option<Self> {
        let (first, last) = (*dates.first()?, *dates.last()?);
        let max = series
            .iter()
            .flat_map(|(_, pts)| pts.iter().filter_map(|(_, v)| *v))
            .fold(0.0, f64::max);
        Some(Self {
            first,
            last,
            span: (last - first).num_days().max(1) as f64,
            y_max: nice_max(max),
            plot_w: CHART_W - LEFT - RIGHT,
            plot_h: CHART_H - TOP - BOTTOM,
        })
    }

    fn x(&self, d: NaiveDate) -> f64 {
        if self.first == self.last {
            // One date: centred, not on the y axis.
            LEFT + self.plot_w / 2.0
        } else {
            LEFT + (d - self.first).num_days() as f64 / self.span * self.plot_w
        }
    }

    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_h - v / self.y_max * self.plot_h
    }

    /// The bottom edge of the plot: the x axis.
    fn bottom(&self) -> f64 {
        TOP + self.plot_h
    }
}

/// Every date of every series, sorted, once.
fn chart_dates(series: &[Series]) -> Vec<NaiveDate> {
    let mut d: Vec<NaiveDate> =
        series.iter().flat_map(|(_, pts)| pts.iter().map(|(d, _)| *d)).collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// An SVG line chart of one rate over time, one line per series.
fn line_chart(out: &mut String, aria: &str, x_label: &str, y_label: &str, series: &[Series]) {
    let dates = chart_dates(series);
    let Some(frame) = Frame::new(&dates, series) else {
        out.push_str("<p class=\"empty\">No data.</p>");
        return;
    };
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        escape_html(aria)
    );
    y_grid(out, &frame);
    x_ticks(out, &frame, &dates);
    axes(out, &frame, x_label, y_label);
    for (i, (name, points)) in series.iter().enumerate() {
        series_line(out, &frame, color(i), name, points);
    }
    out.push_str("</svg>");
    legend(out, series.iter().map(|(name, _)| name.as_str()));
}

/// Horizontal grid lines with percentage ticks, precise enough to tell small rates apart.
fn y_grid(out: &mut String, frame: &Frame) {
    let decimals = if frame.y_max * 100.0 < 5.0 {
        2
    } else if frame.y_max * 100.0 < 20.0 {
        1
    } else {
        0
    };
    for i in 0..=5 {
        let v = frame.y_max * f64::from(i) / 5.0;
        let yy = frame.y(v);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{:.*}%</text>",
            CHART_W - RIGHT,
            LEFT - 8.0,
            yy + 4.0,
            decimals,
            v * 100.0
        );
    }
}

/// A tick per date on the x axis, labelled at most ~12 times so labels do not overlap.
fn x_ticks(out: &mut String, frame: &Frame, dates: &[NaiveDate]) {
    let every = dates.len().div_ceil(12).max(1);
    let bottom = frame.bottom();
    for (i, d) in dates.iter().enumerate() {
        let xx = frame.x(*d);
        let _ = write!(
            out,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{bottom:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
            bottom + 5.0
        );
        if i % every == 0 {
            let _ = write!(
                out,
                "<text x=\"{xx:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
                bottom + 20.0,
                d.format("%m-%d")
            );
        }
    }
}

/// Both axes and their labels.
fn axes(out: &mut String, frame: &Frame, x_label: &str, y_label: &str) {
    let bottom = frame.bottom();
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" class=\"axis\"/>\
         <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\" class=\"axis\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" class=\"label\" text-anchor=\"middle\">{}</text>",
        CHART_W - RIGHT,
        LEFT + frame.plot_w / 2.0,
        CHART_H - 10.0,
        escape_html(x_label),
        TOP + frame.plot_h / 2.0,
        escape_html(y_label),
    );
}

/// One series: its line (broken where a value is hidden or missing) and a dot per value.
fn series_line(
    out: &mut String,
    frame: &Frame,
    c: &str,
    name: &str,
    points: &[(NaiveDate, Option<f64>)],
) {
    let mut path = String::new();
    let mut pen_down = false;
    for (d, v) in points {
        match v {
            Some(v) => {
                let pen = if pen_down { "L" } else { "M" };
                let _ = write!(path, "{pen}{:.1} {:.1} ", frame.x(*d), frame.y(*v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let name = escape_html(name);
    let _ = write!(
        out,
        "<path d=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2.5\"><title>{name}</title></path>",
        path.trim_end(),
    );
    // A lone point has no line through it; draw it larger so it is seen.
    let radius = if points.iter().filter(|(_, v)| v.is_some()).count() == 1 { 6.0 } else { 3.5 };
    for (d, v) in points {
        if let Some(v) = v {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius}\" fill=\"{c}\"><title>{name}: {d} {:.1}%</title></circle>",
                frame.x(*d),
                frame.y(*v),
                v * 100.0
            );
        }
    }
}

fn legend<'a>(out: &mut String, names: impl Iterator<Item = &'a str>) {
    out.push_str("<ul class=\"legend\">");
    for (i, name) in names.enumerate() {
        let _ = write!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            color(i),
            escape_html(name)
        );
    }
    out.push_str("</ul>");
}

/// Horizontal interval chart of the conversion uplift per step.
fn uplift_chart(out: &mut String, rows: &[(String, &Uplift)]) {
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No step has a holdout group.</p>");
        return;
    }
    let row_h = 34.0;
    let label_w = 300.0;
    let height = TOP + row_h * rows.len() as f64 + BOTTOM;
    let plot_w = CHART_W - label_w - RIGHT;
    // The axis spans the intervals and zero, in round steps.
    let min = rows.iter().fold(0.0f64, |m, (_, u)| m.min(u.low));
    let max = rows.iter().fold(0.0f64, |m, (_, u)| m.max(u.high));
    let step = nice_max((max - min) / 8.0);
    let lo = (min / step).floor() * step;
    let hi = ((max / step).ceil() * step).max(lo + step);
    let x = |v: f64| label_w + (v - lo) / (hi - lo) * plot_w;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" aria-label=\"Conversion uplift over holdout\" class=\"chart\">"
    );
    let bottom = TOP + row_h * rows.len() as f64;
    let ticks = ((hi - lo) / step).round() as i64;
    for i in 0..=ticks {
        let v = lo + step * i as f64;
        let v = if v.abs() < step / 2.0 { 0.0 } else { v };
        let xx = x(v);
        let _ = write!(
            out,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" class=\"{}\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{:+.1}</text>",
            if v == 0.0 { "zero" } else { "grid" },
            bottom + 20.0,
            v * 100.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"middle\">Conversion uplift over holdout (percentage points, 95% CI)</text>",
        label_w + plot_w / 2.0,
        height - 10.0
    );
    for (i, (name, u)) in rows.iter().enumerate() {
        let cy = TOP + row_h * (i as f64 + 0.5);
        let c = if u.is_significant() {
            if u.difference > 0.0 { "#009E73" } else { "#D55E00" }
        } else {
            "#7F7F7F"
        };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"{c}\" stroke-width=\"3\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"6\" fill=\"{c}\"><title>{}: {:+.2} pt [{:+.2}, {:+.2}]</title></circle>",
            label_w - 12.0,
            cy + 4.0,
            escape_html(name),
            x(u.low),
            x(u.high),
            x(u.low),
            x(u.low),
            cy - 7.0,
            cy + 7.0,
            x(u.high),
            x(u.high),
            cy - 7.0,
            cy + 7.0,
            x(u.difference),
            escape_html(name),
            u.difference * 100.0,
            u.low * 100.0,
            u.high * 100.0
        );
    }
    out.push_str("</svg>");
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans JP','Hiragino Sans',sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1500px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 2px}
.note{color:#5b6475;font-size:13px;margin:0 0 12px}
section{overflow-x:auto;background:#fff;border:1px solid #e1e4ea;border-radius:10px;padding:16px 18px;margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 5px;border-bottom:1px solid #eceef2;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600}
th:first-child,td:first-child{text-align:left}
tr.total td{font-weight:600;background:#fafbfc}
td.step{padding-left:22px}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#e6e8ee;stroke-width:1}
.chart .zero{stroke:#1d2330;stroke-width:1.5}
.chart .axis{stroke:#1d2330;stroke-width:1.2}
.chart .tick{font-size:12px;fill:#3a4252}
.chart .label{font-size:13px;fill:#1d2330;font-weight:600}
.legend{list-style:none;padding:0;margin:6px 0 0 70px;display:flex;flex-wrap:wrap;gap:6px 18px;font-size:13px}
.legend .swatch{display:inline-block;width:14px;height:4px;border-radius:2px;margin-right:6px;vertical-align:middle}
.empty{color:#5b6475}
";

impl ResultsReport {
    /// The report with the chatbot's figures for the period.
    #[must_use]
    pub fn with_conversations(mut self, stats: ConversationStats) -> Self {
        self.conversations = Some(stats);
        self
    }

    /// The report with LINE's statistics per rich menu for the period.
    #[must_use]
    pub fn with_rich_menus(mut self, menus: Vec<RichMenuStats>) -> Self {
        self.rich_menus = menus;
        self
    }

    /// The conversations table of [`to_html`](Self::to_html), when there are any.
    fn conversations_html(&self, out: &mut String) {
        if let Some(c) = &self.conversations {
            let _ = write!(
                *out,
                "<section><h2>Conversations</h2><table><thead><tr><th>conversations</th><th>messages in</th>\
                 <th>replies</th><th>hand-offs</th><th>surveys sent</th><th>answers</th><th>answer rate</th></tr></thead>\
                 <tbody><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></tbody></table></section>",
                c.conversations,
                c.inbound,
                c.replies,
                c.handoffs,
                c.surveys_started,
                c.survey_answers,
                pct(c.survey_answer_rate())
            );
        }
    }

    /// The rich-menu table of [`to_html`](Self::to_html), when there are menus.
    fn rich_menus_html(&self, out: &mut String) {
        if !self.rich_menus.is_empty() {
            out.push_str(
                "<section><h2>Rich menus</h2><table><thead><tr><th>menu</th><th>rich menu ID</th>\
                 <th>impressions</th><th>unique</th><th>taps</th><th>taps per impression</th></tr></thead><tbody>",
            );
            for m in &self.rich_menus {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape_html(&m.menu),
                    escape_html(&m.rich_menu_id),
                    count(m.impressions),
                    count(m.unique_impressions),
                    count(m.clicks()),
                    pct(m.click_rate())
                );
            }
            out.push_str("</tbody></table></section>");
        }
    }

    /// The report with coupon results (an empty list shows nothing). A campaign's row
    /// (without an arm, or its only one) gets the campaign's conversion rate and its holdout's
    /// from this report when the row does not have them.
    #[must_use]
    pub fn with_coupons(mut self, mut coupons: Vec<CouponStats>) -> Self {
        let rows_of = |campaign: &str, rows: &[CouponStats]| {
            rows.iter().filter(|c| c.campaign == campaign).count()
        };
        let only: Vec<bool> = coupons
            .iter()
            .map(|c| c.arm.is_none() || rows_of(&c.campaign, &coupons) == 1)
            .collect();
        for (c, only) in coupons.iter_mut().zip(only) {
            let totals = self.campaigns.iter().find(|r| r.campaign.as_str() == c.campaign);
            if let (Some(r), true) = (totals, only) {
                c.conversion_rate = c.conversion_rate.or(r.totals.conversion_rate);
                c.holdout_conversion_rate =
                    c.holdout_conversion_rate.or(r.totals.holdout_conversion_rate);
            }
        }
        self.coupons = coupons;
        self
    }

    /// The report with the results per delivery channel (an empty list shows nothing).
    #[must_use]
    pub fn with_channels(mut self, channels: Vec<ChannelStats>) -> Self {
        self.channels = channels;
        self
    }

    /// A self-contained HTML page (no scripts, no external resources): a KPI table, the
    /// conversion uplift per step with its interval, and open rate, 7-day block rate and
    /// conversion rate over time per step as inline SVG line charts. Every name from the data
    /// is HTML-escaped.
    #[must_use]
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = escape_html(&self.title);
        let _ = write!(
            out,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head><body><main><h1>{title}</h1>"
        );
        let hours = f64::from(self.utc_offset_seconds) / 3600.0;
        let bucket = match self.bucket {
            Bucket::Day => "day",
            Bucket::Week => "week",
        };
        let _ = write!(
            out,
            "<p class=\"note\">Conversion window {} h after each send · dates in UTC{:+} · one chart point per {bucket} of send time · \
             open and click rates are of delivered messages, block and conversion rates of sent ones · \
             uplift = treatment − holdout conversion rate, 95% Newcombe interval.</p>",
            self.conversion_window_hours, hours
        );

        out.push_str("<section><h2>Results per campaign and step</h2><table><thead><tr>");
        for h in HEADERS {
            let _ = write!(out, "<th>{}</th>", escape_html(h));
        }
        out.push_str("</tr></thead><tbody>");
        for (top, row) in self.rows() {
            let _ = write!(out, "<tr{}>", if top { " class=\"total\"" } else { "" });
            for (i, cell) in row.iter().enumerate() {
                let class = if i == 0 && !top { " class=\"step\"" } else { "" };
                let _ = write!(out, "<td{class}>{}</td>", escape_html(cell.trim_start()));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></section>");
        self.conversations_html(&mut out);
        self.rich_menus_html(&mut out);
        super::sections::coupons_html(&mut out, &self.coupons);

        if !self.channels.is_empty() {
            out.push_str(
                "<section><h2>Results per channel</h2><table><thead><tr><th>channel</th><th>sent</th>\
                 <th>delivered</th><th>clicked</th><th>converted</th><th>conversion rate</th>\
                 <th>uplift vs holdout</th></tr></thead><tbody>",
            );
            for c in &self.channels {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape_html(&c.channel),
                    c.sent,
                    c.delivered,
                    c.clicked,
                    c.converted,
                    pct(c.conversion_rate),
                    escape_html(&points(c.uplift_points))
                );
            }
            out.push_str("</tbody></table></section>");
        }

        let uplifts: Vec<(String, &Uplift)> = self
            .campaigns
            .iter()
            .flat_map(|c| {
                c.steps.iter().filter_map(|s| {
                    Some((label(&c.campaign, s.step.as_deref()), s.kpis.uplift.as_ref()?))
                })
            })
            .collect();
        out.push_str("<section><h2>Conversion uplift over the holdout group</h2><p class=\"note\">Dot: treatment minus holdout conversion rate; bar: 95% interval. Green/orange: the interval excludes zero.</p>");
        uplift_chart(&mut out, &uplifts);
        out.push_str("</section>");

        let series = self.series();
        let x_label = format!("Send {bucket} (starting)");
        type Pick = fn(&TimelinePoint) -> Option<f64>;
        let charts: [(&str, &str, &str, Pick); 3] = [
            ("Open rate", "LINE unique impressions ÷ delivered", "open rate", |p| p.open_rate),
            (
                "Block rate within 7 days",
                "sends followed by a block within 7 days ÷ sent",
                "block rate",
                |p| p.block_rate_7d,
            ),
            (
                "Conversion rate",
                "sends followed by an order within the window ÷ sent",
                "conversion rate",
                |p| p.conversion_rate,
            ),
        ];
        for (heading, note, y_label, pick) in charts {
            let data: Vec<Series> = series
                .iter()
                .map(|(name, points)| {
                    (name.clone(), points.iter().map(|p| (p.start, pick(p))).collect())
                })
                .collect();
            let _ = write!(
                out,
                "<section><h2>{} per step over time</h2><p class=\"note\">{}</p>",
                escape_html(heading),
                escape_html(note)
            );
            line_chart(&mut out, heading, &x_label, y_label, &data);
            out.push_str("</section>");
        }
        out.push_str("</main></body></html>\n");
        out
    }
}
