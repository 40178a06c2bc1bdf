//! Least privilege: the whole suite passes as a user holding exactly what `kfconform rbac`
//! prints (not cluster-admin), and a user lacking one of those permissions is stopped by the
//! preflight before any test, with the missing permissions listed and exit 3.

use crate::util;

use k8s_openapi::api::core::v1::Namespace;
use kfconform_emulator::auth::AuthConfig;
use kfconform_emulator::{Emulator, EmulatorConfig};
use kfconform_suite::catalog::{Catalog, Selection};
use kfconform_suite::runner::{self, RunOptions};
use kube::api::{Api, ListParams};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const RUNNER: &str = "runner@example.com";
const WEAK: &str = "weak@example.com";

/// The emulator with its admin (first, the default kubeconfig user) and two more users;
/// returns it with the runner's and the weak user's tokens.
async fn emulator() -> (Emulator, String, String) {
    let mut auth = AuthConfig::default();
    let runner = auth.add_user(RUNNER, &[]);
    let weak = auth.add_user(WEAK, &[]);
    let emu = util::emulator_with(EmulatorConfig {
        auth,
        ..Default::default()
    })
    .await;
    (emu, runner, weak)
}

/// `kfconform rbac ARGS` as documents.
fn rbac(args: &[&str]) -> Vec<Value> {
    let out = util::kfconform().arg("rbac").args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    kfconform_core::fixtures::yaml_documents(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// Release profiles (every derived profile is a subset of its release's).
fn release_profiles() -> Vec<String> {
    Catalog::embedded()
        .unwrap()
        .profiles
        .iter()
        .filter(|p| !p.name.contains('/'))
        .map(|p| p.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_with_exactly_the_printed_role() {
    for profile in release_profiles() {
        let (emu, runner_token, _) = emulator().await;
        let admin = util::client(&emu);
        util::apply_rbac(&admin, &rbac(&["--profile", &profile, "--user", RUNNER])).await;
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            selection: Selection {
                profile: Some(profile.clone()),
                ..Default::default()
            },
            parallel: 4,
            probe_image: kfconform_probe::DEFAULT_PROBE_IMAGE.into(),
            command: "kfconform run".into(),
            ..util::run_options(dir.path())
        };
        let outcome = runner::run(
            emu.kube_config_for(&runner_token),
            &opts,
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap();
        let failed: Vec<String> = outcome
            .report
            .results
            .iter()
            .filter(|r| r.status != kfconform_suite::report::Status::Passed)
            .map(|r| format!("{} {:?}: {}", r.id, r.status, r.message))
            .collect();
        assert!(failed.is_empty(), "{profile} as {RUNNER}: {failed:#?}");
        assert!(
            outcome
                .report
                .results
                .iter()
                .any(|r| r.component == "profiles"),
            "the profiles suite did not run"
        );
        assert!(
            // Conformant, or held back only by the catalog's gaps (not certifiable).
            outcome.report.verdicts.iter().all(|v| v.conformant
                || (!v.certifiable
                    && v.reasons.iter().all(|r| r.starts_with("not certifiable: ")))),
            "{profile}: {:?}",
            outcome.report.verdicts
        );
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_stops_the_run_before_any_test() {
    let profile = kfconform_suite::catalog::DEFAULT_PROFILE;
    let (emu, _, weak_token) = emulator().await;
    let admin = util::client(&emu);
    // The printed role minus one rule: impersonation when the selection needs it, else the
    // per-test namespaces (every run needs those).
    let mut docs = rbac(&["--profile", profile, "--user", WEAK]);
    let rules = docs[0]["rules"].as_array_mut().unwrap();
    let drop = rules
        .iter()
        .position(|r| r["verbs"][0] == "impersonate")
        .or_else(|| rules.iter().position(|r| r["resources"][0] == "namespaces"))
        .unwrap();
    let dropped = rules.remove(drop);
    docs[0]["metadata"]["name"] = "kfconform-weak".into();
    docs[1]["metadata"]["name"] = "kfconform-weak".into();
    docs[1]["roleRef"]["name"] = "kfconform-weak".into();
    util::apply_rbac(&admin, &docs).await;
    let resource = dropped["resources"][0].as_str().unwrap();
    let names: Vec<&str> = dropped["resourceNames"]
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expected: Vec<String> = dropped["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match names.as_slice() {
            [] => format!("{} {resource}", v.as_str().unwrap()),
            [first, .., last] => format!(
                "{} {resource}/{first} … {last} ({} names)",
                v.as_str().unwrap(),
                names.len()
            ),
            [one] => format!("{} {resource}/{one}", v.as_str().unwrap()),
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = util::write_kubeconfig(dir.path(), &emu.kubeconfig_yaml_for(&weak_token));
    let out_dir = dir.path().join("results");
    let mut run = util::kfconform();
    run.args(["run", "--profile", profile, "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("-o")
        .arg(&out_dir);
    let out = util::output(run).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(
        line.contains("lacks permissions the runner needs"),
        "{line}"
    );
    let listed = line
        .split_once("needs: ")
        .and_then(|(_, rest)| rest.split_once(" (grant them with"))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(listed, expected.join("; "), "{line}");
    assert!(
        line.contains(&format!(
            "kfconform rbac --profile {profile} --user {WEAK} | kubectl apply -f -"
        )),
        "{line}"
    );
    assert!(
        !out_dir.join("report.json").exists(),
        "a report was written"
    );
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let created = namespaces
        .list(&ListParams::default().labels(kfconform_suite::RUN_LABEL))
        .await
        .unwrap();
    assert!(created.items.is_empty());
    assert!(
        !emu.request_counts()
            .contains_key(&("create".to_string(), "namespaces".to_string())),
        "a namespace was created"
    );

    // --skip-preflight lets the run start (and fail as it may).
    let mut run = util::kfconform();
    run.args([
        "run",
        "--skip-preflight",
        "--focus",
        "kubernetes-version",
        "--kubeconfig",
    ])
    .arg(&kubeconfig)
    .arg("-o")
    .arg(&out_dir);
    let out = util::output(run).await;
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("lacks permissions"),
        "{out:?}"
    );
    emu.shutdown().await;
}

/// Whether `who` (a token, optionally impersonating a user and groups) may do `verb` on
/// `resource`, as the API server answers a SelfSubjectAccessReview; `None` when the review
/// itself was refused (403: the impersonation is not allowed).
async fn may(
    emu: &Emulator,
    token: &str,
    impersonate: Option<(&str, &[&str])>,
    verb: &str,
    resource: &str,
) -> Option<bool> {
    let mut req = reqwest::Client::new()
        .post(format!(
            "{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            emu.url()
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource}},
        }));
    if let Some((user, groups)) = impersonate {
        req = req.header("Impersonate-User", user);
        for g in groups {
            req = req.header("Impersonate-Group", *g);
        }
    }
    let r = req.send().await.unwrap();
    if r.status() == 403 {
        return None;
    }
    assert_eq!(r.status(), 201, "{verb} {resource} as {impersonate:?}");
    let v: Value = r.json().await.unwrap();
    Some(v["status"]["allowed"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_role_cannot_escalate_through_impersonation() {
    let (emu, runner_token, _) = emulator().await;
    let admin = util::client(&emu);
    let docs = rbac(&[
        "--profile",
        kfconform_suite::catalog::DEFAULT_PROFILE,
        "--user",
        RUNNER,
    ]);
    // No impersonate without resourceNames, and only synthetic users.
    for rule in docs[0]["rules"].as_array().unwrap() {
        if rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "impersonate")
        {
            let names = rule["resourceNames"].as_array().expect("resourceNames");
            assert!(
                names
                    .iter()
                    .all(|n| n.as_str().unwrap().ends_with("@kfconform.invalid"))
            );
        }
    }
    util::apply_rbac(&admin, &docs).await;
    let pool = kfconform_suite::conformance::identity::POOL;
    // What the tests need: acting as a pool identity (allowed; it holds nothing itself).
    for user in pool {
        assert_eq!(
            may(&emu, &runner_token, Some((user, &[])), "get", "namespaces").await,
            Some(false),
            "impersonating {user}"
        );
    }
    // What it must never reach: the admin, a user bound to cluster-admin, system:masters, a
    // service account, a name outside the pool.
    util::apply_rbac(
        &admin,
        &[serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "alice-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "alice@example.com"}],
        })],
    )
    .await;
    for (user, groups) in [
        ("kubernetes-admin", &[][..]),
        ("alice@example.com", &[][..]),
        (pool[0], &["system:masters"][..]),
        ("system:serviceaccount:kube-system:default", &[][..]),
        ("alice-99@kfconform.invalid", &[][..]),
    ] {
        assert_eq!(
            may(&emu, &runner_token, Some((user, groups)), "get", "secrets").await,
            None,
            "the runner may impersonate {user} {groups:?}"
        );
    }
    // And none of these as itself.
    for (verb, resource) in [
        ("get", "secrets"),
        ("create", "clusterrolebindings"),
        ("escalate", "clusterroles"),
        ("impersonate", "users"),
        ("impersonate", "groups"),
        ("impersonate", "serviceaccounts"),
    ] {
        assert_eq!(
            may(&emu, &runner_token, None, verb, resource).await,
            Some(false),
            "the runner may {verb} {resource}"
        );
    }
    emu.shutdown().await;
}
