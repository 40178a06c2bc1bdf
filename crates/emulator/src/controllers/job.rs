//! The batch/v1 Job controller, after kubernetes/kubernetes `pkg/controller/job/job_controller.go`
//! (`syncJob`, `manageJob`, `trackJobStatusAndRemoveFinalizers`, `enactJobFinished`) and
//! `indexed_job_utils.go`, as Kubernetes 1.31+ behaves with JobPodReplacementPolicy and
//! JobManagedBy on: pods carry the `batch.kubernetes.io/job-tracking` finalizer until they are
//! counted, the terminal conditions are preceded by `SuccessCriteriaMet` / `FailureTarget`, and
//! `status.terminating` is reported.
//!
//! Also holds the small JSON helpers the other training controllers share.
//!
//! Simplifications: no pod-failure back-off before a replacement pod (upstream waits 10 s
//! doubling; the emulator's kubelet already backs off restarts), `activeDeadlineSeconds` is
//! checked whenever the job is reconciled rather than on a timer, and no podFailurePolicy,
//! successPolicy or backoffLimitPerIndex.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Controller;
use crate::store::{State, meta_str, now};

/// Finalizer the Job controller puts on its pods until it has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation (and label) carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";
const REACHED_COMPLETIONS: &str = "Reached expected number of succeeded pods";

/// The Job controller (no defects of its own).
#[derive(Debug, Default)]
pub struct JobController;

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job"
    }

    fn reconcile(&mut self, state: &mut State) -> bool {
        let mut changed = release_orphans(state);
        // A finished job only has pods to release; skip it without copying when it has none.
        let keys = keys_where(state, "batch", "jobs", |j| {
            let finished = is_true(j, "Complete") || is_true(j, "Failed");
            !finished
                || in_namespace(state, "", "pods", meta_str(j, "namespace")).any(|p| {
                    has_tracking_finalizer(p) && controller_uid(p) == Some(meta_str(j, "uid"))
                })
        });
        for (ns, name) in keys {
            if let Some(job) = state.object("batch", "jobs", &ns, &name) {
                changed |= sync_job(state, &job);
            }
        }
        changed
    }
}

// ---------------------------------------------------------------------------------------------
// Shared JSON helpers (used by the PyTorchJob and TrainJob controllers too).

/// The string at a JSON pointer, or "".
pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer.
pub(crate) fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// Whether the object is being deleted.
pub(crate) fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// The uid of the object's controller (the ownerReference with `controller: true`).
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// The stored objects of `(group, plural)` in `namespace`, by reference (no copies: the
/// controllers run after every write, so they look before they clone).
pub(crate) fn in_namespace<'a>(
    state: &'a State,
    group: &str,
    plural: &str,
    namespace: &str,
) -> impl Iterator<Item = &'a Value> {
    let ns = namespace.to_string();
    state
        .objects
        .get(&(group.to_string(), plural.to_string()))
        .into_iter()
        .flat_map(move |m| {
            let ns = ns.clone();
            m.range((ns.clone(), String::new())..)
                .take_while(move |((o_ns, _), _)| *o_ns == ns)
                .map(|(_, o)| o)
        })
}

/// Objects of `(group, plural)` in `namespace` whose controller is `uid`.
pub(crate) fn controlled(
    state: &State,
    group: &str,
    plural: &str,
    namespace: &str,
    uid: &str,
) -> Vec<Value> {
    in_namespace(state, group, plural, namespace)
        .filter(|o| controller_uid(o) == Some(uid))
        .cloned()
        .collect()
}

/// The `(namespace, name)` keys of the stored objects of `(group, plural)` for which `keep`
/// holds, so a controller clones only what it works on.
pub(crate) fn keys_where(
    state: &State,
    group: &str,
    plural: &str,
    keep: impl Fn(&Value) -> bool,
) -> Vec<(String, String)> {
    state
        .objects
        .get(&(group.to_string(), plural.to_string()))
        .into_iter()
        .flat_map(|m| m.iter())
        .filter(|(_, o)| keep(o))
        .map(|(k, _)| k.clone())
        .collect()
}

/// A controller ownerReference to `owner` (as `metav1.NewControllerRef` builds it).
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": str_at(owner, "/apiVersion"),
        "kind": str_at(owner, "/kind"),
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The condition of `type` in `status.conditions`, if any.
pub(crate) fn condition<'a>(obj: &'a Value, ctype: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
}

