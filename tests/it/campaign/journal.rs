//! The `DeliveryJournal` conformance suite: every journal (memory, SQLite, PostgreSQL) runs
//! every case, including races between several journal instances sharing one database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enishi::campaign::{
    Batch, BatchOutcome, BatchRecipient, BatchStatus, CampaignState, Claimed, DeliveryJournal,
    FailureKind, JournalError, MemoryJournal, Transport,
};
use enishi::line::message::Message;
use enishi::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId, RequestId};

type Journals = Vec<Arc<dyn DeliveryJournal>>;

/// What to remove after a case: nothing, an SQLite file, or a PostgreSQL schema.
enum Cleanup {
    None,
    #[cfg(feature = "sqlite")]
    File(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Schema(String),
}

async fn cleanup(c: Cleanup) {
    match c {
        Cleanup::None => {}
        #[cfg(feature = "sqlite")]
        Cleanup::File(path) => remove_sqlite(&path),
        #[cfg(feature = "postgres")]
        Cleanup::Schema(schema) => {
            let (client, conn) =
                tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
        }
    }
}

#[cfg(feature = "sqlite")]
fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(feature = "postgres")]
fn pg_url() -> String {
    std::env::var("ENISHI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn memory_journals(n: usize) -> (Journals, Cleanup) {
    let j: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    ((0..n).map(|_| Arc::clone(&j)).collect(), Cleanup::None)
}

#[cfg(feature = "sqlite")]
fn sqlite_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("enishi-journal-{}.sqlite", uuid::Uuid::new_v4()))
}

#[cfg(feature = "sqlite")]
async fn sqlite_journals(n: usize) -> (Journals, Cleanup) {
    // Several connections to one file: the races then cross connections, as between processes.
    let path = sqlite_path();
    let journals = (0..n)
        .map(|_| {
            Arc::new(enishi::campaign::SqliteJournal::open(&path).unwrap())
                as Arc<dyn DeliveryJournal>
        })
        .collect();
    (journals, Cleanup::File(path))
}

#[cfg(feature = "postgres")]
async fn postgres_journals(n: usize) -> (Journals, Cleanup) {
    let url = pg_url();
    let schema = format!("enishi_journal_it_{}", uuid::Uuid::new_v4().simple());
    let mut out: Journals = Vec::new();
    for _ in 0..n {
        // One small pool per journal, as in separate processes: races still cross connections,
        // and several copies of this binary at once stay under the server's max_connections.
        let pool = enishi::postgres::pool_with_size(&url, 2).unwrap();
        let journal =
            enishi::campaign::PostgresJournal::from_pool(pool, &schema).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed at {url} ({e}: {:?}). Start it (see DEVELOPERS.md) or \
                     set ENISHI_TEST_DATABASE_URL.",
                    std::error::Error::source(&e)
                )
            });
        out.push(Arc::new(journal));
    }
    (out, Cleanup::Schema(schema))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn cid(name: &str) -> CampaignId {
    CampaignId::new(name).unwrap()
}

fn bid(name: &str) -> BatchId {
    BatchId::new(name).unwrap()
}

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn recipient(n: u32) -> BatchRecipient {
    BatchRecipient { customer: CustomerId::new(format!("C-{n}")).unwrap(), line_user: user(n) }
}

/// A multicast batch `<campaign>#<id>` to users `first..first + count`, due at `due` seconds.
fn batch(campaign: &str, id: &str, first: u32, count: u32, due: i64) -> Batch {
    Batch::new(
        bid(&format!("{campaign}#{id}")),
        cid(campaign),
        if count == 1 { Transport::Push } else { Transport::Multicast },
        (first..first + count).map(recipient).collect(),
        vec![Message::text(format!("セール {campaign} {id}"))],
        at(due),
    )
}

fn accepted(req: &str) -> BatchOutcome {
    BatchOutcome::Accepted {
        request_id: Some(RequestId::new(req).unwrap()),
        already_accepted: false,
    }
}

fn failed(kind: FailureKind) -> BatchOutcome {
    BatchOutcome::Failed { kind, status: Some(400), request_id: None, error: "bad".into() }
}

