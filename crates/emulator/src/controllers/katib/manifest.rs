//! The Trial an Experiment controller creates for one assignment, after katib v0.19.0
//! `pkg/controller.v1beta1/experiment/manifest/generator.go` (`GetRunSpecWithHyperParameters`,
//! `applyParameters`, `GetTrialTemplate`), `experiment_controller_util.go`
//! (`getTrialInstance`), `pkg/controller.v1beta1/util/labels.go` (`TrialLabels`) and
//! `pkg/controller.v1beta1/consts/const.go` (the placeholder formats).
//!
//! The template is the trial template as JSON text (`ConvertUnstructuredToString`: Go's
//! encoder, so object keys sorted) or a ConfigMap's entry as written; each
//! `${trialParameters.<name>}` is replaced by plain string replacement in that text, then the
//! text is parsed back and given the Trial's name and namespace. Values are inserted as they
//! are, so a value that breaks the JSON makes the Trial fail to generate, as upstream.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::super::objects::controller_ref;
use super::algorithms::Assignment;
use crate::defects::tuning::Tuning;
use crate::store::{State, meta_str};

/// The label naming a Trial's Experiment (`consts.LabelExperimentName`).
pub const EXPERIMENT_LABEL: &str = "katib.kubeflow.org/experiment";

/// `consts.TrialTemplateMetaReplaceFormatRegex`.
static META_REFERENCE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\$\{trialSpec\.(.+?)\}").ok());
/// `consts.TrialTemplateMetaParseFormatRegex`.
static META_INDEX: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(.+)\[(.+)]").ok());

/// A JSON value with every object's keys sorted, as Go's `encoding/json` writes maps.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let out: Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), sorted(&m[k])))
                .collect();
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Go's `%v` of a `map[string]string`: `map[a:1 b:2]`, keys sorted.
fn go_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", items.join(" "))
}

/// `ConvertStringToUnstructured` (YAML or JSON), which needs a `kind`.
fn parse_template(text: &str) -> Result<Value, String> {
    let fail = |e: String| format!("failed to convert string to unstructured: {e}");
    // YAMLOrJSONDecoder: JSON when the text starts like JSON, else YAML.
    let v: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| fail(e.to_string()))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| fail(e.to_string()))?
    };
    match v.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => Ok(v),
        _ => Err(fail(format!("Object 'Kind' is missing in '{text}'"))),
    }
}

/// `GetTrialTemplate`: the template text, and the trial spec it describes.
fn trial_template(state: &State, experiment: &Value) -> Result<(String, Value), String> {
    let template = experiment
        .pointer("/spec/trialTemplate")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(spec) = template.get("trialSpec").filter(|s| s.is_object()) {
        let text = serde_json::to_string(&sorted(spec))
            .map_err(|e| format!("failed to convert unstructured to string: {e}"))?;
        return Ok((text, spec.clone()));
    }
    let Some(cm) = template.get("configMap").filter(|c| c.is_object()) else {
        return Err("trialTemplate has neither trialSpec nor configMap".into());
    };
    let field = |k: &str| cm.get(k).and_then(Value::as_str).unwrap_or("");
    let (name, namespace, path) = (
        field("configMapName"),
        field("configMapNamespace"),
        field("templatePath"),
    );
    let Some(configmap) = state.object("", "configmaps", namespace, name) else {
        return Err(format!(
            "configMap not found: configmaps \"{name}\" not found"
        ));
    };
    let data: BTreeMap<String, String> = configmap
        .get("data")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let Some(text) = data.get(path) else {
        return Err(format!(
            "unable to find trial template in ConfigMap: TemplatePath: {path}, ConfigMap: {}",
            go_map(&data)
        ));
    };
    let spec = parse_template(text)?;
    Ok((text.clone(), spec))
}

/// The value of a `${trialSpec.<key>}` reference (`applyParameters`' metadata branch).
/// `index` is carried from one reference to the next, as upstream's loop variable is.
fn meta_value(
    reference: &str,
    key: &str,
    index: &mut String,
    trial: (&str, &str),
    spec: &Value,
) -> Result<String, String> {
    let mut key = key.to_string();
    let parsed = META_INDEX
        .as_ref()
        .and_then(|r| r.captures(&key))
        .map(|c| (c[1].to_string(), c[2].to_string()));
    if let Some((k, i)) = parsed {
        key = k;
        *index = i;
    }
    let illegal = || format!("illegal reference of trial metadata: {reference}");
    let meta = |field: &str| {
        spec.pointer(&format!(
            "/metadata/{field}/{}",
            index.replace('~', "~0").replace('/', "~1")
        ))
    };
    match key.as_str() {
        "Name" => Ok(trial.0.to_string()),
        "Namespace" => Ok(trial.1.to_string()),
        "Kind" => Ok(spec
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into()),
        "APIVersion" => Ok(spec
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into()),
        "Annotations" => meta("annotations")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| format!("{}; failed to fetch Annotation: {index}", illegal())),
        "Labels" => meta("labels")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| format!("{}; failed to fetch Label: {index}", illegal())),
        _ => Err(illegal()),
    }
}

