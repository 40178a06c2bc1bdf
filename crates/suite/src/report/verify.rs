//! What a reviewer runs on a submission: signature, digests, schema, statement, junit.xml and a
//! verdict recomputed from the results and this kfconform's catalog, with no cluster.
//!
//! Every failed check adds one precise line to [`Verification::problems`]; a check that cannot
//! run because an earlier one failed is recorded as not ok without repeating the cause.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::Serialize;

use super::bundle::{self, PRODUCT_YAML, Product};
use super::dsse::{self, DSSE_JSON, EVIDENCE_DIR, Envelope, SignError, Statement};
use super::keys::PublicKey;
use super::{
    JUNIT_XML, ProfileVerdict, REPORT_JSON, Report, ReportError, Status, TestResult,
    compute_verdict, read_report, summarize,
};
use crate::catalog::{Catalog, Level, Profile};

/// report.dsse.json present and holding an in-toto Statement.
pub const CHECK_ENVELOPE: &str = "envelope";
/// Signatures by trusted keys.
pub const CHECK_SIGNATURE: &str = "signature";
/// Subject digests and unsigned evidence.
pub const CHECK_SUBJECTS: &str = "subjects";
/// report.json against its JSON Schema.
pub const CHECK_SCHEMA: &str = "schema";
/// The signed predicate against report.json.
pub const CHECK_STATEMENT: &str = "statement";
/// junit.xml against report.json.
pub const CHECK_JUNIT: &str = "junit";
/// The verdict recomputed from the results and the catalog.
pub const CHECK_VERDICT: &str = "verdict";
/// Bundle layout and PRODUCT.yaml (bundles only).
pub const CHECK_BUNDLE: &str = "bundle";
/// The run was made against a real cluster, so it can certify: not the emulator, no defects.
pub const CHECK_CERTIFICATION: &str = "certification";

/// The prefix of the problem a run against the emulator gets: authentic, not a certification.
pub const NOT_A_CERTIFICATION: &str = "not a certification: ";

/// One verification step.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// One of the `CHECK_*` names.
    pub name: String,
    /// False when the check found a problem or could not run.
    pub ok: bool,
    /// What was established, or why it failed or could not run.
    pub detail: String,
}

/// The outcome of verifying a results directory or bundle.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verification {
    /// One line per problem; empty means the submission verifies.
    pub problems: Vec<String>,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Verdicts recomputed from the results (claimed profile first), not the recorded ones.
    pub verdicts: Vec<ProfileVerdict>,
    /// Key ids of the trusted keys that signed.
    pub signers: Vec<String>,
    /// Set when the input is not a readable submission at all (a bundle that does not unpack,
    /// a report.json missing or malformed): a usage error for the command line, not a
    /// verification that ran and failed.
    #[serde(skip)]
    unreadable: Option<String>,
}

/// Version of the `verify --format json` document ([`VerifyOutput`]); its JSON Schema is
/// `reports/verify.schema.json`.
pub const VERIFY_FORMAT_VERSION: u32 = 1;

/// The `verify --format json` document: the verification with its format version and outcome.
#[derive(Debug, Serialize)]
pub struct VerifyOutput<'a> {
    /// [`VERIFY_FORMAT_VERSION`].
    pub format_version: u32,
    /// Whether the submission verified (no problems).
    pub verified: bool,
    /// The checks, problems, recomputed verdicts and signers.
    #[serde(flatten)]
    pub verification: &'a Verification,
}

impl Verification {
    /// True when nothing is wrong: signed by a trusted key, intact, consistent, and conformant
    /// to the claimed profile by this kfconform's catalog.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Why the input is not a readable submission (one line, relative to the path given), or
    /// `None` when verification could run. Such an input never verifies either.
    pub fn unreadable(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }

