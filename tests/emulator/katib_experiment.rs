//! Katib Experiments end to end against the emulator's Experiment and Suggestion controllers:
//! an Experiment gets its Suggestion and Trials, the test completes the Trials by writing their
//! status (as the Trial controller would) and checks the Experiment's counts, conditions,
//! optimal Trial and completion, and what the tuning defects break.

use crate::util;

use std::collections::HashSet;

use futures::StreamExt as _;
use kfconform_emulator::{Defect, Emulator, EmulatorConfig};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::{Value, json};

/// An image no kubelet pulls: nothing in these tests runs the Trials' Jobs.
const IMAGE: &str = "kfconform.invalid/trial:1";
const EXPERIMENT_LABEL: &str = "katib.kubeflow.org/experiment";
const NS: &str = "default";

fn api(client: &kube::Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kubeflow.org", "v1beta1", kind);
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// The three Katib kinds of one emulator.
struct Katib {
    emu: Emulator,
    experiments: Api<DynamicObject>,
    trials: Api<DynamicObject>,
    suggestions: Api<DynamicObject>,
}

impl Katib {
    async fn start(defects: Vec<Defect>) -> Self {
        let emu = util::emulator_with(EmulatorConfig {
            defects,
            ..EmulatorConfig::default()
        })
        .await;
        let client = util::client(&emu);
        util::enable_katib(&client, NS).await;
        Self {
            experiments: api(&client, "Experiment", "experiments"),
            trials: api(&client, "Trial", "trials"),
            suggestions: api(&client, "Suggestion", "suggestions"),
            emu,
        }
    }

    async fn create(&self, experiment: Value) {
        let obj: DynamicObject = serde_json::from_value(experiment).unwrap();
        self.experiments
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// The object `name` of `api` once `cond` holds for it.
    async fn until(api: &Api<DynamicObject>, name: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let obj = util::wait_for(api, name, |o| cond(&to_value(o))).await;
        to_value(&obj)
    }

    async fn experiment_until(&self, name: &str, cond: impl Fn(&Value) -> bool) -> Value {
        Self::until(&self.experiments, name, cond).await
    }

    /// The Experiment's Trials (by name) once `cond` holds for them; each watch event of the
    /// Trials is a moment to look again.
    async fn trials_until(&self, exp: &str, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let selector = format!("{EXPERIMENT_LABEL}={exp}");
        let lp = ListParams::default().labels(&selector);
        let wc = watcher::Config::default().labels(&selector);
        let mut events = std::pin::pin!(watcher(self.trials.clone(), wc).default_backoff());
        let mut last = Vec::new();
        let look = async {
            loop {
                let items = self.trials.list(&lp).await.unwrap().items;
                last = items.iter().map(to_value).collect::<Vec<_>>();
                if cond(&last) {
                    return last.clone();
                }
                events.next().await;
            }
        };
        match tokio::time::timeout(util::WAIT, look).await {
            Ok(trials) => trials,
            Err(_) => {
                panic!("trials of {exp} did not reach the awaited state; last seen: {last:#?}")
            }
        }
    }

    /// Writes a Trial's status as the Trial controller would on completion (`outcome`:
    /// Succeeded, Failed, ...) or while it runs (`Running`).
    async fn finish(&self, trial: &str, outcome: &str, metrics: Value) {
        let mut conditions =
            vec![json!({"type": "Created", "status": "True", "reason": "TrialCreated"})];
        if outcome == "Running" {
            conditions.push(json!({"type": "Running", "status": "True", "reason": "TrialRunning"}));
        } else {
            conditions
                .push(json!({"type": "Running", "status": "False", "reason": "TrialRunning"}));
            conditions.push(
                json!({"type": outcome, "status": "True", "reason": format!("Trial{outcome}")}),
            );
        }
        let status =
            json!({"status": {"conditions": conditions, "observation": {"metrics": metrics}}});
        self.trials
            .patch_status(trial, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
}

fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap()
}

fn condition<'a>(obj: &'a Value, ctype: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ctype)
}

fn is_true(obj: &Value, ctype: &str) -> bool {
    condition(obj, ctype).is_some_and(|c| c["status"] == "True")
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

fn metric(name: &str, min: &str, max: &str, latest: &str) -> Value {
    json!([{"name": name, "min": min, "max": max, "latest": latest}])
}

/// A trial template: a Job whose container uses each placeholder, `learningRate` twice.
fn job_template() -> Value {
    json!({
        "primaryContainerName": "training",
        "trialParameters": [
            {"name": "learningRate", "reference": "lr"},
            {"name": "optimizer", "reference": "optimizer"},
            {"name": "trialName", "reference": "${trialSpec.Name}"},
        ],
        "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "training", "image": IMAGE,
                "command": ["kfconform", "probe", "trial", "--param",
                            "lr=${trialParameters.learningRate}", "--param",
                            "optimizer=${trialParameters.optimizer}", "--metric", "loss"],
                "env": [{"name": "LR", "value": "${trialParameters.learningRate}"},
                        {"name": "TRIAL", "value": "${trialParameters.trialName}"}],
            }],
        }}}},
    })
}

