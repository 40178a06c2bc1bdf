//! The TrainJob (trainer.kubeflow.org/v1alpha1) controller, as Kubeflow Trainer v2.2 behaves
//! with the torch plugin, after kubeflow/trainer `pkg/controller/trainjob_controller.go`
//! (`Reconcile`: the runtime lookup, `reconcileObjects`, `setSuspendedCondition`,
//! `setTrainJobStatus`), `pkg/runtime/core/{cluster,}trainingruntime.go` (runtime lookup,
//! `numNodes`), `pkg/runtime/framework/plugins/jobset/{jobset,builder}.go` (`Build`, `Trainer`,
//! `Status`, `IdentifyPodNetwork`) and `plugins/torch/torch.go` (`EnforceMLPolicy`: the `PET_*`
//! environment). docs/contracts/training.md §2 has the details with citations.
//!
//! The JobSet (kubernetes-sigs/jobset `pkg/controllers/jobset_controller.go`,
//! `pkg/webhooks/jobset_webhook.go`) is simulated inside this controller instead of being served
//! as a CRD: the objects it would create are created directly and owned by the TrainJob — a
//! headless Service named after the TrainJob and one batch/v1 Job `<trainjob>-<replicatedJob>-<i>`
//! per replicated job, labelled and annotated as JobSet does, with JobSet's defaults (Indexed
//! completion, pod subdomain = the TrainJob's name, restartPolicy OnFailure). The Job controller
//! ([`super::job`]) makes the pods, so pods carry the Job controller's labels, completion index
//! and hostname `<trainjob>-<replicatedJob>-<i>-<index>`. The JobSet's status (completed when
//! every Job completed, failed when any Job failed, `replicatedJobsStatus`) is derived from the
//! Jobs and mirrored into the TrainJob as upstream's jobset plugin does. The training defects
//! are applied by the hooks of [`crate::defects::training`].

use serde_json::{Map, Value, json};

use super::objects::{controlled, controller_ref, deleting, flag_at, label, str_at};
use super::status::{Status, condition, is_true, set_condition};
use crate::defects::training::Training;
use crate::events::{Record, record};
use crate::runtime::builtin::{JOBS, SERVICES};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str};

const GROUP: &str = "trainer.kubeflow.org";
const PLURAL: &str = "trainjobs";
const MANAGED_BY: &str = "trainer.kubeflow.org/trainjob-controller";
const ANCESTOR: &str = "trainer.kubeflow.org/trainjob-ancestor-step";
const TRAINER_CONTAINER: &str = "node";
const TRAINER_PORT: i64 = 29500;
const JOBSET_NAME: &str = "jobset.sigs.k8s.io/jobset-name";
const REPLICATED_JOB_NAME: &str = "jobset.sigs.k8s.io/replicatedjob-name";
const REPLICATED_JOB_REPLICAS: &str = "jobset.sigs.k8s.io/replicatedjob-replicas";
const GLOBAL_REPLICAS: &str = "jobset.sigs.k8s.io/global-replicas";
const JOB_INDEX: &str = "jobset.sigs.k8s.io/job-index";
const JOB_GLOBAL_INDEX: &str = "jobset.sigs.k8s.io/job-global-index";
const JOB_KEY: &str = "jobset.sigs.k8s.io/job-key";
const RESTART_ATTEMPT: &str = "jobset.sigs.k8s.io/restart-attempt";

/// trainer.kubeflow.org/v1alpha1 TrainJobs.
pub const TRAINJOBS: Kind = Kind::new(GROUP, PLURAL, "TrainJob");
const CLUSTER_RUNTIMES: Kind =
    Kind::new(GROUP, "clustertrainingruntimes", "ClusterTrainingRuntime");
const RUNTIMES: Kind = Kind::new(GROUP, "trainingruntimes", "TrainingRuntime");

/// The TrainJob controller, with the training defects it is to exhibit. Reconciles a TrainJob
/// when it, one of its Jobs, its headless Service or the runtime it names changes.
#[derive(Debug, Default)]
pub struct TrainJobController {
    defects: Training,
}

