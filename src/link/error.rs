//! What can go wrong in the account-link flow, and what the link page says about it.

use std::time::Duration;

use super::store::LinkStoreError;
use crate::commerce::{AuthError, CommerceError};
use crate::line::LineError;

/// Why a link-flow step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The store failed or rejected a ticket / a conflicting link (see
    /// [`LinkStoreError::reject_reason`]).
    #[error(transparent)]
    Store(#[from] LinkStoreError),
    /// Calling LINE failed (issuing the link token, replying).
    #[error("calling LINE failed")]
    Line(#[source] LineError),
    /// The customer could not be authenticated.
    #[error("customer authentication failed")]
    Auth(#[source] AuthError),
    /// No [`CustomerAuthenticator`](crate::commerce::CustomerAuthenticator) was configured.
    #[error("no customer authenticator is configured")]
    NoAuthenticator,
    /// This client made too many password attempts (see [`AttemptLimit`](super::AttemptLimit)); nothing was checked.
    #[error("too many password attempts from this client; try again in {retry_after:?}")]
    TooManyAttempts {
        /// How long until the next attempt is allowed.
        retry_after: Duration,
    },
    /// An `accountLink` event with `result: ok` but no user ID: nothing can be linked.
    #[error("the accountLink event has no source user ID")]
    MissingUser,
    /// A redirect target is not one of the configured URLs (open-redirect guard).
    #[error("redirect to {0:?} is not allowed")]
    RedirectNotAllowed(String),
    /// The configuration is invalid.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// What was configured.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl LinkError {
    /// The ticket rejection reason, when a nonce, state or link token was rejected.
    #[must_use]
    pub fn reject_reason(&self) -> Option<super::RejectReason> {
        match self {
            Self::Store(e) => e.reject_reason(),
            _ => None,
        }
    }

    /// What to tell the customer on the link page after [`AccountLinker::complete_login`](super::AccountLinker::complete_login) or
    /// [`AccountLinker::complete_with_password`](super::AccountLinker::complete_with_password) failed.
    #[must_use]
    pub fn login_failure(&self) -> LoginFailure {
        match self {
            Self::Store(LinkStoreError::Rejected { .. }) => LoginFailure::LinkUnusable,
            Self::Store(LinkStoreError::Conflict(_)) => LoginFailure::Conflict,
            Self::TooManyAttempts { retry_after } => {
                LoginFailure::TryLater { retry_after: Some(*retry_after) }
            }
            Self::Auth(e) => match e {
                AuthError::InvalidCredentials => LoginFailure::WrongCredentials,
                AuthError::RateLimited { retry_after } => {
                    LoginFailure::TryLater { retry_after: *retry_after }
                }
                AuthError::VerificationRequired => LoginFailure::VerificationRequired,
                AuthError::Backend { source, .. } => match source.downcast_ref::<CommerceError>() {
                    Some(CommerceError::RateLimited { retry_after, .. }) => {
                        LoginFailure::TryLater { retry_after: *retry_after }
                    }
                    // A refused API token, a 403 from a firewall in front of the shop, a
                    // timeout: the shop cannot answer, which says nothing about the password.
                    _ => LoginFailure::Unavailable,
                },
                _ => LoginFailure::Unavailable,
            },
            _ => LoginFailure::Unavailable,
        }
    }
}

/// What the link page tells the customer when a login for linking failed (see
/// [`LinkError::login_failure`]). The `default_*` texts are Japanese; a host with its own
/// wording matches on the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailure {
    /// The link token is unknown, already used or expired. One answer for all three, whatever
    /// the e-mail and password: telling them apart would help someone probing tokens.
    LinkUnusable,
    /// The e-mail address or password is wrong.
    WrongCredentials,
    /// Too many attempts (from this client, or at the shop): try again later.
    TryLater {
        /// How long to wait, when known.
        retry_after: Option<Duration>,
    },
    /// The shop wants a second factor (e.g. SMS) first: sign in on the shop's own site.
    VerificationRequired,
    /// The shop or enishi cannot answer now (backend down or refusing, store failure).
    Unavailable,
    /// The LINE user or the customer is linked to someone else already: contact the shop.
    Conflict,
}

impl LoginFailure {
    /// The HTTP status for the page: 400, 401, 429, 403, 503 or 409.
    #[must_use]
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::LinkUnusable => http::StatusCode::BAD_REQUEST,
            Self::WrongCredentials => http::StatusCode::UNAUTHORIZED,
            Self::TryLater { .. } => http::StatusCode::TOO_MANY_REQUESTS,
            Self::VerificationRequired => http::StatusCode::FORBIDDEN,
            Self::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict => http::StatusCode::CONFLICT,
        }
    }

    /// The page title (Japanese).
    #[must_use]
    pub fn default_title(&self) -> &'static str {
        match self {
            Self::LinkUnusable => "このリンクは使えません",
            Self::WrongCredentials => "ログインできません",
            Self::TryLater { .. } | Self::Unavailable => "ただいま連携できません",
            Self::VerificationRequired => "追加の確認が必要です",
            Self::Conflict => "連携できませんでした",
        }
    }

    /// What to tell the customer (Japanese); the same text every time (no times, no IDs).
    #[must_use]
    pub fn default_message(&self) -> &'static str {
        match self {
            Self::LinkUnusable => {
                "連携用のリンクの有効期限が切れたか、すでに使われています。\
                 LINE のリッチメニューからもう一度お試しください。"
            }
            Self::WrongCredentials => "メールアドレスかパスワードが違います。",
            Self::TryLater { .. } | Self::Unavailable => "しばらくしてからもう一度お試しください。",
            Self::VerificationRequired => {
                "ショップのサイトでログインして本人確認を済ませてから、もう一度お試しください。"
            }
            Self::Conflict => {
                "このLINEアカウント、またはショップのアカウントは、すでに別のアカウントと\
                 連携されています。お手数ですが、ショップまでお問い合わせください。"
            }
        }
    }
}
