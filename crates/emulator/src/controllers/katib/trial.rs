//! Katib's Trial controller, after katib v0.19.0 `pkg/controller.v1beta1/trial/`:
//! `trial_controller.go` (`Reconcile`, `reconcileTrial`, `reconcileJob`, `getDesiredJobSpec`),
//! `trial_controller_util.go` (`UpdateTrialStatusCondition`, `UpdateTrialStatusObservation`,
//! `getMetrics`, the `clean-metrics-in-db` finalizer), `trial_controller_status.go` (reasons),
//! `util/job_util.go` (`GetDeployedJobStatus`: GJSON success and failure conditions over the
//! run object, failure first) and `pkg/apis/controller/trials/v1beta1/util.go` (conditions).
//!
//! A Trial gets the finalizer, then `startTime` and Created; its `spec.runSpec` (a batch Job,
//! a PyTorchJob, any served kind) is created as written, controller-owned by the Trial, and
//! Running is set as soon as it exists. When the run meets its success condition, the
//! observation is read from the observation log ([`crate::katib_db`], filled by
//! [`super::metrics::collect`]): with nothing reported the Trial stays Running and is looked
//! at again every second; with the objective unavailable it becomes MetricsUnavailable, else
//! Succeeded. Once completed, Running turns False, `completionTime` is set and the run object
//! is deleted (foreground) unless `spec.retainRun`. Early stopping and the Push collector's
//! SDK reports are not modelled. Defects: [`crate::defects::tuning_trial`].

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::metrics;
use crate::controllers::objects::{deleting, has_finalizer, remove_finalizer, str_at};
use crate::controllers::pytorchjob::PYTORCHJOBS;
use crate::controllers::status::{Status, find, true_condition};
use crate::defects::tuning_trial::TuningTrial;
use crate::events::{Record, record};
use crate::katib_db::{MetricLog, UNAVAILABLE};
use crate::runtime::builtin::JOBS;
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{DeleteOpts, Propagation, State, meta_str, now};

/// kubeflow.org/v1beta1 Trials.
pub const TRIALS: Kind = Kind::new("kubeflow.org", "trials", "Trial");
/// The Trial's apiVersion, as ownerReferences name it.
pub const TRIAL_API_VERSION: &str = "kubeflow.org/v1beta1";
/// `source.component` of the Trial controller's events (`ControllerName`).
pub const COMPONENT: &str = "trial-controller";
/// The finalizer that deletes a Trial's observation logs with it (`cleanMetricsFinalizer`).
pub const FINALIZER: &str = "clean-metrics-in-db";
/// The requeue of a Trial whose run succeeded before its metrics were reported.
const METRICS_REQUEUE: Duration = Duration::from_secs(1);

/// The Trial controller, with the tuning defects it is to exhibit. Reconciles a Trial when
/// it or its run object changes (`TypedEnqueueRequestForOwner` on each trial resource).
#[derive(Debug, Default)]
pub struct TrialController {
    defects: TuningTrial,
}

impl TrialController {
    /// A controller exhibiting the Trial-side tuning defects of `defects`.
    pub fn new(defects: TuningTrial) -> Self {
        Self { defects }
    }
}

impl Reconciler for TrialController {
    fn name(&self) -> &'static str {
        "trial"
    }

    fn owns(&self) -> Kind {
        TRIALS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(JOBS, Mapper::ControllerOwner),
            Watch::new(PYTORCHJOBS, Mapper::ControllerOwner),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        match state.object(TRIALS.group, TRIALS.plural, &key.namespace, &key.name) {
            Some(trial) => self.sync(state, &trial),
            None => Action::Done,
        }
    }
}

/// Why `reconcileTrial` stopped early.
enum Stop {
    /// `errMetricsNotReported`: look again in a second, status untouched.
    MetricsNotReported,
    /// Any other error: a ReconcileError event, and the key's back-off.
    Error(String),
}

