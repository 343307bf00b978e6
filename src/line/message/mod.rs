//! Message objects (temporary minimal version; the full typed set lands with the messages work).

use serde::{Deserialize, Serialize};

use crate::line::{ValidationError, Validator};

/// A message object sent to LINE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Message {
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }
}

/// An action (tap behaviour) of a template, rich menu area or quick-reply button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Action {
    /// Opens a URI.
    Uri {
        /// Label.
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The URI.
        uri: String,
    },
    /// Sends a postback event.
    Postback {
        /// Label.
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// Postback data.
        data: String,
    },
}

/// Validates a request's `messages` (1 to 5 messages).
///
/// # Errors
/// [`ValidationError`] naming every broken limit.
pub fn validate_messages(messages: &[Message]) -> Result<(), ValidationError> {
    let mut v = Validator::new();
    v.count("messages", messages.len(), 1, 5);
    v.field("messages", |v| {
        for (i, m) in messages.iter().enumerate() {
            v.index(i, |v| match m {
                Message::Text { text } => v.utf16_len("text", text, 1, 5000),
            });
        }
    });
    v.finish()
}
