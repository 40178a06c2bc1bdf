//! Comparing two reports: what changed between two runs, two targets or two suite versions.
//!
//! The point is a reviewer's question "what got worse?", so besides the raw differences the
//! diff singles out regressions: tests A's profile requires that passed in A and not in B.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::catalog::{Catalog, Level, Profile};

use super::dsse::{self, DSSE_JSON};
use super::verify::{Scratch, identifies_as_emulator};
use super::{REPORT_JSON, Report, ReportError, Status, TestResult, bundle, read_report};

/// Version of the `diff --format json` document ([`ReportDiff`]); its JSON Schema is
/// `reports/diff.schema.json`.
pub const DIFF_FORMAT_VERSION: u32 = 1;

/// Everything that differs between report A and report B. Lists are sorted, so the same two
/// reports always give the same diff.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ReportDiff {
    /// [`DIFF_FORMAT_VERSION`].
    pub format_version: u32,
    /// What report A claims: product, profile, verdict, emulator.
    pub a: Side,
    /// What report B claims.
    pub b: Side,
    /// True when A and B claim different profiles: their verdicts answer different questions.
    pub profiles_differ: bool,
    /// The profile regressions are judged against (A's).
    pub profile: String,
    /// Whether this suite version knows `profile`; when not, every `must` test counts as
    /// required.
    pub profile_known: bool,
    /// Tests A's profile requires that passed in A and did not pass (or did not run) in B.
    pub regressions: Vec<Regression>,
    /// Tests in both reports whose status differs.
    pub status_changes: Vec<StatusChange>,
    /// Test ids only A has.
    pub tests_only_in_a: Vec<String>,
    /// Test ids only B has.
    pub tests_only_in_b: Vec<String>,
    /// Features A's target supports and B's does not.
    pub features_only_in_a: Vec<String>,
    /// Features B's target supports and A's does not.
    pub features_only_in_b: Vec<String>,
    /// Kubeflow group/versions only A's target serves.
    pub group_versions_only_in_a: Vec<String>,
    /// Kubeflow group/versions only B's target serves.
    pub group_versions_only_in_b: Vec<String>,
    /// Resources only A's target serves, within group/versions both serve.
    pub resources_only_in_a: Vec<ServedResource>,
    /// Resources only B's target serves, within group/versions both serve.
    pub resources_only_in_b: Vec<ServedResource>,
    /// The Kubernetes versions, when they differ.
    pub kubernetes_version: Option<VersionChange>,
}

/// What one report claims about itself, as recorded (`diff` verifies nothing: `kfconform
/// verify` does).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Side {
    /// The product, from the signed statement beside the report (`report.dsse.json`, the
    /// signature not checked); `None` when unknown: a bare report.json, an unsigned run, or one
    /// signed without a product.
    pub product: Option<String>,
    /// The profile the run claims.
    pub profile: String,
    /// The recorded verdict for that profile (`CONFORMANT`, `NOT CONFORMANT`, `NOT
    /// CERTIFIABLE`); `None` when the report records none for it.
    pub verdict: Option<String>,
    /// The run was made against the kfconform emulator (embedded, or a target whose version
    /// says so): never a certification.
    pub emulator: bool,
    /// Emulator defects injected into the run.
    pub defects: Vec<String>,
}

impl Side {
    fn of(r: &Report) -> Side {
        Side {
            product: None,
            profile: r.config.profile.clone(),
            verdict: r
                .verdicts
                .iter()
                .find(|v| v.profile == r.config.profile)
                .map(|v| super::verdict_word(v).to_string()),
            emulator: r.config.emulator || identifies_as_emulator(r),
            defects: r.config.defects.clone(),
        }
    }
}

/// One side of a diff as loaded from disk: the report and the product its statement names.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffInput {
    /// The report.
    pub report: Report,
    /// `predicate.product` of the statement beside the report, when there is one for this run.
    pub product: Option<serde_json::Value>,
}

/// A test whose status differs between the two reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusChange {
    pub id: String,
    pub status_a: Status,
    pub status_b: Status,
    /// B's message: why it no longer passes, or why it was skipped.
    pub message_b: String,
}

