//! The page audit harness: renders pages in Debian's headless Chromium through
//! `tests/browser/audit.mjs` (playwright-core and axe-core) and reads its report.
//!
//! A missing Chromium, Node.js or `tests/browser/node_modules` fails the calling test with the
//! command that installs it; nothing is skipped. See docs/testing.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

/// How to get the tools, printed with every failure to run the audit.
pub(crate) const INSTALL_HINT: &str = "the page tests need Node.js 20, Debian's Chromium and \
     tests/browser/node_modules: install Debian's chromium: apt-get install chromium \
     fonts-noto-cjk; run npm ci in tests/browser (cd tests/browser && npm ci --no-audit \
     --no-fund); see docs/testing.md";

/// The smallest touch target (CSS px) and input font size that pass.
pub(crate) const MIN_TARGET_PX: f64 = 44.0;
pub(crate) const MIN_INPUT_FONT_PX: f64 = 16.0;

/// One Chromium at a time: a 2-core machine running several audits at once only times out.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// Only turns a hung browser into a failure; audit.mjs has its own 30 s per navigation and step.
const DEADLINE: Duration = Duration::from_secs(900);

/// What to audit: every page at every viewport.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Spec {
    pub(crate) viewports: Vec<Viewport>,
    pub(crate) pages: Vec<PageSpec>,
}

impl Spec {
    /// The pages at the two standard viewports: a phone in LINE and a desktop browser.
    pub(crate) fn new(pages: Vec<PageSpec>) -> Self {
        Self { viewports: vec![Viewport::PHONE, Viewport::DESKTOP], pages }
    }
}

/// A viewport in CSS pixels. Narrower than 800 px is a phone: device scale 2, touch, and a
/// LINE in-app browser user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Viewport {
    pub(crate) width: u32,
    pub(crate) height: u32,
}

impl Viewport {
    pub(crate) const PHONE: Self = Self { width: 390, height: 844 };
    pub(crate) const DESKTOP: Self = Self { width: 1280, height: 800 };
}

/// One page to open, with the steps to take before auditing it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PageSpec {
    pub(crate) name: String,
    pub(crate) url: String,
    /// Writes `{dir}/{name}-{width}x{height}.png` (full page) when set; relative to the
    /// repository root.
    pub(crate) screenshot_dir: Option<PathBuf>,
    /// The main document's expected status; without it any status >= 400 is a fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expect_status: Option<u16>,
    pub(crate) steps: Vec<Step>,
    /// Request headers sent with every request of this page (e.g. the shop's session).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) headers: std::collections::BTreeMap<String, String>,
}

impl PageSpec {
    pub(crate) fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            screenshot_dir: None,
            expect_status: None,
            steps: Vec::new(),
            headers: std::collections::BTreeMap::new(),
        }
    }

    pub(crate) fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    pub(crate) fn screenshot_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.screenshot_dir = Some(dir.into());
        self
    }

    pub(crate) fn expect_status(mut self, status: u16) -> Self {
        self.expect_status = Some(status);
        self
    }

    pub(crate) fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }
}

/// An action taken, in order, after the page loads and before it is audited. Each waits up to
/// 30 s (playwright's auto-wait for the element, or for the URL and its load).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum Step {
    /// Types `value` into the element `fill` (a CSS or playwright selector).
    Fill { fill: String, value: String },
    /// Clicks the element.
    Click { click: String },
    /// Waits until the page's URL contains this text, and the page has loaded.
    WaitForUrl { wait_for_url: String },
}

impl Step {
    pub(crate) fn fill(selector: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Fill { fill: selector.into(), value: value.into() }
    }

    pub(crate) fn click(selector: impl Into<String>) -> Self {
        Self::Click { click: selector.into() }
    }

    pub(crate) fn wait_for_url(part: impl Into<String>) -> Self {
        Self::WaitForUrl { wait_for_url: part.into() }
    }
}

/// audit.mjs's report: one result per page and viewport, pages outer, viewports inner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    /// The browser's version.
    pub(crate) chromium: String,
    pub(crate) results: Vec<PageReport>,
}

