//! The apps/v1 ReplicaSet controller, after kubernetes/kubernetes
//! `pkg/controller/replicaset/replica_set.go` (`syncReplicaSet`, `manageReplicas`,
//! `getPodsToDelete`) and `replica_set_utils.go` (`calculateStatus`): it keeps
//! `spec.replicas` active pods made from the template, each controlled by the ReplicaSet, and
//! reports replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
//! `minReadySeconds`) and observedGeneration. Pods are created and deleted through the pod
//! control, which records `SuccessfulCreate`/`FailedCreate`/`SuccessfulDelete` events.
//!
//! Simplifications: no adoption or release of pods by selector (the ReplicaSet owns the pods it
//! created), no `ReplicaFailure` condition, no slow-start batching (creation is synchronous
//! under the state lock, so expectations are not needed either).

use std::cmp::Reverse;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::objects::{
    controlled, controller_ref, create_pod_recorded, delete_pod_recorded, deleting, int_at, phase,
    pod_ready, restarts, str_at, terminal,
};
use super::status::condition;
use crate::runtime::builtin::{PODS, REPLICASETS};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::selectors::LabelSelector;
use crate::selectors::format_label_selector;
use crate::store::{State, meta_str};

/// `source.component` of the ReplicaSet controller's events.
pub const COMPONENT: &str = "replicaset-controller";
/// `burstReplicas`: most pods created or deleted in one sync.
const BURST_REPLICAS: i64 = 500;

/// The ReplicaSet controller: reconciles a ReplicaSet when it or one of its pods changes, and
/// when a ready pod is due to become available.
#[derive(Debug, Default)]
pub struct ReplicaSetController;

impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset"
    }

    fn owns(&self) -> Kind {
        REPLICASETS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![Watch::new(PODS, Mapper::ControllerOwner)]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        match state.object("apps", "replicasets", &key.namespace, &key.name) {
            Some(rs) => sync_replica_set(state, &rs),
            None => Action::Done,
        }
    }
}

/// Whether a pod is neither finished nor being deleted (`controller.FilterActivePods`).
pub(crate) fn active(pod: &Value) -> bool {
    !terminal(pod) && !deleting(pod)
}

/// Seconds since the pod's Ready condition turned True, if it is ready.
fn ready_for(pod: &Value, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    if !pod_ready(pod) {
        return None;
    }
    let since = condition(pod, "Ready")
        .map(|c| str_at(c, "/lastTransitionTime"))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?;
    Some((now - since.with_timezone(&chrono::Utc)).num_seconds())
}

/// `podutil.IsPodAvailable`: ready for at least `min_ready` seconds.
pub(crate) fn pod_available(
    pod: &Value,
    min_ready: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    ready_for(pod, now).is_some_and(|s| min_ready == 0 || s >= min_ready)
}

/// `syncReplicaSet`: manage the pods, then rebuild the status from the pods seen before.
fn sync_replica_set(state: &mut State, rs: &Value) -> Action {
    let pods: Vec<Value> = controlled(
        state,
        "",
        "pods",
        meta_str(rs, "namespace"),
        meta_str(rs, "uid"),
    )
    .into_iter()
    .filter(active)
    .collect();
    if !deleting(rs) {
        manage_replicas(state, rs, &pods);
    }
    update_status(state, rs, &pods)
}

/// `manageReplicas`: create the missing pods or delete the surplus ones.
fn manage_replicas(state: &mut State, rs: &Value, pods: &[Value]) {
    let want = int_at(rs, "/spec/replicas").unwrap_or(1).max(0);
    let diff = pods.len() as i64 - want;
    if diff < 0 {
        for _ in 0..(-diff).min(BURST_REPLICAS) {
            let pod = pod_from_template(rs);
            if create_pod_recorded(state, COMPONENT, rs, pod).is_none() {
                // `slowStartBatch` stops at the first failure.
                break;
            }
        }
    } else if diff > 0 {
        for p in pods_to_delete(pods, diff.min(BURST_REPLICAS) as usize) {
            delete_pod_recorded(state, COMPONENT, rs, &p);
        }
    }
}

/// `getPodsToDelete` with `controller.ActivePods` ordering: unscheduled before scheduled,
/// Pending before Unknown before Running, not ready before ready, more restarts first, newer
/// first.
fn pods_to_delete(pods: &[Value], n: usize) -> Vec<Value> {
    let phase_rank = |p: &Value| match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let mut ranked = pods.to_vec();
    ranked.sort_by_key(|p| {
        (
            !str_at(p, "/spec/nodeName").is_empty(),
            phase_rank(p),
            pod_ready(p),
            Reverse(restarts(p)),
            Reverse(meta_str(p, "creationTimestamp").to_string()),
            Reverse(meta_str(p, "name").to_string()),
        )
    });
    ranked.truncate(n);
    ranked
}

