//! ID linking: the account-link flow (link token + nonce), LINE Login (OIDC + PKCE), link stores.
//!
//! - [`LinkStore`]: links (one LINE user ↔ one customer per channel), pending one-time tickets
//!   (link tokens, nonces, login states), follow status and an audit trail; implemented by
//!   [`MemoryLinkStore`], `SqliteLinkStore` (feature `sqlite`) and `PostgresLinkStore`
//!   (feature `postgres`), which all pass one conformance suite (`link::conformance`, feature
//!   `testkit`, public so a host checks its own store with it).
//! - [`IncentiveLedger`]: an exactly-once ledger of incentives (points or a coupon granted once
//!   per customer, say on the first link), kept by the same stores in the same database.
//! - Secrets ([`OneTimeSecret`]) are 256-bit CSPRNG values, URL-safe Base64; stores keep only
//!   their SHA-256 ([`TicketKey`]).
//!
//! See `docs/linking.md` for the setup and a sequence diagram.
//! Tests: link.

#[cfg(feature = "client")]
mod attempts;
#[cfg(feature = "client")]
mod builder;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
mod flow;
#[cfg(feature = "client")]
mod grant;
mod idtoken;
mod import;
mod incentive;
#[cfg(feature = "client")]
mod login;
mod memory;
#[cfg(feature = "client")]
mod password;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "client")]
mod redirect;
#[cfg(feature = "client")]
mod replies;
mod reward;
mod secret;
#[cfg(feature = "axum")]
mod service;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
#[cfg(feature = "client")]
mod unlink;
pub use memory::MemoryLinkStore;
#[cfg(feature = "client")]
mod write_back;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use attempts::{AttemptLimit, ForwardedFor, client_ip};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use builder::AccountLinkerBuilder;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use error::{LinkError, LoginFailure};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use flow::{
    AccountLinkOutcome, AccountLinkReport, AccountLinker, DEFAULT_ACCESS_BASE_URL,
    DEFAULT_LINK_POSTBACK, DEFAULT_UNLINK_POSTBACK, DirectLink, LinkEventOutcome, LinkHook,
    LinkOutcomeHook, LinkStarted, NonceIssued, link_buttons, link_rich_menu,
};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use grant::IncentiveOutcome;
pub use idtoken::{
    IdTokenClaims, IdTokenError, Jwks, LINE_LOGIN_ISSUER, sign_id_token_hs256, verify_id_token,
    verify_id_token_es256,
};
pub use import::{BackendLinkImport, ImportCounts};
pub use incentive::{Claim, GrantState, IncentiveGrant, IncentiveLedger};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use login::{
    BotPrompt, CallbackParams, DEFAULT_AUTHORIZE_URL, DEFAULT_JWKS_REFETCH_INTERVAL,
    DEFAULT_JWKS_URL, DEFAULT_TOKEN_URL, LineLogin, LineLoginBuilder, LoginError, LoginLinked,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresLinkStore;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use replies::LinkReplyTexts;
pub use reward::{LinkIncentive, Reward};
pub use secret::{OneTimeSecret, SECRET_BYTES, TicketKey, pkce_challenge};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use service::LinkEventHandler;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteLinkStore;
pub use store::{
    AuditAction, AuditRecord, ConflictPolicy, CustomerLink, DEFAULT_TICKET_TTL, FollowStatus, Link,
    LinkConflict, LinkOutcome, LinkSource, LinkStore, LinkStoreError, Redeemed, RejectReason,
    Ticket, TicketKind,
};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use unlink::Unlinked;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use write_back::{LinkWriteBack, WriteBackError, WriteBackRetry, WriteBackTask};
