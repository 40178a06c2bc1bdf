//! The one way conformance tests reach the HTTP APIs served inside the target cluster (a
//! predictor's inference protocol now; the pipelines API and the model registry later).
//!
//! Three routes, chosen per run with `--http-route`:
//! - **service proxy** (the default from a workstation): the API server's
//!   `/api/v1/namespaces/{ns}/services/{scheme}:{name}:{port}/proxy/{path}`, sent with the test's
//!   own Kubernetes client, so identity and RBAC (`services/proxy` get and create, which
//!   Kubeflow's `kubeflow-edit` grants) are the tenant's;
//! - **cluster DNS** (a runner inside the cluster): `http://{name}.{ns}.svc:{port}{path}`;
//! - **ingress** (a user-given base URL, optionally with a bearer token): `{base}{path}` with the
//!   `Host` header of the service's external name when it has one (e.g. an InferenceService's
//!   `status.url` host), as an Istio ingress gateway routes by host.
//!
//! On a Kubeflow with Istio in STRICT mTLS the API server's proxy, outside the mesh, does not
//! reach in-mesh services; such a target needs the ingress or cluster-DNS route.
//!
//! Every call is counted in the test's [`RequestCounter`] under the verb `proxy` (service proxy)
//! or `http` (the others), apart from the Kubernetes API requests. Answers of every status come
//! back as [`HttpResponse`]: a 404 or 503 is the backend's verdict for the test to judge, so
//! nothing here retries (the retry layer leaves `proxy` requests alone).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use thiserror::Error;

use super::RequestCounter;

/// The most of a response body a test reads; a larger body is an error, not an allocation.
pub const MAX_BODY: usize = 8 << 20;

/// How long one HTTP call may take before it is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How a run reaches HTTP APIs inside the cluster (`--http-route`).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum HttpRoute {
    /// Through the API server's service proxy.
    #[default]
    ServiceProxy,
    /// By cluster DNS, for a runner inside the cluster.
    ClusterDns,
    /// Through an ingress at `base` (scheme, host and optional path prefix), with an optional
    /// bearer token.
    Ingress {
        /// e.g. `https://kubeflow.example.com`.
        base: String,
        /// Sent as `Authorization: Bearer ...` when set.
        token: Option<String>,
    },
}

/// Never shows the token (run options are logged).
impl std::fmt::Debug for HttpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl HttpRoute {
    /// A short name for reports and messages.
    pub fn describe(&self) -> String {
        match self {
            HttpRoute::ServiceProxy => "the API server's service proxy".into(),
            HttpRoute::ClusterDns => "cluster DNS".into(),
            HttpRoute::Ingress { base, .. } => format!("the ingress at {base}"),
        }
    }
}

/// An HTTP call that got no answer.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The request could not be built (a bad path or header).
    #[error("cannot build the request to {target}: {message}")]
    Request { target: String, message: String },
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("no answer from {target}: {message}")]
    Unanswered { target: String, message: String },
    /// The answer's body is larger than [`MAX_BODY`] or broke off.
    #[error("the answer from {target} could not be read: {message}")]
    Body { target: String, message: String },
}

/// A Service inside the cluster that serves HTTP.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// The name the service is known by outside the cluster (an ingress routes by it), when
    /// it has one.
    pub external_host: Option<String>,
}

impl Endpoint {
    /// The Service `name` in `namespace` on `port`.
    pub fn service(namespace: &str, name: &str, port: u16) -> Endpoint {
        Endpoint {
            namespace: namespace.into(),
            service: name.into(),
            port,
            external_host: None,
        }
    }

    /// The same endpoint, reached from outside by `host`.
    pub fn with_external_host(mut self, host: Option<String>) -> Endpoint {
        self.external_host = host;
        self
    }

    fn label(&self) -> String {
        format!(
            "Service {}/{} port {}",
            self.namespace, self.service, self.port
        )
    }
}

/// A backend's answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `Content-Type` header, when present and readable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The body for a failure message: its first 200 characters.
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut out: String = text.chars().take(200).collect();
        if text.chars().count() > 200 {
            out.push_str("...");
        }
        out
    }
}

/// The transport a test sends its HTTP calls through: the run's route and the test's
/// counted clients.
#[derive(Clone)]
pub struct HttpTransport {
    route: HttpRoute,
    kube: kube::Client,
    direct: reqwest::Client,
    counter: RequestCounter,
}