/// A required test that passed in A and did not pass in B.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Regression {
    pub id: String,
    /// B's status; `None` when B has no result for the test at all.
    pub status_b: Option<Status>,
    pub message_b: String,
}

/// One resource of a served group/version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedResource {
    pub group_version: String,
    pub resource: String,
}

/// A value that differs between A and B.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionChange {
    pub a: String,
    pub b: String,
}

impl ReportDiff {
    /// True when the two reports agree on everything the diff compares.
    pub fn is_empty(&self) -> bool {
        self.regressions.is_empty()
            && self.status_changes.is_empty()
            && self.tests_only_in_a.is_empty()
            && self.tests_only_in_b.is_empty()
            && self.features_only_in_a.is_empty()
            && self.features_only_in_b.is_empty()
            && self.group_versions_only_in_a.is_empty()
            && self.group_versions_only_in_b.is_empty()
            && self.resources_only_in_a.is_empty()
            && self.resources_only_in_b.is_empty()
            && self.kubernetes_version.is_none()
            && !self.profiles_differ
    }
}

/// Compares two loaded reports as [`diff`] does, naming each side's product when its statement
/// does.
pub fn diff_inputs(a: &DiffInput, b: &DiffInput) -> ReportDiff {
    let mut d = diff(&a.report, &b.report);
    d.a.product = a.product.as_ref().and_then(super::product_line);
    d.b.product = b.product.as_ref().and_then(super::product_line);
    d
}

/// Compares report `a` (the baseline) with report `b`.
pub fn diff(a: &Report, b: &Report) -> ReportDiff {
    let by_id_a = by_id(&a.results);
    let by_id_b = by_id(&b.results);
    let profile = resolve_profile(&a.config.profile);

    let mut d = ReportDiff {
        format_version: DIFF_FORMAT_VERSION,
        a: Side::of(a),
        b: Side::of(b),
        profiles_differ: a.config.profile != b.config.profile,
        profile: a.config.profile.clone(),
        profile_known: profile.is_some(),
        ..ReportDiff::default()
    };

    for (id, ra) in &by_id_a {
        match by_id_b.get(id) {
            Some(rb) if rb.status != ra.status => d.status_changes.push(StatusChange {
                id: (*id).to_string(),
                status_a: ra.status,
                status_b: rb.status,
                message_b: rb.message.clone(),
            }),
            Some(_) => {}
            None => d.tests_only_in_a.push((*id).to_string()),
        }
        let rb = by_id_b.get(id);
        if ra.status == Status::Passed
            && rb.is_none_or(|rb| rb.status != Status::Passed)
            && required(ra, profile.as_ref())
        {
            d.regressions.push(Regression {
                id: (*id).to_string(),
                status_b: rb.map(|rb| rb.status),
                message_b: rb.map(|rb| rb.message.clone()).unwrap_or_default(),
            });
        }
    }
    d.tests_only_in_b = by_id_b
        .keys()
        .filter(|id| !by_id_a.contains_key(*id))
        .map(|id| (*id).to_string())
        .collect();

    (d.features_only_in_a, d.features_only_in_b) =
        one_sided(&a.target.features, &b.target.features);

    let apis_a = &a.target.kubeflow_apis;
    let apis_b = &b.target.kubeflow_apis;
    let gvs_a: Vec<&String> = apis_a.keys().collect();
    let gvs_b: Vec<&String> = apis_b.keys().collect();
    (d.group_versions_only_in_a, d.group_versions_only_in_b) = one_sided(&gvs_a, &gvs_b);
    for (gv, resources_a) in apis_a {
        let Some(resources_b) = apis_b.get(gv) else {
            continue;
        };
        let (only_a, only_b) = one_sided(resources_a, resources_b);
        let served = |resource: String| ServedResource {
            group_version: gv.clone(),
            resource,
        };
        d.resources_only_in_a.extend(only_a.into_iter().map(served));
        d.resources_only_in_b.extend(only_b.into_iter().map(served));
    }

    if a.target.kubernetes_version != b.target.kubernetes_version {
        d.kubernetes_version = Some(VersionChange {
            a: a.target.kubernetes_version.clone(),
            b: b.target.kubernetes_version.clone(),
        });
    }
    d
}