/// What one page showed at one viewport.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageReport {
    pub(crate) name: String,
    /// The URL asked for.
    pub(crate) url: String,
    pub(crate) viewport: Viewport,
    pub(crate) expect_status: Option<u16>,
    /// Where the page ended up, after redirects and steps.
    pub(crate) final_url: Option<String>,
    /// The status of the last main document (redirects skipped); `None` if none answered.
    pub(crate) status: Option<u16>,
    /// Every main-frame navigation, redirects included.
    pub(crate) documents: Vec<Document>,
    pub(crate) title: Option<String>,
    /// The body's visible text (`innerText`), at most 2,000 characters.
    pub(crate) text: Option<String>,
    pub(crate) console_errors: Vec<ConsoleError>,
    /// Uncaught exceptions, with their stack.
    pub(crate) page_errors: Vec<String>,
    /// Subresources that failed (HTTP >= 400 or a network error).
    pub(crate) failed_requests: Vec<FailedRequest>,
    /// `document.documentElement.scrollWidth`: wider than `client_width` scrolls sideways.
    pub(crate) scroll_width: Option<u32>,
    /// `document.documentElement.clientWidth`, the layout viewport's width.
    pub(crate) client_width: Option<u32>,
    /// `window.innerWidth`; a phone widens it to the content, so it hides an overflow.
    pub(crate) inner_width: Option<u32>,
    pub(crate) small_targets: Vec<SmallTarget>,
    pub(crate) small_input_fonts: Vec<SmallInputFont>,
    /// `<html lang>`, `None` when missing or blank.
    pub(crate) lang: Option<String>,
    /// `<meta name=viewport>`'s content, `None` when there is no such tag.
    pub(crate) viewport_meta: Option<String>,
    /// axe-core's serious and critical violations only.
    pub(crate) axe_violations: Vec<AxeViolation>,
    /// The screenshot written, relative to the repository root unless the spec's dir was
    /// absolute.
    pub(crate) screenshot: Option<PathBuf>,
    /// Why the page could not be loaded, stepped through or inspected.
    pub(crate) error: Option<String>,
}

/// A main-frame document response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    pub(crate) url: String,
    pub(crate) status: Option<u16>,
    #[serde(default)]
    pub(crate) failure: Option<String>,
}

/// A `console.error` (or an error the browser logged to the console).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsoleError {
    pub(crate) text: String,
    pub(crate) url: Option<String>,
}

/// A subresource that failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailedRequest {
    pub(crate) url: String,
    pub(crate) method: String,
    /// playwright's resource type: `image`, `stylesheet`, `script`, `fetch`, ...
    pub(crate) resource_type: String,
    /// The HTTP status, or `None` for a network failure.
    pub(crate) status: Option<u16>,
    /// The network error (`net::ERR_CONNECTION_REFUSED`, ...).
    pub(crate) failure: Option<String>,
}

/// A visible control smaller than 44 × 44 CSS px.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmallTarget {
    /// Tag, id, classes, type/name/role/href and the start of its text.
    pub(crate) element: String,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

/// A text input, select or textarea under 16 px, which iOS zooms into on focus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmallInputFont {
    pub(crate) element: String,
    pub(crate) font_size: f64,
}

/// An axe-core rule the page breaks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AxeViolation {
    /// The rule, e.g. `color-contrast`, `image-alt`.
    pub(crate) id: String,
    /// `serious` or `critical`.
    pub(crate) impact: String,
    pub(crate) help: String,
    /// How many elements break it.
    pub(crate) nodes: usize,
    /// Selectors of the first three.
    pub(crate) targets: Vec<String>,
}

impl Report {
    /// Every fault of every page at every viewport, in words, each starting with
    /// `{name} {width}x{height}:`. Empty for a page that passes.
    pub(crate) fn faults(&self) -> Vec<String> {
        self.results.iter().flat_map(PageReport::faults).collect()
    }

    /// The result for one page at one viewport.
    ///
    /// # Panics
    ///
    /// When the report has no such result.
    pub(crate) fn result(&self, name: &str, viewport: Viewport) -> &PageReport {
        self.results
            .iter()
            .find(|r| r.name == name && r.viewport == viewport)
            .unwrap_or_else(|| panic!("no result for {name} at {viewport:?} in {self:#?}"))
    }
}

