//! A shop's synced ecforce customers route without hand-built reach: the billing address's
//! telephone, the e-mail, `optin` and `mail_delivery_stop` become [`Reach`]; invalid numbers
//! and addresses, and customers the shop excludes, are passed over with the reason.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use enishi::campaign::{DeliveryPolicy, MemoryJournal};
use enishi::channel::{
    ChannelExclusion, ChannelKind, ChannelPlanner, ChannelStep, EmailContent, Purpose, Reach, Skip,
};
use enishi::commerce::{
    CommerceBackend, Customer, EcforceClient, EcforceRetry, Exclusion, ListQuery, collect_pages,
};
use enishi::line::message::Message;
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce};
use enishi::{CampaignId, CustomerId};

fn cid(n: u64) -> CustomerId {
    CustomerId::new(n.to_string()).unwrap()
}

fn shop_customer(
    n: u64,
    email: Option<&str>,
    phone: Option<&str>,
    edit: impl FnOnce(&mut Customer),
) -> Customer {
    let mut c = Customer::new(cid(n), Utc::now() - chrono::TimeDelta::days(1));
    c.email = email.map(str::to_owned);
    c.phone = phone.map(str::to_owned);
    c.opt_in = Some(true);
    edit(&mut c);
    c
}

#[tokio::test]
async fn channel_reach_from_synced_ecforce_customers() {
    let shop = FakeEcforce::builder().start().await.unwrap();
    shop.insert_customers([
        // E-mail with consent.
        shop_customer(1, Some("one@mail.example"), Some("090-1111-0001"), |_| {}),
        // The shop's own e-mail stop: SMS instead (marketing needs SMS consent: none).
        shop_customer(2, Some("two@mail.example"), Some("090-1111-0002"), |c| {
            c.email_stopped = Some(true)
        }),
        // An invalid e-mail address and a landline.
        shop_customer(3, Some("three@@mail"), Some("03-1234-5678"), |_| {}),
        // An invalid phone number only.
        shop_customer(4, None, Some("090-12"), |_| {}),
        // Withdrawn: never messaged.
        shop_customer(5, Some("five@mail.example"), Some("090-1111-0005"), |c| c.withdrawn = true),
    ]);
    let client = EcforceClient::builder(shop.base_url(), DEFAULT_ECFORCE_TOKEN)
        .min_interval(Duration::ZERO)
        .retry_policy(EcforceRetry::default())
        .build()
        .unwrap();
    let (customers, rejected) = collect_pages(client.customers(ListQuery::all())).await.unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    // The phone number comes from the billing address as ecforce sends it.
    let one = customers.iter().find(|c| c.id == cid(1)).unwrap();
    assert_eq!(one.phone.as_deref(), Some("090-1111-0001"));

    let (audience, excluded) = Reach::from_customers(&customers);
    assert_eq!(excluded, [(cid(5), Exclusion::Withdrawn)]);
    let two = audience.iter().find(|r| r.customer == cid(2)).unwrap();
    assert!(two.email_stopped && two.email_consent && !two.sms_consent);

    let campaign = CampaignId::new("reach").unwrap();
    let step = |purpose| {
        ChannelStep::new(campaign.clone(), format!("{purpose:?}"), purpose)
            .line(vec![Message::text("お知らせ")])
            .email(EmailContent::new("お知らせ", "お知らせです"))
            .sms("お知らせです")
    };
    let planner = ChannelPlanner::new(Arc::new(MemoryJournal::new()), DeliveryPolicy::new());
    let now = Utc::now();
    let marketing = planner.plan(&step(Purpose::Marketing), &audience, now).await.unwrap();
    assert_eq!(marketing.routed, [(cid(1), ChannelKind::Email)]);
    let why = |plan: &enishi::channel::ChannelPlan, n: u64| -> Vec<(ChannelKind, Skip)> {
        match plan.excluded.iter().find(|(c, _)| *c == cid(n)) {
            Some((_, ChannelExclusion::Unreachable(why))) => why.clone(),
            other => panic!("{n}: {other:?}"),
        }
    };
    assert!(why(&marketing, 2).contains(&(ChannelKind::Email, Skip::ShopStopped)));
    assert!(why(&marketing, 2).contains(&(ChannelKind::Sms, Skip::NoConsent)));
    let reasons = |plan, n| {
        why(plan, n)
            .into_iter()
            .filter_map(|(k, s)| match s {
                Skip::InvalidAddress(r) => Some((k, r)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let three = reasons(&marketing, 3);
    assert!(three.iter().any(|(k, r)| *k == ChannelKind::Email && r.contains("e-mail address")));
    assert!(
        three.iter().any(|(k, r)| *k == ChannelKind::Sms && r.contains("not a Japanese mobile"))
    );

    // Transactional: PNP for the valid mobiles, the shop's e-mail stop does not apply; the
    // landline and the invalid number are never sent to.
    let transactional = planner.plan(&step(Purpose::Transactional), &audience, now).await.unwrap();
    let mut routed = transactional.routed.clone();
    routed.sort();
    assert_eq!(routed, [(cid(1), ChannelKind::Pnp), (cid(2), ChannelKind::Pnp)]);
    let four = reasons(&transactional, 4);
    assert!(four.iter().all(|(k, _)| matches!(k, ChannelKind::Pnp | ChannelKind::Sms)));
    assert!(four[0].1.contains("phone number"), "{four:?}");
    assert_eq!(transactional.unreachable(), 2);
}
