//! Message templates: `{{ var }}` placeholders in any string of a LINE message, compiled once
//! and rendered per recipient.
//!
//! Syntax, inside any string of a [`Message`] (text, alt text, labels, URIs, flex texts, ...):
//! - `{{ name }}`: the variable's value; names are ASCII letters, digits, `_`, `.` and `-`,
//!   starting with a letter or `_`;
//! - `{{ name | default text }}` or `{{ name | "quoted default" }}` (`\"` and `\\` escape inside
//!   quotes): the default is used when the variable is missing or empty;
//! - `\{{` is a literal `{{`.
//!
//! A variable without a value or a default is a [`RenderError::MissingVariable`]; the planner
//! collects them into one error listing the affected customers.
//!
//! In `textV2` messages LINE itself gives `{key}` a meaning and reads `{{` as a literal `{`:
//! write `\{{` where LINE should see `{{`; values inserted there have their braces doubled so a
//! customer's name can never become a LINE placeholder.
//!
//! ```
//! use enishi::campaign::{MessageTemplate, Vars};
//! use enishi::line::message::Message;
//!
//! let template = MessageTemplate::text("{{ name | お客様 }}、次のランクまであと{{ rank_gap_yen }}円です")?;
//! let vars = Vars::new().with("name", "花子").with("rank_gap_yen", "2,000");
//! assert_eq!(template.render(&vars)?, Message::text("花子、次のランクまであと2,000円です"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::line::message::limits;
use crate::line::message::{Message, TextMessage};
use crate::line::{ValidationError, Validator};

/// Template variables: a customer's (name, rank gap, product, coupon code, ...) or a
/// campaign's, by name. Serialises as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Vars {
    // A handful of entries per customer: a vector beats a map for lookups and memory.
    entries: Vec<(Box<str>, String)>,
}

impl Vars {
    /// No variables.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a variable; any `Display` value (numbers included) is accepted.
    #[must_use]
    pub fn with(mut self, name: impl AsRef<str>, value: impl fmt::Display) -> Self {
        self.insert(name, value.to_string());
        self
    }

    /// Sets a variable, replacing an earlier value of the same name.
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let name = name.as_ref();
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| &**n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.into(), value)),
        }
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| &**n == name).map(|(_, v)| v.as_str())
    }

    /// The variables in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// How many variables there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut vars = Self::new();
        for (k, v) in iter {
            vars.insert(k, v);
        }
        vars
    }
}

impl From<BTreeMap<String, String>> for Vars {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl From<Vars> for BTreeMap<String, String> {
    fn from(vars: Vars) -> Self {
        vars.entries.into_iter().map(|(n, v)| (n.into_string(), v)).collect()
    }
}

/// A template could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{{ ... }}` placeholder is malformed.
    #[error("template syntax error in `{field}` at line {line}, column {column}: {message}")]
    Syntax {
        /// Where the string is in the message, as a JSON pointer (`/text`, `/altText`, ...).
        field: String,
        /// Byte offset of the error in the string.
        offset: usize,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error in characters, from 1.
        column: usize,
        /// What was expected.
        message: &'static str,
    },
    /// The message cannot be templated this way.
    #[error("cannot template this message: {reason}")]
    Unsupported {
        /// Why.
        reason: &'static str,
    },
    /// The message could not be turned into JSON to find its strings.
    #[error("message could not be encoded for templating")]
    Encode(#[source] serde_json::Error),
}

/// A template could not be rendered for one recipient.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A variable has no value and its placeholder no default.
    #[error("variable `{name}` has no value and no default")]
    MissingVariable {
        /// The variable.
        name: String,
    },
    /// The rendered message breaks one of LINE's limits (e.g. text over 5,000 characters).
    #[error("rendered message breaks LINE's limits")]
    Invalid(#[source] ValidationError),
    /// The rendered JSON is no longer a message object.
    #[error("rendered message is not a valid message object")]
    Decode(#[source] serde_json::Error),
}

/// One compiled string: literal parts and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Box<str>),
    Var { name: Box<str>, default: Option<Box<str>> },
}

/// How inserted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// textV2: `{` → `{{`, `}` → `}}`.
    Braces,
}

