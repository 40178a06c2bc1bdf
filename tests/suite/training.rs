//! The Job, PyTorchJob and TrainJob controllers, through the API. The test plays the kubelet:
//! pods use an image the emulator's kubelet does not run and move through no stages, and the
//! test writes their status as a kubelet would. Waits are watches with a safety timeout.

use crate::util;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kfconform_emulator::kubelet::{KubeletConfig, StageRule};
use kfconform_emulator::{Defect, Emulator, EmulatorConfig};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};

/// An image the emulator's kubelet does not run, so the test decides the pods' fate.
const IMAGE: &str = "example.com/training/idle:1";

async fn start(defects: Vec<Defect>) -> (Emulator, kube::Client) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let emu = util::emulator_with(EmulatorConfig {
        defects,
        kubelet: kubelet_config(),
        ..EmulatorConfig::default()
    })
    .await;
    let client = util::client(&emu);
    (emu, client)
}

/// Pods of other images (IMAGE, and the PyTorchJob init container's) move through no
/// stages: after binding them (spec.nodeName, phase Pending) the kubelet leaves them to the
/// test.
fn kubelet_config() -> KubeletConfig {
    KubeletConfig {
        pod_stages: vec![StageRule::new("*", Vec::new())],
        ..KubeletConfig::default()
    }
}

/// [`start`], with namespace `ns` in the emulator and the pods there.
async fn start_in(ns: &str, defects: Vec<Defect>) -> (Emulator, kube::Client, Api<Pod>) {
    let (emu, client) = start(defects).await;
    namespace(&client, ns).await;
    let pods = Api::namespaced(client.clone(), ns);
    (emu, client, pods)
}

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn resource(g: &str, v: &str, k: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural)
}

/// The PyTorchJobs in namespace `ns`.
fn pytorchjobs(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = resource("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs");
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The TrainJobs in namespace `ns`.
fn trainjobs(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = resource("trainer.kubeflow.org", "v1alpha1", "TrainJob", "trainjobs");
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The ClusterTrainingRuntimes.
fn runtimes(client: &kube::Client) -> Api<DynamicObject> {
    let ar = resource(
        "trainer.kubeflow.org",
        "v1alpha1",
        "ClusterTrainingRuntime",
        "clustertrainingruntimes",
    );
    Api::all_with(client.clone(), &ar)
}

async fn create_dyn(api: &Api<DynamicObject>, obj: Value) -> Value {
    let o: DynamicObject = serde_json::from_value(obj).unwrap();
    let created = api.create(&PostParams::default(), &o).await.unwrap();
    serde_json::to_value(created).unwrap()
}

fn cond_true(v: &Value, t: &str) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == t && c["status"] == "True")
}

fn condition<'a>(v: &'a Value, t: &str) -> &'a Value {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

/// Waits until the object, as JSON, satisfies `f`; returns it as JSON.
async fn wait_json<K>(api: &Api<K>, name: &str, f: impl Fn(&Value) -> bool) -> Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize,
    K: std::fmt::Debug + Send + 'static,
{
    let got = util::wait_for(api, name, |o| f(&serde_json::to_value(o).unwrap())).await;
    serde_json::to_value(got).unwrap()
}

/// The first version of the object after resourceVersion `rv` that satisfies `f`.
async fn seen_since(
    api: &Api<DynamicObject>,
    name: &str,
    rv: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    use futures::StreamExt;
    let wp = kube::api::WatchParams::default().fields(&format!("metadata.name={name}"));
    let stream = api.watch(&wp, rv).await.unwrap();
    let fut = async {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let kube::api::WatchEvent::Modified(o) = ev.unwrap() {
                let v = serde_json::to_value(o).unwrap();
                if f(&v) {
                    return v;
                }
            }
        }
        panic!("watch ended")
    };
    let what = format!("{name} passing through the expected state");
    util::within(&what, fut).await
}