fn ids(claimed: &[Claimed]) -> Vec<&str> {
    claimed.iter().map(|c| c.batch.id.as_str()).collect()
}

async fn status_of(j: &dyn DeliveryJournal, campaign: &str, id: &str) -> (BatchStatus, u32) {
    let records = j.records(&cid(campaign)).await.unwrap();
    let r = records.iter().find(|r| r.batch.id.as_str() == id).expect("the batch is recorded");
    (r.status, r.attempts)
}

async fn enqueue_is_insert_if_absent(j: Journals) {
    let b1 = batch("spring", "1", 0, 3, 0)
        .with_arm("a")
        .with_aggregation_unit(AggregationUnit::new("spring_a").unwrap());
    let b2 = batch("spring", "2", 3, 1, 5);
    assert_eq!(j[0].enqueue(&[b1.clone(), b2.clone()]).await.unwrap(), 2);
    assert_eq!(j[1].enqueue(&[b1.clone(), b2.clone()]).await.unwrap(), 0, "stored once");
    // A same-content duplicate inside one call is stored once too.
    let b3 = batch("spring", "3", 4, 2, 5);
    assert_eq!(j[1].enqueue(&[b3.clone(), b1.clone(), b3.clone()]).await.unwrap(), 1);
    assert_eq!(j[0].enqueue(&[]).await.unwrap(), 0);
    let records = j[2].records(&cid("spring")).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records.iter().map(|r| r.batch.id.as_str()).collect::<Vec<_>>(),
        ["spring#1", "spring#2", "spring#3"]
    );
    assert_eq!(records[0].batch, b1, "every field survives the journal");
    assert_eq!(records[1].batch, b2);
    for r in &records {
        assert_eq!((r.status, r.attempts, r.outcome.as_ref()), (BatchStatus::Pending, 0, None));
    }
}

async fn enqueue_conflict_stores_nothing(j: Journals) {
    let a = batch("c1", "a", 0, 2, 0);
    j[0].enqueue(std::slice::from_ref(&a)).await.unwrap();
    // The same ID with other recipients, next to a new batch: the whole call is refused.
    let a2 = batch("c1", "a", 10, 2, 0);
    let b = batch("c1", "b", 20, 2, 0);
    let err = j[1].enqueue(&[b.clone(), a2]).await.unwrap_err();
    assert!(matches!(&err, JournalError::Conflict(id) if id.as_str() == "c1#a"), "{err:?}");
    // Two different batches with one ID in the same call.
    let c = batch("c1", "c", 30, 2, 0);
    let c2 = batch("c1", "c", 40, 3, 0);
    let err = j[2].enqueue(&[c, c2]).await.unwrap_err();
    assert!(matches!(&err, JournalError::Conflict(id) if id.as_str() == "c1#c"), "{err:?}");
    let records = j[0].records(&cid("c1")).await.unwrap();
    assert_eq!(records.len(), 1, "nothing of a refused call is stored");
    assert_eq!(records[0].batch, a);
    assert_eq!(j[0].counts(&cid("c1")).await.unwrap().pending, 1);
}

async fn claim_is_ordered_due_and_bounded(j: Journals) {
    let c = cid("order");
    j[0].enqueue(&[
        batch("order", "b", 0, 1, 10),
        batch("order", "c", 1, 1, 0),
        batch("order", "a", 2, 1, 0),
        batch("order", "future", 3, 1, 100),
    ])
    .await
    .unwrap();
    assert!(j[0].claim(&c, "w", 0, at(20), HOUR).await.unwrap().is_empty(), "max 0");
    assert!(j[0].claim(&c, "w", 10, at(-1), HOUR).await.unwrap().is_empty(), "nothing due");
    let first = j[0].claim(&c, "w1", 2, at(20), HOUR).await.unwrap();
    assert_eq!(ids(&first), ["order#a", "order#c"], "oldest not_before first, then ID");
    let second = j[1].claim(&c, "w2", 10, at(20), HOUR).await.unwrap();
    assert_eq!(ids(&second), ["order#b"], "a batch not due yet stays");
    assert!(j[2].claim(&c, "w3", 10, at(30), HOUR).await.unwrap().is_empty(), "leases run");
    let last = j[2].claim(&c, "w3", 10, at(100), HOUR).await.unwrap();
    assert_eq!(ids(&last), ["order#future"], "due exactly at not_before");
    assert!(j[0].claim(&cid("other"), "w", 10, at(1000), HOUR).await.unwrap().is_empty());
    let counts = j[3].counts(&c).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 4));
}

