//! The harness's error type: what went wrong starting, talking to or stopping a process.

use std::path::PathBuf;

/// Errors of the end-to-end harness. Messages carry the context a failing test needs (the
/// server's stderr, the command that failed, the install hint). `Debug` prints the same text as
/// `Display`, so `.expect()` in a test shows the server's stderr as lines, not one escaped string.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// A tool or package the suite needs is not installed.
    #[error(
        "missing test dependency: {what}. Run scripts/install-test-deps.sh (or scripts/test.sh)"
    )]
    MissingDependency { what: String },
    /// Building the release server failed.
    #[error("`cargo build --release -p signaling` failed ({status}):\n{output}")]
    Build { status: String, output: String },
    /// The server binary is not where it should be.
    #[error("server binary not found at {0}")]
    NoBinary(PathBuf),
    /// Spawning a process failed.
    #[error("cannot spawn {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    /// The server exited or never became healthy.
    #[error("server did not become ready: {reason}\n--- server stderr ---\n{stderr}")]
    Startup { reason: String, stderr: String },
    /// No free port range could be found.
    #[error("no free ports: {0}")]
    Ports(String),
    /// An HTTP request failed below the HTTP layer (connect, I/O).
    #[error("HTTP {method} {url}: {reason}")]
    Http {
        method: String,
        url: String,
        reason: String,
    },
    /// `/metrics` could not be parsed.
    #[error("bad /metrics line {line:?}: {reason}")]
    Metrics { line: String, reason: String },
    /// A process did not exit in time.
    #[error("{what} did not exit within {secs:.1}s")]
    Timeout { what: String, secs: f64 },
    /// Any other I/O error.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}
