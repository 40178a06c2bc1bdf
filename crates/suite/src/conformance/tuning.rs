//! Tuning: Katib v0.19 Experiments (kubeflow.org/v1beta1). Every trial runs the probe image's
//! `kfconform probe trial`, which prints the parameters it received and metric lines whose
//! values are a function of those parameters ([`kfconform_core::trial`]); the tests recompute
//! every expected value from a Trial's `parameterAssignments`, never from what the target
//! reports. Upstream promises no order of trials, grid points or observation metrics, so no
//! test relies on one. Contracts and citations: docs/contracts/tuning.md.
//!
//! Each test runs as a Profile owner (the catalog's `tenant: true`): Katib's metrics collector
//! works only in namespaces labelled `katib.kubeflow.org/metrics-collector-injection=enabled`,
//! which Profile namespaces are. An Experiment is waited for with one watch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde_json::{Value, json};

use super::objects::{
    api_failure, condition, conditions_summary, container_security, create, describe_condition,
    is_true, json_of, on_json, pod_log, pod_security,
};
use super::wait::{Step, wait_for, wait_for_set};
use super::words::{list, quoted};
use super::{ConformanceTest, Failure, TestContext, TestFuture, Violations};
use kfconform_core::trial::{Received, format_value, summary};

/// The tuning tests, by catalog id.
pub const TESTS: &[ConformanceTest] = &[
    ConformanceTest {
        id: "tuning/grid-runs-every-point",
        run: grid_runs_every_point,
    },
    ConformanceTest {
        id: "tuning/optimal-trial",
        run: optimal_trial,
    },
    ConformanceTest {
        id: "tuning/goal-ends-experiment",
        run: goal_ends_experiment,
    },
    ConformanceTest {
        id: "tuning/failed-trials-fail-experiment",
        run: failed_trials_fail_experiment,
    },
    ConformanceTest {
        id: "tuning/parallel-trial-count",
        run: parallel_trial_count,
    },
    ConformanceTest {
        id: "tuning/trial-parameters-substituted",
        run: trial_parameters_substituted,
    },
    ConformanceTest {
        id: "tuning/observation-metrics",
        run: observation_metrics,
    },
    ConformanceTest {
        id: "tuning/metrics-unavailable",
        run: metrics_unavailable,
    },
    ConformanceTest {
        id: "tuning/invalid-experiment-rejected",
        run: invalid_experiment_rejected,
    },
    ConformanceTest {
        id: "tuning/random-within-feasible-space",
        run: random_within_feasible_space,
    },
    ConformanceTest {
        id: "tuning/pytorchjob-trial",
        run: pytorchjob_trial,
    },
];

/// What an Experiment's wait leaves of the test's time (scaled), to read trials, Jobs and logs.
const EVIDENCE_MARGIN: Duration = Duration::from_secs(30);
/// How long a completed Trial's Job may take to be deleted (scaled).
const JOB_REMOVAL: Duration = Duration::from_secs(30);
/// The label Katib puts on an Experiment's Trials.
const EXPERIMENT_LABEL: &str = "katib.kubeflow.org/experiment";
/// Katib's default metrics filter as a custom `metricsFormat` would spell the colon form.
const COLON_FORMAT: &str = r"([\w|-]+)\s*:\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)";
/// Conditions that end a Trial (trials/v1beta1/util.go IsCompleted plus MetricsUnavailable).
const TRIAL_ENDS: &[&str] = &[
    "Succeeded",
    "Failed",
    "MetricsUnavailable",
    "EarlyStopped",
    "Killed",
];

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1beta1", kind),
        plural,
    )
}

/// A Katib kind in the test's namespace, as the workload user sees it.
fn katib(ctx: &TestContext, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.workload_client().clone(),
        &ctx.namespace,
        &resource(kind, plural),
    )
}

fn experiments(ctx: &TestContext) -> Api<DynamicObject> {
    katib(ctx, "Experiment", "experiments")
}

fn trials_api(ctx: &TestContext) -> Api<DynamicObject> {
    katib(ctx, "Trial", "trials")
}

// ---------------------------------------------------------------------------------------------
// Experiments the tests create.

/// A parameter's feasible space.
#[derive(Debug, Clone)]
enum Space {
    Int(i64, i64, Option<i64>),
    Double(f64, f64, Option<f64>),
    Categorical(Vec<&'static str>),
}

/// One search parameter (its trial parameter has the same name).
#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    space: Space,
}

fn int(name: &'static str, min: i64, max: i64, step: Option<i64>) -> Param {
    Param {
        name,
        space: Space::Int(min, max, step),
    }
}

fn double(name: &'static str, min: f64, max: f64, step: Option<f64>) -> Param {
    Param {
        name,
        space: Space::Double(min, max, step),
    }
}

fn categorical(name: &'static str, values: &[&'static str]) -> Param {
    Param {
        name,
        space: Space::Categorical(values.to_vec()),
    }
}

impl Param {
    fn to_json(&self) -> Value {
        let (kind, space) = match &self.space {
            Space::Int(min, max, step) => {
                let mut s = json!({"min": min.to_string(), "max": max.to_string()});
                if let Some(step) = step {
                    s["step"] = json!(step.to_string());
                }
                ("int", s)
            }
            Space::Double(min, max, step) => {
                let mut s = json!({"min": min.to_string(), "max": max.to_string()});
                if let Some(step) = step {
                    s["step"] = json!(step.to_string());
                }
                ("double", s)
            }
            Space::Categorical(values) => ("categorical", json!({ "list": values })),
        };
        json!({"name": self.name, "parameterType": kind, "feasibleSpace": space})
    }

