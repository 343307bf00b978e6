//! Planning across channels: one batch per customer per step, one policy, one journal.

use std::sync::Arc;

use chrono::{NaiveTime, TimeDelta, TimeZone, Utc};
use enishi::campaign::{
    Batch, BatchRecipient, DeliveryJournal, DeliveryPolicy, FrequencyCap, Holdout, MemoryJournal,
    QuietHours, SqliteJournal, Transport,
};
use enishi::channel::{
    ChannelExclusion, ChannelKind, ChannelPlanner, ChannelStep, EmailContent, Purpose, Reach,
    journal_key,
};
use enishi::line::message::Message;
use enishi::{BatchId, CampaignId, CustomerId, LineUserId};

fn step(campaign: &str, name: &str, purpose: Purpose) -> ChannelStep {
    ChannelStep::new(CampaignId::new(campaign).unwrap(), name, purpose)
        .line(vec![Message::text("春のセールのお知らせ")])
        .email(EmailContent::new(
            "春のセール",
            "本日から春のセールです。\n\nhttps://shop.example/sale",
        ))
        .sms("春のセール開催中 https://shop.example/s")
}

fn audience() -> Vec<Reach> {
    (0..30)
        .map(|n| {
            let r = Reach::new(CustomerId::new(format!("C{n}")).unwrap());
            match n % 3 {
                0 => r.line(LineUserId::new(format!("U{:032x}", n + 1)).unwrap(), true),
                1 => r.email(format!("c{n}@mail.example"), true),
                _ => r.phone(format!("090{:08}", n), true),
            }
        })
        .collect()
}

#[tokio::test]
async fn one_batch_per_customer_per_step_whichever_channel() {
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::in_memory().unwrap());
    let planner = ChannelPlanner::new(Arc::clone(&journal), DeliveryPolicy::new());
    let s = step("spring", "announce", Purpose::Marketing);
    let now = Utc::now();
    let plan = planner.plan_and_enqueue(&s, &audience(), now).await.unwrap();
    assert_eq!(plan.batches.len(), 30);
    assert_eq!(
        (
            plan.count(ChannelKind::Line),
            plan.count(ChannelKind::Email),
            plan.count(ChannelKind::Sms)
        ),
        (10, 10, 10)
    );
    // The channel is recorded in the journal row.
    let records = journal.records(&s.campaign).await.unwrap();
    let emails = records.iter().filter(|r| r.batch.transport == Transport::Email).count();
    assert_eq!((records.len(), emails), (30, 10));
    let email = records.iter().find(|r| r.batch.transport == Transport::Email).unwrap();
    assert_eq!(email.batch.messages.len(), 2, "subject and text");

    // Planning again, even after the customers' reach changed (everybody now only has an
    // e-mail), writes nothing: one message per customer per step whichever channel.
    let changed: Vec<Reach> = audience()
        .into_iter()
        .map(|r| Reach::new(r.customer.clone()).email("x@mail.example", true))
        .collect();
    let again = planner.plan_and_enqueue(&s, &changed, now).await.unwrap();
    assert!(again.batches.is_empty());
    assert!(again.excluded.iter().all(|(_, e)| *e == ChannelExclusion::AlreadyPlanned));
    assert_eq!(journal.records(&s.campaign).await.unwrap().len(), 30);

    // A second planner racing the first: every ID is in the journal once.
    let racing = planner.plan(&s, &changed, now).await.unwrap();
    assert!(racing.batches.is_empty());
    // The next step is a new message.
    let next = planner
        .plan_and_enqueue(&step("spring", "reminder", Purpose::Marketing), &changed, now)
        .await
        .unwrap();
    assert_eq!(next.batches.len(), 30);
    assert_eq!(next.count(ChannelKind::Email), 30);
}

