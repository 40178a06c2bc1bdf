//! The batch/v1 Job controller, after kubernetes/kubernetes `pkg/controller/job/job_controller.go`
//! (`syncJob`, `manageJob`, `trackJobStatusAndRemoveFinalizers`, `enactJobFinished`,
//! `syncOrphanPod`) and `indexed_job_utils.go`, as Kubernetes 1.31+ behaves with
//! JobPodReplacementPolicy and JobManagedBy on: pods carry the `batch.kubernetes.io/job-tracking`
//! finalizer until they are counted, the terminal conditions are preceded by
//! `SuccessCriteriaMet` / `FailureTarget`, and `status.terminating` is reported.
//!
//! Simplifications: no pod-failure back-off before a replacement pod (upstream waits 10 s
//! doubling; the emulator's kubelet already backs off restarts), and no podFailurePolicy,
//! successPolicy or backoffLimitPerIndex.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::objects::{
    controlled, controller_ref, controller_uid, create_pod_recorded, delete_pod_recorded, deleting,
    flag_at, has_finalizer, in_namespace, int_at, phase, pod_ready, remove_finalizer, restarts,
    str_at, terminal,
};
use super::status::{Status, condition, is_true};
use crate::events::{Record, record};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
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

pub use crate::runtime::builtin::{JOBS, PODS};

/// `source.component` of the Job controller's events (SuccessfulCreate, SuccessfulDelete,
/// Completed, BackoffLimitExceeded, DeadlineExceeded, Suspended, Resumed).
pub const COMPONENT: &str = "job-controller";

/// The Job controller (no defects of its own): reconciles a Job when it or one of its pods
/// changes, and when its activeDeadlineSeconds runs out.
#[derive(Debug, Default)]
pub struct JobController;

impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        "job"
    }

    fn owns(&self) -> Kind {
        JOBS
    }

    fn watches(&self) -> Vec<Watch> {
        vec![Watch::new(PODS, Mapper::ControllerOwner)]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        match state.object("batch", "jobs", &key.namespace, &key.name) {
            Some(job) => sync_job(state, &job),
            None => Action::Done,
        }
    }
}

/// The Job controller's orphan queue (`syncOrphanPod`): a pod carrying the tracking finalizer
/// that no live Job controls has the finalizer removed, so it can go.
#[derive(Debug, Default)]
pub struct OrphanPods;

impl Reconciler for OrphanPods {
    fn name(&self) -> &'static str {
        "job-orphan-pods"
    }

    fn owns(&self) -> Kind {
        PODS
    }

    fn watches(&self) -> Vec<Watch> {
        // `deleteJob` enqueues the tracked pods of a Job that goes.
        vec![Watch::new(JOBS, Mapper::Func(tracked_pods_of_gone_job))]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let pods = (String::new(), "pods".to_string());
        let Some(pod) = state.get_obj(&pods, &key.namespace, &key.name) else {
            return Action::Done;
        };
        if !has_finalizer(pod, TRACKING_FINALIZER) {
            return Action::Done;
        }
        let live = controller_uid(pod).is_some_and(|uid| {
            state
                .objects
                .get(&("batch".to_string(), "jobs".to_string()))
                .is_some_and(|jobs| {
                    jobs.values()
                        .any(|j| meta_str(j, "uid") == uid && !deleting(j))
                })
        });
        if !live {
            let pod = pod.clone();
            remove_finalizer(state, "", "pods", &pod, TRACKING_FINALIZER);
        }
        Action::Done
    }
}

