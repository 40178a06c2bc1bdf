//! Helpers shared by this binary's topic modules: the shared emulator helpers, plus runs of
//! the suite against an emulator, the `kfconform` binary, Profiles and RBAC documents.
#![allow(dead_code)]

#[path = "../shared/util_shared.rs"]
mod shared;
pub use shared::*;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kfconform_emulator::{Defect, Emulator, EmulatorConfig};
use kfconform_suite::catalog::Selection;
use kfconform_suite::runner::RunOptions;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::Value;

/// Safety net for a `kfconform` process: a hung one fails the test.
const PROCESS_WAIT: Duration = Duration::from_secs(300);

/// An in-process emulator with the default configuration.
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default()).await
}

/// An in-process emulator with `defects` injected.
pub async fn emulator_with_defects(defects: Vec<Defect>) -> Emulator {
    emulator_with(EmulatorConfig {
        defects,
        ..EmulatorConfig::default()
    })
    .await
}

/// Options of a run against the emulator: everything selected, one test at a time, results in
/// `dir/results`, a probe image nobody pulls.
pub fn run_options(dir: &Path) -> RunOptions {
    RunOptions {
        selection: Selection::default(),
        features: None,
        parallel: 1,
        timeout_scale: 1.0,
        output: dir.join("results"),
        probe_image: "example.invalid/kfconform:test".into(),
        emulator: true,
        defects: vec![],
        command: "kfconform run --emulator".into(),
        ..RunOptions::default()
    }
}

/// The cluster's Profiles.
pub fn profiles(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &kfconform_suite::cluster::profile_resource(),
    )
}

/// Creates the ClusterRoles and ClusterRoleBindings in `docs` (as `kfconform rbac` prints
/// them) with `admin`.
pub async fn apply_rbac(admin: &kube::Client, docs: &[Value]) {
    for d in docs {
        match d["kind"].as_str() {
            Some("ClusterRole") => create_cluster_wide::<ClusterRole>(admin, d).await,
            Some("ClusterRoleBinding") => create_cluster_wide::<ClusterRoleBinding>(admin, d).await,
            other => panic!("unexpected document {other:?}"),
        }
    }
}

/// Creates the cluster-wide object `doc` describes.
async fn create_cluster_wide<K>(client: &kube::Client, doc: &Value)
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let obj: K = serde_json::from_value(doc.clone()).unwrap();
    Api::<K>::all(client.clone())
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

/// The `kfconform` binary, without the environment's KUBECONFIG and colours.
pub fn kfconform() -> std::process::Command {
    let mut c = std::process::Command::new(KFCONFORM);
    c.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    c
}

/// Runs `cmd` to the end, capturing its output, without blocking the runtime an in-process
/// emulator serves on; fails the test if it hangs.
pub async fn output(cmd: std::process::Command) -> Output {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    tokio::time::timeout(PROCESS_WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not end within {PROCESS_WAIT:?}"))
        .unwrap()
}
