//! The coupon step: each customer gets one coupon, exactly once, across a crash of the
//! process mid-delivery (proved from the fake's deliveries and the pool's claims).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use enishi::campaign::{
    Campaign, Contact, CouponPool, CouponSource, CouponStep, DeliveryJournal, DeliveryPolicy,
    Dispatcher, MemoryCouponPool, MemoryJournal, MessageTemplate, Planner, RunStatus,
};
use enishi::line::{LineClient, RetryPolicy};
use enishi::testkit::{self, Endpoint, FakeLine, FaultTiming, Faults};
use enishi::{CampaignId, CustomerId, LineUserId};

use super::client::{client, spring};

fn customer(n: u64) -> CustomerId {
    CustomerId::new(format!("c-{n:03}")).unwrap()
}

fn contacts(range: std::ops::Range<u64>) -> Vec<Contact> {
    range
        .map(|n| {
            Contact::reachable(customer(n), LineUserId::new(testkit::user_id(n)).unwrap())
                .with_var("name", format!("顧客{n}"))
        })
        .collect()
}

fn dispatcher(
    client: LineClient,
    journal: &Arc<dyn DeliveryJournal>,
    lease: Duration,
) -> Dispatcher {
    Dispatcher::builder(client, Arc::clone(journal))
        .concurrency(4)
        .lease(lease)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .max_attempts(50)
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap()
}

fn pool_step(campaign: &str) -> CouponStep {
    let campaign = Campaign::new(
        CampaignId::new(campaign).unwrap(),
        [MessageTemplate::text("{{ name }}さん、クーポンコード {{ coupon_code }} をどうぞ")
            .unwrap()],
    );
    CouponStep::new(campaign, CouponSource::Pool("winter".into()))
}

/// The code each user's messages show, from the fake's records.
fn codes_received(line: &FakeLine, users: std::ops::Range<u64>) -> HashMap<u64, Vec<String>> {
    users
        .map(|n| {
            let texts = line.messages_for(&testkit::user_id(n));
            let codes = texts
                .iter()
                .filter_map(|m| m["text"].as_str())
                .filter_map(|t| {
                    t.split("クーポンコード ").nth(1)?.split(' ').next().map(str::to_owned)
                })
                .collect();
            (n, codes)
        })
        .collect()
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupon_pool_code_issued_exactly_once_across_a_crash() {
    use enishi::campaign::{SqliteCouponPool, SqliteJournal};
    let users = 0..60u64;
    let line = FakeLine::builder()
        .seed(21)
        .friends(users.clone().map(testkit::user_id))
        // Half the answers are lost after LINE accepted the push: the crash then leaves sends
        // that LINE has but the journal does not.
        .faults(Faults {
            dropped: 0.3,
            timing: FaultTiming::AfterAcceptance,
            endpoints: Some(vec![Endpoint::Push]),
            ..Faults::default()
        })
        .start()
        .await
        .unwrap();
    let pool_path = crate::stores::sqlite_path("coupon-crash-pool");
    let journal_path = crate::stores::sqlite_path("coupon-crash-journal");
    let step = pool_step("winter-coupon");
    let policy = DeliveryPolicy::new();
    let planner = Planner::new(&policy);
    let codes: Vec<String> = (0..80).map(|n| format!("WIN-{n:04}")).collect();

    // Process 1: an earlier run claimed codes for five customers and died before writing the
    // journal; this run issues to everyone, then dies mid-delivery.
    {
        let pool = SqliteCouponPool::open(&pool_path).unwrap();
        pool.add_codes("winter", &codes).await.unwrap();
        for n in [3, 1, 4, 15, 9] {
            pool.claim("winter", &customer(n), Utc::now()).await.unwrap();
        }
        let journal: Arc<dyn DeliveryJournal> =
            Arc::new(SqliteJournal::open(&journal_path).unwrap());
        let report = step
            .issue(&planner, &contacts(users.clone()), journal.as_ref(), Some(&pool), Utc::now())
            .await
            .unwrap();
        assert_eq!((report.issued, report.already_issued, report.pool_exhausted), (60, 0, 0));
        // A short lease, so the restarted process takes over the crashed sends soon; the
        // client's retry budget must fit in it.
        let quick = LineClient::builder()
            .channel_access_token(line.channel_access_token())
            .base_url(line.api_base_url())
            .data_base_url(line.data_base_url())
            .request_timeout(Duration::from_millis(400))
            .retry_policy(
                RetryPolicy::default().max_attempts(1).max_elapsed(Duration::from_millis(100)),
            )
            .build()
            .unwrap();
        let d = dispatcher(quick, &journal, Duration::from_secs(2));
        let id = step.campaign().id().clone();
        let run = tokio::spawn(async move { d.run(&id).await });
        while line.delivery_count() < 20 && !run.is_finished() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        run.abort();
        let _ = run.await;
    }
    let before_restart = line.delivery_count();

    // Process 2: reopens the files, runs the step again (nothing new) and finishes delivery.
    line.set_faults(Faults::none()).unwrap();
    let pool = SqliteCouponPool::open(&pool_path).unwrap();
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&journal_path).unwrap());
    let report = step
        .issue(&planner, &contacts(users.clone()), journal.as_ref(), Some(&pool), Utc::now())
        .await
        .unwrap();
    assert_eq!((report.issued, report.already_issued), (0, 60), "the second run issues nothing");
    let delivered = dispatcher(client(&line), &journal, Duration::from_secs(30))
        .run(step.campaign().id())
        .await
        .unwrap();
    assert_eq!(delivered.status, RunStatus::Completed, "{delivered}");

    // Exactly once, from the fake's records and the pool.
    println!("deliveries before the crash: {before_restart}");
    assert!(line.duplicate_deliveries().is_empty(), "{:?}", line.duplicate_deliveries());
    let received = codes_received(&line, users.clone());
    let counts = pool.counts("winter").await.unwrap();
    assert_eq!((counts.total, counts.claimed), (80, 60), "one code per customer, none twice");
    let mut seen = HashSet::new();
    for n in users {
        let got = &received[&n];
        assert_eq!(got.len(), 1, "customer {n} received {got:?}");
        let held = pool.claim_of("winter", &customer(n)).await.unwrap().unwrap();
        assert_eq!(got[0], held.code, "customer {n} got the code the pool gave them");
        assert!(seen.insert(held.code.clone()), "code {} went to two customers", held.code);
    }
    for path in [pool_path, journal_path] {
        crate::stores::remove_sqlite(&path);
    }
}

