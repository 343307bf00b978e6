//! Results per channel: sent, delivered, clicked, conversions and uplift against the holdout.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::TimeDelta;

use super::ChannelKind;
use super::line::PnpDeliveries;
use crate::CustomerId;
use crate::campaign::{BatchRecord, BatchStatus, ChannelStats, Click, PurchaseFact};

/// One channel's results.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChannelResult {
    /// Customers whose message the channel accepted.
    pub sent: u64,
    /// Customers whose message is known delivered: PNP by LINE's `delivery` event; the other
    /// channels count acceptance (LINE, the SMTP server, the SMS provider) as delivery.
    pub delivered: u64,
    /// Customers who clicked a tracked link of the campaign after the send.
    pub clicked: u64,
    /// Customers who bought within the window after the send.
    pub converted: u64,
    /// Conversion rate minus the holdout's, in percentage points (`None` without a holdout).
    pub uplift_points: Option<f64>,
}

/// Results of one campaign per channel.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChannelResults {
    /// By channel.
    pub by_channel: BTreeMap<ChannelKind, ChannelResult>,
    /// The holdout's conversion rate in percent, if there is a holdout.
    pub holdout_rate: Option<f64>,
}

impl ChannelResults {
    /// Computes the results from the campaign's journal `records`, PNP `deliveries`, tracked
    /// `clicks`, `purchases`, and the `holdout` customers (who got nothing), counting a purchase
    /// within `window` after the send (for the holdout: after the campaign's first send).
    #[must_use]
    pub fn compute(
        records: &[BatchRecord],
        deliveries: &PnpDeliveries,
        clicks: &[Click],
        purchases: &[PurchaseFact],
        holdout: &[CustomerId],
        window: TimeDelta,
    ) -> Self {
        let mut out = Self::default();
        let start =
            records.iter().filter(|r| r.status == BatchStatus::Sent).map(|r| r.updated_at).min();
        let holdout_rate = start.filter(|_| !holdout.is_empty()).map(|start| {
            let set: HashSet<&CustomerId> = holdout.iter().collect();
            let bought: HashSet<&CustomerId> = purchases
                .iter()
                .filter(|p| set.contains(&p.customer) && p.at >= start && p.at <= start + window)
                .map(|p| &p.customer)
                .collect();
            100.0 * bought.len() as f64 / holdout.len() as f64
        });
        out.holdout_rate = holdout_rate;
        for r in records.iter().filter(|r| r.status == BatchStatus::Sent) {
            let Some(kind) = ChannelKind::of_transport(r.batch.transport) else { continue };
            let e = out.by_channel.entry(kind).or_default();
            for rcpt in &r.batch.recipients {
                e.sent += 1;
                if kind != ChannelKind::Pnp || deliveries.delivered(&r.batch.id) {
                    e.delivered += 1;
                }
                let at = r.updated_at;
                if clicks.iter().any(|c| {
                    c.customer == rcpt.customer && c.campaign == r.batch.campaign && c.at >= at
                }) {
                    e.clicked += 1;
                }
                if purchases
                    .iter()
                    .any(|p| p.customer == rcpt.customer && p.at >= at && p.at <= at + window)
                {
                    e.converted += 1;
                }
            }
        }
        for e in out.by_channel.values_mut() {
            if let (Some(base), true) = (holdout_rate, e.sent > 0) {
                e.uplift_points = Some(100.0 * e.converted as f64 / e.sent as f64 - base);
            }
        }
        out
    }
}

impl ChannelResults {
    /// The rows of the results report's channel table (`ResultsReport::with_channels`), in
    /// [`ChannelKind::ALL`] order.
    #[must_use]
    pub fn to_report(&self) -> Vec<ChannelStats> {
        self.by_channel
            .iter()
            .map(|(k, r)| {
                ChannelStats::new(
                    k.as_str(),
                    r.sent,
                    r.delivered,
                    r.clicked,
                    r.converted,
                    r.uplift_points,
                )
            })
            .collect()
    }
}

impl fmt::Display for ChannelResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "channel  sent  delivered  clicked  converted  uplift")?;
        for (k, r) in &self.by_channel {
            let uplift = r.uplift_points.map_or_else(|| "-".to_owned(), |u| format!("{u:+.1}pt"));
            writeln!(
                f,
                "{:<7} {:>5} {:>10} {:>8} {:>10}  {uplift}",
                k.as_str(),
                r.sent,
                r.delivered,
                r.clicked,
                r.converted
            )?;
        }
        Ok(())
    }
}
