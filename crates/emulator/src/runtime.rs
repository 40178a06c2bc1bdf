//! The controller framework: the informer-and-work-queue shape of controller-runtime
//! (`pkg/internal/controller/controller.go`, the handlers of `pkg/handler/`) and client-go
//! (`util/workqueue`), run synchronously under the state lock.
//!
//! Each controller owns one kind and watches others. The [`Runtime`] keeps, per controller, a
//! cursor (a resourceVersion) into the store's event history and a deduplicating queue of
//! keys. On every [`Runtime::settle`] it reads only the events past each cursor, maps each
//! changed object to the keys of the owned kind it affects ([`Mapper`]), and reconciles those
//! keys only. Before its first settle, and whenever the history no longer reaches back to its
//! cursor (a watch would get 410 Expired), a controller gets every key of its owned kind, as
//! an informer's relist would give it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::registry::ResKey;
use crate::store::{Event, State, meta_str};

/// Rounds a settle runs at most, so a controller that always writes cannot wedge the emulator.
pub const MAX_ROUNDS: usize = 1000;
/// First delay of a failed key (controller-runtime's default per-item limiter: 5 ms doubling).
const RETRY_BASE: Duration = Duration::from_millis(5);
/// Longest delay of a failed key.
const RETRY_MAX: Duration = Duration::from_secs(1000);

/// A resource a controller owns or watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group ("" for core).
    pub group: &'static str,
    /// Resource name (plural), as the store keys it.
    pub plural: &'static str,
    /// The kind ownerReferences name.
    pub kind: &'static str,
}

impl Kind {
    /// The resource `plural` of `group`, whose objects are of kind `kind`.
    pub const fn new(group: &'static str, plural: &'static str, kind: &'static str) -> Self {
        Self {
            group,
            plural,
            kind,
        }
    }

    fn is(&self, res: &ResKey) -> bool {
        res.0 == self.group && res.1 == self.plural
    }

    /// Whether objects of this kind live in namespaces (namespaced unless served otherwise).
    fn namespaced(&self, state: &State) -> bool {
        state
            .resources
            .get(&(self.group.to_string(), self.plural.to_string()))
            .is_none_or(|d| d.namespaced)
    }

    /// Whether an ownerReference's apiVersion and kind name this kind.
    fn is_referenced_by(&self, owner_ref: &Value) -> bool {
        let api_version = owner_ref
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        group == self.group && owner_ref.get("kind").and_then(Value::as_str) == Some(self.kind)
    }
}

/// The built-in kinds controllers own or watch, declared once.
pub mod builtin {
    use super::Kind;

    /// core/v1 Namespaces.
    pub const NAMESPACES: Kind = Kind::new("", "namespaces", "Namespace");
    /// core/v1 Pods.
    pub const PODS: Kind = Kind::new("", "pods", "Pod");
    /// core/v1 Services.
    pub const SERVICES: Kind = Kind::new("", "services", "Service");
    /// batch/v1 Jobs.
    pub const JOBS: Kind = Kind::new("batch", "jobs", "Job");
    /// apps/v1 Deployments.
    pub const DEPLOYMENTS: Kind = Kind::new("apps", "deployments", "Deployment");
    /// apps/v1 ReplicaSets.
    pub const REPLICASETS: Kind = Kind::new("apps", "replicasets", "ReplicaSet");
    /// core/v1 Endpoints.
    pub const ENDPOINTS: Kind = Kind::new("", "endpoints", "Endpoints");
    /// discovery.k8s.io/v1 EndpointSlices.
    pub const ENDPOINTSLICES: Kind =
        Kind::new("discovery.k8s.io", "endpointslices", "EndpointSlice");
}

