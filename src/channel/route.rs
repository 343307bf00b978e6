//! Routing: which channel carries a customer's message, by purpose and reachability.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::address::{EmailAddress, PhoneNumber};
use super::{Address, ChannelError, ChannelKind, Purpose};
use crate::campaign::{BatchRecord, BatchStatus, Click, Transport};
use crate::commerce::{Customer, Exclusion};
use crate::{CustomerId, LineUserId};

/// What the shop knows about reaching one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reach {
    /// The customer.
    pub customer: CustomerId,
    /// The linked LINE user, if any.
    pub line_user: Option<LineUserId>,
    /// The linked LINE user follows the account (has not blocked it).
    pub line_following: bool,
    /// The e-mail address as stored (checked when routing).
    pub email: Option<String>,
    /// The customer agreed to marketing e-mail.
    pub email_consent: bool,
    /// The shop stopped e-mail for the customer (ecforce `mail_delivery_stop`): no marketing
    /// e-mail, whatever the consent.
    pub email_stopped: bool,
    /// The phone number as stored (checked when routing).
    pub phone: Option<String>,
    /// The customer agreed to marketing SMS.
    pub sms_consent: bool,
}

impl Reach {
    /// A customer nobody can reach yet; add what is known with the setters.
    #[must_use]
    pub fn new(customer: CustomerId) -> Self {
        Self {
            customer,
            line_user: None,
            line_following: false,
            email: None,
            email_consent: false,
            email_stopped: false,
            phone: None,
            sms_consent: false,
        }
    }

    /// From a commerce backend's customer (synced ecforce data, for one): the linked LINE
    /// user (assumed following: set [`line`](Self::line) with what the link store says), the
    /// e-mail with the marketing opt-in (ecforce `optin`) as consent, `mail_delivery_stop`,
    /// and the phone number (ecforce: `mobile`, else the billing address's telephone) with
    /// no marketing SMS consent (the shop's data has none; set [`phone`](Self::phone) if it
    /// has). Addresses are kept as stored: routing checks them and passes an invalid one over
    /// with the reason ([`Skip::InvalidAddress`]).
    #[must_use]
    pub fn from_customer(c: &Customer) -> Self {
        let mut r = Self::new(c.id.clone());
        r.line_following = c.line_user_id.is_some();
        r.line_user = c.line_user_id.clone();
        r.email = c.email.clone().filter(|e| !e.trim().is_empty());
        r.email_consent = c.opt_in.unwrap_or(false);
        r.email_stopped = c.email_stopped.unwrap_or(false);
        r.phone = c.phone.clone().filter(|p| !p.trim().is_empty());
        r
    }

    /// The reach of every customer the shop may message, and why the others may not be
    /// (deleted, withdrawn or blacklisted: never messaged on any channel).
    #[must_use]
    pub fn from_customers<'a>(
        customers: impl IntoIterator<Item = &'a Customer>,
    ) -> (Vec<Self>, Vec<(CustomerId, Exclusion)>) {
        let mut reach = Vec::new();
        let mut excluded = Vec::new();
        for c in customers {
            match c.exclusion() {
                Some(why) => excluded.push((c.id.clone(), why)),
                None => reach.push(Self::from_customer(c)),
            }
        }
        (reach, excluded)
    }

    /// The linked LINE user and whether they follow the account.
    #[must_use]
    pub fn line(mut self, user: LineUserId, following: bool) -> Self {
        self.line_user = Some(user);
        self.line_following = following;
        self
    }

    /// The e-mail address and marketing consent.
    #[must_use]
    pub fn email(mut self, address: impl Into<String>, consent: bool) -> Self {
        self.email = Some(address.into());
        self.email_consent = consent;
        self
    }

    /// The shop's e-mail stop (ecforce `mail_delivery_stop`).
    #[must_use]
    pub fn email_stopped(mut self, stopped: bool) -> Self {
        self.email_stopped = stopped;
        self
    }

    /// The phone number and marketing SMS consent.
    #[must_use]
    pub fn phone(mut self, number: impl Into<String>, consent: bool) -> Self {
        self.phone = Some(number.into());
        self.sms_consent = consent;
        self
    }
}

/// Where the dispatcher looks customers up at send time (a changed address or a withdrawn
/// consent since planning is honoured). Object-safe.
#[async_trait]
pub trait Contacts: Send + Sync + fmt::Debug {
    /// The customer's reach, or `None` if unknown.
    async fn reach(&self, customer: &CustomerId) -> Result<Option<Reach>, ChannelError>;
}

/// [`Contacts`] in memory.
#[derive(Debug, Default)]
pub struct MemoryContacts {
    by_id: RwLock<HashMap<CustomerId, Reach>>,
}

impl MemoryContacts {
    /// Holds these customers.
    #[must_use]
    pub fn new(reach: impl IntoIterator<Item = Reach>) -> Self {
        Self { by_id: RwLock::new(reach.into_iter().map(|r| (r.customer.clone(), r)).collect()) }
    }

