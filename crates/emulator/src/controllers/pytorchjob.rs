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
//! stays as the user wrote it while pods reflect the defaults.

use serde_json::{Map, Value, json};

use super::Controller;
use super::job::{
    controlled, controller_ref, delete, deleting, int_at, is_true, keys_where, phase, restarts,
    str_at, write_status,
};
use crate::Defect;
use crate::store::{State, meta_str, now};

const GROUP: &str = "kubeflow.org";
const PLURAL: &str = "pytorchjobs";
const KIND: &str = "PyTorchJob";
const OPERATOR_NAME: &str = "training.kubeflow.org/operator-name";
const JOB_NAME: &str = "training.kubeflow.org/job-name";
const REPLICA_TYPE: &str = "training.kubeflow.org/replica-type";
const REPLICA_INDEX: &str = "training.kubeflow.org/replica-index";
const JOB_ROLE: &str = "training.kubeflow.org/job-role";
const CONTROLLER_NAME: &str = "pytorchjob-controller";
const DEFAULT_CONTAINER: &str = "pytorch";
const DEFAULT_PORT_NAME: &str = "pytorchjob-port";
const DEFAULT_PORT: i64 = 23456;
const MANAGED_BY: &str = "kubeflow.org/training-operator";
const INIT_IMAGE: &str = "alpine:3.10";

/// The PyTorchJob controller, with the defects it is to exhibit.
#[derive(Debug, Default)]
pub struct PyTorchJobController {
    no_master_addr: bool,
    wrong_world_size: bool,
    failed_counts_as_succeeded: bool,
    capitalised_replica_type: bool,
    master_service_selects_nothing: bool,
    no_pet_nnodes: bool,
}

impl PyTorchJobController {
    /// A controller exhibiting the training defects among `defects`.
    pub fn new(defects: &[Defect]) -> Self {
        Self {
            no_master_addr: defects.contains(&Defect::TrainingNoMasterAddr),
            wrong_world_size: defects.contains(&Defect::TrainingWrongWorldSize),
            failed_counts_as_succeeded: defects.contains(&Defect::TrainingFailedJobSucceeds),
            capitalised_replica_type: defects.contains(&Defect::TrainingWrongReplicaLabels),
            master_service_selects_nothing: defects.contains(&Defect::TrainingMasterUnreachable),
            no_pet_nnodes: defects.contains(&Defect::TrainingNoPetNnodes),
        }
    }
}

impl Controller for PyTorchJobController {
    fn name(&self) -> &'static str {
        "pytorchjob"
    }

    fn reconcile(&mut self, state: &mut State) -> bool {
        // A finished job whose pods stay (cleanPodPolicy None) and whose replica statuses are
        // settled needs nothing: skip it without copying.
        let keys = keys_where(state, GROUP, PLURAL, |j| {
            let finished = is_true(j, "Succeeded") || is_true(j, "Failed");
            let keeps_pods = matches!(str_at(j, "/spec/runPolicy/cleanPodPolicy"), "" | "None");
            let active_left = j
                .pointer("/status/replicaStatuses")
                .and_then(Value::as_object)
                .is_some_and(|m| m.values().any(|s| s.get("active").is_some()));
            !(finished && keeps_pods && !(is_true(j, "Succeeded") && active_left))
        });
        let mut changed = false;
        for (ns, name) in keys {
            if let Some(job) = state.object(GROUP, PLURAL, &ns, &name) {
                changed |= self.sync(state, &job);
            }
        }
        changed
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
    let failed = conditions.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Failed")
            && c.get("status").and_then(Value::as_str) == Some("True")
    });
    if failed {
        return false;
    }
    let current = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
        .cloned();
    if let Some(c) = &current
        && c.get("status").and_then(Value::as_str) == Some(status)
        && c.get("reason").and_then(Value::as_str) == Some(reason)
    {
        return false;
    }
    let ts = now();
    let mut cond = json!({
        "type": ctype, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": ts, "lastTransitionTime": ts,
    });
    if let Some(c) = &current
        && c.get("status").and_then(Value::as_str) == Some(status)
        && let Some(t) = c.get("lastTransitionTime")
    {
        cond["lastTransitionTime"] = t.clone();
    }
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

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    active: i64,
    succeeded: i64,
    failed: i64,
}

impl PyTorchJobController {
    fn replica_type_label(&self, r: &Replica) -> String {
        if self.capitalised_replica_type {
            r.rtype.clone()
        } else {
            r.lower()
        }
    }

