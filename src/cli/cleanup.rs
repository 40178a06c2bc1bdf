//! `kfconform cleanup`.

use clap::Args;

use super::TargetArgs;
use crate::{Error, ExitCode};
use kfconform_suite::runner::CLEANUP_TIMEOUT;

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
    let run_id = args.run_id.as_deref();
    let result = async {
        let client = kfconform_suite::cluster::connect(&target.config).await?;
        // Profiles before namespaces: a tenant's namespace belongs to its Profile. A failure
        // with Profiles must not keep the namespaces from being cleaned up.
        let profiles = kfconform_suite::cluster::delete_labelled_profiles(
            &client,
            run_id,
            &Default::default(),
            CLEANUP_TIMEOUT,
        )
        .await;
        let namespaces = kfconform_suite::cluster::delete_labelled_namespaces(
            &client,
            run_id,
            &Default::default(),
            CLEANUP_TIMEOUT,
        )
        .await?;
        Ok::<_, Error>((profiles?, namespaces))
    }
    .await;
    target.shutdown().await;
    let (profiles, namespaces) = result?;
    if profiles.is_empty() && namespaces.is_empty() {
        println!(
            "nothing to clean up (no namespace or profile labelled {})",
            kfconform_suite::cluster::run_selector(run_id)
        );
    }
    for p in profiles {
        println!("deleted profile {p} (and its namespace)");
    }
    for ns in namespaces {
        println!("deleted namespace {ns}");
    }
    Ok(ExitCode::Ok)
}
