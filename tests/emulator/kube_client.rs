//! kube-runtime against the emulator: the watcher recovers from 410 Expired by relisting, and
//! `await_condition` sees a condition that is set later.

use crate::util;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfconform_emulator::Tuning;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use serde_json::json;

type Events = futures::stream::BoxStream<'static, watcher::Result<watcher::Event<ConfigMap>>>;

async fn next(s: &mut Events) -> watcher::Result<watcher::Event<ConfigMap>> {
    util::within("a watcher event", s.next())
        .await
        .expect("watcher stream ended")
}

fn configmap(name: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let emu = util::emulator_tuned(Tuning {
        watch_history: 3,
        ..Tuning::default()
    })
    .await;
    let client = util::client(&emu);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &configmap("first"))
        .await
        .unwrap();

    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    // The initial list: Init, one InitApply, InitDone. The watch is not started yet.
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["first"]);

    // Move the history past the listed resourceVersion before the watch starts.
    for i in 0..5 {
        api.create(&PostParams::default(), &configmap(&format!("later-{i}")))
            .await
            .unwrap();
    }
    match next(&mut stream).await {
        Err(watcher::Error::WatchError(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    // The watcher starts over with a relist that has everything.
    let mut relisted = Vec::new();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(o) => relisted.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(relisted.len(), 6, "{relisted:?}");
    // And then it watches live.
    api.create(&PostParams::default(), &configmap("live"))
        .await
        .unwrap();
    match next(&mut stream).await.unwrap() {
        watcher::Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("live")),
        other => panic!("unexpected {other:?}"),
    }
    drop(stream);
    emu.shutdown().await;
}

#[tokio::test]
async fn await_condition_sees_a_later_condition() {
    let emu = util::emulator().await;
    let client = util::client(&emu);

    // Fixture CRDs are Established already.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = util::within(
        "the PyTorchJob CRD Established",
        await_condition(
            crds,
            "pytorchjobs.kubeflow.org",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();
    assert!(crd.is_some());

    let ar = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"),
        "pytorchjobs",
    );
    let jobs: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": "cond"},
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "pytorch", "image": "busybox"}]}}}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &obj).await.unwrap();

    let succeeded = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data["status"]["conditions"].as_array())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Succeeded" && c["status"] == "True")
            })
    };
    let waiter = tokio::spawn(await_condition(jobs.clone(), "cond", succeeded));
    // Let the waiter start before the condition flips; its watch begins with the current
    // state, so the order does not matter for correctness.
    tokio::task::yield_now().await;
    jobs.patch_status(
        "cond",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [
            {"type": "Succeeded", "status": "True", "reason": "Done"}]}})),
    )
    .await
    .unwrap();
    let done = util::within("the Succeeded condition", waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(succeeded(done.as_ref()));

    // A watcher stream over the same API lists the object.
    let names: Vec<String> = watcher(jobs, watcher::Config::default())
        .take_while(|e| std::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_filter_map(|e| async move {
            Ok(match e {
                watcher::Event::InitApply(o) => o.metadata.name,
                _ => None,
            })
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["cond"]);
    emu.shutdown().await;
}
