//! The PyTorchJob (kubeflow.org/v1) controller, as Training Operator v1.9 behaves. Read from
//! kubeflow/trainer's `pkg/controller.v1/` tree (release-1.9 lineage):
//! `pytorch/pytorchjob_controller.go` (`UpdateJobStatus`, `onOwnerCreateFunc`, `IsMasterRole`),
//! `pytorch/envvar.go` + `master.go` + `elastic.go` (the injected environment),
//! `pytorch/initcontainer.go` (`init-pytorch`), `common/job.go` (`ReconcileJobs`: finished jobs,
//! suspend, backoff limit), `common/pod.go` (`ReconcilePods`, `createNewPod`),
//! `common/service.go` (`ReconcileServices`, `CreateNewService`), `pkg/util/status.go`
//! (`setCondition`, `filterOutCondition`) and `pkg/core/` (`UpdateJobReplicaStatuses`,
//! `PastBackoffLimit`, `SetRestartPolicy`). docs/contracts/training.md §1 has the details with
//! citations.
//!
//! Defaults are applied in memory, as the operator does (`r.Scheme.Default`): the stored spec
//! stays as the user wrote it while pods reflect the defaults. The training defects are
//! applied by the hooks of [`crate::defects::training`].

use serde_json::{Map, Value, json};

use super::objects::{
    TRAINING_POD_CONTROL, TRAINING_SERVICE_CONTROL, controlled, controller_ref, create_recorded,
    delete_recorded, deleting, flag_at, int_at, label, phase, restarts, str_at,
};
use super::status::{Status, find, is_true, transition_time, true_condition};
use crate::defects::training::{PyTorchEnv, Training};
use crate::events::{Record, record};
use crate::names::{REPLICA_INDEX, REPLICA_TYPE};
use crate::runtime::builtin::{PODS, SERVICES};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str, now};

const GROUP: &str = "kubeflow.org";
const PLURAL: &str = "pytorchjobs";
const KIND: &str = "PyTorchJob";
const OPERATOR_NAME: &str = "training.kubeflow.org/operator-name";
const JOB_NAME: &str = "training.kubeflow.org/job-name";
const JOB_ROLE: &str = "training.kubeflow.org/job-role";
const CONTROLLER_NAME: &str = "pytorchjob-controller";
const DEFAULT_CONTAINER: &str = "pytorch";
const DEFAULT_PORT_NAME: &str = "pytorchjob-port";
const DEFAULT_PORT: i64 = 23456;
const MANAGED_BY: &str = "kubeflow.org/training-operator";
const INIT_IMAGE: &str = "alpine:3.10";

/// kubeflow.org/v1 PyTorchJobs.
pub const PYTORCHJOBS: Kind = Kind::new(GROUP, PLURAL, KIND);

/// The PyTorchJob controller, with the training defects it is to exhibit. Reconciles a job
/// when it, one of its pods or one of its Services changes (`OnDependentCreateFunc` & co.).
#[derive(Debug, Default)]
pub struct PyTorchJobController {
    defects: Training,
}

impl PyTorchJobController {
    /// A controller exhibiting the training defects of `defects`.
    pub fn new(defects: Training) -> Self {
        Self { defects }
    }
}

impl Reconciler for PyTorchJobController {
    fn name(&self) -> &'static str {
        "pytorchjob"
    }

    fn owns(&self) -> Kind {
        PYTORCHJOBS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(PODS, Mapper::ControllerOwner),
            Watch::new(SERVICES, Mapper::ControllerOwner),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        if let Some(job) = state.object(GROUP, PLURAL, &key.namespace, &key.name) {
            self.reconcile_jobs(state, &job);
        }
        Action::Done
    }
}

/// One replica type after in-memory defaulting.
#[derive(Debug, Clone)]
struct Replica {
    /// `Master` or `Worker`, as the API spells the map key.
    rtype: String,
    replicas: i64,
    /// The replica restartPolicy (`OnFailure`, `Always`, `Never`, `ExitCode`).
    restart: String,
    template: Value,
}

impl Replica {
    fn lower(&self) -> String {
        self.rtype.to_lowercase()
    }
}