impl TrainJobController {
    /// A controller exhibiting the training defects of `defects`.
    pub fn new(defects: Training) -> Self {
        Self { defects }
    }
}

impl Reconciler for TrainJobController {
    fn name(&self) -> &'static str {
        "trainjob"
    }

    fn owns(&self) -> Kind {
        TRAINJOBS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(JOBS, Mapper::ControllerOwner),
            // JobSet looks its headless Service up by name (`createHeadlessSvcIfNecessary`).
            Watch::new(SERVICES, Mapper::Name),
            Watch::new(CLUSTER_RUNTIMES, Mapper::Func(by_cluster_runtime)),
            Watch::new(RUNTIMES, Mapper::Func(by_runtime)),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        if let Some(tj) = state.object(GROUP, PLURAL, &key.namespace, &key.name) {
            self.reconcile_trainjob(state, &tj);
        }
        Action::Done
    }
}

/// `runtimeRef` with its defaults: (apiGroup, kind, name).
fn runtime_ref(tj: &Value) -> (&str, &str, &str) {
    let api_group = match str_at(tj, "/spec/runtimeRef/apiGroup") {
        "" => GROUP,
        g => g,
    };
    let kind = match str_at(tj, "/spec/runtimeRef/kind") {
        "" => "ClusterTrainingRuntime",
        k => k,
    };
    (api_group, kind, str_at(tj, "/spec/runtimeRef/name"))
}

/// The TrainJobs whose runtimeRef names the ClusterTrainingRuntime `rt`.
fn by_cluster_runtime(state: &State, rt: &Value) -> Vec<ObjectKey> {
    referencing(state, "ClusterTrainingRuntime", None, meta_str(rt, "name"))
}

/// The TrainJobs of `rt`'s namespace whose runtimeRef names the TrainingRuntime `rt`.
fn by_runtime(state: &State, rt: &Value) -> Vec<ObjectKey> {
    let ns = meta_str(rt, "namespace");
    referencing(state, "TrainingRuntime", Some(ns), meta_str(rt, "name"))
}

fn referencing(state: &State, kind: &str, ns: Option<&str>, name: &str) -> Vec<ObjectKey> {
    state
        .objects
        .get(&(GROUP.to_string(), PLURAL.to_string()))
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|tj| ns.is_none_or(|n| meta_str(tj, "namespace") == n))
        .filter(|tj| runtime_ref(tj) == (GROUP, kind, name))
        .map(ObjectKey::of)
        .collect()
}

/// One replicated job of the runtime's JobSet template.
struct ReplicatedJob<'a> {
    name: &'a str,
    replicas: i64,
    template: &'a Value,
}

fn replicated_jobs(runtime: &Value) -> Vec<ReplicatedJob<'_>> {
    runtime
        .pointer("/spec/template/spec/replicatedJobs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(ReplicatedJob {
                name: r.get("name")?.as_str()?,
                replicas: r.get("replicas").and_then(Value::as_i64).unwrap_or(1),
                template: r.get("template")?,
            })
        })
        .collect()
}

fn is_trainer(r: &ReplicatedJob<'_>) -> bool {
    match r
        .template
        .pointer("/metadata/labels")
        .and_then(|l| l.get(ANCESTOR))
        .and_then(Value::as_str)
    {
        Some(step) => step == "trainer",
        None => r.name == TRAINER_CONTAINER,
    }
}

