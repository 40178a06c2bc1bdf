//! `verify_results` / `verify_path`: a reviewer's checks on a signed results directory. Every
//! tamper case must fail with the precise reason, including those only the verdict
//! recomputation (step 7) can see because the tamperer re-signed with the trusted key.

use crate::util;

use std::fs;
use std::path::Path;

use crate::util::CERTIFIABLE_PROFILE;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kfconform_suite::catalog::{Catalog, Level};
use kfconform_suite::report::dsse::{
    DSSE_JSON, Envelope, add_signature, read_envelope, sign, statement_for, write_envelope,
};
use kfconform_suite::report::keys::{PublicKey, SigningKey, generate};
use kfconform_suite::report::verify::{Verification, verify_path, verify_results};
use kfconform_suite::report::{
    JUNIT_XML, REPORT_HTML, REPORT_JSON, Report, Status, compute_verdict, summarize, to_junit,
    write_report,
};
use tempfile::TempDir;

const EVIDENCE: &str = "evidence/platform/notes/run.log";

/// A complete, conformant run of the default profile, consistent with this catalog.
fn conformant_report() -> Report {
    util::conformant_report(
        "kfc-verify",
        "kfconform run --output results --key kfconform.key",
    )
}

/// Writes `report` (report.json, junit.xml, report.html and one evidence file its first result
/// names) and signs it with `key`.
fn signed_dir(report: &Report, key: &SigningKey) -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut report = report.clone();
    report.results[0].evidence.push(EVIDENCE.to_string());
    write_report(dir.path(), &report).unwrap();
    let evidence = dir.path().join(EVIDENCE);
    fs::create_dir_all(evidence.parent().unwrap()).unwrap();
    fs::write(evidence, "everything fine\n").unwrap();
    util::resign(dir.path(), key, None);
    dir
}

/// Rewrites report.json, junit.xml and report.html from `edit`ed report, then re-signs.
fn rewrite_and_resign(dir: &Path, key: &SigningKey, edit: impl FnOnce(&mut Report)) {
    let mut report = util::report_in(dir);
    edit(&mut report);
    // A result dropped with its evidence: the tamperer removes that file too, or signing refuses.
    let named = report
        .results
        .iter()
        .any(|r| r.evidence.iter().any(|e| e == EVIDENCE));
    if !named && dir.join(EVIDENCE).exists() {
        fs::remove_file(dir.join(EVIDENCE)).unwrap();
    }
    write_report(dir, &report).unwrap();
    util::resign(dir, key, None);
}

fn trusted(key: &SigningKey) -> Vec<PublicKey> {
    vec![key.public()]
}

fn assert_ok(v: &Verification) {
    assert!(v.ok(), "{:#?}", v.problems);
    assert!(v.checks.iter().all(|c| c.ok), "{:#?}", v.checks);
}

/// Fails unless some problem line contains `needle`; returns that line.
#[track_caller]
fn check<'a>(v: &'a Verification, name: &str) -> &'a kfconform_suite::report::verify::Check {
    v.checks.iter().find(|c| c.name == name).unwrap()
}

/// A required test of the default profile (a `must` whose features the profile requires).
fn required_test() -> String {
    let catalog = Catalog::embedded().unwrap();
    let profile = catalog.profile(CERTIFIABLE_PROFILE).unwrap();
    catalog
        .tests
        .iter()
        .find(|t| {
            t.level == Level::Must
                && profile.components.contains(&t.component)
                && t.features
                    .iter()
                    .all(|f| profile.required_features.contains(f))
        })
        .unwrap()
        .id
        .clone()
}

#[test]
fn a_signed_conformant_run_verifies() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let v = verify_results(dir.path(), &trusted(&key));
    assert_ok(&v);
    assert_eq!(v.signers, vec![key.public().key_id()]);
    assert_eq!(v.verdicts.len(), 1);
    assert!(v.verdicts[0].conformant);
    assert_eq!(v.verdicts[0].profile, CERTIFIABLE_PROFILE);
    let names: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envelope",
            "signature",
            "subjects",
            "schema",
            "statement",
            "junit",
            "verdict",
            "certification"
        ]
    );
    // A directory given to verify_path is verified in place.
    let again = verify_path(dir.path(), &trusted(&key)).unwrap();
    assert_ok(&again);

    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["checks"][0]["name"], "envelope");
    assert_eq!(json["verdicts"][0]["conformant"], true);
    assert_eq!(json["signers"][0], key.public().key_id());
}