impl PageReport {
    /// The visible text, empty when the page had none.
    pub(crate) fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    /// This page's faults at this viewport, in words (see [`Report::faults`]).
    pub(crate) fn faults(&self) -> Vec<String> {
        let mut faults = Vec::new();
        if let Some(error) = &self.error {
            faults.push(format!("could not be audited: {error}"));
        }
        self.status_faults(&mut faults);
        for e in &self.console_errors {
            faults.push(format!(
                "console error: {} (at {})",
                e.text,
                e.url.as_deref().unwrap_or("?")
            ));
        }
        for e in &self.page_errors {
            faults.push(format!("uncaught page error: {e}"));
        }
        for r in &self.failed_requests {
            let why = match (r.status, &r.failure) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(failure)) => failure.clone(),
                (None, None) => "failed".to_owned(),
            };
            faults.push(format!(
                "failed request: {} {} ({}): {why}",
                r.method, r.url, r.resource_type
            ));
        }
        if self.error.is_none() {
            self.layout_faults(&mut faults);
        }
        for v in &self.axe_violations {
            faults.push(format!(
                "axe {} {}: {} ({} element(s): {})",
                v.impact,
                v.id,
                v.help,
                v.nodes,
                v.targets.join(", ")
            ));
        }
        let Viewport { width, height } = self.viewport;
        faults.into_iter().map(|f| format!("{} {width}x{height}: {f}", self.name)).collect()
    }

    fn status_faults(&self, faults: &mut Vec<String>) {
        match (self.status, self.expect_status) {
            (Some(status), Some(expected)) if status != expected => {
                faults.push(format!("main document status {status}, expected {expected}"));
            }
            (Some(status), None) if status >= 400 => {
                faults.push(format!("main document status {status}"));
            }
            (None, _) if self.error.is_none() => {
                faults.push("no main document response".to_owned())
            }
            _ => {}
        }
    }

    fn layout_faults(&self, faults: &mut Vec<String>) {
        if let (Some(scroll), Some(client)) = (self.scroll_width, self.client_width)
            && scroll > client
        {
            faults.push(format!(
                "horizontal scroll: the content is {scroll} px wide in a {client} px wide layout"
            ));
        }
        for t in &self.small_targets {
            faults.push(format!(
                "small touch target: {} is {}x{} px (under {MIN_TARGET_PX} px)",
                t.element, t.width, t.height
            ));
        }
        for f in &self.small_input_fonts {
            faults.push(format!(
                "small input font: {} has {} px text (under {MIN_INPUT_FONT_PX} px: iOS zooms in)",
                f.element, f.font_size
            ));
        }
        if self.lang.is_none() {
            faults.push("missing <html lang>".to_owned());
        }
        if self.viewport_meta.is_none() {
            faults.push("missing <meta name=\"viewport\">".to_owned());
        }
    }
}

/// Renders every page of `spec` at every viewport in one Chromium and reports what it saw.
/// Audits run one at a time in the process (they wait for each other).
///
/// # Panics
///
/// When the audit cannot run: Node.js, Chromium or `tests/browser/node_modules` missing (with
/// how to install them), a malformed spec, or an unreadable report. A page that cannot be
/// loaded does not panic: its result's `error` says why, and [`Report::faults`] lists it.
pub(crate) async fn audit(spec: &Spec) -> Report {
    run(spec, &[]).await.unwrap_or_else(|e| panic!("the page audit failed: {e}\n{INSTALL_HINT}"))
}

/// Runs audit.mjs with extra environment variables (a test points `ENISHI_CHROMIUM` elsewhere);
/// the error holds everything needed to see why it failed.
pub(crate) async fn run(spec: &Spec, env: &[(&str, &str)]) -> Result<Report, String> {
    let _one_at_a_time = BROWSER.lock().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/audit.mjs");
    let input =
        serde_json::to_vec(spec).map_err(|e| format!("the spec does not serialise: {e}"))?;
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(root)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("could not start `node {}`: {e} (is Node.js 20 installed?)", script.display())
        })?;
    // A node that exits before reading (missing tools) breaks the pipe: its stderr says why.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(&input).await;
    drop(stdin);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .map_err(|_| format!("node {} did not finish in {DEADLINE:?}", script.display()))?
        .map_err(|e| format!("waiting for node: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("node {} exited with {}:\n{stderr}", script.display(), output.status));
    }
    written.map_err(|e| format!("writing the spec to node: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let de = &mut serde_json::Deserializer::from_str(&stdout);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut message = format!("the report does not parse at {}: {}", e.path(), e.inner());
        let _ = write!(message, "\nstderr:\n{stderr}\nstdout:\n{stdout}");
        message
    })
}
