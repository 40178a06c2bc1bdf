//! The kubelet's probes, image pulls, events, start-up delay and Node, through the API:
//! readiness follows the probe workload's health, a failing liveness probe restarts the
//! container, tcpSocket and named ports, exec probes error, unknown images never run, the
//! node object and its Lease heartbeat.

use crate::util;

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kfconform_emulator::kubelet::{KubeletConfig, NODE_NAME};
use kfconform_emulator::{Emulator, EmulatorConfig};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

/// A pod running the HTTP probe workload on port 8080 (named `web`) with `probes` merged
/// into its container.
fn http_pod(name: &str, probes: Value) -> Pod {
    let mut c = json!({
        "name": "main", "image": IMAGE, "args": ["probe", "http", "--port", "8080"],
        "ports": [{"name": "web", "containerPort": 8080}],
    });
    if let (Some(c), Some(p)) = (c.as_object_mut(), probes.as_object()) {
        c.extend(p.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Always", "containers": [c]}
    }))
    .unwrap()
}

async fn start(kubelet: KubeletConfig) -> (Emulator, kube::Client, Api<Pod>) {
    let emu = util::emulator_with(EmulatorConfig {
        kubelet,
        ..EmulatorConfig::default()
    })
    .await;
    let client = util::client(&emu);
    let pods = Api::namespaced(client.clone(), "default");
    (emu, client, pods)
}

/// A startup probe that gives the workload time to bind (liveness and readiness wait for it).
fn startup() -> Value {
    json!({"httpGet": {"path": "/healthz", "port": "web"}, "periodSeconds": 1,
           "failureThreshold": 30})
}

fn condition(p: &Pod, ty: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

fn ready(p: &Pod) -> bool {
    condition(p, "Ready").as_deref() == Some("True")
        && condition(p, "ContainersReady").as_deref() == Some("True")
}

fn container(p: &Pod) -> Value {
    serde_json::to_value(p).unwrap()["status"]["containerStatuses"][0].clone()
}

/// Watches the events about pod `name` until one has `reason` and a message containing
/// `text`; returns it.
async fn wait_event(client: &kube::Client, name: &str, reason: &str, text: &str) -> Event {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let cfg = watcher::Config::default().fields(&format!("involvedObject.name={name}"));
    let mut seen = Vec::new();
    let found = async {
        let mut stream = std::pin::pin!(watcher::watcher(api, cfg));
        while let Some(ev) = stream.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(e)) | Ok(watcher::Event::InitApply(e)) => vec![e],
                _ => continue,
            };
            for e in objs {
                let (r, m) = (
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default(),
                );
                if r == reason && m.contains(text) {
                    return Some(e);
                }
                seen.push(format!("{r}: {m}"));
            }
        }
        None
    };
    match tokio::time::timeout(util::WAIT, found).await {
        Ok(Some(e)) => e,
        _ => panic!("no {reason} event with {text:?} about {name}; seen: {seen:#?}"),
    }
}

