//! Decoding ecforce's JSON:API pages into the common model.
//!
//! Two passes: the document is split into raw resources first (cheap), then each record is
//! decoded on its own, so one malformed record becomes a [`CommerceError::Decode`] naming its
//! field while the rest of the page still decodes.

use std::borrow::Cow;
use std::cell::Cell;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::de;
use crate::commerce::backend::Page;
use crate::commerce::error::CommerceError;
use crate::commerce::model::{Cursor, OrderState, Record};
#[cfg(test)]
use crate::commerce::model::{Customer, Order, Product, Subscription};

mod resources;
pub(super) mod scan;

pub(super) const BACKEND: &str = "ecforce";

/// How ecforce's state words map onto enishi's meaning. ecforce's values beyond a few observed
/// ones are shop-specific or undocumented, so every list here can be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EcforceMapping {
    withdrawn_states: Vec<String>,
    paid_payment_states: Vec<String>,
    unpaid_payment_states: Vec<String>,
    canceled_order_states: Vec<String>,
}

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

impl Default for EcforceMapping {
    fn default() -> Self {
        Self {
            // Only `member` is observed; the 退会 state's word is not public, so several
            // likely spellings count (and `human_state_name` 退会 always does).
            withdrawn_states: owned(&[
                "cancel",
                "canceled",
                "cancelled",
                "withdrawn",
                "withdrawal",
                "withdraw",
                "resigned",
                "退会",
            ]),
            paid_payment_states: owned(&[
                "completed",
                "complete",
                "paid",
                "authorized",
                "auth",
                "credit_exam_ok",
                "credit_exam_passed",
            ]),
            unpaid_payment_states: owned(&[
                "voided",
                "void",
                "auth_failed",
                "failed",
                "credit_exam_failed",
                "credit_exam_ng",
                "credit_exam_hold",
                "credit_exam_pending",
                "pending",
                "unpaid",
                "canceled",
                "cancelled",
                "refunded",
            ]),
            canceled_order_states: owned(&["canceled", "cancelled", "cancel"]),
        }
    }
}

impl EcforceMapping {
    /// Customer `state` values that mean the customer withdrew (退会).
    pub fn withdrawn_states(mut self, states: &[&str]) -> Self {
        self.withdrawn_states = owned(states);
        self
    }

    /// `payment_state` values that mean paid (the order counts as a purchase).
    pub fn paid_payment_states(mut self, states: &[&str]) -> Self {
        self.paid_payment_states = owned(states);
        self
    }

    /// `payment_state` values that mean not paid (voided, failed: not a purchase). A value in
    /// neither list is kept raw and taken as paid.
    pub fn unpaid_payment_states(mut self, states: &[&str]) -> Self {
        self.unpaid_payment_states = owned(states);
        self
    }

    /// Order `state` values that mean canceled.
    pub fn canceled_order_states(mut self, states: &[&str]) -> Self {
        self.canceled_order_states = owned(states);
        self
    }

    fn has(list: &[String], value: &str) -> bool {
        list.iter().any(|w| w.eq_ignore_ascii_case(value))
    }

    fn withdrawn(&self, state: Option<&str>, human: Option<&str>) -> bool {
        state.is_some_and(|s| Self::has(&self.withdrawn_states, s))
            || human.is_some_and(|h| h.contains("退会"))
    }

    fn paid(&self, payment_state: Option<&str>) -> Option<bool> {
        let p = payment_state?;
        if Self::has(&self.unpaid_payment_states, p) {
            Some(false)
        } else if Self::has(&self.paid_payment_states, p) {
            Some(true)
        } else {
            None
        }
    }

    fn order_state(&self, raw: Option<&str>) -> OrderState {
        match raw {
            Some(s) if Self::has(&self.canceled_order_states, s) => OrderState::Canceled,
            Some("complete" | "completed" | "shipped" | "delivered") => OrderState::Completed,
            Some("new" | "pending" | "processing" | "confirm" | "in_progress") => {
                OrderState::Pending
            }
            Some(other) => OrderState::Other(other.to_owned()),
            None => OrderState::Other(String::new()),
        }
    }
}

