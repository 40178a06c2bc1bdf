//! Training: PyTorchJob (kubeflow.org/v1, Training Operator v1.9) and TrainJob
//! (trainer.kubeflow.org/v1alpha1, Trainer v2.2). Every job runs the probe image's
//! `kfconform probe train`, which checks the injected environment and rendezvouses with the
//! other replicas over TCP, then prints one JSON verdict line; the tests read those lines back
//! from the pod logs. Contracts and citations: docs/contracts/training.md.
//!
//! Each test creates only namespaced objects with the workload client (it may run as a
//! Profile's owner) and waits with one watch on the job ([`wait_for`]); it never polls. A job
//! gets until the test's deadline, less a margin for reading what its pods reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use super::compare::differences;
use super::objects::{
    api_failure, condition, conditions_summary, container_security, create, describe_condition,
    is_true, json_of, on_json, pod_log, pod_security, probe_args,
};
use super::wait::{Step, wait_for};
use super::words::{list, or_unset, pairs, quoted};
use super::{ConformanceTest, Failure, TestContext, TestFuture, Violations, secs};
use kfconform_core::verdict::TrainVerdict;

/// The training tests, by catalog id.
pub const TESTS: &[ConformanceTest] = &[
    ConformanceTest {
        id: "training/pytorchjob-succeeds",
        run: pytorchjob_succeeds,
    },
    ConformanceTest {
        id: "training/pytorchjob-env-contract",
        run: pytorchjob_env_contract,
    },
    ConformanceTest {
        id: "training/pytorchjob-failure",
        run: pytorchjob_failure,
    },
    ConformanceTest {
        id: "training/pytorchjob-pod-labels",
        run: pytorchjob_pod_labels,
    },
    ConformanceTest {
        id: "training/torch-distributed-runtime",
        run: torch_distributed_runtime,
    },
    ConformanceTest {
        id: "training/trainjob-torch-contract",
        run: trainjob_torch_contract,
    },
    ConformanceTest {
        id: "training/trainjob-failure",
        run: trainjob_failure,
    },
];

/// What a job's wait leaves of the test's time (scaled), to read the pods' logs and keep
/// evidence when the job did not end as it should: a job gets the rest.
const EVIDENCE_MARGIN: Duration = Duration::from_secs(30);
/// Once a replica is reported failed, how long the terminal condition may lag behind (scaled).
const FAILURE_GRACE: Duration = Duration::from_secs(60);
/// After a job's terminal condition, how long it is watched for the opposite one (scaled): a
/// job that is Succeeded must not turn Failed, nor a Failed one Succeeded, and stopping at the
/// first terminal condition would not see it.
const AFTER_END: Duration = Duration::from_secs(5);
/// Rendezvous deadline of the replicas that should succeed (scaled: replicas of a slow
/// cluster start further apart).
const RENDEZVOUS: Duration = Duration::from_secs(120);
/// Rendezvous deadline of a master whose worker is meant to fail (scaled).
const SHORT_RENDEZVOUS: Duration = Duration::from_secs(30);
const RUNTIME: &str = "torch-distributed";
const PYTORCH_PORT: &str = "23456";
const TRAINER_PORT: &str = "29500";

fn pytorchjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"),
        "pytorchjobs",
    )
}

/// PyTorchJobs in the test's namespace, as the workload user sees them.
fn pytorchjobs(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.workload_client().clone(),
        &ctx.namespace,
        &pytorchjob_resource(),
    )
}

fn trainjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"),
        "trainjobs",
    )
}

fn runtime_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "ClusterTrainingRuntime"),
        "clustertrainingruntimes",
    )
}

// ---------------------------------------------------------------------------------------------
// Objects.

/// A PyTorchJob replica spec running `kfconform probe <args>` in container `pytorch`.
fn replica(ctx: &TestContext, replicas: u32, args: &[impl AsRef<str>]) -> Value {
    json!({
        "replicas": replicas,
        "restartPolicy": "Never",
        "template": {
            "metadata": {"labels": ctx.labels()},
            "spec": {
                "securityContext": pod_security(),
                "containers": [{
                    "name": "pytorch",
                    "image": ctx.probe_image,
                    "command": ["kfconform"],
                    "args": probe_args(args),
                    "securityContext": container_security(),
                }],
            },
        },
    })
}

fn pytorchjob(ctx: &TestContext, name: &str, master: Value, worker: Value) -> Value {
    json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": ctx.namespace, "labels": ctx.labels()},
        "spec": {"pytorchReplicaSpecs": {"Master": master, "Worker": worker}},
    })
}

/// `train` arguments; the rendezvous deadline is scaled like the test's waits.
fn train_args(ctx: &TestContext, framework: &str, rendezvous: Duration) -> Vec<String> {
    let framework = if framework == "torchrun" {
        "torchrun"
    } else {
        "pytorch"
    };
    let rendezvous = format!("{}ms", ctx.scaled(rendezvous).as_millis());
    ["train", "--framework", framework, "--rendezvous-timeout"]
        .into_iter()
        .map(str::to_string)
        .chain([rendezvous])
        .collect()
}

