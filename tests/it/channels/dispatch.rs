//! A mixed audience through every channel with a crash mid-way: exactly one message each, on
//! the right channel, proved from the providers' own records.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use enishi::campaign::{BatchOutcome, BatchStatus, DeliveryPolicy, FailureKind};
use enishi::channel::{
    ChannelExclusion, ChannelKind, ChannelPlanner, ChannelStep, EmailContent, OptOutStore, Purpose,
    Reach,
};
use enishi::line::message::Message;
use enishi::testkit::Endpoint;
use enishi::{CampaignId, CustomerId};

use super::harness::{Kind, Rig, customer, email_of, kind, mixed_audience, rig};

fn steps(campaign: &CampaignId) -> (ChannelStep, ChannelStep) {
    let sale = ChannelStep::new(campaign.clone(), "sale", Purpose::Marketing)
        .line(vec![Message::text("春のセールが始まりました")])
        .email(EmailContent::new(
            "春のセール",
            "春のセールが始まりました。\n\nhttps://shop.example/sale",
        ))
        .sms("春のセール開催中 https://shop.example/s");
    let notice = ChannelStep::new(campaign.clone(), "notice", Purpose::Transactional)
        .line(vec![Message::text("ポイントの有効期限が近づいています")])
        .email(EmailContent::new("ポイント期限のお知らせ", "ポイントの有効期限が近づいています。"))
        .sms("ポイントの有効期限が近づいています");
    (sale, notice)
}

