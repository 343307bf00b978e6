//! The semantic error every commerce backend returns.

use std::time::Duration;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to a commerce backend. Shared by all backends, so callers can react
/// (retry later, re-authenticate, skip a record) without knowing which cart they talk to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommerceError {
    /// The record does not exist.
    #[error("{backend}: {what} not found")]
    NotFound {
        /// The backend's name.
        backend: &'static str,
        /// What was looked for (for example `customer 42`).
        what: String,
    },
    /// The credentials (API token) were refused.
    #[error("{backend}: authentication failed: {message}")]
    Unauthenticated {
        /// The backend's name.
        backend: &'static str,
        /// The backend's message.
        message: String,
    },
    /// The backend is rate limiting us and retries are used up.
    #[error("{backend}: rate limited")]
    RateLimited {
        /// The backend's name.
        backend: &'static str,
        /// How long the backend asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The backend accepted a write but, read back, does not hold the value written (ecforce
    /// answers 200 and silently drops parameters it does not permit).
    #[error("{backend}: write not applied: {what}")]
    NotApplied {
        /// The backend.
        backend: &'static str,
        /// What was written and what the backend holds instead.
        what: String,
    },
    /// The write conflicts with the record's state (or the backend rejected it as invalid).
    #[error("{backend}: conflict: {message}")]
    Conflict {
        /// The backend's name.
        backend: &'static str,
        /// The backend's message (with its error code, when it gives one).
        message: String,
    },
    /// A record or response could not be decoded.
    #[error("{backend}: cannot decode `{field}`: {reason}")]
    Decode {
        /// The backend's name.
        backend: &'static str,
        /// The path of the failing field (for example `attributes.buy_total`).
        field: String,
        /// What was wrong.
        reason: String,
        /// The record or body that failed (kept for diagnosis; may hold personal data).
        body: String,
    },
    /// The request failed on the way (connection, timeout, unexpected status).
    #[error("{backend}: transport error")]
    Transport {
        /// The backend's name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The backend does not support the operation.
    #[error("{backend} does not support {operation}")]
    NotImplemented {
        /// The operation (for example `grant_points`).
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
    },
}

impl CommerceError {
    /// Whether trying again later may succeed (rate limits and transport failures).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transport { .. })
    }

    /// Whether this error concerns one record only (a decode error), so the rest of the read can
    /// go on.
    #[must_use]
    pub fn is_record_level(&self) -> bool {
        matches!(self, Self::Decode { .. })
    }

    /// The backend that returned the error.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Self::NotFound { backend, .. }
            | Self::Unauthenticated { backend, .. }
            | Self::RateLimited { backend, .. }
            | Self::Conflict { backend, .. }
            | Self::NotApplied { backend, .. }
            | Self::Decode { backend, .. }
            | Self::Transport { backend, .. }
            | Self::NotImplemented { backend, .. } => backend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<CommerceError>();
    }

    #[test]
    fn messages_name_the_field_and_operation() {
        let e = CommerceError::Decode {
            backend: "ecforce",
            field: "attributes.buy_total".into(),
            reason: "not a number".into(),
            body: "{}".into(),
        };
        assert!(e.to_string().contains("attributes.buy_total"));
        assert!(e.is_record_level());
        let e = CommerceError::NotImplemented { operation: "grant_points", backend: "memory" };
        assert_eq!(e.to_string(), "memory does not support grant_points");
        assert!(!e.is_retryable());
    }
}