/// The replica specs, defaulted (`SetDefaults_PyTorchJob`): keys camel-cased, replicas 1,
/// restartPolicy OnFailure, the `pytorchjob-port` on container `pytorch`. Master first.
fn replicas(job: &Value) -> Vec<Replica> {
    let Some(specs) = job
        .pointer("/spec/pytorchReplicaSpecs")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, spec) in specs {
        let rtype = match key.to_lowercase().as_str() {
            "master" => "Master",
            "worker" => "Worker",
            _ => continue,
        };
        let mut template = spec.get("template").cloned().unwrap_or(json!({}));
        set_default_port(&mut template);
        out.push(Replica {
            rtype: rtype.into(),
            replicas: spec.get("replicas").and_then(Value::as_i64).unwrap_or(1),
            restart: spec
                .get("restartPolicy")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("OnFailure")
                .to_string(),
            template,
        });
    }
    out.sort_by_key(|r| r.rtype != "Master");
    out
}

/// `setPytorchDefaultPort`: container `pytorch` gets `pytorchjob-port: 23456` unless it has a
/// port of that name.
fn set_default_port(template: &mut Value) {
    let Some(cs) = template
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in cs {
        if c.get("name").and_then(Value::as_str) != Some(DEFAULT_CONTAINER) {
            continue;
        }
        let Some(co) = c.as_object_mut() else {
            continue;
        };
        let ports = co.entry("ports").or_insert_with(|| json!([]));
        if let Some(ps) = ports.as_array_mut()
            && !ps
                .iter()
                .any(|p| p.get("name").and_then(Value::as_str) == Some(DEFAULT_PORT_NAME))
        {
            ps.push(json!({"name": DEFAULT_PORT_NAME, "containerPort": DEFAULT_PORT}));
        }
    }
}

/// The `pytorchjob-port` of container `pytorch` in a replica template (`getPortFromPyTorchJob`).
fn job_port(template: &Value) -> Option<i64> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .filter(|c| c.get("name").and_then(Value::as_str) == Some(DEFAULT_CONTAINER))
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| p.get("name").and_then(Value::as_str) == Some(DEFAULT_PORT_NAME))
        .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
}

/// `getNprocPerNodeInt`: the integer value of `spec.nprocPerNode`, else 1.
fn nproc_int(job: &Value) -> i64 {
    str_at(job, "/spec/nprocPerNode").parse().unwrap_or(1)
}

/// A PyTorchJob condition as `pkg/util/status.go` `setCondition` sets it: nothing changes once
/// the job Failed; same status+reason is a no-op; Running and Restarting exclude each other;
/// a terminal condition turns Running False.
fn update_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    if conditions
        .iter()
        .any(|c| c["type"] == "Failed" && true_condition(c))
    {
        return false;
    }
    let current = find(conditions, ctype).cloned();
    if let Some(c) = &current
        && c.get("status").and_then(Value::as_str) == Some(status)
        && c.get("reason").and_then(Value::as_str) == Some(reason)
    {
        return false;
    }
    let ts = now();
    let cond = json!({
        "type": ctype, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": ts, "lastTransitionTime": transition_time(current.as_ref(), status, &ts),
    });
    let mut kept = Vec::new();
    for mut c in conditions.drain(..) {
        let t = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if t == ctype
            || (ctype == "Restarting" && t == "Running")
            || (ctype == "Running" && t == "Restarting")
        {
            continue;
        }
        if (ctype == "Failed" || ctype == "Succeeded") && t == "Running" {
            c["status"] = json!("False");
        }
        kept.push(c);
    }
    kept.push(cond);
    *conditions = kept;
    true
}

fn reason(r: &str) -> String {
    format!("{KIND}{r}")
}

/// One replica type's pods by phase (`UpdateJobReplicaStatuses`).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    active: i64,
    succeeded: i64,
    failed: i64,
}

impl PyTorchJobController {
    /// `GenLabels` plus replica type and index (the Service selector and pod labels).
    fn labels(&self, job_name: &str, r: &Replica, index: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(OPERATOR_NAME.into(), json!(CONTROLLER_NAME));
        m.insert(JOB_NAME.into(), json!(job_name.replace('/', "-")));
        m.insert(REPLICA_TYPE.into(), json!(r.lower()));
        m.insert(REPLICA_INDEX.into(), json!(index.to_string()));
        self.defects.pytorchjob_labels(&mut m);
        m
    }