impl TrainJobController {
    /// `Reconcile` of one unfinished TrainJob: the runtime lookup, `reconcileObjects` while
    /// the JobSet runs, `setSuspendedCondition`, then `setTrainJobStatus`.
    fn reconcile_trainjob(&self, state: &mut State, tj: &Value) {
        let managed_by = str_at(tj, "/spec/managedBy");
        if deleting(tj) || (!managed_by.is_empty() && managed_by != MANAGED_BY) {
            return;
        }
        // A finished TrainJob is not reconciled any more (but a defect may rewrite its
        // conditions).
        if is_true(tj, "Complete") || is_true(tj, "Failed") {
            let mut status = Status::of(tj);
            self.defects
                .finished_conditions(&mut status.conditions, "Complete");
            status.write(state, TRAINJOBS, tj);
            return;
        }
        let mut status = Status::of(tj);
        let runtime = match lookup_runtime(state, tj) {
            Ok(Some(runtime)) => runtime,
            // A runtime that vanished after admission: a Warning event and no condition.
            Ok(None) => {
                let (kind, _, name) = runtime_ref(tj);
                let plural = if kind == "ClusterTrainingRuntime" {
                    "clustertrainingruntimes"
                } else {
                    "trainingruntimes"
                };
                let err = format!("{plural}.{GROUP} {name:?} not found");
                resources_creation_failed(state, tj, &err);
                return;
            }
            Err(message) => {
                let reason = "TrainingRuntimeNotSupported";
                set_condition(&mut status.conditions, "Failed", "True", reason, &message);
                status.write(state, TRAINJOBS, tj);
                return;
            }
        };
        let rjobs = replicated_jobs(&runtime);
        let (ns, uid) = (meta_str(tj, "namespace"), meta_str(tj, "uid"));
        let jobs = controlled(state, "batch", "jobs", ns, uid);
        let run = JobSetRun {
            expected: rjobs.iter().map(|r| r.replicas.max(0)).sum(),
            any_failed: jobs.iter().any(|j| is_true(j, "Failed")),
        };
        let completed = jobs.iter().filter(|j| is_true(j, "Complete")).count() as i64;
        if !(run.any_failed || (run.expected > 0 && completed >= run.expected))
            && let Err(e) = self.reconcile_objects(state, tj, &runtime, &rjobs, &jobs, run.expected)
        {
            resources_creation_failed(state, tj, &e);
        }
        let jobs = controlled(state, "batch", "jobs", ns, uid);
        set_suspended_condition(tj, &mut status.conditions);
        self.set_train_job_status(&mut status, &rjobs, &jobs, run);
        status.write(state, TRAINJOBS, tj);
    }