async fn expired_lease_is_reclaimed_with_the_same_key(j: Journals) {
    let c = cid("lease");
    let b = batch("lease", "1", 0, 5, 0);
    j[0].enqueue(std::slice::from_ref(&b)).await.unwrap();
    let first = j[0].claim(&c, "crashing-worker", 5, at(0), MINUTE).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(j[1].claim(&c, "w2", 5, at(30), MINUTE).await.unwrap().is_empty());
    assert!(j[1].claim(&c, "w2", 5, at(60), MINUTE).await.unwrap().is_empty(), "lease ends at 60");
    let again = j[1].claim(&c, "w2", 5, at(61), MINUTE).await.unwrap();
    assert_eq!(ids(&again), ["lease#1"], "the lease ran out: the batch is claimed again");
    assert_eq!(again[0].batch.retry_key, b.retry_key, "a re-send carries the same retry key");
    assert_eq!(again[0].batch, first[0].batch);
    assert_eq!((first[0].attempts, again[0].attempts), (1, 2), "each claim is an attempt");
    assert_eq!(status_of(&*j[2], "lease", "lease#1").await, (BatchStatus::InFlight, 2));
    // The new lease runs from the re-claim.
    assert!(j[2].claim(&c, "w3", 5, at(100), MINUTE).await.unwrap().is_empty());
    assert_eq!(j[2].claim(&c, "w3", 5, at(122), MINUTE).await.unwrap().len(), 1);
    assert_eq!(status_of(&*j[0], "lease", "lease#1").await, (BatchStatus::InFlight, 3));
}

