//! Results and reports: the result model, `report.json`, `junit.xml`, `report.html`, the
//! verdict, and the diff of two reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::catalog::Level;

pub mod bundle;
pub mod diff;
pub mod dsse;
mod files;
pub mod html;
pub mod inputs;
mod junit;
pub mod keys;
pub mod product;
mod schema;
mod verdict;
pub mod verify;

pub use diff::{
    DIFF_FORMAT_VERSION, DiffInput, Regression, ReportDiff, ServedResource, Side, StatusChange,
    VersionChange, diff, diff_inputs, load_input, load_report_any, render_diff_table,
};
pub use files::{
    JUNIT_XML, REPORT_JSON, limits, parse_report, read_bounded, read_report, write_report,
};
pub use html::{REPORT_HTML, to_html};
pub use junit::to_junit;
pub use schema::{report_schema, validate_report_json};
pub use verdict::{compute_verdict, summarize, verdict_word};

/// One line naming a product from its PRODUCT.yaml form (as the signed statement carries it):
/// name and version, then the vendor, e.g. `Example Kubeflow 1.2.3 (Example Corp)`. Reads the
/// CNCF field `name` when `product` is absent; `None` when neither names anything.
pub fn product_line(product: &serde_json::Value) -> Option<String> {
    let field = |k: &str| {
        product
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = field("product").or_else(|| field("name"))?;
    let mut line = name.to_string();
    if let Some(version) = field("version") {
        line.push(' ');
        line.push_str(version);
    }
    if let Some(vendor) = field("vendor") {
        line.push_str(&format!(" ({vendor})"));
    }
    Some(line)
}

/// Errors writing or reading reports.
#[derive(Debug, Error)]
pub enum ReportError {
    /// The output directory cannot be created or written.
    #[error("output directory {path}: {message}")]
    Output { path: String, message: String },
    /// A report file is malformed.
    #[error("{path}: {message}")]
    Malformed { path: String, message: String },
    /// A PRODUCT.yaml is missing, malformed or for another release (every problem at once).
    #[error(transparent)]
    Product(#[from] product::ProductError),
}

impl ReportError {
    /// Whether the error is the user's (exit 2) rather than the harness's (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(self, ReportError::Output { .. } | ReportError::Product(_))
    }
}

/// Outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The distribution meets the contract.
    Passed,
    /// The distribution broke the contract.
    Failed,
    /// Not run: feature not supported, or not selected.
    Skipped,
    /// The harness could not decide (set-up timeout, unreachable API, interrupted).
    Error,
}

/// One test's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestResult {
    pub id: String,
    pub component: String,
    pub title: String,
    pub level: Level,
    pub features: Vec<String>,
    pub status: Status,
    /// Why it failed, errored or was skipped; empty when passed.
    #[serde(default)]
    pub message: String,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// How many times the test body ran.
    pub attempts: u32,
    /// Files under the output directory holding the evidence, relative to it.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// API requests the test issued, by verb.
    #[serde(default)]
    pub api_requests: BTreeMap<String, u64>,
    /// HTTP API calls the test made to services inside the cluster, by route: `proxy` (the
    /// API server's proxy) or `http` (cluster DNS or an ingress).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_requests: BTreeMap<String, u64>,
    /// Earlier results of this test that a `--rerun-failed` run superseded, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<PreviousAttempt>,
}

/// A result a rerun superseded: which run produced it and what it said.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreviousAttempt {
    pub run_id: String,
    pub status: Status,
    #[serde(default)]
    pub message: String,
    pub duration_seconds: f64,
}

/// How a `--rerun-failed` report came about: the run it completes and the tests run again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Merge {
    /// Run id of the earlier report this one was merged from.
    pub from_run_id: String,
    /// When that earlier run started.
    pub from_started_at: DateTime<Utc>,
    /// Ids of the tests this run executed again; every other result is the earlier run's.
    pub rerun: Vec<String>,
}

/// Facts about the target cluster, from discovery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TargetFacts {
    /// Server URL the run talked to.
    pub server: String,
    /// `gitVersion` from `/version`, e.g. `v1.34.1`.
    pub kubernetes_version: String,
    /// Platform string from `/version`.
    #[serde(default)]
    pub platform: String,
    /// Kubeflow-related group/versions served, with their resources.
    pub kubeflow_apis: BTreeMap<String, Vec<String>>,
    /// Features detected as supported (or forced with `--features`).
    pub features: Vec<String>,
    /// Whether features came from `--features` rather than discovery.
    #[serde(default)]
    pub features_overridden: bool,
}

/// The run configuration as it took effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunConfig {
    pub profile: String,
    pub components: Vec<String>,
    pub focus: Vec<String>,
    pub skip: Vec<String>,
    pub parallel: usize,
    pub timeout_scale: f64,
    pub probe_image: String,
    /// True when run against the embedded emulator.
    pub emulator: bool,
    /// Emulator defects in force (emulator runs only).
    #[serde(default)]
    pub defects: Vec<String>,
    /// The command line that reproduces the run.
    pub command: String,
}

/// Verdict for one profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileVerdict {
    pub profile: String,
    pub conformant: bool,
    /// Whether the catalog tests everything the profile requires; a profile that is not
    /// certifiable is never conformant, whatever its tests did.
    pub certifiable: bool,
    /// Why not, one line per reason; empty when conformant.
    pub reasons: Vec<String>,
}

/// Count of results by status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub error: usize,
}

/// `report.json`: everything a reviewer needs to judge the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Schema identifier of this document.
    #[serde(rename = "$schema")]
    pub schema: String,
    pub run_id: String,
    pub suite_version: String,
    pub catalog_digest: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// False when the run was interrupted before every test finished.
    pub complete: bool,
    pub target: TargetFacts,
    pub config: RunConfig,
    pub summary: Summary,
    pub verdicts: Vec<ProfileVerdict>,
    pub results: Vec<TestResult>,
    /// Set when this report merges a `--rerun-failed` run into an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merge>,
}

/// The `$schema` value written into report.json.
pub const REPORT_SCHEMA_ID: &str = "https://kfconform.io/schemas/report-v1.json";
