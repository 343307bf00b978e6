//! From raw bytes to [`WebhookPayload`]: the envelope is read once with each event kept as a
//! borrowed raw slice, then every event is read on its own (so one bad event cannot fail the
//! batch) through a flat "wire" struct that holds every known field of every event type. This
//! reads each event in one pass whatever the order of its keys: a hand-written reader walks the
//! event (serde_json reads only its rare values), and an event it does not take as it is goes
//! through serde's derived reader of the wire struct instead; only unknown or malformed events
//! take a slower path through `serde_json::Value`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use std::borrow::Cow;

use super::event::*;
use crate::WebhookEventId;

/// Why a request body is not a webhook payload at all (a single bad event is not a
/// `BodyError`: see [`EventKind::Malformed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not UTF-8.
    #[error("the webhook body is not UTF-8")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The body is not a JSON object with an `events` array. The error says what was found
    /// and where (positions are counted from the start of the value being read).
    #[error("the webhook body is not a webhook payload")]
    Json(#[source] serde_json::Error),
}

/// Parses a webhook request body. Call it only after [`verify`](super::verify) succeeded.
///
/// Never fails because of something new: unknown event, message and source types, unknown
/// values of LINE's string enums and unknown fields are all kept. An event that cannot be read
/// becomes [`EventKind::Malformed`] while the other events parse normally.
///
/// # Errors
/// [`BodyError`] when the body is not UTF-8 or not a JSON object with an `events` array.
///
/// ```
/// use enishi::line::webhook::{EventKind, parse};
/// let body = br#"{"destination":"Uabc","events":[
///   {"type":"follow","timestamp":1,"source":{"type":"user","userId":"U1"},"replyToken":"r",
///    "mode":"active","webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
///    "follow":{"isUnblocked":true}},
///   {"type":"somethingNew","timestamp":2,"webhookEventId":"01J"}]}"#;
/// let payload = parse(body).unwrap();
/// assert!(matches!(payload.events[0].kind, EventKind::Follow(f) if f.is_unblocked == Some(true)));
/// assert_eq!(payload.events[1].type_str(), "somethingNew");
/// ```
pub fn parse(raw_body: &[u8]) -> Result<WebhookPayload, BodyError> {
    let text = std::str::from_utf8(raw_body).map_err(BodyError::NotUtf8)?;
    // The events' raw JSON are ranges of one shared copy of the body.
    let body: Arc<str> = Arc::from(text);
    Walker { text: &body, body: &body, pos: 0, fast: true }.payload().map_err(BodyError::Json)
}

/// [`parse`] with serde's reading of every event only, to check the fast reader against.
#[cfg(test)]
fn parse_slow(raw_body: &[u8]) -> Result<WebhookPayload, BodyError> {
    let text = std::str::from_utf8(raw_body).map_err(BodyError::NotUtf8)?;
    let body: Arc<str> = Arc::from(text);
    Walker { text: &body, body: &body, pos: 0, fast: false }.payload().map_err(BodyError::Json)
}

/// Walks the envelope by hand so that each event is read **once**, straight into the wire
/// struct, while its exact byte range (the raw JSON) is known from the stream offset. Reading
/// the events first as raw values and then again as typed values cost about a third more.
/// Values are still read by serde_json (`StreamDeserializer` reports where each one ends);
/// the walker only handles the punctuation between them.
struct Walker<'a> {
    text: &'a str,
    /// `text`, shared by the events' raw JSON.
    body: &'a Arc<str>,
    pos: usize,
    /// Whether events are tried with the fast reader first (off only to test it against the
    /// serde path).
    fast: bool,
}

fn syntax_error(msg: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(msg)
}

/// Borrows an object key when it has no escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Walker<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.text.as_bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and consumes one of `chars`, returning it.
    fn punct(&mut self, chars: &[u8]) -> Result<u8, serde_json::Error> {
        self.skip_ws();
        match self.text.as_bytes().get(self.pos) {
            Some(c) if chars.contains(c) => {
                self.pos += 1;
                Ok(*c)
            }
            found => Err(syntax_error(format!(
                "expected one of `{}` at byte {}, found {}",
                String::from_utf8_lossy(chars),
                self.pos,
                found.map_or_else(|| "the end".to_owned(), |c| format!("`{}`", char::from(*c)))
            ))),
        }
    }

    /// Reads one JSON value at the current position.
    fn value<T: Deserialize<'a>>(&mut self) -> Result<T, serde_json::Error> {
        let text: &'a str = self.text;
        let mut stream = serde_json::Deserializer::from_str(&text[self.pos..]).into_iter::<T>();
        match stream.next() {
            Some(Ok(v)) => {
                self.pos += stream.byte_offset();
                Ok(v)
            }
            Some(Err(e)) => Err(e),
            None => {
                Err(syntax_error(format!("expected a value at byte {}, found the end", self.pos)))
            }
        }
    }

    fn payload(mut self) -> Result<WebhookPayload, serde_json::Error> {
        self.punct(b"{")?;
        let (mut destination, mut events) = (None, None);
        self.skip_ws();
        if self.text.as_bytes().get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let at = self.pos;
                let key = match self.fast_string() {
                    Ok(key) => key,
                    Err(Bail) => {
                        self.pos = at;
                        self.value::<Key<'a>>()?.0
                    }
                };
                self.punct(b":")?;
                match &*key {
                    "events" if events.is_some() => {
                        return Err(syntax_error("duplicate field `events`".into()));
                    }
                    "events" => events = Some(self.events()?),
                    "destination" if destination.is_some() => {
                        return Err(syntax_error("duplicate field `destination`".into()));
                    }
                    "destination" => {
                        let at = self.pos;
                        // A value the fast reader leaves to serde, or a bad end (`nullx`) for
                        // serde to report.
                        let fast = self.fast_opt_string().and_then(|d| {
                            self.skip_ws();
                            matches!(self.peek(), Some(b',' | b'}')).then_some(d).ok_or(Bail)
                        });
                        destination = Some(match fast {
                            Ok(d) => d,
                            Err(Bail) => {
                                self.pos = at;
                                self.value::<Option<String>>()?
                            }
                        });
                    }
                    _ => {
                        self.value::<&RawValue>()?;
                    }
                }
                if self.punct(b",}")? == b'}' {
                    break;
                }
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(syntax_error(format!("trailing characters at byte {}", self.pos)));
        }
        let events = events
            .ok_or_else(|| <serde_json::Error as serde::de::Error>::missing_field("events"))?;
        Ok(WebhookPayload { destination: destination.flatten(), events })
    }

    fn events(&mut self) -> Result<Vec<Event>, serde_json::Error> {
        self.punct(b"[")?;
        // A LINE event takes a few hundred bytes: reserve for most of them up front, rather
        // than moving every event read so far each time the vector doubles.
        let mut events = Vec::with_capacity(((self.text.len() - self.pos) / 320).clamp(1, 256));
        self.skip_ws();
        if self.text.as_bytes().get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(events);
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            let wire = match self.fast.then(|| self.fast_event()) {
                Some(Ok(wire)) => Ok(wire),
                _ => {
                    self.pos = start;
                    self.value::<EventWire<'a>>()
                }
            };
            if wire.is_err() {
                // Not an event we can read: find where it ends (a syntax error here means the
                // body is not JSON at all, which fails the payload).
                self.pos = start;
                self.value::<&RawValue>()?;
            }
            events
                .push(event_from_wire(wire, RawJson::new(Arc::clone(self.body), start, self.pos)));
            if self.punct(b",]")? == b']' {
                return Ok(events);
            }
        }
    }
}