async fn complete_and_release(j: Journals) {
    let c = cid("done");
    j[0].enqueue(&[batch("done", "ok", 0, 2, 0), batch("done", "retry", 2, 2, 0)]).await.unwrap();
    let claimed = j[0].claim(&c, "w", 10, at(0), MINUTE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    j[1].complete(&bid("done#ok"), &accepted("req-1"), at(1)).await.unwrap();
    j[1].release(&bid("done#retry"), at(100), at(1)).await.unwrap();
    let records = j[2].records(&c).await.unwrap();
    let ok = &records[0];
    assert_eq!((ok.status, ok.attempts), (BatchStatus::Sent, 1));
    assert_eq!(ok.outcome, Some(accepted("req-1")));
    assert_eq!(ok.updated_at, at(1));
    let retry = &records[1];
    assert_eq!(
        (retry.status, retry.attempts, retry.batch.not_before),
        (BatchStatus::Pending, 1, at(100))
    );
    assert!(j[2].claim(&c, "w", 10, at(99), MINUTE).await.unwrap().is_empty(), "due again later");
    let again = j[2].claim(&c, "w", 10, at(100), MINUTE).await.unwrap();
    assert_eq!(ids(&again), ["done#retry"]);
    assert_eq!(again[0].batch.not_before, at(100));
    assert_eq!(again[0].attempts, 2, "the claim carries the journal's attempt count");
    let outcome = failed(FailureKind::InvalidRecipient);
    j[3].complete(&bid("done#retry"), &outcome, at(101)).await.unwrap();
    let records = j[0].records(&c).await.unwrap();
    assert_eq!((records[1].status, records[1].attempts), (BatchStatus::Failed, 2));
    assert_eq!(records[1].outcome, Some(outcome));
    let unknown = bid("done#missing");
    let err = j[0].complete(&unknown, &accepted("r"), at(2)).await.unwrap_err();
    assert!(matches!(&err, JournalError::UnknownBatch(id) if *id == unknown), "{err:?}");
    let err = j[0].release(&unknown, at(2), at(2)).await.unwrap_err();
    assert!(matches!(&err, JournalError::UnknownBatch(id) if *id == unknown), "{err:?}");
}

async fn a_final_status_never_changes_back(j: Journals) {
    let c = cid("final");
    j[0].enqueue(&[
        batch("final", "sent", 0, 1, 0),
        batch("final", "failed", 1, 1, 0),
        batch("final", "cancelled", 2, 1, 50),
    ])
    .await
    .unwrap();
    j[0].claim(&c, "w", 2, at(0), MINUTE).await.unwrap();
    j[0].complete(&bid("final#sent"), &accepted("req-sent"), at(1)).await.unwrap();
    j[0].complete(&bid("final#failed"), &failed(FailureKind::Rejected), at(1)).await.unwrap();
    j[0].set_state(&c, &CampaignState::Cancelled, at(2)).await.unwrap();
    j[0].set_state(&c, &CampaignState::Running, at(3)).await.unwrap();
    // Late duplicate answers, releases and claims long after any lease change nothing.
    for j in &j {
        j.complete(&bid("final#sent"), &failed(FailureKind::Retryable), at(4)).await.unwrap();
        j.complete(&bid("final#failed"), &accepted("late"), at(4)).await.unwrap();
        j.complete(&bid("final#cancelled"), &accepted("late"), at(4)).await.unwrap();
        for id in ["final#sent", "final#failed", "final#cancelled"] {
            j.release(&bid(id), at(5), at(5)).await.unwrap();
        }
        assert!(j.claim(&c, "w", 10, at(10_000), MINUTE).await.unwrap().is_empty());
    }
    let records = j[1].records(&c).await.unwrap();
    let by_id: BTreeMap<&str, _> = records.iter().map(|r| (r.batch.id.as_str(), r)).collect();
    assert_eq!(by_id["final#sent"].status, BatchStatus::Sent);
    assert_eq!(by_id["final#sent"].outcome, Some(accepted("req-sent")));
    assert_eq!(by_id["final#sent"].updated_at, at(1));
    assert_eq!(by_id["final#failed"].status, BatchStatus::Failed);
    assert_eq!(by_id["final#failed"].outcome, Some(failed(FailureKind::Rejected)));
    assert_eq!(by_id["final#cancelled"].status, BatchStatus::Cancelled);
    assert_eq!(by_id["final#cancelled"].outcome, None);
    assert_eq!(by_id["final#cancelled"].batch.not_before, at(50));
}

async fn paused_and_cancelled_campaigns_claim_nothing(j: Journals) {
    let (c, other) = (cid("paused"), cid("neighbour"));
    assert_eq!(j[0].state(&c).await.unwrap(), CampaignState::Running, "running by default");
    j[0].enqueue(&[
        batch("paused", "1", 0, 2, 0),
        batch("paused", "2", 2, 2, 0),
        batch("paused", "3", 4, 2, 0),
        batch("neighbour", "1", 0, 2, 0),
    ])
    .await
    .unwrap();
    let in_flight = j[0].claim(&c, "w", 1, at(0), MINUTE).await.unwrap();
    assert_eq!(ids(&in_flight), ["paused#1"]);
    let paused = CampaignState::Paused { reason: "quota exhausted".into() };
    j[0].set_state(&c, &paused, at(1)).await.unwrap();
    assert_eq!(j[1].state(&c).await.unwrap(), paused, "every worker sees the state");
    assert!(j[1].claim(&c, "w", 10, at(2), MINUTE).await.unwrap().is_empty(), "paused");
    assert!(j[1].claim(&c, "w", 10, at(1000), MINUTE).await.unwrap().is_empty(), "even expired");
    assert_eq!(j[1].claim(&other, "w", 10, at(2), MINUTE).await.unwrap().len(), 1, "others run");
    j[2].set_state(&c, &CampaignState::Running, at(3)).await.unwrap();
    let resumed = j[2].claim(&c, "w", 1, at(3), MINUTE).await.unwrap();
    assert_eq!(ids(&resumed), ["paused#2"]);
    j[3].set_state(&c, &CampaignState::Cancelled, at(4)).await.unwrap();
    assert_eq!(j[0].state(&c).await.unwrap(), CampaignState::Cancelled);
    assert!(j[0].claim(&c, "w", 10, at(10_000), MINUTE).await.unwrap().is_empty());
    let counts = j[0].counts(&c).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight, counts.cancelled), (0, 2, 1), "{counts:?}");
    assert_eq!(status_of(&*j[0], "paused", "paused#3").await.0, BatchStatus::Cancelled);
    // In-flight batches finish and are recorded.
    j[0].complete(&bid("paused#2"), &accepted("r2"), at(5)).await.unwrap();
    assert_eq!(status_of(&*j[0], "paused", "paused#2").await.0, BatchStatus::Sent);
    assert_eq!(j[0].counts(&other).await.unwrap().in_flight, 1, "other campaigns untouched");
}

