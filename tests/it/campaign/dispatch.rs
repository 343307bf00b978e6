//! Tests of campaign dispatch against the fake LINE server: exactly once under faults, 409
//! resends, quota pauses, pause/resume/cancel, progress, the report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use enishi::campaign::{
    Batch, BatchRecipient, CampaignState, DeliveryJournal, DeliveryReport, DispatchError,
    Dispatcher, FailureKind, MemoryJournal, Progress, RunStatus, Transport,
};
use enishi::line::message::Message;
use enishi::line::{LineClient, PushRequest, RateLimit, RateLimits, RetryPolicy};
use enishi::testkit::{self, FakeLine, FakeQuota, FaultTiming, Faults};
use enishi::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId};

#[cfg(all(feature = "postgres", feature = "redis"))]
use crate::line_client::redis_limit::{Recording, assert_not_before_grants, assert_within_limit};

fn campaign(name: &str) -> CampaignId {
    CampaignId::new(name).unwrap()
}

fn recipient(n: u64) -> BatchRecipient {
    BatchRecipient {
        customer: CustomerId::new(format!("customer-{n}")).unwrap(),
        line_user: LineUserId::new(testkit::user_id(n)).unwrap(),
    }
}

/// One push batch per user `users`, each with a personalised text.
fn push_plan(campaign: &CampaignId, users: std::ops::Range<u64>) -> Vec<Batch> {
    users
        .map(|n| {
            Batch::new(
                BatchId::new(format!("{campaign}#{n}")).unwrap(),
                campaign.clone(),
                Transport::Push,
                vec![recipient(n)],
                vec![Message::text(format!("Hello customer {n}"))],
                Utc::now(),
            )
        })
        .collect()
}

/// Multicast batches of at most 500 users with one shared message.
fn multicast_plan(campaign: &CampaignId, users: std::ops::Range<u64>) -> Vec<Batch> {
    let users: Vec<u64> = users.collect();
    users
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| {
            Batch::new(
                BatchId::new(format!("{campaign}#m{i}")).unwrap(),
                campaign.clone(),
                Transport::Multicast,
                chunk.iter().map(|n| recipient(*n)).collect(),
                vec![Message::text("Spring sale starts today")],
                Utc::now(),
            )
        })
        .collect()
}

/// A client for the fake with fast retries; `rate` paces push requests per second.
fn client(line: &FakeLine, rate: Option<u32>, attempts: u32) -> LineClient {
    let mut limits = RateLimits::default();
    if let Some(rate) = rate {
        limits =
            limits.with(enishi::line::EndpointClass::Standard, Some(RateLimit::per_second(rate)));
    }
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        // Only a guard against a hang: a loaded machine must not turn a slow answer into a
        // timeout and a resend (an extra 409 in the counters).
        .request_timeout(Duration::from_secs(20))
        .retry_policy(
            RetryPolicy::default()
                .max_elapsed(Duration::from_secs(5))
                .max_attempts(attempts)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(50)),
        )
        .rate_limits(limits)
        .build()
        .unwrap()
}

fn dispatcher(client: LineClient, journal: &Arc<dyn DeliveryJournal>, worker: &str) -> Dispatcher {
    Dispatcher::builder(client, Arc::clone(journal))
        .worker(worker)
        .concurrency(16)
        // Longer than one send with all of a default client's retries (60 s + a 30 s timeout).
        .lease(Duration::from_secs(120))
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(40))
        .max_attempts(30)
        .poll_interval(Duration::from_millis(10))
        .progress_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

fn memory_journal() -> Arc<dyn DeliveryJournal> {
    Arc::new(MemoryJournal::new())
}

/// Deliveries per recipient, as the fake recorded them.
fn deliveries_per_user(line: &FakeLine) -> HashMap<String, usize> {
    let mut per_user = HashMap::new();
    for d in line.deliveries() {
        *per_user.entry(d.to).or_default() += 1;
    }
    per_user
}

