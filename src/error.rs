//! The crate-wide error.

use crate::IdError;
#[cfg(feature = "client")]
use crate::line::LineError;
use crate::line::ValidationError;
use crate::line::webhook::{DedupError, ParseError, WebhookError};

/// Any error enishi returns. Each module also has its own, more precise error type,
/// which converts into this one with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier did not have its required format.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A request broke LINE's documented limits; nothing was sent.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A webhook request was refused (signature or body).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// A webhook body is not a webhook payload.
    #[error(transparent)]
    WebhookParse(#[from] ParseError),
    /// A webhook de-duplication store failed.
    #[error(transparent)]
    Dedup(#[from] DedupError),
    /// A commerce backend call failed.
    #[error(transparent)]
    Commerce(#[from] crate::commerce::CommerceError),
    /// A customer could not be authenticated.
    #[error(transparent)]
    Auth(#[from] crate::commerce::AuthError),
    /// A link store failed or refused a change.
    #[error(transparent)]
    LinkStore(#[from] crate::link::LinkStoreError),
    /// An ID-link flow step failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    /// A LINE Login step failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Login(#[from] crate::link::LoginError),
    /// A LINE Messaging API call failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Line(#[from] LineError),
}

/// `Result` with enishi's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