    /// `reconcileObjects` with the JobSet's own reconcile: the headless Service first, then
    /// each replicated job's Jobs, created or told the TrainJob's suspension.
    fn reconcile_objects(
        &self,
        state: &mut State,
        tj: &Value,
        runtime: &Value,
        rjobs: &[ReplicatedJob<'_>],
        jobs: &[Value],
        global_replicas: i64,
    ) -> Result<(), String> {
        let (name, ns) = (meta_str(tj, "name"), meta_str(tj, "namespace"));
        if state.object("", "services", ns, name).is_none() {
            apply(state, "", "services", self.service_for(tj))?;
        }
        let suspended = flag_at(tj, "/spec/suspend");
        let mut global_index = 0i64;
        for r in rjobs {
            for idx in 0..r.replicas.max(0) {
                let job_name = format!("{name}-{}-{idx}", r.name);
                match jobs.iter().find(|j| meta_str(j, "name") == job_name) {
                    None => {
                        let job = self.job_for(tj, runtime, r, idx, global_index, global_replicas);
                        apply(state, "batch", "jobs", job)?;
                    }
                    Some(j) => propagate_suspend(state, j, suspended),
                }
                global_index += 1;
            }
        }
        Ok(())
    }

    /// `setTrainJobStatus` through the jobset plugin's `Status`: Complete when every Job
    /// completed, Failed when one failed, and the replicated jobs' counts.
    fn set_train_job_status(
        &self,
        status: &mut Status,
        rjobs: &[ReplicatedJob<'_>],
        jobs: &[Value],
        run: JobSetRun,
    ) {
        let completed = jobs.iter().filter(|j| is_true(j, "Complete")).count() as i64;
        if run.expected > 0 && completed >= run.expected && !run.any_failed {
            set_condition(
                &mut status.conditions,
                "Complete",
                "True",
                "AllJobsCompleted",
                "jobset completed successfully",
            );
        }
        let first_failed = jobs
            .iter()
            .filter(|j| is_true(j, "Failed"))
            .min_by_key(|j| {
                condition(j, "Failed")
                    .map(|c| str_at(c, "/lastTransitionTime").to_string())
                    .unwrap_or_default()
            });
        if let Some(f) = first_failed {
            set_condition(
                &mut status.conditions,
                "Failed",
                "True",
                "FailedJobs",
                &format!(
                    "jobset failed due to one or more job failures (first failed job: {})",
                    meta_str(f, "name")
                ),
            );
            self.defects.trainjob_conditions(&mut status.conditions);
        }
        // TrainJobStatus orders conditions before jobsStatus.
        status.settle_conditions();
        let jobs_status = rjobs
            .iter()
            .map(|r| replicated_job_status(r, jobs))
            .collect();
        status
            .fields
            .insert("jobsStatus".into(), Value::Array(jobs_status));
    }
}

/// What `Reconcile` knows of the JobSet before touching it.
#[derive(Debug, Clone, Copy)]
struct JobSetRun {
    /// Jobs the JobSet has when complete.
    expected: i64,
    /// Whether one of its Jobs had failed.
    any_failed: bool,
}

/// `source.component` of the TrainJob controller's events (its manager's recorder name).
pub const COMPONENT: &str = "trainer-trainjob-controller";

/// Creates an object `reconcileObjects` applies; the error is the apiserver's message.
fn apply(state: &mut State, group: &str, plural: &str, obj: Value) -> Result<(), String> {
    state
        .create_object(group, plural, obj)
        .map(drop)
        .map_err(|e| e.message)
}

/// `Reconcile`'s Warning when `reconcileObjects` fails: `TrainJobResourcesCreationFailed`,
/// the error cut at 950 characters.
fn resources_creation_failed(state: &mut State, tj: &Value, err: &str) {
    let mut message = format!(
        "TrainJob resources reconciliation failed: {}",
        err.chars().take(950).collect::<String>()
    );
    if err.chars().count() > 950 {
        message.push_str(" ...");
    }
    let rec = Record::warning(COMPONENT, tj, "TrainJobResourcesCreationFailed", message);
    record(state, rec);
}

/// The runtime `runtimeRef` names: Err for an unsupported kind, None when it is gone.
fn lookup_runtime(state: &State, tj: &Value) -> Result<Option<Value>, String> {
    let (api_group, kind, name) = runtime_ref(tj);
    match (api_group, kind) {
        (GROUP, "ClusterTrainingRuntime") => {
            Ok(state.object(GROUP, "clustertrainingruntimes", "", name))
        }
        (GROUP, "TrainingRuntime") => {
            Ok(state.object(GROUP, "trainingruntimes", meta_str(tj, "namespace"), name))
        }
        _ => Err(format!("unsupported runtime: {kind}.{api_group}")),
    }
}

/// JobSet propagates suspension to its unfinished Jobs.
fn propagate_suspend(state: &mut State, job: &Value, suspended: bool) {
    if flag_at(job, "/spec/suspend") != suspended
        && !is_true(job, "Complete")
        && !is_true(job, "Failed")
    {
        let mut nj = job.clone();
        nj["spec"]["suspend"] = json!(suspended);
        if let Err(e) = state.update_object("batch", "jobs", nj, false) {
            tracing::debug!(job = meta_str(job, "name"), error = %e.message, "suspending failed");
        }
    }
}

/// `setSuspendedCondition`: Suspended while `spec.suspend`, turned False once resumed.
fn set_suspended_condition(tj: &Value, conditions: &mut Vec<Value>) {
    if flag_at(tj, "/spec/suspend") {
        set_condition(
            conditions,
            "Suspended",
            "True",
            "Suspended",
            "TrainJob is suspended",
        );
    } else if is_true(tj, "Suspended") {
        set_condition(
            conditions,
            "Suspended",
            "False",
            "Resumed",
            "TrainJob is resumed",
        );
    }
}

/// JobSet's `replicatedJobsStatus` entry of one replicated job, from its Jobs.
fn replicated_job_status(r: &ReplicatedJob<'_>, jobs: &[Value]) -> Value {
    let (mut ready, mut succeeded, mut failed, mut active, mut suspended) = (0, 0, 0, 0, 0);
    for j in jobs
        .iter()
        .filter(|j| label(j, REPLICATED_JOB_NAME) == r.name)
    {
        if is_true(j, "Complete") {
            succeeded += 1;
        } else if is_true(j, "Failed") {
            failed += 1;
        } else {
            if flag_at(j, "/spec/suspend") {
                suspended += 1;
            }
            let st = |k: &str| {
                j.pointer(&format!("/status/{k}"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            let parallelism = j
                .pointer("/spec/parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if st("ready") + st("succeeded") >= parallelism {
                ready += 1;
            }
            if st("active") > 0 {
                active += 1;
            }
        }
    }
    json!({
        "name": r.name, "ready": ready, "succeeded": succeeded, "failed": failed,
        "active": active, "suspended": suspended,
    })
}

impl TrainJobController {
    /// JobSet's `createHeadlessSvcIfNecessary`.
    fn service_for(&self, tj: &Value) -> Value {
        let name = meta_str(tj, "name");
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": meta_str(tj, "namespace"),
                "ownerReferences": [controller_ref(tj)],
            },
            "spec": {
                "clusterIP": "None",
                "selector": {JOBSET_NAME: name},
                "publishNotReadyAddresses": true,
            },
        })
    }

    /// The Job JobSet's `constructJob` makes from the replicated job, after the trainer's
    /// `Build` put the TrainJob's trainer and the torch plugin's environment in.
    fn job_for(
        &self,
        tj: &Value,
        runtime: &Value,
        r: &ReplicatedJob<'_>,
        idx: i64,
        global_index: i64,
        global_replicas: i64,
    ) -> Value {
        let name = meta_str(tj, "name");
        let ns = meta_str(tj, "namespace");
        let job_name = format!("{name}-{}-{idx}", r.name);
        let mut spec = r
            .template
            .get("spec")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        let mut job_meta = r
            .template
            .get("metadata")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        if is_trainer(r) {
            self.apply_trainer(tj, runtime, r, &mut spec);
        }
        // JobSet webhook defaults and network set-up.
        if spec.get("completionMode").is_none() {
            spec["completionMode"] = json!("Indexed");
        }
        if let Some(pod_spec) = spec
            .pointer_mut("/template/spec")
            .and_then(Value::as_object_mut)
        {
            let rp = pod_spec
                .get("restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if rp.is_empty() {
                pod_spec.insert("restartPolicy".into(), json!("OnFailure"));
            }
            pod_spec.insert("subdomain".into(), json!(name));
        }
        spec["suspend"] = json!(tj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true));
        let marks = jobset_marks(ns, name, r, idx, global_index, global_replicas, &job_name);
        merge_marks(&mut job_meta, &marks);
        if let Some(t) = spec.get_mut("template") {
            if !t.get("metadata").is_some_and(Value::is_object) {
                t["metadata"] = json!({});
            }
            if let Some(m) = t.get_mut("metadata") {
                merge_marks(m, &marks);
            }
        }
        apply_runtime_patches(tj, r.name, &mut job_meta, &mut spec);
        if let Some(m) = job_meta.as_object_mut() {
            m.remove("generateName");
            m.insert("name".into(), json!(job_name));
            m.insert("namespace".into(), json!(ns));
            m.insert("ownerReferences".into(), json!([controller_ref(tj)]));
        }
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": spec})
    }

    /// The jobset plugin's `Trainer` on container `node` of the trainer job (numNodes, image,
    /// command, args, resources, env), then the torch plugin's `EnforceMLPolicy`.
    fn apply_trainer(&self, tj: &Value, runtime: &Value, r: &ReplicatedJob<'_>, spec: &mut Value) {
        let trainer = tj.pointer("/spec/trainer").cloned().unwrap_or(json!({}));
        let num_nodes = trainer
            .get("numNodes")
            .and_then(Value::as_i64)
            .or_else(|| {
                runtime
                    .pointer("/spec/mlPolicy/numNodes")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(1);
        spec["parallelism"] = json!(num_nodes);
        spec["completions"] = json!(num_nodes);
        let Some(c) = spec
            .pointer_mut("/template/spec/containers")
            .and_then(Value::as_array_mut)
            .and_then(|cs| {
                cs.iter_mut()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(TRAINER_CONTAINER))
            })
        else {
            return;
        };
        let runtime_resources = c.get("resources").cloned();
        for field in ["image", "command", "args"] {
            if let Some(v) = trainer.get(field) {
                c[field] = v.clone();
            }
        }
        if let Some(res) = trainer.get("resourcesPerNode") {
            c["resources"] = res.clone();
        }
        if let Some(env) = trainer.get("env").and_then(Value::as_array) {
            for e in env {
                upsert_named(c, "env", e.clone());
            }
        }
        if runtime.pointer("/spec/mlPolicy/torch").is_some() {
            let resources = trainer
                .get("resourcesPerNode")
                .or(runtime_resources.as_ref());
            self.enforce_torch_policy(tj, r, &trainer, resources, num_nodes, c);
        }
    }

    /// The torch plugin's `EnforceMLPolicy`: the `PET_*` environment and the trainer port.
    fn enforce_torch_policy(
        &self,
        tj: &Value,
        r: &ReplicatedJob<'_>,
        trainer: &Value,
        resources: Option<&Value>,
        num_nodes: i64,
        c: &mut Value,
    ) {
        let name = meta_str(tj, "name");
        let nproc = match trainer.get("numProcPerNode") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => nproc_from_resources(resources),
        };
        let mut env = vec![
            json!({"name": "PET_NNODES", "value": num_nodes.to_string()}),
            json!({"name": "PET_NPROC_PER_NODE", "value": nproc}),
            json!({"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {
                "fieldPath": format!("metadata.annotations['{}']", super::job::COMPLETION_INDEX)
            }}}),
            // IdentifyPodNetwork: the first pod of the trainer job, through the JobSet subdomain.
            json!({"name": "PET_MASTER_ADDR", "value": format!("{name}-{}-0-0.{name}", r.name)}),
            json!({"name": "PET_MASTER_PORT", "value": TRAINER_PORT.to_string()}),
        ];
        self.defects.trainjob_env(&mut env);
        for e in env {
            upsert_named(c, "env", e);
        }
        let ports = c
            .as_object_mut()
            .map(|o| o.entry("ports").or_insert_with(|| json!([])));
        if let Some(Value::Array(ps)) = ports
            && !ps
                .iter()
                .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(TRAINER_PORT))
        {
            ps.push(json!({"containerPort": TRAINER_PORT, "protocol": "TCP"}));
        }
    }
}