/// Every user in `users` got exactly one delivery, and nobody else got any.
fn assert_exactly_once(line: &FakeLine, users: impl IntoIterator<Item = u64>) {
    let per_user = deliveries_per_user(line);
    let mut expected = 0;
    for n in users {
        expected += 1;
        let id = testkit::user_id(n);
        assert_eq!(per_user.get(&id).copied(), Some(1), "deliveries to user {n} ({id})");
    }
    assert_eq!(per_user.len(), expected, "deliveries to users outside the plan");
    assert!(line.duplicate_deliveries().is_empty(), "{:?}", &line.duplicate_deliveries()[..1]);
}

#[tokio::test]
async fn every_recipient_gets_exactly_one_message_despite_faults() {
    let line = FakeLine::builder()
        .seed(11)
        .faults(Faults {
            server_error: 0.1,
            rate_limited: 0.05,
            dropped: 0.05,
            timing: FaultTiming::Either,
            ..Faults::default()
        })
        .start()
        .await
        .unwrap();
    let journal = memory_journal();
    let push = campaign("faults-push");
    let multi = campaign("faults-multicast");
    journal.enqueue(&push_plan(&push, 0..300)).await.unwrap();
    journal.enqueue(&multicast_plan(&multi, 1000..3200)).await.unwrap();
    // Two attempts inside the client, so the dispatcher's own re-sends are exercised too.
    let d = dispatcher(client(&line, None, 2), &journal, "w1");

    let report = d.run(&push).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report}");
    assert_eq!((report.sent, report.batches_sent, report.failed.len()), (300, 300, 0), "{report}");
    let report = d.run(&multi).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report}");
    assert_eq!((report.sent, report.batches_sent), (2200, 5), "{report}");

    assert_exactly_once(&line, (0..300).chain(1000..3200));
    let c = line.counters();
    assert!(c.server_errors > 0 && c.dropped > 0 && c.rate_limited > 0, "{c:?}");
    // Failures after acceptance were resent with the same key and answered 409.
    assert!(c.conflicts > 0, "{c:?}");
}

#[tokio::test]
async fn a_batch_accepted_before_a_crash_is_answered_409_and_counted_as_sent() {
    let line = FakeLine::start().await.unwrap();
    let journal = memory_journal();
    let id = campaign("resend");
    let plan = push_plan(&id, 0..5);
    journal.enqueue(&plan).await.unwrap();
    let client = client(&line, None, 3);
    // A worker sent batch 2 and died before writing the outcome.
    let b = &plan[2];
    let first = client
        .push(
            PushRequest::new(b.recipients[0].line_user.clone(), b.messages.clone())
                .retry_key(b.retry_key.clone()),
        )
        .await
        .unwrap();
    let report = dispatcher(client, &journal, "w1").run(&id).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!((report.sent, report.already_accepted), (5, 1), "{report}");
    assert_eq!(report.this_run.already_accepted, 1);
    // The report quotes the request LINE accepted first.
    assert!(report.request_ids.contains(first.accepted.request_id.as_ref().unwrap()));
    assert_eq!(line.counters().conflicts, 1);
    assert_exactly_once(&line, 0..5);
}

