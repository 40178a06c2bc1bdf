//! Authentication (bearer tokens, ServiceAccount tokens, impersonation) and authorisation
//! (RBAC), applied to every request before it reaches the store.
//!
//! [`authn`] turns a request into a [`UserInfo`] (401 when no token matches), applying the
//! `Impersonate-*` headers; [`rbac`] decides requests over the RBAC objects in the store (403
//! with the apiserver's message) and prevents escalation on RBAC writes; [`reviews`] answers
//! TokenRequest and the access/token reviews; [`aggregation`] is the ClusterRole aggregation
//! controller. [`bootstrap`] installs the apiserver's bootstrap policy and the Kubeflow roles.
//! Controllers inside the emulator write to the store directly and are not subject to any of it.

pub mod aggregation;
pub mod authn;
pub mod rbac;
pub mod reviews;
pub mod tls;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::EmulatorError;
use crate::cluster::{App, SubRequest};
use crate::status::ApiError;
use crate::store::{Scope, State};

pub use crate::cluster::UserInfo;
pub use authn::{API_AUDIENCE, Authenticator};

/// A bearer token the emulator accepts and the identity it authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    pub token: String,
    pub name: String,
    /// Groups besides `system:authenticated`, which every authenticated user gets.
    pub groups: Vec<String>,
}

/// The cluster admin's user name (group `system:masters`).
pub const ADMIN_USER: &str = "kubernetes-admin";

/// A bearer token nobody can guess: 128 random bits.
fn random_token() -> String {
    format!("kfconform-{}", uuid::Uuid::new_v4().simple())
}

impl AuthConfig {
    /// The token of the cluster admin (the first user in `system:masters`), if any.
    pub fn admin_token(&self) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.groups.iter().any(|g| g == rbac::MASTERS))
            .map(|u| u.token.as_str())
    }
}

/// Who may talk to the emulator. The first user is the one `kubeconfig_yaml` names (by default
/// the cluster admin, in `system:masters`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub users: Vec<StaticUser>,
}

impl Default for AuthConfig {
    /// The cluster admin with a fresh random token: no two emulators share a credential.
    fn default() -> Self {
        Self {
            users: vec![StaticUser {
                token: random_token(),
                name: ADMIN_USER.into(),
                groups: vec![rbac::MASTERS.into(), authn::AUTHENTICATED.into()],
            }],
        }
    }
}

impl AuthConfig {
    /// Adds a user with a fresh random token and returns the token.
    pub fn add_user(&mut self, name: &str, groups: &[String]) -> String {
        let token = random_token();
        self.users.push(StaticUser {
            token: token.clone(),
            name: name.to_string(),
            groups: groups.to_vec(),
        });
        token
    }
}

/// What the authorizer decides on, as kube-apiserver's authorizer.Attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Whether this is a resource request (else a non-resource URL such as /version).
    pub resource_request: bool,
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The URL path, for non-resource requests.
    pub path: String,
}

/// Authenticates a request: its bearer token (401 without a valid one; anonymous requests are
/// not allowed), then the impersonation headers (403 unless the `impersonate` verb allows them).
pub fn authenticate(
    app: &App,
    authenticator: &Authenticator,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let token = authn::bearer(headers).ok_or_else(authn::unauthorized)?;
    let st = app.lock();
    let (user, _) = authenticator
        .authenticate_token(&st, token, &[])
        .map_err(|e| {
            tracing::debug!(error = ?e, "bearer token rejected");
            authn::unauthorized()
        })?;
    authn::impersonate(&st, user, headers)
}

/// Authorises a request, or returns the apiserver's 403 Status.
pub fn authorize(app: &App, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
    let st = app.lock();
    authorize_in(&st, user, attrs)
}

