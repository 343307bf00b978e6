//! Webhooks: signature verification, forward-compatible parsing, de-duplication.