impl HttpTransport {
    /// A transport over `route`; `kube` is the test's (counting) client, used for the service
    /// proxy; `counter` tallies the calls of the other routes.
    pub fn new(
        route: HttpRoute,
        kube: kube::Client,
        counter: RequestCounter,
    ) -> Result<HttpTransport, HttpError> {
        let direct = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unbuilt(&route.describe(), e.to_string()))?;
        Ok(HttpTransport {
            route,
            kube,
            direct,
            counter,
        })
    }

    /// The same transport, proxying with another Kubernetes client (a tenant's).
    pub fn with_kube(&self, kube: kube::Client) -> HttpTransport {
        HttpTransport {
            kube,
            ..self.clone()
        }
    }

    /// The route in use.
    pub fn route(&self) -> &HttpRoute {
        &self.route
    }

    /// GET `path` (with its query) from `ep`.
    pub async fn get(&self, ep: &Endpoint, path: &str) -> Result<HttpResponse, HttpError> {
        self.send(ep, Method::GET, path, None).await
    }

    /// POST `body` as JSON to `path` of `ep`.
    pub async fn post_json(
        &self,
        ep: &Endpoint,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, HttpError> {
        self.send(ep, Method::POST, path, Some(body.to_string().into_bytes()))
            .await
    }

    /// Sends one request; `body`, when given, is sent as `application/json`.
    pub async fn send(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, HttpError> {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        match &self.route {
            HttpRoute::ServiceProxy => self.via_proxy(ep, method, &path, body).await,
            HttpRoute::ClusterDns => {
                let url = format!(
                    "http://{}.{}.svc:{}{path}",
                    ep.service, ep.namespace, ep.port
                );
                self.direct_call(ep, method, &url, None, None, body).await
            }
            HttpRoute::Ingress { base, token } => {
                let url = format!("{}{path}", base.trim_end_matches('/'));
                let host = ep.external_host.as_deref();
                self.direct_call(ep, method, &url, host, token.as_deref(), body)
                    .await
            }
        }
    }

    async fn via_proxy(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, HttpError> {
        let uri = format!(
            "/api/v1/namespaces/{}/services/http:{}:{}/proxy{path}",
            ep.namespace, ep.service, ep.port
        );
        let target = ep.label();
        let mut req = Request::builder().method(method).uri(&uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(kube::client::Body::from(body.unwrap_or_default()))
            .map_err(|e| unbuilt(&target, e.to_string()))?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.kube.send(req))
            .await
            .map_err(|_| unanswered(&target, "timed out"))?
            .map_err(|e| unanswered(&target, &e.to_string()))?;
        let (parts, body) = answer.into_parts();
        let body = http_body_util::Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Body {
                target,
                message: e.to_string(),
            })?
            .to_bytes();
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    async fn direct_call(
        &self,
        ep: &Endpoint,
        method: Method,
        url: &str,
        host: Option<&str>,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, HttpError> {
        let target = ep.label();
        self.counter.record("http");
        let mut req = self.direct.request(method, url);
        if let Some(h) = host {
            let value =
                HeaderValue::from_str(h).map_err(|e| unbuilt(&target, format!("host {h}: {e}")))?;
            req = req.header(header::HOST, value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header(header::CONTENT_TYPE, "application/json").body(b);
        }
        let mut answer = req
            .send()
            .await
            .map_err(|e| unanswered(&target, &super::flatten(&e)))?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let mut body = Vec::new();
        loop {
            match answer.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Err(HttpError::Body {
                        target,
                        message: format!("larger than {MAX_BODY} bytes"),
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(HttpError::Body {
                        target,
                        message: super::flatten(&e),
                    });
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

fn unbuilt(target: &str, message: String) -> HttpError {
    HttpError::Request {
        target: target.into(),
        message,
    }
}

fn unanswered(target: &str, message: &str) -> HttpError {
    HttpError::Unanswered {
        target: target.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded() {
        let r = HttpResponse {
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::from("x".repeat(500)),
        };
        assert_eq!(r.body_excerpt().len(), 203);
        assert!(r.json().is_none());
    }

    #[test]
    fn routes_describe_themselves() {
        let r = HttpRoute::Ingress {
            base: "https://kf.example.com".into(),
            token: None,
        };
        assert_eq!(r.describe(), "the ingress at https://kf.example.com");
        assert_eq!(HttpRoute::default(), HttpRoute::ServiceProxy);
    }
}
