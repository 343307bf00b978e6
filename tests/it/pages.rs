//! Customer pages in a real browser: the audit harness (headless Chromium through playwright-core
//! and axe-core, `tests/browser/audit.mjs`) and the tests that use it. Needs Node.js, Debian's
//! Chromium and `npm ci` in tests/browser (docs/testing.md); without them these tests fail.

mod browser;
#[cfg(feature = "app")]
mod customer;
mod harness;
#[cfg(feature = "app")]
mod site;
