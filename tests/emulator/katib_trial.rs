//! Katib Trials end to end on the emulator, created directly through the API as the
//! Experiment controller would create them: the run object (a batch Job or a PyTorchJob of
//! probe pods running `kfconform probe trial`), the pod webhook's label, the StdOut metrics
//! collected from the primary container into the Trial's observation, the terminal
//! conditions, and the run object's clean-up.
//!
//! Upstream's pod webhook reads the Trial's Experiment and Suggestion for every primary pod it
//! mutates, so in a namespace with metrics-collector injection each test first creates the
//! Experiment (named by the Trial's `katib.kubeflow.org/experiment` label) and waits for the
//! Suggestion its controller makes.

use crate::util;

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kfconform_core::trial::{format_value, summary};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;
const EXPERIMENT: &str = "exp";
/// An image no kubelet pulls, for the Trial the Experiment controller makes on its own: its
/// pod never runs, so only the Trials a test creates produce metrics.
const IDLE_IMAGE: &str = "kfconform.invalid/trial:1";
const INJECTION: &str = "katib.kubeflow.org/metrics-collector-injection";
const JOB_SUCCESS: &str = r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#;
const JOB_FAILURE: &str = r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#;
const PYTORCH_SUCCESS: &str = r#"status.conditions.#(type=="Succeeded")#|#(status=="True")#"#;
const PYTORCH_FAILURE: &str = r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#;

fn katib(kind: &str, plural: &str) -> ApiResource {
    let gvk = kube::api::GroupVersionKind::gvk("kubeflow.org", "v1beta1", kind);
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

fn katib_api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &katib(kind, plural))
}

fn trials(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    katib_api(client, ns, "Trial", "trials")
}

fn pytorchjobs(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "pytorchjobs");
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn start() -> (kfconform_emulator::Emulator, kube::Client) {
    let emu = util::probe_emulator().await;
    let client = util::client(&emu);
    (emu, client)
}

async fn create<K>(api: &Api<K>, obj: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).expect("a well-formed object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("the create succeeds")
}

/// A namespace, with metrics-collector injection when `injected`; with it, the Experiment and
/// Suggestion the webhook looks up.
async fn namespace(client: &kube::Client, name: &str, injected: bool) {
    let labels = if injected {
        json!({INJECTION: "enabled"})
    } else {
        json!({})
    };
    let nss: Api<Namespace> = Api::all(client.clone());
    create(&nss, json!({"metadata": {"name": name, "labels": labels}})).await;
    if !injected {
        return;
    }
    let experiment = json!({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": EXPERIMENT},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss",
                          "additionalMetricNames": ["acc"]},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 1, "maxTrialCount": 1, "maxFailedTrialCount": 1,
            "parameters": [{"name": "lr", "parameterType": "double",
                            "feasibleSpace": {"min": "0.01", "max": "0.5"}}],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "learningRate", "reference": "lr"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "training", "image": IDLE_IMAGE,
                        "command": ["kfconform", "probe", "trial",
                                    "--param", "lr=${trialParameters.learningRate}",
                                    "--metric", "loss", "--metric", "acc"]}]}}}},
            },
        },
    });
    create(
        &Api::<DynamicObject>::namespaced_with(
            client.clone(),
            name,
            &katib("Experiment", "experiments"),
        ),
        experiment,
    )
    .await;
    // The Experiment controller creates the Suggestion; the pod webhook needs it.
    let suggestions = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        name,
        &katib("Suggestion", "suggestions"),
    );
    util::wait_for(&suggestions, EXPERIMENT, |_| true).await;
}

/// The probe's command for `params` printing `metrics`, then exiting `exit`.
fn probe(params: &[(&str, &str)], metrics: &[&str], exit: u8) -> Vec<String> {
    let mut cmd: Vec<String> = ["kfconform", "probe", "trial"].map(String::from).into();
    for (k, v) in params {
        cmd.extend(["--param".into(), format!("{k}={v}")]);
    }
    for m in metrics {
        cmd.extend(["--metric".into(), m.to_string()]);
    }
    cmd.extend(["--exit".into(), exit.to_string()]);
    cmd
}

