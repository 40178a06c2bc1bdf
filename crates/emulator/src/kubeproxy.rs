//! The service proxy: what kube-proxy does for ClusterIP Services, in the shape of its old
//! userspace mode (kubernetes/kubernetes `pkg/proxy/userspace/proxier.go`, `roundrobin.go`,
//! `proxysocket.go`, removed in 1.26). Every Service has a loopback cluster IP (allocated from
//! the default ServiceCIDR, see ARCHITECTURE.md "Pod network"); for each TCP service port the
//! proxy listens on `clusterIP:port` and forwards each accepted connection to the next ready
//! endpoint of that port (round-robin), as the Service's EndpointSlices name them (the
//! slice port with the service port's name gives the target port). When no endpoint is
//! ready, the terminating endpoints that still serve are used (kube-proxy's
//! ProxyTerminatingEndpoints); with none at all the connection is closed at once, as the
//! userspace proxy did. With `sessionAffinity: ClientIP` a client address keeps going to the
//! endpoint it last reached until `timeoutSeconds` pass (default 3 h), as the userspace
//! load balancer's affinity did.
//!
//! One task follows the store's events and re-reads Services and EndpointSlices when they
//! change; listeners come and go with their service ports, and all of them stop on shutdown.
//! A port that cannot be bound (another emulator holds the address) is logged and retried at
//! the next change. Not proxied: UDP/SCTP ports, cluster IPs outside 127/8 (admission keeps
//! chosen ones inside the loopback ServiceCIDR), NodePorts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::App;
use crate::store::meta_str;

/// How long one endpoint may take to accept before the next is tried (the userspace proxy's
/// `EndpointDialTimeouts` started at 250 ms and doubled; loopback answers at once or never).
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// A service port: namespace, Service name, port name.
type PortKey = (String, String, String);