/// What a controller reconciles: an object's namespace ("" when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, "" for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a stored object.
    pub fn of(obj: &Value) -> Self {
        Self::new(meta_str(obj, "namespace"), meta_str(obj, "name"))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// How a change to a watched object becomes keys of the owned kind (controller-runtime's
/// event handlers). Applied to the object after the change and, for updates, before it, so an
/// object that stops pointing at an owner still wakes that owner.
#[derive(Clone, Copy)]
pub enum Mapper {
    /// The owner its controller ownerReference names, when that is of the owned kind
    /// (`handler.EnqueueRequestForOwner` with `OnlyControllerOwner`).
    ControllerOwner,
    /// The owned object named by this label of the changed object, in its namespace.
    Label(&'static str),
    /// The owned object with the changed object's name (and namespace, if the owned kind is
    /// namespaced): e.g. a Profile and its Namespace.
    Name,
    /// The owned object named like the changed object's namespace: a cluster-scoped owner of
    /// a namespace of its name, such as a Profile.
    Namespace,
    /// Every object of the owned kind: cluster-wide inputs (ClusterRoles for aggregation).
    All,
    /// Anything else (`handler.EnqueueRequestsFromMapFunc`).
    Func(fn(&State, &Value) -> Vec<ObjectKey>),
}

impl fmt::Debug for Mapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mapper::ControllerOwner => f.write_str("ControllerOwner"),
            Mapper::Label(l) => write!(f, "Label({l})"),
            Mapper::Name => f.write_str("Name"),
            Mapper::Namespace => f.write_str("Namespace"),
            Mapper::All => f.write_str("All"),
            Mapper::Func(_) => f.write_str("Func"),
        }
    }
}

impl Mapper {
    /// The keys of `owner`'s kind a change to `obj` affects.
    pub fn keys(&self, state: &State, owner: Kind, obj: &Value) -> Vec<ObjectKey> {
        let ns = |state: &State| {
            if owner.namespaced(state) {
                meta_str(obj, "namespace").to_string()
            } else {
                String::new()
            }
        };
        match self {
            Mapper::ControllerOwner => obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .filter(|r| owner.is_referenced_by(r))
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .map(|name| ObjectKey::new(ns(state), name))
                .collect(),
            Mapper::Label(label) => obj
                .pointer("/metadata/labels")
                .and_then(|l| l.get(*label))
                .and_then(Value::as_str)
                .map(|name| ObjectKey::new(ns(state), name))
                .into_iter()
                .collect(),
            Mapper::Name => vec![ObjectKey::new(ns(state), meta_str(obj, "name"))],
            Mapper::Namespace => match meta_str(obj, "namespace") {
                "" => Vec::new(),
                n => vec![ObjectKey::new("", n)],
            },
            Mapper::All => state
                .objects
                .get(&(owner.group.to_string(), owner.plural.to_string()))
                .into_iter()
                .flat_map(|m| m.keys())
                .map(|(ns, name)| ObjectKey::new(ns.as_str(), name.as_str()))
                .collect(),
            Mapper::Func(f) => f(state, obj),
        }
    }
}

/// A kind a controller watches and how its changes map to the controller's keys.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// The watched kind.
    pub kind: Kind,
    /// Which owned keys a change affects.
    pub map: Mapper,
}

impl Watch {
    /// Watch `kind`, mapping changes with `map`.
    pub const fn new(kind: Kind, map: Mapper) -> Self {
        Self { kind, map }
    }
}

/// What a reconcile asks of the queue (controller-runtime's `Result` and error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until the key's inputs change.
    Done,
    /// Reconcile again after this long, for time-based steps (`Result{RequeueAfter}`).
    RequeueAfter(Duration),
    /// The reconcile failed: retry with the key's exponential back-off (a returned error).
    Retry,
}

/// A controller: what it owns, what it watches, and the reconcile of one key. Adding a
/// controller is writing these and listing it in [`super::all`].
pub trait Reconciler: Send {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// The kind whose keys it reconciles; every change to one enqueues its key (`For`).
    fn owns(&self) -> Kind;
    /// The other kinds whose changes enqueue owned keys (`Owns`, `Watches`).
    fn watches(&self) -> Vec<Watch> {
        Vec::new()
    }
    /// Brings the object `key` (which may be gone) to its desired state.
    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action;
}

