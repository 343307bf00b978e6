//! Users and the bot: profiles, follower IDs, account-link tokens, bot info.

use std::fmt;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::model::line_enum;
use super::request::Request;
use crate::LineUserId;
use crate::line::Validator;

/// A user's LINE profile, as the bot may see it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Profile {
    /// The display name.
    pub display_name: String,
    /// The user ID.
    pub user_id: LineUserId,
    /// The user's language (BCP 47), when the user consented.
    #[serde(default)]
    pub language: Option<String>,
    /// The profile picture URL.
    #[serde(default)]
    pub picture_url: Option<String>,
    /// The status message.
    #[serde(default)]
    pub status_message: Option<String>,
}

/// A single-use account-link token (valid about 10 minutes). Treated as a credential: its
/// `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct LinkToken(String);

impl LinkToken {
    /// The token, for building the account-link URL.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps a token received elsewhere (e.g. from the link page's query string).
    #[must_use]
    pub fn from_received(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

line_enum!(
    /// How the account answers chats.
    ChatMode {
        /// The bot answers.
        Bot = "bot",
        /// Staff answer in chat.
        Chat = "chat",
    }
);

line_enum!(
    /// When messages are marked as read.
    MarkAsReadMode {
        /// Automatically.
        Auto = "auto",
        /// By the mark-as-read API.
        Manual = "manual",
    }
);

/// The bot's own account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BotInfo {
    /// The bot's user ID (the webhook `destination`).
    pub user_id: LineUserId,
    /// The basic ID (`@...`).
    pub basic_id: String,
    /// The premium ID, if any.
    #[serde(default)]
    pub premium_id: Option<String>,
    /// The display name.
    pub display_name: String,
    /// The picture URL.
    #[serde(default)]
    pub picture_url: Option<String>,
    /// Chat mode.
    pub chat_mode: ChatMode,
    /// Mark-as-read mode.
    pub mark_as_read_mode: MarkAsReadMode,
}

/// The most follower IDs LINE returns per page.
const FOLLOWERS_PAGE_MAX: u32 = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FollowersPage {
    #[serde(default)]
    user_ids: Vec<LineUserId>,
    #[serde(default)]
    next: Option<String>,
}

impl super::LineClient {
    /// A user's profile. Also LINE's recommended check that a user ID is valid and a friend:
    /// a 404 means not a friend, blocked, or no consent.
    ///
    /// # Errors
    /// [`LineError::Api`] (404 as above), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn profile(&self, user: &LineUserId) -> Result<Profile, LineError> {
        self.execute(Request::get("profile", format!("/v2/bot/profile/{user}"))).await?.json()
    }

    /// The IDs of all friends, as a stream that fetches pages of `page_size` (1–1,000,
    /// default 300 when `None`) as it is consumed. Verified and premium accounts only.
    pub fn follower_ids(
        &self,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<LineUserId, LineError>> + Send + '_ {
        let limit = page_size.map(|n| n.clamp(1, FOLLOWERS_PAGE_MAX));
        // State: (next token, finished?, buffered IDs of the current page).
        let state = (None::<String>, false, std::collections::VecDeque::<LineUserId>::new());
        futures_util::stream::try_unfold(
            state,
            move |(mut next, mut done, mut buffer)| async move {
                loop {
                    if let Some(id) = buffer.pop_front() {
                        return Ok(Some((id, (next, done, buffer))));
                    }
                    if done {
                        return Ok(None);
                    }
                    let request = Request::get("follower_ids", "/v2/bot/followers/ids")
                        .query_opt("limit", limit)
                        .query_opt("start", next.as_deref());
                    let page: FollowersPage = self.execute(request).await?.json()?;
                    done = page.next.is_none() || page.user_ids.is_empty();
                    next = page.next;
                    buffer.extend(page.user_ids);
                }
            },
        )
    }

    /// Issues a single-use account-link token for a user (valid about 10 minutes).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn issue_link_token(&self, user: &LineUserId) -> Result<LinkToken, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            link_token: LinkToken,
        }
        let request = Request::post("link_token", format!("/v2/bot/user/{user}/linkToken"));
        let wire: Wire = self.execute(request).await?.json()?;
        Ok(wire.link_token)
    }

    /// Shows the loading animation in the user's one-on-one chat for `seconds` (5 to 60, a
    /// multiple of 5) or until the bot's next message arrives.
    ///
    /// # Errors
    /// [`LineError::Validation`] for another duration; [`LineError::Api`],
    /// [`LineError::Transport`].
    pub async fn show_loading(&self, user: &LineUserId, seconds: u32) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            chat_id: &'a LineUserId,
            loading_seconds: u32,
        }
        let mut v = Validator::new();
        if !(5..=60).contains(&seconds) || !seconds.is_multiple_of(5) {
            v.violation_at("loadingSeconds", "must be 5 to 60, a multiple of 5");
        }
        v.finish()?;
        let request = Request::post("show_loading", "/v2/bot/chat/loading/start")
            .json(&Wire { chat_id: user, loading_seconds: seconds })?;
        self.execute(request).await?;
        Ok(())
    }

    /// Marks the user's messages as read with the `markAsReadToken` of a webhook event (for a
    /// shop that turned automatic read receipts off).
    ///
    /// # Errors
    /// [`LineError::Api`] (an invalid or foreign token), [`LineError::Transport`].
    pub async fn mark_as_read(&self, mark_as_read_token: &str) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            mark_as_read_token: &'a str,
        }
        let request = Request::post("mark_as_read", "/v2/bot/chat/markAsRead")
            .json(&Wire { mark_as_read_token })?;
        self.execute(request).await?;
        Ok(())
    }

    /// The bot's own account information.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn bot_info(&self) -> Result<BotInfo, LineError> {
        self.execute(Request::get("bot_info", "/v2/bot/info")).await?.json()
    }
}
