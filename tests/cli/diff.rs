//! `diff` of two reports: regressions, status changes, target differences, rendering, loading.

use crate::util;

use std::sync::OnceLock;

use kfconform_suite::report::{
    REPORT_JSON, Report, ReportDiff, ReportError, ServedResource, Status, VersionChange, diff,
    load_report_any, render_diff_table,
};
use serde_json::{Value, json};

/// A clean emulator run and one against an emulator reporting Kubernetes 1.27, run once.
fn runs() -> &'static (Report, Report) {
    static RUNS: OnceLock<(Report, Report)> = OnceLock::new();
    RUNS.get_or_init(|| {
        (
            run_emulator(None, 0),
            run_emulator(Some("platform.old-kubernetes"), 1),
        )
    })
}

fn run_emulator(defect: Option<&str>, code: i32) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = defect.into_iter().flat_map(|d| ["--defect", d]).collect();
    util::run_report(&dir.path().join("results"), &args, code)
}

/// A copy of `r` edited as JSON, the way a reviewer's other report would differ.
fn edited(r: &Report, edit: impl FnOnce(&mut Value)) -> Report {
    let mut v = serde_json::to_value(r).unwrap();
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

fn result_mut<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["results"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result {id}"))
}

fn regression_ids(d: &ReportDiff) -> Vec<&str> {
    d.regressions.iter().map(|r| r.id.as_str()).collect()
}

// ---------------------------------------------------------------- diff

#[test]
fn identical_reports_have_no_differences() {
    let (clean, old) = runs();
    for r in [clean, old] {
        let d = diff(r, r);
        assert!(d.is_empty(), "{d:#?}");
        assert!(d.regressions.is_empty());
        assert!(d.profile_known);
        assert!(render_diff_table(&d, "a", "b").contains("no differences"));
    }
    // Two separate clean runs differ in run id, server and timings, none of which the diff
    // compares.
    let again = run_emulator(None, 0);
    assert!(diff(clean, &again).is_empty());
}

#[test]
fn defect_run_regresses_exactly_its_failing_tests() {
    let (clean, old) = runs();
    let failing: Vec<&str> = old
        .results
        .iter()
        .filter(|r| r.status != Status::Passed)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failing, ["platform/kubernetes-version"]);

    let d = diff(clean, old);
    assert_eq!(regression_ids(&d), failing);
    assert_eq!(d.regressions[0].status_b, Some(Status::Failed));
    assert!(d.regressions[0].message_b.contains("v1.27"));
    assert_eq!(d.status_changes.len(), 1);
    assert_eq!(d.status_changes[0].id, "platform/kubernetes-version");
    assert_eq!(
        (d.status_changes[0].status_a, d.status_changes[0].status_b),
        (Status::Passed, Status::Failed)
    );
    assert_eq!(
        d.kubernetes_version,
        Some(VersionChange {
            a: clean.target.kubernetes_version.clone(),
            b: "v1.27.16+kfconform-emulator".into(),
        })
    );
    assert!(d.tests_only_in_a.is_empty() && d.tests_only_in_b.is_empty());
    assert!(d.features_only_in_a.is_empty() && d.features_only_in_b.is_empty());

    // A fix is not a regression.
    let back = diff(old, clean);
    assert!(back.regressions.is_empty(), "{back:#?}");
    assert_eq!(back.status_changes.len(), 1);
}

#[test]
fn only_required_tests_that_passed_can_regress() {
    let (clean, _) = runs();
    let a = edited(clean, |v| {
        // A should test, and a must test needing a feature the profile does not require.
        result_mut(v, "platform/apis-served")["level"] = json!("should");
        result_mut(v, "platform/crds-established")["features"] =
            json!(["pipelines.kubernetes-native"]);
        result_mut(v, "platform/upstream-examples-accepted")["status"] = json!("skipped");
    });
    let b = edited(&a, |v| {
        for id in [
            "platform/apis-served",
            "platform/crds-established",
            "platform/upstream-examples-accepted",
        ] {
            let r = result_mut(v, id);
            r["status"] = json!("failed");
            r["message"] = json!("broken");
        }
        result_mut(v, "platform/kubernetes-version")["status"] = json!("error");
    });
    let d = diff(&a, &b);
    assert_eq!(regression_ids(&d), ["platform/kubernetes-version"]);
    assert_eq!(d.regressions[0].status_b, Some(Status::Error));
    assert_eq!(d.status_changes.len(), 4);

    // A profile this suite does not know: every must test that passed counts.
    let a = edited(&a, |v| v["config"]["profile"] = json!("kubeflow-99.01"));
    let d = diff(&a, &b);
    assert!(!d.profile_known);
    assert_eq!(
        regression_ids(&d),
        ["platform/crds-established", "platform/kubernetes-version"]
    );
}