/// Waits until `n` pods exist in the namespace (matching `prefix`), returning them.
async fn wait_pods(api: &Api<Pod>, prefix: &str, n: usize) -> Vec<Pod> {
    use futures::StreamExt;
    let stream = kube::runtime::watcher(api.clone(), Default::default());
    let mut store = std::collections::BTreeMap::new();
    let fut = async {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev.unwrap() {
                kube::runtime::watcher::Event::Apply(p)
                | kube::runtime::watcher::Event::InitApply(p) => {
                    store.insert(p.metadata.name.clone().unwrap(), p);
                }
                kube::runtime::watcher::Event::Delete(p) => {
                    store.remove(p.metadata.name.as_deref().unwrap());
                }
                _ => {}
            }
            let live: Vec<Pod> = store
                .values()
                .filter(|p| {
                    p.metadata.name.as_deref().unwrap().starts_with(prefix)
                        && p.metadata.deletion_timestamp.is_none()
                })
                // Bound and reported Pending: the kubelet is done with it.
                .filter(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
                })
                .cloned()
                .collect();
            if live.len() == n {
                return live;
            }
        }
        panic!("pod watch ended")
    };
    util::within(&format!("{n} pods named {prefix}*"), fut).await
}

/// Plays the kubelet: sets a pod's phase (and its containers' states).
async fn set_phase(api: &Api<Pod>, name: &str, phase: &str, exit_code: i64, restarts: i64) {
    let pod = api.get(name).await.unwrap();
    let containers: Vec<Value> = pod
        .spec
        .unwrap()
        .containers
        .iter()
        .map(|c| {
            let state = match phase {
                "Running" | "Pending" => json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
                _ => json!({"terminated": {"exitCode": exit_code,
                    "reason": if exit_code == 0 { "Completed" } else { "Error" }}}),
            };
            json!({"name": c.name, "image": c.image, "ready": phase == "Running",
                   "restartCount": restarts, "state": state})
        })
        .collect();
    let ready = if phase == "Running" { "True" } else { "False" };
    let status = json!({"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": ready}],
        "containerStatuses": containers,
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap()
}

/// [`set_phase`] for each of `pods`, all exiting 0 without restarts.
async fn set_phases(api: &Api<Pod>, pods: &[Pod], phase: &str) {
    for p in pods {
        set_phase(api, name(p), phase, 0, 0).await;
    }
}

fn pod_env(p: &Pod, container: &str) -> Vec<(String, Value)> {
    let v = serde_json::to_value(p).unwrap();
    v["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap()["env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = e
                .get("value")
                .cloned()
                .unwrap_or_else(|| e["valueFrom"].clone());
            (name, value)
        })
        .collect()
}

