//! The defect matrix: the clean emulator passes every test; each defect makes exactly the tests
//! that should catch it fail (verdict NOT CONFORMANT, exit 1); every catalog test is caught by
//! at least one defect, so no test is one that cannot fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use assert_cmd::Command;
use kfconform_emulator::Defect;
use serde_json::Value;

/// Which tests each defect must make fail, and nothing else.
fn expected() -> BTreeMap<Defect, BTreeSet<&'static str>> {
    BTreeMap::from([
        (
            Defect::PlatformOldKubernetes,
            BTreeSet::from(["platform/kubernetes-version"]),
        ),
        (
            Defect::PlatformMissingTrainjobCrd,
            BTreeSet::from(["platform/apis-served", "platform/crds-established"]),
        ),
        (
            Defect::PlatformExperimentCrdNotEstablished,
            BTreeSet::from(["platform/apis-served", "platform/crds-established"]),
        ),
        (
            Defect::PlatformPytorchjobSchemaDrift,
            BTreeSet::from([
                "platform/upstream-examples-accepted",
                // The drifted schema rejects every PyTorchJob the training tests create.
                "training/pytorchjob-succeeds",
                "training/pytorchjob-env-contract",
                "training/pytorchjob-failure",
                "training/pytorchjob-pod-labels",
            ]),
        ),
        (
            Defect::TrainingNoMasterAddr,
            BTreeSet::from([
                "training/pytorchjob-succeeds",
                "training/pytorchjob-env-contract",
            ]),
        ),
        (
            Defect::TrainingWrongWorldSize,
            BTreeSet::from([
                "training/pytorchjob-succeeds",
                "training/pytorchjob-env-contract",
            ]),
        ),
        (
            Defect::TrainingFailedJobSucceeds,
            BTreeSet::from(["training/pytorchjob-failure"]),
        ),
        (
            Defect::TrainingWrongReplicaLabels,
            BTreeSet::from(["training/pytorchjob-pod-labels"]),
        ),
        (
            Defect::TrainingMasterUnreachable,
            BTreeSet::from([
                "training/pytorchjob-succeeds",
                "training/pytorchjob-env-contract",
                "training/pytorchjob-pod-labels",
            ]),
        ),
        (
            Defect::TrainingNoPetNnodes,
            BTreeSet::from(["training/pytorchjob-env-contract"]),
        ),
        (
            Defect::TrainingNoTorchDistributedRuntime,
            BTreeSet::from([
                "training/torch-distributed-runtime",
                "training/trainjob-torch-contract",
                "training/trainjob-failure",
            ]),
        ),
        (
            Defect::TrainingNoPetNodeRank,
            BTreeSet::from(["training/trainjob-torch-contract"]),
        ),
        (
            Defect::TrainingTrainjobFailureIgnored,
            BTreeSet::from(["training/trainjob-failure"]),
        ),
        (
            Defect::ProfilesNoOwnerReference,
            BTreeSet::from([
                "profiles/namespace-owned",
                "profiles/deletion-removes-namespace",
            ]),
        ),
        (
            Defect::ProfilesNoAdminBinding,
            BTreeSet::from(["profiles/owner-admin-binding", "profiles/member-isolation"]),
        ),
        (
            Defect::ProfilesAdminBindingUnannotated,
            BTreeSet::from(["profiles/owner-admin-binding"]),
        ),
        (
            Defect::ProfilesNoDefaultEditor,
            BTreeSet::from(["profiles/default-service-accounts"]),
        ),
        (
            Defect::ProfilesViewerCanEdit,
            BTreeSet::from([
                "profiles/default-service-accounts",
                "profiles/default-service-account-permissions",
            ]),
        ),
        (
            Defect::ProfilesEditRoleNotAggregated,
            BTreeSet::from([
                "profiles/roles-aggregate",
                "profiles/default-service-account-permissions",
                "profiles/contributor-access",
            ]),
        ),
        (
            Defect::ProfilesNonMembersAllowed,
            BTreeSet::from([
                "profiles/member-isolation",
                "profiles/default-service-account-permissions",
                "profiles/contributor-access",
            ]),
        ),
        (
            Defect::ProfilesNoResourceQuota,
            BTreeSet::from(["profiles/resource-quota"]),
        ),
        (
            Defect::ProfilesFinalizerStuck,
            BTreeSet::from(["profiles/deletion-removes-namespace"]),
        ),
        (
            Defect::ProfilesContributorBindingsPruned,
            BTreeSet::from(["profiles/contributor-access"]),
        ),
        (
            Defect::ProfilesMissingNamespaceLabels,
            BTreeSet::from(["profiles/namespace-labels"]),
        ),
    ])
}