/// What `GetDeployedJobStatus` makes of a run object.
#[derive(Debug, Clone, PartialEq)]
struct RunStatus {
    condition: RunCondition,
    reason: String,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunCondition {
    Running,
    Succeeded,
    Failed,
}

impl TrialController {
    /// `Reconcile`: finalizer, the collectors' reports, Created or `reconcileTrial`, then the
    /// status when it changed.
    fn sync(&self, state: &mut State, trial: &Value) -> Action {
        let (ns, name) = (meta_str(trial, "namespace"), meta_str(trial, "name"));
        if deleting(trial) {
            if has_finalizer(trial, FINALIZER) {
                state.katib_db.delete(ns, name);
                if !remove_finalizer(state, TRIALS.group, TRIALS.plural, trial, FINALIZER) {
                    return Action::Retry;
                }
            }
            return Action::Done;
        }
        if !has_finalizer(trial, FINALIZER) {
            return add_finalizer(state, trial);
        }
        metrics::collect(state, trial, &self.defects);
        let mut status = Status::of(trial);
        if !is_true(&status, "Created") {
            status
                .fields
                .entry("startTime")
                .or_insert_with(|| json!(now()));
            // `&metav1.Time{}`: a zero time, serialised as null.
            status.fields.entry("completionTime").or_insert(Value::Null);
            set_condition(
                &mut status.conditions,
                "Created",
                "True",
                "TrialCreated",
                "Trial is created",
            );
        } else {
            match self.reconcile_trial(state, trial, &mut status) {
                Ok(()) => {}
                Err(Stop::MetricsNotReported) => {
                    tracing::debug!(trial = name, "run succeeded, metrics not reported yet");
                    return Action::RequeueAfter(METRICS_REQUEUE);
                }
                Err(Stop::Error(e)) => {
                    let msg = format!("Failed to reconcile: {e}");
                    record(
                        state,
                        Record::warning(COMPONENT, trial, "ReconcileError", msg),
                    );
                    return Action::Retry;
                }
            }
        }
        status.settle_conditions();
        let current = state
            .object(TRIALS.group, TRIALS.plural, ns, name)
            .unwrap_or_else(|| trial.clone());
        let wanted = status.into_value();
        if current.get("status") == Some(&wanted) {
            return Action::Done;
        }
        let mut updated = current;
        updated["status"] = wanted;
        match state.update_object(TRIALS.group, TRIALS.plural, updated, true) {
            Ok(_) => Action::Done,
            // "Update trial instance status failed, reconcile requeued".
            Err(_) => Action::RequeueAfter(Duration::ZERO),
        }
    }

    /// `reconcileTrial`: the run object, and the Trial's conditions from it.
    fn reconcile_trial(
        &self,
        state: &mut State,
        trial: &Value,
        status: &mut Status,
    ) -> Result<(), Stop> {
        let desired = desired_run(trial).map_err(Stop::Error)?;
        let Some(deployed) = self.reconcile_run(state, trial, status, desired)? else {
            return Ok(());
        };
        if is_completed(status) {
            return Ok(());
        }
        let Some(run) = self.run_status(trial, status, &deployed) else {
            return Ok(());
        };
        if run.condition == RunCondition::Succeeded {
            update_observation(state, trial, status, &self.defects);
        }
        let push = str_at(trial, "/spec/metricsCollector/collector/kind") == "Push";
        if run.condition == RunCondition::Succeeded
            && !status.fields.contains_key("observation")
            && !push
        {
            return Err(Stop::MetricsNotReported);
        }
        self.update_condition(state, trial, status, meta_str(&deployed, "name"), &run);
        Ok(())
    }

    /// `reconcileJob`: creates the run object (unless the Trial is completed), or deletes it
    /// once the Trial is completed; returns the run object to judge, if any.
    fn reconcile_run(
        &self,
        state: &mut State,
        trial: &Value,
        status: &Status,
        desired: Value,
    ) -> Result<Option<Value>, Stop> {
        let api_version = str_at(&desired, "/apiVersion").to_string();
        let kind = str_at(&desired, "/kind").to_string();
        let Some((group, plural)) = resource_of(state, &api_version, &kind) else {
            return Err(Stop::Error(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\""
            )));
        };
        let (rns, rname) = (meta_str(&desired, "namespace"), meta_str(&desired, "name"));
        let completed = is_completed(status);
        let Some(existing) = state.object(&group, &plural, rns, rname) else {
            if completed {
                return Ok(None);
            }
            state
                .create_object(&group, &plural, desired.clone())
                .map_err(|e| Stop::Error(e.message))?;
            let msg = format!("Job {rname} has been created");
            record(state, Record::normal(COMPONENT, trial, "JobCreated", msg));
            // The first pass judges the object as sent, as upstream does.
            return Ok(Some(desired));
        };
        let retain = trial.pointer("/spec/retainRun").and_then(Value::as_bool) == Some(true);
        if completed && self.defects.deletes_run(retain) {
            let scope = state
                .scope_for(&group, &plural, rns)
                .ok_or_else(|| Stop::Error(format!("no route to {plural}")))?;
            let opts = DeleteOpts {
                propagation: Some(Propagation::Foreground),
                ..DeleteOpts::default()
            };
            state
                .delete(&scope, rname, &opts)
                .map_err(|e| Stop::Error(e.message))?;
            let msg = format!("Job {rname} has been deleted");
            record(state, Record::normal(COMPONENT, trial, "JobDeleted", msg));
            return Ok(None);
        }
        Ok(Some(existing))
    }

