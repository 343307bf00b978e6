//! The `LinkStore` conformance suite: every store runs every case, including races.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enishi::link::{
    AuditAction, ConflictPolicy, LinkOutcome, LinkSource, LinkStore, LinkStoreError,
    MemoryLinkStore, OneTimeSecret, RejectReason, Ticket, TicketKind,
};
use enishi::{CustomerId, LineUserId};

type Stores = Vec<Arc<dyn LinkStore>>;

/// What to remove after a case: nothing, an SQLite file, or a PostgreSQL schema.
pub(super) enum Cleanup {
    None,
    #[cfg(feature = "sqlite")]
    File(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Schema(String),
}

pub(super) async fn cleanup(c: Cleanup) {
    match c {
        Cleanup::None => {}
        #[cfg(feature = "sqlite")]
        Cleanup::File(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        #[cfg(feature = "postgres")]
        Cleanup::Schema(schema) => {
            let (client, conn) =
                tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
        }
    }
}

#[cfg(feature = "postgres")]
fn pg_url() -> String {
    std::env::var("ENISHI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn cust(n: u32) -> CustomerId {
    CustomerId::new(format!("C-{n}")).unwrap()
}

fn nonce_for(c: &CustomerId, u: Option<&LineUserId>, secret: &OneTimeSecret) -> Ticket {
    let t = Ticket::new(TicketKind::Nonce, secret.key(), t0(), Duration::from_secs(600))
        .with_customer(c.clone());
    match u {
        Some(u) => t.with_line_user(u.clone()),
        None => t,
    }
}

fn reason(e: LinkStoreError) -> RejectReason {
    e.reject_reason().unwrap_or_else(|| panic!("expected a rejection, got {e:?}"))
}

pub(super) async fn memory_stores(n: usize) -> (Stores, Cleanup) {
    let s = MemoryLinkStore::new();
    ((0..n).map(|_| Arc::new(s.clone()) as Arc<dyn LinkStore>).collect(), Cleanup::None)
}

#[cfg(feature = "sqlite")]
pub(super) async fn sqlite_stores(n: usize) -> (Stores, Cleanup) {
    // Several connections to one file: the races then cross connections, as between processes.
    let path = std::env::temp_dir().join(format!("enishi-link-{}.sqlite", uuid::Uuid::new_v4()));
    let stores = (0..n)
        .map(|_| {
            Arc::new(enishi::link::SqliteLinkStore::open(&path, "1650000000").unwrap())
                as Arc<dyn LinkStore>
        })
        .collect();
    (stores, Cleanup::File(path))
}

#[cfg(feature = "postgres")]
pub(super) async fn postgres_stores(n: usize) -> (Stores, Cleanup) {
    let url = pg_url();
    let schema = format!("enishi_link_it_{}", uuid::Uuid::new_v4().simple());
    let mut out: Stores = Vec::new();
    for _ in 0..n {
        let store = enishi::link::PostgresLinkStore::connect(&url, &schema, "1650000000")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed at {url} ({e}: {:?}). Start it (see DEVELOPERS.md) or \
                     set ENISHI_TEST_DATABASE_URL.",
                    std::error::Error::source(&e)
                )
            });
        out.push(Arc::new(store));
    }
    (out, Cleanup::Schema(schema))
}

pub(super) async fn ticket_is_single_use(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let t = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(1)).await.unwrap();
    assert_eq!(t.customer, Some(cust(1)));
    assert_eq!(t.kind, TicketKind::Nonce);
    let again = s[1].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(2)).await;
    assert_eq!(reason(again.unwrap_err()), RejectReason::Replayed);
}

pub(super) async fn unknown_ticket_and_wrong_kind_are_unknown(s: Stores) {
    let secret = OneTimeSecret::generate();
    let e = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0()).await.unwrap_err();
    assert_eq!(reason(e), RejectReason::Unknown);
    // A nonce presented as a login state is not a login state.
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let e = s[0].take_ticket(TicketKind::LoginState, &secret.key(), None, t0()).await.unwrap_err();
    assert!(matches!(
        e,
        LinkStoreError::Rejected { kind: TicketKind::LoginState, reason: RejectReason::Unknown }
    ));
    // ... and the rejection consumed nothing.
    s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0()).await.unwrap();
}

pub(super) async fn expired_ticket_is_rejected_and_untouched(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let e = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(600)).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Expired);
    // Nothing was written: presented in time (the clock is a parameter), it is still valid.
    s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(599)).await.unwrap();
}

pub(super) async fn mismatched_user_is_rejected_and_untouched(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), Some(&user(1)), &secret)).await.unwrap();
    let e = s[0].redeem_nonce(&secret.key(), &user(2), ConflictPolicy::Reject, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Mismatched);
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
    assert_eq!(s[0].link_of_customer(&cust(1)).await.unwrap(), None);
    let r = s[0].redeem_nonce(&secret.key(), &user(1), ConflictPolicy::Reject, t0()).await.unwrap();
    assert!(matches!(r.outcome, LinkOutcome::Linked(_)));
}

