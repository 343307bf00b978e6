//! How the example CLIs report a failure: the error, then every cause under it, each message
//! once.
//!
//! ```text
//! error: the sqlite link store failed
//!   caused by: unable to open database file: target/x/enishi.sqlite
//!   caused by: Error code 14: Unable to open the database file
//! ```

// Each example uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::error::Error;
use std::process::ExitCode;

/// The messages of `err` and of its causes, outermost first. A cause whose message the one
/// above it already ends with (some libraries print their source in their own message) is left
/// out, so nothing is said twice.
pub(crate) fn causes(err: &dyn Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        let message = cause.to_string();
        let said = out.last().is_some_and(|above| above.ends_with(message.as_str()));
        if !message.is_empty() && !said {
            out.push(message);
        }
        next = cause.source();
    }
    out
}

/// `error: <err>` and one `  caused by: <cause>` line per cause, each ending in a newline.
pub(crate) fn render(err: &dyn Error) -> String {
    let mut out = String::new();
    for (i, message) in causes(err).iter().enumerate() {
        out.push_str(if i == 0 { "error: " } else { "  caused by: " });
        out.push_str(message);
        out.push('\n');
    }
    out
}

/// Prints [`render`] to standard error.
pub(crate) fn report(err: &dyn Error) {
    eprint!("{}", render(err));
}

/// The exit status of an example's run: success, or the error and its causes on standard error
/// and status 1. (Usage errors are clap's: status 2.)
pub(crate) fn exit(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// An error that says what was being done when its cause happened; the cause stays in the
/// chain (`caused by:`) instead of being pasted into the message.
#[derive(Debug)]
pub(crate) struct Context {
    what: String,
    source: Box<dyn Error + Send + Sync>,
}

impl Context {
    /// `what` failed because of `source`.
    pub(crate) fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self { what: what.into(), source: source.into() }
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}