/// A TrainJob on torch-distributed running `kfconform probe <args>` on `nodes` nodes, made
/// restricted-compliant through runtimePatches (the runtime itself sets no securityContext).
fn trainjob(ctx: &TestContext, name: &str, nodes: u32, args: &[impl AsRef<str>]) -> Value {
    json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": ctx.namespace, "labels": ctx.labels()},
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": RUNTIME,
            },
            "trainer": {
                "image": ctx.probe_image,
                "command": ["kfconform"],
                "args": probe_args(args),
                "numNodes": nodes,
            },
            "runtimePatches": [{
                "manager": "kfconform.io/conformance",
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{
                    "name": "node",
                    "template": {"spec": {"template": {
                        "metadata": {"labels": ctx.labels()},
                        "spec": {
                            "securityContext": pod_security(),
                            "containers": [{
                                "name": "node",
                                "securityContext": container_security(),
                            }],
                        },
                    }}},
                }]}}},
            }],
        },
    })
}

// ---------------------------------------------------------------------------------------------
// API helpers.

/// Watches a finished job for [`AFTER_END`] (scaled); the job as seen when `opposite` was
/// True (already, or turning so meanwhile), else `None`.
async fn opposite_appears(
    ctx: &TestContext,
    api: &Api<DynamicObject>,
    name: &str,
    opposite: &str,
) -> Result<Option<Value>, Failure> {
    let decide = on_json(|v| {
        if is_true(v, opposite) {
            Step::Done(())
        } else {
            Step::Wait
        }
    });
    let waited = wait_for(api, name, ctx.window(AFTER_END), decide).await?;
    Ok(waited.done.map(|()| json_of(waited.last)))
}

/// The violation a finished job shows when `opposite` followed its terminal condition `end`.
async fn check_opposite(
    ctx: &TestContext,
    api: &Api<DynamicObject>,
    (kind, name): (&str, &str),
    (end, opposite): (&str, &str),
) -> Result<Option<String>, Failure> {
    Ok(opposite_appears(ctx, api, name, opposite)
        .await?
        .map(|job| opposite_message((kind, name), (end, opposite), &job)))
}

/// A job that carries `opposite` beside its terminal condition `end`. Said the same whether
/// the watch saw `end` alone first or both at once, which is a race.
fn opposite_message(
    (kind, name): (&str, &str),
    (end, opposite): (&str, &str),
    job: &Value,
) -> String {
    format!(
        "{kind} {name} reached {end}=True and then also {}, which it must never carry with {end}=True",
        describe_condition(job, opposite)
    )
}

/// A replica's verdict: the schema `kfconform probe train` prints.
type Verdict = TrainVerdict;

fn env_of<'a>(v: &'a Verdict, key: &str) -> Option<&'a str> {
    v.env.get(key).map(String::as_str)
}

/// Pods of the test's namespace.
async fn list_pods(ctx: &TestContext) -> Result<Vec<Pod>, Failure> {
    let pods: Api<Pod> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
    pods.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| api_failure("listing pods", e))
}

fn pod_name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or("")
}

/// Reads the verdicts of `names` (container `container`), recording the logs as evidence.
async fn verdicts(
    ctx: &TestContext,
    names: &[String],
    container: &str,
) -> BTreeMap<String, Result<Verdict, String>> {
    let mut out = BTreeMap::new();
    for name in names {
        let v = match pod_log(ctx, name, container).await {
            Ok(log) => {
                ctx.evidence.record(
                    format!("log-{name}"),
                    json!({"pod": name, "container": container,
                           "lines": log.lines().collect::<Vec<_>>()}),
                );
                Verdict::from_log(&log).ok_or_else(|| {
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    format!(
                        "pod {name} printed no train verdict (last lines: {})",
                        list(tail.into_iter().rev().map(quoted))
                    )
                })
            }
            Err(e) => Err(format!("the log of pod {name} is not readable: {e}")),
        };
        out.insert(name.clone(), v);
    }
    out
}

/// Records the job and the pods' statuses as evidence.
fn record(ctx: &TestContext, kind: &str, job: &Value, pods: &[Pod]) {
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("job");
    ctx.evidence.record(format!("{kind}-{name}"), job.clone());
    let summary: Vec<Value> = pods
        .iter()
        .map(|p| json!({"metadata": p.metadata, "spec": p.spec, "status": p.status}))
        .collect();
    ctx.evidence.record("pods", Value::Array(summary));
}

/// For a failure message: what each replica's probe reported.
fn verdict_notes(verdicts: &BTreeMap<String, Result<Verdict, String>>) -> String {
    let notes: Vec<String> = verdicts
        .iter()
        .filter_map(|(pod, v)| match v {
            Ok(v) if v.ok => None,
            Ok(v) => Some(format!("{pod}: {}", v.violations.join("; "))),
            Err(e) => Some(e.clone()),
        })
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!("; the replicas reported: {}", notes.join(" | "))
    }
}

