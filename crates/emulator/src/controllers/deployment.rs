//! The apps/v1 Deployment controller, after kubernetes/kubernetes `pkg/controller/deployment/`:
//! `deployment_controller.go` (`syncDeployment`), `sync.go` (`getAllReplicaSetsAndSyncRevision`,
//! `getNewReplicaSet`, `scale`, `scaleReplicaSet`, `cleanupDeployment`, `calculateStatus`),
//! `rolling.go` (`rolloutRolling`, `reconcileNewReplicaSet`, `reconcileOldReplicaSets`,
//! `cleanupUnhealthyReplicas`, `scaleDownOldReplicaSetsForRollingUpdate`), `recreate.go`,
//! `progress.go` (`syncRolloutStatus`, `requeueStuckDeployment`) and `util/deployment_util.go`
//! (revisions, the replicas annotations, `NewRSNewReplicas`, `ResolveFenceposts`,
//! `DeploymentComplete`/`Progressing`/`TimedOut`, `GetProportion`).
//!
//! ReplicaSets are named `<deployment>-<pod-template-hash>`, the hash being fnv32a over the
//! template (plus `collisionCount`) rendered like `rand.SafeEncodeString`; its value differs
//! from upstream's (which hashes Go's spew dump of the struct) but has its shape.
//! Rollbacks are client-side (`kubectl rollout undo` patches the template), as upstream since
//! apps/v1. Not modelled: adoption/orphaning of ReplicaSets by selector, the `ReplicaFailure`
//! condition and `terminatingReplicas`.

use std::cmp::Reverse;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::objects::{
    controlled, controller_ref, controller_uid, deleting, flag_at, int_at, str_at,
};
use super::status::find;
use crate::events::{Record, record};
use crate::runtime::builtin::{DEPLOYMENTS, PODS, REPLICASETS};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str, now};

/// `source.component` of the Deployment controller's events.
pub const COMPONENT: &str = "deployment-controller";
/// The label (and selector term) telling a Deployment's ReplicaSets apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of a ReplicaSet (and of its Deployment).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations a Deployment does not copy to its ReplicaSets (`annotationsToSkip`).
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The Deployment controller: reconciles a Deployment when it, one of its ReplicaSets or one
/// of their pods changes, and when its progress deadline falls.
#[derive(Debug, Default)]
pub struct DeploymentController;

impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment"
    }

    fn owns(&self) -> Kind {
        DEPLOYMENTS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(REPLICASETS, Mapper::ControllerOwner),
            // `deletePod`: a Recreate rollout waits for the old pods to be gone.
            Watch::new(PODS, Mapper::Func(deployment_of_pod)),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        match state.object("apps", "deployments", &key.namespace, &key.name) {
            Some(d) => sync_deployment(state, &d),
            None => Action::Done,
        }
    }
}

/// The Deployment controlling the ReplicaSet that controls `pod`.
fn deployment_of_pod(state: &State, pod: &Value) -> Vec<ObjectKey> {
    let Some(uid) = controller_uid(pod) else {
        return Vec::new();
    };
    let ns = meta_str(pod, "namespace");
    super::objects::in_namespace(state, "apps", "replicasets", ns)
        .filter(|rs| meta_str(rs, "uid") == uid)
        .flat_map(|rs| Mapper::ControllerOwner.keys(state, DEPLOYMENTS, rs))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Small accessors (deployment_util.go).

fn replicas(obj: &Value) -> i64 {
    int_at(obj, "/spec/replicas").unwrap_or(1)
}

fn status_count(obj: &Value, field: &str) -> i64 {
    obj.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let a = m.entry("annotations").or_insert_with(|| json!({}));
        if !a.is_object() {
            *a = json!({});
        }
        a[key] = json!(value);
    }
}

