//! report.html: escaping, structure, and a real render in headless Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use kfconform_suite::catalog::{KubernetesRange, Level, Profile};
use kfconform_suite::report::html::{Page, to_html_with, write_html};
use kfconform_suite::report::{
    JUNIT_XML, REPORT_HTML, REPORT_JSON, REPORT_SCHEMA_ID, Report, RunConfig, Status, TargetFacts,
    TestResult, compute_verdict, summarize, to_html, write_report,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const XSS: &str = "<script>alert(1)</script>";

fn result(id: &str, level: Level, status: Status, message: &str) -> TestResult {
    TestResult {
        id: id.to_string(),
        component: id.split('/').next().unwrap().to_string(),
        title: format!("title of {id}"),
        level,
        features: Vec::new(),
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

/// Three components, every status, hostile text wherever the cluster or the user has a say.
fn sample_report() -> Report {
    let mut results = vec![
        result(
            "platform/kubernetes-version",
            Level::Must,
            Status::Passed,
            "",
        ),
        result(
            "platform/upstream-examples-accepted",
            Level::Must,
            Status::Failed,
            &format!("rejected: 400 BadRequest: {XSS}\nsecond line & \"quotes\""),
        ),
        result(
            "training/pytorchjob-env-contract",
            Level::Should,
            Status::Skipped,
            "feature training.pytorchjob not supported",
        ),
        result(
            "training/trainjob-runs",
            Level::Must,
            Status::Error,
            "timed out after 300s waiting for TrainJob \"t1\"",
        ),
        result("profiles/owner-binding", Level::Must, Status::Passed, ""),
        result(
            "profiles/namespace-labels",
            Level::Should,
            Status::Failed,
            "label pod-security.kubernetes.io/enforce missing",
        ),
    ];
    results[0].api_requests = BTreeMap::from([("get".into(), 3), ("list".into(), 1)]);
    results[1].evidence = vec![
        "evidence/platform/upstream-examples-accepted/events.json".into(),
        "evidence/platform/upstream-examples-accepted/rejected PyTorchJob.json".into(),
    ];
    results[1].title = format!("title {XSS}");
    results[1].attempts = 2;
    results[3].evidence = vec!["evidence/training/trainjob-runs/\"><script>x</script>.log".into()];
    let profile = Profile {
        name: "kubeflow-26.03".into(),
        description: String::new(),
        release: "26.03".into(),
        kubernetes: KubernetesRange {
            min: "1.31".into(),
            max: "1.35".into(),
        },
        components: vec!["platform".into(), "training".into(), "profiles".into()],
        required_features: vec![],
        gaps: vec![],
    };
    let verdict = compute_verdict(&profile, &results, true);
    Report {
        schema: REPORT_SCHEMA_ID.to_string(),
        run_id: "kfc-7d3e2a".into(),
        suite_version: "0.1.0".into(),
        catalog_digest: "ab".repeat(32),
        started_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 30, 0).unwrap(),
        finished_at: Utc.with_ymd_and_hms(2026, 3, 14, 9, 31, 5).unwrap(),
        complete: true,
        target: TargetFacts {
            server: "https://10.96.0.1:6443".into(),
            kubernetes_version: "v1.34.1".into(),
            platform: "linux/amd64".into(),
            kubeflow_apis: BTreeMap::from([(
                "kubeflow.org/v1".into(),
                vec!["profiles".into(), "pytorchjobs".into()],
            )]),
            features: vec!["profiles.profile".into()],
            features_overridden: false,
        },
        config: RunConfig {
            profile: "kubeflow-26.03".into(),
            components: vec![],
            focus: vec![],
            skip: vec![],
            parallel: 4,
            timeout_scale: 1.0,
            probe_image: "ghcr.io/example/kfconform:0.1.0".into(),
            emulator: true,
            defects: vec![format!("defect{XSS}")],
            command: format!("kfconform run --focus '{XSS}'"),
        },
        summary: summarize(&results),
        verdicts: vec![verdict],
        results,
        merged: None,
    }
}

// ---------------------------------------------------------------- escaping

#[test]
fn hostile_text_is_escaped_everywhere() {
    let html = to_html(&sample_report());
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "raw script tag in:\n{html}");
    assert!(!html.contains(XSS));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("second line &amp; &quot;quotes&quot;"));
    // A quote in an evidence path cannot close the href attribute.
    assert!(html.contains(
        "href=\"./evidence/training/trainjob-runs/%22%3E%3Cscript%3Ex%3C/script%3E.log\""
    ));
}

#[test]
fn page_is_self_contained() {
    let html = to_html(&sample_report());
    let lower = html.to_ascii_lowercase();
    for forbidden in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        " src=",
        "href=\"http",
        "href=\"//",
        "@import",
        "url(",
    ] {
        assert!(!lower.contains(forbidden), "found {forbidden:?}");
    }
    assert!(lower.starts_with("<!doctype html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<html lang=\"en\">"));
}