#[test]
fn missing_tests_are_listed_and_regress_when_required() {
    let (clean, _) = runs();
    let b = edited(clean, |v| {
        let results = v["results"].as_array_mut().unwrap();
        results.retain(|r| r["id"] != "platform/apis-served");
        let mut extra = results[0].clone();
        extra["id"] = json!("platform/new-test");
        results.push(extra);
    });
    let d = diff(clean, &b);
    assert_eq!(d.tests_only_in_a, ["platform/apis-served"]);
    assert_eq!(d.tests_only_in_b, ["platform/new-test"]);
    assert_eq!(regression_ids(&d), ["platform/apis-served"]);
    assert_eq!(d.regressions[0].status_b, None);
    assert!(d.status_changes.is_empty());
}

#[test]
fn features_and_apis_served_by_one_side() {
    let (clean, _) = runs();
    let b = edited(clean, |v| {
        let t = &mut v["target"];
        let features = t["features"].as_array_mut().unwrap();
        features.retain(|f| f != "tuning.katib");
        features.push(json!("serving.modelregistry"));
        let apis = t["kubeflow_apis"].as_object_mut().unwrap();
        apis.remove("kubeflow.org/v1beta1");
        apis.insert(
            "modelregistry.kubeflow.org/v1alpha1".into(),
            json!(["modelregistries"]),
        );
        apis["kubeflow.org/v1"] = json!(["profiles", "tfjobs"]);
    });
    let d = diff(clean, &b);
    assert_eq!(d.features_only_in_a, ["tuning.katib"]);
    assert_eq!(d.features_only_in_b, ["serving.modelregistry"]);
    assert_eq!(d.group_versions_only_in_a, ["kubeflow.org/v1beta1"]);
    assert_eq!(
        d.group_versions_only_in_b,
        ["modelregistry.kubeflow.org/v1alpha1"]
    );
    let res = |r: &str| ServedResource {
        group_version: "kubeflow.org/v1".into(),
        resource: r.into(),
    };
    assert_eq!(d.resources_only_in_a, [res("pytorchjobs")]);
    assert_eq!(d.resources_only_in_b, [res("tfjobs")]);
    assert!(d.regressions.is_empty() && d.status_changes.is_empty());
    assert!(!d.is_empty());
    // Feature order is not a difference.
    let shuffled = edited(clean, |v| {
        v["target"]["features"].as_array_mut().unwrap().reverse();
    });
    assert!(diff(clean, &shuffled).is_empty());
}

#[test]
fn diff_serialises_to_json() {
    let (clean, old) = runs();
    let v = serde_json::to_value(diff(clean, old)).unwrap();
    assert_eq!(v["regressions"][0]["id"], "platform/kubernetes-version");
    assert_eq!(v["regressions"][0]["status_b"], "failed");
    assert_eq!(v["kubernetes_version"]["b"], "v1.27.16+kfconform-emulator");
    assert_eq!(v["profile"], util::CERTIFIABLE_PROFILE);
}

// ---------------------------------------------------------------- rendering

#[test]
fn snapshot_table_of_a_real_regression() {
    let (clean, old) = runs();
    // Pinned so a new emulator version does not churn the snapshot.
    let clean = edited(clean, |v| {
        v["target"]["kubernetes_version"] = json!("v1.34.0")
    });
    insta::assert_snapshot!(render_diff_table(
        &diff(&clean, old),
        "results-clean",
        "results-old-kubernetes"
    ));
}

#[test]
fn snapshot_table_of_every_kind_of_difference() {
    let (clean, old) = runs();
    let b = edited(old, |v| {
        v["target"]["features"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f != "tuning.katib");
        let apis = v["target"]["kubeflow_apis"].as_object_mut().unwrap();
        apis.remove("serving.kserve.io/v1alpha1");
        apis["kubeflow.org/v1"] = json!(["profiles"]);
        let results = v["results"].as_array_mut().unwrap();
        results.retain(|r| r["id"] != "platform/crds-established");
        let r = result_mut(v, "platform/upstream-examples-accepted");
        r["status"] = json!("error");
        r["message"] = json!(format!(
            "timed out\nwaiting for {}",
            "a very long explanation ".repeat(8)
        ));
    });
    let a = edited(clean, |v| {
        v["config"]["profile"] = json!("vendor-profile");
        v["target"]["kubernetes_version"] = json!("v1.34.0");
    });
    insta::assert_snapshot!(render_diff_table(&diff(&a, &b), "A.json", "B.json"));
}

// ---------------------------------------------------------------- loading

#[test]
fn loads_a_file_or_a_results_directory() {
    let (clean, _) = runs();
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_string_pretty(clean).unwrap();
    std::fs::write(dir.path().join(REPORT_JSON), &json).unwrap();
    assert_eq!(&load_report_any(dir.path()).unwrap(), clean);
    assert_eq!(
        &load_report_any(&dir.path().join(REPORT_JSON)).unwrap(),
        clean
    );
    let copy = dir.path().join("other-name.json");
    std::fs::write(&copy, &json).unwrap();
    assert_eq!(&load_report_any(&copy).unwrap(), clean);
}

