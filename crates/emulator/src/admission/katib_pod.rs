//! Katib's pod webhook, `mutator.pod.katib.kubeflow.org`, after katib v0.19.0
//! `pkg/webhook/v1beta1/pod/inject_webhook.go` (`MutationRequired`, `Mutate`, `getKatibJob`,
//! `getMetricsCollectorContainer`, `mutateSuggestionVolume`), `utils.go` (`mutatePodMetadata`,
//! `mutatePodEnv`, `isPrimaryPod`), `pkg/util/v1beta1/katibconfig/config.go` and
//! `manifests/v1beta1/components/webhook/webhooks.yaml` (pods on CREATE, in namespaces
//! labelled `katib.kubeflow.org/metrics-collector-injection: enabled`).
//!
//! A pod owned by a Trial, directly or through its run object (Pod → Job → Trial, Pod →
//! PyTorchJob → Trial), gets the Trial's labels plus `katib.kubeflow.org/trial`, and its
//! primary container the env `KATIB_TRIAL_NAME`; a pod without the primary container is
//! rejected. For primary pods of Trials with a collector other than Push, the webhook reads the
//! collector's katib-config entry (taken as the manifests ship it: StdOut, File,
//! TensorFlowEvent) and the Trial's Experiment and Suggestion, and rejects the pod when one is
//! missing, as upstream does.
//!
//! Deliberate simplification: the metrics-collector sidecar, `shareProcessNamespace`, the
//! `metrics-volume` emptyDir, the suggestion checkpoint volume and the `sh -c` wrapping of the
//! primary container are not added (see [`crate::controllers::katib::metrics`]: the kubelet
//! hands the primary container's own output to the collector instead).

use serde_json::{Value, json};

use crate::katib_db::{TRIAL_LABEL, TRIAL_NAME_ENV};
use crate::status::ApiError;
use crate::store::{State, meta_str};

/// The webhook's name in the MutatingWebhookConfiguration (`katib.kubeflow.org`).
pub const WEBHOOK: &str = "mutator.pod.katib.kubeflow.org";
/// The namespace label the webhook's namespaceSelector matches (value `enabled`).
pub const INJECTION_LABEL: &str = "katib.kubeflow.org/metrics-collector-injection";
/// The Trial kind and apiVersion an owner reference must name (`TrialKind`, `TrialAPIVersion`).
const TRIAL_KIND: &str = "Trial";
const TRIAL_API_VERSION: &str = "kubeflow.org/v1beta1";
/// The katib-config ConfigMap (`consts.KatibConfigMapName`).
const KATIB_CONFIG: &str = "katib-config";
/// The collector kinds the manifests' katib-config configures (`runtime.metricsCollectors`).
const CONFIGURED_COLLECTORS: &[&str] = &["StdOut", "File", "TensorFlowEvent"];
/// Owner chains longer than this are not followed (upstream recurses without a bound).
const MAX_DEPTH: usize = 16;

/// The apiserver's rejection of a webhook's `admission.Errored(code, err)`
/// (`webhookerrors.ToStatusErr`: no reason, the code the webhook gave).
fn denied(code: u16, message: &str) -> ApiError {
    ApiError {
        code,
        reason: "",
        message: format!("admission webhook \"{WEBHOOK}\" denied the request: {message}"),
        details: None,
    }
}

/// The label `key` of an object.
fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// A namespaced object of `api_version`/`kind` (as an ownerReference names it), if served
/// and stored.
fn owner_object(
    state: &State,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<Value> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let def = state.resources.values().find(|d| {
        d.group == group
            && d.kind == kind
            && d.storage_alias.is_none()
            && d.versions.iter().any(|v| v.name == version)
    })?;
    state.object(&def.group, &def.plural, ns, name)
}

