//! The conformance suite every [`LinkStore`] and every [`IncentiveLedger`] runs (feature
//! `testkit`).
//!
//! Each check takes handles onto one new, empty store and panics with a message saying what
//! the store got wrong. [`run_all`] runs them all, each on a store from a factory, so a host
//! checks its own store with one call:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::link::{LinkStore, MemoryLinkStore};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::link::conformance::run_all(|| async {
//!     // Two handles onto one store: the races cross them.
//!     let store = MemoryLinkStore::new();
//!     vec![Arc::new(store.clone()) as Arc<dyn LinkStore>, Arc::new(store)]
//! })
//! .await;
//! # }
//! ```
//!
//! [`run_all_incentives`] does the same for an [`IncentiveLedger`] (every enishi link store is
//! one); its checks are the `incentive_*` functions.
//!
//! The checks are public one by one too, so a test suite can report each as its own test
//! (the crate's `tests/it/link/conformance.rs` runs every one against the memory, SQLite and
//! PostgreSQL stores). The checks that race spawn tokio tasks: run them on a multi-threaded
//! runtime to make the races real.
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::{
    AuditAction, Claim, ConflictPolicy, GrantState, IncentiveGrant, IncentiveLedger, LinkOutcome,
    LinkSource, LinkStore, LinkStoreError, OneTimeSecret, RejectReason, Ticket, TicketKind,
};
use crate::conformance::Handles;
use crate::{CustomerId, LineUserId};

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

/// A ticket is taken once: the second take, through another handle, is `Replayed`.
pub async fn ticket_is_single_use(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let t = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(1)).await.unwrap();
    assert_eq!(t.customer, Some(cust(1)));
    assert_eq!(t.kind, TicketKind::Nonce);
    let again = s[1].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(2)).await;
    assert_eq!(reason(again.unwrap_err()), RejectReason::Replayed);
}

/// An unknown key, or a ticket presented as another kind, is `Unknown` and consumes nothing.
pub async fn unknown_ticket_and_wrong_kind_are_unknown(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// A ticket presented at or after its expiry is `Expired` and stays untouched (still valid in time).
pub async fn expired_ticket_is_rejected_and_untouched(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let e = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(600)).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Expired);
    // Nothing was written: presented in time (the clock is a parameter), it is still valid.
    s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0() + secs(599)).await.unwrap();
}

/// A nonce bound to one LINE user and presented by another is `Mismatched`, links nothing and
/// stays redeemable by its user.
pub async fn mismatched_user_is_rejected_and_untouched(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), Some(&user(1)), &secret)).await.unwrap();
    let e = s[0].redeem_nonce(&secret.key(), &user(2), ConflictPolicy::Reject, t0()).await;
    assert_eq!(reason(e.unwrap_err()), RejectReason::Mismatched);
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
    assert_eq!(s[0].link_of_customer(&cust(1)).await.unwrap(), None);
    let r = s[0].redeem_nonce(&secret.key(), &user(1), ConflictPolicy::Reject, t0()).await.unwrap();
    assert!(matches!(r.outcome, LinkOutcome::Linked(_)));
}

