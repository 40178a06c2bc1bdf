//! `kfconform diff`: what differs between two distributions' reports, test by test and API by API.

use std::path::PathBuf;

use clap::Args;

use super::review::{Format, to_json};
use crate::{Error, ExitCode};
use kfconform_suite::report::{ReportError, diff as report_diff};

/// Arguments of `kfconform diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Baseline: report.json, a results directory or a submission bundle (.tar.gz).
    pub a: PathBuf,
    /// Candidate: report.json, a results directory or a submission bundle (.tar.gz).
    pub b: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub(super) fn diff(args: DiffArgs) -> Result<ExitCode, Error> {
    // A missing, unreadable or malformed input is the user's to fix: usage error (exit 2), not
    // harness error; only failing to make a temporary directory is the harness's.
    let load = |p: &PathBuf| {
        report_diff::load_input(p).map_err(|e| match e {
            ReportError::Malformed { .. } => Error::usage(e.to_string()),
            other => other.into(),
        })
    };
    let a = load(&args.a)?;
    let b = load(&args.b)?;
    let d = report_diff::diff_inputs(&a, &b);
    match args.format {
        Format::Json => crate::outln!("{}", to_json(&d)?),
        Format::Table => crate::out!(
            "{}",
            report_diff::render_diff_table(
                &d,
                &args.a.display().to_string(),
                &args.b.display().to_string()
            )
        ),
    }
    Ok(if d.regressions.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::NotConformant
    })
}
