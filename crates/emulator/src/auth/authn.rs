//! Authentication: static bearer tokens, ServiceAccount tokens issued by TokenRequest, and the
//! impersonation filter.
//!
//! Follows kubernetes/kubernetes: staging/src/k8s.io/apiserver/pkg/authentication/request/
//! bearertoken (the `Authorization: Bearer` header), pkg/serviceaccount (the username and groups
//! of a ServiceAccount, and that a token dies with its ServiceAccount's uid), staging/src/k8s.io/
//! apiserver/pkg/authentication/group/authenticated_group_adder.go (`system:authenticated`) and
//! staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::rbac::{self, split_sa_username};
use super::{Attributes, AuthConfig, UserInfo};
use crate::status::ApiError;
use crate::store::{State, meta_str};

/// The audience of the emulated API server (kube-apiserver's default `--api-audiences`: its
/// service-account issuer).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// The group every authenticated user gets.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group unauthenticated (anonymous) users get.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";

/// The object a ServiceAccount token is bound to (TokenRequest `spec.boundObjectRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// "Pod" or "Secret".
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// A token issued by TokenRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
    /// The ServiceAccount's uid when the token was issued: a new ServiceAccount of the same name
    /// does not revive it.
    pub uid: String,
    pub audiences: Vec<String>,
    pub expires: DateTime<Utc>,
    /// The token's `jti` (shown as the `authentication.kubernetes.io/credential-id` extra).
    pub jti: String,
    pub bound: Option<BoundObject>,
}

/// Authentication and token state shared by all requests.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    issued: Mutex<HashMap<String, IssuedToken>>,
}

/// Why a token did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No authenticator knows the token.
    Unknown,
    /// A known token that is no longer (or not here) valid, with the reason.
    Invalid(String),
}

impl Authenticator {
    /// Builds the authenticator from the configured users.
    pub fn new(config: AuthConfig) -> Self {
        Self {
            config,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Records a ServiceAccount token and returns its (JWT-shaped) text.
    pub fn issue(&self, t: IssuedToken) -> String {
        let header = json!({"alg": "RS256", "kid": "kfconform-emulator"});
        let mut k8s = json!({
            "namespace": t.namespace,
            "serviceaccount": {"name": t.name, "uid": t.uid},
        });
        if let (Some(b), Some(m)) = (&t.bound, k8s.as_object_mut()) {
            m.insert(b.kind.to_lowercase(), json!({"name": b.name, "uid": b.uid}));
        }
        let now = Utc::now().timestamp();
        let claims = json!({
            "aud": t.audiences,
            "exp": t.expires.timestamp(),
            "iat": now,
            "iss": API_AUDIENCE,
            "jti": t.jti,
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("system:serviceaccount:{}:{}", t.namespace, t.name),
        });
        // The emulator looks tokens up rather than verifying signatures: the signature part is
        // random so tokens cannot be forged from their claims.
        let signature: [u8; 32] = rand::random();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        );
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), t);
        token
    }

    /// Authenticates a bearer token for `audiences` (the API server's own when empty). Returns
    /// the user and the audiences the token is valid for.
    pub fn authenticate_token(
        &self,
        state: &State,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), TokenError> {
        let wanted: Vec<String> = if audiences.is_empty() {
            vec![API_AUDIENCE.to_string()]
        } else {
            audiences.to_vec()
        };
        if let Some(u) = self.config.users.iter().find(|u| u.token == token) {
            // Static tokens are audience-agnostic: valid for the API server's audience only.
            if !wanted.iter().any(|a| a == API_AUDIENCE) {
                return Err(TokenError::Invalid("token audiences don't match".into()));
            }
            let user = UserInfo {
                name: u.name.clone(),
                uid: String::new(),
                groups: with_authenticated(u.groups.clone()),
                extra: BTreeMap::new(),
            };
            return Ok((user, vec![API_AUDIENCE.to_string()]));
        }
        let issued = self
            .issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
            .ok_or(TokenError::Unknown)?;
        let matching: Vec<String> = issued
            .audiences
            .iter()
            .filter(|a| wanted.contains(a))
            .cloned()
            .collect();
        if matching.is_empty() {
            return Err(TokenError::Invalid("token audiences don't match".into()));
        }
        if Utc::now() >= issued.expires {
            return Err(TokenError::Invalid("token has expired".into()));
        }
        let sa = state
            .object("", "serviceaccounts", &issued.namespace, &issued.name)
            .filter(|sa| meta_str(sa, "uid") == issued.uid)
            .ok_or_else(|| {
                TokenError::Invalid(format!(
                    "serviceaccounts {:?} not found",
                    issued.name.as_str()
                ))
            })?;
        let mut extra = BTreeMap::new();
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec![format!("JTI={}", issued.jti)],
        );
        if let Some(b) = &issued.bound {
            let plural = if b.kind == "Pod" { "pods" } else { "secrets" };
            let alive = state
                .object("", plural, &issued.namespace, &b.name)
                .is_some_and(|o| meta_str(&o, "uid") == b.uid);
            if !alive {
                return Err(TokenError::Invalid(format!(
                    "{plural} {:?} not found",
                    b.name.as_str()
                )));
            }
            if b.kind == "Pod" {
                extra.insert(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec![b.name.clone()],
                );
                extra.insert(
                    "authentication.kubernetes.io/pod-uid".into(),
                    vec![b.uid.clone()],
                );
            }
        }
        let user = UserInfo {
            name: format!("system:serviceaccount:{}:{}", issued.namespace, issued.name),
            uid: meta_str(&sa, "uid").to_string(),
            groups: with_authenticated(sa_groups(&issued.namespace)),
            extra,
        };
        Ok((user, matching))
    }
}

