//! E-mail over SMTP with lettre: text and HTML from one content, `List-Unsubscribe`, and a
//! `Message-ID` derived from the batch so a resend is recognisable.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use lettre::address::{Address as SmtpAddress, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::address::EmailAddress;
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
    /// The `From` header, encoded.
    from_header: String,
    from: SmtpAddress,
    domain: String,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel").field("domain", &self.domain).finish_non_exhaustive()
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
        let (name, address) = split_mailbox(&self.from).ok_or_else(|| {
            bad(format!("the sender `{}` is not a mailbox (`name <a@b.c>` or `a@b.c`)", self.from))
        })?;
        let address = EmailAddress::new(address)
            .map_err(|e| bad(format!("the sender `{}` is not a mailbox: {e}", self.from)))?;
        let from: SmtpAddress = address
            .as_str()
            .parse()
            .map_err(|e| bad(format!("the sender `{}` is not a mailbox: {e}", self.from)))?;
        let domain = from.domain().to_owned();
        let from_header = match name {
            Some(name) => format!("{} <{}>", encode_word(name), address.as_str()),
            None => format!("<{}>", address.as_str()),
        };
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
        Ok(EmailChannel { transport: builder.build(), from_header, from, domain })
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

    /// The e-mail of `send` as it goes over SMTP (MIME, CRLF line ends): `multipart/alternative`
    /// with a text and an HTML part (UTF-8, base64), the subject and the sender's name as
    /// RFC 2047 encoded words, the batch's `Message-ID`, and `List-Unsubscribe` with RFC 8058
    /// one-click when the send has an unsubscribe URL. Deterministic for one send, apart from
    /// the `Date` header.
    ///
    /// # Errors
    /// [`ChannelError::Unsupported`] when the send is not an e-mail batch or the unsubscribe URL
    /// holds control characters.
    pub fn compose(&self, send: &ChannelSend) -> Result<Vec<u8>, ChannelError> {
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
        let unsubscribe = send.unsubscribe_url.as_deref();
        if unsubscribe.is_some_and(|u| u.chars().any(|c| c.is_control() || c == '>')) {
            return Err(unsupported("the unsubscribe URL holds control characters".into()));
        }
        let mut text_body = text.to_owned();
        if let Some(url) = unsubscribe {
            text_body.push_str(&format!("\n\n配信停止: {url}\n"));
        }
        let html = email_html(subject, text, unsubscribe);
        let id = message_id(&send.batch, &self.domain);
        let boundary = format!("enishi-{}", &id[8..40]);
        let mut m = String::new();
        let mut header = |name: &str, value: &str| {
            m.push_str(name);
            m.push_str(": ");
            m.push_str(value);
            m.push_str("\r\n");
        };
        header("From", &self.from_header);
        header("To", &format!("<{}>", to.as_str()));
        header("Subject", &encode_word(subject));
        header("Date", &chrono::Utc::now().to_rfc2822());
        header("Message-ID", &id);
        header("MIME-Version", "1.0");
        if let Some(url) = unsubscribe {
            header("List-Unsubscribe", &format!("<{url}>"));
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }
        header("Content-Type", &format!("multipart/alternative; boundary=\"{boundary}\""));
        m.push_str("\r\n");
        for (kind, body) in [("plain", text_body.as_str()), ("html", html.as_str())] {
            m.push_str(&format!(
                "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            ));
            let b64 = base64::engine::general_purpose::STANDARD.encode(body.replace('\n', "\r\n"));
            for chunk in b64.as_bytes().chunks(76) {
                m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                m.push_str("\r\n");
            }
        }
        m.push_str(&format!("--{boundary}--\r\n"));
        Ok(m.into_bytes())
    }
}

/// `name <a@b.c>` → (`Some(name)`, `a@b.c`); `a@b.c` → (`None`, `a@b.c`).
fn split_mailbox(s: &str) -> Option<(Option<&str>, &str)> {
    let s = s.trim();
    match s.strip_suffix('>').and_then(|rest| rest.rsplit_once('<')) {
        Some((name, address)) => {
            let name = name.trim().trim_matches('"').trim();
            Some(((!name.is_empty()).then_some(name), address.trim()))
        }
        None if !s.contains(['<', '>', ' ']) => Some((None, s)),
        None => None,
    }
}

/// A header value as RFC 2047 `B` encoded words (UTF-8), folded so no line passes 78
/// characters; plain ASCII without specials is kept as is.
fn encode_word(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.contains("=?")
        && value.len() <= 60;
    if plain {
        return value.to_owned();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        // 45 bytes of UTF-8 make 60 base64 characters: 72 with the `=?UTF-8?B?` `?=` frame.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
            chunk.clear();
        }
        if !c.is_control() {
            chunk.push(c);
        }
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
    }
    words.join("\r\n ")
}

#[async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, send: &ChannelSend) -> Result<ChannelReceipt, ChannelError> {
        let email = self.compose(send)?;
        let channel = ChannelKind::Email;
        let Address::Email(to) = &send.address else {
            return Err(ChannelError::Unsupported {
                channel,
                message: "not an e-mail address".into(),
            });
        };
        let to: SmtpAddress = to
            .as_str()
            .parse()
            .map_err(|e| ChannelError::InvalidRecipient { channel, message: format!("{e}") })?;
        let envelope = Envelope::new(Some(self.from.clone()), vec![to])
            .map_err(|e| ChannelError::Unsupported { channel, message: e.to_string() })?;
        match self.transport.send_raw(&envelope, &email).await {
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