fn env_value(env: &[(String, Value)], name: &str) -> Option<Value> {
    env.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The spec of the pods `job` makes.
fn pod_spec(job: &mut Job) -> &mut k8s_openapi::api::core::v1::PodSpec {
    let template = &mut job.spec.as_mut().unwrap().template;
    template.spec.as_mut().unwrap()
}

async fn create_job(api: &Api<Job>, job: Job) {
    api.create(&PostParams::default(), &job).await.unwrap();
}

fn batch_job(name: &str, spec: Value) -> Job {
    let mut s = spec;
    s["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE}]}});
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": s})).unwrap()
}

#[tokio::test]
async fn job_counts_pods_and_completes() {
    let (emu, client, pods) = start_in("jobs", vec![]).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "jobs");
    create_job(
        &jobs,
        batch_job("pi", json!({"completions": 2, "parallelism": 2})),
    )
    .await;
    let live = wait_pods(&pods, "pi-", 2).await;
    let job = serde_json::to_value(jobs.get("pi").await.unwrap()).unwrap();
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(job["spec"]["backoffLimit"], 6);
    for p in &live {
        let labels = p.metadata.labels.clone().unwrap();
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(labels["controller-uid"], uid);
        assert_eq!(
            p.metadata.finalizers.clone().unwrap(),
            vec!["batch.kubernetes.io/job-tracking".to_string()]
        );
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    }
    set_phases(&pods, &live, "Running").await;
    wait_json(&jobs, "pi", |j| {
        j["status"]["active"] == 2 && j["status"]["ready"] == 2
    })
    .await;
    set_phases(&pods, &live, "Succeeded").await;
    let done = wait_json(&jobs, "pi", |j| cond_true(j, "Complete")).await;
    assert_eq!(done["status"]["succeeded"], 2);
    assert!(done["status"].get("active").is_none());
    assert_eq!(done["status"]["terminating"], 0);
    assert_eq!(done["status"]["uncountedTerminatedPods"], json!({}));
    assert!(done["status"]["completionTime"].is_string());
    assert!(done["status"]["startTime"].is_string());
    let met = condition(&done, "SuccessCriteriaMet");
    assert_eq!(met["reason"], "CompletionsReached");
    assert_eq!(
        condition(&done, "Complete")["message"],
        "Reached expected number of succeeded pods"
    );
    let after = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(after.items.len(), 2, "finished pods are kept");
    assert!(
        after
            .items
            .iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn indexed_job_fails_past_backoff_limit() {
    let (emu, client, pods) = start_in("idx", vec![]).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "idx");
    let mut job = batch_job(
        "ix",
        json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed", "backoffLimit": 0}),
    );
    pod_spec(&mut job).subdomain = Some("ix".into());
    create_job(&jobs, job).await;
    let live = wait_pods(&pods, "ix-", 2).await;
    let mut indexes: Vec<String> = live
        .iter()
        .map(|p| {
            let v = serde_json::to_value(p).unwrap();
            let ix = v["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                v["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                ix.as_str()
            );
            assert_eq!(v["spec"]["hostname"], format!("ix-{ix}"));
            assert!(
                p.metadata
                    .name
                    .as_deref()
                    .unwrap()
                    .starts_with(&format!("ix-{ix}-"))
            );
            let env = pod_env(p, "main");
            assert_eq!(
                env_value(&env, "JOB_COMPLETION_INDEX").unwrap()["fieldRef"]["fieldPath"],
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
            ix
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1"]);
    let first = live
        .iter()
        .find(|p| p.metadata.name.as_deref().unwrap().starts_with("ix-0-"))
        .unwrap();
    set_phase(&pods, name(first), "Failed", 1, 0).await;
    let failed = wait_json(&jobs, "ix", |j| cond_true(j, "Failed")).await;
    let target = condition(&failed, "FailureTarget");
    assert_eq!(target["reason"], "BackoffLimitExceeded");
    assert_eq!(
        condition(&failed, "Failed")["message"],
        "Job has reached the specified backoff limit"
    );
    // Both the failed pod and the one it took down count.
    assert_eq!(failed["status"]["failed"], 2);
    let left = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        left.len(),
        1,
        "the active pod is deleted, the failed one kept"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn job_with_on_failure_fails_on_container_restarts_and_suspends() {
    let (emu, client, pods) = start_in("restarts", vec![]).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "restarts");
    let mut job = batch_job("crash", json!({"backoffLimit": 2}));
    pod_spec(&mut job).restart_policy = Some("OnFailure".into());
    create_job(&jobs, job).await;
    let live = wait_pods(&pods, "crash-", 1).await;
    set_phase(&pods, name(&live[0]), "Running", 0, 2).await;
    let failed = wait_json(&jobs, "crash", |j| cond_true(j, "Failed")).await;
    assert_eq!(
        condition(&failed, "Failed")["reason"],
        "BackoffLimitExceeded"
    );

    let mut job = batch_job("later", json!({"suspend": true}));
    pod_spec(&mut job).restart_policy = Some("Never".into());
    create_job(&jobs, job).await;
    let suspended = wait_json(&jobs, "later", |j| cond_true(j, "Suspended")).await;
    assert_eq!(condition(&suspended, "Suspended")["reason"], "JobSuspended");
    assert!(suspended["status"].get("startTime").is_none());
    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    let resumed = wait_json(&jobs, "later", |j| {
        condition(j, "Suspended")["status"] == "False" && j["status"]["active"] == 1
    })
    .await;
    assert_eq!(condition(&resumed, "Suspended")["reason"], "JobResumed");
    wait_pods(&pods, "later-", 1).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_releases_tracked_pods() {
    let (emu, client, pods) = start_in("gone", vec![]).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "gone");
    create_job(
        &jobs,
        batch_job("j", json!({"parallelism": 2, "completions": 4})),
    )
    .await;
    wait_pods(&pods, "j-", 2).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    // The namespace goes away although its pods carry the job-tracking finalizer.
    util::wait_gone(&nss, "gone").await;
    emu.shutdown().await;
}

fn pytorchjob(name: &str, workers: u32, policy: &str) -> Value {
    let replica = |n: u32| {
        json!({
            "replicas": n,
            "restartPolicy": policy,
            "template": {"metadata": {"labels": {"app": "t"}},
                         "spec": {"containers": [{"name": "pytorch", "image": IMAGE}]}},
        })
    };
    json!({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(workers)}},
    })
}

#[tokio::test]
async fn pytorchjob_pods_services_env_and_success() {
    let (emu, client, pods) = start_in("pt", vec![]).await;
    let api = pytorchjobs(&client, "pt");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "pt");
    create_dyn(&api, pytorchjob("pj", 2, "Never")).await;
    let created = wait_json(&api, "pj", |j| cond_true(j, "Created")).await;
    assert_eq!(
        condition(&created, "Created")["reason"],
        "PyTorchJobCreated"
    );
    assert_eq!(
        condition(&created, "Created")["message"],
        "PyTorchJob pj is created."
    );
    let live = wait_pods(&pods, "pj-", 3).await;
    let mut names: Vec<&str> = live
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["pj-master-0", "pj-worker-0", "pj-worker-1"]);
    for p in &live {
        let name = p.metadata.name.as_deref().unwrap();
        let (rtype, index, rank) = match name {
            "pj-master-0" => ("master", "0", "0"),
            "pj-worker-0" => ("worker", "0", "1"),
            _ => ("worker", "1", "2"),
        };
        let labels = p.metadata.labels.clone().unwrap();
        assert_eq!(labels["app"], "t");
        assert_eq!(labels["training.kubeflow.org/job-name"], "pj");
        assert_eq!(
            labels["training.kubeflow.org/operator-name"],
            "pytorchjob-controller"
        );
        assert_eq!(labels["training.kubeflow.org/replica-type"], rtype);
        assert_eq!(labels["training.kubeflow.org/replica-index"], index);
        assert_eq!(
            labels
                .get("training.kubeflow.org/job-role")
                .map(String::as_str),
            (rtype == "master").then_some("master")
        );
        let spec = p.spec.clone().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        let inits: Vec<String> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            inits.is_empty(),
            rtype == "master",
            "init-pytorch on workers only: {inits:?}"
        );
        let env = pod_env(p, "pytorch");
        assert_eq!(env_value(&env, "MASTER_ADDR"), Some(json!("pj-master-0")));
        assert_eq!(
            env_value(&env, "PET_MASTER_ADDR"),
            Some(json!("pj-master-0"))
        );
        assert_eq!(env_value(&env, "MASTER_PORT"), Some(json!("23456")));
        assert_eq!(env_value(&env, "WORLD_SIZE"), Some(json!("3")));
        assert_eq!(env_value(&env, "RANK"), Some(json!(rank)));
        assert_eq!(env_value(&env, "PET_NODE_RANK"), Some(json!(rank)));
        assert_eq!(env_value(&env, "PET_NNODES"), Some(json!("3")));
        assert_eq!(env_value(&env, "PET_NPROC_PER_NODE"), Some(json!("auto")));
        assert_eq!(env_value(&env, "PYTHONUNBUFFERED"), Some(json!("1")));
        let ports = serde_json::to_value(&spec.containers[0].ports).unwrap();
        assert_eq!(
            ports,
            json!([{"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}])
        );
        let svc = svcs.get(name).await.unwrap();
        let s = svc.spec.unwrap();
        assert_eq!(s.cluster_ip.as_deref(), Some("None"));
        let sel = s.selector.unwrap();
        assert!(
            sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{sel:?} selects {name}"
        );
        assert!(!sel.contains_key("training.kubeflow.org/job-role"));
        let port = &s.ports.unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port),
            (Some("pytorchjob-port"), 23456)
        );
    }
    // The stored spec stays as written: defaults live in the operator's memory.
    let stored = wait_json(&api, "pj", |_| true).await;
    assert!(
        stored["spec"]
            .get("runPolicy")
            .is_none_or(|r| r.get("cleanPodPolicy").is_none())
    );

    set_phase(&pods, "pj-master-0", "Running", 0, 0).await;
    let running = wait_json(&api, "pj", |j| cond_true(j, "Running")).await;
    assert_eq!(
        condition(&running, "Running")["message"],
        "PyTorchJob pj is running."
    );
    assert_eq!(running["status"]["replicaStatuses"]["Master"]["active"], 1);
    assert_eq!(
        running["status"]["replicaStatuses"]["Worker"]["selector"],
        "training.kubeflow.org/job-name=pj,training.kubeflow.org/operator-name=pytorchjob-controller,training.kubeflow.org/replica-type=worker"
    );
    set_phase(&pods, "pj-worker-0", "Running", 0, 0).await;
    set_phase(&pods, "pj-master-0", "Succeeded", 0, 0).await;
    let done = wait_json(&api, "pj", |j| cond_true(j, "Succeeded")).await;
    assert_eq!(
        condition(&done, "Succeeded")["reason"],
        "PyTorchJobSucceeded"
    );
    assert_eq!(condition(&done, "Running")["status"], "False");
    assert!(done["status"]["completionTime"].is_string());
    // Active replicas of a succeeded job are counted as succeeded; pods stay (cleanPodPolicy None).
    let settled = wait_json(&api, "pj", |j| {
        j["status"]["replicaStatuses"]["Worker"]
            .get("active")
            .is_none()
    })
    .await;
    assert_eq!(
        settled["status"]["replicaStatuses"]["Worker"]["succeeded"],
        1
    );
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn pytorchjob_never_failure_and_on_failure_restart() {
    let (emu, client, pods) = start_in("ptf", vec![]).await;
    let api = pytorchjobs(&client, "ptf");
    create_dyn(&api, pytorchjob("never", 1, "Never")).await;
    wait_pods(&pods, "never-", 2).await;
    set_phase(&pods, "never-master-0", "Running", 0, 0).await;
    set_phase(&pods, "never-worker-0", "Failed", 3, 0).await;
    let failed = wait_json(&api, "never", |j| cond_true(j, "Failed")).await;
    let c = condition(&failed, "Failed");
    assert_eq!(c["reason"], "PyTorchJobFailed");
    assert_eq!(
        c["message"],
        "PyTorchJob never is failed because 1 Worker replica(s) failed."
    );
    assert!(!cond_true(&failed, "Succeeded"));
    assert_eq!(failed["status"]["replicaStatuses"]["Worker"]["failed"], 1);

    create_dyn(&api, pytorchjob("again", 1, "OnFailure")).await;
    let first = wait_pods(&pods, "again-", 2).await;
    let old_uid = first
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("again-worker-0"))
        .unwrap()
        .metadata
        .uid
        .clone();
    set_phase(&pods, "again-master-0", "Running", 0, 0).await;
    let before = wait_json(&api, "again", |j| cond_true(j, "Running")).await;
    set_phase(&pods, "again-worker-0", "Failed", 1, 0).await;
    // Restarting lasts only until the replacement pod is counted: watch from before the failure.
    let rv = before["metadata"]["resourceVersion"].as_str().unwrap();
    let restarting = seen_since(&api, "again", rv, |j| cond_true(j, "Restarting")).await;
    assert_eq!(
        condition(&restarting, "Restarting")["reason"],
        "PyTorchJobRestarting"
    );
    // The failed OnFailure replica is recreated under the same name.
    util::wait_for(&pods, "again-worker-0", |p| p.metadata.uid != old_uid).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn pytorchjob_defects_show_in_pods_and_services() {
    let (emu, client, pods) = start_in(
        "bad",
        vec![
            Defect::TrainingNoMasterAddr,
            Defect::TrainingWrongWorldSize,
            Defect::TrainingWrongReplicaLabels,
            Defect::TrainingMasterUnreachable,
            Defect::TrainingNoPetNnodes,
        ],
    )
    .await;
    let api = pytorchjobs(&client, "bad");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "bad");
    create_dyn(&api, pytorchjob("pj", 1, "Never")).await;
    let live = wait_pods(&pods, "pj-", 2).await;
    let master = live
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("pj-master-0"))
        .unwrap();
    let env = pod_env(master, "pytorch");
    assert_eq!(env_value(&env, "MASTER_ADDR"), None);
    assert_eq!(env_value(&env, "WORLD_SIZE"), Some(json!("1")));
    assert_eq!(env_value(&env, "PET_NNODES"), None);
    let labels = master.metadata.labels.clone().unwrap();
    assert_eq!(labels["training.kubeflow.org/replica-type"], "Master");
    let sel = svcs
        .get("pj-master-0")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert!(
        !sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the master Service selects nothing"
    );
    emu.shutdown().await;
}