async fn counts_and_records_are_per_campaign(j: Journals) {
    let c = cid("counts");
    assert_eq!(j[0].counts(&c).await.unwrap().batches(), 0);
    assert!(j[0].records(&c).await.unwrap().is_empty());
    j[0].enqueue(&[
        batch("counts", "1", 0, 500, 0),
        batch("counts", "2", 500, 300, 0),
        batch("counts", "3", 800, 100, 0),
        batch("counts", "4", 900, 1, 0),
        batch("counts", "5", 901, 7, 10),
        batch("elsewhere", "1", 0, 50, 0),
    ])
    .await
    .unwrap();
    j[1].claim(&c, "w", 4, at(0), MINUTE).await.unwrap();
    j[1].complete(&bid("counts#1"), &accepted("r1"), at(1)).await.unwrap();
    j[1].complete(&bid("counts#2"), &failed(FailureKind::Rejected), at(1)).await.unwrap();
    j[1].complete(&bid("counts#3"), &accepted("r3"), at(1)).await.unwrap();
    let counts = j[2].counts(&c).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.sent, counts.failed, counts.cancelled),
        (1, 1, 2, 1, 0)
    );
    assert_eq!((counts.recipients, counts.recipients_sent), (908, 600));
    assert_eq!(counts.batches(), 5);
    assert!(!counts.is_finished());
    let records = j[2].records(&c).await.unwrap();
    assert_eq!(records.len(), 5, "only this campaign's batches");
    assert!(records.windows(2).all(|w| w[0].batch.id < w[1].batch.id), "by ID");
    j[3].set_state(&c, &CampaignState::Cancelled, at(2)).await.unwrap();
    j[3].complete(&bid("counts#4"), &accepted("r4"), at(3)).await.unwrap();
    let counts = j[3].counts(&c).await.unwrap();
    assert!(counts.is_finished(), "{counts:?}");
    assert_eq!((counts.sent, counts.cancelled, counts.recipients_sent), (3, 1, 601));
    let elsewhere = j[0].counts(&cid("elsewhere")).await.unwrap();
    assert_eq!((elsewhere.pending, elsewhere.recipients), (1, 50));
}

async fn sends_since_feeds_the_frequency_cap(j: Journals) {
    j[0].enqueue(&[
        batch("cap1", "sent", 0, 2, 0),
        batch("cap1", "failed", 2, 1, 0),
        batch("cap1", "flying", 3, 1, 0),
        batch("cap1", "later", 4, 2, 500),
        batch("cap2", "old", 0, 1, -1000),
        batch("cap2", "cancelled", 6, 1, 600),
    ])
    .await
    .unwrap();
    j[0].claim(&cid("cap1"), "w", 3, at(0), MINUTE).await.unwrap();
    j[1].complete(&bid("cap1#sent"), &accepted("r"), at(30)).await.unwrap();
    j[1].complete(&bid("cap1#failed"), &failed(FailureKind::InvalidRecipient), at(30))
        .await
        .unwrap();
    j[1].set_state(&cid("cap2"), &CampaignState::Cancelled, at(40)).await.unwrap();
    let mut sends: Vec<(String, String, DateTime<Utc>)> = j[2]
        .sends_since(at(-10))
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.line_user.into_string(), s.campaign.into_string(), s.at))
        .collect();
    sends.sort();
    let expect = |n: u32, c: &str, t: i64| (user(n).into_string(), c.to_owned(), at(t));
    let mut expected = vec![
        expect(0, "cap1", 30), // sent: timed when sent
        expect(1, "cap1", 30),
        expect(3, "cap1", 0),   // in flight: timed at not_before
        expect(4, "cap1", 500), // pending: planned sends count
        expect(5, "cap1", 500),
    ];
    expected.sort();
    assert_eq!(sends, expected, "failed, cancelled and older sends are left out");
    let recent = j[3].sends_since(at(31)).await.unwrap();
    assert_eq!(recent.len(), 2, "only the planned batch is at or after 31 s: {recent:?}");
    assert_eq!(j[3].sends_since(at(500)).await.unwrap().len(), 2, "at or after, inclusive");
}