    /// A value in the form the test compares: ints and doubles as numbers, the rest verbatim.
    fn normal(&self, value: &str) -> String {
        match self.space {
            Space::Int(..) | Space::Double(..) => match value.trim().parse::<f64>() {
                Ok(v) => format!("{v:.9}"),
                Err(_) => value.to_string(),
            },
            Space::Categorical(_) => value.to_string(),
        }
    }

    /// Whether `value` lies in the feasible space.
    fn admits(&self, value: &str) -> bool {
        match &self.space {
            Space::Int(min, max, _) => value
                .trim()
                .parse::<i64>()
                .is_ok_and(|v| (*min..=*max).contains(&v)),
            Space::Double(min, max, _) => value
                .trim()
                .parse::<f64>()
                .is_ok_and(|v| v >= *min - 1e-12 && v <= *max + 1e-12),
            Space::Categorical(values) => values.contains(&value),
        }
    }
}

/// The kind of trial workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Job,
    PyTorchJob,
}

/// What a test asks of an Experiment.
#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    algorithm: &'static str,
    /// `minimize` or `maximize`.
    goal_type: &'static str,
    objective: &'static str,
    additional: Vec<&'static str>,
    goal: Option<f64>,
    parallel: Option<u32>,
    max: u32,
    max_failed: Option<u32>,
    params: Vec<Param>,
    /// The metrics the probe prints (by default the objective and the additional ones).
    printed: Option<Vec<&'static str>>,
    /// More `kfconform probe trial` arguments (`--exit 1`, `--timestamps`, `--style colon`).
    probe_flags: Vec<&'static str>,
    /// More `--param name=value` arguments whose value is a trial parameter, with its reference.
    extra_trial_params: Vec<(&'static str, &'static str, &'static str)>,
    metrics_format: Option<&'static str>,
    retain: bool,
    workload: Workload,
}

impl Spec {
    fn new(name: &'static str, params: Vec<Param>) -> Self {
        Spec {
            name,
            algorithm: "grid",
            goal_type: "minimize",
            objective: "loss",
            additional: Vec::new(),
            goal: None,
            parallel: Some(2),
            max: 6,
            max_failed: Some(3),
            params,
            printed: None,
            probe_flags: Vec::new(),
            extra_trial_params: Vec::new(),
            metrics_format: None,
            retain: false,
            workload: Workload::Job,
        }
    }

    fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// `kfconform probe trial` arguments with the trial parameters as placeholders.
    fn probe_args(&self) -> Vec<String> {
        let mut args = vec!["probe".to_string(), "trial".to_string()];
        for p in &self.params {
            args.push("--param".into());
            args.push(format!("{0}=${{trialParameters.{0}}}", p.name));
        }
        for (arg, trial_param, _) in &self.extra_trial_params {
            args.push("--param".into());
            args.push(format!("{arg}=${{trialParameters.{trial_param}}}"));
        }
        let printed = match &self.printed {
            Some(p) => p.clone(),
            None => std::iter::once(self.objective)
                .chain(self.additional.iter().copied())
                .collect(),
        };
        for m in printed {
            args.push("--metric".into());
            args.push(m.to_string());
        }
        args.extend(self.probe_flags.iter().map(|f| f.to_string()));
        args
    }

    fn trial_parameters(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .params
            .iter()
            .map(|p| json!({"name": p.name, "reference": p.name}))
            .collect();
        let mut extra = BTreeSet::new();
        for (_, trial_param, reference) in &self.extra_trial_params {
            if self.param(trial_param).is_none() && extra.insert(*trial_param) {
                out.push(json!({"name": trial_param, "reference": reference}));
            }
        }
        out
    }

    fn container(&self, ctx: &TestContext, name: &str) -> Value {
        json!({
            "name": name,
            "image": ctx.probe_image,
            "command": ["kfconform"],
            "args": self.probe_args(),
            "securityContext": container_security(),
        })
    }

    /// The trial template's `trialSpec` and primary container name.
    fn trial_spec(&self, ctx: &TestContext) -> (Value, &'static str) {
        let pod = |container: Value| {
            json!({
                "metadata": {
                    "labels": ctx.labels(),
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "containers": [container],
                },
            })
        };
        match self.workload {
            Workload::Job => (
                json!({
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {"backoffLimit": 0, "template": pod(self.container(ctx, "trial"))},
                }),
                "trial",
            ),
            Workload::PyTorchJob => (
                json!({
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "spec": {"pytorchReplicaSpecs": {"Master": {
                        "replicas": 1,
                        "restartPolicy": "Never",
                        "template": pod(self.container(ctx, "pytorch")),
                    }}},
                }),
                "pytorch",
            ),
        }
    }

    fn to_json(&self, ctx: &TestContext) -> Value {
        let (trial_spec, primary) = self.trial_spec(ctx);
        let mut objective = json!({"type": self.goal_type, "objectiveMetricName": self.objective});
        if !self.additional.is_empty() {
            objective["additionalMetricNames"] = json!(self.additional);
        }
        if let Some(goal) = self.goal {
            objective["goal"] = json!(goal);
        }
        let mut template = json!({
            "primaryContainerName": primary,
            "trialParameters": self.trial_parameters(),
            "trialSpec": trial_spec,
        });
        if self.retain {
            template["retain"] = json!(true);
        }
        let mut spec = json!({
            "objective": objective,
            "algorithm": {"algorithmName": self.algorithm},
            "maxTrialCount": self.max,
            "parameters": self.params.iter().map(Param::to_json).collect::<Vec<_>>(),
            "trialTemplate": template,
        });
        if let Some(p) = self.parallel {
            spec["parallelTrialCount"] = json!(p);
        }
        if let Some(f) = self.max_failed {
            spec["maxFailedTrialCount"] = json!(f);
        }
        if let Some(format) = self.metrics_format {
            spec["metricsCollectorSpec"] = json!({
                "collector": {"kind": "StdOut"},
                "source": {"filter": {"metricsFormat": [format]}},
            });
        }
        json!({
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": self.name, "namespace": ctx.namespace, "labels": ctx.labels()},
            "spec": spec,
        })
    }

