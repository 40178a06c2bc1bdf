//! Tenant tests run in a Profile the runner creates (named like the namespace would have been,
//! owned by a synthetic user, labelled with the run) and deletes at the end, also when the run
//! is interrupted; a target without Profiles makes them errors that say why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfconform::catalog::{Catalog, Plan, Selection};
use kfconform::emulator::{Emulator, EmulatorConfig};
use kfconform::report::Status;
use kfconform::runner::{self, RunOptions, Target};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::runtime::watcher;
use serde_json::Value;
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

fn options(dir: &tempfile::TempDir) -> RunOptions {
    RunOptions {
        selection: Selection::default(),
        features: None,
        parallel: 1,
        timeout_scale: 1.0,
        output: dir.path().join("results"),
        probe_image: "example.invalid/kfconform:test".into(),
        emulator: true,
        defects: vec![],
        command: "kfconform run --emulator".into(),
    }
}

fn profiles(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &kfconform::cluster::profile_resource())
}

/// Everything a watch of `api` saw, by name (last state wins), collected in the background.
fn record<K>(api: Api<K>) -> Arc<Mutex<BTreeMap<String, Value>>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize,
    K: std::fmt::Debug + Send + 'static,
{
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev {
                let v = serde_json::to_value(&o).unwrap();
                s.lock().unwrap().insert(o.name_any(), v);
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_test_runs_in_its_own_profile_which_is_gone_after_the_run() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let client = kube::Client::try_from(emu.kube_config()).unwrap();
    let seen_profiles = record(profiles(&client));
    let seen_namespaces = record(Api::<Namespace>::all(client.clone()));
    let catalog = Catalog::embedded().unwrap();
    let (plan, index) = tenant_plan();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::connect(emu.kube_config(), catalog, None)
        .await
        .unwrap();
    let run_id = "tenant01";
    let exec = runner::execute(
        &target,
        catalog,
        &plan,
        &options(&dir),
        run_id,
        &CancellationToken::new(),
        &|_| {},
    )
    .await;
    let r = exec.results.iter().find(|r| r.id == TEST).unwrap();
    assert_eq!(r.status, Status::Passed, "{}", r.message);

    let name = format!("kfconform-{run_id}-{}", index + 1);
    let profile = seen_profiles.lock().unwrap().get(&name).cloned();
    let profile = profile.unwrap_or_else(|| panic!("no Profile {name} was created"));
    assert_eq!(
        profile["spec"]["owner"],
        serde_json::json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                           "name": format!("{name}@kfconform.invalid")})
    );
    assert_eq!(profile["metadata"]["labels"]["kfconform.io/run"], run_id);
    assert_eq!(
        profile["metadata"]["labels"]["kfconform.io/test"],
        "platform.upstream-examples-accepted"
    );
    // The test worked in the Profile's namespace (its namespaced dry-run creates need it to
    // exist), which the Profile controller made, not the runner.
    let ns = seen_namespaces.lock().unwrap().get(&name).cloned();
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

    assert!(profiles(&client).get_opt(&name).await.unwrap().is_none());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_tenant_test_leaves_no_profile_behind() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let client = kube::Client::try_from(emu.kube_config()).unwrap();
    let catalog = Catalog::embedded().unwrap();
    let (plan, index) = tenant_plan();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::connect(emu.kube_config(), catalog, None)
        .await
        .unwrap();
    let run_id = "tenant02";
    let name = format!("kfconform-{run_id}-{}", index + 1);
    // Interrupt as soon as the Profile exists, i.e. while the runner waits for it.
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        let api = profiles(&client);
        let name = name.clone();
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev
                    && o.name_any() == name
                {
                    cancel.cancel();
                    return;
                }
            }
        });
    }
    let exec = runner::execute(
        &target,
        catalog,
        &plan,
        &options(&dir),
        run_id,
        &cancel,
        &|_| {},
    )
    .await;
    assert!(!exec.complete);
    let left = profiles(&client)
        .list(&ListParams::default().labels(kfconform::RUN_LABEL))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_profiles_a_tenant_test_is_an_error_that_says_why() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let client = kube::Client::try_from(emu.kube_config()).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let uid = crds
        .get("profiles.kubeflow.org")
        .await
        .unwrap()
        .uid()
        .unwrap();
    crds.delete("profiles.kubeflow.org", &DeleteParams::default())
        .await
        .unwrap();
    kube::runtime::wait::await_condition(
        crds,
        "profiles.kubeflow.org",
        kube::runtime::wait::conditions::is_deleted(&uid),
    )
    .await
    .unwrap();
    let catalog = Catalog::embedded().unwrap();
    let (plan, _) = tenant_plan();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::connect(emu.kube_config(), catalog, None)
        .await
        .unwrap();
    let exec = runner::execute(
        &target,
        catalog,
        &plan,
        &options(&dir),
        "tenant03",
        &CancellationToken::new(),
        &|_| {},
    )
    .await;
    let r = exec.results.iter().find(|r| r.id == TEST).unwrap();
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("does not serve profiles.kubeflow.org"),
        "{}",
        r.message
    );
    emu.shutdown().await;
}
