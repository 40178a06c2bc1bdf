//! `kfconform bench --emulator --soak N`: the selection once on a clean emulator, then N times
//! on emulators with the given `--fault`s (run i seeded with `--fault-seed` + i); each faulted
//! run must give the clean run's verdict and per-test statuses and leave nothing labelled
//! behind. A run that differs names the tests and the seed that reproduces it.

use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::bench::{BenchArgs, BenchFormat};
use crate::{Error, ExitCode};
use kfconform_emulator::faults::Injected;
use kfconform_suite::catalog::{Catalog, Plan};
use kfconform_suite::report::{self, Status};
use kfconform_suite::runner::{self, RunOptions, Target};

/// One run's outcome, as compared.
#[derive(Debug, Clone, Serialize)]
pub struct SoakRun {
    /// `--fault-seed` that reproduces the run (`None`: the clean run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub conformant: bool,
    pub complete: bool,
    pub seconds: f64,
    /// Tests whose status differs from the clean run's: `id: clean → this (message)`.
    pub differences: Vec<String>,
    /// Namespaces and Profiles labelled with the run id still there after the run.
    pub leaked: Vec<String>,
    /// The faults the emulator injected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<Injected>,
    pub matched: bool,
}

/// The soak result.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub faults: Vec<String>,
    pub clean: SoakRun,
    pub runs: Vec<SoakRun>,
    /// Faulted runs with the clean verdict and statuses.
    pub matched: usize,
    /// Objects left behind, over all runs.
    pub leaked: usize,
    pub seconds: f64,
}

/// Per-test statuses of a run, in plan order.
type Statuses = Vec<(String, Status, String)>;

pub(super) async fn soak(args: &BenchArgs, n: u32) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let catalog = Catalog::embedded()?;
    let plan = catalog.plan(&args.selection.selection())?;
    let faults = args.target.parse_faults()?;
    let mut clean_target = args.target.clone();
    clean_target.faults.clear();
    let (clean, clean_statuses) = one_run(args, &clean_target, catalog, &plan, None).await?;
    let mut runs = Vec::new();
    for i in 0..u64::from(n) {
        let seed = faults.seed.wrapping_add(i);
        let mut target = args.target.clone();
        target.fault_seed = seed;
        let (mut run, statuses) = one_run(args, &target, catalog, &plan, Some(seed)).await?;
        run.differences = differences(&clean_statuses, &statuses);
        run.matched = run.differences.is_empty()
            && run.conformant == clean.conformant
            && run.complete == clean.complete;
        if args.format_is_table() {
            eprintln!(
                "soak run {}/{n} (seed {seed}): {} in {:.1}s{}",
                i + 1,
                if run.matched { "matched" } else { "DIFFERED" },
                run.seconds,
                if run.leaked.is_empty() {
                    String::new()
                } else {
                    format!(", {} leaked", run.leaked.len())
                }
            );
        }
        runs.push(run);
    }
    let report = SoakReport {
        faults: args.target.faults.clone(),
        matched: runs.iter().filter(|r| r.matched).count(),
        leaked: runs.iter().map(|r| r.leaked.len()).sum::<usize>() + clean.leaked.len(),
        clean,
        runs,
        seconds: started.elapsed().as_secs_f64(),
    };
    match args.format {
        BenchFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Error::harness(e.to_string()))?
        ),
        BenchFormat::Table => print_table(&report),
    }
    if report.matched == report.runs.len() && report.leaked == 0 {
        Ok(ExitCode::Ok)
    } else {
        Ok(ExitCode::NotConformant)
    }
}

