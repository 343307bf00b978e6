//! Changing a subscription (定期受注): `PUT admin/subs_orders/:id`.

use http::Method;
use serde_json::json;

use super::client::{Call, EcforceClient, urlencode};
use super::wire::BACKEND;
use crate::commerce::backend::CommerceResult;
use crate::commerce::error::CommerceError;

impl EcforceClient {
    /// Sets `skip_next_scheduled_delivery` on a subscription order and checks ecforce stored
    /// it (an unpermitted parameter is dropped with a 2xx).
    pub(super) async fn skip_next(&self, subscription: &str) -> CommerceResult<()> {
        let body = json!({ "subs_order": { "skip_next_scheduled_delivery": true } });
        let path = format!("api/v2/admin/subs_orders/{}.json", urlencode(subscription));
        // PUT sets a value: idempotent, may be retried.
        let (_, _, response) = self
            .send(Method::PUT, &path, &[], Some(&body), Call::idempotent(self.retry()))
            .await
            .map_err(|e| match e {
                CommerceError::NotFound { backend, .. } => CommerceError::NotFound {
                    backend,
                    what: format!("subscription {subscription}"),
                },
                e => e,
            })?;
        let stored = serde_json::from_str::<serde_json::Value>(&response)
            .ok()
            .and_then(|doc| doc["data"]["attributes"]["skip_next_scheduled_delivery"].as_bool());
        match stored {
            Some(true) => Ok(()),
            _ => Err(CommerceError::NotApplied {
                backend: BACKEND,
                what: format!(
                    "subscription {subscription}: `skip_next_scheduled_delivery` is not set after \
                     the write (is the parameter permitted?)"
                ),
            }),
        }
    }
}
