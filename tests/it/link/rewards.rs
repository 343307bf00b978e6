//! Link incentives through the linker: granted once per customer on the first link, told in
//! the reply, closed after the deadline, a refusal recorded and never retried; the failed-link
//! push; unlinking with a one-time ticket.

use std::sync::Arc;

use chrono::TimeDelta;
use enishi::commerce::{Capabilities, Customer, InMemoryBackend};
use enishi::link::{
    GrantState, IncentiveLedger, IncentiveOutcome, LinkEventOutcome, LinkIncentive, LinkStore,
    Reward,
};

use super::flow::{Setup, account_link_event, cust, now, setup, uid};
use super::outcomes::{link_event, nonce_for, replies_to};

fn shop(points: bool) -> Arc<InMemoryBackend> {
    let mut caps = Capabilities::all();
    caps.points = points;
    let shop = InMemoryBackend::new().with_capabilities(caps);
    for c in 1..=3 {
        shop.upsert_customer(Customer::new(cust(c), now() - TimeDelta::days(30)));
    }
    Arc::new(shop)
}

async fn rewarded(incentive: LinkIncentive, points: bool) -> (Setup, Arc<InMemoryBackend>) {
    let backend = shop(points);
    let (b2, ledger) = (backend.clone(), Arc::new(enishi::link::MemoryLinkStore::new()));
    let s = setup(move |b| b.incentive(incentive, ledger, b2)).await;
    (s, backend)
}