/// A deduplicating FIFO of keys (client-go's workqueue: a key waiting is not queued twice),
/// with delayed adds (`AddAfter`) and per-key failure back-off (`AddRateLimited`, `Forget`).
#[derive(Debug, Default)]
pub struct WorkQueue {
    queue: VecDeque<ObjectKey>,
    queued: BTreeSet<ObjectKey>,
    delayed: BTreeMap<ObjectKey, Instant>,
    failures: BTreeMap<ObjectKey, u32>,
}

impl WorkQueue {
    /// Queues `key` unless it is already waiting; returns whether it was added.
    pub fn add(&mut self, key: ObjectKey) -> bool {
        if self.queued.contains(&key) {
            return false;
        }
        self.queued.insert(key.clone());
        self.queue.push_back(key);
        true
    }

    /// Queues `key` at `at`; an earlier pending deadline for it is kept.
    pub fn add_after(&mut self, key: ObjectKey, at: Instant) {
        let due = self.delayed.entry(key).or_insert(at);
        if at < *due {
            *due = at;
        }
    }

    /// Queues `key` after its back-off (5 ms, doubling per consecutive failure).
    pub fn add_rate_limited(&mut self, key: ObjectKey, now: Instant) {
        let n = self.failures.entry(key.clone()).or_insert(0);
        let delay = RETRY_BASE
            .checked_mul(1u32 << (*n).min(20))
            .map_or(RETRY_MAX, |d| d.min(RETRY_MAX));
        *n += 1;
        self.add_after(key, now + delay);
    }

    /// Clears `key`'s failure count.
    pub fn forget(&mut self, key: &ObjectKey) {
        self.failures.remove(key);
    }

    /// Moves the delayed keys due at `now` to the queue.
    pub fn promote(&mut self, now: Instant) {
        let due: Vec<ObjectKey> = self
            .delayed
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.delayed.remove(&k);
            self.add(k);
        }
    }

    /// The earliest deadline of a delayed key.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.values().min().copied()
    }

    /// The next key to reconcile.
    pub fn pop(&mut self) -> Option<ObjectKey> {
        let key = self.queue.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// Keys waiting now (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no key is waiting now.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// One controller with its informer state.
struct Slot {
    reconciler: Box<dyn Reconciler>,
    owns: Kind,
    watches: Vec<Watch>,
    queue: WorkQueue,
    /// The resourceVersion up to which the store's events were mapped; None before the
    /// initial list.
    cursor: Option<u64>,
}

impl Slot {
    /// Maps the events past the cursor to keys (or relists when there is no usable cursor).
    fn observe(&mut self, state: &State) {
        let Some(cursor) = self.cursor else {
            self.relist(state);
            return;
        };
        if cursor >= state.rv {
            return;
        }
        match state.events_since(cursor) {
            Ok(events) => {
                for ev in &events {
                    self.map_event(state, ev);
                }
                self.cursor = Some(state.rv);
            }
            Err(e) => {
                tracing::debug!(controller = self.reconciler.name(), reason = %e.message,
                    "event history expired: resyncing");
                self.relist(state);
            }
        }
    }

    /// Every key of the owned kind, as an informer's initial list (or relist) yields them.
    fn relist(&mut self, state: &State) {
        for key in Mapper::All.keys(state, self.owns, &Value::Null) {
            self.queue.add(key);
        }
        self.cursor = Some(state.rv);
    }

    fn map_event(&mut self, state: &State, ev: &Event) {
        if self.owns.is(&ev.res) {
            self.queue.add(ObjectKey::of(&ev.object));
        }
        for w in self.watches.iter().filter(|w| w.kind.is(&ev.res)) {
            for obj in std::iter::once(&ev.object).chain(ev.old.as_ref()) {
                for key in w.map.keys(state, self.owns, obj) {
                    self.queue.add(key);
                }
            }
        }
    }

    /// Reconciles the keys waiting at the start (keys they enqueue wait for the next round);
    /// returns how many it reconciled.
    fn process(&mut self, state: &mut State, now: Instant) -> usize {
        self.queue.promote(now);
        let n = self.queue.len();
        for _ in 0..n {
            let Some(key) = self.queue.pop() else {
                break;
            };
            let action = self.reconciler.reconcile(state, &key);
            tracing::trace!(controller = self.reconciler.name(), %key, ?action, "reconciled");
            match action {
                Action::Done => self.queue.forget(&key),
                Action::RequeueAfter(d) => {
                    self.queue.forget(&key);
                    if d.is_zero() {
                        self.queue.add(key);
                    } else {
                        self.queue.add_after(key, now + d);
                    }
                }
                Action::Retry => self.queue.add_rate_limited(key, now),
            }
        }
        n
    }
}

/// What one [`Runtime::settle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Rounds run.
    pub rounds: usize,
    /// Keys reconciled, over all controllers.
    pub reconciles: usize,
    /// Whether it ended quiet (false: it hit [`MAX_ROUNDS`]).
    pub quiet: bool,
}