/// One decoded ecforce list page.
#[derive(Debug)]
pub(crate) struct EcforcePage<T> {
    /// Records decoded.
    pub(crate) records: Vec<T>,
    /// Records that failed to decode: each a [`CommerceError::Decode`] naming the field.
    pub(crate) rejected: Vec<CommerceError>,
    /// Problems in records that were kept anyway (an order item referenced but not sent):
    /// [`CommerceError::Decode`] naming the field and the record.
    pub(crate) warnings: Vec<CommerceError>,
    /// The position of the record each warning is about (same order as `warnings`).
    pub(super) warnings_at: Vec<Cursor>,
    /// The position of the last record on the page (decoded or not), when it could be read.
    pub(crate) last: Option<Cursor>,
    /// How many resources the page held.
    pub(crate) count: usize,
    /// Where each rejected record sits in the feed (same order as `rejected`).
    pub(super) rejected_at: Vec<Option<Cursor>>,
    /// `meta.total_count` (records matching the request), when present.
    pub(crate) total_count: Option<u64>,
}

impl<T> EcforcePage<T> {
    /// The page as a backend hands it out, its cursor at the last record read.
    pub(crate) fn into_page(self) -> Page<T> {
        Page::new(self.records, self.rejected, self.last).with_warnings(self.warnings)
    }
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow, default)]
    data: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    included: Vec<IncludedEntry<'a, &'a RawValue>>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// A show response: `data` is one object (or null).
#[derive(Deserialize)]
struct SingleDocument<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    included: Vec<IncludedEntry<'a, &'a RawValue>>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default, deserialize_with = "de::opt_i64")]
    total_count: Option<i64>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    /// Required (a record without a type is not a resource), though not read.
    #[serde(rename = "type", borrow)]
    _kind: Cow<'a, str>,
    #[serde(borrow)]
    attributes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    relationships: Option<Rels<'a>>,
}

/// A record decoded in one pass: attributes typed.
#[derive(Deserialize)]
struct Typed<'a, A> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    attributes: Option<A>,
    #[serde(borrow, default)]
    relationships: Option<Rels<'a>>,
}

/// The relationships enishi reads; others are ignored.
#[derive(Deserialize, Default)]
struct Rels<'a> {
    #[serde(borrow, default)]
    order_items: Option<Relationship<'a>>,
    #[serde(borrow, default)]
    variants: Option<Relationship<'a>>,
    #[serde(borrow, default)]
    customer: Option<Relationship<'a>>,
    #[serde(borrow, default)]
    billing_address: Option<Relationship<'a>>,
    #[serde(borrow, default)]
    thumbnail: Option<Relationship<'a>>,
}

#[derive(Deserialize)]
struct Relationship<'a> {
    #[serde(borrow, default)]
    data: Option<Linkage<'a>>,
}

/// A relationship's `data`: a list of references or one. Read by hand: serde's `untagged`
/// buffers every linkage before trying each shape, which was a tenth of decoding an order page.
enum Linkage<'a> {
    Many(Vec<Ref<'a>>),
    One(Ref<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Linkage<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LinkageVisitor)
    }
}

struct LinkageVisitor;

impl<'de> serde::de::Visitor<'de> for LinkageVisitor {
    type Value = Linkage<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a resource linkage: an object with `id`, or an array of them")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let mut refs = Vec::with_capacity(s.size_hint().unwrap_or(4));
        while let Some(r) = s.next_element()? {
            refs.push(r);
        }
        Ok(Linkage::Many(refs))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        Ref::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(Linkage::One)
    }
}

#[derive(Deserialize)]
struct Ref<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
}