/// The fast reader gave up on an event. Serde then reads the event again from its start and
/// decides what it is: something the fast reader leaves to serde (escaped keys, duplicate
/// fields, floats where an integer is expected), a malformed event, or not JSON at all.
struct Bail;

type Fast<T> = Result<T, Bail>;

/// Marks field `bit` of an object as read; a second occurrence gives up (serde's derived
/// readers reject duplicate fields, which makes the event malformed).
fn once(seen: &mut u32, bit: u32) -> Fast<()> {
    if *seen & (1 << bit) != 0 {
        return Err(Bail);
    }
    *seen |= 1 << bit;
    Ok(())
}

/// The index of the first `"`, `\` or control character at or after `i` (`bytes.len()` when
/// there is none), eight bytes at a time.
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    while let Some(chunk) = bytes.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let v = u64::from_le_bytes(chunk);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // The classic "has a zero / a byte below n" tests: the lowest flagged byte is exact
        // (higher ones may be borrows from it), so the first hit is found.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v))
            & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = bytes.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// The fast reader: walks an event object byte by byte into the wire struct, reading strings,
/// integers and booleans itself and handing anything else (arrays, rare objects, unknown
/// fields) to serde_json, value by value. It accepts only what serde's derived reader of
/// [`EventWire`] accepts and gives the same wire struct; anything else gives up ([`Bail`]).
/// It saves serde's per-field dispatch through `Option`/`Result`, the boxes of the common
/// parts and the moves of the large wire struct.
impl<'a> Walker<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        let text: &'a str = self.text;
        text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    /// Consumes `null` (after whitespace) if it is there.
    fn fast_null(&mut self) -> bool {
        self.skip_ws();
        let null = self.rest().starts_with(b"null");
        if null {
            self.pos += 4;
        }
        null
    }

    fn fast_bool(&mut self) -> Fast<bool> {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with(b"true") {
            self.pos += 4;
            Ok(true)
        } else if rest.starts_with(b"false") {
            self.pos += 5;
            Ok(false)
        } else {
            Err(Bail)
        }
    }

    /// A string (after whitespace): borrowed from the body, or decoded by serde_json when it
    /// has escapes.
    fn fast_string(&mut self) -> Fast<Cow<'a, str>> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(Bail);
        }
        let text: &'a str = self.text;
        let start = self.pos + 1;
        let end = string_end(text.as_bytes(), start);
        match text.as_bytes().get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                // Both ends are next to an ASCII quote, so on character boundaries.
                text.get(start..end).map(Cow::Borrowed).ok_or(Bail)
            }
            Some(b'\\') => Ok(self.value::<Key<'a>>().map_err(|_| Bail)?.0),
            _ => Err(Bail),
        }
    }

    /// A string with no escapes, borrowed (keys: an escaped key is left to serde).
    fn fast_key(&mut self) -> Fast<&'a str> {
        match self.fast_string()? {
            Cow::Borrowed(key) => Ok(key),
            Cow::Owned(_) => Err(Bail),
        }
    }

    fn fast_opt_string(&mut self) -> Fast<Option<String>> {
        if self.fast_null() {
            return Ok(None);
        }
        Ok(Some(self.fast_string()?.into_owned()))
    }

    /// A non-negative integer without fraction or exponent, or `null`.
    fn fast_opt_i64(&mut self) -> Fast<Option<i64>> {
        if self.fast_null() {
            return Ok(None);
        }
        let digits = self.rest();
        let mut n: i64 = 0;
        let mut len = 0;
        while let Some(&d @ b'0'..=b'9') = digits.get(len) {
            n = n.checked_mul(10).and_then(|n| n.checked_add(i64::from(d - b'0'))).ok_or(Bail)?;
            len += 1;
        }
        // No digits (a sign, another type), a leading zero, a fraction or an exponent: serde's.
        if len == 0
            || (digits[0] == b'0' && len > 1)
            || matches!(digits.get(len), Some(b'.' | b'e' | b'E'))
        {
            return Err(Bail);
        }
        self.pos += len;
        Ok(Some(n))
    }

    /// One value read by serde_json (whose errors give up: the slow path reports them).
    fn fast_value<T: Deserialize<'a>>(&mut self) -> Fast<T> {
        self.skip_ws();
        self.value().map_err(|_| Bail)
    }

    fn fast_skip(&mut self) -> Fast<()> {
        self.fast_value::<serde::de::IgnoredAny>().map(drop)
    }

    /// Walks an object (after whitespace), calling `field` with each key to read its value.
    fn fast_object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Fast<()>) -> Fast<()> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return Err(Bail);
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.fast_key()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(Bail);
            }
            self.pos += 1;
            field(self, key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    fn fast_event(&mut self) -> Fast<EventWire<'a>> {
        let mut w = EventWire::default();
        let mut seen = 0;
        self.fast_object(|r, key| {
            match key {
                "type" => {
                    once(&mut seen, 0)?;
                    w.type_ = r.fast_string()?;
                }
                "timestamp" => {
                    once(&mut seen, 1)?;
                    w.timestamp = r.fast_opt_i64()?;
                }
                "mode" => {
                    once(&mut seen, 2)?;
                    w.mode =
                        if r.fast_null() { None } else { Some(Mode::from_wire(&r.fast_string()?)) };
                }
                "source" => {
                    once(&mut seen, 3)?;
                    w.source = if r.fast_null() { None } else { Some(r.fast_source()?) };
                }
                "webhookEventId" => {
                    once(&mut seen, 4)?;
                    w.webhook_event_id = r.fast_opt_string()?;
                }
                "deliveryContext" => {
                    once(&mut seen, 5)?;
                    w.delivery_context =
                        if r.fast_null() { None } else { Some(r.fast_delivery_context()?) };
                }
                "replyToken" => {
                    once(&mut seen, 6)?;
                    w.reply_token = r.fast_opt_string()?;
                }
                "message" => {
                    once(&mut seen, 7)?;
                    w.message =
                        if r.fast_null() { None } else { Some(Box::new(r.fast_message()?)) };
                }
                "unsend" => {
                    once(&mut seen, 8)?;
                    w.unsend = r.fast_value()?;
                }
                "follow" => {
                    once(&mut seen, 9)?;
                    w.follow = if r.fast_null() { None } else { Some(r.fast_follow()?) };
                }
                "joined" => {
                    once(&mut seen, 10)?;
                    w.joined = r.fast_value()?;
                }
                "left" => {
                    once(&mut seen, 11)?;
                    w.left = r.fast_value()?;
                }
                "postback" => {
                    once(&mut seen, 12)?;
                    w.postback =
                        if r.fast_null() { None } else { Some(Box::new(r.fast_postback()?)) };
                }
                "videoPlayComplete" => {
                    once(&mut seen, 13)?;
                    w.video_play_complete = r.fast_value()?;
                }
                "beacon" => {
                    once(&mut seen, 14)?;
                    w.beacon = r.fast_value()?;
                }
                "link" => {
                    once(&mut seen, 15)?;
                    w.link = if r.fast_null() { None } else { Some(Box::new(r.fast_link()?)) };
                }
                "membership" => {
                    once(&mut seen, 16)?;
                    w.membership = r.fast_value()?;
                }
                "module" => {
                    once(&mut seen, 17)?;
                    w.module = r.fast_value()?;
                }
                "chatControl" => {
                    once(&mut seen, 18)?;
                    w.chat_control = r.fast_value()?;
                }
                "delivery" => {
                    once(&mut seen, 19)?;
                    w.delivery = r.fast_value()?;
                }
                "things" => {
                    once(&mut seen, 20)?;
                    w.things = r.fast_value()?;
                }
                _ => r.fast_skip()?,
            }
            Ok(())
        })?;
        // `type` is required.
        if seen & 1 == 0 {
            return Err(Bail);
        }
        Ok(w)
    }

    fn fast_source(&mut self) -> Fast<SourceWire<'a>> {
        let mut s = SourceWire::default();
        let mut seen = 0;
        self.fast_object(|r, key| {
            match key {
                "type" => {
                    once(&mut seen, 0)?;
                    s.type_ = r.fast_string()?;
                }
                "userId" => {
                    once(&mut seen, 1)?;
                    s.user_id = r.fast_opt_string()?;
                }
                "groupId" => {
                    once(&mut seen, 2)?;
                    s.group_id = r.fast_opt_string()?;
                }
                "roomId" => {
                    once(&mut seen, 3)?;
                    s.room_id = r.fast_opt_string()?;
                }
                _ => r.fast_skip()?,
            }
            Ok(())
        })?;
        if seen & 1 == 0 {
            return Err(Bail);
        }
        Ok(s)
    }

    fn fast_delivery_context(&mut self) -> Fast<DeliveryContext> {
        let mut d = DeliveryContext { is_redelivery: false };
        let mut seen = 0;
        self.fast_object(|r, key| {
            if key == "isRedelivery" {
                once(&mut seen, 0)?;
                d.is_redelivery = r.fast_bool()?;
            } else {
                r.fast_skip()?;
            }
            Ok(())
        })?;
        Ok(d)
    }

    fn fast_follow(&mut self) -> Fast<Follow> {
        let mut f = Follow::default();
        let mut seen = 0;
        self.fast_object(|r, key| {
            if key == "isUnblocked" {
                once(&mut seen, 0)?;
                f.is_unblocked = if r.fast_null() { None } else { Some(r.fast_bool()?) };
            } else {
                r.fast_skip()?;
            }
            Ok(())
        })?;
        Ok(f)
    }

    fn fast_postback(&mut self) -> Fast<Postback> {
        let (mut data, mut params) = (None, None);
        let mut seen = 0;
        self.fast_object(|r, key| {
            match key {
                "data" => {
                    once(&mut seen, 0)?;
                    data = Some(r.fast_string()?.into_owned());
                }
                "params" => {
                    once(&mut seen, 1)?;
                    params = if r.fast_null() { None } else { Some(r.fast_postback_params()?) };
                }
                _ => r.fast_skip()?,
            }
            Ok(())
        })?;
        Ok(Postback { data: data.ok_or(Bail)?, params })
    }

    fn fast_postback_params(&mut self) -> Fast<PostbackParams> {
        let mut p = PostbackParams::default();
        let mut seen = 0;
        self.fast_object(|r, key| {
            let (bit, field) = match key {
                "date" => (0, &mut p.date),
                "time" => (1, &mut p.time),
                "datetime" => (2, &mut p.datetime),
                "newRichMenuAliasId" => (3, &mut p.new_rich_menu_alias_id),
                "status" => (4, &mut p.status),
                _ => return r.fast_skip(),
            };
            once(&mut seen, bit)?;
            *field = r.fast_opt_string()?;
            Ok(())
        })?;
        Ok(p)
    }

    fn fast_link(&mut self) -> Fast<AccountLink> {
        let (mut result, mut nonce) = (None, None);
        let mut seen = 0;
        self.fast_object(|r, key| {
            match key {
                "result" => {
                    once(&mut seen, 0)?;
                    result = Some(LinkResult::from_wire(&r.fast_string()?));
                }
                "nonce" => {
                    once(&mut seen, 1)?;
                    nonce = Some(r.fast_string()?.into_owned());
                }
                _ => r.fast_skip()?,
            }
            Ok(())
        })?;
        match (result, nonce) {
            (Some(result), Some(nonce)) => Ok(AccountLink { result, nonce }),
            _ => Err(Bail),
        }
    }

    fn fast_message(&mut self) -> Fast<MessageWire<'a>> {
        let mut m = MessageWire::default();
        let mut seen = 0;
        self.fast_object(|r, key| {
            match key {
                "type" => {
                    once(&mut seen, 0)?;
                    m.type_ = r.fast_string()?;
                }
                "id" => {
                    once(&mut seen, 1)?;
                    m.id = r.fast_opt_string()?;
                }
                "text" => {
                    once(&mut seen, 2)?;
                    m.text = r.fast_opt_string()?;
                }
                "emojis" => {
                    once(&mut seen, 3)?;
                    m.emojis = r.fast_value()?;
                }
                "mention" => {
                    once(&mut seen, 4)?;
                    m.mention = r.fast_value()?;
                }
                "quoteToken" => {
                    once(&mut seen, 5)?;
                    m.quote_token = r.fast_opt_string()?;
                }
                "quotedMessageId" => {
                    once(&mut seen, 6)?;
                    m.quoted_message_id = r.fast_opt_string()?;
                }
                "markAsReadToken" => {
                    once(&mut seen, 7)?;
                    m.mark_as_read_token = r.fast_opt_string()?;
                }
                "contentProvider" => {
                    once(&mut seen, 8)?;
                    m.content_provider = r.fast_value()?;
                }
                "imageSet" => {
                    once(&mut seen, 9)?;
                    m.image_set = r.fast_value()?;
                }
                "duration" => {
                    once(&mut seen, 10)?;
                    m.duration = r.fast_value()?;
                }
                "fileName" => {
                    once(&mut seen, 11)?;
                    m.file_name = r.fast_opt_string()?;
                }
                "fileSize" => {
                    once(&mut seen, 12)?;
                    m.file_size = r.fast_value()?;
                }
                "title" => {
                    once(&mut seen, 13)?;
                    m.title = r.fast_opt_string()?;
                }
                "address" => {
                    once(&mut seen, 14)?;
                    m.address = r.fast_opt_string()?;
                }
                "latitude" => {
                    once(&mut seen, 15)?;
                    m.latitude = r.fast_value()?;
                }
                "longitude" => {
                    once(&mut seen, 16)?;
                    m.longitude = r.fast_value()?;
                }
                "packageId" => {
                    once(&mut seen, 17)?;
                    m.package_id = r.fast_opt_string()?;
                }
                "stickerId" => {
                    once(&mut seen, 18)?;
                    m.sticker_id = r.fast_opt_string()?;
                }
                "stickerResourceType" => {
                    once(&mut seen, 19)?;
                    m.sticker_resource_type = if r.fast_null() {
                        None
                    } else {
                        Some(StickerResourceType::from_wire(&r.fast_string()?))
                    };
                }
                "keywords" => {
                    once(&mut seen, 20)?;
                    m.keywords = r.fast_value()?;
                }
                _ => r.fast_skip()?,
            }
            Ok(())
        })?;
        if seen & 1 == 0 {
            return Err(Bail);
        }
        Ok(m)
    }
}

