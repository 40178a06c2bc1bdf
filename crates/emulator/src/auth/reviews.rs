//! TokenRequest and the create-only review kinds: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview (authorization.k8s.io)
//! and SelfSubjectReview, TokenReview (authentication.k8s.io). Answered, never stored.
//!
//! Follows kubernetes/kubernetes pkg/registry/authorization/{subjectaccessreview,
//! localsubjectaccessreview,selfsubjectaccessreview,selfsubjectrulesreview}/rest.go,
//! pkg/apis/authorization/validation/validation.go, pkg/registry/authentication/
//! {tokenreview,selfsubjectreview}/storage.go and pkg/registry/core/serviceaccount/storage/
//! token.go.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::authn::{self, Authenticator, BoundObject, IssuedToken, TokenError};
use super::rbac::{self, MASTERS, PolicyRule};
use super::{Attributes, UserInfo};
use crate::cluster::{App, SubRequest};
use crate::schema::FieldError;
use crate::status::{ApiError, Target, json_response};
use crate::store::meta_str;

const AUTHZ: &str = "authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";

fn not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

/// Decodes the request body: JSON, YAML, or the protobuf client-go's typed clients send.
fn body(req: &SubRequest<'_>) -> Result<Value, ApiError> {
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let yaml = ct.starts_with("application/yaml");
    let v: Value = if ct.starts_with(crate::protobuf::CONTENT_TYPE) {
        crate::protobuf::decode(req.body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?
    } else if yaml {
        let text = std::str::from_utf8(req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(req.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"
            ))
        })?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    Ok(v)
}

/// The response object: the request's metadata and spec, with `status` and the type set.
fn answer(kind: &str, group: &str, request: &Value, status: Value) -> Response {
    let metadata = request
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    json_response(
        StatusCode::CREATED,
        &json!({
            "kind": kind,
            "apiVersion": format!("{group}/v1"),
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }),
    )
}

