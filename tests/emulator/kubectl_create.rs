//! Every typed `kubectl create <kind>` (real kubectl 1.37, which sends built-in kinds as
//! `application/vnd.kubernetes.protobuf`), each object read back as JSON with its key fields
//! (data, labels, ports, selectors, ints, quantities, times); `kubectl create -f` of YAML
//! (the JSON path); and the protobuf edges by hand: protobuf-only Accept, CR bodies (415).

use crate::kubectl::{Kubectl, setup};

use base64::Engine;
use kfconform_emulator::protobuf;
use serde_json::{Value, json};

const NS: &str = "create-test";

async fn get(k: &Kubectl, what: &str) -> Value {
    k.json(&["get", what, "-n", NS, "-o", "json"]).await
}

fn b64(s: &str) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(s))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn assert_rfc3339(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_configmap_secrets_serviceaccount_token() {
    let (emu, k) = setup().await;
    let out = k.ok(&["create", "namespace", NS]).await;
    assert!(out.contains(&format!("namespace/{NS} created")), "{out}");
    let ns = k.json(&["get", "namespace", NS, "-o", "json"]).await;
    assert_eq!(ns["metadata"]["name"], NS);
    assert_rfc3339(&ns["metadata"]["creationTimestamp"]);
    // gogo writes zero non-pointer fields; none of them may come back as "set".
    assert!(ns["metadata"].get("generation").is_none(), "{ns}");
    assert!(ns["metadata"].get("deletionTimestamp").is_none(), "{ns}");

    k.ok(&[
        "create",
        "configmap",
        "cm1",
        "-n",
        NS,
        "--from-literal=a=1",
        "--from-literal=b=two",
    ])
    .await;
    let cm = get(&k, "configmap/cm1").await;
    assert_eq!(cm["data"], json!({"a": "1", "b": "two"}));

    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        NS,
        "--from-literal=k=v",
    ])
    .await;
    let s = get(&k, "secret/s1").await;
    assert_eq!(s["data"], json!({"k": b64("v")}));
    assert_eq!(s["type"], "Opaque");

    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "reg",
        "-n",
        NS,
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
    ])
    .await;
    let s = get(&k, "secret/reg").await;
    assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    let cfg: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(cfg["auths"]["registry.example"]["username"], "u");

    let cert = rcgen::generate_simple_self_signed(vec!["tls.example".to_string()]).unwrap();
    let cert_pem = pem("CERTIFICATE", cert.cert.der());
    let crt = k.file("tls.crt", &cert_pem);
    let key = k.file(
        "tls.key",
        &pem("PRIVATE KEY", &cert.key_pair.serialize_der()),
    );
    k.ok(&[
        "create",
        "secret",
        "tls",
        "tls1",
        "-n",
        NS,
        &format!("--cert={crt}"),
        &format!("--key={key}"),
    ])
    .await;
    let s = get(&k, "secret/tls1").await;
    assert_eq!(s["type"], "kubernetes.io/tls");
    assert_eq!(s["data"]["tls.crt"], b64(&cert_pem));

    k.ok(&["create", "serviceaccount", "sa1", "-n", NS]).await;
    assert_eq!(
        get(&k, "serviceaccount/sa1").await["metadata"]["name"],
        "sa1"
    );
    let token = k
        .ok(&["create", "token", "sa1", "-n", NS, "--duration=10m"])
        .await;
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_job_cronjob_deployment() {
    // busybox is simulated (`--pod-stages busybox=...`): a node that cannot pull it would
    // leave the Job's pod in ImagePullBackOff.
    let rule = kfconform_emulator::kubelet::parse_stage_rule("busybox=Running,Succeeded=100ms")
        .expect("a stage rule");
    let emu = crate::util::emulator_with(kfconform_emulator::EmulatorConfig {
        kubelet: kfconform_emulator::kubelet::KubeletConfig {
            pod_stages: vec![rule],
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let k = Kubectl::new(&emu);
    k.ok(&["create", "namespace", NS]).await;
    k.ok(&[
        "create",
        "job",
        "j1",
        "-n",
        NS,
        "--image=busybox",
        "--",
        "sleep",
        "5",
    ])
    .await;
    let j = get(&k, "job/j1").await;
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "busybox");
    assert_eq!(c["command"], json!(["sleep", "5"]));
    assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
    // The template's zero creationTimestamp is null, as kube-apiserver writes it.
    assert!(j["spec"]["template"]["metadata"]["creationTimestamp"].is_null());
    // The Job controller runs the protobuf-decoded template.
    k.ok(&[
        "wait",
        "-n",
        NS,
        "--for=condition=Complete",
        "job/j1",
        "--timeout=30s",
    ])
    .await;

    k.ok(&[
        "create",
        "cronjob",
        "cj1",
        "-n",
        NS,
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--restart=OnFailure",
    ])
    .await;
    let cj = get(&k, "cronjob/cj1").await;
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    let tpl = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(tpl["restartPolicy"], "OnFailure");
    assert_eq!(tpl["containers"][0]["image"], "busybox");

    // A Job from the CronJob: an annotation, and an ownerReference with its bool pointer.
    k.ok(&["create", "job", "j2", "-n", NS, "--from=cronjob/cj1"])
        .await;
    let j = get(&k, "job/j2").await;
    assert_eq!(
        j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let owner = &j["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["uid"], cj["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);

    k.ok(&[
        "create",
        "deployment",
        "d1",
        "-n",
        NS,
        "--image=nginx",
        "--replicas=3",
        "--port=8080",
    ])
    .await;
    let d = get(&k, "deployment/d1").await;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "d1"}));
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"],
        json!({"app": "d1"})
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    // The apiserver defaults the port's protocol (pkg/apis/core/v1/defaults.go).
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    // replicas is a pointer: an explicit 0 must survive the protobuf body.
    k.ok(&[
        "create",
        "deployment",
        "d0",
        "-n",
        NS,
        "--image=nginx",
        "--replicas=0",
    ])
    .await;
    assert_eq!(get(&k, "deployment/d0").await["spec"]["replicas"], 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_roles_and_bindings() {
    let (emu, k) = setup().await;
    k.ok(&["create", "namespace", NS]).await;
    k.ok(&[
        "create",
        "role",
        "r1",
        "-n",
        NS,
        "--verb=get,list",
        "--resource=pods,configmaps",
    ])
    .await;
    let r = get(&k, "role/r1").await;
    assert_eq!(r["rules"][0]["verbs"], json!(["get", "list"]));
    assert_eq!(r["rules"][0]["resources"], json!(["pods", "configmaps"]));
    assert_eq!(r["rules"][0]["apiGroups"], json!([""]));

    k.ok(&[
        "create",
        "clusterrole",
        "cr1",
        "--verb=get",
        "--non-resource-url=/logs/*",
    ])
    .await;
    let cr = k.json(&["get", "clusterrole", "cr1", "-o", "json"]).await;
    assert_eq!(cr["rules"][0]["nonResourceURLs"], json!(["/logs/*"]));

    k.ok(&[
        "create",
        "rolebinding",
        "rb1",
        "-n",
        NS,
        "--role=r1",
        "--user=alice",
        &format!("--serviceaccount={NS}:sa1"),
    ])
    .await;
    let rb = get(&k, "rolebinding/rb1").await;
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"})
    );
    let subjects = rb["subjects"].as_array().unwrap();
    assert!(subjects.contains(
        &json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"})
    ));
    assert!(subjects.contains(&json!({"kind": "ServiceAccount", "name": "sa1", "namespace": NS})));

    k.ok(&[
        "create",
        "clusterrolebinding",
        "crb1",
        "--clusterrole=cr1",
        "--group=devs",
    ])
    .await;
    let crb = k
        .json(&["get", "clusterrolebinding", "crb1", "-o", "json"])
        .await;
    assert_eq!(crb["subjects"][0]["kind"], "Group");
    assert_eq!(crb["subjects"][0]["name"], "devs");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_of_every_type() {
    let (emu, k) = setup().await;
    k.ok(&["create", "namespace", NS]).await;
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "cip",
        "-n",
        NS,
        "--tcp=80:8080",
    ])
    .await;
    let s = get(&k, "service/cip").await;
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["selector"], json!({"app": "cip"}));
    let p = &s["spec"]["ports"][0];
    assert_eq!(
        (p["port"].clone(), p["targetPort"].clone()),
        (json!(80), json!(8080))
    );
    assert_eq!(p["name"], "80-8080");

    k.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        NS,
        "--tcp=80:http",
        "--node-port=30080",
    ])
    .await;
    let s = get(&k, "service/np").await;
    assert_eq!(s["spec"]["type"], "NodePort");
    // A named target port is the string form of IntOrString.
    assert_eq!(s["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(s["spec"]["ports"][0]["nodePort"], 30080);

    k.ok(&[
        "create",
        "service",
        "loadbalancer",
        "lb",
        "-n",
        NS,
        "--tcp=443:8443",
    ])
    .await;
    let s = get(&k, "service/lb").await;
    assert_eq!(s["spec"]["type"], "LoadBalancer");
    assert_eq!(s["spec"]["ports"][0]["port"], 443);

    k.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "-n",
        NS,
        "--external-name=db.example.com",
    ])
    .await;
    let s = get(&k, "service/ext").await;
    assert_eq!(s["spec"]["type"], "ExternalName");
    assert_eq!(s["spec"]["externalName"], "db.example.com");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_priorityclass_pdb_ingress() {
    let (emu, k) = setup().await;
    k.ok(&["create", "namespace", NS]).await;
    k.ok(&[
        "create",
        "quota",
        "q1",
        "-n",
        NS,
        "--hard=cpu=500m,memory=1Gi,pods=2",
    ])
    .await;
    let q = get(&k, "resourcequota/q1").await;
    assert_eq!(
        q["spec"]["hard"],
        json!({"cpu": "500m", "memory": "1Gi", "pods": "2"})
    );

    k.ok(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important",
        "--preemption-policy=Never",
    ])
    .await;
    let pc = k
        .json(&["get", "priorityclass", "high", "-o", "json"])
        .await;
    assert_eq!(pc["value"], 1000);
    assert_eq!(pc["description"], "important");
    assert_eq!(pc["preemptionPolicy"], "Never");
    // value has no omitempty: 0 is written, and must be read back.
    k.ok(&["create", "priorityclass", "zero", "--value=0"])
        .await;
    let pc = k
        .json(&["get", "priorityclass", "zero", "-o", "json"])
        .await;
    assert_eq!(pc["value"], 0);

    k.ok(&[
        "create",
        "poddisruptionbudget",
        "pdb1",
        "-n",
        NS,
        "--selector=app=web",
        "--min-available=50%",
    ])
    .await;
    let pdb = get(&k, "poddisruptionbudget/pdb1").await;
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        json!({"app": "web"})
    );
    k.ok(&[
        "create",
        "pdb",
        "pdb2",
        "-n",
        NS,
        "--selector=app=web",
        "--max-unavailable=1",
    ])
    .await;
    assert_eq!(get(&k, "pdb/pdb2").await["spec"]["maxUnavailable"], 1);

    k.ok(&[
        "create",
        "ingress",
        "ing1",
        "-n",
        NS,
        "--class=nginx",
        "--rule=foo.example/bar=svc1:8080,tls=cert1",
        "--default-backend=defsvc:http",
        "--annotation=team=a",
    ])
    .await;
    let ing = get(&k, "ingress/ing1").await;
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    assert_eq!(ing["metadata"]["annotations"]["team"], "a");
    let rule = &ing["spec"]["rules"][0];
    assert_eq!(rule["host"], "foo.example");
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/bar");
    assert_eq!(path["pathType"], "Exact");
    assert_eq!(
        path["backend"]["service"],
        json!({"name": "svc1", "port": {"number": 8080}})
    );
    assert_eq!(
        ing["spec"]["tls"],
        json!([{"hosts": ["foo.example"], "secretName": "cert1"}])
    );
    assert_eq!(
        ing["spec"]["defaultBackend"]["service"],
        json!({"name": "defsvc", "port": {"name": "http"}})
    );
    emu.shutdown().await;
}

