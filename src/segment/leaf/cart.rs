//! Carts and favourites: `cart abandoned 3h`, `cart restocked`, `favourites price_dropped`, `saved last_one`.
//!
//! The family's DSL parsing, printing, evaluation and SQL, in that order.

use std::fmt::{self, Formatter};

use super::mismatch;
use crate::segment::ast::{CmpOp, Condition, ItemChangeKind, ItemSource, OrderFilter};
use crate::segment::data::SavedItem;
use crate::segment::dsl::{Parser, Tok, err};
use crate::segment::error::{ParseError, SegmentError};
use crate::segment::eval::{Env, Leaf, View, after, min_opt};
use crate::segment::print::str_list;
use crate::segment::sql::Compiler;
use crate::segment::time::{fmt_ts, secs};

impl Parser {
    /// The leaf starting with "cart".
    pub(in crate::segment) fn parse_saved(&mut self, word: &str) -> Result<Condition, ParseError> {
        self.bump();
        if word == "cart" && self.eat_kw("abandoned") {
            let after = self.span()?;
            let mut min_items = 1;
            if self.eat_kw("items") {
                if !self.eat(&Tok::Op(CmpOp::Ge)) {
                    return self.fail("`>=` (cart abandoned ... items >= N)");
                }
                let n = self.int()?;
                min_items = u32::try_from(n).map_err(|_| {
                    let t = &self.toks[self.pos - 1];
                    err(t.line, t.column, "a number of items from 1 to 4294967295", n.to_string())
                })?;
            }
            return Ok(Condition::CartAbandoned { after, min_items });
        }
        let source = match word {
            "cart" => ItemSource::Cart,
            "favourites" => ItemSource::Favourites,
            _ => ItemSource::Saved,
        };
        let kws: &[&str] = if word == "cart" {
            &["abandoned", "restocked", "price_dropped", "last_one"]
        } else {
            &["restocked", "price_dropped", "last_one"]
        };
        let i = self.one_of(kws, "a change")?;
        let i = if word == "cart" { i - 1 } else { i };
        let change =
            [ItemChangeKind::Restocked, ItemChangeKind::PriceDropped, ItemChangeKind::LastOne][i];
        let products = if *self.peek() == Tok::LBracket { self.str_list()? } else { Vec::new() };
        Ok(Condition::ItemChange { source, change, products })
    }
}

/// Writes `cart_abandoned` as DSL text.
pub(crate) fn print_cart_abandoned(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::CartAbandoned { after, min_items } = c else { return Ok(()) };
    write!(f, "cart abandoned {after} items >= {min_items}")
}

/// Writes `item_change` as DSL text.
pub(crate) fn print_item_change(c: &Condition, f: &mut Formatter<'_>) -> fmt::Result {
    let Condition::ItemChange { source, change, products } = c else { return Ok(()) };
    {
        let s = match source {
            ItemSource::Cart => "cart",
            ItemSource::Favourites => "favourites",
            ItemSource::Saved => "saved",
        };
        let c = match change {
            ItemChangeKind::Restocked => "restocked",
            ItemChangeKind::PriceDropped => "price_dropped",
            ItemChangeKind::LastOne => "last_one",
        };
        if products.is_empty() {
            write!(f, "{s} {c}")
        } else {
            write!(f, "{s} {c} {}", str_list(products))
        }
    }
}

/// `cart_abandoned` for one customer.
pub(crate) fn eval_cart_abandoned<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::CartAbandoned { after: wait, min_items } = c else {
        return Ok(Leaf::mismatch());
    };
    let now = env.now;
    Ok({
        let mut n = 0u32;
        let mut last: Option<i64> = None;
        let mut horizon = None;
        for it in v.cart() {
            let t = secs(&it.added_at);
            if t > now {
                horizon = min_opt(horizon, Some(t));
            } else {
                n += 1;
                last = Some(last.map_or(t, |l: i64| l.max(t)));
            }
        }
        let mut ordered_since = false;
        if let Some(t0) = last {
            v.orders(&OrderFilter::default(), &mut |ts, _| {
                if ts >= t0 && ts <= now {
                    ordered_since = true;
                } else if ts > now {
                    horizon = min_opt(horizon, Some(ts));
                }
            });
            horizon = min_opt(horizon, after(now, t0 + wait.as_secs()));
        }
        let result =
            n >= *min_items && !ordered_since && last.is_some_and(|t0| now - t0 >= wait.as_secs());
        Leaf {
            result,
            observed: ex!(
                explain,
                "{n} cart items, last change {}, {}",
                last.map_or("never".into(), fmt_ts),
                if ordered_since { "ordered since" } else { "no order since" }
            ),
            comparison: None,
            horizon,
        }
    })
}

