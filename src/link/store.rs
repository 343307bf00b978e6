//! The link store: links (one LINE user ↔ one customer per channel), pending one-time tickets,
//! follow status and an audit trail. The decisions (conflicts, ticket checks) are pure functions
//! here, so every backend applies exactly the same rules.

use std::fmt;

use chrono::{DateTime, TimeZone as _, Utc};

use super::incentive::GrantState;
use super::secret::TicketKey;
use crate::{CustomerId, LineUserId};

/// The default lifetime of a ticket: 10 minutes, the lifetime of a LINE link token.
pub const DEFAULT_TICKET_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }
        impl $name {
            /// The name stored in databases.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s,)* }
            }
            /// Parses a stored name (strict: stores are input enishi owns).
            ///
            /// # Errors
            /// [`LinkStoreError::Corrupt`] for an unknown name.
            pub fn parse(s: &str) -> Result<Self, LinkStoreError> {
                match s {
                    $($s => Ok(Self::$variant),)*
                    other => Err(LinkStoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// What a one-time ticket is for.
    TicketKind {
        /// A LINE link token enishi issued (bound to the LINE user it was issued for).
        LinkToken = "link_token",
        /// An account-link nonce (bound to a customer, and to the LINE user when known).
        Nonce = "nonce",
        /// A LINE Login `state` (bound to a customer; carries the OIDC nonce and PKCE verifier).
        LoginState = "login_state",
        /// An unlink ticket (bound to the LINE user who asked to unlink).
        UnlinkToken = "unlink_token",
    }
);

stored_enum!(
    /// Where a link came from.
    LinkSource {
        /// The Messaging API account-link flow (link token + nonce).
        AccountLink = "account_link",
        /// LINE Login (verified ID token).
        LineLogin = "line_login",
        /// Read from the commerce backend (e.g. ecforce's own LINE ID field) during sync.
        Backend = "backend",
        /// Set by the host directly (admin tools, migrations).
        Manual = "manual",
    }
);

stored_enum!(
    /// What an audit record records.
    AuditAction {
        /// A new link was stored.
        Linked = "linked",
        /// An existing link was removed because a new, conflicting one replaced it.
        Replaced = "replaced",
        /// A link was removed on request.
        Unlinked = "unlinked",
        /// A conflicting link was rejected (policy [`ConflictPolicy::Reject`]).
        ConflictRejected = "conflict_rejected",
        /// LINE reported the account link as failed (`link.result = failed`).
        LinkFailed = "link_failed",
    }
);

/// Why a ticket (nonce, state, link token) was rejected. Nothing is written on rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// No such ticket was issued (or it was purged long ago).
    Unknown,
    /// The ticket was already used.
    Replayed,
    /// The ticket's lifetime is over.
    Expired,
    /// The ticket belongs to another LINE user than the one presenting it.
    Mismatched,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown",
            Self::Replayed => "already used",
            Self::Expired => "expired",
            Self::Mismatched => "issued for another LINE user",
        })
    }
}

/// What to do when a new link conflicts with an existing one (the LINE user is linked to another
/// customer, or the customer to another LINE user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConflictPolicy {
    /// Keep the existing link; the new one fails with [`LinkStoreError::Conflict`] (audited).
    #[default]
    Reject,
    /// Remove the existing link(s) and store the new one; each removal is audited as
    /// [`AuditAction::Replaced`].
    Replace,
}

/// A link between a LINE user and a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The LINE user.
    pub line_user: LineUserId,
    /// The customer.
    pub customer: CustomerId,
    /// How the link was made.
    pub source: LinkSource,
    /// When it was stored (millisecond precision).
    pub linked_at: DateTime<Utc>,
}

impl Link {
    /// A link.
    #[must_use]
    pub fn new(
        line_user: LineUserId,
        customer: CustomerId,
        source: LinkSource,
        linked_at: DateTime<Utc>,
    ) -> Self {
        Self { line_user, customer, source, linked_at: trunc_ms(linked_at) }
    }
}

/// What storing a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkOutcome {
    /// A new link was stored.
    Linked(Link),
    /// Exactly this link already existed; nothing changed.
    AlreadyLinked(Link),
    /// A new link was stored after removing the conflicting ones.
    Replaced {
        /// The new link.
        link: Link,
        /// The links removed.
        displaced: Vec<Link>,
    },
}