impl<'a> Rels<'a> {
    fn related(&self, name: &str) -> &[Ref<'a>] {
        let rel = match name {
            "order_items" => self.order_items.as_ref(),
            "variants" => self.variants.as_ref(),
            "customer" => self.customer.as_ref(),
            "billing_address" => self.billing_address.as_ref(),
            "thumbnail" => self.thumbnail.as_ref(),
            _ => None,
        };
        match rel.and_then(|r| r.data.as_ref()) {
            Some(Linkage::Many(refs)) => refs,
            Some(Linkage::One(r)) => std::slice::from_ref(r),
            None => &[],
        }
    }
}

fn decode_error(field: String, reason: String, body: &str) -> CommerceError {
    CommerceError::Decode { backend: BACKEND, field, reason, body: body.to_owned() }
}

fn body_error(e: &serde_json::Error, body: &str) -> CommerceError {
    // Keep at most 2 KiB of a broken body (it may be a Cloudflare HTML page).
    let cut = body.char_indices().nth(2048).map_or(body.len(), |(i, _)| i);
    decode_error("(document)".into(), e.to_string(), &body[..cut])
}

/// Decodes `raw` as `T`, naming the failing field under `prefix`.
fn attrs<T: DeserializeOwned>(
    raw: &RawValue,
    prefix: impl FnOnce() -> String,
    record: &str,
) -> Result<T, CommerceError> {
    // Plain serde first (fast); only a failure pays for tracking the field path.
    if let Ok(value) = serde_json::from_str(raw.get()) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = format!("{}.{}", prefix(), e.path());
        decode_error(field, e.into_inner().to_string(), record)
    })
}

/// Shared attributes every list record has, read first so even a broken record has a
/// position in the feed.
#[derive(Deserialize)]
struct Stamp {
    #[serde(default, deserialize_with = "de::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

/// A resource type without the spelling differences seen around ecforce's relationships:
/// `order_items`, `order-item` and `order_item` are one type.
fn normalize_type(kind: &str) -> Cow<'_, str> {
    let singular = match kind.strip_suffix('s') {
        Some(singular) if !singular.ends_with('s') => singular,
        _ => kind,
    };
    if singular.contains('-') {
        Cow::Owned(singular.replace('-', "_"))
    } else {
        Cow::Borrowed(singular)
    }
}

/// Side-loaded resources by (normalized type, id): their raw attributes (`V` is
/// `&RawValue`), or their attributes already read ([`Slot`]). Hashed with hashbrown's default
/// (foldhash) rather than SipHash: a page's few hundred keys were 5 % of decoding it.
struct Included<'a, V> {
    by_key: hashbrown::HashMap<(Cow<'a, str>, &'a str), &'a V>,
}

impl<'a, V> Included<'a, V> {
    /// Indexes the side-loaded resources that have attributes (a later duplicate wins).
    fn new(entries: &'a [IncludedEntry<'a, V>]) -> Self {
        let mut by_key = hashbrown::HashMap::with_capacity(entries.len());
        for e in entries {
            if let IncludedEntry::Resource { id, kind, attributes: Some(a) } = e {
                by_key.insert((normalize_type(kind), id.as_ref()), a);
            }
        }
        Self { by_key }
    }

    /// The attributes of the resource a linkage names: the type as linked (spelling
    /// normalized), else any of `aliases` with the same ID. Allocates nothing unless the
    /// linked type is spelled with a `-`.
    fn find(&self, r: &Ref<'_>, aliases: &[&str]) -> Option<&'a V> {
        let id = r.id.as_ref();
        std::iter::once(normalize_type(&r.kind))
            .chain(aliases.iter().map(|a| Cow::Borrowed(*a)))
            .find_map(|kind| self.by_key.get(&(kind, id)).copied())
    }
}

/// Where a record's side-loads come from while it is built.
trait Sides<S> {
    /// The attributes of the side-load `r` links to (see [`Included::find`]), `None` when it
    /// was not side-loaded. `field` names it in errors.
    fn take(
        &mut self,
        r: &Ref<'_>,
        aliases: &[&str],
        field: impl FnOnce() -> String,
        raw: &str,
    ) -> Result<Option<S>, CommerceError>;
}