/// `peek_ticket` answers as `take_ticket` would (unknown, expired, mismatched, wrong kind,
/// replayed) and consumes nothing.
pub async fn peek_checks_like_take_and_consumes_nothing(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// A second ticket with a key already stored is `DuplicateTicket`; the first stays.
pub async fn duplicate_ticket_key_is_refused(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
    let secret = OneTimeSecret::generate();
    s[0].put_ticket(&nonce_for(&cust(1), None, &secret)).await.unwrap();
    let e = s[1].put_ticket(&nonce_for(&cust(2), None, &secret)).await.unwrap_err();
    assert!(matches!(e, LinkStoreError::DuplicateTicket(TicketKind::Nonce)), "{e:?}");
    let t = s[0].take_ticket(TicketKind::Nonce, &secret.key(), None, t0()).await.unwrap();
    assert_eq!(t.customer, Some(cust(1)));
}

/// Redeeming a nonce links its customer to the LINE user once, with an audit record; a
/// redelivered webhook presenting it again is `Replayed`.
pub async fn redeem_links_once(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Under `ConflictPolicy::Reject`, a LINE user linked elsewhere keeps the link, the conflict is
/// typed and audited, and the nonce is used up.
pub async fn conflict_rejected_keeps_existing_link(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// A customer linked to another LINE user is a conflict naming that user.
pub async fn customer_side_conflict_is_typed(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
    s[0].link(&user(1), &cust(1), LinkSource::Manual, ConflictPolicy::Reject, t0()).await.unwrap();
    let e = s[0]
        .link(&user(2), &cust(1), LinkSource::LineLogin, ConflictPolicy::Reject, t0())
        .await
        .unwrap_err();
    let LinkStoreError::Conflict(c) = e else { panic!("expected a conflict, got {e:?}") };
    assert_eq!((c.user_linked_to, c.customer_linked_to), (None, Some(user(1))));
    assert_eq!(s[0].link_of_user(&user(2)).await.unwrap(), None);
}

/// Under `ConflictPolicy::Replace`, both displaced links are removed and audited before the new
/// link.
pub async fn conflict_replace_audits_displaced_links(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Linking a pair that is already linked is not new and keeps the original link (and its source).
pub async fn relinking_same_pair_is_not_new(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Unlinking by LINE user or by customer removes the link, is audited, and frees both sides.
pub async fn unlink_by_either_side(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// A failed account link consumes its nonce, links nothing and is audited.
pub async fn failed_link_consumes_nonce_and_stores_nothing(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Follow status follows the latest event by time: a late older event changes nothing.
pub async fn follow_status_tracks_latest_event(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Purging deletes expired tickets (after the grace period) and keeps live ones.
pub async fn purge_keeps_live_and_recent_tickets(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Tasks per race.
const RACERS: usize = 24;

/// Many tasks on every handle redeem one nonce at once: exactly one wins, the rest are `Replayed`.
pub async fn race_many_consume_one_nonce(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Many nonces for different customers race for one LINE user: exactly one customer wins.
pub async fn race_many_link_one_user(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Many LINE users race to link one customer: exactly one wins.
pub async fn race_many_users_claim_one_customer(stores: &[Arc<dyn LinkStore>]) {
    let s = Handles::new(stores);
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

/// Runs every check, each on a new, empty store from `new_store`.
///
/// `new_store` returns one or more handles onto one new, empty store (one per connection or
/// pool, as in separate processes, to make the races cross them; clones of one `Arc` are
/// fine too). The checks use fixed IDs, so each needs its own store: a new schema, file or
/// database each time.
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn LinkStore>>> + Send,
{
    ticket_is_single_use(&new_store().await).await;
    unknown_ticket_and_wrong_kind_are_unknown(&new_store().await).await;
    expired_ticket_is_rejected_and_untouched(&new_store().await).await;
    mismatched_user_is_rejected_and_untouched(&new_store().await).await;
    peek_checks_like_take_and_consumes_nothing(&new_store().await).await;
    duplicate_ticket_key_is_refused(&new_store().await).await;
    redeem_links_once(&new_store().await).await;
    conflict_rejected_keeps_existing_link(&new_store().await).await;
    customer_side_conflict_is_typed(&new_store().await).await;
    conflict_replace_audits_displaced_links(&new_store().await).await;
    relinking_same_pair_is_not_new(&new_store().await).await;
    unlink_by_either_side(&new_store().await).await;
    failed_link_consumes_nonce_and_stores_nothing(&new_store().await).await;
    follow_status_tracks_latest_event(&new_store().await).await;
    purge_keeps_live_and_recent_tickets(&new_store().await).await;
    race_many_consume_one_nonce(&new_store().await).await;
    race_many_link_one_user(&new_store().await).await;
    race_many_users_claim_one_customer(&new_store().await).await;
}

// ---- the incentive ledger ----------------------------------------------------------------

/// The incentive most checks grant.
const INCENTIVE: &str = "link-2026-12";

fn claimed(c: Claim) -> IncentiveGrant {
    match c {
        Claim::New(g) => g,
        other => panic!("expected a new claim, got {other:?}"),
    }
}

fn no_claim_in_flight(e: LinkStoreError) -> Option<GrantState> {
    match e {
        LinkStoreError::NoClaimInFlight { settled, .. } => settled,
        other => panic!("expected NoClaimInFlight, got {other:?}"),
    }
}

/// The first claim is `New` (claimed at `now`, unsettled); once settled, the grant reads back
/// as settled and every later claim, through any handle, is `Settled` with that grant.
pub async fn incentive_claim_is_new_then_settled(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    let g = claimed(s[0].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    assert_eq!((g.incentive.as_str(), &g.customer), (INCENTIVE, &cust(1)));
    assert_eq!(
        (g.state, g.claimed_at, g.settled_at, g.detail),
        (GrantState::Claimed, t0(), None, None)
    );
    assert_eq!(
        s[1].grant_of(INCENTIVE, &cust(1)).await.unwrap().unwrap().state,
        GrantState::Claimed
    );
    let detail = "100 points / クーポン ABC-123";
    let settled = s[1]
        .settle(INCENTIVE, &cust(1), GrantState::Granted, Some(detail), t0() + secs(5))
        .await
        .unwrap();
    assert_eq!(settled.state, GrantState::Granted);
    assert_eq!(settled.claimed_at, t0());
    assert_eq!(settled.settled_at, Some(t0() + secs(5)));
    assert_eq!(settled.detail.as_deref(), Some(detail));
    assert_eq!(s[0].grant_of(INCENTIVE, &cust(1)).await.unwrap(), Some(settled.clone()));
    for i in 0..s.len().max(2) {
        let again = s[i].claim(INCENTIVE, &cust(1), t0() + secs(9)).await.unwrap();
        assert_eq!(again, Claim::Settled(settled.clone()), "handle {i}");
    }
    // A failed grant is settled too: not retried by a later claim.
    claimed(s[0].claim(INCENTIVE, &cust(2), t0()).await.unwrap());
    let failed = s[0]
        .settle(INCENTIVE, &cust(2), GrantState::Failed, Some("not eligible"), t0() + secs(1))
        .await
        .unwrap();
    assert_eq!(
        s[1].claim(INCENTIVE, &cust(2), t0() + secs(2)).await.unwrap(),
        Claim::Settled(failed)
    );
}

/// A second claim while the first is unsettled is `InFlight` with the first claim's record;
/// nothing changes.
pub async fn incentive_claim_while_unsettled_is_in_flight(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    let first = claimed(s[0].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    for i in 0..s.len().max(2) {
        let again = s[i].claim(INCENTIVE, &cust(1), t0() + secs(60)).await.unwrap();
        assert_eq!(again, Claim::InFlight(first.clone()), "handle {i}");
        assert!(!again.is_new());
    }
    assert_eq!(s[1].grant_of(INCENTIVE, &cust(1)).await.unwrap(), Some(first));
}

/// A released claim is gone: the next claim is `New` again (with its own time). Releasing
/// what is not claimed does nothing.
pub async fn incentive_release_then_claim_is_new(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    claimed(s[0].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    s[1].release(INCENTIVE, &cust(1)).await.unwrap();
    assert_eq!(s[0].grant_of(INCENTIVE, &cust(1)).await.unwrap(), None);
    s[1].release(INCENTIVE, &cust(1)).await.unwrap();
    s[1].release(INCENTIVE, &cust(99)).await.unwrap();
    let again = claimed(s[1].claim(INCENTIVE, &cust(1), t0() + secs(30)).await.unwrap());
    assert_eq!(again.claimed_at, t0() + secs(30));
    s[0].settle(INCENTIVE, &cust(1), GrantState::Granted, None, t0() + secs(31)).await.unwrap();
}

/// Grants of different incentives, or to different customers, do not affect each other.
pub async fn incentive_grants_are_independent(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    claimed(s[0].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    claimed(s[1].claim("link-2027-01", &cust(1), t0()).await.unwrap());
    claimed(s[0].claim(INCENTIVE, &cust(2), t0()).await.unwrap());
    // A customer ID that is a prefix of another's, an incentive that is a prefix of another's.
    claimed(s[0].claim(INCENTIVE, &cust(11), t0()).await.unwrap());
    claimed(s[0].claim("link-2026-1", &cust(1), t0()).await.unwrap());
    s[1].settle(INCENTIVE, &cust(1), GrantState::Granted, Some("100 points"), t0()).await.unwrap();
    s[1].release(INCENTIVE, &cust(2)).await.unwrap();
    let state = |i: &'static str, c: u32| {
        let ledger = Arc::clone(&s[0]);
        async move { ledger.grant_of(i, &cust(c)).await.unwrap().map(|g| g.state) }
    };
    assert_eq!(state(INCENTIVE, 1).await, Some(GrantState::Granted));
    assert_eq!(state("link-2027-01", 1).await, Some(GrantState::Claimed));
    assert_eq!(state(INCENTIVE, 2).await, None);
    assert_eq!(state(INCENTIVE, 11).await, Some(GrantState::Claimed));
    assert_eq!(state("link-2026-1", 1).await, Some(GrantState::Claimed));
    assert_eq!(state("link-2027-01", 2).await, None);
}

/// `settle` needs an unsettled claim: never claimed, or settled already, is
/// `NoClaimInFlight` and changes nothing; a settled grant cannot be released. Invalid
/// arguments are `InvalidConfig` and write nothing.
pub async fn incentive_settle_needs_an_unsettled_claim(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    let granted = GrantState::Granted;
    let e = s[0].settle(INCENTIVE, &cust(1), granted, None, t0()).await.unwrap_err();
    assert_eq!(no_claim_in_flight(e), None);
    assert_eq!(s[0].grant_of(INCENTIVE, &cust(1)).await.unwrap(), None, "settle made a record");
    claimed(s[0].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    // Invalid arguments: nothing is written, the claim stays unsettled.
    let invalid =
        |e: LinkStoreError| assert!(matches!(e, LinkStoreError::InvalidConfig { .. }), "{e:?}");
    invalid(s[0].settle(INCENTIVE, &cust(1), GrantState::Claimed, None, t0()).await.unwrap_err());
    invalid(s[0].settle(INCENTIVE, &cust(1), granted, Some("a\0b"), t0()).await.unwrap_err());
    for bad in ["", "bad\nid", &"x".repeat(129)] {
        invalid(s[0].claim(bad, &cust(1), t0()).await.unwrap_err());
        invalid(s[0].settle(bad, &cust(1), granted, None, t0()).await.unwrap_err());
        invalid(s[0].release(bad, &cust(1)).await.unwrap_err());
        invalid(s[0].grant_of(bad, &cust(1)).await.unwrap_err());
    }
    assert_eq!(
        s[1].grant_of(INCENTIVE, &cust(1)).await.unwrap().unwrap().state,
        GrantState::Claimed
    );
    let done = s[1].settle(INCENTIVE, &cust(1), granted, Some("100 points"), t0()).await.unwrap();
    let e = s[0].settle(INCENTIVE, &cust(1), GrantState::Failed, Some("x"), t0()).await;
    assert_eq!(no_claim_in_flight(e.unwrap_err()), Some(GrantState::Granted));
    let e = s[0].release(INCENTIVE, &cust(1)).await.unwrap_err();
    assert_eq!(no_claim_in_flight(e), Some(GrantState::Granted));
    assert_eq!(s[0].grant_of(INCENTIVE, &cust(1)).await.unwrap(), Some(done));
}

/// `unsettled(older_than)` lists the claims made strictly before `older_than` and not
/// settled, oldest first: not newer claims, settled grants or released claims.
pub async fn incentive_unsettled_lists_only_old_unsettled_claims(
    ledgers: &[Arc<dyn IncentiveLedger>],
) {
    let s = Handles::new(ledgers);
    assert!(s[0].unsettled(t0() + secs(3600)).await.unwrap().is_empty());
    let oldest = claimed(s[0].claim("link-a", &cust(5), t0() - secs(10)).await.unwrap());
    let old = claimed(s[1].claim(INCENTIVE, &cust(1), t0()).await.unwrap());
    let recent = claimed(s[0].claim(INCENTIVE, &cust(2), t0() + secs(10)).await.unwrap());
    claimed(s[0].claim(INCENTIVE, &cust(3), t0() - secs(20)).await.unwrap());
    s[0].settle(INCENTIVE, &cust(3), GrantState::Granted, None, t0()).await.unwrap();
    claimed(s[0].claim(INCENTIVE, &cust(4), t0() - secs(20)).await.unwrap());
    s[0].settle(INCENTIVE, &cust(4), GrantState::Failed, Some("refused"), t0()).await.unwrap();
    claimed(s[0].claim(INCENTIVE, &cust(6), t0() - secs(5)).await.unwrap());
    s[1].release(INCENTIVE, &cust(6)).await.unwrap();
    let listed = s[1].unsettled(t0() + secs(5)).await.unwrap();
    assert_eq!(listed, vec![oldest.clone(), old.clone()]);
    // Strictly older: a claim made at `older_than` is not listed yet.
    assert_eq!(s[1].unsettled(t0()).await.unwrap(), vec![oldest.clone()]);
    assert_eq!(s[0].unsettled(t0() + secs(60)).await.unwrap(), vec![oldest, old, recent]);
}

/// Many tasks on every handle claim one grant at once: exactly one gets `New`, the others
/// `InFlight`; then many settle it at once: exactly one settles it.
pub async fn incentive_race_many_claim_one(ledgers: &[Arc<dyn IncentiveLedger>]) {
    let s = Handles::new(ledgers);
    for round in 0..3_u32 {
        let incentive = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let ledger = Arc::clone(&s[i]);
            let incentive = incentive.clone();
            tasks.push(tokio::spawn(async move {
                ledger.claim(&incentive, &cust(7), t0() + secs(i as i64)).await
            }));
        }
        let mut new = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Claim::New(_) => new += 1,
                Claim::InFlight(g) => assert_eq!(g.state, GrantState::Claimed),
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(new, 1, "round {round}: exactly one claim may be new");
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let ledger = Arc::clone(&s[i]);
            let incentive = incentive.clone();
            tasks.push(tokio::spawn(async move {
                let detail = format!("settled by {i}");
                ledger.settle(&incentive, &cust(7), GrantState::Granted, Some(&detail), t0()).await
            }));
        }
        let mut settled = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(g) => settled.push(g),
                Err(e) => assert_eq!(no_claim_in_flight(e), Some(GrantState::Granted)),
            }
        }
        assert_eq!(settled.len(), 1, "round {round}: exactly one settle may win");
        assert_eq!(s[0].grant_of(&incentive, &cust(7)).await.unwrap(), settled.pop());
    }
}

/// Runs every incentive-ledger check, each on a new, empty ledger from `new_ledger` (one or
/// more handles onto one store, as for [`run_all`]).
pub async fn run_all_incentives<F, Fut>(mut new_ledger: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn IncentiveLedger>>> + Send,
{
    incentive_claim_is_new_then_settled(&new_ledger().await).await;
    incentive_claim_while_unsettled_is_in_flight(&new_ledger().await).await;
    incentive_release_then_claim_is_new(&new_ledger().await).await;
    incentive_grants_are_independent(&new_ledger().await).await;
    incentive_settle_needs_an_unsettled_claim(&new_ledger().await).await;
    incentive_unsettled_lists_only_old_unsettled_claims(&new_ledger().await).await;
    incentive_race_many_claim_one(&new_ledger().await).await;
}
