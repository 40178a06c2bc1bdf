//! Bad input gets one clear line and a documented exit code; nothing needs a cluster here except
//! the unreachable-server cases, which use loopback ports nobody answers on.

use crate::util;

use std::io::Write;
use std::process::Output;

/// Asserts the exit code and that stderr is exactly one `error:` line containing every needle.
fn assert_error(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    assert!(
        lines[0].starts_with("error: "),
        "not an error line: {}",
        lines[0]
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{:?} does not mention {n:?}",
            lines[0]
        );
    }
}

fn kubeconfig(dir: &tempfile::TempDir, server: &str, context: &str) -> std::path::PathBuf {
    let path = dir.path().join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\ncurrent-context: {context}\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// `kfconform run --kubeconfig KC [extra..] -o DIR/r`.
fn run_with_kubeconfig(kc: &std::path::Path, dir: &tempfile::TempDir, extra: &[&str]) -> Output {
    util::kfconform()
        .arg("run")
        .arg("--kubeconfig")
        .arg(kc)
        .args(extra)
        .arg("-o")
        .arg(dir.path().join("r"))
        .output()
        .unwrap()
}

#[test]
fn missing_kubeconfig_is_a_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = util::kfconform()
        .args(["run", "--kubeconfig", "/nonexistent/kubeconfig", "-o"])
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert_error(
        &out,
        3,
        &["kubeconfig", "/nonexistent/kubeconfig", "no such file"],
    );
}

#[test]
fn garbled_kubeconfig_is_a_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"clusters: [this is: not {valid")
        .unwrap();
    let out = run_with_kubeconfig(&path, &dir, &[]);
    assert_error(&out, 3, &["kubeconfig", "not a valid kubeconfig"]);
}

#[test]
fn unknown_context_is_a_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&dir, "http://127.0.0.1:1", "real");
    let out = run_with_kubeconfig(&kc, &dir, &["--context", "imaginary"]);
    assert_error(&out, 3, &["context", "imaginary", "not found"]);
}

#[test]
fn refused_connection_is_a_prompt_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&dir, "http://127.0.0.1:1", "ctx");
    let out = run_with_kubeconfig(&kc, &dir, &[]);
    assert_error(&out, 3, &["cluster unreachable", "127.0.0.1:1"]);
}

#[test]
fn silent_server_is_a_harness_error_within_15s() {
    // A listener that accepts and never answers: the runner must give up on its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&dir, &format!("http://{addr}"), "ctx");
    let start = std::time::Instant::now();
    let out = run_with_kubeconfig(&kc, &dir, &[]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert_error(&out, 3, &["cluster unreachable", &addr.to_string()]);
    drop(listener);
}

#[test]
fn usage_errors_exit_2_before_touching_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("results");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--profile".into(), "kubeflow-0.1".into()],
            vec!["unknown profile", "kubeflow-0.1"],
        ),
        (
            vec!["--component".into(), "teleportation".into()],
            vec!["unknown component", "teleportation"],
        ),
        (
            vec!["--focus".into(), "platform/(".into()],
            vec!["--focus", "platform/("],
        ),
        (vec!["--skip".into(), "[".into()], vec!["--skip"]),
        (
            vec!["--features".into(), "training.quantum".into()],
            vec!["unknown feature", "training.quantum"],
        ),
        (
            vec!["--defect".into(), "no.such-defect".into()],
            vec!["unknown defect", "no.such-defect"],
        ),
        (
            vec!["-o".into(), unwritable.display().to_string()],
            vec!["output directory", "a-file"],
        ),
    ];
    for (args, needles) in cases {
        let mut cmd = util::kfconform();
        cmd.args(["run", "--emulator"]);
        if !args.contains(&"-o".to_string()) {
            cmd.arg("-o").arg(dir.path().join("r"));
        }
        let out = cmd.args(&args).output().unwrap();
        assert_error(&out, 2, &needles);
    }
}