/// `controller.GetPodFromTemplate`: a pod of the template's labels, annotations and spec,
/// named `<rs>-<random>` and controlled by the ReplicaSet.
fn pod_from_template(rs: &Value) -> Value {
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = Map::new();
    meta.insert(
        "generateName".into(),
        json!(format!("{}-", meta_str(rs, "name"))),
    );
    meta.insert("namespace".into(), json!(meta_str(rs, "namespace")));
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([controller_ref(rs)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// `calculateStatus` and `updateReplicaSetStatus`: counts over the active pods; requeues
/// when a ready pod will become available (`minReadySeconds`).
fn update_status(state: &mut State, rs: &Value, pods: &[Value]) -> Action {
    let now = chrono::Utc::now();
    let min_ready = int_at(rs, "/spec/minReadySeconds").unwrap_or(0);
    let fully_labeled = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .map(|want| {
            pods.iter()
                .filter(|p| {
                    want.iter().all(|(k, v)| {
                        p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v)
                    })
                })
                .count()
        })
        .unwrap_or(pods.len());
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| pod_available(p, min_ready, now))
        .count();
    let mut status = rs
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // ReplicaSetStatus: `replicas` is always present, the other counts are omitempty.
    status.insert("replicas".into(), json!(pods.len()));
    for (k, n) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if n == 0 {
            status.remove(k);
        } else {
            status.insert(k.into(), json!(n));
        }
    }
    if let Some(g) = int_at(rs, "/metadata/generation") {
        status.insert("observedGeneration".into(), json!(g));
    }
    super::status::write_status(state, REPLICASETS, rs, Value::Object(status));
    // Ready pods not yet available: reconcile again when the first of them is.
    let due = pods
        .iter()
        .filter_map(|p| ready_for(p, now))
        .filter(|s| min_ready > 0 && *s < min_ready)
        .map(|s| min_ready - s)
        .min();
    match due {
        Some(secs) => Action::RequeueAfter(Duration::from_secs(secs.max(1).unsigned_abs())),
        None => Action::Done,
    }
}

/// The `status.selector` of a Scale: the label selector in its string form.
pub fn scale_selector(obj: &Value) -> String {
    obj.pointer("/spec/selector")
        .and_then(format_label_selector)
        .unwrap_or_default()
}

/// Whether `pod` is selected by the object's `spec.selector`.
pub fn selects(obj: &Value, pod: &Value) -> bool {
    LabelSelector::parse(&scale_selector(obj)).is_ok_and(|s| s.matches(pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    fn cluster() -> (State, Runtime) {
        let mut s = State::new(10_000);
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "ns"}}))
            .ok();
        (s, Runtime::new(vec![Box::new(ReplicaSetController)]))
    }

    fn rs(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    }

    #[test]
    fn keeps_the_replica_count_and_records_events() {
        let (mut s, mut rt) = cluster();
        let created = s.create_object("apps", "replicasets", rs(3));
        assert!(created.is_ok());
        rt.settle(&mut s);
        let pods = s.objects_of("", "pods");
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| meta_str(p, "name").starts_with("web-")));
        let got = s
            .object("apps", "replicasets", "ns", "web")
            .unwrap_or_default();
        assert_eq!(got["status"]["replicas"], 3);
        assert!(got["status"].get("readyReplicas").is_none());
        let events = s.objects_of("", "events");
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| {
            e["reason"] == "SuccessfulCreate"
                && e["source"]["component"] == COMPONENT
                && e["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Created pod: web-")
        }));
        let mut r = got.clone();
        r["spec"]["replicas"] = json!(1);
        assert!(s.update_object("apps", "replicasets", r, false).is_ok());
        rt.settle(&mut s);
        let live = s
            .objects_of("", "pods")
            .iter()
            .filter(|p| active(p))
            .count();
        assert_eq!(live, 1);
        let deletes = s
            .objects_of("", "events")
            .iter()
            .filter(|e| e["reason"] == "SuccessfulDelete")
            .count();
        assert_eq!(deletes, 2);
    }

    #[test]
    fn unready_pods_go_first() {
        let pod = |name: &str, ready: bool, node: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": "2020-01-01T00:00:00Z"},
                "spec": {"nodeName": node},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
        };
        let pods = [
            pod("a", true, "n"),
            pod("b", false, "n"),
            pod("c", true, ""),
        ];
        let names: Vec<String> = pods_to_delete(&pods, 2)
            .iter()
            .map(|p| meta_str(p, "name").to_string())
            .collect();
        assert_eq!(names, ["c", "b"]);
    }
}