    /// `GenLabels` plus replica type and index (the Service selector and pod labels).
    fn labels(&self, job_name: &str, r: &Replica, index: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(OPERATOR_NAME.into(), json!(CONTROLLER_NAME));
        m.insert(JOB_NAME.into(), json!(job_name.replace('/', "-")));
        m.insert(REPLICA_TYPE.into(), json!(self.replica_type_label(r)));
        m.insert(REPLICA_INDEX.into(), json!(index.to_string()));
        m
    }

    fn sync(&self, state: &mut State, job: &Value) -> bool {
        if deleting(job) {
            return false;
        }
        let managed_by = str_at(job, "/spec/runPolicy/managedBy");
        if !managed_by.is_empty() && managed_by != MANAGED_BY {
            return false;
        }
        let name = meta_str(job, "name").to_string();
        let ns = meta_str(job, "namespace").to_string();
        let uid = meta_str(job, "uid").to_string();
        let specs = replicas(job);
        let mut status: Map<String, Value> = job
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut changed = false;
        if conditions.is_empty() {
            // onOwnerCreateFunc: the create event records Created.
            update_condition(
                &mut conditions,
                "Created",
                "True",
                &reason("Created"),
                &format!("{KIND} {name} is created."),
            );
        }
        let pods = controlled(state, "", "pods", &ns, &uid);
        let services = controlled(state, "", "services", &ns, &uid);
        let clean_policy = match str_at(job, "/spec/runPolicy/cleanPodPolicy") {
            "" => "None",
            p => p,
        };

        if is_true(job, "Succeeded") || is_true(job, "Failed") {
            changed |= clean_up(state, clean_policy, &pods, &services);
            if is_true(job, "Succeeded")
                && let Some(rs) = status
                    .get_mut("replicaStatuses")
                    .and_then(Value::as_object_mut)
            {
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
            status.insert("conditions".into(), Value::Array(conditions));
            return write_status(state, GROUP, PLURAL, job, Value::Object(status)) || changed;
        }

        let suspended = job
            .pointer("/spec/runPolicy/suspend")
            .and_then(Value::as_bool)
            == Some(true);
        if suspended {
            for p in &pods {
                changed |= delete(state, "", "pods", p);
            }
            for s in &services {
                changed |= delete(state, "", "services", s);
            }
            if let Some(rs) = status
                .get_mut("replicaStatuses")
                .and_then(Value::as_object_mut)
            {
                for s in rs.values_mut() {
                    if let Some(o) = s.as_object_mut() {
                        o.remove("active");
                    }
                }
            }
            let msg = format!("{KIND} {name} is suspended.");
            if is_true(job, "Running") {
                update_condition(
                    &mut conditions,
                    "Running",
                    "False",
                    &reason("Suspended"),
                    &msg,
                );
            }
            if !is_true(job, "Suspended") {
                update_condition(
                    &mut conditions,
                    "Suspended",
                    "True",
                    &reason("Suspended"),
                    &msg,
                );
            }
            status.insert("conditions".into(), Value::Array(conditions));
            return write_status(state, GROUP, PLURAL, job, Value::Object(status)) || changed;
        }
        if is_true(job, "Suspended") {
            update_condition(
                &mut conditions,
                "Suspended",
                "False",
                &reason("Resumed"),
                &format!("{KIND} {name} is resumed."),
            );
            status.insert("startTime".into(), json!(now()));
        }

        // Backoff limit (PastBackoffLimit): restarts of running pods of restarting replicas.
        let past_backoff = int_at(job, "/spec/runPolicy/backoffLimit").is_some_and(|limit| {
            let total: i64 = specs
                .iter()
                .filter(|r| r.restart != "Never")
                .flat_map(|r| {
                    let t = self.replica_type_label(r);
                    pods.iter().filter(move |p| {
                        str_at(
                            p,
                            &format!("/metadata/labels/{}", REPLICA_TYPE.replace('/', "~1")),
                        ) == t
                    })
                })
                .filter(|p| phase(p) == "Running")
                .map(restarts)
                .sum();
            if limit == 0 {
                total > 0
            } else {
                total >= limit
            }
        });
        if past_backoff {
            for p in &pods {
                changed |= delete(state, "", "pods", p);
            }
            for s in &services {
                changed |= delete(state, "", "services", s);
            }
            status
                .entry("completionTime")
                .or_insert_with(|| json!(now()));
            update_condition(
                &mut conditions,
                "Failed",
                "True",
                &reason("Failed"),
                &format!(
                    "Job {name} has failed because it has reached the specified backoff limit"
                ),
            );
            status.insert("conditions".into(), Value::Array(conditions));
            return write_status(state, GROUP, PLURAL, job, Value::Object(status)) || changed;
        }

        let has_master = specs.iter().any(|r| r.rtype == "Master");
        let mut counts: Vec<(String, Counts)> = Vec::new();
        for r in &specs {
            let mut c = Counts::default();
            for index in 0..r.replicas.max(0) {
                let pod_name = format!("{name}-{}-{index}", r.lower());
                let existing = pods.iter().find(|p| meta_str(p, "name") == pod_name);
                match existing {
                    None => {
                        if let Some(pod) = self.pod_for(job, &specs, r, index) {
                            match state.create_object("", "pods", pod) {
                                Ok(_) => changed = true,
                                Err(e) => {
                                    tracing::debug!(pod = %pod_name, error = %e.message, "creating a PyTorchJob pod failed")
                                }
                            }
                        }
                    }
                    Some(p) => {
                        if phase(p) == "Failed" && !deleting(p) {
                            match r.restart.as_str() {
                                "OnFailure" | "Always" => {
                                    changed |= delete(state, "", "pods", p);
                                    update_condition(
                                        &mut conditions,
                                        "Restarting",
                                        "True",
                                        &reason("Restarting"),
                                        &format!(
                                            "{KIND} {name} is restarting because 1 {} replica(s) failed.",
                                            r.rtype
                                        ),
                                    );
                                }
                                "ExitCode" => {
                                    let code = exit_code(p);
                                    if code.is_none_or(|c| c >= 128) {
                                        changed |= delete(state, "", "pods", p);
                                        update_condition(
                                            &mut conditions,
                                            "Restarting",
                                            "True",
                                            &reason("Restarting"),
                                            &format!(
                                                "{KIND} {name} is restarting because 1 {} replica(s) failed.",
                                                r.rtype
                                            ),
                                        );
                                    } else {
                                        status
                                            .entry("completionTime")
                                            .or_insert_with(|| json!(now()));
                                        update_condition(
                                            &mut conditions,
                                            "Failed",
                                            "True",
                                            &reason("Failed"),
                                            &format!(
                                                "job {name:?} is failing because {:?} replica(s) failed.",
                                                r.rtype
                                            ),
                                        );
                                    }
                                }
                                _ => {}
                            }
                        }
                        self.count(&mut c, p);
                    }
                }
            }
            // Pods past the replica count go (scale down).
            for p in &pods {
                let prefix = format!("{name}-{}-", r.lower());
                if let Some(ix) = meta_str(p, "name")
                    .strip_prefix(&prefix)
                    .and_then(|s| s.parse::<i64>().ok())
                    && ix >= r.replicas
                {
                    changed |= delete(state, "", "pods", p);
                }
            }
            for index in 0..r.replicas.max(0) {
                let svc_name = format!("{name}-{}-{index}", r.lower());
                if !services.iter().any(|s| meta_str(s, "name") == svc_name) {
                    let svc = self.service_for(job, r, index);
                    match state.create_object("", "services", svc) {
                        Ok(_) => changed = true,
                        Err(e) => {
                            tracing::debug!(service = %svc_name, error = %e.message, "creating a PyTorchJob service failed")
                        }
                    }
                }
            }
            counts.push((r.rtype.clone(), c));
        }

        // UpdateJobStatus.
        status.entry("startTime").or_insert_with(|| json!(now()));
        let mut rstatuses = Map::new();
        for (r, (rtype, c)) in specs.iter().zip(&counts) {
            let mut s = Map::new();
            if c.active > 0 {
                s.insert("active".into(), json!(c.active));
            }
            if c.succeeded > 0 {
                s.insert("succeeded".into(), json!(c.succeeded));
            }
            if c.failed > 0 {
                s.insert("failed".into(), json!(c.failed));
            }
            s.insert(
                "selector".into(),
                json!(format!(
                    "{JOB_NAME}={},{OPERATOR_NAME}={CONTROLLER_NAME},{REPLICA_TYPE}={}",
                    name.replace('/', "-"),
                    r.lower()
                )),
            );
            rstatuses.insert(rtype.clone(), Value::Object(s));
        }
        for (r, (_, c)) in specs.iter().zip(&counts) {
            let expected = r.replicas - c.succeeded;
            if has_master {
                if r.rtype == "Master" {
                    if c.active > 0 {
                        update_condition(
                            &mut conditions,
                            "Running",
                            "True",
                            &reason("Running"),
                            &format!("{KIND} {name} is running."),
                        );
                    }
                    if expected == 0 {
                        status
                            .entry("completionTime")
                            .or_insert_with(|| json!(now()));
                        update_condition(
                            &mut conditions,
                            "Succeeded",
                            "True",
                            &reason("Succeeded"),
                            &format!("{KIND} {name} is successfully completed."),
                        );
                        break;
                    }
                }
            } else if r.rtype == "Worker" {
                let elastic = job.pointer("/spec/elasticPolicy").is_some();
                if expected == 0 || (elastic && c.succeeded > 0) {
                    status
                        .entry("completionTime")
                        .or_insert_with(|| json!(now()));
                    update_condition(
                        &mut conditions,
                        "Succeeded",
                        "True",
                        &reason("Succeeded"),
                        &format!("{KIND} {ns}/{name} successfully completed."),
                    );
                } else if c.active > 0 {
                    update_condition(
                        &mut conditions,
                        "Running",
                        "True",
                        &reason("Running"),
                        &format!("{KIND} {ns}/{name} is running."),
                    );
                }
            }
            if c.failed > 0 && r.replicas > c.succeeded + c.active {
                if r.restart != "Never" {
                    update_condition(
                        &mut conditions,
                        "Restarting",
                        "True",
                        &reason("Restarting"),
                        &format!(
                            "{KIND} {name} is restarting because {} {} replica(s) failed.",
                            c.failed, r.rtype
                        ),
                    );
                } else {
                    status
                        .entry("completionTime")
                        .or_insert_with(|| json!(now()));
                    update_condition(
                        &mut conditions,
                        "Failed",
                        "True",
                        &reason("Failed"),
                        &format!(
                            "{KIND} {name} is failed because {} {} replica(s) failed.",
                            c.failed, r.rtype
                        ),
                    );
                }
            }
        }
        status.insert("replicaStatuses".into(), Value::Object(rstatuses));
        status.insert("conditions".into(), Value::Array(conditions));
        let current = state
            .object(GROUP, PLURAL, &ns, &name)
            .unwrap_or_else(|| job.clone());
        write_status(state, GROUP, PLURAL, &current, Value::Object(status)) || changed
    }

    /// `UpdateJobReplicaStatuses`.
    fn count(&self, c: &mut Counts, pod: &Value) {
        match phase(pod) {
            "Running" if deleting(pod) => c.failed += 1,
            "Running" => c.active += 1,
            "Succeeded" => c.succeeded += 1,
            "Failed" if self.failed_counts_as_succeeded => c.succeeded += 1,
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
            // setInitContainer: workers wait until the master's Service name resolves.
            let init = json!({
                "name": "init-pytorch",
                "image": INIT_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "resources": {
                    "limits": {"cpu": "100m", "memory": "20Mi"},
                    "requests": {"cpu": "50m", "memory": "10Mi"},
                },
                "command": ["sh", "-c", format!(
                    "err=1;for i in $(seq 100); do if nslookup {name}-master-0; then err=0 && break; fi;echo waiting for master; sleep 2; done; exit $err"
                )],
            });
            let inits = s.entry("initContainers").or_insert_with(|| json!([]));
            if let Some(l) = inits.as_array_mut() {
                l.insert(0, init);
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
            if !self.no_master_addr {
                env.push(json!({"name": "MASTER_ADDR", "value": addr}));
                env.push(json!({"name": "PET_MASTER_ADDR", "value": addr}));
            }
            let world = if self.wrong_world_size {
                // Forgets the master when summing the replicas.
                specs
                    .iter()
                    .filter(|s| s.rtype != "Master")
                    .map(|s| s.replicas)
                    .sum::<i64>()
                    * nproc
            } else {
                total * nproc
            };
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
            None if !self.no_pet_nnodes => {
                env.push(json!({"name": "PET_NNODES", "value": total.to_string()}));
            }
            None => {}
        }
        Some(env)
    }

    /// `CreateNewService`: a headless Service named like the pod, selecting it, with the named
    /// ports of container `pytorch`.
    fn service_for(&self, job: &Value, r: &Replica, index: i64) -> Value {
        let name = meta_str(job, "name");
        let labels = self.labels(name, r, index);
        let mut selector = labels.clone();
        if self.master_service_selects_nothing && r.rtype == "Master" {
            // A distribution that derives the selector from the wrong index base.
            selector.insert(REPLICA_INDEX.into(), json!((index + 1).to_string()));
        }
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
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": format!("{name}-{}-{index}", r.lower()),
                "namespace": meta_str(job, "namespace"),
                "labels": labels,
                "ownerReferences": [controller_ref(job)],
            },
            "spec": {"clusterIP": "None", "selector": selector, "ports": ports},
        })
    }
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
fn clean_up(state: &mut State, policy: &str, pods: &[Value], services: &[Value]) -> bool {
    let mut changed = false;
    if policy == "None" {
        return false;
    }
    for p in pods {
        if policy == "Running" && !matches!(phase(p), "Running" | "Pending") {
            continue;
        }
        changed |= delete(state, "", "pods", p);
        if let Some(s) = services
            .iter()
            .find(|s| meta_str(s, "name") == meta_str(p, "name"))
        {
            changed |= delete(state, "", "services", s);
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