/// The endpoints of one service port, the round-robin cursor over them, and with
/// `sessionAffinity: ClientIP` the endpoint each client address last went to.
#[derive(Debug, Default)]
struct Backends {
    endpoints: Vec<SocketAddr>,
    next: usize,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` when affinity is on.
    affinity: Option<Duration>,
    sticky: HashMap<IpAddr, (SocketAddr, Instant)>,
}

/// One listening service port.
#[derive(Debug)]
struct Listener {
    addr: SocketAddr,
    backends: Arc<Mutex<Backends>>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Inner {
    listeners: HashMap<PortKey, Listener>,
    shutting_down: bool,
}

/// The proxy's state: the listening service ports, and what they forward to as a watchable
/// snapshot (listening address → number of endpoints), so callers can wait for a change to
/// take effect instead of polling.
#[derive(Debug)]
pub struct ServiceProxy {
    inner: Mutex<Inner>,
    serving: tokio::sync::watch::Sender<BTreeMap<SocketAddr, usize>>,
}

impl Default for ServiceProxy {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            serving: tokio::sync::watch::Sender::new(BTreeMap::new()),
        }
    }
}

impl ServiceProxy {
    /// A proxy with no listeners yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until the proxy listens on `addr` and forwards to exactly `endpoints` endpoints.
    pub async fn wait_serving(&self, addr: SocketAddr, endpoints: usize) {
        let mut rx = self.serving.subscribe();
        // The sender lives as long as `self`, so the wait ends only when the state is reached.
        let _ = rx
            .wait_for(|m| m.get(&addr).is_some_and(|n| *n == endpoints))
            .await;
    }

    fn publish(&self) {
        let snapshot: BTreeMap<SocketAddr, usize> = self
            .lock()
            .listeners
            .values()
            .map(|l| (l.addr, lock_backends(&l.backends).endpoints.len()))
            .collect();
        self.serving.send_if_modified(|m| {
            let changed = *m != snapshot;
            *m = snapshot;
            changed
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses listened on now (for tests and diagnostics).
    pub fn listening(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.lock().listeners.values().map(|l| l.addr).collect();
        v.sort();
        v
    }
}

fn lock_backends(b: &Mutex<Backends>) -> MutexGuard<'_, Backends> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// A service port the proxy should serve: where it listens and where it forwards.
#[derive(Debug, Clone, PartialEq)]
struct Desired {
    addr: SocketAddr,
    endpoints: Vec<SocketAddr>,
    affinity: Option<Duration>,
}

/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
const AFFINITY_DEFAULT: Duration = Duration::from_secs(10800);

/// The client-IP affinity timeout of a Service with `sessionAffinity: ClientIP`.
fn affinity(svc: &Value) -> Option<Duration> {
    if svc.pointer("/spec/sessionAffinity").and_then(Value::as_str) != Some("ClientIP") {
        return None;
    }
    let secs = svc
        .pointer("/spec/sessionAffinityConfig/clientIP/timeoutSeconds")
        .and_then(Value::as_u64);
    Some(secs.map_or(AFFINITY_DEFAULT, Duration::from_secs))
}

/// The endpoints of the service port `port_name` in the Service's slices: ready ones, or
/// else the serving terminating ones.
fn slice_endpoints(slices: &[&Value], port_name: &str) -> Vec<SocketAddr> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in slices {
        let port = slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| {
                p.get("name").and_then(Value::as_str).unwrap_or("") == port_name
                    && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == "TCP"
            })
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        let eps = slice.get("endpoints").and_then(Value::as_array);
        for ep in eps.into_iter().flatten() {
            let Some(ip) = ep
                .pointer("/addresses/0")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            // A nil condition counts as true (discovery/v1 EndpointConditions).
            let cond = |c: &str| {
                ep.pointer(&format!("/conditions/{c}"))
                    .and_then(Value::as_bool)
            };
            let addr = SocketAddr::from((ip, port));
            if cond("ready").unwrap_or(true) {
                ready.push(addr);
            } else if cond("serving").unwrap_or(true) && cond("terminating").unwrap_or(false) {
                terminating.push(addr);
            }
        }
    }
    let mut out = if ready.is_empty() { terminating } else { ready };
    out.sort();
    out.dedup();
    out
}

/// What to serve for the current Services and EndpointSlices.
fn desired(services: &[Value], slices: &[Value]) -> BTreeMap<PortKey, Desired> {
    let mut by_service: BTreeMap<(&str, &str), Vec<&Value>> = BTreeMap::new();
    for s in slices {
        let svc = s
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
            .unwrap_or("");
        by_service
            .entry((meta_str(s, "namespace"), svc))
            .or_default()
            .push(s);
    }
    let mut out = BTreeMap::new();
    for svc in services {
        let (ns, name) = (meta_str(svc, "namespace"), meta_str(svc, "name"));
        let ty = svc.pointer("/spec/type").and_then(Value::as_str);
        let ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .filter(Ipv4Addr::is_loopback);
        let Some(ip) = ip.filter(|_| ty != Some("ExternalName")) else {
            continue;
        };
        let slices = by_service.get(&(ns, name)).cloned().unwrap_or_default();
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let tcp = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == "TCP";
            let port = p
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok());
            let (true, Some(port)) = (tcp, port) else {
                continue;
            };
            let port_name = p.get("name").and_then(Value::as_str).unwrap_or("");
            out.insert(
                (ns.to_string(), name.to_string(), port_name.to_string()),
                Desired {
                    addr: SocketAddr::from((ip, port)),
                    endpoints: slice_endpoints(&slices, port_name),
                    affinity: affinity(svc),
                },
            );
        }
    }
    out
}

/// Starts the proxy's loop; it ends when the emulator is cancelled.
pub fn start(app: App, proxy: Arc<ServiceProxy>) -> JoinHandle<()> {
    let mut rx = app.lock().subscribe();
    tokio::spawn(async move {
        sync(&app, &proxy).await;
        loop {
            let mut dirty = false;
            tokio::select! {
                _ = app.cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) => dirty |= relevant(&ev.res),
                    Err(RecvError::Lagged(_)) => dirty = true,
                    Err(RecvError::Closed) => return,
                },
            }
            loop {
                match rx.try_recv() {
                    Ok(ev) => dirty |= relevant(&ev.res),
                    Err(TryRecvError::Lagged(_)) => dirty = true,
                    Err(_) => break,
                }
            }
            if dirty {
                sync(&app, &proxy).await;
            }
        }
    })
}

fn relevant(res: &(String, String)) -> bool {
    matches!(
        (res.0.as_str(), res.1.as_str()),
        ("", "services") | ("discovery.k8s.io", "endpointslices")
    )
}

/// Brings the listeners in line with the Services and their endpoints, then publishes what
/// is served.
async fn sync(app: &App, proxy: &ServiceProxy) {
    reconcile(app, proxy).await;
    proxy.publish();
}

async fn reconcile(app: &App, proxy: &ServiceProxy) {
    let want = {
        let st = app.lock();
        desired(
            &st.objects_of("", "services"),
            &st.objects_of("discovery.k8s.io", "endpointslices"),
        )
    };
    let to_bind: Vec<(PortKey, Desired)> = {
        let mut g = proxy.lock();
        if g.shutting_down {
            return;
        }
        let stale: Vec<PortKey> = g
            .listeners
            .iter()
            .filter(|(k, l)| want.get(*k).is_none_or(|d| d.addr != l.addr))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(l) = g.listeners.remove(&k) {
                l.cancel.cancel();
            }
        }
        for (k, d) in &want {
            if let Some(l) = g.listeners.get(k) {
                let mut b = lock_backends(&l.backends);
                if b.endpoints != d.endpoints {
                    b.endpoints = d.endpoints.clone();
                    b.next = 0;
                    let live = b.endpoints.clone();
                    b.sticky.retain(|_, (ep, _)| live.contains(ep));
                }
                if b.affinity != d.affinity {
                    b.affinity = d.affinity;
                    b.sticky.clear();
                }
            }
        }
        want.into_iter()
            .filter(|(k, _)| !g.listeners.contains_key(k))
            .collect()
    };
    for (key, d) in to_bind {
        let listener = match TcpListener::bind(d.addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(addr = %d.addr, service = %format!("{}/{}", key.0, key.1), error = %e, "service proxy cannot listen");
                continue;
            }
        };
        let backends = Arc::new(Mutex::new(Backends {
            endpoints: d.endpoints,
            affinity: d.affinity,
            ..Backends::default()
        }));
        let cancel = app.cancel.child_token();
        let task = tokio::spawn(serve(listener, backends.clone(), cancel.clone()));
        let mut g = proxy.lock();
        if g.shutting_down {
            cancel.cancel();
            continue;
        }
        if let Some(old) = g.listeners.insert(
            key,
            Listener {
                addr: d.addr,
                backends,
                cancel,
                task,
            },
        ) {
            old.cancel.cancel();
        }
    }
}

/// Accepts on one service port until cancelled, forwarding each connection.
async fn serve(listener: TcpListener, backends: Arc<Mutex<Backends>>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                tokio::spawn(forward(client, peer.ip(), backends.clone(), cancel.clone()));
            }
            Err(e) => tracing::debug!(error = %e, "service proxy accept failed"),
        }
    }
}

/// The endpoints to try for a client, in order: its sticky endpoint first while affinity
/// holds, then round-robin from the next one (`roundrobin.go` `NextEndpoint`).
fn rotation(backends: &Mutex<Backends>, client: IpAddr, now: Instant) -> Vec<SocketAddr> {
    let mut b = lock_backends(backends);
    let n = b.endpoints.len();
    if n == 0 {
        return Vec::new();
    }
    let sticky = b.affinity.and_then(|ttl| {
        b.sticky
            .get(&client)
            .filter(|(ep, at)| now.duration_since(*at) < ttl && b.endpoints.contains(ep))
            .map(|(ep, _)| *ep)
    });
    let start = b.next % n;
    let mut order: Vec<SocketAddr> = (0..n).map(|i| b.endpoints[(start + i) % n]).collect();
    match sticky {
        Some(ep) => {
            order.retain(|e| *e != ep);
            order.insert(0, ep);
        }
        None => b.next = (start + 1) % n,
    }
    order
}

/// Records the endpoint a client went to, when the service port has affinity.
fn remember(backends: &Mutex<Backends>, client: IpAddr, ep: SocketAddr, now: Instant) {
    let mut b = lock_backends(backends);
    if b.affinity.is_some() {
        b.sticky.insert(client, (ep, now));
    }
}

/// Connects the client to an endpoint (the next one that accepts) and copies both ways.
async fn forward(
    mut client: TcpStream,
    peer: IpAddr,
    backends: Arc<Mutex<Backends>>,
    cancel: CancellationToken,
) {
    let mut upstream = None;
    for ep in rotation(&backends, peer, Instant::now()) {
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(s)) => {
                remember(&backends, peer, ep, Instant::now());
                upstream = Some(s);
                break;
            }
            Ok(Err(e)) => tracing::debug!(endpoint = %ep, error = %e, "service proxy dial failed"),
            Err(_) => tracing::debug!(endpoint = %ep, "service proxy dial timed out"),
        }
    }
    let Some(mut upstream) = upstream else {
        // No endpoint: the connection is closed, as the userspace proxy did.
        return;
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
    }
}

/// Stops every listener and waits (bounded) for their tasks.
pub async fn shutdown(proxy: &ServiceProxy) {
    let tasks: Vec<JoinHandle<()>> = {
        let mut g = proxy.lock();
        g.shutting_down = true;
        g.listeners
            .drain()
            .map(|(_, l)| {
                l.cancel.cancel();
                l.task
            })
            .collect()
    };
    let wait = futures::future::join_all(tasks);
    if tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .is_err()
    {
        tracing::warn!("service proxy: some listeners did not stop in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_endpoints_of_the_named_port() {
        let slices = vec![json!({
            "metadata": {"namespace": "ns", "name": "s-1",
                         "labels": {"kubernetes.io/service-name": "s"}},
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["127.0.0.3"], "conditions": {"ready": true}},
                {"addresses": ["127.0.0.2"], "conditions": {}},
                {"addresses": ["127.0.0.4"], "conditions": {"ready": false, "serving": true, "terminating": true}},
            ],
        })];
        let services = vec![json!({
            "metadata": {"namespace": "ns", "name": "s"},
            "spec": {"clusterIP": "127.5.0.11", "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"}]},
        })];
        let d = desired(&services, &slices);
        assert_eq!(d.len(), 1);
        let got = &d[&("ns".into(), "s".into(), "http".into())];
        assert_eq!(got.addr, "127.5.0.11:80".parse().unwrap());
        assert_eq!(
            got.endpoints,
            vec![
                "127.0.0.2:8080".parse().unwrap(),
                "127.0.0.3:8080".parse().unwrap()
            ]
        );
    }

    #[test]
    fn round_robin_starts_at_the_next_endpoint() {
        let (a, c): (SocketAddr, SocketAddr) = (
            "127.0.0.2:1".parse().unwrap(),
            "127.0.0.3:1".parse().unwrap(),
        );
        let b = Mutex::new(Backends {
            endpoints: vec![a, c],
            ..Backends::default()
        });
        let client: IpAddr = "127.0.0.9".parse().unwrap();
        let now = Instant::now();
        assert_eq!(rotation(&b, client, now), vec![a, c]);
        assert_eq!(rotation(&b, client, now), vec![c, a]);
        assert_eq!(rotation(&b, client, now)[0], a);
        // With client-IP affinity, a client keeps its endpoint until the timeout.
        lock_backends(&b).affinity = Some(Duration::from_secs(10));
        remember(&b, client, c, now);
        assert_eq!(rotation(&b, client, now)[0], c);
        assert_eq!(rotation(&b, client, now)[0], c);
        let later = now + Duration::from_secs(11);
        assert_eq!(
            rotation(&b, client, later)[0],
            c,
            "round-robin resumes at c"
        );
        assert_eq!(rotation(&b, client, later)[0], a);
    }
}