#[test]
fn a_countersigned_run_names_only_trusted_signers() {
    let vendor = generate();
    let stranger = generate();
    let dir = signed_dir(&conformant_report(), &stranger);
    let mut env = read_envelope(&dir.path().join(DSSE_JSON)).unwrap();
    add_signature(&mut env, &vendor).unwrap();
    write_envelope(dir.path(), &env).unwrap();
    let v = verify_results(dir.path(), &trusted(&vendor));
    assert_ok(&v);
    assert_eq!(v.signers, vec![vendor.public().key_id()]);
}

#[test]
fn missing_and_malformed_envelopes() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let path = dir.path().join(DSSE_JSON);
    let text = fs::read_to_string(&path).unwrap();

    fs::write(&path, &text[..text.len() / 2]).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    let p = util::assert_problem(&v, "report.dsse.json: malformed:");
    assert!(!p.contains('\n'));
    assert!(!check(&v, "signature").ok);
    assert!(check(&v, "signature").detail.starts_with("not checked"));

    fs::remove_file(&path).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "report.dsse.json: missing");
    // The unsigned report is still checked, so the reviewer learns everything at once.
    assert!(check(&v, "schema").ok);
    assert!(check(&v, "junit").ok);
    assert!(check(&v, "verdict").ok);
}

#[test]
fn an_untrusted_signer_is_refused() {
    let vendor = generate();
    let impostor = generate();
    let dir = signed_dir(&conformant_report(), &impostor);
    let v = verify_results(dir.path(), &trusted(&vendor));
    util::assert_problem(&v, "report.dsse.json: no signature by a trusted key");
    assert!(v.signers.is_empty());
    // Everything else is intact: the signature is the only problem.
    assert_eq!(v.problems.len(), 1, "{:#?}", v.problems);

    let v = verify_results(dir.path(), &[]);
    util::assert_problem(&v, "no trusted public keys given");
}

#[test]
fn a_swapped_payload_type_is_refused_once() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let path = dir.path().join(DSSE_JSON);
    let mut env: Envelope = read_envelope(&path).unwrap();
    env.payload_type = "application/json".to_string();
    fs::write(&path, env.to_json_pretty()).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    let p = util::assert_problem(&v, "payloadType");
    assert!(p.starts_with("report.dsse.json: "), "{p}");
    assert_eq!(
        v.problems
            .iter()
            .filter(|p| p.contains("payloadType"))
            .count(),
        1,
        "{:#?}",
        v.problems
    );
}

#[test]
fn a_changed_payload_breaks_the_signature() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let path = dir.path().join(DSSE_JSON);
    let mut env = read_envelope(&path).unwrap();
    let payload = STANDARD.decode(&env.payload).unwrap();
    let text = String::from_utf8(payload)
        .unwrap()
        .replace("kfc-verify", "kfc-forged");
    env.payload = STANDARD.encode(text);
    fs::write(&path, env.to_json_pretty()).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "no signature by a trusted key");
    util::assert_problem(
        &v,
        "report.dsse.json: predicate.run_id differs from report.json",
    );
}

#[test]
fn a_flipped_byte_in_any_signed_file_is_caught() {
    let key = generate();
    for (name, at) in [
        (REPORT_JSON, 40),
        (JUNIT_XML, 200),
        (REPORT_HTML, 300),
        (EVIDENCE, 3),
    ] {
        let dir = signed_dir(&conformant_report(), &key);
        util::flip_byte(&dir.path().join(name), at);
        let v = verify_results(dir.path(), &trusted(&key));
        util::assert_problem(&v, &format!("{name}: sha256 mismatch"));
        assert!(!check(&v, "subjects").ok);
    }
}