impl LinkOutcome {
    /// The link now stored.
    #[must_use]
    pub fn link(&self) -> &Link {
        match self {
            Self::Linked(l) | Self::AlreadyLinked(l) | Self::Replaced { link: l, .. } => l,
        }
    }

    /// `true` when this call created the link (fire "new link" hooks only then).
    #[must_use]
    pub fn is_new(&self) -> bool {
        !matches!(self, Self::AlreadyLinked(_))
    }
}

/// A link that could not be stored because of an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkConflict {
    /// The LINE user of the rejected link.
    pub line_user: LineUserId,
    /// The customer of the rejected link.
    pub customer: CustomerId,
    /// The existing link of that LINE user (to another customer), if any.
    pub user_linked_to: Option<CustomerId>,
    /// The existing link of that customer (to another LINE user), if any.
    pub customer_linked_to: Option<LineUserId>,
}

impl fmt::Display for LinkConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot link LINE user {} to customer {}", self.line_user, self.customer)?;
        if let Some(c) = &self.user_linked_to {
            write!(f, ": the LINE user is linked to customer {c}")?;
        }
        if let Some(u) = &self.customer_linked_to {
            write!(f, ": the customer is linked to LINE user {u}")?;
        }
        Ok(())
    }
}

/// A pending one-time ticket. `data` carries kind-specific secrets (the OIDC nonce and PKCE
/// verifier of a login state) and is redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ticket {
    /// What it is for.
    pub kind: TicketKind,
    /// The key (hash of the secret).
    pub key: TicketKey,
    /// The customer it is bound to.
    pub customer: Option<CustomerId>,
    /// The LINE user it is bound to.
    pub line_user: Option<LineUserId>,
    /// Kind-specific data.
    pub data: Option<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("customer", &self.customer)
            .field("line_user", &self.line_user)
            .field("data", &self.data.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Ticket {
    /// A ticket issued at `now`, valid for `ttl`.
    #[must_use]
    pub fn new(
        kind: TicketKind,
        key: TicketKey,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Self {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let now = trunc_ms(now);
        Self {
            kind,
            key,
            customer: None,
            line_user: None,
            data: None,
            created_at: now,
            expires_at: trunc_ms(now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)),
        }
    }

    /// Binds the ticket to a customer.
    #[must_use]
    pub fn with_customer(mut self, customer: CustomerId) -> Self {
        self.customer = Some(customer);
        self
    }

    /// Binds the ticket to a LINE user.
    #[must_use]
    pub fn with_line_user(mut self, user: LineUserId) -> Self {
        self.line_user = Some(user);
        self
    }

    /// Attaches kind-specific data.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }
}

/// Whether a LINE user can receive messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowStatus {
    /// `false` after an `unfollow` (block); `true` after a `follow` (including `isUnblocked`).
    pub following: bool,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A customer's link and its LINE user's follow status (see
/// [`LinkStore::links_of_customers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerLink {
    /// The link.
    pub link: Link,
    /// The user's follow status, `None` when no follow or unfollow was seen.
    pub follow: Option<FollowStatus>,
}

impl CustomerLink {
    /// A customer link.
    #[must_use]
    pub fn new(link: Link, follow: Option<FollowStatus>) -> Self {
        Self { link, follow }
    }

    /// Whether the user can be messaged: following, or never seen unfollowing.
    #[must_use]
    pub fn following(&self) -> bool {
        self.follow.as_ref().is_none_or(|f| f.following)
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub action: AuditAction,
    /// The LINE user concerned, when known.
    pub line_user: Option<LineUserId>,
    /// The customer concerned, when known.
    pub customer: Option<CustomerId>,
    /// The link's source, when a link was involved.
    pub source: Option<LinkSource>,
    /// A short free-form note (e.g. what replaced a link, why it was removed).
    pub detail: Option<String>,
}

impl AuditRecord {
    /// A record.
    #[must_use]
    pub fn new(at: DateTime<Utc>, action: AuditAction) -> Self {
        Self {
            at: trunc_ms(at),
            action,
            line_user: None,
            customer: None,
            source: None,
            detail: None,
        }
    }

    fn of_link(at: DateTime<Utc>, action: AuditAction, link: &Link) -> Self {
        Self {
            line_user: Some(link.line_user.clone()),
            customer: Some(link.customer.clone()),
            source: Some(link.source),
            ..Self::new(at, action)
        }
    }

    /// Sets the detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Why a link store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkStoreError {
    /// A ticket was rejected; nothing was written.
    #[error("the {kind} is {reason}")]
    Rejected {
        /// Which kind of ticket.
        kind: TicketKind,
        /// Why.
        reason: RejectReason,
    },
    /// The link conflicts with an existing one and the policy is [`ConflictPolicy::Reject`].
    #[error("{0}")]
    Conflict(LinkConflict),
    /// A ticket with this key already exists.
    #[error("a {0} with this key already exists")]
    DuplicateTicket(TicketKind),
    /// The store holds a value enishi cannot read back.
    #[error("the link store holds an unreadable value: {0}")]
    Corrupt(String),
    /// A configuration value (such as a schema name) or an argument checked before anything is
    /// written (an incentive ID, a grant detail, the state a grant settles in) was rejected.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidConfig {
        /// What was configured.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// [`IncentiveLedger::settle`](super::IncentiveLedger::settle) found no unsettled claim
    /// (never claimed, released, or settled already), or
    /// [`IncentiveLedger::release`](super::IncentiveLedger::release) found the grant settled.
    /// Nothing was written: a recorded outcome is never changed.
    #[error(
        "no claim of incentive {incentive:?} for customer {customer} is in flight{}",
        settled_note(.settled)
    )]
    NoClaimInFlight {
        /// The incentive's ID.
        incentive: String,
        /// The customer.
        customer: CustomerId,
        /// How the grant was settled, when it was (`None`: there is no claim at all).
        settled: Option<GrantState>,
    },
    /// The backend failed (connection, SQL, a panicked worker).
    #[error("the {backend} link store failed")]
    Backend {
        /// `memory`, `sqlite` or `postgres`.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn settled_note(settled: &Option<GrantState>) -> String {
    settled.map(|s| format!(": it is settled as {s}")).unwrap_or_default()
}

impl LinkStoreError {
    /// The reject reason, when a ticket was rejected.
    #[must_use]
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Self::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { backend, source: source.into() }
    }
}