    /// Every grid point, as sorted `(name, normal value)` lists.
    fn grid(&self) -> BTreeSet<Vec<(String, String)>> {
        let mut points: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for p in &self.params {
            let values: Vec<String> = match &p.space {
                Space::Int(min, max, step) => (*min..=*max)
                    .step_by(usize::try_from(step.unwrap_or(1).max(1)).unwrap_or(1))
                    .map(|v| v.to_string())
                    .collect(),
                Space::Double(..) => Vec::new(),
                Space::Categorical(values) => values.iter().map(|v| v.to_string()).collect(),
            };
            points = points
                .into_iter()
                .flat_map(|point| {
                    values.iter().map(move |v| {
                        let mut q = point.clone();
                        q.push((p.name.to_string(), p.normal(v)));
                        q
                    })
                })
                .collect();
        }
        points
            .into_iter()
            .map(|mut p| {
                p.sort();
                p
            })
            .collect()
    }

    /// The objective's value under the default strategy (min when minimizing, max when
    /// maximizing) for an assignment, as the probe prints it.
    fn objective_value(&self, assignment: &[(String, String)]) -> f64 {
        let (min, max, _) = summary(&self.probe_params(assignment), self.objective);
        if self.goal_type == "maximize" {
            max
        } else {
            min
        }
    }

    /// The `--param` pairs the probe receives for an assignment (substituted correctly), which
    /// its values are derived from.
    fn probe_params(&self, assignment: &[(String, String)]) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|p| {
                let v = assignment
                    .iter()
                    .find(|(k, _)| k == p.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (p.name.to_string(), v)
            })
            .collect()
    }

    fn better(&self, a: f64, b: f64) -> bool {
        if self.goal_type == "maximize" {
            a > b
        } else {
            a < b
        }
    }
}

/// An Experiment as it ended, with its Trials.
struct Ran {
    experiment: Value,
    trials: Vec<Value>,
}

/// Creates the Experiment of `spec` and waits for it to end (Succeeded or Failed True), then
/// lists its Trials. An Experiment that never ends is a failure naming its conditions.
async fn run_experiment(ctx: &TestContext, spec: &Spec) -> Result<Ran, Failure> {
    let api = experiments(ctx);
    create(
        &api,
        &format!("Experiment {}", spec.name),
        spec.to_json(ctx),
    )
    .await?;
    let window = ctx.leaving(EVIDENCE_MARGIN);
    let waited = wait_for(
        &api,
        spec.name,
        window,
        on_json(|v| {
            if is_true(v, "Succeeded") || is_true(v, "Failed") {
                Step::Done(())
            } else {
                Step::Wait
            }
        }),
    )
    .await?;
    let experiment = json_of(waited.last);
    let trials = trials_of(ctx, spec.name).await?;
    ctx.evidence
        .record(format!("experiment-{}", spec.name), experiment.clone());
    if waited.done.is_none() {
        return Err(Failure::Failed(format!(
            "Experiment {} did not end within {}: {}, {} Trial(s)",
            spec.name,
            super::secs(window),
            conditions_summary(&experiment),
            trials.len()
        )));
    }
    Ok(Ran { experiment, trials })
}

async fn trials_of(ctx: &TestContext, experiment: &str) -> Result<Vec<Value>, Failure> {
    let lp = ListParams::default().labels(&format!("{EXPERIMENT_LABEL}={experiment}"));
    let list = trials_api(ctx)
        .list(&lp)
        .await
        .map_err(|e| api_failure(&format!("listing the Trials of {experiment}"), e))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect())
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A Trial's `spec.parameterAssignments` as `(name, value)` pairs.
fn assignment(trial: &Value) -> Vec<(String, String)> {
    trial
        .pointer("/spec/parameterAssignments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("name"), s("value"))
        })
        .collect()
}