fn run(out: &Path, defects: &[Defect]) -> (i32, Value) {
    let mut cmd = Command::cargo_bin("kfconform").unwrap();
    cmd.args(["run", "--emulator", "-o"])
        .arg(out)
        .env_remove("KUBECONFIG");
    for d in defects {
        cmd.args(["--defect", d.name()]);
    }
    let output = cmd
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report.json ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let report: Value = serde_json::from_str(&text).unwrap();
    kfconform_suite::report::validate_report_json(&report)
        .unwrap_or_else(|e| panic!("report.json invalid: {e:?}"));
    (output.status.code().unwrap_or(-1), report)
}

fn with_status<'a>(report: &'a Value, status: &str) -> BTreeSet<&'a str> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn clean_emulator_is_conformant() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = run(dir.path(), &[]);
    let not_passed: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "passed")
        .map(|r| format!("{} {}: {}", r["id"], r["status"], r["message"]))
        .collect();
    assert!(not_passed.is_empty(), "clean emulator: {not_passed:#?}");
    assert_eq!(code, 0);
    assert_eq!(report["verdicts"][0]["conformant"], true);
    assert_eq!(report["complete"], true);
    assert!(dir.path().join("junit.xml").exists());
    assert!(
        !dir.path().join("evidence").exists(),
        "no evidence when everything passes"
    );
}

/// Defect runs at once: most of a defect run is waiting for a test's timeout to expire, so
/// running several together keeps the matrix short without loading the machine.
const CONCURRENT_RUNS: usize = 6;

#[test]
fn each_defect_fails_exactly_its_tests() {
    let cases: Vec<(Defect, BTreeSet<&'static str>)> = expected().into_iter().collect();
    // A work queue, so one slow defect run does not hold back a whole batch.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CONCURRENT_RUNS)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((defect, want)) = cases.get(i) else {
                            return found;
                        };
                        found.extend(check_defect(*defect, want));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs the suite with one defect; returns what differs from `want`.
fn check_defect(defect: Defect, want: &BTreeSet<&'static str>) -> Vec<String> {
    let catalog = kfconform_suite::catalog::Catalog::embedded().unwrap();
    let mut problems = Vec::new();
    {
        let dir = tempfile::tempdir().unwrap();
        let (code, report) = run(dir.path(), &[defect]);
        let failed = with_status(&report, "failed");
        let errored = with_status(&report, "error");
        if failed != want.iter().copied().collect() || !errored.is_empty() {
            problems.push(format!(
                "{defect}: want failed {want:?}, got failed {failed:?} error {errored:?}"
            ));
        }
        // A defect only should-level tests catch is reported, not fatal: the verdict stays
        // conformant and the exit code 0.
        let breaks_must = want.iter().any(|id| {
            catalog
                .tests
                .iter()
                .any(|t| t.id == *id && t.level == kfconform_suite::catalog::Level::Must)
        });
        let (want_code, want_conformant) = if breaks_must { (1, false) } else { (0, true) };
        if code != want_code || report["verdicts"][0]["conformant"] != want_conformant {
            problems.push(format!(
                "{defect}: exit {code}, verdict {}",
                report["verdicts"][0]
            ));
        }
        // Every failure carries evidence a vendor can read.
        for r in report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "failed")
        {
            let files = r["evidence"].as_array().unwrap();
            if files.is_empty() || r["message"].as_str().unwrap_or("").is_empty() {
                problems.push(format!(
                    "{defect}: {} failed without message or evidence",
                    r["id"]
                ));
            }
            for f in files {
                assert!(dir.path().join(f.as_str().unwrap()).exists(), "{f} missing");
            }
        }
    }
    problems
}

#[test]
fn every_catalog_test_is_caught_by_some_defect() {
    let catalog = kfconform_suite::catalog::Catalog::embedded().unwrap();
    let caught: BTreeSet<&str> = expected().values().flatten().copied().collect();
    let uncaught: Vec<&str> = catalog
        .tests
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !caught.contains(id))
        .collect();
    assert!(
        uncaught.is_empty(),
        "tests no defect catches (tests that cannot fail): {uncaught:?}"
    );
    let all: BTreeSet<Defect> = Defect::ALL.iter().copied().collect();
    let covered: BTreeSet<Defect> = expected().keys().copied().collect();
    assert_eq!(
        all, covered,
        "every defect needs an expectation in this matrix"
    );
}