    /// `GetDeployedJobStatus`: Failed when the failure condition matches (tested first),
    /// Succeeded when the success condition does, Running for a run object of a Trial not yet
    /// Running, else nothing to do.
    fn run_status(&self, trial: &Value, status: &Status, deployed: &Value) -> Option<RunStatus> {
        let reads = self
            .defects
            .reads_run(str_at(deployed, "/apiVersion"), str_at(deployed, "/kind"));
        if reads {
            let json = serde_json::to_string(deployed).unwrap_or_default();
            let checks = [
                ("/spec/failureCondition", RunCondition::Failed),
                ("/spec/successCondition", RunCondition::Succeeded),
            ];
            for (path, condition) in checks {
                match matched_condition(&json, str_at(trial, path)) {
                    Ok(Some((reason, message))) => {
                        return Some(RunStatus {
                            condition,
                            reason,
                            message,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(trial = meta_str(trial, "name"), error = %e,
                            "GetDeployedJobStatus error");
                        return None;
                    }
                }
            }
        }
        (!is_true(status, "Running") && !meta_str(deployed, "name").is_empty()).then(|| RunStatus {
            condition: RunCondition::Running,
            reason: String::new(),
            message: String::new(),
        })
    }

    /// `UpdateTrialStatusCondition`: the Trial's conditions, completion time and events from
    /// what its run object says.
    fn update_condition(
        &self,
        state: &mut State,
        trial: &Value,
        status: &mut Status,
        run_name: &str,
        run: &RunStatus,
    ) {
        let with_job = |base: &str, reason: bool| {
            let extra = if reason { &run.reason } else { &run.message };
            let label = if reason { "Job reason" } else { "Job message" };
            if extra.is_empty() {
                base.to_string()
            } else {
                format!("{base}. {label}: {extra}")
            }
        };
        let event = |state: &mut State, warning: bool, reason: &str, msg: String| {
            let rec = if warning {
                Record::warning(COMPONENT, trial, reason, msg)
            } else {
                Record::normal(COMPONENT, trial, reason, msg)
            };
            record(state, rec);
        };
        match run.condition {
            RunCondition::Succeeded => {
                let mut available = observation_available(trial, status);
                if !available && !is_true(status, "MetricsUnavailable") {
                    let mut obs = status.fields.get("observation").cloned();
                    if self.defects.unavailable_succeeds(&mut obs) {
                        if let Some(o) = obs {
                            status.fields.insert("observation".into(), o);
                        }
                        available = true;
                    }
                }
                if available && !is_true(status, "Succeeded") {
                    let reason = with_job("TrialSucceeded", true);
                    let msg = with_job("Trial has succeeded", false);
                    complete(status, "Succeeded", &reason, &msg);
                    let msg = format!("Job {run_name} has succeeded");
                    event(state, false, "JobSucceeded", msg);
                } else if !available && !is_true(status, "MetricsUnavailable") {
                    if str_at(trial, "/spec/metricsCollector/collector/kind") == "Push" {
                        report_unavailable(state, trial);
                    }
                    let reason = with_job("MetricsUnavailable", true);
                    let msg = with_job("Metrics are not available", false);
                    complete(status, "MetricsUnavailable", &reason, &msg);
                    let msg = format!("Metrics are not available for Job {run_name}");
                    event(state, true, "MetricsUnavailable", msg);
                }
            }
            RunCondition::Failed if !is_true(status, "Failed") => {
                let reason = with_job("TrialFailed", true);
                let msg = with_job("Trial has failed", false);
                complete(status, "Failed", &reason, &msg);
                let mut msg = format!("Job {run_name} has failed");
                if !run.message.is_empty() || !run.reason.is_empty() {
                    msg = format!("{msg}. {} {}", run.message, run.reason);
                }
                event(state, false, "JobFailed", msg);
            }
            RunCondition::Running if !is_true(status, "Running") => {
                set_condition(
                    &mut status.conditions,
                    "Running",
                    "True",
                    "TrialRunning",
                    "Trial is running",
                );
                let msg = format!("Job {run_name} is running");
                event(state, false, "JobRunning", msg);
            }
            _ => {}
        }
    }
}

/// `needUpdateFinalizers` + `updateFinalizers` for a live Trial: adds the finalizer and looks
/// again (the update does not change the generation).
fn add_finalizer(state: &mut State, trial: &Value) -> Action {
    let mut t = trial.clone();
    let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Action::Done;
    };
    let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
    match fins.as_array_mut() {
        Some(list) => list.push(json!(FINALIZER)),
        None => *fins = json!([FINALIZER]),
    }
    match state.update_object(TRIALS.group, TRIALS.plural, t, false) {
        Ok(_) => Action::RequeueAfter(Duration::ZERO),
        Err(_) => Action::Retry,
    }
}

/// `getDesiredJobSpec`: `spec.runSpec` with a controller reference to the Trial
/// (`controllerutil.SetControllerReference`, with its refusals).
fn desired_run(trial: &Value) -> Result<Value, String> {
    let mut run = trial
        .pointer("/spec/runSpec")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let owner_ns = meta_str(trial, "namespace");
    let run_ns = meta_str(&run, "namespace");
    if run_ns.is_empty() {
        return Err(format!(
            "cluster-scoped resource must not have a namespace-scoped owner, owner's namespace {owner_ns}"
        ));
    }
    if run_ns != owner_ns {
        return Err(format!(
            "cross-namespace owner references are disallowed, owner's namespace {owner_ns}, obj's namespace {run_ns}"
        ));
    }
    let owner = json!({
        "apiVersion": TRIAL_API_VERSION,
        "kind": TRIALS.kind,
        "name": meta_str(trial, "name"),
        "uid": meta_str(trial, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    });
    let description = format!("{run_ns}/{}", meta_str(&run, "name"));
    let Some(meta) = run.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err("runSpec has no metadata".into());
    };
    let refs = meta.entry("ownerReferences").or_insert_with(|| json!([]));
    if !refs.is_array() {
        *refs = json!([]);
    }
    let Some(refs) = refs.as_array_mut() else {
        return Ok(run);
    };
    let same_owner = |r: &Value| {
        let group = |v: &str| v.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        group(str_at(r, "/apiVersion")) == "kubeflow.org"
            && str_at(r, "/kind") == TRIALS.kind
            && str_at(r, "/name") == meta_str(trial, "name")
    };
    if let Some(other) = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true) && !same_owner(r))
    {
        return Err(format!(
            "Object {description} is already owned by another {} controller {}",
            str_at(other, "/kind"),
            str_at(other, "/name")
        ));
    }
    match refs.iter_mut().find(|r| same_owner(r)) {
        Some(r) => *r = owner,
        None => refs.push(owner),
    }
    Ok(run)
}