fn invalid_value(field: &str, value: &str, why: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value:?}: {why}"),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// ValidateSubjectAccessReviewSpec's attribute checks.
fn attribute_errors(spec: &Value) -> Vec<FieldError> {
    let present = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    let mut errs = Vec::new();
    if present("resourceAttributes") && present("nonResourceAttributes") {
        errs.push(invalid_value(
            "spec.nonResourceAttributes",
            "object",
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !present("resourceAttributes") && !present("nonResourceAttributes") {
        errs.push(invalid_value(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    errs
}

/// authorizationutil.AuthorizationAttributesFrom: the attributes a review asks about.
fn attributes_from(spec: &Value) -> Attributes {
    if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        Attributes {
            resource_request: true,
            verb: str_at(ra, "verb").into(),
            api_group: str_at(ra, "group").into(),
            api_version: str_at(ra, "version").into(),
            resource: str_at(ra, "resource").into(),
            subresource: str_at(ra, "subresource").into(),
            namespace: str_at(ra, "namespace").into(),
            name: str_at(ra, "name").into(),
            path: String::new(),
        }
    } else {
        let nra = spec
            .get("nonResourceAttributes")
            .cloned()
            .unwrap_or_default();
        Attributes {
            resource_request: false,
            verb: str_at(&nra, "verb").into(),
            path: str_at(&nra, "path").into(),
            ..Attributes::default()
        }
    }
}

fn access_status(app: &App, user: &UserInfo, attrs: &Attributes) -> Value {
    let d = rbac::decide(&app.lock(), user, attrs);
    let mut s = Map::new();
    s.insert("allowed".into(), json!(d.allowed));
    if !d.reason.is_empty() {
        s.insert("reason".into(), json!(d.reason));
    }
    Value::Object(s)
}

fn user_from_spec(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
        .unwrap_or_default();
    UserInfo {
        name: str_at(spec, "user").into(),
        uid: str_at(spec, "uid").into(),
        groups: list_at(spec, "groups"),
        extra,
    }
}

fn user_info_json(u: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), json!(u.name));
    if !u.uid.is_empty() {
        m.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        m.insert("extra".into(), json!(u.extra));
    }
    Value::Object(m)
}

/// Serves `POST` of a review kind.
pub fn review(
    app: &App,
    authenticator: &Authenticator,
    req: &SubRequest<'_>,
) -> Result<Response, ApiError> {
    if req.method != Method::POST {
        return Err(not_allowed());
    }
    let def = &req.scope.def;
    let request = body(req)?;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    match (def.group.as_str(), def.plural.as_str()) {
        (AUTHZ, "subjectaccessreviews") => {
            let mut errs = attribute_errors(&spec);
            if str_at(&spec, "user").is_empty() && list_at(&spec, "groups").is_empty() {
                errs.push(invalid_value(
                    "spec.user",
                    "",
                    "at least one of user or group must be specified",
                ));
            }
            if !errs.is_empty() {
                return Err(ApiError::invalid(&def.kind, AUTHZ, "", &errs));
            }
            let status = access_status(app, &user_from_spec(&spec), &attributes_from(&spec));
            Ok(answer(&def.kind, AUTHZ, &request, status))
        }
        (AUTHZ, "localsubjectaccessreviews") => {
            let mut errs = attribute_errors(&spec);
            if str_at(&spec, "user").is_empty() && list_at(&spec, "groups").is_empty() {
                errs.push(invalid_value(
                    "spec.user",
                    "",
                    "at least one of user or group must be specified",
                ));
            }
            if spec
                .get("nonResourceAttributes")
                .is_some_and(|v| !v.is_null())
            {
                errs.push(invalid_value(
                    "spec.nonResourceAttributes",
                    "object",
                    "disallowed on this kind of request",
                ));
            }
            let ns = meta_str(&request, "namespace");
            if !ns.is_empty() && ns != req.scope.namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if !errs.is_empty() {
                return Err(ApiError::invalid(&def.kind, AUTHZ, "", &errs));
            }
            let attrs = attributes_from(&spec);
            if attrs.namespace != req.scope.namespace {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {}",
                    req.scope.namespace
                )));
            }
            let status = access_status(app, &user_from_spec(&spec), &attrs);
            Ok(answer(&def.kind, AUTHZ, &request, status))
        }
        (AUTHZ, "selfsubjectaccessreviews") => {
            let errs = attribute_errors(&spec);
            if !errs.is_empty() {
                return Err(ApiError::invalid(&def.kind, AUTHZ, "", &errs));
            }
            let status = access_status(app, req.user, &attributes_from(&spec));
            Ok(answer(&def.kind, AUTHZ, &request, status))
        }
        (AUTHZ, "selfsubjectrulesreviews") => {
            let ns = str_at(&spec, "namespace");
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            Ok(answer(
                &def.kind,
                AUTHZ,
                &request,
                rules_status(app, req.user, ns),
            ))
        }
        (AUTHN, "selfsubjectreviews") => Ok(answer(
            &def.kind,
            AUTHN,
            &request,
            json!({"userInfo": user_info_json(req.user)}),
        )),
        (AUTHN, "tokenreviews") => {
            let token = str_at(&spec, "token");
            if token.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "token is required for TokenReview in {AUTHN}"
                )));
            }
            let audiences = list_at(&spec, "audiences");
            let result = authenticator.authenticate_token(&app.lock(), token, &audiences);
            let status = match result {
                Ok((user, auds)) => json!({
                    "authenticated": true,
                    "user": user_info_json(&user),
                    "audiences": auds,
                }),
                Err(TokenError::Unknown) => json!({"user": {}}),
                Err(TokenError::Invalid(why)) => json!({"user": {}, "error": why}),
            };
            Ok(answer(&def.kind, AUTHN, &request, status))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// SelfSubjectRulesReview status: the privileged group's rules, then RBAC's.