    /// `ReconcileJobs`: a finished job is cleaned up, a suspended one torn down, one past its
    /// backoff limit failed; otherwise each replica type's pods and Services are reconciled
    /// and the status updated.
    fn reconcile_jobs(&self, state: &mut State, job: &Value) {
        if deleting(job) {
            return;
        }
        let managed_by = str_at(job, "/spec/runPolicy/managedBy");
        if !managed_by.is_empty() && managed_by != MANAGED_BY {
            return;
        }
        let mut run = Run::new(self, state, job);
        if is_true(job, "Succeeded") || is_true(job, "Failed") {
            run.cleanup_job(state);
        } else if flag_at(job, "/spec/runPolicy/suspend") {
            run.suspend(state);
        } else {
            run.resume();
            if run.past_backoff_limit() {
                run.fail_past_backoff(state);
            } else {
                let counts: Vec<Counts> = run
                    .specs
                    .clone()
                    .iter()
                    .map(|r| {
                        let c = run.reconcile_pods(state, r);
                        run.reconcile_services(state, r);
                        c
                    })
                    .collect();
                run.update_job_status(&counts);
            }
        }
        for (warning, reason, message) in std::mem::take(&mut run.events) {
            let rec = if warning {
                Record::warning(CONTROLLER_NAME, job, &reason, message)
            } else {
                Record::normal(CONTROLLER_NAME, job, &reason, message)
            };
            record(state, rec);
        }
        run.status.write(state, PYTORCHJOBS, job);
    }
}

/// One reconcile of one PyTorchJob: its defaulted replicas, its pods and Services, and the
/// status being rebuilt.
struct Run<'a> {
    ctl: &'a PyTorchJobController,
    job: &'a Value,
    name: String,
    specs: Vec<Replica>,
    status: Status,
    pods: Vec<Value>,
    services: Vec<Value>,
    /// Events to record on the job (warning, reason, message), in order.
    events: Vec<(bool, String, String)>,
}

impl<'a> Run<'a> {
    fn new(ctl: &'a PyTorchJobController, state: &State, job: &'a Value) -> Self {
        let name = meta_str(job, "name").to_string();
        let (ns, uid) = (meta_str(job, "namespace"), meta_str(job, "uid"));
        let mut status = Status::of(job);
        if status.conditions.is_empty() {
            // onOwnerCreateFunc: the create event records Created.
            update_condition(
                &mut status.conditions,
                "Created",
                "True",
                &reason("Created"),
                &format!("{KIND} {name} is created."),
            );
        }
        Self {
            ctl,
            job,
            specs: replicas(job),
            status,
            pods: controlled(state, "", "pods", ns, uid),
            services: controlled(state, "", "services", ns, uid),
            name,
            events: Vec::new(),
        }
    }

    /// Queues an event `<Kind><why>` (`commonutil.NewReason`) on the job.
    fn event(&mut self, warning: bool, why: &str, message: &str) {
        self.events
            .push((warning, reason(why), message.to_string()));
    }

    fn condition(&mut self, ctype: &str, status: &str, why: &str, message: &str) {
        update_condition(
            &mut self.status.conditions,
            ctype,
            status,
            &reason(why),
            message,
        );
    }

    fn completion_time(&mut self) {
        self.status
            .fields
            .entry("completionTime")
            .or_insert_with(|| json!(now()));
    }

    /// `DeletePodsAndServices` and the pods' Services, which all go.
    fn delete_all(&self, state: &mut State) {
        let (c, job) = (CONTROLLER_NAME, self.job);
        for p in &self.pods {
            delete_recorded(state, &TRAINING_POD_CONTROL, c, job, "pods", p);
        }
        for s in &self.services {
            delete_recorded(state, &TRAINING_SERVICE_CONTROL, c, job, "services", s);
        }
    }

    /// A finished job: `CleanupJobs` under its cleanPodPolicy; a succeeded job's replicas
    /// still active count as succeeded.
    fn cleanup_job(&mut self, state: &mut State) {
        self.ctl
            .defects
            .finished_conditions(&mut self.status.conditions, "Succeeded");
        let policy = match str_at(self.job, "/spec/runPolicy/cleanPodPolicy") {
            "" => "None",
            p => p,
        };
        clean_up(state, self.job, policy, &self.pods, &self.services);
        if !is_true(self.job, "Succeeded") {
            return;
        }
        let Some(rs) = self
            .status
            .fields
            .get_mut("replicaStatuses")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for s in rs.values_mut() {
            let active = s.get("active").and_then(Value::as_i64).unwrap_or(0);
            if active > 0 {
                let succ = s.get("succeeded").and_then(Value::as_i64).unwrap_or(0);
                s["succeeded"] = json!(succ + active);
                if let Some(o) = s.as_object_mut() {
                    o.remove("active");
                }
            }
        }
    }

