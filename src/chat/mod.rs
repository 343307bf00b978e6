//! The chatbot: a router for LINE messages with customer context, hand-off to staff, surveys;
//! this part is its storage.
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

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

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