#[test]
fn an_edited_report_html_fails_and_must_be_signed() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let page = dir.path().join(REPORT_HTML);
    let html = fs::read_to_string(&page).unwrap();
    fs::write(
        &page,
        html.replacen("<body", "<body data-verdict=\"CONFORMANT\"", 1),
    )
    .unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "report.html: sha256 mismatch");

    // A statement that leaves report.html out does not verify either.
    let dir = signed_dir(&conformant_report(), &key);
    let mut statement = statement_for(dir.path(), &util::report_in(dir.path()), None).unwrap();
    statement.subject.retain(|s| s.name != REPORT_HTML);
    write_envelope(dir.path(), &sign(&statement, &key)).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "report.html: not a subject");
}

#[test]
fn unsigned_evidence_is_caught() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    fs::write(dir.path().join("evidence/late.txt"), "added later").unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "evidence/late.txt: not a subject (unsigned evidence)");
}

#[test]
fn missing_report_files_are_named() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    fs::remove_file(dir.path().join(JUNIT_XML)).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(v.problems, vec!["junit.xml: missing".to_string()]);
    fs::remove_file(dir.path().join(REPORT_JSON)).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "report.json: missing");
}

#[test]
fn a_report_that_breaks_its_schema_is_caught() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let path = dir.path().join(REPORT_JSON);
    let mut value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    value["catalog_digest"] = "not hex".into();
    fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    let p = util::assert_problem(&v, "report.json: does not match the report schema");
    assert!(p.contains("/catalog_digest"), "{p}");
    for name in ["statement", "junit", "verdict"] {
        assert!(check(&v, name).detail.starts_with("not checked"));
    }
}

#[test]
fn a_statement_that_disagrees_with_report_json_is_caught() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    let report = util::report_in(dir.path());
    let mut statement = statement_for(dir.path(), &report, None).unwrap();
    statement.predicate.verdicts[0].conformant = false;
    statement.predicate.summary.failed = 1;
    statement.predicate.run_id = "kfc-other".to_string();
    statement.predicate.catalog_digest = "0".repeat(64);
    write_envelope(dir.path(), &sign(&statement, &key)).unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    for field in ["run_id", "verdicts", "summary", "catalog_digest"] {
        util::assert_problem(
            &v,
            &format!("report.dsse.json: predicate.{field} differs from report.json"),
        );
    }
    assert_eq!(v.problems.len(), 4, "{:#?}", v.problems);
}

#[test]
fn junit_must_list_the_same_tests_with_the_same_outcomes() {
    let key = generate();
    let report = conformant_report();
    let victim = report.results[1].id.clone();

    // A test case deleted from junit.xml, re-signed.
    let dir = signed_dir(&report, &key);
    let mut without = report.clone();
    without.results.remove(1);
    fs::write(dir.path().join(JUNIT_XML), to_junit(&without)).unwrap();
    util::resign(dir.path(), &key, None);
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(
        v.problems,
        vec![format!("junit.xml: test {victim} missing")],
        "{:#?}",
        v.problems
    );

    // A status changed in junit.xml only, re-signed.
    let dir = signed_dir(&report, &key);
    let mut failed = report.clone();
    failed.results[1].status = Status::Failed;
    failed.results[1].message = "boom".to_string();
    fs::write(dir.path().join(JUNIT_XML), to_junit(&failed)).unwrap();
    util::resign(dir.path(), &key, None);
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(
        v.problems,
        vec![format!(
            "junit.xml: {victim} is failed in junit but passed in report.json"
        )]
    );

    // A test case in junit.xml that report.json lacks.
    let dir = signed_dir(&report, &key);
    let mut extra = report.clone();
    let mut ghost = extra.results[0].clone();
    ghost.id = "platform/ghost".to_string();
    extra.results.push(ghost);
    fs::write(dir.path().join(JUNIT_XML), to_junit(&extra)).unwrap();
    util::resign(dir.path(), &key, None);
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(
        v.problems,
        vec!["junit.xml: test platform/ghost is not in report.json".to_string()]
    );

    // junit.xml that is not XML.
    let dir = signed_dir(&report, &key);
    fs::write(
        dir.path().join(JUNIT_XML),
        "<testsuites><testsuite></testsuites>",
    )
    .unwrap();
    util::resign(dir.path(), &key, None);
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "junit.xml: malformed:");

    // Every outcome kind round-trips through the parser.
    let dir = signed_dir(&report, &key);
    rewrite_and_resign(dir.path(), &key, |r| {
        r.results[0].status = Status::Skipped;
        r.results[0].message = "feature \"x\" <not> supported\nline 2".to_string();
        r.results[1].status = Status::Error;
        r.results[2].status = Status::Failed;
    });
    let v = verify_results(dir.path(), &trusted(&key));
    assert!(check(&v, "junit").ok, "{:#?}", v.checks);
}