    /// The versioned document `verify --format json` prints.
    pub fn output(&self) -> VerifyOutput<'_> {
        VerifyOutput {
            format_version: VERIFY_FORMAT_VERSION,
            verified: self.ok(),
            verification: self,
        }
    }

    /// Accepts a run that is authentic but not a certification (an emulator or defect run),
    /// for demonstrations: its certification problems become the check's note.
    pub fn accept_demonstration(&mut self) {
        let before = self.problems.len();
        self.problems
            .retain(|p| !p.starts_with(NOT_A_CERTIFICATION));
        if before == self.problems.len() {
            return;
        }
        if let Some(c) = self
            .checks
            .iter_mut()
            .find(|c| c.name == CHECK_CERTIFICATION)
        {
            c.ok = true;
            c.detail = format!("accepted as a demonstration: {}", c.detail);
        }
    }

    /// Records a check that ran: ok when it found no problems.
    fn record(&mut self, name: &str, problems: Vec<String>, ok_detail: impl Into<String>) {
        let detail = match problems.len() {
            0 => ok_detail.into(),
            1 => problems[0].clone(),
            n => format!("{} (and {} more)", problems[0], n - 1),
        };
        self.checks.push(Check {
            name: name.to_string(),
            ok: problems.is_empty(),
            detail,
        });
        // Two checks can trip over the same cause (a missing junit.xml); say it once.
        for p in problems {
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }

    /// Records a check that could not run; its cause is already a problem.
    fn not_checked(&mut self, name: &str, why: &str) {
        self.checks.push(Check {
            name: name.to_string(),
            ok: false,
            detail: format!("not checked: {why}"),
        });
    }
}

/// Verifies the results directory `dir` against `trusted` keys.
pub fn verify_results(dir: &Path, trusted: &[PublicKey]) -> Verification {
    let mut v = Verification::default();

    // 1. The envelope and the statement inside it.
    let env = read_envelope(dir);
    let mut statement: Option<Statement> = None;
    match &env {
        Err(problem) => v.record(CHECK_ENVELOPE, vec![problem.clone()], ""),
        Ok(env) => match env.statement() {
            Ok(s) => {
                let ok = format!(
                    "{DSSE_JSON}: in-toto Statement v1, {} subject(s)",
                    s.subject.len()
                );
                statement = Some(s);
                v.record(CHECK_ENVELOPE, Vec::new(), ok);
            }
            // Reported once, by the signature check, which refuses the same envelope.
            Err(SignError::PayloadType { .. }) => {
                v.record(CHECK_ENVELOPE, Vec::new(), format!("{DSSE_JSON}: parses"));
            }
            Err(e) => v.record(CHECK_ENVELOPE, vec![sign_problem(&e)], ""),
        },
    }

    // 2. Signatures over the PAE by a trusted key.
    match &env {
        Err(_) => v.not_checked(CHECK_SIGNATURE, "no envelope"),
        Ok(env) => match dsse::verify_signatures(env, trusted) {
            Ok(signers) => {
                let detail = format!("signed by trusted key(s) {}", signers.join(", "));
                v.signers = signers;
                v.record(CHECK_SIGNATURE, Vec::new(), detail);
            }
            Err(e) => v.record(CHECK_SIGNATURE, vec![sign_problem(&e)], ""),
        },
    }

    // 3. Subject digests, and no unsigned evidence.
    match (&env, &statement) {
        (Ok(env), Some(s)) => {
            let problems = dsse::verify_subjects(env, dir);
            v.record(
                CHECK_SUBJECTS,
                problems,
                format!("{} subject digest(s) match", s.subject.len()),
            );
        }
        _ => v.not_checked(CHECK_SUBJECTS, "no readable statement"),
    }

    // 4. report.json against its schema.
    let report_path = dir.join(REPORT_JSON);
    let report = match read_report(&report_path) {
        Err(_) if fs::symlink_metadata(&report_path).is_err() => {
            let problem = format!("{REPORT_JSON}: missing");
            v.unreadable = Some(problem.clone());
            v.record(CHECK_SCHEMA, vec![problem], "");
            None
        }
        Ok(r) => {
            v.record(CHECK_SCHEMA, Vec::new(), format!("{REPORT_JSON}: valid"));
            Some(r)
        }
        Err(e) => {
            let problem = report_problem(&e);
            v.unreadable = Some(problem.clone());
            v.record(CHECK_SCHEMA, vec![problem], "");
            None
        }
    };
    let Some(report) = report else {
        for name in [CHECK_STATEMENT, CHECK_JUNIT, CHECK_VERDICT] {
            v.not_checked(name, "report.json unreadable");
        }
        return v;
    };

    // 5. The signed predicate says what report.json says.
    match &statement {
        Some(s) => v.record(
            CHECK_STATEMENT,
            predicate_problems(s, &report),
            "predicate agrees with report.json",
        ),
        None => v.not_checked(CHECK_STATEMENT, "no readable statement"),
    }

    // 6. junit.xml tells the same story.
    let junit = junit_problems(&dir.join(JUNIT_XML), &report);
    v.record(
        CHECK_JUNIT,
        junit,
        format!(
            "{} test case(s) agree with report.json",
            report.results.len()
        ),
    );

    // 7. The verdict, recomputed.
    let (problems, verdicts, detail) = verdict_problems(&report);
    v.verdicts = verdicts;
    v.record(CHECK_VERDICT, problems, detail);

    // 8. Made against a real cluster: an emulator run proves the tooling, never a product.
    v.record(
        CHECK_CERTIFICATION,
        certification_problems(&report),
        format!("run against {}", report.target.server),
    );
    v
}

