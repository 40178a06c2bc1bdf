//! The Katib Experiment (kubeflow.org/v1beta1) controller, after katib v0.19.0
//! `pkg/controller.v1beta1/experiment/`: `experiment_controller.go` (`Reconcile`,
//! `ReconcileExperiment`, `ReconcileTrials`, `createTrials`, `deleteTrials`,
//! `ReconcileSuggestions`), `experiment_controller_util.go` (finalizers,
//! `cleanupSuggestionResources`, `restartSuggestion`), `util/status_util.go`
//! (`updateTrialsSummary`, `getObjectiveMetricValue`, `UpdateExperimentStatusCondition`),
//! `suggestion/suggestion.go` (`GetOrCreateSuggestion`) and
//! `pkg/apis/controller/experiments/v1beta1/util.go` (conditions).
//!
//! The Experiment is read with upstream's defaults applied in memory
//! (`experiment_defaults.go`, `SetDefault`), as the defaulting webhook stores them: for an
//! admitted Experiment this changes nothing, and one stored without the webhook behaves the
//! same. Trials are only read here (their conditions and `status.observation`); the Trial
//! controller runs them. The tuning defects are applied by [`crate::defects::tuning`].

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::super::objects::{
    controller_ref, deleting, has_finalizer, in_namespace, label, remove_finalizer, str_at,
};
use super::super::status::is_true;
use super::algorithms::Assignment;
use super::manifest::{self, EXPERIMENT_LABEL};
use super::suggestion::{SUGGESTIONS, SuggestionStatus, TrialAssignment};
use crate::defects::tuning::Tuning;
use crate::events::{Record, record};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str, now};

/// The API group of Katib's kinds.
pub const GROUP: &str = "kubeflow.org";
/// kubeflow.org/v1beta1 Experiments.
pub const EXPERIMENTS: Kind = Kind::new(GROUP, "experiments", "Experiment");
/// kubeflow.org/v1beta1 Trials.
pub const TRIALS: Kind = Kind::new(GROUP, "trials", "Trial");
/// The finalizer the controller keeps on Experiments (`updatePrometheusMetrics`).
pub const FINALIZER: &str = "update-prometheus-metrics";
/// `source.component` of the controller's events.
const COMPONENT: &str = "experiment-controller";
/// `consts.UnavailableMetricValue`.
pub const UNAVAILABLE: &str = "unavailable";

/// A Katib condition (Experiment, Suggestion): `metav1.Time`s as RFC 3339 strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `type`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True` or `False`.
    #[serde(default)]
    pub status: String,
    /// `reason`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// `message`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `lastUpdateTime`.
    #[serde(default)]
    pub last_update_time: Value,
    /// `lastTransitionTime`.
    #[serde(default)]
    pub last_transition_time: Value,
}

/// The condition of `ctype`, if any.
pub(crate) fn get<'a>(conds: &'a [Condition], ctype: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == ctype)
}

/// Whether the condition of `ctype` is True (`hasCondition`).
pub(crate) fn has(conds: &[Condition], ctype: &str) -> bool {
    get(conds, ctype).is_some_and(|c| c.status == "True")
}

/// `removeCondition`.
pub(crate) fn remove(conds: &mut Vec<Condition>, ctype: &str) {
    conds.retain(|c| c.type_ != ctype);
}

/// Katib's `setCondition`: nothing when status and reason hold; else the condition moves to
/// the end, with a new lastUpdateTime and a lastTransitionTime kept while the status holds.
pub(crate) fn set(
    conds: &mut Vec<Condition>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    let current = get(conds, ctype).cloned();
    if let Some(c) = &current
        && c.status == status
        && c.reason == reason
    {
        return;
    }
    let ts = json!(now());
    let transition = match &current {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => ts.clone(),
    };
    remove(conds, ctype);
    conds.push(Condition {
        type_: ctype.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_update_time: ts,
        last_transition_time: transition,
    });
}

/// Deserializes a field so that an explicit `null` is kept (Go writes a zero time as null).
fn keep_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `OptimalTrial`: a struct, so always written (its fields omitted when empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptimalTrial {
    /// `bestTrialName`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub best_trial_name: String,
    /// `parameterAssignments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_assignments: Vec<Value>,
    /// `observation` (`{metrics}`), always written.
    #[serde(default)]
    pub observation: Observation,
}

/// `common.Observation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    /// `metrics[]`: `{name, min, max, latest}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Value>,
}

/// `ExperimentStatus`, in upstream's field order; counts and lists omitted when empty.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ExperimentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Value>,
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub completion_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub current_optimal_trial: OptimalTrial,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub killed_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early_stopped_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_unavailable_trial_list: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_succeeded: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_failed: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_killed: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_pending: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_running: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trials_early_stopped: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trial_metrics_unavailable: i64,
}