/// After a job ended badly: records the job, its pods and their logs as evidence, and returns
/// what the replicas reported, for the message.
async fn explain(
    ctx: &TestContext,
    kind: &str,
    job: &Value,
    prefix: &str,
    container: &str,
) -> String {
    let pods = list_pods(ctx).await.unwrap_or_default();
    record(ctx, kind, job, &pods);
    let names: Vec<String> = pods
        .iter()
        .map(|p| pod_name(p).to_string())
        .filter(|n| n.starts_with(prefix))
        .take(4)
        .collect();
    verdict_notes(&verdicts(ctx, &names, container).await)
}

/// Verdicts of replicas that crashed while their job ran, read before the operator deletes
/// their pods (a failed Job's active pods go away, logs included).
#[derive(Debug, Default)]
struct Crashes(std::sync::Mutex<BTreeMap<String, Result<Verdict, String>>>);

impl Crashes {
    fn notes(&self) -> String {
        self.0.lock().map(|m| verdict_notes(&m)).unwrap_or_default()
    }
}

/// Whether a container exited non-zero: `Some(true)` when that run is the previous one.
fn crashed(pod: &Pod, container: &str) -> Option<bool> {
    let st = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)?;
    let failed = |t: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>| {
        t.is_some_and(|t| t.exit_code != 0)
    };
    if st.restart_count == 0 && failed(st.state.as_ref().and_then(|s| s.terminated.as_ref())) {
        return Some(false);
    }
    if failed(st.last_state.as_ref().and_then(|s| s.terminated.as_ref())) {
        return Some(true);
    }
    None
}

/// Watches the pods named `prefix*` and keeps the verdict of the first crash of each (at most
/// two pods, one log request each). Never returns: run it beside the job's watch.
async fn watch_crashes(ctx: &TestContext, prefix: &str, container: &str, crashes: &Crashes) {
    let pods: Api<Pod> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
    let stream = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        let Ok(pod) = ev else { continue };
        let name = pod_name(&pod).to_string();
        let (seen, full) = crashes
            .0
            .lock()
            .map(|m| (m.contains_key(&name), m.len() >= 2))
            .unwrap_or((true, true));
        if !name.starts_with(prefix) || seen || full {
            continue;
        }
        let Some(previous) = crashed(&pod, container) else {
            continue;
        };
        let params = LogParams {
            container: Some(container.to_string()),
            previous,
            ..LogParams::default()
        };
        let verdict = match pods.logs(&name, &params).await {
            Ok(log) => {
                ctx.evidence.record(
                    format!("log-{name}-crashed"),
                    json!({"pod": name, "container": container, "previous": previous,
                           "lines": log.lines().collect::<Vec<_>>()}),
                );
                Verdict::from_log(&log)
                    .ok_or_else(|| format!("pod {name} crashed without a train verdict"))
            }
            // Gone before its log could be read (its Job replaced or removed it, or the kubelet
            // restarted the container again and no longer has the previous one): nothing to
            // report, and whether that happens first is a race a message must not depend on.
            Err(kube::Error::Api(s)) if s.code == 404 || (previous && s.code == 400) => continue,
            Err(e) => Err(format!(
                "pod {name} crashed; its log is not readable: {}",
                crate::cluster::describe_kube_error(&e)
            )),
        };
        if let Ok(mut m) = crashes.0.lock() {
            m.insert(name, verdict);
        }
    }
    futures::future::pending::<()>().await;
}

// ---------------------------------------------------------------------------------------------
// PyTorchJob.

enum JobEnd {
    Succeeded,
    Failed,
}

fn pytorchjob_end(v: &Value) -> Step<JobEnd> {
    if is_true(v, "Failed") {
        Step::Done(JobEnd::Failed)
    } else if is_true(v, "Succeeded") {
        Step::Done(JobEnd::Succeeded)
    } else {
        Step::Wait
    }
}

fn pytorchjob_succeeds(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let name = "kfc-pj-succeeds";
        let api = pytorchjobs(&ctx);
        let args = train_args(&ctx, "pytorch", RENDEZVOUS);
        let job = pytorchjob(&ctx, name, replica(&ctx, 1, &args), replica(&ctx, 1, &args));
        create(&api, &format!("PyTorchJob {name}"), job).await?;
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let waited = wait_for(&api, name, budget, on_json(pytorchjob_end)).await?;
        let last = json_of(waited.last);
        match waited.done {
            Some(JobEnd::Succeeded) => succeeded_job_did_the_work(&ctx, &api, name, &last).await,
            Some(JobEnd::Failed) if is_true(&last, "Succeeded") => Err(Failure::Failed(
                opposite_message(("PyTorchJob", name), ("Succeeded", "Failed"), &last),
            )),
            Some(JobEnd::Failed) => {
                let notes =
                    explain(&ctx, "pytorchjob", &last, &format!("{name}-"), "pytorch").await;
                Err(Failure::Failed(format!(
                    "PyTorchJob {name} (1 Master, 1 Worker) ended with {} instead of Succeeded=True{notes}",
                    describe_condition(&last, "Failed")
                )))
            }
            None => {
                let notes =
                    explain(&ctx, "pytorchjob", &last, &format!("{name}-"), "pytorch").await;
                Err(Failure::Failed(format!(
                    "PyTorchJob {name} (1 Master, 1 Worker) did not reach Succeeded=True within {}; it has {}{notes}",
                    secs(budget),
                    conditions_summary(&last)
                )))
            }
        }
    })
}