pub(super) async fn peek_checks_like_take_and_consumes_nothing(s: Stores) {
    let secret = OneTimeSecret::generate();
    let key = secret.key();
    let peek = |at| s[1].peek_ticket(TicketKind::Nonce, &key, None, at);
    assert_eq!(reason(peek(t0()).await.unwrap_err()), RejectReason::Unknown);
    s[0].put_ticket(&nonce_for(&cust(1), Some(&user(1)), &secret)).await.unwrap();
    for _ in 0..3 {
        assert_eq!(peek(t0() + secs(1)).await.unwrap().customer, Some(cust(1)));
    }
    assert_eq!(reason(peek(t0() + secs(600)).await.unwrap_err()), RejectReason::Expired);
    let e = s[1].peek_ticket(TicketKind::Nonce, &secret.key(), Some(&user(2)), t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Mismatched);
    let e = s[1].peek_ticket(TicketKind::LoginState, &secret.key(), None, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Unknown);
    s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(2)).await.unwrap();
    assert_eq!(reason(peek(t0() + secs(3)).await.unwrap_err()), RejectReason::Replayed);
}

pub(super) async fn duplicate_ticket_key_is_refused(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let e = s[1].put_ticket(&nonce_for(&cust(2), None, &secret)).await.unwrap_err();
    assert!(matches!(e, LinkStoreError::DuplicateTicket(TicketKind::Nonce)), "{e:?}");
    let t = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0()).await.unwrap();
    assert_eq!(t.customer, Some(cust(1)));
}

pub(super) async fn redeem_links_once(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(7), None, &secret)).await.unwrap();
    let r = s[0].redeem_nonce(&secret.key(), &user(7), ConflictPolicy::Reject, t0()).await.unwrap();
    assert!(r.outcome.is_new());
    let link = r.outcome.link().clone();
    assert_eq!((link.line_user.clone(), link.customer.clone()), (user(7), cust(7)));
    assert_eq!(link.source, LinkSource::AccountLink);
    assert_eq!(link.linked_at, t0());
    assert_eq!(s[1].link_of_user(&user(7)).await.unwrap(), Some(link.clone()));
    assert_eq!(s[1].link_of_customer(&cust(7)).await.unwrap(), Some(link));
    // A redelivered webhook presents the same nonce again: a replay, no second link.
    let e = s[1].redeem_nonce(&secret.key(), &user(7), ConflictPolicy::Reject, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Replayed);
    let audit = s[0].audit_trail(10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == AuditAction::Linked).count(), 1);
}

pub(super) async fn conflict_rejected_keeps_existing_link(s: Stores) {
    s[0].link(&user(1), &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(2), None, &secret)).await.unwrap();
    let e =
        s[0].redeem_nonce(&secret.key(), &user(1), ConflictPolicy::Reject, t0()).await.unwrap_err();
    let LinkStoreError::Conflict(c) = e else { panic!("expected a conflict, got {e:?}") };
    assert_eq!(c.user_linked_to, Some(cust(1)));
    assert_eq!(c.customer_linked_to, None);
    assert_eq!(s[0].link_of_user(&user(1)).await.unwrap().unwrap().customer, cust(1));
    assert_eq!(s[0].link_of_customer(&cust(2)).await.unwrap(), None);
    assert_eq!(s[0].audit_trail(1).await.unwrap()[0].action, AuditAction::ConflictRejected);
    // The nonce was used up by the attempt.
    let e = s[0].redeem_nonce(&secret.key(), &user(1), ConflictPolicy::Reject, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Replayed);
}