// ---------------------------------------------------------------- structure

#[test]
fn every_test_and_fact_is_on_the_page() {
    let report = sample_report();
    let html = to_html(&report);
    for t in &report.results {
        assert!(html.contains(&t.id), "missing {}", t.id);
    }
    for fact in [
        "kfc-7d3e2a",
        "0.1.0",
        "https://10.96.0.1:6443",
        "v1.34.1",
        "2026-03-14T09:30:00Z",
        "2026-03-14T09:31:05Z",
        "Complete",
        "NOT CONFORMANT",
        "kubeflow-26.03",
        "platform/upstream-examples-accepted failed",
        "get 3, list 1",
        "2 attempts",
    ] {
        assert!(html.contains(fact), "missing {fact:?}");
    }
    // Component matrix: one row per component, counts in passed/failed/skipped/error order.
    assert!(html.contains(
        "<tr><th scope=\"row\">platform</th><td class=\"num\">1</td><td class=\"num\">1</td>\
         <td class=\"num zero\">0</td><td class=\"num zero\">0</td><td class=\"num\">2</td></tr>"
    ));
    assert!(html.contains(
        "<tr><th scope=\"row\">training</th><td class=\"num zero\">0</td><td class=\"num zero\">0\
         </td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">2</td></tr>"
    ));
}

#[test]
fn failures_come_first_with_evidence_links() {
    let html = to_html(&sample_report());
    let problems = html.find("id=\"problems\"").unwrap();
    let should = html.find("id=\"should-problems\"").unwrap();
    let all = html.find("id=\"tests\"").unwrap();
    assert!(problems < should && should < all);
    let section = &html[problems..should];
    assert!(section.contains("platform/upstream-examples-accepted"));
    assert!(section.contains("training/trainjob-runs"));
    assert!(!section.contains("platform/kubernetes-version"));
    assert!(!section.contains("training/pytorchjob-env-contract"));
    // SHOULD failures are apart: they never decide the verdict.
    assert!(!section.contains("profiles/namespace-labels"));
    assert!(section.contains("MUST tests failed or errored"));
    let should_section = &html[should..all];
    assert!(should_section.contains("profiles/namespace-labels"));
    assert!(should_section.contains("never decide conformance"));
    assert!(!should_section.contains("platform/upstream-examples-accepted"));
    assert!(section.contains(
        "<a href=\"./evidence/platform/upstream-examples-accepted/events.json\">\
         evidence/platform/upstream-examples-accepted/events.json</a>"
    ));
    assert!(section.contains(
        "href=\"./evidence/platform/upstream-examples-accepted/rejected%20PyTorchJob.json\""
    ));
    // The full table links failed rows to their details.
    assert!(html[all..].contains("href=\"#test-platform_upstream-examples-accepted\""));
    assert!(section.contains("id=\"test-platform_upstream-examples-accepted\""));
}

#[test]
fn conformant_and_incomplete_runs_say_so() {
    let mut report = sample_report();
    report.results.retain(|r| r.status == Status::Passed);
    report.summary = summarize(&report.results);
    report.verdicts[0].conformant = true;
    report.verdicts[0].reasons.clear();
    let html = to_html(&report);
    assert!(html.contains(">CONFORMANT<"));
    assert!(!html.contains("NOT CONFORMANT"));
    assert!(html.contains("No MUST test failed or errored."));
    assert!(html.contains("No SHOULD test failed or errored."));
    assert!(!html.contains("INCOMPLETE"));

    report.complete = false;
    assert!(to_html(&report).contains("INCOMPLETE RUN"));
}

/// Text of the page before the first `marker`.
fn before<'a>(html: &'a str, marker: &str) -> &'a str {
    &html[..html.find(marker).unwrap_or_else(|| panic!("no {marker:?}"))]
}

#[test]
fn the_page_leads_with_banner_product_signature_and_verdict() {
    let report = sample_report();
    let page = Page {
        product: Some("Example Kubeflow 1.2.3 (Example <Corp>)".into()),
        signed: true,
    };
    let html = to_html_with(&report, &page);
    // Everything a reviewer reads first comes before the run's facts and the results.
    let lead = before(&html, "id=\"run\"");
    for needle in [
        "EMULATOR RUN \u{2014} not a certification",
        "the run was made against the kfconform emulator",
        "the run injected defects (defect&lt;script&gt;",
        "Example Kubeflow 1.2.3 (Example &lt;Corp&gt;)",
        "signed by this run: see <code>report.dsse.json</code>",
        "<code>kfconform verify DIR --key PUB</code>",
        "NOT CONFORMANT",
        "Emulator run: this verdict certifies no product.",
    ] {
        assert!(lead.contains(needle), "{needle:?} not in the lead:\n{lead}");
    }
    assert!(
        before(&html, "id=\"verdict\"").contains("EMULATOR RUN"),
        "the banner comes first"
    );

    // Without a page context it says what it does not know.
    let plain = to_html(&report);
    let lead = before(&plain, "id=\"run\"");
    assert!(lead.contains("unknown to this page"), "{lead}");
    assert!(
        lead.contains("unsigned when this page was written"),
        "{lead}"
    );
}

