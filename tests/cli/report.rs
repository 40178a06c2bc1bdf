//! Reports: verdict rules, report.json schema, junit.xml against both XSDs, writing/reading.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use kfconform_suite::catalog::{KubernetesRange, Level, Profile};
use kfconform_suite::report::{
    JUNIT_XML, ProfileVerdict, REPORT_HTML, REPORT_JSON, REPORT_SCHEMA_ID, Report, ReportError,
    RunConfig, Status, TargetFacts, TestResult, compute_verdict, read_report, summarize, to_junit,
    validate_report_json, write_report,
};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Value, json};

const DIGEST: &str = "3f6a1c0e9b2d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
const TRICKY: &str = "expected <env> MASTER_ADDR & \"PORT\" in 'master'\nsecond line";

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn result(id: &str, level: Level, features: &[&str], status: Status, message: &str) -> TestResult {
    TestResult {
        id: id.to_string(),
        component: id.split('/').next().unwrap().to_string(),
        title: format!("title of {id}"),
        level,
        features: features.iter().map(|f| f.to_string()).collect(),
        status,
        message: message.to_string(),
        duration_seconds: 1.5,
        attempts: 1,
        evidence: Vec::new(),
        api_requests: BTreeMap::new(),
        http_requests: BTreeMap::new(),
        previous: Vec::new(),
    }
}

fn profile() -> Profile {
    Profile {
        name: "kubeflow-26.03".into(),
        description: "Kubeflow 26.03".into(),
        release: "26.03".into(),
        kubernetes: KubernetesRange {
            min: "1.31".into(),
            max: "1.35".into(),
        },
        components: vec!["profiles".into(), "training".into()],
        required_features: vec!["training.pytorchjob".into()],
        gaps: vec![],
    }
}

/// Two components, all four statuses, a message full of markup and a newline.
fn sample_report() -> Report {
    let mut results = vec![
        result(
            "profiles/default-editor-binding",
            Level::Must,
            &[],
            Status::Passed,
            "",
        ),
        result(
            "profiles/namespace-labels",
            Level::Should,
            &[],
            Status::Skipped,
            "not selected",
        ),
        result(
            "training/pytorchjob-env-contract",
            Level::Must,
            &["training.pytorchjob"],
            Status::Failed,
            TRICKY,
        ),
        result(
            "training/trainjob-runs",
            Level::Must,
            &["training.trainjob"],
            Status::Error,
            "timed out after 300s waiting for TrainJob \"t1\" to be Created",
        ),
    ];
    results[2].evidence = vec![
        "evidence/training/pytorchjob-env-contract/pytorchjob.yaml".into(),
        "evidence/training/pytorchjob-env-contract/master-0.log".into(),
    ];
    results[2].attempts = 2;
    results[2].duration_seconds = 12.25;
    results[0].api_requests = BTreeMap::from([("create".into(), 3), ("get".into(), 7)]);
    let verdict = compute_verdict(&profile(), &results, true);
    Report {
        schema: REPORT_SCHEMA_ID.to_string(),
        run_id: "kfc-7d3e2a".into(),
        suite_version: "0.1.0".into(),
        catalog_digest: DIGEST.into(),
        started_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 30, 0).unwrap(),
        finished_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 31, 5).unwrap()
            + chrono::Duration::milliseconds(250),
        complete: true,
        target: TargetFacts {
            server: "https://10.96.0.1:6443".into(),
            kubernetes_version: "v1.34.1".into(),
            platform: "linux/amd64".into(),
            kubeflow_apis: BTreeMap::from([(
                "kubeflow.org/v1".into(),
                vec!["profiles".into(), "pytorchjobs".into()],
            )]),
            features: vec!["training.pytorchjob".into()],
            features_overridden: false,
        },
        config: RunConfig {
            profile: "kubeflow-26.03".into(),
            components: vec!["profiles".into(), "training".into()],
            focus: vec![],
            skip: vec![],
            parallel: 4,
            timeout_scale: 1.0,
            probe_image: "ghcr.io/example/kfconform:0.1.0".into(),
            emulator: false,
            defects: vec![],
            command: "kfconform run --profile kubeflow-26.03".into(),
        },
        summary: summarize(&results),
        verdicts: vec![verdict],
        results,
        merged: None,
    }
}

