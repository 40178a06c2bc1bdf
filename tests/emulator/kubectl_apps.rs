//! The real kubectl against apps/v1: a Deployment of probe pods through `rollout status`,
//! `scale` (the scale subresource), a second revision, `rollout history`, `rollout undo`
//! (kubectl's client-side JSON patch from the previous ReplicaSet), `rollout restart`, and the
//! controllers' events in `kubectl get events`.

use crate::kubectl::Kubectl;
use crate::util;

use kfconform_emulator::Emulator;
use serde_json::Value;

const NS: &str = "kubectl-apps";
const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

async fn setup() -> (Emulator, Kubectl) {
    let emu = util::probe_emulator().await;
    let k = Kubectl::new(&emu);
    let nsfile = k.file(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"),
    );
    k.ok(&["apply", "-f", &nsfile]).await;
    (emu, k)
}

fn deployment_yaml(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {NS}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: main
        image: {IMAGE}
        args: [probe, sleep, --seconds, \"3600\"]
"
    )
}

async fn rollout_status(k: &Kubectl, name: &str) {
    let target = format!("deployment/{name}");
    let out = k
        .ok(&["rollout", "status", &target, "-n", NS, "--timeout=60s"])
        .await;
    assert!(
        out.contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{out}"
    );
}

async fn deployment(k: &Kubectl, name: &str) -> Value {
    k.json(&["get", "deployment", name, "-n", NS, "-o", "json"])
        .await
}

fn env_names(d: &Value) -> Vec<String> {
    d.pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_scale_history_undo_restart_and_events() {
    let (_emu, k) = setup().await;
    let file = k.file("web.yaml", &deployment_yaml("web", 1));
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(out.contains("deployment.apps/web created"), "{out}");
    rollout_status(&k, "web").await;

    let out = k
        .ok(&["scale", "deployment/web", "--replicas=3", "-n", NS])
        .await;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    rollout_status(&k, "web").await;
    let d = deployment(&k, "web").await;
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);

    // Revision 2: a template change, with its change cause.
    let out = k
        .ok(&["set", "env", "deployment/web", "-n", NS, "STAGE=two"])
        .await;
    assert!(out.contains("deployment.apps/web env updated"), "{out}");
    rollout_status(&k, "web").await;
    let d = deployment(&k, "web").await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(env_names(&d), ["STAGE"]);

    let history = k
        .ok(&["rollout", "history", "deployment/web", "-n", NS])
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let second = k
        .ok(&[
            "rollout",
            "history",
            "deployment/web",
            "-n",
            NS,
            "--revision=2",
        ])
        .await;
    assert!(
        second.contains("STAGE:") && second.contains("two"),
        "{second}"
    );

    let out = k.ok(&["rollout", "undo", "deployment/web", "-n", NS]).await;
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    rollout_status(&k, "web").await;
    let d = deployment(&k, "web").await;
    assert!(
        env_names(&d).is_empty(),
        "undo restores revision 1's template"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let rss = k.json(&["get", "rs", "-n", NS, "-o", "json"]).await;
    assert_eq!(
        rss["items"].as_array().map(Vec::len),
        Some(2),
        "revision 1's ReplicaSet is reused"
    );

    let out = k
        .ok(&["rollout", "restart", "deployment/web", "-n", NS])
        .await;
    assert!(out.contains("deployment.apps/web restarted"), "{out}");
    rollout_status(&k, "web").await;
    let d = deployment(&k, "web").await;
    let restarted =
        &d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted.is_string(), "{d}");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );

    let events = k.ok(&["get", "events", "-n", NS]).await;
    for needle in [
        "ScalingReplicaSet",
        "Scaled up replica set web-",
        "Scaled down replica set web-",
        "SuccessfulCreate",
        "Created pod: web-",
        "SuccessfulDelete",
        "replicaset/web-",
        "deployment/web",
    ] {
        assert!(events.contains(needle), "no {needle:?} in:\n{events}");
    }
    let scaling = k
        .json(&[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "reason=ScalingReplicaSet,involvedObject.kind=Deployment",
            "-o",
            "json",
        ])
        .await;
    let n = scaling["items"].as_array().map_or(0, Vec::len);
    assert!(n >= 4, "{scaling}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lists_deployments_and_replica_sets_by_short_name() {
    let (_emu, k) = setup().await;
    let file = k.file("api.yaml", &deployment_yaml("api", 2));
    k.ok(&["apply", "-f", &file]).await;
    rollout_status(&k, "api").await;
    let out = k.ok(&["get", "deployment", "api", "-n", NS]).await;
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row[..4], ["api", "2/2", "2", "2"], "{out}");
    let out = k.ok(&["get", "rs", "-n", NS, "-o", "wide"]).await;
    assert!(out.contains("DESIRED") && out.contains("SELECTOR"), "{out}");
    assert!(out.contains("app=api,pod-template-hash="), "{out}");
    let out = k.ok(&["get", "events", "-n", NS]).await;
    assert!(out.starts_with("LAST SEEN"), "{out}");
    let out = k.ok(&["get", "deploy,rs", "-n", NS]).await;
    assert!(out.contains("deployment.apps/api"), "{out}");
    assert!(out.contains("replicaset.apps/api-"), "{out}");
    let scale = k
        .json(&[
            "get",
            "--raw",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/api/scale"),
        ])
        .await;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=api");
    let resources = k.ok(&["api-resources", "--api-group=apps"]).await;
    assert!(
        resources.contains("deploy") && resources.contains("rs"),
        "{resources}"
    );
    let hpa = k.ok(&["api-resources", "--api-group=autoscaling"]).await;
    assert!(hpa.contains("hpa"), "{hpa}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_then_rollout_status() {
    let (_emu, k) = setup().await;
    let image = format!("--image={IMAGE}");
    let out = k
        .ok(&[
            "create",
            "deployment",
            "made",
            "-n",
            NS,
            &image,
            "--",
            "kfconform",
            "probe",
            "sleep",
            "--seconds",
            "3600",
        ])
        .await;
    assert!(out.contains("deployment.apps/made created"), "{out}");
    rollout_status(&k, "made").await;
}
