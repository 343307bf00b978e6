//! A LINE call described apart from its execution: method, host, path, query, body and the
//! retry and pacing rules that apply to it.

use http::Method;
use serde::Serialize;

use super::ratelimit::EndpointClass;
use crate::RetryKey;
use crate::line::ValidationError;

/// Which LINE host serves an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// `https://api.line.me`: JSON endpoints.
    Api,
    /// `https://api-data.line.me`: binary uploads and downloads.
    Data,
}

/// The body of a request.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(Vec<u8>),
    Bytes { content_type: &'static str, data: Vec<u8> },
}

/// Whether a request may be sent more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Never retried (reply, link token, rich-menu create, ...).
    Never,
    /// Safe to repeat (GET).
    Idempotent,
    /// Carries an `X-Line-Retry-Key`; every attempt sends the same key.
    RetryKey(RetryKey),
}

/// One call to LINE, fully described.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Short endpoint name for errors and logs, e.g. `push`.
    pub(crate) endpoint: &'static str,
    /// The rate-limit bucket (the endpoint, or a shared name where LINE shares the limit).
    pub(crate) bucket: &'static str,
    pub(crate) class: EndpointClass,
    pub(crate) method: Method,
    pub(crate) host: Host,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Body,
    pub(crate) replay: Replay,
    /// Overrides the client's per-attempt timeout (audience uploads want ≥ 30 s).
    pub(crate) timeout: Option<std::time::Duration>,
    /// Extra request headers (e.g. `X-Line-Delivery-Tag`), sent on every attempt.
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Request {
    pub(crate) fn new(endpoint: &'static str, method: Method, path: impl Into<String>) -> Self {
        let replay = if method == Method::GET { Replay::Idempotent } else { Replay::Never };
        Self {
            endpoint,
            bucket: endpoint,
            class: EndpointClass::Standard,
            method,
            host: Host::Api,
            path: path.into(),
            query: Vec::new(),
            body: Body::None,
            replay,
            timeout: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn get(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self::new(endpoint, Method::GET, path)
    }

    pub(crate) fn post(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self::new(endpoint, Method::POST, path)
    }

    pub(crate) fn delete(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self::new(endpoint, Method::DELETE, path)
    }

    pub(crate) fn put(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self::new(endpoint, Method::PUT, path)
    }

    pub(crate) fn class(mut self, class: EndpointClass) -> Self {
        self.class = class;
        self
    }

    pub(crate) fn bucket(mut self, bucket: &'static str) -> Self {
        self.bucket = bucket;
        self
    }

    pub(crate) fn host(mut self, host: Host) -> Self {
        self.host = host;
        self
    }

    pub(crate) fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    pub(crate) fn query_opt(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(name, v),
            None => self,
        }
    }

    /// Serialises `body` as JSON once; every attempt sends the same bytes.
    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self, ValidationError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ValidationError::new("(body)", format!("cannot be serialised: {e}")))?;
        self.body = Body::Json(bytes);
        Ok(self)
    }

    pub(crate) fn bytes(mut self, content_type: &'static str, data: Vec<u8>) -> Self {
        self.body = Body::Bytes { content_type, data };
        self
    }

    pub(crate) fn retry_key(mut self, key: RetryKey) -> Self {
        self.replay = Replay::RetryKey(key);
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}
