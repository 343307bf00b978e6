//! Send-time fall-through: when LINE refuses a notification message because the phone number
//! is no LINE user's, the next channel of the step's order (e-mail, then SMS) carries it,
//! exactly once, with the reason in the journal.

use std::sync::Arc;

use chrono::Utc;
use enishi::campaign::{Batch, BatchOutcome, BatchStatus, DeliveryPolicy, FailureKind};
use enishi::channel::{
    ChannelKind, ChannelPlanner, ChannelStep, EmailContent, OptOutStore, PhoneNumber, Purpose,
    Reach,
};
use enishi::line::message::Message;
use enishi::{BatchId, CampaignId};

use super::harness::{Rig, customer, rig};

fn notice(campaign: &CampaignId) -> ChannelStep {
    ChannelStep::new(campaign.clone(), "shipped", Purpose::Transactional)
        .line(vec![Message::text("ご注文の商品を発送しました")])
        .email(EmailContent::new("発送のお知らせ", "ご注文の商品を発送しました。"))
        .sms("ご注文の商品を発送しました")
}

fn phone(n: u64) -> String {
    format!("080-5555-{n:04}")
}

fn not_a_line_user(rig: &Rig, n: u64) {
    rig.line.set_pnp_not_a_line_user(&PhoneNumber::parse_jp(&phone(n)).unwrap().hashed());
}

/// Customers 1-5: 1 has LINE on their phone; 2 (with an e-mail), 3 (phone only), 4 (with an
/// e-mail) and 5 (an invalid e-mail) do not.
async fn audience(rig: &Rig) -> Vec<Reach> {
    let audience = vec![
        Reach::new(customer(1)).phone(phone(1), false),
        Reach::new(customer(2)).phone(phone(2), false).email("c2@mail.example", false),
        Reach::new(customer(3)).phone(phone(3), false),
        Reach::new(customer(4)).phone(phone(4), false).email("c4@mail.example", false),
        Reach::new(customer(5)).phone(phone(5), false).email("c5@@mail", false),
    ];
    for n in 2..=5 {
        not_a_line_user(rig, n);
    }
    for r in &audience {
        rig.contacts.put(r.clone());
    }
    audience
}

fn record_of<'a>(
    records: &'a [enishi::campaign::BatchRecord],
    id: &str,
) -> &'a enishi::campaign::BatchRecord {
    records.iter().find(|r| r.batch.id.as_str() == id).unwrap_or_else(|| panic!("no batch {id}"))
}

fn error_of(r: &enishi::campaign::BatchRecord) -> &str {
    match &r.outcome {
        Some(BatchOutcome::Failed { kind: FailureKind::InvalidRecipient, error, .. }) => error,
        other => panic!("{}: {other:?}", r.batch.id),
    }
}

#[tokio::test]
async fn channel_fallthrough_a_refused_notification_goes_on_by_email_then_sms_once() {
    let rig = rig().await;
    let audience = audience(&rig).await;
    let campaign = CampaignId::new("orders").unwrap();
    let step = notice(&campaign);
    let plan = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .opt_outs(rig.opt_outs.clone())
        .plan_and_enqueue(&step, &audience, Utc::now())
        .await
        .unwrap();
    // Everyone has a mobile number: planned on PNP, the other channels kept as fallbacks.
    assert_eq!(plan.count(ChannelKind::Pnp), 5);
    let c2 = plan.batches.iter().find(|b| b.recipients[0].customer == customer(2)).unwrap();
    let fallbacks: Vec<&str> = c2.fallbacks.iter().map(|f| f.transport.as_str()).collect();
    assert_eq!(fallbacks, ["email", "sms"]);
    let c5 = plan.batches.iter().find(|b| b.recipients[0].customer == customer(5)).unwrap();
    assert_eq!(c5.fallbacks.len(), 1, "the invalid e-mail address is never a fallback");
    // Customer 4 unsubscribes from e-mail after planning: honoured at send time.
    rig.opt_outs.opt_out(&customer(4), ChannelKind::Email, Utc::now()).await.unwrap();

    // A first worker crashes after one send; a second finishes.
    let first = rig.dispatcher("w1").crash_after(1).build().unwrap().run(&campaign).await.unwrap();
    assert!(first.crashed);
    let second = rig.dispatcher("w2").build().unwrap().run(&campaign).await.unwrap();
    assert_eq!(first.fell_through + second.fell_through, 4, "{first:?} {second:?}");

    // The providers' own records: one message per customer, on the right channel.
    let pnp: Vec<String> = rig.line.deliveries().into_iter().map(|d| d.to).collect();
    assert_eq!(pnp, [PhoneNumber::parse_jp(&phone(1)).unwrap().hashed()]);
    let mail: Vec<String> = rig.smtp.messages().into_iter().flat_map(|m| m.rcpt_tos).collect();
    assert_eq!(mail, ["c2@mail.example"]);
    let mut sms: Vec<String> = rig.sms.messages().into_iter().map(|s| s.to).collect();
    sms.sort();
    assert_eq!(sms, ["+818055550003", "+818055550004", "+818055550005"]);

    // The journal: the refused batches failed with LINE's reason and where the message went.
    let records = rig.journal.records(&campaign).await.unwrap();
    let primary = |n: u64| format!("orders/shipped/{}/1", customer(n));
    assert_eq!(record_of(&records, &primary(1)).status, BatchStatus::Sent);
    let e2 = error_of(record_of(&records, &primary(2)));
    assert!(e2.contains("pnp refused the recipient"), "{e2}");
    assert!(e2.contains(&format!("falls through to email as batch {}/email", primary(2))), "{e2}");
    let e4 = error_of(record_of(&records, &primary(4)));
    assert!(e4.contains("passed over email: unsubscribed"), "{e4}");
    assert!(e4.contains("falls through to sms"), "{e4}");
    let e5 = error_of(record_of(&records, &primary(5)));
    assert!(e5.contains("falls through to sms"), "{e5}");
    let fallback = record_of(&records, &format!("{}/email", primary(2)));
    assert_eq!((fallback.status, fallback.batch.transport.as_str()), (BatchStatus::Sent, "email"));
    assert_eq!(record_of(&records, &format!("{}/sms", primary(3))).status, BatchStatus::Sent);
    // One send per customer in the journal too (the frequency cap counts one).
    let sent = records.iter().filter(|r| r.status == BatchStatus::Sent).count();
    assert_eq!(sent, 5);

    // Planning the step again writes nothing: one message per customer per step.
    let again = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .plan_and_enqueue(&step, &audience, Utc::now())
        .await
        .unwrap();
    assert!(again.batches.is_empty());
}

