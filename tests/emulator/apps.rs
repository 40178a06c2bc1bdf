//! apps/v1 through kube-rs: Deployments and their ReplicaSets (names, hash labels, revisions),
//! rolling updates within maxSurge/maxUnavailable at every observed step, Recreate, status and
//! conditions, the progress deadline, the scale subresource, admission, events, and stored
//! autoscaling/v2 HPAs.

use crate::util;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kfconform_emulator::kubelet::KubeletConfig;
use kfconform_emulator::{Emulator, EmulatorConfig};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

async fn setup(ns: &str) -> (Emulator, kube::Client) {
    setup_with(ns, util::probe_kubelet()).await
}

async fn setup_with(ns: &str, kubelet: KubeletConfig) -> (Emulator, kube::Client) {
    let emu = util::emulator_with(EmulatorConfig {
        kubelet,
        ..EmulatorConfig::default()
    })
    .await;
    let client = util::client(&emu);
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns_obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    nss.create(&PostParams::default(), &ns_obj).await.unwrap();
    (emu, client)
}

/// A Deployment of probe pods running `kfconform <args>`.
fn deployment(name: &str, replicas: i32, args: &[&str], strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": IMAGE, "args": args}]}
            }
        }
    }))
    .unwrap()
}

const SLEEP: &[&str] = &["probe", "sleep", "--seconds", "3600"];

fn cond<'a>(d: &'a Deployment, ctype: &str) -> Option<(&'a str, &'a str)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ctype)
        .map(|c| (c.status.as_str(), c.reason.as_deref().unwrap_or("")))
}

/// The rollout is complete: every replica updated and available, Progressing with
/// NewReplicaSetAvailable.
fn complete(d: &Deployment, n: i32) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(n)
        && s.replicas == Some(n)
        && s.available_replicas == Some(n)
        && cond(d, "Progressing") == Some(("True", "NewReplicaSetAvailable"))
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn revision(meta: &kube::api::ObjectMeta) -> &str {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .map_or("", String::as_str)
}