#[test]
fn only_a_real_cluster_run_has_no_banner() {
    let mut report = sample_report();
    report.config.emulator = false;
    report.config.defects.clear();
    let html = to_html(&report);
    assert!(!html.contains("EMULATOR RUN"));
    assert!(!html.contains("certifies no product"));
    // Defects alone, or a target that says it is the emulator, still raise it.
    let mut defects = report.clone();
    defects.config.defects = vec!["platform.old-kubernetes".into()];
    assert!(to_html(&defects).contains("EMULATOR RUN"));
    let mut separate = report.clone();
    separate.target.kubernetes_version = "v1.34.2+kfconform-emulator".into();
    let html = to_html(&separate);
    assert!(html.contains("the target identifies itself as the kfconform emulator"));
}

#[test]
fn write_html_replaces_the_page_with_what_the_run_knows() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample_report();
    write_report(dir.path(), &report).unwrap();
    let page = Page {
        product: Some("P 1".into()),
        signed: true,
    };
    let path = write_html(dir.path(), &report, &page).unwrap();
    assert_eq!(path, dir.path().join(REPORT_HTML));
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        to_html_with(&report, &page)
    );
}

/// `run --sign-key --product` writes the page knowing both, before signing it.
#[test]
fn a_signed_run_names_its_product_and_signature() {
    let work = tempfile::tempdir().unwrap();
    let (private, _) =
        kfconform_suite::report::keys::write_keypair(&work.path().join("keys")).unwrap();
    let product = work.path().join("PRODUCT.yaml");
    std::fs::write(&product, crate::util::PRODUCT_YAML_TEXT).unwrap();
    let out = work.path().join("results");
    let (key, product) = (private.to_str().unwrap(), product.to_str().unwrap());
    crate::util::run_emulator(&out, &["--sign-key", key, "--product", product], 0);
    let html = std::fs::read_to_string(out.join(REPORT_HTML)).unwrap();
    let lead = before(&html, "id=\"run\"");
    assert!(lead.contains("EMULATOR RUN"), "{lead}");
    assert!(
        lead.contains("Example Kubeflow 1.2.3 (Example Corp) (PRODUCT.yaml given to this run)"),
        "{lead}"
    );
    assert!(lead.contains("signed by this run"), "{lead}");
}

#[test]
fn write_report_writes_the_page_too() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample_report();
    let paths = write_report(dir.path(), &report).unwrap();
    assert_eq!(
        paths,
        vec![
            dir.path().join(REPORT_JSON),
            dir.path().join(JUNIT_XML),
            dir.path().join(REPORT_HTML),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&paths[2]).unwrap(),
        to_html(&report)
    );
}

// ---------------------------------------------------------------- real render

/// Chromium's own chatter on stderr is noisy; only page-level errors matter here.
const CONSOLE_ERRORS: [&str; 3] = ["Uncaught", "ERROR:CONSOLE", "Content Security Policy"];

#[tokio::test(flavor = "current_thread")]
async fn renders_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "chromium not found: run .ci/setup"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let profile_dir = dir.path().join("chromium-profile");
    let shot = dir.path().join("shot.png");
    write_report(&out, &sample_report()).unwrap();
    let page = out.join(REPORT_HTML).canonicalize().unwrap();

    let child = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // A hung browser fails the test instead of the CI run; dropping the child kills it.
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("chromium did not finish within 120s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chromium failed: {}\n{stderr}",
        output.status
    );
    for marker in CONSOLE_ERRORS {
        assert!(
            !stderr.contains(marker),
            "console error {marker:?}:\n{stderr}"
        );
    }

    assert!(shot.is_file(), "no screenshot; stderr:\n{stderr}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 900));
    let bytes = &buf[..info.buffer_size()];
    let pixel = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let colours: BTreeSet<&[u8]> = bytes.chunks_exact(pixel).collect();
    // Text, table borders, the verdict box and status badges: far more than a blank page has.
    assert!(
        colours.len() > 16,
        "screenshot looks blank: {} distinct colours",
        colours.len()
    );
    if let Ok(keep) = std::env::var("KFCONFORM_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