/// The controller manager: every controller with its queue and cursor.
pub struct Runtime {
    slots: Vec<Slot>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().map(|s| s.reconciler.name()))
            .finish()
    }
}

impl Runtime {
    /// A manager of `reconcilers`, run in this order each round. Each starts with a full list
    /// at its first settle.
    pub fn new(reconcilers: Vec<Box<dyn Reconciler>>) -> Self {
        let slots = reconcilers
            .into_iter()
            .map(|r| Slot {
                owns: r.owns(),
                watches: r.watches(),
                reconciler: r,
                queue: WorkQueue::default(),
                cursor: None,
            })
            .collect();
        Self { slots }
    }

    /// Runs the store's own reconcile (namespaces, GC) and the controllers' queues until quiet.
    pub fn settle(&mut self, state: &mut State) -> Settled {
        self.settle_at(state, Instant::now())
    }

    /// [`Runtime::settle`] with `now` as the time delayed keys fall due against.
    pub fn settle_at(&mut self, state: &mut State, now: Instant) -> Settled {
        let mut out = Settled::default();
        while out.rounds < MAX_ROUNDS {
            out.rounds += 1;
            let mut busy = state.reconcile();
            // Each controller sees the writes of those before it in the same round.
            for slot in &mut self.slots {
                slot.observe(state);
                let n = slot.process(state, now);
                out.reconciles += n;
                busy |= n > 0;
            }
            if !busy {
                out.quiet = true;
                return out;
            }
        }
        tracing::warn!("controllers did not settle after {MAX_ROUNDS} rounds");
        out
    }

    /// When the earliest delayed key falls due (the reconciler wakes then).
    pub fn next_due(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.queue.next_due()).min()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    const CONFIGMAPS: Kind = Kind::new("", "configmaps", "ConfigMap");
    const SECRETS: Kind = Kind::new("", "secrets", "Secret");

    type Log = Arc<Mutex<Vec<String>>>;

    /// Records the keys it is asked to reconcile; optionally always writes, or requeues.
    struct Recorder {
        log: Log,
        watches: Vec<Watch>,
        action: Action,
        always_writes: bool,
    }

    impl Recorder {
        fn new(watches: Vec<Watch>) -> (Self, Log) {
            let log = Log::default();
            let r = Self {
                log: log.clone(),
                watches,
                action: Action::Done,
                always_writes: false,
            };
            (r, log)
        }
    }

