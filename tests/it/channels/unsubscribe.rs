//! The unsubscribe route records an opt-out, and the next plan honours it.

use std::sync::Arc;

use chrono::Utc;
use enishi::CampaignId;
use enishi::campaign::{DeliveryPolicy, MemoryJournal};
use enishi::channel::{
    ChannelKind, ChannelPlanner, ChannelStep, EmailContent, MemoryOptOuts, OptOutStore, Purpose,
    Reach, UnsubscribeLinks, unsubscribe_route,
};

use super::harness::customer;

async fn serve(links: UnsubscribeLinks, store: Arc<MemoryOptOuts>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, unsubscribe_route(links, store)).await.unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn one_click_unsubscribe_records_the_opt_out_and_the_next_plan_uses_sms() {
    let store = Arc::new(MemoryOptOuts::new());
    let base = format!("{}/unsubscribe", "http://placeholder");
    let links = UnsubscribeLinks::new(b"a signing key of enough bytes".to_vec(), &base).unwrap();
    let server = serve(links.clone(), Arc::clone(&store)).await;
    let c = customer(7);
    let token = links.token(&c, ChannelKind::Email);
    let http = reqwest::Client::new();
    // Opening the link (or a mail scanner fetching it) only asks.
    let page = http.get(format!("{server}/unsubscribe/{token}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("配信を停止する"));
    assert!(!store.is_opted_out(&c, ChannelKind::Email).await.unwrap());
    // RFC 8058 one-click POST records it.
    let done = http
        .post(format!("{server}/unsubscribe/{token}"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("配信を停止しました"));
    assert!(store.is_opted_out(&c, ChannelKind::Email).await.unwrap());
    assert!(!store.is_opted_out(&c, ChannelKind::Sms).await.unwrap());
    assert_eq!(store.all().await.unwrap().len(), 1);

    let step = ChannelStep::new(CampaignId::new("next").unwrap(), "a", Purpose::Marketing)
        .email(EmailContent::new("s", "t"))
        .sms("t");
    let reach = Reach::new(c.clone()).email("c7@mail.example", true).phone("09000000007", true);
    let plan = ChannelPlanner::new(Arc::new(MemoryJournal::new()), DeliveryPolicy::new())
        .opt_outs(store)
        .plan(&step, &[reach], Utc::now())
        .await
        .unwrap();
    assert_eq!(plan.routed, vec![(c, ChannelKind::Sms)]);
}

#[tokio::test]
async fn forged_or_foreign_unsubscribe_tokens_change_nothing() {
    let store = Arc::new(MemoryOptOuts::new());
    let links =
        UnsubscribeLinks::new(b"a signing key of enough bytes".to_vec(), "https://s.example/u")
            .unwrap();
    let other =
        UnsubscribeLinks::new(b"another key, also long enough".to_vec(), "https://s.example/u")
            .unwrap();
    let server = serve(links.clone(), Arc::clone(&store)).await;
    let c = customer(8);
    assert_eq!(
        links.verify(&links.token(&c, ChannelKind::Sms)),
        Some((c.clone(), ChannelKind::Sms))
    );
    assert!(links.url(&c, ChannelKind::Email).starts_with("https://s.example/u/"));
    let forged = other.token(&c, ChannelKind::Email);
    let mut tampered = links.token(&c, ChannelKind::Email);
    tampered.replace_range(0..2, "Zm");
    let http = reqwest::Client::new();
    for token in [forged, tampered, "garbage".to_owned()] {
        assert_eq!(links.verify(&token), None, "{token}");
        let r = http.post(format!("{server}/unsubscribe/{token}")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    assert!(store.all().await.unwrap().is_empty());
    assert!(UnsubscribeLinks::new(b"short".to_vec(), "https://s.example/u").is_err());
    assert!(UnsubscribeLinks::new(b"a signing key of enough bytes".to_vec(), "ftp://s").is_err());
}