// ---------------------------------------------------------------- verdict

#[test]
fn summarize_counts_each_status() {
    let s = summarize(&sample_report().results);
    assert_eq!(
        (s.total, s.passed, s.failed, s.skipped, s.error),
        (4, 1, 1, 1, 1)
    );
}

#[test]
fn verdict_rules_table() {
    use Level::{Must, Should};
    use Status::{Error, Failed, Passed, Skipped};
    let req = &["training.pytorchjob"][..];
    let opt = &["training.trainjob"][..];
    let none = &[][..];
    // (case, results, complete, expected reasons)
    let cases: Vec<(&str, Vec<TestResult>, bool, Vec<&str>)> = vec![
        (
            "all required pass",
            vec![
                result("training/a", Must, req, Passed, ""),
                result("profiles/b", Must, none, Passed, ""),
            ],
            true,
            vec![],
        ),
        ("no results at all", vec![], true, vec![]),
        (
            "required must skipped",
            vec![result(
                "training/a",
                Must,
                req,
                Skipped,
                "feature not supported",
            )],
            true,
            vec!["required test training/a skipped: feature not supported"],
        ),
        (
            "featureless must skipped is required",
            vec![result("profiles/b", Must, none, Skipped, "not selected")],
            true,
            vec!["required test profiles/b skipped: not selected"],
        ),
        (
            "required must failed",
            vec![result("training/a", Must, req, Failed, "no MASTER_ADDR")],
            true,
            vec!["training/a failed: no MASTER_ADDR"],
        ),
        (
            "required must error",
            vec![result("training/a", Must, req, Error, "timeout")],
            true,
            vec!["training/a error: timeout"],
        ),
        (
            "optional must skipped is fine",
            vec![result(
                "training/t",
                Must,
                opt,
                Skipped,
                "feature not supported",
            )],
            true,
            vec![],
        ),
        (
            "optional must that ran and failed breaks conformance",
            vec![result("training/t", Must, opt, Failed, "bad status")],
            true,
            vec!["training/t failed: bad status"],
        ),
        (
            "optional must that errored breaks conformance",
            vec![result("training/t", Must, opt, Error, "unreachable")],
            true,
            vec!["training/t error: unreachable"],
        ),
        (
            "should failures never break it",
            vec![
                result("training/s", Should, req, Failed, "x"),
                result("training/s2", Should, none, Error, "y"),
                result("training/s3", Should, req, Skipped, "z"),
            ],
            true,
            vec![],
        ),
        (
            "component outside the profile is ignored",
            vec![result(
                "serving/v2",
                Must,
                none,
                Failed,
                "no ready endpoint",
            )],
            true,
            vec![],
        ),
        (
            "incomplete run",
            vec![result("training/a", Must, req, Passed, "")],
            false,
            vec!["run incomplete (interrupted)"],
        ),
        (
            "reasons sorted by test id, incomplete first, message on one line",
            vec![
                result("training/z", Must, req, Failed, "line one\n  line two\n"),
                result("profiles/m", Must, none, Error, ""),
                result("training/b", Must, req, Skipped, "not selected"),
            ],
            false,
            vec![
                "run incomplete (interrupted)",
                "profiles/m error",
                "required test training/b skipped: not selected",
                "training/z failed: line one line two",
            ],
        ),
    ];
    for (case, results, complete, expected) in cases {
        let v = compute_verdict(&profile(), &results, complete);
        assert_eq!(v.profile, "kubeflow-26.03", "{case}");
        assert_eq!(v.reasons, expected, "{case}");
        assert_eq!(v.conformant, expected.is_empty(), "{case}");
    }
}

