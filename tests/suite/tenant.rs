//! Tenant tests run in a Profile the runner creates (named like the namespace would have been,
//! owned by a synthetic user, labelled with the run) and deletes at the end, also when the run
//! is interrupted; a target without Profiles makes them errors that say why.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfconform_emulator::EmulatorConfig;
use kfconform_suite::catalog::{Catalog, Plan, Selection};
use kfconform_suite::report::{Status, TestResult};
use kfconform_suite::runner::{self, Execution, Target};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TEST: &str = "platform/upstream-examples-accepted";

/// The plan of TEST alone, marked as a tenant test; returns it and the test's index.
fn tenant_plan() -> (Plan, usize) {
    let catalog = Catalog::embedded().unwrap();
    let mut plan = catalog
        .plan(&Selection {
            focus: vec![format!("^{TEST}$")],
            ..Default::default()
        })
        .unwrap();
    let mut index = None;
    for (i, t) in plan.tests.iter_mut().enumerate() {
        if t.spec.id == TEST {
            t.spec.tenant = true;
            index = Some(i);
        }
    }
    (plan, index.unwrap())
}

/// The tenant's name (its Profile's and its namespace's) in run `run_id`.
fn tenant_name(run_id: &str) -> String {
    let (_, index) = tenant_plan();
    format!("kfconform-{run_id}-{}", index + 1)
}

/// Runs TEST alone, as a tenant test, against the cluster `config` names, as run `run_id`.
async fn run_tenant(config: kube::Config, run_id: &str, cancel: &CancellationToken) -> Execution {
    let catalog = Catalog::embedded().unwrap();
    let (plan, _) = tenant_plan();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::connect(config, catalog, None).await.unwrap();
    runner::execute(
        &target,
        catalog,
        &plan,
        &util::run_options(dir.path()),
        run_id,
        cancel,
        &|_| {},
    )
    .await
}

/// TEST's result.
fn result(exec: &Execution) -> &TestResult {
    exec.results.iter().find(|r| r.id == TEST).unwrap()
}

/// What a background watch saw: each object's last state by name, and which were deleted.
struct Recorder {
    seen: watch::Sender<BTreeMap<String, Value>>,
    deleted: watch::Sender<BTreeSet<String>>,
}

impl Recorder {
    fn last(&self, name: &str) -> Option<Value> {
        self.seen.borrow().get(name).cloned()
    }

    /// Waits until the watch has seen `name` (bounded, as a safety net).
    async fn wait_seen(&self, name: &str) {
        let mut rx = self.seen.subscribe();
        let what = format!("the watch seeing {name}");
        let seen = util::within(&what, rx.wait_for(|s| s.contains_key(name))).await;
        assert!(seen.is_ok(), "the watch never saw {name}");
    }

    /// Waits until the watch has seen `name` deleted (bounded, as a safety net).
    async fn wait_deleted(&self, name: &str) {
        let mut rx = self.deleted.subscribe();
        let what = format!("the watch seeing {name} deleted");
        let seen = util::within(&what, rx.wait_for(|d| d.contains(name))).await;
        assert!(seen.is_ok(), "the watch never saw {name} deleted");
    }
}

/// Records everything a watch of `api` sees, in the background; returns once the watch has
/// its initial list, so nothing later is missed.
async fn record<K>(api: Api<K>) -> Arc<Recorder>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize,
    K: std::fmt::Debug + Send + 'static,
{
    let rec = Arc::new(Recorder {
        seen: watch::Sender::new(BTreeMap::new()),
        deleted: watch::Sender::new(BTreeSet::new()),
    });
    let r = rec.clone();
    let (ready, listed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        let mut ready = Some(ready);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    let v = serde_json::to_value(&o).unwrap();
                    r.seen.send_modify(|s| {
                        s.insert(o.name_any(), v);
                    });
                }
                Ok(watcher::Event::Delete(o)) => {
                    r.deleted.send_modify(|d| {
                        d.insert(o.name_any());
                    });
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                // The emulator is gone (the test ended): retrying at once would spin.
                Err(_) => return,
                _ => {}
            }
        }
    });
    listed.await.unwrap();
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_test_runs_in_its_own_profile_which_is_gone_after_the_run() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let seen_profiles = record(util::profiles(&client)).await;
    let seen_namespaces = record(Api::<Namespace>::all(client.clone())).await;
    let run_id = "tenant01";
    let exec = run_tenant(emu.kube_config(), run_id, &CancellationToken::new()).await;
    let r = result(&exec);
    assert_eq!(r.status, Status::Passed, "{}", r.message);

    let name = tenant_name(run_id);
    // The run waited for both to be gone; the recorders catch up with that.
    seen_profiles.wait_deleted(&name).await;
    seen_namespaces.wait_deleted(&name).await;
    let profile = seen_profiles.last(&name);
    let profile = profile.unwrap_or_else(|| panic!("no Profile {name} was created"));
    assert_eq!(
        profile["spec"]["owner"],
        serde_json::json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                           "name": kfconform_suite::conformance::identity::POOL[0]})
    );
    assert_eq!(profile["metadata"]["labels"]["kfconform.io/run"], run_id);
    assert_eq!(
        profile["metadata"]["labels"]["kfconform.io/test"],
        "platform.upstream-examples-accepted"
    );
    // The test worked in the Profile's namespace (its namespaced dry-run creates need it to
    // exist), which the Profile controller made, not the runner.
    let ns = seen_namespaces.last(&name);
    let ns = ns.unwrap_or_else(|| panic!("no namespace {name} appeared"));
    assert_eq!(ns["metadata"]["ownerReferences"][0]["kind"], "Profile");
    assert!(
        ns["metadata"]["labels"]["kfconform.io/run"].is_null(),
        "the runner created a plain namespace for a tenant test: {ns}"
    );
    // Readiness was asked of the API server (the owner may create pods there).
    let counts = emu.request_counts();
    assert!(
        counts
            .get(&("create".to_string(), "subjectaccessreviews".to_string()))
            .is_some_and(|n| *n >= 1),
        "{counts:?}"
    );

    assert!(
        util::profiles(&client)
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
    emu.shutdown().await;
}