/// An assignment in the form grid points are compared in.
fn normal_point(spec: &Spec, a: &[(String, String)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = a
        .iter()
        .map(|(k, v)| {
            let v = spec.param(k).map_or_else(|| v.clone(), |p| p.normal(v));
            (k.clone(), v)
        })
        .collect();
    p.sort();
    p
}

fn point_words(p: &[(String, String)]) -> String {
    let items: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("({})", items.join(", "))
}

fn count(v: &Value, field: &str) -> i64 {
    v.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn names_at(v: &Value, field: &str) -> BTreeSet<String> {
    v.pointer(&format!("/status/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A Trial's observed `(min, max, latest)` of `metric`, as reported.
fn observed(trial: &Value, metric: &str) -> Option<(String, String, String)> {
    trial
        .pointer("/status/observation/metrics")
        .and_then(Value::as_array)?
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(metric))
        .map(|m| {
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("min"), s("max"), s("latest"))
        })
}

/// Runs the Experiment to its end; the violations start with its not having succeeded by
/// reaching maxTrialCount.
async fn run_to_max_trials(ctx: &TestContext, spec: &Spec) -> Result<(Ran, Violations), Failure> {
    let ran = run_experiment(ctx, spec).await?;
    let mut v = Violations::default();
    expect_reason(
        &mut v,
        "the Experiment",
        &ran.experiment,
        "Succeeded",
        "ExperimentMaxTrialsReached",
    );
    Ok((ran, v))
}

/// Checks that `ctype` is True with `reason` on `obj`, else notes what it was.
///
/// Katib's Trial controller appends the Job's own reason (`MetricsUnavailable. Job reason:
/// CompletionsReached`, trial_controller_util.go UpdateTrialStatusCondition), so a reason
/// followed by `. Job reason: ...` counts as that reason.
fn expect_reason(v: &mut Violations, what: &str, obj: &Value, ctype: &str, reason: &str) {
    let ok = condition(obj, ctype).is_some_and(|c| {
        let got = c.get("reason").and_then(Value::as_str).unwrap_or("");
        c.get("status").and_then(Value::as_str) == Some("True")
            && (got == reason
                || got
                    .strip_prefix(reason)
                    .is_some_and(|rest| rest.starts_with(". Job reason: ")))
    });
    if !ok {
        v.push(format!(
            "{what} should carry {ctype}=True with reason {reason}, but has {}",
            describe_condition(obj, ctype)
        ));
    }
}

fn controlled_by(obj: &Value, kind: &str, owner: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| {
            r.get("controller").and_then(Value::as_bool) == Some(true)
                && r.get("kind").and_then(Value::as_str) == Some(kind)
                && r.get("uid") == owner.pointer("/metadata/uid")
        })
}

// ---------------------------------------------------------------------------------------------
// The tests.

fn grid_spec(name: &'static str) -> Spec {
    Spec::new(
        name,
        vec![int("x", 1, 3, Some(1)), categorical("opt", &["a", "b"])],
    )
}

/// Six grid points from two categorical parameters, whose values the test knows verbatim.
fn categorical_grid(name: &'static str) -> Spec {
    Spec::new(
        name,
        vec![
            categorical("a", &["p", "q", "r"]),
            categorical("b", &["s", "t"]),
        ],
    )
}

fn grid_runs_every_point(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let spec = grid_spec("grid");
        let (ran, mut v) = run_to_max_trials(&ctx, &spec).await?;
        let exp = &ran.experiment;
        expect_reason(
            &mut v,
            "the Experiment",
            exp,
            "Created",
            "ExperimentCreated",
        );
        if is_true(exp, "Failed") {
            v.push(format!(
                "the Experiment carries {}",
                describe_condition(exp, "Failed")
            ));
        }
        if condition(exp, "Running").and_then(|c| c.get("status")) != Some(&json!("False")) {
            v.push(format!(
                "a completed Experiment should carry Running=False, but has {}",
                describe_condition(exp, "Running")
            ));
        }
        check_grid_trials(&mut v, &spec, &ran);
        check_suggestion(&ctx, &mut v, &ran).await?;
        check_jobs_removed(&ctx, &mut v, &ran.trials).await?;
        v.into_outcome()
    })
}

/// The Trials are the grid's points, once each, owned and counted as they should be.
fn check_grid_trials(v: &mut Violations, spec: &Spec, ran: &Ran) {
    let exp = &ran.experiment;
    if ran.trials.len() != 6 {
        v.push(format!(
            "the Experiment should have 6 Trials, one per grid point, but has {}",
            ran.trials.len()
        ));
    }
    let mut seen: BTreeMap<Vec<(String, String)>, usize> = BTreeMap::new();
    for t in &ran.trials {
        *seen.entry(normal_point(spec, &assignment(t))).or_default() += 1;
        if !controlled_by(t, "Experiment", exp) {
            v.push(format!(
                "Trial {} is not controller-owned by the Experiment",
                name_of(t)
            ));
        }
        if !name_of(t).starts_with(&format!("{}-", spec.name)) {
            v.push(format!(
                "Trial {} is not named after its Experiment",
                quoted(name_of(t))
            ));
        }
    }
    for (point, n) in &seen {
        if *n > 1 {
            v.push(format!("grid point {} ran {n} times", point_words(point)));
        }
        if !spec.grid().contains(point) {
            v.push(format!(
                "grid point {} is not in the grid",
                point_words(point)
            ));
        }
    }
    let missing: Vec<String> = spec
        .grid()
        .iter()
        .filter(|p| !seen.contains_key(*p))
        .map(|p| point_words(p))
        .collect();
    if !missing.is_empty() {
        v.push(format!("grid points never run: {}", list(missing)));
    }
    for (field, want) in [("trials", 6), ("trialsSucceeded", 6)] {
        if count(exp, field) != want {
            v.push(format!(
                "status.{field} should be {want}, but is {}",
                count(exp, field)
            ));
        }
    }
    let names: BTreeSet<String> = ran.trials.iter().map(|t| name_of(t).to_string()).collect();
    let listed = names_at(exp, "succeededTrialList");
    if listed != names {
        v.push(format!(
            "status.succeededTrialList names {} instead of the Trials {}",
            list(&listed),
            list(&names)
        ));
    }
}

