//! `kfconform bench`: per-test wall time and API requests alone, then the whole selection at
//! once; the ratio (together) / (longest single) shows how well parallelism works (1.0 is the
//! physical limit). Speed targets live here, never in timed tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{SelectionArgs, TargetArgs};
use crate::{Error, ExitCode};
use kfconform_suite::catalog::{Catalog, Plan};
use kfconform_suite::runner::{self, Event, RunOptions, Target};

/// Output formats of `bench`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

/// Arguments of `kfconform bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Tests at once in the all-together measurement (default: all of them).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,
    /// Target: no test issues more API requests than this (exit 1 when missed).
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Target: all tests together take at most this multiple of the longest single one
    /// (exit 1 when missed). The training target is 1.3.
    #[arg(long, value_name = "RATIO")]
    pub max_ratio: Option<f64>,
    /// Instead of timing: run the selection once on a clean emulator, then N times on
    /// emulators with the `--fault`s (run i with `--fault-seed` + i), and report how many
    /// matched the clean verdict and per-test statuses and what each left behind (exit 1
    /// unless all matched and nothing leaked).
    #[arg(long, value_name = "N", requires = "emulator",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub soak: Option<u32>,
}

impl BenchArgs {
    /// Whether the output is the table (progress lines go to stderr then).
    pub(super) fn format_is_table(&self) -> bool {
        matches!(self.format, BenchFormat::Table)
    }
}

/// A target given on the command line and whether the measurement met it.
#[derive(Debug, Serialize)]
pub struct BenchTarget {
    pub target: String,
    pub limit: f64,
    pub measured: f64,
    /// The test that measured worst, for per-test targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
    pub met: bool,
}

/// One test measured alone.
#[derive(Debug, Serialize)]
pub struct SingleBench {
    pub id: String,
    pub median_seconds: f64,
    pub api_requests: BTreeMap<String, u64>,
    pub api_requests_total: u64,
    /// HTTP API calls to services inside the cluster (not API requests), by route.
    pub http_requests: BTreeMap<String, u64>,
}

/// The bench result.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub runs: u32,
    pub tests: Vec<SingleBench>,
    pub together_median_seconds: f64,
    pub longest_single_seconds: f64,
    /// together / longest single; 1.0 is the physical limit.
    pub ratio: f64,
    pub parallel: usize,
    /// Targets asked for with --max-requests / --max-ratio.
    pub targets: Vec<BenchTarget>,
}

