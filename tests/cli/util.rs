//! Fixtures shared by the signing, verify and bundle tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{TimeZone as _, Utc};
use kfconform_suite::catalog::{Catalog, DEFAULT_PROFILE};
use kfconform_suite::report::{
    REPORT_SCHEMA_ID, Report, RunConfig, Status, TargetFacts, TestResult, compute_verdict,
    summarize,
};

/// A complete, conformant run of the default profile, consistent with this catalog.
pub fn conformant_report(run_id: &str, command: &str) -> Report {
    let catalog = Catalog::embedded().unwrap();
    let profile = catalog.profile(DEFAULT_PROFILE).unwrap();
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
    }
}