    impl Reconciler for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn owns(&self) -> Kind {
            CONFIGMAPS
        }
        fn watches(&self) -> Vec<Watch> {
            self.watches.clone()
        }
        fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
            self.log.lock().unwrap().push(key.to_string());
            if self.always_writes
                && let Some(mut cm) = state.object("", "configmaps", &key.namespace, &key.name)
            {
                let n = cm["data"]["n"]
                    .as_str()
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap();
                cm["data"] = json!({"n": (n + 1).to_string()});
                state.update_object("", "configmaps", cm, false).unwrap();
            }
            self.action
        }
    }

    fn state(history: usize) -> State {
        let mut s = State::new(history);
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "ns"}}))
            .unwrap();
        s
    }

    fn create(s: &mut State, plural: &str, obj: Value) -> Value {
        s.create_object("", plural, obj).unwrap()
    }

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}})
    }

    fn touch(s: &mut State, plural: &str, name: &str) {
        let mut o = s.object("", plural, "ns", name).unwrap();
        o["metadata"]["labels"] = json!({"touched": meta_str(&o, "resourceVersion")});
        s.update_object("", plural, o, false).unwrap();
    }

    fn drain(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn starts_with_every_key_then_reconciles_only_what_changed() {
        let mut s = state(100);
        create(&mut s, "configmaps", cm("a"));
        create(&mut s, "configmaps", cm("b"));
        let (r, log) = Recorder::new(Vec::new());
        let mut rt = Runtime::new(vec![Box::new(r)]);
        assert!(rt.settle(&mut s).quiet);
        assert_eq!(drain(&log), ["ns/a", "ns/b"], "the initial list");
        assert_eq!(rt.settle(&mut s).reconciles, 0, "no events, no work");
        touch(&mut s, "configmaps", "b");
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/b"]);
        // An unwatched kind wakes nobody.
        create(
            &mut s,
            "secrets",
            json!({"metadata": {"name": "x", "namespace": "ns"}}),
        );
        rt.settle(&mut s);
        assert!(drain(&log).is_empty());
    }

    #[test]
    fn keys_are_deduplicated() {
        let mut q = WorkQueue::default();
        assert!(q.add(ObjectKey::new("ns", "a")));
        assert!(!q.add(ObjectKey::new("ns", "a")));
        assert!(q.add(ObjectKey::new("ns", "b")));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(ObjectKey::new("ns", "a")));
        assert!(q.add(ObjectKey::new("ns", "a")), "re-added once popped");

        let mut s = state(100);
        create(&mut s, "configmaps", cm("a"));
        let (r, log) = Recorder::new(Vec::new());
        let mut rt = Runtime::new(vec![Box::new(r)]);
        rt.settle(&mut s);
        drain(&log);
        touch(&mut s, "configmaps", "a");
        touch(&mut s, "configmaps", "a");
        touch(&mut s, "configmaps", "a");
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/a"], "three writes, one reconcile");
    }

    #[test]
    fn a_watched_object_maps_to_its_controller_owner() {
        let mut s = state(100);
        let a = create(&mut s, "configmaps", cm("a"));
        create(&mut s, "configmaps", cm("b"));
        let (r, log) = Recorder::new(vec![Watch::new(SECRETS, Mapper::ControllerOwner)]);
        let mut rt = Runtime::new(vec![Box::new(r)]);
        rt.settle(&mut s);
        drain(&log);
        let owner = |controller: bool| {
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "a",
                    "uid": meta_str(&a, "uid"), "controller": controller}])
        };
        create(
            &mut s,
            "secrets",
            json!({"metadata": {"name": "s", "namespace": "ns", "ownerReferences": owner(true)}}),
        );
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/a"]);
        // A non-controller reference is not followed.
        create(
            &mut s,
            "secrets",
            json!({"metadata": {"name": "t", "namespace": "ns", "ownerReferences": owner(false)}}),
        );
        rt.settle(&mut s);
        assert!(drain(&log).is_empty());
        // Dropping the reference still wakes the former owner (the old object maps too).
        let mut sec = s.object("", "secrets", "ns", "s").unwrap();
        sec["metadata"]["ownerReferences"] = json!([]);
        s.update_object("", "secrets", sec, false).unwrap();
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/a"]);
    }

    #[test]
    fn mappers_by_label_name_namespace_and_all() {
        let mut s = state(100);
        create(&mut s, "configmaps", cm("a"));
        create(&mut s, "configmaps", cm("b"));
        let obj = json!({"metadata": {"name": "x", "namespace": "ns", "labels": {"owner": "b"}}});
        let keys = |m: Mapper, o: &Value| -> Vec<String> {
            m.keys(&s, CONFIGMAPS, o)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(keys(Mapper::Label("owner"), &obj), ["ns/b"]);
        assert!(keys(Mapper::Label("other"), &obj).is_empty());
        assert_eq!(keys(Mapper::Name, &obj), ["ns/x"]);
        assert_eq!(keys(Mapper::Namespace, &obj), ["ns"]);
        assert_eq!(keys(Mapper::All, &obj), ["ns/a", "ns/b"]);
        // A cluster-scoped owner is keyed without a namespace.
        let namespaces = builtin::NAMESPACES;
        let by_name = Mapper::Name.keys(&s, namespaces, &obj);
        assert_eq!(by_name, [ObjectKey::new("", "x")]);
        let f = Mapper::Func(|_, o| {
            vec![ObjectKey::new(
                "ns",
                format!("{}-owner", meta_str(o, "name")),
            )]
        });
        assert_eq!(keys(f, &obj), ["ns/x-owner"]);
    }

    #[test]
    fn an_expired_history_falls_back_to_a_full_resync() {
        let mut s = state(3);
        create(&mut s, "configmaps", cm("a"));
        create(&mut s, "configmaps", cm("b"));
        create(&mut s, "configmaps", cm("c"));
        let (r, log) = Recorder::new(Vec::new());
        let mut rt = Runtime::new(vec![Box::new(r)]);
        rt.settle(&mut s);
        drain(&log);
        // More writes than the history holds: the cursor falls out of it.
        for _ in 0..5 {
            create(
                &mut s,
                "secrets",
                json!({"metadata": {"generateName": "s-", "namespace": "ns"}}),
            );
        }
        touch(&mut s, "configmaps", "a");
        assert!(s.events_since(s.rv - 7).is_err());
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/a", "ns/b", "ns/c"], "a relist");
        touch(&mut s, "configmaps", "c");
        rt.settle(&mut s);
        assert_eq!(drain(&log), ["ns/c"], "back to events");
    }

    #[test]
    fn a_controller_that_always_writes_is_bounded() {
        let mut s = state(10);
        create(&mut s, "configmaps", cm("a"));
        let (mut r, log) = Recorder::new(Vec::new());
        r.always_writes = true;
        let mut rt = Runtime::new(vec![Box::new(r)]);
        let settled = rt.settle(&mut s);
        assert!(!settled.quiet);
        assert_eq!(settled.rounds, MAX_ROUNDS);
        assert_eq!(drain(&log).len(), MAX_ROUNDS, "one reconcile per round");
    }

    #[test]
    fn requeue_after_and_retry_wait_for_their_time() {
        let mut s = state(100);
        create(&mut s, "configmaps", cm("a"));
        let (mut r, log) = Recorder::new(Vec::new());
        r.action = Action::RequeueAfter(Duration::from_secs(10));
        let mut rt = Runtime::new(vec![Box::new(r)]);
        let t0 = Instant::now();
        rt.settle_at(&mut s, t0);
        assert_eq!(drain(&log), ["ns/a"]);
        assert_eq!(rt.next_due(), Some(t0 + Duration::from_secs(10)));
        rt.settle_at(&mut s, t0 + Duration::from_secs(5));
        assert!(drain(&log).is_empty(), "not yet due");
        rt.settle_at(&mut s, t0 + Duration::from_secs(10));
        assert_eq!(drain(&log), ["ns/a"]);

        let mut q = WorkQueue::default();
        let k = ObjectKey::new("ns", "a");
        q.add_rate_limited(k.clone(), t0);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(5)));
        q.promote(t0 + Duration::from_millis(5));
        assert_eq!(q.pop(), Some(k.clone()));
        q.add_rate_limited(k.clone(), t0);
        assert_eq!(
            q.next_due(),
            Some(t0 + Duration::from_millis(10)),
            "backs off"
        );
        q.forget(&k);
        q.promote(t0 + Duration::from_secs(1));
        q.pop();
        q.add_rate_limited(k, t0);
        assert_eq!(
            q.next_due(),
            Some(t0 + Duration::from_millis(5)),
            "forgotten"
        );
    }
}