impl ExperimentStatus {
    /// The stored object's status (an error when it does not decode, as Go's client's).
    pub fn of(obj: &Value) -> Result<Self, String> {
        match obj.get("status") {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(s) => serde_json::from_value(s.clone()).map_err(|e| e.to_string()),
        }
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    fn completed(&self) -> bool {
        has(&self.conditions, "Succeeded") || has(&self.conditions, "Failed")
    }

    fn succeeded_by(&self, reason: &str) -> bool {
        get(&self.conditions, "Succeeded").is_some_and(|c| c.status == "True" && c.reason == reason)
    }

    /// `MarkExperimentStatusSucceeded`/`Failed`: Running turns False keeping its reason.
    fn mark_done(&mut self, ctype: &str, reason: &str, message: &str) {
        if let Some(c) = get(&self.conditions, "Running").cloned() {
            set(
                &mut self.conditions,
                "Running",
                "False",
                &c.reason,
                &c.message,
            );
        }
        set(&mut self.conditions, ctype, "True", reason, message);
    }

    /// `MarkExperimentStatusRestarting`.
    fn mark_restarting(&mut self) {
        remove(&mut self.conditions, "Succeeded");
        remove(&mut self.conditions, "Failed");
        let msg = "Experiment is restarted";
        set(
            &mut self.conditions,
            "Restarting",
            "True",
            "ExperimentRestarting",
            msg,
        );
    }
}

/// What the controller reads of a (defaulted) Experiment's spec.
#[derive(Debug, Clone)]
struct Spec {
    parallel: i64,
    max_trials: Option<i64>,
    max_failed: Option<i64>,
    resume: String,
    goal: Option<f64>,
    objective_type: String,
}

impl Spec {
    fn of(exp: &Value) -> Self {
        Self {
            parallel: exp
                .pointer("/spec/parallelTrialCount")
                .and_then(Value::as_i64)
                .unwrap_or(3),
            max_trials: exp.pointer("/spec/maxTrialCount").and_then(Value::as_i64),
            max_failed: exp
                .pointer("/spec/maxFailedTrialCount")
                .and_then(Value::as_i64),
            resume: str_at(exp, "/spec/resumePolicy").to_string(),
            goal: exp.pointer("/spec/objective/goal").and_then(Value::as_f64),
            objective_type: str_at(exp, "/spec/objective/type").to_string(),
        }
    }
}

/// `setDefaultObjective`: the objective and every additional metric get the objective
/// type's strategy (min, max, else latest) unless one is listed.
fn default_objective(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let name = o
        .get("objectiveMetricName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let strategy = match o.get("type").and_then(Value::as_str) {
        Some("minimize") => "min",
        Some("maximize") => "max",
        _ => "latest",
    };
    let additional: Vec<String> = o
        .get("additionalMetricNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let strategies = o.entry("metricStrategies").or_insert_with(|| json!([]));
    if !strategies.is_array() {
        *strategies = json!([]);
    }
    let Some(list) = strategies.as_array_mut() else {
        return;
    };
    let named = |list: &Vec<Value>, n: &str| {
        list.iter()
            .any(|s| s.get("name").and_then(Value::as_str) == Some(n))
    };
    let objective_listed = named(list, &name);
    let others: HashSet<String> = list
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| *n != name)
        .map(String::from)
        .collect();
    if !objective_listed {
        list.push(json!({"name": name, "value": strategy}));
    }
    for m in additional {
        if !others.contains(&m) {
            list.push(json!({"name": m, "value": strategy}));
        }
    }
}

/// `setDefaultTrialTemplate`: success and failure conditions (and the primary pod labels of
/// the Kubeflow job kinds) for a trialSpec of a known kind.
fn default_trial_template(tt: &mut Value) {
    let kind = str_at(tt, "/trialSpec/kind").to_string();
    let (success, failure, labels) = match kind.as_str() {
        "Job" => ("Complete", "Failed", None),
        "TrainJob" => (
            "Complete",
            "Failed",
            Some(
                json!({"jobset.sigs.k8s.io/replicatedjob-name": "node", "batch.kubernetes.io/job-completion-index": "0"}),
            ),
        ),
        "TFJob" | "PyTorchJob" | "XGBoostJob" | "MPIJob" => (
            "Succeeded",
            "Failed",
            Some(json!({"training.kubeflow.org/job-role": "master"})),
        ),
        _ => return,
    };
    let Some(t) = tt.as_object_mut() else {
        return;
    };
    let cond = |ty: &str| format!("status.conditions.#(type==\"{ty}\")#|#(status==\"True\")#");
    for (field, ty) in [("successCondition", success), ("failureCondition", failure)] {
        if t.get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            t.insert(field.into(), json!(cond(ty)));
        }
    }
    if let Some(l) = labels
        && t.get("primaryPodLabels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        t.insert("primaryPodLabels".into(), l);
    }
}

