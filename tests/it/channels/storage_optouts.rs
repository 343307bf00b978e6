//! `Storage::opt_outs`: the opt-out store of each storage backend, persistent where the
//! backend is; and the app's unsubscribe route and channel planner over it.

use chrono::Utc;
use enishi::CampaignId;
use enishi::app::Enishi;
use enishi::campaign::DeliveryPolicy;
use enishi::channel::{ChannelKind, ChannelStep, EmailContent, Purpose, Reach, UnsubscribeLinks};
use enishi::line::LineClient;
use enishi::storage::Storage;

use super::harness::customer;

#[tokio::test]
async fn channel_storage_opt_outs_memory_is_per_storage() {
    let storage = Storage::in_memory();
    storage.opt_outs().opt_out(&customer(1), ChannelKind::Email, Utc::now()).await.unwrap();
    // One store behind the handle, shared by its clones.
    assert!(
        storage.clone().opt_outs().is_opted_out(&customer(1), ChannelKind::Email).await.unwrap()
    );
    assert!(
        !Storage::in_memory()
            .opt_outs()
            .is_opted_out(&customer(1), ChannelKind::Email)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn channel_storage_opt_outs_sqlite_survive_a_reopen() {
    let path = std::env::temp_dir()
        .join(format!("enishi-storage-optouts-{}.sqlite", uuid::Uuid::new_v4()));
    {
        let storage = Storage::open(&path).await.unwrap();
        storage.opt_outs().opt_out(&customer(2), ChannelKind::Sms, Utc::now()).await.unwrap();
    }
    let storage = Storage::open(&path).await.unwrap();
    let store = storage.opt_outs();
    assert!(store.is_opted_out(&customer(2), ChannelKind::Sms).await.unwrap());
    assert!(!store.is_opted_out(&customer(2), ChannelKind::Email).await.unwrap());
    drop((store, storage));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn channel_storage_opt_outs_postgres_are_shared_by_instances() {
    let schema = format!("optouts_{}", uuid::Uuid::new_v4().simple());
    let open = || Storage::builder(crate::pg::url()).schema(schema.clone()).open();
    let a = open().await.unwrap();
    let b = open().await.unwrap();
    a.opt_outs().opt_out(&customer(3), ChannelKind::Email, Utc::now()).await.unwrap();
    assert!(b.opt_outs().is_opted_out(&customer(3), ChannelKind::Email).await.unwrap());
    assert_eq!(b.opt_outs().all().await.unwrap().len(), 1);
}

/// The app serves the unsubscribe links into the storage's store, and its channel planner
/// honours what was recorded there.
#[tokio::test]
async fn channel_app_unsubscribe_route_and_planner_share_the_storage_opt_outs() {
    let links = UnsubscribeLinks::new(
        b"app unsubscribe signing key".to_vec(),
        "https://shop.example/unsubscribe",
    )
    .unwrap();
    let line = LineClient::builder().channel_access_token("token").build().unwrap();
    let app = Enishi::builder()
        .line(line)
        .storage(Storage::in_memory())
        .policy(DeliveryPolicy::new())
        .unsubscribe_links(links.clone())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .unwrap();
    });
    let c = customer(4);
    let token = links.token(&c, ChannelKind::Email);
    let done = reqwest::Client::new()
        .post(format!("http://{addr}/unsubscribe/{token}"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(app.storage().opt_outs().is_opted_out(&c, ChannelKind::Email).await.unwrap());

    let step = ChannelStep::new(CampaignId::new("news").unwrap(), "n1", Purpose::Marketing)
        .email(EmailContent::new("お知らせ", "お知らせです"))
        .sms("お知らせです");
    let reach = Reach::new(c.clone()).email("c4@mail.example", true).phone("090-4444-0004", true);
    let plan = app.channel_planner().plan(&step, &[reach], Utc::now()).await.unwrap();
    assert_eq!(plan.routed, [(c.clone(), ChannelKind::Sms)]);
    assert!(app.unsubscribe_links().is_some());
}
