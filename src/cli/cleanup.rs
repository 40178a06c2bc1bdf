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
    /// Only this run's leftovers (default: every run's); the `run_id` of its report.json.
    #[arg(long, value_name = "ID", value_parser = run_id)]
    pub run_id: Option<String>,
}

/// A run id as the runner makes them ([`kfconform_suite::runner::new_run_id`]): lowercase
/// letters, digits and inner dashes, at most 63, so it is a label value and nothing else can
/// reach the label selector (`''`, `=other`, `a b`, `x,y`).
fn run_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("not a run id (the run_id of a report.json, e.g. 0fc91b98)".into())
    }
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
        crate::outln!(
            "nothing to clean up (no namespace or profile labelled {})",
            kfconform_suite::cluster::run_selector(run_id)
        );
    }
    for p in profiles {
        crate::outln!("deleted profile {p} (and its namespace)");
    }
    for ns in namespaces {
        crate::outln!("deleted namespace {ns}");
    }
    Ok(ExitCode::Ok)
}
