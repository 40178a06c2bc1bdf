//! `kfconform run`.

use std::path::PathBuf;

use clap::Args;

use super::progress::Progress;
use super::{SelectionArgs, TargetArgs};
use crate::{Error, ExitCode};
use kfconform_suite::report::Status;
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
    runner::check_output(&args.output)?;
    args.target.parse_defects()?;
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
    };
    let target = args.target.resolve_with(Some(&args.probe_image)).await?;
    let cancel = super::cancel_on_signal();
    let progress = Progress::new();
    let checks = runner::Checks {
        preflight: !args.skip_preflight,
    };
    let outcome = runner::run_with(target.config.clone(), &opts, checks, &cancel, &|e| {
        progress.event(e)
    })
    .await;
    progress.finish();
    target.shutdown().await;
    let outcome = outcome?;

    let r = &outcome.report;
    let s = &r.summary;
    println!(
        "{} passed, {} failed, {} skipped, {} error",
        s.passed, s.failed, s.skipped, s.error
    );
    for v in &r.verdicts {
        println!(
            "profile {}: {}",
            v.profile,
            kfconform_suite::report::verdict_word(v)
        );
        for reason in &v.reasons {
            println!("  - {reason}");
        }
    }
    for f in &outcome.files {
        println!("wrote {}", f.display());
    }
    if let Some(key) = &sign_key {
        let path = super::sign::sign_results(&args.output, key, product.clone())?;
        println!(
            "wrote {} (signed by key {})",
            path.display(),
            key.public().key_id()
        );
    }
    if r.results
        .iter()
        .any(|t| t.status == Status::Failed || t.status == Status::Error)
    {
        println!(
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
