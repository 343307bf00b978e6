//! Webhooks: signature verification, forward-compatible parsing, de-duplication.
//!
//! The flow for one request:
//!
//! 1. [`verify`] (or [`ChannelSecrets::verify`] during a secret rotation) the raw body
//!    against the `x-line-signature` header. Never parse or re-serialise the body first.
//! 2. [`parse`] the same bytes into a [`WebhookPayload`]. Parsing never fails on anything new:
//!    unknown event types become [`EventKind::Unknown`], unknown message and source types are
//!    kept with their raw JSON, unknown enum values become `Unknown(String)`, and every event
//!    keeps its exact raw JSON ([`Event::raw_json`]). One malformed event becomes
//!    [`EventKind::Malformed`] without failing the batch.
//! 3. Handle each event once: claim its `webhookEventId` in an [`EventDedup`] store
//!    ([`MemoryDedup`], `SqliteDedup` with feature `sqlite`, `PostgresDedup` with feature
//!    `postgres`) and skip it when it was already claimed; answer 200 quickly, or 500 when the
//!    store cannot answer, so that LINE redelivers instead of a duplicate getting through.
//!
//! With feature `axum`, `WebhookService` does all three behind a router.
//!
//! ```
//! use enishi::line::webhook::{ChannelSecret, EventKind, parse, sign, verify};
//! let secret = ChannelSecret::new("channel-secret");
//! let body = br#"{"destination":"U0","events":[{"type":"unfollow","timestamp":1,
//!   "source":{"type":"user","userId":"U1"},"webhookEventId":"01H","mode":"active",
//!   "deliveryContext":{"isRedelivery":false}}]}"#;
//! let header = sign(&secret, body); // what LINE sends as x-line-signature
//! verify(&secret, Some(&header), body)?;
//! let payload = parse(body)?;
//! assert!(matches!(payload.events[0].kind, EventKind::Unfollow));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/webhooks.md` for console setup and the choice of de-duplication store.

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
mod dedup;
mod event;
mod parse;
#[cfg(feature = "axum")]
mod service;
mod signature;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use dedup::PostgresDedup;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use dedup::SqliteDedup;
pub use dedup::{DEFAULT_RETENTION, DedupError, EventDedup, MemoryDedup};
pub use event::{
    AccountLink, ActionResult, AudioMessage, Beacon, BeaconType, ChatControl, ContentProvider,
    ContentProviderType, DeliveryContext, DetachReason, Emoji, Event, EventError, EventKind,
    FileMessage, Follow, ImageMessage, ImageSet, LinkResult, LocationMessage, Members, Membership,
    MembershipType, Mention, Mentionee, MentioneeType, MessageContent, Mode, ModuleContent,
    PnpDelivery, Postback, PostbackParams, ScenarioResult, Source, StickerMessage,
    StickerResourceType, TextMessage, Things, ThingsType, UnknownMessage, Unsend, VideoMessage,
    VideoPlayComplete, WebhookPayload,
};
pub use parse::{BodyError, parse, parse_event};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use service::{
    DEFAULT_BODY_LIMIT, DedupStatus, Delivery, EventHandler, HandlerError, WebhookService,
    WebhookServiceBuilder,
};
pub use signature::{ChannelSecret, ChannelSecrets, SIGNATURE_HEADER, WebhookError, sign, verify};

/// Verifies the signature, then parses the body: the two steps every webhook endpoint needs.
///
/// # Errors
/// [`WebhookError`]: a signature error, or [`WebhookError::Parse`] when a correctly signed body
/// is not a webhook payload.
pub fn verify_and_parse(
    secrets: &ChannelSecrets,
    signature_header: Option<&str>,
    raw_body: &[u8],
) -> Result<WebhookPayload, WebhookError> {
    secrets.verify(signature_header, raw_body)?;
    Ok(parse(raw_body)?)
}