/// Whether the target's version says it is the kfconform emulator (`+kfconform-emulator`
/// build metadata), as an emulator started on its own (`kfconform emulator`) does.
pub fn identifies_as_emulator(report: &Report) -> bool {
    let build = format!("+{}", kfconform_core::contract::EMULATOR_BUILD);
    report.target.kubernetes_version.contains(&build)
}

/// Why a run cannot certify a product even when authentic and passing: it ran against the
/// kfconform emulator, or with injected defects. Each line starts with [`NOT_A_CERTIFICATION`];
/// none means the run was made against a real cluster.
pub fn certification_problems(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if report.config.emulator {
        out.push(format!(
            "{NOT_A_CERTIFICATION}the run was made against the kfconform emulator, not a \
             distribution's cluster"
        ));
    }
    if !report.config.emulator && identifies_as_emulator(report) {
        out.push(format!(
            "{NOT_A_CERTIFICATION}the target identifies itself as the kfconform emulator \
             (version {})",
            report.target.kubernetes_version
        ));
    }
    if !report.config.defects.is_empty() {
        out.push(format!(
            "{NOT_A_CERTIFICATION}the run injected defects ({})",
            report.config.defects.join(", ")
        ));
    }
    out
}

/// Verifies a results directory, or a bundle (`.tar.gz` made by [`bundle::pack`]): the bundle
/// is unpacked into a temporary directory and its results verified, then PRODUCT.yaml is
/// checked against the signed statement. Errors only when `path` cannot be read at all or no
/// temporary directory can be made; anything wrong with the submission is a problem.
pub fn verify_path(path: &Path, trusted: &[PublicKey]) -> Result<Verification, ReportError> {
    let meta = fs::metadata(path).map_err(|e| ReportError::Malformed {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    if meta.is_dir() {
        return Ok(verify_results(path, trusted));
    }
    let scratch = Scratch::new()?;
    let submission = match bundle::unpack(path, &scratch.0) {
        Ok(dir) => dir,
        Err(ReportError::Malformed { message, .. }) => {
            let mut v = Verification {
                unreadable: Some(format!("not a submission bundle: {message}")),
                ..Verification::default()
            };
            v.record(CHECK_BUNDLE, vec![format!("bundle: {message}")], "");
            return Ok(v);
        }
        Err(e) => return Err(e),
    };
    let mut v = verify_results(&submission, trusted);
    let problems = bundle_problems(&submission);
    v.record(
        CHECK_BUNDLE,
        problems,
        format!("only signed files; {PRODUCT_YAML} valid and signed"),
    );
    Ok(v)
}

/// A private temporary directory, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Creates a fresh directory only this user can read.
    pub(crate) fn new() -> Result<Self, ReportError> {
        let dir = std::env::temp_dir().join(format!(
            "kfconform-verify-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(|e| ReportError::Output {
            path: dir.display().to_string(),
            message: format!("cannot create a temporary directory: {e}"),
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove temporary directory");
        }
    }
}

fn read_envelope(dir: &Path) -> Result<Envelope, String> {
    let path = dir.join(DSSE_JSON);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("{DSSE_JSON}: missing"));
        }
        Err(e) => return Err(format!("{DSSE_JSON}: cannot read: {e}")),
        Ok(m) if !m.is_file() => return Err(format!("{DSSE_JSON}: not a regular file")),
        Ok(_) => {}
    }
    let text = super::read_bounded(&path, super::limits::ENVELOPE)
        .map_err(|e| format!("{DSSE_JSON}: cannot read: {e}"))?;
    Envelope::from_json(&text).map_err(|e| sign_problem(&e))
}

