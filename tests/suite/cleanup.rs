//! `kfconform cleanup` deletes exactly what carries the run label, nothing the user owns.

use k8s_openapi::api::core::v1::Namespace;
use kfconform_emulator::{Emulator, EmulatorConfig};
use kube::api::{Api, PostParams};

fn ns(name: &str, labels: serde_json::Value) -> Namespace {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels}}))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_only_labelled_namespaces() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, emu.kubeconfig_yaml()).unwrap();
    let api: Api<Namespace> = Api::all(kube::Client::try_from(emu.kube_config()).unwrap());
    let pp = PostParams::default();
    api.create(
        &pp,
        &ns(
            "kfconform-aaaa-1",
            serde_json::json!({"kfconform.io/run": "aaaa"}),
        ),
    )
    .await
    .unwrap();
    api.create(
        &pp,
        &ns(
            "kfconform-bbbb-1",
            serde_json::json!({"kfconform.io/run": "bbbb"}),
        ),
    )
    .await
    .unwrap();
    // Named like ours but unlabelled, and labelled with something else: both are the user's.
    api.create(&pp, &ns("kfconform-lookalike", serde_json::json!({})))
        .await
        .unwrap();
    api.create(
        &pp,
        &ns("team-a", serde_json::json!({"kfconform.io/other": "x"})),
    )
    .await
    .unwrap();

    let bin = env!("CARGO_BIN_EXE_kfconform");
    let run = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .arg("cleanup")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(args)
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["--run-id".into(), "aaaa".into()]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted namespace kfconform-aaaa-1"));
    assert!(api.get_opt("kfconform-aaaa-1").await.unwrap().is_none());
    assert!(
        api.get_opt("kfconform-bbbb-1").await.unwrap().is_some(),
        "another run's namespace went with --run-id"
    );

    let out = run(vec![]).await.unwrap();
    assert!(out.status.success());
    assert!(api.get_opt("kfconform-bbbb-1").await.unwrap().is_none());
    for mine in ["kfconform-lookalike", "team-a", "default"] {
        assert!(
            api.get_opt(mine).await.unwrap().is_some(),
            "cleanup deleted unlabelled {mine}"
        );
    }
    let out = run(vec![]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to clean up"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_only_labelled_profiles_and_their_namespaces() {
    use kube::api::DynamicObject;
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, emu.kubeconfig_yaml()).unwrap();
    let client = kube::Client::try_from(emu.kube_config()).unwrap();
    let profiles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kfconform_suite::cluster::profile_resource(),
    );
    let profile = |name: &str, labels: serde_json::Value| -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kubeflow.org/v1",
            "kind": "Profile",
            "metadata": {"name": name, "labels": labels},
            "spec": {"owner": {"kind": "User", "name": format!("{name}@example.com")}},
        }))
        .unwrap()
    };
    let pp = PostParams::default();
    profiles
        .create(
            &pp,
            &profile(
                "kfconform-cccc-1",
                serde_json::json!({"kfconform.io/run": "cccc"}),
            ),
        )
        .await
        .unwrap();
    // Named like ours, unlabelled: a user's.
    profiles
        .create(&pp, &profile("kfconform-team", serde_json::json!({})))
        .await
        .unwrap();

    let bin = env!("CARGO_BIN_EXE_kfconform");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .arg("cleanup")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