fn defect(name: &str) -> kfconform_emulator::Defect {
    name.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_tenant_test_leaves_no_profile_behind() {
    // Without the owner's admin binding the tenant never becomes ready, so the run is
    // certainly still setting it up when it is interrupted.
    let emu = util::emulator_with_defects(vec![defect("profiles.no-admin-binding")]).await;
    let client = util::client(&emu);
    let run_id = "tenant02";
    let name = tenant_name(run_id);
    // Interrupt as soon as the Profile exists, i.e. while the runner waits for it. The watch
    // has its initial list before the run starts, so it cannot miss the Profile.
    let cancel = CancellationToken::new();
    let seen_profiles = record(util::profiles(&client)).await;
    tokio::spawn({
        let (cancel, name) = (cancel.clone(), name.clone());
        async move {
            seen_profiles.wait_seen(&name).await;
            cancel.cancel();
        }
    });
    let exec = run_tenant(emu.kube_config(), run_id, &cancel).await;
    assert!(!exec.complete);
    let left = util::profiles(&client)
        .list(&ListParams::default().labels(kfconform_suite::RUN_LABEL))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_profiles_a_tenant_test_is_an_error_that_says_why() {
    let emu = util::emulator().await;
    let crds: Api<CustomResourceDefinition> = Api::all(util::client(&emu));
    crds.delete("profiles.kubeflow.org", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&crds, "profiles.kubeflow.org").await;
    let exec = run_tenant(emu.kube_config(), "tenant03", &CancellationToken::new()).await;
    let r = result(&exec);
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("does not serve profiles.kubeflow.org"),
        "{}",
        r.message
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_test_needs_only_the_printed_rules() {
    use kfconform_suite::runner::rbac::{self, Subject};
    let mut auth = kfconform_emulator::auth::AuthConfig::default();
    let token = auth.add_user("runner@example.com", &[]);
    let emu = util::emulator_with(EmulatorConfig {
        auth,
        ..Default::default()
    })
    .await;
    let admin = util::client(&emu);
    let (plan, _) = tenant_plan();
    let rules = rbac::rules_for(&plan);
    let shown: Vec<String> = rbac::permissions(&rules)
        .iter()
        .map(ToString::to_string)
        .collect();
    for want in [
        "create profiles.kubeflow.org",
        "impersonate users/tenant-01@kfconform.invalid",
        "create subjectaccessreviews.authorization.k8s.io",
    ] {
        assert!(shown.iter().any(|s| s == want), "{want} not in {shown:?}");
    }
    let text = rbac::manifests(
        &rules,
        Some(&Subject::User("runner@example.com".into())),
        "a tenant test",
    );
    let docs = kfconform_core::fixtures::yaml_documents(&text).unwrap();
    util::apply_rbac(&admin, &docs[..2]).await;

    let client = util::client_for(&emu, &token);
    runner::preflight::check(&client, &rules, "").await.unwrap();
    let exec = run_tenant(
        emu.kube_config_for(&token),
        "tenant04",
        &CancellationToken::new(),
    )
    .await;
    let r = result(&exec);
    assert_eq!(r.status, Status::Passed, "{}", r.message);
    let left = util::profiles(&admin)
        .list(&ListParams::default().labels(kfconform_suite::RUN_LABEL))
        .await
        .unwrap();
    assert!(left.items.is_empty());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_owner_gets_no_access_is_a_set_up_error_that_says_so() {
    let emu = util::emulator_with_defects(vec![defect("profiles.no-admin-binding")]).await;
    let exec = run_tenant(emu.kube_config(), "tenant05", &CancellationToken::new()).await;
    let name = tenant_name("tenant05");
    let r = result(&exec);
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains(&format!(
            "Profile {name}: its owner tenant-01@kfconform.invalid was still not allowed to create \
             pods in namespace {name} 10s after the Profile controller finished"
        )),
        "{}",
        r.message
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_namespace_the_controller_does_not_own_is_still_cleaned_up() {
    // The namespace carries no ownerReference, so deleting the Profile leaves it; the runner
    // knows it by its owner annotation (the synthetic owner) and deletes it itself.
    let emu = util::emulator_with_defects(vec![defect("profiles.no-owner-reference")]).await;
    let client = util::client(&emu);
    let exec = run_tenant(emu.kube_config(), "tenant06", &CancellationToken::new()).await;
    let r = result(&exec);
    assert_eq!(r.status, Status::Passed, "{}", r.message);
    let name = tenant_name("tenant06");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
    emu.shutdown().await;
}