/// `getNumCPUPerNode` / `GetNumGPUPerNode`: "auto" with GPUs, else the CPU count (requests,
/// else limits, rounded up, at least 1).
fn nproc_from_resources(resources: Option<&Value>) -> String {
    let Some(res) = resources else {
        return "1".into();
    };
    let has_gpu = ["limits", "requests"]
        .iter()
        .filter_map(|k| res.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .any(|k| k.contains("gpu"));
    if has_gpu {
        return "auto".into();
    }
    let cpu = res
        .pointer("/requests/cpu")
        .or_else(|| res.pointer("/limits/cpu"))
        .and_then(|v| match v {
            Value::String(s) => parse_cpu(s),
            Value::Number(n) => n.as_f64(),
            _ => None,
        });
    match cpu {
        Some(c) if c > 0.0 => (c.ceil() as i64).max(1).to_string(),
        _ => "1".into(),
    }
}

fn parse_cpu(s: &str) -> Option<f64> {
    match s.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => s.parse().ok(),
    }
}

/// Replaces the element of `list` with the same `name`, or appends it.
fn upsert_named(container: &mut Value, list: &str, item: Value) {
    let Some(o) = container.as_object_mut() else {
        return;
    };
    let arr = o.entry(list).or_insert_with(|| json!([]));
    let Some(arr) = arr.as_array_mut() else {
        return;
    };
    let name = item.get("name").cloned();
    match arr.iter_mut().find(|e| e.get("name") == name.as_ref()) {
        Some(e) => *e = item,
        None => arr.push(item),
    }
}

