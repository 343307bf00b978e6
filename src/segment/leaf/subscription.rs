//! Subscriptions (定期): `subscription {state = active, product = "x", ...}`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::Condition;
use crate::segment::ast::SubscriptionState;
use crate::segment::dsl::Parser;
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, date_test, min_opt};
use crate::segment::print::str_set;
use crate::segment::sql::{Compiler, sym};
use crate::segment::time::secs;

impl Parser {
    /// The leaf starting with "subscription".
    pub(in crate::segment) fn parse_subscription(&mut self) -> Result<Condition, ParseError> {
        self.bump();
        self.subscription()
    }
}

/// Writes `subscription` as DSL text.
pub(crate) fn print_subscription(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::Subscription {
        state,
        products,
        cancel_reasons,
        deliveries,
        started,
        canceled,
        next_delivery,
    } = c
    else {
        return Ok(());
    };
    {
        let mut terms = Vec::new();
        if let Some(s) = state {
            terms.push(format!("state = {}", sub_state(*s)));
        }
        if !products.is_empty() {
            terms.push(format!("product {}", str_set(products)));
        }
        if !cancel_reasons.is_empty() {
            terms.push(format!("reason {}", str_set(cancel_reasons)));
        }
        if let Some(d) = deliveries {
            terms.push(format!("deliveries {} {}", d.op.symbol(), d.value));
        }
        if let Some(t) = started {
            terms.push(format!("started {t}"));
        }
        if let Some(t) = canceled {
            terms.push(format!("canceled {t}"));
        }
        if let Some(t) = next_delivery {
            terms.push(format!("next_delivery {t}"));
        }
        write!(f, "subscription {{{}}}", terms.join(", "))
    }
}

/// `subscription` for one customer.
pub(crate) fn eval_subscription<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::Subscription {
        state,
        products,
        cancel_reasons,
        deliveries,
        started,
        canceled,
        next_delivery,
    } = c
    else {
        return Ok(Leaf::mismatch());
    };
    let now = env.now;
    let tz = env.tz;
    Ok({
        let mut result = false;
        let mut horizon = None;
        let mut seen = 0;
        for s in v.subscriptions() {
            let st = secs(&s.started_at);
            if st > now {
                horizon = min_opt(horizon, Some(st));
                continue;
            }
            seen += 1;
            let mut ok = state.is_none_or(|x| x == s.state)
                && (products.is_empty()
                    || s.product.as_ref().is_some_and(|p| products.contains(p)))
                && (cancel_reasons.is_empty()
                    || s.cancel_reason.as_ref().is_some_and(|r| cancel_reasons.contains(r)))
                && deliveries.is_none_or(|d| d.op.apply(i64::from(s.deliveries), d.value));
            for (test, t) in [
                (started, Some(st)),
                (canceled, s.canceled_at.as_ref().map(secs)),
                (next_delivery, s.next_delivery_at.as_ref().map(secs)),
            ] {
                if let Some(test) = test {
                    let (r, h) = date_test(t, test, now, tz);
                    ok &= r;
                    horizon = min_opt(horizon, h);
                }
            }
            result |= ok;
        }
        Leaf {
            result,
            observed: ex!(explain, "{seen} subscriptions"),
            comparison: ex!(
                explain,
                "{}",
                if result { "one matches every test" } else { "none matches every test" }
            ),
            horizon,
        }
    })
}

impl Compiler<'_> {
    /// `subscription` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_subscription(
        &self,
        c: &Condition,
    ) -> Result<String, SegmentError> {
        let Condition::Subscription {
            state,
            products,
            cancel_reasons,
            deliveries,
            started,
            canceled,
            next_delivery,
        } = c
        else {
            return Err(mismatch(c));
        };
        Ok({
            let mut w = vec![
                "s.customer_id = c.customer_id".to_string(),
                format!("s.started_at < {}", self.ts(self.now + 1)),
            ];
            if let Some(st) = state {
                w.push(format!("s.state = '{}'", sub_state(*st)));
            }
            if !products.is_empty() {
                w.push(format!("s.product_id IN ({})", self.list(products)));
            }
            if !cancel_reasons.is_empty() {
                w.push(format!("s.cancel_reason IN ({})", self.list(cancel_reasons)));
            }
            if let Some(d) = deliveries {
                w.push(format!("s.deliveries {} {}", sym(d.op), d.value));
            }
            for (t, col) in [
                (started, "s.started_at"),
                (canceled, "s.canceled_at"),
                (next_delivery, "s.next_delivery_at"),
            ] {
                if let Some(t) = t {
                    w.push(format!("COALESCE(({}), FALSE)", self.date_test(col, t)));
                }
            }
            format!(
                "EXISTS (SELECT 1 FROM {} s WHERE {})",
                self.table("subscriptions"),
                w.join(" AND ")
            )
        })
    }
}

/// The DSL and SQL word of a subscription state.
fn sub_state(s: SubscriptionState) -> &'static str {
    match s {
        SubscriptionState::Active => "active",
        SubscriptionState::Paused => "paused",
        SubscriptionState::Canceled => "canceled",
    }
}