/// A Trial as the Experiment controller makes one: objective `loss` (minimize) with `acc`,
/// the StdOut collector, `run` as its run object (named after the Trial, in its namespace).
fn trial(name: &str, ns: &str, run: Value, conditions: (&str, &str), extra: Value) -> Value {
    let mut run = run;
    run["metadata"] = json!({"name": name, "namespace": ns});
    let mut spec = json!({
        "objective": {"type": "minimize", "objectiveMetricName": "loss",
                      "additionalMetricNames": ["acc"],
                      "metricStrategies": [{"name": "loss", "value": "min"},
                                           {"name": "acc", "value": "min"}]},
        "parameterAssignments": [{"name": "lr", "value": "0.1"}],
        "primaryContainerName": "training",
        "metricsCollector": {"collector": {"kind": "StdOut"}},
        "successCondition": conditions.0,
        "failureCondition": conditions.1,
        "runSpec": run,
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
        "metadata": {"name": name, "labels": {"katib.kubeflow.org/experiment": EXPERIMENT}},
        "spec": spec,
    })
}

/// A batch Job running `command` in container `training`, no retries.
fn job(command: Vec<String>) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {
        "backoffLimit": 0,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "training", "image": IMAGE, "command": command}]}}}})
}

fn condition<'a>(obj: &'a DynamicObject, ctype: &str) -> Option<&'a Value> {
    obj.data
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == ctype)
}

fn is_true(obj: &DynamicObject, ctype: &str) -> bool {
    condition(obj, ctype).is_some_and(|c| c["status"] == "True")
}

/// Whether the Trial has a terminal condition.
fn completed(t: &DynamicObject) -> bool {
    ["Succeeded", "Failed", "MetricsUnavailable"]
        .iter()
        .any(|c| is_true(t, c))
}

/// The observation's `{min, max, latest}` of `metric`.
fn observed(t: &DynamicObject, metric: &str) -> Option<(String, String, String)> {
    let m = t
        .data
        .pointer("/status/observation/metrics")?
        .as_array()?
        .iter()
        .find(|m| m["name"] == metric)?;
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    Some((s("min"), s("max"), s("latest")))
}

/// What Katib's collector keeps of the probe's lines for `metric`.
fn expected(params: &[(&str, &str)], metric: &str) -> (String, String, String) {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (min, max, latest) = summary(&params, metric);
    (format_value(min), format_value(max), format_value(latest))
}

