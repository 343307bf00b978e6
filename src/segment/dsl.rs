//! The text DSL: a lexer and a recursive-descent parser producing [`Condition`]s.
//!
//! The grammar is in `docs/segments.md`. Precedence: `not` > `and` > `or`; parentheses group
//! without adding nodes; `all(a, b)` / `any(a)` write groups of any size.

use chrono::{DateTime, Utc};

use super::ast::{
    AddOp, AttrTest, CmpOp, Condition, CountTest, DateField, DateTest, Expr, OrderFilter,
    OrderKind, SubscriptionState, SumTerm, Value, Window,
};
use super::error::ParseError;
use super::time::{DAY, Span};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Int(u64),
    Span(Span),
    Time(DateTime<Utc>),
    Op(CmpOp),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    DotDot,
    Plus,
    Minus,
    Star,
    Eof,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("`{s}`"),
            Self::Str(s) => format!("string {s:?}"),
            Self::Int(n) => format!("number {n}"),
            Self::Span(s) => format!("span {s}"),
            Self::Time(t) => format!("time @{}", t.to_rfc3339()),
            Self::Op(o) => format!("`{}`", o.symbol()),
            Self::LParen => "`(`".into(),
            Self::RParen => "`)`".into(),
            Self::LBrace => "`{`".into(),
            Self::RBrace => "`}`".into(),
            Self::LBracket => "`[`".into(),
            Self::RBracket => "`]`".into(),
            Self::Comma => "`,`".into(),
            Self::DotDot => "`..`".into(),
            Self::Plus => "`+`".into(),
            Self::Minus => "`-`".into(),
            Self::Star => "`*`".into(),
            Self::Eof => "end of input".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
    pub(super) column: usize,
}

pub(super) fn err(
    line: usize,
    column: usize,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> ParseError {
    ParseError { line, column, expected: expected.into(), found: found.into() }
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        let mut advance = |n: usize, i: &mut usize| {
            for _ in 0..n {
                if chars.get(*i) == Some(&'\n') {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
                *i += 1;
            }
        };
        if c.is_whitespace() {
            advance(1, &mut i);
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                advance(1, &mut i);
            }
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '*' => Some(Tok::Star),
            _ => None,
        };
        let (tok, len) = if two == ".." {
            (Tok::DotDot, 2)
        } else if two == "!=" {
            (Tok::Op(CmpOp::Ne), 2)
        } else if two == "<=" {
            (Tok::Op(CmpOp::Le), 2)
        } else if two == ">=" {
            (Tok::Op(CmpOp::Ge), 2)
        } else if c == '<' {
            (Tok::Op(CmpOp::Lt), 1)
        } else if c == '>' {
            (Tok::Op(CmpOp::Gt), 1)
        } else if c == '=' {
            (Tok::Op(CmpOp::Eq), 1)
        } else if let Some(t) = simple {
            (t, 1)
        } else if c == '"' {
            lex_string(&chars, i, (tl, tc))?
        } else if c == '@' {
            lex_time(&chars, i, (tl, tc))?
        } else if c.is_ascii_digit() {
            lex_number(&chars, i, (tl, tc))?
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            (Tok::Ident(chars[i..j].iter().collect()), j - i)
        } else {
            return Err(err(tl, tc, "a condition, operator or value", format!("`{c}`")));
        };
        out.push(Token { tok, line: tl, column: tc });
        advance(len, &mut i);
    }
    out.push(Token { tok: Tok::Eof, line, column: col });
    Ok(out)
}