    /// Adds or replaces a customer.
    pub fn put(&self, reach: Reach) {
        self.by_id
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(reach.customer.clone(), reach);
    }
}

#[async_trait]
impl Contacts for MemoryContacts {
    async fn reach(&self, customer: &CustomerId) -> Result<Option<Reach>, ChannelError> {
        Ok(self
            .by_id
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(customer)
            .cloned())
    }
}

/// Why a channel was passed over for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// No linked LINE user.
    NotLinked,
    /// The LINE user blocked the account.
    Blocked,
    /// No address for the channel.
    NoAddress,
    /// The stored address is invalid (never sent to); the text says why.
    InvalidAddress(String),
    /// Marketing without the customer's consent for the channel.
    NoConsent,
    /// The shop stopped e-mail for the customer (`mail_delivery_stop`).
    ShopStopped,
    /// The customer unsubscribed from the channel.
    OptedOut,
    /// The channel is for transactional messages only (PNP).
    TransactionalOnly,
    /// The step has no content for the channel.
    NoContent,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLinked => f.write_str("not linked to LINE"),
            Self::Blocked => f.write_str("blocked the LINE account"),
            Self::NoAddress => f.write_str("no address"),
            Self::InvalidAddress(why) => write!(f, "{why}"),
            Self::NoConsent => f.write_str("no marketing consent"),
            Self::ShopStopped => f.write_str("e-mail stopped by the shop (mail_delivery_stop)"),
            Self::OptedOut => f.write_str("unsubscribed"),
            Self::TransactionalOnly => f.write_str("transactional messages only"),
            Self::NoContent => f.write_str("no content for this channel"),
        }
    }
}

/// The routing decision for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Send on this channel to this address.
    Send {
        /// The channel.
        channel: ChannelKind,
        /// The address.
        address: Address,
    },
    /// No channel can carry the message; why each was passed over, in routing order.
    Unreachable(Vec<(ChannelKind, Skip)>),
}

/// The LINE sends and tracked clicks of customers, for the "no click on the last N LINE
/// messages within D days → e-mail" rule.
#[derive(Debug, Clone, Default)]
pub struct LineEngagement {
    sends: HashMap<CustomerId, Vec<DateTime<Utc>>>,
    clicks: HashMap<CustomerId, Vec<DateTime<Utc>>>,
}

impl LineEngagement {
    /// Nothing known.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// From journal records (sent LINE push and multicast batches) and tracked clicks.
    #[must_use]
    pub fn from_records(records: &[BatchRecord], clicks: &[Click]) -> Self {
        let mut e = Self::new();
        for r in records {
            if r.status == BatchStatus::Sent
                && matches!(r.batch.transport, Transport::Push | Transport::Multicast)
            {
                for rcpt in &r.batch.recipients {
                    e.line_send(&rcpt.customer, r.updated_at);
                }
            }
        }
        for c in clicks {
            e.click(&c.customer, c.at);
        }
        e
    }

    /// Records a LINE message to `customer` at `at`.
    pub fn line_send(&mut self, customer: &CustomerId, at: DateTime<Utc>) {
        self.sends.entry(customer.clone()).or_default().push(at);
    }

    /// Records a tracked click of `customer` at `at`.
    pub fn click(&mut self, customer: &CustomerId, at: DateTime<Utc>) {
        self.clicks.entry(customer.clone()).or_default().push(at);
    }

    /// Whether `customer` got at least `n` LINE messages within `days` before `now` and
    /// clicked none of the last `n` (no click since the earliest of them).
    #[must_use]
    pub fn ignores_line(
        &self,
        customer: &CustomerId,
        n: u32,
        days: u32,
        now: DateTime<Utc>,
    ) -> bool {
        let since = now - TimeDelta::days(i64::from(days));
        let mut sends: Vec<DateTime<Utc>> = self
            .sends
            .get(customer)
            .map(|s| s.iter().copied().filter(|t| *t >= since && *t <= now).collect())
            .unwrap_or_default();
        let n = n.max(1) as usize;
        if sends.len() < n {
            return false;
        }
        sends.sort_unstable();
        let first_of_last_n = sends[sends.len() - n];
        !self
            .clicks
            .get(customer)
            .is_some_and(|c| c.iter().any(|t| *t >= first_of_last_n && *t <= now))
    }
}

/// What [`Routing::candidates`] finds: the channels that can carry the message, in routing
/// order, with their addresses; and why each other channel was passed over.
pub type Candidates = (Vec<(ChannelKind, Address)>, Vec<(ChannelKind, Skip)>);

/// The channel order per purpose, plus the unclicked-LINE rule. Configure one per campaign or
/// scenario step ([`ChannelStep::routing`](super::ChannelStep::routing)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Routing {
    /// Channels tried in order for the step's purpose.
    pub order: Vec<ChannelKind>,
    /// Move e-mail before LINE for a customer who clicked none of the last `.0` LINE
    /// messages within `.1` days.
    pub email_after_unclicked: Option<(u32, u32)>,
}