#[test]
fn a_test_case_deleted_from_report_json_is_caught() {
    let key = generate();
    let report = conformant_report();
    let required = required_test();
    let dir = signed_dir(&report, &key);
    // Deleted from report.json only (not re-signed): the digest no longer matches.
    let mut without = report.clone();
    without.results.retain(|r| r.id != required);
    fs::write(
        dir.path().join(REPORT_JSON),
        serde_json::to_string_pretty(&without).unwrap(),
    )
    .unwrap();
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "report.json: sha256 mismatch");
    util::assert_problem(
        &v,
        &format!("junit.xml: test {required} is not in report.json"),
    );
    util::assert_problem(&v, &format!("required test {required} missing"));
}

#[test]
fn verdict_recomputation_catches_a_conformant_claim_over_a_failed_required_test() {
    let key = generate();
    let required = required_test();
    let dir = signed_dir(&conformant_report(), &key);
    // The tamperer holds the key: report.json, junit.xml and the statement all agree, and the
    // verdict still says conformant.
    rewrite_and_resign(dir.path(), &key, |r| {
        let t = r.results.iter_mut().find(|t| t.id == required).unwrap();
        t.status = Status::Failed;
        t.message = "pod master-0:\nMASTER_ADDR is not set".to_string();
        r.summary = summarize(&r.results);
    });
    let v = verify_results(dir.path(), &trusted(&key));
    for name in [
        "envelope",
        "signature",
        "subjects",
        "schema",
        "statement",
        "junit",
    ] {
        assert!(check(&v, name).ok, "{name}: {:#?}", v.checks);
    }
    assert!(!check(&v, "verdict").ok);
    assert_eq!(
        v.problems,
        vec![
            format!(
                "profile {CERTIFIABLE_PROFILE}: required test {required} failed: pod master-0: MASTER_ADDR is not set"
            ),
            format!(
                "profile {CERTIFIABLE_PROFILE}: recorded verdict is conformant but the results make it not conformant"
            ),
        ]
    );
    assert!(!v.verdicts[0].conformant);
}

#[test]
fn a_required_test_deleted_and_resigned_is_missing() {
    let key = generate();
    let required = required_test();
    let dir = signed_dir(&conformant_report(), &key);
    let profile = Catalog::embedded()
        .unwrap()
        .profile(CERTIFIABLE_PROFILE)
        .unwrap();
    // compute_verdict only judges the results it is given, so the recorded verdict stays
    // conformant and consistent: only the catalog knows the test is required.
    rewrite_and_resign(dir.path(), &key, |r| {
        r.results.retain(|t| t.id != required);
        r.summary = summarize(&r.results);
        r.verdicts = vec![compute_verdict(&profile, &r.results, true)];
        assert!(r.verdicts[0].conformant);
    });
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(
        v.problems,
        vec![format!(
            "profile {CERTIFIABLE_PROFILE}: required test {required} missing"
        )]
    );
}

#[test]
fn a_result_relabelled_should_cannot_excuse_its_failure() {
    let key = generate();
    let required = required_test();
    let profile = Catalog::embedded()
        .unwrap()
        .profile(CERTIFIABLE_PROFILE)
        .unwrap();
    let dir = signed_dir(&conformant_report(), &key);
    rewrite_and_resign(dir.path(), &key, |r| {
        let t = r.results.iter_mut().find(|t| t.id == required).unwrap();
        t.status = Status::Failed;
        t.level = Level::Should;
        r.summary = summarize(&r.results);
        r.verdicts = vec![compute_verdict(&profile, &r.results, true)];
        assert!(r.verdicts[0].conformant);
    });
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(
        &v,
        &format!("result {required} differs from the catalog in level, component or features"),
    );
    util::assert_problem(&v, &format!("required test {required} failed"));
    util::assert_problem(
        &v,
        "recorded verdict is conformant but the results make it not conformant",
    );
}