/// `kubectl create -f` sends JSON (the unstructured path): an IngressClass and a labelled
/// ConfigMap from YAML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_yaml_file() {
    let (emu, k) = setup().await;
    let yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\n  labels:\n    tier: edge\n\
         spec:\n  controller: k8s.io/ingress-nginx\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromfile\n  namespace: {NS}\n  labels:\n    app: x\ndata:\n  k: v\n"
    );
    let resources = k.ok(&["api-resources", "-o", "wide"]).await;
    for (name, short, group) in [
        ("cronjobs", "cj", "batch/v1"),
        ("deployments", "deploy", "apps/v1"),
        ("ingressclasses", "", "networking.k8s.io/v1"),
        ("ingresses", "ing", "networking.k8s.io/v1"),
        ("poddisruptionbudgets", "pdb", "policy/v1"),
        ("priorityclasses", "pc", "scheduling.k8s.io/v1"),
        ("resourcequotas", "quota", "v1"),
    ] {
        let line = resources
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{resources}"));
        assert!(line.contains(group) && line.contains(short), "{line}");
    }
    let f = k.file("objects.yaml", &yaml);
    let out = k.ok(&["create", "-f", &f]).await;
    assert!(
        out.contains("ingressclass.networking.k8s.io/nginx created"),
        "{out}"
    );
    let ic = k
        .json(&["get", "ingressclass", "nginx", "-o", "json"])
        .await;
    assert_eq!(ic["spec"]["controller"], "k8s.io/ingress-nginx");
    assert_eq!(ic["metadata"]["labels"], json!({"tier": "edge"}));
    let cm = get(&k, "configmap/fromfile").await;
    assert_eq!(cm["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(cm["data"], json!({"k": "v"}));
    emu.shutdown().await;
}

fn http(emu: &kfconform_emulator::Emulator) -> reqwest::Client {
    let auth =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", emu.admin_token())).unwrap();
    reqwest::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            auth,
        )]))
        .build()
        .unwrap()
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, String, Vec<u8>) {
    let resp = rb.send().await.unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (code, ct, resp.bytes().await.unwrap().to_vec())
}

