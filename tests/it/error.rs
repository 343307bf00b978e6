//! `enishi::Error` wraps every public error type of the crate: `?` converts each one into it,
//! into the variant named after it, with the same message.

use enishi::Error;

/// For each `name: Type => Variant`, a module with `question_mark` (compiles only when `?`
/// converts `Type` into `enishi::Error`) and `variant` (whether an error is an
/// `Error::Variant`).
macro_rules! wraps {
    ($($(#[$cfg:meta])* $name:ident: $ty:ty => $variant:ident;)*) => {
        $(
            $(#[$cfg])*
            #[allow(dead_code)]
            mod $name {
                use super::Error;

                pub(super) fn question_mark(result: Result<(), $ty>) -> enishi::Result<()> {
                    result?;
                    Ok(())
                }

                pub(super) fn variant(error: &Error) -> bool {
                    matches!(error, Error::$variant(_))
                }
            }
        )*
    };
}

wraps! {
    id: enishi::IdError => Id;

    validation: enishi::line::ValidationError => Validation;
    #[cfg(feature = "client")]
    line: enishi::line::LineError => Line;
    #[cfg(feature = "client")]
    line_api: enishi::line::ApiError => LineApi;
    #[cfg(feature = "client")]
    line_api_boxed: Box<enishi::line::ApiError> => LineApi;
    #[cfg(feature = "client")]
    rate_limiter: enishi::line::RateLimiterError => RateLimiter;
    webhook: enishi::line::webhook::WebhookError => Webhook;
    webhook_body: enishi::line::webhook::BodyError => WebhookBody;
    webhook_event: enishi::line::webhook::EventError => WebhookEvent;
    dedup: enishi::line::webhook::DedupError => Dedup;

    commerce: enishi::commerce::CommerceError => Commerce;
    auth: enishi::commerce::AuthError => Auth;
    sync: enishi::commerce::sync::SyncError => Sync;
    #[cfg(feature = "ecforce")]
    ecforce_build: enishi::commerce::EcforceBuildError => EcforceBuild;
    #[cfg(feature = "ecforce")]
    ecforce_http: enishi::commerce::EcforceHttpError => EcforceHttp;
    #[cfg(feature = "ecforce")]
    ecforce_label: enishi::commerce::InvalidLabelName => EcforceLabel;
    #[cfg(all(feature = "ecforce", feature = "axum"))]
    ecforce_webhook_secret: enishi::commerce::EcforceWebhookSecretError => EcforceWebhookSecret;
    #[cfg(all(feature = "ecforce", feature = "axum"))]
    ecforce_webhook_build: enishi::commerce::EcforceWebhookBuildError => EcforceWebhookBuild;

    link_store: enishi::link::LinkStoreError => LinkStore;
    id_token: enishi::link::IdTokenError => IdToken;
    #[cfg(feature = "client")]
    link: enishi::link::LinkError => Link;
    #[cfg(feature = "client")]
    login: enishi::link::LoginError => Login;

    #[cfg(feature = "client")]
    chat_store: enishi::chat::ChatStoreError => ChatStore;
    #[cfg(feature = "client")]
    chat: enishi::chat::ChatError => Chat;

    segment: enishi::segment::SegmentError => Segment;
    segment_parse: enishi::segment::ParseError => SegmentParse;
    schema: enishi::segment::SchemaError => Schema;

    template: enishi::campaign::TemplateError => Template;
    render: enishi::campaign::RenderError => Render;
    plan: enishi::campaign::PlanError => Plan;
    journal: enishi::campaign::JournalError => Journal;
    #[cfg(feature = "client")]
    dispatch: enishi::campaign::DispatchError => Dispatch;
    scenario: enishi::campaign::scenario::ScenarioError => Scenario;
    unknown_customer: enishi::campaign::scenario::UnknownCustomer => UnknownCustomer;
    track: enishi::campaign::TrackError => Track;
    click_store: enishi::campaign::ClickStoreError => ClickStore;

    #[cfg(feature = "app")]
    app: enishi::app::AppError => App;
    #[cfg(feature = "app")]
    pages: enishi::app::PagesError => Pages;
    #[cfg(feature = "client")]
    storage: enishi::storage::StorageError => Storage;

    #[cfg(feature = "postgres")]
    pool: enishi::postgres::PoolError => Pool;
    #[cfg(feature = "testkit")]
    testkit: enishi::testkit::TestkitError => Testkit;
}

/// `err` goes through `?` into its own variant, message unchanged.
macro_rules! assert_wrapped {
    ($module:ident, $err:expr) => {{
        let err = $err;
        let message = err.to_string();
        let wrapped = $module::question_mark(Err(err)).expect_err("an error stays an error");
        assert_eq!(wrapped.to_string(), message, "{}", stringify!($module));
        assert!($module::variant(&wrapped), "{} is in its own variant", stringify!($module));
    }};
}

#[test]
fn question_mark_wraps_each_error_in_its_own_variant() {
    assert_wrapped!(id, enishi::LineUserId::new("not a user ID").expect_err("malformed"));
    assert_wrapped!(
        validation,
        enishi::line::message::validate_messages(&[]).expect_err("no message")
    );
    assert_wrapped!(webhook_body, enishi::line::webhook::parse(b"[]").expect_err("not a payload"));
    let secret = enishi::line::webhook::ChannelSecret::new("secret");
    assert_wrapped!(
        webhook,
        enishi::line::webhook::verify(&secret, None, b"{}").expect_err("no signature")
    );
    assert_wrapped!(
        segment,
        enishi::segment::SegmentDefinition::parse("orders count >=").expect_err("incomplete")
    );
    assert_wrapped!(template, enishi::campaign::TextTemplate::parse("{{ name").expect_err("open"));
    assert_wrapped!(
        scenario,
        enishi::campaign::scenario::ScenarioSet::from_json("not JSON").expect_err("not JSON")
    );
    #[cfg(feature = "ecforce")]
    assert_wrapped!(ecforce_label, enishi::commerce::LabelSync::new("a,b").expect_err("comma"));
    #[cfg(all(feature = "ecforce", feature = "axum"))]
    assert_wrapped!(
        ecforce_webhook_secret,
        enishi::commerce::EcforceWebhookSecret::new("short").expect_err("too short")
    );
}

#[test]
fn the_crate_error_is_send_sync_static() {
    fn assert<T: Send + Sync + 'static>() {}
    assert::<Error>();
}

/// Small enough that returning `enishi::Result` does not trip clippy's `result_large_err`
/// (128 bytes and up) in the host's code: large payloads are boxed.
#[test]
fn the_crate_error_stays_small() {
    assert!(std::mem::size_of::<Error>() < 128, "{} bytes", std::mem::size_of::<Error>());
}
