//! The Katib Suggestion (kubeflow.org/v1beta1) controller, after katib v0.19.0
//! `pkg/controller.v1beta1/suggestion/`: `suggestion_controller.go` (`Reconcile`,
//! `ReconcileSuggestion`), `suggestion_controller_status.go` (reasons, status updates),
//! `suggestionclient/suggestionclient.go` (`SyncAssignments`, `ValidateAlgorithmSettings`,
//! `ConvertTrials`) and `pkg/apis/controller/suggestions/v1beta1/util.go` (conditions).
//!
//! Simplification: upstream runs each Suggestion's algorithm as a Deployment and Service
//! (`<suggestion>-<algorithm>`, port 6789) and calls it over gRPC; the emulator runs the
//! algorithms in-process ([`super::algorithms`]), creates no Deployment or Service, and sets
//! `DeploymentReady` True (reason `DeploymentReady`) as soon as a Deployment would be
//! available. An algorithm the emulator does not implement behaves as an algorithm image that
//! never becomes available: `DeploymentReady` stays False. Early stopping is not run (no
//! `earlyStoppingRules` are produced), and no volume is made for `FromVolume`. The
//! algorithm's memory (its study) lives in the controller, keyed by the Suggestion's uid, and
//! is rebuilt from `status.suggestions` when the controller has none.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::objects::{in_namespace, str_at};
use super::algorithms::{self, Assignment, Sampler, Search};
use super::experiment::{
    Condition, EXPERIMENTS, GROUP, TRIALS, UNAVAILABLE, get, has, remove, set, store_status,
};
use super::manifest::trial_labels;
use crate::defects::tuning::Tuning;
use crate::events::{Record, record};
use crate::runtime::{Action, Kind, ObjectKey, Reconciler};
use crate::store::{State, meta_str, now};

/// kubeflow.org/v1beta1 Suggestions.
pub const SUGGESTIONS: Kind = Kind::new(GROUP, "suggestions", "Suggestion");
/// `SuggestionRestartReason`: Running's reason while the Experiment restarts.
pub const RESTART_REASON: &str = "Experiment is restarting";
/// `source.component` of the controller's events.
const COMPONENT: &str = "suggestion-controller";
/// `k8s.io/apimachinery/pkg/util/rand`'s alphabet (no vowels, no confusable digits), which
/// names Trials `<suggestion>-<8 of these>`.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `common.ParameterAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParameterAssignment {
    /// The parameter's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its value, as the algorithm rendered it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// `TrialAssignment`: one suggested Trial.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialAssignment {
    /// `parameterAssignments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_assignments: Vec<ParameterAssignment>,
    /// The name of the Trial it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `earlyStoppingRules`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early_stopping_rules: Vec<Value>,
    /// `labels` for the Trial.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `SuggestionStatus`, in upstream's field order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct SuggestionStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithm_settings: Vec<Value>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suggestion_count: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<TrialAssignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl SuggestionStatus {
    /// The stored object's status (an error when it does not decode, as Go's client's).
    pub fn of(obj: &Value) -> Result<Self, String> {
        match obj.get("status") {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(s) => serde_json::from_value(s.clone()).map_err(|e| e.to_string()),
        }
    }

    /// The status as stored.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// `IsCompleted`: Succeeded or Failed.
    pub fn completed(&self) -> bool {
        has(&self.conditions, "Succeeded") || has(&self.conditions, "Failed")
    }

    /// `IsRestarting`: Running False with the restart reason.
    pub fn restarting(&self) -> bool {
        get(&self.conditions, "Running")
            .is_some_and(|c| c.status == "False" && c.reason == RESTART_REASON)
    }

    /// `MarkSuggestionStatusRunning`: removes Succeeded, then sets Running.
    pub fn mark_running(&mut self, status: &str, reason: &str, message: &str) {
        remove(&mut self.conditions, "Succeeded");
        set(&mut self.conditions, "Running", status, reason, message);
    }

    /// `MarkSuggestionStatusSucceeded`: Running and DeploymentReady turn False.
    pub fn mark_succeeded(&mut self, reason: &str, message: &str) {
        let done = "Suggestion is succeeded";
        if get(&self.conditions, "Running").is_some() {
            set(
                &mut self.conditions,
                "Running",
                "False",
                done,
                "Suggestion is not running",
            );
        }
        if get(&self.conditions, "DeploymentReady").is_some() {
            set(
                &mut self.conditions,
                "DeploymentReady",
                "False",
                done,
                "Deployment is not ready",
            );
        }
        set(&mut self.conditions, "Succeeded", "True", reason, message);
    }

    /// `MarkSuggestionStatusFailed`: Running turns False keeping its reason.
    fn mark_failed(&mut self, reason: &str, message: &str) {
        if let Some(c) = get(&self.conditions, "Running").cloned() {
            set(
                &mut self.conditions,
                "Running",
                "False",
                &c.reason,
                &c.message,
            );
        }
        set(&mut self.conditions, "Failed", "True", reason, message);
    }
}