/// A compiled template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTemplate {
    parts: Vec<Part>,
    /// `$` characters of literal parts: (UTF-16 position in the source, part, UTF-16 offset in
    /// the part), to move LINE emoji with the text.
    dollars: Vec<(u32, usize, u32)>,
    literal_len: usize,
}

impl TextTemplate {
    /// Compiles `source`.
    ///
    /// # Errors
    /// [`TemplateError::Syntax`] with the position of a malformed placeholder.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        Self::parse_at(source, "")
    }

    fn parse_at(source: &str, field: &str) -> Result<Self, TemplateError> {
        Parser { src: source, pos: 0 }.run().map_err(|(offset, message)| {
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            TemplateError::Syntax { field: field.to_owned(), offset, line, column, message }
        })
    }

    /// The variables the template refers to, in order of first use.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        let mut seen = BTreeSet::new();
        self.parts.iter().filter_map(move |p| match p {
            Part::Var { name, .. } if seen.insert(&**name) => Some(&**name),
            _ => None,
        })
    }

    /// Whether the template has no placeholder.
    #[must_use]
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Renders with `vars`.
    ///
    /// # Errors
    /// [`RenderError::MissingVariable`] for a variable without value or default.
    pub fn render(&self, vars: &Vars) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.literal_len + 16);
        self.render_into(&mut out, vars, Escape::None, None).map_err(missing)?;
        Ok(out)
    }

    /// Replaces the placeholders `vars` has values for by literal text (campaign-wide values),
    /// keeping part positions so emoji anchors stay valid.
    fn bind(&self, vars: &Vars, escape: Escape) -> Self {
        if vars.is_empty() {
            return self.clone();
        }
        let mut literal_len = 0;
        let parts = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Var { name, .. } => match vars.get(name) {
                    Some(value) if !value.is_empty() => {
                        let mut s = String::new();
                        push_escaped(&mut s, value, escape);
                        literal_len += s.len();
                        Part::Lit(s.into())
                    }
                    _ => p.clone(),
                },
                Part::Lit(s) => {
                    literal_len += s.len();
                    p.clone()
                }
            })
            .collect();
        Self { parts, dollars: self.dollars.clone(), literal_len }
    }

    /// Appends the rendering to `out`; on a missing variable returns its name. With `starts`,
    /// records each part's UTF-16 start position in `out` (for emoji).
    fn render_into<'a>(
        &'a self,
        out: &mut String,
        vars: &Vars,
        escape: Escape,
        mut starts: Option<&mut Vec<u32>>,
    ) -> Result<(), &'a str> {
        let mut u16_pos = 0u32;
        for part in &self.parts {
            let before = out.len();
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { name, default } => {
                    match vars.get(name).filter(|v| !v.is_empty()).or(default.as_deref()) {
                        Some(value) => push_escaped(out, value, escape),
                        None => return Err(name),
                    }
                }
            }
            if let Some(starts) = starts.as_deref_mut() {
                starts.push(u16_pos);
                let added = out[before..].encode_utf16().count();
                u16_pos = u16_pos.saturating_add(u32::try_from(added).unwrap_or(u32::MAX));
            }
        }
        Ok(())
    }

    /// The text when there is no placeholder.
    fn literal(&self) -> Option<String> {
        self.is_static().then(|| {
            self.parts
                .iter()
                .filter_map(|p| match p {
                    Part::Lit(s) => Some(&**s),
                    Part::Var { .. } => None,
                })
                .collect()
        })
    }
}

fn missing(name: &str) -> RenderError {
    RenderError::MissingVariable { name: name.to_owned() }
}

fn push_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::Braces if value.contains(['{', '}']) => {
            for c in value.chars() {
                out.push(c);
                if c == '{' || c == '}' {
                    out.push(c);
                }
            }
        }
        _ => out.push_str(value),
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