/// Whether the condition of `type` has status True.
pub(crate) fn is_true(obj: &Value, ctype: &str) -> bool {
    condition(obj, ctype).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

/// A pod's phase ("" when unset).
pub(crate) fn phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase")
}

/// Whether a pod has finished (Succeeded or Failed).
pub(crate) fn terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// `podutil.IsPodReady`: the Ready condition is True.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    is_true(pod, "Ready")
}

/// Sum of restartCount over a pod's init and app containers.
pub(crate) fn restarts(pod: &Value) -> i64 {
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
        .sum()
}

/// Replaces the object's status when it differs; returns whether it wrote.
pub(crate) fn write_status(
    state: &mut State,
    group: &str,
    plural: &str,
    obj: &Value,
    status: Value,
) -> bool {
    if obj.get("status") == Some(&status) {
        return false;
    }
    let mut new = obj.clone();
    if let Some(o) = new.as_object_mut() {
        o.insert("status".into(), status);
    }
    match state.update_object(group, plural, new, true) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(%group, %plural, name = meta_str(obj, "name"), error = %e.message, "status update failed");
            false
        }
    }
}

/// Removes `finalizer` from a stored object; returns whether it wrote.
pub(crate) fn remove_finalizer(
    state: &mut State,
    group: &str,
    plural: &str,
    obj: &Value,
    finalizer: &str,
) -> bool {
    let Some(list) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return false;
    };
    if !list.iter().any(|f| f == finalizer) {
        return false;
    }
    // Work on the current version: an earlier write in this pass may have changed the object.
    let Some(mut cur) = state.object(
        group,
        plural,
        meta_str(obj, "namespace"),
        meta_str(obj, "name"),
    ) else {
        return false;
    };
    if let Some(fins) = cur
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        fins.retain(|f| f != finalizer);
    }
    state.update_object(group, plural, cur, false).is_ok()
}

/// Deletes an object as a controller does; returns whether it did anything.
pub(crate) fn delete(state: &mut State, group: &str, plural: &str, obj: &Value) -> bool {
    if deleting(obj) {
        return false;
    }
    state
        .delete_object(
            group,
            plural,
            meta_str(obj, "namespace"),
            meta_str(obj, "name"),
        )
        .is_ok()
}

/// Sets a condition in a `metav1.Condition`-style list without touching the transition time
/// when the status does not change; returns whether anything changed.
pub(crate) fn set_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    if let Some(c) = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
    {
        let same_status = c.get("status").and_then(Value::as_str) == Some(status);
        if same_status
            && c.get("reason").and_then(Value::as_str) == Some(reason)
            && c.get("message").and_then(Value::as_str) == Some(message)
        {
            return false;
        }
        c["status"] = json!(status);
        c["reason"] = json!(reason);
        c["message"] = json!(message);
        if !same_status {
            c["lastTransitionTime"] = json!(now());
        }
        return true;
    }
    conditions.push(json!({
        "type": ctype,
        "status": status,
        "lastTransitionTime": now(),
        "reason": reason,
        "message": message,
    }));
    true
}

/// `ensureJobConditionStatus`: sets a JobCondition (with lastProbeTime), appending only
/// non-False ones; returns whether anything changed.
fn ensure_job_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let ts = now();
    let fresh = json!({
        "type": ctype, "status": status, "lastProbeTime": ts, "lastTransitionTime": ts,
        "reason": reason, "message": message,
    });
    if let Some(c) = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
    {
        if c.get("status").and_then(Value::as_str) != Some(status)
            || c.get("reason").and_then(Value::as_str).unwrap_or("") != reason
            || c.get("message").and_then(Value::as_str).unwrap_or("") != message
        {
            *c = fresh;
            return true;
        }
        return false;
    }
    if status == "False" {
        return false;
    }
    conditions.push(fresh);
    true
}

// ---------------------------------------------------------------------------------------------
// Defaulting (pkg/apis/batch/v1/defaults.go SetDefaults_Job and pkg/registry/batch/job
// strategy.go generateSelector).

