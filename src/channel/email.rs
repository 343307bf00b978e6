//! E-mail over SMTP with lettre: text and HTML from one content, `List-Unsubscribe`, and a
//! `Message-ID` derived from the batch so a resend is recognisable.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::{Address, Channel, ChannelError, ChannelKind, ChannelReceipt, ChannelSend};
use crate::BatchId;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a test server.
    None,
    /// Plain text upgraded with `STARTTLS`, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// The `Message-ID` of the e-mail of `batch` at `domain`: the same for every resend of the
/// batch, so a receiving system (or a person) can tell a resend from a second message.
#[must_use]
pub fn message_id(batch: &BatchId, domain: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(batch.as_str().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<enishi.{hex}@{domain}>")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The HTML part rendered from the text part: escaped, paragraphs at blank lines, line breaks
/// kept, `http(s)://` URLs as links, and the unsubscribe link (in Japanese) at the end.
#[must_use]
pub fn email_html(subject: &str, text: &str, unsubscribe_url: Option<&str>) -> String {
    let linkify = |line: &str| {
        line.split(' ')
            .map(|word| {
                if word.starts_with("https://") || word.starts_with("http://") {
                    let w = escape(word);
                    format!("<a href=\"{w}\">{w}</a>")
                } else {
                    escape(word)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let body: String = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>\n", p.lines().map(linkify).collect::<Vec<_>>().join("<br>\n")))
        .collect();
    let footer = unsubscribe_url.map_or_else(String::new, |u| {
        format!("<p style=\"font-size:small\"><a href=\"{}\">配信停止はこちら</a></p>\n", escape(u))
    });
    format!(
        "<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}{footer}</body></html>\n",
        escape(subject)
    )
}

/// E-mail through an SMTP server (lettre, rustls). The batch holds the subject and the text;
/// the HTML part is rendered from the text ([`email_html`]).
#[derive(Clone)]
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.from.email.domain())
            .finish_non_exhaustive()
    }
}

/// Configures an [`EmailChannel`]; [`build`](Self::build) reports the first invalid value.
#[must_use = "a builder does nothing until `build` is called"]
pub struct EmailChannelBuilder {
    host: String,
    port: Option<u16>,
    tls: SmtpTls,
    credentials: Option<(String, SecretString)>,
    from: String,
    timeout: Duration,
}

impl fmt::Debug for EmailChannelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannelBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl EmailChannelBuilder {
    /// The port (default: 25 without TLS, 587 with STARTTLS, 465 with implicit TLS).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// How the connection is secured (default [`SmtpTls::StartTls`]).
    pub fn tls(mut self, tls: SmtpTls) -> Self {
        self.tls = tls;
        self
    }

    /// SMTP AUTH user name and password.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), SecretString::from(password.into())));
        self
    }

    /// The connection and command timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the channel.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] for a sender that is not a mailbox (`name <a@b.c>` or
    /// `a@b.c`), or TLS parameters that cannot be built for the host.
    pub fn build(self) -> Result<EmailChannel, ChannelError> {
        let bad =
            |message: String| ChannelError::Unsupported { channel: ChannelKind::Email, message };
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| bad(format!("the sender `{}` is not a mailbox: {e}", self.from)))?;
        let domain = from.email.domain().to_owned();
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .timeout(Some(self.timeout));
        let params = || {
            TlsParameters::new(self.host.clone())
                .map_err(|e| bad(format!("TLS parameters for `{}`: {e}", self.host)))
        };
        let (tls, default_port) = match self.tls {
            SmtpTls::None => (Tls::None, 25),
            SmtpTls::StartTls => (Tls::Required(params()?), 587),
            SmtpTls::Implicit => (Tls::Wrapper(params()?), 465),
        };
        builder = builder.tls(tls).port(self.port.unwrap_or(default_port));
        if let Some((user, password)) = self.credentials {
            builder =
                builder.credentials(Credentials::new(user, password.expose_secret().to_owned()));
        }
        Ok(EmailChannel { transport: builder.build(), from, domain })
    }
}

impl EmailChannel {
    /// A builder for the SMTP server at `host`, sending as `from` (`ショップ <news@shop.example>`).
    pub fn builder(host: impl Into<String>, from: impl Into<String>) -> EmailChannelBuilder {
        EmailChannelBuilder {
            host: host.into(),
            port: None,
            tls: SmtpTls::StartTls,
            credentials: None,
            from: from.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The e-mail of `send`, as it goes over SMTP.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] when the send is not an e-mail batch.
    pub fn compose(&self, send: &ChannelSend) -> Result<Message, ChannelError> {
        let unsupported =
            |message: String| ChannelError::Unsupported { channel: ChannelKind::Email, message };
        let Address::Email(to) = &send.address else {
            return Err(unsupported("an e-mail needs an e-mail address".into()));
        };
        let (Some(subject), Some(text)) = (send.text(0), send.text(1)) else {
            return Err(unsupported(
                "an e-mail batch holds the subject and the text as two text messages".into(),
            ));
        };
        let to: Mailbox = to.as_str().parse().map_err(|e| ChannelError::InvalidRecipient {
            channel: ChannelKind::Email,
            message: format!("{e}"),
        })?;
        let unsubscribe = send.unsubscribe_url.as_deref();
        let mut text_body = text.to_owned();
        if let Some(url) = unsubscribe {
            text_body.push_str(&format!("\n\n配信停止: {url}\n"));
        }
        let html = email_html(subject, text, unsubscribe);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id(&send.batch, &self.domain)));
        if let Some(url) = unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text_body),
                    )
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| unsupported(format!("the e-mail cannot be built: {e}")))
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError> {
        let email = self.compose(send)?;
        let channel = ChannelKind::Email;
        match self.transport.send(email).await {
            Ok(_) => Ok(ChannelReceipt::new(Some(message_id(&send.batch, &self.domain)))),
            Err(e) if e.is_permanent() => {
                let message = e.to_string();
                // 550/551/553: the mailbox does not exist or is not allowed.
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                if code.starts_with("550") || code.starts_with("551") || code.starts_with("553") {
                    Err(ChannelError::InvalidRecipient { channel, message })
                } else {
                    Err(ChannelError::Rejected { channel, message, source: Some(Box::new(e)) })
                }
            }
            Err(e) => Err(ChannelError::Transient {
                channel,
                message: "the SMTP server failed for now".into(),
                source: Some(Box::new(e)),
            }),
        }
    }
}