/// A worker that died after writing the fallback batch but before failing the refused one:
/// the next worker is refused again, finds the fallback already written, and the customer
/// still gets one e-mail.
#[tokio::test]
async fn channel_fallthrough_survives_a_crash_between_the_fallback_and_the_failure() {
    let rig = rig().await;
    let r = Reach::new(customer(7)).phone(phone(7), false).email("c7@mail.example", false);
    rig.contacts.put(r.clone());
    not_a_line_user(&rig, 7);
    let campaign = CampaignId::new("orders").unwrap();
    let plan = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .plan_and_enqueue(&notice(&campaign), &[r], Utc::now())
        .await
        .unwrap();
    let primary = &plan.batches[0];
    // What the crashed worker had written: the fallback batch, as the dispatcher makes it.
    let fb = &primary.fallbacks[0];
    let written = Batch::new(
        BatchId::new(format!("{}/email", primary.id)).unwrap(),
        campaign.clone(),
        fb.transport,
        primary.recipients.clone(),
        fb.messages.clone(),
        primary.not_before,
    )
    .with_fallbacks(primary.fallbacks[1..].to_vec());
    rig.journal.enqueue(&[written]).await.unwrap();

    let run = rig.dispatcher("w").build().unwrap().run(&campaign).await.unwrap();
    assert_eq!((run.fell_through, run.total_sent()), (1, 1), "{run:?}");
    let mail: Vec<String> = rig.smtp.messages().into_iter().flat_map(|m| m.rcpt_tos).collect();
    assert_eq!(mail, ["c7@mail.example"]);
    assert!(rig.sms.messages().is_empty() && rig.line.deliveries().is_empty());
    let records = rig.journal.records(&campaign).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(error_of(record_of(&records, primary.id.as_str())).contains("falls through to email"));
}

/// Fallbacks live in the journal row: an SQLite journal reopened (a restart) still knows them.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn channel_fallthrough_fallbacks_survive_a_sqlite_reopen() {
    use enishi::campaign::{DeliveryJournal, SqliteJournal};
    let path =
        std::env::temp_dir().join(format!("enishi-fallthrough-{}.sqlite", uuid::Uuid::new_v4()));
    let campaign = CampaignId::new("orders").unwrap();
    let r = Reach::new(customer(8)).phone(phone(8), false).email("c8@mail.example", false);
    let planned = {
        let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
        ChannelPlanner::new(journal, DeliveryPolicy::new())
            .plan_and_enqueue(&notice(&campaign), &[r], Utc::now())
            .await
            .unwrap()
    };
    let journal = SqliteJournal::open(&path).unwrap();
    let records = journal.records(&campaign).await.unwrap();
    // The journal keeps times to the microsecond; everything else comes back as planned.
    let (stored, planned) = (&records[0].batch, &planned.batches[0]);
    assert_eq!((&stored.id, &stored.messages), (&planned.id, &planned.messages));
    assert_eq!(stored.fallbacks, planned.fallbacks);
    assert_eq!(stored.fallbacks.len(), 2);
    drop(journal);
    let _ = std::fs::remove_file(&path);
}