#[test]
fn verdict_is_independent_of_result_order() {
    let mut results = sample_report().results;
    let a = compute_verdict(&profile(), &results, true);
    results.reverse();
    let b = compute_verdict(&profile(), &results, true);
    assert_eq!(a, b);
    assert!(!a.conformant);
    assert_eq!(
        a.reasons,
        [
            "training/pytorchjob-env-contract failed: expected <env> MASTER_ADDR & \"PORT\" in 'master' second line",
            "training/trainjob-runs error: timed out after 300s waiting for TrainJob \"t1\" to be Created",
        ]
    );
}

// ---------------------------------------------------------------- report.json

fn sample_json() -> Value {
    serde_json::to_value(sample_report()).unwrap()
}

#[test]
fn sample_report_validates_against_schema() {
    validate_report_json(&sample_json()).unwrap();
}

#[test]
fn schema_accepts_report_without_defaulted_fields() {
    let mut v = sample_json();
    v["target"].as_object_mut().unwrap().remove("platform");
    v["config"].as_object_mut().unwrap().remove("defects");
    let r = v["results"][0].as_object_mut().unwrap();
    r.remove("message");
    r.remove("evidence");
    r.remove("api_requests");
    validate_report_json(&v).unwrap();
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back.results[0].message, "");
}

fn assert_rejected(v: &Value, pointer: &str) -> Vec<String> {
    let errors = validate_report_json(v).expect_err("schema accepted an invalid report");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("`{pointer}`: "))),
        "no error at {pointer}: {errors:?}"
    );
    for e in &errors {
        assert!(!e.contains('\n'), "multi-line error {e:?}");
    }
    errors
}

#[test]
fn schema_rejects_bad_status() {
    let mut v = sample_json();
    v["results"][0]["status"] = json!("flaky");
    assert_rejected(&v, "/results/0/status");
}

#[test]
fn schema_rejects_bad_level() {
    let mut v = sample_json();
    v["results"][1]["level"] = json!("may");
    assert_rejected(&v, "/results/1/level");
}

#[test]
fn schema_rejects_missing_run_id() {
    let mut v = sample_json();
    v.as_object_mut().unwrap().remove("run_id");
    let errors = assert_rejected(&v, "/");
    assert!(errors.iter().any(|e| e.contains("run_id")), "{errors:?}");
}

#[test]
fn schema_rejects_extra_fields() {
    let mut v = sample_json();
    v["extra"] = json!(1);
    assert_rejected(&v, "/");
    let mut v = sample_json();
    v["results"][0]["flaky"] = json!(true);
    assert_rejected(&v, "/results/0");
}

#[test]
fn schema_rejects_bad_dates_and_schema_id() {
    let mut v = sample_json();
    v["started_at"] = json!("yesterday");
    assert_rejected(&v, "/started_at");
    let mut v = sample_json();
    v["$schema"] = json!("https://example.com/other.json");
    assert_rejected(&v, "/$schema");
}

#[test]
fn schema_rejects_evidence_outside_output_dir() {
    for bad in ["/etc/passwd", "../x", "evidence/../../x", "a\\b"] {
        let mut v = sample_json();
        v["results"][2]["evidence"][0] = json!(bad);
        assert_rejected(&v, "/results/2/evidence/0");
    }
}

#[test]
fn schema_rejects_conformant_verdict_with_reasons() {
    let mut v = sample_json();
    v["verdicts"][0]["conformant"] = json!(true);
    assert_rejected(&v, "/verdicts/0/reasons");
}

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/out");
    let report = sample_report();
    let paths = write_report(&out, &report).unwrap();
    assert_eq!(
        paths,
        vec![
            out.join(REPORT_JSON),
            out.join(JUNIT_XML),
            out.join(REPORT_HTML)
        ]
    );
    let text = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(text.ends_with("}\n"));
    assert_eq!(
        text,
        format!("{}\n", serde_json::to_string_pretty(&report).unwrap())
    );
    assert_eq!(read_report(&paths[0]).unwrap(), report);
    assert_eq!(
        std::fs::read_to_string(&paths[1]).unwrap(),
        to_junit(&report)
    );
    // Only the three files: no temp file left behind.
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [JUNIT_XML, REPORT_HTML, REPORT_JSON]);
    // Overwriting an existing report works.
    write_report(&out, &report).unwrap();
}

