//! Loading customers and orders into the columns, and the per-customer incremental edits
//! (orders, carts, favourites, messages, LINE state) with their maintained aggregates.

use super::Engine;
use super::store::{IntCol, NO_INSTANT, Orders, Side, SymFilter};
use crate::CustomerId;
use crate::segment::ast::Condition;
use crate::segment::data::{
    CustomerFacts, LineStatus, MessageEvent, OrderFact, ProductStatus, SavedItem,
};
use crate::segment::engine::{CustomerColumns, OrderColumns};
use crate::segment::error::SegmentError;
use crate::segment::time::secs;

impl Engine {
    pub(super) fn new_row(&mut self, id: CustomerId) -> u32 {
        let row = self.customers.len();
        self.customers.index.insert(&self.customers.ids, &id, row);
        self.customers.ids.push(id);
        self.customers.line.push(LineStatus::default());
        self.customers.birth.push(None);
        self.customers.registered.push(NO_INSTANT);
        self.customers.side.push(None);
        let last = *self.orders.start.last().unwrap_or(&0);
        self.orders.start.push(last);
        self.agg.count.push(0);
        self.agg.sum.push(0);
        self.agg.first.push(i64::MAX);
        self.agg.last.push(i64::MIN);
        self.all.insert(row);
        row
    }