/// Runs the plan once on a fresh emulator started from `target`.
async fn one_run(
    args: &BenchArgs,
    target: &super::TargetArgs,
    catalog: &'static Catalog,
    plan: &Plan,
    seed: Option<u64>,
) -> Result<(SoakRun, Statuses), Error> {
    let resolved = target.resolve().await?;
    let result = execute(args, catalog, plan, resolved.config.clone()).await;
    let faults = resolved.emulator.as_ref().and_then(|e| e.faults_injected());
    resolved.shutdown().await;
    let (exec, seconds, leaked) = result?;
    let verdict = report::compute_verdict(&plan.profile, &exec.results, exec.complete);
    let statuses = exec
        .results
        .iter()
        .map(|r| (r.id.clone(), r.status, r.message.clone()))
        .collect();
    let run = SoakRun {
        seed,
        conformant: verdict.conformant,
        complete: exec.complete,
        seconds,
        differences: Vec::new(),
        leaked,
        faults,
        matched: true,
    };
    Ok((run, statuses))
}

async fn execute(
    args: &BenchArgs,
    catalog: &'static Catalog,
    plan: &Plan,
    config: kube::Config,
) -> Result<(runner::Execution, f64, Vec<String>), Error> {
    let start = Instant::now();
    let target = Target::connect(config, catalog, None).await?;
    let run_id = runner::new_run_id();
    let output = std::env::temp_dir().join(format!("kfconform-soak-{run_id}"));
    let opts = RunOptions {
        selection: args.selection.selection(),
        parallel: args.parallel.unwrap_or(4).max(1),
        timeout_scale: 1.0,
        output: output.clone(),
        probe_image: super::run::DEFAULT_PROBE_IMAGE.to_string(),
        emulator: true,
        defects: args.target.defects.clone(),
        command: super::command_line(),
        ..RunOptions::default()
    };
    let exec = runner::execute(
        &target,
        catalog,
        plan,
        &opts,
        &run_id,
        &CancellationToken::new(),
        &|_| {},
    )
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&output);
    let leaked = kfconform_suite::cluster::leftovers(&target.client, Some(&run_id))
        .await
        .map_err(|e| Error::harness(format!("counting what run {run_id} left: {e}")))?;
    Ok((exec, seconds, leaked))
}

/// Tests whose status differs between the clean run and a faulted one.
fn differences(clean: &Statuses, faulted: &Statuses) -> Vec<String> {
    clean
        .iter()
        .zip(faulted)
        .filter(|(c, f)| c.1 != f.1)
        .map(|(c, f)| {
            let why = if f.2.is_empty() { &c.2 } else { &f.2 };
            format!("{}: {} → {} ({why})", c.0, word(c.1), word(f.1))
        })
        .collect()
}

fn word(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Error => "error",
    }
}

fn print_table(r: &SoakReport) {
    println!("faults: {}", r.faults.join(" "));
    println!(
        "clean run: {} in {:.1}s",
        if r.clean.conformant {
            "conformant"
        } else {
            "not conformant"
        },
        r.clean.seconds
    );
    for (i, run) in r.runs.iter().enumerate() {
        if run.matched && run.leaked.is_empty() {
            continue;
        }
        println!(
            "run {} (--fault-seed {}):",
            i + 1,
            run.seed.unwrap_or_default()
        );
        for d in &run.differences {
            println!("  differs: {d}");
        }
        for l in &run.leaked {
            println!("  leaked: {l}");
        }
    }
    let total = |f: fn(&Injected) -> u64| -> u64 {
        r.runs.iter().filter_map(|x| x.faults.as_ref()).map(f).sum()
    };
    println!(
        "faults injected: {} errors (500/503/504), {} throttles, {} resets, {} watch drops, {} watch expiries over {} requests",
        total(|f| f.internal_error + f.service_unavailable + f.timeout),
        total(|f| f.throttled),
        total(|f| f.reset),
        total(|f| f.watch_dropped),
        total(|f| f.watch_expired),
        total(|f| f.requests),
    );
    println!(
        "{}/{} matched the clean verdict, {} leaked ({:.0}s)",
        r.matched,
        r.runs.len(),
        r.leaked,
        r.seconds
    );
}
