//! The `DeliveryJournal` conformance suite (`enishi::campaign::conformance::journal`) against
//! every journal (memory, SQLite, PostgreSQL): each check is its own test, on a new journal
//! with four handles (four connections for SQLite, four pools for PostgreSQL, so the races
//! cross them). Then what is particular to one journal: durability, reconnects, old rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enishi::campaign::{
    Batch, BatchOutcome, BatchRecipient, BatchStatus, CampaignState, Claimed, DeliveryJournal,
    JournalError, MemoryJournal, Transport,
};
use enishi::line::message::Message;
use enishi::{BatchId, CampaignId, CustomerId, LineUserId, RequestId};

use crate::stores::Cleanup;
#[cfg(feature = "sqlite")]
use crate::stores::{remove_sqlite, sqlite_path};

#[cfg(feature = "testkit")]
type Journals = Vec<Arc<dyn DeliveryJournal>>;

#[cfg(feature = "testkit")]
async fn memory_journals(n: usize) -> (Journals, Cleanup) {
    let j: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    ((0..n).map(|_| Arc::clone(&j)).collect(), Cleanup::None)
}

#[cfg(all(feature = "testkit", feature = "sqlite"))]
async fn sqlite_journals(n: usize) -> (Journals, Cleanup) {
    // Several connections to one file: the races then cross connections, as between processes.
    let path = sqlite_path("journal");
    let journals = (0..n)
        .map(|_| {
            Arc::new(enishi::campaign::SqliteJournal::open(&path).unwrap())
                as Arc<dyn DeliveryJournal>
        })
        .collect();
    (journals, Cleanup::File(path))
}

#[cfg(all(feature = "testkit", feature = "postgres"))]
async fn postgres_journals(n: usize) -> (Journals, Cleanup) {
    use crate::stores::{pg_needed, pg_pool};
    let schema = crate::stores::pg_schema("journal");
    let mut out: Journals = Vec::new();
    for _ in 0..n {
        let journal = enishi::campaign::PostgresJournal::from_pool(pg_pool(), &schema).await;
        out.push(Arc::new(pg_needed(journal)));
    }
    (out, Cleanup::Schema(schema))
}

#[cfg(feature = "testkit")]
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
                let (journals, cleanup) = $factory(4).await;
                enishi::campaign::conformance::journal::$case(&journals).await;
                cleanup.run().await;
            }
        )*
    };
}

#[cfg(feature = "testkit")]
conformance!(memory, super::memory_journals);
#[cfg(all(feature = "testkit", feature = "sqlite"))]
conformance!(sqlite, super::sqlite_journals);
#[cfg(all(feature = "testkit", feature = "postgres"))]
conformance!(postgres, super::postgres_journals);

/// The whole suite in one call, as a host runs it, on one handle.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_conformance_run_all_on_one_memory_handle() {
    enishi::campaign::conformance::journal::run_all(|| async {
        vec![Arc::new(MemoryJournal::new()) as Arc<dyn DeliveryJournal>]
    })
    .await;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

const MINUTE: Duration = Duration::from_secs(60);

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

fn ids(claimed: &[Claimed]) -> Vec<&str> {
    claimed.iter().map(|c| c.batch.id.as_str()).collect()
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_survive_closing_and_reopening_the_file() {
    use enishi::campaign::SqliteJournal;
    let path = sqlite_path("journal");
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
    let path = sqlite_path("journal");
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
    let schema = crate::stores::pg_schema("journal");
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
    Cleanup::Schema(schema).run().await;
}

/// Journals written before `PauseReason` hold the reason as text: those rows still load, the
/// dispatcher's own texts as their variant and anything else as the operator's note.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_loads_a_pause_reason_stored_as_text_by_older_versions() {
    use enishi::campaign::{PauseReason, SqliteJournal};
    let path = sqlite_path("journal");
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