    /// Bulk-loads customers and single-item orders (orders are clustered by customer here).
    /// Registered segments are rebuilt.
    ///
    /// # Errors
    /// [`SegmentError::Invalid`] when column lengths differ, an order names an unknown
    /// customer row or product, or the engine already holds customers.
    pub fn load_columns(
        &mut self,
        c: CustomerColumns,
        o: OrderColumns,
    ) -> Result<(), SegmentError> {
        if !self.is_empty() {
            return Err(SegmentError::invalid("load_columns needs an empty engine"));
        }
        let n = c.ids.len();
        if c.line_linked.len() != n || c.birth_date.len() != n {
            return Err(SegmentError::invalid("customer columns have different lengths"));
        }
        let m = o.customer.len();
        if o.placed_at.len() != m || o.amount.len() != m || o.product.len() != m {
            return Err(SegmentError::invalid("order columns have different lengths"));
        }
        if o.customer.iter().any(|&r| r as usize >= n)
            || o.product.iter().any(|&p| p as usize >= o.product_names.len())
        {
            return Err(SegmentError::invalid(
                "an order refers to an unknown customer row or product",
            ));
        }
        self.customers.index.reserve(&self.customers.ids, n);
        for (i, id) in c.ids.into_iter().enumerate() {
            if self.row_of(&id).is_some() {
                return Err(SegmentError::invalid(format!("duplicate customer {id}")));
            }
            let row = self.new_row(id);
            self.customers.line.linked[row as usize] = c.line_linked[i];
            self.customers.birth[row as usize] = c.birth_date[i];
        }
        let psym: Vec<u32> = o.product_names.iter().map(|p| self.syms.intern(p)).collect();
        // Counting sort by customer: stable, O(n + m).
        let mut start = vec![0u32; n + 1];
        for &r in &o.customer {
            start[r as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut pos = start.clone();
        let mut order_of = vec![0u32; m];
        for (i, &r) in o.customer.iter().enumerate() {
            order_of[pos[r as usize] as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            pos[r as usize] += 1;
        }
        // Within a customer, orders are kept in time order: first and last orders are then the
        // ends of the customer's range, and windows are binary searches.
        for r in 0..n {
            order_of[start[r] as usize..start[r + 1] as usize]
                .sort_by_key(|&i| o.placed_at[i as usize]);
        }
        let os = &mut self.orders;
        os.start = start;
        os.ts = IntCol::new(order_of.iter().map(|&i| o.placed_at[i as usize]).collect());
        os.amount = IntCol::new(order_of.iter().map(|&i| o.amount[i as usize]).collect());
        os.product = order_of.iter().map(|&i| psym[o.product[i as usize] as usize]).collect();
        drop(order_of);
        os.max_ts = os.ts.max().unwrap_or(i64::MIN);
        for row in 0..self.customers.len() {
            self.refresh_aggregates(row);
        }
        self.rebuild_all_leaves();
        Ok(())
    }

    /// Adds a customer or replaces everything known about one.
    pub fn upsert_customer(&mut self, facts: CustomerFacts) {
        let row = match self.row_of(&facts.id) {
            Some(r) => {
                self.remove_from_indexes(r);
                self.orders.dead.insert(r);
                self.orders.delta.remove(&r);
                r
            }
            None => self.new_row(facts.id.clone()),
        };
        let r = row as usize;
        self.customers.line.set(r, facts.line);
        self.customers.birth[r] = facts.birth_date;
        self.customers.registered[r] = facts.registered_at.as_ref().map_or(NO_INSTANT, secs);
        let side = Side {
            attributes: facts.attributes,
            subscriptions: facts.subscriptions,
            cart: facts.cart,
            favourites: facts.favourites,
            messages: facts.messages,
        };
        let empty = side.attributes.is_empty()
            && side.subscriptions.is_empty()
            && side.cart.is_empty()
            && side.favourites.is_empty()
            && side.messages.is_empty();
        self.customers.side[r] = (!empty).then(|| Box::new(side));
        if !facts.orders.is_empty() {
            let ds: Vec<_> =
                facts.orders.iter().map(|o| Orders::to_delta(o, &mut self.syms)).collect();
            for d in &ds {
                self.orders.max_ts = self.orders.max_ts.max(d.ts);
            }
            self.orders.delta.insert(row, ds);
        }
        self.refresh_aggregates(row);
        self.touch(&[row]);
    }

    /// Appends one order to a known customer.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn append_order(&mut self, id: &CustomerId, order: &OrderFact) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        let d = Orders::to_delta(order, &mut self.syms);
        let ts = d.ts;
        self.orders.max_ts = self.orders.max_ts.max(ts);
        if ts <= self.now {
            let r = row as usize;
            self.agg.count[r] += 1;
            self.agg.sum[r] = self.agg.sum[r].saturating_add(d.amount);
            self.agg.first[r] = self.agg.first[r].min(ts);
            self.agg.last[r] = self.agg.last[r].max(ts);
            for it in &d.items {
                self.agg.product.entry(it.0).or_default().insert(row);
            }
        } else {
            self.agg.pending.entry(ts).or_default().push(row);
        }
        self.orders.delta.entry(row).or_default().push(d);
        self.touch(&[row]);
        Ok(())
    }

    /// Replaces a customer's cart.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_cart(&mut self, id: &CustomerId, cart: Vec<SavedItem>) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.cart = cart)
    }

    /// Replaces a customer's favourites.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_favourites(
        &mut self,
        id: &CustomerId,
        items: Vec<SavedItem>,
    ) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.favourites = items)
    }

    /// Records a message event.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn push_message(
        &mut self,
        id: &CustomerId,
        event: MessageEvent,
    ) -> Result<(), SegmentError> {
        self.edit_side(id, |s| s.messages.push(event))
    }

    /// Sets a customer's LINE state.
    ///
    /// # Errors
    /// [`SegmentError::UnknownCustomer`].
    pub fn set_line(&mut self, id: &CustomerId, line: LineStatus) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        self.customers.line.set(row as usize, line);
        self.touch(&[row]);
        Ok(())
    }

    pub(super) fn edit_side(
        &mut self,
        id: &CustomerId,
        f: impl FnOnce(&mut Side),
    ) -> Result<(), SegmentError> {
        let row = self.row_of(id).ok_or_else(|| SegmentError::UnknownCustomer(id.to_string()))?;
        f(self.customers.side[row as usize].get_or_insert_with(Default::default));
        self.touch(&[row]);
        Ok(())
    }

    /// Sets a product's status; leaves about cart and favourite items are recomputed.
    pub fn set_product(&mut self, product: impl Into<String>, status: ProductStatus) {
        self.ctx.set_product(product, status);
        self.rebuild_leaves_where(|c| matches!(c, Condition::ItemChange { .. }));
    }

    /// Supplies an uploaded list; `list` leaves are recomputed.
    pub fn set_list(
        &mut self,
        name: impl Into<String>,
        members: impl IntoIterator<Item = CustomerId>,
    ) {
        self.ctx.set_list(name, members);
        self.rebuild_leaves_where(|c| matches!(c, Condition::InList { .. }));
    }

    pub(super) fn remove_from_indexes(&mut self, row: u32) {
        let mut ps = Vec::new();
        self.orders.products_until(row, i64::MAX, &mut ps);
        for p in ps {
            if let Some(b) = self.agg.product.get_mut(&p) {
                b.remove(row);
            }
        }
    }

    /// Recomputes a customer's aggregates and index entries from its orders up to `now`.
    pub(super) fn refresh_aggregates(&mut self, row: u32) {
        let (mut count, mut sum, mut first, mut last) = (0u32, 0i64, i64::MAX, i64::MIN);
        let now = self.now;
        let f = SymFilter::new(&Default::default(), &self.syms);
        let mut future = Vec::new();
        self.orders.for_each(row, &f, &mut |ts, v| {
            if ts <= now {
                count += 1;
                sum = sum.saturating_add(v);
                first = first.min(ts);
                last = last.max(ts);
            } else {
                future.push(ts);
            }
        });
        let r = row as usize;
        (self.agg.count[r], self.agg.sum[r], self.agg.first[r], self.agg.last[r]) =
            (count, sum, first, last);
        let mut ps = Vec::new();
        self.orders.products_until(row, now, &mut ps);
        for p in ps {
            self.agg.product.entry(p).or_default().insert(row);
        }
        for ts in future {
            self.agg.pending.entry(ts).or_default().push(row);
        }
    }
}