pub(super) async fn customer_side_conflict_is_typed(s: Stores) {
    s[0].link(&user(1), &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    let e = s[0]
        .link(&user(2), &cust(1), LinkSource::LineLogin, ConflictPolicy::Reject, t0())
        .await
        .unwrap_err();
    let LinkStoreError::Conflict(c) = e else { panic!("expected a conflict, got {e:?}") };
    assert_eq!((c.user_linked_to, c.customer_linked_to), (None, Some(user(1))));
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
}

pub(super) async fn conflict_replace_audits_displaced_links(s: Stores) {
    s[0].link(&user(1), &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    s[0].link(&user(2), &cust(2), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    // user 1 ↔ customer 2 displaces both existing links.
    let out = s[1]
        .link(&user(1), &cust(2), LinkSource::LineLogin, ConflictPolicy::Replace, t0() + secs(5))
        .await
        .unwrap();
    let LinkOutcome::Replaced { link, displaced } = out else { panic!("expected Replaced") };
    assert_eq!((link.line_user, link.customer), (user(1), cust(2)));
    assert_eq!(displaced.len(), 2);
    assert_eq!(s[0].link_of_customer(&cust(1)).await.unwrap(), None);
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
    assert_eq!(s[0].link_of_user(&user(1)).await.unwrap().unwrap().customer, cust(2));
    let audit = s[0].audit_trail(3).await.unwrap();
    assert_eq!(audit[0].action, AuditAction::Linked);
    assert_eq!(audit[1].action, AuditAction::Replaced);
    assert_eq!(audit[2].action, AuditAction::Replaced);
    assert!(audit[1].detail.as_deref().unwrap().contains("replaced by"));
}

pub(super) async fn relinking_same_pair_is_not_new(s: Stores) {
    let first = s[0]
        .link(&user(3), &cust(3), LinkSource::Backend, ConflictPolicy::Reject, t0())
        .await
        .unwrap();
    assert!(first.is_new());
    let again = s[1]
        .link(&user(3), &cust(3), LinkSource::Manual, ConflictPolicy::Reject, t0() + secs(9))
        .await
        .unwrap();
    assert!(!again.is_new());
    assert_eq!(again.link(), first.link(), "the original link (and its source) is kept");
}

pub(super) async fn unlink_by_either_side(s: Stores) {
    s[0].link(&user(1), &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    s[0].link(&user(2), &cust(2), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    let gone = s[1].unlink_user(&user(1), t0()).await.unwrap().unwrap();
    assert_eq!(gone.customer, cust(1));
    assert_eq!(s[0].link_of_customer(&cust(1)).await.unwrap(), None);
    let gone = s[1].unlink_customer(&cust(2), t0()).await.unwrap().unwrap();
    assert_eq!(gone.line_user, user(2));
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
    assert_eq!(s[0].unlink_user(&user(1), t0()).await.unwrap(), None);
    let audit = s[0].audit_trail(2).await.unwrap();
    assert!(audit.iter().all(|a| a.action == AuditAction::Unlinked));
    // Unlinked users can link again (to another customer).
    s[0].link(&user(1), &cust(2), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
}

pub(super) async fn failed_link_consumes_nonce_and_stores_nothing(s: Stores) {
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(4), Some(&user(4)), &secret)).await.unwrap();
    let t = s[0].fail_nonce(&secret.key(), t0()).await.unwrap();
    assert_eq!(t.customer, Some(cust(4)));
    assert_eq!(s[0].link_of_customer(&cust(4)).await.unwrap(), None);
    assert_eq!(s[0].audit_trail(1).await.unwrap()[0].action, AuditAction::LinkFailed);
    let e = s[0].redeem_nonce(&secret.key(), &user(4), ConflictPolicy::Reject, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Replayed);
    let e = s[0].fail_nonce(&OneTimeSecret::generate().key(), t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Unknown);
}

pub(super) async fn follow_status_tracks_latest_event(s: Stores) {
    assert_eq!(s[0].follow_status(&user(5)).await.unwrap(), None);
    s[0].set_following(&user(5), true, t0()).await.unwrap();
    s[0].set_following(&user(5), false, t0() + secs(10)).await.unwrap();
    let st = s[1].follow_status(&user(5)).await.unwrap().unwrap();
    assert!(!st.following);
    assert_eq!(st.updated_at, t0() + secs(10));
    // A late-arriving older follow does not undo the newer unfollow.
    s[0].set_following(&user(5), true, t0() + secs(5)).await.unwrap();
    assert!(!s[0].follow_status(&user(5)).await.unwrap().unwrap().following);
    // Unblocking (follow with isUnblocked) restores it.
    s[0].set_following(&user(5), true, t0() + secs(20)).await.unwrap();
    assert!(s[0].follow_status(&user(5)).await.unwrap().unwrap().following);
}

pub(super) async fn purge_keeps_live_and_recent_tickets(s: Stores) {
    let live = OneTimeSecret::generate();
    let old = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &old)).await.unwrap();
    let later = t0() + chrono::Duration::days(2);
    s[0].put_ticket(
        &Ticket::new(TicketKind::Nonce, live.key(), later, Duration::from_secs(600))
            .with_customer(cust(2)),
    )
    .await
    .unwrap();
    assert_eq!(s[0].purge_tickets(later).await.unwrap(), 1);
    let e = s[0].take_ticket(TicketKind::Nonce, &old.key(), None, later).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Unknown);
    s[0].take_ticket(TicketKind::Nonce, &live.key(), None, later).await.unwrap();
}

const RACERS: usize = 24;

pub(super) async fn race_many_consume_one_nonce(s: Stores) {
    for round in 0..3 {
        let secret = OneTimeSecret::generate();
        s[0].put_ticket(&nonce_for(&cust(round), None, &secret)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let store = Arc::clone(&s[i % s.len()]);
            let key = secret.key();
            tasks.push(tokio::spawn(async move {
                store
                    .redeem_nonce(
                        &key,
                        &user(1000 * (round + 1) + i as u32),
                        ConflictPolicy::Reject,
                        t0(),
                    )
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    assert!(r.outcome.is_new());
                    wins += 1;
                }
                Err(e) => assert_eq!(reason(e), RejectReason::Replayed),
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one task may consume the nonce");
    }
}

pub(super) async fn race_many_link_one_user(s: Stores) {
    let secrets: Vec<OneTimeSecret> = (0..RACERS).map(|_| OneTimeSecret::generate()).collect();
    for (i, secret) in secrets.iter().enumerate() {
        s[0].put_ticket(&nonce_for(&cust(i as u32), None, secret)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let store = Arc::clone(&s[i % s.len()]);
        let key = secret.key();
        tasks.push(tokio::spawn(async move {
            store.redeem_nonce(&key, &user(9), ConflictPolicy::Reject, t0()).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => winners.push(r.outcome.link().customer.clone()),
            Err(LinkStoreError::Conflict(c)) => assert_eq!(c.line_user, user(9)),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one customer may win the LINE user");
    assert_eq!(s[0].link_of_user(&user(9)).await.unwrap().unwrap().customer, winners[0]);
}

pub(super) async fn race_many_users_claim_one_customer(s: Stores) {
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = Arc::clone(&s[i % s.len()]);
        tasks.push(tokio::spawn(async move {
            store
                .link(
                    &user(200 + i as u32),
                    &cust(42),
                    LinkSource::LineLogin,
                    ConflictPolicy::Reject,
                    t0(),
                )
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                assert!(o.is_new());
                wins += 1;
            }
            Err(LinkStoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
}

macro_rules! conformance {
    ($store:ident, $factory:path) => {
        mod $store {
            conformance!(@cases $factory;
                ticket_is_single_use,
                unknown_ticket_and_wrong_kind_are_unknown,
                expired_ticket_is_rejected_and_untouched,
                mismatched_user_is_rejected_and_untouched,
                duplicate_ticket_key_is_refused,
                peek_checks_like_take_and_consumes_nothing,
                redeem_links_once,
                conflict_rejected_keeps_existing_link,
                customer_side_conflict_is_typed,
                conflict_replace_audits_displaced_links,
                relinking_same_pair_is_not_new,
                unlink_by_either_side,
                failed_link_consumes_nonce_and_stores_nothing,
                follow_status_tracks_latest_event,
                purge_keeps_live_and_recent_tickets,
                race_many_consume_one_nonce,
                race_many_link_one_user,
                race_many_users_claim_one_customer,
            );
        }
    };
    (@cases $factory:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (stores, c) = $factory(4).await;
                super::$case(stores).await;
                super::cleanup(c).await;
            }
        )*
    };
}

conformance!(memory, super::memory_stores);
#[cfg(feature = "sqlite")]
conformance!(sqlite, super::sqlite_stores);
#[cfg(feature = "postgres")]
conformance!(postgres, super::postgres_stores);

/// A terminated connection is replaced: reads, single writes and transactions work again.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_postgres_store_reconnects_after_its_connections_are_terminated() {
    use crate::pg::{at_most_one_failure, terminate, url_with_app_name};
    let (url, app) = url_with_app_name();
    let schema = format!("enishi_link_it_{}", uuid::Uuid::new_v4().simple());
    let store =
        enishi::link::PostgresLinkStore::connect(&url, &schema, "1650000000").await.unwrap();
    let policy = ConflictPolicy::Reject;
    store.link(&user(1), &cust(1), LinkSource::Manual, policy, t0()).await.unwrap();
    assert!(terminate(&app).await >= 1, "no connection of {app} to terminate");
    // A read, then a transaction (a nonce redeemed and linked), then a single-statement write.
    let u1 = user(1);
    let read = at_most_one_failure(|| store.link_of_user(&u1)).await;
    assert_eq!(read.map(|l| l.customer), Some(cust(1)));
    assert!(terminate(&app).await >= 1);
    let secret = OneTimeSecret::generate();
    let nonce = nonce_for(&cust(2), None, &secret);
    at_most_one_failure(|| store.put_ticket(&nonce)).await;
    assert!(terminate(&app).await >= 1);
    let (key, u2) = (secret.key(), user(2));
    let redeemed =
        at_most_one_failure(|| store.redeem_nonce(&key, &u2, policy, t0() + secs(1))).await;
    assert!(matches!(redeemed.outcome, LinkOutcome::Linked(_)), "{:?}", redeemed.outcome);
    assert_eq!(store.link_of_customer(&cust(2)).await.unwrap().map(|l| l.line_user), Some(user(2)));
    cleanup(Cleanup::Schema(schema)).await;
}
