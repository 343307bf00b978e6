//! PostgreSQL goes away mid-run and comes back: the app reports it, loses no send, handles no
//! webhook event twice, and carries on.

use std::time::Duration;

use chrono::Utc;
use enishi::app::RunOptions;
use enishi::campaign::{Campaign, MessageTemplate};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;

use super::harness::{event, post_webhook, serve, shop, user};

/// An administrator session on the test database.
async fn admin() -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(&crate::pg::url(), tokio_postgres::NoTls).await.unwrap_or_else(
            |e| panic!("PostgreSQL at ENISHI_TEST_DATABASE_URL (see README Testing): {e}"),
        );
    tokio::spawn(conn);
    client
}

/// The test URL, logging in as `role`.
fn url_as(role: &str) -> String {
    let mut url = url::Url::parse(&crate::pg::url()).unwrap();
    url.set_username(role).unwrap();
    url.to_string()
}

#[tokio::test]
async fn app_survives_a_database_outage_without_losing_or_doubling_anything() {
    let admin = admin().await;
    let role = format!("enishi_it_{}", uuid::Uuid::new_v4().simple());
    let schema = super::harness::schema();
    admin.batch_execute(&format!("CREATE ROLE {role} LOGIN")).await.unwrap();
    admin.batch_execute(&format!("CREATE SCHEMA {schema} AUTHORIZATION {role}")).await.unwrap();
    // Concurrent GRANTs on one database fail with "tuple concurrently updated" (several test
    // processes run this at once): take turns.
    admin
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(7042017); GRANT CREATE ON DATABASE test TO {role}; COMMIT"
        ))
        .await
        .unwrap();

    let shop = shop(40).await;
    let storage =
        Storage::builder(url_as(&role)).schema(&schema).pool_size(4).open().await.unwrap();
    let app = shop.builder(storage.clone()).build().unwrap();
    let base = serve(&app).await;
    app.sync().await.unwrap();
    // Personalised: one push per linked customer (20 batches).
    let campaign = Campaign::new(
        "outage".parse().unwrap(),
        [MessageTemplate::text("{{name}}さま、お知らせです").unwrap()],
    );
    let plan =
        app.plan(&campaign, &SegmentDefinition::parse("line linked").unwrap()).await.unwrap();
    let planned = plan.dry_run().recipients;
    assert_eq!(planned, 20);
    app.enqueue(plan).await.unwrap();

    // The outage: the role may not log in and every session of it is ended.
    admin.batch_execute(&format!("ALTER ROLE {role} NOLOGIN")).await.unwrap();
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 503);
    // LINE's webhook gets a 500 (de-duplication is down): it will redeliver.
    let follow = event("unfollow", &user(1), "01APPOUTAGE1", Utc::now());
    assert_eq!(post_webhook(&base, &follow).await, 500);
    // The service loop runs through the outage, failing and retrying.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let app = app.clone();
        let options = RunOptions::new()
            .sync_interval(Duration::from_millis(50))
            .tick_interval(Duration::from_millis(10))
            .dispatch_interval(Duration::from_millis(10));
        tokio::spawn(async move {
            app.run(options, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shop.line.delivery_count(), 0, "nothing can be claimed while the journal is down");

    // Back.
    admin.batch_execute(&format!("ALTER ROLE {role} LOGIN")).await.unwrap();
    while http.get(format!("{base}/readyz")).send().await.unwrap().status() != 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The redelivery is handled now, once.
    assert_eq!(post_webhook(&base, &follow).await, 200);
    assert_eq!(post_webhook(&base, &follow).await, 200);
    assert!(!storage.links().follow_status(&user(1)).await.unwrap().unwrap().following);
    app.watch_campaign("outage".parse().unwrap());
    loop {
        let counts = storage.journal().counts(&"outage".parse().unwrap()).await.unwrap();
        if counts.pending + counts.in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send(()).unwrap();
    let report = runner.await.unwrap().unwrap();
    assert!(report.errors >= 1, "the outage was noticed: {report:?}");
    let counts = storage.journal().counts(&"outage".parse().unwrap()).await.unwrap();
    assert_eq!(counts.recipients_sent, planned, "no send lost: {counts:?}");
    assert!(shop.line.duplicate_deliveries().is_empty(), "no send doubled");
    assert_eq!(shop.line.delivery_count() as u64, planned);
    drop(storage);
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.ok();
}
