//! Ctrl-C on the real binary: the run stops, deletes what it labelled, writes a partial report
//! marked incomplete and exits 3. The emulator runs as its own process with injected API
//! latency so the run is certainly mid-way when the signal lands; the test waits for the
//! runner's own "tests to run" line, never for time.

#![cfg(unix)]

use crate::util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

#[test]
fn sigint_mid_run_cleans_up_and_marks_the_report_incomplete() {
    // Returns once serving, which it says after writing the kubeconfig.
    let emu = util::EmulatorProcess::start(&["--fault", "latency=150ms"]);
    let kubeconfig = &emu.kubeconfig;

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let mut run = util::kfconform()
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--parallel", "1", "-o"])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = run.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let planned = lines
        .by_ref()
        .any(|l| l.map(|l| l.contains("tests to run")).unwrap_or(false));
    assert!(planned, "run never reported its plan");
    signal(run.id(), "-INT");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "interrupted run must exit 3; stderr after signal:\n{}",
        rest.join("\n")
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["complete"], false);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["message"].as_str().unwrap_or("").contains("interrupted"))
    );

    // Nothing labelled is left on the cluster.
    let out = util::kfconform()
        .args(["cleanup", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("nothing to clean up"),
        "leftovers after an interrupted run: {text}"
    );
    drop(emu);
}