/// Parses one event object (as found in `events`, or as serialised from an [`Event`]).
/// An event that is JSON but cannot be read becomes [`EventKind::Malformed`].
///
/// # Errors
/// [`BodyError::Json`] when `json` is not JSON at all.
pub fn parse_event(json: &str) -> Result<Event, BodyError> {
    let raw: &RawValue = serde_json::from_str(json).map_err(BodyError::Json)?;
    Ok(event_from_raw(raw.get()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SourceWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MessageWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    emojis: Option<Vec<Emoji>>,
    #[serde(default)]
    mention: Option<Mention>,
    #[serde(default)]
    quote_token: Option<String>,
    #[serde(default)]
    quoted_message_id: Option<String>,
    #[serde(default)]
    mark_as_read_token: Option<String>,
    #[serde(default)]
    content_provider: Option<ContentProvider>,
    #[serde(default)]
    image_set: Option<ImageSet>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    package_id: Option<String>,
    #[serde(default)]
    sticker_id: Option<String>,
    #[serde(default)]
    sticker_resource_type: Option<StickerResourceType>,
    #[serde(default)]
    keywords: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct MembersWire<'a> {
    #[serde(borrow)]
    members: Vec<SourceWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<DetachReason>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingsWire {
    #[serde(rename = "type")]
    type_: ThingsType,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    result: Option<ScenarioResult>,
}

/// Every known field of every event type. The type-specific parts are boxed: serde moves
/// this struct several times, and a flat 1.5 KB struct made those moves the largest cost.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventWire<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default, borrow)]
    source: Option<SourceWire<'a>>,
    #[serde(default)]
    webhook_event_id: Option<String>,
    #[serde(default)]
    delivery_context: Option<DeliveryContext>,
    #[serde(default)]
    reply_token: Option<String>,
    #[serde(default, borrow)]
    message: Option<Box<MessageWire<'a>>>,
    #[serde(default)]
    unsend: Option<Box<Unsend>>,
    #[serde(default)]
    follow: Option<Follow>,
    #[serde(default, borrow)]
    joined: Option<Box<MembersWire<'a>>>,
    #[serde(default, borrow)]
    left: Option<Box<MembersWire<'a>>>,
    #[serde(default)]
    postback: Option<Box<Postback>>,
    #[serde(default)]
    video_play_complete: Option<Box<VideoPlayComplete>>,
    #[serde(default)]
    beacon: Option<Box<Beacon>>,
    #[serde(default)]
    link: Option<Box<AccountLink>>,
    #[serde(default)]
    membership: Option<Box<Membership>>,
    #[serde(default, borrow)]
    module: Option<Box<ModuleWire<'a>>>,
    #[serde(default)]
    chat_control: Option<ChatControl>,
    #[serde(default)]
    delivery: Option<Box<PnpDelivery>>,
    #[serde(default)]
    things: Option<Box<ThingsWire>>,
}

/// The event as a `Value`, parsed only when an unknown sub-type needs its raw JSON.
struct LazyValue<'a> {
    raw: &'a str,
    value: Option<serde_json::Value>,
}

impl LazyValue<'_> {
    fn pointer(&mut self, path: &str) -> serde_json::Value {
        let raw = self.raw;
        let value = self.value.get_or_insert_with(|| serde_json::from_str(raw).unwrap_or_default());
        value.pointer(path).cloned().unwrap_or_default()
    }
}