#[test]
fn an_honest_not_conformant_report_does_not_verify_as_conformant() {
    let key = generate();
    let required = required_test();
    let profile = Catalog::embedded()
        .unwrap()
        .profile(CERTIFIABLE_PROFILE)
        .unwrap();
    let dir = signed_dir(&conformant_report(), &key);
    rewrite_and_resign(dir.path(), &key, |r| {
        let t = r.results.iter_mut().find(|t| t.id == required).unwrap();
        t.status = Status::Skipped;
        t.message = "feature not supported".to_string();
        r.summary = summarize(&r.results);
        r.complete = false;
        r.verdicts = vec![compute_verdict(&profile, &r.results, false)];
    });
    let v = verify_results(dir.path(), &trusted(&key));
    assert_eq!(
        v.problems,
        vec![
            format!("profile {CERTIFIABLE_PROFILE}: run incomplete (interrupted)"),
            format!(
                "profile {CERTIFIABLE_PROFILE}: required test {required} skipped: feature not supported"
            ),
        ]
    );
    // The recorded verdict is honest, so only conformance is in question.
    assert!(!v.verdicts[0].conformant);
    assert_eq!(
        check(&v, "verdict").detail,
        format!("profile {CERTIFIABLE_PROFILE}: run incomplete (interrupted) (and 1 more)")
    );
}

#[test]
fn an_old_suite_version_or_catalog_is_not_current() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    rewrite_and_resign(dir.path(), &key, |r| {
        r.suite_version = "0.0.1".to_string();
        r.catalog_digest = "ab".repeat(32);
    });
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(
        &v,
        &format!(
            "suite version 0.0.1 is not current (this kfconform is {})",
            kfconform_suite::SUITE_VERSION
        ),
    );
    util::assert_problem(
        &v,
        &format!(
            "catalog digest {} is not this kfconform's catalog",
            "ab".repeat(32)
        ),
    );
    assert_eq!(v.problems.len(), 2, "{:#?}", v.problems);
}

#[test]
fn an_unknown_profile_or_a_lying_summary_is_caught() {
    let key = generate();
    let dir = signed_dir(&conformant_report(), &key);
    rewrite_and_resign(dir.path(), &key, |r| {
        r.config.profile = "kubeflow-99.99".to_string();
        r.verdicts[0].profile = "kubeflow-99.99".to_string();
        r.summary.passed += 1;
    });
    let v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "profile kubeflow-99.99: unknown to this kfconform");
    util::assert_problem(&v, "report.json: summary does not count its results");
}

#[test]
fn a_bundle_path_that_does_not_exist_is_an_error() {
    let dir = TempDir::new().unwrap();
    let err = verify_path(&dir.path().join("nope.tar.gz"), &[]).unwrap_err();
    assert!(
        err.to_string().contains("nope.tar.gz: cannot read"),
        "{err}"
    );
}

#[test]
fn a_real_emulator_run_is_authentic_but_not_a_certification() {
    let work = TempDir::new().unwrap();
    let out = work.path().join("results");
    util::run_emulator(&out, &[], 0);
    let key = generate();
    util::resign(&out, &key, None);
    let mut v = verify_results(&out, &trusted(&key));
    util::assert_problem(
        &v,
        "not a certification: the run was made against the kfconform emulator",
    );
    assert_eq!(v.problems.len(), 1, "{:#?}", v.problems);
    // Accepted for a demonstration, it verifies.
    v.accept_demonstration();
    assert_ok(&v);
    assert!(v.verdicts[0].conformant);

    // The runner's own verdict is what the verifier recomputes; flipping one result shows the
    // recomputation is live on real output too.
    let required = required_test();
    rewrite_and_resign(&out, &key, |r| {
        let t = r.results.iter_mut().find(|t| t.id == required).unwrap();
        t.status = Status::Error;
        r.summary = summarize(&r.results);
    });
    let v = verify_results(&out, &trusted(&key));
    util::assert_problem(&v, &format!("required test {required} error"));
}