/// The labels and annotations JobSet's `labelAndAnnotateObject` puts on a Job and its pods.
fn jobset_marks(
    ns: &str,
    jobset: &str,
    r: &ReplicatedJob<'_>,
    idx: i64,
    global_index: i64,
    global_replicas: i64,
    job_name: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(JOBSET_NAME.into(), json!(jobset));
    m.insert(REPLICATED_JOB_NAME.into(), json!(r.name));
    m.insert(RESTART_ATTEMPT.into(), json!("0"));
    m.insert(
        REPLICATED_JOB_REPLICAS.into(),
        json!(r.replicas.to_string()),
    );
    m.insert(GLOBAL_REPLICAS.into(), json!(global_replicas.to_string()));
    m.insert(JOB_INDEX.into(), json!(idx.to_string()));
    m.insert(
        JOB_KEY.into(),
        json!(sha1_hex(format!("{ns}/{job_name}").as_bytes())),
    );
    m.insert(JOB_GLOBAL_INDEX.into(), json!(global_index.to_string()));
    m
}

fn merge_marks(meta: &mut Value, marks: &Map<String, Value>) {
    let Some(m) = meta.as_object_mut() else {
        return;
    };
    for field in ["labels", "annotations"] {
        let entry = m.entry(field).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        if let Some(o) = entry.as_object_mut() {
            for (k, v) in marks {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_map(target: &mut Value, field: &str, from: Option<&Value>) {
    let Some(Value::Object(src)) = from else {
        return;
    };
    let Some(t) = target.as_object_mut() else {
        return;
    };
    let entry = t.entry(field).or_insert_with(|| json!({}));
    if let Some(o) = entry.as_object_mut() {
        for (k, v) in src {
            o.insert(k.clone(), v.clone());
        }
    }
}

/// `spec.runtimePatches`: per replicated job, Job and pod template metadata, a restricted set
/// of pod spec fields, and per-container env, volume mounts and security context.
fn apply_runtime_patches(tj: &Value, rjob: &str, job_meta: &mut Value, spec: &mut Value) {
    let patches = tj
        .pointer("/spec/runtimePatches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in &patches {
        let Some(rjs) = p
            .pointer("/trainingRuntimeSpec/template/spec/replicatedJobs")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for rj in rjs.iter().filter(|x| str_at(x, "/name") == rjob) {
            merge_map(job_meta, "labels", rj.pointer("/template/metadata/labels"));
            merge_map(
                job_meta,
                "annotations",
                rj.pointer("/template/metadata/annotations"),
            );
            let Some(tpl) = spec.get_mut("template") else {
                continue;
            };
            if let Some(m) = tpl.get_mut("metadata") {
                merge_map(
                    m,
                    "labels",
                    rj.pointer("/template/spec/template/metadata/labels"),
                );
                merge_map(
                    m,
                    "annotations",
                    rj.pointer("/template/spec/template/metadata/annotations"),
                );
            }
            if let Some(pspec) = rj.pointer("/template/spec/template/spec")
                && let Some(pod) = tpl.get_mut("spec").and_then(Value::as_object_mut)
            {
                patch_pod_spec(pod, pspec);
            }
        }
    }
}

/// The pod spec fields a runtime patch may set: scheduling and identity fields replaced,
/// lists appended, volumes upserted by name, then the containers.
fn patch_pod_spec(pod: &mut Map<String, Value>, pspec: &Value) {
    for f in [
        "affinity",
        "nodeSelector",
        "serviceAccountName",
        "securityContext",
    ] {
        if let Some(v) = pspec.get(f) {
            pod.insert(f.into(), v.clone());
        }
    }
    for f in ["tolerations", "imagePullSecrets", "schedulingGates"] {
        if let Some(Value::Array(add)) = pspec.get(f) {
            let e = pod.entry(f).or_insert_with(|| json!([]));
            if let Some(a) = e.as_array_mut() {
                a.extend(add.iter().cloned());
            }
        }
    }
    if let Some(Value::Array(vols)) = pspec.get("volumes") {
        let mut holder = Value::Object(std::mem::take(pod));
        for v in vols {
            upsert_named(&mut holder, "volumes", v.clone());
        }
        if let Value::Object(o) = holder {
            *pod = o;
        }
    }
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(patches)) = pspec.get(list) else {
            continue;
        };
        let Some(cs) = pod.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for cp in patches {
            if let Some(c) = cs.iter_mut().find(|c| c.get("name") == cp.get("name")) {
                patch_container(c, cp);
            }
        }
    }
}

/// A container patch: env and volume mounts upserted by name, the security context replaced.
fn patch_container(c: &mut Value, cp: &Value) {
    for list in ["env", "volumeMounts"] {
        for item in cp.get(list).and_then(Value::as_array).into_iter().flatten() {
            upsert_named(c, list, item.clone());
        }
    }
    if let Some(sc) = cp.get("securityContext") {
        c["securityContext"] = sc.clone();
    }
}

/// SHA-1 (FIPS 180-4) as lowercase hex; JobSet's job-key label is `sha1("<ns>/<job>")`.
#[allow(clippy::needless_range_loop)]
fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for i in 0..80 {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(w[i]);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_known_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn nproc_per_node_from_resources() {
        assert_eq!(nproc_from_resources(None), "1");
        assert_eq!(
            nproc_from_resources(Some(&json!({"limits": {"nvidia.com/gpu": 1}}))),
            "auto"
        );
        assert_eq!(
            nproc_from_resources(Some(&json!({"requests": {"cpu": "1500m"}}))),
            "2"
        );
        assert_eq!(
            nproc_from_resources(Some(&json!({"limits": {"cpu": "3"}}))),
            "3"
        );
        assert_eq!(
            nproc_from_resources(Some(&json!({"requests": {"cpu": "100m"}}))),
            "1"
        );
    }

    #[test]
    fn job_for_torch_distributed() {
        let runtime: Value = kfconform_core::fixtures::yaml_documents(
            kfconform_core::fixtures::file("examples/trainer.torch_distributed.yaml")
                .unwrap()
                .text,
        )
        .unwrap()
        .remove(0);
        let tj = json!({
            "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
            "metadata": {"name": "tj", "namespace": "ns", "uid": "u"},
            "spec": {
                "runtimeRef": {"name": "torch-distributed"},
                "trainer": {"numNodes": 2, "image": "probe", "command": ["kfconform"],
                            "args": ["probe", "train"]},
                "runtimePatches": [{"manager": "me", "trainingRuntimeSpec": {"template": {"spec": {
                    "replicatedJobs": [{"name": "node", "template": {"spec": {"template": {"spec": {
                        "securityContext": {"runAsNonRoot": true},
                        "containers": [{"name": "node", "securityContext": {"allowPrivilegeEscalation": false}}]
                    }}}}}]}}}}]
            }
        });
        let c = TrainJobController::default();
        let rjobs = replicated_jobs(&runtime);
        let job = c.job_for(&tj, &runtime, &rjobs[0], 0, 0, 1);
        assert_eq!(job["metadata"]["name"], "tj-node-0");
        assert_eq!(job["metadata"]["labels"][ANCESTOR], "trainer");
        assert_eq!(job["metadata"]["labels"][JOBSET_NAME], "tj");
        assert_eq!(job["spec"]["parallelism"], 2);
        assert_eq!(job["spec"]["completions"], 2);
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        let pod = &job["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"][REPLICATED_JOB_NAME], "node");
        assert_eq!(pod["metadata"]["annotations"][JOB_INDEX], "0");
        assert_eq!(pod["spec"]["subdomain"], "tj");
        assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        let node = &pod["spec"]["containers"][0];
        assert_eq!(node["image"], "probe");
        assert_eq!(node["securityContext"]["allowPrivilegeEscalation"], false);
        let env: Vec<&str> = node["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            [
                "PET_NNODES",
                "PET_NPROC_PER_NODE",
                "PET_NODE_RANK",
                "PET_MASTER_ADDR",
                "PET_MASTER_PORT"
            ]
        );
        assert_eq!(node["env"][3]["value"], "tj-node-0-0.tj");
        assert_eq!(node["env"][1]["value"], "1");
        assert_eq!(node["ports"][0]["containerPort"], 29500);
    }
}
