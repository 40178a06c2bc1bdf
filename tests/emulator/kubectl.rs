//! The real kubectl against an in-process emulator: the strictest client we have.
//!
//! kubectl must be on PATH (CI installs it with `.ci/setup`); without it these tests fail.

use crate::util;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use kfconform_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Every kubectl invocation gets this long; a hang fails the test instead of blocking it.
const TIMEOUT: Duration = Duration::from_secs(60);
const NS: &str = "kubectl-test";

fn kubectl_path() -> PathBuf {
    util::on_path("kubectl").unwrap_or_else(|| {
        panic!("kubectl is not on PATH: run `.ci/setup` (CI installs it) before the tests")
    })
}

pub(crate) struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub(crate) fn new(emu: &Emulator) -> Self {
        Self::with_kubeconfig(&emu.kubeconfig_yaml())
    }

    /// kubectl with its own kubeconfig (e.g. another user's token).
    pub(crate) fn with_kubeconfig(yaml: &str) -> Self {
        let bin = kubectl_path();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = util::write_kubeconfig(dir.path(), yaml);
        Kubectl {
            bin,
            dir,
            kubeconfig,
        }
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            // Keep kubectl's discovery cache out of the real home directory.
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output();
        tokio::time::timeout(TIMEOUT, out)
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args).await).unwrap()
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().to_string()
    }
}