#[test]
fn loading_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = |p: &std::path::Path| match load_report_any(p) {
        Err(ReportError::Malformed { message, .. }) => message,
        other => panic!("expected Malformed for {}, got {other:?}", p.display()),
    };

    let bundle = dir.path().join("submission.tar.gz");
    std::fs::write(&bundle, b"\x1f\x8b").unwrap();
    assert!(malformed(&bundle).contains("not a submission bundle"));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(malformed(&empty).contains("no report.json"));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"run_id": 1}"#).unwrap();
    assert!(malformed(&bad).contains("report schema"));

    assert!(malformed(&dir.path().join("missing.json")).contains("cannot read"));
}

// ---------------------------------------------------------------- the command

/// `kfconform diff A B ARGS..`.
fn diff_cli(a: &std::path::Path, b: &std::path::Path, args: &[&str]) -> std::process::Output {
    util::kfconform()
        .arg("diff")
        .arg(a)
        .arg(b)
        .args(args)
        .output()
        .unwrap()
}

/// Both sides' product, profile, verdict and emulator flag come first: the product from the
/// signed statement of a results directory or bundle, unknown for a bare report.json.
#[test]
fn both_sides_are_named_first() {
    let s = util::Submission::new("kfc-diff-sides");
    let (clean, _) = runs();
    let bare = s.work.path().join("emulator-report.json");
    std::fs::write(&bare, serde_json::to_string_pretty(clean).unwrap()).unwrap();

    for a in [&s.results, &s.bundle] {
        let out = diff_cli(a, &bare, &[]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let head: Vec<&str> = text.lines().take(10).collect();
        assert_eq!(
            head[..10],
            [
                format!("A: {}", a.display()).as_str(),
                "  product:  Example Kubeflow 1.2.3 (Example Corp) (from report.dsse.json, not verified)",
                &format!("  profile:  {}", util::CERTIFIABLE_PROFILE),
                "  verdict:  CONFORMANT",
                "  emulator: no",
                &format!("B: {}", bare.display()),
                "  product:  unknown",
                &format!("  profile:  {}", util::CERTIFIABLE_PROFILE),
                "  verdict:  CONFORMANT",
                "  emulator: yes: not a certification",
            ],
            "{text}"
        );
        assert!(!text.contains("PROFILES DIFFER"), "{text}");
    }

    let out = diff_cli(&s.bundle, &bare, &["--format", "json"]);
    let v = util::stdout_json(&out);
    util::assert_matches_schema("diff.schema.json", &v);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["a"]["product"], "Example Kubeflow 1.2.3 (Example Corp)");
    assert_eq!(v["a"]["emulator"], false);
    assert_eq!(v["b"]["product"], Value::Null);
    assert_eq!(v["b"]["emulator"], true);
    assert_eq!(v["b"]["verdict"], "CONFORMANT");
    assert_eq!(v["profiles_differ"], false);
}

/// Two reports claiming different profiles say so, in the table and in JSON, and are never
/// "no differences".
#[test]
fn different_profiles_are_called_out() {
    let (clean, old) = runs();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, serde_json::to_string(clean).unwrap()).unwrap();
    let other = edited(clean, |v| {
        v["config"]["profile"] = json!("kubeflow-26.03/platform")
    });
    std::fs::write(&b, serde_json::to_string(&other).unwrap()).unwrap();
    let out = diff_cli(&a, &b, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "PROFILES DIFFER: A claims {}, B claims kubeflow-26.03/platform",
            util::CERTIFIABLE_PROFILE
        )),
        "{text}"
    );
    assert!(!text.contains("no differences"), "{text}");
    let v = util::stdout_json(&diff_cli(&a, &b, &["--format", "json"]));
    util::assert_matches_schema("diff.schema.json", &v);
    assert_eq!(v["profiles_differ"], true);
    assert_eq!(v["b"]["profile"], "kubeflow-26.03/platform");

    // A defect run's side shows its defects, and its JSON (with regressions) fits the schema.
    std::fs::write(&b, serde_json::to_string(old).unwrap()).unwrap();
    let out = diff_cli(&a, &b, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = util::stdout_json(&out);
    util::assert_matches_schema("diff.schema.json", &v);
    assert_eq!(v["b"]["defects"], json!(["platform.old-kubernetes"]));
    assert_eq!(v["b"]["verdict"], "NOT CONFORMANT");
}

/// README: a missing or malformed report given to diff is a usage error (exit 2), one line
/// naming the problem, on either side.
#[test]
fn malformed_input_is_a_usage_error() {
    let s = util::Submission::new("kfc-diff-malformed");
    let good = &s.results;
    let corrupt = s.work.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join(REPORT_JSON), "{\"run_id\": ").unwrap();
    let cases = [
        (s.work.path().join("nope"), "nope: cannot read"),
        (corrupt.clone(), "report.json: not valid JSON"),
        (s.junk_bundle(), "junk.tar.gz: not a submission bundle: "),
        (
            s.truncated_bundle(),
            "truncated.tar.gz: not a submission bundle: ",
        ),
    ];
    for (bad, needle) in &cases {
        util::assert_usage_error(&diff_cli(good, bad, &[]), needle);
        util::assert_usage_error(&diff_cli(bad, good, &["--format", "json"]), needle);
    }
}