/// A seed from a uid (FNV-1a), for Suggestions without `random_state`.
fn seed_of(uid: &str) -> u64 {
    uid.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `utilrand.String(8)`.
fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())]))
        .collect()
}

/// What `ConvertExperiment` gives the algorithm service.
fn search_of(experiment: &Value) -> Search {
    let settings = experiment
        .pointer("/spec/algorithm/algorithmSettings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            (
                str_at(s, "/name").to_string(),
                str_at(s, "/value").to_string(),
            )
        })
        .collect();
    Search {
        algorithm: str_at(experiment, "/spec/algorithm/algorithmName").to_string(),
        settings,
        parameters: algorithms::parameters(experiment),
        max_trial_count: experiment
            .pointer("/spec/maxTrialCount")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    }
}

/// A Trial's parameter assignments as (name, value).
fn assignment_of(trial: &Value) -> Assignment {
    trial
        .pointer("/spec/parameterAssignments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            (
                str_at(p, "/name").to_string(),
                str_at(p, "/value").to_string(),
            )
        })
        .collect()
}

/// The Trials the service is told about (`ConvertTrials`, then the services'
/// `Trial.convert`): whose last condition is Succeeded or EarlyStopped, not
/// MetricsUnavailable, with the objective among the observed metrics.
fn told(trial: &Value) -> bool {
    let last = trial
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .map(|c| str_at(c, "/type"))
        .unwrap_or("");
    let objective = str_at(trial, "/spec/objective/objectiveMetricName");
    let metrics = trial
        .pointer("/status/observation/metrics")
        .and_then(Value::as_array);
    let observed = metrics.is_some_and(|ms| ms.iter().any(|m| str_at(m, "/name") == objective));
    let available = metrics.is_some_and(|ms| {
        ms.iter()
            .any(|m| str_at(m, "/name") == objective && str_at(m, "/latest") != UNAVAILABLE)
    });
    let is = |t: &str| super::super::status::is_true(trial, t);
    if is("MetricsUnavailable") || (!available && is("EarlyStopped")) {
        return false;
    }
    matches!(last, "Succeeded" | "EarlyStopped") && observed
}

/// The Suggestion controller, with the tuning defects its algorithms are to exhibit.
#[derive(Debug, Default)]
pub struct SuggestionController {
    defects: Tuning,
    /// Each Suggestion's algorithm state, with the uid it belongs to.
    samplers: HashMap<ObjectKey, (String, Sampler)>,
}

impl SuggestionController {
    /// A controller exhibiting the tuning defects of `defects`.
    pub fn new(defects: Tuning) -> Self {
        Self {
            defects,
            samplers: HashMap::new(),
        }
    }
}

impl Reconciler for SuggestionController {
    fn name(&self) -> &'static str {
        "suggestion"
    }

    fn owns(&self) -> Kind {
        SUGGESTIONS
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let Some(original) = state.object(GROUP, SUGGESTIONS.plural, &key.namespace, &key.name)
        else {
            self.samplers.remove(key);
            return Action::Done;
        };
        let before = match SuggestionStatus::of(&original) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%key, error = %e, "suggestion status does not decode");
                return Action::Done;
            }
        };
        let mut status = before.clone();
        if has(&status.conditions, "Succeeded") {
            // Upstream deletes the algorithm's Deployment here, and with it its memory.
            self.samplers.remove(key);
            return Action::Done;
        }
        if !has(&status.conditions, "Created") {
            status.start_time.get_or_insert_with(|| json!(now()));
            set(
                &mut status.conditions,
                "Created",
                "True",
                "SuggestionCreated",
                "Suggestion is created",
            );
        } else if let Err(e) = self.reconcile_suggestion(state, key, &original, &mut status) {
            record(
                state,
                Record::warning(COMPONENT, &original, "ReconcileError", e),
            );
            // `updateStatusCondition`: only the conditions are kept of a failed pass.
            let conditions = SuggestionStatus {
                conditions: status.conditions,
                ..before.clone()
            };
            if conditions != before {
                let _ = store_status(state, SUGGESTIONS, &original, conditions.to_value());
            }
            return Action::Retry;
        }
        if status == before {
            return Action::Done;
        }
        match store_status(state, SUGGESTIONS, &original, status.to_value()) {
            Ok(()) => Action::Done,
            Err(_) => Action::Retry,
        }
    }
}

