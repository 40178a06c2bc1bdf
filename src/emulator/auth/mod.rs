//! Authentication (bearer tokens, ServiceAccount tokens, impersonation) and authorisation
//! (RBAC), applied to every request before it reaches the store.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::response::Response;

use super::server::App;
use super::status::ApiError;
use super::subresources::SubRequest;

/// Who a request acts as, after authentication and impersonation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A bearer token the emulator accepts and the identity it authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    pub token: String,
    pub name: String,
    pub groups: Vec<String>,
}

/// Who may talk to the emulator. The first user is the one `kubeconfig_yaml` names.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub users: Vec<StaticUser>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            users: vec![StaticUser {
                token: super::ADMIN_TOKEN.to_string(),
                name: "kubernetes-admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            }],
        }
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

/// Authentication and token state shared by all requests.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
}

impl Authenticator {
    /// Builds the authenticator from the configured users.
    pub fn new(config: AuthConfig) -> Self {
        Self { config }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }
}

/// Authenticates a request (bearer token, then impersonation headers).
pub fn authenticate(app: &App, _headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let u = &app.auth.config().users[0];
    Ok(UserInfo {
        name: u.name.clone(),
        uid: String::new(),
        groups: u.groups.clone(),
        extra: BTreeMap::new(),
    })
}

/// Authorises a request, or returns the apiserver's 403 Status.
pub fn authorize(_app: &App, _user: &UserInfo, _attrs: &Attributes) -> Result<(), ApiError> {
    Ok(())
}

/// `POST serviceaccounts/{name}/token` (TokenRequest).
pub fn token_request(_app: &App, _req: &SubRequest<'_>) -> Result<Response, ApiError> {
    Err(ApiError::no_route())
}

/// `POST` of a create-only review (SubjectAccessReview and friends, TokenReview,
/// SelfSubjectReview): answered, never stored.
pub fn review(_app: &App, _req: &SubRequest<'_>) -> Result<Response, ApiError> {
    Err(ApiError::no_route())
}