/// Applies what the apiserver fills in on a Job at create: spec defaults, the generated
/// selector and the template labels that match it. Needs `metadata.uid`.
pub fn defaults(job: &mut Value) {
    let uid = meta_str(job, "uid").to_string();
    let name = meta_str(job, "name").to_string();
    let Some(obj) = job.as_object_mut() else {
        return;
    };
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .cloned();
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    spec.entry("parallelism").or_insert_with(|| json!(1));
    if spec.get("backoffLimit").is_none() {
        let limit = if spec.get("backoffLimitPerIndex").is_some() {
            i64::from(i32::MAX)
        } else {
            6
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    spec.entry("completionMode")
        .or_insert_with(|| json!("NonIndexed"));
    spec.entry("suspend").or_insert_with(|| json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some() {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    spec.entry("podReplacementPolicy")
        .or_insert_with(|| json!(replacement));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {CONTROLLER_UID: uid}}),
        );
        let template = spec.entry("template").or_insert_with(|| json!({}));
        if let Some(t) = template.as_object_mut() {
            let meta = t.entry("metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                let labels = m.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert(CONTROLLER_UID.into(), json!(uid));
                    l.insert(JOB_NAME.into(), json!(name));
                    l.insert(LEGACY_CONTROLLER_UID.into(), json!(uid));
                    l.insert(LEGACY_JOB_NAME.into(), json!(name));
                }
            }
        }
    }
    // Defaulting copies the user's template labels to an unlabelled Job (before the selector
    // labels are added at PrepareForCreate).
    if let Some(Value::Object(tl)) = template_labels
        && !tl.is_empty()
    {
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            let empty = m
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty {
                m.insert("labels".into(), Value::Object(tl));
            }
        }
    }
}

fn defaulted(job: &Value) -> bool {
    job.pointer("/spec/backoffLimit").is_some()
        && job.pointer("/spec/completionMode").is_some()
        && (job.pointer("/spec/selector").is_some()
            || job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true))
}

// ---------------------------------------------------------------------------------------------
// Completion indexes (indexed_job_utils.go).

fn completion_index(pod: &Value) -> Option<i64> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(COMPLETION_INDEX))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .filter(|i| *i >= 0)
}

/// Parses `status.completedIndexes` ("1,3-5,7").
fn parse_indexes(s: &str, completions: i64) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
            for i in a..=b.min(completions - 1) {
                out.insert(i);
            }
        }
    }
    out
}

/// Renders indexes as upstream does: ascending, runs of consecutive indexes as `a-b`.
fn render_indexes(set: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        if end == start {
            parts.push(start.to_string());
        } else {
            parts.push(format!("{start}-{end}"));
        }
    }
    parts.join(",")
}

/// `podGenerateNameWithIndex`: `<job>-<index>-`, the job name cut so the result fits.
fn generate_name_with_index(job: &str, index: i64) -> String {
    let suffix = format!("-{index}-");
    // Pod names are at most 63 characters including the 5-character random suffix.
    let max = 63 - 5 - suffix.len();
    let base: String = job.chars().take(max).collect();
    format!("{base}{suffix}")
}

// ---------------------------------------------------------------------------------------------
// The sync.

fn has_tracking_finalizer(pod: &Value) -> bool {
    pod.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// Pods whose Job is gone (or going) keep no tracking finalizer.
fn release_orphans(state: &mut State) -> bool {
    let live: std::collections::BTreeMap<&str, bool> = state
        .objects
        .get(&("batch".to_string(), "jobs".to_string()))
        .into_iter()
        .flat_map(|m| m.values())
        .map(|j| (meta_str(j, "uid"), deleting(j)))
        .collect();
    let orphans: Vec<Value> = state
        .objects
        .get(&(String::new(), "pods".to_string()))
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|p| has_tracking_finalizer(p))
        .filter(|p| match controller_uid(p) {
            Some(uid) => live.get(uid).is_none_or(|deleting| *deleting),
            None => true,
        })
        .cloned()
        .collect();
    let mut changed = false;
    for pod in orphans {
        changed |= remove_finalizer(state, "", "pods", &pod, TRACKING_FINALIZER);
    }
    changed
}

enum Finish {
    Success { reason: String, message: String },
    Failure { reason: String, message: String },
}