/// The tracked pods of `job` once it is gone or being deleted.
fn tracked_pods_of_gone_job(state: &State, job: &Value) -> Vec<ObjectKey> {
    let (ns, uid) = (meta_str(job, "namespace"), meta_str(job, "uid"));
    let jobs = ("batch".to_string(), "jobs".to_string());
    let live = state
        .get_obj(&jobs, ns, meta_str(job, "name"))
        .is_some_and(|j| meta_str(j, "uid") == uid && !deleting(j));
    if live {
        return Vec::new();
    }
    in_namespace(state, "", "pods", ns)
        .filter(|p| has_finalizer(p, TRACKING_FINALIZER) && controller_uid(p) == Some(uid))
        .map(ObjectKey::of)
        .collect()
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

/// `syncJob`: defaults, then (for a Job this controller manages) the finished-pod accounting,
/// the terminal decision, `manageJob` and the status; reconcile again when the deadline falls.
fn sync_job(state: &mut State, job: &Value) -> Action {
    if deleting(job) {
        return Action::Done;
    }
    if !defaulted(job) {
        let mut j = job.clone();
        defaults(&mut j);
        if let Err(e) = state.update_object("batch", "jobs", j, false) {
            tracing::debug!(job = meta_str(job, "name"), error = %e.message, "defaulting failed");
        }
        return Action::Done;
    }
    // JobManagedBy: another controller (e.g. MultiKueue) owns the job's pods and status.
    let managed_by = str_at(job, "/spec/managedBy");
    if !managed_by.is_empty() && managed_by != "kubernetes.io/job-controller" {
        return Action::Done;
    }
    let pods = controlled(
        state,
        "",
        "pods",
        meta_str(job, "namespace"),
        meta_str(job, "uid"),
    );
    if is_true(job, "Complete") || is_true(job, "Failed") {
        // A finished Job only releases the pods it has not counted.
        for p in &pods {
            remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
        }
        return Action::Done;
    }
    let mut sync = Sync::new(job, pods);
    sync.track_finished_pods(state);
    let active: Vec<Value> = sync
        .pods
        .iter()
        .filter(|p| !terminal(p) && !deleting(p))
        .cloned()
        .collect();
    let finish = sync.finished_condition();
    if !sync.fields().contains_key("startTime") && !sync.spec.suspended {
        sync.fields().insert("startTime".into(), json!(now()));
    }
    let action = match finish {
        Some(f) => {
            sync.enact_job_finished(state, &active, f);
            Action::Done
        }
        None => {
            sync.manage_job(state, &active);
            sync.deadline_requeue()
        }
    };
    sync.update_status(state);
    action
}

/// The parts of a Job's spec a sync reads, with the defaults applied.
struct Spec {
    parallelism: i64,
    completions: Option<i64>,
    backoff_limit: i64,
    indexed: bool,
    suspended: bool,
    on_failure: bool,
}

impl Spec {
    fn of(job: &Value) -> Self {
        Self {
            parallelism: int_at(job, "/spec/parallelism").unwrap_or(1).max(0),
            completions: int_at(job, "/spec/completions"),
            backoff_limit: int_at(job, "/spec/backoffLimit").unwrap_or(6),
            indexed: str_at(job, "/spec/completionMode") == "Indexed",
            suspended: flag_at(job, "/spec/suspend"),
            on_failure: str_at(job, "/spec/template/spec/restartPolicy") == "OnFailure",
        }
    }

    /// The completions of an Indexed Job (at least one index).
    fn n_completions(&self) -> i64 {
        self.completions.unwrap_or(1)
    }
}

/// Why a Job is finishing (`FailureTarget` / `SuccessCriteriaMet` and their reason).
struct Finish {
    failed: bool,
    reason: String,
    message: String,
}

/// One sync of an unfinished Job: its spec, its pods and the status being rebuilt.
struct Sync<'a> {
    job: &'a Value,
    ns: String,
    uid: String,
    spec: Spec,
    pods: Vec<Value>,
    status: Status,
    succeeded: i64,
    failed: i64,
    done_indexes: BTreeSet<i64>,
}

impl<'a> Sync<'a> {
    fn new(job: &'a Value, pods: Vec<Value>) -> Self {
        let spec = Spec::of(job);
        let status = Status::of(job);
        let count = |k: &str| status.fields.get(k).and_then(Value::as_i64).unwrap_or(0);
        let (succeeded, failed) = (count("succeeded"), count("failed"));
        let done_indexes = parse_indexes(
            status
                .fields
                .get("completedIndexes")
                .and_then(Value::as_str)
                .unwrap_or(""),
            spec.n_completions(),
        );
        Self {
            job,
            ns: meta_str(job, "namespace").to_string(),
            uid: meta_str(job, "uid").to_string(),
            spec,
            pods,
            status,
            succeeded,
            failed,
            done_indexes,
        }
    }

    fn fields(&mut self) -> &mut Map<String, Value> {
        &mut self.status.fields
    }

