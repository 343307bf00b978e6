//! Step 2 with enishi checking the password: the link page's sign-in.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::LinkError;
use super::flow::{AccountLinker, NonceIssued};
use super::secret::OneTimeSecret;
use super::store::TicketKind;
use crate::commerce::Password;
use crate::line::LinkToken;

impl AccountLinker {
    /// Step 2 with enishi checking the login: checks the link token, then email + password
    /// with the configured [`CustomerAuthenticator`] (e.g. ecforce sign-in), then
    /// [`complete_login`]. `client` is the browser's address (see [`client_ip`]); each address
    /// gets [`AttemptLimit`] failed attempts.
    ///
    /// The link token is checked (not spent) **before** the shop is asked about the password:
    /// without a usable token the answer is the same ([`LoginFailure::LinkUnusable`]) whatever
    /// the e-mail and password, so the public link page cannot be used to test passwords. A
    /// wrong password does not spend the token.
    ///
    /// [`complete_login`]: Self::complete_login
    /// [`client_ip`]: super::client_ip
    /// [`CustomerAuthenticator`]: crate::commerce::CustomerAuthenticator
    /// [`AttemptLimit`]: super::AttemptLimit
    /// [`LoginFailure::LinkUnusable`]: super::LoginFailure::LinkUnusable
    ///
    /// # Errors
    /// [`LinkError::TooManyAttempts`], [`LinkError::NoAuthenticator`], [`LinkError::Auth`], or
    /// as `complete_login`; [`LinkError::login_failure`] says what to show.
    pub async fn complete_with_password(
        &self,
        link_token: &LinkToken,
        email: &str,
        password: &Password,
        client: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<NonceIssued, LinkError> {
        let auth = self.inner.authenticator.as_ref().ok_or(LinkError::NoAuthenticator)?;
        if let Some(limiter) = &self.inner.attempts
            && let Err(retry_after) = limiter.try_acquire(client, now)
        {
            tracing::warn!(
                target: "enishi::link",
                %client,
                retry_after_secs = retry_after.as_secs(),
                "too many password attempts on the link page"
            );
            return Err(LinkError::TooManyAttempts { retry_after });
        }
        let result = async {
            let key = OneTimeSecret::from_received(link_token.expose()).key();
            self.inner.store.peek_ticket(TicketKind::LinkToken, &key, None, now).await?;
            let customer = auth.authenticate(email, password).await.map_err(LinkError::Auth)?;
            self.complete_login(link_token, &customer, now).await
        }
        .await;
        // Only failures use the allowance up: customers behind one shared address still link.
        if result.is_ok()
            && let Some(limiter) = &self.inner.attempts
        {
            limiter.refund(client, now);
        }
        result
    }
}