/// Many tasks on several journals claim at once: while leases run, every batch is handed out
/// exactly once; after they run out, exactly once again.
async fn concurrent_claims_hand_out_each_batch_once(j: Journals) {
    const BATCHES: u32 = 120;
    let c = cid("race");
    let batches: Vec<Batch> =
        (0..BATCHES).map(|i| batch("race", &format!("{i:04}"), i, 1, i64::from(i % 7))).collect();
    // Every journal enqueues the whole plan at once: stored once.
    let enqueues = j.iter().map(|j| {
        let (j, batches) = (Arc::clone(j), batches.clone());
        tokio::spawn(async move { j.enqueue(&batches).await.unwrap() })
    });
    let added: u64 =
        futures_util::future::join_all(enqueues).await.into_iter().map(Result::unwrap).sum();
    assert_eq!(added, u64::from(BATCHES), "insert-if-absent holds under races");
    for (round, now) in [(1, at(10)), (2, at(10 + 2 * 3600))] {
        let mut tasks = Vec::new();
        for (n, j) in j.iter().enumerate() {
            for t in 0..4 {
                let (j, c) = (Arc::clone(j), c.clone());
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = j.claim(&c, &format!("w{n}.{t}"), 3, now, HOUR).await.unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|c| c.batch.id));
                    }
                }));
            }
        }
        let mut seen: BTreeMap<BatchId, u32> = BTreeMap::new();
        for t in tasks {
            for id in t.await.unwrap() {
                *seen.entry(id).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), BATCHES as usize, "round {round}: every batch claimed");
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "round {round}: claimed more than once: {twice:?}");
        let records = j[0].records(&c).await.unwrap();
        assert!(records.iter().all(|r| r.attempts == round), "round {round}: one attempt each");
    }
    // Concurrent completion from every journal: all sent, none lost.
    let completes = batches.iter().enumerate().map(|(i, b)| {
        let (j, id) = (Arc::clone(&j[i % j.len()]), b.id.clone());
        tokio::spawn(async move { j.complete(&id, &accepted("r"), at(20_000)).await.unwrap() })
    });
    for r in futures_util::future::join_all(completes).await {
        r.unwrap();
    }
    let counts = j[1].counts(&c).await.unwrap();
    assert_eq!((counts.sent, counts.recipients_sent), (u64::from(BATCHES), u64::from(BATCHES)));
}

/// A claim that sent nothing is given back without counting: the next claim carries the same
/// attempt count, and batches that are not in flight are left alone.
async fn release_unsent_takes_the_attempt_back(j: Journals) {
    let c = cid("unsent");
    j[0].enqueue(&[batch("unsent", "1", 0, 1, 0), batch("unsent", "2", 1, 1, 0)]).await.unwrap();
    let first = j[0].claim(&c, "w", 1, at(0), MINUTE).await.unwrap();
    assert_eq!((ids(&first), first[0].attempts), (vec!["unsent#1"], 1));
    j[1].release_unsent(&bid("unsent#1"), at(50), at(1)).await.unwrap();
    assert_eq!(status_of(&*j[2], "unsent", "unsent#1").await, (BatchStatus::Pending, 0));
    assert!(
        j[2].claim(&c, "w", 1, at(49), MINUTE)
            .await
            .unwrap()
            .iter()
            .all(|b| b.batch.id.as_str() != "unsent#1"),
        "due at 50"
    );
    let again = j[2].claim(&c, "w", 5, at(50), MINUTE).await.unwrap();
    let again: Vec<_> = again.iter().filter(|b| b.batch.id.as_str() == "unsent#1").collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1, "the unsent claim did not count");
    // Not in flight: nothing changes (pending, or final).
    j[3].complete(&bid("unsent#1"), &accepted("r"), at(51)).await.unwrap();
    j[3].release_unsent(&bid("unsent#1"), at(60), at(52)).await.unwrap();
    assert_eq!(status_of(&*j[0], "unsent", "unsent#1").await, (BatchStatus::Sent, 1));
    assert!(matches!(
        j[0].release_unsent(&bid("unsent#missing"), at(60), at(52)).await,
        Err(JournalError::UnknownBatch(_))
    ));
}

