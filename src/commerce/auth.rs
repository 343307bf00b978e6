//! Customer authentication (email + password → customer ID), used by the ID-link flow when the
//! shop lets enishi check the login against its cart (for example ecforce customer sign-in).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::CustomerId;

/// A customer's password: never printed by `Debug` or `Display`.
#[derive(Clone)]
pub struct Password(secrecy::SecretString);

impl Password {
    /// Wraps a password received from a login form.
    #[must_use]
    pub fn new(password: impl Into<String>) -> Self {
        Self(secrecy::SecretString::from(password.into()))
    }

    /// The password, for sending to the backend that checks it.
    #[must_use]
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Why a customer could not be authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The email and password do not match a customer.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many attempts (ecforce allows 5 sign-ins per hour); try again later.
    #[error("too many sign-in attempts; try again later")]
    RateLimited {
        /// How long to wait, when the backend says.
        retry_after: Option<Duration>,
    },
    /// The backend wants a second factor (ecforce: SMS verification) before it confirms the
    /// customer. The host must send the customer through the backend's own verification.
    #[error("the backend requires SMS verification before sign-in")]
    VerificationRequired,
    /// The backend does not support authenticating customers.
    #[error("{backend} does not support customer authentication")]
    NotImplemented {
        /// The backend's name.
        backend: &'static str,
    },
    /// The backend failed (transport, unexpected answer).
    #[error("customer authentication with {backend} failed")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AuthError {
    /// What to tell the customer on the login page, in Japanese. Only a wrong e-mail or
    /// password says so; a sign-in limit says "try again later", anything else that the shop
    /// cannot be reached right now.
    #[must_use]
    pub fn customer_message(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "メールアドレスまたはパスワードが正しくありません。",
            Self::RateLimited { .. } => {
                "ログインの試行が集中しています。しばらく時間をおいてから、もう一度お試しください。"
            }
            Self::VerificationRequired => {
                "SMS認証が必要です。ショップのマイページからログインしてください。"
            }
            Self::NotImplemented { .. } | Self::Backend { .. } => {
                "ただいまショップに接続できません。しばらく時間をおいてから、もう一度お試しください。"
            }
        }
    }
}

/// Checks a customer's email and password against the shop and returns the customer's ID.
///
/// Object safe: use it as `Arc<dyn CustomerAuthenticator>`.
#[async_trait]
pub trait CustomerAuthenticator: Send + Sync + fmt::Debug + 'static {
    /// Authenticates a customer.
    ///
    /// # Errors
    /// [`AuthError`] saying why the customer could not be authenticated.
    async fn authenticate(&self, email: &str, password: &Password)
    -> Result<CustomerId, AuthError>;
}
