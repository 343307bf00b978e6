//! The chatbot: a router for LINE messages with customer context, hand-off to staff, surveys
//! (see `docs/chat.md`).
//!
//! - [`ChatBot`]: one webhook event in, the right answer out — [`Rule`]s (keywords after
//!   [`normalize`], regexes, follows) pick an [`Intent`] (orders, 定期, points, rank, link,
//!   opt-out, help, hand-off, surveys, the shop's own [`ChatHandler`]) answered from the
//!   customer's [`CustomerContext`]; replies by token, one push when the token is spent.
//!
//! - [`ChatStore`]: running hand-offs to staff, customer attributes the chat wrote (survey
//!   answers, the marketing opt-out), survey progress and the conversation log, scoped to one
//!   LINE channel; implemented by [`MemoryChatStore`], `SqliteChatStore` (feature `sqlite`)
//!   and `PostgresChatStore` (feature `postgres`), which all pass one conformance suite
//!   (`chat::conformance`, feature `testkit`, public so a host checks its own store with it).
//! - [`Storage::chat`](crate::storage::Storage::chat) opens it in the same database as the
//!   other stores.
//!
//! Tests: chat.

mod bot;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
mod handoff;
mod memory;
mod normalize;
mod postback;
#[cfg(feature = "postgres")]
mod postgres;
mod router;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod subscription;
mod survey;
mod texts;

pub use memory::MemoryChatStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresChatStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteChatStore;
pub use store::{
    ATTRIBUTE_VALUE_MAX_BYTES, ChatStore, ChatStoreError, Direction, HANDOFF_REASON_MAX_CHARS,
    HandOff, LOG_TEXT_MAX_CHARS, LogEntry, NAME_MAX_BYTES, SurveyProgress,
};

pub use bot::{
    AttributeListener, ChatBot, ChatBotBuilder, ChatOutcome, ChatSummary, OPT_OUT_ATTRIBUTE,
};
pub use normalize::normalize;
pub use postback::PostbackCommand;
pub use router::{
    ChatHandler, ContextSource, Conversation, CustomerContext, Intent, Rule, default_rules,
};
pub use survey::{Question, Survey, skin_type_survey};

/// What the chatbot could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// An invalid setting (a text key, a template, a survey, the postback key).
    #[error("invalid chatbot setting: {0}")]
    Config(String),
    /// The chat state could not be read or written.
    #[error(transparent)]
    Store(#[from] ChatStoreError),
    /// The answer could not be delivered for a reason that may pass: the event should come
    /// again (the webhook answers with an error), and its push goes out once.
    #[error("the answer could not be delivered yet: {0}")]
    Delivery(String),
}