    /// `runPolicy.suspend`: pods and Services go, nothing is active, Running turns False.
    fn suspend(&mut self, state: &mut State) {
        self.delete_all(state);
        if let Some(rs) = self
            .status
            .fields
            .get_mut("replicaStatuses")
            .and_then(Value::as_object_mut)
        {
            for s in rs.values_mut() {
                if let Some(o) = s.as_object_mut() {
                    o.remove("active");
                }
            }
        }
        let msg = format!("{KIND} {} is suspended.", self.name);
        if is_true(self.job, "Running") {
            self.condition("Running", "False", "Suspended", &msg);
        }
        if !is_true(self.job, "Suspended") {
            self.condition("Suspended", "True", "Suspended", &msg);
        }
        self.event(false, "Suspended", &msg);
    }

    /// A suspended job resumed: Suspended turns False and the job starts again.
    fn resume(&mut self) {
        if is_true(self.job, "Suspended") {
            let msg = format!("{KIND} {} is resumed.", self.name);
            self.condition("Suspended", "False", "Resumed", &msg);
            self.event(false, "Resumed", &msg);
            self.status.fields.insert("startTime".into(), json!(now()));
        }
    }

    /// `PastBackoffLimit`: restarts of the running pods of restarting replica types reach
    /// `runPolicy.backoffLimit`.
    fn past_backoff_limit(&self) -> bool {
        let Some(limit) = int_at(self.job, "/spec/runPolicy/backoffLimit") else {
            return false;
        };
        let total: i64 = self
            .specs
            .iter()
            .filter(|r| r.restart != "Never")
            .flat_map(|r| {
                let labels = self.ctl.labels(&self.name, r, 0);
                let t = labels[REPLICA_TYPE].as_str().unwrap_or("").to_string();
                self.pods
                    .iter()
                    .filter(move |p| label(p, REPLICA_TYPE) == t)
            })
            .filter(|p| phase(p) == "Running")
            .map(restarts)
            .sum();
        if limit == 0 {
            total > 0
        } else {
            total >= limit
        }
    }

    /// Past the backoff limit: everything goes and the job fails.
    fn fail_past_backoff(&mut self, state: &mut State) {
        self.delete_all(state);
        self.completion_time();
        let msg = format!(
            "Job {} has failed because it has reached the specified backoff limit",
            self.name
        );
        self.event(false, "Failed", &msg);
        self.condition("Failed", "True", "Failed", &msg);
    }