impl Routing {
    /// The default order for `purpose`: marketing LINE → e-mail → SMS; transactional LINE →
    /// PNP → e-mail → SMS.
    #[must_use]
    pub fn for_purpose(purpose: Purpose) -> Self {
        let order = match purpose {
            Purpose::Marketing => vec![ChannelKind::Line, ChannelKind::Email, ChannelKind::Sms],
            Purpose::Transactional => {
                vec![ChannelKind::Line, ChannelKind::Pnp, ChannelKind::Email, ChannelKind::Sms]
            }
        };
        Self { order, email_after_unclicked: None }
    }

    /// Replaces the channel order (PNP is skipped for marketing whatever the order says).
    #[must_use]
    pub fn order(mut self, order: Vec<ChannelKind>) -> Self {
        self.order = order;
        self
    }

    /// "No tracked click on the last `messages` LINE messages within `days` days → e-mail".
    #[must_use]
    pub fn email_after_unclicked(mut self, messages: u32, days: u32) -> Self {
        self.email_after_unclicked = Some((messages, days));
        self
    }

    /// Decides the channel for `reach`. `available` says whether the step has content for a
    /// channel; `opted_out` whether the customer unsubscribed from it.
    #[must_use]
    pub fn route(
        &self,
        purpose: Purpose,
        reach: &Reach,
        engagement: &LineEngagement,
        now: DateTime<Utc>,
        available: &dyn Fn(ChannelKind) -> bool,
        opted_out: &dyn Fn(ChannelKind) -> bool,
    ) -> Route {
        let (usable, skipped) =
            self.candidates(purpose, reach, engagement, now, available, opted_out);
        match usable.into_iter().next() {
            Some((channel, address)) => Route::Send { channel, address },
            None => Route::Unreachable(skipped),
        }
    }

    /// Every channel that can carry the message to `reach`, in routing order (the first is
    /// the [`route`](Self::route); the rest are the send-time fall-through if a provider
    /// refuses the recipient), and why the others were passed over.
    #[must_use]
    pub fn candidates(
        &self,
        purpose: Purpose,
        reach: &Reach,
        engagement: &LineEngagement,
        now: DateTime<Utc>,
        available: &dyn Fn(ChannelKind) -> bool,
        opted_out: &dyn Fn(ChannelKind) -> bool,
    ) -> Candidates {
        let mut order = self.order.clone();
        if let Some((n, days)) = self.email_after_unclicked
            && engagement.ignores_line(&reach.customer, n, days, now)
            && let (Some(line), Some(email)) = (
                order.iter().position(|c| *c == ChannelKind::Line),
                order.iter().position(|c| *c == ChannelKind::Email),
            )
            && email > line
        {
            let e = order.remove(email);
            order.insert(line, e);
        }
        let mut usable = Vec::new();
        let mut skipped = Vec::new();
        let mut seen = Vec::new();
        for channel in order {
            if seen.contains(&channel) {
                continue;
            }
            seen.push(channel);
            match check(channel, purpose, reach, available, opted_out) {
                Ok(address) => usable.push((channel, address)),
                Err(skip) => skipped.push((channel, skip)),
            }
        }
        (usable, skipped)
    }
}

/// Whether `channel` can carry a `purpose` message to `reach`.
pub(crate) fn check(
    channel: ChannelKind,
    purpose: Purpose,
    reach: &Reach,
    available: &dyn Fn(ChannelKind) -> bool,
    opted_out: &dyn Fn(ChannelKind) -> bool,
) -> Result<Address, Skip> {
    if !available(channel) {
        return Err(Skip::NoContent);
    }
    let marketing = purpose == Purpose::Marketing;
    let address = match channel {
        ChannelKind::Line => {
            let user = reach.line_user.clone().ok_or(Skip::NotLinked)?;
            if !reach.line_following {
                return Err(Skip::Blocked);
            }
            Address::Line(user)
        }
        ChannelKind::Pnp | ChannelKind::Sms => {
            if channel == ChannelKind::Pnp && marketing {
                return Err(Skip::TransactionalOnly);
            }
            let raw = reach.phone.as_deref().ok_or(Skip::NoAddress)?;
            let phone =
                PhoneNumber::parse_jp(raw).map_err(|e| Skip::InvalidAddress(e.to_string()))?;
            phone.check_mobile().map_err(|e| Skip::InvalidAddress(e.to_string()))?;
            if channel == ChannelKind::Sms && marketing && !reach.sms_consent {
                return Err(Skip::NoConsent);
            }
            Address::Phone(phone)
        }
        ChannelKind::Email => {
            let raw = reach.email.as_deref().ok_or(Skip::NoAddress)?;
            let email = EmailAddress::new(raw).map_err(|e| Skip::InvalidAddress(e.to_string()))?;
            if marketing && reach.email_stopped {
                return Err(Skip::ShopStopped);
            }
            if marketing && !reach.email_consent {
                return Err(Skip::NoConsent);
            }
            Address::Email(email)
        }
    };
    if opted_out(channel) {
        return Err(Skip::OptedOut);
    }
    Ok(address)
}
