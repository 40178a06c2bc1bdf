//! Helpers shared by this binary's topic modules: the `kfconform` command, emulator runs and
//! their reports, and the fixtures and tampering of the signing, verify and bundle tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use kfconform_suite::catalog::Catalog;
use kfconform_suite::report::dsse::{sign, statement_for, write_envelope};
use kfconform_suite::report::keys::SigningKey;
use kfconform_suite::report::verify::Verification;
use kfconform_suite::report::{
    REPORT_JSON, REPORT_SCHEMA_ID, Report, RunConfig, Status, TargetFacts, TestResult,
    compute_verdict, load_report_any, summarize,
};
use serde_json::Value;

/// Safety net for one `kfconform` process: a hung one fails the test.
const PROCESS_WAIT: Duration = Duration::from_secs(300);

/// The `kfconform` binary, without the environment's KUBECONFIG and colours.
pub fn kfconform() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_kfconform"));
    c.env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .timeout(PROCESS_WAIT);
    c
}

/// `kfconform run --emulator -o OUT ARGS..` (of [`CERTIFIABLE_PROFILE`] unless ARGS name a
/// profile); asserts it exits `code`.
pub fn run_emulator(out: &Path, args: &[&str], code: i32) -> Output {
    let mut cmd = kfconform();
    cmd.args(["run", "--emulator", "-o"]).arg(out).args(args);
    if !args.contains(&"--profile") {
        cmd.args(["--profile", CERTIFIABLE_PROFILE]);
    }
    cmd.assert().code(code).get_output().clone()
}

/// [`run_emulator`], returning the report it wrote.
pub fn run_report(out: &Path, args: &[&str], code: i32) -> Report {
    run_emulator(out, args, code);
    load_report_any(out).unwrap()
}

/// The report.json in `dir` as it is, not checked against the schema (tampered ones too).
pub fn report_in(dir: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join(REPORT_JSON)).unwrap()).unwrap()
}

/// Signs whatever report.json, junit.xml and evidence are in `dir` now with `key`, as a
/// tamperer who holds the key would; `product` goes into the statement.
pub fn resign(dir: &Path, key: &SigningKey, product: Option<Value>) {
    let statement = statement_for(dir, &report_in(dir), product).unwrap();
    write_envelope(dir, &sign(&statement, key)).unwrap();
}

/// Asserts that verification failed with a problem containing `needle`; returns that problem.
#[track_caller]
pub fn assert_problem(v: &Verification, needle: &str) -> String {
    assert!(!v.ok(), "verified although {needle:?} was expected");
    v.problems
        .iter()
        .find(|p| p.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no problem containing {needle:?} in {:#?}", v.problems))
}

/// Flips the lowest bit of the byte at `at` (the last byte when the file is shorter).
pub fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// A profile the catalog can certify (the release profile cannot until every component has
/// tests), which the signed-report fixtures claim.
pub const CERTIFIABLE_PROFILE: &str = "kubeflow-26.03/training";

/// A complete, conformant run of [`CERTIFIABLE_PROFILE`], consistent with this catalog.
pub fn conformant_report(run_id: &str, command: &str) -> Report {
    let catalog = Catalog::embedded().unwrap();
    let profile = catalog.profile(CERTIFIABLE_PROFILE).unwrap();
    let results: Vec<TestResult> = catalog
        .tests
        .iter()
        .filter(|t| profile.components.contains(&t.component))
        .map(|t| TestResult {
            id: t.id.clone(),
            component: t.component.clone(),
            title: t.title.clone(),
            level: t.level,
            features: t.features.clone(),
            status: Status::Passed,
            message: String::new(),
            duration_seconds: 1.5,
            attempts: 1,
            evidence: Vec::new(),
            api_requests: BTreeMap::from([("get".to_string(), 3)]),
            previous: Vec::new(),
        })
        .collect();
    let verdict = compute_verdict(&profile, &results, true);
    assert!(verdict.conformant);
    Report {
        schema: REPORT_SCHEMA_ID.to_string(),
        run_id: run_id.to_string(),
        suite_version: kfconform_suite::SUITE_VERSION.to_string(),
        catalog_digest: catalog.digest.clone(),
        started_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 30, 0).unwrap(),
        finished_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 41, 0).unwrap(),
        complete: true,
        target: TargetFacts {
            server: "https://127.0.0.1:6443".to_string(),
            kubernetes_version: "v1.35.0".to_string(),
            platform: "linux/amd64".to_string(),
            kubeflow_apis: BTreeMap::new(),
            features: Vec::new(),
            features_overridden: false,
        },
        config: RunConfig {
            profile: profile.name.clone(),
            components: Vec::new(),
            focus: Vec::new(),
            skip: Vec::new(),
            parallel: 4,
            timeout_scale: 1.0,
            probe_image: "ghcr.io/example/kfconform:0.1.0".to_string(),
            emulator: false,
            defects: Vec::new(),
            command: command.to_string(),
        },
        summary: summarize(&results),
        verdicts: vec![verdict],
        results,
        merged: None,
    }
}
