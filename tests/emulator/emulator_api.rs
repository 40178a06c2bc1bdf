//! The emulator's Kubernetes API, exercised over raw HTTP (reqwest) and with kube-rs.

use std::time::Duration;

use crate::util;

use kfconform_emulator::{Defect, Emulator, EmulatorConfig, Tuning};
use serde_json::{Value, json};

/// A thin raw-HTTP client returning (status, JSON body).
struct Http {
    base: String,
    c: reqwest::Client,
}

impl Http {
    fn new(emu: &Emulator) -> Self {
        Http {
            base: emu.url(),
            c: reqwest::Client::builder()
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::HeaderValue::from_str(&format!(
                        "Bearer {}",
                        emu.admin_token()
                    ))
                    .unwrap(),
                )]))
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        util::send(rb).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.c.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.c.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.c.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn patch(&self, path: &str, ct: &str, body: &str) -> (u16, Value) {
        self.send(
            self.c
                .patch(format!("{}{path}", self.base))
                .header("content-type", ct)
                .body(body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut rb = self.c.delete(format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb).await
    }

    async fn watch(&self, path: &str) -> Watch {
        let r = util::within(
            "the watch response",
            self.c.get(format!("{}{path}", self.base)).send(),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        Watch {
            resp: r,
            buf: Vec::new(),
        }
    }
}

/// Reads newline-delimited watch events.
struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event, or None when the server ends the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = util::within("a watch event", self.resp.chunk())
                .await
                .unwrap()?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next event that is not a BOOKMARK.
    async fn next_change(&mut self) -> Value {
        loop {
            let e = self.next().await.expect("watch ended early");
            if e["type"] != "BOOKMARK" {
                return e;
            }
        }
    }
}

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

async fn make_ns(h: &Http, name: &str) {
    let (code, body) = h
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

fn pytorchjob(name: &str) -> Value {
    json!({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"runPolicy": {"managedBy": "kueue.x-k8s.io/multikueue"},
                 "pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "pytorch", "image": "busybox"}]}}}}}
    })
}

fn assert_status(body: &Value, code: u16, reason: &str, message: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["message"], message, "{body}");
}

#[tokio::test]
async fn version_health_and_discovery() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let (code, v) = h.get("/version").await;
    assert_eq!(code, 200);
    assert_eq!(v["gitVersion"], "v1.34.2+kfconform-emulator");
    assert_eq!(v["major"], "1");
    assert_eq!(v["minor"], "34");
    for p in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(h.get(p).await, (200, Value::String("ok".into())));
    }
    let (_, api) = h.get("/api").await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let (_, groups) = h.get("/apis").await;
    assert_eq!(groups["kind"], "APIGroupList");
    let kf = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "kubeflow.org")
        .unwrap();
    assert_eq!(kf["preferredVersion"]["version"], "v1");
    let versions: Vec<&str> = kf["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "v1beta1"]);
    let (code, g) = h.get("/apis/kubeflow.org").await;
    assert_eq!(code, 200);
    assert_eq!(g["kind"], "APIGroup");

    let (_, rl) = h.get("/apis/kubeflow.org/v1").await;
    assert_eq!(rl["kind"], "APIResourceList");
    assert_eq!(rl["groupVersion"], "kubeflow.org/v1");
    let res = rl["resources"].as_array().unwrap();
    let pj = res.iter().find(|r| r["name"] == "pytorchjobs").unwrap();
    assert_eq!(pj["singularName"], "pytorchjob");
    assert_eq!(pj["kind"], "PyTorchJob");
    assert_eq!(pj["namespaced"], true);
    assert!(pj["verbs"].as_array().unwrap().contains(&json!("watch")));
    assert!(res.iter().any(|r| r["name"] == "profiles/status"));
    let (_, core) = h.get("/api/v1").await;
    let ns = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "namespaces")
        .unwrap();
    assert_eq!(ns["shortNames"], json!(["ns"]));
    assert_eq!(ns["namespaced"], false);
    let (_, exp) = h.get("/apis/kubeflow.org/v1beta1").await;
    let e = exp["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "experiments")
        .unwrap();
    assert_eq!(e["categories"], json!(["all", "kubeflow", "katib"]));
    assert_eq!(h.get("/apis/nope.example.com/v1").await.0, 404);

    // kube-rs discovery agrees.
    let client = util::client(&emu);
    let d = kube::Discovery::new(client).run().await.unwrap();
    let (ar, caps) = d
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "kubeflow.org",
            "v1",
            "PyTorchJob",
        ))
        .unwrap();
    assert_eq!(ar.plural, "pytorchjobs");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(d.has_group("trainer.kubeflow.org"));
    emu.shutdown().await;
}