/// `setDefaultMetricsCollector`: collector StdOut, and the sources of the file, TensorFlow
/// event and Prometheus collectors.
fn default_metrics_collector(spec: &mut Map<String, Value>) {
    let mc = spec
        .entry("metricsCollectorSpec")
        .or_insert_with(|| json!({}));
    if !mc.is_object() {
        *mc = json!({});
    }
    if mc.get("collector").is_none_or(Value::is_null) {
        mc["collector"] = json!({"kind": "StdOut"});
    }
    let path_default = |mc: &mut Value, kind: &str, path: &str, format: Option<&str>| {
        let fsp = &mut mc["source"]["fileSystemPath"];
        for (k, v) in [
            ("kind", Some(kind)),
            ("path", Some(path)),
            ("format", format),
        ] {
            if let Some(v) = v
                && fsp.get(k).and_then(Value::as_str).is_none_or(str::is_empty)
            {
                fsp[k] = json!(v);
            }
        }
    };
    match str_at(mc, "/collector/kind").to_string().as_str() {
        "File" => path_default(mc, "File", "/var/log/katib/metrics.log", Some("TEXT")),
        "TensorFlowEvent" => path_default(mc, "Directory", "/var/log/katib/tfevent/", None),
        "PrometheusMetric" => {
            let get = &mut mc["source"]["httpGet"];
            if get
                .get("path")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                get["path"] = json!("/metrics");
            }
            let port = get.get("port").cloned().unwrap_or(Value::Null);
            if port.is_null() || port == json!(0) || port == json!("0") {
                get["port"] = json!(8080);
            }
        }
        _ => {}
    }
}

/// The Experiment with `SetDefault` applied in memory.
pub fn defaulted(exp: &Value) -> Value {
    let mut exp = exp.clone();
    let Some(spec) = exp.get_mut("spec").and_then(Value::as_object_mut) else {
        return exp;
    };
    if spec.get("parallelTrialCount").is_none_or(Value::is_null) {
        spec.insert("parallelTrialCount".into(), json!(3));
    }
    if spec
        .get("resumePolicy")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        spec.insert("resumePolicy".into(), json!("Never"));
    }
    if let Some(o) = spec.get_mut("objective").filter(|o| o.is_object()) {
        default_objective(o);
    }
    if let Some(tt) = spec.get_mut("trialTemplate").filter(|t| t.is_object()) {
        default_trial_template(tt);
    }
    default_metrics_collector(spec);
    if let Some(ps) = spec.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in ps.iter_mut().filter(|p| p.is_object()) {
            let fs = &mut p["feasibleSpace"];
            if fs
                .get("distribution")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                fs["distribution"] = json!("uniform");
            }
        }
    }
    exp
}

/// `getObjectiveMetricValue`: the Trial's objective value under `strategy` of its own
/// metricStrategies (`pick` may override it), `unavailable` when there is none.
fn objective_value<'a>(trial: &'a Value, pick: &dyn Fn(&str) -> String) -> &'a str {
    let Some(metrics) = trial
        .pointer("/status/observation/metrics")
        .and_then(Value::as_array)
    else {
        return UNAVAILABLE;
    };
    let name = str_at(trial, "/spec/objective/objectiveMetricName");
    let strategy = trial
        .pointer("/spec/objective/metricStrategies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|s| s.get("value").and_then(Value::as_str))
        .unwrap_or("");
    let strategy = pick(strategy);
    for m in metrics
        .iter()
        .filter(|m| m.get("name").and_then(Value::as_str) == Some(name))
    {
        let field = |f: &str| m.get(f).and_then(Value::as_str).unwrap_or("");
        match strategy.as_str() {
            "min" if field("min") == UNAVAILABLE => return field("latest"),
            "min" => return field("min"),
            "max" if field("max") == UNAVAILABLE => return field("latest"),
            "max" => return field("max"),
            "latest" => return field("latest"),
            _ => {}
        }
    }
    UNAVAILABLE
}

/// `updateTrialsSummary`'s search for the best Trial: its index and whether the goal is
/// reached. A value that does not parse makes its Trial the best (the "latest" rule for
/// string metrics) without touching the best value, as upstream's loop does.
fn best_trial(
    spec: &Spec,
    trials: &[Value],
    pick: &dyn Fn(&str) -> String,
) -> (Option<usize>, bool) {
    let (mut best, mut best_value, mut reached) = (None, 0.0f64, false);
    for (i, t) in trials.iter().enumerate() {
        let text = objective_value(t, pick);
        if text == UNAVAILABLE {
            continue;
        }
        let Ok(v) = text.trim().parse::<f64>() else {
            best = Some(i);
            continue;
        };
        if best.is_none() {
            best_value = v;
            best = Some(i);
        }
        match spec.objective_type.as_str() {
            "minimize" => {
                if v < best_value {
                    (best_value, best) = (v, Some(i));
                }
                reached |= spec.goal.is_some_and(|g| best_value <= g);
            }
            "maximize" => {
                if v > best_value {
                    (best_value, best) = (v, Some(i));
                }
                reached |= spec.goal.is_some_and(|g| best_value >= g);
            }
            _ => {}
        }
    }
    (best, reached)
}

/// The Experiment controller, with the tuning defects it is to exhibit. Reconciles an
/// Experiment when it, one of its Trials or its Suggestion changes.
#[derive(Debug, Default)]
pub struct ExperimentController {
    defects: Tuning,
}