    /// `trackJobStatusAndRemoveFinalizers`: counts the pods that finished since the last sync
    /// and releases them.
    fn track_finished_pods(&mut self, state: &mut State) {
        let n_completions = self.spec.n_completions();
        for p in self
            .pods
            .iter()
            .filter(|p| has_finalizer(p, TRACKING_FINALIZER))
        {
            if phase(p) == "Succeeded" {
                if self.spec.indexed {
                    if let Some(i) = completion_index(p).filter(|i| *i < n_completions) {
                        self.done_indexes.insert(i);
                    }
                } else {
                    self.succeeded += 1;
                }
            } else if phase(p) == "Failed" || deleting(p) {
                self.failed += 1;
            } else {
                continue;
            }
            remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
        }
        if self.spec.indexed {
            self.succeeded = self.done_indexes.len() as i64;
        }
    }

    /// The terminal decision of `syncJob`: a recorded `SuccessCriteriaMet`/`FailureTarget`,
    /// else the backoff limit (`pastBackoffLimitOnFailure` too), else the active deadline.
    fn finished_condition(&self) -> Option<Finish> {
        let recorded = |ctype: &str, failed: bool| {
            condition(self.job, ctype)
                .filter(|_| is_true(self.job, ctype))
                .map(|c| Finish {
                    failed,
                    reason: str_at(c, "/reason").to_string(),
                    message: str_at(c, "/message").to_string(),
                })
        };
        let failure = |reason: &str, message: &str| Finish {
            failed: true,
            reason: reason.into(),
            message: message.into(),
        };
        if let Some(f) = recorded("SuccessCriteriaMet", false) {
            Some(f)
        } else if let Some(f) = recorded("FailureTarget", true) {
            Some(f)
        } else if self.failed > self.spec.backoff_limit
            || (self.spec.on_failure
                && past_backoff_on_failure(&self.pods, self.spec.backoff_limit))
        {
            Some(failure(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else if deadline_left(self.job, &self.status.fields, self.spec.suspended)
            .is_some_and(|left| left <= 0)
        {
            Some(failure(
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ))
        } else {
            None
        }
    }

    /// `enactJobFinished` after `deleteActivePods`: the active pods go (counted as failed when
    /// failing), then the terminal condition once none is terminating.
    fn enact_job_finished(&mut self, state: &mut State, active: &[Value], f: Finish) {
        for p in active {
            if f.failed && has_finalizer(p, TRACKING_FINALIZER) {
                self.failed += 1;
            }
            delete_pod_recorded(state, COMPONENT, self.job, p);
            remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
        }
        let settled = self.terminating_now(state) == 0;
        let conditions = &mut self.status.conditions;
        if f.failed {
            ensure_job_condition(conditions, "FailureTarget", "True", &f.reason, &f.message);
            if settled && ensure_job_condition(conditions, "Failed", "True", &f.reason, &f.message)
            {
                // recordJobFinished: the failure's reason and message.
                let rec = Record::warning(COMPONENT, self.job, &f.reason, f.message.clone());
                record(state, rec);
            }
        } else if settled {
            if ensure_job_condition(conditions, "Complete", "True", &f.reason, &f.message) {
                if self.spec.completions.is_some_and(|c| self.succeeded > c) {
                    let msg = "Too many succeeded pods running after completion count reached";
                    let rec = Record::warning(COMPONENT, self.job, "TooManySucceededPods", msg);
                    record(state, rec);
                }
                record(
                    state,
                    Record::normal(COMPONENT, self.job, "Completed", "Job completed"),
                );
            }
            self.status
                .fields
                .insert("completionTime".into(), json!(now()));
        }
    }

    /// `manageJob`: suspension, resumption, and as many active pods as parallelism and the
    /// remaining completions want; `SuccessCriteriaMet` once enough succeeded.
    fn manage_job(&mut self, state: &mut State, active: &[Value]) {
        if self.spec.suspended {
            for p in active {
                // Suspension releases pods without counting them (deleteJobPods).
                remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
                delete_pod_recorded(state, COMPONENT, self.job, p);
            }
            if ensure_job_condition(
                &mut self.status.conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
            ) {
                let rec = Record::normal(COMPONENT, self.job, "Suspended", "Job suspended");
                record(state, rec);
            }
            return;
        }
        if is_true(self.job, "Suspended") {
            if ensure_job_condition(
                &mut self.status.conditions,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
            ) {
                let rec = Record::normal(COMPONENT, self.job, "Resumed", "Job resumed");
                record(state, rec);
            }
            self.fields().insert("startTime".into(), json!(now()));
        }
        let mut n_active = active.len() as i64;
        let want = match self.spec.completions {
            None if self.succeeded > 0 => n_active,
            None => self.spec.parallelism,
            Some(c) => (c - self.succeeded).min(self.spec.parallelism).max(0),
        };
        if n_active > want {
            self.delete_extra_pods(state, active, (n_active - want) as usize);
            n_active = want;
        } else if n_active < want {
            n_active += self.create_pods(state, active, want - n_active);
        }
        let complete = match self.spec.completions {
            None => self.succeeded > 0 && n_active == 0,
            Some(c) => self.succeeded >= c && n_active == 0,
        };
        if complete {
            ensure_job_condition(
                &mut self.status.conditions,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                REACHED_COMPLETIONS,
            );
        }
    }

    /// Removes the `n` pods furthest from running first (`activePodsForRemoval`).
    fn delete_extra_pods(&self, state: &mut State, active: &[Value], n: usize) {
        let mut victims = active.to_vec();
        victims.sort_by_key(|p| (pod_ready(p), phase(p) == "Running"));
        for p in victims.iter().take(n) {
            remove_finalizer(state, "", "pods", p, TRACKING_FINALIZER);
            delete_pod_recorded(state, COMPONENT, self.job, p);
        }
    }

    /// Creates up to `diff` pods (for an Indexed Job, one per index neither done nor
    /// running); returns how many were created.
    fn create_pods(&self, state: &mut State, active: &[Value], diff: i64) -> i64 {
        let indexes: Vec<Option<i64>> = if self.spec.indexed {
            let busy: BTreeSet<i64> = active.iter().filter_map(completion_index).collect();
            (0..self.spec.n_completions())
                .filter(|i| !self.done_indexes.contains(i) && !busy.contains(i))
                .take(diff as usize)
                .map(Some)
                .collect()
        } else {
            (0..diff).map(|_| None).collect()
        };
        let mut created = 0;
        for ix in indexes {
            if create_pod_recorded(state, COMPONENT, self.job, pod_for(self.job, ix)).is_some() {
                created += 1;
            }
        }
        created
    }

    /// `updateActiveDeadline`'s requeue (`AddAfter`): reconcile again when the active
    /// deadline passes, even if no pod changes.
    fn deadline_requeue(&self) -> Action {
        match deadline_left(self.job, &self.status.fields, self.spec.suspended) {
            Some(left) => Action::RequeueAfter(Duration::from_secs(left.max(1).unsigned_abs())),
            None => Action::Done,
        }
    }

    fn terminating_now(&self, state: &State) -> usize {
        controlled(state, "", "pods", &self.ns, &self.uid)
            .iter()
            .filter(|p| deleting(p) && !terminal(p))
            .count()
    }

    /// The status from the pods as they are now, written when it changed.
    fn update_status(mut self, state: &mut State) {
        let pods_now = controlled(state, "", "pods", &self.ns, &self.uid);
        let active = pods_now
            .iter()
            .filter(|p| !terminal(p) && !deleting(p))
            .count();
        let ready = pods_now
            .iter()
            .filter(|p| !terminal(p) && !deleting(p) && pod_ready(p))
            .count();
        let terminating = pods_now
            .iter()
            .filter(|p| deleting(p) && !terminal(p))
            .count();
        let (succeeded, failed) = (self.succeeded, self.failed);
        let rendered = self
            .spec
            .indexed
            .then(|| render_indexes(&self.done_indexes));
        let s = self.fields();
        set_count(s, "active", active as i64);
        set_count(s, "succeeded", succeeded);
        set_count(s, "failed", failed);
        s.insert("ready".into(), json!(ready));
        s.insert("terminating".into(), json!(terminating));
        s.insert("uncountedTerminatedPods".into(), json!({}));
        match rendered {
            Some(r) if r.is_empty() => {
                s.remove("completedIndexes");
            }
            Some(r) => {
                s.insert("completedIndexes".into(), json!(r));
            }
            None => {}
        }
        let job = self.job;
        self.status.write(state, JOBS, job);
    }
}

fn set_count(s: &mut Map<String, Value>, key: &str, n: i64) {
    if n == 0 {
        s.remove(key);
    } else {
        s.insert(key.into(), json!(n));
    }
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

/// Seconds left before `activeDeadlineSeconds` runs out (`pastActiveDeadline`; ≤ 0 when past);
/// None without a deadline, while suspended, or before the Job started.
fn deadline_left(job: &Value, status: &Map<String, Value>, suspended: bool) -> Option<i64> {
    let secs = int_at(job, "/spec/activeDeadlineSeconds")?;
    if suspended {
        return None;
    }
    let start = status
        .get("startTime")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())?;
    let elapsed = chrono::Utc::now()
        .signed_duration_since(start)
        .num_seconds();
    Some(secs - elapsed)
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
    use std::time::Instant;

    use super::*;
    use crate::runtime::Runtime;

    fn cluster() -> (State, Runtime) {
        let mut s = State::new(1000);
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "ns"}}))
            .unwrap();
        let rt = Runtime::new(vec![Box::new(JobController), Box::new(OrphanPods)]);
        (s, rt)
    }

    fn job(name: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    }

    fn pods(s: &State) -> Vec<Value> {
        s.objects_of("", "pods")
    }

    #[test]
    fn a_job_is_driven_by_its_pods_events() {
        let (mut s, mut rt) = cluster();
        rt.settle(&mut s);
        s.create_object("batch", "jobs", job("pi", json!({"completions": 1})))
            .unwrap();
        rt.settle(&mut s);
        let p = pods(&s);
        assert_eq!(p.len(), 1, "the job made its pod");
        assert!(has_finalizer(&p[0], TRACKING_FINALIZER));
        let mut done = p[0].clone();
        done["status"] = json!({"phase": "Succeeded"});
        s.update_object("", "pods", done, true).unwrap();
        rt.settle(&mut s);
        let j = s.object("batch", "jobs", "ns", "pi").unwrap();
        assert!(
            is_true(&j, "Complete"),
            "the pod's change reached its job: {j:#}"
        );
        assert_eq!(j["status"]["succeeded"], 1);
        assert!(!has_finalizer(&pods(&s)[0], TRACKING_FINALIZER));
        let events: Vec<(String, String)> = s
            .objects_of("", "events")
            .iter()
            .filter(|e| e["source"]["component"] == COMPONENT)
            .map(|e| (str_at(e, "/reason").into(), str_at(e, "/message").into()))
            .collect();
        let created = format!("Created pod: {}", meta_str(&p[0], "name"));
        assert_eq!(
            events,
            [
                ("SuccessfulCreate".to_string(), created),
                ("Completed".to_string(), "Job completed".to_string())
            ]
        );
    }

    #[test]
    fn an_active_deadline_requeues_the_job() {
        let (mut s, mut rt) = cluster();
        let spec = json!({"completions": 1, "activeDeadlineSeconds": 30});
        s.create_object("batch", "jobs", job("dl", spec)).unwrap();
        let now = Instant::now();
        rt.settle_at(&mut s, now);
        let due = rt.next_due().expect("a requeue for the deadline");
        assert!(due > now + Duration::from_secs(28) && due <= now + Duration::from_secs(30));
    }

    #[test]
    fn a_deleted_jobs_tracked_pods_are_released() {
        let (mut s, mut rt) = cluster();
        s.create_object("batch", "jobs", job("gone", json!({"completions": 1})))
            .unwrap();
        rt.settle(&mut s);
        assert!(has_finalizer(&pods(&s)[0], TRACKING_FINALIZER));
        // Orphan propagation: the pod stays, its Job goes without it.
        let scope = s.scope_for("batch", "jobs", "ns").unwrap();
        let orphan = crate::store::DeleteOpts {
            propagation: Some(crate::store::Propagation::Orphan),
            ..Default::default()
        };
        s.delete(&scope, "gone", &orphan).unwrap();
        rt.settle(&mut s);
        let left = pods(&s);
        assert_eq!(left.len(), 1);
        assert!(!has_finalizer(&left[0], TRACKING_FINALIZER));
    }

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
