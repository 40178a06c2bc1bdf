//! `kfconform rbac`: the least-privilege ClusterRole the runner needs for a selection, and a
//! ClusterRoleBinding granting it, as YAML for `kubectl apply -f -`.

use clap::{ArgGroup, Args};

use super::SelectionArgs;
use crate::{Error, ExitCode};
use kfconform_suite::runner::rbac::{self, Subject};

/// Arguments of `kfconform rbac`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").args(["user", "group", "service_account"])))]
pub struct RbacArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Bind the role to this user (as the API server authenticates it).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Bind the role to this group.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// Bind the role to this ServiceAccount.
    #[arg(long, value_name = "NAMESPACE:NAME")]
    pub service_account: Option<String>,
}

/// Prints the runner's ClusterRole and, with a subject, its ClusterRoleBinding.
pub fn rbac(args: RbacArgs) -> Result<ExitCode, Error> {
    let catalog = kfconform_suite::catalog::Catalog::embedded()?;
    let selection = args.selection.selection();
    let plan = catalog.plan(&selection)?;
    let subject = match (&args.user, &args.group, &args.service_account) {
        (Some(u), _, _) => Some(Subject::User(nonempty("--user", u)?)),
        (_, Some(g), _) => Some(Subject::Group(nonempty("--group", g)?)),
        (_, _, Some(sa)) => Some(Subject::service_account(sa).ok_or_else(|| {
            Error::usage(format!(
                "--service-account {sa:?}: expected NAMESPACE:NAME, e.g. kubeflow:kfconform"
            ))
        })?),
        _ => None,
    };
    let mut what = format!("profile {}", plan.profile.name);
    for (flag, values) in [
        ("component", &selection.components),
        ("focus", &selection.focus),
        ("skip", &selection.skip),
    ] {
        for v in values {
            what.push_str(&format!(" --{flag} {v}"));
        }
    }
    crate::out!(
        "{}",
        rbac::manifests(&rbac::rules_for(&plan), subject.as_ref(), &what)
    );
    Ok(ExitCode::Ok)
}

fn nonempty(flag: &str, v: &str) -> Result<String, Error> {
    if v.trim().is_empty() {
        Err(Error::usage(format!("{flag} needs a name")))
    } else {
        Ok(v.to_string())
    }
}