/// Protobuf answers only to a client that accepts nothing else; custom resources have no
/// protobuf form (415 for a body, 406 for an answer), as from kube-apiserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_accept_and_custom_resources() {
    let (emu, _k) = setup().await;
    let (c, base) = (http(&emu), emu.url());
    let only_pb = protobuf::CONTENT_TYPE;
    let ns = protobuf::encode(&json!({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "pb", "labels": {"a": "b"}}}))
    .unwrap();
    let (code, ct, body) = send(
        c.post(format!("{base}/api/v1/namespaces"))
            .header("content-type", only_pb)
            .header("accept", only_pb)
            .body(ns),
    )
    .await;
    assert_eq!((code, ct.as_str()), (201, only_pb));
    let created = protobuf::decode(&body).unwrap();
    assert_eq!(created["kind"], "Namespace");
    assert_eq!(created["metadata"]["labels"]["a"], "b");
    assert!(created["metadata"]["uid"].is_string(), "{created}");
    assert_rfc3339(&created["metadata"]["creationTimestamp"]);

    // client-go's usual Accept admits JSON, which stays the answer.
    let (code, ct, _) = send(
        c.get(format!("{base}/api/v1/namespaces/pb"))
            .header("accept", "application/vnd.kubernetes.protobuf, */*"),
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    // Lists and errors are protobuf too.
    let (code, ct, body) = send(
        c.get(format!("{base}/api/v1/namespaces"))
            .header("accept", only_pb),
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, only_pb));
    let list = protobuf::decode(&body).unwrap();
    assert_eq!(list["kind"], "NamespaceList");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "pb")
    );
    let (code, _, body) = send(
        c.get(format!("{base}/api/v1/namespaces/missing"))
            .header("accept", only_pb),
    )
    .await;
    let status = protobuf::decode(&body).unwrap();
    assert_eq!(
        (code, &status["kind"], &status["reason"]),
        (404, &json!("Status"), &json!("NotFound"))
    );

    // A custom resource in protobuf: 415, as apiextensions-apiserver answers.
    let pb_cr = raw_cr_body("kubeflow.org/v1", "Profile");
    let (code, _, body) = send(
        c.post(format!("{base}/apis/kubeflow.org/v1/profiles"))
            .header("content-type", only_pb)
            .body(pb_cr),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, &v["reason"]),
        (415, &json!("UnsupportedMediaType")),
        "{v}"
    );
    let (code, _, body) = send(
        c.get(format!("{base}/apis/kubeflow.org/v1/profiles"))
            .header("accept", only_pb),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((code, &v["reason"]), (406, &json!("NotAcceptable")), "{v}");
    emu.shutdown().await;
}

/// A protobuf envelope naming a custom resource kind, written byte by byte (the encoder
/// refuses kinds without a protobuf form).
fn raw_cr_body(api_version: &str, kind: &str) -> Vec<u8> {
    fn field(num: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, u8::try_from(data.len()).unwrap()];
        out.extend_from_slice(data);
        out
    }
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    let raw = field(1, &field(1, b"p1"));
    [b"k8s\x00".to_vec(), field(1, &type_meta), field(2, &raw)].concat()
}