#[tokio::test]
async fn an_exhausted_quota_pauses_the_campaign_and_resume_finishes_it() {
    let line = FakeLine::builder().quota(FakeQuota::Limited(50)).start().await.unwrap();
    let journal = memory_journal();
    let id = campaign("quota");
    journal.enqueue(&push_plan(&id, 0..80)).await.unwrap();
    let d = dispatcher(client(&line, None, 3), &journal, "w1");

    let report = d.run(&id).await.unwrap();
    let RunStatus::Paused { reason } = &report.status else { panic!("not paused: {report}") };
    assert!(reason.contains("quota"), "{reason}");
    assert_eq!(report.sent, 50, "{report}");
    assert_eq!(report.skipped.get("paused"), Some(&30), "{report}");
    assert!(report.failed.is_empty(), "{report}");
    assert!(matches!(d.control(&id).state().await.unwrap(), CampaignState::Paused { .. }));
    // Running again while paused does nothing.
    let again = d.run(&id).await.unwrap();
    assert!(matches!(again.status, RunStatus::Paused { .. }));
    assert_eq!(again.this_run.requests, 0);

    line.set_quota(FakeQuota::Unlimited);
    d.control(&id).resume().await.unwrap();
    let report = d.run(&id).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report}");
    assert_eq!(report.sent, 80);
    assert_exactly_once(&line, 0..80);
}

/// Pauses (or cancels) the campaign once `threshold` recipients are sent.
fn stop_when_sent(
    d: &Dispatcher,
    id: &CampaignId,
    threshold: u64,
    cancel: bool,
) -> tokio::task::JoinHandle<()> {
    let mut progress = d.progress();
    let control = d.control(id);
    tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            if progress.borrow_and_update().sent >= threshold {
                if cancel {
                    control.cancel().await.unwrap();
                } else {
                    control.pause("operator asked").await.unwrap();
                }
                return;
            }
        }
    })
}

#[tokio::test]
async fn pause_stops_a_running_campaign_and_resume_continues_where_it_stopped() {
    let line = FakeLine::start().await.unwrap();
    let journal = memory_journal();
    let id = campaign("pause");
    journal.enqueue(&push_plan(&id, 0..400)).await.unwrap();
    // Paced at 400/s so the campaign is still running when the pause lands.
    let d = dispatcher(client(&line, Some(400), 3), &journal, "w1");
    let stopper = stop_when_sent(&d, &id, 40, false);
    let report = d.run(&id).await.unwrap();
    stopper.await.unwrap();
    assert_eq!(report.status, RunStatus::Paused { reason: "operator asked".into() }, "{report}");
    assert!(report.sent >= 40 && report.sent < 400, "{report}");
    assert_eq!(report.skipped.get("paused"), Some(&(400 - report.sent)));
    assert_eq!(line.delivery_count() as u64, report.sent);

    d.control(&id).resume().await.unwrap();
    let report = d.run(&id).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report}");
    assert_eq!(report.sent, 400);
    assert_exactly_once(&line, 0..400);
}

#[tokio::test]
async fn cancel_stops_sending_and_reports_the_rest_as_skipped() {
    let line = FakeLine::start().await.unwrap();
    let journal = memory_journal();
    let id = campaign("cancel");
    journal.enqueue(&push_plan(&id, 0..400)).await.unwrap();
    let d = dispatcher(client(&line, Some(400), 3), &journal, "w1");
    let stopper = stop_when_sent(&d, &id, 40, true);
    let report = d.run(&id).await.unwrap();
    stopper.await.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled, "{report}");
    let cancelled = report.skipped.get("cancelled").copied().unwrap_or(0);
    assert!(report.sent >= 40 && cancelled > 0, "{report}");
    assert_eq!(report.sent + cancelled, 400, "{report}");
    assert_eq!(line.delivery_count() as u64, report.sent);
    let counts = journal.counts(&id).await.unwrap();
    assert!(counts.is_finished(), "{counts:?}");
    // A cancelled campaign cannot be resumed.
    d.control(&id).resume().await.unwrap();
    let again = d.run(&id).await.unwrap();
    assert_eq!((again.status, again.this_run.requests), (RunStatus::Cancelled, 0));
    assert_eq!(line.delivery_count() as u64, report.sent);
}