/// A PyTorchJob that reached Succeeded=True: it never turns Failed, and the work was done:
/// both replicas' probes report a clean environment and a complete rendezvous (the Master saw
/// ranks 0 and 1).
async fn succeeded_job_did_the_work(
    ctx: &TestContext,
    api: &Api<DynamicObject>,
    name: &str,
    last: &Value,
) -> Result<(), Failure> {
    let mut v = Violations::default();
    if let Some(problem) =
        check_opposite(ctx, api, ("PyTorchJob", name), ("Succeeded", "Failed")).await?
    {
        v.push(problem);
    }
    let master = format!("{name}-master-0");
    let names = [master.clone(), format!("{name}-worker-0")];
    for (pod, verdict) in verdicts(ctx, &names, "pytorch").await {
        match verdict {
            Err(e) => v.push(format!("PyTorchJob {name} is Succeeded, but {e}")),
            Ok(verdict) if !verdict.ok => v.push(format!(
                "PyTorchJob {name} is Succeeded, but pod {pod}'s probe reported {}",
                verdict.violations.join("; ")
            )),
            Ok(verdict) if pod == master && sorted(&verdict.peers) != [0, 1] => v.push(format!(
                "PyTorchJob {name} is Succeeded, but the master saw ranks {} in the rendezvous, expected 0 and 1",
                list(&verdict.peers)
            )),
            Ok(_) => {}
        }
    }
    let outcome = v.into_outcome();
    if outcome.is_err() {
        let pods = list_pods(ctx).await.unwrap_or_default();
        record(ctx, "pytorchjob", last, &pods);
    }
    outcome
}

fn sorted(ranks: &[u32]) -> Vec<u32> {
    let mut r = ranks.to_vec();
    r.sort_unstable();
    r
}

fn pytorchjob_env_contract(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let name = "kfc-pj-env";
        let api = pytorchjobs(&ctx);
        let args = train_args(&ctx, "pytorch", RENDEZVOUS);
        let job = pytorchjob(&ctx, name, replica(&ctx, 1, &args), replica(&ctx, 2, &args));
        create(&api, &format!("PyTorchJob {name}"), job).await?;
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let waited = wait_for(&api, name, budget, on_json(pytorchjob_end)).await?;
        let (end, last) = (waited.done, json_of(waited.last));
        let pods = list_pods(&ctx).await?;
        let expected = [
            (format!("{name}-master-0"), 0u32),
            (format!("{name}-worker-0"), 1),
            (format!("{name}-worker-1"), 2),
        ];
        let mut v = Violations::default();
        if end.is_none() {
            v.push(format!(
                "PyTorchJob {name} did not finish within {} ({})",
                secs(budget),
                conditions_summary(&last)
            ));
        }
        let present: Vec<String> = expected
            .iter()
            .filter(|(n, _)| pods.iter().any(|p| pod_name(p) == n))
            .map(|(n, _)| n.clone())
            .collect();
        let found = verdicts(&ctx, &present, "pytorch").await;
        let master = format!("{name}-master-0");
        for (pod, rank) in &expected {
            let Some(result) = found.get(pod) else {
                v.push(format!("pod {pod} was not created"));
                continue;
            };
            let verdict = match result {
                Ok(verdict) => verdict,
                Err(e) => {
                    v.push(e.clone());
                    continue;
                }
            };
            let rank_s = rank.to_string();
            let want: [(&str, &str); 8] = [
                ("MASTER_ADDR", &master),
                ("PET_MASTER_ADDR", &master),
                ("MASTER_PORT", PYTORCH_PORT),
                ("PET_MASTER_PORT", PYTORCH_PORT),
                ("WORLD_SIZE", "3"),
                ("PET_NNODES", "3"),
                ("RANK", &rank_s),
                ("PET_NODE_RANK", &rank_s),
            ];
            for (key, value) in want {
                match env_of(verdict, key) {
                    Some(got) if got == value => {}
                    Some(got) => v.push(format!("pod {pod}: {key}={got}, expected {key}={value}")),
                    None => v.push(format!(
                        "pod {pod}: {key} is not set (expected {key}={value})"
                    )),
                }
            }
            if !verdict.ok {
                v.push(format!(
                    "pod {pod}: the probe reported {}",
                    verdict.violations.join("; ")
                ));
            }
            if *rank == 0 {
                let seen: BTreeSet<u32> = verdict.peers.iter().copied().collect();
                if seen != BTreeSet::from([0, 1, 2]) || verdict.peers.len() != 3 {
                    v.push(format!(
                        "pod {pod}: the master saw ranks {} in the rendezvous, expected 0, 1 and 2 once each",
                        list(&verdict.peers)
                    ));
                }
            }
        }
        let outcome = v.into_outcome();
        if outcome.is_err() {
            record(&ctx, "pytorchjob", &last, &pods);
        }
        outcome
    })
}