/// Reads a spawned kubectl's stdout line by line.
pub(crate) struct Lines {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Lines {
    pub(crate) fn spawn(k: &Kubectl, args: &[&str]) -> Lines {
        let mut child = k
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        Lines {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Reads until a line satisfies `pred`; fails after the timeout or at end of output.
    pub(crate) async fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let read = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if pred(&line) {
                    return line;
                }
            }
            panic!("kubectl output ended before {what}");
        };
        tokio::time::timeout(TIMEOUT, read)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

pub(crate) async fn setup() -> (Emulator, Kubectl) {
    let emu = util::emulator().await;
    let k = Kubectl::new(&emu);
    (emu, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_builtins_and_crds() {
    let (emu, k) = setup().await;
    let out = k.ok(&["api-resources"]).await;
    for needle in [
        "namespaces",
        "configmaps",
        "customresourcedefinitions",
        "pytorchjobs",
        "kubeflow.org/v1",
        "trainjobs",
        "inferenceservices",
        "isvc",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    let out = k.ok(&["api-versions"]).await;
    assert!(out.lines().any(|l| l == "kubeflow.org/v1beta1"), "{out}");
    let out = k.ok(&["version"]).await;
    assert!(out.contains("Server Version: v1.34.2"), "{out}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_every_example_then_get() {
    let (emu, k) = setup().await;
    // Namespaces named by the examples, plus the test namespace for the others, labelled for
    // Katib as the Profile controller labels user namespaces.
    let mut namespaces = vec![NS.to_string()];
    let examples = kfconform_core::fixtures::examples();
    assert!(!examples.is_empty());
    for f in &examples {
        for doc in kfconform_core::fixtures::yaml_documents(f.text).unwrap() {
            if let Some(ns) = doc["metadata"]["namespace"].as_str()
                && !namespaces.iter().any(|n| n == ns)
            {
                namespaces.push(ns.to_string());
            }
        }
    }
    let ns_yaml: String = namespaces
        .iter()
        .map(|n| {
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n  labels:\n    \
                 katib.kubeflow.org/metrics-collector-injection: enabled\n---\n"
            )
        })
        .collect();
    let nsfile = k.file("namespaces.yaml", &ns_yaml);
    let out = k.ok(&["apply", "-f", &nsfile]).await;
    assert!(out.contains(&format!("namespace/{NS} created")), "{out}");

    for f in &examples {
        let path = k.file(f.path.rsplit('/').next().unwrap_or(f.path), f.text);
        let docs = kfconform_core::fixtures::yaml_documents(f.text).unwrap();
        let mut args = vec!["apply", "-f", path.as_str()];
        if docs.iter().all(|d| d["metadata"]["namespace"].is_null()) {
            args.extend(["-n", NS]);
        }
        let out = k.ok(&args).await;
        // The emulator ships torch-distributed pre-installed, as a distribution does.
        assert!(
            out.contains("created") || out.contains("configured"),
            "{}: {out}",
            f.path
        );
        // Re-applying an unchanged file is a no-op.
        // Re-applying is a no-op for the object. kubectl may still say "configured": for
        // custom resources it sends a JSON merge patch, which replaces whole lists, and
        // schema defaults inside lists (as in the trainer runtimes) make the live list differ
        // from the file, exactly as on a real cluster.
        let out = k.ok(&args).await;
        assert!(
            out.contains("unchanged") || out.contains("configured"),
            "{}: {out}",
            f.path
        );
        for d in &docs {
            let kind = d["kind"].as_str().unwrap();
            let name = d["metadata"]["name"].as_str().unwrap();
            let group = d["apiVersion"].as_str().unwrap().split('/').next().unwrap();
            let res = format!("{}.{group}", kind.to_lowercase());
            let ns = d["metadata"]["namespace"].as_str().unwrap_or(NS);
            let got = k.json(&["get", &res, name, "-n", ns, "-o", "json"]).await;
            assert_eq!(got["kind"], kind);
            assert_eq!(got["metadata"]["name"], name);
            assert_eq!(got["metadata"]["generation"], 1, "re-apply changed {name}");
            assert!(
                got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                    .is_string()
            );
            let yaml = k.ok(&["get", &res, name, "-n", ns, "-o", "yaml"]).await;
            assert!(yaml.contains(&format!("name: {name}")), "{yaml}");
        }
    }
    // Table output of a CRD with printer columns and of a built-in.
    let out = k.ok(&["get", "pytorchjobs", "-n", NS]).await;
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("pytorch-simple"), "{out}");
    let out = k.ok(&["get", "namespaces"]).await;
    assert!(out.contains(NS) && out.contains("Active"), "{out}");
    let out = k.ok(&["get", "experiments", "-A"]).await;
    assert!(out.contains("grid"), "{out}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_watch_wait_delete() {
    let (emu, k) = setup().await;
    let nsfile = k.file(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"),
    );
    k.ok(&["apply", "-f", &nsfile]).await;
    let job = kfconform_core::fixtures::examples()
        .into_iter()
        .find(|f| f.path.contains("pytorchjob"))
        .unwrap();
    let jobfile = k.file("job.yaml", job.text);
    k.ok(&["apply", "-n", NS, "-f", &jobfile]).await;

    // get -w (JSONPath output) sees a later change.
    let mut watch = Lines::spawn(
        &k,
        &[
            "get",
            "pytorchjob",
            "pytorch-simple",
            "-n",
            NS,
            "-w",
            "-o",
            "jsonpath={.metadata.labels.stage}{\"\\n\"}",
        ],
    );
    watch.until("the initial state", |_| true).await;
    let out = k
        .ok(&[
            "label",
            "pytorchjob",
            "pytorch-simple",
            "-n",
            NS,
            "stage=one",
        ])
        .await;
    assert!(out.contains("labeled"), "{out}");
    watch.until("stage=one", |l| l == "one").await;
    watch.kill().await;

    // get -w with the default (Table) output sees a new object.
    let mut table = Lines::spawn(&k, &["get", "configmaps", "-n", NS, "-w"]);
    let cm = k.file(
        "cm.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late-arrival\n  namespace: {NS}\ndata:\n  k: v\n"),
    );
    k.ok(&["apply", "-f", &cm]).await;
    table
        .until("the new configmap row", |l| l.starts_with("late-arrival"))
        .await;
    table.kill().await;

    // patch --type merge.
    let out = k
        .ok(&[
            "patch",
            "pytorchjob",
            "pytorch-simple",
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"runPolicy":{"suspend":true}}}"#,
        ])
        .await;
    assert!(out.contains("patched"), "{out}");
    let got = k
        .json(&[
            "get",
            "pytorchjob",
            "pytorch-simple",
            "-n",
            NS,
            "-o",
            "json",
        ])
        .await;
    assert_eq!(got["spec"]["runPolicy"]["suspend"], true);
    assert_eq!(got["metadata"]["generation"], 2);
    assert_eq!(got["metadata"]["labels"]["stage"], "one");

    // wait --for=jsonpath sees a value set after it started.
    let waiter = k
        .cmd(&[
            "wait",
            "pytorchjob/pytorch-simple",
            "-n",
            NS,
            "--for=jsonpath={.metadata.labels.stage}=two",
            "--timeout=50s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let waiter = tokio::spawn(waiter);
    k.ok(&[
        "label",
        "--overwrite",
        "pytorchjob",
        "pytorch-simple",
        "-n",
        NS,
        "stage=two",
    ])
    .await;
    let out = tokio::time::timeout(TIMEOUT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));

    // delete (kubectl waits for the object to be gone).
    let out = k
        .ok(&["delete", "pytorchjob", "pytorch-simple", "-n", NS])
        .await;
    assert!(out.contains("deleted"), "{out}");

    // get of a missing object: kubectl's NotFound message and exit 1.
    let out = k
        .run(&["get", "pytorchjob", "pytorch-simple", "-n", NS])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"Error from server (NotFound): pytorchjobs.kubeflow.org "pytorch-simple" not found"#
        ),
        "{stderr}"
    );