/// Side-loads kept raw and read when a record asks (the record-by-record path).
struct RawSides<'i, 'a>(&'i Included<'a, &'a RawValue>);

impl<S: DeserializeOwned> Sides<S> for RawSides<'_, '_> {
    fn take(
        &mut self,
        r: &Ref<'_>,
        aliases: &[&str],
        field: impl FnOnce() -> String,
        raw: &str,
    ) -> Result<Option<S>, CommerceError> {
        self.0.find(r, aliases).map(|a| attrs(a, field, raw)).transpose()
    }
}

/// A side-load's attributes read in the document's own pass, until a record takes them.
struct Slot<S>(Cell<Option<S>>);

impl<'de, S: Deserialize<'de>> Deserialize<'de> for Slot<S> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        S::deserialize(d).map(|s| Self(Cell::new(Some(s))))
    }
}

impl<S> Sides<S> for Included<'_, Slot<S>> {
    fn take(
        &mut self,
        r: &Ref<'_>,
        aliases: &[&str],
        field: impl FnOnce() -> String,
        raw: &str,
    ) -> Result<Option<S>, CommerceError> {
        let Some(slot) = self.find(r, aliases) else { return Ok(None) };
        // Each side-load moves into the one record linking it. A second record linking the
        // same one fails this path; the record-by-record path then reads it again.
        slot.0
            .take()
            .map(Some)
            .ok_or_else(|| decode_error(field(), "side-load linked twice".into(), raw))
    }
}

/// One `included` entry, read in the document's own pass (no second parse of side-loads):
/// a resource's ID, type and attributes (raw, or already read), or `Other` for an entry that
/// is not a resource (dropped: a record that refers to it reports the gap).
enum IncludedEntry<'a, V> {
    Resource { id: Cow<'a, str>, kind: Cow<'a, str>, attributes: Option<V> },
    Other,
}

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for IncludedEntry<'a, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IncludedVisitor(PhantomData))
    }
}

/// A string, borrowed when it has no escapes; any other JSON value reads as `None`.
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for LenientStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientStrVisitor)
    }
}

/// Accepts every JSON value (consuming containers) as "not what was wanted".
macro_rules! accept_any_as {
    ($value:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut s: A,
        ) -> Result<Self::Value, A::Error> {
            while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

struct LenientStrVisitor;

impl<'de> serde::de::Visitor<'de> for LenientStrVisitor {
    type Value = LenientStr<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        while m.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(LenientStr(None))
    }
    accept_any_as!(LenientStr(None));
}

struct IncludedVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for IncludedVisitor<V> {
    type Value = IncludedEntry<'de, V>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(IncludedEntry::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut kind, mut attributes) = (None, None, None);
        // A duplicate key or a non-string ID or type makes the entry not a resource.
        let mut ok = true;
        while let Some(LenientStr(key)) = m.next_key::<LenientStr<'de>>()? {
            match key.as_deref() {
                Some("id") => {
                    let LenientStr(v) = m.next_value()?;
                    ok &= id.is_none() && v.is_some();
                    id = v;
                }
                Some("type") => {
                    let LenientStr(v) = m.next_value()?;
                    ok &= kind.is_none() && v.is_some();
                    kind = v;
                }
                Some("attributes") => {
                    let v: Option<V> = m.next_value()?;
                    ok &= attributes.is_none();
                    attributes = Some(v);
                }
                _ => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(match (id, kind) {
            (Some(id), Some(kind)) if ok => {
                IncludedEntry::Resource { id, kind, attributes: attributes.flatten() }
            }
            _ => IncludedEntry::Other,
        })
    }
    accept_any_as!(IncludedEntry::Other);
}

/// What decoding a record may consult: the mapping, and whether this is a show (one record)
/// rather than a list walk.
struct Ctx<'m> {
    mapping: &'m EcforceMapping,
    single: bool,
}

