//! Counting results and deciding whether a run makes a distribution conformant to a profile.

use crate::catalog::{Level, Profile};

use super::{ProfileVerdict, Status, Summary, TestResult};

/// Counts results by status.
pub fn summarize(results: &[TestResult]) -> Summary {
    let mut s = Summary {
        total: results.len(),
        ..Summary::default()
    };
    for r in results {
        match r.status {
            Status::Passed => s.passed += 1,
            Status::Failed => s.failed += 1,
            Status::Skipped => s.skipped += 1,
            Status::Error => s.error += 1,
        }
    }
    s
}

/// Decides conformance to `profile`.
///
/// Conformant iff the profile is certifiable (the catalog tests every component and feature it
/// requires: [`crate::catalog::Profile::gaps`]), the run is complete, every `must` test of the profile's components whose
/// features are all required by the profile passed, and no `must` test that ran failed or
/// errored (a supported optional feature that is present must also work). `should` tests and
/// tests of components outside the profile never affect the verdict. Reasons are sorted by
/// test id so two runs with the same outcome produce the same report.
pub fn compute_verdict(
    profile: &Profile,
    results: &[TestResult],
    complete: bool,
) -> ProfileVerdict {
    let mut by_test: Vec<(&str, String)> = Vec::new();
    for r in results {
        if r.level != Level::Must || !profile.components.contains(&r.component) {
            continue;
        }
        let required = r
            .features
            .iter()
            .all(|f| profile.required_features.contains(f));
        let reason = match r.status {
            Status::Passed => None,
            Status::Skipped if required => Some(with_message(
                format!("required test {} skipped", r.id),
                &r.message,
            )),
            Status::Skipped => None,
            Status::Failed => Some(with_message(format!("{} failed", r.id), &r.message)),
            Status::Error => Some(with_message(format!("{} error", r.id), &r.message)),
        };
        if let Some(reason) = reason {
            by_test.push((r.id.as_str(), reason));
        }
    }
    // Stable sort: duplicates of one id keep the order they ran in.
    by_test.sort_by(|a, b| a.0.cmp(b.0));
    let mut reasons = Vec::with_capacity(profile.gaps.len() + by_test.len() + 1);
    reasons.extend(profile.gaps.iter().map(|g| format!("not certifiable: {g}")));
    if !complete {
        reasons.push("run incomplete (interrupted)".to_string());
    }
    reasons.extend(by_test.into_iter().map(|(_, r)| r));
    ProfileVerdict {
        profile: profile.name.clone(),
        conformant: reasons.is_empty(),
        certifiable: profile.certifiable(),
        reasons,
    }
}

/// Appends `: <message>` folded onto one line, since a verdict lists one reason per line.
fn with_message(head: String, message: &str) -> String {
    let folded = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if folded.is_empty() {
        head
    } else {
        format!("{head}: {folded}")
    }
}

/// The word for a verdict: `CONFORMANT`, `NOT CONFORMANT` or `NOT CERTIFIABLE`.
pub fn verdict_word(v: &ProfileVerdict) -> &'static str {
    if v.conformant {
        "CONFORMANT"
    } else if !v.certifiable {
        "NOT CERTIFIABLE"
    } else {
        "NOT CONFORMANT"
    }
}