    // Deleting the namespace cascades; kubectl waits until it is gone.
    k.ok(&["delete", "namespace", NS]).await;
    let out = k.run(&["get", "namespace", NS]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(r#"namespaces "{NS}" not found"#))
    );
    emu.shutdown().await;
}

/// `kubectl auth can-i` prints yes/no and exits 0/1.
async fn can_i(k: &Kubectl, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = k.run(&all).await;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (out.status.code(), stdout.as_str()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        other => panic!(
            "kubectl {all:?}: unexpected {other:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_can_i_whoami_and_tokens() {
    let mut config = EmulatorConfig::default();
    let alice_token = config.auth.add_user("alice", &["devs".to_string()]);
    let emu = util::emulator_with(config).await;
    let k = Kubectl::new(&emu);
    let setup = k.file(
        "rbac.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: alice-edit\n  namespace: team-a\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: kubeflow-edit\n\
         subjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: alice\n",
    );
    k.ok(&["apply", "-f", &setup]).await;

    // The admin, and what RBAC says for an impersonated user.
    assert!(can_i(&k, &["create", "pytorchjobs.kubeflow.org", "-n", "team-b"]).await);
    let alice = |verb: &'static str, res: &'static str, ns: &'static str| {
        let k = &k;
        async move { can_i(k, &[verb, res, "-n", ns, "--as", "alice"]).await }
    };
    assert!(alice("create", "pytorchjobs.kubeflow.org", "team-a").await);
    assert!(alice("create", "trainjobs.trainer.kubeflow.org", "team-a").await);
    assert!(alice("create", "inferenceservices.serving.kserve.io", "team-a").await);
    assert!(!alice("update", "trainjobs.trainer.kubeflow.org", "team-a").await);
    assert!(!alice("create", "pytorchjobs.kubeflow.org", "team-b").await);
    assert!(!alice("delete", "namespaces", "team-a").await);
    let list = k
        .ok(&["auth", "can-i", "--list", "-n", "team-a", "--as", "alice"])
        .await;
    assert!(list.contains("pytorchjobs.kubeflow.org"), "{list}");
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );

    // whoami, plain and impersonated.
    let out = k.ok(&["auth", "whoami"]).await;
    assert!(
        out.contains("kubernetes-admin") && out.contains("system:masters"),
        "{out}"
    );
    let who = k
        .json(&[
            "auth",
            "whoami",
            "--as",
            "alice",
            "--as-group",
            "devs",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        serde_json::json!(["devs", "system:authenticated"])
    );

    // kubectl with alice's own token: allowed where bound, Forbidden elsewhere.
    let ka = Kubectl::with_kubeconfig(&emu.kubeconfig_yaml_for(&alice_token));
    let out = ka.ok(&["auth", "whoami"]).await;
    assert!(out.contains("alice") && out.contains("devs"), "{out}");
    ka.ok(&["get", "pytorchjobs", "-n", "team-a"]).await;
    let out = ka.run(&["get", "configmaps", "-n", "team-b"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"Error from server (Forbidden): configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "team-b""#
        ),
        "{stderr}"
    );
    // Impersonation needs the verb.
    let out = ka
        .run(&["get", "configmaps", "-n", "team-a", "--as", "bob"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users""#
        ),
        "{stderr}"
    );

    // A ServiceAccount token from `kubectl create token` works with kubectl.
    let sa = k.file(
        "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\n  namespace: team-a\n",
    );
    k.ok(&["apply", "-f", &sa]).await;
    let token = k.ok(&["create", "token", "robot", "-n", "team-a"]).await;
    let kr = Kubectl::with_kubeconfig(&emu.kubeconfig_yaml_for(token.trim()));
    let out = kr.ok(&["auth", "whoami"]).await;
    assert!(out.contains("system:serviceaccount:team-a:robot"), "{out}");

    // A wrong token: kubectl's Unauthorized message.
    let kx = Kubectl::with_kubeconfig(&emu.kubeconfig_yaml_for("wrong"));
    let out = kx.run(&["get", "namespaces"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
    emu.shutdown().await;
}

/// `kubectl get` prints kube-apiserver's columns for built-in kinds (server-side tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_the_apiservers_columns() {
    let emu = util::probe_emulator().await;
    let k = Kubectl::new(&emu);
    let image = kfconform_probe::DEFAULT_PROBE_IMAGE;
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  containers: [{{name: main, image: "{image}", args: [probe, sleep, --seconds, "600"]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "{image}", args: [probe, sleep, --seconds, "0"]}}]
"#
    );
    let file = k.file("objects.yaml", &manifest);
    k.ok(&["apply", "-f", &file]).await;
    k.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"])
        .await;
    k.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/once",
        "--timeout=60s",
    ])
    .await;

