//! `kfconform diff`: what differs between two distributions' reports, test by test and API by API.

use std::path::PathBuf;

use clap::Args;

use super::review::{Format, to_json};
use crate::{Error, ExitCode};
use kfconform_suite::report::diff as report_diff;

/// Arguments of `kfconform diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Baseline: report.json or a results directory.
    pub a: PathBuf,
    /// Candidate: report.json or a results directory.
    pub b: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub(super) fn diff(args: DiffArgs) -> Result<ExitCode, Error> {
    // An unreadable or malformed input is the user's to fix: usage error, not harness error.
    let load =
        |p: &PathBuf| report_diff::load_report_any(p).map_err(|e| Error::usage(e.to_string()));
    let a = load(&args.a)?;
    let b = load(&args.b)?;
    let d = report_diff::diff(&a, &b);
    match args.format {
        Format::Json => println!("{}", to_json(&d)?),
        Format::Table => print!(
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
