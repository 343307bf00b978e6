//! Lenient field decoders for input ecforce owns: types wobble (`tbc` as `false`, `0`, `"0"`,
//! `null`), numbers arrive as strings, empty strings mean "unset". Anything clearly broken is an
//! error, which `serde_path_to_error` turns into the field's name.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserializer;
use serde::de::{self, SeqAccess, Visitor};

use super::wire::scan::{Reader, Scalar};
use crate::commerce::time::{parse_ecforce_date, parse_jst_datetime};

struct OptI64;

impl<'de> Visitor<'de> for OptI64 {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, a string of digits or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v).map(Some).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // ecforce prices are whole yen; a fractional amount is a broken value.
        #[allow(clippy::cast_possible_truncation)]
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(Some(v as i64))
        } else {
            Err(E::custom("not a whole number"))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

pub(super) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(OptI64)
}

pub(super) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match d.deserialize_any(OptI64)? {
        None => Ok(None),
        Some(v) => u32::try_from(v).map(Some).map_err(|_| de::Error::custom("not a count")),
    }
}

struct OptBool;

impl<'de> Visitor<'de> for OptBool {
    type Value = Option<bool>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean, 0/1, \"true\"/\"false\"/\"0\"/\"1\" or null")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match v {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

pub(super) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(OptBool)
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OptText::<String>(PhantomData))
}

/// Text that is usually short and only looked at or copied once (a state word, a numeric ID):
/// up to [`Text::INLINE`] bytes are kept in place, without an allocation; longer text goes on
/// the heap. Read exactly as an `Option<String>` field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Text {
    /// Short text, the first `len` bytes.
    Inline { len: u8, bytes: [u8; Self::INLINE] },
    /// Longer text.
    Heap(String),
}

impl Text {
    /// The most bytes kept in place: an order's state, a 20-digit ID.
    pub(super) const INLINE: usize = 22;

    fn new(text: &str) -> Self {
        let mut bytes = [0; Self::INLINE];
        match bytes.get_mut(..text.len()) {
            Some(head) => {
                head.copy_from_slice(text.as_bytes());
                Self::Inline { len: text.len() as u8, bytes }
            }
            None => Self::Heap(text.to_owned()),
        }
    }

