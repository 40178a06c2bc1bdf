//! Services that route: Endpoints and EndpointSlices follow ready pods, a ClusterIP Service's
//! loopback address forwards `port` to the endpoints' `targetPort` (from this process and from
//! inside a pod), and the API server's proxy (`services/.../proxy`, `pods/.../proxy`) with
//! RBAC, header, query, body and status pass-through.

use crate::util;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kfconform_emulator::Emulator;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

async fn start() -> Emulator {
    util::probe_emulator().await
}

async fn namespace(emu: &Emulator, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(util::client(emu));
    let obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A probe pod serving HTTP on 8080 (declared as containerPort `http`), labelled `app`.
fn http_pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{
            "name": "main", "image": IMAGE,
            "args": ["probe", "http", "--port", "8080"],
            "ports": [{"name": "http", "containerPort": 8080}],
        }]}
    }))
    .unwrap()
}

fn service(name: &str, app: &str, target_port: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"tier": "web"}},
        "spec": {"selector": {"app": app},
                 "ports": [{"name": "web", "port": 80, "targetPort": target_port}]}
    }))
    .unwrap()
}

/// Creates an HTTP pod and waits until it is Ready and its server listens (without a
/// readiness probe a pod is Ready as soon as its process runs, before it has bound its port).
async fn run_pod(pods: &Api<Pod>, pod: Pod) -> Pod {
    let name = pod.metadata.name.clone().unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let p = util::wait_for(pods, &name, util::pod_ready).await;
    wait_listening(pods, &name).await;
    p
}

/// Follows the pod's log until the probe's `listening on` line.
pub async fn wait_listening(pods: &Api<Pod>, name: &str) {
    use futures::AsyncBufReadExt as _;
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream(name, &follow).await.unwrap().lines();
    util::within(&format!("{name} listening"), async {
        while let Some(line) = lines.next().await {
            if line.unwrap().contains("kfconform probe http: listening on") {
                return;
            }
        }
        panic!("the log of {name} ended before the server listened");
    })
    .await;
}

fn pod_ip(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap()
}

/// Watches the Service's EndpointSlices until `cond` holds for the set; returns it.
async fn wait_slices(
    api: &Api<EndpointSlice>,
    svc: &str,
    cond: impl Fn(&[EndpointSlice]) -> bool,
) -> Vec<EndpointSlice> {
    let cfg = watcher::Config::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg));
    let mut seen: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut init: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    util::within(&format!("the EndpointSlices of {svc}"), async {
        while let Some(ev) = stream.next().await {
            let name = |s: &EndpointSlice| s.metadata.name.clone().unwrap_or_default();
            match ev.unwrap() {
                watcher::Event::Apply(s) => {
                    seen.insert(name(&s), s);
                }
                watcher::Event::Delete(s) => {
                    seen.remove(&name(&s));
                }
                watcher::Event::Init => init.clear(),
                watcher::Event::InitApply(s) => {
                    init.insert(name(&s), s);
                }
                watcher::Event::InitDone => seen = std::mem::take(&mut init),
            }
            let now: Vec<EndpointSlice> = seen.values().cloned().collect();
            if cond(&now) {
                return now;
            }
        }
        panic!("the watch ended");
    })
    .await
}

fn ready_addresses(slices: &[EndpointSlice]) -> Vec<String> {
    let mut v: Vec<String> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .flat_map(|e| e.addresses.clone())
        .collect();
    v.sort();
    v
}