/// `deploymentutil.Revision`: the revision annotation as a number (0 when absent).
pub fn revision(obj: &Value) -> i64 {
    annotation(obj, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn recreate(d: &Value) -> bool {
    str_at(d, "/spec/strategy/type") == "Recreate"
}

fn has_progress_deadline(d: &Value) -> bool {
    int_at(d, "/spec/progressDeadlineSeconds").is_some_and(|s| s != i64::from(i32::MAX))
}

/// An intstr (`3` or `"25%"`) scaled against `total` (`intstr.GetScaledValueFromIntOrPercent`).
fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            if round_up {
                (pct * total + 99) / 100
            } else {
                pct * total / 100
            }
        }
        _ => 0,
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable), never both 0.
fn fenceposts(d: &Value) -> (i64, i64) {
    let ru = d.pointer("/spec/strategy/rollingUpdate");
    let desired = replicas(d);
    let surge = scaled(ru.and_then(|r| r.get("maxSurge")), desired, true);
    let unavailable = scaled(ru.and_then(|r| r.get("maxUnavailable")), desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

fn max_surge(d: &Value) -> i64 {
    if recreate(d) { 0 } else { fenceposts(d).0 }
}

fn max_unavailable(d: &Value) -> i64 {
    if recreate(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

fn sum(rss: &[Value], f: impl Fn(&Value) -> i64) -> i64 {
    rss.iter().map(f).sum()
}

fn by_creation(rss: &mut [Value]) {
    rss.sort_by(|a, b| {
        (meta_str(a, "creationTimestamp"), meta_str(a, "name"))
            .cmp(&(meta_str(b, "creationTimestamp"), meta_str(b, "name")))
    });
}

// ---------------------------------------------------------------------------------------------
// The pod-template hash (`controller.ComputeHash`, `rand.SafeEncodeString`).

/// JSON with object keys sorted, so equal templates hash alike whatever their key order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The pod-template-hash of `template` with `collision_count`: fnv32a, printed in decimal and
/// mapped onto the consonants-and-digits alphabet of `rand.SafeEncodeString`.
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut text = String::new();
    canonical(template, &mut text);
    if let Some(c) = collision_count {
        text.push_str(&c.to_string());
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// `EqualIgnoreHash`: templates equal but for the pod-template-hash label.
fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(POD_TEMPLATE_HASH);
        }
        t
    };
    strip(a) == strip(b)
}

// ---------------------------------------------------------------------------------------------
// Conditions (deployment_util.go NewDeploymentCondition, SetDeploymentCondition).

fn new_condition(ctype: &str, status: &str, reason: &str, message: &str) -> Value {
    let ts = now();
    json!({"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
        "reason": reason, "message": message})
}

fn conditions(status: &Value) -> &[Value] {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn remove_condition(status: &mut Value, ctype: &str) {
    if let Some(c) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        c.retain(|x| str_at(x, "/type") != ctype);
    }
}

/// `SetDeploymentCondition`: nothing when status and reason hold; the transition time kept
/// while the status holds; the condition moved to the end.
fn set_condition(status: &mut Value, mut cond: Value) {
    let ctype = str_at(&cond, "/type").to_string();
    if let Some(cur) = find(conditions(status), &ctype) {
        if str_at(cur, "/status") == str_at(&cond, "/status")
            && str_at(cur, "/reason") == str_at(&cond, "/reason")
        {
            return;
        }
        if str_at(cur, "/status") == str_at(&cond, "/status") {
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, &ctype);
    if !status.is_object() {
        *status = json!({});
    }
    match status.get_mut("conditions").and_then(Value::as_array_mut) {
        Some(c) => c.push(cond),
        None => status["conditions"] = json!([cond]),
    }
}

fn status_of(d: &Value) -> Value {
    d.get("status").cloned().unwrap_or_else(|| json!({}))
}

// ---------------------------------------------------------------------------------------------
// The sync.

/// One sync's working copies: the Deployment (annotations and status change in memory and are
/// written at the end) and its ReplicaSets.
struct Sync {
    d: Value,
    new: Option<Value>,
    old: Vec<Value>,
}

impl Sync {
    fn all(&self) -> Vec<Value> {
        let mut all = self.old.clone();
        all.extend(self.new.clone());
        all
    }
}

/// `syncDeployment`: paused and scaling events only scale; otherwise the strategy's rollout.
fn sync_deployment(state: &mut State, stored: &Value) -> Action {
    let rss = controlled(
        state,
        "apps",
        "replicasets",
        meta_str(stored, "namespace"),
        meta_str(stored, "uid"),
    );
    let mut s = Sync {
        d: stored.clone(),
        new: None,
        old: Vec::new(),
    };
    let action = if deleting(stored) {
        split(&mut s, rss);
        sync_deployment_status(&mut s);
        Action::Done
    } else {
        check_paused_conditions(&mut s.d);
        if flag_at(&s.d, "/spec/paused") || is_scaling_event(&s.d, &rss) {
            sync_scale(state, &mut s, rss);
            Action::Done
        } else if recreate(&s.d) {
            rollout_recreate(state, &mut s, rss)
        } else {
            rollout_rolling(state, &mut s, rss)
        }
    };
    persist(state, stored, &s.d);
    action
}

/// Writes what the sync changed on the Deployment: its annotations, then its status.
fn persist(state: &mut State, stored: &Value, d: &Value) {
    let key = (meta_str(stored, "namespace"), meta_str(stored, "name"));
    if stored.pointer("/metadata/annotations") != d.pointer("/metadata/annotations")
        && let Some(mut cur) = state.object("apps", "deployments", key.0, key.1)
    {
        cur["metadata"]["annotations"] = d["metadata"]["annotations"].clone();
        if let Err(e) = state.update_object("apps", "deployments", cur, false) {
            tracing::debug!(deployment = key.1, error = %e.message, "revision update failed");
        }
    }
    if let Some(cur) = state.object("apps", "deployments", key.0, key.1) {
        let status = status_of(d);
        super::status::write_status(state, DEPLOYMENTS, &cur, status);
    }
}

/// `checkPausedConditions`: Progressing Unknown `DeploymentPaused` / `DeploymentResumed`.
fn check_paused_conditions(d: &mut Value) {
    if !has_progress_deadline(d) {
        return;
    }
    let mut status = status_of(d);
    let paused_cond = find(conditions(&status), "Progressing")
        .is_some_and(|c| str_at(c, "/reason") == "DeploymentPaused");
    let paused = flag_at(d, "/spec/paused");
    if paused && !paused_cond {
        let c = new_condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        );
        set_condition(&mut status, c);
    } else if !paused && paused_cond {
        let c = new_condition(
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
        );
        set_condition(&mut status, c);
    } else {
        return;
    }
    d["status"] = status;
}

/// `isScalingEvent`: an active ReplicaSet was sized for another replica count.
fn is_scaling_event(d: &Value, rss: &[Value]) -> bool {
    rss.iter()
        .filter(|rs| replicas(rs) > 0)
        .filter_map(|rs| annotation(rs, DESIRED_REPLICAS)?.parse::<i64>().ok())
        .any(|desired| desired != replicas(d))
}

/// `FindNewReplicaSet` / `FindOldReplicaSets`: the oldest ReplicaSet whose template is the
/// Deployment's is the new one, the rest are old.
fn split(s: &mut Sync, mut rss: Vec<Value>) {
    by_creation(&mut rss);
    let template = s.d.pointer("/spec/template").cloned().unwrap_or_default();
    let new_at = rss.iter().position(|rs| {
        equal_ignore_hash(
            rs.pointer("/spec/template").unwrap_or(&Value::Null),
            &template,
        )
    });
    s.new = new_at.map(|i| rss.remove(i));
    s.old = rss;
}

/// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when asked and missing)
/// with its revision synced, and the old ones. Err when the new one could not be created.
fn get_all(state: &mut State, s: &mut Sync, rss: Vec<Value>, create: bool) -> Result<(), ()> {
    split(s, rss);
    let max_old = s.old.iter().map(revision).max().unwrap_or(0);
    let new_revision = (max_old + 1).to_string();
    match s.new.take() {
        Some(rs) => {
            s.new = Some(sync_existing_new_rs(state, s, rs, &new_revision));
            Ok(())
        }
        None if create => create_new_rs(state, s, &new_revision),
        None => Ok(()),
    }
}

/// `getNewReplicaSet` for an existing new ReplicaSet: revision, annotations and
/// minReadySeconds brought up to date; the Deployment's revision and `FoundNewReplicaSet`.
fn sync_existing_new_rs(state: &mut State, s: &mut Sync, rs: Value, new_revision: &str) -> Value {
    let mut copy = rs.clone();
    let annotations_updated = set_new_rs_annotations(&s.d, &mut copy, new_revision, true);
    let min_ready = s.d.pointer("/spec/minReadySeconds").cloned();
    let min_ready_changed = copy.pointer("/spec/minReadySeconds") != min_ready.as_ref();
    let mut stored = rs;
    if annotations_updated || min_ready_changed {
        if let Some(spec) = copy.get_mut("spec").and_then(Value::as_object_mut) {
            match min_ready {
                Some(m) => spec.insert("minReadySeconds".into(), m),
                None => spec.remove("minReadySeconds"),
            };
        }
        match state.update_object("apps", "replicasets", copy, false) {
            Ok(w) => stored = w,
            Err(e) => tracing::debug!(error = %e.message, "new replica set update failed"),
        }
    }
    let rev = annotation(&stored, REVISION).unwrap_or("").to_string();
    set_deployment_revision(&mut s.d, &rev);
    let mut status = status_of(&s.d);
    if has_progress_deadline(&s.d) && find(conditions(&status), "Progressing").is_none() {
        let msg = format!("Found new replica set {:?}", meta_str(&stored, "name"));
        let c = new_condition("Progressing", "True", "FoundNewReplicaSet", &msg);
        set_condition(&mut status, c);
        s.d["status"] = status;
    }
    stored
}

/// `SetDeploymentRevision`.
fn set_deployment_revision(d: &mut Value, rev: &str) {
    if !rev.is_empty() && annotation(d, REVISION) != Some(rev) {
        set_annotation(d, REVISION, rev);
    }
}

/// `SetNewReplicaSetAnnotations`: the Deployment's annotations copied, the revision raised
/// (the former one appended to the revision history), and for a new ReplicaSet the replicas
/// annotations; returns whether anything changed.
fn set_new_rs_annotations(d: &Value, rs: &mut Value, new_revision: &str, exists: bool) -> bool {
    let mut changed = false;
    let own: Map<String, Value> = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in own
        .iter()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
    {
        if let Some(v) = v.as_str()
            && annotation(rs, k) != Some(v)
        {
            set_annotation(rs, k, v);
            changed = true;
        }
    }
    let old_revision = annotation(rs, REVISION).unwrap_or("").to_string();
    let old: i64 = old_revision.parse().unwrap_or(0);
    let new: i64 = new_revision.parse().unwrap_or(0);
    if old < new {
        set_annotation(rs, REVISION, new_revision);
        changed = true;
        if exists && !old_revision.is_empty() {
            let history = match annotation(rs, REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old_revision}"),
                _ => old_revision,
            };
            set_annotation(rs, REVISION_HISTORY, &history);
        }
    }
    if !exists {
        set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d));
        changed = true;
    }
    changed
}

