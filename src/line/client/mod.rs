//! The LINE Messaging API client.
