//! The vendor's loop: an output directory never mixes two runs, `--rerun-failed` completes a
//! failed run with a merged report, `--dry-run` shows the plan and creates nothing, and a test
//! stopped by its timeout keeps the evidence a failed one does.

use crate::util::{self, kfconform, run_emulator, run_report};

use kfconform_suite::report::{Status, validate_report_json};

/// A defect that fails two training tests of the certifiable sub-profile.
const DEFECT: &str = "training.no-master-addr";

#[test]
fn an_output_directory_holding_an_earlier_run_is_refused_until_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let focus = ["--focus", "platform/kubernetes-version"];
    let first = run_report(&out, &focus, 1);
    std::fs::write(out.join("notes.txt"), "the vendor's own file").unwrap();
    let before = std::fs::read(out.join("report.json")).unwrap();

    let again = run_emulator(&out, &focus, 2);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("holds an earlier run (report.json, junit.xml, report.html)")
            && stderr.contains("--replace"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), before);

    let replaced = run_report(&out, &["--replace", focus[0], focus[1]], 1);
    assert_ne!(replaced.run_id, first.run_id);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "the vendor's own file"
    );
}

#[test]
fn rerun_failed_runs_only_what_failed_and_merges_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let (first_dir, merged_dir) = (dir.path().join("first"), dir.path().join("merged"));
    let first = run_report(&first_dir, &["--defect", DEFECT], 1);
    let failed: Vec<&str> = first
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");

    let out = kfconform()
        .args(["run", "--emulator", "--rerun-failed"])
        .arg(&first_dir)
        .arg("-o")
        .arg(&merged_dir)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "merged with run {}: 2 test(s) run again",
            first.run_id
        )) && stdout.contains(&format!(
            "profile {}: CONFORMANT",
            util::CERTIFIABLE_PROFILE
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("not selected"), "{stdout}");

    let text = std::fs::read_to_string(merged_dir.join("report.json")).unwrap();
    validate_report_json(&serde_json::from_str(&text).unwrap()).unwrap();
    let merged = util::report_in(&merged_dir);
    let m = merged.merged.as_ref().expect("the merge is recorded");
    assert_eq!(m.from_run_id, first.run_id);
    assert_eq!(m.rerun, failed);
    assert!(merged.complete && merged.verdicts[0].conformant);
    assert_eq!(merged.config.profile, first.config.profile);
    assert_eq!(merged.config.defects, vec![DEFECT.to_string()]);
    assert_eq!(merged.results.len(), first.results.len());
    for (old, new) in first.results.iter().zip(&merged.results) {
        assert_eq!(old.id, new.id);
        if failed.contains(&old.id.as_str()) {
            assert_eq!(new.status, Status::Passed, "{}", new.id);
            assert_eq!(new.attempts, old.attempts + 1);
            assert_eq!(new.previous.len(), 1);
            assert_eq!(new.previous[0].run_id, first.run_id);
            assert_eq!(new.previous[0].status, Status::Failed);
            assert_eq!(new.previous[0].message, old.message);
        } else {
            assert_eq!(old, new, "results not rerun are carried over as they were");
        }
    }
}

#[test]
fn rerun_failed_refuses_what_it_cannot_merge() {
    let dir = tempfile::tempdir().unwrap();
    let passed = dir.path().join("passed");
    run_report(&passed, &[], 0);
    let cases: [(&[&str], &str); 3] = [
        (
            &["--emulator"],
            "has no failed or errored test to run again",
        ),
        (
            &[],
            "was made with target the emulator, this run uses a cluster",
        ),
        (&["--emulator", "--focus", "x"], "cannot be used with"),
    ];
    for (args, needle) in cases {
        let out = kfconform()
            .arg("run")
            .args(args)
            .arg("--rerun-failed")
            .arg(&passed)
            .arg("-o")
            .arg(dir.path().join("again"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let missing = kfconform()
        .args(["run", "--emulator", "--rerun-failed"])
        .arg(dir.path().join("nowhere"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--rerun-failed") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

#[test]
fn dry_run_prints_the_plan_with_each_skip_reason_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("results");
    let out = kfconform()
        .args([
            "run",
            "--emulator",
            "--dry-run",
            "--features",
            "profiles.profile",
        ])
        .args([
            "--profile",
            "kubeflow-26.03",
            "--skip",
            "profiles/member-isolation",
        ])
        .arg("-o")
        .arg(&out_dir)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    insta::assert_snapshot!(port.replace_all(&stdout, "127.0.0.1:PORT"));
    assert!(!out_dir.exists(), "a dry run writes nothing");
}

#[test]
fn keep_namespaces_needs_a_cluster_that_outlives_the_run() {
    let out = kfconform()
        .args(["run", "--emulator", "--keep-namespaces"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--keep-namespaces"), "{stderr}");
}

#[test]
fn a_test_stopped_by_its_window_keeps_its_objects_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    // Pods that take a minute to start, and a window of 300 s × 0.02 = 6 s: the test runs out
    // of time while its PyTorchJob waits for pods, having recorded nothing itself; the runner
    // collects the namespace's objects and events (the same path a hard timeout takes).
    let args = [
        "--pod-startup",
        "60s",
        "--timeout-scale",
        "0.02",
        "--focus",
        "training/pytorchjob-succeeds",
    ];
    let report = run_report(&out, &args, 1);
    let r = report
        .results
        .iter()
        .find(|r| r.id == "training/pytorchjob-succeeds")
        .unwrap();
    assert_ne!(r.status, Status::Passed);
    assert!(
        r.message.contains("within") || r.message.contains("timed out"),
        "{}",
        r.message
    );
    for file in [
        "events.json",
        "objects-pods.json",
        "objects-pytorchjobs.kubeflow.org.json",
    ] {
        let name = format!("evidence/training/pytorchjob-succeeds/{file}");
        assert!(r.evidence.contains(&name), "{name} in {:?}", r.evidence);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(&name)).unwrap()).unwrap();
        assert!(
            v.as_array().is_some_and(|a| !a.is_empty()),
            "{name} is empty"
        );
    }
}