fn sync_job(state: &mut State, job: &Value) -> bool {
    if deleting(job) {
        return false;
    }
    if !defaulted(job) {
        let mut j = job.clone();
        defaults(&mut j);
        return state.update_object("batch", "jobs", j, false).is_ok();
    }
    // JobManagedBy: another controller (e.g. MultiKueue) owns the job's pods and status.
    let managed_by = str_at(job, "/spec/managedBy");
    if !managed_by.is_empty() && managed_by != "kubernetes.io/job-controller" {
        return false;
    }
    let ns = meta_str(job, "namespace").to_string();
    let uid = meta_str(job, "uid").to_string();
    let mut status: Map<String, Value> = job
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pods = controlled(state, "", "pods", &ns, &uid);
    let finished = is_true(job, "Complete") || is_true(job, "Failed");
    if finished {
        let mut changed = false;
        for p in pods.iter().filter(|p| has_tracking_finalizer(p)) {
            changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
        }
        return changed;
    }

    let parallelism = int_at(job, "/spec/parallelism").unwrap_or(1).max(0);
    let completions = int_at(job, "/spec/completions");
    let backoff_limit = int_at(job, "/spec/backoffLimit").unwrap_or(6);
    let indexed = str_at(job, "/spec/completionMode") == "Indexed";
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let on_failure = str_at(job, "/spec/template/spec/restartPolicy") == "OnFailure";
    let n_completions = completions.unwrap_or(1);

    let mut changed = false;
    let mut succeeded = status.get("succeeded").and_then(Value::as_i64).unwrap_or(0);
    let mut failed = status.get("failed").and_then(Value::as_i64).unwrap_or(0);
    let mut done_indexes = parse_indexes(
        status
            .get("completedIndexes")
            .and_then(Value::as_str)
            .unwrap_or(""),
        n_completions,
    );

    // Count pods that finished since the last sync and release them.
    for p in pods.iter().filter(|p| has_tracking_finalizer(p)) {
        if phase(p) == "Succeeded" {
            if indexed {
                if let Some(i) = completion_index(p).filter(|i| *i < n_completions) {
                    done_indexes.insert(i);
                }
            } else {
                succeeded += 1;
            }
        } else if phase(p) == "Failed" || deleting(p) {
            failed += 1;
        } else {
            continue;
        }
        changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
    }
    if indexed {
        succeeded = done_indexes.len() as i64;
    }
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !terminal(p) && !deleting(p))
        .collect();

    let mut finish = None;
    if let Some(c) =
        condition(job, "SuccessCriteriaMet").filter(|_| is_true(job, "SuccessCriteriaMet"))
    {
        finish = Some(Finish::Success {
            reason: str_at(c, "/reason").to_string(),
            message: str_at(c, "/message").to_string(),
        });
    } else if let Some(c) =
        condition(job, "FailureTarget").filter(|_| is_true(job, "FailureTarget"))
    {
        finish = Some(Finish::Failure {
            reason: str_at(c, "/reason").to_string(),
            message: str_at(c, "/message").to_string(),
        });
    } else if failed > backoff_limit
        || (on_failure && past_backoff_on_failure(&pods, backoff_limit))
    {
        finish = Some(Finish::Failure {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        });
    } else if past_deadline(job, &status, suspended) {
        finish = Some(Finish::Failure {
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into(),
        });
    }

    if status.get("startTime").is_none() && !suspended {
        status.insert("startTime".into(), json!(now()));
    }

    match finish {
        Some(Finish::Failure { reason, message }) => {
            // Every pod not yet terminated counts as failed and goes away.
            for p in &active {
                if has_tracking_finalizer(p) {
                    failed += 1;
                }
                changed |= delete(state, "", "pods", p);
                changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
            }
            changed |=
                ensure_job_condition(&mut conditions, "FailureTarget", "True", &reason, &message);
            if terminating_now(state, &ns, &uid) == 0 {
                changed |=
                    ensure_job_condition(&mut conditions, "Failed", "True", &reason, &message);
            }
        }
        Some(Finish::Success { reason, message }) => {
            for p in &active {
                changed |= delete(state, "", "pods", p);
                changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
            }
            if terminating_now(state, &ns, &uid) == 0 {
                changed |=
                    ensure_job_condition(&mut conditions, "Complete", "True", &reason, &message);
                status.insert("completionTime".into(), json!(now()));
            }
        }
        None => {
            let mut n_active = active.len() as i64;
            if suspended {
                for p in &active {
                    // Suspension releases pods without counting them (deleteJobPods).
                    changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
                    changed |= delete(state, "", "pods", p);
                }
                changed |= ensure_job_condition(
                    &mut conditions,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                );
            } else {
                if is_true(job, "Suspended") {
                    changed |= ensure_job_condition(
                        &mut conditions,
                        "Suspended",
                        "False",
                        "JobResumed",
                        "Job resumed",
                    );
                    status.insert("startTime".into(), json!(now()));
                }
                let want = match completions {
                    None if succeeded > 0 => n_active,
                    None => parallelism,
                    Some(c) => (c - succeeded).min(parallelism).max(0),
                };
                if n_active > want {
                    // Remove the pods furthest from running first (activePodsForRemoval).
                    let mut victims = active.clone();
                    victims.sort_by_key(|p| (pod_ready(p), phase(p) == "Running"));
                    for p in victims.iter().take((n_active - want) as usize) {
                        changed |= remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
                        changed |= delete(state, "", "pods", p);
                    }
                    n_active = want;
                } else if n_active < want {
                    let mut diff = want - n_active;
                    let indexes: Vec<Option<i64>> = if indexed {
                        let busy: BTreeSet<i64> =
                            active.iter().filter_map(|p| completion_index(p)).collect();
                        (0..n_completions)
                            .filter(|i| !done_indexes.contains(i) && !busy.contains(i))
                            .take(diff as usize)
                            .map(Some)
                            .collect()
                    } else {
                        (0..diff).map(|_| None).collect()
                    };
                    diff = indexes.len() as i64;
                    for ix in indexes {
                        let pod = pod_for(job, ix);
                        match state.create_object("", "pods", pod) {
                            Ok(_) => changed = true,
                            Err(e) => {
                                diff -= 1;
                                tracing::debug!(job = meta_str(job, "name"), error = %e.message, "creating a job pod failed");
                            }
                        }
                    }
                    n_active += diff;
                }
                let complete = match completions {
                    None => succeeded > 0 && n_active == 0,
                    Some(c) => succeeded >= c && n_active == 0,
                };
                if complete {
                    changed |= ensure_job_condition(
                        &mut conditions,
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        REACHED_COMPLETIONS,
                    );
                }
            }
        }
    }

    // Status from the pods as they are now.
    let pods_now = if changed {
        controlled(state, "", "pods", &ns, &uid)
    } else {
        pods
    };
    let active_now: Vec<&Value> = pods_now
        .iter()
        .filter(|p| !terminal(p) && !deleting(p))
        .collect();
    let ready = active_now.iter().filter(|p| pod_ready(p)).count();
    let terminating = pods_now
        .iter()
        .filter(|p| deleting(p) && !terminal(p))
        .count();
    let s = &mut status;
    set_count(s, "active", active_now.len() as i64);
    set_count(s, "succeeded", succeeded);
    set_count(s, "failed", failed);
    s.insert("ready".into(), json!(ready));
    s.insert("terminating".into(), json!(terminating));
    s.insert("uncountedTerminatedPods".into(), json!({}));
    if indexed {
        let rendered = render_indexes(&done_indexes);
        if rendered.is_empty() {
            s.remove("completedIndexes");
        } else {
            s.insert("completedIndexes".into(), json!(rendered));
        }
    }
    if conditions.is_empty() {
        s.remove("conditions");
    } else {
        s.insert("conditions".into(), Value::Array(conditions));
    }
    // Re-read: writes to pods above do not touch the job, but be safe about its version.
    let current = state
        .object("batch", "jobs", &ns, meta_str(job, "name"))
        .unwrap_or_else(|| job.clone());
    changed |= write_status(state, "batch", "jobs", &current, Value::Object(status));
    changed
}