/// One line naming the envelope file rather than the generic "envelope".
fn sign_problem(e: &SignError) -> String {
    match e {
        SignError::Malformed(m) => format!("{DSSE_JSON}: malformed: {m}"),
        SignError::NoTrustedKeys => e.to_string(),
        other => {
            let text = other.to_string();
            let text = text.strip_prefix("envelope: ").unwrap_or(&text);
            format!("{DSSE_JSON}: {text}")
        }
    }
}

fn report_problem(e: &ReportError) -> String {
    match e {
        ReportError::Malformed { message, .. } => format!("{REPORT_JSON}: {message}"),
        ReportError::Output { message, .. } => format!("{REPORT_JSON}: {message}"),
        ReportError::Product(e) => e.to_string(),
    }
}

fn predicate_problems(s: &Statement, r: &Report) -> Vec<String> {
    let p = &s.predicate;
    let fields: [(&str, bool); 11] = [
        ("run_id", p.run_id == r.run_id),
        ("suite_version", p.suite_version == r.suite_version),
        ("catalog_digest", p.catalog_digest == r.catalog_digest),
        ("started_at", p.started_at == r.started_at),
        ("finished_at", p.finished_at == r.finished_at),
        ("complete", p.complete == r.complete),
        ("profile", p.profile == r.config.profile),
        ("verdicts", p.verdicts == r.verdicts),
        ("summary", p.summary == r.summary),
        ("target", p.target == r.target),
        ("config", p.config == r.config),
    ];
    fields
        .iter()
        .filter(|(_, same)| !same)
        .map(|(field, _)| format!("{DSSE_JSON}: predicate.{field} differs from {REPORT_JSON}"))
        .collect()
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Error => "error",
    }
}

fn junit_problems(path: &Path, report: &Report) -> Vec<String> {
    let text = match super::read_bounded(path, super::limits::JUNIT_XML) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return vec![format!("{JUNIT_XML}: missing")];
        }
        Err(e) => return vec![format!("{JUNIT_XML}: cannot read: {e}")],
    };
    let cases = match parse_junit(&text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{JUNIT_XML}: malformed: {e}")],
    };
    let mut in_junit: BTreeMap<&str, Vec<Status>> = BTreeMap::new();
    for (name, status) in &cases {
        in_junit.entry(name).or_default().push(*status);
    }
    let mut in_report: BTreeMap<&str, Vec<Status>> = BTreeMap::new();
    for r in &report.results {
        in_report.entry(&r.id).or_default().push(r.status);
    }
    let mut problems = Vec::new();
    for (id, want) in &in_report {
        let Some(got) = in_junit.get(id) else {
            problems.push(format!("{JUNIT_XML}: test {id} missing"));
            continue;
        };
        if got.len() != want.len() {
            problems.push(format!(
                "{JUNIT_XML}: test {id} appears {} time(s) but {} in {REPORT_JSON}",
                got.len(),
                want.len()
            ));
            continue;
        }
        if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
            problems.push(format!(
                "{JUNIT_XML}: {id} is {} in junit but {} in {REPORT_JSON}",
                status_word(*g),
                status_word(*w)
            ));
        }
    }
    for id in in_junit.keys().filter(|id| !in_report.contains_key(*id)) {
        problems.push(format!("{JUNIT_XML}: test {id} is not in {REPORT_JSON}"));
    }
    problems
}