/// A quoted string starting at `chars[i]`, with its escapes, and its length in chars. `at` is the token's (line, column).
fn lex_string(chars: &[char], i: usize, at: (usize, usize)) -> Result<(Tok, usize), ParseError> {
    let mut s = String::new();
    let mut j = i + 1;
    loop {
        let Some(&d) = chars.get(j) else {
            return Err(err(at.0, at.1, "a closing `\"`", "end of input"));
        };
        match d {
            '"' => break,
            '\\' => {
                let e = chars.get(j + 1).copied();
                match e {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('u') if chars.get(j + 2) == Some(&'{') => {
                        let end = chars[j + 3..].iter().position(|&x| x == '}');
                        let hex: Option<String> =
                            end.map(|e| chars[j + 3..j + 3 + e].iter().collect());
                        let ch = hex
                            .as_deref()
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32);
                        match (ch, hex) {
                            (Some(ch), Some(h)) => {
                                s.push(ch);
                                j += h.len() + 2;
                            }
                            _ => {
                                return Err(err(
                                    at.0,
                                    at.1,
                                    "a unicode escape like \\u{3042}",
                                    "a malformed escape",
                                ));
                            }
                        }
                    }
                    other => {
                        return Err(err(
                            at.0,
                            at.1,
                            "an escape (\\\", \\\\, \\n, \\t, \\r, \\u{...})",
                            other.map_or("end of input".into(), |o| format!("\\{o}")),
                        ));
                    }
                }
                j += 2;
            }
            d => {
                s.push(d);
                j += 1;
            }
        }
    }
    Ok((Tok::Str(s), j + 1 - i))
}

/// An `@` instant starting at `chars[i]` and its length. `at` is the token's (line, column).
fn lex_time(chars: &[char], i: usize, at: (usize, usize)) -> Result<(Tok, usize), ParseError> {
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || ":-+.".contains(chars[j])) {
        j += 1;
    }
    let text: String = chars[i + 1..j].iter().collect();
    let t = DateTime::parse_from_rfc3339(&text).map_err(|_| {
        err(
            at.0,
            at.1,
            "an RFC 3339 instant such as @2025-06-01T00:00:00+09:00",
            format!("@{text}"),
        )
    })?;
    Ok((Tok::Time(t.with_timezone(&Utc)), j - i))
}

/// An integer or a span (`30d`) starting at `chars[i]` and its length. `at` is the token's (line, column).
fn lex_number(chars: &[char], i: usize, at: (usize, usize)) -> Result<(Tok, usize), ParseError> {
    let mut j = i;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    let digits: String = chars[i..j].iter().collect();
    let unit = chars.get(j).copied();
    let unit_is_span = matches!(unit, Some('d' | 'h' | 'm' | 's'))
        && !chars.get(j + 1).is_some_and(|x| x.is_ascii_alphanumeric() || *x == '_');
    if unit_is_span {
        let text = format!("{digits}{}", unit.unwrap_or('s'));
        let span: Span = text
            .parse()
            .map_err(|_| err(at.0, at.1, "a span no longer than 1000 years", text.clone()))?;
        return Ok((Tok::Span(span), j + 1 - i));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| err(at.0, at.1, "an integer that fits in 64 bits", digits.clone()))?;
    Ok((Tok::Int(n), j - i))
}

/// Parses a DSL text into a condition (not yet validated).
pub(crate) fn parse(src: &str) -> Result<Condition, ParseError> {
    let mut p = Parser { toks: lex(src)?, pos: 0, depth: 0 };
    let c = p.or()?;
    p.expect_eof()?;
    Ok(c)
}

pub(super) struct Parser {
    pub(super) toks: Vec<Token>,
    pub(super) pos: usize,
    /// Current nesting, bounded so hostile input cannot overflow the stack.
    depth: usize,
}

/// Deepest nesting of parentheses, `not`, groups and expressions the parser accepts.
const MAX_NESTING: usize = 200;

const LEAF_KEYWORDS: &str = "a condition (attr, line, registered, birthday, linked_at, first_order, last_order, date_attr, orders, bought, never, subscription, cart, favourites, saved, messages, segment, list, bucket, calc, all, any, not, `(`)";