fn trainjob(name: &str, nodes: u32) -> Value {
    json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {"image": IMAGE, "command": ["train"], "numNodes": nodes,
                        "env": [{"name": "EXTRA", "value": "1"}]},
            "runtimePatches": [{"manager": "test", "trainingRuntimeSpec": {"template": {"spec": {
                "replicatedJobs": [{"name": "node", "template": {"spec": {"template": {"spec": {
                    "securityContext": {"runAsNonRoot": true},
                    "containers": [{"name": "node", "securityContext": {"allowPrivilegeEscalation": false}}],
                }}}}}]}}}}],
        },
    })
}

#[tokio::test]
async fn trainjob_runs_on_torch_distributed() {
    let (emu, client, pods) = start_in("tj", vec![]).await;
    let ctr = runtimes(&client);
    ctr.get("torch-distributed")
        .await
        .expect("the runtime ships with the emulator");
    let api = trainjobs(&client, "tj");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "tj");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "tj");
    create_dyn(&api, trainjob("mnist", 2)).await;
    let live = wait_pods(&pods, "mnist-node-0-", 2).await;
    let job = serde_json::to_value(jobs.get("mnist-node-0").await.unwrap()).unwrap();
    assert_eq!(job["spec"]["parallelism"], 2);
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(
        job["metadata"]["labels"]["trainer.kubeflow.org/trainjob-ancestor-step"],
        "trainer"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "TrainJob");
    let svc = svcs.get("mnist").await.unwrap().spec.unwrap();
    assert_eq!(svc.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        svc.selector.unwrap()["jobset.sigs.k8s.io/jobset-name"],
        "mnist"
    );
    for p in &live {
        let v = serde_json::to_value(p).unwrap();
        let ix = v["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(v["spec"]["hostname"], format!("mnist-node-0-{ix}"));
        assert_eq!(v["spec"]["subdomain"], "mnist");
        assert_eq!(v["spec"]["restartPolicy"], "OnFailure");
        assert_eq!(v["spec"]["securityContext"]["runAsNonRoot"], true);
        let l = &v["metadata"]["labels"];
        assert_eq!(l["jobset.sigs.k8s.io/jobset-name"], "mnist");
        assert_eq!(l["jobset.sigs.k8s.io/replicatedjob-name"], "node");
        assert_eq!(l["jobset.sigs.k8s.io/job-index"], "0");
        assert_eq!(l["batch.kubernetes.io/job-name"], "mnist-node-0");
        assert_eq!(l["jobset.sigs.k8s.io/job-key"].as_str().unwrap().len(), 40);
        let node = &v["spec"]["containers"][0];
        assert_eq!(node["image"], IMAGE);
        assert_eq!(node["securityContext"]["allowPrivilegeEscalation"], false);
        let env = pod_env(p, "node");
        assert_eq!(env_value(&env, "EXTRA"), Some(json!("1")));
        assert_eq!(env_value(&env, "PET_NNODES"), Some(json!("2")));
        assert_eq!(env_value(&env, "PET_NPROC_PER_NODE"), Some(json!("1")));
        assert_eq!(
            env_value(&env, "PET_MASTER_ADDR"),
            Some(json!("mnist-node-0-0.mnist"))
        );
        assert_eq!(env_value(&env, "PET_MASTER_PORT"), Some(json!("29500")));
        assert_eq!(
            env_value(&env, "PET_NODE_RANK").unwrap()["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        assert!(env_value(&env, "MASTER_ADDR").is_none());
    }
    set_phases(&pods, &live, "Running").await;
    let running = wait_json(&api, "mnist", |t| {
        t["status"]["jobsStatus"][0]["active"] == 1
    })
    .await;
    assert_eq!(running["status"]["jobsStatus"][0]["name"], "node");
    assert!(
        running["status"].get("conditions").is_none(),
        "no Created/Running conditions in v2.2"
    );
    set_phases(&pods, &live, "Succeeded").await;
    let done = wait_json(&api, "mnist", |t| cond_true(t, "Complete")).await;
    let c = condition(&done, "Complete");
    assert_eq!(
        (c["reason"].as_str(), c["message"].as_str()),
        (
            Some("AllJobsCompleted"),
            Some("jobset completed successfully")
        )
    );
    assert_eq!(done["status"]["jobsStatus"][0]["succeeded"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn trainjob_fails_when_its_job_fails() {
    let (emu, client, pods) = start_in("tjf", vec![]).await;
    let api = trainjobs(&client, "tjf");
    create_dyn(&api, trainjob("bad", 1)).await;
    let live = wait_pods(&pods, "bad-node-0-", 1).await;
    // restartPolicy OnFailure: the kubelet restarts in place until the Job's backoffLimit (6).
    set_phase(&pods, name(&live[0]), "Running", 0, 6).await;
    let failed = wait_json(&api, "bad", |t| cond_true(t, "Failed")).await;
    let c = condition(&failed, "Failed");
    assert_eq!(c["reason"], "FailedJobs");
    assert_eq!(
        c["message"],
        "jobset failed due to one or more job failures (first failed job: bad-node-0)"
    );
    assert_eq!(failed["status"]["jobsStatus"][0]["failed"], 1);

    // An unknown runtime kind fails at once.
    let mut odd = trainjob("odd", 1);
    odd["spec"]["runtimeRef"]["kind"] = json!("MysteryRuntime");
    create_dyn(&api, odd).await;
    let odd = wait_json(&api, "odd", |t| cond_true(t, "Failed")).await;
    assert_eq!(
        condition(&odd, "Failed")["reason"],
        "TrainingRuntimeNotSupported"
    );
    assert_eq!(
        condition(&odd, "Failed")["message"],
        "unsupported runtime: MysteryRuntime.trainer.kubeflow.org"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn trainjob_defects() {
    let (emu, client) = start(vec![
        Defect::TrainingNoTorchDistributedRuntime,
        Defect::TrainingNoPetNodeRank,
        Defect::TrainingTrainjobFailureIgnored,
    ])
    .await;
    let ctr = runtimes(&client);
    assert!(ctr.get_opt("torch-distributed").await.unwrap().is_none());
    emu.shutdown().await;

    let (emu, client, pods) = start_in(
        "d",
        vec![
            Defect::TrainingNoPetNodeRank,
            Defect::TrainingTrainjobFailureIgnored,
        ],
    )
    .await;
    let api = trainjobs(&client, "d");
    create_dyn(&api, trainjob("t", 1)).await;
    let live = wait_pods(&pods, "t-node-0-", 1).await;
    assert!(env_value(&pod_env(&live[0], "node"), "PET_NODE_RANK").is_none());
    set_phase(&pods, name(&live[0]), "Running", 0, 6).await;
    let t = wait_json(&api, "t", |t| t["status"]["jobsStatus"][0]["failed"] == 1).await;
    assert!(!cond_true(&t, "Failed"), "the defect hides the failure");
    emu.shutdown().await;
}

/// The training tests as the runner will run them in a tenant: inside a Profile's namespace,
/// creating everything as the Profile's owner (kubeflow-admin there, nothing cluster-wide),
/// against real probe processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_tests_pass_as_a_profile_owner() {
    use std::sync::Arc;

    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kfconform_suite::conformance::{Evidence, Tenant, TestContext};

    let emu = util::emulator_with(EmulatorConfig {
        kubelet: util::probe_kubelet(),
        ..EmulatorConfig::default()
    })
    .await;
    let admin = util::client(&emu);
    let owner = "alice@kfconform.invalid";
    let profiles = util::profiles(&admin);
    create_dyn(
        &profiles,
        json!({"apiVersion": "kubeflow.org/v1", "kind": "Profile",
               "metadata": {"name": "tenant-a"},
               "spec": {"owner": {"kind": "User", "name": owner}}}),
    )
    .await;
    // The Profile controller binds the owner in the namespace.
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "tenant-a");
    util::wait_for(&bindings, "namespaceAdmin", |_| true).await;
    let as_owner = util::client_impersonating(&emu, owner);

    let catalog = kfconform_suite::catalog::Catalog::embedded().unwrap();
    let profile = catalog.profile("kubeflow-26.03").unwrap();
    let target = Arc::new(kfconform_suite::cluster::discover(&admin).await.unwrap());
    let runs = kfconform_suite::conformance::training::TESTS
        .iter()
        .map(|t| {
            let ctx = Arc::new(TestContext {
                client: admin.clone(),
                namespace: "tenant-a".into(),
                run_id: "tenant".into(),
                profile: profile.clone(),
                catalog,
                target: target.clone(),
                evidence: Evidence::default(),
                probe_image: kfconform_probe::DEFAULT_PROBE_IMAGE.to_string(),
                tenant: Some(Tenant {
                    owner: owner.to_string(),
                    as_owner: as_owner.clone(),
                }),
                deadline: tokio::time::Instant::now() + Duration::from_secs(120),
                timeout_scale: 1.0,
                identities: Default::default(),
                http: kfconform_suite::cluster::http::HttpTransport::new(
                    Default::default(),
                    as_owner.clone(),
                    Default::default(),
                )
                .unwrap(),
            });
            let run = t.run;
            async move {
                (
                    t.id,
                    tokio::time::timeout(Duration::from_secs(120), run(ctx)).await,
                )
            }
        });
    let results = futures::future::join_all(runs).await;
    let bad: Vec<String> = results
        .into_iter()
        .filter(|(_, r)| !matches!(r, Ok(Ok(()))))
        .map(|(id, r)| format!("{id}: {r:?}"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    emu.shutdown().await;
}
