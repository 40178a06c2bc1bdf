//! `kfconform run`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::progress::Progress;
use super::{SelectionArgs, TargetArgs};
use crate::{Error, ExitCode};
use kfconform_suite::cluster::http::HttpRoute;
use kfconform_suite::report::{Report, Status};
use kfconform_suite::runner::{self, RunOptions};

pub use kfconform_core::contract::DEFAULT_PROBE_IMAGE;

/// Arguments of `kfconform run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Treat exactly these features as supported instead of discovering them (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "FEATURE,...")]
    pub features: Option<Vec<String>>,
    /// How many tests run at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Multiply every test's catalog timeout by this factor (slow clusters).
    #[arg(long, default_value_t = 1.0)]
    pub timeout_scale: f64,
    /// Directory for report.json, junit.xml and evidence/.
    #[arg(short, long, default_value = "results", value_name = "DIR")]
    pub output: PathBuf,
    /// Sign the results with this Ed25519 private key (writes report.dsse.json).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Product metadata to include in the signed statement (with --sign-key).
    #[arg(long, value_name = "PRODUCT.yaml", requires = "sign_key")]
    pub product: Option<PathBuf>,
    /// Image for probe workloads (the kfconform binary itself).
    #[arg(long, default_value = DEFAULT_PROBE_IMAGE, value_name = "IMAGE")]
    pub probe_image: String,
    /// Do not check the runner's permissions before the run (the preflight asks the API
    /// server, one SelfSubjectAccessReview per permission `kfconform rbac` lists, and stops
    /// with exit 3 listing what is missing).
    #[arg(long)]
    pub skip_preflight: bool,
    /// Replace an earlier run in the output directory (its report.json, junit.xml,
    /// report.html, report.dsse.json and evidence/; nothing else is touched). Without it a
    /// directory holding an earlier run is refused.
    #[arg(long)]
    pub replace: bool,
    /// Leave the namespaces (and tenant Profiles) of tests that failed or errored in place for
    /// debugging; the run prints the `kfconform cleanup` command that removes them.
    #[arg(long, conflicts_with = "emulator")]
    pub keep_namespaces: bool,
    /// Run again only the failed and errored tests of the run in RESULTS_DIR, against the
    /// same target, and write a merged report whose verdict covers that run's whole profile.
    #[arg(
        long,
        value_name = "RESULTS_DIR",
        conflicts_with_all = ["profile", "components", "focus", "skip"]
    )]
    pub rerun_failed: Option<PathBuf>,
    /// Reach the HTTP APIs served inside the cluster (model servers) through the ingress at
    /// this base URL (http or https) instead of the API server's service proxy; each request
    /// carries the Host of the service's external name (an InferenceService's status.url).
    #[arg(long, value_name = "URL")]
    pub ingress_url: Option<String>,
    /// A bearer token for --ingress-url, read from FILE (e.g. a ServiceAccount token).
    #[arg(long, value_name = "FILE", requires = "ingress_url")]
    pub ingress_token_file: Option<PathBuf>,
    /// Connect, check permissions and discover, then print which tests would run and why each
    /// other would be skipped; creates nothing and writes no report.
    #[arg(long, conflicts_with_all = ["sign_key", "keep_namespaces"])]
    pub dry_run: bool,
}

/// The route to in-cluster HTTP APIs: the service proxy unless `--ingress-url` names an
/// ingress.
fn http_route(args: &RunArgs) -> Result<HttpRoute, Error> {
    let Some(base) = &args.ingress_url else {
        return Ok(HttpRoute::ServiceProxy);
    };
    let host = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .and_then(|rest| rest.split('/').next());
    let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        && !base.contains(char::is_whitespace);
    if !valid {
        return Err(Error::usage(format!(
            "--ingress-url must be an http:// or https:// URL, got {base:?}"
        )));
    }
    let token = match &args.ingress_token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::usage(format!("--ingress-token-file {}: {e}", path.display()))
            })?;
            let token = text.trim();
            if token.is_empty() || token.len() > 64 * 1024 || token.contains(char::is_whitespace) {
                return Err(Error::usage(format!(
                    "--ingress-token-file {}: not a bearer token (one line, at most 64 KiB)",
                    path.display()
                )));
            }
            Some(token.to_string())
        }
    };
    Ok(HttpRoute::Ingress {
        base: base.clone(),
        token,
    })
}