impl BenchReport {
    /// Checks the measurement against the targets the user gave.
    fn check(&mut self, max_requests: Option<u64>, max_ratio: Option<f64>) {
        if let Some(limit) = max_requests {
            let worst = self.tests.iter().max_by_key(|t| t.api_requests_total);
            let measured = worst.map(|t| t.api_requests_total).unwrap_or(0);
            self.targets.push(BenchTarget {
                target: "api requests per test".into(),
                limit: limit as f64,
                measured: measured as f64,
                worst: worst.map(|t| t.id.clone()),
                met: measured <= limit,
            });
        }
        if let Some(limit) = max_ratio {
            self.targets.push(BenchTarget {
                target: "together / longest single".into(),
                limit,
                measured: self.ratio,
                worst: None,
                met: self.ratio <= limit,
            });
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

async fn timed(
    target: &Target,
    catalog: &'static Catalog,
    plan: &Plan,
    opts: &RunOptions,
) -> (f64, runner::Execution) {
    let start = Instant::now();
    let last = Mutex::new(start);
    let on_event = |e: Event| {
        if let Event::Finished { .. } = e
            && let Ok(mut l) = last.lock()
        {
            *l = Instant::now();
        }
    };
    let exec = runner::execute(
        target,
        catalog,
        plan,
        opts,
        &runner::new_run_id(),
        &CancellationToken::new(),
        &on_event,
    )
    .await;
    let end = last.lock().map(|l| *l).unwrap_or(start);
    (end.duration_since(start).as_secs_f64(), exec)
}

pub(super) async fn bench(args: BenchArgs) -> Result<ExitCode, Error> {
    if let Some(n) = args.soak {
        return super::soak::soak(&args, n).await;
    }
    let catalog = Catalog::embedded()?;
    let plan = catalog.plan(&args.selection.selection())?;
    let resolved = args.target.resolve().await?;
    let result = measure(&args, catalog, &plan, resolved.config.clone()).await;
    resolved.shutdown().await;
    let mut report = result?;
    report.check(args.max_requests, args.max_ratio);
    match args.format {
        BenchFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(|e| Error::harness(e.to_string()))?
            )
        }
        BenchFormat::Table => print_table(&report),
    }
    if report.targets.iter().all(|t| t.met) {
        Ok(ExitCode::Ok)
    } else {
        Ok(ExitCode::NotConformant)
    }
}

async fn measure(
    args: &BenchArgs,
    catalog: &'static Catalog,
    plan: &Plan,
    config: kube::Config,
) -> Result<BenchReport, Error> {
    let target = Target::connect(config, catalog, None).await?;
    let output = std::env::temp_dir().join(format!("kfconform-bench-{}", runner::new_run_id()));
    let ids: Vec<String> = plan
        .tests
        .iter()
        .filter(|t| t.selected && t.spec.features.iter().all(|f| target.features.contains(f)))
        .map(|t| t.spec.id.clone())
        .collect();
    let parallel = args.parallel.unwrap_or(ids.len()).max(1);
    let opts = RunOptions {
        selection: args.selection.selection(),
        features: None,
        parallel,
        timeout_scale: 1.0,
        output: output.clone(),
        probe_image: super::run::DEFAULT_PROBE_IMAGE.to_string(),
        emulator: args.target.emulator,
        defects: args.target.defects.clone(),
        command: super::command_line(),
        ..RunOptions::default()
    };
    let mut tests = Vec::new();
    for id in &ids {
        let mut only = plan.clone();
        for t in &mut only.tests {
            t.selected = &t.spec.id == id;
        }
        let mut times = Vec::new();
        let mut requests = BTreeMap::new();
        let mut http = BTreeMap::new();
        for _ in 0..args.runs {
            let (_, exec) = timed(&target, catalog, &only, &opts).await;
            if let Some(r) = exec.results.iter().find(|r| &r.id == id) {
                times.push(r.duration_seconds);
                requests = r.api_requests.clone();
                http = r.http_requests.clone();
            }
        }
        let total = requests.values().sum();
        tests.push(SingleBench {
            id: id.clone(),
            median_seconds: median(times),
            api_requests: requests,
            api_requests_total: total,
            http_requests: http,
        });
    }
    let mut together = Vec::new();
    for _ in 0..args.runs {
        together.push(timed(&target, catalog, plan, &opts).await.0);
    }
    let _ = std::fs::remove_dir_all(&output);
    let longest = tests.iter().map(|t| t.median_seconds).fold(0.0, f64::max);
    let together = median(together);
    Ok(BenchReport {
        runs: args.runs,
        ratio: if longest > 0.0 {
            together / longest
        } else {
            0.0
        },
        tests,
        together_median_seconds: together,
        longest_single_seconds: longest,
        parallel,
        targets: Vec::new(),
    })
}

fn print_table(r: &BenchReport) {
    let width = r.tests.iter().map(|t| t.id.len()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:>10}  {:>8}  BY VERB",
        "TEST", "MEDIAN", "REQUESTS"
    );
    for t in &r.tests {
        // HTTP API calls follow the verbs, marked so they are not read as API requests.
        let verbs: Vec<String> = t
            .api_requests
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(t.http_requests.iter().map(|(k, v)| format!("+{k}={v}")))
            .collect();
        println!(
            "{:width$}  {:>9.3}s  {:>8}  {}",
            t.id,
            t.median_seconds,
            t.api_requests_total,
            verbs.join(" ")
        );
    }
    println!(
        "all together (parallel {}): median {:.3}s; longest single {:.3}s; ratio {:.2} (1.0 is the limit)",
        r.parallel, r.together_median_seconds, r.longest_single_seconds, r.ratio
    );
    for t in &r.targets {
        let worst = t
            .worst
            .as_ref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let num = |x: f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            }
        };
        println!(
            "target {}: {} <= {}: {}{worst}",
            t.target,
            num(t.measured),
            num(t.limit),
            if t.met { "met" } else { "MISSED" }
        );
    }
}