/// Test cases of a JUnit document as (name, status), in document order.
/// The test cases of a junit.xml as (name, status), or why it is not one kfconform wrote.
pub fn parse_junit(text: &str) -> Result<Vec<(String, Status)>, String> {
    let mut reader = Reader::from_str(text);
    let mut cases = Vec::new();
    let mut current: Option<(String, Status)> = None;
    let mut depth: usize = 0;
    let mut roots = 0;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        let (element, empty) = match event {
            Event::Eof => break,
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if e.name().as_ref() == "testcase"
                    && let Some(case) = current.take()
                {
                    cases.push(case);
                }
                continue;
            }
            _ => continue,
        };
        if depth == 0 {
            roots += 1;
        }
        if !empty {
            depth += 1;
        }
        let name = element.name();
        match name.as_ref() {
            "testcase" => {
                if current.is_some() {
                    return Err("a testcase inside a testcase".to_string());
                }
                let case = (testcase_name(&element)?, Status::Passed);
                if empty {
                    cases.push(case);
                } else {
                    current = Some(case);
                }
            }
            outcome @ ("failure" | "error" | "skipped") => {
                let Some((case, status)) = current.as_mut() else {
                    continue;
                };
                if *status != Status::Passed {
                    return Err(format!("testcase {case} has more than one outcome"));
                }
                *status = match outcome {
                    "failure" => Status::Failed,
                    "error" => Status::Error,
                    _ => Status::Skipped,
                };
            }
            _ => {}
        }
    }
    if depth != 0 || current.is_some() {
        return Err("unexpected end of document".to_string());
    }
    if roots != 1 {
        return Err(format!("expected one root element, found {roots}"));
    }
    Ok(cases)
}

fn testcase_name(e: &BytesStart<'_>) -> Result<String, String> {
    let attr = e
        .try_get_attribute("name")
        .map_err(|err| format!("testcase: {err}"))?
        .ok_or_else(|| "a testcase has no name".to_string())?;
    attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map(|v| v.into_owned())
        .map_err(|err| format!("testcase: {err}"))
}