/// POSTs `path` to the pod's HTTP workload.
async fn post(p: &Pod, path: &str) {
    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
    let res = reqwest::Client::new()
        .post(format!("http://{ip}:8080{path}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_health_endpoint_after_startup() {
    let (emu, client, pods) = start(util::probe_kubelet()).await;
    let probe = json!({"httpGet": {"path": "/healthz", "port": "web"},
                       "periodSeconds": 1, "failureThreshold": 1});
    let pod = http_pod(
        "ready",
        json!({"readinessProbe": probe, "startupProbe": startup()}),
    );
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let p = util::wait_for(&pods, "ready", ready).await;
    assert_eq!(container(&p)["started"], true);
    assert_eq!(container(&p)["ready"], true);
    post(&p, "/unhealthy").await;
    let p = util::wait_for(&pods, "ready", |p| {
        condition(p, "Ready").as_deref() == Some("False")
    })
    .await;
    assert_eq!(condition(&p, "ContainersReady").as_deref(), Some("False"));
    assert_eq!(container(&p)["restartCount"], 0);
    let e = wait_event(
        &client,
        "ready",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    )
    .await;
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(
        e.involved_object.field_path.as_deref(),
        Some("spec.containers{main}")
    );
    post(&p, "/healthy").await;
    util::wait_for(&pods, "ready", ready).await;
    for (reason, text) in [
        (
            "Scheduled",
            format!("Successfully assigned default/ready to {NODE_NAME}"),
        ),
        ("Pulling", format!("Pulling image {IMAGE:?}")),
        ("Pulled", "Successfully pulled image".to_string()),
        ("Created", "Created container: main".into()),
        ("Started", "Started container main".into()),
    ] {
        wait_event(&client, "ready", reason, &text).await;
    }
    pods.delete("ready", &DeleteParams::default())
        .await
        .unwrap();
    wait_event(&client, "ready", "Killing", "Stopping container main").await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let (emu, client, pods) = start(util::probe_kubelet()).await;
    let pod = http_pod(
        "live",
        json!({"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                 "periodSeconds": 1, "failureThreshold": 1},
               "startupProbe": startup()}),
    );
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let p = util::wait_for(&pods, "live", ready).await;
    post(&p, "/unhealthy").await;
    wait_event(
        &client,
        "live",
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed with statuscode: 503",
    )
    .await;
    wait_event(
        &client,
        "live",
        "Killing",
        "Container main failed liveness probe, will be restarted",
    )
    .await;
    // The new instance starts healthy again.
    let p = util::wait_for(&pods, "live", |p| {
        container(p)["restartCount"].as_i64() >= Some(1) && ready(p)
    })
    .await;
    assert!(container(&p)["lastState"]["terminated"].is_object());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_socket_probes_connect_and_exec_probes_error() {
    let (emu, client, pods) = start(util::probe_kubelet()).await;
    let tcp = |port: Value| json!({"tcpSocket": {"port": port}, "periodSeconds": 1});
    let ok = http_pod("tcp", json!({"readinessProbe": tcp(json!("web"))}));
    pods.create(&PostParams::default(), &ok).await.unwrap();
    let refused = http_pod("refused", json!({"readinessProbe": tcp(json!(9))}));
    pods.create(&PostParams::default(), &refused).await.unwrap();
    let exec = http_pod(
        "exec",
        json!({"readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}),
    );
    let created = pods.create(&PostParams::default(), &exec).await.unwrap();
    // The apiserver's probe defaults (SetDefaults_Probe).
    let probe = &serde_json::to_value(&created).unwrap()["spec"]["containers"][0]["readinessProbe"];
    assert_eq!(
        (
            &probe["timeoutSeconds"],
            &probe["successThreshold"],
            &probe["failureThreshold"]
        ),
        (&json!(1), &json!(1), &json!(3))
    );
    util::wait_for(&pods, "tcp", ready).await;
    let e = wait_event(
        &client,
        "refused",
        "Unhealthy",
        "Readiness probe failed: dial tcp ",
    )
    .await;
    assert!(
        e.message
            .unwrap()
            .ends_with(":9: connect: connection refused"),
        "upstream's dial error"
    );
    wait_event(
        &client,
        "exec",
        "Unhealthy",
        "Readiness probe errored and resulted in unknown state: exec probes cannot run",
    )
    .await;
    for name in ["refused", "exec"] {
        let p = pods.get(name).await.unwrap();
        assert_eq!(condition(&p, "Ready").as_deref(), Some("False"), "{name}");
        assert!(container(&p)["state"]["running"].is_object());
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_nobody_runs_fails_to_pull_and_never_runs() {
    let (emu, client, pods) = start(util::probe_kubelet()).await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pull"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let reason = |p: &Pod| {
        container(p)["state"]["waiting"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let p = util::wait_for(&pods, "pull", |p| reason(p) == "ErrImagePull").await;
    assert!(
        container(&p)["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .contains("--pod-stages")
    );
    let p = util::wait_for(&pods, "pull", |p| reason(p) == "ImagePullBackOff").await;
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE_NAME)
    );
    wait_event(
        &client,
        "pull",
        "Failed",
        "Failed to pull image \"example.invalid/app:1\": rpc error: code = NotFound",
    )
    .await;
    wait_event(&client, "pull", "Failed", "Error: ErrImagePull").await;
    wait_event(&client, "pull", "BackOff", "Back-off pulling image").await;
    // Pulls are retried, and never lead to Running.
    let p = util::wait_for(&pods, "pull", |p| reason(p) == "ErrImagePull").await;
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(container(&p)["ready"], false);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_startup_delays_every_pod() {
    let delay = Duration::from_millis(1500);
    let (emu, _client, pods) = start(KubeletConfig {
        pod_startup: delay,
        pod_startup_jitter: Duration::from_millis(200),
        ..util::probe_kubelet()
    })
    .await;
    let t0 = Instant::now();
    pods.create(&PostParams::default(), &http_pod("slow", json!({})))
        .await
        .unwrap();
    let p = util::wait_for(&pods, "slow", |p| {
        container(p)["state"]["running"].is_object()
    })
    .await;
    assert!(t0.elapsed() >= delay, "running after {:?}", t0.elapsed());
    // Bound at once: the delay is the node's, not the scheduler's.
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE_NAME)
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_is_registered_and_heartbeats() {
    let (emu, client, _pods) = start(KubeletConfig {
        heartbeat: Duration::from_secs(1),
        ..util::probe_kubelet()
    })
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    let n = util::wait_for(&nodes, NODE_NAME, |_| true).await;
    let v = serde_json::to_value(&n).unwrap();
    let labels = &v["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], NODE_NAME);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let status = &v["status"];
    assert_eq!(status["capacity"]["pods"], "110");
    assert!(
        status["capacity"]["cpu"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert!(
        status["allocatable"]["memory"]
            .as_str()
            .unwrap()
            .ends_with("Ki")
    );
    let types: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    assert_eq!(status["conditions"][3]["reason"], "KubeletReady");
    assert_eq!(status["addresses"][0]["type"], "InternalIP");
    let info = &status["nodeInfo"];
    assert_eq!(info["kubeletVersion"], "v1.34.2+kfconform-emulator");
    assert!(
        info["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("kfconform://")
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = util::wait_for(&leases, NODE_NAME, |_| true).await;
    let renewed = |l: &Lease| l.spec.as_ref().and_then(|s| s.renew_time.clone());
    let before = renewed(&first);
    assert!(before.is_some());
    util::wait_for(&leases, NODE_NAME, |l| renewed(l) != before).await;
    emu.shutdown().await;
}
