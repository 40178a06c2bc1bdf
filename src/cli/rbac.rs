//! `kfconform rbac`.

use clap::Args;

use crate::{Error, ExitCode};

/// Arguments of `kfconform rbac`.
#[derive(Debug, Args)]
pub struct RbacArgs {}

/// Prints the runner's ClusterRole and ClusterRoleBinding.
pub fn rbac(_args: RbacArgs) -> Result<ExitCode, Error> {
    Err(Error::Usage("kfconform rbac is not implemented yet".into()))
}
