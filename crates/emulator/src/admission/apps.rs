//! Admission for apps/v1 Deployments and ReplicaSets, as the apiserver defaults and validates
//! them: kubernetes `pkg/apis/apps/v1/defaults.go` (SetDefaults_Deployment,
//! SetDefaults_ReplicaSet; the pod template gets SetDefaults_PodSpec's defaults) and
//! `pkg/apis/apps/validation/validation.go` (ValidateDeploymentSpec, ValidateReplicaSetSpec,
//! the immutable selector of apps/v1). Messages and field paths are upstream's.

use serde_json::{Map, Value, json};

use crate::admission::{default, default_containers};
use crate::schema::FieldError;
use crate::selectors::LabelSelector;
use crate::selectors::format_label_selector;
use crate::status::ApiError;
use crate::store::{Scope, State, meta_str};

/// Defaults and validates a Deployment or ReplicaSet on create and update.
pub fn admit(state: &State, scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    let kind = match scope.def.plural.as_str() {
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        _ => return Ok(()),
    };
    set_defaults(obj, kind == "Deployment");
    let old = state.get(scope, meta_str(obj, "name")).ok();
    let mut errors = validate_spec(obj, kind == "Deployment");
    if let Some(old) = old.filter(|o| meta_str(o, "uid") == meta_str(obj, "uid"))
        && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
    {
        errors.push(invalid(
            "spec.selector",
            obj.pointer("/spec/selector").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            kind,
            "apps",
            meta_str(obj, "name"),
            &errors,
        ))
    }
}

/// SetDefaults_Deployment / SetDefaults_ReplicaSet and the template's pod-spec defaults.
fn set_defaults(obj: &mut Value, deployment: bool) {
    let Some(spec) = obj
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    default(spec, "replicas", json!(1));
    if deployment {
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if let Some(st) = strategy.as_object_mut() {
            default(st, "type", json!("RollingUpdate"));
            if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    default(ru, "maxUnavailable", json!("25%"));
                    default(ru, "maxSurge", json!("25%"));
                }
            }
        }
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
    }
    if let Some(t) = spec.get_mut("template") {
        drop_nulls(t);
    }
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.as_object_mut())
        .map(|t| t.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        default_template_spec(pod);
    }
}

/// Nulls dropped, as decoding into the Go types and encoding with `omitempty` does: clients
/// such as kubectl send `"creationTimestamp": null` in templates (`kubectl rollout undo`), and
/// the stored template must still equal its ReplicaSet's.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The SetDefaults_PodSpec part a pod template gets (admission plugins act on pods only).
fn default_template_spec(s: &mut Map<String, Value>) {
    default(s, "restartPolicy", json!("Always"));
    default(s, "dnsPolicy", json!("ClusterFirst"));
    default(s, "schedulerName", json!("default-scheduler"));
    default(s, "terminationGracePeriodSeconds", json!(30));
    default(s, "securityContext", json!({}));
    default_containers(s, "initContainers");
    default_containers(s, "containers");
}

fn invalid(field: &str, value: &Value, why: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {why}", go_value(value)),
    }
}

/// Values as upstream's field errors print them: strings quoted, numbers bare, else JSON.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// ValidateDeploymentSpec / ValidateReplicaSetSpec: replicas, the selector and the template
/// labels it must select, the template's restartPolicy, and (Deployments) the strategy.
fn validate_spec(obj: &Value, deployment: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    for field in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64)
            && n < 0
        {
            errors.push(invalid(
                &format!("spec.{field}"),
                &json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    match spec.get("selector") {
        None | Some(Value::Null) => errors.push(FieldError {
            field: "spec.selector".into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }),
        Some(sel) => {
            let labels = spec
                .pointer("/template/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            match format_label_selector(sel) {
                Some(s) if s.is_empty() && deployment => errors.push(invalid(
                    "spec.selector",
                    sel,
                    "empty selector is invalid for deployment",
                )),
                Some(s) => {
                    let pod = json!({"metadata": {"labels": labels}});
                    if !LabelSelector::parse(&s).is_ok_and(|ls| ls.matches(&pod)) {
                        errors.push(invalid(
                            "spec.template.metadata.labels",
                            &labels,
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
                None => errors.push(invalid("spec.selector", sel, "invalid label selector")),
            }
        }
    }
    let restart = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if restart != "Always" {
        errors.push(FieldError {
            field: "spec.template.spec.restartPolicy".into(),
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {restart:?}: supported values: \"Always\""),
        });
    }
    if deployment {
        errors.extend(validate_strategy(&spec));
    }
    errors
}

/// ValidateDeploymentStrategy and ValidateRollingUpdateDeployment.
fn validate_strategy(spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let strategy = spec.get("strategy").cloned().unwrap_or_default();
    let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match strategy.get("type").and_then(Value::as_str) {
        Some("Recreate") => {
            if ru.is_some() {
                errors.push(FieldError {
                    field: "spec.strategy.rollingUpdate".into(),
                    reason: "FieldValueForbidden",
                    message: "Forbidden: may not be specified when strategy `type` is 'Recreate'"
                        .into(),
                });
            }
        }
        Some("RollingUpdate") => {
            let zero = |k: &str| {
                ru.and_then(|r| r.get(k)).is_some_and(|v| {
                    v.as_i64() == Some(0) || v.as_str().is_some_and(|s| s == "0%" || s == "0")
                })
            };
            if zero("maxUnavailable") && zero("maxSurge") {
                errors.push(invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    ru.and_then(|r| r.get("maxUnavailable"))
                        .unwrap_or(&Value::Null),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        other => errors.push(FieldError {
            field: "spec.strategy.type".into(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {:?}: supported values: \"Recreate\", \"RollingUpdate\"",
                other.unwrap_or("")
            ),
        }),
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults_follow_upstream() {
        let mut d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}},
                         "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
        set_defaults(&mut d, true);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(validate_spec(&d, true).is_empty());
    }

    #[test]
    fn selector_must_match_the_template() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "b"}},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": {"app": "a"}}}}});
        let errs = validate_spec(&d, true);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
        assert!(
            errs[0]
                .message
                .ends_with("`selector` does not match template `labels`")
        );
        let none = validate_spec(&json!({"spec": {"strategy": {"type": "Recreate"}}}), true);
        assert_eq!(none[0].message, "Required value");
    }
}