#[tokio::test]
async fn progress_is_published_while_the_campaign_runs() {
    let line = FakeLine::start().await.unwrap();
    let journal = memory_journal();
    let id = campaign("progress");
    journal.enqueue(&push_plan(&id, 0..200)).await.unwrap();
    let d = dispatcher(client(&line, Some(400), 3), &journal, "w1");
    let mut rx = d.progress();
    let seen = tokio::spawn(async move {
        let mut seen: Vec<Progress> = Vec::new();
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            let done = p.is_finished() && p.sent == 200;
            seen.push(p);
            if done {
                break;
            }
        }
        seen
    });
    let report = d.run(&id).await.unwrap();
    let seen = seen.await.unwrap();
    assert_eq!(report.sent, 200);
    let last = seen.last().unwrap();
    assert_eq!((last.sent, last.pending, last.recipients, last.batches), (200, 0, 200, 200));
    assert!(seen.iter().any(|p| p.sent > 0 && p.sent < 200), "no intermediate progress");
    assert!(seen.iter().any(|p| p.rate > 0.0 && p.eta.is_some()), "no rate/eta");
    assert!(seen.windows(2).all(|w| w[0].sent <= w[1].sent), "sent went backwards");
}

#[tokio::test]
async fn the_report_has_failures_request_ids_and_aggregation_units() {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let bad = testkit::user_id(3);
    Mock::given(method("POST"))
        .and(path("/v2/bot/message/push"))
        .and(body_partial_json(serde_json::json!({ "to": bad })))
        .respond_with(
            ResponseTemplate::new(400).insert_header("x-line-request-id", "req-bad").set_body_json(
                serde_json::json!({
                    "message": "The request body has 1 error(s)",
                    "details": [{ "message": "not a friend of the account", "property": "to" }]
                }),
            ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bot/message/push"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-line-request-id", "req-ok")
                .set_body_json(serde_json::json!({ "sentMessages": [] })),
        )
        .mount(&server)
        .await;
    let client =
        LineClient::builder().channel_access_token("t").base_url(server.uri()).build().unwrap();
    let journal = memory_journal();
    let id = campaign("report");
    let unit = AggregationUnit::new("spring_sale").unwrap();
    let plan: Vec<Batch> =
        push_plan(&id, 0..6).into_iter().map(|b| b.with_aggregation_unit(unit.clone())).collect();
    journal.enqueue(&plan).await.unwrap();
    let report: DeliveryReport = dispatcher(client, &journal, "w1").run(&id).await.unwrap();

    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!((report.recipients, report.sent, report.failed_recipients), (6, 5, 1));
    assert_eq!(report.request_ids.len(), 5);
    assert!(report.request_ids.iter().all(|r| r.as_str() == "req-ok"));
    assert_eq!(report.aggregation_units, [unit]);
    let failed = &report.failed[0];
    assert_eq!(failed.batch.as_str(), "report#3");
    assert_eq!((failed.kind, failed.status), (FailureKind::InvalidRecipient, Some(400)));
    assert_eq!(failed.request_id.as_ref().unwrap().as_str(), "req-bad");
    assert!(failed.error.contains("not a friend"), "{}", failed.error);
    assert_eq!(report.failed_by_kind().get(&FailureKind::InvalidRecipient), Some(&1));
    // Not retried: an invalid recipient stays invalid.
    let pushes = server.received_requests().await.unwrap().len();
    assert_eq!(pushes, 6);

    let shown = report.to_string();
    for needle in [
        "campaign report: completed",
        "sent        5",
        "InvalidRecipient",
        "req-bad",
        "spring_sale",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in\n{shown}");
    }
    let json = serde_json::to_string(&report).unwrap();
    let back: DeliveryReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[tokio::test]
async fn invalid_configuration_is_an_error() {
    let client = LineClient::new("t").unwrap();
    let journal = memory_journal();
    let e = Dispatcher::builder(client.clone(), Arc::clone(&journal)).concurrency(0).build();
    assert!(e.unwrap_err().to_string().contains("concurrency"));
    // The default client may take 60 s of retries plus a 30 s timeout for one send.
    let e = Dispatcher::builder(client.clone(), Arc::clone(&journal))
        .lease(Duration::from_secs(60))
        .build()
        .unwrap_err();
    assert!(matches!(e, DispatchError::LeaseTooShort { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("(60s)") && message.contains("(90s"), "{message}");
    let e = Dispatcher::builder(client, journal).worker(" ").build();
    assert!(e.unwrap_err().to_string().contains("worker"));
}

/// The crash-resume test's worker process: this test binary, started again on the ignored
/// test `crash_child_worker` with these variables set.
const CHILD_LINE_URL: &str = "ENISHI_DISPATCH_CHILD_LINE_URL";
const CHILD_JOURNAL: &str = "ENISHI_DISPATCH_CHILD_JOURNAL";
const CHILD_TEST: &str = "campaign::dispatch::crash_child_worker";

/// Runs a dispatcher on the SQLite journal named by the environment, as a separate process
/// that the crash-resume test kills. Run by hand it does nothing.
#[cfg(feature = "sqlite")]
#[test]
#[ignore = "the worker process of the crash-resume test, started by it"]
fn crash_child_worker() {
    let (Ok(url), Ok(path)) = (std::env::var(CHILD_LINE_URL), std::env::var(CHILD_JOURNAL)) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    rt.unwrap().block_on(async move {
        let journal: Arc<dyn DeliveryJournal> =
            Arc::new(enishi::campaign::SqliteJournal::open(&path).unwrap());
        let client = LineClient::builder()
            .channel_access_token(testkit::DEFAULT_CHANNEL_ACCESS_TOKEN)
            .base_url(url)
            .request_timeout(Duration::from_millis(500))
            // One send with all its retries (1 s + one 0.5 s timeout) fits in the 2 s lease.
            .retry_policy(
                RetryPolicy::default()
                    .initial_backoff(Duration::from_millis(5))
                    .max_elapsed(Duration::from_secs(1)),
            )
            // Paced so the campaign lasts long enough to be killed halfway.
            .rate_limits(
                RateLimits::default()
                    .with(enishi::line::EndpointClass::Standard, Some(RateLimit::per_second(300))),
            )
            .build()
            .unwrap();
        let d = Dispatcher::builder(client, journal)
            .worker(format!("child-{}", std::process::id()))
            .concurrency(16)
            .lease(Duration::from_secs(2))
            .retry_backoff(Duration::from_millis(5), Duration::from_millis(40))
            .max_attempts(30)
            .poll_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        let report = d.run(&campaign("crash")).await.unwrap();
        assert_eq!(report.status, RunStatus::Completed, "{report}");
    });
}

#[cfg(feature = "sqlite")]
fn spawn_child(url: &str, journal: &std::path::Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
        .env(CHILD_LINE_URL, url)
        .env(CHILD_JOURNAL, journal)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the test binary can start itself")
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_is_resumed_without_duplicates_or_losses() {
    // Failures after acceptance too, so the killed run leaves accepted-but-unrecorded batches.
    let line = FakeLine::builder()
        .seed(5)
        .faults(Faults { server_error: 0.05, timing: FaultTiming::Either, ..Faults::default() })
        .start()
        .await
        .unwrap();
    let path =
        std::env::temp_dir().join(format!("enishi-dispatch-{}.sqlite", uuid::Uuid::new_v4()));
    let journal: Arc<dyn DeliveryJournal> =
        Arc::new(enishi::campaign::SqliteJournal::open(&path).unwrap());
    let id = campaign("crash");
    journal.enqueue(&push_plan(&id, 0..600)).await.unwrap();

    let mut child = spawn_child(&line.api_base_url(), &path);
    loop {
        if line.delivery_count() >= 150 {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the worker ended before it was killed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_kill = line.delivery_count();
    assert!(at_kill < 600, "the kill came too late to test anything: {at_kill}");
    let counts = journal.counts(&id).await.unwrap();
    assert!(!counts.is_finished(), "{counts:?}");

    let mut child = spawn_child(&line.api_base_url(), &path);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the restarted worker failed: {status}");

    assert_exactly_once(&line, 0..600);
    let counts = journal.counts(&id).await.unwrap();
    assert_eq!((counts.sent, counts.recipients_sent), (600, 600), "{counts:?}");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Three workers, each with its own journal connection, its own Redis limiter instance (one
/// key prefix) and its own client, share one campaign in PostgreSQL: together they stay under
/// the channel's limit, and every recipient gets the message once. The limit is checked on the
/// schedule the limiters made (Redis' clock), not on arrival times at the fake, which a loaded
/// machine can bunch up.
#[cfg(all(feature = "postgres", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_campaign_through_postgres_and_redis() {
    let url = std::env::var("ENISHI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("enishi_dispatch_it_{}", uuid::Uuid::new_v4().simple());
    let redis_url =
        std::env::var("ENISHI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("enishi-dispatch-it:{}:", uuid::Uuid::new_v4().simple());
    let limit = 300;
    let line = FakeLine::builder().start().await.unwrap();
    let grants = Arc::new(std::sync::Mutex::new(Vec::new()));
    let id = campaign("three-workers");
    let mut workers = Vec::new();
    for w in 0..3 {
        let journal =
            enishi::campaign::PostgresJournal::connect(&url, &schema).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed at {url} ({e}: {:?}). Start it (see DEVELOPERS.md) or \
                     set ENISHI_TEST_DATABASE_URL.",
                    std::error::Error::source(&e)
                )
            });
        let journal: Arc<dyn DeliveryJournal> = Arc::new(journal);
        if w == 0 {
            journal.enqueue(&push_plan(&id, 0..900)).await.unwrap();
        }
        let limiter = enishi::line::RedisRateLimiter::connect(&redis_url, prefix.as_str())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis is needed at {redis_url} ({e}). Start it (e.g. `redis-server \
                     --daemonize yes`) or set ENISHI_TEST_REDIS_URL."
                )
            });
        let client = LineClient::builder()
            .channel_access_token(line.channel_access_token())
            .base_url(line.api_base_url())
            // A 429 is not retried, so any 429 the fake sends stays visible.
            .retry_policy(RetryPolicy::default().retry_rate_limited(false))
            // The whole channel limit, shared by the three workers through Redis.
            .rate_limits(RateLimits::default().with(
                enishi::line::EndpointClass::Standard,
                Some(RateLimit::per_second(limit).burst(10)),
            ))
            .rate_limiter(Arc::new(Recording::new(limiter, &grants)))
            .build()
            .unwrap();
        workers.push(dispatcher(client, &journal, &format!("worker-{w}")));
    }
    let runs = workers.iter().map(|d| d.run(&id));
    let reports = futures_util::future::join_all(runs).await;
    let reports: Vec<DeliveryReport> = reports.into_iter().map(Result::unwrap).collect();
    for r in &reports {
        assert_eq!(r.status, RunStatus::Completed, "{r}");
        assert_eq!(r.sent, 900, "{r}");
        // Every worker did part of the work.
        assert!(r.this_run.batches_sent > 0, "{r}");
    }
    assert_eq!(reports.iter().map(|r| r.this_run.batches_sent).sum::<u64>(), 900);
    // Every push asked the shared bucket, whose schedule never beat the channel's limit, and
    // none was sent before its turn.
    let grants = grants.lock().unwrap().clone();
    assert_eq!(
        grants.len() as u64,
        line.request_count(testkit::Endpoint::Push),
        "one grant a push"
    );
    assert_within_limit(&grants, 1_000_000 / i64::from(limit), 10);
    let accepted: Vec<_> = line.deliveries().iter().map(|d| d.at).collect();
    assert_not_before_grants(&accepted, &grants);
    assert_exactly_once(&line, 0..900);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}