#[test]
fn write_to_unwritable_dir_is_output_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let target = file.join("out");
    let err = write_report(&target, &sample_report()).unwrap_err();
    assert!(matches!(err, ReportError::Output { .. }), "{err:?}");
    assert!(err.is_usage());
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains(&target.display().to_string()), "{line}");
    assert!(line.contains("Not a directory"), "{line}");
}

#[test]
fn read_report_names_file_and_problem_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("garbage.json", "{not json".to_string(), "not valid JSON"),
        (
            "bad-status.json",
            {
                let mut v = sample_json();
                v["results"][0]["status"] = json!("flaky");
                v.to_string()
            },
            "`/results/0/status`",
        ),
    ];
    for (name, text, problem) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = read_report(&path).unwrap_err();
        assert!(matches!(err, ReportError::Malformed { .. }), "{err:?}");
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
        assert!(line.contains(problem), "{line}");
    }
    let missing = dir.path().join("missing.json");
    let line = read_report(&missing).unwrap_err().to_string();
    assert!(
        line.contains("missing.json") && line.contains("No such file"),
        "{line}"
    );
}

// ---------------------------------------------------------------- junit.xml

/// Runs xmllint; a missing xmllint fails the test rather than skipping it.
fn xmllint(xsd: &str, xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(manifest(&format!("fixtures/junit-xsd/{xsd}")))
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("xmllint not found: run .ci/setup")
        }
        Err(e) => panic!("xmllint: {e}"),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{xsd}: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Copies a start tag without the named attributes.
fn without_attrs(e: &BytesStart<'_>, drop: &[&str]) -> BytesStart<'static> {
    let name = e.name().as_ref().to_string();
    let mut s = BytesStart::new(name);
    for a in e.attributes() {
        let a = a.unwrap();
        if !drop.contains(&a.key.as_ref()) {
            s.push_attribute(a);
        }
    }
    s
}

/// Each `<testsuite>` as a standalone document. `package` and `id` exist only in the
/// aggregated form, so the strict schema's standalone testsuite does not allow them.
fn standalone_suites(xml: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut suites = Vec::new();
    let mut current: Option<Writer<Vec<u8>>> = None;
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().unwrap();
        match &event {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == "testsuite" && current.is_none() => {
                let mut w = Writer::new(Vec::new());
                w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
                    .unwrap();
                w.write_event(Event::Start(without_attrs(e, &["package", "id"])))
                    .unwrap();
                current = Some(w);
                depth = 1;
                continue;
            }
            _ => {}
        }
        if let Some(w) = current.as_mut() {
            match &event {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                _ => {}
            }
            w.write_event(event.borrow()).unwrap();
            if depth == 0 {
                let w = current.take().unwrap();
                suites.push(String::from_utf8(w.into_inner()).unwrap());
            }
        }
    }
    suites
}

/// The whole document with the root's attributes removed: the strict schema's `testsuites`
/// has none, but checks the aggregated suites' `package` and `id`.
fn bare_root(xml: &str) -> String {
    let mut reader = Reader::from_str(xml);
    let mut w = Writer::new(Vec::new());
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == "testsuites" => {
                w.write_event(Event::Start(BytesStart::new("testsuites")))
                    .unwrap();
            }
            e => w.write_event(e).unwrap(),
        }
    }
    String::from_utf8(w.into_inner()).unwrap()
}

fn assert_valid_junit(xml: &str) {
    xmllint("junit-jenkins-10.xsd", xml).unwrap();
    xmllint("junit-windyroad.xsd", &bare_root(xml)).unwrap();
    for suite in standalone_suites(xml) {
        xmllint("junit-windyroad.xsd", &suite).unwrap();
        xmllint("junit-jenkins-10.xsd", &suite).unwrap();
    }
}

