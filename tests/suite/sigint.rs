//! Ctrl-C on the real binary: the run stops, deletes what it labelled, writes a partial report
//! marked incomplete and exits 3. The emulator runs as its own process with injected API
//! latency so the run is certainly mid-way when the signal lands; the test waits for the
//! runner's own "tests to run" line, never for time.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> String {
    env!("CARGO_BIN_EXE_kfconform").to_string()
}

struct Reap(std::process::Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("emu.kubeconfig");
    let mut emu = Command::new(bin())
        .args(["emulator", "--fault", "latency=150ms", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let emu_out = emu.stdout.take().unwrap();
    let emu = Reap(emu);
    let mut emu_lines = BufReader::new(emu_out).lines();
    // The emulator prints its banner once the kubeconfig is written.
    assert!(
        emu_lines.any(|l| l.map(|l| l.contains("press Ctrl-C")).unwrap_or(false)),
        "emulator did not start"
    );

    let results = dir.path().join("results");
    let mut run = Command::new(bin())
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
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
    let out = Command::new(bin())
        .args(["cleanup", "--kubeconfig"])
        .arg(&kubeconfig)
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
