//! Identifier newtypes.
//!
//! Every ID in enishi is its own type so a customer ID can never be passed where a LINE
//! user ID is expected. All of them are made by one macro and share the same surface:
//! `as_str()`, `AsRef<str>`, `Display`, `FromStr`, serde (validated on the way in),
//! `Hash` and `Ord`. Deliberately no `Deref` (API guideline C-DEREF).

use std::fmt;
use std::sync::Arc;

/// An identifier failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason} (got {value:?})")]
#[non_exhaustive]
pub struct IdError {
    /// The ID type that rejected the value, e.g. `LineUserId`.
    pub kind: &'static str,
    /// What a valid value looks like.
    pub reason: &'static str,
    /// The rejected value, cut to 80 characters.
    pub value: String,
}

impl IdError {
    pub(crate) fn new(kind: &'static str, reason: &'static str, value: &str) -> Self {
        Self { kind, reason, value: value.chars().take(80).collect() }
    }
}

/// Defines an ID newtype whose values are checked by `$check`
/// (a `fn(&str) -> Result<(), &'static str>` returning the reason on failure).
///
/// The value is held as `Arc<str>`: planning copies customer, LINE user and campaign IDs into
/// a million batches, and a clone that only counts a reference costs no allocation.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            ///
            /// # Errors
            /// [`IdError`] when the value does not have this ID's format.
            pub fn new(value: impl AsRef<str>) -> Result<Self, IdError> {
                let value = value.as_ref();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(value) {
                    Ok(()) => Ok(Self(Arc::from(value))),
                    Err(reason) => Err(IdError::new(stringify!($name), reason, value)),
                }
            }

            /// The ID as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ID as an owned string.
            #[must_use]
            pub fn into_string(self) -> String {
                String::from(&*self.0)
            }
        }

        id_common!($name);
    };
}

/// The traits every ID implements, over its `new` and `as_str`.
macro_rules! id_common {
    ($name:ident) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.into_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor::<Self>(std::marker::PhantomData))
            }
        }

        impl FromIdStr for $name {
            fn from_id_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
    };
}

/// An ID type the serde visitor can build (validated) from a string slice.
trait FromIdStr: Sized {
    fn from_id_str(s: &str) -> Result<Self, IdError>;
}

/// Deserialises an ID from a borrowed or owned string without an intermediate `String`.
struct IdVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromIdStr> serde::de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        T::from_id_str(v).map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
        }
    }
}

/// `prefix` followed by exactly 32 lowercase hexadecimal digits (LINE's user, group and room IDs).
fn prefixed_hex32(value: &str, prefix: char) -> bool {
    let mut chars = value.chars();
    chars.next() == Some(prefix)
        && value.len() == 33
        && chars.all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// Whether `value` has a control character (bytewise for ASCII, the common case: webhook event
/// IDs are read for every event).
fn has_control(value: &str) -> bool {
    if value.is_ascii() {
        value.bytes().any(|b| b.is_ascii_control())
    } else {
        value.chars().any(char::is_control)
    }
}

fn non_empty(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        Err("must not be empty")
    } else if value.len() > 1024 {
        Err("must be at most 1024 bytes")
    } else if has_control(value) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

id_type!(
    /// A LINE user ID: `U` followed by 32 lowercase hex digits. Scoped to one LINE provider.
    LineUserId,
    |v| if prefixed_hex32(v, 'U') { Ok(()) } else { Err("expected `U` followed by 32 lowercase hex digits") }
);

id_type!(
    /// A LINE group chat ID: `C` followed by 32 lowercase hex digits.
    LineGroupId,
    |v| if prefixed_hex32(v, 'C') { Ok(()) } else { Err("expected `C` followed by 32 lowercase hex digits") }
);

id_type!(
    /// A LINE multi-person chat (room) ID: `R` followed by 32 lowercase hex digits.
    LineRoomId,
    |v| if prefixed_hex32(v, 'R') { Ok(()) } else { Err("expected `R` followed by 32 lowercase hex digits") }
);

id_type!(
    /// A shop customer's ID in its commerce backend (opaque, non-empty).
    CustomerId,
    non_empty
);

id_type!(
    /// The `x-line-request-id` LINE assigns to every API call (opaque, non-empty).
    RequestId,
    non_empty
);

id_type!(
    /// A rich menu ID assigned by LINE (opaque, non-empty).
    RichMenuId,
    non_empty
);

id_type!(
    /// A coupon ID assigned by LINE's coupon API (opaque, non-empty).
    CouponId,
    non_empty
);

id_type!(
    /// A rich menu alias ID chosen by the shop: 1–32 characters of `[a-z0-9_-]` (LINE's pattern).
    RichMenuAliasId,
    |v| {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if (1..=32).contains(&v.len()) && v.bytes().all(allowed) {
            Ok(())
        } else {
            Err("expected 1 to 32 characters of [a-z0-9_-]")
        }
    }
);

id_type!(
    /// A webhook event ID (`webhookEventId`, a ULID in practice; kept opaque).
    WebhookEventId,
    non_empty
);

id_type!(
    /// A LINE message ID (opaque, non-empty).
    MessageId,
    non_empty
);

id_type!(
    /// A custom aggregation unit name for per-unit statistics: `^[a-zA-Z0-9_]{1,30}$`.
    AggregationUnit,
    |v| {
        if (1..=30).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            Ok(())
        } else {
            Err("expected 1 to 30 characters of [a-zA-Z0-9_]")
        }
    }
);

id_type!(
    /// A campaign's ID, chosen by the shop: 1–64 characters of `[A-Za-z0-9_.:-]`.
    ///
    /// Scenarios use `scenario.<name>` so their sends share the journal with campaigns.
    CampaignId,
    slug64
);