#[test]
fn xmllint_rejects_what_the_schemas_forbid() {
    let xml = to_junit(&sample_report());
    // Jenkins allows neither `skipped` nor `timestamp` on the root.
    let root_skipped = xml.replacen(
        "<testsuites name=\"kfconform\"",
        "<testsuites name=\"kfconform\" skipped=\"1\"",
        1,
    );
    assert!(xmllint("junit-jenkins-10.xsd", &root_skipped).is_err());
    // The strict schema wants a timestamp without a timezone.
    let suite = &standalone_suites(&xml)[0];
    let zoned = suite.replacen("T09:30:00\"", "T09:30:00Z\"", 1);
    assert!(xmllint("junit-windyroad.xsd", &zoned).is_err());
}

#[test]
fn junit_validates_against_both_xsds() {
    assert_valid_junit(&to_junit(&sample_report()));
}

#[test]
fn junit_without_results_validates() {
    let mut r = sample_report();
    r.results.clear();
    r.target.server = String::new();
    assert_valid_junit(&to_junit(&r));
}

#[test]
fn junit_with_hostile_text_validates() {
    let mut r = sample_report();
    r.results[2].message = "nul\u{0} bell\u{7} cr\r tab\t ]]> &amp; <![CDATA[x]]>".into();
    r.results[1].title = "<title> & \u{1b}[31m".into();
    r.target.server = "https://[::1]:6443".into();
    r.verdicts[0].profile = "kubeflow-26.03/training".into();
    r.results[0].duration_seconds = f64::NAN;
    assert_valid_junit(&to_junit(&r));
}

#[test]
fn junit_is_deterministic() {
    assert_eq!(to_junit(&sample_report()), to_junit(&sample_report()));
}

fn attrs(e: &BytesStart<'_>) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                a.key.as_ref().to_string(),
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect()
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

#[test]
fn junit_counts_and_structure_match_results() {
    let report = sample_report();
    let xml = to_junit(&report);
    let mut reader = Reader::from_str(&xml);
    let mut root: Option<BTreeMap<String, String>> = None;
    let mut suites: Vec<(BTreeMap<String, String>, Counts)> = Vec::new();
    let mut cases: Vec<BTreeMap<String, String>> = Vec::new();
    let mut outcomes: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let mut properties: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let (e, _empty) = match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) => (e.into_owned(), false),
            Event::Empty(e) => (e.into_owned(), true),
            _ => continue,
        };
        let a = attrs(&e);
        match e.name().as_ref() {
            "testsuites" => root = Some(a),
            "testsuite" => suites.push((a, Counts::default())),
            "testcase" => {
                suites.last_mut().unwrap().1.tests += 1;
                cases.push(a);
            }
            tag @ ("failure" | "error" | "skipped") => {
                let c = &mut suites.last_mut().unwrap().1;
                match tag {
                    "failure" => c.failures += 1,
                    "error" => c.errors += 1,
                    _ => c.skipped += 1,
                }
                let name = cases.last().unwrap()["name"].clone();
                outcomes.insert(name, (tag.to_string(), a));
            }
            "property" if suites.len() == 1 => {
                properties.insert(a["name"].clone(), a["value"].clone());
            }
            _ => {}
        }
    }

    let root = root.unwrap();
    assert_eq!(root["name"], "kfconform");
    assert_eq!(root["tests"], "4");
    assert_eq!(root["failures"], "1");
    assert_eq!(root["errors"], "1");
    assert_eq!(root["time"], "65.250");

    let names: Vec<&str> = suites.iter().map(|(a, _)| a["name"].as_str()).collect();
    assert_eq!(names, ["profiles", "training"]);
    for (i, (a, counts)) in suites.iter().enumerate() {
        let declared = Counts {
            tests: a["tests"].parse().unwrap(),
            failures: a["failures"].parse().unwrap(),
            errors: a["errors"].parse().unwrap(),
            skipped: a["skipped"].parse().unwrap(),
        };
        assert_eq!(&declared, counts, "suite {}", a["name"]);
        assert_eq!(a["id"], i.to_string());
        assert_eq!(a["package"], "kfconform");
        assert_eq!(a["hostname"], "10.96.0.1");
        assert_eq!(a["timestamp"], "2026-03-14T09:30:00");
    }
    assert_eq!(suites[1].0["time"], "13.750");

    assert_eq!(cases.len(), report.results.len());
    for (case, r) in cases.iter().zip(&report.results) {
        assert_eq!(case["name"], r.id);
        assert_eq!(case["classname"], format!("kfconform.{}", r.component));
    }

    // Messages survive escaping exactly, newline included.
    let (tag, failure) = &outcomes["training/pytorchjob-env-contract"];
    assert_eq!(tag, "failure");
    assert_eq!(failure["type"], "failed");
    assert_eq!(failure["message"], TRICKY);
    let (tag, error) = &outcomes["training/trainjob-runs"];
    assert_eq!(tag, "error");
    assert_eq!(error["type"], "error");
    let (tag, skipped) = &outcomes["profiles/namespace-labels"];
    assert_eq!(tag, "skipped");
    assert_eq!(skipped["message"], "not selected");
    assert!(!outcomes.contains_key("profiles/default-editor-binding"));

    assert_eq!(properties["run_id"], "kfc-7d3e2a");
    assert_eq!(properties["suite_version"], "0.1.0");
    assert_eq!(properties["catalog_digest"], DIGEST);
    assert_eq!(properties["profile"], "kubeflow-26.03");
    assert_eq!(properties["kubernetes_version"], "v1.34.1");
    assert_eq!(properties["complete"], "true");
    assert_eq!(properties["emulator"], "false");
    assert_eq!(properties["defects"], "");
    assert_eq!(properties["verdict.kubeflow-26.03"], "not conformant");
}