/// Step 7: the verdict recomputed with this kfconform's catalog. Returns (problems,
/// recomputed verdicts, detail when fine).
fn verdict_problems(report: &Report) -> (Vec<String>, Vec<ProfileVerdict>, String) {
    let mut problems = Vec::new();
    if report.suite_version != crate::SUITE_VERSION {
        problems.push(format!(
            "suite version {} is not current (this kfconform is {})",
            report.suite_version,
            crate::SUITE_VERSION
        ));
    }
    let catalog = match Catalog::embedded() {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("this kfconform's catalog does not load: {e}"));
            return (problems, Vec::new(), String::new());
        }
    };
    if report.catalog_digest != catalog.digest {
        problems.push(format!(
            "catalog digest {} is not this kfconform's catalog ({})",
            report.catalog_digest, catalog.digest
        ));
    }
    if summarize(&report.results) != report.summary {
        problems.push(format!("{REPORT_JSON}: summary does not count its results"));
    }
    // Judge by the catalog's level, component and features, not the ones the report carries,
    // so editing a result's level to `should` cannot excuse its failure.
    let mut results: Vec<TestResult> = Vec::with_capacity(report.results.len());
    for r in &report.results {
        let mut r = r.clone();
        match catalog.test(&r.id) {
            None => problems.push(format!(
                "{REPORT_JSON}: result {} is not a test of this kfconform's catalog",
                r.id
            )),
            Some(spec) => {
                if spec.level != r.level
                    || spec.component != r.component
                    || spec.features != r.features
                {
                    problems.push(format!(
                        "{REPORT_JSON}: result {} differs from the catalog in level, component or features",
                        r.id
                    ));
                }
                r.level = spec.level;
                r.component = spec.component.clone();
                r.features = spec.features.clone();
            }
        }
        results.push(r);
    }

    let claimed = &report.config.profile;
    let profile = match catalog.profile(claimed) {
        Ok(p) => p,
        Err(_) => {
            problems.push(format!("profile {claimed}: unknown to this kfconform"));
            return (problems, Vec::new(), String::new());
        }
    };
    problems.extend(required_problems(
        catalog,
        &profile,
        &results,
        report.complete,
    ));

    let mut verdicts = Vec::new();
    let recomputed = compute_verdict(&profile, &results, report.complete);
    match report.verdicts.iter().find(|v| &v.profile == claimed) {
        None => problems.push(format!(
            "profile {claimed}: {REPORT_JSON} records no verdict for it"
        )),
        Some(recorded) => problems.extend(compare_verdict(recorded, &recomputed)),
    }
    let detail = format!(
        "profile {claimed}: {} (recomputed)",
        super::verdict_word(&recomputed).to_lowercase()
    );
    verdicts.push(recomputed);
    for recorded in report.verdicts.iter().filter(|v| &v.profile != claimed) {
        match catalog.profile(&recorded.profile) {
            Ok(p) => {
                let again = compute_verdict(&p, &results, report.complete);
                problems.extend(compare_verdict(recorded, &again));
                verdicts.push(again);
            }
            Err(_) => problems.push(format!(
                "profile {}: unknown to this kfconform",
                recorded.profile
            )),
        }
    }
    (problems, verdicts, detail)
}

/// The profile certifiable by this catalog, every required test of the profile present and
/// passed, the run complete, and no `must`
/// test of a supported optional feature failed: exactly what makes the verdict conformant,
/// one line per reason.
fn required_problems(
    catalog: &Catalog,
    profile: &Profile,
    results: &[TestResult],
    complete: bool,
) -> Vec<String> {
    let name = &profile.name;
    let mut problems: Vec<String> = profile
        .gaps
        .iter()
        .map(|g| format!("profile {name}: not certifiable: {g}"))
        .collect();
    if !complete {
        problems.push(format!("profile {name}: run incomplete (interrupted)"));
    }
    let mut required = BTreeSet::new();
    for spec in &catalog.tests {
        if spec.level != Level::Must
            || !profile.components.contains(&spec.component)
            || !spec
                .features
                .iter()
                .all(|f| profile.required_features.contains(f))
        {
            continue;
        }
        required.insert(spec.id.as_str());
        let mut found = results.iter().filter(|r| r.id == spec.id).peekable();
        if found.peek().is_none() {
            problems.push(format!("profile {name}: required test {} missing", spec.id));
            continue;
        }
        if let Some(r) = found.find(|r| r.status != Status::Passed) {
            problems.push(with_message(
                format!(
                    "profile {name}: required test {} {}",
                    r.id,
                    status_word(r.status)
                ),
                &r.message,
            ));
        }
    }
    // A supported optional feature that is present must also work.
    for r in results {
        if r.level == Level::Must
            && profile.components.contains(&r.component)
            && !required.contains(r.id.as_str())
            && matches!(r.status, Status::Failed | Status::Error)
        {
            problems.push(with_message(
                format!("profile {name}: {} {}", r.id, status_word(r.status)),
                &r.message,
            ));
        }
    }
    problems
}