impl Ctx<'_> {
    /// The record's feed position. A list walk filters on `updated_at`, so standing in
    /// `created_at` would misplace the record: only a show may fall back.
    fn updated_at(
        &self,
        updated: Option<DateTime<Utc>>,
        created: Option<DateTime<Utc>>,
        raw: &str,
    ) -> Result<DateTime<Utc>, CommerceError> {
        let at = if self.single { updated.or(created) } else { updated };
        required(at, "attributes.updated_at", raw)
    }
}

trait FromResource: Sized {
    type Attrs: DeserializeOwned + scan::Read;
    /// The attributes of the side-loads this resource reads (one struct holding every field
    /// it reads from any of them), so that the one-pass path reads them with the document.
    type Side: DeserializeOwned + scan::Read;

    fn build(
        id: &str,
        attrs: Self::Attrs,
        rels: &Rels<'_>,
        sides: &mut impl Sides<Self::Side>,
        ctx: &Ctx<'_>,
        warnings: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError>;

    /// The slow path: decode the attributes naming the failing field.
    fn from_resource(
        res: &Resource<'_>,
        included: &Included<'_, &RawValue>,
        ctx: &Ctx<'_>,
        warnings: &mut Vec<CommerceError>,
        raw: &str,
    ) -> Result<Self, CommerceError> {
        let attrs: Self::Attrs = attrs(attributes(res, raw)?, || "attributes".into(), raw)?;
        let rels = res.relationships.as_ref();
        let empty = Rels::default();
        let mut sides = RawSides(included);
        Self::build(&res.id, attrs, rels.unwrap_or(&empty), &mut sides, ctx, warnings, raw)
    }
}

/// A list page read in one typed pass: every record's attributes straight into their struct,
/// side-loads' attributes read typed in the same pass.
#[derive(Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>, S: Deserialize<'de>"))]
struct TypedDocument<'a, A, S> {
    #[serde(borrow, default, deserialize_with = "page_seq")]
    data: Vec<Typed<'a, A>>,
    #[serde(borrow, default, deserialize_with = "page_seq")]
    included: Vec<IncludedEntry<'a, Slot<S>>>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// A list page's records or side-loads, with room for a full page from the start: serde_json
/// does not know an array's length, and growing the vector from empty copied every record's
/// (large) struct about once more.
fn page_seq<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct PageSeq<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for PageSeq<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(super::client::ECFORCE_MAX_PER as usize);
            while let Some(item) = s.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    d.deserialize_seq(PageSeq(PhantomData))
}

/// Decodes an ecforce page (a list, or a show body): one typed pass over the whole document
/// when every record reads cleanly (the common case), else record by record so that one
/// malformed record is rejected, naming its field, while the rest of the page decodes.
///
/// # Errors
/// [`CommerceError::Decode`] when the body is not a JSON:API document.
#[allow(private_bounds)]
pub(super) fn parse_page_with<T: FromResource + Record>(
    body: &str,
    mapping: &EcforceMapping,
) -> Result<EcforcePage<T>, CommerceError> {
    match clean_page(body, mapping) {
        Some(page) => Ok(page),
        None => parse_page_by_record(body, mapping),
    }
}

/// The one-pass path: `None` as soon as anything is off (a record that does not read or
/// build, a warning, a show body), for [`parse_page_by_record`] to redo with its reasons.
fn clean_page<T: FromResource + Record>(
    body: &str,
    mapping: &EcforceMapping,
) -> Option<EcforcePage<T>> {
    // The hand-written reader first; serde_json reads what it leaves.
    let doc = scan::document(body).or_else(|| serde_json::from_str(body).ok())?;
    build_clean(doc, mapping)
}