/// `SetReplicasAnnotations`; returns whether they changed.
fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let (d, m) = (desired.to_string(), max.to_string());
    if annotation(rs, DESIRED_REPLICAS) == Some(&d) && annotation(rs, MAX_REPLICAS) == Some(&m) {
        return false;
    }
    set_annotation(rs, DESIRED_REPLICAS, &d);
    set_annotation(rs, MAX_REPLICAS, &m);
    true
}

/// `NewRSNewReplicas`: the new ReplicaSet's size within maxSurge (Recreate: the full size).
fn new_rs_new_replicas(d: &Value, all: &[Value], new: Option<&Value>) -> i64 {
    let new_size = new.map_or(0, replicas);
    if recreate(d) {
        return replicas(d);
    }
    let current = sum(all, replicas);
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return new_size;
    }
    new_size + (max_total - current).min(replicas(d) - new_size)
}

/// `getNewReplicaSet` creating the ReplicaSet `<deployment>-<hash>`: a name taken by another
/// template raises `collisionCount` and the next sync retries.
fn create_new_rs(state: &mut State, s: &mut Sync, new_revision: &str) -> Result<(), ()> {
    let d = &s.d;
    let collision = int_at(d, "/status/collisionCount");
    let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = pod_template_hash(&template, collision);
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if !meta.pointer("/labels").is_some_and(Value::is_object) {
            meta["labels"] = json!({});
        }
        meta["labels"][POD_TEMPLATE_HASH] = json!(hash);
    }
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    if !selector.get("matchLabels").is_some_and(Value::is_object) {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let name = format!("{}-{hash}", meta_str(d, "name"));
    let size = new_rs_new_replicas(d, &s.old, None);
    let mut spec = json!({"replicas": size, "selector": selector, "template": template});
    if let Some(m) = d.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = m.clone();
    }
    let mut rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": meta_str(d, "namespace"),
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "ownerReferences": [controller_ref(d)]},
        "spec": spec,
    });
    set_new_rs_annotations(d, &mut rs, new_revision, false);
    match state.create_object("apps", "replicasets", rs) {
        Ok(created) => {
            if size > 0 {
                let msg = format!("Scaled up replica set {name} from 0 to {size}");
                record(
                    state,
                    Record::normal(COMPONENT, &s.d, "ScalingReplicaSet", msg),
                );
            }
            set_deployment_revision(&mut s.d, new_revision);
            if has_progress_deadline(&s.d) {
                let mut status = status_of(&s.d);
                let msg = format!("Created new replica set {name:?}");
                let c = new_condition("Progressing", "True", "NewReplicaSetCreated", &msg);
                set_condition(&mut status, c);
                s.d["status"] = status;
            }
            s.new = Some(created);
            Ok(())
        }
        Err(e) if e.reason == "AlreadyExists" => {
            // A hash collision: the next name comes from collisionCount + 1.
            let mut status = status_of(&s.d);
            status["collisionCount"] = json!(collision.unwrap_or(0) + 1);
            s.d["status"] = status;
            Err(())
        }
        Err(e) => {
            let msg = format!("Failed to create new replica set {name:?}: {}", e.message);
            record(
                state,
                Record::warning(COMPONENT, &s.d, "ReplicaSetCreateError", &msg),
            );
            if has_progress_deadline(&s.d) {
                let mut status = status_of(&s.d);
                let c = new_condition("Progressing", "False", "ReplicaSetCreateError", &msg);
                set_condition(&mut status, c);
                s.d["status"] = status;
            }
            Err(())
        }
    }
}