fn pytorchjob_failure(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let name = "kfc-pj-failure";
        let api = pytorchjobs(&ctx);
        let job = pytorchjob(
            &ctx,
            name,
            replica(&ctx, 1, &train_args(&ctx, "pytorch", SHORT_RENDEZVOUS)),
            replica(&ctx, 1, &["fail", "--code", "3"]),
        );
        create(&api, &format!("PyTorchJob {name}"), job).await?;
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let grace = ctx.scaled(FAILURE_GRACE);
        let decide = on_json(|v| match pytorchjob_end(v) {
            Step::Wait if failed_replicas(v) > 0 => Step::WaitAtMost(grace),
            other => other,
        });
        let waited = wait_for(&api, name, budget, decide).await?;
        let last = json_of(waited.last);
        let result = match waited.done {
            Some(JobEnd::Failed) => {
                let reason = condition(&last, "Failed")
                    .and_then(|c| c.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if reason == "PyTorchJobFailed" {
                    match check_opposite(&ctx, &api, ("PyTorchJob", name), ("Failed", "Succeeded"))
                        .await?
                    {
                        None => return Ok(()),
                        Some(problem) => problem,
                    }
                } else {
                    format!(
                        "PyTorchJob {name} is Failed but with reason {}, expected \"PyTorchJobFailed\"",
                        quoted(reason)
                    )
                }
            }
            Some(JobEnd::Succeeded) => format!(
                "PyTorchJob {name} reached {} although its Worker (restartPolicy Never) exited with code 3",
                describe_condition(&last, "Succeeded")
            ),
            None if failed_replicas(&last) > 0 => format!(
                "PyTorchJob {name} reports {} failed replica(s) in status.replicaStatuses but no Failed=True condition {} later ({})",
                failed_replicas(&last),
                secs(grace),
                conditions_summary(&last)
            ),
            None => format!(
                "PyTorchJob {name}, whose Worker exits with code 3, did not reach Failed=True within {} ({})",
                secs(budget),
                conditions_summary(&last)
            ),
        };
        // The job, its pods and their logs, for the vendor.
        explain(&ctx, "pytorchjob", &last, &format!("{name}-"), "pytorch").await;
        Err(Failure::Failed(result))
    })
}

fn failed_replicas(job: &Value) -> i64 {
    job.pointer("/status/replicaStatuses")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|s| s.get("failed").and_then(Value::as_i64))
        .sum()
}

fn labels_of(p: &Pod) -> BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Running or finished: the operator has created the pods and Services by then.
fn pytorchjob_started(v: &Value) -> Step<()> {
    if ["Running", "Succeeded", "Failed"]
        .iter()
        .any(|c| is_true(v, c))
    {
        Step::Done(())
    } else {
        Step::Wait
    }
}