/// What [`LinkStore::redeem_nonce`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redeemed {
    /// The consumed nonce ticket.
    pub ticket: Ticket,
    /// What storing the link did.
    pub outcome: LinkOutcome,
}

/// The store behind the link flows, scoped to one LINE channel.
///
/// Object safe (`Arc<dyn LinkStore>`). Every implementation runs the same conformance suite
/// (`enishi::link::conformance`, feature `testkit`: run it against your own store too),
/// including races: of many concurrent calls consuming one ticket or linking one user, exactly
/// one wins. `now` is a parameter so tests control the clock.
#[async_trait::async_trait]
pub trait LinkStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new ticket.
    ///
    /// # Errors
    /// [`LinkStoreError::DuplicateTicket`] when its key exists; backend errors.
    async fn put_ticket(&self, ticket: &Ticket) -> Result<(), LinkStoreError>;

    /// Atomically consumes a ticket of `kind`. With `line_user`, a ticket bound to another LINE
    /// user is [`RejectReason::Mismatched`].
    ///
    /// # Errors
    /// [`LinkStoreError::Rejected`] (nothing written); backend errors.
    async fn take_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError>;

    /// Checks a ticket of `kind` exactly like [`take_ticket`](Self::take_ticket) without
    /// consuming it (the link page checks the link token before asking the shop about a
    /// password, and a mistyped password must not spend the token).
    ///
    /// # Errors
    /// [`LinkStoreError::Rejected`]; backend errors.
    async fn peek_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError>;

    /// The account-link completion, in one transaction: consumes the nonce `key` presented by
    /// `line_user` and links that user to the nonce's customer. On a conflict under
    /// [`ConflictPolicy::Reject`] the nonce is still consumed and the conflict audited.
    ///
    /// # Errors
    /// [`LinkStoreError::Rejected`] (nothing written), [`LinkStoreError::Conflict`], backend
    /// errors (nothing written).
    async fn redeem_nonce(
        &self,
        key: &TicketKey,
        line_user: &LineUserId,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, LinkStoreError>;

    /// Consumes the nonce `key` of a failed account link and audits the failure.
    ///
    /// # Errors
    /// [`LinkStoreError::Rejected`] (nothing written); backend errors.
    async fn fail_nonce(
        &self,
        key: &TicketKey,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError>;

    /// Links `line_user` to `customer`.
    ///
    /// # Errors
    /// [`LinkStoreError::Conflict`] under [`ConflictPolicy::Reject`] (audited); backend errors.
    async fn link(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, LinkStoreError>;

    /// Removes the link of a LINE user; returns it, or `None` when there was none.
    ///
    /// # Errors
    /// Backend errors.
    async fn unlink_user(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError>;

    /// Removes the link of a customer; returns it, or `None` when there was none.
    ///
    /// # Errors
    /// Backend errors.
    async fn unlink_customer(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError>;

    /// The link of a LINE user.
    ///
    /// # Errors
    /// Backend errors.
    async fn link_of_user(&self, line_user: &LineUserId) -> Result<Option<Link>, LinkStoreError>;

    /// The link of a customer.
    ///
    /// # Errors
    /// Backend errors.
    async fn link_of_customer(&self, customer: &CustomerId)
    -> Result<Option<Link>, LinkStoreError>;

    /// The links of `customers` with their users' follow status, in one round trip where the
    /// store can (the SQL stores do): what an audience of thousands needs. Customers without a
    /// link are left out; the order is unspecified.
    ///
    /// The default asks [`link_of_customer`](Self::link_of_customer) and
    /// [`follow_status`](Self::follow_status) once per customer.
    ///
    /// # Errors
    /// Backend errors.
    async fn links_of_customers(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<CustomerLink>, LinkStoreError> {
        let mut out = Vec::new();
        for customer in customers {
            if let Some(link) = self.link_of_customer(customer).await? {
                let follow = self.follow_status(&link.line_user).await?;
                out.push(CustomerLink { link, follow });
            }
        }
        Ok(out)
    }

    /// Records whether a LINE user follows the account (`follow` → `true`, `unfollow` →
    /// `false`). An update older than the stored one is ignored (webhooks arrive out of order).
    ///
    /// # Errors
    /// Backend errors.
    async fn set_following(
        &self,
        line_user: &LineUserId,
        following: bool,
        at: DateTime<Utc>,
    ) -> Result<(), LinkStoreError>;

    /// The follow status of a LINE user, `None` when no event was seen.
    ///
    /// # Errors
    /// Backend errors.
    async fn follow_status(
        &self,
        line_user: &LineUserId,
    ) -> Result<Option<FollowStatus>, LinkStoreError>;

    /// The most recent audit records, newest first, at most `limit`.
    ///
    /// # Errors
    /// Backend errors.
    async fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, LinkStoreError>;

    /// Deletes tickets that expired before `now` minus one day (consumed ones are kept a day so
    /// replays are reported as replays); returns how many.
    ///
    /// # Errors
    /// Backend errors.
    async fn purge_tickets(&self, now: DateTime<Utc>) -> Result<u64, LinkStoreError>;
}

// ---- shared, pure decisions --------------------------------------------------------------

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn user(s: String) -> Result<LineUserId, LinkStoreError> {
    LineUserId::new(s).map_err(|e| LinkStoreError::Corrupt(e.to_string()))
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn customer(s: String) -> Result<CustomerId, LinkStoreError> {
    CustomerId::new(s).map_err(|e| LinkStoreError::Corrupt(e.to_string()))
}

pub(crate) fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_ms(t.timestamp_millis())
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How long consumed and expired tickets are kept so that replays are told apart from unknowns.
pub(crate) const TICKET_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// Checks a stored ticket (and when it was consumed) against a presentation.
pub(crate) fn check_ticket(
    kind: TicketKind,
    row: Option<(Ticket, Option<i64>)>,
    line_user: Option<&LineUserId>,
    now: DateTime<Utc>,
) -> Result<Ticket, LinkStoreError> {
    let reject = |reason| LinkStoreError::Rejected { kind, reason };
    let Some((ticket, consumed)) = row else { return Err(reject(RejectReason::Unknown)) };
    if ticket.kind != kind {
        return Err(reject(RejectReason::Unknown));
    }
    if consumed.is_some() {
        return Err(reject(RejectReason::Replayed));
    }
    if now >= ticket.expires_at {
        return Err(reject(RejectReason::Expired));
    }
    if let (Some(bound), Some(presented)) = (&ticket.line_user, line_user)
        && bound != presented
    {
        return Err(reject(RejectReason::Mismatched));
    }
    Ok(ticket)
}

/// What a backend must do to store a link.
#[derive(Debug)]
pub(crate) struct LinkPlan {
    pub(crate) outcome: Result<LinkOutcome, LinkConflict>,
    /// Links to delete before inserting.
    pub(crate) delete: Vec<Link>,
    /// The link to insert.
    pub(crate) insert: Option<Link>,
    pub(crate) audit: Vec<AuditRecord>,
}

/// Decides how to store `user ↔ customer` given the existing links of each side.
pub(crate) fn plan_link(
    by_user: Option<Link>,
    by_customer: Option<Link>,
    line_user: &LineUserId,
    customer: &CustomerId,
    source: LinkSource,
    policy: ConflictPolicy,
    now: DateTime<Utc>,
) -> LinkPlan {
    let now = trunc_ms(now);
    if let Some(existing) = &by_user
        && &existing.customer == customer
    {
        return LinkPlan {
            outcome: Ok(LinkOutcome::AlreadyLinked(existing.clone())),
            delete: vec![],
            insert: None,
            audit: vec![],
        };
    }
    let new = Link::new(line_user.clone(), customer.clone(), source, now);
    let displaced: Vec<Link> = by_user.into_iter().chain(by_customer).collect();
    if displaced.is_empty() {
        return LinkPlan {
            audit: vec![AuditRecord::of_link(now, AuditAction::Linked, &new)],
            outcome: Ok(LinkOutcome::Linked(new.clone())),
            delete: vec![],
            insert: Some(new),
        };
    }
    match policy {
        ConflictPolicy::Reject => {
            let conflict = LinkConflict {
                line_user: line_user.clone(),
                customer: customer.clone(),
                user_linked_to: displaced
                    .iter()
                    .find(|l| &l.line_user == line_user)
                    .map(|l| l.customer.clone()),
                customer_linked_to: displaced
                    .iter()
                    .find(|l| &l.customer == customer)
                    .map(|l| l.line_user.clone()),
            };
            LinkPlan {
                audit: vec![
                    AuditRecord::of_link(now, AuditAction::ConflictRejected, &new)
                        .with_detail(conflict.to_string()),
                ],
                outcome: Err(conflict),
                delete: vec![],
                insert: None,
            }
        }
        ConflictPolicy::Replace => {
            let mut audit: Vec<AuditRecord> = displaced
                .iter()
                .map(|l| {
                    AuditRecord::of_link(now, AuditAction::Replaced, l).with_detail(format!(
                        "replaced by LINE user {} ↔ customer {}",
                        new.line_user, new.customer
                    ))
                })
                .collect();
            audit.push(AuditRecord::of_link(now, AuditAction::Linked, &new));
            LinkPlan {
                outcome: Ok(LinkOutcome::Replaced {
                    link: new.clone(),
                    displaced: displaced.clone(),
                }),
                delete: displaced,
                insert: Some(new),
                audit,
            }
        }
    }
}

pub(crate) fn unlink_audit(link: &Link, now: DateTime<Utc>) -> AuditRecord {
    AuditRecord::of_link(now, AuditAction::Unlinked, link)
}

pub(crate) fn failed_audit(ticket: &Ticket, now: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        customer: ticket.customer.clone(),
        line_user: ticket.line_user.clone(),
        source: Some(LinkSource::AccountLink),
        ..AuditRecord::new(now, AuditAction::LinkFailed)
    }
    .with_detail("LINE reported link.result = failed")
}
