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
            http_requests: BTreeMap::new(),
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

/// Asserts that `value` is valid against the JSON Schema `reports/<schema>` (formats checked),
/// the schema a documented `--format json` output promises.
#[track_caller]
pub fn assert_matches_schema(schema: &str, value: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reports")
        .join(schema);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::draft202012::meta::validate(&schema).unwrap();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match {}:\n{}\n{value:#}",
        "output",
        path.display(),
        errors.join("\n")
    );
}

/// The JSON a command printed on stdout.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Asserts that `out` is a usage error (exit 2) with nothing on stdout and exactly one line on
/// stderr containing `needle`.
#[track_caller]
pub fn assert_usage_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "not one line:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

/// PRODUCT.yaml of the signed submission fixtures.
pub const PRODUCT_YAML_TEXT: &str = "vendor: Example Corp\nproduct: Example Kubeflow\nversion: 1.2.3\nkubeflow_release: \"26.03\"\nwebsite_url: https://example.com\ndocumentation_url: https://example.com/docs\nrepository_url: https://example.com/repo\ncontact_email: conformance@example.com\ntype: distribution\n";

/// A signed submission under one directory: `results/` (a conformant run of
/// [`CERTIFIABLE_PROFILE`] signed with the product), `submission.tar.gz` packed from it, and
/// the key pair in `keys/`.
pub struct Submission {
    pub work: tempfile::TempDir,
    pub results: std::path::PathBuf,
    pub bundle: std::path::PathBuf,
    pub public_key: std::path::PathBuf,
}

impl Submission {
    /// Writes, signs and packs it.
    pub fn new(run_id: &str) -> Submission {
        let work = tempfile::TempDir::new().unwrap();
        let results = work.path().join("results");
        kfconform_suite::report::write_report(
            &results,
            &conformant_report(run_id, "kfconform run -o results"),
        )
        .unwrap();
        let (private, public_key) =
            kfconform_suite::report::keys::write_keypair(&work.path().join("keys")).unwrap();
        let key = SigningKey::load(&private).unwrap();
        let product_path = work.path().join("PRODUCT.yaml");
        std::fs::write(&product_path, PRODUCT_YAML_TEXT).unwrap();
        let product = kfconform_suite::report::bundle::load_product(&product_path, None).unwrap();
        resign(&results, &key, Some(product.to_json()));
        let bundle = kfconform_suite::report::bundle::pack(
            &results,
            &product_path,
            &work.path().join("submission.tar.gz"),
        )
        .unwrap();
        Submission {
            work,
            results,
            bundle,
            public_key,
        }
    }

    /// A copy of the bundle cut to half its bytes, as an interrupted download leaves it.
    pub fn truncated_bundle(&self) -> std::path::PathBuf {
        let bytes = std::fs::read(&self.bundle).unwrap();
        let cut = self.work.path().join("truncated.tar.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        cut
    }

    /// A file of junk named like a bundle.
    pub fn junk_bundle(&self) -> std::path::PathBuf {
        let junk = self.work.path().join("junk.tar.gz");
        std::fs::write(&junk, "this is not a tarball\n").unwrap();
        junk
    }
}