    /// `ReconcilePods` for one replica type: missing pods are created (`createNewPod`), failed
    /// ones restarted per the restart policy, pods past the replica count deleted; returns
    /// the type's counts (`UpdateJobReplicaStatuses`).
    fn reconcile_pods(&mut self, state: &mut State, r: &Replica) -> Counts {
        let mut c = Counts::default();
        for index in 0..r.replicas.max(0) {
            let pod_name = format!("{}-{}-{index}", self.name, r.lower());
            let existing = self
                .pods
                .iter()
                .find(|p| meta_str(p, "name") == pod_name)
                .cloned();
            match existing {
                None => {
                    if let Some(pod) = self.ctl.pod_for(self.job, &self.specs, r, index) {
                        let c = &TRAINING_POD_CONTROL;
                        create_recorded(state, c, CONTROLLER_NAME, self.job, "pods", pod);
                    }
                }
                Some(p) => {
                    if let Some(code) = exit_code(&p) {
                        let msg = format!(
                            "Pod: {}.{} exited with code {code}",
                            meta_str(&p, "namespace"),
                            meta_str(&p, "name")
                        );
                        self.events.push((false, "ExitedWithCode".into(), msg));
                    }
                    if phase(&p) == "Failed" && !deleting(&p) {
                        self.restart_failed(state, r, &p);
                    }
                    self.ctl.count(&mut c, &p);
                }
            }
        }
        // Pods past the replica count go (scale down).
        let prefix = format!("{}-{}-", self.name, r.lower());
        for p in &self.pods {
            if let Some(ix) = meta_str(p, "name")
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<i64>().ok())
                && ix >= r.replicas
            {
                let c = &TRAINING_POD_CONTROL;
                delete_recorded(state, c, CONTROLLER_NAME, self.job, "pods", p);
            }
        }
        c
    }

    /// A failed pod of a restarting replica type is deleted to be recreated (`OnFailure`,
    /// `Always`, and `ExitCode` for retryable exit codes ≥ 128); a permanent `ExitCode` failure
    /// fails the job.
    fn restart_failed(&mut self, state: &mut State, r: &Replica, p: &Value) {
        let restarting = match r.restart.as_str() {
            "OnFailure" | "Always" => true,
            "ExitCode" => exit_code(p).is_none_or(|c| c >= 128),
            _ => return,
        };
        if restarting {
            let c = &TRAINING_POD_CONTROL;
            delete_recorded(state, c, CONTROLLER_NAME, self.job, "pods", p);
            let msg = format!(
                "{KIND} {} is restarting because 1 {} replica(s) failed.",
                self.name, r.rtype
            );
            self.event(true, "Restarting", &msg);
            self.condition("Restarting", "True", "Restarting", &msg);
        } else {
            self.completion_time();
            let msg = format!(
                "job {:?} is failing because {:?} replica(s) failed.",
                self.name, r.rtype
            );
            self.event(false, "Failed", &msg);
            self.condition("Failed", "True", "Failed", &msg);
        }
    }

    /// `ReconcileServices` for one replica type: a headless Service per replica index.
    fn reconcile_services(&self, state: &mut State, r: &Replica) {
        for index in 0..r.replicas.max(0) {
            let svc_name = format!("{}-{}-{index}", self.name, r.lower());
            if !self
                .services
                .iter()
                .any(|s| meta_str(s, "name") == svc_name)
            {
                let svc = self.ctl.service_for(self.job, r, index);
                let c = &TRAINING_SERVICE_CONTROL;
                create_recorded(state, c, CONTROLLER_NAME, self.job, "services", svc);
            }
        }
    }

    /// `UpdateJobStatus`: replica statuses, then the conditions the Master (or, without one,
    /// the Workers) decide.
    fn update_job_status(&mut self, counts: &[Counts]) {
        self.status
            .fields
            .entry("startTime")
            .or_insert_with(|| json!(now()));
        let mut rstatuses = Map::new();
        for (r, c) in self.specs.iter().zip(counts) {
            let mut s = Map::new();
            for (k, n) in [
                ("active", c.active),
                ("succeeded", c.succeeded),
                ("failed", c.failed),
            ] {
                if n > 0 {
                    s.insert(k.into(), json!(n));
                }
            }
            s.insert(
                "selector".into(),
                json!(format!(
                    "{JOB_NAME}={},{OPERATOR_NAME}={CONTROLLER_NAME},{REPLICA_TYPE}={}",
                    self.name.replace('/', "-"),
                    r.lower()
                )),
            );
            rstatuses.insert(r.rtype.clone(), Value::Object(s));
        }
        let has_master = self.specs.iter().any(|r| r.rtype == "Master");
        for (r, c) in self.specs.clone().iter().zip(counts) {
            if has_master {
                if r.rtype == "Master" && self.master_decides(*c, r.replicas - c.succeeded) {
                    break;
                }
            } else if r.rtype == "Worker" {
                self.workers_decide(*c, r.replicas - c.succeeded);
            }
            if c.failed > 0 && r.replicas > c.succeeded + c.active {
                self.replicas_failed(r, *c);
            }
        }
        self.status
            .fields
            .insert("replicaStatuses".into(), Value::Object(rstatuses));
    }

    /// With a Master: Running while it runs, Succeeded once it succeeded (returns true then).
    fn master_decides(&mut self, c: Counts, expected: i64) -> bool {
        if c.active > 0 {
            let msg = format!("{KIND} {} is running.", self.name);
            self.condition("Running", "True", "Running", &msg);
        }
        if expected != 0 {
            return false;
        }
        self.completion_time();
        let msg = format!("{KIND} {} is successfully completed.", self.name);
        self.event(false, "Succeeded", &msg);
        self.condition("Succeeded", "True", "Succeeded", &msg);
        true
    }

    /// Without a Master: the Workers succeed when all (elastic: any) succeeded.
    fn workers_decide(&mut self, c: Counts, expected: i64) {
        let ns = meta_str(self.job, "namespace");
        let elastic = self.job.pointer("/spec/elasticPolicy").is_some();
        if expected == 0 || (elastic && c.succeeded > 0) {
            self.completion_time();
            let msg = format!("{KIND} {ns}/{} successfully completed.", self.name);
            self.event(false, "Succeeded", &msg);
            self.condition("Succeeded", "True", "Succeeded", &msg);
        } else if c.active > 0 {
            let msg = format!("{KIND} {ns}/{} is running.", self.name);
            self.condition("Running", "True", "Running", &msg);
        }
    }

    /// Failed replicas not replaced: Restarting for restarting types, else Failed.
    fn replicas_failed(&mut self, r: &Replica, c: Counts) {
        if r.restart != "Never" {
            let msg = format!(
                "{KIND} {} is restarting because {} {} replica(s) failed.",
                self.name, c.failed, r.rtype
            );
            self.event(true, "Restarting", &msg);
            self.condition("Restarting", "True", "Restarting", &msg);
        } else {
            self.completion_time();
            let msg = format!(
                "{KIND} {} is failed because {} {} replica(s) failed.",
                self.name, c.failed, r.rtype
            );
            self.event(false, "Failed", &msg);
            self.condition("Failed", "True", "Failed", &msg);
        }
    }
}

