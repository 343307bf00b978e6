//! The rig every channel test runs on: the fake LINE server, the fake SMS provider, a real SMTP
//! server, a journal, contacts and opt-outs; and a mixed audience.

use std::sync::Arc;
use std::time::Duration;

use enishi::campaign::{DeliveryJournal, MemoryJournal};
use enishi::channel::{
    ChannelDispatcher, ChannelDispatcherBuilder, ChannelKind, EmailChannel, LinePushChannel,
    MemoryContacts, MemoryOptOuts, OptOutStore, PnpChannel, Reach, SmsChannel, SmtpTls, TwilioSms,
    UnsubscribeLinks,
};
use enishi::line::{LineClient, RetryPolicy};
use enishi::testkit::{
    self, FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, FakeLine, FakeSms, FakeUser, SmtpSink,
};
use enishi::{CustomerId, LineUserId};

pub(crate) struct Rig {
    pub(crate) line: FakeLine,
    pub(crate) sms: FakeSms,
    pub(crate) smtp: SmtpSink,
    pub(crate) client: LineClient,
    pub(crate) journal: Arc<dyn DeliveryJournal>,
    pub(crate) contacts: Arc<MemoryContacts>,
    pub(crate) opt_outs: Arc<MemoryOptOuts>,
    pub(crate) links: UnsubscribeLinks,
}

pub(crate) const FROM: &str = "enishi商店 <news@shop.example>";

/// Starts everything; fails with how to install aiosmtpd when it is missing.
pub(crate) async fn rig() -> Rig {
    let smtp = SmtpSink::start()
        .unwrap_or_else(|e| panic!("the channel tests need a real SMTP server: {e}"));
    let line = FakeLine::start().await.unwrap();
    let sms = FakeSms::start().await.unwrap();
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    Rig {
        line,
        sms,
        smtp,
        client,
        journal: Arc::new(MemoryJournal::new()),
        contacts: Arc::new(MemoryContacts::default()),
        opt_outs: Arc::new(MemoryOptOuts::new()),
        links: UnsubscribeLinks::new(
            b"0123456789abcdef0123".to_vec(),
            "https://shop.example/unsubscribe",
        )
        .unwrap(),
    }
}

impl Rig {
    pub(crate) fn email(&self) -> EmailChannel {
        EmailChannel::builder("127.0.0.1", FROM)
            .tls(SmtpTls::None)
            .port(self.smtp.port())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    pub(crate) fn twilio(&self) -> TwilioSms {
        TwilioSms::builder(FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, "+815012345678")
            .base_url(self.sms.base_url())
            .build()
            .unwrap()
    }

    /// A dispatcher with every channel, the rig's contacts, opt-outs and links.
    pub(crate) fn dispatcher(&self, worker: &str) -> ChannelDispatcherBuilder {
        ChannelDispatcher::builder(Arc::clone(&self.journal), self.contacts.clone())
            .channel(Arc::new(LinePushChannel::new(self.client.clone())))
            .channel(Arc::new(PnpChannel::new(self.client.clone())))
            .channel(Arc::new(self.email()))
            .channel(Arc::new(SmsChannel::new(Arc::new(self.twilio()))))
            .opt_outs(self.opt_outs.clone())
            .unsubscribe_links(self.links.clone())
            .rate_limit(ChannelKind::Email, 500)
            .rate_limit(ChannelKind::Sms, 500)
            .worker(worker)
            .lease(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(20))
            .retry_after(Duration::from_millis(10))
    }
}

/// The kinds of customer in the mixed audience, by `n % 7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Linked and following (also has an e-mail).
    Following,
    /// Linked but blocked the account; e-mail with consent and a phone.
    Blocked,
    /// Not linked; e-mail with consent.
    UnlinkedEmail,
    /// Phone only, SMS consent.
    PhoneOnly,
    /// Unsubscribed from e-mail; phone with SMS consent.
    EmailOptedOut,
    /// Unsubscribed from e-mail, no phone: nobody can reach them for marketing.
    OptedOutNoPhone,
    /// An invalid e-mail address and an invalid phone number: never sent to.
    InvalidAddresses,
}

pub(crate) fn kind(n: u64) -> Kind {
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

pub(crate) fn customer(n: u64) -> CustomerId {
    CustomerId::new(format!("C{n:05}")).unwrap()
}

pub(crate) fn email_of(n: u64) -> String {
    format!("customer{n}@mail.example")
}

pub(crate) fn phone_of(n: u64) -> String {
    format!("090-{:04}-{:04}", 1000 + n / 10_000, n % 10_000)
}

/// Registers the audience's LINE users with the fake, records opt-outs and contacts, and
/// returns the audience.
pub(crate) async fn mixed_audience(rig: &Rig, count: u64) -> Vec<Reach> {
    let mut out = Vec::new();
    for n in 0..count {
        let c = customer(n);
        let user = testkit::user_id(n);
        let mut r = Reach::new(c.clone());
        match kind(n) {
            Kind::Following => {
                rig.line.add_user(FakeUser::new(user.clone())).unwrap();
                r = r.line(LineUserId::new(user).unwrap(), true).email(email_of(n), true);
            }
            Kind::Blocked => {
                rig.line.add_user(FakeUser::new(user.clone())).unwrap();
                rig.line.set_blocked(&user, true).unwrap();
                r = r
                    .line(LineUserId::new(user).unwrap(), false)
                    .email(email_of(n), true)
                    .phone(phone_of(n), false);
            }
            Kind::UnlinkedEmail => r = r.email(email_of(n), true),
            Kind::PhoneOnly => r = r.phone(phone_of(n), true),
            Kind::EmailOptedOut => {
                rig.opt_outs.opt_out(&c, ChannelKind::Email, chrono::Utc::now()).await.unwrap();
                r = r.email(email_of(n), true).phone(phone_of(n), true);
            }
            Kind::OptedOutNoPhone => {
                rig.opt_outs.opt_out(&c, ChannelKind::Email, chrono::Utc::now()).await.unwrap();
                r = r.email(email_of(n), true);
            }
            Kind::InvalidAddresses => r = r.email("customer@@mail", true).phone("090-12", true),
        }
        rig.contacts.put(r.clone());
        out.push(r);
    }
    out
}