impl SuggestionController {
    /// `ReconcileSuggestion`: the (in-process) deployment is ready; the algorithm settings
    /// are validated once, before Running; then the assignments are synced.
    fn reconcile_suggestion(
        &mut self,
        state: &State,
        key: &ObjectKey,
        suggestion: &Value,
        status: &mut SuggestionStatus,
    ) -> Result<(), String> {
        if !algorithms::is_supported(str_at(suggestion, "/spec/algorithm/algorithmName")) {
            set(
                &mut status.conditions,
                "DeploymentReady",
                "False",
                "DeploymentNotReady",
                "Deployment is not ready",
            );
            return Ok(());
        }
        set(
            &mut status.conditions,
            "DeploymentReady",
            "True",
            "DeploymentReady",
            "Deployment is ready",
        );
        let experiment = state
            .object(GROUP, EXPERIMENTS.plural, &key.namespace, &key.name)
            .ok_or_else(|| format!("experiments.kubeflow.org \"{}\" not found", key.name))?;
        // Upstream lists the Trials carrying the Experiment's labels in every namespace; the
        // emulator keeps to the Suggestion's own.
        let labels = trial_labels(&experiment);
        let trials: Vec<Value> = in_namespace(state, GROUP, TRIALS.plural, &key.namespace)
            .filter(|t| {
                labels
                    .iter()
                    .all(|(k, v)| t.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
            .cloned()
            .collect();
        let search = search_of(&experiment);
        if !has(&status.conditions, "Running") {
            if let Err(msg) = algorithms::validate(&search) {
                let msg = format!("Validation failed: ValidateAlgorithmSettings Error: {msg}");
                status.mark_failed("SuggestionFailed", &msg);
                return Ok(());
            }
            status.mark_running("True", "SuggestionRunning", "Suggestion is running");
        }
        self.sync_assignments(key, suggestion, status, &search, &trials)
    }

    /// `SyncAssignments`: asks the algorithm for `requests − suggestionCount` assignments and
    /// appends them, each named for its Trial.
    fn sync_assignments(
        &mut self,
        key: &ObjectKey,
        suggestion: &Value,
        status: &mut SuggestionStatus,
        search: &Search,
        trials: &[Value],
    ) -> Result<(), String> {
        let requests = suggestion
            .pointer("/spec/requests")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let wanted = requests - status.suggestion_count;
        if wanted <= 0 {
            return Ok(());
        }
        let rpc = |e: String| {
            format!("rpc error: code = Unknown desc = Exception calling application: {e}")
        };
        let uid = meta_str(suggestion, "uid").to_string();
        if self.samplers.get(key).is_none_or(|(u, _)| *u != uid) {
            let mut sampler =
                Sampler::new(search, seed_of(&uid), self.defects.clone()).map_err(rpc)?;
            let handed_out: Vec<Assignment> = status
                .suggestions
                .iter()
                .map(|s| {
                    s.parameter_assignments
                        .iter()
                        .map(|p| (p.name.clone(), p.value.clone()))
                        .collect()
                })
                .collect();
            sampler.replay(&handed_out);
            self.samplers.insert(key.clone(), (uid.clone(), sampler));
        }
        let Some((_, sampler)) = self.samplers.get_mut(key) else {
            return Ok(());
        };
        let finished: Vec<Assignment> = trials
            .iter()
            .filter(|t| told(t))
            .map(assignment_of)
            .collect();
        let n = usize::try_from(wanted).unwrap_or(0);
        for a in sampler.suggest(n, &finished).map_err(rpc)? {
            status.suggestions.push(TrialAssignment {
                parameter_assignments: a
                    .into_iter()
                    .map(|(name, value)| ParameterAssignment { name, value })
                    .collect(),
                name: format!("{}-{}", key.name, random_suffix()),
                ..TrialAssignment::default()
            });
        }
        status.suggestion_count = status.suggestions.len() as i64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_names_use_apimachinerys_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 8);
        assert!(s.bytes().all(|b| NAME_ALPHABET.contains(&b)), "{s}");
    }

    #[test]
    fn only_finished_trials_with_the_objective_are_told() {
        let trial = |last: &str, latest: &str| {
            json!({
                "spec": {"objective": {"objectiveMetricName": "loss"}},
                "status": {
                    "conditions": [{"type": "Running", "status": "False"}, {"type": last, "status": "True"}],
                    "observation": {"metrics": [{"name": "loss", "latest": latest}]},
                },
            })
        };
        assert!(told(&trial("Succeeded", "0.1")));
        assert!(!told(&trial("Failed", "0.1")));
        assert!(!told(&trial("MetricsUnavailable", UNAVAILABLE)));
        assert!(!told(&trial("EarlyStopped", UNAVAILABLE)));
    }

    #[test]
    fn succeeded_turns_running_and_deployment_false() {
        let mut s = SuggestionStatus::default();
        set(
            &mut s.conditions,
            "Created",
            "True",
            "SuggestionCreated",
            "Suggestion is created",
        );
        set(
            &mut s.conditions,
            "DeploymentReady",
            "True",
            "DeploymentReady",
            "Deployment is ready",
        );
        s.mark_running("True", "SuggestionRunning", "Suggestion is running");
        s.mark_succeeded(
            "Experiment is succeeded",
            "Suggestion is succeeded, can't be restarted",
        );
        let types: Vec<(&str, &str)> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("Created", "True"),
                ("Running", "False"),
                ("DeploymentReady", "False"),
                ("Succeeded", "True")
            ]
        );
        assert!(s.completed());
        s.mark_running("False", RESTART_REASON, "Suggestion is not running");
        assert!(s.restarting() && !s.completed());
    }
}