#[tokio::test]
async fn coupon_line_coupon_sent_once_per_customer_and_not_again() {
    let users = 0..30u64;
    let line =
        FakeLine::builder().friends(users.clone().map(testkit::user_id)).start().await.unwrap();
    let client = client(&line);
    let coupon = client.create_coupon(&spring("冬のありがとうクーポン")).await.unwrap();
    let campaign = Campaign::new(
        CampaignId::new("winter-line-coupon").unwrap(),
        [MessageTemplate::text("{{ name }}さん、いつもありがとうございます").unwrap()],
    );
    let step = CouponStep::new(campaign, CouponSource::Line(coupon.clone()));
    let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    let policy = DeliveryPolicy::new();
    let planner = Planner::new(&policy);
    // First 20 customers, then all 30 (the first 20 are not issued again).
    for (range, issued, already) in [(0..20, 20, 0), (0..30, 10, 20), (0..30, 0, 30)] {
        let report = step
            .issue(&planner, &contacts(range), journal.as_ref(), None, Utc::now())
            .await
            .unwrap();
        assert_eq!((report.issued, report.already_issued), (issued, already));
        let delivered = dispatcher(client.clone(), &journal, Duration::from_secs(30))
            .run(step.campaign().id())
            .await
            .unwrap();
        assert_eq!(delivered.status, RunStatus::Completed, "{delivered}");
    }
    for n in users {
        let messages = line.messages_for(&testkit::user_id(n));
        assert_eq!(messages.len(), 2, "customer {n}: {messages:?}");
        assert_eq!(messages[1], serde_json::json!({"type": "coupon", "couponId": coupon.as_str()}));
    }
    assert_eq!(line.request_count(Endpoint::Push), 30, "one push per customer");
}

#[tokio::test]
async fn coupon_pool_running_out_issues_the_rest_later() {
    let users = 0..25u64;
    let line =
        FakeLine::builder().friends(users.clone().map(testkit::user_id)).start().await.unwrap();
    let pool = MemoryCouponPool::new();
    pool.add_codes("winter", &(0..15).map(|n| format!("A{n}")).collect::<Vec<_>>()).await.unwrap();
    let step = pool_step("winter-small-pool");
    let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    let policy = DeliveryPolicy::new();
    let planner = Planner::new(&policy);
    let all = contacts(users.clone());
    let first =
        step.issue(&planner, &all, journal.as_ref(), Some(&pool), Utc::now()).await.unwrap();
    assert_eq!((first.issued, first.pool_exhausted), (15, 10));
    pool.add_codes("winter", &(0..10).map(|n| format!("B{n}")).collect::<Vec<_>>()).await.unwrap();
    let second =
        step.issue(&planner, &all, journal.as_ref(), Some(&pool), Utc::now()).await.unwrap();
    assert_eq!((second.issued, second.already_issued, second.pool_exhausted), (10, 15, 0));
    let missing_pool = step.issue(&planner, &all, journal.as_ref(), None, Utc::now()).await;
    assert!(missing_pool.is_err(), "a pool source without a pool is refused");
    dispatcher(client(&line), &journal, Duration::from_secs(30))
        .run(step.campaign().id())
        .await
        .unwrap();
    let received = codes_received(&line, users);
    let codes: HashSet<&String> = received.values().flatten().collect();
    assert!(received.values().all(|c| c.len() == 1), "{received:?}");
    assert_eq!(codes.len(), 25, "25 distinct codes");
}
