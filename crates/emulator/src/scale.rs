//! The `scale` subresource of Deployments and ReplicaSets: an autoscaling/v1 Scale read from
//! and written to the parent's `spec.replicas`, as kubernetes `pkg/registry/apps/deployment/
//! storage/storage.go` and `pkg/registry/apps/replicaset/storage/storage.go` (ScaleREST:
//! Get, Update through `scaleUpdatedObjectInfo`) serve it. GET, PUT and PATCH (JSON, merge and
//! strategic-merge patches, applied to the Scale); a PUT's resourceVersion is a precondition.

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::cluster::{App, SubRequest};
use crate::schema::FieldError;
use crate::selectors::format_label_selector;
use crate::status::{ApiError, json_response};
use crate::store::{PatchKind, WriteOpts, meta_str};

/// The Scale of a Deployment or ReplicaSet (`scaleFromDeployment`, `scaleFromReplicaSet`).
pub fn scale_of(obj: &Value) -> Value {
    let mut meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    let mut spec = json!({});
    if let Some(n) = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|n| *n != 0)
    {
        spec["replicas"] = json!(n);
    }
    let mut status = json!({
        "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
    });
    if let Some(sel) = obj
        .pointer("/spec/selector")
        .and_then(format_label_selector)
        .filter(|s| !s.is_empty())
    {
        status["selector"] = json!(sel);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": spec, "status": status})
}

/// Serves `GET|PUT|PATCH .../{deployments|replicasets}/{name}/scale`.
pub fn handle(app: &App, req: &SubRequest<'_>) -> Result<Response, ApiError> {
    let (scope, name) = (req.scope, req.name);
    let dry_run = req.params.get("dryRun").is_some_and(|v| v == "All");
    let mut st = app.lock();
    let obj = st.get(scope, name)?;
    let current = scale_of(&obj);
    let wanted = match *req.method {
        Method::GET => return Ok(json_response(StatusCode::OK, &current)),
        Method::PUT => serde_json::from_slice::<Value>(req.body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?,
        Method::PATCH => patched(&current, req.headers, req.body)?,
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let replicas = wanted
        .pointer("/spec/replicas")
        .map_or(Some(0), Value::as_i64)
        .unwrap_or(-1);
    if replicas < 0 || replicas > i64::from(i32::MAX) {
        let err = FieldError {
            field: "spec.replicas".into(),
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: {}: must be greater than or equal to 0",
                wanted.pointer("/spec/replicas").unwrap_or(&Value::Null)
            ),
        };
        return Err(ApiError::invalid("Scale", "autoscaling", name, &[err]));
    }
    let mut new = obj;
    new["spec"]["replicas"] = json!(replicas);
    // A PUT's resourceVersion is the update's precondition (scaleUpdatedObjectInfo).
    let rv = meta_str(&wanted, "resourceVersion");
    if !rv.is_empty() {
        new["metadata"]["resourceVersion"] = json!(rv);
    }
    let opts = WriteOpts {
        dry_run,
        ..WriteOpts::default()
    };
    let written = st.update(scope, name, new, false, &opts)?;
    drop(st);
    app.reconcile.notify_one();
    Ok(json_response(StatusCode::OK, &scale_of(&written.object)))
}

/// The Scale after a PATCH of the request's patch type.
fn patched(current: &Value, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let decode = |e: serde_json::Error| ApiError::bad_request(format!("error decoding patch: {e}"));
    let mut out = current.clone();
    match PatchKind::from_content_type(ct) {
        Some(PatchKind::Merge | PatchKind::StrategicMerge) => {
            let p: Value = serde_json::from_slice(body).map_err(decode)?;
            json_patch::merge(&mut out, &p);
        }
        Some(PatchKind::Json) => {
            let p: json_patch::Patch = serde_json::from_slice(body).map_err(decode)?;
            json_patch::patch(&mut out, &p.0).map_err(|e| {
                ApiError::bad_request(format!("the patch could not be applied: {e}"))
            })?;
        }
        Some(PatchKind::Apply) => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let p: Value = serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            json_patch::merge(&mut out, &p);
        }
        None => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_mirrors_its_parent() {
        let d = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u",
                "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        assert!(s["metadata"].get("labels").is_none());
    }
}
