//! Link write-back into a commerce backend (`LinkWriteBack for Arc<dyn CommerceBackend>`).

use std::sync::Arc;

use chrono::Utc;
use enishi::commerce::{CommerceBackend, Customer, InMemoryBackend};
use enishi::link::{Link, LinkSource, LinkWriteBack};
use enishi::{CustomerId, LineUserId};

#[tokio::test]
async fn link_write_back_sets_and_clears_the_line_user_on_the_customer_record() {
    let memory = InMemoryBackend::new();
    let customer = CustomerId::new("c-42").unwrap();
    memory.upsert_customer(Customer::new(customer.clone(), Utc::now()));
    let backend: Arc<dyn CommerceBackend> = Arc::new(memory);
    let user: LineUserId = format!("U{}", "a".repeat(32)).parse().unwrap();
    let link = Link::new(user.clone(), customer.clone(), LinkSource::AccountLink, Utc::now());

    backend.write_link(&link).await.unwrap();
    assert_eq!(backend.customer(&customer).await.unwrap().line_user_id, Some(user));
    backend.clear_link(&link).await.unwrap();
    assert_eq!(backend.customer(&customer).await.unwrap().line_user_id, None);

    let unknown = Link::new(
        link.line_user.clone(),
        CustomerId::new("nobody").unwrap(),
        LinkSource::AccountLink,
        Utc::now(),
    );
    assert!(
        backend.write_link(&unknown).await.is_err(),
        "an unknown customer is an error the linker retries"
    );
}
