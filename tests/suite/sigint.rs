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

/// `kfconform run --kubeconfig K ARGS..` with stderr piped (and stdout as given).
fn spawn_run(kubeconfig: &std::path::Path, args: &[&str], stdout: Stdio) -> std::process::Child {
    util::kfconform()
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_second_ctrl_c_stops_waiting_and_prints_the_cleanup_command() {
    let emu = util::EmulatorProcess::start(&["--fault", "latency=150ms"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let out = out.to_str().unwrap();
    let mut run = spawn_run(
        &emu.kubeconfig,
        &["--parallel", "1", "-o", out],
        Stdio::null(),
    );
    let mut lines = BufReader::new(run.stderr.take().unwrap()).lines();
    let seen = |lines: &mut std::io::Lines<_>, needle: &str| {
        lines
            .by_ref()
            .any(|l: std::io::Result<String>| l.map(|l| l.contains(needle)).unwrap_or(false))
    };
    assert!(
        seen(&mut lines, "tests to run"),
        "run never reported its plan"
    );
    signal(run.id(), "-INT");
    assert!(seen(&mut lines, "interrupted: stopping tests"));
    signal(run.id(), "-INT");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(run.wait().unwrap().code(), Some(3), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted again") && l.contains("kfconform cleanup --run-id ")),
        "{rest:?}"
    );
    // What the line says finishes the job.
    let out = util::kfconform()
        .args(["cleanup", "--kubeconfig"])
        .arg(&emu.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn losing_the_cluster_mid_run_exits_3_with_an_incomplete_report() {
    let mut emu = util::EmulatorProcess::start(&["--fault", "latency=50ms"]);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let results_arg = results.to_str().unwrap();
    let args = [
        "--parallel",
        "1",
        "--profile",
        "kubeflow-26.03/training",
        "-o",
        results_arg,
    ];
    let mut run = spawn_run(&emu.kubeconfig, &args, Stdio::null());
    let mut lines = BufReader::new(run.stderr.take().unwrap()).lines();
    // Non-TTY progress prints one line per finished test ("[n/m] PASS ..."): the first pass
    // means the run is mid-way (one test at a time, eleven to run).
    let finished = lines
        .by_ref()
        .any(|l| l.map(|l| l.contains("] PASS")).unwrap_or(false));
    assert!(finished, "no test finished");
    emu.kill();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(run.wait().unwrap().code(), Some(3), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("lost the cluster")),
        "{rest:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["complete"], false);
}

#[test]
fn closed_stdout_and_stderr_never_stop_a_run_before_its_report() {
    let emu = util::EmulatorProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let results_arg = results.to_str().unwrap();
    let args = ["--profile", "kubeflow-26.03/profiles", "-o", results_arg];
    let mut run = spawn_run(&emu.kubeconfig, &args, Stdio::piped());
    // Both readers gone: every write the run makes meets a broken pipe.
    drop(run.stdout.take());
    drop(run.stderr.take());
    let status = run.wait().unwrap();
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "a closed pipe must not panic (101) or stop the run: {status:?}"
    );
    assert!(results.join("report.json").exists());
    let out = util::kfconform()
        .args(["cleanup", "--kubeconfig"])
        .arg(&emu.kubeconfig)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to clean up"),
        "{out:?}"
    );
}

#[test]
fn an_emulator_with_a_closed_stderr_still_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kfconform"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(dir.path().join("kubeconfig"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let stdout = child.stdout.take().unwrap();
    let serving = BufReader::new(stdout)
        .lines()
        .any(|l| l.map(|l| l.contains("press Ctrl-C")).unwrap_or(false));
    assert!(serving, "the emulator never served");
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert!(
        status.code().is_some(),
        "ended by the signal itself: {status:?}"
    );
}