/// `item_change` for one customer.
pub(crate) fn eval_item_change<V: View>(
    c: &Condition,
    v: &V,
    env: &Env<'_>,
    explain: bool,
) -> Result<Leaf, SegmentError> {
    let Condition::ItemChange { source, change, products } = c else { return Ok(Leaf::mismatch()) };
    let now = env.now;
    Ok({
        let lists: &[&[SavedItem]] = match source {
            ItemSource::Cart => &[v.cart()],
            ItemSource::Favourites => &[v.favourites()],
            ItemSource::Saved => &[v.cart(), v.favourites()],
        };
        let mut result = false;
        let mut horizon = None;
        let mut hit = None;
        for it in lists.iter().flat_map(|l| l.iter()) {
            if !products.is_empty() && !products.contains(&it.product) {
                continue;
            }
            let added = secs(&it.added_at);
            if added > now {
                horizon = min_opt(horizon, Some(added));
                continue;
            }
            let Some(p) = env.ctx.product(&it.product) else { continue };
            let ok = match change {
                ItemChangeKind::Restocked => {
                    let r = p.restocked_at.as_ref().map(secs);
                    if let Some(r) = r
                        && r > now
                        && r >= added
                    {
                        horizon = min_opt(horizon, Some(r));
                    }
                    p.stock > 0 && r.is_some_and(|r| r >= added && r <= now)
                }
                ItemChangeKind::PriceDropped => p.price < it.price_at_add,
                ItemChangeKind::LastOne => p.stock == 1,
            };
            if ok && !result {
                hit = Some(it.product.clone());
            }
            result |= ok;
        }
        Leaf {
            result,
            observed: ex!(
                explain,
                "{}",
                hit.map_or("no matching item".into(), |p| format!("product {p:?}"))
            ),
            comparison: None,
            horizon,
        }
    })
}

impl Compiler<'_> {
    /// `cart_abandoned` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_cart_abandoned(
        &self,
        c: &Condition,
    ) -> Result<String, SegmentError> {
        let Condition::CartAbandoned { after, min_items } = c else { return Err(mismatch(c)) };
        Ok({
            let now1 = self.ts(self.now + 1);
            format!(
                "EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, MAX(ci.added_at) AS t FROM {cart} ci \
                     WHERE ci.customer_id = c.customer_id AND ci.added_at < {now1}) q \
                     WHERE q.n >= {min_items} AND q.t < {limit} AND NOT EXISTS (SELECT 1 FROM {orders} o \
                     WHERE o.customer_id = c.customer_id AND {to} >= {tq} AND o.placed_at < {now1}))",
                cart = self.table("cart_items"),
                orders = self.table("orders"),
                limit = self.ts(self.now - after.as_secs() + 1),
                to = self.trunc("o.placed_at"),
                tq = self.trunc("q.t"),
            )
        })
    }

    /// `item_change` as a SQL predicate on the customer row `c`.
    pub(in crate::segment) fn sql_item_change(
        &self,
        c: &Condition,
    ) -> Result<String, SegmentError> {
        let Condition::ItemChange { source, change, products } = c else { return Err(mismatch(c)) };
        Ok({
            let one = |t: &str| {
                format!(
                    "SELECT product_id, added_at, price_at_add FROM {} WHERE customer_id = c.customer_id",
                    self.table(t)
                )
            };
            let items = match source {
                ItemSource::Cart => one("cart_items"),
                ItemSource::Favourites => one("favourites"),
                ItemSource::Saved => {
                    format!("{} UNION ALL {}", one("cart_items"), one("favourites"))
                }
            };
            let now1 = self.ts(self.now + 1);
            let mut w = vec![format!("it.added_at < {now1}")];
            if !products.is_empty() {
                w.push(format!("it.product_id IN ({})", self.list(products)));
            }
            w.push(match change {
                    ItemChangeKind::Restocked => format!(
                        "p.stock > 0 AND p.restocked_at IS NOT NULL AND {} >= {} AND p.restocked_at < {now1}",
                        self.trunc("p.restocked_at"),
                        self.trunc("it.added_at")
                    ),
                    ItemChangeKind::PriceDropped => "p.price < it.price_at_add".into(),
                    ItemChangeKind::LastOne => "p.stock = 1".into(),
                });
            format!(
                "EXISTS (SELECT 1 FROM ({items}) it JOIN {} p ON p.product_id = it.product_id WHERE {})",
                self.table("products"),
                w.join(" AND ")
            )
        })
    }
}