fn endpoints_ips(ep: &Endpoints) -> Vec<String> {
    let mut v: Vec<String> = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .map(|a| a.ip.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn endpoints_and_slices_follow_ready_pods() {
    let emu = start().await;
    let c = util::client(&emu);
    namespace(&emu, "eps").await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "eps");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "eps");
    let eps: Api<Endpoints> = Api::namespaced(c.clone(), "eps");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "eps");
    let svc = svcs
        .create(
            &PostParams::default(),
            &service("web", "web", json!("http")),
        )
        .await
        .unwrap();
    // No pods yet: an Endpoints without subsets and one placeholder slice.
    let ep = util::wait_for(&eps, "web", |_| true).await;
    assert!(ep.subsets.is_none(), "{ep:?}");
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels["endpoints.kubernetes.io/managed-by"],
        "endpoint-controller"
    );
    assert_eq!(labels["tier"], "web");
    let placeholder = wait_slices(&slices, "web", |s| s.len() == 1).await;
    assert!(placeholder[0].endpoints.is_empty());
    let a = run_pod(&pods, http_pod("web-a", "web")).await;
    let b = run_pod(&pods, http_pod("web-b", "web")).await;
    let want = {
        let mut v = vec![pod_ip(&a), pod_ip(&b)];
        v.sort();
        v
    };
    let ep = util::wait_for(&eps, "web", |e| endpoints_ips(e) == want).await;
    let subset = &ep.subsets.unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("web"), 8080, Some("TCP"))
    );
    let addr = &subset.addresses.as_ref().unwrap()[0];
    let target = addr.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(addr.node_name.as_deref(), Some("kfconform-node"));
    let got = wait_slices(&slices, "web", |s| ready_addresses(s) == want).await;
    assert_eq!(got.len(), 1, "one slice for one port set: {got:?}");
    let slice = &got[0];
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(labels["tier"], "web");
    assert!(slice.metadata.name.as_deref().unwrap().starts_with("web-"));
    assert_eq!(slice.address_type, "IPv4");
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    assert_eq!(Some(&owner.uid), svc.metadata.uid.as_ref());
    let sp = &slice.ports.as_ref().unwrap()[0];
    assert_eq!((sp.name.as_deref(), sp.port), (Some("web"), Some(8080)));
    let e = &slice.endpoints[0];
    let cond = e.conditions.as_ref().unwrap();
    assert_eq!(
        (cond.ready, cond.serving, cond.terminating),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(e.node_name.as_deref(), Some("kfconform-node"));
    assert!(e.target_ref.as_ref().unwrap().name.is_some());
    // A deleted pod leaves both.
    pods.delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&pods, "web-a").await;
    let only_b = vec![pod_ip(&b)];
    util::wait_for(&eps, "web", |e| endpoints_ips(e) == only_b).await;
    wait_slices(&slices, "web", |s| ready_addresses(s) == only_b).await;
    // The Service's deletion takes its Endpoints (the controller) and slices (GC).
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    util::wait_gone(&eps, "web").await;
    wait_slices(&slices, "web", |s| s.is_empty()).await;
    emu.shutdown().await;
}

/// The Service's `clusterIP:80`.
async fn cluster_addr(svcs: &Api<Service>, name: &str) -> SocketAddr {
    let svc = svcs.get(name).await.unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    format!("{ip}:80").parse().unwrap()
}

/// GET over a fresh connection (no keep-alive, so each request is proxied anew).
async fn get_fresh(url: &str) -> (u16, Value) {
    util::send(
        reqwest::Client::new()
            .get(url)
            .header("connection", "close"),
    )
    .await
}

#[tokio::test]
async fn cluster_ip_forwards_port_80_to_target_port_8080() {
    let emu = start().await;
    let c = util::client(&emu);
    namespace(&emu, "route").await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "route");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "route");
    svcs.create(&PostParams::default(), &service("num", "web", json!(8080)))
        .await
        .unwrap();
    svcs.create(
        &PostParams::default(),
        &service("named", "web", json!("http")),
    )
    .await
    .unwrap();
    run_pod(&pods, http_pod("web-a", "web")).await;
    run_pod(&pods, http_pod("web-b", "web")).await;
    let cidr = emu.service_cidr();
    assert!(
        cidr.starts_with("127.") && cidr.ends_with(".0.0/16"),
        "{cidr}"
    );
    // A chosen clusterIP outside the range is refused with the allocator's message.
    let mut outside = service("outside", "web", json!(8080));
    outside.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.50".into());
    match svcs.create(&PostParams::default(), &outside).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert_eq!(
                s.message,
                format!(
                    "Service \"outside\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.50\"]: failed to allocate IP 10.96.0.50: provided IP is not in the valid range. The range of valid IPs is {cidr}"
                )
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    for name in ["num", "named"] {
        let addr = cluster_addr(&svcs, name).await;
        let prefix = cidr.split('.').take(2).collect::<Vec<_>>().join(".");
        assert!(
            addr.ip().to_string().starts_with(&prefix),
            "{addr} in {cidr}"
        );
        util::within("the proxy", emu.wait_service_proxy(addr, 2)).await;
        let mut hosts = Vec::new();
        for _ in 0..2 {
            let (code, body) = get_fresh(&format!("http://{addr}/hello?x=1")).await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(
                (body["path"].as_str(), body["query"].as_str()),
                (Some("/hello"), Some("x=1"))
            );
            hosts.push(body["hostname"].as_str().unwrap().to_string());
        }
        hosts.sort();
        assert_eq!(
            hosts,
            vec!["web-a", "web-b"],
            "round-robin over both endpoints"
        );
    }
    // sessionAffinity ClientIP: this process keeps reaching the same endpoint.
    let mut sticky = service("sticky", "web", json!(8080));
    sticky.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    svcs.create(&PostParams::default(), &sticky).await.unwrap();
    let addr = cluster_addr(&svcs, "sticky").await;
    util::within("the proxy", emu.wait_service_proxy(addr, 2)).await;
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let (code, body) = get_fresh(&format!("http://{addr}/")).await;
        assert_eq!(code, 200, "{body}");
        hosts.push(body["hostname"].as_str().unwrap().to_string());
    }
    hosts.dedup();
    assert_eq!(hosts.len(), 1, "one endpoint for one client: {hosts:?}");
    // From inside a pod: the short name resolves (hosts map) to the cluster IP.
    let fetch: Pod = serde_json::from_value(json!({
        "metadata": {"name": "fetch"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": IMAGE,
            "args": ["probe", "fetch", "--url", "http://named/from-pod?y=2"],
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &fetch).await.unwrap();
    let done = util::wait_for(&pods, "fetch", |p| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    })
    .await;
    let log = pods.logs("fetch", &LogParams::default()).await.unwrap();
    let phase = done.status.unwrap().phase.unwrap();
    assert_eq!(phase, "Succeeded", "{log}");
    let line: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(line["status"], 200, "{line}");
    let echoed: Value = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["path"], "/from-pod");
    assert_eq!(echoed["query"], "y=2");
    // An endpoint that goes away stops receiving connections.
    pods.delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    let addr = cluster_addr(&svcs, "named").await;
    util::within("the proxy", emu.wait_service_proxy(addr, 1)).await;
    for _ in 0..2 {
        let (code, body) = get_fresh(&format!("http://{addr}/")).await;
        assert_eq!((code, body["hostname"].as_str()), (200, Some("web-b")));
    }
    emu.shutdown().await;
}

