//! A real SMTP server for tests: Python's aiosmtpd, started as a child process.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde::Deserialize;

use crate::testkit::TestkitError;

const SCRIPT: &str = include_str!("smtp_sink.py");

/// How to install the SMTP server the tests use.
pub const SMTP_INSTALL_HINT: &str = "python3 -m venv target/smtp-venv && \
     target/smtp-venv/bin/pip install aiosmtpd (or set ENISHI_SMTP_PYTHON to a Python with aiosmtpd)";

/// One message the SMTP server accepted, as it parsed it (headers decoded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ReceivedEmail {
    /// The envelope sender.
    pub mail_from: String,
    /// The envelope recipients.
    pub rcpt_tos: Vec<String>,
    /// `Message-ID`.
    pub message_id: String,
    /// `Subject`, decoded.
    pub subject: String,
    /// `From`.
    pub from: String,
    /// `To`.
    pub to: String,
    /// `List-Unsubscribe`.
    pub list_unsubscribe: String,
    /// `List-Unsubscribe-Post`.
    pub list_unsubscribe_post: String,
    /// The text/plain part, decoded.
    pub text: String,
    /// The text/html part, decoded.
    pub html: String,
}

/// A real SMTP server (Python's `aiosmtpd`) on 127.0.0.1, recording every message it accepts.
/// Recipients whose local part starts with `bounce` are refused with 550, `tempfail` with 451.
///
/// The Python comes from `ENISHI_SMTP_PYTHON`, else `target/smtp-venv/bin/python` of this
/// crate ([`SMTP_INSTALL_HINT`] says how to make it). The server stops when this is dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    _stdin: Option<ChildStdin>,
    port: u16,
    out: PathBuf,
    _dir: TempDir,
}

#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(reason: String) -> TestkitError {
    TestkitError::InvalidConfig { field: "smtp".into(), reason }
}

impl SmtpSink {
    /// The Python the sink runs with by default: `ENISHI_SMTP_PYTHON`, else this crate's
    /// `target/smtp-venv/bin/python`, else a `python3` on the `PATH` that can import aiosmtpd.
    #[must_use]
    pub fn default_python() -> PathBuf {
        if let Some(p) = std::env::var_os("ENISHI_SMTP_PYTHON") {
            return PathBuf::from(p);
        }
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/smtp-venv/bin/python");
        if venv.exists() {
            return venv;
        }
        let system_has_it = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if system_has_it { PathBuf::from("python3") } else { venv }
    }

    /// Starts the server with [`default_python`](Self::default_python).
    ///
    /// # Errors
    /// [`TestkitError::InvalidConfig`] (field `smtp`) saying how to install aiosmtpd when the
    /// Python or the package is missing, or the server did not start.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(&Self::default_python())
    }

    /// Starts the server with `python`.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(python: &Path) -> Result<Self, TestkitError> {
        if python.components().count() > 1 && !python.exists() {
            return Err(setup(format!(
                "no Python with aiosmtpd at {}; install it: {SMTP_INSTALL_HINT}",
                python.display()
            )));
        }
        let dir = std::env::temp_dir().join(format!("enishi-smtp-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).map_err(TestkitError::Bind)?;
        let dir = TempDir(dir);
        let script = dir.0.join("smtp_sink.py");
        fs::write(&script, SCRIPT).map_err(TestkitError::Bind)?;
        let out = dir.0.join("received.jsonl");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                setup(format!("cannot run {}: {e}; {SMTP_INSTALL_HINT}", python.display()))
            })?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            let _ = child.wait();
            return Err(setup(format!(
                "the SMTP server did not start ({}); install aiosmtpd: {SMTP_INSTALL_HINT}",
                err.lines().last().unwrap_or("no output")
            )));
        };
        Ok(Self { child, _stdin: stdin, port, out, _dir: dir })
    }

    /// The port on 127.0.0.1.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, in order.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