impl ExperimentController {
    /// A controller exhibiting the tuning defects of `defects`.
    pub fn new(defects: Tuning) -> Self {
        Self { defects }
    }
}

impl Reconciler for ExperimentController {
    fn name(&self) -> &'static str {
        "experiment"
    }

    fn owns(&self) -> Kind {
        EXPERIMENTS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(TRIALS, Mapper::ControllerOwner),
            Watch::new(SUGGESTIONS, Mapper::ControllerOwner),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let Some(original) = state.object(GROUP, EXPERIMENTS.plural, &key.namespace, &key.name)
        else {
            return Action::Done;
        };
        match self.sync(state, &original) {
            Ok(action) => action,
            Err(e) => {
                let msg = format!("Failed to reconcile: {e}");
                record(
                    state,
                    Record::warning(COMPONENT, &original, "ReconcileError", msg),
                );
                Action::Retry
            }
        }
    }
}

/// Writes `status` as the object's status when it differs from the stored one.
pub(crate) fn store_status(
    state: &mut State,
    kind: Kind,
    obj: &Value,
    status: Value,
) -> Result<(), String> {
    let (ns, name) = (meta_str(obj, "namespace"), meta_str(obj, "name"));
    let Some(mut current) = state.object(kind.group, kind.plural, ns, name) else {
        return Ok(());
    };
    if current.get("status") == Some(&status) {
        return Ok(());
    }
    current["status"] = status;
    state
        .update_object(kind.group, kind.plural, current, true)
        .map(|_| ())
        .map_err(|e| e.message)
}

/// The Experiment's Trials: those labelled with its name in its namespace.
fn trials_of(state: &State, exp: &Value) -> Vec<Value> {
    let name = meta_str(exp, "name");
    in_namespace(state, GROUP, TRIALS.plural, meta_str(exp, "namespace"))
        .filter(|t| label(t, EXPERIMENT_LABEL) == name)
        .cloned()
        .collect()
}

/// `IsObservationAvailable`: the objective has a `latest` other than unavailable.
fn observation_available(trial: &Value) -> bool {
    let name = str_at(trial, "/spec/objective/objectiveMetricName");
    trial
        .pointer("/status/observation/metrics")
        .and_then(Value::as_array)
        .is_some_and(|ms| {
            ms.iter().any(|m| {
                m.get("name").and_then(Value::as_str) == Some(name)
                    && m.get("latest").and_then(Value::as_str) != Some(UNAVAILABLE)
            })
        })
}