/// The records of a page read in one pass, or `None` if any of them needs the other path.
fn build_clean<T: FromResource + Record>(
    doc: TypedDocument<'_, T::Attrs, T::Side>,
    mapping: &EcforceMapping,
) -> Option<EcforcePage<T>> {
    let ctx = Ctx { mapping, single: false };
    let mut included = Included::new(&doc.included);
    let count = doc.data.len();
    let mut records = Vec::with_capacity(count);
    let mut warnings = Vec::new();
    for typed in doc.data {
        let rels = typed.relationships.unwrap_or_default();
        // The raw record is only quoted in errors and warnings, which send this page down
        // the other path: none is needed here.
        let record =
            T::build(&typed.id, typed.attributes?, &rels, &mut included, &ctx, &mut warnings, "")
                .ok()?;
        if !warnings.is_empty() {
            return None;
        }
        records.push(record);
    }
    let total_count = doc.meta.and_then(|m| m.total_count).and_then(|n| u64::try_from(n).ok());
    Some(EcforcePage {
        last: records.last().map(Record::cursor),
        records,
        rejected: Vec::new(),
        warnings: Vec::new(),
        warnings_at: Vec::new(),
        count,
        rejected_at: Vec::new(),
        total_count,
    })
}

/// Record by record: each record's raw text is kept for the errors that quote it.
fn parse_page_by_record<T: FromResource + Record>(
    body: &str,
    mapping: &EcforceMapping,
) -> Result<EcforcePage<T>, CommerceError> {
    let (doc, single) = match serde_json::from_str::<Document<'_>>(body) {
        Ok(doc) => (doc, false),
        Err(list_error) => match serde_json::from_str::<SingleDocument<'_>>(body) {
            Ok(single) => (
                Document {
                    data: single.data.into_iter().collect(),
                    included: single.included,
                    meta: single.meta,
                },
                true,
            ),
            Err(_) => return Err(body_error(&list_error, body)),
        },
    };
    let ctx = Ctx { mapping, single };
    let data = doc.data;
    let included = Included::new(&doc.included);
    let meta = doc.meta;
    let count_of = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    let mut page = EcforcePage {
        records: Vec::with_capacity(data.len()),
        rejected: Vec::new(),
        warnings: Vec::new(),
        warnings_at: Vec::new(),
        last: None,
        rejected_at: Vec::new(),
        count: data.len(),
        total_count: count_of(meta.as_ref().and_then(|m| m.total_count)),
    };
    let mut sides = RawSides(&included);
    for raw in data {
        // Fast path: the whole record in one typed pass.
        let mut warnings = Vec::new();
        if let Ok(typed) = serde_json::from_str::<Typed<'_, T::Attrs>>(raw.get())
            && let Some(attrs) = typed.attributes
        {
            let rels = typed.relationships.unwrap_or_default();
            // On failure fall through: the slow path names the failing field.
            if let Ok(record) =
                T::build(&typed.id, attrs, &rels, &mut sides, &ctx, &mut warnings, raw.get())
            {
                page.last = Some(record.cursor());
                page.warnings_at.extend(warnings.iter().map(|_| record.cursor()));
                page.warnings.append(&mut warnings);
                page.records.push(record);
                continue;
            }
        }
        warnings.clear();
        let res: Resource<'_> = match serde_json::from_str(raw.get()) {
            Ok(res) => res,
            Err(e) => {
                page.rejected.push(decode_error("data[]".into(), e.to_string(), raw.get()));
                page.rejected_at.push(None);
                continue;
            }
        };
        let position = match T::from_resource(&res, &included, &ctx, &mut warnings, raw.get()) {
            Ok(record) => {
                let position = record.cursor();
                page.warnings_at.extend(warnings.iter().map(|_| position.clone()));
                page.warnings.append(&mut warnings);
                page.records.push(record);
                Some(position)
            }
            Err(e) => {
                // Even a broken record keeps its place in the feed when its stamp is readable.
                let position = res
                    .attributes
                    .and_then(|a| serde_json::from_str::<Stamp>(a.get()).ok())
                    .and_then(|s| s.updated_at)
                    .map(|t| Cursor::new(t, res.id.as_ref()));
                page.rejected.push(e);
                page.rejected_at.push(position.clone());
                position
            }
        };
        if position.is_some() {
            page.last = position;
        }
    }
    Ok(page)
}

fn required<T>(value: Option<T>, field: &str, raw: &str) -> Result<T, CommerceError> {
    value.ok_or_else(|| decode_error(field.to_owned(), "missing".into(), raw))
}