type ParseError = (usize, &'static str);

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn run(mut self) -> Result<TextTemplate, ParseError> {
        let mut parts = Vec::new();
        let mut dollars = Vec::new();
        let mut lit = String::new();
        let mut lit_u16 = 0u32;
        let mut src_u16 = 0u32;
        let mut literal_len = 0;
        while self.pos < self.src.len() {
            let rest = self.rest();
            if rest.starts_with("\\{{") {
                lit.push_str("{{");
                lit_u16 += 2;
                src_u16 += 3;
                self.pos += 3;
            } else if rest.starts_with("{{") {
                let start = self.pos;
                let var = self.placeholder()?;
                src_u16 += u16_len(&self.src[start..self.pos]);
                if !lit.is_empty() {
                    literal_len += lit.len();
                    parts.push(Part::Lit(std::mem::take(&mut lit).into()));
                    lit_u16 = 0;
                }
                parts.push(var);
            } else {
                let c = rest.chars().next().unwrap_or_default();
                if c == '$' {
                    dollars.push((src_u16, parts.len(), lit_u16));
                }
                lit.push(c);
                let n = u32::try_from(c.len_utf16()).unwrap_or(2);
                lit_u16 += n;
                src_u16 += n;
                self.pos += c.len_utf8();
            }
        }
        if !lit.is_empty() {
            literal_len += lit.len();
            parts.push(Part::Lit(lit.into()));
        }
        Ok(TextTemplate { parts, dollars, literal_len })
    }

    /// `{{ name }}` or `{{ name | default }}`, starting at `{{`.
    fn placeholder(&mut self) -> Result<Part, ParseError> {
        self.pos += 2;
        self.skip_ws();
        let name_len = self
            .rest()
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .count();
        let name = &self.src[self.pos..self.pos + name_len];
        match name.bytes().next() {
            None => return Err((self.pos, "expected a variable name")),
            Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => {
                return Err((self.pos, "a variable name starts with a letter or `_`"));
            }
            Some(_) => {}
        }
        self.pos += name_len;
        self.skip_ws();
        let default = if self.rest().starts_with('|') {
            self.pos += 1;
            self.skip_ws();
            Some(self.default_value()?)
        } else {
            None
        };
        self.skip_ws();
        if !self.rest().starts_with("}}") {
            let message = if default.is_some() { "expected `}}`" } else { "expected `}}` or `|`" };
            return Err((self.pos, message));
        }
        self.pos += 2;
        Ok(Part::Var { name: name.into(), default: default.map(Into::into) })
    }

    fn default_value(&mut self) -> Result<String, ParseError> {
        if self.rest().starts_with('"') {
            let open = self.pos;
            self.pos += 1;
            let mut value = String::new();
            let mut chars = self.rest().char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += i + 1;
                        return Ok(value);
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => value.push(e),
                        _ => return Err((self.pos + i, "only `\\\"` and `\\\\` escape in quotes")),
                    },
                    c => value.push(c),
                }
            }
            Err((open, "unterminated quoted default"))
        } else {
            match self.rest().find("}}") {
                Some(end) => {
                    let value = self.rest()[..end].trim_end().to_owned();
                    self.pos += end;
                    Ok(value)
                }
                None => Err((self.pos, "expected `}}` after the default")),
            }
        }
    }
}

fn u16_len(s: &str) -> u32 {
    u32::try_from(s.encode_utf16().count()).unwrap_or(u32::MAX)
}

/// A LINE message with placeholders, compiled once and rendered per recipient.
///
/// Text messages (the common case) render by filling one string; other messages render
/// through their JSON form with placeholders in any string. Every rendered message is checked
/// against LINE's limits (a text over 5,000 UTF-16 units is a [`RenderError::Invalid`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageTemplate {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// No placeholder: the message as is (after unescaping `\{{`).
    Static(Box<Message>),
    /// A text message whose only placeholders are in `text`; `emojis` anchors each LINE emoji
    /// of `proto` to its `$` (part, UTF-16 offset in the part).
    Text { proto: TextMessage, text: TextTemplate, emojis: Vec<(usize, u32)> },
    /// Any message: placeholders at JSON pointers of its JSON form.
    Json { skeleton: Value, fields: Vec<JsonField> },
}

#[derive(Debug, Clone, PartialEq)]
struct JsonField {
    pointer: String,
    template: TextTemplate,
    escape: Escape,
}