// ---------------------------------------------------------------- reports/example

/// The published example; `KFCONFORM_BLESS=1 cargo test --test cli` rewrites it.
fn example_report() -> Report {
    let mut r = sample_report();
    r.run_id = "kfc-example".into();
    r.config.emulator = true;
    r.config.defects = vec!["training.no-master-addr".into()];
    r.config.command =
        "kfconform run --emulator --defect training.no-master-addr --output reports/example".into();
    r.target.server = "https://127.0.0.1:6443".into();
    r.target.platform = "kfconform-emulator".into();
    r.target.kubernetes_version = "v1.35.0".into();
    let titles = [
        "The owner of a Profile is bound to the kubeflow-admin ClusterRole in its namespace",
        "A Profile namespace carries the Pod Security and Istio injection labels",
        "PyTorchJob replicas receive the distributed-training environment",
        "A TrainJob runs its trainer nodes to completion",
    ];
    for (r, t) in r.results.iter_mut().zip(titles) {
        r.title = t.into();
    }
    r.results[2].message =
        "pod pytorch-env-master-0: MASTER_ADDR is not set (expected the master service name)"
            .into();
    r.verdicts = vec![
        compute_verdict(&profile(), &r.results, r.complete),
        ProfileVerdict {
            profile: "kubeflow-26.03/profiles".into(),
            conformant: true,
            certifiable: true,
            reasons: vec![],
        },
    ];
    r
}

#[test]
fn example_report_is_current_and_valid() {
    let dir = manifest("reports/example");
    if std::env::var_os("KFCONFORM_BLESS").is_some() {
        write_report(&dir, &example_report()).unwrap();
    }
    let hint = "reports/example is stale: run KFCONFORM_BLESS=1 cargo test --test cli";
    let json_path = dir.join(REPORT_JSON);
    let read = read_report(&json_path).unwrap();
    assert_eq!(read, example_report(), "{hint}");
    assert_eq!(
        std::fs::read_to_string(&json_path).unwrap(),
        format!("{}\n", serde_json::to_string_pretty(&read).unwrap()),
        "{hint}"
    );
    let junit = std::fs::read_to_string(dir.join(JUNIT_XML)).unwrap();
    assert_eq!(junit, to_junit(&read), "{hint}");
    assert_valid_junit(&junit);
    let html = std::fs::read_to_string(dir.join(kfconform_suite::report::REPORT_HTML)).unwrap();
    assert_eq!(html, kfconform_suite::report::to_html(&read), "{hint}");
}