fn compare_verdict(recorded: &ProfileVerdict, recomputed: &ProfileVerdict) -> Vec<String> {
    if recorded.conformant != recomputed.conformant
        || recorded.certifiable != recomputed.certifiable
    {
        vec![format!(
            "profile {}: recorded verdict is {} but the results make it {}",
            recorded.profile,
            super::verdict_word(recorded).to_lowercase(),
            super::verdict_word(recomputed).to_lowercase()
        )]
    } else if recorded.reasons != recomputed.reasons {
        vec![format!(
            "profile {}: recorded verdict reasons differ from the recomputed ones",
            recorded.profile
        )]
    } else {
        Vec::new()
    }
}

/// Appends `: <message>` folded onto one line.
fn with_message(head: String, message: &str) -> String {
    let folded = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        head
    } else {
        format!("{head}: {folded}")
    }
}

/// Bundle-only checks: every file is a signed subject, the envelope or PRODUCT.yaml;
/// PRODUCT.yaml valid, signed, and for the claimed release.
fn bundle_problems(submission: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let statement = read_envelope(submission)
        .ok()
        .and_then(|env| env.statement().ok());
    // Without a readable statement the envelope check has already failed.
    if let Some(statement) = &statement {
        problems.extend(unsigned_entries(submission, statement));
    }
    let product = bundled_product(submission, &mut problems);
    let report = read_report(&submission.join(REPORT_JSON)).ok();
    if let (Some(product), Some(statement)) = (&product, &statement) {
        match bundle::signed_product(statement) {
            None if statement.predicate.product.is_none() => problems.push(format!(
                "{PRODUCT_YAML}: not in the signed statement (the vendor must sign with --product {PRODUCT_YAML})"
            )),
            Some(signed) if &signed == product => {}
            _ => problems.push(format!(
                "{PRODUCT_YAML}: differs from the product in the signed statement"
            )),
        }
    }
    if let (Some(product), Some(report)) = (&product, &report)
        && let Ok(catalog) = Catalog::embedded()
        && let Some(problem) = product.release_problem(catalog, &report.config.profile)
    {
        problems.push(format!("{PRODUCT_YAML}: {problem}"));
    }
    problems
}

/// Files of the unpacked bundle the signature does not cover: anything but the statement's
/// subjects, the envelope and PRODUCT.yaml (checked against the statement). Unsigned evidence
/// is left to the subjects check, which names it already.
fn unsigned_entries(submission: &Path, statement: &Statement) -> Vec<String> {
    let subjects: BTreeSet<&str> = statement.subject.iter().map(|s| s.name.as_str()).collect();
    let (files, odd) = match dsse::walk_files(submission, "") {
        Ok(listing) => listing,
        Err((path, e)) => return vec![format!("bundle: cannot list {}: {e}", path.display())],
    };
    let evidence = format!("{EVIDENCE_DIR}/");
    let mut problems: Vec<String> = odd.into_iter().map(|(n, p)| format!("{n}: {p}")).collect();
    problems.extend(
        files
            .iter()
            .filter(|n| !subjects.contains(n.as_str()))
            .filter(|n| n.as_str() != DSSE_JSON && n.as_str() != PRODUCT_YAML)
            .filter(|n| !n.starts_with(&evidence))
            .map(|n| format!("{n}: in the bundle but not a signed subject")),
    );
    problems
}

/// The bundle's PRODUCT.yaml, validated as `bundle` validated it; each problem is added.
fn bundled_product(submission: &Path, problems: &mut Vec<String>) -> Option<Product> {
    let path = submission.join(PRODUCT_YAML);
    if fs::symlink_metadata(&path).is_err() {
        problems.push(format!("{PRODUCT_YAML}: missing"));
        return None;
    }
    let text = match bundle::read_product_text(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{PRODUCT_YAML}: {e}"));
            return None;
        }
    };
    match Product::from_yaml(&text, PRODUCT_YAML) {
        Ok(p) => Some(p),
        Err(e) => {
            problems.extend(e.problems.iter().map(|p| format!("{PRODUCT_YAML}: {p}")));
            None
        }
    }
}