impl PyTorchJobController {
    /// `UpdateJobReplicaStatuses`.
    fn count(&self, c: &mut Counts, pod: &Value) {
        match self.defects.pytorchjob_counted_phase(phase(pod)) {
            "Running" if deleting(pod) => c.failed += 1,
            "Running" => c.active += 1,
            "Succeeded" => c.succeeded += 1,
            "Failed" => c.failed += 1,
            _ => {}
        }
    }

    /// `createNewPod`: the replica template with labels, restart policy, env and init container.
    fn pod_for(&self, job: &Value, specs: &[Replica], r: &Replica, index: i64) -> Option<Value> {
        let name = meta_str(job, "name");
        let mut template = r.template.clone();
        let mut meta = template
            .get("metadata")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        let mut spec = template
            .get_mut("spec")
            .map(Value::take)
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        let has_master = specs.iter().any(|s| s.rtype == "Master");
        let is_master_role = if has_master {
            r.rtype == "Master"
        } else {
            r.rtype == "Worker" && index == 0
        };
        let mut labels = meta
            .get("labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in self.labels(name, r, index) {
            labels.insert(k, v);
        }
        if is_master_role {
            labels.insert(JOB_ROLE.into(), json!("master"));
        }
        let env = self.env(job, specs, r, index)?;
        let s = spec.as_object_mut()?;
        // SetRestartPolicy: ExitCode is enforced by the operator, so the pod never restarts.
        let restart = if r.restart == "ExitCode" {
            "Never"
        } else {
            r.restart.as_str()
        };
        s.insert("restartPolicy".into(), json!(restart));
        if let Some(cs) = s.get_mut("containers").and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(co) = c.as_object_mut() {
                    let list = co.entry("env").or_insert_with(|| json!([]));
                    if let Some(l) = list.as_array_mut() {
                        l.extend(env.iter().cloned());
                    }
                }
            }
        }
        if r.rtype == "Worker" && has_master {
            let inits = s.entry("initContainers").or_insert_with(|| json!([]));
            if let Some(l) = inits.as_array_mut() {
                l.insert(0, init_container(name));
            }
        }
        let m = meta.as_object_mut()?;
        m.remove("generateName");
        m.insert(
            "name".into(),
            json!(format!("{name}-{}-{index}", r.lower())),
        );
        m.insert("namespace".into(), json!(meta_str(job, "namespace")));
        m.insert("labels".into(), Value::Object(labels));
        m.insert("ownerReferences".into(), json!([controller_ref(job)]));
        Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}))
    }

    /// `setPodEnv`: the variables appended to every container, in upstream's order. None when
    /// the master has no `pytorchjob-port` ("port not found": the pod is not created).
    fn env(&self, job: &Value, specs: &[Replica], r: &Replica, index: i64) -> Option<Vec<Value>> {
        let name = meta_str(job, "name");
        let mut env = vec![json!({"name": "PYTHONUNBUFFERED", "value": "1"})];
        let total: i64 = specs.iter().map(|s| s.replicas).sum();
        let nproc = nproc_int(job);
        if let Some(master) = specs.iter().find(|s| s.rtype == "Master") {
            let port = job_port(&master.template)?.to_string();
            let addr = format!("{name}-master-0");
            env.push(json!({"name": "MASTER_PORT", "value": port}));
            env.push(json!({"name": "PET_MASTER_PORT", "value": port}));
            env.push(json!({"name": "MASTER_ADDR", "value": addr}));
            env.push(json!({"name": "PET_MASTER_ADDR", "value": addr}));
            let world = total * nproc;
            let rank = if r.rtype == "Worker" {
                index + 1
            } else {
                index
            };
            env.push(json!({"name": "WORLD_SIZE", "value": world.to_string()}));
            env.push(json!({"name": "RANK", "value": rank.to_string()}));
            env.push(json!({"name": "PET_NODE_RANK", "value": rank.to_string()}));
        }
        let elastic = job.pointer("/spec/elasticPolicy").filter(|v| v.is_object());
        let elastic_nproc = elastic
            .and_then(|e| e.get("nProcPerNode"))
            .and_then(Value::as_i64);
        // setDefaultNprocPerNode: "auto" unless the deprecated elastic field is used.
        let nproc_per_node = match job.pointer("/spec/nprocPerNode").and_then(Value::as_str) {
            Some(s) => Some(s.to_string()),
            None if elastic_nproc.is_none() => Some("auto".to_string()),
            None => None,
        };
        if let Some(n) = nproc_per_node {
            env.push(json!({"name": "PET_NPROC_PER_NODE", "value": n}));
        }
        match elastic {
            Some(e) => env.extend(elastic_env(job, specs, e)),
            None => env.push(json!({"name": "PET_NNODES", "value": total.to_string()})),
        }
        let facts = PyTorchEnv {
            master_replicas: specs
                .iter()
                .filter(|s| s.rtype == "Master")
                .map(|s| s.replicas)
                .sum(),
            nproc,
            elastic: elastic.is_some(),
        };
        self.defects.pytorchjob_env(&mut env, facts);
        Some(env)
    }

    /// `CreateNewService`: a headless Service named like the pod, selecting it, with the named
    /// ports of container `pytorch`.
    fn service_for(&self, job: &Value, r: &Replica, index: i64) -> Value {
        let name = meta_str(job, "name");
        let labels = self.labels(name, r, index);
        let selector = labels.clone();
        let ports: Vec<Value> = r
            .template
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("name").and_then(Value::as_str) == Some(DEFAULT_CONTAINER))
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|p| {
                let pname = p.get("name").and_then(Value::as_str)?;
                let port = p.get("containerPort").and_then(Value::as_i64)?;
                Some(json!({"name": pname, "port": port}))
            })
            .collect();
        let mut service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": format!("{name}-{}-{index}", r.lower()),
                "namespace": meta_str(job, "namespace"),
                "labels": labels,
                "ownerReferences": [controller_ref(job)],
            },
            "spec": {"clusterIP": "None", "selector": selector, "ports": ports},
        });
        self.defects.pytorchjob_service(&mut service);
        service
    }
}