impl MessageTemplate {
    /// Compiles the placeholders in every string of `message`.
    ///
    /// # Errors
    /// [`TemplateError::Syntax`] naming the field and position of a malformed placeholder;
    /// [`TemplateError::Unsupported`] for a text message with LINE emoji whose placeholders are
    /// outside `text`, or an emoji index not on a literal `$`.
    pub fn new(message: impl Into<Message>) -> Result<Self, TemplateError> {
        let message = message.into();
        let mut skeleton = serde_json::to_value(&message).map_err(TemplateError::Encode)?;
        let escape_text = matches!(message, Message::TextV2(_));
        let mut fields = Vec::new();
        compile_strings(&mut skeleton, &mut String::new(), escape_text, &mut fields)?;
        if fields.is_empty() {
            // Unescaped `\{{` may have changed strings: decode the skeleton back.
            let message = serde_json::from_value(skeleton).map_err(TemplateError::Encode)?;
            return Ok(Self { kind: Kind::Static(Box::new(message)) });
        }
        if let Message::Text(text) = &message {
            if let [field] = fields.as_slice()
                && field.pointer == "/text"
            {
                let emojis = anchor_emojis(text, &field.template)?;
                let mut proto = text.clone();
                proto.text = String::new();
                let text = field.template.clone();
                return Ok(Self { kind: Kind::Text { proto, text, emojis } });
            }
            if !text.emojis.is_empty() {
                return Err(TemplateError::Unsupported {
                    reason: "a text message with LINE emoji may have placeholders only in `text`",
                });
            }
        }
        Ok(Self { kind: Kind::Json { skeleton, fields } })
    }

    /// A text message template.
    ///
    /// # Errors
    /// [`TemplateError::Syntax`] for a malformed placeholder.
    pub fn text(source: impl Into<String>) -> Result<Self, TemplateError> {
        Self::new(Message::text(source))
    }

    /// The variables the template refers to.
    #[must_use]
    pub fn variables(&self) -> BTreeSet<&str> {
        match &self.kind {
            Kind::Static(_) => BTreeSet::new(),
            Kind::Text { text, .. } => text.variables().collect(),
            Kind::Json { fields, .. } => {
                fields.iter().flat_map(|f| f.template.variables()).collect()
            }
        }
    }

    /// Whether every recipient gets the same message (no placeholder left).
    #[must_use]
    pub fn is_static(&self) -> bool {
        matches!(self.kind, Kind::Static(_))
    }

    /// The message when the template has no placeholder.
    #[must_use]
    pub fn as_static(&self) -> Option<&Message> {
        match &self.kind {
            Kind::Static(m) => Some(&**m),
            _ => None,
        }
    }

    /// This template with `vars` filled in where they have a (non-empty) value: campaign-wide
    /// values such as a coupon code. A template left without placeholders becomes static.
    ///
    /// # Errors
    /// [`RenderError`] when the now-static message breaks LINE's limits.
    pub fn bind(&self, vars: &Vars) -> Result<Self, RenderError> {
        let bound = match &self.kind {
            Kind::Static(_) => return Ok(self.clone()),
            Kind::Text { proto, text, emojis } => {
                let text = text.bind(vars, Escape::None);
                Kind::Text { proto: proto.clone(), text, emojis: emojis.clone() }
            }
            Kind::Json { skeleton, fields } => {
                let mut skeleton = skeleton.clone();
                let mut left = Vec::new();
                for f in fields {
                    let template = f.template.bind(vars, f.escape);
                    match template.literal() {
                        Some(s) => set_pointer(&mut skeleton, &f.pointer, s),
                        None => left.push(JsonField { template, ..f.clone() }),
                    }
                }
                Kind::Json { skeleton, fields: left }
            }
        };
        let bound = Self { kind: bound };
        let static_now = match &bound.kind {
            Kind::Text { text, .. } => text.is_static(),
            Kind::Json { fields, .. } => fields.is_empty(),
            Kind::Static(_) => true,
        };
        if static_now {
            let message = bound.render(&Vars::new())?;
            return Ok(Self { kind: Kind::Static(Box::new(message)) });
        }
        Ok(bound)
    }

