//! `kfconform cleanup`.

use clap::Args;

use super::TargetArgs;
use crate::runner::CLEANUP_TIMEOUT;
use crate::{Error, ExitCode};

/// Arguments of `kfconform cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only this run's leftovers (default: every run's).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
}

pub(super) async fn cleanup(args: CleanupArgs) -> Result<ExitCode, Error> {
    let target = args.target.resolve().await?;
    let result = async {
        let client = crate::cluster::connect(&target.config).await?;
        crate::cluster::delete_labelled_namespaces(&client, args.run_id.as_deref(), CLEANUP_TIMEOUT)
            .await
    }
    .await;
    target.shutdown().await;
    let deleted = result?;
    if deleted.is_empty() {
        println!(
            "nothing to clean up (no namespace labelled {})",
            crate::cluster::run_selector(args.run_id.as_deref())
        );
    }
    for ns in deleted {
        println!("deleted namespace {ns}");
    }
    Ok(ExitCode::Ok)
}
