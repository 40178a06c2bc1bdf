//! The API server's proxy: `services/{[scheme:]name[:port]}/proxy/{path}` and
//! `pods/{[scheme:]name[:port]}/proxy/{path}` for every method, as kube-apiserver serves them.
//!
//! Where a request goes follows upstream's `ResourceLocation`s: for a Service
//! (`pkg/registry/core/service/storage/storage.go`) a port *number* is first turned into the
//! service port's name (503 `no service port N found for service "x"` when none has it), then
//! a ready address of the Service's Endpoints offering that port name is picked at random
//! (503 `no endpoints available for service "x"` when there is none), each candidate checked
//! against its target pod (`isValidAddress`); for a pod
//! (`pkg/registry/core/pod/strategy.go`) the port defaults to the first declared
//! containerPort. The path after `proxy` becomes the backend path as the connect handler
//! builds it (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go`, leading and
//! trailing slashes kept), and the request is forwarded as
//! `staging/src/k8s.io/apimachinery/pkg/util/proxy/upgradeaware.go` and `transport.go` do:
//! the query string and body as they are, the caller's headers minus `Authorization` and
//! `Impersonate-*` (removed by the authentication and impersonation filters) and hop-by-hop
//! headers, `X-Forwarded-Uri` added, a bare `.../proxy` GET redirected to `.../proxy/`; the
//! backend's status, headers (minus hop-by-hop and CORS headers) and body come back as they
//! are. A backend that cannot be reached gives 503 `error trying to reach service: ...`.
//!
//! Differences: pod IPs are loopback by design, so upstream's refusal of non-global-unicast
//! pod addresses (400 `address not allowed`) applies only to a missing or unparsable IP;
//! `https:` backends, connection upgrades (WebSocket, SPDY), HTML link rewriting and
//! `X-Forwarded-For` are not implemented.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::Value;

use crate::cluster::App;
use crate::status::{ApiError, Target};

/// How long the backend may take to accept the connection.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxied request, as the HTTP layer hands it on after authorisation.
pub struct ProxyRequest<'a> {
    /// Namespace of the Service or pod.
    pub namespace: &'a str,
    /// `services` or `pods`.
    pub plural: &'a str,
    /// `[scheme:]name[:port]`, as the path segment carries it.
    pub id: &'a str,
    /// The path segments after `proxy` (empty segments kept).
    pub tail: &'a [&'a str],
    /// Whether the request path ended with `/`.
    pub trailing_slash: bool,
    /// The whole request path (for the redirect and `X-Forwarded-Uri`).
    pub request_path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// `utilnet.SplitSchemeNamePort`: `name`, `name:port` or `scheme:name:port`, the scheme one
/// of "", `http`, `https`, the name non-empty.
pub fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// Where a request goes: scheme and `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub scheme: String,
    pub host: String,
}

/// `isValidAddress`: the address names a pod that exists and has that IP.
fn valid_address(app: &App, ns: &str, addr: &Value) -> bool {
    let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
    if addr.pointer("/targetRef/kind").and_then(Value::as_str) != Some("Pod") {
        return false;
    }
    let name = addr
        .pointer("/targetRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    app.lock().object("", "pods", ns, name).is_some_and(|p| {
        p.pointer("/status/podIP").and_then(Value::as_str) == Some(ip)
            || p.pointer("/status/podIPs")
                .and_then(Value::as_array)
                .is_some_and(|ips| {
                    ips.iter()
                        .any(|i| i.get("ip").and_then(Value::as_str) == Some(ip))
                })
    })
}

/// The Service's `ResourceLocation`.
pub fn service_location(app: &App, ns: &str, id: &str) -> Result<Location, ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {id:?}")))?;
    let (svc, eps) = {
        let st = app.lock();
        (
            st.object("", "services", ns, name),
            st.object("", "endpoints", ns, name),
        )
    };
    let target = |plural| Target {
        group: "",
        plural,
        name,
    };
    let svc = svc.ok_or_else(|| ApiError::not_found(target("services")))?;
    let mut port_name = port.to_string();
    if let Ok(n) = port.parse::<i64>() {
        port_name = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_i64) == Some(n))
            .map(|p| {
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .ok_or_else(|| {
                ApiError::service_unavailable(format!(
                    "no service port {n} found for service {name:?}"
                ))
            })?;
    }
    let eps = eps.ok_or_else(|| ApiError::not_found(target("endpoints")))?;
    let subsets: Vec<Value> = eps
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if subsets.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service {name:?}"
        )));
    }
    let mut rng = rand::rng();
    let seed = rng.random_range(0..subsets.len());
    for i in 0..subsets.len() {
        let ss = &subsets[(seed + i) % subsets.len()];
        let addrs: Vec<Value> = ss
            .get("addresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if addrs.is_empty() {
            continue;
        }
        let ports = ss.get("ports").and_then(Value::as_array);
        for p in ports.into_iter().flatten() {
            if p.get("name").and_then(Value::as_str).unwrap_or("") != port_name {
                continue;
            }
            let num = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let addr_seed = rng.random_range(0..addrs.len());
            for t in 0..addrs.len() {
                let addr = &addrs[(addr_seed + t) % addrs.len()];
                if !valid_address(app, ns, addr) {
                    continue;
                }
                let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
                return Ok(Location {
                    scheme: scheme.to_string(),
                    host: join_host_port(ip, &num.to_string()),
                });
            }
        }
    }
    Err(ApiError::service_unavailable(format!(
        "no endpoints available for service {id:?}"
    )))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The pod's `ResourceLocation`.