fn webhook_event_id(s: Option<String>) -> Option<WebhookEventId> {
    // An ID that is empty, over-long or has control characters cannot be a ULID; it is dropped
    // here (the raw JSON keeps it) rather than failing the event.
    s.and_then(|s| WebhookEventId::new(s).ok())
}

/// The event types this version reads into a typed [`EventKind`].
const KNOWN_EVENT_TYPES: [&str; 21] = [
    "message",
    "messageEdited",
    "unsend",
    "follow",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "postback",
    "videoPlayComplete",
    "beacon",
    "accountLink",
    "membership",
    "module",
    "activated",
    "deactivated",
    "botSuspended",
    "botResumed",
    "delivery",
    "things",
];

/// Reads one event from its JSON text (which must be valid JSON).
pub(super) fn event_from_raw(raw: &str) -> Event {
    event_from_wire(
        serde_json::from_str::<EventWire<'_>>(raw),
        RawJson::new(raw.into(), 0, raw.len()),
    )
}

fn event_from_wire(wire: Result<EventWire<'_>, serde_json::Error>, raw_json: RawJson) -> Event {
    let raw: &str = &raw_json;
    let (common, source, kind) = match wire {
        Ok(mut wire) => {
            let mut lazy = LazyValue { raw, value: None };
            let common = Common {
                webhook_event_id: webhook_event_id(wire.webhook_event_id.take()),
                timestamp: wire.timestamp,
                mode: wire.mode.take(),
                reply_token: wire.reply_token.take(),
                delivery_context: wire.delivery_context,
            };
            let source =
                wire.source.take().map(|s| source_from_wire(s, &mut lazy, || "/source".to_owned()));
            let type_ = wire.type_.clone();
            let kind = match kind_from_wire(wire, &mut lazy) {
                Ok(kind) => kind,
                Err(field) => EventKind::Malformed {
                    event_type: Some(type_.to_string()),
                    error: EventError::MissingField { event_type: type_.into_owned(), field },
                },
            };
            (common, source, kind)
        }
        Err(e) => malformed(raw, e),
    };
    Event {
        webhook_event_id: common.webhook_event_id,
        timestamp: common.timestamp,
        mode: common.mode,
        source,
        reply_token: common.reply_token,
        delivery_context: common.delivery_context,
        kind,
        raw: raw_json,
    }
}