/// `scaleReplicaSet`: sets the size and the replicas annotations; records
/// `ScalingReplicaSet` when the size changed. Returns whether the size changed.
fn scale_rs(state: &mut State, d: &Value, rs: &mut Value, size: i64) -> bool {
    let old_size = replicas(rs);
    let size_changed = old_size != size;
    let mut copy = rs.clone();
    let annotations_changed =
        set_replicas_annotations(&mut copy, replicas(d), replicas(d) + max_surge(d));
    if !size_changed && !annotations_changed {
        return false;
    }
    copy["spec"]["replicas"] = json!(size);
    match state.update_object("apps", "replicasets", copy, false) {
        Ok(w) => *rs = w,
        Err(e) => {
            tracing::debug!(rs = meta_str(rs, "name"), error = %e.message, "scale failed");
            return false;
        }
    }
    if size_changed {
        let op = if old_size < size { "up" } else { "down" };
        let msg = format!(
            "Scaled {op} replica set {} from {old_size} to {size}",
            meta_str(rs, "name")
        );
        record(
            state,
            Record::normal(COMPONENT, d, "ScalingReplicaSet", msg),
        );
    }
    size_changed
}

// ---------------------------------------------------------------------------------------------
// Rollouts.

/// `rolloutRolling`: scale the new ReplicaSet up within maxSurge, the old ones down within
/// maxUnavailable, then the status and progress.
fn rollout_rolling(state: &mut State, s: &mut Sync, rss: Vec<Value>) -> Action {
    if get_all(state, s, rss, true).is_err() {
        return Action::Retry;
    }
    if reconcile_new_rs(state, s) {
        return sync_rollout_status(s);
    }
    if reconcile_old_rss(state, s) {
        return sync_rollout_status(s);
    }
    let all = s.all();
    let status = calculate_status(&all, s.new.as_ref(), &s.d);
    if deployment_complete(&s.d, &status) {
        cleanup_deployment(state, s);
    }
    sync_rollout_status(s)
}