/// Which customer each provider record belongs to, from the providers' records only.
fn received(rig: &Rig, audience: &[Reach]) -> HashMap<(CustomerId, ChannelKind), usize> {
    let mut by_user = HashMap::new();
    let mut by_hash = HashMap::new();
    let mut by_email = HashMap::new();
    let mut by_phone = HashMap::new();
    for r in audience {
        if let Some(u) = &r.line_user {
            by_user.insert(u.as_str().to_owned(), r.customer.clone());
        }
        if let Some(p) =
            r.phone.as_deref().and_then(|p| enishi::channel::PhoneNumber::parse_jp(p).ok())
        {
            by_hash.insert(p.hashed(), r.customer.clone());
            by_phone.insert(p.as_str().to_owned(), r.customer.clone());
        }
        if let Some(e) = &r.email {
            by_email.insert(e.clone(), r.customer.clone());
        }
    }
    let mut out: HashMap<(CustomerId, ChannelKind), usize> = HashMap::new();
    for d in rig.line.deliveries() {
        let key = if d.endpoint == Endpoint::PnpPush {
            (by_hash[&d.to].clone(), ChannelKind::Pnp)
        } else {
            (by_user[&d.to].clone(), ChannelKind::Line)
        };
        *out.entry(key).or_default() += 1;
    }
    for m in rig.smtp.messages() {
        for to in &m.rcpt_tos {
            *out.entry((by_email[to].clone(), ChannelKind::Email)).or_default() += 1;
        }
    }
    for s in rig.sms.messages() {
        *out.entry((by_phone[&s.to].clone(), ChannelKind::Sms)).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn mixed_audience_gets_one_message_each_on_the_right_channel_across_a_crash() {
    let rig = rig().await;
    let audience = mixed_audience(&rig, 70).await;
    let campaign = CampaignId::new("spring").unwrap();
    let (sale, notice) = steps(&campaign);
    let planner = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .opt_outs(rig.opt_outs.clone());
    let now = Utc::now();
    let sale_plan = planner.plan_and_enqueue(&sale, &audience, now).await.unwrap();
    // Transactional notices go to the customers LINE cannot reach.
    let notice_audience: Vec<Reach> = audience
        .iter()
        .filter(|r| matches!(kind_of(r), Kind::Blocked | Kind::PhoneOnly))
        .cloned()
        .collect();
    let notice_plan = planner.plan_and_enqueue(&notice, &notice_audience, now).await.unwrap();

    // The first worker crashes after 25 sends, with batches claimed and in flight.
    let first = rig.dispatcher("w1").crash_after(25).build().unwrap();
    let run = first.run(&campaign).await.unwrap();
    assert!(run.crashed);
    assert_eq!(run.total_sent(), 25);
    drop(first);
    // A fresh worker resumes from the same journal once the leases run out.
    let second = rig.dispatcher("w2").build().unwrap();
    let run2 = second.run(&campaign).await.unwrap();
    assert!(!run2.crashed);
    assert_eq!(
        run.total_sent() + run2.total_sent(),
        (sale_plan.batches.len() + notice_plan.batches.len()) as u64
    );

    let got = received(&rig, &audience);
    assert!(
        got.values().all(|n| *n == 1),
        "duplicates: {:?}",
        got.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let expect_sale = |k: Kind| match k {
        Kind::Following => Some(ChannelKind::Line),
        Kind::Blocked | Kind::UnlinkedEmail => Some(ChannelKind::Email),
        Kind::PhoneOnly | Kind::EmailOptedOut => Some(ChannelKind::Sms),
        Kind::OptedOutNoPhone | Kind::InvalidAddresses => None,
    };
    for (n, r) in audience.iter().enumerate() {
        let k = kind(n as u64);
        let mut want: Vec<ChannelKind> = expect_sale(k).into_iter().collect();
        if matches!(k, Kind::Blocked | Kind::PhoneOnly) {
            want.push(ChannelKind::Pnp);
        }
        let mut have: Vec<ChannelKind> =
            got.keys().filter(|(c, _)| *c == r.customer).map(|(_, ch)| *ch).collect();
        have.sort();
        want.sort();
        assert_eq!(have, want, "{} ({k:?})", r.customer);
    }
    // The unreachable are excluded with reasons, never sent.
    let unreachable: Vec<&CustomerId> = sale_plan
        .excluded
        .iter()
        .filter(|(_, e)| matches!(e, ChannelExclusion::Unreachable(_)))
        .map(|(c, _)| c)
        .collect();
    assert_eq!(unreachable.len(), 20);
    // The journal agrees: every batch sent once, on the channel recorded in its row.
    let records = rig.journal.records(&campaign).await.unwrap();
    assert!(records.iter().all(|r| r.status == BatchStatus::Sent), "{records:#?}");
    let transports: std::collections::HashSet<&str> =
        records.iter().map(|r| r.batch.transport.as_str()).collect();
    assert_eq!(transports, ["push", "pnp", "email", "sms"].into_iter().collect());
}

fn kind_of(r: &Reach) -> Kind {
    kind(r.customer.as_str()[1..].parse().unwrap())
}

#[tokio::test]
async fn an_opt_out_after_planning_stops_the_send() {
    let rig = rig().await;
    let audience = mixed_audience(&rig, 3).await;
    let campaign = CampaignId::new("late-optout").unwrap();
    let (sale, _) = steps(&campaign);
    let plan = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .plan_and_enqueue(&sale, &audience, Utc::now())
        .await
        .unwrap();
    assert_eq!(plan.count(ChannelKind::Email), 2);
    // Customer 2 unsubscribes from e-mail between planning and sending.
    rig.opt_outs.opt_out(&customer(2), ChannelKind::Email, Utc::now()).await.unwrap();
    rig.dispatcher("w").build().unwrap().run(&campaign).await.unwrap();
    let to: Vec<String> = rig.smtp.messages().into_iter().flat_map(|m| m.rcpt_tos).collect();
    assert_eq!(to, vec![email_of(1)]);
    let records = rig.journal.records(&campaign).await.unwrap();
    let failed = records.iter().find(|r| r.batch.recipients[0].customer == customer(2)).unwrap();
    let Some(BatchOutcome::Failed { kind, error, .. }) = &failed.outcome else {
        panic!("{failed:?}")
    };
    assert_eq!(*kind, FailureKind::Rejected);
    assert!(error.contains("unsubscribed"), "{error}");
}

#[tokio::test]
async fn a_bounced_address_fails_once_and_a_provider_outage_is_retried() {
    let rig = rig().await;
    let campaign = CampaignId::new("bounce").unwrap();
    let audience = vec![
        Reach::new(customer(1)).email("bounce@mail.example", true),
        Reach::new(customer(2)).phone("080-0000-1111", true),
    ];
    for r in &audience {
        rig.contacts.put(r.clone());
    }
    let (sale, _) = steps(&campaign);
    ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .plan_and_enqueue(&sale, &audience, Utc::now())
        .await
        .unwrap();
    rig.sms.fail_next(&[503, 500]);
    let run = rig.dispatcher("w").build().unwrap().run(&campaign).await.unwrap();
    assert_eq!((run.failed, run.retried, run.total_sent()), (1, 2, 1));
    assert_eq!(rig.sms.messages().len(), 1);
    assert!(rig.smtp.messages().is_empty());
    let records = rig.journal.records(&campaign).await.unwrap();
    let bounced = records.iter().find(|r| r.batch.recipients[0].customer == customer(1)).unwrap();
    assert!(matches!(
        bounced.outcome,
        Some(BatchOutcome::Failed { kind: FailureKind::InvalidRecipient, .. })
    ));
    assert_eq!(bounced.attempts, 1);
}

/// The results per channel, computed from the journal, become the results report's channel
/// table in the text, HTML and JSON renderings; an empty list shows no table.
#[tokio::test]
async fn channel_results_go_into_the_results_report() {
    use enishi::campaign::{ChannelStats, ReportInput, ReportOptions};
    use enishi::channel::{ChannelResults, PnpDeliveries};

    let rig = rig().await;
    let audience = mixed_audience(&rig, 14).await;
    let campaign = CampaignId::new("report").unwrap();
    let (sale, _) = steps(&campaign);
    ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .opt_outs(rig.opt_outs.clone())
        .plan_and_enqueue(&sale, &audience, Utc::now())
        .await
        .unwrap();
    rig.dispatcher("w1").build().unwrap().run(&campaign).await.unwrap();
    let records = rig.journal.records(&campaign).await.unwrap();
    let results = ChannelResults::compute(
        &records,
        &PnpDeliveries::new(),
        &[],
        &[],
        &[],
        chrono::TimeDelta::days(7),
    );
    let rows = results.to_report();
    // One row per channel used, in report order, with the journal's recipients as `sent`.
    let mut want: Vec<(String, u64)> = Vec::new();
    for k in ChannelKind::ALL {
        let sent: usize = records
            .iter()
            .filter(|r| ChannelKind::of_transport(r.batch.transport) == Some(k))
            .map(|r| r.batch.recipients.len())
            .sum();
        if sent > 0 {
            want.push((k.as_str().to_owned(), sent as u64));
        }
    }
    let have: Vec<(String, u64)> = rows.iter().map(|r| (r.channel.clone(), r.sent)).collect();
    assert_eq!(have, want);
    assert!(rows.len() >= 2, "the sale must go out on several channels: {rows:?}");
    assert!(rows.iter().all(|r| r.converted == 0 && r.conversion_rate == Some(0.0)));

    let empty = ReportInput::new().build(&ReportOptions::default().with_title("t"));
    assert!(!empty.to_string().contains("channels ("));
    assert!(!empty.to_html().contains("Results per channel"));
    assert!(!serde_json::to_string(&empty).unwrap().contains("\"channels\""));

    let mut rows = rows;
    rows.push(ChannelStats::new("sms", 200, 190, 40, 10, Some(2.5)));
    let report = empty.with_channels(rows);
    let text = report.to_string();
    assert!(text.contains("channels (sent, delivered, clicked, converted"), "{text}");
    assert!(text.contains("5.0%") && text.contains("+2.5pt"), "{text}");
    let html = report.to_html();
    assert!(html.contains("<h2>Results per channel</h2>"), "{html}");
    assert!(html.contains(
        "<td>sms</td><td>200</td><td>190</td><td>40</td><td>10</td><td>5.0%</td><td>+2.5pt</td>"
    ));
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    let last = json["channels"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["channel"], "sms");
    assert_eq!(last["conversion_rate"], 0.05);
    assert_eq!(last["uplift_points"], 2.5);
}