/// The Suggestion named after the Experiment, owned by it, covers every Trial.
async fn check_suggestion(ctx: &TestContext, v: &mut Violations, ran: &Ran) -> Result<(), Failure> {
    let name = name_of(&ran.experiment).to_string();
    let api = katib(ctx, "Suggestion", "suggestions");
    let suggestion = match api.get_opt(&name).await {
        Ok(Some(s)) => serde_json::to_value(s).unwrap_or(Value::Null),
        Ok(None) => {
            v.push(format!("no Suggestion named {name} exists"));
            return Ok(());
        }
        Err(e) => return Err(api_failure(&format!("reading Suggestion {name}"), e)),
    };
    if !controlled_by(&suggestion, "Experiment", &ran.experiment) {
        v.push(format!(
            "Suggestion {name} is not controller-owned by its Experiment"
        ));
    }
    let suggested: BTreeSet<String> = suggestion
        .pointer("/status/suggestions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let missing: Vec<&str> = ran
        .trials
        .iter()
        .map(name_of)
        .filter(|n| !suggested.contains(*n))
        .collect();
    if !missing.is_empty() {
        v.push(format!(
            "Suggestion {name}'s status.suggestions lacks the Trials {}",
            list(missing)
        ));
    }
    Ok(())
}

/// Waits until no Job named after one of `trials` is left (retain is not set).
async fn check_jobs_removed(
    ctx: &TestContext,
    v: &mut Violations,
    trials: &[Value],
) -> Result<(), Failure> {
    let names: BTreeSet<String> = trials.iter().map(|t| name_of(t).to_string()).collect();
    let jobs: Api<Job> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
    let waited = wait_for_set(
        &jobs,
        "",
        "the trials' Jobs",
        ctx.window(JOB_REMOVAL),
        |set| {
            if set.keys().any(|k| names.contains(k)) {
                Step::Wait
            } else {
                Step::Done(())
            }
        },
    )
    .await?;
    if waited.done.is_none() {
        let left: Vec<String> = waited
            .last
            .unwrap_or_default()
            .into_keys()
            .filter(|k| names.contains(k))
            .collect();
        v.push(format!(
            "the Jobs of completed Trials are still there after {} although retain is not set: {}",
            super::secs(ctx.scaled(JOB_REMOVAL)),
            list(left)
        ));
    }
    Ok(())
}

fn optimal_trial(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        // Six points whose probe values rank the Trials differently by latest than by min
        // (minimize) and by max (maximize), so an optimum picked by latest is told apart.
        let params = || {
            vec![
                double("lr", 0.01, 0.02, Some(0.01)),
                categorical("opt", &["sgd", "adam", "rmsprop"]),
            ]
        };
        let mut min = Spec::new("optimum-min", params());
        min.additional = vec!["acc"];
        min.parallel = Some(3);
        let mut max = Spec::new("optimum-max", params());
        max.goal_type = "maximize";
        max.objective = "acc";
        max.additional = vec!["loss"];
        max.parallel = Some(3);
        let (a, b) = tokio::join!(run_experiment(&ctx, &min), run_experiment(&ctx, &max));
        let mut v = Violations::default();
        for (spec, ran) in [(&min, a?), (&max, b?)] {
            check_optimum(&mut v, spec, &ran);
        }
        v.into_outcome()
    })
}

/// currentOptimalTrial names a best Trial (ties allowed) and reports its observation.
fn check_optimum(v: &mut Violations, spec: &Spec, ran: &Ran) {
    let what = format!("Experiment {}", spec.name);
    expect_reason(
        v,
        &what,
        &ran.experiment,
        "Succeeded",
        "ExperimentMaxTrialsReached",
    );
    let values: Vec<(&Value, f64)> = ran
        .trials
        .iter()
        .map(|t| (t, spec.objective_value(&assignment(t))))
        .collect();
    let Some(best) = values
        .iter()
        .map(|(_, x)| *x)
        .reduce(|a, b| if spec.better(b, a) { b } else { a })
    else {
        v.push(format!("{what} has no Trials"));
        return;
    };
    let best_names: Vec<&str> = values
        .iter()
        .filter(|(_, x)| (x - best).abs() < 1e-9)
        .map(|(t, _)| name_of(t))
        .collect();
    let cot = ran
        .experiment
        .pointer("/status/currentOptimalTrial")
        .cloned()
        .unwrap_or(Value::Null);
    let named = cot
        .get("bestTrialName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((trial, value)) = values.iter().find(|(t, _)| name_of(t) == named) else {
        v.push(format!(
            "{what}'s currentOptimalTrial names {}, not one of its Trials (best: {})",
            quoted(named),
            list(&best_names)
        ));
        return;
    };
    if !best_names.contains(&named) {
        v.push(format!(
            "{what}'s currentOptimalTrial is {named} with {} {} {}, but the best under {} is {} ({})",
            spec.objective,
            strategy_word(spec),
            format_value(*value),
            spec.goal_type,
            format_value(best),
            list(&best_names)
        ));
    }
    let cot_point: Vec<(String, String)> = assignment(&json!({"spec": cot}));
    if normal_point(spec, &cot_point) != normal_point(spec, &assignment(trial)) {
        v.push(format!(
            "{what}'s currentOptimalTrial.parameterAssignments {} differ from Trial {named}'s {}",
            point_words(&cot_point),
            point_words(&assignment(trial))
        ));
    }
    let reported = observed(&json!({"status": cot}), spec.objective);
    if reported != observed(trial, spec.objective) {
        v.push(format!(
            "{what}'s currentOptimalTrial reports {} {} where Trial {named} reports {}",
            spec.objective,
            triple_words(reported.as_ref()),
            triple_words(observed(trial, spec.objective).as_ref())
        ));
    }
}

fn strategy_word(spec: &Spec) -> &'static str {
    if spec.goal_type == "maximize" {
        "max"
    } else {
        "min"
    }
}

fn triple_words(t: Option<&(String, String, String)>) -> String {
    match t {
        Some((min, max, latest)) => format!("min {min}, max {max}, latest {latest}"),
        None => "nothing".into(),
    }
}

