//! Helpers the component tests share: restricted-compliant pod parts, probe arguments, creating
//! objects with errors in words, and reading conditions and pod logs of dynamic objects.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, LogParams, PostParams};
use serde_json::{Value, json};

use super::wait::Step;
use super::{Failure, TestContext};

/// Pod-level securityContext of the restricted Pod Security standard.
pub(super) fn pod_security() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
}

/// Container-level securityContext of the restricted Pod Security standard.
pub(super) fn container_security() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
}

pub(super) fn probe_args(args: &[impl AsRef<str>]) -> Vec<String> {
    std::iter::once("probe")
        .chain(args.iter().map(AsRef::as_ref))
        .map(str::to_string)
        .collect()
}

/// An API error on a request the target should have served: a 4xx answer (other than
/// throttling) is the target's verdict on a valid request, anything else the harness's problem.
pub(super) fn api_failure(what: &str, e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 429 => Failure::Failed(
            format!("{what}: {}", crate::cluster::describe_kube_error(&e)),
        ),
        _ => super::harness(what, e),
    }
}

pub(super) async fn create(
    api: &Api<DynamicObject>,
    what: &str,
    obj: Value,
) -> Result<Value, Failure> {
    let o: DynamicObject =
        serde_json::from_value(obj).map_err(|e| Failure::Error(format!("building {what}: {e}")))?;
    let created = api
        .create(&PostParams::default(), &o)
        .await
        .map_err(|e| api_failure(&format!("creating {what}"), e))?;
    Ok(serde_json::to_value(&created).unwrap_or(Value::Null))
}

/// A condition on a job's JSON as a condition of [`wait_for`]; a job that is not there (yet,
/// or any more) is waited for.
pub(super) fn on_json<T>(
    mut decide: impl FnMut(&Value) -> Step<T>,
) -> impl FnMut(Option<&DynamicObject>) -> Step<T> {
    move |o| match o {
        Some(o) => decide(&serde_json::to_value(o).unwrap_or(Value::Null)),
        None => Step::Wait,
    }
}

/// A job as last seen, as JSON (`null` when never seen).
pub(super) fn json_of(o: Option<DynamicObject>) -> Value {
    o.and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or(Value::Null)
}

pub(super) fn condition<'a>(obj: &'a Value, ctype: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
}

pub(super) fn is_true(obj: &Value, ctype: &str) -> bool {
    condition(obj, ctype).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

/// "Failed (PyTorchJobFailed: message)" for a condition, for messages.
pub(super) fn describe_condition(obj: &Value, ctype: &str) -> String {
    match condition(obj, ctype) {
        Some(c) => format!(
            "{ctype}={} ({}: {})",
            c.get("status").and_then(Value::as_str).unwrap_or("?"),
            c.get("reason").and_then(Value::as_str).unwrap_or(""),
            c.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => format!("no {ctype} condition"),
    }
}

/// The conditions as "Type=Status" for messages.
pub(super) fn conditions_summary(obj: &Value) -> String {
    let list: Vec<String> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c.get("type").and_then(Value::as_str).unwrap_or("?"),
                c.get("status").and_then(Value::as_str).unwrap_or("?")
            )
        })
        .collect();
    if list.is_empty() {
        "no conditions".into()
    } else {
        format!("conditions [{}]", list.join(", "))
    }
}

/// A pod's log (one container), or a note why there is none.
pub(super) async fn pod_log(
    ctx: &TestContext,
    pod: &str,
    container: &str,
) -> Result<String, String> {
    let pods: Api<Pod> = Api::namespaced(ctx.workload_client().clone(), &ctx.namespace);
    let params = LogParams {
        container: Some(container.to_string()),
        ..LogParams::default()
    };
    pods.logs(pod, &params)
        .await
        .map_err(|e| crate::cluster::describe_kube_error(&e))
}