impl Parser {
    pub(super) fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    pub(super) fn here(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    pub(super) fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    pub(super) fn fail<T>(&self, expected: impl Into<String>) -> Result<T, ParseError> {
        let t = self.here();
        Err(err(t.line, t.column, expected, t.tok.describe()))
    }

    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub(super) fn kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) { Ok(()) } else { self.fail(format!("`{kw}`")) }
    }

    pub(super) fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, t: &Tok) -> Result<(), ParseError> {
        if self.eat(t) { Ok(()) } else { self.fail(t.describe()) }
    }

    pub(super) fn expect_eof(&mut self) -> Result<(), ParseError> {
        if *self.peek() == Tok::Eof { Ok(()) } else { self.fail("`and`, `or` or end of input") }
    }

    /// One of the keywords, returning its index.
    pub(super) fn one_of(&mut self, kws: &[&str], what: &str) -> Result<usize, ParseError> {
        if let Tok::Ident(s) = self.peek()
            && let Some(i) = kws.iter().position(|k| k == s)
        {
            self.bump();
            return Ok(i);
        }
        let list = kws.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        self.fail(format!("{what} ({list})"))
    }

    pub(super) fn or(&mut self) -> Result<Condition, ParseError> {
        let mut items = vec![self.and()?];
        while self.eat_kw("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Condition::Or { children: items } })
    }

    pub(super) fn and(&mut self) -> Result<Condition, ParseError> {
        let mut items = vec![self.unary()?];
        while self.eat_kw("and") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Condition::And { children: items } })
    }

    pub(super) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self
                .fail(format!("at most {MAX_NESTING} levels of nesting (nested too deeply)"));
        }
        Ok(())
    }

    pub(super) fn unary(&mut self) -> Result<Condition, ParseError> {
        self.enter()?;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    pub(super) fn unary_inner(&mut self) -> Result<Condition, ParseError> {
        if self.eat_kw("not") {
            return Ok(Condition::Not { child: Box::new(self.unary()?) });
        }
        if self.eat(&Tok::LParen) {
            let c = self.or()?;
            self.expect(&Tok::RParen)?;
            return Ok(c);
        }
        self.leaf()
    }

    pub(super) fn group(&mut self) -> Result<Vec<Condition>, ParseError> {
        self.expect(&Tok::LParen)?;
        let mut children = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                children.push(self.or()?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                if !self.eat(&Tok::Comma) {
                    return self.fail("`,` or `)`");
                }
            }
        }
        Ok(children)
    }

    pub(super) fn leaf(&mut self) -> Result<Condition, ParseError> {
        let Tok::Ident(word) = self.peek().clone() else {
            return self.fail(LEAF_KEYWORDS);
        };
        match word.as_str() {
            "all" => {
                self.bump();
                Ok(Condition::And { children: self.group()? })
            }
            "any" => {
                self.bump();
                Ok(Condition::Or { children: self.group()? })
            }
            "attr" => self.parse_attr(),
            "line" => self.parse_line(),
            "registered" | "birthday" | "linked_at" | "first_order" | "last_order"
            | "date_attr" => self.parse_date(),
            "orders" => self.parse_orders(),
            "bought" => self.parse_bought(),
            "never" => self.parse_never(),
            "subscription" => self.parse_subscription(),
            "cart" | "favourites" | "saved" => self.parse_saved(&word),
            "messages" => self.parse_messages(),
            "segment" => self.parse_segment(),
            "list" => self.parse_list(),
            "bucket" => self.parse_bucket(),
            "calc" => self.parse_calc(),
            _ => self.fail(LEAF_KEYWORDS),
        }
    }

    pub(super) fn name(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.fail(format!("{what} (a word or a quoted string)")),
        }
    }

    pub(super) fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.fail("a quoted string"),
        }
    }

    pub(super) fn int(&mut self) -> Result<i64, ParseError> {
        let neg = self.eat(&Tok::Minus);
        match self.peek().clone() {
            Tok::Int(n) => {
                let t = self.here().clone();
                self.bump();
                let v = if neg { 0i128 - i128::from(n) } else { i128::from(n) };
                i64::try_from(v).map_err(|_| {
                    err(t.line, t.column, "an integer that fits in 64 bits", v.to_string())
                })
            }
            _ => self.fail("an integer"),
        }
    }

    pub(super) fn u32(&mut self) -> Result<u32, ParseError> {
        let t = self.here().clone();
        let n = self.int()?;
        u32::try_from(n)
            .map_err(|_| err(t.line, t.column, "a number from 0 to 4294967295", n.to_string()))
    }

    pub(super) fn span(&mut self) -> Result<Span, ParseError> {
        match self.peek().clone() {
            Tok::Span(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.fail("a span such as 30d, 3h, 15m or 45s"),
        }
    }

    pub(super) fn time(&mut self) -> Result<DateTime<Utc>, ParseError> {
        match self.peek().clone() {
            Tok::Time(t) => {
                self.bump();
                Ok(t)
            }
            _ => self.fail("an instant such as @2025-06-01T00:00:00+09:00"),
        }
    }

    pub(super) fn op(&mut self) -> Result<CmpOp, ParseError> {
        match self.peek().clone() {
            Tok::Op(o) => {
                self.bump();
                Ok(o)
            }
            _ => self.fail("a comparison operator (=, !=, <, <=, >, >=)"),
        }
    }

    pub(super) fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Value::Text(s))
            }
            Tok::Time(t) => {
                self.bump();
                Ok(Value::Time { time: t })
            }
            Tok::Ident(s) if s == "true" || s == "false" => {
                self.bump();
                Ok(Value::Bool(s == "true"))
            }
            Tok::Int(_) | Tok::Minus => Ok(Value::Int(self.int()?)),
            _ => self.fail("a value (a quoted string, an integer, true, false or an @instant)"),
        }
    }

    pub(super) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.expect(&Tok::LBracket)?;
        let mut out = vec![item(self)?];
        while self.eat(&Tok::Comma) {
            out.push(item(self)?);
        }
        if !self.eat(&Tok::RBracket) {
            return self.fail("`,` or `]`");
        }
        Ok(out)
    }

    pub(super) fn str_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.list(Self::string)
    }

    /// `= "x"` or `in ["x", "y"]`.
    pub(super) fn str_set(&mut self) -> Result<Vec<String>, ParseError> {
        if self.eat(&Tok::Op(CmpOp::Eq)) {
            Ok(vec![self.string()?])
        } else if self.eat_kw("in") {
            self.str_list()
        } else {
            self.fail("`=` or `in`")
        }
    }

    pub(super) fn attr_test(&mut self) -> Result<AttrTest, ParseError> {
        if self.eat_kw("exists") {
            return Ok(AttrTest::Exists);
        }
        if self.eat_kw("missing") {
            return Ok(AttrTest::Missing);
        }
        if self.eat_kw("contains") {
            return Ok(AttrTest::Contains { value: self.string()? });
        }
        if self.eat_kw("in") {
            return Ok(AttrTest::In { values: self.list(Self::value)? });
        }
        if self.eat_kw("not") {
            self.kw("in")?;
            return Ok(AttrTest::NotIn { values: self.list(Self::value)? });
        }
        if let Tok::Op(op) = self.peek().clone() {
            self.bump();
            return Ok(AttrTest::Compare { op, value: self.value()? });
        }
        self.fail("an attribute test (=, !=, <, <=, >, >=, exists, missing, in, not in, contains)")
    }

    pub(super) fn date_field(&mut self) -> Result<DateField, ParseError> {
        let i = self.one_of(
            &["registered", "birthday", "linked_at", "first_order", "last_order", "date_attr"],
            "a date field",
        )?;
        Ok(match i {
            0 => DateField::Registered,
            1 => DateField::Birthday,
            2 => DateField::LinkedAt,
            3 => DateField::FirstOrder { filter: self.opt_filter()? },
            4 => DateField::LastOrder { filter: self.opt_filter()? },
            _ => DateField::Attribute { name: self.name("an attribute name")? },
        })
    }

    pub(super) fn date_test(&mut self) -> Result<DateTest, ParseError> {
        let i =
            self.one_of(&["age", "days_ago", "between", "month", "anniversary"], "a date test")?;
        Ok(match i {
            0 => {
                let op = self.op()?;
                DateTest::Age { op, value: self.span()? }
            }
            1 => {
                let op = self.op()?;
                let t = self.here().clone();
                let n = self.int()?;
                let days = i32::try_from(n).map_err(|_| {
                    err(t.line, t.column, "a number of days that fits in 32 bits", n.to_string())
                })?;
                DateTest::DaysAgo { op, days }
            }
            2 => {
                let from = self.time()?;
                self.kw("and")?;
                DateTest::Between { from, to: self.time()? }
            }
            3 => {
                self.expect(&Tok::Op(CmpOp::Eq))?;
                if self.eat_kw("current") {
                    DateTest::InCurrentMonth
                } else {
                    DateTest::MonthIs { month: self.u32()? }
                }
            }
            _ => {
                self.kw("today")?;
                DateTest::AnniversaryToday
            }
        })
    }

    pub(super) fn opt_filter(&mut self) -> Result<OrderFilter, ParseError> {
        let mut f = OrderFilter::default();
        if !self.eat(&Tok::LBrace) {
            return Ok(f);
        }
        if self.eat(&Tok::RBrace) {
            return Ok(f);
        }
        loop {
            let t = self.here().clone();
            let i = self.one_of(&["product", "sku", "category", "kind"], "an order filter term")?;
            let dup = |what: &str| {
                err(
                    t.line,
                    t.column,
                    format!("each of product, sku, category, kind at most once ({what} repeated)"),
                    what.to_string(),
                )
            };
            match i {
                0 if !f.products.is_empty() => return Err(dup("product")),
                1 if !f.skus.is_empty() => return Err(dup("sku")),
                2 if !f.categories.is_empty() => return Err(dup("category")),
                3 if f.kind.is_some() => return Err(dup("kind")),
                0 => f.products = self.str_set()?,
                1 => f.skus = self.str_set()?,
                2 => f.categories = self.str_set()?,
                _ => {
                    self.expect(&Tok::Op(CmpOp::Eq))?;
                    let k = self.one_of(&["one_off", "subscription"], "an order kind")?;
                    f.kind = Some([OrderKind::OneOff, OrderKind::Subscription][k]);
                }
            }
            if self.eat(&Tok::RBrace) {
                return Ok(f);
            }
            if !self.eat(&Tok::Comma) {
                return self.fail("`,` or `}`");
            }
        }
    }

    pub(super) fn opt_window(&mut self) -> Result<Window, ParseError> {
        if self.eat_kw("last") {
            return Ok(Window::Last { span: self.span()? });
        }
        if self.eat_kw("calendar") {
            let t = self.here().clone();
            let span = self.span()?;
            if span.as_secs() % DAY != 0 {
                return Err(err(
                    t.line,
                    t.column,
                    "a whole number of days such as 7d",
                    span.to_string(),
                ));
            }
            let days = u32::try_from(span.as_secs() / DAY)
                .map_err(|_| err(t.line, t.column, "fewer days", span.to_string()))?;
            return Ok(Window::CalendarDays { days });
        }
        if self.eat_kw("between") {
            let from = self.time()?;
            self.kw("and")?;
            return Ok(Window::Between { from, to: self.time()? });
        }
        Ok(Window::AllTime)
    }

    pub(super) fn subscription(&mut self) -> Result<Condition, ParseError> {
        self.expect(&Tok::LBrace)?;
        let mut state = None;
        let mut products = Vec::new();
        let mut cancel_reasons = Vec::new();
        let mut deliveries = None;
        let mut started = None;
        let mut canceled = None;
        let mut next_delivery = None;
        if !self.eat(&Tok::RBrace) {
            let mut seen = [false; 7];
            loop {
                let t = self.here().clone();
                let i = self.one_of(
                    &[
                        "state",
                        "product",
                        "reason",
                        "deliveries",
                        "started",
                        "canceled",
                        "next_delivery",
                    ],
                    "a subscription term",
                )?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(err(
                        t.line,
                        t.column,
                        "each subscription term at most once",
                        t.tok.describe(),
                    ));
                }
                match i {
                    0 => {
                        self.expect(&Tok::Op(CmpOp::Eq))?;
                        let s =
                            self.one_of(&["active", "paused", "canceled"], "a subscription state")?;
                        state = Some(
                            [
                                SubscriptionState::Active,
                                SubscriptionState::Paused,
                                SubscriptionState::Canceled,
                            ][s],
                        );
                    }
                    1 => products = self.str_set()?,
                    2 => cancel_reasons = self.str_set()?,
                    3 => {
                        let op = self.op()?;
                        deliveries = Some(CountTest { op, value: self.int()? });
                    }
                    4 => started = Some(self.date_test()?),
                    5 => canceled = Some(self.date_test()?),
                    _ => next_delivery = Some(self.date_test()?),
                }
                if self.eat(&Tok::RBrace) {
                    break;
                }
                if !self.eat(&Tok::Comma) {
                    return self.fail("`,` or `}`");
                }
            }
        }
        Ok(Condition::Subscription {
            state,
            products,
            cancel_reasons,
            deliveries,
            started,
            canceled,
            next_delivery,
        })
    }

    /// A sum chain, kept flat: `a + b - c` is one [`Expr::Sum`] however long it is.
    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.term()?;
        let mut rest = Vec::new();
        loop {
            let op = if self.eat(&Tok::Plus) {
                AddOp::Add
            } else if self.eat(&Tok::Minus) {
                AddOp::Sub
            } else {
                break;
            };
            rest.push(SumTerm { op, expr: self.term()? });
        }
        Ok(if rest.is_empty() { first } else { Expr::Sum { first: Box::new(first), rest } })
    }

    /// A product chain, kept flat like sums.
    pub(super) fn term(&mut self) -> Result<Expr, ParseError> {
        let first = self.factor()?;
        if *self.peek() != Tok::Star {
            return Ok(first);
        }
        let mut factors = vec![first];
        while self.eat(&Tok::Star) {
            factors.push(self.factor()?);
        }
        Ok(Expr::Product { factors })
    }

    pub(super) fn factor(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = self.factor_inner();
        self.depth -= 1;
        r
    }

    pub(super) fn factor_inner(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::Int(_) | Tok::Minus => Ok(Expr::Number { value: self.int()? }),
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Ident(s) if s == "attr" => {
                self.bump();
                Ok(Expr::Attribute { name: self.name("an attribute name")? })
            }
            Tok::Ident(s) if s == "count" || s == "sum" => {
                self.bump();
                self.expect(&Tok::LParen)?;
                self.kw("orders")?;
                let filter = self.opt_filter()?;
                let window = self.opt_window()?;
                self.expect(&Tok::RParen)?;
                Ok(if s == "count" {
                    Expr::OrderCount { filter, window }
                } else {
                    Expr::OrderSum { filter, window }
                })
            }
            _ => self.fail(
                "an expression (integer, attr NAME, count(orders ...), sum(orders ...), `(`)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}line linked{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.expected.contains("levels of nesting"), "{e}");
        let nots = format!("{}line linked", "not ".repeat(100_000));
        assert!(parse(&nots).is_err());
        let calc = format!("calc {}1{} > 0", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&calc).is_err());
        let fine = format!("{}line linked{}", "(".repeat(50), ")".repeat(50));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = parse("line linked and\n  orders sum >> 5").unwrap_err();
        assert_eq!((e.line, e.column), (2, 15), "{e}");
        assert!(e.expected.contains("integer"), "{e}");
        let e = parse("line friend").unwrap_err();
        assert_eq!((e.line, e.column), (1, 6));
        assert!(e.expected.contains("`linked`"), "{e}");
        let e = parse("attr x = \"open").unwrap_err();
        assert!(e.expected.contains("closing"), "{e}");
    }
}