async fn link(s: &Setup, user: u64, customer: u32) -> Option<IncentiveOutcome> {
    let nonce = nonce_for(s, user, customer).await;
    match s.linker.handle_event(&link_event(s, user, &nonce, false), now()).await.unwrap() {
        LinkEventOutcome::Linked { incentive, .. } => incentive,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn link_incentive_points_are_granted_once_per_customer_and_told_in_the_reply() {
    let (s, shop) = rewarded(LinkIncentive::points("link-2026", 100), true).await;
    let outcome = link(&s, 1, 1).await;
    assert_eq!(outcome, Some(IncentiveOutcome::Granted(Reward::Points { points: 100 })));
    let told = replies_to(&s, 1);
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[1].contains("連携特典として100ポイントを付与しました"), "{told:?}");
    assert_eq!(shop.points_granted().len(), 1);

    // Unlinked and linked again: the customer had it already.
    s.linker.unlink_user(&uid(1), false, now()).await.unwrap();
    assert_eq!(link(&s, 1, 1).await, Some(IncentiveOutcome::AlreadyGranted));
    // Another LINE user linking the same customer later: still once.
    s.linker.unlink_user(&uid(1), false, now()).await.unwrap();
    assert_eq!(link(&s, 2, 1).await, Some(IncentiveOutcome::AlreadyGranted));
    assert_eq!(shop.points_granted().len(), 1);
    assert_eq!(replies_to(&s, 2).len(), 1, "no incentive message the second time");

    // A second customer gets their own.
    assert!(matches!(link(&s, 3, 2).await, Some(IncentiveOutcome::Granted(_))));
    assert_eq!(shop.points_granted().len(), 2);
}

#[tokio::test]
async fn link_incentive_after_its_deadline_is_closed() {
    let incentive = LinkIncentive::points("early", 100).until(now() - TimeDelta::seconds(1));
    let (s, shop) = rewarded(incentive, true).await;
    assert_eq!(link(&s, 1, 1).await, Some(IncentiveOutcome::Closed));
    assert!(shop.points_granted().is_empty());
    assert_eq!(replies_to(&s, 1).len(), 1);
}

#[tokio::test]
async fn link_incentive_refused_by_the_shop_is_recorded_and_never_retried() {
    let (s, shop) = rewarded(LinkIncentive::points("link-2026", 100), false).await;
    let outcome = link(&s, 1, 1).await;
    assert!(
        matches!(outcome, Some(IncentiveOutcome::Failed(ref why)) if why.contains("grant_points")),
        "{outcome:?}"
    );
    assert_eq!(replies_to(&s, 1).len(), 1, "no incentive is announced");
    s.linker.unlink_user(&uid(1), false, now()).await.unwrap();
    assert_eq!(
        link(&s, 1, 1).await,
        Some(IncentiveOutcome::AlreadyGranted),
        "settled: not retried"
    );
    assert!(shop.points_granted().is_empty());
}

#[tokio::test]
async fn link_incentive_grant_is_recorded_in_the_ledger() {
    let backend = shop(true);
    let ledger = Arc::new(enishi::link::MemoryLinkStore::new());
    let (b2, l2) = (backend.clone(), ledger.clone());
    let coupon = LinkIncentive::coupon("c-2026", "送料無料クーポン", "LINE-FREE");
    let s = setup(move |b| b.incentive(coupon, l2, b2)).await;
    assert!(matches!(link(&s, 1, 1).await, Some(IncentiveOutcome::Granted(Reward::Coupon { .. }))));
    let told = replies_to(&s, 1);
    assert!(told[1].contains("送料無料クーポン") && told[1].contains("LINE-FREE"), "{told:?}");
    let grant = ledger.grant_of("c-2026", &cust(1)).await.unwrap().unwrap();
    assert_eq!((grant.state, grant.detail.as_deref()), (GrantState::Granted, Some("LINE-FREE")));
    assert!(backend.points_granted().is_empty(), "a coupon asks nothing of the shop");
}

#[tokio::test]
async fn link_failed_link_is_pushed_once_to_the_user_it_was_started_for() {
    let s = setup(|b| b).await;
    let nonce = nonce_for(&s, 1, 1).await;
    // LINE: someone else opened the dialog; no source, no reply token.
    let failed = account_link_event(None, "failed", &nonce, false);
    s.linker.handle_event(&failed, now()).await.unwrap();
    let pushed = replies_to(&s, 1);
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert!(pushed[0].contains("連携を完了できませんでした"), "{pushed:?}");
    // Redelivered: the nonce is spent, nothing more is said.
    let _ = s.linker.handle_event(&account_link_event(None, "failed", &nonce, true), now()).await;
    assert_eq!(replies_to(&s, 1).len(), 1);
}

#[tokio::test]
async fn link_unlink_ticket_unlinks_once_and_tells_the_user() {
    let s = setup(|b| b.unlink_page("https://shop.example/unlink")).await;
    s.store
        .link(&uid(1), &cust(1), enishi::link::LinkSource::Manual, Default::default(), now())
        .await
        .unwrap();
    let url = s.linker.start_unlink(&uid(1), now()).await.unwrap();
    let ticket = url.query_pairs().find(|(k, _)| k == "ticket").unwrap().1.into_owned();
    assert!(url.as_str().starts_with("https://shop.example/unlink?ticket="));
    assert_eq!(s.linker.unlink_ticket_user(&ticket, now()).await.unwrap(), uid(1));
    let done = s.linker.finish_unlink(&ticket, now()).await.unwrap();
    assert_eq!(done.removed.map(|l| l.customer), Some(cust(1)));
    assert!(done.told);
    assert_eq!(s.store.link_of_user(&uid(1)).await.unwrap(), None);
    let again = s.linker.finish_unlink(&ticket, now()).await;
    assert!(again.unwrap_err().reject_reason().is_some(), "the ticket is single use");
    let told = replies_to(&s, 1);
    assert_eq!(told.iter().filter(|t| t.contains("連携を解除しました")).count(), 1, "{told:?}");
    // Tickets expire like link tokens.
    let url = s.linker.start_unlink(&uid(1), now()).await.unwrap();
    let ticket = url.query_pairs().find(|(k, _)| k == "ticket").unwrap().1.into_owned();
    let late = s.linker.finish_unlink(&ticket, now() + TimeDelta::hours(1)).await;
    assert!(late.unwrap_err().reject_reason().is_some());
}
