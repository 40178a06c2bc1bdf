//! Container probes: startup, readiness and liveness, as kubernetes pkg/kubelet/prober runs
//! them (prober.go: one probe and its Unhealthy event; worker.go: delays, periods and
//! thresholds; pkg/probe/http and pkg/probe/tcp: what success is and the failure output).
//!
//! One task per running container instance probes it: the startup probe first (liveness and
//! readiness are not run before it succeeds, as worker.go skips them), then readiness and
//! liveness side by side. Results go back to the pod worker, which owns the container
//! statuses and kills the instance when liveness or startup fails.
//!
//! `exec` and `grpc` probes cannot run here (probe pods run only `kfconform probe`): they
//! take upstream's errored path, an `Unhealthy` Warning "... probe errored and resulted in
//! unknown state: ..." with the result thrown away, so such a container never becomes ready
//! through that probe and is never killed by it. HTTPS probes take the same path.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::PodRef;
use crate::events::EventType;

/// Which probe (worker.go's probeType; its `%s` is the capitalised name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
        }
    }

    /// The lower-case name the Killing message uses ("failed liveness probe").
    pub(crate) fn lower(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Readiness => "readiness",
            Kind::Liveness => "liveness",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Kind::Startup => "startupProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Liveness => "livenessProbe",
        }
    }
}

/// A port as a probe names it: a number or a container port's name.
#[derive(Debug, Clone, PartialEq)]
enum PortRef {
    Number(i64),
    Name(String),
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Http {
        host: Option<String>,
        port: PortRef,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: Option<String>,
        port: PortRef,
    },
    /// A handler this node cannot run, with the error it reports.
    Unsupported(String),
}

/// One probe of a container spec, with upstream's defaults (core/v1 Probe).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    action: Action,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
}

fn port_ref(v: Option<&Value>) -> PortRef {
    match v {
        Some(Value::Number(n)) => PortRef::Number(n.as_i64().unwrap_or(-1)),
        Some(Value::String(s)) => PortRef::Name(s.clone()),
        _ => PortRef::Number(-1),
    }
}

fn secs(p: &Value, key: &str, default: u64) -> u64 {
    p.get(key).and_then(Value::as_u64).unwrap_or(default)
}

impl Spec {
    /// The probe `kind` of container spec `c`, if it has one.
    pub(crate) fn of(c: &Value, kind: Kind) -> Option<Spec> {
        let p = c.get(kind.field()).filter(|p| p.is_object())?;
        let host = |h: &Value| {
            h.get("host")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let action = if let Some(h) = p.get("httpGet") {
            let scheme = h.get("scheme").and_then(Value::as_str).unwrap_or("HTTP");
            if scheme.eq_ignore_ascii_case("https") {
                Action::Unsupported(
                    "HTTPS probes cannot run on the kfconform emulator's node".into(),
                )
            } else {
                let headers = h
                    .get("httpHeaders")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| {
                        Some((
                            x.get("name")?.as_str()?.to_string(),
                            x.get("value")?.as_str()?.to_string(),
                        ))
                    })
                    .collect();
                Action::Http {
                    host: host(h),
                    port: port_ref(h.get("port")),
                    path: h
                        .get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("/")
                        .to_string(),
                    headers,
                }
            }
        } else if let Some(t) = p.get("tcpSocket") {
            Action::Tcp {
                host: host(t),
                port: port_ref(t.get("port")),
            }
        } else if p.get("exec").is_some() {
            Action::Unsupported(
                "exec probes cannot run on the kfconform emulator's node (probe pods run only \
                 `kfconform probe`): use an httpGet or tcpSocket probe"
                    .into(),
            )
        } else if p.get("grpc").is_some() {
            Action::Unsupported("grpc probes cannot run on the kfconform emulator's node".into())
        } else {
            Action::Unsupported("missing probe handler".into())
        };
        Some(Spec {
            action,
            initial_delay: Duration::from_secs(secs(p, "initialDelaySeconds", 0)),
            period: Duration::from_secs(secs(p, "periodSeconds", 10).max(1)),
            timeout: Duration::from_secs(secs(p, "timeoutSeconds", 1).max(1)),
            success_threshold: secs(p, "successThreshold", 1).max(1) as u32,
            failure_threshold: secs(p, "failureThreshold", 3).max(1) as u32,
        })
    }
}