fn goal_ends_experiment(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = categorical_grid("goal");
        spec.goal_type = "maximize";
        spec.objective = "acc";
        spec.parallel = Some(1);
        // Plain `acc=value` lines: this test is about the goal, not the parsing.
        spec.probe_flags = vec!["--style", "plain"];
        let mut values: Vec<f64> = spec
            .grid()
            .iter()
            .map(|p| spec.objective_value(p))
            .collect();
        values.sort_by(|a, b| b.total_cmp(a));
        // Three of the six points reach it.
        let goal = (values[2] + values[3]) / 2.0;
        spec.goal = Some(goal);
        let ran = run_experiment(&ctx, &spec).await?;
        let exp = &ran.experiment;
        let mut v = Violations::default();
        expect_reason(
            &mut v,
            "the Experiment",
            exp,
            "Succeeded",
            "ExperimentGoalReached",
        );
        if count(exp, "trials") >= 6 {
            v.push(format!(
                "the Experiment ran all {} Trials although three of six points reach the goal {goal:.4} and one Trial runs at a time",
                count(exp, "trials")
            ));
        }
        let reaching: Vec<&str> = ran
            .trials
            .iter()
            .filter(|t| spec.objective_value(&assignment(t)) >= goal)
            .map(name_of)
            .collect();
        if reaching.len() != 1 {
            v.push(format!(
                "exactly one Trial should reach the goal {goal:.4} before the Experiment ends, but {} did: {}",
                reaching.len(),
                list(&reaching)
            ));
        }
        let best = exp
            .pointer("/status/currentOptimalTrial/bestTrialName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !reaching.contains(&best) {
            v.push(format!(
                "currentOptimalTrial names {}, not the Trial that reached the goal ({})",
                quoted(best),
                list(&reaching)
            ));
        }
        v.into_outcome()
    })
}

fn failed_trials_fail_experiment(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = categorical_grid("failing");
        spec.parallel = Some(1);
        spec.max_failed = Some(2);
        spec.probe_flags = vec!["--exit", "1"];
        let ran = run_experiment(&ctx, &spec).await?;
        let exp = &ran.experiment;
        let mut v = Violations::default();
        expect_reason(&mut v, "the Experiment", exp, "Failed", "ExperimentFailed");
        if is_true(exp, "Succeeded") {
            v.push(format!(
                "the Experiment carries {}",
                describe_condition(exp, "Succeeded")
            ));
        }
        for (field, want) in [("trials", 2), ("trialsFailed", 2)] {
            if count(exp, field) != want {
                v.push(format!(
                    "status.{field} should be {want} (maxFailedTrialCount 2, one Trial at a time), but is {}",
                    count(exp, field)
                ));
            }
        }
        let names: BTreeSet<String> = ran.trials.iter().map(|t| name_of(t).to_string()).collect();
        if names_at(exp, "failedTrialList") != names || names.len() != 2 {
            v.push(format!(
                "status.failedTrialList names {}, the Experiment's Trials are {}",
                list(names_at(exp, "failedTrialList")),
                list(&names)
            ));
        }
        for t in &ran.trials {
            let reason = condition(t, "Failed")
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .and_then(|c| c.get("reason").and_then(Value::as_str));
            if !reason.is_some_and(|r| r.starts_with("TrialFailed")) {
                v.push(format!(
                    "Trial {} should carry Failed=True with a reason starting with TrialFailed, but has {}",
                    name_of(t),
                    describe_condition(t, "Failed")
                ));
            }
        }
        v.into_outcome()
    })
}

fn trial_ended(t: &DynamicObject) -> bool {
    let v = serde_json::to_value(t).unwrap_or(Value::Null);
    TRIAL_ENDS.iter().any(|c| is_true(&v, c))
}

fn parallel_trial_count(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let spec = categorical_grid("parallel");
        let api = trials_api(&ctx);
        let selector = format!("{EXPERIMENT_LABEL}={}", spec.name);
        let mut most_active = 0usize;
        let mut most_trials = 0usize;
        let watch = wait_for_set(
            &api,
            &selector,
            "the Experiment's Trials",
            ctx.leaving(EVIDENCE_MARGIN),
            |set| {
                let active = set.values().filter(|t| !trial_ended(t)).count();
                most_active = most_active.max(active);
                most_trials = most_trials.max(set.len());
                if set.len() >= 6 && active == 0 {
                    Step::Done(())
                } else {
                    Step::Wait
                }
            },
        );
        let create_it = async {
            create(
                &experiments(&ctx),
                "Experiment parallel",
                spec.to_json(&ctx),
            )
            .await
        };
        // A refused create ends the test at once instead of leaving the watch to time out.
        let (watched, _) = tokio::try_join!(watch, create_it)?;
        let mut v = Violations::default();
        if watched.done.is_none() {
            v.push(format!(
                "the Experiment's six Trials did not all complete within the test's time ({} seen)",
                watched.last.map_or(0, |s| s.len())
            ));
        }
        if most_active > 2 {
            v.push(format!(
                "{most_active} Trials were active at once although parallelTrialCount is 2"
            ));
        }
        if most_trials > 6 {
            v.push(format!(
                "{most_trials} Trials existed although maxTrialCount is 6"
            ));
        }
        v.into_outcome()
    })
}

