//! The reviewer's commands: `verify` and `bundle`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::{Error, ExitCode};
use kfconform_suite::report::keys::PublicKey;
use kfconform_suite::report::{ReportError, bundle, verify};

/// Output formats of verify and diff.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Arguments of `kfconform verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A results directory or a submission bundle (.tar.gz).
    pub path: PathBuf,
    /// A trusted public key (SPKI PEM; repeatable). At least one signature must verify with one.
    #[arg(long = "key", value_name = "PUB", required = true)]
    pub keys: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Accept a run made against the kfconform emulator (or with defects) as authentic: for
    /// demonstrations only, such a run never certifies a product.
    #[arg(long)]
    pub accept_emulator: bool,
}

/// Arguments of `kfconform bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Signed results directory (report.dsse.json signed with --product).
    pub results: PathBuf,
    /// Product metadata: the CNCF PRODUCT.yaml fields plus kubeflow_release and contact_email.
    #[arg(long, value_name = "PRODUCT.yaml")]
    pub product: PathBuf,
    /// Bundle to write.
    #[arg(short, long, value_name = "FILE", default_value = "submission.tar.gz")]
    pub output: PathBuf,
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(v).map_err(|e| Error::harness(e.to_string()))
}

pub(super) fn verify(args: VerifyArgs) -> Result<ExitCode, Error> {
    if !args.path.exists() {
        return Err(Error::usage(format!(
            "{}: no such file or directory",
            args.path.display()
        )));
    }
    let trusted = args
        .keys
        .iter()
        .map(|k| PublicKey::load(k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut v = verify::verify_path(&args.path, &trusted).map_err(|e| match e {
        // The path exists but cannot be read: the user's to fix.
        ReportError::Malformed { .. } => Error::usage(e.to_string()),
        other => other.into(),
    })?;
    // Something that is not a submission at all is a usage error (exit 2), as README says;
    // a submission that reads but fails a check is a failed verification (exit 1).
    if let Some(why) = v.unreadable() {
        return Err(Error::usage(format!("{}: {why}", args.path.display())));
    }
    if args.accept_emulator {
        v.accept_demonstration();
    }
    match args.format {
        Format::Json => crate::outln!("{}", to_json(&v.output())?),
        Format::Table => {
            for c in &v.checks {
                let mark = if c.ok { "ok  " } else { "FAIL" };
                crate::outln!("{mark}  {:<28} {}", c.name, c.detail);
            }
            for p in &v.problems {
                crate::outln!("problem: {p}");
            }
            crate::outln!(
                "{}",
                if v.ok() {
                    "VERIFIED"
                } else {
                    "VERIFICATION FAILED"
                }
            );
        }
    }
    Ok(if v.ok() {
        ExitCode::Ok
    } else {
        ExitCode::NotConformant
    })
}

pub(super) fn bundle(args: BundleArgs) -> Result<ExitCode, Error> {
    let path = bundle::pack(&args.results, &args.product, &args.output)?;
    crate::outln!("wrote {}", path.display());
    Ok(ExitCode::Ok)
}