impl ExperimentController {
    /// `Reconcile`: finalizers, the completed Experiment's cleanup and restart, Created on
    /// the first pass, then `ReconcileExperiment`; the status is written when it changed.
    fn sync(&self, state: &mut State, original: &Value) -> Result<Action, String> {
        if update_finalizers(state, original)? {
            return Ok(Action::Done);
        }
        let exp = defaulted(original);
        let spec = Spec::of(&exp);
        let mut status = match ExperimentStatus::of(original) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(name = meta_str(original, "name"), error = %e, "experiment status does not decode");
                return Ok(Action::Done);
            }
        };
        let before = status.clone();
        if status.completed() {
            if matches!(spec.resume.as_str(), "Never" | "FromVolume") {
                cleanup_suggestion(state, &exp, &spec)?;
            }
            let restartable = status.succeeded_by("ExperimentMaxTrialsReached")
                && matches!(spec.resume.as_str(), "LongRunning" | "FromVolume");
            // Upstream's condition, the second clause included: an Experiment without
            // maxTrialCount that completed (goal or failures) with Trials restarts too.
            let restart = (restartable && spec.max_trials.is_some_and(|m| m > status.trials))
                || (spec.max_trials.is_none() && status.trials != 0);
            if restart {
                status.mark_restarting();
                if spec.resume == "FromVolume" {
                    restart_suggestion(state, &exp)?;
                }
            } else if status.trials_running == 0 {
                return Ok(Action::Done);
            }
        }
        if !has(&status.conditions, "Created") {
            status.start_time.get_or_insert_with(|| json!(now()));
            // Upstream sets a zero completionTime, which Go writes as null.
            status.completion_time.get_or_insert(Value::Null);
            set(
                &mut status.conditions,
                "Created",
                "True",
                "ExperimentCreated",
                "Experiment is created",
            );
        } else {
            self.reconcile_experiment(state, &exp, &spec, &mut status)?;
        }
        if status != before {
            store_status(state, EXPERIMENTS, original, status.to_value())?;
        }
        Ok(Action::Done)
    }

    /// `ReconcileExperiment`: the Trials' summary and conditions, then (while not completed)
    /// `ReconcileTrials`.
    fn reconcile_experiment(
        &self,
        state: &mut State,
        exp: &Value,
        spec: &Spec,
        status: &mut ExperimentStatus,
    ) -> Result<(), String> {
        let trials = trials_of(state, exp);
        if !trials.is_empty() {
            let goal = self.update_trials_summary(spec, status, &trials);
            if !status.completed() {
                self.update_condition(spec, status, goal);
            }
        }
        if status.completed() {
            return Ok(());
        }
        self.reconcile_trials(state, exp, spec, status, &trials)
    }

    /// `updateTrialsSummary`: counts and name lists by each Trial's condition, the current
    /// optimal Trial; returns whether the objective goal is reached.
    fn update_trials_summary(
        &self,
        spec: &Spec,
        status: &mut ExperimentStatus,
        trials: &[Value],
    ) -> bool {
        status.trials = 0;
        let lists = [
            &mut status.running_trial_list,
            &mut status.pending_trial_list,
            &mut status.failed_trial_list,
            &mut status.succeeded_trial_list,
            &mut status.killed_trial_list,
            &mut status.early_stopped_trial_list,
            &mut status.metrics_unavailable_trial_list,
        ];
        for l in lists {
            l.clear();
        }
        for t in trials {
            status.trials += 1;
            let name = meta_str(t, "name").to_string();
            let list = if is_true(t, "Killed") {
                &mut status.killed_trial_list
            } else if is_true(t, "Failed") {
                &mut status.failed_trial_list
            } else if is_true(t, "Succeeded") {
                &mut status.succeeded_trial_list
            } else if is_true(t, "EarlyStopped") {
                &mut status.early_stopped_trial_list
            } else if is_true(t, "Running") {
                &mut status.running_trial_list
            } else if is_true(t, "MetricsUnavailable") {
                &mut status.metrics_unavailable_trial_list
            } else {
                &mut status.pending_trial_list
            };
            list.push(name);
        }
        let upstream = |s: &str| s.to_string();
        let reached = best_trial(spec, trials, &upstream).1;
        let chosen = |s: &str| self.defects.optimum_strategy(s).to_string();
        let best = best_trial(spec, trials, &chosen).0;
        let len = |l: &Vec<String>| l.len() as i64;
        status.trials_running = len(&status.running_trial_list);
        status.trials_pending = len(&status.pending_trial_list);
        status.trials_succeeded = len(&status.succeeded_trial_list);
        status.trials_failed = len(&status.failed_trial_list);
        status.trials_killed = len(&status.killed_trial_list);
        status.trials_early_stopped = len(&status.early_stopped_trial_list);
        status.trial_metrics_unavailable = len(&status.metrics_unavailable_trial_list);
        if let Some(t) = best.and_then(|i| trials.get(i)) {
            let array = |ptr: &str| {
                t.pointer(ptr)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            status.current_optimal_trial = OptimalTrial {
                best_trial_name: meta_str(t, "name").to_string(),
                parameter_assignments: array("/spec/parameterAssignments"),
                observation: Observation {
                    metrics: array("/status/observation/metrics"),
                },
            };
        }
        self.defects
            .succeeded_list(&mut status.succeeded_trial_list);
        reached
    }

    /// `UpdateExperimentStatusCondition`, in upstream's order: goal, failures, trial count,
    /// else running.
    fn update_condition(&self, spec: &Spec, status: &mut ExperimentStatus, goal: bool) {
        let completed = status.trials_succeeded
            + status.trials_failed
            + status.trials_killed
            + status.trials_early_stopped
            + status.trial_metrics_unavailable;
        let failed = self
            .defects
            .failed_count(status.trials_failed + status.trial_metrics_unavailable);
        let done = if self.defects.goal_reached(goal) {
            let msg = "Experiment has succeeded because Objective goal has reached";
            status.mark_done("Succeeded", "ExperimentGoalReached", msg);
            true
        } else if spec.max_failed.is_some_and(|m| failed != 0 && failed >= m) {
            let msg = "Experiment has failed because max failed count has reached";
            status.mark_done("Failed", "ExperimentFailed", msg);
            true
        } else if spec.max_trials.is_some_and(|m| completed >= m) {
            let msg = "Experiment has succeeded because max trial count has reached";
            status.mark_done("Succeeded", "ExperimentMaxTrialsReached", msg);
            true
        } else {
            false
        };
        if done {
            status.completion_time = Some(json!(now()));
        }
        // `tuning.running-stays-true` sets Running True again on a completed Experiment.
        if !done || self.defects.keeps_running() {
            set(
                &mut status.conditions,
                "Running",
                "True",
                "ExperimentRunning",
                "Experiment is running",
            );
        }
    }

    /// `ReconcileTrials`: delete the newest Trials past parallelTrialCount, or create enough
    /// to have min(parallel, max − completed) active.
    fn reconcile_trials(
        &self,
        state: &mut State,
        exp: &Value,
        spec: &Spec,
        status: &mut ExperimentStatus,
        trials: &[Value],
    ) -> Result<(), String> {
        let parallel = self.defects.parallel_count(spec.parallel);
        let active = status.trials_pending + status.trials_running;
        // Upstream leaves metrics-unavailable Trials out of this count.
        let completed = status.trials_succeeded
            + status.trials_failed
            + status.trials_killed
            + status.trials_early_stopped;
        if active > parallel {
            return delete_trials(state, exp, trials, active - parallel);
        }
        if active < parallel {
            let required = spec
                .max_trials
                .map_or(parallel, |m| (m - completed).min(parallel));
            let add = (required - active).max(0);
            if add > 0 {
                return self.create_trials(state, exp, status, trials, add);
            }
        }
        Ok(())
    }

    /// `createTrials`: a Trial for each new assignment of the Suggestion; a Trial that
    /// cannot be created is skipped, as upstream logs and continues.
    fn create_trials(
        &self,
        state: &mut State,
        exp: &Value,
        status: &mut ExperimentStatus,
        trials: &[Value],
        add: i64,
    ) -> Result<(), String> {
        let assignments = reconcile_suggestions(state, exp, status, trials, add)?;
        let ns = meta_str(exp, "namespace").to_string();
        for a in assignments {
            let pairs: Assignment = a
                .parameter_assignments
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
            let run = manifest::run_spec(state, exp, (&a.name, &ns), &pairs, &self.defects)?;
            let pa = serde_json::to_value(&a.parameter_assignments).unwrap_or_else(|_| json!([]));
            let labels: Map<String, Value> = a
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let rules = Value::Array(a.early_stopping_rules.clone());
            let trial = manifest::trial(exp, &a.name, &pa, &labels, &rules, run);
            if let Err(e) = state.create_object(GROUP, TRIALS.plural, trial) {
                tracing::debug!(trial = %a.name, error = %e.message, "trial create error");
            }
        }
        Ok(())
    }
}

