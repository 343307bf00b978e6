//! `Enishi::tick` and `Enishi::run`: scenarios fall due on the app's clock; the service loop
//! syncs, ticks, plans scheduled campaigns and dispatches until shutdown.

use std::time::Duration;

use chrono::{SubsecRound as _, TimeDelta};
use enishi::app::{RunOptions, ScheduledCampaign};
use enishi::campaign::scenario::ScenarioSet;
use enishi::campaign::{Campaign, MessageTemplate};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;

use super::harness::{order, shop, user};
use super::sync::ManualClock;

fn thanks() -> ScenarioSet {
    ScenarioSet::from_json(
        r#"{"scenario": [{"name": "thanks", "trigger": {"type": "order_placed"},
            "steps": [{"name": "h1", "delay": "1h", "message": "{{ name }}さん、ご注文ありがとうございます"}]}]}"#,
    )
    .unwrap()
}

#[tokio::test]
async fn app_tick_plans_a_step_once_when_it_falls_due() {
    let shop = shop(3).await;
    // The app's time runs three hours behind: the shop's records are never "from the future".
    let t0 = (shop.now - TimeDelta::hours(3)).trunc_subsecs(0);
    let clock = ManualClock::at(t0);
    let app = shop
        .builder(Storage::in_memory())
        .scenarios(thanks())
        .clock(clock.clone())
        .build()
        .unwrap();
    app.sync().await.unwrap();
    assert_eq!(app.tick().await.unwrap().planned, 0, "orders before the app started are history");

    shop.ecforce.insert_orders([order("o-live", 1, t0 + TimeDelta::minutes(10))]);
    clock.advance(TimeDelta::minutes(15));
    app.sync().await.unwrap();
    let early = app.tick().await.unwrap();
    assert_eq!(early.planned, 0);
    assert_eq!(early.next_wake, Some(t0 + TimeDelta::minutes(70)));

    clock.advance(TimeDelta::minutes(60));
    let due = app.tick().await.unwrap();
    assert_eq!((due.planned, due.enqueued), (1, 1));
    assert_eq!(app.tick().await.unwrap().planned, 0, "decided once");
    assert_eq!(app.dispatch_due().await.unwrap(), 1);
    let got = shop.line.messages_for(user(1).as_str());
    assert_eq!(got[0]["text"], "顧客1さん、ご注文ありがとうございます");
}

#[tokio::test]
async fn app_tick_after_a_restart_plans_nothing_twice() {
    let shop = shop(3).await;
    let t0 = (shop.now - TimeDelta::hours(3)).trunc_subsecs(0);
    let clock = ManualClock::at(t0);
    let storage = Storage::in_memory();
    let build =
        || shop.builder(storage.clone()).scenarios(thanks()).clock(clock.clone()).build().unwrap();
    let app = build();
    app.sync().await.unwrap();
    shop.ecforce.insert_orders([order("o-live", 1, t0 + TimeDelta::minutes(1))]);
    clock.advance(TimeDelta::minutes(2));
    app.sync().await.unwrap();
    clock.advance(TimeDelta::hours(2));
    assert_eq!(app.tick().await.unwrap().enqueued, 1);
    // A new process on the same storage (same clock) rebuilds the state from it.
    let restarted = build();
    restarted.sync().await.unwrap();
    let tick = restarted.tick().await.unwrap();
    assert_eq!(tick.enqueued, 0, "{tick:?}");
}

#[tokio::test]
async fn app_run_syncs_plans_the_scheduled_campaign_sends_and_stops_cleanly() {
    let shop = shop(6).await;
    let storage = Storage::in_memory();
    let app = shop.builder(storage.clone()).build().unwrap();
    let campaign =
        Campaign::new("scheduled".parse().unwrap(), [MessageTemplate::text("お知らせ").unwrap()]);
    let options = RunOptions::new()
        .sync_interval(Duration::from_millis(20))
        .tick_interval(Duration::from_millis(5))
        .dispatch_interval(Duration::from_millis(5))
        .workers(2)
        .campaign(ScheduledCampaign::new(
            campaign,
            SegmentDefinition::parse("line linked").unwrap(),
            shop.now - TimeDelta::minutes(1),
        ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run(options, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    // Event-driven: wait until the three linked customers got it, however long that takes.
    while [1, 3, 5].iter().any(|i| shop.line.messages_for(user(*i).as_str()).is_empty()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_tx.send(()).unwrap();
    let report = runner.await.unwrap().unwrap();
    assert_eq!(report.campaigns_planned, 1);
    assert!(report.syncs >= 1 && report.batches_sent >= 1, "{report:?}");
    let counts = storage.journal().counts(&"scheduled".parse().unwrap()).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 0), "nothing left in flight: {counts:?}");
    assert!(shop.line.duplicate_deliveries().is_empty());
}
