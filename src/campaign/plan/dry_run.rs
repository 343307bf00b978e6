//! What a plan amounts to: its batches, and the dry-run summary that counts them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::planner::ExclusionReason;
use crate::campaign::{Batch, SendRecord, Transport};
use crate::line::message::Message;
use crate::{CampaignId, CustomerId};

/// The outcome of planning: the batches to enqueue and what they amount to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The batches, IDs `<campaign>#0000001` upwards, to enqueue in the delivery journal.
    pub batches: Vec<Batch>,
    /// Counts, exclusions and samples.
    pub summary: DryRun,
}

impl Plan {
    /// The summary a dry run shows: counts per arm and per exclusion reason, deferral and
    /// sample messages. Nothing is sent by planning; enqueue [`Plan::batches`] to send.
    #[must_use]
    pub fn dry_run(&self) -> &DryRun {
        &self.summary
    }

    /// The batches, to enqueue.
    #[must_use]
    pub fn into_batches(self) -> Vec<Batch> {
        self.batches
    }

    /// One send record per recipient, timed at the batch's `not_before`: add them to a
    /// [`SendHistory`](crate::campaign::SendHistory) to plan another campaign before these
    /// batches reach the journal.
    pub fn send_records(&self) -> impl Iterator<Item = SendRecord> + '_ {
        self.batches.iter().flat_map(|b| {
            b.recipients.iter().map(|r| SendRecord {
                line_user: r.line_user.clone(),
                campaign: b.campaign.clone(),
                at: b.not_before,
            })
        })
    }
}

/// What a plan amounts to, without its batches: serialisable, and readable when displayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DryRun {
    /// The campaign.
    pub campaign: CampaignId,
    /// When the plan was made.
    pub planned_at: DateTime<Utc>,
    /// When the campaign was to be sent (its schedule, or the planning time if later).
    pub send_at: DateTime<Utc>,
    /// When its batches become due: `send_at` moved past quiet hours.
    pub not_before: DateTime<Utc>,
    /// Contacts considered.
    pub candidates: u64,
    /// Contacts who get a message.
    pub recipients: u64,
    /// Recipients whose send was deferred by quiet hours (deferred, not dropped).
    pub deferred: u64,
    /// Batches (LINE requests).
    pub batches: u64,
    /// Per arm (one unnamed entry for a campaign without A/B test).
    pub arms: Vec<ArmSummary>,
    /// Contacts left out, by the first reason that applied (reasons with none are left out).
    pub excluded: BTreeMap<ExclusionReason, u64>,
    /// A few rendered messages per arm.
    pub samples: Vec<Sample>,
}

impl DryRun {
    /// Contacts left out for `reason`.
    #[must_use]
    pub fn excluded(&self, reason: ExclusionReason) -> u64 {
        self.excluded.get(&reason).copied().unwrap_or(0)
    }

    /// Contacts left out for any reason.
    #[must_use]
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
    }

    /// The summary of arm `name`.
    #[must_use]
    pub fn arm(&self, name: &str) -> Option<&ArmSummary> {
        self.arms.iter().find(|a| a.name == name)
    }
}

/// Counts of one arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArmSummary {
    /// The arm's name (empty for a campaign without A/B test).
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// Multicast (identical content) or push (personalised).
    pub transport: Transport,
    /// Recipients.
    pub recipients: u64,
    /// Batches.
    pub batches: u64,
}

/// One recipient's rendered messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// The arm, for an A/B test.
    pub arm: Option<String>,
    /// The recipient.
    pub customer: CustomerId,
    /// The messages as they will be sent.
    pub messages: Vec<Message>,
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |at: DateTime<Utc>| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        writeln!(f, "campaign {} (dry run, planned {})", self.campaign, t(self.planned_at))?;
        write!(f, "  send at      {}", t(self.send_at))?;
        if self.not_before > self.send_at {
            write!(f, ", deferred by quiet hours to {}", t(self.not_before))?;
        }
        writeln!(f)?;
        writeln!(f, "  candidates   {:>10}", self.candidates)?;
        writeln!(f, "  recipients   {:>10}  in {} batches", self.recipients, self.batches)?;
        if self.deferred > 0 {
            writeln!(f, "  deferred     {:>10}", self.deferred)?;
        }
        for arm in &self.arms {
            let name = if arm.name.is_empty() { "(all)" } else { &arm.name };
            writeln!(
                f,
                "  arm {name:<12} weight {:<4} {:>10} recipients  {:>8} {} batches",
                arm.weight,
                arm.recipients,
                arm.batches,
                arm.transport.as_str()
            )?;
        }
        if !self.excluded.is_empty() {
            writeln!(f, "  excluded     {:>10}", self.excluded_total())?;
            for (reason, n) in &self.excluded {
                writeln!(f, "    {:<20} {n:>10}", reason.as_str())?;
            }
        }
        for sample in &self.samples {
            let arm = sample.arm.as_deref().map(|a| format!("[{a}] ")).unwrap_or_default();
            for m in &sample.messages {
                writeln!(f, "  sample {arm}{}: {}", sample.customer, preview(m))?;
            }
        }
        Ok(())
    }
}

/// A one-line preview of a message: a text's text, else its JSON, cut to 100 characters.
fn preview(message: &Message) -> String {
    let full = match message {
        Message::Text(t) => format!("text {:?}", t.text),
        Message::TextV2(t) => format!("textV2 {:?}", t.text),
        other => serde_json::to_string(other).unwrap_or_else(|_| other.type_name().to_owned()),
    };
    let mut chars = full.chars();
    let cut: String = chars.by_ref().take(100).collect();
    if chars.next().is_some() { format!("{cut}…") } else { cut }
}