/// Whether container spec `c` has any probe.
pub(crate) fn any(c: &Value) -> bool {
    [Kind::Startup, Kind::Readiness, Kind::Liveness]
        .iter()
        .any(|k| Spec::of(c, *k).is_some())
}

/// One probe's result (pkg/probe: Success, Failure with its output; an error means Unknown).
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Success,
    Failure(String),
    Error(String),
}

/// The port number `port` names in container `c` (prober.go extractPort / findPortByName:
/// a name is looked up among the container's ports, then read as a number).
fn resolve_port(port: &PortRef, c: &Value) -> Result<u16, String> {
    let n = match port {
        PortRef::Number(n) => *n,
        PortRef::Name(name) => c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
            .or_else(|| name.parse().ok())
            .ok_or_else(|| format!("unable to find port {name:?} in container"))?,
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

/// Go's net error text for a failed dial (`connect: connection refused`).
fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

/// Joins host and port as Go's net.JoinHostPort does.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An HTTP GET (pkg/probe/http): 200-399 is success, anything else fails with
/// "HTTP probe failed with statuscode: N"; transport errors fail with Go's client error text.
/// Redirects are not followed (a 3xx is a success, as upstream's same-host redirect to a
/// healthy page would be).
async fn http_get(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
    agent: &str,
) -> Outcome {
    let url = format!("http://{addr}{path}");
    let attempt = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("Get {url:?}: dial tcp {addr}: {}", dial_error(&e)))?;
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        let mut req = format!("GET {path} HTTP/1.1\r\n");
        if !has("host") {
            req.push_str(&format!("Host: {addr}\r\n"));
        }
        if !has("user-agent") {
            req.push_str(&format!("User-Agent: {agent}\r\n"));
        }
        if !has("accept") {
            req.push_str("Accept: */*\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
            if n == 0 {
                return Err(format!("Get {url:?}: EOF"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("Get {url:?}: malformed HTTP response"))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(out)) => Outcome::Failure(out),
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// A TCP connect (pkg/probe/tcp): success when it connects.
async fn tcp_connect(addr: &str, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {}", dial_error(&e))),
        Ok(Ok(_)) => Outcome::Success,
    }
}

/// What a probing task reports to the pod worker, about the instance `id` of container `idx`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub idx: usize,
    pub id: String,
    pub what: Reported,
}

/// A change a probe decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reported {
    /// The startup probe succeeded.
    Started,
    /// Readiness changed.
    Ready(bool),
    /// Liveness or startup failed: the container is to be killed and restarted.
    Kill(Kind),
}

/// Everything a probing task needs about one container instance.
pub(crate) struct Probing {
    pub pod: PodRef,
    pub idx: usize,
    pub id: String,
    /// The container spec.
    pub spec: Value,
    pub pod_ip: String,
    /// When the instance started (initial delays count from here).
    pub started: Instant,
    /// `kube-probe/<major>.<minor>`.
    pub agent: String,
    pub tx: UnboundedSender<Report>,
    /// Fires when the instance ends.
    pub cancel: CancellationToken,
}

impl Probing {
    fn field_path(&self) -> String {
        format!(
            "spec.containers{{{}}}",
            self.spec["name"].as_str().unwrap_or("")
        )
    }

    fn send(&self, what: Reported) {
        let _ = self.tx.send(Report {
            idx: self.idx,
            id: self.id.clone(),
            what,
        });
    }

    async fn run_once(&self, spec: &Spec) -> Outcome {
        let (host, port) = match &spec.action {
            Action::Unsupported(e) => return Outcome::Error(e.clone()),
            Action::Http { host, port, .. } | Action::Tcp { host, port } => (host, port),
        };
        let port = match resolve_port(port, &self.spec) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let addr = host_port(host.as_deref().unwrap_or(&self.pod_ip), port);
        match &spec.action {
            Action::Http { path, headers, .. } => {
                let path = if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                };
                http_get(&addr, &path, headers, spec.timeout, &self.agent).await
            }
            _ => tcp_connect(&addr, spec.timeout).await,
        }
    }

    /// Runs one probe worker (worker.go doProbe) until it reaches a verdict that ends it:
    /// startup succeeded, or startup/liveness failed. Readiness runs until the instance ends.
    /// Returns whether the verdict was a success.
    async fn work(&self, kind: Kind, spec: Spec) -> bool {
        let first = self.started + spec.initial_delay;
        tokio::select! {
            _ = self.cancel.cancelled() => return false,
            _ = tokio::time::sleep_until(first) => {}
        }
        // Initial results: readiness Failure, liveness Success, startup Unknown.
        let mut current = match kind {
            Kind::Readiness => Some(false),
            Kind::Liveness => Some(true),
            Kind::Startup => None,
        };
        let (mut last, mut run) = (None::<bool>, 0u32);
        loop {
            let result = match self.run_once(&spec).await {
                Outcome::Success => Some(true),
                Outcome::Failure(out) => {
                    self.pod.event(
                        EventType::Warning,
                        "Unhealthy",
                        Some(self.field_path()),
                        format!("{} probe failed: {out}", kind.title()),
                    );
                    Some(false)
                }
                Outcome::Error(e) => {
                    self.pod.event(
                        EventType::Warning,
                        "Unhealthy",
                        Some(self.field_path()),
                        format!(
                            "{} probe errored and resulted in unknown state: {e}",
                            kind.title()
                        ),
                    );
                    // A prober error throws the result away.
                    None
                }
            };
            if let Some(ok) = result {
                if last == Some(ok) {
                    run += 1;
                } else {
                    (last, run) = (Some(ok), 1);
                }
                let held = if ok {
                    run < spec.success_threshold
                } else {
                    run < spec.failure_threshold
                };
                if !held && current != Some(ok) {
                    current = Some(ok);
                    match (kind, ok) {
                        (Kind::Readiness, _) => self.send(Reported::Ready(ok)),
                        (Kind::Startup, true) => {
                            self.send(Reported::Started);
                            return true;
                        }
                        (_, false) => {
                            self.send(Reported::Kill(kind));
                            return false;
                        }
                        (Kind::Liveness, true) => {}
                    }
                }
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = tokio::time::sleep(spec.period) => {}
            }
        }
    }

    /// Probes the instance until it ends: startup first, then readiness and liveness.
    pub(crate) async fn run(self) {
        if let Some(s) = Spec::of(&self.spec, Kind::Startup)
            && !self.work(Kind::Startup, s).await
        {
            return;
        }
        let ready = async {
            if let Some(s) = Spec::of(&self.spec, Kind::Readiness) {
                self.work(Kind::Readiness, s).await;
            }
        };
        let live = async {
            if let Some(s) = Spec::of(&self.spec, Kind::Liveness) {
                self.work(Kind::Liveness, s).await;
            }
        };
        tokio::join!(ready, live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_take_upstream_defaults() {
        let c = json!({"name": "m", "readinessProbe": {"httpGet": {"port": "web", "path": "/healthz"}}});
        let s = Spec::of(&c, Kind::Readiness).unwrap();
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
        assert!(Spec::of(&c, Kind::Liveness).is_none());
        let e = json!({"livenessProbe": {"exec": {"command": ["true"]}}});
        assert!(matches!(
            Spec::of(&e, Kind::Liveness).unwrap().action,
            Action::Unsupported(_)
        ));
    }

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c = json!({"ports": [{"name": "web", "containerPort": 8080}]});
        assert_eq!(resolve_port(&PortRef::Name("web".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&PortRef::Name("81".into()), &c), Ok(81));
        assert!(resolve_port(&PortRef::Name("db".into()), &c).is_err());
        assert!(resolve_port(&PortRef::Number(0), &c).is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_fails_with_go_text() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let out = tcp_connect(&addr, Duration::from_secs(1)).await;
        assert_eq!(
            out,
            Outcome::Failure(format!("dial tcp {addr}: connect: connection refused"))
        );
    }
}
