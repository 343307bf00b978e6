//! Content customers send (images, videos, audio, files): streamed downloads from the data
//! host, previews, and the preparation status of videos and audio.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use serde::Deserialize;

use super::error::LineError;
use super::model::line_enum;
use super::request::{Host, Request};

/// Per-attempt timeout of a content download: the whole body must arrive within it.
const CONTENT_TIMEOUT: Duration = Duration::from_secs(600);

line_enum!(
    /// Whether a video or audio a user sent can be downloaded yet.
    TranscodingStatus {
        /// LINE is still preparing it.
        Processing = "processing",
        /// Ready to download.
        Succeeded = "succeeded",
        /// Preparing failed: it cannot be downloaded.
        Failed = "failed",
    }
);

/// A download in progress: its content type and length as LINE announced them, and the body
/// as a stream of byte chunks read from the network as the caller consumes it (never buffered
/// whole).
pub struct ContentStream {
    endpoint: &'static str,
    content_type: Option<String>,
    content_length: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>,
}

impl fmt::Debug for ContentStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentStream")
            .field("endpoint", &self.endpoint)
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl ContentStream {
    /// The `Content-Type` LINE sent, e.g. `image/jpeg`.
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The `Content-Length` LINE sent, when it sent one.
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }
}

impl Stream for ContentStream {
    type Item = Result<Bytes, LineError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let endpoint = self.endpoint;
        self.inner.as_mut().poll_next(cx).map(|item| {
            item.map(|chunk| {
                chunk.map_err(|source| LineError::Transport { endpoint, attempts: 1, source })
            })
        })
    }
}

fn message_id_path(message_id: &str, suffix: &str) -> Result<String, LineError> {
    let mut v = crate::line::Validator::new();
    if message_id.is_empty() || !message_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        v.violation_at("messageId", "must be a non-empty message ID (letters and digits)");
    }
    v.finish()?;
    Ok(format!("/v2/bot/message/{message_id}/content{suffix}"))
}

impl super::LineClient {
    async fn content_stream(
        &self,
        endpoint: &'static str,
        path: String,
    ) -> Result<ContentStream, LineError> {
        let request = Request::get(endpoint, path).host(Host::Data).timeout(CONTENT_TIMEOUT);
        let answer = self.execute_streaming(request).await?;
        let headers = answer.response.headers();
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_length = answer.response.content_length();
        Ok(ContentStream {
            endpoint,
            content_type,
            content_length,
            inner: Box::pin(answer.response.bytes_stream()),
        })
    }

    /// Downloads the image, video, audio or file of a message a user sent (from the data
    /// host), streamed: the body arrives in chunks as the stream is read. Content is kept by
    /// LINE for a limited time; for videos and audio check
    /// [`content_transcoding`](Self::content_transcoding) first.
    ///
    /// # Errors
    /// [`LineError::Validation`] for a malformed message ID; [`LineError::Api`] (404 for an
    /// unknown or expired message), [`LineError::Transport`]. Errors while reading the body
    /// come out of the stream.
    pub async fn message_content(&self, message_id: &str) -> Result<ContentStream, LineError> {
        let path = message_id_path(message_id, "")?;
        self.content_stream("message_content", path).await
    }

    /// Downloads the preview image of an image or video message, streamed.
    ///
    /// # Errors
    /// As [`message_content`](Self::message_content).
    pub async fn message_content_preview(
        &self,
        message_id: &str,
    ) -> Result<ContentStream, LineError> {
        let path = message_id_path(message_id, "/preview")?;
        self.content_stream("message_content_preview", path).await
    }

    /// Whether a video or audio message can be downloaded yet.
    ///
    /// # Errors
    /// [`LineError::Validation`] for a malformed message ID; [`LineError::Api`],
    /// [`LineError::Transport`], [`LineError::Decode`].
    pub async fn content_transcoding(
        &self,
        message_id: &str,
    ) -> Result<TranscodingStatus, LineError> {
        #[derive(Deserialize)]
        struct Wire {
            status: TranscodingStatus,
        }
        let path = message_id_path(message_id, "/transcoding")?;
        let request = Request::get("content_transcoding", path).host(Host::Data);
        Ok(self.execute(request).await?.json::<Wire>()?.status)
    }
}