/// The emulator's plain-HTTP API with the admin's token (and optional impersonation).
struct ApiHttp {
    base: String,
    admin: String,
    http: reqwest::Client,
}

impl ApiHttp {
    fn new(emu: &Emulator) -> Self {
        Self {
            base: emu.url(),
            admin: emu.admin_token(),
            http: reqwest::Client::new(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
    }
}

async fn proxy_fixture() -> (Emulator, Api<Pod>) {
    let emu = start().await;
    let c = util::client(&emu);
    namespace(&emu, "px").await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "px");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "px");
    svcs.create(&PostParams::default(), &service("web", "web", json!(8080)))
        .await
        .unwrap();
    svcs.create(
        &PostParams::default(),
        &service("idle", "nobody", json!(8080)),
    )
    .await
    .unwrap();
    run_pod(&pods, http_pod("web-a", "web")).await;
    let eps: Api<Endpoints> = Api::namespaced(c, "px");
    util::wait_for(&eps, "web", |e| endpoints_ips(e).len() == 1).await;
    (emu, pods)
}

const SVC: &str = "/api/v1/namespaces/px/services/web:80/proxy";

#[tokio::test]
async fn service_proxy_passes_methods_query_body_and_status_through() {
    let (emu, _pods) = proxy_fixture().await;
    let api = ApiHttp::new(&emu);
    use reqwest::Method;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let rb = api
            .req(method.clone(), &format!("{SVC}/echo/me/?x=1&x=2"))
            .header("x-custom", "kept")
            .body("payload");
        let (code, body) = util::send(rb).await;
        assert_eq!(code, 200, "{method}: {body}");
        assert_eq!(body["method"], method.as_str());
        assert_eq!(body["path"], "/echo/me/");
        assert_eq!(body["query"], "x=1&x=2");
        assert_eq!(body["body"], "payload");
        assert_eq!(body["hostname"], "web-a");
        let headers = body["headers"].as_object().unwrap();
        assert!(!headers.contains_key("authorization"), "{headers:?}");
        assert_eq!(headers["x-custom"], "kept");
        assert_eq!(headers["x-forwarded-uri"], format!("{SVC}/echo/me/"));
    }
    // Named port and the http: scheme prefix reach the same backend.
    let (code, body) = util::send(api.req(
        Method::GET,
        "/api/v1/namespaces/px/services/http:web:web/proxy/n",
    ))
    .await;
    assert_eq!((code, body["path"].as_str()), (200, Some("/n")));
    // The backend's own status and body come back as they are.
    let r = api
        .req(Method::GET, &format!("{SVC}/status/418"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 418);
    assert_eq!(r.text().await.unwrap(), "status 418\n");
    // A bare .../proxy is redirected to .../proxy/.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{}{SVC}?a=b", emu.url()))
        .bearer_auth(emu.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 301);
    assert_eq!(r.headers()["location"], format!("{SVC}/?a=b"));
    emu.shutdown().await;
}