#[test]
fn clap_usage_errors_exit_2() {
    let out = util::kfconform()
        .args(["run", "--parallel", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = util::kfconform()
        .args(["run", "--defect", "platform.old-kubernetes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--defect needs --emulator");
    for args in [
        ["run", "--fault", "latency=20ms"],
        ["run", "--pod-startup", "2s"],
        ["bench", "--fault", "latency=20ms"],
    ] {
        let out = util::kfconform().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} needs --emulator");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--emulator"), "{args:?}: {stderr}");
    }
    for id in ["", "=otherrun", "a b", "x,y", "x-", "A1"] {
        let out = util::kfconform()
            .args(["cleanup", "--emulator", "--run-id", id])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--run-id {id:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not a run id"), "{id:?}: {stderr}");
    }
    let out = util::kfconform().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn list_defects_names_every_defect_with_a_description() {
    let out = util::kfconform()
        .args(["emulator", "--list-defects"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for d in kfconform_emulator::Defect::ALL {
        let line = text
            .lines()
            .find(|l| l.starts_with(d.name()))
            .unwrap_or_else(|| panic!("{d} not listed"));
        assert!(line.len() > d.name().len() + 10, "{d} has no description");
    }
}

#[test]
fn list_prints_the_plan_in_every_format() {
    let table = util::kfconform().args(["list"]).output().unwrap();
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("platform/kubernetes-version"));
    let json = util::kfconform()
        .args(["list", "--format", "json", "--focus", "version"])
        .output()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("list --format json is JSON");
    assert!(v.to_string().contains("platform/kubernetes-version"));
    let md = util::kfconform()
        .args(["list", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&md.stdout).contains("\n# Kubeflow conformance"));
}

/// Both `list --format json` documents carry their format version and match their schemas in
/// reports/, for the whole catalog and for a narrowed plan (with unselected tests).
#[test]
fn list_json_matches_its_schemas() {
    let json = |args: &[&str]| {
        let out = util::kfconform()
            .args(["list", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        util::stdout_json(&out)
    };
    for args in [
        &[][..],
        &[
            "--profile",
            "kubeflow-26.03/training",
            "--skip",
            "platform/.*",
        ],
    ] {
        let plan = json(args);
        util::assert_matches_schema("list.schema.json", &plan);
        assert_eq!(plan["format_version"], 1);
    }
    let narrowed = json(&["--skip", "platform/.*"]);
    assert_eq!(narrowed["tests"][0]["selected"], false);
    let profiles = json(&["--profiles"]);
    util::assert_matches_schema("list-profiles.schema.json", &profiles);
    assert_eq!(profiles["format_version"], 1);
}

#[test]
fn rbac_prints_the_runner_role_and_binding() {
    let out = util::kfconform()
        .args([
            "rbac",
            "--profile",
            "kubeflow-26.03/platform",
            "--user",
            "runner@example.com",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = kfconform_core::fixtures::yaml_documents(&text).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ClusterRole", "ClusterRoleBinding"]);
    insta::assert_snapshot!(text);
}

#[test]
fn rbac_subjects() {
    let sa = util::kfconform()
        .args(["rbac", "--service-account", "ci:kfconform"])
        .output()
        .unwrap();
    assert!(sa.status.success());
    let docs =
        kfconform_core::fixtures::yaml_documents(&String::from_utf8_lossy(&sa.stdout)).unwrap();
    assert_eq!(
        docs[1]["subjects"][0],
        serde_json::json!({"kind": "ServiceAccount", "name": "kfconform", "namespace": "ci"})
    );
    // Without a subject: the role alone, still one apply-able document.
    let bare = util::kfconform().arg("rbac").output().unwrap();
    assert!(bare.status.success());
    let docs =
        kfconform_core::fixtures::yaml_documents(&String::from_utf8_lossy(&bare.stdout)).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["kind"], "ClusterRole");

    let bad = util::kfconform()
        .args(["rbac", "--service-account", "kfconform"])
        .output()
        .unwrap();
    assert_error(&bad, 2, &["--service-account", "NAMESPACE:NAME"]);
    let two = util::kfconform()
        .args(["rbac", "--user", "a", "--group", "b"])
        .output()
        .unwrap();
    assert_eq!(two.status.code(), Some(2));
    let unknown = util::kfconform()
        .args(["rbac", "--profile", "nope"])
        .output()
        .unwrap();
    assert_error(&unknown, 2, &["unknown profile"]);
}
