//! Message engagement: `messages opened ["campaign"] last 30d count >= 1`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{Condition, MessageKind};
use crate::segment::dsl::{Parser, Tok};
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, message_kind, min_opt, window_bounds, window_horizon};
use crate::segment::print::{join, str_list};
use crate::segment::sql::{Compiler, sym};
use crate::segment::time::secs;

impl Parser {
    /// The leaf starting with "messages".
    pub(in crate::segment) fn parse_messages(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        let i = self.one_of(&["received", "opened", "clicked"], "a message event")?;
        let kind = [MessageKind::Received, MessageKind::Opened, MessageKind::Clicked][i];
        let campaigns = if *self.peek() == Tok::LBracket { self.str_list()? } else { Vec::new() };
        let window = self.opt_window()?;
        self.kw("count")?;
        let op = self.op()?;
        let value = self.int()?;
        Ok(Condition::Messages { kind, campaigns, window, op, value })
    }
}

/// Writes `messages` as DSL text.
pub(crate) fn print_messages(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Messages { kind, campaigns, window, op, value } = c else { return Ok(()) };
    {
        let k = match kind {
            MessageKind::Received => "received",
            MessageKind::Opened => "opened",
            MessageKind::Clicked => "clicked",
        };
        let c = if campaigns.is_empty() { String::new() } else { str_list(campaigns) };
        join(
            f,
            &[
                format!("messages {k}"),
                c,
                window.to_string(),
                format!("count {} {value}", op.symbol()),
            ],
        )
    }
}

/// `messages` for one customer.
pub(crate) fn eval_messages<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Messages { kind, campaigns, window, op, value } = c else {
        return Ok(Leaf::mismatch());
    };
    let now = env.now;
    let tz = env.tz;
    Ok({
        let (lo, hi) = window_bounds(window, now, tz);
        let mut count = 0i64;
        let mut horizon = None;
        for m in v.messages() {
            if m.kind != *kind
                || (!campaigns.is_empty()
                    && !m.campaign.as_ref().is_some_and(|c| campaigns.contains(c)))
            {
                continue;
            }
            let t = secs(&m.at);
            if t >= lo && t <= hi {
                count += 1;
            }
            horizon = min_opt(horizon, window_horizon(window, t, now, tz));
        }
        Leaf {
            result: op.apply(count, *value),
            observed: ex!(explain, "{count} {} events", message_kind(*kind)),
            comparison: ex!(explain, "{count} {} {value}", op.symbol()),
            horizon,
        }
    })
}

impl Compiler<'_> {
    /// `messages` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_messages(&self, c: &Condition) -> Result<String, SegmentError> {
        let Condition::Messages { kind, campaigns, window, op, value } = c else {
            return Err(mismatch(c));
        };
        Ok({
            let k = match kind {
                MessageKind::Received => "received",
                MessageKind::Opened => "opened",
                MessageKind::Clicked => "clicked",
            };
            let camp = if campaigns.is_empty() {
                String::new()
            } else {
                format!(" AND m.campaign IN ({})", self.list(campaigns))
            };
            format!(
                "EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n FROM {} m WHERE m.customer_id = c.customer_id \
                     AND m.kind = '{k}'{camp} AND {}) q WHERE q.n {} {value})",
                self.table("message_events"),
                self.window("m.at", window),
                sym(*op)
            )
        })
    }
}