fn pytorchjob_pod_labels(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let name = "kfc-pj-labels";
        let api = pytorchjobs(&ctx);
        let args = train_args(&ctx, "pytorch", RENDEZVOUS);
        let job = pytorchjob(&ctx, name, replica(&ctx, 1, &args), replica(&ctx, 1, &args));
        let created = create(&api, &format!("PyTorchJob {name}"), job).await?;
        let uid = created
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // The operator creates pods and Services before it reports Running.
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let waited = wait_for(&api, name, budget, on_json(pytorchjob_started)).await?;
        let (started, last) = (waited.done, json_of(waited.last));
        let pods = list_pods(&ctx).await?;
        let services: Api<Service> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
        let services = services
            .list(&ListParams::default())
            .await
            .map_err(|e| api_failure("listing services", e))?
            .items;
        let mut v = Violations::default();
        if started.is_none() {
            v.push(format!(
                "PyTorchJob {name} was neither Running nor finished within {} ({})",
                secs(budget),
                conditions_summary(&last)
            ));
        }
        let owned: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid && r.controller == Some(true))
            })
            .collect();
        let expected = [
            (format!("{name}-master-0"), "master"),
            (format!("{name}-worker-0"), "worker"),
        ];
        for (pod_name_want, rtype) in &expected {
            let Some(pod) = owned.iter().find(|p| pod_name(p) == pod_name_want) else {
                v.push(format!(
                    "no pod {pod_name_want} controlled by PyTorchJob {name} (its pods: {})",
                    list(owned.iter().map(|p| pod_name(p)))
                ));
                continue;
            };
            let labels = labels_of(pod);
            let want = [
                ("training.kubeflow.org/job-name", name.to_string()),
                ("training.kubeflow.org/replica-type", rtype.to_string()),
                ("training.kubeflow.org/replica-index", "0".to_string()),
            ];
            for (k, val) in &want {
                match labels.get(*k) {
                    Some(got) if got == val => {}
                    Some(got) => v.push(format!(
                        "pod {pod_name_want}: label {k}={got}, expected {k}={val}"
                    )),
                    None => v.push(format!(
                        "pod {pod_name_want}: label {k} is missing (expected {k}={val})"
                    )),
                }
            }
            let role = labels.get("training.kubeflow.org/job-role");
            match (*rtype == "master", role.map(String::as_str)) {
                (true, Some("master")) | (false, None) => {}
                (true, other) => v.push(format!(
                    "pod {pod_name_want}: label training.kubeflow.org/job-role is {}, expected \"master\"",
                    or_unset(other)
                )),
                (false, Some(other)) => v.push(format!(
                    "pod {pod_name_want}: a Worker carries training.kubeflow.org/job-role={other}"
                )),
            }
            let Some(svc) = services
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(pod_name_want.as_str()))
            else {
                v.push(format!(
                    "no Service {pod_name_want} for pod {pod_name_want}"
                ));
                continue;
            };
            let spec = svc.spec.clone().unwrap_or_default();
            if spec.cluster_ip.as_deref() != Some("None") {
                v.push(format!(
                    "Service {pod_name_want} has clusterIP {}, expected \"None\" (headless)",
                    or_unset(spec.cluster_ip.as_deref())
                ));
            }
            let selector = spec.selector.clone().unwrap_or_default();
            if !selects(&selector, &labels) {
                v.push(format!(
                    "Service {pod_name_want} selector {} does not select pod {pod_name_want} (labels {})",
                    pairs(&selector),
                    pairs(&labels)
                ));
            }
            for other in owned.iter().filter(|p| pod_name(p) != pod_name_want) {
                if selects(&selector, &labels_of(other)) {
                    v.push(format!(
                        "Service {pod_name_want} selector {} also selects pod {}",
                        pairs(&selector),
                        pod_name(other)
                    ));
                }
            }
            let has_port = spec.ports.iter().flatten().any(|p| {
                p.port.to_string() == PYTORCH_PORT && p.name.as_deref() == Some("pytorchjob-port")
            });
            if !has_port {
                v.push(format!(
                    "Service {pod_name_want} does not expose port {PYTORCH_PORT} named pytorchjob-port (ports: {})",
                    list(spec.ports.iter().flatten().map(|p| format!(
                        "{} {}",
                        p.name.as_deref().unwrap_or("(unnamed)"),
                        p.port
                    )))
                ));
            }
        }
        let outcome = v.into_outcome();
        if outcome.is_err() {
            record(&ctx, "pytorchjob", &last, &pods);
            ctx.evidence.record(
                "services",
                serde_json::to_value(&services).unwrap_or(Value::Null),
            );
        }
        outcome
    })
}

// ---------------------------------------------------------------------------------------------
// TrainJob.

/// The torch-distributed runtime, or the failure its absence is.
async fn torch_runtime(ctx: &TestContext) -> Result<Value, Failure> {
    let api: Api<DynamicObject> = Api::all_with(ctx.workload_client().clone(), &runtime_resource());
    match api.get(RUNTIME).await {
        Ok(o) => Ok(serde_json::to_value(&o).unwrap_or(Value::Null)),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Failure::Failed(format!(
            "the ClusterTrainingRuntime {RUNTIME} is not installed (404), so TrainJobs referencing it cannot run"
        ))),
        Err(e) => Err(api_failure(
            &format!("reading the ClusterTrainingRuntime {RUNTIME}"),
            e,
        )),
    }
}

/// Where kfconform carries upstream's torch-distributed manifest (kubeflow/manifests).
const UPSTREAM_RUNTIME: &str = "examples/trainer.torch_distributed.yaml";

/// Upstream's torch-distributed ClusterTrainingRuntime, as kubeflow/manifests ships it.
fn upstream_runtime() -> Result<Value, Failure> {
    let missing = || Failure::Error(format!("fixture {UPSTREAM_RUNTIME}: no {RUNTIME} in it"));
    let f = crate::fixtures::file(UPSTREAM_RUNTIME).ok_or_else(missing)?;
    crate::fixtures::yaml_documents(f.text)
        .map_err(|e| Failure::Error(format!("fixture {UPSTREAM_RUNTIME}: {e}")))?
        .into_iter()
        .find(|d| d.pointer("/metadata/name").and_then(Value::as_str) == Some(RUNTIME))
        .ok_or_else(missing)
}