#[tokio::test]
async fn service_proxy_errors_rbac_and_pods() {
    let (emu, pods) = proxy_fixture().await;
    let api = ApiHttp::new(&emu);
    use reqwest::Method;
    let (code, body) =
        util::send(api.req(Method::GET, "/api/v1/namespaces/px/services/idle:80/proxy/")).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert_eq!(
        body["message"],
        "no endpoints available for service \"idle\""
    );
    let (code, body) =
        util::send(api.req(Method::GET, "/api/v1/namespaces/px/services/web:81/proxy/")).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (503, Some("no service port 81 found for service \"web\""))
    );
    let (code, body) =
        util::send(api.req(Method::GET, "/api/v1/namespaces/px/services/nope/proxy/")).await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    // pods/NAME:8080/proxy goes to the pod itself.
    let (code, body) = util::send(api.req(
        Method::GET,
        "/api/v1/namespaces/px/pods/web-a:8080/proxy/p?q=1",
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            body["hostname"].as_str(),
            body["path"].as_str(),
            body["query"].as_str()
        ),
        (Some("web-a"), Some("/p"), Some("q=1"))
    );
    // Without a port, the first declared containerPort.
    let (code, body) =
        util::send(api.req(Method::GET, "/api/v1/namespaces/px/pods/web-a/proxy/p")).await;
    assert_eq!((code, body["hostname"].as_str()), (200, Some("web-a")));
    // RBAC: services/proxy and pods/proxy, verb from the method.
    let alice = |m: Method, path: &str| api.req(m, path).header("impersonate-user", "alice");
    let (code, body) = util::send(alice(Method::GET, &format!("{SVC}/x"))).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "services \"web:80\" is forbidden: User \"alice\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"px\""
    );
    let c = util::client(&emu);
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(c.clone(), "px");
    let role = serde_json::from_value(json!({"metadata": {"name": "proxy-get"},
        "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}]}))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let rbs: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(c, "px");
    let rb = serde_json::from_value(json!({"metadata": {"name": "alice-proxy"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proxy-get"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}))
    .unwrap();
    rbs.create(&PostParams::default(), &rb).await.unwrap();
    let (code, body) = util::send(alice(Method::GET, &format!("{SVC}/x"))).await;
    assert_eq!(code, 200, "{body}");
    let headers = body["headers"].as_object().unwrap();
    assert!(
        !headers.keys().any(|k| k.starts_with("impersonate-")),
        "{headers:?}"
    );
    let (code, _) = util::send(alice(Method::POST, &format!("{SVC}/x"))).await;
    assert_eq!(code, 403);
    let (code, _) = util::send(alice(
        Method::GET,
        "/api/v1/namespaces/px/pods/web-a:8080/proxy/",
    ))
    .await;
    assert_eq!(code, 403);
    // The last endpoint gone: 503 again.
    pods.delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    let eps: Api<Endpoints> = Api::namespaced(util::client(&emu), "px");
    util::wait_for(&eps, "web", |e| endpoints_ips(e).is_empty()).await;
    let (code, body) = util::send(api.req(Method::GET, &format!("{SVC}/x"))).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (503, Some("no endpoints available for service \"web\""))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_rs_raw_requests_go_through_the_service_proxy() {
    let (emu, _pods) = proxy_fixture().await;
    let c = util::client(&emu);
    let req = http::Request::get(format!("{SVC}/hello?x=1"))
        .body(Vec::new())
        .unwrap();
    let text = c.request_text(req).await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (body["path"].as_str(), body["query"].as_str()),
        (Some("/hello"), Some("x=1"))
    );
    // Through the HTTPS endpoint with a kubeconfig, as a client outside the process would.
    let tls = util::client_from_kubeconfig(&emu.kubeconfig_yaml()).await;
    let req = http::Request::post(format!("{SVC}/posted"))
        .body(b"abc".to_vec())
        .unwrap();
    let body: Value = serde_json::from_str(&tls.request_text(req).await.unwrap()).unwrap();
    assert_eq!(
        (body["method"].as_str(), body["body"].as_str()),
        (Some("POST"), Some("abc"))
    );
    // The Status of a 503 reaches kube-rs as an API error (with its default retries of
    // 503s off, which would otherwise back off for minutes).
    let mut cfg = emu.kube_config();
    cfg.default_retry = false;
    let no_retry = kube::Client::try_from(cfg).unwrap();
    let req = http::Request::get("/api/v1/namespaces/px/services/idle:80/proxy/")
        .body(Vec::new())
        .unwrap();
    match no_retry.request_text(req).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 503, "{s:?}");
            assert_eq!(s.message, "no endpoints available for service \"idle\"");
        }
        other => panic!("expected a 503 Status, got {other:?}"),
    }
    emu.shutdown().await;
}