fn set_count(s: &mut Map<String, Value>, key: &str, n: i64) {
    if n == 0 {
        s.remove(key);
    } else {
        s.insert(key.into(), json!(n));
    }
}

fn terminating_now(state: &State, ns: &str, uid: &str) -> usize {
    controlled(state, "", "pods", ns, uid)
        .iter()
        .filter(|p| deleting(p) && !terminal(p))
        .count()
}

/// `pastBackoffLimitOnFailure`: container restarts of pending/running pods reach the limit.
fn past_backoff_on_failure(pods: &[Value], limit: i64) -> bool {
    let total: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending" | ""))
        .map(restarts)
        .sum();
    if limit == 0 {
        total > 0
    } else {
        total >= limit
    }
}

fn past_deadline(job: &Value, status: &Map<String, Value>, suspended: bool) -> bool {
    let Some(secs) = int_at(job, "/spec/activeDeadlineSeconds") else {
        return false;
    };
    if suspended {
        return false;
    }
    let Some(start) = status
        .get("startTime")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    else {
        return false;
    };
    chrono::Utc::now()
        .signed_duration_since(start)
        .num_seconds()
        >= secs
}

/// A pod from the job's template (`CreatePodsWithGenerateName` plus the Indexed additions).
fn pod_for(job: &Value, index: Option<i64>) -> Value {
    let name = meta_str(job, "name");
    let mut template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = template
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or(json!({}));
    let mut spec = template
        .get_mut("spec")
        .map(Value::take)
        .filter(Value::is_object)
        .unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("name");
        m.remove("namespace");
        m.insert("namespace".into(), json!(meta_str(job, "namespace")));
        let mut fins: Vec<Value> = m
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
            fins.push(json!(TRACKING_FINALIZER));
        }
        m.insert("finalizers".into(), Value::Array(fins));
        m.insert("ownerReferences".into(), json!([controller_ref(job)]));
        // Templates of defaulted Jobs carry these already; a manual selector may not.
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.entry(CONTROLLER_UID)
                .or_insert_with(|| json!(meta_str(job, "uid")));
            l.entry(JOB_NAME).or_insert_with(|| json!(name));
            l.entry(LEGACY_CONTROLLER_UID)
                .or_insert_with(|| json!(meta_str(job, "uid")));
            l.entry(LEGACY_JOB_NAME).or_insert_with(|| json!(name));
        }
        match index {
            Some(i) => {
                let ann = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(COMPLETION_INDEX.into(), json!(i.to_string()));
                }
                if let Some(l) = m.get_mut("labels").and_then(Value::as_object_mut) {
                    l.insert(COMPLETION_INDEX.into(), json!(i.to_string()));
                }
                m.insert(
                    "generateName".into(),
                    json!(generate_name_with_index(name, i)),
                );
            }
            None => {
                m.insert("generateName".into(), json!(format!("{name}-")));
            }
        }
    }
    if let Some(i) = index {
        add_completion_index_env(&mut spec);
        if let Some(s) = spec.as_object_mut() {
            s.insert("hostname".into(), json!(format!("{name}-{i}")));
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// `addCompletionIndexEnvVariables`: JOB_COMPLETION_INDEX from the annotation, in every
/// container and init container that does not set it.
fn add_completion_index_env(spec: &mut Value) {
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            let Some(co) = c.as_object_mut() else {
                continue;
            };
            let env = co.entry("env").or_insert_with(|| json!([]));
            let Some(env) = env.as_array_mut() else {
                continue;
            };
            if env
                .iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some("JOB_COMPLETION_INDEX"))
            {
                continue;
            }
            env.push(json!({
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {
                    "fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")
                }},
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip() {
        let s = parse_indexes("0,2-4,7", 10);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec![0, 2, 3, 4, 7]);
        assert_eq!(render_indexes(&s), "0,2-4,7");
        assert_eq!(render_indexes(&parse_indexes("0-1", 2)), "0-1");
        assert_eq!(render_indexes(&BTreeSet::new()), "");
        assert_eq!(parse_indexes("0-9", 3).len(), 3);
    }

    #[test]
    fn defaults_generate_selector_and_labels() {
        let mut job = json!({
            "metadata": {"name": "pi", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {}}}
        });
        defaults(&mut job);
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["parallelism"], 1);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["completionMode"], "NonIndexed");
        assert_eq!(job["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        let l = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(l["job-name"], "pi");
        assert_eq!(l["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(l["controller-uid"], "u1");
        assert_eq!(job["metadata"]["labels"], json!({"app": "pi"}));
        assert!(defaulted(&job));
    }

    #[test]
    fn indexed_pods_get_hostname_index_and_env() {
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "tj-node-0", "namespace": "ns", "uid": "u"},
            "spec": {"completionMode": "Indexed", "template": {"spec": {
                "subdomain": "tj", "containers": [{"name": "node"}]}}}
        });
        let pod = pod_for(&job, Some(1));
        assert_eq!(pod["metadata"]["generateName"], "tj-node-0-1-");
        assert_eq!(pod["spec"]["hostname"], "tj-node-0-1");
        assert_eq!(pod["metadata"]["annotations"][COMPLETION_INDEX], "1");
        assert_eq!(pod["metadata"]["labels"][COMPLETION_INDEX], "1");
        assert_eq!(pod["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
    }
}