/// `setInitContainer`: workers wait until the master's Service name resolves.
fn init_container(job_name: &str) -> Value {
    json!({
        "name": "init-pytorch",
        "image": INIT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "limits": {"cpu": "100m", "memory": "20Mi"},
            "requests": {"cpu": "50m", "memory": "10Mi"},
        },
        "command": ["sh", "-c", format!(
            "err=1;for i in $(seq 100); do if nslookup {job_name}-master-0; then err=0 && break; fi;echo waiting for master; sleep 2; done; exit $err"
        )],
    })
}

/// The elastic (torchrun rendezvous) variables (`elastic.go` `Generate`).
fn elastic_env(job: &Value, specs: &[Replica], e: &Value) -> Vec<Value> {
    let name = meta_str(job, "name");
    let worker = specs.iter().find(|s| s.rtype == "Worker");
    let workers = worker.map_or(0, |w| w.replicas);
    let mut out = Vec::new();
    let host = e
        .get("rdzvHost")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}-worker-0"));
    let port = e
        .get("rdzvPort")
        .and_then(Value::as_i64)
        .or_else(|| worker.and_then(|w| job_port(&w.template)));
    if let Some(port) = port {
        out.push(json!({"name": "PET_RDZV_ENDPOINT", "value": format!("{host}:{port}")}));
    }
    let backend = e
        .get("rdzvBackend")
        .and_then(Value::as_str)
        .unwrap_or("c10d");
    out.push(json!({"name": "PET_RDZV_BACKEND", "value": backend}));
    if let Some(id) = e.get("rdzvId").and_then(Value::as_str) {
        out.push(json!({"name": "PET_RDZV_ID", "value": id}));
    }
    if let Some(conf) = e.get("rdzvConf").and_then(Value::as_array) {
        let kv: Vec<String> = conf
            .iter()
            .filter_map(|c| {
                Some(format!(
                    "{}={}",
                    c.get("key")?.as_str()?,
                    c.get("value")?.as_str()?
                ))
            })
            .collect();
        out.push(json!({"name": "PET_RDZV_CONF", "value": kv.join(",")}));
    }
    if e.get("standalone").and_then(Value::as_bool) == Some(true) {
        out.push(json!({"name": "PET_STANDALONE", "value": ""}));
    }
    let min = e
        .get("minReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(workers);
    let max = e
        .get("maxReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(workers);
    out.push(json!({"name": "PET_NNODES", "value": format!("{min}:{max}")}));
    if let Some(m) = e.get("maxRestarts").and_then(Value::as_i64) {
        out.push(json!({"name": "PET_MAX_RESTARTS", "value": m.to_string()}));
    }
    if let Some(n) = e.get("nProcPerNode").and_then(Value::as_i64) {
        out.push(json!({"name": "PET_NPROC_PER_NODE", "value": n.to_string()}));
    }
    out
}

/// The exit code of container `pytorch`'s terminated state, if it has one.
fn exit_code(pod: &Value) -> Option<i64> {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)?
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(DEFAULT_CONTAINER))?
        .pointer("/state/terminated/exitCode")
        .and_then(Value::as_i64)
}