/// A grid Experiment over lr ∈ {0.01, 0.02, 0.03} × optimizer ∈ {sgd, adam}, minimizing loss.
fn grid_experiment(name: &str, counts: Value) -> Value {
    let mut spec = json!({
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "grid"},
        "parameters": [
            {"name": "lr", "parameterType": "double",
             "feasibleSpace": {"min": "0.01", "max": "0.03", "step": "0.01"}},
            {"name": "optimizer", "parameterType": "categorical",
             "feasibleSpace": {"list": ["sgd", "adam"]}},
        ],
        "trialTemplate": job_template(),
    });
    for (k, v) in counts.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": name, "labels": {"team": "tuning"}},
        "spec": spec,
    })
}

fn active(exp: &Value) -> i64 {
    let n = |k: &str| exp["status"][k].as_i64().unwrap_or(0);
    n("trialsPending") + n("trialsRunning")
}

fn assignment(trial: &Value) -> Vec<(String, String)> {
    trial["spec"]["parameterAssignments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").into(),
                p["value"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

/// Checks what `getTrialInstance` and the generator put into one Trial of `grid_experiment`.
fn check_grid_trial(t: &Value, exp: &Value) {
    let n = name(t);
    let suffix = n.strip_prefix("grid-").unwrap_or_else(|| panic!("{n}"));
    assert_eq!(suffix.len(), 8, "{n}");
    assert!(
        suffix
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{n}"
    );
    let owner = &t["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["uid"], &owner["controller"]),
        (&json!("Experiment"), &exp["metadata"]["uid"], &json!(true))
    );
    assert_eq!(
        t["metadata"]["labels"],
        json!({"team": "tuning", EXPERIMENT_LABEL: "grid"})
    );
    let a = assignment(t);
    assert_eq!(
        a.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["lr", "optimizer"]
    );
    assert!(["0.01", "0.02", "0.03"].contains(&a[0].1.as_str()), "{a:?}");
    assert!(["sgd", "adam"].contains(&a[1].1.as_str()), "{a:?}");
    let spec = &t["spec"];
    assert_eq!(
        spec["objective"]["metricStrategies"],
        json!([{"name": "loss", "value": "min"}])
    );
    assert_eq!(spec["primaryContainerName"], "training");
    assert_eq!(
        spec["successCondition"],
        r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#
    );
    let run = &spec["runSpec"];
    assert_eq!(
        (name(run), run["metadata"]["namespace"].as_str()),
        (n, Some(NS))
    );
    let c = &run["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][4], format!("lr={}", a[0].1));
    assert_eq!(c["command"][6], format!("optimizer={}", a[1].1));
    assert_eq!(
        c["env"],
        json!([{"name": "LR", "value": a[0].1}, {"name": "TRIAL", "value": n}])
    );
}

#[tokio::test]
async fn a_grid_experiment_runs_its_trials_to_max_trial_count() {
    let k = Katib::start(vec![]).await;
    k.create(grid_experiment(
        "grid",
        json!({"parallelTrialCount": 2, "maxTrialCount": 4, "maxFailedTrialCount": 3}),
    ))
    .await;
    let suggestion = Katib::until(&k.suggestions, "grid", |s| is_true(s, "Running")).await;
    assert_eq!(suggestion["spec"]["algorithm"]["algorithmName"], "grid");
    assert_eq!(suggestion["metadata"]["labels"]["team"], "tuning");
    let types: Vec<&Value> = suggestion["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["type"])
        .collect();
    assert_eq!(types, ["Created", "DeploymentReady", "Running"]);
    assert_eq!(
        condition(&suggestion, "DeploymentReady").unwrap()["reason"],
        "DeploymentReady"
    );

    let first = k.trials_until("grid", |ts| ts.len() == 2).await;
    let exp = k
        .experiment_until("grid", |e| e["status"]["trials"] == 2)
        .await;
    for t in &first {
        check_grid_trial(t, &exp);
    }
    assert_eq!(active(&exp), 2);
    let running = condition(&exp, "Running").unwrap();
    assert_eq!(
        (&running["status"], &running["reason"]),
        (&json!("True"), &json!("ExperimentRunning"))
    );
    assert_eq!(
        condition(&exp, "Created").unwrap()["reason"],
        "ExperimentCreated"
    );
    assert!(exp["status"]["startTime"].is_string());
    assert!(
        exp["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .contains(&json!("update-prometheus-metrics"))
    );

    // Two done, two more come (max 4 − 2 completed, at most 2 in parallel).
    k.finish(
        name(&first[0]),
        "Succeeded",
        metric("loss", "0.5", "0.9", "0.6"),
    )
    .await;
    k.finish(
        name(&first[1]),
        "Succeeded",
        metric("loss", "0.3", "0.8", "0.7"),
    )
    .await;
    let all = k.trials_until("grid", |ts| ts.len() == 4).await;
    let points: HashSet<Vec<(String, String)>> = all.iter().map(assignment).collect();
    assert_eq!(points.len(), 4, "each grid point at most once: {points:?}");
    let rest: Vec<&Value> = all
        .iter()
        .filter(|t| !first.iter().any(|f| name(f) == name(t)))
        .collect();
    k.finish(name(rest[0]), "Failed", json!([])).await;
    k.finish(
        name(rest[1]),
        "Succeeded",
        metric("loss", "0.4", "0.4", "0.4"),
    )
    .await;

    let exp = k
        .experiment_until("grid", |e| is_true(e, "Succeeded"))
        .await;
    let done = condition(&exp, "Succeeded").unwrap();
    assert_eq!(done["reason"], "ExperimentMaxTrialsReached");
    assert_eq!(
        done["message"],
        "Experiment has succeeded because max trial count has reached"
    );
    let running = condition(&exp, "Running").unwrap();
    assert_eq!(
        (&running["status"], &running["reason"]),
        (&json!("False"), &json!("ExperimentRunning"))
    );
    let s = &exp["status"];
    assert_eq!(
        (&s["trials"], &s["trialsSucceeded"], &s["trialsFailed"]),
        (&json!(4), &json!(3), &json!(1))
    );
    assert!(
        s.get("trialsPending").is_none() && s.get("trialMetricsUnavailable").is_none(),
        "{s}"
    );
    assert_eq!(s["failedTrialList"], json!([name(rest[0])]));
    assert!(s["completionTime"].is_string());
    let best = &s["currentOptimalTrial"];
    assert_eq!(best["bestTrialName"], name(&first[1]));
    assert_eq!(
        best["observation"]["metrics"],
        metric("loss", "0.3", "0.8", "0.7")
    );
    assert_eq!(
        best["parameterAssignments"],
        first[1]["spec"]["parameterAssignments"]
    );

    let suggestion = Katib::until(&k.suggestions, "grid", |s| is_true(s, "Succeeded")).await;
    let st = &suggestion["status"];
    assert_eq!(st["suggestionCount"], 4);
    let names: HashSet<&str> = st["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, all.iter().map(name).collect());
    let succeeded = condition(&suggestion, "Succeeded").unwrap();
    assert_eq!(
        (&succeeded["reason"], &succeeded["message"]),
        (
            &json!("Experiment is succeeded"),
            &json!("Suggestion is succeeded, can't be restarted")
        )
    );
    assert_eq!(
        condition(&suggestion, "Running").unwrap()["status"],
        "False"
    );
    assert_eq!(
        k.trials
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        4,
        "no Trial past maxTrialCount"
    );

    // The finalizer comes off when the Experiment is deleted.
    k.experiments
        .delete("grid", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&k.experiments, "grid").await;
    k.emu.shutdown().await;
}

/// A random Experiment maximizing acc with a goal: lr ∈ [0.1, 0.5], layers ∈ {1..3}.
fn random_experiment(name: &str) -> Value {
    let mut template = job_template();
    template["trialParameters"][1] = json!({"name": "optimizer", "reference": "layers"});
    json!({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "maximize", "goal": 0.9, "objectiveMetricName": "acc"},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "7"}]},
            "parallelTrialCount": 3, "maxTrialCount": 10,
            "parameters": [
                {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.5"}},
                {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
            ],
            "trialTemplate": template,
        },
    })
}

#[tokio::test]
async fn the_goal_ends_an_experiment_whose_running_trials_keep_counting() {
    let k = Katib::start(vec![]).await;
    k.create(random_experiment("rand")).await;
    let trials = k.trials_until("rand", |ts| ts.len() == 3).await;
    for t in &trials {
        let a = assignment(t);
        let lr: f64 = a[0].1.parse().unwrap();
        assert!((0.1..=0.5).contains(&lr), "{a:?}");
        assert!(["1", "2", "3"].contains(&a[1].1.as_str()), "{a:?}");
    }
    let (a, b, c) = (name(&trials[0]), name(&trials[1]), name(&trials[2]));
    // The Trial controller marks all three Running: their Jobs are active.
    k.experiment_until("rand", |e| e["status"]["trialsRunning"] == 3)
        .await;
    k.finish(a, "Succeeded", metric("acc", "0.5", "0.95", "0.9"))
        .await;

    let exp = k
        .experiment_until("rand", |e| is_true(e, "Succeeded"))
        .await;
    let done = condition(&exp, "Succeeded").unwrap();
    assert_eq!(done["reason"], "ExperimentGoalReached");
    assert_eq!(
        done["message"],
        "Experiment has succeeded because Objective goal has reached"
    );
    assert_eq!(exp["status"]["currentOptimalTrial"]["bestTrialName"], a);

    // Completion kills nothing; the counts follow the Trials still running.
    k.finish(b, "Succeeded", metric("acc", "0.6", "0.97", "0.7"))
        .await;
    let exp = k
        .experiment_until("rand", |e| e["status"]["trialsSucceeded"] == 2)
        .await;
    assert_eq!(exp["status"]["trialsRunning"], 1);
    assert_eq!(exp["status"]["currentOptimalTrial"]["bestTrialName"], b);
    k.finish(c, "Failed", json!([])).await;
    let exp = k
        .experiment_until("rand", |e| e["status"]["trialsFailed"] == 1)
        .await;
    assert!(exp["status"].get("trialsRunning").is_none());
    assert_eq!(
        k.trials
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    k.emu.shutdown().await;
}

#[tokio::test]
async fn failures_fail_an_experiment_unless_the_defect_stops_counting_them() {
    let counts = json!({"parallelTrialCount": 1, "maxTrialCount": 2, "maxFailedTrialCount": 1});
    for (defects, fails) in [
        (vec![], true),
        (vec![Defect::TuningFailuresNotCounted], false),
    ] {
        let k = Katib::start(defects).await;
        k.create(grid_experiment("grid", counts.clone())).await;
        let first = k.trials_until("grid", |ts| ts.len() == 1).await;
        k.finish(name(&first[0]), "Failed", json!([])).await;
        if fails {
            let exp = k.experiment_until("grid", |e| is_true(e, "Failed")).await;
            let failed = condition(&exp, "Failed").unwrap();
            assert_eq!(
                (&failed["reason"], &failed["message"]),
                (
                    &json!("ExperimentFailed"),
                    &json!("Experiment has failed because max failed count has reached")
                )
            );
            assert!(exp["status"]["completionTime"].is_string());
        } else {
            let both = k.trials_until("grid", |ts| ts.len() == 2).await;
            let second = both.iter().find(|t| name(t) != name(&first[0])).unwrap();
            k.finish(
                name(second),
                "Succeeded",
                metric("loss", "0.1", "0.1", "0.1"),
            )
            .await;
            let exp = k
                .experiment_until("grid", |e| is_true(e, "Succeeded"))
                .await;
            assert_eq!(
                condition(&exp, "Succeeded").unwrap()["reason"],
                "ExperimentMaxTrialsReached"
            );
            assert!(!is_true(&exp, "Failed"));
        }
        k.emu.shutdown().await;
    }
}

#[tokio::test]
async fn a_grid_smaller_than_max_trial_count_fails_the_suggestion_and_the_experiment() {
    let k = Katib::start(vec![]).await;
    k.create(grid_experiment(
        "grid",
        json!({"parallelTrialCount": 2, "maxTrialCount": 7}),
    ))
    .await;
    let suggestion = Katib::until(&k.suggestions, "grid", |s| is_true(s, "Failed")).await;
    let failed = condition(&suggestion, "Failed").unwrap();
    assert_eq!(failed["reason"], "SuggestionFailed");
    assert_eq!(
        failed["message"],
        "Validation failed: ValidateAlgorithmSettings Error: Max Trial Count: 7 > all possible search combinations: 6"
    );
    let exp = k.experiment_until("grid", |e| is_true(e, "Failed")).await;
    assert_eq!(
        condition(&exp, "Failed").unwrap()["message"],
        "Suggestion has failed"
    );
    assert!(
        k.trials
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    k.emu.shutdown().await;
}

#[tokio::test]
async fn tuning_defects_break_parallelism_substitution_the_goal_and_the_optimum() {
    let k = Katib::start(vec![
        Defect::TuningParallelPlusOne,
        Defect::TuningSubstitutesFirstOnly,
        Defect::TuningGoalIgnored,
        Defect::TuningOptimumByLatest,
    ])
    .await;
    let mut exp = grid_experiment("grid", json!({"parallelTrialCount": 2, "maxTrialCount": 4}));
    exp["spec"]["objective"]["goal"] = json!(0.25);
    k.create(exp).await;
    // parallel-plus-one: three active where upstream keeps two.
    let trials = k.trials_until("grid", |ts| ts.len() == 3).await;
    // substitutes-first-only: the second use of learningRate stays a placeholder.
    let c = &trials[0]["spec"]["runSpec"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["env"][0]["value"], "${trialParameters.learningRate}");
    assert_ne!(c["command"][4], "lr=${trialParameters.learningRate}");
    // goal-ignored and optimum-by-latest: a Trial reaching the goal ends nothing, and the
    // optimum is the lowest latest rather than the lowest min.
    k.finish(
        name(&trials[0]),
        "Succeeded",
        metric("loss", "0.2", "0.9", "0.8"),
    )
    .await;
    k.finish(
        name(&trials[1]),
        "Succeeded",
        metric("loss", "0.4", "0.9", "0.5"),
    )
    .await;
    let exp = k
        .experiment_until("grid", |e| {
            e["status"]["trialsSucceeded"] == 2 && e["status"]["trials"] == 4
        })
        .await;
    assert!(!is_true(&exp, "Succeeded"), "{exp}");
    assert_eq!(
        exp["status"]["currentOptimalTrial"]["bestTrialName"],
        name(&trials[1])
    );
    k.emu.shutdown().await;
}

#[tokio::test]
async fn lowering_parallel_trial_count_deletes_the_newest_trials_and_their_assignments() {
    let k = Katib::start(vec![]).await;
    k.create(grid_experiment(
        "grid",
        json!({"parallelTrialCount": 3, "maxTrialCount": 6}),
    ))
    .await;
    let three = k.trials_until("grid", |ts| ts.len() == 3).await;
    let patch = json!({"spec": {"parallelTrialCount": 1}});
    k.experiments
        .patch("grid", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let one = k.trials_until("grid", |ts| ts.len() == 1).await;
    assert!(three.iter().any(|t| name(t) == name(&one[0])));
    let suggestion = Katib::until(&k.suggestions, "grid", |s| {
        s["status"]["suggestionCount"] == 1
    })
    .await;
    assert_eq!(suggestion["spec"]["requests"], 1);
    assert_eq!(
        suggestion["status"]["suggestions"][0]["name"],
        name(&one[0])
    );
    // The next Trial gets a grid point none of the three had: the deleted ones count as
    // handed out, as they stay running in upstream's Optuna study.
    k.finish(
        name(&one[0]),
        "Succeeded",
        metric("loss", "0.1", "0.1", "0.1"),
    )
    .await;
    let two = k.trials_until("grid", |ts| ts.len() == 2).await;
    let next = two.iter().find(|t| name(t) != name(&one[0])).unwrap();
    assert!(
        !three.iter().any(|t| assignment(t) == assignment(next)),
        "{next}"
    );
    k.emu.shutdown().await;
}

#[tokio::test]
async fn a_long_running_experiment_restarts_when_max_trial_count_is_raised() {
    let k = Katib::start(vec![]).await;
    let counts =
        json!({"parallelTrialCount": 2, "maxTrialCount": 2, "resumePolicy": "LongRunning"});
    k.create(grid_experiment("grid", counts)).await;
    let first = k.trials_until("grid", |ts| ts.len() == 2).await;
    for t in &first {
        k.finish(name(t), "Succeeded", metric("loss", "0.5", "0.5", "0.5"))
            .await;
    }
    let exp = k
        .experiment_until("grid", |e| is_true(e, "Succeeded"))
        .await;
    assert_eq!(
        condition(&exp, "Succeeded").unwrap()["reason"],
        "ExperimentMaxTrialsReached"
    );
    // LongRunning keeps the Suggestion running.
    let suggestion = Katib::until(&k.suggestions, "grid", |s| {
        s["status"]["suggestionCount"] == 2
    })
    .await;
    assert!(!is_true(&suggestion, "Succeeded") && is_true(&suggestion, "Running"));

    let patch = json!({"spec": {"maxTrialCount": 4}});
    k.experiments
        .patch("grid", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let exp = k
        .experiment_until("grid", |e| is_true(e, "Restarting"))
        .await;
    let restarting = condition(&exp, "Restarting").unwrap();
    assert_eq!(
        (&restarting["reason"], &restarting["message"]),
        (
            &json!("ExperimentRestarting"),
            &json!("Experiment is restarted")
        )
    );
    assert!(condition(&exp, "Succeeded").is_none(), "{exp}");
    let all = k.trials_until("grid", |ts| ts.len() == 4).await;
    let points: HashSet<Vec<(String, String)>> = all.iter().map(assignment).collect();
    assert_eq!(points.len(), 4);
    let exp = k.experiment_until("grid", |e| is_true(e, "Running")).await;
    assert!(!is_true(&exp, "Succeeded"));
    k.emu.shutdown().await;
}