/// `getKatibJob`: the name of the object a Trial owns that `obj` is, or descends from (the
/// Trial's run object, named after the Trial). Err when an owner cannot be read, which
/// upstream also takes as "not a Trial's pod".
fn katib_job(state: &State, obj: &Value, ns: &str, depth: usize) -> Result<Option<String>, ()> {
    let owners: Vec<Value> = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_trial = |r: &Value| {
        r.get("kind").and_then(Value::as_str) == Some(TRIAL_KIND)
            && r.get("apiVersion").and_then(Value::as_str) == Some(TRIAL_API_VERSION)
    };
    if owners.iter().any(is_trial) {
        return Ok(Some(meta_str(obj, "name").to_string()));
    }
    if depth >= MAX_DEPTH {
        return Ok(None);
    }
    for owner in &owners {
        let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(nested) =
            owner_object(state, field("apiVersion"), field("kind"), ns, field("name"))
        else {
            return Err(());
        };
        // A nested owner that cannot be read ends only that branch.
        if let Ok(Some(job)) = katib_job(state, &nested, ns, depth + 1) {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// The webhook on a pod being created in namespace `ns`: nothing outside labelled namespaces
/// or for pods no Trial owns; otherwise the mutation, or a rejection.
pub fn admit(state: &State, pod: &mut Value) -> Result<(), ApiError> {
    let ns = meta_str(pod, "namespace").to_string();
    let enabled = state
        .object("", "namespaces", "", &ns)
        .is_some_and(|n| label(&n, INJECTION_LABEL) == Some("enabled"));
    if !enabled {
        return Ok(());
    }
    // MutationRequired: not a Trial's pod (or an owner unreadable) → admitted unchanged.
    let Ok(Some(job)) = katib_job(state, pod, &ns, 0) else {
        return Ok(());
    };
    // The run object and its Trial share a name.
    let Some(trial) = state.object("kubeflow.org", "trials", &ns, &job) else {
        return Err(denied(
            500,
            &format!("trials.kubeflow.org \"{job}\" not found"),
        ));
    };
    mutate(state, pod, &trial).map_err(|msg| denied(400, &msg))
}

/// `Mutate`: labels and env for every pod of the Trial; for its primary pods the collector's
/// prerequisites.
fn mutate(state: &State, pod: &mut Value, trial: &Value) -> Result<(), String> {
    let original_labels = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    mutate_metadata(pod, trial);
    mutate_env(pod, trial)?;
    if let Some(primary) = trial
        .pointer("/spec/primaryPodLabels")
        .and_then(Value::as_object)
    {
        let matches = primary
            .iter()
            .all(|(k, v)| original_labels.get(k).is_some_and(|have| have == v));
        if !matches {
            return Ok(());
        }
    }
    let kind = trial
        .pointer("/spec/metricsCollector/collector/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind == "Push" {
        return Ok(());
    }
    // getMetricsCollectorContainer: a Custom collector brings its container; the others are
    // configured in katib-config.
    if kind != "Custom" && !CONFIGURED_COLLECTORS.contains(&kind) {
        return Err(format!(
            "failed to find metrics collector config for kind: {kind} in ConfigMap: {KATIB_CONFIG}"
        ));
    }
    let ns = meta_str(trial, "namespace");
    let experiment = label(trial, "katib.kubeflow.org/experiment").unwrap_or("");
    let early_stopping = trial
        .pointer("/spec/earlyStoppingRules")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    let suggestion = state.object("kubeflow.org", "suggestions", ns, experiment);
    if early_stopping && suggestion.is_none() {
        return Err(format!(
            "invalid suggestion name: suggestions.kubeflow.org \"{experiment}\" not found"
        ));
    }
    // mutateSuggestionVolume reads the Trial's Experiment and Suggestion.
    if state
        .object("kubeflow.org", "experiments", ns, experiment)
        .is_none()
    {
        return Err(format!(
            "experiments.kubeflow.org \"{experiment}\" not found"
        ));
    }
    if suggestion.is_none() {
        return Err(format!(
            "suggestions.kubeflow.org \"{experiment}\" not found"
        ));
    }
    Ok(())
}

/// `mutatePodMetadata`: the Trial's labels over the pod's, and the Trial's name.
fn mutate_metadata(pod: &mut Value, trial: &Value) {
    let trial_labels = trial
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(l) = labels.as_object_mut() {
        l.extend(trial_labels);
        l.insert(TRIAL_LABEL.into(), json!(meta_str(trial, "name")));
    }
}

/// `mutatePodEnv`: `KATIB_TRIAL_NAME` from the Trial label, on the primary container.
fn mutate_env(pod: &mut Value, trial: &Value) -> Result<(), String> {
    let primary = trial
        .pointer("/spec/primaryContainerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let names: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            c.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let container = pod
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
        .and_then(|cs| {
            cs.iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(primary))
        })
        .and_then(Value::as_object_mut);
    let Some(container) = container else {
        // Upstream prints the containers with Go's %v; their names stand for them here.
        return Err(format!(
            "Unable to find primary container {primary} in mutated pod containers [{}]",
            names.join(" ")
        ));
    };
    let env = container.entry("env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Some(env) = env.as_array_mut() {
        env.push(json!({
            "name": TRIAL_NAME_ENV,
            "valueFrom": {"fieldRef": {
                "apiVersion": "v1",
                "fieldPath": format!("metadata.labels['{TRIAL_LABEL}']"),
            }},
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let mut s = State::new(1000);
        for crd in kfconform_core::fixtures::crds() {
            for doc in kfconform_core::fixtures::yaml_documents(crd.text).unwrap() {
                if doc["kind"] == "CustomResourceDefinition" {
                    s.bootstrap("apiextensions.k8s.io", "customresourcedefinitions", doc)
                        .unwrap();
                }
            }
        }
        s.reconcile();
        let ns = json!({"metadata": {"name": "ns", "labels": {INJECTION_LABEL: "enabled"}}});
        s.bootstrap("", "namespaces", ns).unwrap();
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "plain"}}))
            .unwrap();
        s
    }

    fn trial(ns: &str, spec: Value) -> Value {
        json!({"apiVersion": TRIAL_API_VERSION, "kind": "Trial",
               "metadata": {"name": "t1", "namespace": ns,
                            "labels": {"katib.kubeflow.org/experiment": "exp"}},
               "spec": spec})
    }

    /// A Trial, its Job, and a pod of that Job in `ns`.
    fn setup(s: &mut State, ns: &str, spec: Value) -> Value {
        let t = s
            .create_object("kubeflow.org", "trials", trial(ns, spec))
            .unwrap();
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "t1", "namespace": ns, "ownerReferences": [{
                "apiVersion": TRIAL_API_VERSION, "kind": "Trial", "name": "t1",
                "uid": meta_str(&t, "uid"), "controller": true}]},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "training", "image": "x"}]}}}});
        let job = s.create_object("batch", "jobs", job).unwrap();
        json!({"metadata": {"name": "t1-abc", "namespace": ns, "labels": {"app": "a"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "t1",
                                     "uid": meta_str(&job, "uid"), "controller": true}]},
               "spec": {"containers": [{"name": "training", "image": "x"}]}})
    }

    fn stdout(primary: &str) -> Value {
        json!({"primaryContainerName": primary,
               "metricsCollector": {"collector": {"kind": "StdOut"}}})
    }

    fn experiment_and_suggestion(s: &mut State) {
        for plural in ["experiments", "suggestions"] {
            let o = json!({"apiVersion": "kubeflow.org/v1beta1",
                           "kind": if plural == "experiments" { "Experiment" } else { "Suggestion" },
                           "metadata": {"name": "exp", "namespace": "ns"}, "spec": {}});
            s.create_object("kubeflow.org", plural, o).unwrap();
        }
    }

    #[test]
    fn a_trials_pod_gets_the_label_and_env() {
        let mut s = state();
        let mut pod = setup(&mut s, "ns", stdout("training"));
        experiment_and_suggestion(&mut s);
        admit(&s, &mut pod).unwrap();
        assert_eq!(pod["metadata"]["labels"][TRIAL_LABEL], "t1");
        assert_eq!(
            pod["metadata"]["labels"]["katib.kubeflow.org/experiment"],
            "exp"
        );
        assert_eq!(pod["metadata"]["labels"]["app"], "a");
        let env = &pod["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], TRIAL_NAME_ENV);
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['katib.kubeflow.org/trial']"
        );
        assert_eq!(
            pod["spec"]["containers"].as_array().map(Vec::len),
            Some(1),
            "no sidecar"
        );
    }

    #[test]
    fn nothing_happens_outside_labelled_namespaces_or_to_other_pods() {
        let mut s = state();
        let mut pod = setup(&mut s, "plain", stdout("training"));
        let before = pod.clone();
        admit(&s, &mut pod).unwrap();
        assert_eq!(pod, before);
        let mut lone = json!({"metadata": {"name": "p", "namespace": "ns"},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}});
        let before = lone.clone();
        admit(&s, &mut lone).unwrap();
        assert_eq!(lone, before);
    }

    #[test]
    fn rejections_carry_upstreams_words() {
        let mut s = state();
        let mut pod = setup(&mut s, "ns", stdout("missing"));
        let err = admit(&s, &mut pod).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"mutator.pod.katib.kubeflow.org\" denied the request: \
             Unable to find primary container missing in mutated pod containers [training]"
        );
        let mut s = state();
        let mut pod = setup(&mut s, "ns", stdout("training"));
        let err = admit(&s, &mut pod).unwrap_err();
        assert!(
            err.message
                .ends_with("experiments.kubeflow.org \"exp\" not found"),
            "{}",
            err.message
        );
        // A Push collector needs nothing more; a non-primary pod neither.
        let mut s = state();
        let spec = json!({"primaryContainerName": "training",
                          "metricsCollector": {"collector": {"kind": "Push"}}});
        let mut pod = setup(&mut s, "ns", spec);
        admit(&s, &mut pod).unwrap();
        let mut s = state();
        let mut spec = stdout("training");
        spec["primaryPodLabels"] = json!({"role": "master"});
        let mut pod = setup(&mut s, "ns", spec);
        admit(&s, &mut pod).unwrap();
        assert_eq!(pod["metadata"]["labels"][TRIAL_LABEL], "t1");
    }
}
