//! The real kubectl through the API server's proxy: `kubectl get --raw` to a probe pod
//! serving HTTP on 8080 behind a Service's port 80, to the pod directly, and the apiserver's
//! error for a Service without ready endpoints.
//!
//! kubectl must be on PATH (CI installs it with `.ci/setup`); without it these tests fail.

use crate::util;

use std::process::{Output, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use kfconform_emulator::Emulator;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::process::Command;

/// Every kubectl invocation gets this long; a hang fails the test instead of blocking it.
const TIMEOUT: Duration = Duration::from_secs(60);
const NS: &str = "kubectl-proxy";

async fn kubectl(emu: &Emulator, dir: &tempfile::TempDir, args: &[&str]) -> Output {
    let bin = util::on_path("kubectl").unwrap_or_else(|| {
        panic!("kubectl is not on PATH: run `.ci/setup` (CI installs it) before the tests")
    });
    let kubeconfig = util::kubeconfig(emu, dir.path());
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(TIMEOUT, out)
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
        .unwrap()
}

async fn kubectl_ok(emu: &Emulator, dir: &tempfile::TempDir, args: &[&str]) -> String {
    let out = kubectl(emu, dir, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn setup(emu: &Emulator) {
    let c = util::client(emu);
    let nss: Api<Namespace> = Api::all(c.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let svcs: Api<Service> = Api::namespaced(c.clone(), NS);
    for (name, app) in [("web", "web"), ("idle", "nobody")] {
        let svc = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
        }))
        .unwrap();
        svcs.create(&PostParams::default(), &svc).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{
            "name": "main", "image": kfconform_probe::DEFAULT_PROBE_IMAGE,
            "args": ["probe", "http", "--port", "8080"],
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    crate::services::wait_listening(&pods, "web-0").await;
    let eps: Api<Endpoints> = Api::namespaced(c, NS);
    util::wait_for(&eps, "web", |e| {
        e.subsets
            .iter()
            .flatten()
            .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()))
    })
    .await;
}

#[tokio::test]
async fn get_raw_through_the_service_and_pod_proxy() {
    let emu = util::probe_emulator().await;
    setup(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let path = format!("/api/v1/namespaces/{NS}/services/web:80/proxy/hello?x=1");
    let out = kubectl_ok(&emu, &dir, &["get", "--raw", &path]).await;
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/hello");
    assert_eq!(body["query"], "x=1");
    assert_eq!(body["hostname"], "web-0");
    assert!(
        body["headers"].get("authorization").is_none(),
        "the caller's credentials must not reach the pod: {body}"
    );
    let path = format!("/api/v1/namespaces/{NS}/pods/web-0:8080/proxy/direct");
    let out = kubectl_ok(&emu, &dir, &["get", "--raw", &path]).await;
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (body["path"].as_str(), body["hostname"].as_str()),
        (Some("/direct"), Some("web-0"))
    );
    // No ready endpoint: the apiserver's Status, as kubectl reports it.
    let path = format!("/api/v1/namespaces/{NS}/services/idle:80/proxy/");
    let out = kubectl(&emu, &dir, &["get", "--raw", &path]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Error from server (ServiceUnavailable): no endpoints available for service \"idle\""
        ),
        "{stderr}"
    );
    // The endpoint objects kubectl lists.
    let out = kubectl_ok(
        &emu,
        &dir,
        &[
            "get",
            "endpointslices",
            "-n",
            NS,
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "json",
        ],
    )
    .await;
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["ports"][0]["port"], 8080);
    let ip = list["items"][0]["endpoints"][0]["addresses"][0]
        .as_str()
        .unwrap()
        .to_string();
    // Endpoints are served with the apiserver's deprecation warning.
    let out = kubectl(&emu, &dir, &["get", "endpoints", "web", "-n", NS]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
        ),
        "{stderr}"
    );
    // `kubectl describe` reads the Service's endpoints from its slices.
    let out = kubectl_ok(&emu, &dir, &["describe", "service", "web", "-n", NS]).await;
    assert!(out.contains(&format!("{ip}:8080")), "{out}");
    emu.shutdown().await;
}