/// `reconcileNewReplicaSet`.
fn reconcile_new_rs(state: &mut State, s: &mut Sync) -> bool {
    let all = s.all();
    let Some(mut new) = s.new.take() else {
        return false;
    };
    let want = replicas(&s.d);
    let scaled = match replicas(&new).cmp(&want) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Greater => scale_rs(state, &s.d, &mut new, want),
        std::cmp::Ordering::Less => {
            let size = new_rs_new_replicas(&s.d, &all, Some(&new));
            scale_rs(state, &s.d, &mut new, size)
        }
    };
    s.new = Some(new);
    scaled
}

/// `reconcileOldReplicaSets`: unhealthy old replicas go first, then old ones down to what
/// keeps `replicas - maxUnavailable` available.
fn reconcile_old_rss(state: &mut State, s: &mut Sync) -> bool {
    let old_pods = sum(&s.old, replicas);
    if old_pods == 0 {
        return false;
    }
    let all_pods = sum(&s.all(), replicas);
    let min_available = replicas(&s.d) - max_unavailable(&s.d);
    let new_unavailable = s
        .new
        .as_ref()
        .map_or(0, |n| replicas(n) - status_count(n, "availableReplicas"));
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return false;
    }
    by_creation(&mut s.old);
    // cleanupUnhealthyReplicas
    let mut cleaned = 0;
    let d = s.d.clone();
    for rs in s.old.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = replicas(rs) - status_count(rs, "availableReplicas");
        if replicas(rs) == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(unhealthy);
        let size = replicas(rs) - n;
        scale_rs(state, &d, rs, size);
        cleaned += n;
    }
    // scaleDownOldReplicaSetsForRollingUpdate
    let available = sum(&s.all(), |rs| status_count(rs, "availableReplicas"));
    let mut scaled_down = 0;
    if available > min_available {
        let total = available - min_available;
        for rs in s.old.iter_mut() {
            if scaled_down >= total {
                break;
            }
            if replicas(rs) == 0 {
                continue;
            }
            let n = replicas(rs).min(total - scaled_down);
            let size = replicas(rs) - n;
            scale_rs(state, &d, rs, size);
            scaled_down += n;
        }
    }
    cleaned + scaled_down > 0
}

