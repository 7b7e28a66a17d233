//! Checks that the tools a test needs are installed. A missing tool fails the test with the
//! install command in the message; nothing is ever skipped.

use std::path::PathBuf;
use std::process::Command;

use crate::{HarnessError, paths};

/// Where Debian installs Chromium; `CHROMIUM` overrides.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Node, playwright-core in tests/browser/node_modules, and Chromium.
pub fn check_browser() -> Result<(), HarnessError> {
    let missing = |what: String| Err(HarnessError::MissingDependency { what });
    if !runs("node", &["--version"]) {
        return missing("`node` (Debian package nodejs) is not on PATH".into());
    }
    let pw =
        paths::workspace_root().join("tests/browser/node_modules/playwright-core/package.json");
    if !pw.is_file() {
        return missing(format!("{} (npm ci in tests/browser)", pw.display()));
    }
    let chromium = chromium_path();
    if !chromium.is_file() {
        return missing(format!("{} (Debian package chromium)", chromium.display()));
    }
    Ok(())
}

/// The virtualenv with aiortc, av and numpy.
pub fn check_aiortc() -> Result<(), HarnessError> {
    let py = paths::venv_python();
    if !py.is_file() {
        return Err(HarnessError::MissingDependency {
            what: format!("{} (Python virtualenv with aiortc)", py.display()),
        });
    }
    let py = py.to_string_lossy().into_owned();
    if !runs(&py, &["-c", "import aiortc, aioice, av, numpy"]) {
        return Err(HarnessError::MissingDependency {
            what: format!(
                "aiortc/aioice/av/numpy importable from {py} (pip install -r tests/peers/requirements.txt)"
            ),
        });
    }
    Ok(())
}

/// Panics with a clear message unless Chromium and its driver script can run.
#[track_caller]
pub fn require_browser() {
    if let Err(e) = check_browser() {
        panic!("{e}");
    }
}

/// Panics with a clear message unless the aiortc peer can run.
#[track_caller]
pub fn require_aiortc() {
    if let Err(e) = check_aiortc() {
        panic!("{e}");
    }
}

/// Panics with the install command unless `tests/<dir>/node_modules` has every one of `modules`
/// (`npm ci` there, run by scripts/install-test-deps.sh).
#[track_caller]
pub fn require_node_modules(dir: &str, modules: &[&str]) {
    let base = crate::paths::workspace_root()
        .join("tests")
        .join(dir)
        .join("node_modules");
    for m in modules {
        assert!(
            base.join(m).is_dir(),
            "tests/{dir}/node_modules/{m} is missing: run scripts/install-test-deps.sh (npm ci in tests/{dir})"
        );
    }
}
