//! One campaign, four channels, one policy: a mixed audience planned across LINE push, LINE
//! notification messages (PNP), e-mail and SMS, sent by a dispatcher that crashes mid-way and a
//! fresh one that resumes from the same SQLite journal, then proved from the providers' own
//! records.
//!
//! The providers are the fake LINE server (push and `/bot/pnp/push`), the Twilio-shaped fake
//! SMS provider and a **real** SMTP server (Python's aiosmtpd, started from
//! `target/smtp-venv`; `--smtp-python` picks another Python):
//!
//! ```sh
//! python3 -m venv target/smtp-venv && target/smtp-venv/bin/pip install aiosmtpd
//! cargo run --release --all-features --example channels -- --demo
//! ```
//!
//! The audience mixes seven kinds of customer: linked and following (LINE); linked but blocked
//! (e-mail for the sale, PNP for the notice); unlinked with e-mail; phone only (SMS, PNP);
//! unsubscribed from e-mail with a phone (SMS); unsubscribed from e-mail without a phone and
//! customers with invalid addresses (unreachable, never sent to). The last line is
//! `channels: line=N pnp=N email=N sms=N unreachable=N duplicates=0 lost=0`, counted from what
//! the fake LINE server, the SMTP server and the fake SMS provider received.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use clap::Parser;
use enishi::campaign::{DeliveryJournal, DeliveryPolicy, FrequencyCap, SqliteJournal};
use enishi::channel::{
    ChannelDispatcher, ChannelExclusion, ChannelKind, ChannelPlan, ChannelPlanner, ChannelResults,
    ChannelStep, EmailChannel, EmailContent, LinePushChannel, MemoryContacts, MemoryOptOuts,
    OptOutStore, PhoneNumber, PnpChannel, PnpDeliveries, Purpose, Reach, SmsChannel, SmtpTls,
    TwilioSms, UnsubscribeLinks,
};
use enishi::line::message::Message;
use enishi::line::webhook::parse_event;
use enishi::line::{LineClient, RetryPolicy};
use enishi::testkit::{
    self, Endpoint, FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, FakeLine, FakeSms, FakeUser,
    SmtpSink,
};
use enishi::{CampaignId, CustomerId, LineUserId};

/// A mixed audience across LINE, PNP, e-mail and SMS, with a crash mid-way.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Run the demo (required: the example does nothing else).
    #[arg(long)]
    demo: bool,
    /// Customers in the audience.
    #[arg(long, default_value_t = 700)]
    customers: u64,
    /// The first dispatcher crashes after this many sends (default: a third of the plan).
    #[arg(long)]
    crash_after: Option<u64>,
    /// The Python with aiosmtpd that runs the SMTP server.
    #[arg(long)]
    smtp_python: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Following,
    Blocked,
    UnlinkedEmail,
    PhoneOnly,
    EmailOptedOut,
    OptedOutNoPhone,
    InvalidAddresses,
}

fn kind(n: u64) -> Kind {
    match n % 7 {
        0 => Kind::Following,
        1 => Kind::Blocked,
        2 => Kind::UnlinkedEmail,
        3 => Kind::PhoneOnly,
        4 => Kind::EmailOptedOut,
        5 => Kind::OptedOutNoPhone,
        _ => Kind::InvalidAddresses,
    }
}