/// [`authorize`] with the state at hand (for callers already holding the lock).
pub fn authorize_in(state: &State, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
    // The apiserver's RequestInfo names the namespace itself as the namespace of
    // `/api/v1/namespaces/{name}`: that is how namespaced `get namespaces` rules grant reading
    // one's own namespace.
    let fixed;
    let attrs = if attrs.resource_request
        && attrs.api_group.is_empty()
        && attrs.resource == "namespaces"
        && attrs.namespace.is_empty()
        && !attrs.name.is_empty()
    {
        fixed = Attributes {
            namespace: attrs.name.clone(),
            ..attrs.clone()
        };
        &fixed
    } else {
        attrs
    };
    let d = rbac::decide(state, user, attrs);
    if d.allowed {
        Ok(())
    } else {
        tracing::debug!(user = %user.name, verb = %attrs.verb, resource = %attrs.resource,
            namespace = %attrs.namespace, path = %attrs.path, "forbidden");
        Err(rbac::forbidden(user, attrs, &d.reason))
    }
}

/// Escalation prevention for creates (`old` None) and updates of RBAC objects, run with the
/// object as it is about to be stored. `url_name` is the name in the request path ("" on
/// create). Other resources pass.
pub fn admit_write(
    state: &State,
    user: &UserInfo,
    scope: &Scope,
    url_name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    rbac::admit_write(state, user, scope, url_name, obj, old)
}

/// Whether writes to the resource go through [`admit_write`] (the four RBAC kinds).
pub fn guards_writes(scope: &Scope) -> bool {
    scope.def.group == rbac::GROUP
        && matches!(
            scope.def.plural.as_str(),
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        )
}

/// `POST serviceaccounts/{name}/token` (TokenRequest).
pub fn token_request(
    app: &App,
    authenticator: &Authenticator,
    req: &SubRequest<'_>,
) -> Result<Response, ApiError> {
    reviews::token_request(app, authenticator, req)
}

/// `POST` of a create-only review (SubjectAccessReview and friends, TokenReview,
/// SelfSubjectReview): answered, never stored.
pub fn review(
    app: &App,
    authenticator: &Authenticator,
    req: &SubRequest<'_>,
) -> Result<Response, ApiError> {
    reviews::review(app, authenticator, req)
}

/// The fixture holding kube-apiserver's bootstrap ClusterRoles and ClusterRoleBindings.
const BOOTSTRAP_POLICY: &str = "rbac/kubernetes-bootstrap-policy.yaml";

/// Installs the apiserver's bootstrap policy (cluster-admin, admin/edit/view with their
/// aggregated parts, system:discovery, system:basic-user, system:public-info-viewer and their
/// bindings), then every Role/ClusterRole (and binding) of `fixtures/rbac/*-roles.yaml`.
/// Aggregated rules are filled in by the [`aggregation`] controller.
pub fn bootstrap(state: &mut State) -> Result<(), EmulatorError> {
    let files = kfconform_core::fixtures::dir("rbac");
    let ordered = files
        .iter()
        .filter(|f| f.path == BOOTSTRAP_POLICY)
        .chain(files.iter().filter(|f| f.path.ends_with("-roles.yaml")));
    let mut loaded = 0;
    for f in ordered {
        let docs = kfconform_core::fixtures::yaml_documents(f.text).map_err(|message| {
            EmulatorError::Fixture {
                file: f.path.to_string(),
                message,
            }
        })?;
        for doc in docs {
            let plural = match doc.get("kind").and_then(Value::as_str) {
                Some("ClusterRole") => "clusterroles",
                Some("ClusterRoleBinding") => "clusterrolebindings",
                Some("Role") => "roles",
                Some("RoleBinding") => "rolebindings",
                _ => continue,
            };
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if matches!(plural, "roles" | "rolebindings")
                && state.object("", "namespaces", "", ns).is_none()
            {
                tracing::debug!(
                    file = f.path,
                    namespace = ns,
                    "skipping namespaced RBAC object"
                );
                continue;
            }
            state
                .bootstrap(rbac::GROUP, plural, doc)
                .map_err(|e| EmulatorError::Fixture {
                    file: f.path.to_string(),
                    message: e.message,
                })?;
            loaded += 1;
        }
    }
    if loaded == 0 {
        return Err(EmulatorError::Fixture {
            file: BOOTSTRAP_POLICY.into(),
            message: "no RBAC objects embedded".into(),
        });
    }
    Ok(())
}
