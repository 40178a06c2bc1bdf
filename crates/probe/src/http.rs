//! `kfconform probe http`: a small HTTP workload for Deployments, Services, readiness and
//! liveness probes and the API server's proxy. Every answer is deterministic:
//!
//! - `GET /healthz` answers 200 `ok` while the server is healthy, 503 after `POST /unhealthy`
//!   (so a readiness or liveness probe can be made to fail without killing the process);
//! - `POST /healthy` makes it healthy again;
//! - `/status/{code}` answers `code` with a one-line body (proxies must pass codes through);
//! - `POST /exit?code=N` answers, then exits with N (default 1): the container dies;
//! - anything else echoes the request as JSON: `method`, `path`, `query`, `headers`, `body`,
//!   and the pod's `hostname`, so callers can see what a proxy forwarded and which pod answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::json;

/// Options of the `http` role.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// TCP ports to listen on (all addresses of the pod).
    pub ports: Vec<u16>,
}

#[derive(Clone)]
struct Shared {
    healthy: Arc<AtomicBool>,
}

async fn healthz(State(s): State<Shared>) -> Response {
    if s.healthy.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response()
    }
}

async fn set_health(s: &Shared, healthy: bool) -> &'static str {
    s.healthy.store(healthy, Ordering::SeqCst);
    crate::print_line(&format!("kfconform probe http: healthy={healthy}"));
    if healthy { "healthy\n" } else { "unhealthy\n" }
}

async fn status(Path(code): Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(c) => (c, format!("status {code}\n")).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "not a status code\n").into_response(),
    }
}

async fn exit(Query(q): Query<BTreeMap<String, String>>) -> &'static str {
    let code: i32 = q.get("code").and_then(|c| c.parse().ok()).unwrap_or(1);
    crate::print_line(&format!("kfconform probe http: exiting with code {code}"));
    // Answer first, then exit: the caller learns the request arrived.
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        std::process::exit(code);
    });
    "exiting\n"
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let hostname = std::env::var("HOSTNAME").unwrap_or_default();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "hostname": hostname,
    }))
    .into_response()
}

fn router() -> Router {
    let shared = Shared {
        healthy: Arc::new(AtomicBool::new(true)),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/unhealthy",
            post(|State(s): State<Shared>| async move { set_health(&s, false).await }),
        )
        .route(
            "/healthy",
            post(|State(s): State<Shared>| async move { set_health(&s, true).await }),
        )
        .route("/status/{code}", any(status))
        .route("/exit", post(exit))
        .fallback(echo)
        .with_state(shared)
}

/// Serves until the process is killed; an error only if a port cannot be bound.
pub async fn run(opts: &HttpOptions) -> std::io::Result<()> {
    let app = router();
    let mut servers = Vec::new();
    for port in &opts.ports {
        let addr = SocketAddr::from(([0, 0, 0, 0], *port));
        let listener = bind(addr).await?;
        crate::print_line(&format!(
            "kfconform probe http: listening on {}",
            listener.local_addr()?
        ));
        servers.push(tokio::spawn(
            axum::serve(listener, app.clone()).into_future(),
        ));
    }
    for s in servers {
        match s.await {
            Ok(res) => res?,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    Ok(())
}

/// Binds the pod's own address when the kubelet names one (pods share the host's network
/// namespace in the emulator, so `0.0.0.0:8080` would collide between pods), else `addr`.
async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let ip = std::env::var(crate::ENV_POD_IP)
        .ok()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    let addr = match ip {
        Some(ip) => SocketAddr::new(ip, addr.port()),
        None => addr,
    };
    tokio::net::TcpListener::bind(addr).await
}
