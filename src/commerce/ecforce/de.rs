//! Lenient field decoders for input ecforce owns: types wobble (`tbc` as `false`, `0`, `"0"`,
//! `null`), numbers arrive as strings, empty strings mean "unset". Anything clearly broken is an
//! error, which `serde_path_to_error` turns into the field's name.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserializer;
use serde::de::{self, SeqAccess, Visitor};

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

struct OptString;

impl<'de> Visitor<'de> for OptString {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if v.is_empty() { None } else { Some(v.to_owned()) })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OptString)
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