fn trial_parameters_substituted(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = Spec::new(
            "substitution",
            vec![
                double("lr", 0.1, 0.2, Some(0.1)),
                int("layers", 2, 3, None),
                categorical("optimizer", &["sgd", "adam"]),
            ],
        );
        spec.max = 3;
        spec.parallel = Some(3);
        spec.retain = true;
        spec.extra_trial_params = vec![
            ("lr-again", "lr", "lr"),
            ("trial", "trialName", "${trialSpec.Name}"),
        ];
        let (ran, mut v) = run_to_max_trials(&ctx, &spec).await?;
        let jobs: Api<Job> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
        for trial in &ran.trials {
            let name = name_of(trial);
            let run_spec = trial
                .pointer("/spec/runSpec")
                .map(Value::to_string)
                .unwrap_or_default();
            if run_spec.contains("${trialParameters.") {
                v.push(format!(
                    "Trial {name}'s runSpec still holds a ${{trialParameters...}} placeholder"
                ));
            }
            let job = match jobs.get_opt(name).await {
                Ok(Some(job)) => serde_json::to_value(job).unwrap_or(Value::Null),
                Ok(None) => {
                    v.push(format!(
                        "Trial {name}'s Job {name} is gone although retain is set"
                    ));
                    continue;
                }
                Err(e) => return Err(api_failure(&format!("reading Job {name}"), e)),
            };
            if !controlled_by(&job, "Trial", trial) {
                v.push(format!("Job {name} is not controller-owned by its Trial"));
            }
            let want = substituted(&assignment(trial), name);
            match received(&ctx, name).await? {
                Some(got) if got.params == want => {}
                Some(got) => v.push(format!(
                    "Trial {name}'s probe received {} instead of {}",
                    point_words(&got.params),
                    point_words(&want)
                )),
                None => v.push(format!(
                    "no pod of Job {name} logged what its probe received"
                )),
            }
        }
        v.into_outcome()
    })
}

/// The `--param` pairs the substitution test's probe should receive for an assignment.
fn substituted(a: &[(String, String)], trial: &str) -> Vec<(String, String)> {
    let value = |k: &str| {
        a.iter()
            .find(|(n, _)| n == k)
            .map(|(_, x)| x.clone())
            .unwrap_or_default()
    };
    vec![
        ("lr".into(), value("lr")),
        ("layers".into(), value("layers")),
        ("optimizer".into(), value("optimizer")),
        ("lr-again".into(), value("lr")),
        ("trial".into(), trial.to_string()),
    ]
}

/// What the probe of Job `job`'s pod printed it received, from any of its containers' logs
/// (Katib's collector echoes the primary container's output in its own).
async fn received(ctx: &TestContext, job: &str) -> Result<Option<Received>, Failure> {
    let pods: Api<Pod> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let list = pods
        .list(&lp)
        .await
        .map_err(|e| api_failure(&format!("listing the pods of Job {job}"), e))?;
    for pod in &list.items {
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let containers: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| c.name.clone())
            .collect();
        for container in containers {
            if let Ok(log) = pod_log(ctx, name, &container).await {
                ctx.evidence.record(
                    format!("log-{name}-{container}"),
                    json!({"pod": name, "container": container, "lines": log.lines().collect::<Vec<_>>()}),
                );
                if let Some(r) = Received::from_log(&log) {
                    return Ok(Some(r));
                }
            }
        }
    }
    Ok(None)
}

fn observation_metrics(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let params = || vec![int("x", 1, 3, None)];
        let mut stamped = Spec::new("observed", params());
        stamped.additional = vec!["acc"];
        stamped.max = 3;
        stamped.parallel = Some(3);
        stamped.probe_flags = vec!["--timestamps"];
        let mut colon = stamped.clone();
        colon.name = "observed-format";
        colon.probe_flags = vec!["--style", "colon"];
        colon.metrics_format = Some(COLON_FORMAT);
        let (a, b) = tokio::join!(run_experiment(&ctx, &stamped), run_experiment(&ctx, &colon));
        let mut v = Violations::default();
        for (spec, ran) in [(&stamped, a?), (&colon, b?)] {
            for trial in &ran.trials {
                check_observation(&mut v, spec, trial);
            }
            if ran.trials.is_empty() {
                v.push(format!("Experiment {} has no Trials", spec.name));
            }
        }
        v.into_outcome()
    })
}

/// A Succeeded Trial's observation is min, max and latest of what its probe printed.
fn check_observation(v: &mut Violations, spec: &Spec, trial: &Value) {
    let name = name_of(trial);
    if !is_true(trial, "Succeeded") {
        v.push(format!(
            "Trial {name} did not succeed: {}",
            conditions_summary(trial)
        ));
        return;
    }
    let params = spec.probe_params(&assignment(trial));
    for metric in std::iter::once(spec.objective).chain(spec.additional.iter().copied()) {
        let (min, max, latest) = summary(&params, metric);
        let want = (format_value(min), format_value(max), format_value(latest));
        let got = observed(trial, metric);
        let same = got.as_ref().is_some_and(|(a, b, c)| {
            [(a, &want.0), (b, &want.1), (c, &want.2)]
                .iter()
                .all(|(g, w)| matches!((g.parse::<f64>(), w.parse::<f64>()), (Ok(g), Ok(w)) if (g - w).abs() < 1e-9))
        });
        if !same {
            v.push(format!(
                "Trial {name} of {} observed {metric} as {}, but its probe printed min {}, max {}, latest {}",
                spec.name,
                triple_words(got.as_ref()),
                want.0,
                want.1,
                want.2
            ));
        }
    }
}

fn metrics_unavailable(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = Spec::new("unavailable", vec![categorical("a", &["p"])]);
        spec.additional = vec!["acc"];
        spec.printed = Some(vec!["acc"]);
        spec.max = 1;
        spec.parallel = Some(1);
        spec.max_failed = Some(1);
        let ran = run_experiment(&ctx, &spec).await?;
        let exp = &ran.experiment;
        let mut v = Violations::default();
        let [trial] = ran.trials.as_slice() else {
            return Err(Failure::Failed(format!(
                "the Experiment (maxTrialCount 1) has {} Trials",
                ran.trials.len()
            )));
        };
        expect_reason(
            &mut v,
            &format!("Trial {}", name_of(trial)),
            trial,
            "MetricsUnavailable",
            "MetricsUnavailable",
        );
        if is_true(trial, "Succeeded") {
            v.push(format!(
                "Trial {} never printed its objective but carries {}",
                name_of(trial),
                describe_condition(trial, "Succeeded")
            ));
        }
        let latest = observed(trial, "loss").map(|(_, _, l)| l);
        if latest.as_deref() != Some("unavailable") {
            v.push(format!(
                "Trial {}'s observation should report loss's latest as unavailable, but reports {}",
                name_of(trial),
                super::words::or_unset(latest.as_deref())
            ));
        }
        if count(exp, "trialMetricsUnavailable") != 1 {
            v.push(format!(
                "status.trialMetricsUnavailable should be 1, but is {}",
                count(exp, "trialMetricsUnavailable")
            ));
        }
        expect_reason(&mut v, "the Experiment", exp, "Failed", "ExperimentFailed");
        v.into_outcome()
    })
}

