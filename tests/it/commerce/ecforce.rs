//! The ecforce adapter against the fake ecforce server.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use enishi::CustomerId;
use enishi::commerce::conformance::{Harness, sample_customers};
use enishi::commerce::{
    AuthError, CommerceBackend, CommerceBackendExt, CommerceError, Customer, CustomerAuthenticator,
    EcforceClient, EcforceRetry, ListQuery, Order, Password, SignInLimitScope, collect_pages,
};
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLogin};

pub(crate) struct EcforceHarness {
    pub(crate) shop: FakeEcforce,
    pub(crate) client: EcforceClient,
}

impl EcforceHarness {
    pub(crate) async fn start() -> Self {
        let shop = FakeEcforce::builder().start().await.expect("fake ecforce starts");
        let client = client(&shop, DEFAULT_ECFORCE_TOKEN);
        Self { shop, client }
    }
}

fn client(shop: &FakeEcforce, token: &str) -> EcforceClient {
    EcforceClient::builder(shop.base_url(), token)
        .min_interval(Duration::ZERO)
        .retry_policy(fast_retry())
        .build()
        .expect("client builds")
}

#[async_trait]
impl Harness for EcforceHarness {
    fn backend(&self) -> Arc<dyn CommerceBackend> {
        Arc::new(self.client.clone())
    }
    async fn reset(&self) {
        self.shop.reset();
    }
    async fn insert_customers(&self, customers: Vec<Customer>) {
        self.shop.insert_customers(customers);
    }
    async fn insert_orders(&self, orders: Vec<Order>) {
        self.shop.insert_orders(orders);
    }
    async fn touch_customer(&self, id: &CustomerId) {
        self.shop.touch_customer(id);
    }
    fn unauthenticated_backend(&self) -> Option<Arc<dyn CommerceBackend>> {
        Some(Arc::new(client(&self.shop, "wrong-token")))
    }
}

/// The default policy with millisecond waits (tests against a local fake).
pub(crate) fn fast_retry() -> EcforceRetry {
    let ms = Duration::from_millis(5);
    EcforceRetry::default().rate_limit_delays([ms]).error_delays([ms])
}

fn cid(n: u64) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap()
}

#[tokio::test]
async fn malformed_record_is_rejected_naming_the_field_and_the_page_still_syncs() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(30));
    h.shop.corrupt_customer(&cid(7));
    let (records, rejected) =
        collect_pages(h.client.customers(ListQuery::all().page_size(10))).await.unwrap();
    assert_eq!(records.len(), 29);
    assert!(records.iter().all(|c| c.id != cid(7)));
    match &rejected[..] {
        [CommerceError::Decode { field, body, .. }] => {
            assert_eq!(field, "attributes.buy_total");
            assert!(body.contains("\"id\":\"7\""), "{body}");
        }
        other => panic!("expected one decode error, got {other:?}"),
    }
    let one = h.client.customer(&cid(7)).await;
    assert!(matches!(one, Err(CommerceError::Decode { .. })), "{one:?}");
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_retried_honouring_retry_after() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(5));
    h.shop.rate_limit_next(2, 1);
    let started = tokio::time::Instant::now();
    let all = h.client.all_customers().await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After: 1 was not honoured");
    assert_eq!(h.shop.requests(), 3);
}

#[tokio::test]
async fn rate_limit_after_retries_is_rate_limited_with_retry_after() {
    let h = EcforceHarness::start().await;
    let client = EcforceClient::builder(h.shop.base_url(), DEFAULT_ECFORCE_TOKEN)
        .min_interval(Duration::ZERO)
        .retry_policy(EcforceRetry::never())
        .build()
        .unwrap();
    h.shop.rate_limit_next(1, 30);
    match client.customer(&cid(1)).await {
        Err(CommerceError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pacing_spaces_requests() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(30));
    let client = EcforceClient::builder(h.shop.base_url(), DEFAULT_ECFORCE_TOKEN)
        .requests_per_second(10.0)
        .page_size(10)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let all = client.all_customers().await.unwrap();
    assert_eq!(all.len(), 30);
    // 4 requests (3 full pages and an empty one) at 10/s: at least 300 ms.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn token_is_redacted_in_debug() {
    let c = EcforceClient::builder("https://shop.example.com", "very-secret").build().unwrap();
    assert!(!format!("{c:?}").contains("very-secret"));
    let builder = EcforceClient::builder("https://basic:s3cret@shop.example.com", "t");
    assert!(!format!("{builder:?}").contains("s3cret"), "{builder:?}");
    let c = builder.build().unwrap();
    assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
    assert!(EcforceClient::builder("not a url", "t").build().is_err());
    assert!(EcforceClient::builder("https://shop.example.com", "").build().is_err());
}

#[tokio::test]
async fn customer_sign_in_ok_sms_wrong_password_and_local_limit() {
    let h = EcforceHarness::start().await;
    h.shop.add_login("a@example.com", FakeLogin::new(cid(42), "pw"));
    h.shop.add_login("sms@example.com", FakeLogin::new(cid(43), "pw").sms());
    let per_email = EcforceClient::builder(h.shop.base_url(), DEFAULT_ECFORCE_TOKEN)
        .min_interval(Duration::ZERO)
        .sign_in_limit_scope(SignInLimitScope::PerEmail)
        .build()
        .unwrap();
    let auth: Arc<dyn CustomerAuthenticator> = Arc::new(per_email);
    assert_eq!(auth.authenticate("a@example.com", &Password::new("pw")).await.unwrap(), cid(42));
    assert!(matches!(
        auth.authenticate("sms@example.com", &Password::new("pw")).await,
        Err(AuthError::VerificationRequired)
    ));
    for _ in 0..4 {
        assert!(matches!(
            auth.authenticate("a@example.com", &Password::new("wrong")).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    // The 6th attempt within the hour is refused locally, without asking ecforce.
    let before = h.shop.sign_in_requests();
    match auth.authenticate("a@example.com", &Password::new("pw")).await {
        Err(AuthError::RateLimited { retry_after: Some(wait) }) => {
            assert!(wait > Duration::from_secs(3500))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.shop.sign_in_requests(), before);
}

#[tokio::test]
async fn line_link_writes_line_id_not_linked_at() {
    let h = EcforceHarness::start().await;
    h.shop.insert_customers(sample_customers(2));
    let line = enishi::LineUserId::new(format!("U{}", "0f".repeat(16))).unwrap();
    h.client.link_line(&cid(1), &line).await.unwrap();
    let stored = h.shop.customer(&cid(1)).unwrap();
    assert_eq!(stored.line_user_id, Some(line));
    // `line_id_linked_at` is not writable through ecforce's API; enishi keeps the link time.
    assert_eq!(stored.line_linked_at, None);
    let disabled = EcforceClient::builder(h.shop.base_url(), DEFAULT_ECFORCE_TOKEN)
        .line_id_field(None)
        .build()
        .unwrap();
    assert!(matches!(
        disabled.unlink_line(&cid(1)).await,
        Err(CommerceError::NotImplemented { .. })
    ));
}