fn job_complete(j: &Job) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_trial_succeeds_with_the_metrics_its_primary_container_printed() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let params = [("lr", "0.1")];
    let run = job(probe(&params, &["loss", "acc"], 0));
    let t = trial("good", "tune", run, (JOB_SUCCESS, JOB_FAILURE), json!({}));
    let api = trials(&client, "tune");
    create(&api, t).await;
    let done = util::wait_for(&api, "good", completed).await;
    assert!(is_true(&done, "Succeeded"), "{:#}", done.data);
    let succeeded = condition(&done, "Succeeded").cloned().unwrap_or_default();
    assert_eq!(
        succeeded["reason"],
        "TrialSucceeded. Job reason: CompletionsReached"
    );
    assert_eq!(
        succeeded["message"],
        "Trial has succeeded. Job message: Reached expected number of succeeded pods"
    );
    assert_eq!(
        condition(&done, "Running").map(|c| &c["status"]),
        Some(&json!("False"))
    );
    assert!(done.data["status"]["completionTime"].is_string());
    assert!(
        done.metadata
            .finalizers
            .as_deref()
            .unwrap_or_default()
            .contains(&"clean-metrics-in-db".to_string())
    );
    for metric in ["loss", "acc"] {
        assert_eq!(
            observed(&done, metric),
            Some(expected(&params, metric)),
            "{metric}: {:#}",
            done.data["status"]["observation"]
        );
    }
    // Completed without retainRun: the Job goes, with its pods.
    let jobs: Api<Job> = Api::namespaced(client.clone(), "tune");
    util::wait_gone(&jobs, "good").await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_run_keeps_the_job_and_its_labelled_pod() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let run = job(probe(&[("lr", "0.1")], &["loss", "acc"], 0));
    let extra = json!({"retainRun": true});
    let t = trial("kept", "tune", run, (JOB_SUCCESS, JOB_FAILURE), extra);
    let api = trials(&client, "tune");
    create(&api, t).await;
    let done = util::wait_for(&api, "kept", completed).await;
    assert!(is_true(&done, "Succeeded"), "{:#}", done.data);
    // The status write that completed the Trial and a deletion of the Job would be one
    // settle of the controllers; that settle is over once this read is answered.
    let jobs: Api<Job> = Api::namespaced(client.clone(), "tune");
    let kept = jobs.get("kept").await.expect("the Job is retained");
    assert!(kept.metadata.deletion_timestamp.is_none());
    let owner = kept.metadata.owner_references.unwrap_or_default();
    assert!(
        owner
            .iter()
            .any(|o| o.kind == "Trial" && o.name == "kept" && o.controller == Some(true))
    );
    // The pod webhook labelled the pod and gave the primary container the Trial's name.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "tune");
    let pod = pods
        .list(&ListParams::default().labels("katib.kubeflow.org/trial=kept"))
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .expect("the Trial's pod, labelled");
    let labels = pod.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("katib.kubeflow.org/experiment")
            .map(String::as_str),
        Some(EXPERIMENT)
    );
    let spec = pod.spec.unwrap_or_default();
    assert_eq!(spec.containers.len(), 1, "no sidecar in the emulator");
    let env = spec.containers[0].env.clone().unwrap_or_default();
    assert!(env.iter().any(|e| e.name == "KATIB_TRIAL_NAME"), "{env:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_fails_the_trial() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let run = job(probe(&[("lr", "0.1")], &["loss", "acc"], 1));
    let t = trial("bad", "tune", run, (JOB_SUCCESS, JOB_FAILURE), json!({}));
    let api = trials(&client, "tune");
    create(&api, t).await;
    let done = util::wait_for(&api, "bad", completed).await;
    let failed = condition(&done, "Failed").cloned().unwrap_or_default();
    assert_eq!(failed["status"], "True", "{:#}", done.data);
    assert_eq!(
        failed["reason"],
        "TrialFailed. Job reason: BackoffLimitExceeded"
    );
    let msg = failed["message"].as_str().unwrap_or("");
    assert!(msg.starts_with("Trial has failed. Job message: "), "{msg}");
    assert!(
        done.data["status"].get("observation").is_none(),
        "{:#}",
        done.data
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objective_never_printed_makes_metrics_unavailable() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let run = job(probe(&[("lr", "0.1")], &["acc"], 0));
    let t = trial("quiet", "tune", run, (JOB_SUCCESS, JOB_FAILURE), json!({}));
    let api = trials(&client, "tune");
    create(&api, t).await;
    let done = util::wait_for(&api, "quiet", completed).await;
    let unavailable = condition(&done, "MetricsUnavailable")
        .cloned()
        .unwrap_or_default();
    assert_eq!(unavailable["status"], "True", "{:#}", done.data);
    assert_eq!(
        unavailable["reason"],
        "MetricsUnavailable. Job reason: CompletionsReached"
    );
    let none = (
        "unavailable".to_string(),
        "unavailable".to_string(),
        "unavailable".to_string(),
    );
    // The collector reports only the objective as unavailable; acc's logs are dropped.
    assert_eq!(observed(&done, "loss"), Some(none.clone()));
    assert_eq!(observed(&done, "acc"), Some(none));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_injection_nothing_is_collected_and_the_trial_stays_running() {
    let (emu, client) = start().await;
    namespace(&client, "plain", false).await;
    let run = job(probe(&[("lr", "0.1")], &["loss", "acc"], 0));
    let t = trial(
        "uncollected",
        "plain",
        run,
        (JOB_SUCCESS, JOB_FAILURE),
        json!({}),
    );
    let api = trials(&client, "plain");
    create(&api, t).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "plain");
    util::wait_for(&jobs, "uncollected", job_complete).await;
    // The Job's Complete condition is written inside one settle of the controllers, which
    // the Trial controller's reaction is part of; this read waits for that settle to end.
    let t = api.get("uncollected").await.unwrap();
    assert!(is_true(&t, "Running"), "{:#}", t.data);
    assert!(!completed(&t), "{:#}", t.data);
    assert!(
        t.data["status"].get("observation").is_none(),
        "{:#}",
        t.data
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "plain");
    let labelled = pods
        .list(&ListParams::default().labels("katib.kubeflow.org/trial"))
        .await
        .unwrap();
    assert!(
        labelled.items.is_empty(),
        "no webhook outside injection namespaces"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_without_the_primary_container_is_rejected() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let run = job(probe(&[("lr", "0.1")], &["loss"], 0));
    let extra = json!({"primaryContainerName": "missing"});
    let t = trial("orphan", "tune", run, (JOB_SUCCESS, JOB_FAILURE), extra);
    create(&trials(&client, "tune"), t).await;
    // The Job controller's FailedCreate event carries the webhook's refusal.
    let events: Api<Event> = Api::namespaced(client.clone(), "tune");
    let message = util::within("the Job's FailedCreate event", async {
        let mut all = std::pin::pin!(watcher::watcher(events, watcher::Config::default()));
        while let Some(ev) = all.next().await {
            let objs = match ev.expect("the event watch") {
                watcher::Event::Apply(e) | watcher::Event::InitApply(e) => vec![e],
                _ => Vec::new(),
            };
            if let Some(e) = objs
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("FailedCreate"))
            {
                return e.message.unwrap_or_default();
            }
        }
        panic!("the event watch ended");
    })
    .await;
    assert!(
        message.contains(
            "admission webhook \"mutator.pod.katib.kubeflow.org\" denied the request: \
             Unable to find primary container missing"
        ),
        "{message}"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pytorchjob_trial_collects_from_its_master() {
    let (emu, client) = start().await;
    namespace(&client, "tune", true).await;
    let params = [("lr", "0.2")];
    let replica = |command: Vec<String>| {
        json!({"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [{
            "name": "pytorch", "image": IMAGE, "command": command}]}}})
    };
    let run = json!({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {
        "pytorchReplicaSpecs": {"Master": replica(probe(&params, &["loss", "acc"], 0))}}});
    let extra = json!({
        "primaryContainerName": "pytorch",
        "primaryPodLabels": {"training.kubeflow.org/job-role": "master"},
        "parameterAssignments": [{"name": "lr", "value": "0.2"}],
    });
    let t = trial(
        "torch",
        "tune",
        run,
        (PYTORCH_SUCCESS, PYTORCH_FAILURE),
        extra,
    );
    let api = trials(&client, "tune");
    create(&api, t).await;
    let done = util::wait_for(&api, "torch", completed).await;
    assert!(is_true(&done, "Succeeded"), "{:#}", done.data);
    let reason = condition(&done, "Succeeded").map(|c| c["reason"].clone());
    let reason = reason.as_ref().and_then(Value::as_str).unwrap_or("");
    assert!(
        reason.starts_with("TrialSucceeded. Job reason: "),
        "{reason}"
    );
    for metric in ["loss", "acc"] {
        assert_eq!(
            observed(&done, metric),
            Some(expected(&params, metric)),
            "{metric}"
        );
    }
    util::wait_gone(&pytorchjobs(&client, "tune"), "torch").await;
    emu.shutdown().await;
}