#[tokio::test]
async fn crud_metadata_and_errors() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let (code, created) = h
        .post("/api/v1/namespaces/default/configmaps", &cm("a", json!({})))
        .await;
    assert_eq!(code, 201, "{created}");
    let m = &created["metadata"];
    assert_eq!(m["namespace"], "default");
    assert!(!m["uid"].as_str().unwrap().is_empty());
    assert!(m["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    let rv1: u64 = m["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(
        m.get("generation").is_none(),
        "configmaps have no generation"
    );

    let (code, body) = h
        .post("/api/v1/namespaces/default/configmaps", &cm("a", json!({})))
        .await;
    assert_eq!(code, 409);
    assert_status(
        &body,
        409,
        "AlreadyExists",
        r#"configmaps "a" already exists"#,
    );
    assert_eq!(body["details"]["name"], "a");
    assert_eq!(body["details"]["kind"], "configmaps");

    let (code, got) = h.get("/api/v1/namespaces/default/configmaps/a").await;
    assert_eq!(code, 200);
    assert_eq!(got, created);

    let mut upd = got.clone();
    upd["data"]["k"] = json!("v2");
    let (code, updated) = h.put("/api/v1/namespaces/default/configmaps/a", &upd).await;
    assert_eq!(code, 200, "{updated}");
    let rv2: u64 = updated["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);

    // Stale resourceVersion → Conflict with the apiserver's message.
    let (code, body) = h.put("/api/v1/namespaces/default/configmaps/a", &upd).await;
    assert_eq!(code, 409);
    assert_status(
        &body,
        409,
        "Conflict",
        r#"Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again"#,
    );

    let (code, body) = h.get("/api/v1/namespaces/default/configmaps/zz").await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound", r#"configmaps "zz" not found"#);
    let (code, body) = h
        .get("/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/x")
        .await;
    assert_eq!(code, 404);
    assert_status(
        &body,
        404,
        "NotFound",
        r#"pytorchjobs.kubeflow.org "x" not found"#,
    );
    assert_eq!(body["details"]["group"], "kubeflow.org");

    let (code, body) = h
        .post("/api/v1/namespaces/missing/configmaps", &cm("a", json!({})))
        .await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound", r#"namespaces "missing" not found"#);

    let (code, body) = h
        .post(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "default"}}),
        )
        .await;
    assert_eq!(code, 409);
    assert_status(
        &body,
        409,
        "AlreadyExists",
        r#"namespaces "default" already exists"#,
    );

    // Malformed JSON → 400 BadRequest Status.
    let (code, body) = h
        .send(
            h.c.post(format!("{}/api/v1/namespaces/default/configmaps", h.base))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["reason"], "BadRequest");
    // Unsupported method → 405.
    let (code, body) = h
        .post("/api/v1/namespaces/default/configmaps/a", &json!({}))
        .await;
    assert_eq!(code, 405);
    assert_eq!(body["reason"], "MethodNotAllowed");
    // Invalid name → 422 Invalid with a cause.
    let (code, body) = h
        .post(
            "/api/v1/namespaces/default/configmaps",
            &cm("Bad_Name", json!({})),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");
    assert!(
        body["message"].as_str().unwrap().starts_with(
            r#"ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name""#
        ),
        "{body}"
    );
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    // Neither name nor generateName.
    let (code, body) = h
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {}}),
        )
        .await;
    assert_eq!(code, 422, "{body}");

    // generateName gets a 5-character suffix.
    let (code, body) = h
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"generateName": "gen-"}}),
        )
        .await;
    assert_eq!(code, 201);
    let name = body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Delete returns the object; a second delete is 404.
    let (code, body) = h
        .delete("/api/v1/namespaces/default/configmaps/a", None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["name"], "a");
    let (code, _) = h
        .delete("/api/v1/namespaces/default/configmaps/a", None)
        .await;
    assert_eq!(code, 404);

    // Garbage paths never crash the server.
    for p in [
        "/api/v1/nope",
        "/apis/x",
        "/apis/kubeflow.org/v9/foo",
        "/api/v1/namespaces/default/configmaps/a/b/c/d",
    ] {
        assert_eq!(h.get(p).await.0, 404, "{p}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn secrets_get_defaults() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let (code, s) = h
        .post(
            "/api/v1/namespaces/default/secrets",
            &json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"]["user"], "YWRtaW4=");
    assert!(s.get("stringData").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    make_ns(&h, "sel").await;
    let labels = [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ];
    for (n, l) in &labels {
        let (code, _) = h
            .post("/api/v1/namespaces/sel/configmaps", &cm(n, l.clone()))
            .await;
        assert_eq!(code, 201);
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |sel: &str| {
        format!(
            "/api/v1/namespaces/sel/configmaps?labelSelector={}",
            urlencode(sel)
        )
    };
    for (sel, want) in [
        ("app=web", vec!["a", "b"]),
        ("app==web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("app in (web,db)", vec!["a", "b", "c"]),
        ("app notin (web)", vec!["c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app=web,tier=back", vec!["b"]),
    ] {
        let (code, v) = h.get(&q(sel)).await;
        assert_eq!(code, 200, "{sel}: {v}");
        assert_eq!(names(&v), want, "{sel}");
    }
    let (code, v) = h.get(&q("a in b")).await;
    assert_eq!(code, 400, "{v}");

    let (_, v) = h
        .get("/api/v1/namespaces/sel/configmaps?fieldSelector=metadata.name%3Dc")
        .await;
    assert_eq!(names(&v), ["c"]);
    let (_, v) = h
        .get("/api/v1/namespaces/sel/configmaps?fieldSelector=metadata.name!%3Dc")
        .await;
    assert_eq!(names(&v), ["a", "b", "d"]);
    let (_, v) = h
        .get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Dsel")
        .await;
    assert_eq!(names(&v).len(), 4);
    let (code, v) = h
        .get("/api/v1/namespaces/sel/configmaps?fieldSelector=spec.x%3D1")
        .await;
    assert_eq!(code, 400);
    assert_eq!(v["message"], "field label not supported: spec.x");

    // List metadata and pagination.
    let (_, all) = h.get("/api/v1/namespaces/sel/configmaps").await;
    assert_eq!(all["kind"], "ConfigMapList");
    assert_eq!(all["apiVersion"], "v1");
    assert!(all["metadata"]["resourceVersion"].as_str().is_some());
    let mut seen = Vec::new();
    let mut cont = String::new();
    let mut pages = 0;
    loop {
        let mut p = "/api/v1/namespaces/sel/configmaps?limit=3&resourceVersion=0".to_string();
        if !cont.is_empty() {
            p.push_str(&format!("&continue={cont}"));
        }
        let (code, v) = h.get(&p).await;
        assert_eq!(code, 200);
        pages += 1;
        seen.extend(names(&v));
        match v["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => {
                assert_eq!(v["metadata"]["remainingItemCount"], 1);
                cont = c.to_string();
            }
            _ => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ["a", "b", "c", "d"]);
    let (code, _) = h
        .get("/api/v1/namespaces/sel/configmaps?limit=1&continue=garbage")
        .await;
    assert_eq!(code, 400);

    // deletecollection honours the selector.
    let (code, v) = h
        .delete(
            "/api/v1/namespaces/sel/configmaps?labelSelector=app%3Dweb",
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(names(&v), ["a", "b"]);
    let (_, v) = h.get("/api/v1/namespaces/sel/configmaps").await;
    assert_eq!(names(&v), ["c", "d"]);
    emu.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn watch_events_resume_and_selectors() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    make_ns(&h, "w").await;
    let (_, list) = h.get("/api/v1/namespaces/w/configmaps").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut all = h
        .watch(&format!(
            "/api/v1/namespaces/w/configmaps?watch=true&resourceVersion={rv}"
        ))
        .await;
    let mut sel = h
        .watch("/api/v1/namespaces/w/configmaps?watch=1&labelSelector=pick%3Dyes")
        .await;
    h.post(
        "/api/v1/namespaces/w/configmaps",
        &cm("x", json!({"pick": "no"})),
    )
    .await;
    h.patch(
        "/api/v1/namespaces/w/configmaps/x",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"pick":"yes"}}}"#,
    )
    .await;
    h.patch(
        "/api/v1/namespaces/w/configmaps/x",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"pick":"no"}}}"#,
    )
    .await;
    h.delete("/api/v1/namespaces/w/configmaps/x", None).await;

    let mut types = Vec::new();
    let mut last_rv = String::new();
    for _ in 0..4 {
        let e = all.next_change().await;
        assert_eq!(e["object"]["metadata"]["name"], "x");
        assert_eq!(e["object"]["kind"], "ConfigMap");
        last_rv = e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        types.push(e["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
    // The selector watch sees the object enter and leave the selection.
    let e1 = sel.next_change().await;
    let e2 = sel.next_change().await;
    assert_eq!(
        (e1["type"].as_str(), e2["type"].as_str()),
        (Some("ADDED"), Some("DELETED"))
    );

    // Resuming from a resourceVersion replays only later events.
    h.post("/api/v1/namespaces/w/configmaps", &cm("y", json!({})))
        .await;
    let mut resumed = h
        .watch(&format!(
            "/api/v1/namespaces/w/configmaps?watch=true&resourceVersion={last_rv}"
        ))
        .await;
    let e = resumed.next_change().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "y");

    // Without a resourceVersion, a watch starts with the current state as ADDED events.
    let mut fresh = h.watch("/api/v1/namespaces/w/configmaps?watch=true").await;
    let e = fresh.next_change().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "y");

    // timeoutSeconds ends the stream.
    let mut short = h
        .watch("/api/v1/namespaces/w/configmaps?watch=true&timeoutSeconds=1&resourceVersion=0")
        .await;
    assert_eq!(short.next().await.unwrap()["type"], "ADDED");
    assert!(short.next().await.is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn watch_too_old_resource_version_is_expired() {
    let emu = util::emulator_tuned(Tuning {
        watch_history: 3,
        ..Tuning::default()
    })
    .await;
    let h = Http::new(&emu);
    let (_, list) = h.get("/api/v1/namespaces/default/configmaps").await;
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for i in 0..5 {
        h.post(
            "/api/v1/namespaces/default/configmaps",
            &cm(&format!("c{i}"), json!({})),
        )
        .await;
    }
    let mut w = h
        .watch(&format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
        ))
        .await;
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    let st = &e["object"];
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["code"], 410);
    assert_eq!(st["reason"], "Expired");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("too old resource version: {rv} (")),
        "{msg}"
    );
    assert!(w.next().await.is_none(), "the stream ends after the error");
    emu.shutdown().await;
}

