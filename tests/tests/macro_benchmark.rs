//! The side-by-side macro benchmark end to end, small: `bench macro` sets up the network
//! namespaces, starts Ringcast and then Janus (Debian's package, installed by
//! scripts/install-bench-deps.sh), drives each with the same loadgen workload, and reports both.
//! This proves the anchor comparison works on this machine; the numbers themselves are checked by
//! running the benchmark (docs/BENCHMARKS.md), not here.

use std::process::Command;

use ringcast_tests::{media_lock, paths};

#[test]
fn macro_benchmark_drives_ringcast_and_janus_with_the_same_workload() {
    assert!(
        std::path::Path::new("/usr/bin/janus").exists(),
        "Janus is missing: run scripts/install-bench-deps.sh (or scripts/test.sh)"
    );
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the macro benchmark needs root for ip netns"
    );
    let _media = media_lock();
    paths::release_binary("signaling", "signaling").expect("signaling builds");
    paths::release_binary("loadgen", "loadgen").expect("loadgen builds");
    let bench = paths::release_binary("bench", "bench").expect("bench builds");
    let dir = std::env::temp_dir().join(format!("ringcast-macro-test-{}", std::process::id()));
    let json = dir.join("report.json");
    let out = Command::new(&bench)
        .current_dir(paths::workspace_root())
        .args([
            "macro",
            "--servers",
            "ringcast,janus",
            "--subscribers",
            "3",
            "--duration",
            "3",
        ])
        .args(["--settle", "2", "--json"])
        .arg(&json)
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench macro failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report written"))
            .expect("report is JSON");
    let servers = report["servers"].as_array().expect("servers");
    let names: Vec<&str> = servers
        .iter()
        .filter_map(|s| s["server"].as_str())
        .collect();
    assert_eq!(names, ["ringcast", "janus"], "{stdout}");
    for s in servers {
        let p = &s["points"][0];
        let name = s["server"].as_str().unwrap_or("?");
        assert_eq!(p["joins_failed"], 0, "{name}: {p}");
        assert_eq!(
            p["receiving_at_end"], 3,
            "{name}: every subscriber receives media: {p}"
        );
        assert!(
            p["loss_ratio"].as_f64().is_some_and(|l| l < 0.01),
            "{name}: loss {p}"
        );
        assert!(
            p["egress_pps"].as_f64().is_some_and(|e| e > 200.0),
            "{name}: egress {p}"
        );
        assert!(
            p["cpu_s_per_mpkt"].as_f64().is_some_and(|c| c > 0.0),
            "{name}: cpu {p}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
