//! Requests the generic store path does not serve: subresources such as `pods/log`,
//! `serviceaccounts/token` and `deployments/scale`, and create-only virtual resources (access and token reviews).
//! Each is answered by the part of the cluster that owns the data: the kubelet for logs, auth
//! for tokens and reviews.

use axum::response::Response;

use crate::auth::{self, Authenticator};
use crate::cluster::{App, SubRequest};
use crate::kubelet::{self, Node};
use crate::scale;
use crate::status::ApiError;

/// Serves the request.
pub async fn handle(
    app: &App,
    authenticator: &Authenticator,
    node: &Node,
    req: SubRequest<'_>,
) -> Result<Response, ApiError> {
    let def = &req.scope.def;
    match (def.group.as_str(), def.plural.as_str(), req.subresource) {
        ("", "pods", Some("log")) => kubelet::logs(app, node, &req).await,
        ("", "serviceaccounts", Some("token")) => auth::token_request(app, authenticator, &req),
        ("apps", "deployments" | "replicasets", Some("scale")) => scale::handle(app, &req),
        (_, _, None) => auth::review(app, authenticator, &req),
        _ => Err(ApiError::no_route()),
    }
}