/// The stored resource (group, plural) of objects of `api_version` and `kind`, when served.
fn resource_of(state: &State, api_version: &str, kind: &str) -> Option<(String, String)> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    state
        .resources
        .values()
        .find(|d| {
            d.group == group
                && d.kind == kind
                && d.storage_alias.is_none()
                && d.versions.iter().any(|v| v.name == version)
        })
        .map(|d| (d.group.clone(), d.plural.clone()))
}

/// Evaluates one GJSON condition over the run object's JSON: a match is an object, or a
/// non-empty array whose first element is taken; its `reason` and `message` are read as
/// `TrialJobStatus` would unmarshal them. Err when the match is not such an object.
fn matched_condition(json: &str, expr: &str) -> Result<Option<(String, String)>, String> {
    // The crate has survived fuzzing, but a panic here would take the state lock with it.
    let found = std::panic::catch_unwind(|| {
        let v = gjson::get(json, expr);
        match v.kind() {
            gjson::Kind::Object => Some(v.json().to_string()),
            gjson::Kind::Array => v.array().first().map(|e| e.json().to_string()),
            _ => None,
        }
    })
    .map_err(|_| format!("cannot evaluate condition {expr:?}"))?;
    let Some(text) = found else {
        return Ok(None);
    };
    let cond: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let Some(obj) = cond.as_object() else {
        return Err(format!(
            "unmarshal condition to Trial Job status failed: {text}"
        ));
    };
    let field = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!(
            "unmarshal condition to Trial Job status failed: {k} is not a string"
        )),
    };
    Ok(Some((field("reason")?, field("message")?)))
}

/// `UpdateTrialStatusObservation`: the observation from the observation log, when it holds
/// anything for the objective or the additional metrics.
fn update_observation(state: &State, trial: &Value, status: &mut Status, defects: &TuningTrial) {
    let (ns, name) = (meta_str(trial, "namespace"), meta_str(trial, "name"));
    let objective = str_at(trial, "/spec/objective/objectiveMetricName");
    let mut logs = state.katib_db.observation_log(ns, name, objective);
    for extra in trial
        .pointer("/spec/objective/additionalMetricNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        logs.extend(state.katib_db.observation_log(ns, name, extra));
    }
    if logs.is_empty() {
        return;
    }
    let strategies: Vec<&str> = trial
        .pointer("/spec/objective/metricStrategies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    status.fields.insert(
        "observation".into(),
        observation(&logs, &strategies, defects),
    );
}