/// `needUpdateFinalizers`/`updateFinalizers`: the finalizer goes on a live Experiment and
/// comes off a deleted one; returns whether it wrote (the reconcile then ends).
fn update_finalizers(state: &mut State, exp: &Value) -> Result<bool, String> {
    let (deleted, contained) = (deleting(exp), has_finalizer(exp, FINALIZER));
    if deleted && contained {
        return Ok(remove_finalizer(
            state,
            GROUP,
            EXPERIMENTS.plural,
            exp,
            FINALIZER,
        ));
    }
    if deleted || contained {
        return Ok(false);
    }
    let mut updated = exp.clone();
    let meta = &mut updated["metadata"];
    match meta.get_mut("finalizers").and_then(Value::as_array_mut) {
        Some(f) => f.push(json!(FINALIZER)),
        None => meta["finalizers"] = json!([FINALIZER]),
    }
    state
        .update_object(GROUP, EXPERIMENTS.plural, updated, false)
        .map(|_| true)
        .map_err(|e| e.message)
}

/// `ReconcileSuggestions`: creates the Suggestion (nothing to assign yet), or takes its
/// assignments no Trial has and raises `spec.requests` to what the Trials need; a failed
/// Suggestion fails the Experiment.
fn reconcile_suggestions(
    state: &mut State,
    exp: &Value,
    status: &mut ExperimentStatus,
    trials: &[Value],
    add: i64,
) -> Result<Vec<TrialAssignment>, String> {
    let current = trials.len() as i64;
    let early_stopped = trials
        .iter()
        .filter(|t| !observation_available(t) && is_true(t, "EarlyStopped"))
        .count() as i64;
    let requests = current + add - early_stopped;
    let (ns, name) = (meta_str(exp, "namespace"), meta_str(exp, "name"));
    let Some(suggestion) = state.object(GROUP, SUGGESTIONS.plural, ns, name) else {
        create_suggestion(state, exp, requests)?;
        return Ok(Vec::new());
    };
    if is_true(&suggestion, "Failed") {
        status.mark_done("Failed", "ExperimentFailed", "Suggestion has failed");
        return Ok(Vec::new());
    }
    let names: HashSet<&str> = trials.iter().map(|t| meta_str(t, "name")).collect();
    let suggestions = SuggestionStatus::of(&suggestion)?.suggestions;
    let assignments = if suggestions.len() as i64 > current {
        suggestions
            .into_iter()
            .filter(|s| !names.contains(s.name.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    if suggestion
        .pointer("/spec/requests")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        != requests
    {
        let mut updated = suggestion.clone();
        set_requests(&mut updated, requests);
        state
            .update_object(GROUP, SUGGESTIONS.plural, updated, false)
            .map_err(|e| e.message)?;
    }
    Ok(assignments)
}

/// `spec.requests` (omitted at 0, as Go's omitempty writes it).
fn set_requests(suggestion: &mut Value, requests: i64) {
    if let Some(spec) = suggestion.get_mut("spec").and_then(Value::as_object_mut) {
        if requests == 0 {
            spec.remove("requests");
        } else {
            spec.insert("requests".into(), json!(requests));
        }
    }
}

/// `createSuggestion`: named after the Experiment, with its labels and annotations, owned by
/// it.
fn create_suggestion(state: &mut State, exp: &Value, requests: i64) -> Result<(), String> {
    let mut meta = json!({
        "name": meta_str(exp, "name"),
        "namespace": meta_str(exp, "namespace"),
        "ownerReferences": [controller_ref(exp)],
    });
    for field in ["labels", "annotations"] {
        if let Some(m) = exp
            .pointer(&format!("/metadata/{field}"))
            .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        {
            meta[field] = m.clone();
        }
    }
    let mut spec = Map::new();
    if let Some(a) = exp.pointer("/spec/algorithm").filter(|a| !a.is_null()) {
        spec.insert("algorithm".into(), a.clone());
    }
    if let Some(e) = exp.pointer("/spec/earlyStopping").filter(|e| !e.is_null()) {
        spec.insert("earlyStopping".into(), e.clone());
    }
    let mut suggestion = json!({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion",
        "metadata": meta, "spec": spec,
    });
    set_requests(&mut suggestion, requests);
    let resume = str_at(exp, "/spec/resumePolicy");
    if !resume.is_empty() {
        suggestion["spec"]["resumePolicy"] = json!(resume);
    }
    state
        .create_object(GROUP, SUGGESTIONS.plural, suggestion)
        .map(|_| ())
        .map_err(|e| e.message)
}

/// `deleteTrials`: the newest `count` Trials go, and their assignments leave the
/// Suggestion, whose requests and count drop to what remains.
fn delete_trials(
    state: &mut State,
    exp: &Value,
    trials: &[Value],
    count: i64,
) -> Result<(), String> {
    let mut newest: Vec<&Value> = trials.iter().collect();
    newest.sort_by(|a, b| {
        str_at(b, "/metadata/creationTimestamp").cmp(str_at(a, "/metadata/creationTimestamp"))
    });
    let doomed: Vec<&Value> = newest
        .into_iter()
        .take(usize::try_from(count).unwrap_or(0))
        .collect();
    let ns = meta_str(exp, "namespace");
    let mut deleted = Vec::new();
    for t in doomed {
        let name = meta_str(t, "name");
        if !deleting(t) {
            state
                .delete_object(GROUP, TRIALS.plural, ns, name)
                .map_err(|e| e.message)?;
        }
        deleted.push(name.to_string());
    }
    // Upstream polls (up to 60 s) until the Trials are gone, which happens as soon as the
    // Trial controller drops its `clean-metrics-in-db` finalizer; a reconcile here cannot
    // wait, so a Trial that is being deleted counts as gone.
    if deleted.iter().any(|n| {
        state
            .object(GROUP, TRIALS.plural, ns, n)
            .is_some_and(|t| !deleting(&t))
    }) {
        return Err(format!("Unable to delete trials {deleted:?}, error: <nil>"));
    }
    let name = meta_str(exp, "name");
    let suggestion = state
        .object(GROUP, SUGGESTIONS.plural, ns, name)
        .ok_or_else(|| format!("suggestions.kubeflow.org \"{name}\" not found"))?;
    let mut st = SuggestionStatus::of(&suggestion)?;
    st.suggestions.retain(|s| !deleted.contains(&s.name));
    st.suggestion_count = st.suggestions.len() as i64;
    let mut updated = suggestion.clone();
    set_requests(&mut updated, st.suggestion_count);
    let updated = state
        .update_object(GROUP, SUGGESTIONS.plural, updated, false)
        .map_err(|e| e.message)?;
    store_status(state, SUGGESTIONS, &updated, st.to_value())
}

/// `cleanupSuggestionResources`: a completed Experiment's Suggestion is marked Succeeded
/// (its Deployment and Service go; the emulator has none).
fn cleanup_suggestion(state: &mut State, exp: &Value, spec: &Spec) -> Result<(), String> {
    let Some((s, mut st)) = suggestion_of(state, exp)? else {
        return Ok(());
    };
    if st.completed() || st.restarting() {
        return Ok(());
    }
    let msg = if spec.resume == "Never" {
        "Suggestion is succeeded, can't be restarted"
    } else {
        "Suggestion is succeeded, suggestion volume is not deleted, can be restarted"
    };
    st.mark_succeeded("Experiment is succeeded", msg);
    store_status(state, SUGGESTIONS, &s, st.to_value())
}

/// The Experiment's Suggestion (named after it) and its status, if it exists.
fn suggestion_of(state: &State, exp: &Value) -> Result<Option<(Value, SuggestionStatus)>, String> {
    let found = state.object(
        GROUP,
        SUGGESTIONS.plural,
        meta_str(exp, "namespace"),
        meta_str(exp, "name"),
    );
    found
        .map(|s| SuggestionStatus::of(&s).map(|st| (s, st)))
        .transpose()
}

/// `restartSuggestion` (FromVolume): the Suggestion's Running turns False with the restart
/// reason, which also removes its Succeeded condition.
fn restart_suggestion(state: &mut State, exp: &Value) -> Result<(), String> {
    let Some((s, mut st)) = suggestion_of(state, exp)? else {
        return Ok(());
    };
    if st.restarting() {
        return Ok(());
    }
    st.mark_running(
        "False",
        super::suggestion::RESTART_REASON,
        "Suggestion is not running",
    );
    store_status(state, SUGGESTIONS, &s, st.to_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(name: &str, min: &str, latest: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"objective": {"objectiveMetricName": "loss",
                                   "metricStrategies": [{"name": "loss", "value": "min"}]}},
            "status": {"observation": {"metrics": [
                {"name": "loss", "min": min, "max": "9", "latest": latest}]}},
        })
    }

    fn spec(goal: Option<f64>, ty: &str) -> Spec {
        Spec {
            parallel: 3,
            max_trials: None,
            max_failed: None,
            resume: "Never".into(),
            goal,
            objective_type: ty.into(),
        }
    }

    #[test]
    fn defaults_follow_set_default() {
        let exp = json!({"spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc",
                          "additionalMetricNames": ["loss", "f1"],
                          "metricStrategies": [{"name": "f1", "value": "latest"}]},
            "trialTemplate": {"trialSpec": {"kind": "PyTorchJob"}},
            "parameters": [{"name": "lr", "feasibleSpace": {}}],
        }});
        let d = defaulted(&exp);
        assert_eq!(d["spec"]["parallelTrialCount"], 3);
        assert_eq!(d["spec"]["resumePolicy"], "Never");
        assert_eq!(
            d["spec"]["objective"]["metricStrategies"],
            json!([{"name": "f1", "value": "latest"}, {"name": "acc", "value": "max"}, {"name": "loss", "value": "max"}])
        );
        let tt = &d["spec"]["trialTemplate"];
        assert_eq!(
            tt["successCondition"],
            "status.conditions.#(type==\"Succeeded\")#|#(status==\"True\")#"
        );
        assert_eq!(
            tt["primaryPodLabels"]["training.kubeflow.org/job-role"],
            "master"
        );
        assert_eq!(
            d["spec"]["metricsCollectorSpec"],
            json!({"collector": {"kind": "StdOut"}})
        );
        assert_eq!(
            d["spec"]["parameters"][0]["feasibleSpace"]["distribution"],
            "uniform"
        );
    }

    #[test]
    fn the_best_trial_follows_the_strategy_and_the_first_wins_a_tie() {
        let trials = [
            trial("a", "0.5", "0.9"),
            trial("b", "0.2", "0.8"),
            trial("c", "0.2", "0.1"),
        ];
        let upstream = |s: &str| s.to_string();
        assert_eq!(
            best_trial(&spec(None, "minimize"), &trials, &upstream),
            (Some(1), false)
        );
        assert_eq!(
            best_trial(&spec(Some(0.2), "minimize"), &trials, &upstream),
            (Some(1), true)
        );
        assert_eq!(
            best_trial(&spec(Some(0.1), "minimize"), &trials, &upstream),
            (Some(1), false)
        );
        let latest = |_: &str| "latest".to_string();
        assert_eq!(
            best_trial(&spec(None, "minimize"), &trials, &latest).0,
            Some(2)
        );
        // Min unavailable falls back to latest; a trial without observation is skipped.
        let mut t = trial("d", UNAVAILABLE, "0.05");
        assert_eq!(objective_value(&t, &upstream), "0.05");
        t["status"] = json!({});
        assert_eq!(objective_value(&t, &upstream), UNAVAILABLE);
    }

    #[test]
    fn conditions_move_to_the_end_and_keep_their_transition_time() {
        let mut c = Vec::new();
        set(&mut c, "Created", "True", "ExperimentCreated", "m");
        set(&mut c, "Running", "True", "ExperimentRunning", "m");
        c[0].last_transition_time = json!("2020-01-01T00:00:00Z");
        set(&mut c, "Created", "True", "ExperimentCreated", "other");
        assert_eq!(c[0].message, "m", "same status and reason: nothing changes");
        set(&mut c, "Created", "True", "Again", "m2");
        assert_eq!(c[1].type_, "Created");
        assert_eq!(c[1].last_transition_time, "2020-01-01T00:00:00Z");
        let mut s = ExperimentStatus {
            conditions: c,
            ..Default::default()
        };
        s.mark_done("Succeeded", "ExperimentGoalReached", "g");
        let running = get(&s.conditions, "Running").cloned().unwrap_or_default();
        assert_eq!(
            (running.status.as_str(), running.reason.as_str()),
            ("False", "ExperimentRunning")
        );
        assert!(s.completed());
    }

    #[test]
    fn status_omits_zero_counts_and_keeps_the_optimal_trial() {
        let s = ExperimentStatus {
            trials: 2,
            trials_running: 2,
            ..Default::default()
        };
        let v = s.to_value();
        assert_eq!(
            v,
            json!({"currentOptimalTrial": {"observation": {}}, "trials": 2, "trialsRunning": 2})
        );
        let back =
            ExperimentStatus::of(&json!({"status": {"completionTime": null}})).unwrap_or_default();
        assert_eq!(back.to_value()["completionTime"], Value::Null);
        assert!(
            back.to_value()
                .as_object()
                .is_some_and(|o| o.contains_key("completionTime"))
        );
    }
}