macro_rules! conformance {
    ($journal:ident, $factory:path) => {
        mod $journal {
            conformance!(@cases $factory;
                enqueue_is_insert_if_absent,
                enqueue_conflict_stores_nothing,
                claim_is_ordered_due_and_bounded,
                expired_lease_is_reclaimed_with_the_same_key,
                complete_and_release,
                release_unsent_takes_the_attempt_back,
                a_final_status_never_changes_back,
                paused_and_cancelled_campaigns_claim_nothing,
                counts_and_records_are_per_campaign,
                sends_since_feeds_the_frequency_cap,
                concurrent_claims_hand_out_each_batch_once,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (journals, c) = $factory(4).await;
                super::$case(journals).await;
                super::cleanup(c).await;
            }
        )*
    };
}

conformance!(memory, super::memory_journals);
#[cfg(feature = "sqlite")]
conformance!(sqlite, super::sqlite_journals);
#[cfg(feature = "postgres")]
conformance!(postgres, super::postgres_journals);

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_survive_closing_and_reopening_the_file() {
    use enishi::campaign::SqliteJournal;
    let path = sqlite_path();
    let c = cid("durable");
    let b = batch("durable", "1", 0, 3, 0).with_arm("b");
    {
        let j = SqliteJournal::open(&path).unwrap();
        j.enqueue(&[b.clone(), batch("durable", "2", 3, 1, 0)]).await.unwrap();
        j.claim(&c, "w", 2, at(0), MINUTE).await.unwrap();
        j.complete(&b.id, &accepted("req-durable"), at(1)).await.unwrap();
        j.set_state(&c, &CampaignState::Paused { reason: "night".into() }, at(2)).await.unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    let records = j.records(&c).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].batch, b);
    assert_eq!(records[0].status, BatchStatus::Sent);
    assert_eq!(records[0].outcome, Some(accepted("req-durable")));
    assert_eq!((records[1].status, records[1].attempts), (BatchStatus::InFlight, 1));
    assert_eq!(j.state(&c).await.unwrap(), CampaignState::Paused { reason: "night".into() });
    assert_eq!(j.enqueue(std::slice::from_ref(&b)).await.unwrap(), 0, "still insert-if-absent");
    // After reopening, the batch whose worker died is claimed again once its lease ran out.
    j.set_state(&c, &CampaignState::Running, at(3)).await.unwrap();
    let again = j.claim(&c, "w2", 5, at(61), MINUTE).await.unwrap();
    assert_eq!(ids(&again), ["durable#2"]);
    drop(j);
    remove_sqlite(&path);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_in_memory_works_and_rejects_a_foreign_file() {
    use enishi::campaign::SqliteJournal;
    let j = SqliteJournal::in_memory().unwrap();
    assert_eq!(j.enqueue(&[batch("mem", "1", 0, 1, 0)]).await.unwrap(), 1);
    assert_eq!(j.claim(&cid("mem"), "w", 1, at(0), MINUTE).await.unwrap().len(), 1);
    let path = sqlite_path();
    std::fs::write(&path, b"this is not an SQLite database, just text").unwrap();
    let err = SqliteJournal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Storage { .. }), "{err:?}");
    remove_sqlite(&path);
}

