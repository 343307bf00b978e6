//! The hand walk of the envelope and the fast reader of events.

use super::*;

/// Walks the envelope by hand so that each event is read **once**, straight into the wire
/// struct, while its exact byte range (the raw JSON) is known from the stream offset. Reading
/// the events first as raw values and then again as typed values cost about a third more.
/// Values are still read by serde_json (`StreamDeserializer` reports where each one ends);
/// the walker only handles the punctuation between them.
pub(super) struct Walker<'a> {
    pub(super) text: &'a str,
    /// `text`, shared by the events' raw JSON.
    pub(super) body: &'a Arc<str>,
    pub(super) pos: usize,
    /// Whether events are tried with the fast reader first (off only to test it against the
    /// serde path).
    pub(super) fast: bool,
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

    pub(super) fn payload(mut self) -> Result<WebhookPayload, serde_json::Error> {
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
