//! `--rerun-failed`: run again only the failed and errored tests of an earlier run, against
//! the same target with the same suite, and merge: every test keeps its final result, with
//! the results it superseded, and the verdict covers the earlier run's whole profile.

use std::collections::{BTreeMap, BTreeSet};

use crate::Error;
use crate::catalog::{Catalog, Plan, Selection};
use crate::report::{self, Merge, PreviousAttempt, Report, Status, TargetFacts};

use super::RunOptions;

/// The tests of `earlier` to run again: those that failed or errored.
pub fn to_rerun(earlier: &Report) -> Vec<String> {
    earlier
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Error))
        .map(|r| r.id.clone())
        .collect()
}

/// The selection repeating `earlier`'s failed and errored tests within its own profile and
/// components; a usage error when there is nothing to repeat or the runs would not compare.
pub fn selection(
    earlier: &Report,
    catalog: &Catalog,
    opts: &RunOptions,
) -> Result<Selection, Error> {
    comparable(earlier, catalog, opts)?;
    let ids = to_rerun(earlier);
    if ids.is_empty() {
        return Err(Error::Usage(format!(
            "--rerun-failed: run {} has no failed or errored test to run again",
            earlier.run_id
        )));
    }
    Ok(Selection {
        profile: Some(earlier.config.profile.clone()),
        components: earlier.config.components.clone(),
        focus: ids
            .iter()
            .map(|id| format!("^{}$", regex::escape(id)))
            .collect(),
        skip: Vec::new(),
    })
}

/// Refuses a merge whose halves could mean different things: another suite or catalog, or an
/// emulator run merged with a cluster run. (Emulator defects may differ, as a vendor's fix
/// differs: the merged report lists the defects of both halves.)
fn comparable(earlier: &Report, catalog: &Catalog, opts: &RunOptions) -> Result<(), Error> {
    let differ = |what: &str, was: &str, now: &str| {
        Err(Error::Usage(format!(
            "--rerun-failed: run {} was made with {what} {was}, this run uses {now}; run the \
             whole suite again instead",
            earlier.run_id
        )))
    };
    if earlier.suite_version != crate::SUITE_VERSION {
        return differ("suite", &earlier.suite_version, crate::SUITE_VERSION);
    }
    if earlier.catalog_digest != catalog.digest {
        return differ("catalog", &earlier.catalog_digest, &catalog.digest);
    }
    let target = |emulator: bool| {
        if emulator {
            "the emulator"
        } else {
            "a cluster"
        }
    };
    if earlier.config.emulator != opts.emulator {
        return differ(
            "target",
            target(earlier.config.emulator),
            target(opts.emulator),
        );
    }
    Ok(())
}

/// Refuses to merge results from another cluster (an emulator is new each run: only its
/// version must match).
pub fn same_target(earlier: &Report, now: &TargetFacts) -> Result<(), Error> {
    let was = &earlier.target;
    let server_moved = !earlier.config.emulator && was.server != now.server;
    if server_moved || was.kubernetes_version != now.kubernetes_version {
        return Err(Error::Usage(format!(
            "--rerun-failed: run {} was made against {} (Kubernetes {}), this target is {} \
             (Kubernetes {}); rerun against the same target, or run the whole suite",
            earlier.run_id, was.server, was.kubernetes_version, now.server, now.kubernetes_version
        )));
    }
    Ok(())
}

/// Merges `rerun` (a run of [`selection`]) into `earlier`: the rerun tests' new results, each
/// with what it superseded, every other result as it was; summary and verdict recomputed for
/// the earlier run's profile, the merge recorded in `merged`.
pub fn merge(earlier: &Report, rerun: Report, plan: &Plan) -> Report {
    let rerun_order = to_rerun(earlier);
    let rerun_ids: BTreeSet<String> = rerun_order.iter().cloned().collect();
    let mut fresh: BTreeMap<String, report::TestResult> = rerun
        .results
        .into_iter()
        .filter(|r| rerun_ids.contains(&r.id))
        .map(|r| (r.id.clone(), r))
        .collect();
    let results: Vec<report::TestResult> = earlier
        .results
        .iter()
        .map(|old| match fresh.remove(&old.id) {
            Some(mut new) => {
                new.previous = old.previous.clone();
                new.previous.push(PreviousAttempt {
                    run_id: earlier.run_id.clone(),
                    status: old.status,
                    message: old.message.clone(),
                    duration_seconds: old.duration_seconds,
                });
                new.attempts += old.attempts;
                new
            }
            None => old.clone(),
        })
        .collect();
    let verdict = report::compute_verdict(&plan.profile, &results, rerun.complete);
    Report {
        run_id: rerun.run_id,
        started_at: rerun.started_at,
        finished_at: rerun.finished_at,
        complete: rerun.complete,
        config: report::RunConfig {
            command: rerun.config.command,
            defects: union(&earlier.config.defects, rerun.config.defects),
            ..earlier.config.clone()
        },
        summary: report::summarize(&results),
        verdicts: vec![verdict],
        results,
        merged: Some(Merge {
            from_run_id: earlier.run_id.clone(),
            from_started_at: earlier.started_at,
            rerun: rerun_order,
        }),
        ..rerun
    }
}

/// Both halves' defects, sorted, once each.
fn union(a: &[String], b: Vec<String>) -> Vec<String> {
    let all: BTreeSet<String> = a.iter().cloned().chain(b).collect();
    all.into_iter().collect()
}