/// A terminated connection is replaced: enqueue (a transaction), claim (`FOR UPDATE SKIP
/// LOCKED`), complete and reads work again, and nothing is claimed twice.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_postgres_reconnects_after_its_connections_are_terminated() {
    use crate::pg::{at_most_one_failure, terminate, url_with_app_name};
    let (url, app) = url_with_app_name();
    let schema = format!("enishi_journal_it_{}", uuid::Uuid::new_v4().simple());
    let j = enishi::campaign::PostgresJournal::connect(&url, &schema).await.unwrap();
    let (a, b) = (batch("re", "a", 0, 2, 0), batch("re", "b", 2, 2, 0));
    assert_eq!(j.enqueue(std::slice::from_ref(&a)).await.unwrap(), 1);
    assert!(terminate(&app).await >= 1, "no connection of {app} to terminate");
    let both = [a.clone(), b.clone()];
    assert_eq!(at_most_one_failure(|| j.enqueue(&both)).await, 1);
    assert!(terminate(&app).await >= 1);
    let re = cid("re");
    let claimed = at_most_one_failure(|| j.claim(&re, "w1", 1, at(1), MINUTE)).await;
    assert_eq!(ids(&claimed), ["re#a"]);
    assert!(terminate(&app).await >= 1);
    let r1 = accepted("r1");
    at_most_one_failure(|| j.complete(&claimed[0].batch.id, &r1, at(2))).await;
    let rest = at_most_one_failure(|| j.claim(&re, "w1", 5, at(3), MINUTE)).await;
    assert_eq!(ids(&rest), ["re#b"], "a sent batch is never claimed again");
    assert!(terminate(&app).await >= 1);
    let counts = at_most_one_failure(|| j.counts(&re)).await;
    assert_eq!((counts.sent, counts.in_flight, counts.pending), (1, 1, 0));
    cleanup(Cleanup::Schema(schema)).await;
}

/// Journals written before `PauseReason` hold the reason as text: those rows still load, the
/// dispatcher's own texts as their variant and anything else as the operator's note.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_loads_a_pause_reason_stored_as_text_by_older_versions() {
    use enishi::campaign::{PauseReason, SqliteJournal};
    let path = sqlite_path();
    drop(SqliteJournal::open(&path).unwrap());
    let quota = "LINE monthly message quota exhausted; raise the quota or wait for the next month, then resume";
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        for (campaign, reason) in [("old-quota", quota), ("old-night", "night")] {
            let state = serde_json::json!({ "state": "paused", "reason": reason }).to_string();
            db.execute(
                "INSERT INTO enishi_journal_campaigns (campaign, state, running, updated_at_us) \
                 VALUES (?1, ?2, 0, 0)",
                (campaign, state),
            )
            .unwrap();
        }
    }
    let j = SqliteJournal::open(&path).unwrap();
    let quota_state = j.state(&cid("old-quota")).await.unwrap();
    assert_eq!(quota_state, CampaignState::Paused { reason: PauseReason::QuotaExhausted });
    assert_eq!(quota_state.to_string(), format!("paused ({quota})"), "same text as before");
    assert_eq!(
        j.state(&cid("old-night")).await.unwrap(),
        CampaignState::Paused { reason: PauseReason::Operator("night".into()) }
    );
    drop(j);
    remove_sqlite(&path);
}

#[test]
fn pause_reasons_round_trip_and_old_text_still_reads() {
    use enishi::campaign::PauseReason;
    for reason in [
        PauseReason::QuotaExhausted,
        PauseReason::TokenRejected,
        PauseReason::PermissionDenied,
        PauseReason::Operator("legal review".into()),
    ] {
        let state = CampaignState::Paused { reason };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<CampaignState>(&json).unwrap(), state, "{json}");
        // The old text form of the same reason reads back as the same variant.
        let CampaignState::Paused { reason } = &state else { unreachable!() };
        let old = serde_json::json!({ "state": "paused", "reason": reason.to_string() });
        assert_eq!(serde_json::from_value::<CampaignState>(old).unwrap(), state);
    }
    assert_eq!(
        serde_json::to_string(&CampaignState::Paused { reason: PauseReason::QuotaExhausted })
            .unwrap(),
        r#"{"state":"paused","reason":{"kind":"quota_exhausted"}}"#
    );
    assert!(serde_json::from_str::<CampaignState>(r#"{"state":"paused","reason":7}"#).is_err());
}