    /// An integer's decimal digits, as `to_string` writes them (20 bytes at most).
    fn integer(negative: bool, mut magnitude: u64) -> Self {
        let mut digits = [0; Self::INLINE];
        let mut at = Self::INLINE;
        loop {
            at -= 1;
            digits[at] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        if negative {
            at -= 1;
            digits[at] = b'-';
        }
        let mut bytes = [0; Self::INLINE];
        bytes[..Self::INLINE - at].copy_from_slice(&digits[at..]);
        Self::Inline { len: (Self::INLINE - at) as u8, bytes }
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        match self {
            // Always whole characters: copied from a `str` or written as ASCII digits.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Heap(s) => s,
        }
    }
}

/// What a text field holds, made from what the JSON has there: text, an integer (written as
/// `to_string` writes it) or a float (serde's path only). An owned `String`, or a [`Text`].
pub(super) trait TextValue: Sized {
    /// Non-empty text.
    fn from_text(text: Cow<'_, str>) -> Self;
    /// An integer, by sign and magnitude.
    fn from_integer(negative: bool, magnitude: u64) -> Self;
    /// A float, as `to_string` writes it.
    fn from_float(v: f64) -> Self;
}

impl TextValue for String {
    fn from_text(text: Cow<'_, str>) -> Self {
        text.into_owned()
    }
    fn from_integer(negative: bool, magnitude: u64) -> Self {
        if negative { format!("-{magnitude}") } else { magnitude.to_string() }
    }
    fn from_float(v: f64) -> Self {
        v.to_string()
    }
}

impl TextValue for Text {
    fn from_text(text: Cow<'_, str>) -> Self {
        match text {
            // Unescaped by the reader already: moved, not copied.
            Cow::Owned(long) if long.len() > Self::INLINE => Self::Heap(long),
            text => Self::new(&text),
        }
    }
    fn from_integer(negative: bool, magnitude: u64) -> Self {
        Self::integer(negative, magnitude)
    }
    fn from_float(v: f64) -> Self {
        Self::Heap(v.to_string())
    }
}

/// A text field: text (empty is unset), a number, or null.
struct OptText<T>(PhantomData<T>);

impl<'de, T: TextValue> Visitor<'de> for OptText<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| T::from_text(Cow::Borrowed(v))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(T::from_integer(v < 0, v.unsigned_abs())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(T::from_integer(false, v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(T::from_float(v)))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct OptTime;

impl<'de> Visitor<'de> for OptTime {
    type Value = Option<DateTime<Utc>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JST datetime `YYYY/MM/DD HH:MM:SS` or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.is_empty() {
            return Ok(None);
        }
        // Parsed before trimming: a datetime is the common case.
        match parse_jst_datetime(v) {
            Some(t) => Ok(Some(t)),
            None if v.trim().is_empty() => Ok(None),
            None => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

pub(super) fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_any(OptTime)
}

struct OptDate;

impl<'de> Visitor<'de> for OptDate {
    type Value = Option<NaiveDate>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date `YYYY/MM/DD` or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.trim().is_empty() {
            return Ok(None);
        }
        // Some shops send a datetime where a date is declared; keep its date part.
        parse_ecforce_date(v)
            .or_else(|| v.trim().get(..10).and_then(parse_ecforce_date))
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

pub(super) fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    d.deserialize_any(OptDate)
}

struct Strings;

impl<'de> Visitor<'de> for Strings {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a comma-separated string, an array of strings, numbers or named objects, or null",
        )
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            // Objects (coupons, campaigns) are named by their code, else their name.
            let text = match &item {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Object(o) => {
                    ["code", "name", "display_name", "id"].iter().find_map(|k| match o.get(*k) {
                        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        _ => None,
                    })
                }
                serde_json::Value::Null => None,
                _ => return Err(de::Error::custom("a list entry that is neither text nor object")),
            };
            out.extend(text.filter(|t| !t.trim().is_empty()));
        }
        Ok(out)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

/// Labels, category names, coupon codes, reason IDs: a comma-separated string or an array.
pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Strings)
}

/// A lenient field type: its serde decoder above, and the same reading by the hand-written
/// reader of clean pages, which gives up (`None`) wherever serde would fail or read a value it
/// does not handle itself (floats, arrays of objects).
pub(super) trait Lenient: Sized + Default {
    /// The serde decoder.
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// The value at `r`, as [`Self::from_serde`] reads it, or `None` to leave it to serde.
    fn read(r: &mut Reader<'_>) -> Option<Self>;
}

/// `deserialize_with` for any [`Lenient`] field.
pub(super) fn lenient<'de, D: Deserializer<'de>, T: Lenient>(d: D) -> Result<T, D::Error> {
    T::from_serde(d)
}

fn to_i64(s: Scalar<'_>) -> Option<Option<i64>> {
    match s {
        Scalar::Str(s) => {
            let t = s.trim();
            if t.is_empty() { Some(None) } else { t.parse().ok().map(Some) }
        }
        Scalar::U(u) => i64::try_from(u).ok().map(Some),
        Scalar::I(i) => Some(Some(i)),
        Scalar::Null => Some(None),
        Scalar::Bool(_) => None,
    }
}

impl Lenient for Option<i64> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_i64(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        to_i64(r.scalar()?)
    }
}

impl Lenient for Option<u32> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_u32(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        match to_i64(r.scalar()?)? {
            None => Some(None),
            Some(v) => u32::try_from(v).ok().map(Some),
        }
    }
}

impl Lenient for Option<bool> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_bool(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        match r.scalar()? {
            Scalar::Bool(b) => Some(Some(b)),
            Scalar::U(0) => Some(Some(false)),
            Scalar::U(1) => Some(Some(true)),
            Scalar::Str(s) => match s.trim() {
                "true" | "1" => Some(Some(true)),
                "false" | "0" => Some(Some(false)),
                "" => Some(None),
                _ => None,
            },
            Scalar::Null => Some(None),
            Scalar::U(_) | Scalar::I(_) => None,
        }
    }
}