/// `GetRunSpecWithHyperParameters`: the trial template with every trial parameter's
/// placeholder replaced, named after the Trial, in its namespace.
pub fn run_spec(
    state: &State,
    experiment: &Value,
    trial: (&str, &str),
    assignments: &Assignment,
    defects: &Tuning,
) -> Result<Value, String> {
    let (mut text, spec) = trial_template(state, experiment)?;
    let values: BTreeMap<String, String> = assignments.iter().cloned().collect();
    let params = experiment
        .pointer("/spec/trialTemplate/trialParameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut placeholders: Vec<(String, String)> = Vec::new();
    let (mut non_meta, mut index) = (0usize, String::new());
    for p in &params {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let reference = p.get("reference").and_then(Value::as_str).unwrap_or("");
        let value = match META_REFERENCE.as_ref().and_then(|r| r.captures(reference)) {
            None => {
                let Some(v) = values.get(reference) else {
                    return Err(format!(
                        "unable to find non-meta parameter from TrialParameters in ParameterAssignment: parameter: {reference}, parameter assignment: {}",
                        go_map(&values)
                    ));
                };
                non_meta += 1;
                v.clone()
            }
            Some(c) => meta_value(reference, &c[1], &mut index, trial, &spec)?,
        };
        placeholders.push((name.to_string(), value));
    }
    if assignments.len() != non_meta {
        let listed: Vec<String> = assignments
            .iter()
            .map(|(n, v)| format!("{{{n} {v}}}"))
            .collect();
        return Err(format!(
            "unable to find parameter from ParameterAssignment in TrialParameters: parameter assignments: [{}], non-meta trial parameter count: {non_meta}",
            listed.join(" ")
        ));
    }
    for (name, value) in &placeholders {
        text = defects.substitute(&text, &format!("${{trialParameters.{name}}}"), value);
    }
    let mut run = parse_template(&text)?;
    if let Some(o) = run.as_object_mut() {
        let meta = o.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        meta["name"] = json!(trial.0);
        meta["namespace"] = json!(trial.1);
    }
    Ok(run)
}

/// `TrialLabels`: the Experiment's labels plus the experiment label.
pub fn trial_labels(experiment: &Value) -> Map<String, Value> {
    let mut labels = experiment
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(EXPERIMENT_LABEL.into(), json!(meta_str(experiment, "name")));
    labels
}

/// `getTrialInstance`: the Trial of one assignment of a (defaulted) Experiment, with its
/// generated run spec. `labels` are the assignment's own, added to [`trial_labels`].
pub fn trial(
    experiment: &Value,
    name: &str,
    assignments: &Value,
    labels: &Map<String, Value>,
    early_stopping_rules: &Value,
    run_spec: Value,
) -> Value {
    let mut all_labels = trial_labels(experiment);
    all_labels.extend(labels.clone());
    let tt = experiment
        .pointer("/spec/trialTemplate")
        .cloned()
        .unwrap_or(json!({}));
    let text = |k: &str| tt.get(k).and_then(Value::as_str).unwrap_or("");
    let mut spec = Map::new();
    if let Some(o) = experiment
        .pointer("/spec/objective")
        .filter(|o| !o.is_null())
    {
        spec.insert("objective".into(), o.clone());
    }
    if assignments.as_array().is_some_and(|a| !a.is_empty()) {
        spec.insert("parameterAssignments".into(), assignments.clone());
    }
    let early_stopping = experiment
        .pointer("/spec/earlyStopping")
        .is_some_and(|e| !e.is_null());
    if early_stopping
        && early_stopping_rules
            .as_array()
            .is_some_and(|r| !r.is_empty())
    {
        spec.insert("earlyStoppingRules".into(), early_stopping_rules.clone());
    }
    spec.insert("runSpec".into(), run_spec);
    if tt.get("retain").and_then(Value::as_bool) == Some(true) {
        spec.insert("retainRun".into(), json!(true));
    }
    let collector = experiment
        .pointer("/spec/metricsCollectorSpec")
        .filter(|c| c.is_object())
        .cloned()
        .unwrap_or(json!({}));
    spec.insert("metricsCollector".into(), collector);
    if let Some(l) = tt
        .get("primaryPodLabels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
    {
        spec.insert("primaryPodLabels".into(), Value::Object(l.clone()));
    }
    if !text("primaryContainerName").is_empty() {
        spec.insert(
            "primaryContainerName".into(),
            json!(text("primaryContainerName")),
        );
    }
    if !text("successCondition").is_empty() && !text("failureCondition").is_empty() {
        spec.insert("successCondition".into(), json!(text("successCondition")));
        spec.insert("failureCondition".into(), json!(text("failureCondition")));
    }
    json!({
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": meta_str(experiment, "namespace"),
            "labels": all_labels,
            "ownerReferences": [controller_ref(experiment)],
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defects::Defect;

    fn experiment(template: Value, params: Value) -> Value {
        json!({
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "exp", "namespace": "ns", "uid": "u1", "labels": {"team": "a"}},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "trialTemplate": {"trialParameters": params, "trialSpec": template,
                                  "primaryContainerName": "main"},
            },
        })
    }

    fn job() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"labels": {"tier": "gold"}},
               "spec": {"template": {"spec": {"containers": [{
                   "name": "main", "image": "x",
                   "args": ["--lr=${trialParameters.lr}", "--again=${trialParameters.lr}",
                            "--who=${trialParameters.who}", "--tier=${trialParameters.tier}"]}]}}}})
    }

    fn params() -> Value {
        json!([{"name": "lr", "reference": "learning_rate"},
               {"name": "who", "reference": "${trialSpec.Name}"},
               {"name": "tier", "reference": "${trialSpec.Labels[tier]}"}])
    }

    fn assignments() -> Assignment {
        vec![("learning_rate".into(), "0.01".into())]
    }

    #[test]
    fn every_placeholder_occurrence_is_replaced_and_the_run_is_named() {
        let state = State::new(16);
        let exp = experiment(job(), params());
        let run = run_spec(
            &state,
            &exp,
            ("exp-abc", "ns"),
            &assignments(),
            &Tuning::default(),
        )
        .unwrap();
        let args = &run["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(
            args,
            &json!(["--lr=0.01", "--again=0.01", "--who=exp-abc", "--tier=gold"])
        );
        assert_eq!(run["metadata"]["name"], "exp-abc");
        assert_eq!(run["metadata"]["namespace"], "ns");
        assert_eq!(run["metadata"]["labels"]["tier"], "gold");
        let broken = Tuning::new(&[Defect::TuningSubstitutesFirstOnly]);
        let run = run_spec(&state, &exp, ("exp-abc", "ns"), &assignments(), &broken).unwrap();
        let args = &run["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[1], "--again=${trialParameters.lr}");
    }

    #[test]
    fn generation_errors_are_upstreams() {
        let state = State::new(16);
        let exp = experiment(job(), params());
        let other = vec![("momentum".into(), "0.5".into())];
        let e = run_spec(&state, &exp, ("t", "ns"), &other, &Tuning::default()).unwrap_err();
        assert_eq!(
            e,
            "unable to find non-meta parameter from TrialParameters in ParameterAssignment: parameter: learning_rate, parameter assignment: map[momentum:0.5]"
        );
        let mut two = assignments();
        two.push(("momentum".into(), "0.5".into()));
        let e = run_spec(&state, &exp, ("t", "ns"), &two, &Tuning::default()).unwrap_err();
        assert!(e.ends_with("parameter assignments: [{learning_rate 0.01} {momentum 0.5}], non-meta trial parameter count: 1"), "{e}");
        let bad = json!([{"name": "x", "reference": "${trialSpec.Labels[nope]}"}]);
        let e = run_spec(
            &state,
            &experiment(job(), bad),
            ("t", "ns"),
            &vec![],
            &Tuning::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "illegal reference of trial metadata: ${trialSpec.Labels[nope]}; failed to fetch Label: nope"
        );
        let quote = vec![("learning_rate".into(), "a\"b".into())];
        let e = run_spec(&state, &exp, ("t", "ns"), &quote, &Tuning::default()).unwrap_err();
        assert!(
            e.starts_with("failed to convert string to unstructured"),
            "{e}"
        );
    }

    #[test]
    fn a_trial_carries_what_get_trial_instance_copies() {
        let mut exp = experiment(job(), params());
        exp["spec"]["trialTemplate"]["retain"] = json!(true);
        exp["spec"]["trialTemplate"]["successCondition"] = json!("s");
        let pa = json!([{"name": "learning_rate", "value": "0.01"}]);
        let t = trial(
            &exp,
            "exp-abc",
            &pa,
            &Map::new(),
            &json!([]),
            json!({"kind": "Job"}),
        );
        assert_eq!(
            t["metadata"]["labels"],
            json!({"team": "a", EXPERIMENT_LABEL: "exp"})
        );
        assert_eq!(t["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(t["spec"]["parameterAssignments"], pa);
        assert_eq!(t["spec"]["retainRun"], true);
        assert_eq!(t["spec"]["primaryContainerName"], "main");
        assert_eq!(t["spec"]["metricsCollector"], json!({}));
        // successCondition alone is not copied: upstream needs both.
        assert!(t["spec"].get("successCondition").is_none());
        assert_eq!(t["spec"]["objective"]["objectiveMetricName"], "loss");
    }
}