pub fn pod_location(app: &App, ns: &str, id: &str) -> Result<Location, ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid pod request {id:?}")))?;
    let pod = app.lock().object("", "pods", ns, name).ok_or_else(|| {
        ApiError::not_found(Target {
            group: "",
            plural: "pods",
            name,
        })
    })?;
    let mut port = port.to_string();
    if port.is_empty() {
        let first = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_i64));
        if let Some(p) = first {
            port = p.to_string();
        }
    }
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ip.parse::<IpAddr>().is_err() {
        return Err(ApiError::bad_request("address not allowed"));
    }
    let host = if port.is_empty() {
        join_host_port(ip, "80")
    } else {
        join_host_port(ip, &port)
    };
    Ok(Location {
        scheme: scheme.to_string(),
        host,
    })
}

/// Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1, Go's `httputil`).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Response headers `corsRemovingTransport` drops: the backend's CORS policy is not the
/// API server's.
const CORS: &[&str] = &[
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-origin",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        headers.remove(h);
    }
}

/// The backend path: the segments after `proxy` joined, with a leading slash, and a trailing
/// one when the request had it (`getRequestOptions`, `JoinPreservingTrailingSlash`).
fn backend_path(tail: &[&str], trailing_slash: bool) -> String {
    let mut p = format!("/{}", tail.join("/"));
    if trailing_slash && !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// Serves one proxied request.
pub async fn serve(app: &App, req: ProxyRequest<'_>) -> Result<Response, ApiError> {
    let loc = if req.plural == "services" {
        service_location(app, req.namespace, req.id)?
    } else {
        pod_location(app, req.namespace, req.id)?
    };
    // `proxyRedirectsforRootPath`: a bare `.../proxy` GET or HEAD is sent to `.../proxy/`.
    if req.tail.is_empty()
        && !req.trailing_slash
        && matches!(*req.method, Method::GET | Method::HEAD)
    {
        let mut to = format!("{}/", req.request_path);
        if let Some(q) = req.query {
            to.push('?');
            to.push_str(q);
        }
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if let Ok(v) = HeaderValue::from_str(&to) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    if loc.scheme == "https" {
        return Err(unreachable(format!(
            "the kfconform emulator's proxy speaks plain HTTP only (https backend {})",
            loc.host
        )));
    }
    let path = backend_path(req.tail, req.trailing_slash);
    forward(app, &loc, &path, &req).await
}

fn unreachable(why: String) -> ApiError {
    ApiError::service_unavailable(format!("error trying to reach service: {why}"))
}

/// Go's wording of a dial error, which clients match on.
fn dial_error(host: &str, e: &std::io::Error) -> ApiError {
    let why = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        _ => e.to_string(),
    };
    unreachable(format!("dial tcp {host}: connect: {why}"))
}

/// Sends the request to the backend over one HTTP/1.1 connection and returns its answer.
async fn forward(
    app: &App,
    loc: &Location,
    path: &str,
    req: &ProxyRequest<'_>,
) -> Result<Response, ApiError> {
    let addr: SocketAddr = loc.host.parse().map_err(|_| {
        unreachable(format!(
            "dial tcp {}: address {}: invalid port",
            loc.host, loc.host
        ))
    })?;
    let stream =
        match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(dial_error(&loc.host, &e)),
            Err(_) => return Err(unreachable(format!("dial tcp {}: i/o timeout", loc.host))),
        };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let cancel = app.cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = conn => {}
        }
    });
    let uri = match req.query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut out = http::Request::builder()
        .method(req.method.clone())
        .uri(&uri)
        .body(Body::from(req.body.clone()))
        .map_err(|e| ApiError::bad_request(format!("cannot proxy {uri:?}: {e}")))?;
    let mut headers = req.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::AUTHORIZATION);
    let impersonation: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for k in impersonation {
        headers.remove(k);
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded_uri(req.request_path, req.trailing_slash)) {
        headers.insert(HeaderName::from_static("x-forwarded-uri"), v);
    }
    if !headers.contains_key(header::HOST)
        && let Ok(v) = HeaderValue::from_str(&loc.host)
    {
        headers.insert(header::HOST, v);
    }
    *out.headers_mut() = headers;
    let resp = sender
        .send_request(out)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut resp = resp.map(Body::new);
    strip_hop_by_hop(resp.headers_mut());
    for h in CORS {
        resp.headers_mut().remove(*h);
    }
    Ok(resp)
}

/// `X-Forwarded-Uri`: the path the client asked the API server for.
fn forwarded_uri(request_path: &str, trailing_slash: bool) -> String {
    let mut p = request_path.to_string();
    if trailing_slash && !p.ends_with('/') {
        p.push('/');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_like_utilnet() {
        assert_eq!(split_scheme_name_port("svc"), Some(("", "svc", "")));
        assert_eq!(split_scheme_name_port("svc:80"), Some(("", "svc", "80")));
        assert_eq!(
            split_scheme_name_port("https:svc:web"),
            Some(("https", "svc", "web"))
        );
        assert_eq!(split_scheme_name_port("ftp:svc:80"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn backend_paths_keep_slashes() {
        assert_eq!(backend_path(&[], false), "/");
        assert_eq!(backend_path(&[], true), "/");
        assert_eq!(backend_path(&["a", "b"], false), "/a/b");
        assert_eq!(backend_path(&["a", "b"], true), "/a/b/");
        assert_eq!(backend_path(&["a", "", "b"], false), "/a//b");
    }

    #[test]
    fn hop_by_hop_and_listed_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["x-kept"]
        );
    }
}