pub(super) async fn run(args: RunArgs) -> Result<ExitCode, Error> {
    if !(args.timeout_scale.is_finite() && args.timeout_scale > 0.0) {
        return Err(Error::usage(format!(
            "--timeout-scale must be a positive number, got {}",
            args.timeout_scale
        )));
    }
    // Validate what needs no cluster first, so usage errors never wait on a network.
    let catalog = kfconform_suite::catalog::Catalog::embedded()?;
    let plan = catalog.plan(&args.selection.selection())?;
    if let Some(f) = &args.features {
        catalog.validate_features(f)?;
    }
    args.target.parse_defects()?;
    let rerun = args.rerun_failed.as_deref().map(earlier_run).transpose()?;
    let http_route = http_route(&args)?;
    let opts = RunOptions {
        selection: args.selection.selection(),
        features: args.features.clone(),
        parallel: usize::from(args.parallel),
        timeout_scale: args.timeout_scale,
        output: args.output.clone(),
        probe_image: args.probe_image.clone(),
        emulator: args.target.emulator,
        defects: args.target.defects.clone(),
        command: super::command_line(),
        replace: args.replace,
        keep_namespaces: args.keep_namespaces,
        rerun,
        http_route,
    };
    if let Some(earlier) = &opts.rerun {
        // Before any target is reached: whether the two runs can merge at all.
        runner::rerun::selection(earlier, catalog, &opts)?;
    }
    if args.dry_run {
        return dry_run(&args, &opts).await;
    }
    runner::check_output(&args.output, args.replace)?;
    let sign_key = args
        .sign_key
        .as_deref()
        .map(kfconform_suite::report::keys::SigningKey::load)
        .transpose()?;
    let product = args
        .product
        .as_deref()
        .map(|p| super::sign::load_product(p, &plan.profile.name))
        .transpose()?;

    let target = args.target.resolve_with(Some(&args.probe_image)).await?;
    let cancel = super::cancel_on_signal();
    let progress = Progress::new();
    let checks = runner::Checks {
        preflight: !args.skip_preflight,
    };
    let outcome = runner::run_with(target.config.clone(), &opts, checks, &cancel, &|e| {
        if let runner::Event::Planned { run_id, .. } = &e {
            let _ = super::RUN_ID.set(run_id.clone());
        }
        progress.event(e)
    })
    .await;
    progress.finish();
    target.shutdown().await;
    let outcome = outcome?;
    if let Some(why) = &outcome.lost {
        crate::errln!("error: lost the cluster during the run ({why}); the report is incomplete");
    }
    print_outcome(&outcome);
    if let Some(key) = &sign_key {
        let path = super::sign::sign_results(&args.output, key, product.clone())?;
        crate::outln!(
            "wrote {} (signed by key {})",
            path.display(),
            key.public().key_id()
        );
    }
    let r = &outcome.report;
    if r.results
        .iter()
        .any(|t| t.status == Status::Failed || t.status == Status::Error)
    {
        crate::outln!(
            "evidence of failures: {}",
            args.output.join("evidence").display()
        );
    }
    Ok(if !r.complete {
        ExitCode::Harness
    } else if r.verdicts.iter().all(|v| v.conformant) {
        ExitCode::Ok
    } else {
        ExitCode::NotConformant
    })
}

/// The earlier run `--rerun-failed` repeats; a missing or malformed report is the user's.
fn earlier_run(dir: &Path) -> Result<Report, Error> {
    kfconform_suite::report::read_report(&dir.join(kfconform_suite::report::REPORT_JSON))
        .map_err(|e| Error::usage(format!("--rerun-failed {}: {e}", dir.display())))
}

/// The summary, the verdicts, the merge and the files written.
fn print_outcome(outcome: &runner::RunOutcome) {
    let r = &outcome.report;
    let s = &r.summary;
    crate::outln!(
        "{} passed, {} failed, {} skipped, {} error",
        s.passed,
        s.failed,
        s.skipped,
        s.error
    );
    if let Some(m) = &r.merged {
        crate::outln!(
            "merged with run {}: {} test(s) run again, every other result is that run's",
            m.from_run_id,
            m.rerun.len()
        );
    }
    for v in &r.verdicts {
        crate::outln!(
            "profile {}: {}",
            v.profile,
            kfconform_suite::report::verdict_word(v)
        );
        for reason in &v.reasons {
            crate::outln!("  - {reason}");
        }
    }
    for f in &outcome.files {
        crate::outln!("wrote {}", f.display());
    }
    if !outcome.kept.is_empty() {
        crate::outln!("kept for debugging (--keep-namespaces):");
        for (ns, test) in &outcome.kept {
            crate::outln!("  namespace {ns} ({test})");
        }
        crate::outln!(
            "delete them with: kfconform cleanup --run-id {}",
            outcome.report.run_id
        );
    }
}

/// `run --dry-run`: the plan against the target, nothing created.
async fn dry_run(args: &RunArgs, opts: &RunOptions) -> Result<ExitCode, Error> {
    let target = args.target.resolve_with(Some(&args.probe_image)).await?;
    let checks = runner::Checks {
        preflight: !args.skip_preflight,
    };
    let plan = runner::dry_run(target.config.clone(), opts, checks).await;
    target.shutdown().await;
    let plan = plan?;
    let t = &plan.target;
    crate::outln!(
        "target {} (Kubernetes {}); features: {}",
        t.server,
        t.kubernetes_version,
        if t.features.is_empty() {
            "none".to_string()
        } else {
            t.features.join(", ")
        }
    );
    crate::outln!("profile {}:", plan.profile);
    let width = plan
        .tests
        .iter()
        .map(|(t, _)| t.spec.id.len())
        .max()
        .unwrap_or(0);
    let mut to_run = 0;
    for (test, skip) in &plan.tests {
        let level = test.spec.level.as_str();
        match skip {
            None => {
                to_run += 1;
                crate::outln!("  run   {:<width$}  {level}", test.spec.id);
            }
            Some(why) => crate::outln!("  skip  {:<width$}  {level}  {why}", test.spec.id),
        }
    }
    for gap in &plan.gaps {
        crate::outln!("not certifiable: {gap}");
    }
    crate::outln!(
        "dry run: {to_run} of {} tests would run; nothing was created",
        plan.tests.len()
    );
    Ok(ExitCode::Ok)
}
