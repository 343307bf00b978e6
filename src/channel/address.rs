//! Validated addresses: e-mail addresses and phone numbers normalised to E.164.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An address that cannot be used; the text says why (for the exclusion report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
#[non_exhaustive]
pub struct AddressError {
    /// `e-mail address` or `phone number`.
    pub kind: &'static str,
    /// The value as given (at most 80 characters).
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl AddressError {
    fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        Self { kind, value: value.chars().take(80).collect(), reason }
    }
}

/// An e-mail address checked for the shape SMTP needs (`local@domain.tld`, no spaces, no
/// control characters, at most 254 bytes); the domain is lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks and normalises `value` (surrounding spaces are trimmed).
    ///
    /// # Errors
    /// [`AddressError`] saying what is wrong.
    pub fn new(value: &str) -> Result<Self, AddressError> {
        let err = |reason| AddressError::new("e-mail address", value, reason);
        let v = value.trim();
        if v.is_empty() {
            return Err(err("is empty"));
        }
        if v.len() > 254 {
            return Err(err("is longer than 254 bytes"));
        }
        if v.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            return Err(err("contains spaces, control or non-ASCII characters"));
        }
        let Some((local, domain)) = v.rsplit_once('@') else {
            return Err(err("has no @"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(err("has an empty, over-long or second local part"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(err("has a misplaced dot in the local part"));
        }
        if local
            .chars()
            .any(|c| matches!(c, '(' | ')' | '<' | '>' | ',' | ';' | ':' | '\\' | '"' | '[' | ']'))
        {
            return Err(err("has a character the local part cannot hold unquoted"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(err("has no valid domain (name.tld)"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data: show the domain only.
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "EmailAddress(***@{domain})")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// A phone number in E.164 form (`+819012345678`).
///
/// [`PhoneNumber::parse_jp`] reads what Japanese shops store: `090-1234-5678`, `(03) 1234 5678`,
/// full-width digits, or a number already in `+81…` form. A domestic number (leading `0`)
/// becomes `+81` without the `0`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises a number as a Japanese shop stores it (see the type's docs).
    ///
    /// # Errors
    /// [`AddressError`] for letters, too few or too many digits, or a number that is neither
    /// domestic (`0…`) nor international (`+…`).
    pub fn parse_jp(value: &str) -> Result<Self, AddressError> {
        let err = |reason| AddressError::new("phone number", value, reason);
        let mut plus = false;
        let mut digits = String::new();
        for (i, c) in value.trim().chars().enumerate() {
            // Full-width digits and plus sign (U+FF10..U+FF19, U+FF0B).
            let c = match c {
                '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                '＋' => '+',
                'ー' | '－' | '‐' | '−' => '-',
                other => other,
            };
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                '-' | ' ' | '(' | ')' | '.' | '\u{3000}' => {}
                _ => return Err(err("contains a character that is not a digit")),
            }
        }
        let e164 = if plus {
            format!("+{digits}")
        } else if let Some(rest) = digits.strip_prefix('0') {
            if rest.starts_with('0') {
                return Err(err("starts with an international prefix; write it as +<country>"));
            }
            format!("+81{rest}")
        } else {
            return Err(err("is neither domestic (0…) nor international (+…)"));
        };
        Self::e164(&e164)
            .map_err(|_| err("does not have 8 to 15 digits after the country code prefix"))
    }

    /// Checks a number already in E.164 form.
    ///
    /// # Errors
    /// [`AddressError`] unless `value` is `+` and 8 to 15 digits, the first not `0`.
    pub fn e164(value: &str) -> Result<Self, AddressError> {
        let digits = value.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(AddressError::new("phone number", value, "is not E.164 (+ and 8 to 15 digits)"))
        }
    }

    /// The E.164 text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number can receive SMS and LINE notification messages: a Japanese number
    /// must be a mobile (`060`, `070`, `080` or `090` and 11 digits domestically); a number of
    /// another country is assumed to be one.
    ///
    /// # Errors
    /// [`AddressError`] for a Japanese fixed-line, IP (`050`) or free-dial number.
    pub fn check_mobile(&self) -> Result<(), AddressError> {
        match self.0.strip_prefix("+81") {
            Some(national)
                if !(national.len() == 10
                    && ["60", "70", "80", "90"].iter().any(|p| national.starts_with(p))) =>
            {
                Err(AddressError::new(
                    "phone number",
                    &self.0,
                    "is not a Japanese mobile number (060/070/080/090): it cannot receive SMS \
                     or notification messages",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The SHA-256 of the E.164 text, as 64 lowercase hex digits: how LINE notification
    /// messages address a phone.
    #[must_use]
    pub fn hashed(&self) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.0.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data: the last two digits only.
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "PhoneNumber(+…{tail})")
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::e164(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_phone_numbers_normalise_to_e164() {
        for (raw, want) in [
            ("090-1234-5678", "+819012345678"),
            ("０９０－１２３４－５６７８", "+819012345678"),
            ("(03) 1234 5678", "+81312345678"),
            ("+81 90 1234 5678", "+819012345678"),
            ("+1 (415) 555-0100", "+14155550100"),
        ] {
            assert_eq!(PhoneNumber::parse_jp(raw).unwrap().as_str(), want, "{raw}");
        }
        for bad in ["", "abc", "12345", "9012345678", "090-12", "0081901234567", "+0123456789"] {
            assert!(PhoneNumber::parse_jp(bad).is_err(), "{bad}");
        }
        for mobile in ["090-1234-5678", "070-1234-5678", "080 1234 5678", "+1 415 555 0100"] {
            assert!(PhoneNumber::parse_jp(mobile).unwrap().check_mobile().is_ok(), "{mobile}");
        }
        for fixed in ["03-1234-5678", "050-1234-5678", "0120-123-456", "06-1234-5678"] {
            let e = PhoneNumber::parse_jp(fixed).unwrap().check_mobile().unwrap_err();
            assert!(e.reason.contains("mobile"), "{fixed}");
        }
        let p = PhoneNumber::parse_jp("090-1234-5678").unwrap();
        assert_eq!(p.hashed(), "3d06a39d40790f11761295e053029378ae28c4b4f6f301693005e079f3d4ca64");
        assert!(!format!("{p:?}").contains("1234"));
    }

    #[test]
    fn channel_email_addresses_are_checked() {
        assert_eq!(EmailAddress::new(" Taro@Example.JP ").unwrap().as_str(), "Taro@example.jp");
        for bad in [
            "",
            "taro",
            "taro@",
            "@example.jp",
            "taro@example",
            "ta ro@example.jp",
            "taro@@example.jp",
            "taro@exa_mple.jp",
            ".taro@example.jp",
            "taro..x@example.jp",
            "太郎@example.jp",
            "taro@-example.jp",
        ] {
            let e = EmailAddress::new(bad).unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
        }
        assert!(!format!("{:?}", EmailAddress::new("taro@example.jp").unwrap()).contains("taro"));
    }
}
