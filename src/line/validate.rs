//! Local validation of request bodies against LINE's documented limits.
//!
//! Every check runs before a request leaves the process: a violation names the JSON path
//! (`messages[2].text`) and the limit, and nothing is sent.

use std::fmt;

/// One broken rule, at one place in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The JSON path of the offending value, e.g. `messages[2].text`.
    pub path: String,
    /// The rule that was broken, e.g. `at most 5000 UTF-16 code units (got 5001)`.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)
    }
}

/// A request broke one or more of LINE's documented limits; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ValidationError {
    /// Every violation found, in document order (never empty).
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.violations.as_slice() {
            [] => f.write_str("invalid request"),
            [only] => write!(f, "invalid request: {only}"),
            [first, rest @ ..] => write!(f, "invalid request: {first} (and {} more)", rest.len()),
        }
    }
}

impl ValidationError {
    /// A single violation.
    pub fn new(path: impl Into<String>, rule: impl Into<String>) -> Self {
        Self { violations: vec![Violation { path: path.into(), rule: rule.into() }] }
    }
}

/// Collects violations while walking a request, keeping track of the JSON path.
#[derive(Debug, Default)]
pub struct Validator {
    path: Vec<String>,
    violations: Vec<Violation>,
}

impl Validator {
    /// An empty validator at the document root.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with `field` appended to the path (`.field`).
    pub fn field<R>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let segment = if self.path.is_empty() { field.to_owned() } else { format!(".{field}") };
        self.path.push(segment);
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` with `[index]` appended to the path.
    pub fn index<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(format!("[{index}]"));
        let r = f(self);
        self.path.pop();
        r
    }

    /// The current JSON path.
    #[must_use]
    pub fn path(&self) -> String {
        self.path.concat()
    }

    /// Records a violation at the current path.
    pub fn violation(&mut self, rule: impl Into<String>) {
        let path = self.path();
        self.violations.push(Violation { path, rule: rule.into() });
    }

    /// Records a violation at `field` below the current path.
    pub fn violation_at(&mut self, field: &str, rule: impl Into<String>) {
        self.field(field, |v| v.violation(rule));
    }

    /// Checks a count of items (array length) against an inclusive range.
    pub fn count(&mut self, field: &str, len: usize, min: usize, max: usize) {
        if len < min || len > max {
            self.violation_at(field, format!("must hold {min} to {max} items (got {len})"));
        }
    }

    /// Checks a string's length in UTF-16 code units, the unit LINE counts text in.
    pub fn utf16_len(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let len = value.encode_utf16().count();
        if len < min || len > max {
            self.violation_at(
                field,
                format!("must be {min} to {max} UTF-16 code units long (got {len})"),
            );
        }
    }

    /// Checks a string's length in characters (Unicode scalar values).
    pub fn char_len(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min || len > max {
            self.violation_at(field, format!("must be {min} to {max} characters long (got {len})"));
        }
    }

    /// Checks an absolute URL: parseable, an allowed scheme, at most `max` characters.
    pub fn url(&mut self, field: &str, value: &str, schemes: &[&str], max: usize) {
        let len = value.chars().count();
        if len > max {
            self.violation_at(field, format!("must be at most {max} characters long (got {len})"));
            return;
        }
        match url::Url::parse(value) {
            Ok(u) if schemes.contains(&u.scheme()) => {}
            Ok(u) => self.violation_at(
                field,
                format!("scheme must be one of {} (got {})", schemes.join(", "), u.scheme()),
            ),
            Err(e) => self.violation_at(field, format!("must be an absolute URL ({e})")),
        }
    }

    /// Takes over the violations of a finished validation (their paths are kept as they are).
    pub fn absorb(&mut self, result: Result<(), ValidationError>) {
        if let Err(e) = result {
            self.violations.extend(e.violations);
        }
    }

    /// Finishes: `Ok(())` when nothing was recorded.
    ///
    /// # Errors
    /// [`ValidationError`] listing every violation recorded.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { violations: self.violations })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_like_json_paths() {
        let mut v = Validator::new();
        v.field("messages", |v| v.index(2, |v| v.utf16_len("text", "", 1, 5000)));
        let err = v.finish().unwrap_err();
        assert_eq!(err.violations[0].path, "messages[2].text");
        assert!(err.to_string().contains("messages[2].text"), "{err}");
    }

    #[test]
    fn utf16_counts_astral_characters_twice() {
        let mut v = Validator::new();
        v.utf16_len("text", &"😀".repeat(2500), 1, 5000);
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        v.utf16_len("text", &format!("{}a", "😀".repeat(2500)), 1, 5000);
        assert!(v.finish().unwrap_err().violations[0].rule.contains("5001"));
    }
}