#[tokio::test]
async fn frequency_cap_counts_every_channel_and_holdout_gets_nothing() {
    let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    let now = Utc::now();
    let aud = audience();
    // Customer C1 (e-mail) and C2 (SMS) already got a message from another campaign, on
    // e-mail / SMS: the cap of one per week counts it.
    let earlier: Vec<Batch> = [1usize, 2]
        .iter()
        .map(|&n| {
            Batch::new(
                BatchId::new(format!("other/x/C{n}/1")).unwrap(),
                CampaignId::new("other").unwrap(),
                if n == 1 { Transport::Email } else { Transport::Sms },
                vec![BatchRecipient {
                    customer: aud[n].customer.clone(),
                    line_user: journal_key(&aud[n]),
                }],
                vec![Message::text("s"), Message::text("t")],
                now - TimeDelta::days(1),
            )
        })
        .collect();
    journal.enqueue(&earlier).await.unwrap();
    let holdout = Holdout::percent("h", 20);
    let policy = DeliveryPolicy::new()
        .with_frequency_cap(FrequencyCap::new(1, TimeDelta::days(7)))
        .with_holdout(holdout.clone());
    let plan = ChannelPlanner::new(Arc::clone(&journal), policy)
        .plan(&step("summer", "a", Purpose::Marketing), &aud, now)
        .await
        .unwrap();
    for (c, why) in &plan.excluded {
        match why {
            ChannelExclusion::Holdout => assert!(holdout.contains(c)),
            ChannelExclusion::FrequencyCapped => {
                assert!(["C1", "C2"].contains(&c.as_str()), "{c}");
            }
            other => panic!("{c}: {other:?}"),
        }
    }
    let capped =
        plan.excluded.iter().filter(|(_, w)| *w == ChannelExclusion::FrequencyCapped).count();
    let held = aud.iter().filter(|r| holdout.contains(&r.customer)).count();
    assert!(held > 0, "the salt puts someone in the holdout");
    let capped_not_held =
        ["C1", "C2"].iter().filter(|c| !holdout.contains(&CustomerId::new(**c).unwrap())).count();
    assert_eq!(capped, capped_not_held);
    assert_eq!(plan.batches.len(), 30 - held - capped);
    assert!(plan.routed.iter().all(|(c, _)| !holdout.contains(c)));
}

#[tokio::test]
async fn quiet_hours_defer_every_channel() {
    let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    let quiet = QuietHours::new(
        NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
    );
    let policy = DeliveryPolicy::new().with_quiet_hours(quiet);
    // 23:30 Japan time.
    let now = Utc.with_ymd_and_hms(2026, 4, 1, 14, 30, 0).unwrap();
    let plan = ChannelPlanner::new(journal, policy)
        .plan(&step("night", "a", Purpose::Marketing), &audience(), now)
        .await
        .unwrap();
    let kinds: std::collections::HashSet<Transport> =
        plan.batches.iter().map(|b| b.transport).collect();
    assert_eq!(kinds.len(), 3);
    for b in &plan.batches {
        assert_eq!(b.not_before, quiet.defer(now), "{}", b.transport.as_str());
        assert!(b.not_before > now);
    }
}

#[tokio::test]
async fn the_ordinary_dispatcher_refuses_channel_batches_with_a_pointer() {
    let line = enishi::testkit::FakeLine::start().await.unwrap();
    let client = enishi::line::LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .build()
        .unwrap();
    let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
    let s = step("mixed", "a", Purpose::Marketing);
    let plan = ChannelPlanner::new(Arc::clone(&journal), DeliveryPolicy::new())
        .plan_and_enqueue(&s, &audience()[1..2], Utc::now())
        .await
        .unwrap();
    assert_eq!(plan.count(ChannelKind::Email), 1);
    let d = enishi::campaign::Dispatcher::builder(client, Arc::clone(&journal)).build().unwrap();
    d.run(&s.campaign).await.unwrap();
    let records = journal.records(&s.campaign).await.unwrap();
    let text = format!("{:?}", records[0].outcome);
    assert!(text.contains("ChannelDispatcher"), "{text}");
    assert_eq!(line.delivery_count(), 0);
}
