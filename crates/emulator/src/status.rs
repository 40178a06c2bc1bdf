//! API errors rendered as `metav1.Status` objects, with the reasons and message shapes of the
//! real apiserver (k8s.io/apimachinery/pkg/api/errors), because clients branch on them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::schema::FieldError;

/// A failed API request: becomes a `Status` body with `code` as HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. "NotFound".
    pub reason: &'static str,
    /// Human-readable message shaped like the real apiserver's.
    pub message: String,
    /// `Status.details`, when the real apiserver sends one.
    pub details: Option<Value>,
}

/// What an error is about: resource plural + group (the "qualified resource") and a name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub name: &'a str,
}

impl Target<'_> {
    /// `pytorchjobs.kubeflow.org`, or just `namespaces` for the core group.
    pub fn qualified(&self) -> String {
        qualified(self.plural, self.group)
    }

    fn details(&self) -> Value {
        let mut d = serde_json::Map::new();
        if !self.name.is_empty() {
            d.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            d.insert("group".into(), json!(self.group));
        }
        d.insert("kind".into(), json!(self.plural));
        Value::Object(d)
    }
}

/// `resource.group`, or `resource` for the core group.
pub fn qualified(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }

    /// 404 `pytorchjobs.kubeflow.org "x" not found`.
    pub fn not_found(t: Target<'_>) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {:?} not found", t.qualified(), t.name),
            Some(t.details()),
        )
    }

    /// 404 for a path that names no served resource (the real server's generic 404).
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    /// 409 `namespaces "x" already exists`.
    pub fn already_exists(t: Target<'_>) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {:?} already exists", t.qualified(), t.name),
            Some(t.details()),
        )
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict(t: Target<'_>, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {:?}: {why}",
                t.qualified(),
                t.name
            ),
            Some(t.details()),
        )
    }

    /// The message real apiservers give for a stale resourceVersion.
    pub const MODIFIED: &'static str = "the object has been modified; please apply your changes to the latest version and try again";

    /// 403 `x.g "n" is forbidden: why`.
    pub fn forbidden(t: Target<'_>, why: &str) -> Self {
        let message = if t.name.is_empty() {
            format!("{} is forbidden: {why}", t.qualified())
        } else {
            format!("{} {:?} is forbidden: {why}", t.qualified(), t.name)
        };
        Self::new(403, "Forbidden", message, Some(t.details()))
    }

    /// 422 `Kind.group "name" is invalid: ...` with one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let rendered: Vec<String> = errors
            .iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect();
        let agg = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        let mut details = serde_json::Map::new();
        if !name.is_empty() {
            details.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            details.insert("group".into(), json!(group));
        }
        details.insert("kind".into(), json!(kind));
        details.insert("causes".into(), Value::Array(causes));
        Self::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {agg}", qualified(kind, group)),
            Some(Value::Object(details)),
        )
    }

    /// 400 BadRequest with a free message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into(), Some(json!({})))
    }

    /// 410 `too old resource version: X (Y)`.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), None)
    }

    /// 415 for a patch content type the server does not accept.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message.into(), None)
    }

    /// 406 when no acceptable media type can be written (apiserver
    /// endpoints/handlers/negotiation/errors.go `errNotAcceptable`).
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message.into(), None)
    }

    /// 503 ServiceUnavailable (`errors.NewServiceUnavailable`): e.g. a proxied Service without
    /// a ready endpoint.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message.into(), None)
    }

    /// 500 for a server-side failure that should not happen.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into(), None)
    }

    /// 504 Timeout, as kube-apiserver's timeout filter answers a request that took too long
    /// (`errors.NewTimeoutError`).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: {}", message.into()),
            Some(json!({})),
        )
    }

    /// 429 TooManyRequests, as API Priority and Fairness rejects a request
    /// (`errors.NewTooManyRequests`); the response also carries `Retry-After`.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            message.into(),
            Some(json!({"retryAfterSeconds": retry_after})),
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let (Some(d), Some(obj)) = (&self.details, s.as_object_mut()) {
            obj.insert("details".into(), d.clone());
        }
        if let Some(obj) = s.as_object_mut() {
            obj.insert("code".into(), json!(self.code));
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

/// A JSON response with the content type Kubernetes clients expect.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_apiserver() {
        let t = Target {
            group: "kubeflow.org",
            plural: "pytorchjobs",
            name: "x",
        };
        assert_eq!(
            ApiError::not_found(t).message,
            r#"pytorchjobs.kubeflow.org "x" not found"#
        );
        let ns = Target {
            group: "",
            plural: "namespaces",
            name: "x",
        };
        assert_eq!(
            ApiError::already_exists(ns).message,
            r#"namespaces "x" already exists"#
        );
        let e = ApiError::invalid(
            "PyTorchJob",
            "kubeflow.org",
            "x",
            &[FieldError {
                field: "spec.foo".into(),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            }],
        );
        assert_eq!(
            e.message,
            r#"PyTorchJob.kubeflow.org "x" is invalid: spec.foo: Required value"#
        );
        assert_eq!(e.to_status()["details"]["causes"][0]["field"], "spec.foo");
    }
}