type Variant = (&'static str, fn(&mut Value));

/// Katib's default success and failure conditions of a batch Job trial
/// (pkg/apis/controller/experiments/v1beta1/experiment_defaults.go).
const JOB_SUCCEEDED: &str = r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#;
const JOB_FAILED: &str = r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#;

/// The invalid variants of a valid Experiment, each breaking one validation rule.
const INVALID: &[Variant] = &[
    (
        "maxTrialCount 2 without parallelTrialCount (defaulted to 3)",
        |e| {
            e["spec"]["maxTrialCount"] = json!(2);
            e["spec"]["maxFailedTrialCount"] = json!(1);
            if let Some(s) = e["spec"].as_object_mut() {
                s.remove("parallelTrialCount");
            }
        },
    ),
    ("maxFailedTrialCount above maxTrialCount", |e| {
        e["spec"]["maxFailedTrialCount"] = json!(7);
    }),
    ("an unknown algorithm", |e| {
        e["spec"]["algorithm"]["algorithmName"] = json!("no-such-algorithm");
    }),
    ("an int parameter without max", |e| {
        if let Some(s) = e["spec"]["parameters"][0]["feasibleSpace"].as_object_mut() {
            s.remove("max");
        }
    }),
    ("a trial parameter the template never references", |e| {
        if let Some(list) = e["spec"]["trialTemplate"]["trialParameters"].as_array_mut() {
            list.push(json!({"name": "unused", "reference": "x"}));
        }
    }),
    ("a trial template that sets metadata.name", |e| {
        e["spec"]["trialTemplate"]["trialSpec"]["metadata"] = json!({"name": "fixed"});
    }),
];

fn invalid_experiment_rejected(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let api = experiments(&ctx);
        let mut valid = grid_spec("admission").to_json(&ctx);
        // What Katib's defaulter would add, set explicitly (experiment_defaults.go), so that a
        // validator running before the defaulter refuses only the variant that relies on a
        // default.
        valid["spec"]["trialTemplate"]["successCondition"] = json!(JOB_SUCCEEDED);
        valid["spec"]["trialTemplate"]["failureCondition"] = json!(JOB_FAILED);
        valid["spec"]["metricsCollectorSpec"] = json!({"collector": {"kind": "StdOut"}});
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let attempt = |obj: Value| {
            let api = api.clone();
            let dry = dry.clone();
            async move {
                let o: DynamicObject = serde_json::from_value(obj)
                    .map_err(|e| Failure::Error(format!("building the Experiment: {e}")))?;
                Ok::<_, Failure>(api.create(&dry, &o).await)
            }
        };
        if let Err(e) = attempt(valid.clone()).await? {
            return Err(api_failure(
                "a dry-run create of a valid grid Experiment",
                e,
            ));
        }
        let mut v = Violations::default();
        for (what, break_it) in INVALID {
            let mut obj = valid.clone();
            break_it(&mut obj);
            match attempt(obj).await? {
                Ok(_) => v.push(format!("an Experiment with {what} was accepted")),
                Err(kube::Error::Api(s)) if (400..500).contains(&s.code) && s.code != 429 => {}
                Err(e) => {
                    return Err(super::harness(
                        &format!("creating an Experiment with {what}"),
                        e,
                    ));
                }
            }
        }
        v.into_outcome()
    })
}

fn random_within_feasible_space(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = Spec::new(
            "random",
            vec![
                double("lr", 0.01, 0.05, None),
                int("n", 1, 4, None),
                categorical("opt", &["a", "b", "c"]),
            ],
        );
        spec.algorithm = "random";
        spec.parallel = Some(3);
        let (ran, mut v) = run_to_max_trials(&ctx, &spec).await?;
        for trial in &ran.trials {
            let a = assignment(trial);
            for p in &spec.params {
                let values: Vec<&String> = a
                    .iter()
                    .filter(|(k, _)| k == p.name)
                    .map(|(_, x)| x)
                    .collect();
                match values.as_slice() {
                    [x] if p.admits(x) => {}
                    [x] => v.push(format!(
                        "Trial {} assigns {}={} outside its feasible space",
                        name_of(trial),
                        p.name,
                        quoted(x)
                    )),
                    _ => v.push(format!(
                        "Trial {} assigns {} {} times",
                        name_of(trial),
                        p.name,
                        values.len()
                    )),
                }
            }
        }
        v.into_outcome()
    })
}

fn pytorchjob_trial(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut spec = Spec::new("pytorch", vec![categorical("a", &["p"])]);
        spec.max = 1;
        spec.parallel = Some(1);
        spec.max_failed = Some(1);
        spec.workload = Workload::PyTorchJob;
        let (ran, mut v) = run_to_max_trials(&ctx, &spec).await?;
        for trial in &ran.trials {
            check_observation(&mut v, &spec, trial);
        }
        if ran.trials.is_empty() {
            v.push("the Experiment has no Trial");
        }
        v.into_outcome()
    })
}