/// One metric of an observation as `getMetrics` builds it.
#[derive(Debug, Clone)]
struct Metric {
    name: String,
    min: String,
    max: String,
    latest: String,
    latest_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// `getMetrics`: per metric strategy, `min` and `max` over the values that parse as numbers
/// and `latest` the value of the newest log (a later log wins a tie); "unavailable" for what
/// was never logged. Metrics in strategy order (upstream's order is a Go map's: random).
fn observation(logs: &[MetricLog], strategies: &[&str], defects: &TuningTrial) -> Value {
    let mut metrics: Vec<Metric> = Vec::new();
    for name in strategies {
        if !metrics.iter().any(|m| m.name == *name) {
            metrics.push(Metric {
                name: name.to_string(),
                min: UNAVAILABLE.into(),
                max: UNAVAILABLE.into(),
                latest: UNAVAILABLE.into(),
                latest_time: None,
            });
        }
    }
    for log in logs {
        let Some(m) = metrics.iter_mut().find(|m| m.name == log.name) else {
            continue;
        };
        if let Ok(v) = log.value.parse::<f64>() {
            if m.min == UNAVAILABLE {
                m.min = log.value.clone();
                m.max = log.value.clone();
            } else {
                let min = m.min.parse::<f64>().unwrap_or(f64::NAN);
                let max = m.max.parse::<f64>().unwrap_or(f64::NAN);
                if v < min {
                    m.min = log.value.clone();
                } else if v > max {
                    m.max = log.value.clone();
                }
            }
        }
        if m.latest_time.is_none_or(|t| t <= log.time) {
            m.latest_time = Some(log.time);
            m.latest = log.value.clone();
        }
    }
    if metrics.is_empty() {
        return json!({});
    }
    let rendered: Vec<Value> = metrics
        .into_iter()
        .map(|m| {
            let latest = defects.observed_latest(m.latest, &m.max);
            // The Metric fields are omitempty.
            let mut o = Map::new();
            for (k, v) in [
                ("name", m.name),
                ("min", m.min),
                ("max", m.max),
                ("latest", latest),
            ] {
                if !v.is_empty() {
                    o.insert(k.into(), json!(v));
                }
            }
            Value::Object(o)
        })
        .collect();
    json!({ "metrics": rendered })
}

/// `IsObservationAvailable`: the objective has a latest value other than "unavailable".
fn observation_available(trial: &Value, status: &Status) -> bool {
    let Some(objective) = trial
        .pointer("/spec/objective")
        .filter(|o| o.is_object())
        .map(|o| str_at(o, "/objectiveMetricName"))
    else {
        return false;
    };
    status
        .fields
        .get("observation")
        .and_then(|o| o.get("metrics"))
        .and_then(Value::as_array)
        .is_some_and(|ms| {
            ms.iter()
                .any(|m| str_at(m, "/name") == objective && str_at(m, "/latest") != UNAVAILABLE)
        })
}

/// `reportUnavailableMetrics`: a Push Trial's objective is logged as unavailable.
fn report_unavailable(state: &mut State, trial: &Value) {
    let (ns, name) = (meta_str(trial, "namespace"), meta_str(trial, "name"));
    let log = MetricLog {
        time: metrics::no_timestamp(),
        name: str_at(trial, "/spec/objective/objectiveMetricName").to_string(),
        value: UNAVAILABLE.to_string(),
    };
    state.katib_db.report(ns, name, vec![log]);
}

/// Whether the Trial's condition of `ctype` is True.
fn is_true(status: &Status, ctype: &str) -> bool {
    find(&status.conditions, ctype).is_some_and(true_condition)
}

/// `IsCompleted`: Succeeded, Failed, Killed, EarlyStopped or MetricsUnavailable.
fn is_completed(status: &Status) -> bool {
    [
        "Succeeded",
        "Failed",
        "Killed",
        "EarlyStopped",
        "MetricsUnavailable",
    ]
    .iter()
    .any(|c| is_true(status, c))
}

/// `MarkTrialStatusSucceeded` / `Failed` / `MetricsUnavailable`: Running turns False (keeping
/// its reason and message), the terminal condition is set, and the completion time.
fn complete(status: &mut Status, ctype: &str, reason: &str, message: &str) {
    if let Some(running) = find(&status.conditions, "Running").cloned() {
        set_condition(
            &mut status.conditions,
            "Running",
            "False",
            str_at(&running, "/reason"),
            str_at(&running, "/message"),
        );
    }
    set_condition(&mut status.conditions, ctype, "True", reason, message);
    status.fields.insert("completionTime".into(), json!(now()));
}

/// The Trial's `setCondition`: nothing changes when status and reason are the same;
/// otherwise the condition is replaced and moves to the end of the list, keeping its
/// lastTransitionTime when only the reason changed.
fn set_condition(conditions: &mut Vec<Value>, ctype: &str, status: &str, reason: &str, msg: &str) {
    let t = now();
    let current = find(conditions, ctype).cloned();
    let mut transition = json!(t);
    if let Some(c) = &current {
        if str_at(c, "/status") == status && str_at(c, "/reason") == reason {
            return;
        }
        if str_at(c, "/status") == status
            && let Some(ltt) = c.get("lastTransitionTime")
        {
            transition = ltt.clone();
        }
    }
    conditions.retain(|c| str_at(c, "/type") != ctype);
    let mut cond = Map::new();
    cond.insert("type".into(), json!(ctype));
    cond.insert("status".into(), json!(status));
    for (k, v) in [("reason", reason), ("message", msg)] {
        if !v.is_empty() {
            cond.insert(k.into(), json!(v));
        }
    }
    cond.insert("lastUpdateTime".into(), json!(t));
    cond.insert("lastTransitionTime".into(), transition);
    conditions.push(Value::Object(cond));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::*;
    use crate::controllers::job::JobController;
    use crate::controllers::status::condition;
    use crate::defects::Defect;
    use crate::katib_db::Output;
    use crate::runtime::Runtime;

    fn cluster(defects: &[Defect]) -> (State, Runtime) {
        let mut s = State::new(10_000);
        for crd in kfconform_core::fixtures::crds() {
            for doc in kfconform_core::fixtures::yaml_documents(crd.text).unwrap() {
                if doc["kind"] == "CustomResourceDefinition" {
                    s.bootstrap("apiextensions.k8s.io", "customresourcedefinitions", doc)
                        .unwrap();
                }
            }
        }
        s.reconcile();
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "ns"}}))
            .unwrap();
        let trials = TrialController::new(TuningTrial::new(defects));
        let rt = Runtime::new(vec![Box::new(JobController), Box::new(trials)]);
        (s, rt)
    }

    fn trial(name: &str, retain: bool) -> Value {
        json!({"apiVersion": TRIAL_API_VERSION, "kind": "Trial",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss",
                          "additionalMetricNames": ["acc"],
                          "metricStrategies": [{"name": "loss", "value": "min"},
                                               {"name": "acc", "value": "min"}]},
            "primaryContainerName": "training",
            "metricsCollector": {"collector": {"kind": "StdOut"}},
            "successCondition": "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#",
            "failureCondition": "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#",
            "retainRun": retain,
            "runSpec": {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "training", "image": "x"}]}}}},
        }})
    }

    fn get(s: &State, name: &str) -> Value {
        s.object(TRIALS.group, TRIALS.plural, "ns", name).unwrap()
    }

    fn reason(t: &Value, ctype: &str) -> (String, String) {
        let c = condition(t, ctype).cloned().unwrap_or(Value::Null);
        (str_at(&c, "/status").into(), str_at(&c, "/reason").into())
    }

    /// Ends the Job's pod as `phase` (the kubelet's part).
    fn finish_pod(s: &mut State, phase: &str) {
        let pod = s
            .objects_of("", "pods")
            .into_iter()
            .find(|p| !deleting(p))
            .unwrap();
        let mut done = pod.clone();
        done["status"] = json!({"phase": phase});
        s.update_object("", "pods", done, true).unwrap();
    }

    fn hand_over(s: &mut State, name: &str, text: &str) {
        let out = Output {
            pod: format!("{name}-pod"),
            pod_labels: BTreeMap::new(),
            container: "training".into(),
            text: text.into(),
        };
        s.katib_db.hand_over("ns", name, out);
    }

    #[test]
    fn a_trial_runs_its_job_and_succeeds_with_its_metrics() {
        let (mut s, mut rt) = cluster(&[]);
        s.create_object(TRIALS.group, TRIALS.plural, trial("t", false))
            .unwrap();
        let t0 = Instant::now();
        assert!(rt.settle_at(&mut s, t0).quiet);
        let t = get(&s, "t");
        assert!(has_finalizer(&t, FINALIZER));
        assert_eq!(
            reason(&t, "Created"),
            ("True".into(), "TrialCreated".into())
        );
        assert_eq!(
            reason(&t, "Running"),
            ("True".into(), "TrialRunning".into())
        );
        assert!(t["status"]["startTime"].is_string());
        let job = s
            .object("batch", "jobs", "ns", "t")
            .expect("the run object");
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "Trial");
        assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);

        // The Job succeeds before anything was collected: the Trial waits, looking each second.
        finish_pod(&mut s, "Succeeded");
        rt.settle_at(&mut s, t0);
        let t = get(&s, "t");
        assert!(crate::controllers::status::is_true(
            &s.object("batch", "jobs", "ns", "t").unwrap(),
            "Complete"
        ));
        assert_eq!(reason(&t, "Running").0, "True", "{t:#}");
        assert!(t["status"].get("observation").is_none());
        assert!(rt.next_due().is_some_and(|d| d <= t0 + METRICS_REQUEUE));

        hand_over(&mut s, "t", "loss=0.5\nloss = 0.25\nacc=0.9\nloss =0.75\n");
        rt.settle_at(&mut s, t0 + METRICS_REQUEUE);
        let t = get(&s, "t");
        let (st, r) = reason(&t, "Succeeded");
        assert_eq!(st, "True");
        assert_eq!(r, "TrialSucceeded. Job reason: CompletionsReached");
        assert_eq!(
            str_at(
                condition(&t, "Succeeded").unwrap_or(&Value::Null),
                "/message"
            ),
            "Trial has succeeded. Job message: Reached expected number of succeeded pods"
        );
        assert_eq!(
            reason(&t, "Running"),
            ("False".into(), "TrialRunning".into())
        );
        assert!(t["status"]["completionTime"].is_string());
        assert_eq!(
            t["status"]["observation"],
            json!({"metrics": [
                {"name": "loss", "min": "0.25", "max": "0.75", "latest": "0.75"},
                {"name": "acc", "min": "0.9", "max": "0.9", "latest": "0.9"},
            ]})
        );
        // Completed without retainRun: the Job goes (foreground: its pods first).
        assert!(s.object("batch", "jobs", "ns", "t").is_none());
        assert!(s.objects_of("", "pods").is_empty());
        let reasons: Vec<String> = s
            .objects_of("", "events")
            .iter()
            .filter(|e| e["source"]["component"] == COMPONENT)
            .map(|e| str_at(e, "/reason").to_string())
            .collect();
        assert_eq!(
            reasons,
            ["JobCreated", "JobRunning", "JobSucceeded", "JobDeleted"]
        );

        // Deleting the Trial removes its logs with the finalizer.
        assert!(s.katib_db.has_logs("ns", "t"));
        s.delete_object(TRIALS.group, TRIALS.plural, "ns", "t")
            .unwrap();
        rt.settle_at(&mut s, t0 + METRICS_REQUEUE);
        assert!(s.object(TRIALS.group, TRIALS.plural, "ns", "t").is_none());
        assert!(!s.katib_db.has_logs("ns", "t"));
    }

    #[test]
    fn failures_unavailable_metrics_and_retained_runs() {
        let (mut s, mut rt) = cluster(&[]);
        s.create_object(TRIALS.group, TRIALS.plural, trial("f", true))
            .unwrap();
        rt.settle(&mut s);
        let mut job = s.object("batch", "jobs", "ns", "f").unwrap();
        job["spec"]["backoffLimit"] = json!(0);
        s.update_object("batch", "jobs", job, false).unwrap();
        finish_pod(&mut s, "Failed");
        rt.settle(&mut s);
        let t = get(&s, "f");
        assert_eq!(
            reason(&t, "Failed"),
            (
                "True".into(),
                "TrialFailed. Job reason: BackoffLimitExceeded".into()
            )
        );
        assert!(
            str_at(&condition(&t, "Failed").cloned().unwrap(), "/message")
                .starts_with("Trial has failed. Job message: ")
        );
        assert!(
            s.object("batch", "jobs", "ns", "f").is_some(),
            "retainRun keeps the Job"
        );

        let (mut s, mut rt) = cluster(&[]);
        s.create_object(TRIALS.group, TRIALS.plural, trial("u", false))
            .unwrap();
        rt.settle(&mut s);
        hand_over(&mut s, "u", "acc=0.9\n");
        finish_pod(&mut s, "Succeeded");
        rt.settle(&mut s);
        let t = get(&s, "u");
        assert_eq!(
            reason(&t, "MetricsUnavailable"),
            (
                "True".into(),
                "MetricsUnavailable. Job reason: CompletionsReached".into()
            )
        );
        assert_eq!(
            t["status"]["observation"]["metrics"][0]["latest"],
            UNAVAILABLE
        );
        assert_eq!(
            t["status"]["observation"]["metrics"][1]["latest"],
            UNAVAILABLE
        );
    }

    #[test]
    fn defects_keep_the_job_and_let_unavailable_succeed() {
        let (mut s, mut rt) = cluster(&[
            Defect::TuningJobNotDeleted,
            Defect::TuningUnavailableSucceeds,
        ]);
        s.create_object(TRIALS.group, TRIALS.plural, trial("d", false))
            .unwrap();
        rt.settle(&mut s);
        hand_over(&mut s, "d", "nothing here\n");
        finish_pod(&mut s, "Succeeded");
        rt.settle(&mut s);
        let t = get(&s, "d");
        assert_eq!(reason(&t, "Succeeded").0, "True", "{t:#}");
        assert_eq!(t["status"]["observation"], json!({}));
        assert!(s.object("batch", "jobs", "ns", "d").is_some());
    }

    #[test]
    fn a_run_spec_must_live_in_the_trials_namespace() {
        let mut t = trial("x", false);
        t["metadata"]["uid"] = json!("u");
        t["spec"]["runSpec"]["metadata"]["namespace"] = json!("other");
        assert!(
            desired_run(&t)
                .unwrap_err()
                .starts_with("cross-namespace owner references")
        );
        t["spec"]["runSpec"]["metadata"]["namespace"] = json!("ns");
        t["spec"]["runSpec"]["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": true}]);
        assert_eq!(
            desired_run(&t).unwrap_err(),
            "Object ns/x is already owned by another Pod controller p"
        );
        t["spec"]["runSpec"]["metadata"]["ownerReferences"] = json!([]);
        let run = desired_run(&t).unwrap();
        assert_eq!(run["metadata"]["ownerReferences"][0]["uid"], "u");
    }

    #[test]
    fn conditions_are_read_with_gjson() {
        let job = json!({"status": {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "m"},
        ]}})
        .to_string();
        let ok = "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#";
        assert_eq!(
            matched_condition(&job, ok),
            Ok(Some(("CompletionsReached".into(), "m".into())))
        );
        let failed = "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#";
        assert_eq!(matched_condition(&job, failed), Ok(None));
        // A single query, a nested path to an object, and matches that are not objects.
        assert!(
            matched_condition(&job, "status.conditions.#(type==\"Complete\")")
                .unwrap()
                .is_some()
        );
        assert!(matched_condition(&job, "status").unwrap().is_some());
        assert_eq!(
            matched_condition(&job, "status.conditions.1.type"),
            Ok(None)
        );
        assert!(matched_condition(&job, "status.conditions.#.type").is_err());
        assert_eq!(matched_condition(&job, ""), Ok(None));
        let pytorch = json!({"status": {"conditions": [
            {"type": "Created", "status": "True"}, {"type": "Succeeded", "status": "True",
             "reason": "PyTorchJobSucceeded"}]}})
        .to_string();
        let ok = "status.conditions.#(type==\"Succeeded\")#|#(status==\"True\")#";
        assert_eq!(
            matched_condition(&pytorch, ok),
            Ok(Some(("PyTorchJobSucceeded".into(), String::new())))
        );
    }

    #[test]
    fn observations_follow_get_metrics() {
        let at = |s: &str| s.parse().unwrap();
        let log = |t: &str, name: &str, value: &str| MetricLog {
            time: at(t),
            name: name.into(),
            value: value.into(),
        };
        let logs = vec![
            log("2026-01-01T00:00:03Z", "loss", "3"),
            log("2026-01-01T00:00:01Z", "loss", "1"),
            log("2026-01-01T00:00:03Z", "loss", "2"),
            log("2026-01-01T00:00:00Z", "loss", "nan?"),
            log("2026-01-01T00:00:00Z", "other", "5"),
        ];
        let clean = TuningTrial::default();
        let obs = observation(&logs, &["loss", "acc"], &clean);
        assert_eq!(
            obs,
            json!({"metrics": [
                {"name": "loss", "min": "1", "max": "3", "latest": "2"},
                {"name": "acc", "min": UNAVAILABLE, "max": UNAVAILABLE, "latest": UNAVAILABLE},
            ]}),
            "a tie on time goes to the later log"
        );
        let max = TuningTrial::new(&[Defect::TuningLatestIsMax]);
        assert_eq!(
            observation(&logs, &["loss"], &max)["metrics"][0]["latest"],
            "3"
        );
        assert_eq!(observation(&logs, &[], &clean), json!({}));
    }

    #[test]
    fn set_condition_moves_changed_conditions_last() {
        let mut c = Vec::new();
        set_condition(&mut c, "Created", "True", "TrialCreated", "a");
        set_condition(&mut c, "Running", "True", "TrialRunning", "b");
        c[0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_condition(&mut c, "Created", "True", "TrialCreated", "other message");
        assert_eq!(c[0]["message"], "a", "same status and reason: unchanged");
        set_condition(&mut c, "Created", "True", "Again", "c");
        assert_eq!(c[1]["type"], "Created");
        assert_eq!(c[1]["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
