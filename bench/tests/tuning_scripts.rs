//! The host tuning scripts (tuning/*.sh) under test: tuning/test.sh runs every script with
//! --check on this host and checks each script's decisions and idempotency on fake /proc, /sys
//! and /etc trees; the profile summary line that benchmarks record is checked here too.

use std::path::PathBuf;
use std::process::Command;

fn tuning_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tuning")
}

#[test]
fn tuning_scripts_pass_their_shell_tests() {
    let out = Command::new("bash")
        .arg(tuning_dir().join("test.sh"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success() && last.ends_with(" 0 failed"),
        "tuning/test.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let passed: u32 = last
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 50, "only {passed} checks ran:\n{stdout}");
}

#[test]
fn profile_summary_is_one_line_naming_the_profile_and_every_area() {
    let out = Command::new("bash")
        .arg(tuning_dir().join("apply.sh"))
        .arg("--summary")
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "apply.sh --summary: {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    let line = lines[0];
    let profile = line
        .strip_prefix("profile=")
        .and_then(|r| r.split_whitespace().next());
    assert!(
        matches!(profile, Some("tuned" | "default" | "partial")),
        "{line}"
    );
    for key in [
        "sysctl=",
        "busy_poll=",
        "memlock=",
        "irq=",
        "cpu_governor=",
        "isolation=",
        "kernel=",
    ] {
        assert!(line.contains(key), "{key} missing from {line}");
    }
}