struct Common {
    webhook_event_id: Option<WebhookEventId>,
    timestamp: Option<i64>,
    mode: Option<Mode>,
    reply_token: Option<String>,
    delivery_context: Option<DeliveryContext>,
}

/// The slow path: the event did not fit the wire struct. Reads what it can of the common
/// fields, field by field, so the event can still be de-duplicated, logged and answered.
fn malformed(raw: &str, err: serde_json::Error) -> (Common, Option<Source>, EventKind) {
    let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    let Some(obj) = value.as_object() else {
        let common = Common {
            webhook_event_id: None,
            timestamp: None,
            mode: None,
            reply_token: None,
            delivery_context: None,
        };
        return (
            common,
            None,
            EventKind::Malformed { event_type: None, error: EventError::NotAnObject },
        );
    };
    let str_field = |k: &str| obj.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    let event_type = str_field("type");
    let common = Common {
        webhook_event_id: webhook_event_id(str_field("webhookEventId")),
        timestamp: obj.get("timestamp").and_then(serde_json::Value::as_i64),
        mode: obj.get("mode").and_then(|v| Mode::deserialize(v).ok()),
        reply_token: str_field("replyToken"),
        delivery_context: obj
            .get("deliveryContext")
            .and_then(|v| DeliveryContext::deserialize(v).ok()),
    };
    let source = obj.get("source").and_then(|v| {
        let wire = SourceWire::deserialize(v).ok()?;
        let mut lazy = LazyValue { raw, value: None };
        Some(source_from_wire(wire, &mut lazy, || "/source".to_owned()))
    });
    let kind = match event_type {
        None => EventKind::Malformed { event_type: None, error: EventError::MissingType },
        // A field of an unknown event type merely shares a name with a known field: the event
        // is simply unknown, not malformed.
        Some(t) if !KNOWN_EVENT_TYPES.contains(&t.as_str()) => EventKind::Unknown(t),
        Some(t) => EventKind::Malformed {
            error: EventError::Invalid { event_type: t.clone(), source: Arc::new(err) },
            event_type: Some(t),
        },
    };
    (common, source, kind)
}