    /// Renders the message for one recipient and checks it against LINE's limits.
    ///
    /// # Errors
    /// [`RenderError::MissingVariable`] for a variable without value or default;
    /// [`RenderError::Invalid`] when the result breaks a LINE limit.
    pub fn render(&self, vars: &Vars) -> Result<Message, RenderError> {
        match &self.kind {
            Kind::Static(m) => Ok((**m).clone()),
            Kind::Text { proto, text, emojis } => {
                let mut out = String::with_capacity(text.literal_len + 32);
                let mut message = proto.clone();
                if emojis.is_empty() {
                    text.render_into(&mut out, vars, Escape::None, None).map_err(missing)?;
                } else {
                    // Placeholders before a `$` move it: re-point each emoji at its `$`.
                    let mut starts = Vec::with_capacity(text.parts.len());
                    text.render_into(&mut out, vars, Escape::None, Some(&mut starts))
                        .map_err(missing)?;
                    for (emoji, &(part, offset)) in message.emojis.iter_mut().zip(emojis) {
                        emoji.index = starts.get(part).copied().unwrap_or(0) + offset;
                    }
                }
                check_text(&out)?;
                message.text = out;
                Ok(Message::Text(message))
            }
            Kind::Json { skeleton, fields } => {
                let mut value = skeleton.clone();
                for f in fields {
                    let mut out = String::with_capacity(f.template.literal_len + 16);
                    f.template.render_into(&mut out, vars, f.escape, None).map_err(missing)?;
                    set_pointer(&mut value, &f.pointer, out);
                }
                let message: Message =
                    serde_json::from_value(value).map_err(RenderError::Decode)?;
                let mut v = Validator::new();
                message.validate(&mut v);
                v.finish().map_err(RenderError::Invalid)?;
                Ok(message)
            }
        }
    }
}

impl TryFrom<Message> for MessageTemplate {
    type Error = TemplateError;
    fn try_from(message: Message) -> Result<Self, Self::Error> {
        Self::new(message)
    }
}

/// A text's length check without counting UTF-16 units in the common short case (a UTF-16
/// unit takes at least one UTF-8 byte).
fn check_text(text: &str) -> Result<(), RenderError> {
    let too_long = text.len() > limits::TEXT_MAX && text.encode_utf16().count() > limits::TEXT_MAX;
    if text.is_empty() || too_long {
        let len = text.encode_utf16().count();
        return Err(RenderError::Invalid(ValidationError::new(
            "text",
            format!("must be 1 to {} UTF-16 code units long (got {len})", limits::TEXT_MAX),
        )));
    }
    Ok(())
}

/// Maps each emoji of `text` to the literal `$` it sits on: (part, UTF-16 offset in the part).
fn anchor_emojis(
    text: &TextMessage,
    template: &TextTemplate,
) -> Result<Vec<(usize, u32)>, TemplateError> {
    text.emojis
        .iter()
        .map(|e| {
            if let Some(&(_, part, offset)) = template.dollars.iter().find(|d| d.0 == e.index) {
                Ok((part, offset))
            } else {
                Err(TemplateError::Unsupported {
                    reason: "a LINE emoji index must point at a literal `$` of the template text",
                })
            }
        })
        .collect()
}

/// Compiles every string below `value`; strings with placeholders become fields, the others
/// are unescaped in place.
fn compile_strings(
    value: &mut Value,
    pointer: &mut String,
    escape_text: bool,
    fields: &mut Vec<JsonField>,
) -> Result<(), TemplateError> {
    match value {
        Value::String(s) => {
            if !s.contains("{{") {
                return Ok(());
            }
            let template = TextTemplate::parse_at(s, pointer)?;
            match template.literal() {
                Some(literal) => *s = literal,
                None => {
                    let escape = if escape_text && pointer == "/text" {
                        Escape::Braces
                    } else {
                        Escape::None
                    };
                    fields.push(JsonField { pointer: pointer.clone(), template, escape });
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                compile_strings(item, pointer, escape_text, fields)?;
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                compile_strings(item, pointer, escape_text, fields)?;
                pointer.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn set_pointer(value: &mut Value, pointer: &str, s: String) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = Value::String(s);
    }
}