/// `rolloutRecreate`: old ReplicaSets to 0, wait until their pods are gone, then the new one
/// at full size.
fn rollout_recreate(state: &mut State, s: &mut Sync, rss: Vec<Value>) -> Action {
    if get_all(state, s, rss.clone(), false).is_err() {
        return Action::Retry;
    }
    let d = s.d.clone();
    let mut scaled_down = false;
    for rs in s.old.iter_mut().filter(|rs| replicas(rs) > 0) {
        scaled_down |= scale_rs(state, &d, rs, 0);
    }
    if scaled_down || old_pods_running(state, s) {
        return sync_rollout_status(s);
    }
    if s.new.is_none() {
        let rss = controlled(
            state,
            "apps",
            "replicasets",
            meta_str(&s.d, "namespace"),
            meta_str(&s.d, "uid"),
        );
        if get_all(state, s, rss, true).is_err() {
            return Action::Retry;
        }
    }
    if let Some(mut new) = s.new.take() {
        let want = replicas(&s.d);
        scale_rs(state, &d, &mut new, want);
        s.new = Some(new);
    }
    let status = calculate_status(&s.all(), s.new.as_ref(), &s.d);
    if deployment_complete(&s.d, &status) {
        cleanup_deployment(state, s);
    }
    sync_rollout_status(s)
}

/// `oldPodsRunning`: an old ReplicaSet still reports replicas, or has a pod not finished
/// (terminating pods count).
fn old_pods_running(state: &State, s: &Sync) -> bool {
    if sum(&s.old, |rs| status_count(rs, "replicas")) > 0 {
        return true;
    }
    s.old.iter().any(|rs| {
        controlled(
            state,
            "",
            "pods",
            meta_str(rs, "namespace"),
            meta_str(rs, "uid"),
        )
        .iter()
        .any(|p| !super::objects::terminal(p))
    })
}

/// `sync`: scale (proportionally while rolling) and report the status; a paused Deployment
/// also drops old revisions beyond its history limit.
fn sync_scale(state: &mut State, s: &mut Sync, rss: Vec<Value>) {
    if get_all(state, s, rss, false).is_err() {
        return;
    }
    scale(state, s);
    if flag_at(&s.d, "/spec/paused") {
        cleanup_deployment(state, s);
    }
    sync_deployment_status(s);
}

/// `scale`: one active ReplicaSet takes the whole size; a saturated new one empties the old
/// ones; otherwise the difference is shared in proportion (`GetProportion`).
fn scale(state: &mut State, s: &mut Sync) {
    let d = s.d.clone();
    let want = replicas(&d);
    let mut active: Vec<Value> = s.all().into_iter().filter(|rs| replicas(rs) > 0).collect();
    let target = match active.len() {
        0 => s.new.clone().or_else(|| {
            let mut old = s.old.clone();
            by_creation(&mut old);
            old.pop()
        }),
        1 => active.pop(),
        _ => None,
    };
    if let Some(mut rs) = target {
        if replicas(&rs) != want {
            scale_rs(state, &d, &mut rs, want);
            replace(s, rs);
        }
        return;
    }
    let saturated = s.new.as_ref().is_some_and(|n| {
        replicas(n) == want
            && annotation(n, DESIRED_REPLICAS) == Some(want.to_string().as_str())
            && status_count(n, "availableReplicas") == want
    });
    if saturated {
        for rs in s.old.iter_mut().filter(|rs| replicas(rs) > 0) {
            scale_rs(state, &d, rs, 0);
        }
        return;
    }
    if recreate(&d) {
        return;
    }
    let allowed = if want > 0 { want + max_surge(&d) } else { 0 };
    let to_add = allowed - sum(&active, replicas);
    // ReplicaSetsBySizeNewer when adding, BySizeOlder when removing: larger first, ties by
    // age (a stable sort over the creation order).
    by_creation(&mut active);
    if to_add > 0 {
        active.reverse();
    }
    active.sort_by_key(|rs| Reverse(replicas(rs)));
    let mut sizes: Vec<i64> = Vec::new();
    let mut added = 0;
    for rs in &active {
        let p = proportion(rs, &d, to_add, added);
        sizes.push(replicas(rs) + p);
        added += p;
    }
    if let Some(first) = sizes.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    for (mut rs, size) in active.into_iter().zip(sizes) {
        scale_rs(state, &d, &mut rs, size);
        replace(s, rs);
    }
}

