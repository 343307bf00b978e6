//! The conformance suite every [`DeliveryJournal`] runs.
//!
//! Each check takes handles onto one new, empty journal and panics with a message saying what
//! the journal got wrong; [`run_all`] runs them all, each on a journal from a factory:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::campaign::{DeliveryJournal, MemoryJournal};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::campaign::conformance::journal::run_all(|| async {
//!     let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
//!     vec![Arc::clone(&journal), journal]
//! })
//! .await;
//! # }
//! ```
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::campaign::{
    Batch, BatchOutcome, BatchRecipient, BatchStatus, CampaignState, Claimed, DeliveryJournal,
    FailureKind, JournalError, Transport,
};
use crate::conformance::Handles;
use crate::line::message::Message;
use crate::{AggregationUnit, BatchId, CampaignId, CustomerId, LineUserId, RequestId};

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

/// `enqueue` is insert-if-absent by batch ID, also within one call, and every field of a batch
/// survives the journal.
pub async fn enqueue_is_insert_if_absent(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// An `enqueue` with a known ID and other content (or two different batches with one ID) is a
/// `Conflict` and stores nothing of the call.
pub async fn enqueue_conflict_stores_nothing(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// `claim` hands out due batches only, oldest `not_before` first, then ID, at most `max`, and
/// never one whose lease runs.
pub async fn claim_is_ordered_due_and_bounded(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// A batch whose lease ran out is claimed again with the same retry key, and each claim counts
/// as an attempt.
pub async fn expired_lease_is_reclaimed_with_the_same_key(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// `complete` records the outcome (sent or failed); `release` makes a batch due again later; both
/// refuse an unknown batch.
pub async fn complete_and_release(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// A final status (sent, failed, cancelled) never changes back: late answers, releases and
/// claims change nothing.
pub async fn a_final_status_never_changes_back(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// A paused or cancelled campaign hands out nothing, on every handle, and other campaigns are
/// untouched; in-flight batches still finish.
pub async fn paused_and_cancelled_campaigns_claim_nothing(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// Counts and records are per campaign, records in ID order.
pub async fn counts_and_records_are_per_campaign(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// `sends_since` lists sent, in-flight and planned sends at or after a time (not failed or
/// cancelled ones), for the frequency cap.
pub async fn sends_since_feeds_the_frequency_cap(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// Many tasks on every handle enqueue and claim at once: each batch is stored once and, while
/// leases run, handed out exactly once; after they run out, exactly once again.
pub async fn concurrent_claims_hand_out_each_batch_once(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// `release_unsent` gives a claim back without counting it, and leaves batches that are not in
/// flight alone.
pub async fn release_unsent_takes_the_attempt_back(journals: &[Arc<dyn DeliveryJournal>]) {
    let j = Handles::new(journals);
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

/// Runs every check, each on a new, empty journal from `new_journal`.
///
/// `new_journal` returns one or more handles onto one new, empty journal (one per connection
/// or pool, as in separate workers, to make the races cross them; clones of one `Arc` are
/// fine too). The checks use fixed IDs, so each needs its own journal: a new schema, file or
/// database each time.
pub async fn run_all<F, Fut>(mut new_journal: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn DeliveryJournal>>> + Send,
{
    enqueue_is_insert_if_absent(&new_journal().await).await;
    enqueue_conflict_stores_nothing(&new_journal().await).await;
    claim_is_ordered_due_and_bounded(&new_journal().await).await;
    expired_lease_is_reclaimed_with_the_same_key(&new_journal().await).await;
    complete_and_release(&new_journal().await).await;
    release_unsent_takes_the_attempt_back(&new_journal().await).await;
    a_final_status_never_changes_back(&new_journal().await).await;
    paused_and_cancelled_campaigns_claim_nothing(&new_journal().await).await;
    counts_and_records_are_per_campaign(&new_journal().await).await;
    sends_since_feeds_the_frequency_cap(&new_journal().await).await;
    concurrent_claims_hand_out_each_batch_once(&new_journal().await).await;
}