/// The groups of every ServiceAccount in `namespace` (serviceaccount.MakeGroupNames).
pub fn sa_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}

/// Adds `system:authenticated` unless present (the authenticated group adder).
fn with_authenticated(mut groups: Vec<String>) -> Vec<String> {
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.to_string());
    }
    groups
}

/// The token of an `Authorization: Bearer …` header, if there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The 401 kube-apiserver answers when no authenticator accepts the request.
pub fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".into(),
        details: None,
    }
}

/// `%XX` decoding of an `Impersonate-Extra-` key (impersonation.go unescapeExtraKey).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&key[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(_) => key.to_string(),
    }
}

/// One thing a request asks to impersonate.
enum Request {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

impl Request {
    fn attributes(&self) -> Attributes {
        let (group, resource, namespace, name, sub) = match self {
            Request::User(n) => ("", "users", "", n.as_str(), ""),
            Request::ServiceAccount(ns, n) => ("", "serviceaccounts", ns.as_str(), n.as_str(), ""),
            Request::Group(n) => ("", "groups", "", n.as_str(), ""),
            Request::Extra(k, v) => (
                "authentication.k8s.io",
                "userextras",
                "",
                v.as_str(),
                k.as_str(),
            ),
            Request::Uid(u) => ("authentication.k8s.io", "uids", "", u.as_str(), ""),
        };
        Attributes {
            resource_request: true,
            verb: "impersonate".into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: namespace.into(),
            name: name.into(),
            path: String::new(),
        }
    }
}

/// Applies the `Impersonate-*` headers: each requested identity must be allowed by the
/// `impersonate` verb for the requester, else 403 (impersonation.go WithImpersonation).
pub fn impersonate(
    state: &State,
    requester: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let text = |v: &axum::http::HeaderValue| v.to_str().unwrap_or("").to_string();
    let mut requests = Vec::new();
    let user = headers
        .get("impersonate-user")
        .map(text)
        .filter(|u| !u.is_empty());
    if let Some(u) = &user {
        requests.push(match split_sa_username(u) {
            Some((ns, name)) => Request::ServiceAccount(ns.into(), name.into()),
            None => Request::User(u.clone()),
        });
    }
    let groups_specified = headers.get_all("impersonate-group").iter().count() > 0;
    for g in headers.get_all("impersonate-group") {
        requests.push(Request::Group(text(g)));
    }
    let mut extra_keys: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("impersonate-extra-"))
        .collect();
    extra_keys.sort_unstable();
    extra_keys.dedup();
    let has_extra = !extra_keys.is_empty();
    for k in extra_keys {
        let key = unescape(&k["impersonate-extra-".len()..].to_lowercase());
        for v in headers.get_all(k) {
            requests.push(Request::Extra(key.clone(), text(v)));
        }
    }
    let uid = headers
        .get("impersonate-uid")
        .map(text)
        .filter(|u| !u.is_empty());
    if let Some(u) = &uid {
        requests.push(Request::Uid(u.clone()));
    }
    if requests.is_empty() {
        return Ok(requester);
    }
    if user.is_none() {
        let what = if groups_specified || has_extra {
            "groups or extras"
        } else {
            "a uid"
        };
        return Err(ApiError::internal(format!(
            "requested {what} without impersonating a user"
        )));
    }
    let mut name = String::new();
    let mut groups: Vec<String> = Vec::new();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut new_uid = String::new();
    for r in &requests {
        let attrs = r.attributes();
        let d = rbac::decide(state, &requester, &attrs);
        if !d.allowed {
            return Err(rbac::forbidden(&requester, &attrs, &d.reason));
        }
        match r {
            Request::ServiceAccount(ns, n) => {
                name = format!("system:serviceaccount:{ns}:{n}");
                if !groups_specified {
                    groups = sa_groups(ns);
                }
            }
            Request::User(n) => name = n.clone(),
            Request::Group(g) => groups.push(g.clone()),
            Request::Extra(k, v) => extra.entry(k.clone()).or_default().push(v.clone()),
            Request::Uid(u) => new_uid = u.clone(),
        }
    }
    if name != "system:anonymous" {
        if !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            groups.push(AUTHENTICATED.to_string());
        }
    } else if !groups.iter().any(|g| g == UNAUTHENTICATED) {
        groups.push(UNAUTHENTICATED.to_string());
    }
    tracing::debug!(requester = %requester.name, acting_as = %name, "impersonation");
    Ok(UserInfo {
        name,
        uid: new_uid,
        groups,
        extra,
    })
}

/// A TokenRequest's `spec.boundObjectRef`, resolved against the store.
pub fn bound_object(
    state: &State,
    namespace: &str,
    sa_name: &str,
    r: &Value,
) -> Result<BoundObject, ApiError> {
    let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
    let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
    let plural = match (api_version, kind) {
        ("v1" | "", "Pod") => "pods",
        ("v1" | "", "Secret") => "secrets",
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {kind} in version {api_version:?}"
            )));
        }
    };
    let target = crate::status::Target {
        group: "",
        plural,
        name,
    };
    let obj = state
        .object("", plural, namespace, name)
        .ok_or_else(|| ApiError::not_found(target))?;
    let actual_uid = meta_str(&obj, "uid");
    if !uid.is_empty() && uid != actual_uid {
        return Err(ApiError::conflict(
            target,
            &format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    if plural == "pods" {
        let pod_sa = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if pod_sa != sa_name {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
            )));
        }
    }
    Ok(BoundObject {
        kind: kind.to_string(),
        name: name.to_string(),
        uid: actual_uid.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn extra_keys_unescape() {
        assert_eq!(unescape("scopes"), "scopes");
        assert_eq!(unescape("example.com%2fteam"), "example.com/team");
        assert_eq!(unescape("bad%zz"), "bad%zz");
    }
}