/// `path` (the JSON pointer of the source) is built only for an unknown source.
fn source_from_wire(
    w: SourceWire<'_>,
    lazy: &mut LazyValue<'_>,
    path: impl FnOnce() -> String,
) -> Source {
    match (&*w.type_, w.group_id, w.room_id) {
        ("user", _, _) => Source::User { user_id: w.user_id },
        ("group", Some(group_id), _) => Source::Group { group_id, user_id: w.user_id },
        ("room", _, Some(room_id)) => Source::Room { room_id, user_id: w.user_id },
        // Unknown types, and a group/room without its ID, keep the whole object.
        _ => Source::Unknown { source_type: w.type_.into_owned(), raw: lazy.pointer(&path()) },
    }
}

fn members(
    w: Option<Box<MembersWire<'_>>>,
    lazy: &mut LazyValue<'_>,
    key: &str,
) -> Result<Members, &'static str> {
    let w = w.ok_or(if key == "joined" { "joined.members" } else { "left.members" })?;
    let members = w
        .members
        .into_iter()
        .enumerate()
        .map(|(i, m)| source_from_wire(m, lazy, || format!("/{key}/members/{i}")))
        .collect();
    Ok(Members { members })
}

fn kind_from_wire(w: EventWire<'_>, lazy: &mut LazyValue<'_>) -> Result<EventKind, &'static str> {
    Ok(match &*w.type_ {
        "message" => EventKind::Message(message_from_wire(*w.message.ok_or("message")?, lazy)?),
        "messageEdited" => {
            EventKind::MessageEdited(message_from_wire(*w.message.ok_or("message")?, lazy)?)
        }
        "unsend" => EventKind::Unsend(*w.unsend.ok_or("unsend.messageId")?),
        "follow" => EventKind::Follow(w.follow.unwrap_or_default()),
        "unfollow" => EventKind::Unfollow,
        "join" => EventKind::Join,
        "leave" => EventKind::Leave,
        "memberJoined" => EventKind::MemberJoined(members(w.joined, lazy, "joined")?),
        "memberLeft" => EventKind::MemberLeft(members(w.left, lazy, "left")?),
        "postback" => EventKind::Postback(*w.postback.ok_or("postback")?),
        "videoPlayComplete" => {
            EventKind::VideoPlayComplete(*w.video_play_complete.ok_or("videoPlayComplete")?)
        }
        "beacon" => EventKind::Beacon(*w.beacon.ok_or("beacon")?),
        "accountLink" => EventKind::AccountLink(*w.link.ok_or("link")?),
        "membership" => EventKind::Membership(*w.membership.ok_or("membership")?),
        "module" => EventKind::Module(module_from_wire(*w.module.ok_or("module")?, lazy)?),
        "activated" => EventKind::Activated(w.chat_control.ok_or("chatControl")?),
        "deactivated" => EventKind::Deactivated,
        "botSuspended" => EventKind::BotSuspended,
        "botResumed" => EventKind::BotResumed,
        "delivery" => EventKind::Delivery(*w.delivery.ok_or("delivery")?),
        "things" => {
            let t = *w.things.ok_or("things")?;
            EventKind::Things(Things {
                things_type: t.type_,
                device_id: t.device_id,
                result: t.result,
            })
        }
        other => EventKind::Unknown(other.to_owned()),
    })
}

fn module_from_wire(
    w: ModuleWire<'_>,
    lazy: &mut LazyValue<'_>,
) -> Result<ModuleContent, &'static str> {
    Ok(match &*w.type_ {
        "attached" => ModuleContent::Attached {
            bot_id: w.bot_id.ok_or("module.botId")?,
            scopes: w.scopes.unwrap_or_default(),
        },
        "detached" => ModuleContent::Detached {
            bot_id: w.bot_id.ok_or("module.botId")?,
            reason: w.reason.unwrap_or_else(|| DetachReason::Unknown(String::new())),
        },
        other => {
            ModuleContent::Unknown { module_type: other.to_owned(), raw: lazy.pointer("/module") }
        }
    })
}

