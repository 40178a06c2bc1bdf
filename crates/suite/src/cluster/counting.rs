//! Client-side request counting. Each test gets its own client whose requests are tallied by
//! Kubernetes verb, so reports and the bench can show API cost per test on any cluster, not
//! only on the emulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::ClusterError;

/// Shared tally of requests by verb (get, list, watch, create, update, patch, delete, ...),
/// with HTTP API calls apart: `proxy` through the API server's proxy, `http` on other routes
/// ([`super::http`]).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestCounter {
    /// Records one request.
    pub fn record(&self, verb: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(verb.to_string()).or_default() += 1;
        }
    }
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    /// Total requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

/// A test's tally split into Kubernetes API requests and HTTP API calls (`proxy`, `http`).
pub fn split_http_calls(
    all: BTreeMap<String, u64>,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    all.into_iter()
        .partition(|(verb, _)| verb != "proxy" && verb != "http")
}

/// The Kubernetes verb of a request, derived as the API server's request-info resolver does.
pub fn verb_of(method: &http::Method, path: &str, query: Option<&str>) -> &'static str {
    let watch = query
        .map(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
        .unwrap_or(false);
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // /api/v1/<res>[/<name>...] or /apis/<g>/<v>/<res>[/<name>...]; namespaced adds 2 segments.
    let rest: &[&str] = match segs.first() {
        Some(&"api") if segs.len() >= 2 => &segs[2..],
        Some(&"apis") if segs.len() >= 3 => &segs[3..],
        _ => return "get",
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        &rest[2..]
    } else {
        rest
    };
    if rest.is_empty() {
        // Discovery documents (/api/v1, /apis/g/v) are non-resource reads.
        return "get";
    }
    // `<resource>/<name>/proxy[/...]`: a call to the backend behind the API server (the
    // request-info resolver's subresource `proxy`), counted apart from API requests.
    if rest.get(2) == Some(&"proxy") {
        return "proxy";
    }
    let is_collection = rest.len() <= 1;
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if is_collection => "list",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if is_collection => "deletecollection",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

/// Builds a client from `config` whose every request (each try of a retried one) is recorded
/// in `counter`; it retries as [`super::retry`] says.
pub fn counting_client(
    config: &kube::Config,
    counter: RequestCounter,
) -> Result<kube::Client, ClusterError> {
    super::retry::client(config, Some(counter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn verbs_follow_request_info() {
        let cases = [
            (Method::GET, "/api/v1/namespaces", None, "list"),
            (Method::GET, "/api/v1/namespaces/a", None, "get"),
            (Method::GET, "/api/v1/namespaces/a/configmaps", None, "list"),
            (
                Method::GET,
                "/api/v1/namespaces/a/configmaps",
                Some("watch=true&x=1"),
                "watch",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/configmaps/b",
                None,
                "get",
            ),
            (
                Method::POST,
                "/apis/kubeflow.org/v1/namespaces/a/pytorchjobs",
                None,
                "create",
            ),
            (
                Method::DELETE,
                "/apis/kubeflow.org/v1/profiles/p",
                None,
                "delete",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                None,
                "deletecollection",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/services/http:m-predictor:80/proxy/v2/models/m/infer",
                None,
                "proxy",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p/proxy",
                None,
                "proxy",
            ),
            (
                Method::PATCH,
                "/apis/kubeflow.org/v1/profiles/p/status",
                None,
                "patch",
            ),
            (Method::GET, "/version", None, "get"),
            (Method::GET, "/apis/kubeflow.org/v1", None, "get"),
        ];
        for (m, p, q, want) in cases {
            assert_eq!(verb_of(&m, p, q), want, "{m} {p} {q:?}");
        }
    }
}
