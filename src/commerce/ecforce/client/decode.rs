//! How much of a client's work is decoding, and decoding bodies fetched some other way.

use super::*;

/// How much of the client's work was decoding list pages (see
/// [`EcforceClient::decode_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DecodeStats {
    /// Records decoded (accepted and rejected).
    pub records: u64,
    /// Time spent decoding them (JSON parse and mapping), excluding the network.
    pub elapsed: Duration,
}

impl DecodeStats {
    /// Records decoded per second of decoding (0 before any).
    #[must_use]
    pub fn records_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.records as f64 / secs } else { 0.0 }
    }
}

impl EcforceClient {
    /// Decodes a list page, counting the records and the time for [`Self::decode_stats`].
    pub(super) fn decode<T>(
        &self,
        body: &str,
        parse: fn(&str, &EcforceMapping) -> CommerceResult<EcforcePage<T>>,
    ) -> CommerceResult<EcforcePage<T>> {
        use std::sync::atomic::Ordering::Relaxed;
        let started = std::time::Instant::now();
        let page = parse(body, &self.inner.mapping)?;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.inner.decode_nanos.fetch_add(nanos, Relaxed);
        self.inner.decoded.fetch_add((page.records.len() + page.rejected.len()) as u64, Relaxed);
        Ok(page)
    }

    /// Decodes a customer list body (`GET /api/v2/admin/customers.json` with
    /// `include=billing_address`) that reached you some other way: a recorded response, your
    /// own HTTP stack, a replay in a test. It is read exactly as [`CommerceBackend::customers`]
    /// reads its pages: with this client's [`EcforceMapping`], counted in
    /// [`Self::decode_stats`], the page's cursor at its last record (no paging window is
    /// applied).
    ///
    /// ```
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use enishi::commerce::EcforceClient;
    ///
    /// let client = EcforceClient::builder("https://shop.example.com", "token").build()?;
    /// let body = r#"{"data":[{"id":"1","type":"customer",
    ///     "attributes":{"email":"a@example.com","updated_at":"2026/01/15 09:30:00"}}]}"#;
    /// let page = client.decode_customers(body)?;
    /// assert_eq!(page.records[0].email.as_deref(), Some("a@example.com"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`CommerceError::Decode`] when the body is not a JSON:API document; a malformed record
    /// is in [`Page::rejected`] instead, naming its field.
    pub fn decode_customers(&self, body: &str) -> CommerceResult<Page<Customer>> {
        self.decode(body, parse_page_with::<Customer>).map(EcforcePage::into_page)
    }

    /// Decodes an order list body (`include=order_items`), as [`Self::decode_customers`].
    ///
    /// # Errors
    /// As [`Self::decode_customers`].
    pub fn decode_orders(&self, body: &str) -> CommerceResult<Page<Order>> {
        self.decode(body, parse_page_with::<Order>).map(EcforcePage::into_page)
    }

    /// Decodes a subscription order list body (`include=customer,order_items`), as
    /// [`Self::decode_customers`].
    ///
    /// # Errors
    /// As [`Self::decode_customers`].
    pub fn decode_subscriptions(&self, body: &str) -> CommerceResult<Page<Subscription>> {
        self.decode(body, parse_page_with::<Subscription>).map(EcforcePage::into_page)
    }

    /// Decodes a product list body (`include=variants,thumbnail`), as
    /// [`Self::decode_customers`].
    ///
    /// # Errors
    /// As [`Self::decode_customers`].
    pub fn decode_products(&self, body: &str) -> CommerceResult<Page<Product>> {
        self.decode(body, parse_page_with::<Product>).map(EcforcePage::into_page)
    }

    /// How many list records this client (and its clones) decoded, and the time that took:
    /// what to look at when a sync is slow (the network, or the decoding).
    #[must_use]
    pub fn decode_stats(&self) -> DecodeStats {
        use std::sync::atomic::Ordering::Relaxed;
        DecodeStats {
            records: self.inner.decoded.load(Relaxed),
            elapsed: Duration::from_nanos(self.inner.decode_nanos.load(Relaxed)),
        }
    }
}