impl<T: TextValue> Lenient for Option<T> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OptText(PhantomData))
    }
    #[inline]
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        match r.scalar()? {
            Scalar::Str(s) => Some((!s.is_empty()).then(|| T::from_text(s))),
            Scalar::U(u) => Some(Some(T::from_integer(false, u))),
            Scalar::I(i) => Some(Some(T::from_integer(i < 0, i.unsigned_abs()))),
            Scalar::Null => Some(None),
            Scalar::Bool(_) => None,
        }
    }
}

impl Lenient for Option<DateTime<Utc>> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_time(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        match r.scalar()? {
            Scalar::Str(s) if s.is_empty() => Some(None),
            Scalar::Str(s) => match parse_jst_datetime(&s) {
                Some(t) => Some(Some(t)),
                None => s.trim().is_empty().then_some(None),
            },
            Scalar::Null => Some(None),
            _ => None,
        }
    }
}

impl Lenient for Option<NaiveDate> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_date(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        match r.scalar()? {
            Scalar::Str(v) if v.trim().is_empty() => Some(None),
            Scalar::Str(v) => parse_ecforce_date(&v)
                .or_else(|| v.trim().get(..10).and_then(parse_ecforce_date))
                .map(Some),
            Scalar::Null => Some(None),
            _ => None,
        }
    }
}

/// A list entry that is an object (a coupon, a campaign), named as [`Strings`] names it: by
/// its code, else its name, display name or ID. `None` leaves it to serde (a duplicate key, a
/// float).
fn named_entry(r: &mut Reader<'_>) -> Option<Option<String>> {
    const KEYS: [&str; 4] = ["code", "name", "display_name", "id"];
    // `Some(None)`: the key is there but holds no name.
    let mut found: [Option<Option<String>>; 4] = Default::default();
    r.object(|r, key| {
        let Some(k) = KEYS.iter().position(|&name| name == key) else { return r.skip() };
        if found[k].is_some() {
            return None;
        }
        let name = if r.at_object()? || r.at_array()? {
            r.skip()?;
            None
        } else {
            match r.scalar()? {
                Scalar::Str(s) => (!s.is_empty()).then(|| s.into_owned()),
                Scalar::U(u) => Some(u.to_string()),
                Scalar::I(i) => Some(i.to_string()),
                Scalar::Null | Scalar::Bool(_) => None,
            }
        };
        found[k] = Some(name);
        Some(())
    })?;
    Some(found.into_iter().flatten().flatten().next())
}

impl Lenient for Vec<String> {
    fn from_serde<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strings(d)
    }
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        if !r.at_array()? {
            return match r.scalar()? {
                Scalar::Str(v) => Some(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                Scalar::U(u) => Some(vec![u.to_string()]),
                Scalar::I(i) => Some(vec![i.to_string()]),
                Scalar::Null => Some(Self::new()),
                Scalar::Bool(_) => None,
            };
        }
        let mut out = Self::new();
        r.elements(|r| {
            if r.at_object()? {
                out.extend(named_entry(r)?.filter(|t| !t.trim().is_empty()));
                return Some(());
            }
            let text = match r.scalar()? {
                Scalar::Str(s) => Some(s.into_owned()),
                Scalar::U(u) => Some(u.to_string()),
                Scalar::I(i) => Some(i.to_string()),
                Scalar::Null => None,
                Scalar::Bool(_) => return None,
            };
            out.extend(text.filter(|t| !t.trim().is_empty()));
            Some(())
        })?;
        Some(out)
    }
}