fn torch_distributed_runtime(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let rt = torch_runtime(&ctx).await?;
        let mut v = Violations::default();
        let framework = rt
            .pointer("/metadata/labels/trainer.kubeflow.org~1framework")
            .and_then(Value::as_str);
        if framework != Some("torch") {
            v.push(format!(
                "ClusterTrainingRuntime {RUNTIME}: label trainer.kubeflow.org/framework is {}, expected \"torch\"",
                or_unset(framework)
            ));
        }
        if !rt
            .pointer("/spec/mlPolicy/torch")
            .is_some_and(Value::is_object)
        {
            v.push(format!(
                "ClusterTrainingRuntime {RUNTIME} has no spec.mlPolicy.torch policy"
            ));
        }
        let node = rt
            .pointer("/spec/template/spec/replicatedJobs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("name").and_then(Value::as_str) == Some("node"));
        match node {
            None => v.push(format!(
                "ClusterTrainingRuntime {RUNTIME} has no replicated job named node"
            )),
            Some(r) => {
                let step = r
                    .pointer(
                        "/template/metadata/labels/trainer.kubeflow.org~1trainjob-ancestor-step",
                    )
                    .and_then(Value::as_str);
                if step != Some("trainer") {
                    v.push(format!(
                        "ClusterTrainingRuntime {RUNTIME}: replicated job node has label trainer.kubeflow.org/trainjob-ancestor-step {}, expected \"trainer\"",
                        or_unset(step)
                    ));
                }
                let has_node = r
                    .pointer("/template/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some("node"));
                if !has_node {
                    v.push(format!(
                        "ClusterTrainingRuntime {RUNTIME}: replicated job node has no container named node"
                    ));
                }
            }
        }
        // As upstream ships it: every field of upstream's manifest, with upstream's value (a
        // distribution may add fields, and mirror images to its own registry).
        for d in differences(&upstream_runtime()?, &rt, true, &["image"]) {
            v.push(format!(
                "ClusterTrainingRuntime {RUNTIME} differs from upstream's manifest ({UPSTREAM_RUNTIME}): {d}"
            ));
        }
        let outcome = v.into_outcome();
        if outcome.is_err() {
            ctx.evidence
                .record(format!("clustertrainingruntime-{RUNTIME}"), rt);
        }
        outcome
    })
}

fn trainjob_end(v: &Value) -> Step<JobEnd> {
    if is_true(v, "Failed") {
        Step::Done(JobEnd::Failed)
    } else if is_true(v, "Complete") {
        Step::Done(JobEnd::Succeeded)
    } else {
        Step::Wait
    }
}

fn failed_jobs(tj: &Value) -> i64 {
    tj.pointer("/status/jobsStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("failed").and_then(Value::as_i64))
        .sum()
}

fn trainjob_torch_contract(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        torch_runtime(&ctx).await?;
        let name = "kfc-tj-torch";
        let api = Api::namespaced_with(
            ctx.workload_client().clone(),
            &ctx.namespace,
            &trainjob_resource(),
        );
        let tj = trainjob(&ctx, name, 2, &train_args(&ctx, "torchrun", RENDEZVOUS));
        create(&api, &format!("TrainJob {name}"), tj).await?;
        let prefix = format!("{name}-node-0-");
        let crashes = Crashes::default();
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let waited = tokio::select! {
            r = wait_for(&api, name, budget, on_json(trainjob_end)) => r?,
            _ = watch_crashes(&ctx, &prefix, "node", &crashes) => {
                return Err(Failure::Error("the pod watch ended".into()));
            }
        };
        let last = json_of(waited.last);
        match waited.done {
            Some(JobEnd::Succeeded) => {}
            Some(JobEnd::Failed) if is_true(&last, "Complete") => {
                return Err(Failure::Failed(opposite_message(
                    ("TrainJob", name),
                    ("Complete", "Failed"),
                    &last,
                )));
            }
            Some(JobEnd::Failed) => {
                let mut notes = explain(&ctx, "trainjob", &last, &prefix, "node").await;
                if notes.is_empty() {
                    notes = crashes.notes();
                }
                return Err(Failure::Failed(format!(
                    "TrainJob {name} (numNodes 2 on {RUNTIME}) ended with {} instead of Complete=True{notes}",
                    describe_condition(&last, "Failed")
                )));
            }
            None => {
                let mut notes = explain(&ctx, "trainjob", &last, &prefix, "node").await;
                if notes.is_empty() {
                    notes = crashes.notes();
                }
                return Err(Failure::Failed(format!(
                    "TrainJob {name} (numNodes 2 on {RUNTIME}) did not reach Complete=True within {}; it has {}{notes}",
                    secs(budget),
                    conditions_summary(&last)
                )));
            }
        }
        let mut v = Violations::default();
        if let Some(problem) =
            check_opposite(&ctx, &api, ("TrainJob", name), ("Complete", "Failed")).await?
        {
            v.push(problem);
        }
        let pods = list_pods(&ctx).await?;
        let nodes: Vec<&Pod> = pods
            .iter()
            .filter(|p| pod_name(p).starts_with(&prefix))
            .collect();
        let names: Vec<String> = nodes.iter().map(|p| pod_name(p).to_string()).collect();
        let found = verdicts(&ctx, &names, "node").await;
        let master = format!("{name}-node-0-0.{name}");
        let mut ranks = BTreeSet::new();
        for pod in &nodes {
            let pname = pod_name(pod);
            check_node_labels(pod, name, &mut v);
            let index = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .cloned();
            let Some(Ok(verdict)) = found.get(pname) else {
                if let Some(Err(e)) = found.get(pname) {
                    v.push(e.clone());
                }
                continue;
            };
            let checks: [(&str, Option<&str>); 4] = [
                ("PET_NNODES", Some("2")),
                ("PET_NODE_RANK", index.as_deref()),
                ("PET_MASTER_ADDR", Some(&master)),
                ("PET_MASTER_PORT", Some(TRAINER_PORT)),
            ];
            for (key, want) in checks {
                match (env_of(verdict, key), want) {
                    (Some(got), Some(w)) if got == w => {}
                    (Some(got), Some(w)) => {
                        v.push(format!("pod {pname}: {key}={got}, expected {key}={w}"))
                    }
                    (None, Some(w)) => {
                        v.push(format!("pod {pname}: {key} is not set (expected {key}={w})"))
                    }
                    (_, None) => v.push(format!(
                        "pod {pname} has no batch.kubernetes.io/job-completion-index annotation to compare {key} with"
                    )),
                }
            }
            let nproc = env_of(verdict, "PET_NPROC_PER_NODE");
            if nproc
                .and_then(|n| n.parse::<u32>().ok())
                .is_none_or(|n| n == 0)
            {
                v.push(format!(
                    "pod {pname}: PET_NPROC_PER_NODE is {}, expected a positive integer (the nodes have no GPUs)",
                    or_unset(nproc)
                ));
            }
            if let Some(r) = env_of(verdict, "PET_NODE_RANK") {
                ranks.insert(r.to_string());
            }
            if !verdict.ok {
                v.push(format!(
                    "pod {pname}: the probe reported {}",
                    verdict.violations.join("; ")
                ));
            }
        }
        let want_ranks: BTreeSet<String> = ["0".to_string(), "1".to_string()].into();
        if ranks != want_ranks {
            v.push(format!(
                "the TrainJob's pods ({}) had node ranks {}, expected 0 and 1",
                list(&names),
                list(&ranks)
            ));
        }
        check_jobs_status(name, &last, &mut v);
        let outcome = v.into_outcome();
        if outcome.is_err() {
            record(&ctx, "trainjob", &last, &pods);
        }
        outcome
    })
}