id_type!(
    /// A delivery batch's ID: unique in the delivery journal (at most 200 bytes, no control
    /// characters). Campaign batches use `<campaign>#<seq>`; scenario sends use
    /// `<scenario>/<step>/<customer>/<occurrence>`, so planning twice never sends twice.
    BatchId,
    |v| if v.len() > 200 { Err("must be at most 200 bytes") } else { non_empty(v) }
);

fn slug64(v: &str) -> Result<(), &'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if (1..=64).contains(&v.len()) && v.bytes().all(allowed) {
        Ok(())
    } else {
        Err("expected 1 to 64 characters of [A-Za-z0-9_.:-]")
    }
}

impl BatchId {
    /// `<campaign>#<seq>`, `seq` zero-padded to 7 digits, written through `buf` (no formatting
    /// machinery, no string per call: planning numbers a million batches). A campaign ID is
    /// 1–64 bytes of `[A-Za-z0-9_.:-]`, so with `#` and at most 20 digits the result is always
    /// a valid batch ID and is not checked again.
    pub(crate) fn numbered(campaign: &CampaignId, seq: usize, buf: &mut String) -> Self {
        let mut digits = [b'0'; 20];
        let mut n = seq;
        let mut start = digits.len();
        while n > 0 || start > digits.len() - 7 {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf.clear();
        buf.push_str(campaign.as_str());
        buf.push('#');
        buf.extend(digits[start..].iter().map(|&d| char::from(d)));
        debug_assert!(Self::new(buf.as_str()).is_ok(), "{buf:?}");
        Self(Arc::from(buf.as_str()))
    }
}

/// An `X-Line-Retry-Key`: a UUID in its lowercase hyphenated form.
///
/// Create one per logical send with [`RetryKey::generate`], persist it before the first
/// attempt, and reuse it on every retry so LINE accepts the send at most once.
// Held inline (36 ASCII bytes), not on the heap: planning derives one for every batch.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetryKey([u8; 36]);

impl RetryKey {
    /// Validates `value` and wraps it.
    ///
    /// # Errors
    /// [`IdError`] when the value is not a UUID in its lowercase hyphenated form.
    pub fn new(value: impl AsRef<str>) -> Result<Self, IdError> {
        let value = value.as_ref();
        let reason = match uuid::Uuid::try_parse(value) {
            Ok(u) if u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()) == value => {
                let mut bytes = [0u8; 36];
                bytes.copy_from_slice(value.as_bytes());
                return Ok(Self(bytes));
            }
            Ok(_) => "expected the lowercase hyphenated UUID form",
            Err(_) => "expected a UUID such as 123e4567-e89b-12d3-a456-426614174000",
        };
        Err(IdError::new("RetryKey", reason, value))
    }

    /// The key as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always ASCII: the bytes come from a checked UUID string.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The key as an owned string.
    #[must_use]
    pub fn into_string(self) -> String {
        self.as_str().to_owned()
    }
}

id_common!(RetryKey);

impl RetryKey {
    /// A fresh random (v4) retry key.
    #[must_use]
    pub fn generate() -> Self {
        Self::from_uuid(uuid::Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    #[must_use]
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        // Encoded into a buffer rather than through `Display`: planning derives a key per batch.
        let mut bytes = [0u8; 36];
        uuid.hyphenated().encode_lower(&mut bytes);
        Self(bytes)
    }

    /// A retry key derived from a stable name (SHA-256, shaped as a v4 UUID): the same name
    /// always gives the same key, so a re-planned batch keeps the key its first plan had.
    #[must_use]
    pub fn derive(name: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

/// The numeric ID of an audience group.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AudienceGroupId(pub i64);

impl fmt::Display for AudienceGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_user_id_accepts_only_u_and_32_lowercase_hex() {
        assert!(LineUserId::new(format!("U{}", "0123456789abcdef".repeat(2))).is_ok());
        for bad in [
            "",
            "U",
            &format!("u{}", "a".repeat(32)),
            &format!("U{}", "A".repeat(32)),
            &format!("U{}", "a".repeat(31)),
            &format!("U{}", "a".repeat(33)),
            &format!("C{}", "a".repeat(32)),
            &format!("U{}g", "a".repeat(31)),
        ] {
            let err = LineUserId::new(bad).unwrap_err();
            assert_eq!(err.kind, "LineUserId", "{bad}");
        }
    }

    #[test]
    fn ids_round_trip_through_serde_display_and_from_str() {
        let id: LineUserId = format!("U{}", "f".repeat(32)).parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<LineUserId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<LineUserId>("\"Unope\"").is_err());
        assert_eq!(id.as_ref(), id.as_str());
    }

    #[test]
    fn retry_key_is_a_lowercase_uuid() {
        let key = RetryKey::generate();
        assert_eq!(RetryKey::new(key.as_str()).unwrap(), key);
        assert!(RetryKey::new("123e4567-e89b-12d3-a456-426614174000").is_ok());
        assert!(RetryKey::new("123E4567-E89B-12D3-A456-426614174000").is_err());
        assert!(RetryKey::new("not-a-uuid").is_err());
        assert_ne!(RetryKey::generate(), RetryKey::generate());
    }

    #[test]
    fn opaque_ids_reject_empty_and_control_characters() {
        assert!(CustomerId::new("c-1").is_ok());
        assert!(CustomerId::new("").is_err());
        assert!(CustomerId::new("a\nb").is_err());
        assert!(AggregationUnit::new("spring_sale_2026").is_ok());
        assert!(AggregationUnit::new("spring-sale").is_err());
        assert!(RichMenuAliasId::new("link-menu_2").is_ok());
        assert!(RichMenuAliasId::new("Upper").is_err());
        assert!(AggregationUnit::new("a".repeat(31)).is_err());
    }
}