/// Results by id, sorted; a retried test listed twice keeps its last result, the final word.
fn by_id(results: &[TestResult]) -> BTreeMap<&str, &TestResult> {
    results.iter().map(|r| (r.id.as_str(), r)).collect()
}

fn resolve_profile(name: &str) -> Option<Profile> {
    match Catalog::embedded() {
        Ok(catalog) => catalog.profile(name).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "embedded catalog unavailable; treating profile as unknown");
            None
        }
    }
}

/// Whether the profile requires the test to pass, by the same rule as the verdict: a `must`
/// test of one of its components whose features it all requires. Without a profile every `must`
/// test counts, since a regression must never go unreported because the suite moved on.
fn required(r: &TestResult, profile: Option<&Profile>) -> bool {
    if r.level != Level::Must {
        return false;
    }
    match profile {
        None => true,
        Some(p) => {
            p.components.contains(&r.component)
                && r.features.iter().all(|f| p.required_features.contains(f))
        }
    }
}

/// Items of `a` not in `b` and of `b` not in `a`, each sorted and deduplicated.
fn one_sided<T: AsRef<str>>(a: &[T], b: &[T]) -> (Vec<String>, Vec<String>) {
    let a: BTreeSet<&str> = a.iter().map(AsRef::as_ref).collect();
    let b: BTreeSet<&str> = b.iter().map(AsRef::as_ref).collect();
    (
        a.difference(&b).map(|s| (*s).to_string()).collect(),
        b.difference(&a).map(|s| (*s).to_string()).collect(),
    )
}

/// Longest message shown in a table cell; the full text is in report.json.
const MESSAGE_WIDTH: usize = 100;

/// Renders the diff as aligned plain text for a terminal. `a_label`/`b_label` name the two
/// reports (usually their paths).
pub fn render_diff_table(d: &ReportDiff, a_label: &str, b_label: &str) -> String {
    let mut out = String::new();
    side_header(&mut out, "A", a_label, &d.a);
    side_header(&mut out, "B", b_label, &d.b);
    if d.profiles_differ {
        let _ = writeln!(
            out,
            "\nPROFILES DIFFER: A claims {}, B claims {}; regressions are judged by A's profile",
            d.a.profile, d.b.profile
        );
    }
    if d.is_empty() {
        out.push_str("no differences\n");
        return out;
    }

    if let Some(v) = &d.kubernetes_version {
        let _ = writeln!(out, "\nKubernetes version: A {}, B {}", v.a, v.b);
    }

    let profile_note = if d.profile_known {
        format!("required by profile {}", d.profile)
    } else {
        format!(
            "profile {} unknown to this suite version: every must test counts",
            d.profile
        )
    };
    if d.regressions.is_empty() {
        let _ = writeln!(out, "\nRegressions ({profile_note}): none");
    } else {
        let _ = writeln!(
            out,
            "\nRegressions ({profile_note}): {}",
            d.regressions.len()
        );
        let rows = d
            .regressions
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    "passed".to_string(),
                    r.status_b.map_or("absent", status_word).to_string(),
                    one_line(&r.message_b),
                ]
            })
            .collect();
        table(&mut out, &["TEST", "A", "B", "MESSAGE IN B"], rows);
    }

    if !d.status_changes.is_empty() {
        let _ = writeln!(out, "\nStatus changes: {}", d.status_changes.len());
        let rows = d
            .status_changes
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    status_word(c.status_a).to_string(),
                    status_word(c.status_b).to_string(),
                    one_line(&c.message_b),
                ]
            })
            .collect();
        table(&mut out, &["TEST", "A", "B", "MESSAGE IN B"], rows);
    }

    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut side = |what: &str, only_a: &[String], only_b: &[String]| {
        for (where_, items) in [("A", only_a), ("B", only_b)] {
            for item in items {
                rows.push(vec![what.to_string(), where_.to_string(), item.clone()]);
            }
        }
    };
    side("test", &d.tests_only_in_a, &d.tests_only_in_b);
    side("feature", &d.features_only_in_a, &d.features_only_in_b);
    side(
        "group/version",
        &d.group_versions_only_in_a,
        &d.group_versions_only_in_b,
    );
    let resource = |r: &ServedResource| format!("{} {}", r.group_version, r.resource);
    let res_a: Vec<String> = d.resources_only_in_a.iter().map(resource).collect();
    let res_b: Vec<String> = d.resources_only_in_b.iter().map(resource).collect();
    side("resource", &res_a, &res_b);
    if !rows.is_empty() {
        let _ = writeln!(out, "\nOnly in one report: {}", rows.len());
        table(&mut out, &["KIND", "ONLY IN", "NAME"], rows);
    }
    out
}