fn rules_status(app: &App, user: &UserInfo, namespace: &str) -> Value {
    let mut rules: Vec<PolicyRule> = Vec::new();
    if user.groups.iter().any(|g| g == MASTERS) {
        rules.push(PolicyRule {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            ..PolicyRule::default()
        });
        rules.push(PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..PolicyRule::default()
        });
    }
    let (rbac_rules, errors) = rbac::rules_for(&app.lock(), user, namespace);
    rules.extend(rbac_rules);
    let resource_rules: Vec<Value> = rules
        .iter()
        .filter(|r| !r.resources.is_empty())
        .map(|r| {
            let mut m = Map::new();
            m.insert("verbs".into(), json!(r.verbs));
            if !r.api_groups.is_empty() {
                m.insert("apiGroups".into(), json!(r.api_groups));
            }
            m.insert("resources".into(), json!(r.resources));
            if !r.resource_names.is_empty() {
                m.insert("resourceNames".into(), json!(r.resource_names));
            }
            Value::Object(m)
        })
        .collect();
    let non_resource_rules: Vec<Value> = rules
        .iter()
        .filter(|r| !r.non_resource_urls.is_empty())
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if !errors.is_empty()
        && let Some(m) = status.as_object_mut()
    {
        m.insert("evaluationError".into(), json!(rbac::aggregate(&errors)));
    }
    status
}

/// Default and bounds of TokenRequest `spec.expirationSeconds` (SetDefaults_TokenRequestSpec,
/// ValidateTokenRequest).
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

/// `POST serviceaccounts/{name}/token`: issues a token that authenticates as the
/// ServiceAccount until it expires or the ServiceAccount (or bound object) is deleted.
pub fn token_request(
    app: &App,
    authenticator: &Authenticator,
    req: &SubRequest<'_>,
) -> Result<Response, ApiError> {
    if req.method != Method::POST {
        return Err(not_allowed());
    }
    let request = body(req)?;
    let ns = req.scope.namespace.as_str();
    let name = req.name;
    let mut spec = request
        .get("spec")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let seconds = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    let why = if seconds < MIN_EXPIRATION {
        Some("may not specify a duration less than 10 minutes")
    } else if seconds > MAX_EXPIRATION {
        Some("may not specify a duration larger than 2^32 seconds")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(ApiError::invalid(
            "TokenRequest",
            AUTHN,
            name,
            &[FieldError {
                field: "spec.expirationSeconds".into(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {seconds}: {why}"),
            }],
        ));
    }
    let mut audiences = list_at(&spec, "audiences");
    if audiences.is_empty() {
        audiences = vec![authn::API_AUDIENCE.to_string()];
    }
    let (uid, bound): (String, Option<BoundObject>) = {
        let st = app.lock();
        let sa = st.object("", "serviceaccounts", ns, name).ok_or_else(|| {
            ApiError::not_found(Target {
                group: "",
                plural: "serviceaccounts",
                name,
            })
        })?;
        let bound = match spec.get("boundObjectRef").filter(|b| b.is_object()) {
            Some(r) => Some(authn::bound_object(&st, ns, name, r)?),
            None => None,
        };
        (meta_str(&sa, "uid").to_string(), bound)
    };
    let expires = Utc::now() + chrono::Duration::seconds(seconds);
    let token = authenticator.issue(IssuedToken {
        namespace: ns.to_string(),
        name: name.to_string(),
        uid,
        audiences: audiences.clone(),
        expires,
        jti: uuid::Uuid::new_v4().to_string(),
        bound: bound.clone(),
    });
    if let Some(m) = spec.as_object_mut() {
        m.insert("audiences".into(), json!(audiences));
        m.insert("expirationSeconds".into(), json!(seconds));
        if let (Some(b), Some(r)) = (&bound, m.get_mut("boundObjectRef"))
            && let Some(r) = r.as_object_mut()
        {
            r.insert("uid".into(), json!(b.uid));
        }
    }
    let mut metadata = request
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(m) = metadata.as_object_mut() {
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(ns));
        m.insert(
            "creationTimestamp".into(),
            json!(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
    }
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": format!("{AUTHN}/v1"),
            "metadata": metadata,
            "spec": spec,
            "status": {
                "token": token,
                "expirationTimestamp": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
        }),
    ))
}