/// Patches the template so that a new revision rolls out.
async fn bump_template(api: &Api<Deployment>, name: &str, value: &str) {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"bump": value}}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Watches the namespace's ReplicaSets, calling `check` with every observed state (latest of
/// each), until `done` holds; fails after the wait budget.
async fn watch_replica_sets(
    api: &Api<ReplicaSet>,
    start: impl std::future::Future<Output = ()>,
    check: impl Fn(&BTreeMap<String, ReplicaSet>),
    done: impl Fn(&BTreeMap<String, ReplicaSet>) -> bool,
) -> BTreeMap<String, ReplicaSet> {
    let mut seen: BTreeMap<String, ReplicaSet> = BTreeMap::new();
    let stream = watcher(api.clone(), watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut start = Some(start);
    let run = async {
        while let Some(ev) = stream.next().await {
            match ev.unwrap() {
                watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) => {
                    seen.insert(rs.metadata.name.clone().unwrap_or_default(), rs);
                }
                watcher::Event::Delete(rs) => {
                    seen.remove(rs.metadata.name.as_deref().unwrap_or(""));
                }
                watcher::Event::Init => continue,
                watcher::Event::InitDone => {
                    // The rollout starts once the initial list is complete, so every step of
                    // it is observed.
                    if let Some(start) = start.take() {
                        start.await;
                    }
                }
            }
            if start.is_some() {
                continue;
            }
            check(&seen);
            if done(&seen) {
                return;
            }
        }
    };
    util::within("the rollout", run).await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_stays_within_max_surge_and_max_unavailable() {
    let (_emu, client) = setup("roll").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "roll");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "roll");
    let strategy = json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    let d = deployment("web", 4, SLEEP, strategy);
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let d = util::wait_for(&deploys, "web", |d| complete(d, 4)).await;
    assert_eq!(revision(&d.metadata), "1");
    assert_eq!(
        cond(&d, "Available"),
        Some(("True", "MinimumReplicasAvailable"))
    );
    let first = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let hash = first[0].metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(
        first[0].metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "roll");
    let by_hash = ListParams::default().labels(&format!("pod-template-hash={hash}"));
    assert_eq!(pods.list(&by_hash).await.unwrap().items.len(), 4);

    // At every observed step: at most replicas + maxSurge pods wanted, at least
    // replicas - maxUnavailable available.
    let end = watch_replica_sets(
        &rss,
        bump_template(&deploys, "web", "2"),
        |seen| {
            let wanted: i32 = seen.values().map(rs_replicas).sum();
            let available: i32 = seen.values().map(rs_available).sum();
            assert!(wanted <= 5, "{wanted} replicas wanted, over 4 + maxSurge 1");
            assert!(
                available >= 3,
                "{available} available, under 4 - maxUnavailable 1: {:#?}",
                seen.values()
                    .map(|rs| (
                        &rs.metadata.name,
                        &rs.spec.as_ref().unwrap().replicas,
                        &rs.status
                    ))
                    .collect::<Vec<_>>()
            );
        },
        |seen| {
            seen.len() == 2
                && seen
                    .values()
                    .any(|rs| rs_replicas(rs) == 4 && rs_available(rs) == 4)
                && seen.values().any(|rs| rs_replicas(rs) == 0)
        },
    )
    .await;
    let new = end.values().find(|rs| rs_replicas(rs) == 4).unwrap();
    assert_eq!(revision(&new.metadata), "2");
    let d = util::wait_for(&deploys, "web", |d| complete(d, 4)).await;
    assert_eq!(revision(&d.metadata), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_scales_the_old_replica_set_to_zero_before_the_new_one_starts() {
    let (_emu, client) = setup("recreate").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "recreate");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "recreate");
    let d = deployment("web", 2, SLEEP, json!({"type": "Recreate"}));
    deploys.create(&PostParams::default(), &d).await.unwrap();
    util::wait_for(&deploys, "web", |d| complete(d, 2)).await;
    watch_replica_sets(
        &rss,
        bump_template(&deploys, "web", "2"),
        |seen| {
            let started = seen
                .values()
                .any(|rs| revision(&rs.metadata) == "2" && rs_replicas(rs) > 0);
            let old_left = seen.values().any(|rs| {
                revision(&rs.metadata) == "1"
                    && (rs_replicas(rs) > 0 || rs.status.as_ref().is_some_and(|s| s.replicas > 0))
            });
            assert!(
                !(started && old_left),
                "the new ReplicaSet started beside old pods"
            );
        },
        |seen| {
            seen.values()
                .any(|rs| revision(&rs.metadata) == "2" && rs_available(rs) == 2)
        },
    )
    .await;
    util::wait_for(&deploys, "web", |d| complete(d, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_subresource_and_the_controllers_events() {
    let (_emu, client) = setup("scale").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "scale");
    let d = deployment("web", 1, SLEEP, json!(null));
    let created = deploys.create(&PostParams::default(), &d).await.unwrap();
    // The apiserver's defaults.
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.as_ref().unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    util::wait_for(&deploys, "web", |d| complete(d, 1)).await;

    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let status = scale.status.unwrap();
    assert_eq!(
        (status.replicas, status.selector.as_deref()),
        (1, Some("app=web"))
    );
    let patch = json!({"spec": {"replicas": 3}});
    let scaled = deploys
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(3));
    let d = util::wait_for(&deploys, "web", |d| complete(d, 3)).await;
    assert_eq!(d.metadata.generation, Some(2), "scaling changes the spec");
    assert_eq!(revision(&d.metadata), "1", "scaling is no new revision");
    let mut scale = deploys.get_scale("web").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(2);
    deploys
        .replace_scale("web", &PostParams::default(), &scale)
        .await
        .unwrap();
    util::wait_for(&deploys, "web", |d| complete(d, 2)).await;

    let events: Api<Event> = Api::namespaced(client.clone(), "scale");
    let events = events.list(&ListParams::default()).await.unwrap().items;
    let has = |component: &str, reason: &str, prefix: &str| {
        events.iter().any(|e| {
            e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(component)
                && e.reason.as_deref() == Some(reason)
                && e.message.as_deref().is_some_and(|m| m.starts_with(prefix))
        })
    };
    assert!(has(
        "deployment-controller",
        "ScalingReplicaSet",
        "Scaled up replica set web-"
    ));
    assert!(has(
        "deployment-controller",
        "ScalingReplicaSet",
        "Scaled down replica set web-"
    ));
    assert!(has(
        "replicaset-controller",
        "SuccessfulCreate",
        "Created pod: web-"
    ));
    assert!(has(
        "replicaset-controller",
        "SuccessfulDelete",
        "Deleted pod: web-"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_never_becomes_ready_exceeds_its_progress_deadline() {
    // A crash-looping container is Ready for an instant at each start, which is progress
    // (readyReplicas grows): restarts 20 s apart leave the 2 s deadline without any.
    let kubelet = KubeletConfig {
        restart_backoff: Duration::from_secs(20),
        restart_backoff_max: Duration::from_secs(20),
        ..util::probe_kubelet()
    };
    let (_emu, client) = setup_with("stuck", kubelet).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "stuck");
    let mut d = deployment("crash", 1, &["probe", "fail", "--code", "1"], json!(null));
    let spec = d.spec.as_mut().unwrap();
    spec.progress_deadline_seconds = Some(2);
    // A crashing container may be Ready for an instant; it must never count as available.
    spec.min_ready_seconds = Some(3600);
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let d = util::wait_for(&deploys, "crash", |d| {
        cond(d, "Progressing") == Some(("False", "ProgressDeadlineExceeded"))
    })
    .await;
    assert_eq!(
        cond(&d, "Available"),
        Some(("False", "MinimumReplicasUnavailable"))
    );
    let status = d.status.unwrap();
    assert_eq!(status.available_replicas, None);
    assert_eq!(status.unavailable_replicas, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_requires_a_selector_that_matches_the_template() {
    let (_emu, client) = setup("admit").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "admit");
    let mut d = deployment("web", 1, SLEEP, json!(null));
    d.spec.as_mut().unwrap().selector.match_labels =
        Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
    let err = deploys
        .create(&PostParams::default(), &d)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("not an API error: {err}");
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"),
        "{}",
        status.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizontal_pod_autoscalers_are_stored() {
    let (_emu, client) = setup("hpa").await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "hpa");
    let hpa = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5}
    }))
    .unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();
    let got = hpas.get("web").await.unwrap();
    assert_eq!(got.spec.unwrap().max_replicas, 5);
    assert_eq!(
        hpas.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_waits_and_old_revisions_beyond_the_limit_go() {
    let (_emu, client) = setup("paused").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "paused");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "paused");
    let mut d = deployment("web", 1, SLEEP, json!(null));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    deploys.create(&PostParams::default(), &d).await.unwrap();
    util::wait_for(&deploys, "web", |d| complete(d, 1)).await;

    let pause = json!({"spec": {"paused": true}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(&pause))
        .await
        .unwrap();
    bump_template(&deploys, "web", "2").await;
    let d = util::wait_for(&deploys, "web", |d| {
        cond(d, "Progressing") == Some(("Unknown", "DeploymentPaused"))
            && d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
    })
    .await;
    assert_eq!(revision(&d.metadata), "1", "no rollout while paused");
    assert_eq!(
        rss.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    let resume = json!({"spec": {"paused": false}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .unwrap();
    let d = util::wait_for(&deploys, "web", |d| {
        complete(d, 1) && revision(&d.metadata) == "2"
    })
    .await;
    assert_eq!(
        cond(&d, "Available"),
        Some(("True", "MinimumReplicasAvailable"))
    );
    bump_template(&deploys, "web", "3").await;
    util::wait_for(&deploys, "web", |d| {
        complete(d, 1) && revision(&d.metadata) == "3"
    })
    .await;
    // revisionHistoryLimit 1: the current ReplicaSet and one old one are kept.
    let mut revs: Vec<String> = rss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| revision(&rs.metadata).to_string())
        .collect();
    revs.sort();
    assert_eq!(revs, ["2", "3"], "revision 1 was cleaned up");
}