fn attributes<'r>(res: &'r Resource<'_>, raw: &str) -> Result<&'r RawValue, CommerceError> {
    res.attributes.ok_or_else(|| decode_error("attributes".into(), "missing".into(), raw))
}

/// Decodes an ecforce customer list page (`GET /api/v2/admin/customers`), or a show body.
/// A list record without `updated_at` is rejected (a show falls back to `created_at`).
///
/// # Errors
/// [`CommerceError::Decode`] when the body is not a JSON:API document; malformed records are
/// in [`EcforcePage::rejected`] instead.
#[cfg(test)]
fn parse_customers_page(body: &str) -> Result<EcforcePage<Customer>, CommerceError> {
    parse_page_with(body, &EcforceMapping::default())
}

/// Decodes an ecforce order list page with `include=order_items`.
///
/// # Errors
/// As [`parse_customers_page`].
#[cfg(test)]
fn parse_orders_page(body: &str) -> Result<EcforcePage<Order>, CommerceError> {
    parse_page_with(body, &EcforceMapping::default())
}

/// Decodes an ecforce subscription-order (`sub_order`) list page.
///
/// # Errors
/// As [`parse_customers_page`].
#[cfg(test)]
fn parse_subscriptions_page(body: &str) -> Result<EcforcePage<Subscription>, CommerceError> {
    parse_page_with(body, &EcforceMapping::default())
}

/// Decodes an ecforce product list page with `include=variants`.
///
/// # Errors
/// As [`parse_customers_page`].
#[cfg(test)]
fn parse_products_page(body: &str) -> Result<EcforcePage<Product>, CommerceError> {
    parse_page_with(body, &EcforceMapping::default())
}

/// ecforce's error envelope: `{"errors":[{"code","message"}]}`.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

impl ErrorBody {
    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default, deserialize_with = "de::opt_string")]
    code: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    message: Option<String>,
}

/// `"ACU2001: customerが見つかりません。"`, or the start of a non-JSON body.
pub(super) fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::model::Money;

    #[test]
    fn malformed_record_names_field_and_rest_decodes() {
        let body = r#"{"data":[
            {"id":"1","type":"customer","attributes":{"id":1,"buy_total":"1200","optin":"1","updated_at":"2026/01/15 09:30:00"}},
            {"id":"2","type":"customer","attributes":{"id":2,"buy_total":"lots","updated_at":"2026/01/15 09:30:01"}},
            {"id":"3","type":"customer","attributes":{"id":3,"tbc":0,"optin":null,"updated_at":"2026/01/15 09:30:02"}}
        ],"meta":{"total_pages":1}}"#;
        let page = parse_customers_page(body).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].total_spent, Some(Money::jpy(1200)));
        assert_eq!(page.records[0].opt_in, Some(true));
        assert_eq!(page.records[0].updated_at.to_rfc3339(), "2026-01-15T00:30:00+00:00");
        match &page.rejected[..] {
            [CommerceError::Decode { field, body, .. }] => {
                assert_eq!(field, "attributes.buy_total");
                assert!(body.contains("lots"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(page.last.unwrap().id, "3");
        assert_eq!(page.count, 3);
    }

    #[test]
    fn missing_updated_at_is_a_decode_error() {
        let body = r#"{"data":[{"id":"1","type":"customer","attributes":{"email":"a@b"}}]}"#;
        let page = parse_customers_page(body).unwrap();
        assert!(
            matches!(&page.rejected[0], CommerceError::Decode { field, .. } if field == "attributes.updated_at")
        );
    }

    #[test]
    fn html_body_is_a_document_error() {
        let e = parse_orders_page("<html><title>Just a moment</title></html>").unwrap_err();
        assert!(matches!(e, CommerceError::Decode { ref field, .. } if field == "(document)"));
    }

    #[test]
    fn error_envelope() {
        let m =
            error_message(r#"{"errors":[{"code":"ASS1001","message":"認証に失敗しました。"}]}"#);
        assert_eq!(m, "ASS1001: 認証に失敗しました。");
    }
}