type Fail = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.demo {
        eprintln!("nothing to do: pass --demo (see --help)");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("channels demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which (customer, step, channel) each provider record is, from the providers' records only.
struct Addressbook {
    by_user: HashMap<String, CustomerId>,
    by_hash: HashMap<String, CustomerId>,
    by_phone: HashMap<String, CustomerId>,
    by_email: HashMap<String, CustomerId>,
}

async fn run(args: Args) -> Result<bool, Fail> {
    let smtp = match &args.smtp_python {
        Some(p) => SmtpSink::start_with(p),
        None => SmtpSink::start(),
    }?;
    let line = FakeLine::start().await?;
    let sms = FakeSms::start().await?;
    println!(
        "SMTP server (aiosmtpd) on 127.0.0.1:{}, fake LINE at {}, fake SMS at {}",
        smtp.port(),
        line.api_base_url(),
        sms.base_url()
    );

    // The audience, its LINE users at the fake, its opt-outs.
    let opt_outs = Arc::new(MemoryOptOuts::new());
    let mut audience = Vec::new();
    for n in 0..args.customers {
        let c = CustomerId::new(format!("C{n:06}"))?;
        let user = testkit::user_id(n);
        let email = format!("customer{n}@mail.example");
        let phone = format!("090-{:04}-{:04}", 1000 + n / 10_000, n % 10_000);
        let r = Reach::new(c.clone());
        let r = match kind(n) {
            Kind::Following => {
                line.add_user(FakeUser::new(user.clone()))?;
                r.line(LineUserId::new(user)?, true).email(email, true)
            }
            Kind::Blocked => {
                line.add_user(FakeUser::new(user.clone()))?;
                line.set_blocked(&user, true)?;
                r.line(LineUserId::new(user)?, false).email(email, true).phone(phone, false)
            }
            Kind::UnlinkedEmail => r.email(email, true),
            Kind::PhoneOnly => r.phone(phone, true),
            Kind::EmailOptedOut => {
                opt_outs.opt_out(&c, ChannelKind::Email, Utc::now()).await?;
                r.email(email, true).phone(phone, true)
            }
            Kind::OptedOutNoPhone => {
                opt_outs.opt_out(&c, ChannelKind::Email, Utc::now()).await?;
                r.email(email, true)
            }
            Kind::InvalidAddresses => r.email("customer@@mail", true).phone("090-12", true),
        };
        audience.push(r);
    }
    let contacts = Arc::new(MemoryContacts::new(audience.iter().cloned()));

    // One campaign, two steps: a marketing sale for everybody, a transactional notice for
    // the customers LINE cannot reach.
    let campaign = CampaignId::new("spring")?;
    let sale = ChannelStep::new(campaign.clone(), "sale", Purpose::Marketing)
        .line(vec![Message::text("春のセールが始まりました")])
        .email(EmailContent::new(
            "春のセールが始まりました",
            "いつもご利用ありがとうございます。\n\n春のセールは https://shop.example/sale から。",
        ))
        .sms("春のセール開催中 https://shop.example/s");
    let notice = ChannelStep::new(campaign.clone(), "notice", Purpose::Transactional)
        .line(vec![Message::text("ポイントの有効期限が近づいています")])
        .email(EmailContent::new("ポイント期限のお知らせ", "ポイントの有効期限が近づいています。"))
        .sms("ポイントの有効期限が近づいています");
    let notice_audience: Vec<Reach> = audience
        .iter()
        .enumerate()
        .filter(|(n, _)| matches!(kind(*n as u64), Kind::Blocked | Kind::PhoneOnly))
        .map(|(_, r)| r.clone())
        .collect();

    let dir = std::env::temp_dir().join(format!("enishi-channels-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let journal_path = dir.join("journal.sqlite3");
    let _ = std::fs::remove_file(&journal_path);
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&journal_path)?);
    let policy = DeliveryPolicy::new().with_frequency_cap(FrequencyCap::new(3, TimeDelta::days(7)));
    let planner = ChannelPlanner::new(Arc::clone(&journal), policy).opt_outs(opt_outs.clone());
    let now = Utc::now();
    let plans: Vec<(&str, ChannelPlan)> = vec![
        ("sale", planner.plan_and_enqueue(&sale, &audience, now).await?),
        ("notice", planner.plan_and_enqueue(&notice, &notice_audience, now).await?),
    ];
    for (step, plan) in &plans {
        let counts: Vec<String> =
            ChannelKind::ALL.iter().map(|k| format!("{k}={}", plan.count(*k))).collect();
        println!("planned {step}: {} unreachable={}", counts.join(" "), plan.unreachable());
    }
    if let Some((c, ChannelExclusion::Unreachable(why))) =
        plans[0].1.excluded.iter().find(|(_, e)| matches!(e, ChannelExclusion::Unreachable(_)))
    {
        let why: Vec<String> = why.iter().map(|(k, s)| format!("{k}: {s}")).collect();
        println!("  e.g. {c} is unreachable: {}", why.join("; "));
    }
    let planned: usize = plans.iter().map(|(_, p)| p.batches.len()).sum();

    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .retry_policy(RetryPolicy::never())
        .build()?;
    let links = UnsubscribeLinks::new(
        b"demo unsubscribe signing key".to_vec(),
        "https://shop.example/unsubscribe",
    )?;
    let dispatcher = |journal: Arc<dyn DeliveryJournal>, worker: &str| {
        ChannelDispatcher::builder(journal, contacts.clone())
            .channel(Arc::new(LinePushChannel::new(client.clone())))
            .channel(Arc::new(PnpChannel::new(client.clone())))
            .channel(Arc::new(
                EmailChannel::builder("127.0.0.1", "enishi商店 <news@shop.example>")
                    .tls(SmtpTls::None)
                    .port(smtp.port())
                    .build()
                    .expect("a valid sender"),
            ))
            .channel(Arc::new(SmsChannel::new(Arc::new(
                TwilioSms::builder(FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, "+815012345678")
                    .base_url(sms.base_url())
                    .build()
                    .expect("valid Twilio settings"),
            ))))
            .opt_outs(opt_outs.clone())
            .unsubscribe_links(links.clone())
            .rate_limit(ChannelKind::Email, 400)
            .rate_limit(ChannelKind::Sms, 400)
            .rate_limit(ChannelKind::Pnp, 400)
            .worker(worker)
            .lease(Duration::from_millis(500))
            .poll_interval(Duration::from_millis(50))
    };

    // The first worker crashes after K sends, leaving claimed batches in flight.
    let k = args.crash_after.unwrap_or(planned as u64 / 3);
    let first = dispatcher(Arc::clone(&journal), "worker-1").crash_after(k).build()?;
    let run1 = first.run(&campaign).await?;
    println!("worker-1 sent {} then crashed: {}", run1.total_sent(), run1.crashed);
    drop(first);
    drop(planner);
    drop(journal);
    // A fresh worker opens the same journal file and finishes the campaign.
    let journal: Arc<dyn DeliveryJournal> = Arc::new(SqliteJournal::open(&journal_path)?);
    let second = dispatcher(Arc::clone(&journal), "worker-2").build()?;
    let run2 = second.run(&campaign).await?;
    println!("worker-2 resumed from the same journal and sent {}", run2.total_sent());

    // Proof from the providers' records.
    let mut book = Addressbook {
        by_user: HashMap::new(),
        by_hash: HashMap::new(),
        by_phone: HashMap::new(),
        by_email: HashMap::new(),
    };
    for r in &audience {
        if let Some(u) = &r.line_user {
            book.by_user.insert(u.as_str().to_owned(), r.customer.clone());
        }
        if let Some(p) = r.phone.as_deref().and_then(|p| PhoneNumber::parse_jp(p).ok()) {
            book.by_hash.insert(p.hashed(), r.customer.clone());
            book.by_phone.insert(p.as_str().to_owned(), r.customer.clone());
        }
        if let Some(e) = &r.email {
            book.by_email.insert(e.clone(), r.customer.clone());
        }
    }
    let step_of = |text: &str| if text.contains("ポイント") { "notice" } else { "sale" };
    let mut received: HashMap<(CustomerId, &str, ChannelKind), u64> = HashMap::new();
    let mut counts: HashMap<ChannelKind, u64> = HashMap::new();
    let mut stray = 0u64;
    for d in line.deliveries() {
        let text = d.messages.first().and_then(|m| m["text"].as_str()).unwrap_or("");
        let (who, channel) = if d.endpoint == Endpoint::PnpPush {
            (book.by_hash.get(&d.to), ChannelKind::Pnp)
        } else {
            (book.by_user.get(&d.to), ChannelKind::Line)
        };
        *counts.entry(channel).or_default() += 1;
        match who {
            Some(c) => *received.entry((c.clone(), step_of(text), channel)).or_default() += 1,
            None => stray += 1,
        }
    }
    for m in smtp.messages() {
        for to in &m.rcpt_tos {
            *counts.entry(ChannelKind::Email).or_default() += 1;
            match book.by_email.get(to) {
                Some(c) => {
                    *received
                        .entry((c.clone(), step_of(&m.subject), ChannelKind::Email))
                        .or_default() += 1;
                }
                None => stray += 1,
            }
        }
    }
    for s in sms.messages() {
        *counts.entry(ChannelKind::Sms).or_default() += 1;
        match book.by_phone.get(&s.to) {
            Some(c) => {
                *received.entry((c.clone(), step_of(&s.body), ChannelKind::Sms)).or_default() += 1
            }
            None => stray += 1,
        }
    }
    let expected: HashSet<(CustomerId, &str, ChannelKind)> = plans
        .iter()
        .flat_map(|(step, p)| p.routed.iter().map(move |(c, k)| (c.clone(), *step, *k)))
        .collect();
    let lost = expected.iter().filter(|e| !received.contains_key(*e)).count();
    let duplicates: u64 = received.values().map(|n| n - 1).sum::<u64>()
        + received.keys().filter(|r| !expected.contains(*r)).count() as u64
        + stray;
    let unreachable: usize = plans.iter().map(|(_, p)| p.unreachable()).sum();

    // LINE reports notification messages delivered by webhook; the results per channel.
    let deliveries = PnpDeliveries::new();
    for event in line.pnp_delivery_events() {
        deliveries.record(&parse_event(&event.to_string())?);
    }
    let records = journal.records(&campaign).await?;
    let results = ChannelResults::compute(&records, &deliveries, &[], &[], &[], TimeDelta::days(7));
    print!("{results}");
    let c = |k| counts.get(&k).copied().unwrap_or(0);
    println!(
        "channels: line={} pnp={} email={} sms={} unreachable={unreachable} duplicates={duplicates} lost={lost}",
        c(ChannelKind::Line),
        c(ChannelKind::Pnp),
        c(ChannelKind::Email),
        c(ChannelKind::Sms)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(duplicates == 0 && lost == 0)
}
