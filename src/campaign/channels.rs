//! The delivery channels and message purposes, shared by the campaign planners (scenario
//! steps name them) and `enishi::channel`, which sends through them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Transport;
use crate::{CustomerId, LineUserId};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChannelKind {
    /// LINE push to a linked, following LINE user.
    Line,
    /// A LINE notification message to a phone number (transactional only).
    Pnp,
    /// E-mail over SMTP.
    Email,
    /// SMS through a provider.
    Sms,
}

impl ChannelKind {
    /// Every channel, in the order reports list them.
    pub const ALL: [Self; 4] = [Self::Line, Self::Pnp, Self::Email, Self::Sms];

    /// `line`, `pnp`, `email`, `sms`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::Pnp => "pnp",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// The journal transport of a batch on this channel.
    #[must_use]
    pub fn transport(self) -> Transport {
        match self {
            Self::Line => Transport::Push,
            Self::Pnp => Transport::Pnp,
            Self::Email => Transport::Email,
            Self::Sms => Transport::Sms,
        }
    }

    /// The channel a journal transport belongs to (push and multicast are LINE).
    #[must_use]
    pub fn of_transport(transport: Transport) -> Option<Self> {
        match transport {
            Transport::Push | Transport::Multicast => Some(Self::Line),
            Transport::Pnp => Some(Self::Pnp),
            Transport::Email => Some(Self::Email),
            Transport::Sms => Some(Self::Sms),
        }
    }

    /// Parses [`as_str`](Self::as_str).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message is sent: decides the channel order and whether marketing consent is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Purpose {
    /// Promotions: LINE, else e-mail with consent, else SMS with consent. Never PNP.
    Marketing,
    /// Order, shipping and account notices: LINE, then PNP, then e-mail, then SMS.
    Transactional,
}

/// The key a customer's sends are counted under in the journal when they have no LINE user:
/// a stable value in LINE user ID form derived from the customer ID (never a real LINE user),
/// so the frequency cap counts every channel.
#[must_use]
pub fn customer_send_key(customer: &CustomerId) -> LineUserId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("enishi.channel.customer:{customer}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    LineUserId::new(format!("U{hex}")).unwrap_or_else(|_| unreachable!("U + 32 hex digits"))
}