fn message_from_wire(
    w: MessageWire<'_>,
    lazy: &mut LazyValue<'_>,
) -> Result<MessageContent, &'static str> {
    let id = w.id;
    Ok(match &*w.type_ {
        "text" => MessageContent::Text(TextMessage {
            id,
            text: w.text.ok_or("message.text")?,
            emojis: w.emojis,
            mention: w.mention,
            quote_token: w.quote_token,
            quoted_message_id: w.quoted_message_id,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "image" => MessageContent::Image(ImageMessage {
            id,
            content_provider: w.content_provider,
            image_set: w.image_set,
            quote_token: w.quote_token,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "video" => MessageContent::Video(VideoMessage {
            id,
            duration: w.duration,
            content_provider: w.content_provider,
            quote_token: w.quote_token,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "audio" => MessageContent::Audio(AudioMessage {
            id,
            duration: w.duration,
            content_provider: w.content_provider,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "file" => MessageContent::File(FileMessage {
            id,
            file_name: w.file_name,
            file_size: w.file_size,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "location" => MessageContent::Location(LocationMessage {
            id,
            title: w.title,
            address: w.address,
            latitude: w.latitude.ok_or("message.latitude")?,
            longitude: w.longitude.ok_or("message.longitude")?,
            mark_as_read_token: w.mark_as_read_token,
        }),
        "sticker" => MessageContent::Sticker(StickerMessage {
            id,
            package_id: w.package_id.ok_or("message.packageId")?,
            sticker_id: w.sticker_id.ok_or("message.stickerId")?,
            sticker_resource_type: w.sticker_resource_type,
            keywords: w.keywords,
            text: w.text,
            quote_token: w.quote_token,
            quoted_message_id: w.quoted_message_id,
            mark_as_read_token: w.mark_as_read_token,
        }),
        other => MessageContent::Unknown(UnknownMessage {
            id,
            message_type: other.to_owned(),
            raw: lazy.pointer("/message"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast reader must give exactly what serde's reader gives: the same events (kinds,
    /// errors with their positions, raw JSON) or the same body error.
    fn same(body: &[u8]) {
        match (parse(body), parse_slow(body)) {
            (Ok(fast), Ok(slow)) => {
                assert_eq!(fast, slow, "{}", String::from_utf8_lossy(body));
                for (f, s) in fast.events.iter().zip(&slow.events) {
                    assert_eq!(
                        f.error().map(ToString::to_string),
                        s.error().map(ToString::to_string)
                    );
                }
            }
            (Err(fast), Err(slow)) => assert_eq!(
                format!("{:?}", std::error::Error::source(&fast)),
                format!("{:?}", std::error::Error::source(&slow)),
                "{}",
                String::from_utf8_lossy(body)
            ),
            (fast, slow) => panic!("{}: {fast:?} / {slow:?}", String::from_utf8_lossy(body)),
        }
    }

    fn fixture_bodies() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/line/webhook-events");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    const TEXT: &str = r#"{"destination":"U0","events":[{"type":"message","mode":"active","timestamp":1760000000000,"source":{"type":"user","userId":"U4af4980629a1b2c3d4e5f60718290001"},"webhookEventId":"01JAB7Z8Q4M3N5P6R7S8T90001","deliveryContext":{"isRedelivery":false},"replyToken":"b60d432864f44d079f6d8efe86cf0001","message":{"type":"text","id":"532904521318600001","quoteToken":"q3Plxr","markAsReadToken":"30yhdy","text":"注文番号 1 の配送状況"}},{"type":"accountLink","timestamp":1,"source":{"type":"group","groupId":"C1","userId":"U1"},"link":{"result":"ok","nonce":"n1"},"follow":{"isUnblocked":null}}]}"#;

    #[test]
    fn fast_reader_matches_serde_on_fixtures() {
        for body in fixture_bodies() {
            same(&body);
        }
        same(TEXT.as_bytes());
    }

    #[test]
    fn fast_reader_matches_serde_on_edge_cases() {
        let event = |inner: &str| format!(r#"{{"events":[{inner}]}}"#);
        for inner in [
            r#"{"type":"unfollow","type":"unfollow"}"#,
            r#"{"type":"unfollow","mode":null,"mode":null}"#,
            r#"{"type":"unfollow","replyToken":null}"#,
            r#"{"type":"unfollow","replyToken":1}"#,
            r#"{"type":"unf\u006fllow"}"#,
            r#"{"typ\u0065":"unfollow"}"#,
            r#"{"type":"message","message":{"type":"text","text":"a\nb\"c\\"}}"#,
            r#"{"type":"message","message":{"type":"text","text":"a	b"}}"#,
            r#"{"type":"message","message":{"type":"text"}}"#,
            r#"{"type":"message","message":{"type":"text","text":"x","text":"y"}}"#,
            r#"{"type":"message","message":{"text":"x"}}"#,
            r#"{"type":"message","message":{"type":"location","latitude":1.5,"longitude":-2e3}}"#,
            r#"{"type":"message","message":{"type":"sticker","packageId":"1","stickerId":"2","stickerResourceType":"NEW","keywords":["a"]}}"#,
            r#"{"type":"message","message":{"type":"image","contentProvider":{"type":"line"},"imageSet":{"id":"s","index":1}}}"#,
            r#"{"type":"message","message":{"type":"file","fileSize":-1}}"#,
            r#"{"type":"message","message":{"type":"video","duration":1.0}}"#,
            r#"{"type":"message","message":null}"#,
            r#"{"type":"unfollow","timestamp":-1}"#,
            r#"{"type":"unfollow","timestamp":01}"#,
            r#"{"type":"unfollow","timestamp":0}"#,
            r#"{"type":"unfollow","timestamp":1.0}"#,
            r#"{"type":"unfollow","timestamp":1e3}"#,
            r#"{"type":"unfollow","timestamp":9223372036854775807}"#,
            r#"{"type":"unfollow","timestamp":9223372036854775808}"#,
            r#"{"type":"unfollow","timestamp":"1"}"#,
            r#"{"type":"unfollow","timestamp":1x}"#,
            r#"{ "type" : "follow" , "follow" : { "isUnblocked" : true } , "x" : [ 1 , { } ] }"#,
            r#"{"type":"follow","follow":{"isUnblocked":1}}"#,
            r#"{"type":"follow","follow":{"isUnblocked":truex}}"#,
            r#"{"type":"follow","follow":{}}"#,
            r#"{"type":"follow","deliveryContext":{"isRedelivery":null}}"#,
            r#"{"type":"follow","deliveryContext":{}}"#,
            r#"{"type":"follow","deliveryContext":{"isRedelivery":true,"isRedelivery":true}}"#,
            r#"{"type":"accountLink","link":{"result":"ok"}}"#,
            r#"{"type":"accountLink","link":{"result":"new","nonce":"n","extra":{}}}"#,
            r#"{"type":"accountLink","link":{"result":"ok","nonce":"n","nonce":"n"}}"#,
            r#"{"type":"memberJoined","joined":{"members":[{"type":"user","userId":"U1"},{"type":"bot"}]}}"#,
            r#"{"type":"unfollow","source":{"type":"room"}}"#,
            r#"{"type":"unfollow","source":{"type":"new","x":1}}"#,
            r#"{"type":"unfollow","source":{"userId":"U1"}}"#,
            r#"{"type":"unfollow","source":"U1"}"#,
            r#"{"type":"somethingNew","message":{"type":"text"}}"#,
            r#"{"type":"unfollow",}"#,
            r#"{"type":"unfollow""#,
            r#"{"type":"unfollow"]"#,
            r#"{"type":1}"#,
            r#"{}"#,
            r#"[]"#,
            r#""event""#,
            r#"{"type":"unfollow","x":nul}"#,
            r#"{"type":"unfollow","x":"\x"}"#,
            r#"{"type":"unfollow","webhookEventId":""}"#,
        ] {
            same(event(inner).as_bytes());
        }
        for body in [
            r#"{"event\u0073":[]}"#,
            r#"{"events":[],"events":[]}"#,
            r#"{"destination":"U","events":[{"type":"unfollow"} ,{"type":"join"}]}"#,
            r#"{"destination":"U\n","events":[]}"#,
            r#"{"events":[{"type":"unfollow"}]} x"#,
            r#"{"events":[{"type":"unfollow"},]}"#,
            r#" { "events" : [ ] } "#,
            r#"{"destination":nullx,"events":[]}"#,
            r#"{"destination":null,"events":[]}"#,
            r#"{"destination":"\u0055","events":[]}"#,
        ] {
            same(body.as_bytes());
        }
    }

    /// Every one-byte deletion or replacement in an event gives the same outcome both ways.
    #[test]
    fn fast_reader_matches_serde_on_damaged_events() {
        let mut bodies = vec![TEXT.as_bytes().to_vec()];
        bodies.extend(fixture_bodies().into_iter().step_by(7));
        for body in bodies {
            let start = body.windows(2).position(|w| w == b"[{").map_or(0, |p| p + 1);
            for at in start..body.len().min(start + 600) {
                let mut cut = body.clone();
                cut.remove(at);
                same(&cut);
                for b in [b'"', b'\\', b'0', b'n', b' ', b'}', b',', b'.', 0x01] {
                    let mut changed = body.clone();
                    changed[at] = b;
                    same(&changed);
                }
            }
        }
    }

    const WORDS: &[&str] = &[
        "type",
        "message",
        "text",
        "source",
        "user",
        "group",
        "userId",
        "groupId",
        "id",
        "timestamp",
        "mode",
        "active",
        "webhookEventId",
        "deliveryContext",
        "isRedelivery",
        "replyToken",
        "follow",
        "isUnblocked",
        "postback",
        "data",
        "params",
        "accountLink",
        "link",
        "result",
        "nonce",
        "ok",
        "sticker",
        "packageId",
        "stickerId",
        "stickerResourceType",
        "keywords",
        "emojis",
        "quoteToken",
        "markAsReadToken",
        "joined",
        "members",
        "unfollow",
        "x",
    ];

    /// JSON text with duplicate keys, odd spacing and escapes, which `Value` would not produce.
    fn json(depth: u32) -> BoxedStrategy<String> {
        let word = || {
            prop_oneof![
                4 => proptest::sample::select(WORDS).prop_map(|w| format!("\"{w}\"")),
                1 => ".{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            ]
        };
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            Just("1.5".to_owned()),
            word(),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        let ws = || proptest::sample::select(&["", " ", "\n "][..]);
        prop_oneof![
            2 => leaf,
            1 => proptest::collection::vec(json(depth - 1), 0..3)
                .prop_map(|v| format!("[{}]", v.join(","))),
            3 => (proptest::collection::vec((word(), ws(), json(depth - 1)), 0..7))
                .prop_map(|kv| {
                    let fields: Vec<String> =
                        kv.into_iter().map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn fast_reader_matches_serde_on_generated_events(
            events in proptest::collection::vec(
                (proptest::sample::select(&["message", "follow", "accountLink", "unfollow", "x"][..]), json(3)),
                0..4,
            )
        ) {
            let events: Vec<String> = events
                .into_iter()
                .map(|(t, v)| match v.strip_prefix('{') {
                    Some(rest) if rest != "}" => format!("{{\"type\":\"{t}\",{rest}"),
                    _ => v,
                })
                .collect();
            same(format!(r#"{{"events":[{}]}}"#, events.join(",")).as_bytes());
        }
    }
}
