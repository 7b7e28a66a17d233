//! Where things are: the workspace root, the peer scripts, and the release server binary (built
//! once per test process with `cargo build --release -p signaling`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::HarnessError;

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// `tests/browser/peer.mjs`.
pub fn browser_script() -> PathBuf {
    workspace_root().join("tests/browser/peer.mjs")
}

/// `tests/peers/aiortc_peer.py`.
pub fn aiortc_script() -> PathBuf {
    workspace_root().join("tests/peers/aiortc_peer.py")
}

/// The virtualenv's interpreter, `.venv/bin/python`.
pub fn venv_python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

/// The release `signaling` binary the end-to-end tests run.
///
/// `RINGCAST_SERVER_BIN` names a prebuilt binary and skips the build. Otherwise the first call
/// in a process runs `cargo build --release -p signaling --bin signaling` (a no-op when it is up
/// to date) and takes the executable's path from cargo's JSON messages; later calls reuse it.
/// End-to-end tests measure frame rates, so they run the optimised build, never a debug one.
pub fn server_binary() -> Result<PathBuf, HarnessError> {
    if let Some(bin) = std::env::var_os("RINGCAST_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(HarnessError::NoBinary(bin))
        };
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| release_binary("signaling", "signaling").map_err(|e| e.to_string()))
        .clone()
        .map_err(|output| HarnessError::Build {
            status: "see output".into(),
            output,
        })
}

/// Builds the release binary `bin` of `package` (a no-op when up to date) and returns its path.
pub fn release_binary(package: &str, bin: &str) -> Result<PathBuf, HarnessError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    eprintln!(
        "[ringcast-tests] cargo build --release -p {package} --bin {bin} (no-op when up to date)"
    );
    let mut cmd = Command::new(&cargo);
    // `cargo test` runs tests with this package's CARGO_MANIFEST_DIR, CARGO_PKG_* etc. set.
    // Build scripts (ring's, via `rerun-if-env-changed`) track some of them, so passing them on
    // would rebuild half the release tree on every run and differ from a build from the shell.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let per_package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_CFG_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&&*k);
        if per_package {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json",
        ])
        .output()
        .map_err(|source| HarnessError::Spawn {
            what: format!("{cargo:?} build"),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = tail_lines(&stderr, 60);
        return Err(HarnessError::Build {
            status: out.status.to_string(),
            output: tail,
        });
    }
    // The last compiler-artifact message for the bin carries its path.
    let exe = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back();
    match exe {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(HarnessError::NoBinary(p)),
        None => Err(HarnessError::Build {
            status: out.status.to_string(),
            output: format!("cargo reported no executable for the `{bin}` bin"),
        }),
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