/// A TrainJob node's pod carries the JobSet labels of TrainJob `name`'s replicated job node.
fn check_node_labels(pod: &Pod, name: &str, v: &mut Violations) {
    let (pname, labels) = (pod_name(pod), labels_of(pod));
    for (k, want) in [
        ("jobset.sigs.k8s.io/jobset-name", name),
        ("jobset.sigs.k8s.io/replicatedjob-name", "node"),
    ] {
        match labels.get(k) {
            Some(got) if got == want => {}
            other => v.push(format!(
                "pod {pname}: label {k} is {}, expected {}",
                or_unset(other.map(String::as_str)),
                quoted(want)
            )),
        }
    }
}

/// `status.jobsStatus` of a completed TrainJob lists the replicated job node.
fn check_jobs_status(name: &str, last: &Value, v: &mut Violations) {
    let listed: Vec<&str> = last
        .pointer("/status/jobsStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    if !listed.contains(&"node") {
        v.push(format!(
            "TrainJob {name}: status.jobsStatus does not list the replicated job node (it lists {})",
            list(listed)
        ));
    }
}

fn trainjob_failure(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        torch_runtime(&ctx).await?;
        let name = "kfc-tj-failure";
        let api = Api::namespaced_with(
            ctx.workload_client().clone(),
            &ctx.namespace,
            &trainjob_resource(),
        );
        let tj = trainjob(&ctx, name, 1, &["fail", "--code", "3"]);
        create(&api, &format!("TrainJob {name}"), tj).await?;
        // A failing node is retried with back-off before its Job fails (backoffLimit 6 by
        // default): the catalog gives this test a long timeout, and the job all but the margin.
        let budget = ctx.leaving(EVIDENCE_MARGIN);
        let grace = ctx.scaled(FAILURE_GRACE);
        let decide = on_json(|v| match trainjob_end(v) {
            Step::Wait if failed_jobs(v) > 0 => Step::WaitAtMost(grace),
            other => other,
        });
        let waited = wait_for(&api, name, budget, decide).await?;
        let last = json_of(waited.last);
        let message = match waited.done {
            Some(JobEnd::Failed) => {
                let reason = condition(&last, "Failed")
                    .and_then(|c| c.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if reason.is_empty() {
                    format!("TrainJob {name} is Failed=True but without a reason")
                } else {
                    match check_opposite(&ctx, &api, ("TrainJob", name), ("Failed", "Complete"))
                        .await?
                    {
                        None => return Ok(()),
                        Some(problem) => problem,
                    }
                }
            }
            Some(JobEnd::Succeeded) => format!(
                "TrainJob {name} reached {} although its node exits with code 3",
                describe_condition(&last, "Complete")
            ),
            None if failed_jobs(&last) > 0 => format!(
                "TrainJob {name} reports a failed job in status.jobsStatus but no Failed=True condition {} later ({})",
                secs(grace),
                conditions_summary(&last)
            ),
            None => format!(
                "TrainJob {name}, whose node exits with code 3, did not reach Failed=True within {} ({})",
                secs(budget),
                conditions_summary(&last)
            ),
        };
        explain(&ctx, "trainjob", &last, &format!("{name}-node-0-"), "node").await;
        Err(Failure::Failed(message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_matching() {
        let sel = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let labels = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]);
        assert!(selects(&sel, &labels));
        assert!(!selects(&BTreeMap::new(), &labels));
    }
}