/// A run against an emulator started as its own process (`kfconform emulator`) records no
/// emulator flag, but the target's version says what it is: still not a certification.
#[test]
fn a_run_against_a_separate_emulator_is_not_a_certification() {
    let key = generate();
    let mut report = conformant_report();
    report.target.kubernetes_version = "v1.34.2+kfconform-emulator".into();
    let dir = signed_dir(&report, &key);
    let mut v = verify_results(dir.path(), &trusted(&key));
    util::assert_problem(&v, "the target identifies itself as the kfconform emulator");
    assert_eq!(v.problems.len(), 1, "{:#?}", v.problems);
    v.accept_demonstration();
    assert_ok(&v);
}

// ---------------------------------------------------------------- the command: exit codes

/// `kfconform verify PATH --key PUB ARGS..`.
fn verify_cli(path: &Path, public_key: &Path, args: &[&str]) -> std::process::Output {
    util::kfconform()
        .arg("verify")
        .arg(path)
        .arg("--key")
        .arg(public_key)
        .args(args)
        .output()
        .unwrap()
}

/// README: a missing or malformed report given to verify is a usage error (exit 2), one line
/// naming the problem; a submission that reads but fails a check stays exit 1.
#[test]
fn malformed_input_is_a_usage_error_and_a_failed_check_is_not() {
    let s = util::Submission::new("kfc-verify-cli");
    let key = &s.public_key;
    let verified = verify_cli(&s.results, key, &[]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    assert_eq!(verify_cli(&s.bundle, key, &[]).status.code(), Some(0));

    util::assert_usage_error(
        &verify_cli(&s.work.path().join("nope"), key, &[]),
        "nope: no such file or directory",
    );
    util::assert_usage_error(
        &verify_cli(&s.junk_bundle(), key, &[]),
        "junk.tar.gz: not a submission bundle: ",
    );
    util::assert_usage_error(
        &verify_cli(&s.truncated_bundle(), key, &["--format", "json"]),
        "truncated.tar.gz: not a submission bundle: ",
    );

    // A corrupt, a schema-breaking and a missing report.json, each in a signed directory.
    let report = s.results.join(REPORT_JSON);
    let original = fs::read_to_string(&report).unwrap();
    fs::write(&report, &original[..original.len() / 2]).unwrap();
    util::assert_usage_error(
        &verify_cli(&s.results, key, &[]),
        "results: report.json: not valid JSON: ",
    );
    fs::write(&report, r#"{"run_id": 1}"#).unwrap();
    util::assert_usage_error(
        &verify_cli(&s.results, key, &[]),
        "results: report.json: does not match the report schema",
    );
    fs::remove_file(&report).unwrap();
    util::assert_usage_error(
        &verify_cli(&s.results, key, &[]),
        "results: report.json: missing",
    );

    // Well-formed but failing: a tampered junit.xml, an untrusted key.
    fs::write(&report, &original).unwrap();
    let junit = s.results.join(JUNIT_XML);
    let text = fs::read_to_string(&junit).unwrap();
    fs::write(&junit, format!("{text} ")).unwrap();
    let failed = verify_cli(&s.results, key, &[]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(String::from_utf8_lossy(&failed.stdout).contains("VERIFICATION FAILED"));
    fs::write(&junit, text).unwrap();
    let other = TempDir::new().unwrap();
    let (_, other_key) = kfconform_suite::report::keys::write_keypair(other.path()).unwrap();
    let untrusted = verify_cli(&s.bundle, &other_key, &[]);
    assert_eq!(untrusted.status.code(), Some(1), "{untrusted:?}");
}

/// `verify --format json` carries its format version and matches reports/verify.schema.json,
/// verified or not.
#[test]
fn json_output_matches_its_schema() {
    let s = util::Submission::new("kfc-verify-json");
    let out = verify_cli(&s.bundle, &s.public_key, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = util::stdout_json(&out);
    util::assert_matches_schema("verify.schema.json", &v);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["verified"], true);
    assert_eq!(v["verdicts"][0]["profile"], CERTIFIABLE_PROFILE);

    let other = TempDir::new().unwrap();
    let (_, other_key) = kfconform_suite::report::keys::write_keypair(other.path()).unwrap();
    let out = verify_cli(&s.results, &other_key, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = util::stdout_json(&out);
    util::assert_matches_schema("verify.schema.json", &v);
    assert_eq!(v["verified"], false);
    assert!(!v["problems"].as_array().unwrap().is_empty());
}
