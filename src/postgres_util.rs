//! Helpers shared by the PostgreSQL stores.

/// What a valid schema name looks like (for error messages).
pub(crate) const SCHEMA_NAME_RULE: &str =
    "expected 1 to 63 characters of [a-z0-9_], not starting with a digit";

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
pub(crate) fn is_valid_schema_name(schema: &str) -> bool {
    (1..=63).contains(&schema.len())
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