/// What one side claims, first, so a reader knows what is being compared before any detail.
fn side_header(out: &mut String, name: &str, label: &str, s: &Side) {
    let product = match &s.product {
        Some(p) => format!("{p} (from {DSSE_JSON}, not verified)"),
        None => "unknown".to_string(),
    };
    let emulator = match (s.emulator, s.defects.is_empty()) {
        (true, true) => "yes: not a certification".to_string(),
        (_, false) => format!(
            "{}: not a certification (defects: {})",
            if s.emulator { "yes" } else { "no" },
            s.defects.join(", ")
        ),
        (false, true) => "no".to_string(),
    };
    let _ = writeln!(out, "{name}: {label}");
    let _ = writeln!(out, "  product:  {product}");
    let _ = writeln!(out, "  profile:  {}", s.profile);
    let _ = writeln!(
        out,
        "  verdict:  {}",
        s.verdict.as_deref().unwrap_or("none recorded")
    );
    let _ = writeln!(out, "  emulator: {emulator}");
}

/// Writes rows under a header, columns padded to the widest cell; the last column is not
/// padded so lines carry no trailing spaces.
fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Error => "error",
    }
}

/// Folds a message onto one line and shortens it to fit a table cell.
fn one_line(message: &str) -> String {
    let folded = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= MESSAGE_WIDTH {
        return folded;
    }
    let mut cut: String = folded.chars().take(MESSAGE_WIDTH - 1).collect();
    cut.push('…');
    cut
}

/// Reads a report from a `report.json` file, a results directory holding one, or a submission
/// bundle (`.tar.gz`, `.tgz`).
pub fn load_report_any(path: &Path) -> Result<Report, ReportError> {
    load_input(path).map(|i| i.report)
}

/// Reads one side of a diff: a `report.json` file (product unknown), or a results directory or
/// submission bundle, whose `report.dsse.json` may name the product. Every error is
/// [`ReportError::Malformed`] naming `path`, except failing to make a temporary directory.
pub fn load_input(path: &Path) -> Result<DiffInput, ReportError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let scratch = Scratch::new()?;
        let dir = bundle::unpack(path, scratch.path()).map_err(|e| match e {
            ReportError::Malformed { message, .. } => ReportError::Malformed {
                path: path.display().to_string(),
                message: format!("not a submission bundle: {message}"),
            },
            other => other,
        })?;
        return load_dir(&dir).map_err(|e| renamed(e, path, &dir));
    }
    if path.is_dir() {
        return load_dir(path);
    }
    Ok(DiffInput {
        report: read_report(path)?,
        product: None,
    })
}

fn load_dir(dir: &Path) -> Result<DiffInput, ReportError> {
    let file = dir.join(REPORT_JSON);
    if !file.is_file() {
        return Err(ReportError::Malformed {
            path: dir.display().to_string(),
            message: format!("directory has no {REPORT_JSON}"),
        });
    }
    let report = read_report(&file)?;
    // Only a statement about this very run names its product; a stale one is ignored.
    let product = dsse::read_envelope(&dir.join(DSSE_JSON))
        .ok()
        .and_then(|env| env.statement().ok())
        .filter(|s| s.predicate.run_id == report.run_id)
        .and_then(|s| s.predicate.product);
    Ok(DiffInput { report, product })
}

/// An error about a file unpacked into a temporary directory, named inside the bundle instead.
fn renamed(e: ReportError, bundle: &Path, dir: &Path) -> ReportError {
    match e {
        ReportError::Malformed { path, message } => {
            let inner = Path::new(&path)
                .strip_prefix(dir)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let message = if inner.is_empty() {
                message
            } else {
                format!("{inner}: {message}")
            };
            ReportError::Malformed {
                path: bundle.display().to_string(),
                message,
            }
        }
        other => other,
    }
}
