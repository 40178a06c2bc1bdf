//! `kfconform probe`: the entry point of probe pods.

use clap::Args;

use crate::{Error, ExitCode};

/// Arguments of `kfconform probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {}

/// Runs a probe role.
pub async fn probe(_args: ProbeArgs) -> Result<ExitCode, Error> {
    Err(Error::Usage(
        "kfconform probe is not implemented yet".into(),
    ))
}