    let cols = |out: &str, name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let pods = k.ok(&["get", "pods", "-o", "wide"]).await;
    let header = pods.lines().next().unwrap_or_default();
    for c in ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] {
        assert!(header.contains(c), "{c} missing from {header}");
    }
    let web = cols(&pods, "web");
    assert_eq!(web[1..4], ["1/1", "Running", "0"], "{pods}");
    assert!(web[5].starts_with("127."), "pod IP in {pods}");
    assert_eq!(web[6], "kfconform-node", "{pods}");

    let svc = k.ok(&["get", "services"]).await;
    assert!(
        svc.lines()
            .next()
            .unwrap_or_default()
            .contains("CLUSTER-IP")
    );
    let row = cols(&svc, "web");
    assert_eq!(row[1], "ClusterIP", "{svc}");
    assert_eq!(row[4], "80/TCP", "{svc}");

    // `get events` shows the pod's lifecycle, as the scheduler and the kubelet report it.
    let events = k
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web",
        ])
        .await;
    assert!(events.starts_with("LAST SEEN"), "{events}");
    for needle in [
        "Scheduled",
        "Successfully assigned default/web to kfconform-node",
        "Pulled",
        "Created",
        "Created container: main",
        "Started",
        "pod/web",
    ] {
        assert!(events.contains(needle), "no {needle:?} in:\n{events}");
    }

    let jobs = k.ok(&["get", "jobs"]).await;
    assert!(
        jobs.lines()
            .next()
            .unwrap_or_default()
            .contains("COMPLETIONS")
    );
    assert_eq!(cols(&jobs, "once")[1..3], ["Complete", "1/1"], "{jobs}");
    emu.shutdown().await;
}
