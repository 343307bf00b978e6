//! The crate-wide error.

use crate::IdError;
use crate::campaign::scenario::{ScenarioError, UnknownCustomer};
use crate::campaign::{
    ClickStoreError, JournalError, PlanError, RenderError, TemplateError, TrackError,
};
use crate::commerce::sync::SyncError;
use crate::commerce::{AuthError, CommerceError};
use crate::line::ValidationError;
use crate::line::webhook::{BodyError, DedupError, EventError, WebhookError};
use crate::link::{IdTokenError, LinkStoreError};
use crate::segment::{ParseError as SegmentParseError, SchemaError, SegmentError};

/// Any error enishi returns. Each module also has its own, more precise error type, which
/// converts into this one with `?`: there is one variant per public error type of the crate
/// (those of optional features only with the feature). Every variant is transparent: its
/// message and source are the wrapped error's.
///
/// New error types add variants, so the enum is `#[non_exhaustive]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // Identifiers.
    /// An identifier did not have its required format.
    #[error(transparent)]
    Id(#[from] IdError),

    // LINE: messages, the Messaging API client, webhooks.
    /// A request broke LINE's documented limits; nothing was sent.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A LINE Messaging API call failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Line(#[from] crate::line::LineError),
    /// LINE answered a call with an error status (usually found inside [`LineError::Api`]).
    /// Boxed, as in `LineError`, to keep `Error` small.
    ///
    /// [`LineError::Api`]: crate::line::LineError::Api
    #[cfg(feature = "client")]
    #[error(transparent)]
    LineApi(Box<crate::line::ApiError>),
    /// A rate limiter failed, so a LINE request was not sent.
    #[cfg(feature = "client")]
    #[error(transparent)]
    RateLimiter(#[from] crate::line::RateLimiterError),
    /// A webhook request was refused (signature or body).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// A webhook body is not a webhook payload.
    #[error(transparent)]
    WebhookBody(#[from] BodyError),
    /// One webhook event could not be read (the rest of its batch was).
    #[error(transparent)]
    WebhookEvent(#[from] EventError),
    /// A webhook de-duplication store failed.
    #[error(transparent)]
    Dedup(#[from] DedupError),

    // Commerce backends and sync.
    /// A commerce backend call failed.
    #[error(transparent)]
    Commerce(#[from] CommerceError),
    /// A customer could not be authenticated.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A sync from a commerce backend stopped.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// An ecforce client could not be built from its configuration.
    #[cfg(feature = "ecforce")]
    #[error(transparent)]
    EcforceBuild(#[from] crate::commerce::EcforceBuildError),
    /// ecforce answered with an error status (usually found as the source of a
    /// [`CommerceError`]).
    #[cfg(feature = "ecforce")]
    #[error(transparent)]
    EcforceHttp(#[from] crate::commerce::EcforceHttpError),
    /// An ecforce customer label name was refused.
    #[cfg(feature = "ecforce")]
    #[error(transparent)]
    EcforceLabel(#[from] crate::commerce::InvalidLabelName),
    /// An ecforce webhook secret is not usable.
    #[cfg(all(feature = "ecforce", feature = "axum"))]
    #[error(transparent)]
    EcforceWebhookSecret(#[from] crate::commerce::EcforceWebhookSecretError),
    /// An ecforce webhook endpoint could not be built from its configuration.
    #[cfg(all(feature = "ecforce", feature = "axum"))]
    #[error(transparent)]
    EcforceWebhookBuild(#[from] crate::commerce::EcforceWebhookBuildError),

    // Linking customers to LINE accounts.
    /// A link store failed or refused a change.
    #[error(transparent)]
    LinkStore(#[from] LinkStoreError),
    /// A LINE Login ID token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// An ID-link flow step failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    /// A LINE Login step failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Login(#[from] crate::link::LoginError),

    // The chatbot.
    /// A chat store failed or refused an argument.
    #[cfg(feature = "client")]
    #[error(transparent)]
    ChatStore(#[from] crate::chat::ChatStoreError),
    /// The chatbot could not be set up or could not answer.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),

    // Segments.
    /// A segment definition, evaluation or compilation failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A segment definition is not valid segment DSL.
    #[error(transparent)]
    SegmentParse(#[from] SegmentParseError),
    /// A segment definition does not fit its schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),

    // Campaigns: planning, delivery, scenarios and measurement.
    /// A message template could not be compiled.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A message template could not be rendered for a recipient.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A campaign could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A delivery journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A dispatcher run failed (its journal, or its configuration). Send failures are not
    /// errors: they are in the run's report.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Dispatch(#[from] crate::campaign::DispatchError),
    /// A scenario definition is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Scenario input named a customer the scenario state does not know.
    #[error(transparent)]
    UnknownCustomer(#[from] UnknownCustomer),
    /// A tracked link could not be made, or a click token is not valid.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// A click store failed.
    #[error(transparent)]
    ClickStore(#[from] ClickStoreError),

    // The ready-made app and its storage.
    /// The app could not be built or could not do what was asked.
    #[cfg(feature = "app")]
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    /// The customer pages could not be built (an unknown text, a broken template, a bad
    /// brand setting).
    #[cfg(feature = "app")]
    #[error(transparent)]
    Pages(#[from] crate::app::PagesError),
    /// The storage behind a storage URL could not be opened or reached.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),

    // Optional infrastructure.
    /// A PostgreSQL connection pool could not be made.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Pool(#[from] crate::postgres::PoolError),
    /// A fake LINE server could not start or was misconfigured.
    #[cfg(feature = "testkit")]
    #[error(transparent)]
    Testkit(#[from] crate::testkit::TestkitError),
}

#[cfg(feature = "client")]
impl From<crate::line::ApiError> for Error {
    fn from(error: crate::line::ApiError) -> Self {
        Self::LineApi(Box::new(error))
    }
}

#[cfg(feature = "client")]
impl From<Box<crate::line::ApiError>> for Error {
    fn from(error: Box<crate::line::ApiError>) -> Self {
        Self::LineApi(error)
    }
}

/// `Result` with enishi's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `err`'s message followed by each of its causes', joined with `": "`: the whole story on one
/// line, for places that keep an error as text (the delivery journal).
pub(crate) fn chain_message(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use super::chain_message;
    use crate::campaign::scenario::{ScenarioError, ScenarioSet};
    use crate::line::webhook::parse;

    /// The messages of `err` and its causes, outermost first.
    fn chain(err: &dyn StdError) -> Vec<String> {
        let mut out = vec![err.to_string()];
        let mut next = err.source();
        while let Some(cause) = next {
            out.push(cause.to_string());
            next = cause.source();
        }
        out
    }

    /// Each message of the chain is said once: no error repeats a cause's message in its own
    /// (the cause is printed on its own line by whoever reports the chain).
    #[track_caller]
    fn assert_said_once(err: &dyn StdError) {
        let chain = chain(err);
        assert!(chain.len() >= 2, "expected a cause under {chain:?}");
        for (i, outer) in chain.iter().enumerate() {
            for inner in chain.iter().skip(i + 1).filter(|m| !m.is_empty()) {
                assert!(!outer.contains(inner.as_str()), "{outer:?} repeats its cause {inner:?}");
            }
        }
    }

    fn scenario_error(steps: &str) -> ScenarioError {
        let json = format!(
            r#"{{"scenario": [{{"name": "x", "trigger": {{"type": "cart_abandoned"}}, "steps": [{steps}]}}]}}"#
        );
        ScenarioSet::from_json(&json).err().unwrap_or_else(|| panic!("accepted {json}"))
    }

    #[test]
    fn scenario_errors_say_each_cause_once() {
        let json = scenario_error(r#"{"name": "a", "delay": "soon", "message": "m"}"#);
        assert!(matches!(json, ScenarioError::Json(_)), "{json:?}");
        assert_said_once(&json);
        // The field path is still in the chain.
        assert!(chain_message(&json).contains("scenario[0].steps[0].delay"), "{json}");

        let segment = scenario_error(
            r#"{"name": "a", "delay": "3h", "message": "m", "condition": "orders count >="}"#,
        );
        assert!(matches!(segment, ScenarioError::Segment { .. }), "{segment:?}");
        assert_said_once(&segment);

        let template = scenario_error(r#"{"name": "a", "delay": "3h", "message": "{{ name"}"#);
        assert!(matches!(template, ScenarioError::Template { .. }), "{template:?}");
        assert_said_once(&template);
    }

    #[cfg(feature = "toml")]
    #[test]
    fn scenario_toml_errors_say_each_cause_once() {
        let err = ScenarioSet::from_toml("[[scenario]]\nname = 3").expect_err("rejected");
        assert!(matches!(err, ScenarioError::Toml(_)), "{err:?}");
        assert_said_once(&err);
    }

    #[test]
    fn webhook_errors_say_each_cause_once() {
        let body = parse(b"[]").expect_err("not a payload");
        assert_said_once(&body);
        let payload = parse(
            br#"{"destination": "U1", "events": [{"type": "follow", "timestamp": "noon", "mode": "active"}]}"#,
        )
        .expect("a payload");
        let event = payload.events[0].error().expect("the event is malformed");
        assert_said_once(event);
        // Two events broken in different ways are different errors.
        let other = parse(
            br#"{"destination": "U1", "events": [{"type": "follow", "timestamp": true, "mode": "active"}]}"#,
        )
        .expect("a payload");
        assert_ne!(Some(event), other.events[0].error());
    }

    #[cfg(feature = "client")]
    #[test]
    fn line_errors_say_each_cause_once() {
        use crate::line::{LineError, RateLimiterError};
        let decode = LineError::Decode {
            endpoint: "push",
            status: http::StatusCode::OK,
            request_id: None,
            body: "x".into(),
            source: serde_json::from_str::<u8>("x").expect_err("not JSON"),
        };
        assert_said_once(&decode);
        let limiter = LineError::RateLimiter {
            endpoint: "push",
            attempts: 1,
            source: RateLimiterError::backend("redis", "EVALSHA", std::io::Error::other("refused")),
        };
        assert_said_once(&limiter);
    }

    #[test]
    fn chain_message_joins_every_cause() {
        let err = scenario_error(r#"{"name": "a", "delay": "3h", "message": "{{ name"}"#);
        let chain = chain(&err);
        assert_eq!(chain_message(&err), chain.join(": "));
        assert!(chain.len() >= 2);
    }
}