/// `GetProportion`: the share of `to_add` a ReplicaSet takes, bounded by what is left.
fn proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas(d) == 0 {
        -replicas(rs)
    } else {
        let max_now = replicas(d) + max_surge(d);
        let before = annotation(rs, MAX_REPLICAS)
            .and_then(|m| m.parse::<i64>().ok())
            .filter(|m| *m != 0)
            .unwrap_or_else(|| status_count(d, "replicas").max(1));
        ((replicas(rs) * max_now) as f64 / before as f64).round() as i64 - replicas(rs)
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// Puts a rewritten ReplicaSet back into the sync's lists.
fn replace(s: &mut Sync, rs: Value) {
    let uid = meta_str(&rs, "uid").to_string();
    if s.new.as_ref().is_some_and(|n| meta_str(n, "uid") == uid) {
        s.new = Some(rs);
    } else if let Some(o) = s.old.iter_mut().find(|o| meta_str(o, "uid") == uid) {
        *o = rs;
    }
}

/// `cleanupDeployment`: old, empty ReplicaSets beyond revisionHistoryLimit are deleted,
/// lowest revision first.
fn cleanup_deployment(state: &mut State, s: &mut Sync) {
    let Some(limit) = int_at(&s.d, "/spec/revisionHistoryLimit") else {
        return;
    };
    let mut cleanable: Vec<&Value> = s
        .old
        .iter()
        .filter(|rs| {
            replicas(rs) == 0
                && status_count(rs, "replicas") == 0
                && !deleting(rs)
                && int_at(rs, "/metadata/generation") == int_at(rs, "/status/observedGeneration")
        })
        .collect();
    let excess = cleanable.len() as i64 - limit;
    if excess <= 0 {
        return;
    }
    cleanable.sort_by_key(|rs| (revision(rs), meta_str(rs, "name").to_string()));
    let victims: Vec<Value> = cleanable
        .into_iter()
        .take(excess as usize)
        .cloned()
        .collect();
    for rs in &victims {
        super::objects::delete(state, "apps", "replicasets", rs);
    }
    s.old.retain(|o| {
        !victims
            .iter()
            .any(|v| meta_str(v, "uid") == meta_str(o, "uid"))
    });
}

// ---------------------------------------------------------------------------------------------
// Status and progress.

/// `calculateStatus`: counts summed over the ReplicaSets, and the Available condition.
fn calculate_status(all: &[Value], new: Option<&Value>, d: &Value) -> Value {
    let available = sum(all, |rs| status_count(rs, "availableReplicas"));
    let mut st = Map::new();
    let mut put = |k: &str, n: i64| {
        if n != 0 {
            st.insert(k.into(), json!(n));
        }
    };
    put(
        "observedGeneration",
        int_at(d, "/metadata/generation").unwrap_or(0),
    );
    put("replicas", sum(all, |rs| status_count(rs, "replicas")));
    put(
        "updatedReplicas",
        new.map_or(0, |n| status_count(n, "replicas")),
    );
    put(
        "readyReplicas",
        sum(all, |rs| status_count(rs, "readyReplicas")),
    );
    put("availableReplicas", available);
    put("unavailableReplicas", (replicas(d) - available).max(0));
    let old = status_of(d);
    if let Some(c) = old.get("conditions") {
        st.insert("conditions".into(), c.clone());
    }
    if let Some(c) = old.get("collisionCount") {
        st.insert("collisionCount".into(), c.clone());
    }
    let mut status = Value::Object(st);
    let cond = if available >= replicas(d) - max_unavailable(d) {
        new_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        new_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(&mut status, cond);
    status
}

/// `syncDeploymentStatus`: the status without progress reasoning (scaling, paused).
fn sync_deployment_status(s: &mut Sync) {
    let status = calculate_status(&s.all(), s.new.as_ref(), &s.d);
    s.d["status"] = status;
}

fn count(status: &Value, k: &str) -> i64 {
    status.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// `DeploymentComplete`.
fn deployment_complete(d: &Value, st: &Value) -> bool {
    let want = replicas(d);
    count(st, "updatedReplicas") == want
        && count(st, "replicas") == want
        && count(st, "availableReplicas") == want
        && count(st, "observedGeneration") >= int_at(d, "/metadata/generation").unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old ones.
fn deployment_progressing(d: &Value, st: &Value) -> bool {
    let old = status_of(d);
    let old_old = count(&old, "replicas") - count(&old, "updatedReplicas");
    let new_old = count(st, "replicas") - count(st, "updatedReplicas");
    count(st, "updatedReplicas") > count(&old, "updatedReplicas")
        || new_old < old_old
        || count(st, "readyReplicas") > count(&old, "readyReplicas")
        || count(st, "availableReplicas") > count(&old, "availableReplicas")
}

/// When the Progressing condition's last update plus progressDeadlineSeconds falls.
fn progress_deadline(d: &Value, cond: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = int_at(d, "/spec/progressDeadlineSeconds")?;
    let from = chrono::DateTime::parse_from_rfc3339(str_at(cond, "/lastUpdateTime")).ok()?;
    Some(from.with_timezone(&chrono::Utc) + chrono::Duration::seconds(secs))
}

/// `DeploymentTimedOut`.
fn deployment_timed_out(d: &Value, st: &Value) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = find(conditions(st), "Progressing") else {
        return false;
    };
    match str_at(cond, "/reason") {
        "ProgressDeadlineExceeded" => true,
        "NewReplicaSetAvailable" => false,
        _ => progress_deadline(d, cond).is_some_and(|at| at < chrono::Utc::now()),
    }
}

/// `syncRolloutStatus`: the status with the Progressing condition (`NewReplicaSetAvailable`,
/// `ReplicaSetUpdated`, `ProgressDeadlineExceeded`), and the requeue of
/// `requeueStuckDeployment`.
fn sync_rollout_status(s: &mut Sync) -> Action {
    let mut st = calculate_status(&s.all(), s.new.as_ref(), &s.d);
    let new_name = s
        .new
        .as_ref()
        .map_or("", |n| meta_str(n, "name"))
        .to_string();
    let current = find(conditions(&st), "Progressing").cloned();
    let complete_before = count(&st, "replicas") == count(&st, "updatedReplicas")
        && current
            .as_ref()
            .is_some_and(|c| str_at(c, "/reason") == "NewReplicaSetAvailable");
    if has_progress_deadline(&s.d) && !complete_before {
        if deployment_complete(&s.d, &st) {
            let msg = format!("ReplicaSet {new_name:?} has successfully progressed.");
            set_condition(
                &mut st,
                new_condition("Progressing", "True", "NewReplicaSetAvailable", &msg),
            );
        } else if deployment_progressing(&s.d, &st) {
            let msg = format!("ReplicaSet {new_name:?} is progressing.");
            let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", &msg);
            // Progress moves lastUpdateTime even when the reason stays.
            if let Some(cur) = &current {
                if str_at(cur, "/status") == "True" {
                    c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                remove_condition(&mut st, "Progressing");
            }
            set_condition(&mut st, c);
        } else if deployment_timed_out(&s.d, &st) {
            let msg = format!("ReplicaSet {new_name:?} has timed out progressing.");
            set_condition(
                &mut st,
                new_condition("Progressing", "False", "ProgressDeadlineExceeded", &msg),
            );
        }
    }
    let action = requeue_stuck(&s.d, &st);
    s.d["status"] = st;
    action
}

/// `requeueStuckDeployment`: reconcile again when the progress deadline falls.
fn requeue_stuck(d: &Value, st: &Value) -> Action {
    let Some(cond) = find(conditions(st), "Progressing") else {
        return Action::Done;
    };
    if !has_progress_deadline(d)
        || deployment_complete(d, st)
        || str_at(cond, "/reason") == "ProgressDeadlineExceeded"
    {
        return Action::Done;
    }
    let Some(at) = progress_deadline(d, cond) else {
        return Action::Done;
    };
    // Upstream requeues at once when under a second is left; conditions carry whole seconds,
    // so waiting until just past the deadline reaches the same decision without spinning.
    let left = (at - chrono::Utc::now()).num_milliseconds().max(0);
    Action::RequeueAfter(Duration::from_millis(left.unsigned_abs() + 50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_has_upstreams_shape_and_is_stable() {
        let t = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}});
        let reordered = json!({"spec": {"containers": []}, "metadata": {"labels": {"app": "a"}}});
        let h = pod_template_hash(&t, None);
        assert_eq!(h, pod_template_hash(&reordered, None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
        assert!(h.len() <= 10 && !h.is_empty());
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let d = |n: i64, surge: Value, unavail: Value| {
            json!({"spec": {"replicas": n, "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}}}})
        };
        assert_eq!(fenceposts(&d(10, json!("25%"), json!("25%"))), (3, 2));
        assert_eq!(fenceposts(&d(1, json!("25%"), json!("25%"))), (1, 0));
        assert_eq!(fenceposts(&d(3, json!(0), json!(0))), (0, 1));
        assert_eq!(max_unavailable(&d(2, json!(0), json!(5))), 2);
    }

    #[test]
    fn conditions_keep_transition_time_while_status_holds() {
        let mut st = json!({});
        let mut c = new_condition("Available", "True", "A", "m");
        c["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_condition(&mut st, c);
        set_condition(&mut st, new_condition("Available", "True", "B", "m"));
        assert_eq!(st["conditions"][0]["reason"], "B");
        assert_eq!(
            st["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        set_condition(&mut st, new_condition("Available", "False", "C", "m"));
        assert_ne!(
            st["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }

    #[test]
    fn new_replicas_stay_within_max_surge() {
        let d = json!({"spec": {"replicas": 4, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}});
        let old = json!({"spec": {"replicas": 4}});
        assert_eq!(new_rs_new_replicas(&d, std::slice::from_ref(&old), None), 1);
        let new = json!({"spec": {"replicas": 1}});
        assert_eq!(new_rs_new_replicas(&d, &[old, new.clone()], Some(&new)), 1);
    }
}
