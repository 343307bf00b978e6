//! Text messages: `text` (with LINE emoji) and `textV2` (with mention and emoji substitution).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MessageCommon, check, limits};
use crate::LineUserId;
use crate::line::Validator;

/// A text message (`"type": "text"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TextMessage {
    /// The text (1 to 5,000 UTF-16 code units). LINE emoji are placed at `$` characters.
    pub text: String,
    /// LINE emoji replacing `$` characters of `text` (≤ 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emojis: Vec<Emoji>,
    /// Quote token of a message to quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// A LINE emoji in a text message, replacing the `$` at `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Emoji {
    /// Position of the `$` in `text`, counted in UTF-16 code units from 0.
    pub index: u32,
    /// Product ID of the emoji set.
    pub product_id: String,
    /// Emoji ID within the set.
    pub emoji_id: String,
}

impl Emoji {
    /// The emoji `emoji_id` of set `product_id`, at UTF-16 position `index`.
    #[must_use]
    pub fn new(index: u32, product_id: impl Into<String>, emoji_id: impl Into<String>) -> Self {
        Self { index, product_id: product_id.into(), emoji_id: emoji_id.into() }
    }
}

impl TextMessage {
    /// A plain text message.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            emojis: Vec::new(),
            quote_token: None,
            common: MessageCommon::default(),
        }
    }

    /// Adds a LINE emoji at the `$` found at UTF-16 position `index` of the text.
    #[must_use]
    pub fn with_emoji(mut self, emoji: Emoji) -> Self {
        self.emojis.push(emoji);
        self
    }

    /// Quotes the message with this quote token.
    #[must_use]
    pub fn with_quote_token(mut self, quote_token: impl Into<String>) -> Self {
        self.quote_token = Some(quote_token.into());
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::text(v, "text", &self.text, 1, limits::TEXT_MAX);
        v.count("emojis", self.emojis.len(), 0, limits::TEXT_EMOJIS_MAX);
        let units: Vec<u16> = self.text.encode_utf16().collect();
        v.field("emojis", |v| {
            for (i, emoji) in self.emojis.iter().enumerate() {
                v.index(i, |v| {
                    let at = usize::try_from(emoji.index).ok().and_then(|i| units.get(i));
                    if at != Some(&u16::from(b'$')) {
                        v.violation_at(
                            "index",
                            format!(
                                "must point at a '$' in text (UTF-16 position {})",
                                emoji.index
                            ),
                        );
                    }
                    check::non_empty(v, "productId", &emoji.product_id);
                    check::non_empty(v, "emojiId", &emoji.emoji_id);
                });
            }
        });
        check::opt_non_empty(v, "quoteToken", self.quote_token.as_deref());
    }
}

/// A text message v2 (`"type": "textV2"`): `{key}` placeholders in `text` are replaced by
/// mentions or LINE emoji from `substitution`; write `{{` and `}}` for literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TextMessageV2 {
    /// The text with `{key}` placeholders (1 to 5,000 UTF-16 code units).
    pub text: String,
    /// Replacement per key (keys match `[0-9a-zA-Z_]{1,20}`; ≤ 100 entries).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub substitution: BTreeMap<String, Substitution>,
    /// Quote token of a message to quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
    /// Quick reply and sender override.
    #[serde(flatten)]
    pub common: MessageCommon,
}

/// What a `{key}` placeholder of a text message v2 becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Substitution {
    /// A mention (in group chats and rooms only).
    Mention {
        /// Who is mentioned.
        mentionee: MentionTarget,
    },
    /// A LINE emoji.
    #[serde(rename_all = "camelCase")]
    Emoji {
        /// Product ID of the emoji set.
        product_id: String,
        /// Emoji ID within the set.
        emoji_id: String,
    },
}

/// Who a mention substitution mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum MentionTarget {
    /// One user.
    #[serde(rename_all = "camelCase")]
    User {
        /// The mentioned user.
        user_id: LineUserId,
    },
    /// Everyone in the chat.
    All,
}

impl TextMessageV2 {
    /// A text message v2 without substitutions yet.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            substitution: BTreeMap::new(),
            quote_token: None,
            common: MessageCommon::default(),
        }
    }

    /// Replaces `{key}` with a mention of `user`.
    #[must_use]
    pub fn with_mention(mut self, key: impl Into<String>, user: LineUserId) -> Self {
        let mentionee = MentionTarget::User { user_id: user };
        self.substitution.insert(key.into(), Substitution::Mention { mentionee });
        self
    }

    /// Replaces `{key}` with a mention of everyone in the chat.
    #[must_use]
    pub fn with_mention_all(mut self, key: impl Into<String>) -> Self {
        let mentionee = MentionTarget::All;
        self.substitution.insert(key.into(), Substitution::Mention { mentionee });
        self
    }

    /// Replaces `{key}` with a LINE emoji.
    #[must_use]
    pub fn with_emoji(
        mut self,
        key: impl Into<String>,
        product_id: impl Into<String>,
        emoji_id: impl Into<String>,
    ) -> Self {
        let emoji =
            Substitution::Emoji { product_id: product_id.into(), emoji_id: emoji_id.into() };
        self.substitution.insert(key.into(), emoji);
        self
    }

    /// Quotes the message with this quote token.
    #[must_use]
    pub fn with_quote_token(mut self, quote_token: impl Into<String>) -> Self {
        self.quote_token = Some(quote_token.into());
        self
    }

    pub(super) fn validate(&self, v: &mut Validator) {
        check::text(v, "text", &self.text, 1, limits::TEXT_MAX);
        v.count("substitution", self.substitution.len(), 0, limits::TEXT_V2_SUBSTITUTIONS_MAX);
        let used = placeholders(&self.text)
            .into_iter()
            .filter(|key| self.substitution.contains_key(*key))
            .count();
        if used > limits::TEXT_V2_PLACEHOLDERS_MAX {
            v.violation_at(
                "text",
                format!(
                    "may use at most {} mention and emoji placeholders (got {used})",
                    limits::TEXT_V2_PLACEHOLDERS_MAX
                ),
            );
        }
        v.field("substitution", |v| {
            for (key, sub) in &self.substitution {
                let key_ok = (1..=limits::TEXT_V2_KEY_MAX).contains(&key.len())
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                v.field(key, |v| {
                    if !key_ok {
                        v.violation(format!(
                            "key must match [0-9a-zA-Z_]{{1,{}}}",
                            limits::TEXT_V2_KEY_MAX
                        ));
                    }
                    if let Substitution::Emoji { product_id, emoji_id } = sub {
                        check::non_empty(v, "productId", product_id);
                        check::non_empty(v, "emojiId", emoji_id);
                    }
                });
            }
        });
        check::opt_non_empty(v, "quoteToken", self.quote_token.as_deref());
    }
}

/// The `{key}` placeholders of a text v2, skipping the `{{` and `}}` escapes.
fn placeholders(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => i += 2,
            // `{` is ASCII, so i + 1 and the `}` found are char boundaries.
            b'{' => match text[i + 1..].find(['{', '}']) {
                Some(end) if bytes[i + 1 + end] == b'}' => {
                    out.push(&text[i + 1..i + 1 + end]);
                    i += end + 2;
                }
                _ => i += 1,
            },
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_skip_escapes_and_unclosed_braces() {
        assert_eq!(placeholders("Hi {user}, {{literal}} {emoji1}!"), ["user", "emoji1"]);
        assert_eq!(placeholders("{a{b}"), ["b"]);
        assert!(placeholders("{unclosed").is_empty());
        assert_eq!(placeholders("日本{x}語"), ["x"]);
    }
}
