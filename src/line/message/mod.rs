//! Message objects (placeholder: filled by the messages work).