#[tokio::test]
async fn watch_bookmarks_and_initial_events() {
    let emu = util::emulator_tuned(Tuning {
        bookmark_interval: Duration::from_millis(50),
        ..Tuning::default()
    })
    .await;
    let h = Http::new(&emu);
    h.post("/api/v1/namespaces/default/configmaps", &cm("b", json!({})))
        .await;
    let mut w = h
        .watch("/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
        .await;
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ADDED");
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(
        e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Then periodic bookmarks: an object of the kind carrying only a resourceVersion.
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["kind"], "ConfigMap");
    assert!(
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some()
    );
    assert!(e["object"]["metadata"].get("name").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs";
    let mut job = pytorchjob("gen");
    job["status"] = json!({"conditions": [{"type": "Created", "status": "True"}]});
    let (code, created) = h.post(base, &job).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created.get("status").is_none(),
        "status is ignored on create"
    );

    // Metadata-only change: no generation bump.
    let (_, v) = h
        .patch(
            &format!("{base}/gen"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        )
        .await;
    assert_eq!(v["metadata"]["generation"], 1);
    // Spec change: bump; status in a main-resource write is dropped.
    let (_, v) = h
        .patch(
            &format!("{base}/gen"),
            "application/merge-patch+json",
            r#"{"spec":{"runPolicy":{"suspend":true}},"status":{"x":1}}"#,
        )
        .await;
    assert_eq!(v["metadata"]["generation"], 2);
    assert!(v.get("status").is_none());
    // Status write: only status changes, generation stays.
    let (code, v) = h
        .patch(
            &format!("{base}/gen/status"),
            "application/merge-patch+json",
            r#"{"status":{"conditions":[{"type":"Running","status":"True"}]},"spec":{"runPolicy":{"suspend":false}}}"#,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["conditions"][0]["type"], "Running");
    assert_eq!(v["spec"]["runPolicy"]["suspend"], true);
    assert_eq!(v["metadata"]["generation"], 2);
    let (_, v) = h.get(&format!("{base}/gen/status")).await;
    assert_eq!(v["status"]["conditions"][0]["type"], "Running");
    // PUT /status.
    let mut st = v.clone();
    st["status"] = json!({"conditions": [{"type": "Succeeded", "status": "True"}]});
    let (code, v) = h.put(&format!("{base}/gen/status"), &st).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["conditions"][0]["type"], "Succeeded");
    // A main-resource PUT keeps the stored status.
    let mut main = v.clone();
    main["status"] = json!({});
    let (_, v) = h.put(&format!("{base}/gen"), &main).await;
    assert_eq!(v["status"]["conditions"][0]["type"], "Succeeded");
    // Custom resources need a resourceVersion on update.
    let mut no_rv = v.clone();
    no_rv["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, v) = h.put(&format!("{base}/gen"), &no_rv).await;
    assert_eq!(code, 422, "{v}");
    // Unknown subresource.
    assert_eq!(h.get(&format!("{base}/gen/nope")).await.0, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn patch_kinds_and_apply() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/api/v1/namespaces/default/configmaps";
    h.post(base, &cm("p", json!({"x": "1"}))).await;
    let (code, v) = h
        .patch(
            &format!("{base}/p"),
            "application/json-patch+json",
            r#"[{"op":"add","path":"/data/j","value":"k"},{"op":"remove","path":"/data/k"}]"#,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], json!({"j": "k"}));
    let (code, v) = h
        .patch(
            &format!("{base}/p"),
            "application/json-patch+json",
            r#"[{"op":"test","path":"/data/j","value":"nope"}]"#,
        )
        .await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = h
        .patch(
            &format!("{base}/p"),
            "application/strategic-merge-patch+json",
            r#"{"data":{"s":"t"}}"#,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["data"], json!({"j": "k", "s": "t"}));
    let (code, _) = h.patch(&format!("{base}/p"), "text/plain", "{}").await;
    assert_eq!(code, 415);
    let (code, _) = h
        .patch(
            &format!("{base}/missing"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(code, 404);
    // A resourceVersion in a patch is a precondition.
    let (code, _) = h
        .patch(
            &format!("{base}/p"),
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"}}"#,
        )
        .await;
    assert_eq!(code, 409);

    // Server-side apply: create, then merge; fieldManager is required.
    let apply = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: b\n";
    let (code, v) = h
        .patch(
            &format!("{base}/ssa"),
            "application/apply-patch+yaml",
            apply,
        )
        .await;
    assert_eq!(code, 400, "{v}");
    let (code, v) = h
        .patch(
            &format!("{base}/ssa?fieldManager=test"),
            "application/apply-patch+yaml",
            apply,
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = h
        .patch(
            &format!("{base}/ssa?fieldManager=test&force=true"),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  c: d\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], json!({"a": "b", "c": "d"}));
    emu.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/api/v1/namespaces/default/configmaps";
    let mut obj = cm("f", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    h.post(base, &obj).await;
    let mut w = h
        .watch(&format!(
            "{base}?watch=true&fieldSelector=metadata.name%3Df"
        ))
        .await;
    assert_eq!(w.next_change().await["type"], "ADDED");
    let (code, v) = h.delete(&format!("{base}/f"), None).await;
    assert_eq!(code, 200);
    assert!(v["metadata"]["deletionTimestamp"].as_str().is_some());
    assert_eq!(v["metadata"]["deletionGracePeriodSeconds"], 0);
    let e = w.next_change().await;
    assert_eq!(e["type"], "MODIFIED");
    let (code, _) = h.get(&format!("{base}/f")).await;
    assert_eq!(code, 200, "still there while finalizers remain");
    // Adding a finalizer while deleting is forbidden.
    let (code, _) = h
        .patch(
            &format!("{base}/f"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
        )
        .await;
    assert_eq!(code, 422);
    let (code, _) = h
        .patch(
            &format!("{base}/f"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(w.next_change().await["type"], "MODIFIED");
    assert_eq!(w.next_change().await["type"], "DELETED");
    assert_eq!(h.get(&format!("{base}/f")).await.0, 404);

    // Preconditions.
    let (_, v) = h.post(base, &cm("pre", json!({}))).await;
    let (code, body) = h
        .delete(
            &format!("{base}/pre"),
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "wrong"}})),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(body["reason"], "Conflict");
    let uid = v["metadata"]["uid"].as_str().unwrap();
    let (code, _) = h
        .delete(
            &format!("{base}/pre"),
            Some(&json!({"preconditions": {"uid": uid}})),
        )
        .await;
    assert_eq!(code, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn namespace_lifecycle_and_cascade() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    for ns in ["default", "kube-system", "kube-public"] {
        assert_eq!(h.get(&format!("/api/v1/namespaces/{ns}")).await.0, 200);
    }
    make_ns(&h, "doomed").await;
    let (_, ns) = h.get("/api/v1/namespaces/doomed").await;
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "doomed"
    );
    h.post(
        "/api/v1/namespaces/doomed/configmaps",
        &cm("plain", json!({})),
    )
    .await;
    let mut held = cm("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    h.post("/api/v1/namespaces/doomed/configmaps", &held).await;
    h.post(
        "/apis/kubeflow.org/v1/namespaces/doomed/pytorchjobs",
        &pytorchjob("job"),
    )
    .await;

    let mut cms = h
        .watch("/api/v1/namespaces/doomed/configmaps?watch=true&resourceVersion=0")
        .await;
    let mut nss = h
        .watch("/api/v1/namespaces?watch=true&fieldSelector=metadata.name%3Ddoomed")
        .await;
    assert_eq!(nss.next_change().await["type"], "ADDED");
    let mut seen = 0;
    while seen < 2 {
        assert_eq!(cms.next_change().await["type"], "ADDED");
        seen += 1;
    }

    let (code, v) = h.delete("/api/v1/namespaces/doomed", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"]["phase"], "Terminating");
    assert!(v["metadata"]["deletionTimestamp"].as_str().is_some());

    // The cascade deletes the plain configmap and marks the held one.
    let mut deleted_plain = false;
    let mut held_marked = false;
    while !(deleted_plain && held_marked) {
        let e = cms.next_change().await;
        let name = e["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        match (e["type"].as_str().unwrap(), name.as_str()) {
            ("DELETED", "plain") => deleted_plain = true,
            ("MODIFIED", "held") => {
                held_marked = e["object"]["metadata"]["deletionTimestamp"].is_string()
            }
            _ => {}
        }
    }
    // Creating into a Terminating namespace is Forbidden.
    let (code, body) = h
        .post(
            "/api/v1/namespaces/doomed/configmaps",
            &cm("late", json!({})),
        )
        .await;
    assert_eq!(code, 403);
    assert_status(
        &body,
        403,
        "Forbidden",
        r#"configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated"#,
    );
    assert_eq!(
        h.get("/apis/kubeflow.org/v1/namespaces/doomed/pytorchjobs/job")
            .await
            .0,
        404
    );
    // Releasing the finalizer lets the namespace go.
    h.patch(
        "/api/v1/namespaces/doomed/configmaps/held",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":[]}}"#,
    )
    .await;
    loop {
        let e = nss.next_change().await;
        if e["type"] == "DELETED" {
            break;
        }
        assert_eq!(e["object"]["status"]["phase"], "Terminating");
    }
    assert_eq!(h.get("/api/v1/namespaces/doomed").await.0, 404);

    // The finalize subresource changes spec.finalizers only.
    make_ns(&h, "fin").await;
    let (_, ns) = h.get("/api/v1/namespaces/fin").await;
    let mut body = ns.clone();
    body["spec"]["finalizers"] = json!([]);
    body["metadata"]["labels"]["x"] = json!("y");
    let (code, v) = h.put("/api/v1/namespaces/fin/finalize", &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["finalizers"], json!([]));
    assert!(v["metadata"]["labels"].get("x").is_none());
    emu.shutdown().await;
}

async fn owned(h: &Http, owner: &Value, name: &str) {
    let mut d = cm(name, json!({}));
    d["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "ConfigMap",
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": true
    }]);
    let (code, v) = h.post("/api/v1/namespaces/default/configmaps", &d).await;
    assert_eq!(code, 201, "{v}");
}

#[tokio::test]
async fn garbage_collection_policies() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/api/v1/namespaces/default/configmaps";
    let mut w = h.watch(&format!("{base}?watch=true")).await;

    // Background (default): the dependent goes after the owner.
    let (_, owner) = h.post(base, &cm("owner", json!({}))).await;
    owned(&h, &owner, "dep").await;
    h.delete(&format!("{base}/owner"), None).await;
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let e = w.next_change().await;
        if e["type"] == "DELETED" {
            gone.push(
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(gone, ["owner", "dep"]);

    // Orphan: the dependent stays, without the ownerReference.
    let (_, owner) = h.post(base, &cm("owner2", json!({}))).await;
    owned(&h, &owner, "dep2").await;
    let (code, _) = h
        .delete(
            &format!("{base}/owner2"),
            Some(&json!({"propagationPolicy": "Orphan"})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, dep) = h.get(&format!("{base}/dep2")).await;
    assert_eq!(code, 200);
    assert!(dep["metadata"].get("ownerReferences").is_none(), "{dep}");

    // Foreground: the owner waits (finalizer foregroundDeletion) until the dependent is gone.
    let (_, owner) = h.post(base, &cm("owner3", json!({}))).await;
    owned(&h, &owner, "dep3").await;
    let (code, v) = h
        .delete(&format!("{base}/owner3?propagationPolicy=Foreground"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let mut order = Vec::new();
    while order.len() < 2 {
        let e = w.next_change().await;
        let n = e["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        if e["type"] == "DELETED" && n.ends_with('3') {
            order.push(n);
        }
    }
    assert_eq!(order, ["dep3", "owner3"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, v) = h
        .post(&format!("{base}?dryRun=All"), &cm("dry", json!({})))
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["metadata"]["name"], "dry");
    assert_eq!(h.get(&format!("{base}/dry")).await.0, 404);
    // Validation still runs.
    let (code, _) = h
        .post(&format!("{base}?dryRun=All"), &cm("Bad!", json!({})))
        .await;
    assert_eq!(code, 422);
    let (_, created) = h.post(base, &cm("real", json!({}))).await;
    let rv = created["metadata"]["resourceVersion"].clone();
    let (code, v) = h
        .patch(
            &format!("{base}/real?dryRun=All"),
            "application/merge-patch+json",
            r#"{"data":{"k":"changed"}}"#,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["data"]["k"], "changed");
    let mut upd = created.clone();
    upd["data"]["k"] = json!("put");
    assert_eq!(h.put(&format!("{base}/real?dryRun=All"), &upd).await.0, 200);
    let (code, _) = h.delete(&format!("{base}/real?dryRun=All"), None).await;
    assert_eq!(code, 200);
    let (code, v) = h.get(&format!("{base}/real")).await;
    assert_eq!(code, 200);
    assert_eq!(v["data"]["k"], "v");
    assert_eq!(v["metadata"]["resourceVersion"], rv);
    let (code, _) = h
        .delete(&format!("{base}/real"), Some(&json!({"dryRun": ["All"]})))
        .await;
    assert_eq!(code, 200);
    assert_eq!(h.get(&format!("{base}/real")).await.0, 200);
    emu.shutdown().await;
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

#[tokio::test]
async fn crds_through_the_api() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    // Fixture CRDs are installed and Established.
    let (code, crd) = h
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pytorchjobs.kubeflow.org")
        .await;
    assert_eq!(code, 200);
    let conds = crd["status"]["conditions"].as_array().unwrap();
    for t in ["NamesAccepted", "Established"] {
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True"),
            "{t}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "PyTorchJob");

    let (code, v) = h
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &widget_crd(),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, rl) = h.get("/apis/example.com/v1").await;
    assert_eq!(code, 200);
    assert_eq!(rl["resources"][0]["name"], "widgets");
    assert_eq!(rl["resources"][1]["name"], "widgets/status");
    let (code, v) = h
        .post(
            "/apis/example.com/v1/namespaces/default/widgets",
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    // A CRD's name must be <plural>.<group>.
    let mut bad = widget_crd();
    bad["metadata"]["name"] = json!("nope.example.com");
    let (code, v) = h
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &bad,
        )
        .await;
    assert_eq!(code, 422, "{v}");

    let (code, _) = h
        .delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(h.get("/apis/example.com/v1").await.0, 404);
    assert_eq!(
        h.get("/apis/example.com/v1/namespaces/default/widgets/w1")
            .await
            .0,
        404
    );
    // Re-creating the CRD does not resurrect the objects.
    h.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &widget_crd(),
    )
    .await;
    let (_, list) = h.get("/apis/example.com/v1/widgets").await;
    assert_eq!(list["items"], json!([]));
    emu.shutdown().await;
}

#[tokio::test]
async fn multi_version_crd_serves_every_version() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let (code, v) = h
        .post(
            "/apis/kubeflow.org/v1/profiles",
            &json!({"apiVersion": "kubeflow.org/v1", "kind": "Profile",
                    "metadata": {"name": "p1"}, "spec": {"owner": {"kind": "User", "name": "a@b.c"}}}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = h.get("/apis/kubeflow.org/v1beta1/profiles/p1").await;
    assert_eq!(code, 200);
    assert_eq!(v["apiVersion"], "kubeflow.org/v1beta1");
    assert_eq!(v["spec"]["owner"]["name"], "a@b.c");
    let (_, l) = h.get("/apis/kubeflow.org/v1beta1/profiles").await;
    assert_eq!(l["apiVersion"], "kubeflow.org/v1beta1");
    assert_eq!(l["items"][0]["apiVersion"], "kubeflow.org/v1beta1");
    emu.shutdown().await;
}

/// Upstream's grid Experiment (fixtures/examples/katib.experiment.grid.yaml) in `default`.
fn grid_experiment() -> Value {
    let mut e = util::grid_example();
    e["metadata"]["namespace"] = json!("default");
    e
}

#[tokio::test]
async fn tables_for_kubectl() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let client = util::client(&emu);
    util::enable_katib(&client, "default").await;
    let (code, v) = h
        .post(
            "/apis/kubeflow.org/v1beta1/namespaces/default/experiments",
            &grid_experiment(),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    // The example's image never runs here, so the Experiment stays Running once it is.
    let gvk = kube::api::GroupVersionKind::gvk("kubeflow.org", "v1beta1", "Experiment");
    let experiments: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        "default",
        &kube::discovery::ApiResource::from_gvk_with_plural(&gvk, "experiments"),
    );
    util::wait_for(&experiments, "grid", |e| {
        e.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.last())
            .is_some_and(|c| c["type"] == "Running")
    })
    .await;
    let (code, t) = h
        .send(
            h.c.get(format!(
                "{}/apis/kubeflow.org/v1beta1/namespaces/default/experiments",
                h.base
            ))
            .header(
                "accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            ),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Type", "Status", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "grid");
    assert_eq!(t["rows"][0]["cells"][1], "Running");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    emu.shutdown().await;
}

#[tokio::test]
async fn schema_validation_and_field_validation() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    let base = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs";
    let mut job = pytorchjob("u");
    job["spec"]["bogus"] = json!(1);
    let (code, v) = h
        .post(&format!("{base}?fieldValidation=Strict"), &job)
        .await;
    assert_eq!(code, 400);
    assert_status(
        &v,
        400,
        "BadRequest",
        r#"strict decoding error: unknown field "spec.bogus""#,
    );
    let r =
        h.c.post(format!("{}{base}", h.base))
            .json(&job)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let warning = r
        .headers()
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(warning, r#"299 - "unknown field \"spec.bogus\"""#);
    let stored: Value = r.json().await.unwrap();
    assert!(stored["spec"].get("bogus").is_none(), "pruned");
    let mut job2 = pytorchjob("i");
    job2["spec"]["bogus"] = json!(1);
    let r =
        h.c.post(format!("{}{base}?fieldValidation=Ignore", h.base))
            .json(&job2)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(r.headers().get("warning").is_none());

    let mut bad = pytorchjob("bad");
    bad["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = json!("one");
    let (code, v) = h.post(base, &bad).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    assert!(
        v["message"].as_str().unwrap().starts_with(
            r#"PyTorchJob.kubeflow.org "bad" is invalid: spec.pytorchReplicaSpecs.Master.replicas"#
        ),
        "{v}"
    );
    assert_eq!(
        v["details"]["causes"][0]["field"],
        "spec.pytorchReplicaSpecs.Master.replicas"
    );

    // The schema-drift defect: upstream examples trip over the renamed field.
    let emu2 = util::emulator_with(EmulatorConfig {
        defects: vec![Defect::PlatformPytorchjobSchemaDrift],
        ..EmulatorConfig::default()
    })
    .await;
    let h2 = Http::new(&emu2);
    let (code, v) = h2
        .post(&format!("{base}?fieldValidation=Strict"), &pytorchjob("d"))
        .await;
    assert_eq!(code, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(r#"unknown field "spec.pytorchReplicaSpecs""#),
        "{v}"
    );
    emu2.shutdown().await;
    emu.shutdown().await;
}

/// The resource is absent from its group/version's discovery and its collection answers 404.
async fn assert_not_served(h: &Http, group_version: &str, plural: &str) {
    let (_, rl) = h.get(group_version).await;
    let listed = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == plural);
    assert!(!listed, "{plural} still listed in {group_version}");
    let (code, _) = h
        .get(&format!("{group_version}/namespaces/default/{plural}"))
        .await;
    assert_eq!(code, 404, "{group_version}/{plural} still served");
}

#[tokio::test]
async fn defects_are_observable() {
    let emu = util::emulator_with(EmulatorConfig {
        defects: vec![
            Defect::PlatformOldKubernetes,
            Defect::PlatformMissingTrainjobCrd,
            Defect::PlatformExperimentCrdNotEstablished,
            Defect::PlatformPytorchjobSchemaDrift,
        ],
        ..EmulatorConfig::default()
    })
    .await;
    let h = Http::new(&emu);
    let (_, v) = h.get("/version").await;
    assert_eq!(v["gitVersion"], "v1.27.16+kfconform-emulator");
    assert_eq!(v["minor"], "27");

    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    assert_eq!(
        h.get(&format!("{crds}/trainjobs.trainer.kubeflow.org"))
            .await
            .0,
        404
    );
    assert_not_served(&h, "/apis/trainer.kubeflow.org/v1alpha1", "trainjobs").await;

    let (code, exp) = h.get(&format!("{crds}/experiments.kubeflow.org")).await;
    assert_eq!(code, 200);
    let conds = exp["status"]["conditions"].as_array().unwrap();
    let est = conds.iter().find(|c| c["type"] == "Established").unwrap();
    assert_eq!(est["status"], "False");
    assert_eq!(est["reason"], "Installing");
    let na = conds.iter().find(|c| c["type"] == "NamesAccepted").unwrap();
    assert_eq!(na["status"], "True");
    assert_not_served(&h, "/apis/kubeflow.org/v1beta1", "experiments").await;

    let (_, pj) = h.get(&format!("{crds}/pytorchjobs.kubeflow.org")).await;
    let spec = &pj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert!(spec["properties"].get("pytorchReplicaSpecs").is_none());
    assert!(spec["properties"].get("replicaSpecs").is_some());
    emu.shutdown().await;

    // Without defects all of it is there.
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    assert_eq!(
        h.get(&format!("{crds}/trainjobs.trainer.kubeflow.org"))
            .await
            .0,
        200
    );
    assert_eq!(
        h.get("/apis/kubeflow.org/v1beta1/namespaces/default/experiments")
            .await
            .0,
        200
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn request_counts() {
    let emu = util::emulator().await;
    let h = Http::new(&emu);
    h.get("/api/v1/namespaces/default/configmaps").await;
    h.get("/api/v1/namespaces/default/configmaps").await;
    h.post(
        "/api/v1/namespaces/default/configmaps",
        &cm("rc", json!({})),
    )
    .await;
    h.get("/api/v1/namespaces/default/configmaps/rc").await;
    h.patch(
        "/api/v1/namespaces/default/configmaps/rc",
        "application/merge-patch+json",
        "{}",
    )
    .await;
    h.delete("/api/v1/namespaces/default/configmaps/rc", None)
        .await;
    let counts = emu.request_counts();
    let c = |verb: &str, res: &str| {
        counts
            .get(&(verb.to_string(), res.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(c("list", "configmaps"), 2);
    assert_eq!(c("create", "configmaps"), 1);
    assert_eq!(c("get", "configmaps"), 1);
    assert_eq!(c("patch", "configmaps"), 1);
    assert_eq!(c("delete", "configmaps"), 1);
    let (code, v) = h.get("/kfconform/v1/requests").await;
    assert_eq!(code, 200);
    assert!(
        v.as_array()
            .unwrap()
            .contains(&json!({"verb": "list", "resource": "configmaps", "count": 2}))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_rs_typed_and_dynamic_clients() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

    let emu = util::emulator().await;
    let client = util::client(&emu);
    let nss: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut c = ConfigMap::default();
    c.metadata.name = Some("kr".into());
    cms.create(&PostParams::default(), &c).await.unwrap();
    let err = cms.create(&PostParams::default(), &c).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
        }
        other => panic!("{other}"),
    }
    cms.patch(
        "kr",
        &PatchParams::apply("test"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}})),
    )
    .await
    .unwrap();
    let got = cms.get("kr").await.unwrap();
    assert_eq!(got.data.unwrap()["a"], "b");
    cms.delete("kr", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("kr").await.unwrap().is_none());

    // Dynamic API over a CRD.
    let ar = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"),
        "pytorchjobs",
    );
    let jobs: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: kube::api::DynamicObject = serde_json::from_value(pytorchjob("dyn")).unwrap();
    jobs.create(&PostParams::default(), &obj).await.unwrap();
    let list = jobs
        .list(&ListParams::default().labels("!nope"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    emu.shutdown().await;
}

/// `platform.experiment-field-dropped`: a strict dry-run create of an Experiment succeeds, but
/// what comes back lacks `spec.maxFailedTrialCount`; without the defect it is kept.
#[tokio::test]
async fn experiment_field_dropped_defect() {
    let experiment = grid_experiment();
    let url = "/apis/kubeflow.org/v1beta1/namespaces/default/experiments?dryRun=All&fieldValidation=Strict";
    for (defects, kept) in [
        (vec![], true),
        (vec![Defect::PlatformExperimentFieldDropped], false),
    ] {
        let emu = util::emulator_with(EmulatorConfig {
            defects,
            ..EmulatorConfig::default()
        })
        .await;
        util::enable_katib(&util::client(&emu), "default").await;
        let (code, v) = Http::new(&emu).post(url, &experiment).await;
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["spec"].get("maxFailedTrialCount").is_some(), kept, "{v}");
        emu.shutdown().await;
    }
}
