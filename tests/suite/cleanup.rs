//! `kfconform cleanup` deletes exactly what carries the run label, nothing the user owns.

use crate::util;

use std::path::Path;
use std::process::Output;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;

fn ns(name: &str, labels: serde_json::Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

/// `kfconform cleanup --kubeconfig KUBECONFIG ARGS..`.
async fn cleanup(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = util::kfconform();
    cmd.arg("cleanup")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args);
    util::output(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_only_labelled_namespaces() {
    let emu = util::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = util::kubeconfig(&emu, dir.path());
    let api: Api<Namespace> = Api::all(util::client(&emu));
    for (name, labels) in [
        ("kfconform-aaaa-1", json!({"kfconform.io/run": "aaaa"})),
        ("kfconform-bbbb-1", json!({"kfconform.io/run": "bbbb"})),
        // Named like ours but unlabelled, and labelled with something else: both are the user's.
        ("kfconform-lookalike", json!({})),
        ("team-a", json!({"kfconform.io/other": "x"})),
    ] {
        api.create(&PostParams::default(), &ns(name, labels))
            .await
            .unwrap();
    }

    let out = cleanup(&kubeconfig, &["--run-id", "aaaa"]).await;
    util::assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted namespace kfconform-aaaa-1"));
    assert!(api.get_opt("kfconform-aaaa-1").await.unwrap().is_none());
    assert!(
        api.get_opt("kfconform-bbbb-1").await.unwrap().is_some(),
        "another run's namespace went with --run-id"
    );

    let out = cleanup(&kubeconfig, &[]).await;
    assert!(out.status.success());
    assert!(api.get_opt("kfconform-bbbb-1").await.unwrap().is_none());
    for mine in ["kfconform-lookalike", "team-a", "default"] {
        assert!(
            api.get_opt(mine).await.unwrap().is_some(),
            "cleanup deleted unlabelled {mine}"
        );
    }
    let out = cleanup(&kubeconfig, &[]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to clean up"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_only_labelled_profiles_and_their_namespaces() {
    use kube::api::DynamicObject;
    let emu = util::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = util::kubeconfig(&emu, dir.path());
    let client = util::client(&emu);
    let profiles = util::profiles(&client);
    let profile = |name: &str, labels: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "kubeflow.org/v1",
            "kind": "Profile",
            "metadata": {"name": name, "labels": labels},
            "spec": {"owner": {"kind": "User", "name": format!("{name}@example.com")}},
        }))
        .unwrap()
    };
    for (name, labels) in [
        ("kfconform-cccc-1", json!({"kfconform.io/run": "cccc"})),
        // Named like ours, unlabelled: a user's.
        ("kfconform-team", json!({})),
    ] {
        profiles
            .create(&PostParams::default(), &profile(name, labels))
            .await
            .unwrap();
    }

    let out = cleanup(&kubeconfig, &[]).await;
    util::assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deleted profile kfconform-cccc-1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        profiles
            .get_opt("kfconform-cccc-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        profiles.get_opt("kfconform-team").await.unwrap().is_some(),
        "cleanup deleted an unlabelled profile"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get_opt("kfconform-cccc-1")
            .await
            .unwrap()
            .is_none()
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_namespaces_leaves_failed_tests_namespaces_until_cleanup() {
    let emu =
        util::emulator_with_defects(vec![kfconform_emulator::Defect::ProfilesNoOwnerReference])
            .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = util::kubeconfig(&emu, dir.path());
    let mut cmd = util::kfconform();
    cmd.args(["run", "--keep-namespaces", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--profile", "kubeflow-26.03/profiles", "--focus"])
        .args(["profiles/namespace-owned|profiles/roles-aggregate", "-o"])
        .arg(dir.path().join("results"));
    let out = util::output(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: kfconform_suite::report::Report = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/report.json")).unwrap(),
    )
    .unwrap();
    let run_id = &report.run_id;
    let index = report
        .results
        .iter()
        .position(|r| r.id == "profiles/namespace-owned")
        .unwrap();
    let kept = format!("kfconform-{run_id}-{}", index + 1);
    assert!(
        stdout.contains(&format!("namespace {kept} (profiles/namespace-owned)"))
            && stdout.contains(&format!("kfconform cleanup --run-id {run_id}")),
        "{stdout}"
    );
    let client = util::client(&emu);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let selector = kfconform_suite::cluster::run_selector(Some(run_id));
    let left: Vec<String> = namespaces
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        left,
        vec![kept.clone()],
        "only the failed test's namespace is kept"
    );

    let out = cleanup(&kubeconfig, &["--run-id", run_id]).await;
    util::assert_success(&out);
    assert!(namespaces.get_opt(&kept).await.unwrap().is_none());
}
