//! Requests the generic store path does not serve: subresources such as `pods/log` and
//! `serviceaccounts/token`, and create-only virtual resources (access and token reviews).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::auth::{self, UserInfo};
use super::kubelet;
use super::server::{App, Params};
use super::status::ApiError;
use super::store::Scope;

/// A request for a subresource or a virtual resource.
pub struct SubRequest<'a> {
    pub scope: &'a Scope,
    /// Object name ("" for collection requests).
    pub name: &'a str,
    pub subresource: Option<&'a str>,
    pub method: &'a Method,
    pub params: &'a Params,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The authenticated (possibly impersonated) requester.
    pub user: &'a UserInfo,
}

/// Serves the request.
pub async fn handle(app: &App, req: SubRequest<'_>) -> Result<Response, ApiError> {
    let def = &req.scope.def;
    match (def.group.as_str(), def.plural.as_str(), req.subresource) {
        ("", "pods", Some("log")) => kubelet::logs(app, &req).await,
        ("", "serviceaccounts", Some("token")) => auth::token_request(app, &req),
        (_, _, None) => auth::review(app, &req),
        _ => Err(ApiError::no_route()),
    }
}