/// `DeletePodsAndServices` for a finished job under its cleanPodPolicy.
fn clean_up(
    state: &mut State,
    job: &Value,
    policy: &str,
    pods: &[Value],
    services: &[Value],
) -> bool {
    let mut changed = false;
    if policy == "None" {
        return false;
    }
    for p in pods {
        if policy == "Running" && !matches!(phase(p), "Running" | "Pending") {
            continue;
        }
        changed |= delete_recorded(
            state,
            &TRAINING_POD_CONTROL,
            CONTROLLER_NAME,
            job,
            "pods",
            p,
        );
        if let Some(s) = services
            .iter()
            .find(|s| meta_str(s, "name") == meta_str(p, "name"))
        {
            let c = &TRAINING_SERVICE_CONTROL;
            changed |= delete_recorded(state, c, CONTROLLER_NAME, job, "services", s);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_set_condition() {
        let mut c = Vec::new();
        assert!(update_condition(
            &mut c,
            "Created",
            "True",
            "PyTorchJobCreated",
            "m"
        ));
        assert!(update_condition(
            &mut c,
            "Running",
            "True",
            "PyTorchJobRunning",
            "m"
        ));
        assert!(!update_condition(
            &mut c,
            "Running",
            "True",
            "PyTorchJobRunning",
            "m2"
        ));
        assert!(update_condition(
            &mut c,
            "Restarting",
            "True",
            "PyTorchJobRestarting",
            "m"
        ));
        assert!(
            !c.iter().any(|x| x["type"] == "Running"),
            "Restarting replaces Running"
        );
        assert!(update_condition(
            &mut c,
            "Running",
            "True",
            "PyTorchJobRunning",
            "m"
        ));
        assert!(update_condition(
            &mut c,
            "Failed",
            "True",
            "PyTorchJobFailed",
            "m"
        ));
        let running = c.iter().find(|x| x["type"] == "Running").unwrap();
        assert_eq!(running["status"], "False");
        assert!(!update_condition(
            &mut c,
            "Succeeded",
            "True",
            "PyTorchJobSucceeded",
            "m"
        ));
    }

    #[test]
    fn env_for_master_and_worker() {
        let job = json!({
            "metadata": {"name": "pj", "namespace": "ns", "uid": "u"},
            "spec": {"pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": {"spec": {"containers": [{"name": "pytorch"}]}}},
                "Worker": {"replicas": 2, "template": {"spec": {"containers": [{"name": "pytorch"}]}}},
            }}
        });
        let c = PyTorchJobController::default();
        let specs = replicas(&job);
        let env = c.env(&job, &specs, &specs[1], 1).unwrap();
        let get = |n: &str| {
            env.iter()
                .find(|e| e["name"] == n)
                .map(|e| e["value"].as_str().unwrap().to_string())
        };
        assert_eq!(get("MASTER_ADDR").as_deref(), Some("pj-master-0"));
        assert_eq!(get("MASTER_PORT").as_deref(), Some("23456"));
        assert_eq!(get("WORLD_SIZE").as_deref(), Some("3"));
        assert_eq!(get("RANK").as_deref(), Some("2"));
        assert_eq!(get("PET_NODE_RANK").as_deref(), Some("2"));
        assert_eq!(get("PET_NNODES").as_deref(), Some("3"));
        assert_eq!(get("PET_NPROC_PER_NODE").as_deref(), Some("auto"));
        let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PYTHONUNBUFFERED",
                "MASTER_PORT",
                "PET_MASTER_PORT",
                "MASTER_ADDR",
                "PET_MASTER_ADDR",
                "WORLD_SIZE",
                "RANK",
                "PET_NODE_RANK",
                "PET_NPROC_PER_NODE",
                "PET_NNODES"
            ]
        );
    }
}
