//! The object store: every object of every served resource, a global resourceVersion counter,
//! a bounded history of watch events (for resuming watches and 410 Expired), and the write
//! semantics of the apiserver's generic registry (metadata, generation, optimistic
//! concurrency, finalizers, status subresource, namespaces, garbage collection).
//!
//! Everything here is synchronous and runs under one mutex: the emulator's scale (hundreds of
//! objects) makes a single lock simpler and strictly serialisable, which keeps resourceVersions
//! and watch events totally ordered like etcd revisions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::SecondsFormat;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::RequestCounts;
use crate::registry::{self, ResKey, ResourceDef};
use crate::schema::{self, FieldError};
use crate::status::{ApiError, Target};

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as stored in the history and broadcast to watchers. Objects are at the storage
/// version; watchers rewrite apiVersion.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub res: ResKey,
    pub kind: EventType,
    pub object: Value,
    /// The object before a MODIFIED change, so selector watches can synthesise ADDED/DELETED.
    pub old: Option<Value>,
}

/// `fieldValidation` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    Orphan,
    #[default]
    Background,
    Foreground,
}

/// Options of a delete (query + DeleteOptions body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// What a successful write returns: the object (at storage version) and any warnings.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Where a request points: resource, the version it was addressed at, namespace.
#[derive(Debug, Clone)]
pub struct Scope {
    pub def: Arc<ResourceDef>,
    pub version: String,
    /// Namespace from the URL ("" for cluster-scoped or all-namespaces).
    pub namespace: String,
}

impl Scope {
    fn key(&self) -> ResKey {
        self.def.storage_key()
    }

    fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        Target {
            group: &self.def.group,
            plural: &self.def.plural,
            name,
        }
    }
}

/// A hook that defaults and validates an object about to be written, at the request version,
/// before it is stored: kube-apiserver's mutating and validating plugins. The store knows
/// only this signature, so policies (Pod Security, service IPs...) live outside it and are
/// installed at start with [`State::add_admit_hook`].
pub type AdmitFn = fn(&State, &Scope, &mut Value) -> Result<(), ApiError>;

/// The shared state. Public fields are read by the HTTP layer under the lock.
pub struct State {
    pub rv: u64,
    pub resources: BTreeMap<ResKey, Arc<ResourceDef>>,
    pub objects: BTreeMap<ResKey, BTreeMap<(String, String), Value>>,
    pub history: VecDeque<Arc<Event>>,
    pub history_cap: usize,
    pub counts: RequestCounts,
    tx: broadcast::Sender<Arc<Event>>,
    /// Set when a write may have left work for the reconciler (GC, namespace cascade).
    pub dirty: bool,
    /// Run in order on every create and update; the first error rejects the write.
    admit_hooks: Vec<AdmitFn>,
    /// Whether the establishing controller marks a CRD (by name) Established; set at start.
    establishes: EstablishFn,
    /// Katib's observation logs (katib-db-manager), read and written by the Katib controllers.
    pub katib_db: crate::katib_db::KatibDb,
}

/// Decides, by CRD name, whether the apiextensions establishing controller marks a CRD
/// Established (always, unless a defect is installed with [`State::set_crd_establishes`]).
pub type EstablishFn = Box<dyn Fn(&str) -> bool + Send>;

/// Now, as the apiserver formats timestamps.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("replaced by an object above")
    };
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    let Value::Object(m) = m else {
        unreachable!("replaced by an object above")
    };
    m
}

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, f: &[String]) {
    let m = meta_mut(obj);
    if f.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(f));
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata (and status when it is a subresource): what bumps generation.
fn spec_part(obj: &Value, status_sub: bool) -> Value {
    let mut o = obj.as_object().cloned().unwrap_or_default();
    o.remove("metadata");
    o.remove("apiVersion");
    o.remove("kind");
    if status_sub {
        o.remove("status");
    }
    Value::Object(o)
}

fn random_suffix() -> String {
    // The alphabet of k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits.
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect()
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

fn name_errors(name: &str, label: bool) -> Vec<FieldError> {
    let ok = if label {
        is_label(name)
    } else {
        is_subdomain(name)
    };
    if ok {
        return Vec::new();
    }
    let msg = if label {
        DNS1123_LABEL_MSG
    } else {
        DNS1123_SUBDOMAIN_MSG
    };
    vec![FieldError {
        field: "metadata.name".into(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {name:?}: {msg}"),
    }]
}

/// path.IsValidPathSegmentName (apimachinery/pkg/api/validation/path).
fn path_segment_errors(name: &str) -> Vec<FieldError> {
    let why = match name {
        "." => Some("may not be '.'".to_string()),
        ".." => Some("may not be '..'".to_string()),
        _ => ["/", "%"]
            .iter()
            .find(|c| name.contains(**c))
            .map(|c| format!("may not contain '{c}'")),
    };
    why.map(|why| FieldError {
        field: "metadata.name".into(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {name:?}: {why}"),
    })
    .into_iter()
    .collect()
}

/// Standard base64 (the apiserver turns Secret.stringData into data with it).
fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The body of a freshly created namespace's status and spec.
fn namespace_defaults(obj: &mut Value) {
    let name = meta_str(obj, "name").to_string();
    let m = meta_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        o.insert("status".into(), json!({"phase": "Active"}));
    }
}

/// Defaulting of the built-in kinds we serve (what their REST strategies do).
fn builtin_defaults(def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.plural == "secrets" {
        let Some(o) = obj.as_object_mut() else { return };
        o.entry("type").or_insert_with(|| json!("Opaque"));
        if let Some(Value::Object(sd)) = o.remove("stringData") {
            let data = o.entry("data").or_insert_with(|| json!({}));
            if let Some(d) = data.as_object_mut() {
                for (k, v) in sd {
                    let s = v.as_str().unwrap_or_default();
                    d.insert(k, json!(base64(s.as_bytes())));
                }
            }
        }
    }
}

/// Status given to CRDs the emulator accepts; `established` false models a CRD stuck installing.
fn crd_status(crd: &Value, def: &ResourceDef, established: bool) -> Value {
    let ts = now();
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if let Some(n) = names.as_object_mut() {
        n.entry("singular").or_insert_with(|| json!(def.singular));
        n.entry("listKind").or_insert_with(|| json!(def.list_kind));
    }
    let est = if established {
        json!({"type": "Established", "status": "True", "lastTransitionTime": ts,
               "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"})
    } else {
        json!({"type": "Established", "status": "False", "lastTransitionTime": ts,
               "reason": "Installing", "message": "the initial names have been accepted"})
    };
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": ts,
             "reason": "NoConflicts", "message": "no conflicts found"},
            est
        ],
        "acceptedNames": names,
        "storedVersions": [def.storage_version],
    })
}

impl State {
    /// A store serving the built-in kinds, with a history of `history_cap` events.
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = State {
            rv: 1,
            resources: BTreeMap::new(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            counts: RequestCounts::new(),
            tx,
            dirty: false,
            admit_hooks: Vec::new(),
            establishes: Box::new(|_| true),
            katib_db: crate::katib_db::KatibDb::default(),
        };
        for def in registry::builtins() {
            s.resources
                .insert((def.group.clone(), def.plural.clone()), Arc::new(def));
        }
        s
    }

    /// Runs `hook` on every later create and update, after the hooks added before it.
    pub fn add_admit_hook(&mut self, hook: AdmitFn) {
        self.admit_hooks.push(hook);
    }

    /// Installs what decides whether a CRD becomes Established (a defect's hook).
    pub fn set_crd_establishes(&mut self, establishes: EstablishFn) {
        self.establishes = establishes;
    }

    /// A new receiver of every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// The served resource `plural` in `group` at `version`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let def = self
            .resources
            .get(&(group.to_string(), plural.to_string()))?;
        def.version(version)?;
        Some(def.clone())
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(&mut self, res: &ResKey, kind: EventType, object: Value, old: Option<Value>) {
        let ev = Arc::new(Event {
            rv: self.rv,
            res: res.clone(),
            kind,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            self.history.pop_front();
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
        self.dirty = true;
    }

    /// Stores `obj` (new or replacing `old`) with a fresh resourceVersion and emits the event.
    fn put(&mut self, res: &ResKey, mut obj: Value, old: Option<Value>) -> Value {
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let key = (
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        self.objects
            .entry(res.clone())
            .or_default()
            .insert(key, obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(res, kind, obj.clone(), old);
        obj
    }

    /// Removes an object for good, emitting DELETED with the deletion's resourceVersion.
    fn remove(&mut self, res: &ResKey, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(res)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.emit(res, EventType::Deleted, obj.clone(), None);
        if res.0 == "apiextensions.k8s.io" && res.1 == "customresourcedefinitions" {
            self.uninstall_crd(&obj);
        }
        Some(obj)
    }

    /// The stored object, if any.
    pub fn get_obj(&self, res: &ResKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(res)?
            .get(&(ns.to_string(), name.to_string()))
    }

    fn namespace_obj(&self, ns: &str) -> Option<&Value> {
        self.get_obj(&(String::new(), "namespaces".into()), "", ns)
    }

    /// The current object, or 404.
    pub fn get(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        self.get_obj(&scope.key(), &scope.namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(scope.target(name)))
    }

    /// Objects of the scope's resource, in key order (namespace, name).
    pub fn list_all(&self, scope: &Scope) -> Vec<Value> {
        let Some(objs) = self.objects.get(&scope.key()) else {
            return Vec::new();
        };
        objs.iter()
            .filter(|((ns, _), _)| scope.namespace.is_empty() || *ns == scope.namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Validates a custom resource against its version's schema (pruning unknown fields).
    /// The object is at the request version.
    fn admit(
        &self,
        scope: &Scope,
        obj: &mut Value,
        fv: FieldValidation,
    ) -> Result<Vec<String>, ApiError> {
        let name = meta_str(obj, "name").to_string();
        // RBAC objects only need names that are valid path segments (ValidateRBACName), so
        // `system:basic-user` and `namespaceAdmin` are legal.
        let mut errors = if scope.def.group == "rbac.authorization.k8s.io" {
            path_segment_errors(&name)
        } else {
            name_errors(&name, scope.def.name_is_label)
        };
        let mut warnings = Vec::new();
        let schema = scope
            .def
            .version(&scope.version)
            .and_then(|v| v.schema.clone());
        if let Some(schema) = schema {
            let outcome = schema::admit(&schema, obj);
            if !outcome.unknown_fields.is_empty() {
                match fv {
                    FieldValidation::Strict => {
                        let list: Vec<String> = outcome
                            .unknown_fields
                            .iter()
                            .map(|f| format!("unknown field {f:?}"))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        for f in &outcome.unknown_fields {
                            warnings.push(format!("unknown field {f:?}"));
                        }
                    }
                    FieldValidation::Ignore => {}
                }
            }
            errors.extend(outcome.errors);
        }
        if scope.def.crd.is_none() && scope.def.plural == "customresourcedefinitions" {
            errors.extend(crd_errors(obj));
        }
        // Hooks see the object as schema defaulting left it, and their verdict comes before the
        // field errors collected above.
        for hook in &self.admit_hooks {
            hook(self, scope, obj)?;
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(
                &scope.def.kind,
                &scope.def.group,
                &name,
                &errors,
            ));
        }
        Ok(warnings)
    }

    /// Converts a written object to its stored form ([`crate::convert::to_storage`]).
    fn to_storage(scope: &Scope, obj: &mut Value) {
        *obj = crate::convert::to_storage(&scope.def, std::mem::take(obj));
    }

    /// Checks the namespace a namespaced create goes into.
    fn check_namespace(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        if !scope.def.namespaced {
            return Ok(());
        }
        let ns = &scope.namespace;
        let Some(nso) = self.namespace_obj(ns) else {
            return Err(ApiError::not_found(Target {
                group: "",
                plural: "namespaces",
                name: ns,
            }));
        };
        if nso.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
            return Err(ApiError::forbidden(
                scope.target(name),
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }

    /// POST: creates an object.
    pub fn create(
        &mut self,
        scope: &Scope,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        check_type(scope, &obj)?;
        {
            let m = meta_mut(&mut obj);
            if scope.def.namespaced {
                match m.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && ns != scope.namespace => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        m.insert("namespace".into(), json!(scope.namespace));
                    }
                }
            } else {
                m.remove("namespace");
            }
            let name = m.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                let gen_name = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if gen_name.is_empty() {
                    let err = FieldError {
                        field: "metadata.name".into(),
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                    };
                    return Err(ApiError::invalid(
                        &scope.def.kind,
                        &scope.def.group,
                        "",
                        &[err],
                    ));
                }
                m.insert(
                    "name".into(),
                    json!(format!("{gen_name}{}", random_suffix())),
                );
            }
            // Server-owned fields a client cannot set on create.
            for f in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                m.remove(f);
            }
        }
        let name = meta_str(&obj, "name").to_string();
        self.check_namespace(scope, &name)?;
        let status_sub = scope.def.has_status(&scope.version);
        if status_sub && let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        builtin_defaults(&scope.def, &mut obj);
        let warnings = self.admit(scope, &mut obj, opts.field_validation)?;
        if self
            .get_obj(&scope.key(), &scope.namespace, &name)
            .is_some()
        {
            return Err(ApiError::already_exists(scope.target(&name)));
        }
        {
            let generation = scope.def.generation;
            let m = meta_mut(&mut obj);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            if generation {
                m.insert("generation".into(), json!(1));
            }
        }
        if scope.def.group.is_empty() && scope.def.plural == "namespaces" {
            namespace_defaults(&mut obj);
        }
        let is_crd = scope.def.group == "apiextensions.k8s.io"
            && scope.def.plural == "customresourcedefinitions";
        if is_crd {
            self.prepare_crd(&mut obj)?;
        }
        Self::to_storage(scope, &mut obj);
        if opts.dry_run {
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(""));
            return Ok(Written {
                object: obj,
                warnings,
            });
        }
        let stored = self.put(&scope.key(), obj, None);
        if is_crd {
            self.install_crd(&stored);
        }
        Ok(Written {
            object: stored,
            warnings,
        })
    }

    /// Shared tail of update and patch: `new` is the full desired object at the request version.
    fn replace(
        &mut self,
        scope: &Scope,
        name: &str,
        new: Value,
        status_write: bool,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let old = self
            .get_obj(&scope.key(), &scope.namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(scope.target(name)))?;
        check_update_body(scope, name, &new, &old)?;
        let status_sub = scope.def.has_status(&scope.version);
        let mut new = carry_status(new, &old, status_write, status_sub);
        carry_system_metadata(&mut new, &old, name);
        if is_namespace(scope) {
            namespace_update(&mut new, &old, name);
        }
        check_added_finalizers(scope, name, &old, &new)?;
        builtin_defaults(&scope.def, &mut new);
        let warnings = self.admit(scope, &mut new, opts.field_validation)?;
        let is_crd = scope.def.group == "apiextensions.k8s.io"
            && scope.def.plural == "customresourcedefinitions";
        if is_crd && !status_write {
            self.prepare_crd(&mut new)?;
        }
        Self::to_storage(scope, &mut new);
        if !status_write {
            bump_generation(scope, &mut new, &old, status_sub);
        }
        let object = self.commit_update(scope, name, new, old, is_crd, opts.dry_run);
        Ok(Written { object, warnings })
    }

    /// Stores an admitted update as etcd3's GuaranteedUpdate does (a no-op write keeps the
    /// resourceVersion and emits nothing) and completes the deletion of an object whose last
    /// finalizer it removed. Returns the object to answer with.
    fn commit_update(
        &mut self,
        scope: &Scope,
        name: &str,
        mut new: Value,
        old: Value,
        is_crd: bool,
        dry_run: bool,
    ) -> Value {
        let key = scope.key();
        let mut cmp_old = old.clone();
        meta_mut(&mut cmp_old).remove("resourceVersion");
        if new == cmp_old {
            return old;
        }
        if dry_run {
            meta_mut(&mut new).insert(
                "resourceVersion".into(),
                json!(meta_str(&old, "resourceVersion")),
            );
            return new;
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        if deleting && finalizers(&new).is_empty() && !is_namespace(scope) {
            // The last finalizer is gone: the deletion completes.
            let stored = self.put(&key, new, Some(old));
            let gone = self.remove(&key, &scope.namespace, name);
            return gone.unwrap_or(stored);
        }
        let stored = self.put(&key, new, Some(old));
        if is_crd {
            self.install_crd(&stored);
        }
        stored
    }

    /// PUT (main resource or /status).
    pub fn update(
        &mut self,
        scope: &Scope,
        name: &str,
        new: Value,
        status_write: bool,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        if scope.def.crd.is_some()
            && meta_str(&new, "resourceVersion").is_empty()
            && self.get_obj(&scope.key(), &scope.namespace, name).is_some()
        {
            // Custom resources do not allow unconditional updates (customResourceStrategy).
            let err = FieldError {
                field: "metadata.resourceVersion".into(),
                reason: "FieldValueInvalid",
                message: "Invalid value: 0x0: must be specified for an update".into(),
            };
            return Err(ApiError::invalid(
                &scope.def.kind,
                &scope.def.group,
                name,
                &[err],
            ));
        }
        self.replace(scope, name, new, status_write, opts)
    }

    /// PUT /api/v1/namespaces/{name}/finalize: only `spec.finalizers` changes.
    pub fn finalize_namespace(
        &mut self,
        scope: &Scope,
        name: &str,
        body: &Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let key = scope.key();
        let old = self
            .get_obj(&key, "", name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(scope.target(name)))?;
        let mut new = old.clone();
        let fins = body
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        if let Some(o) = new.as_object_mut() {
            o.insert("spec".into(), json!({"finalizers": fins}));
        }
        if opts.dry_run || new == old {
            return Ok(Written {
                object: new,
                warnings: Vec::new(),
            });
        }
        Ok(Written {
            object: self.put(&key, new, Some(old)),
            warnings: Vec::new(),
        })
    }

    /// PATCH. `kind` is the request content type's patch kind.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        scope: &Scope,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        status_write: bool,
        field_manager: Option<&str>,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let current = self
            .get_obj(&scope.key(), &scope.namespace, name)
            .cloned()
            .map(|o| crate::convert::from_storage(&scope.def, &scope.version, o));
        match kind {
            PatchKind::Apply => {
                if field_manager.is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PATCH /apply requires fieldManager: fieldManager is required for apply requests",
                    ));
                }
                let text = std::str::from_utf8(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                let applied: Value = serde_saphyr::from_str(text)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                if !applied.is_object() {
                    return Err(ApiError::bad_request("error decoding YAML: not an object"));
                }
                match current {
                    None if status_write => Err(ApiError::not_found(scope.target(name))),
                    None => {
                        let mut obj = applied;
                        meta_mut(&mut obj).insert("name".into(), json!(name));
                        self.create(scope, obj, opts)
                    }
                    Some(mut cur) => {
                        json_patch::merge(&mut cur, &applied);
                        self.replace(scope, name, cur, status_write, opts)
                    }
                }
            }
            PatchKind::Merge | PatchKind::StrategicMerge => {
                let mut cur = current.ok_or_else(|| ApiError::not_found(scope.target(name)))?;
                let p: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                if !p.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                if kind == PatchKind::StrategicMerge && scope.def.crd.is_none() {
                    // Built-in kinds have Go struct tags: merge lists by their keys.
                    crate::strategic::merge(&mut cur, &p);
                } else {
                    json_patch::merge(&mut cur, &p);
                }
                self.replace(scope, name, cur, status_write, opts)
            }
            PatchKind::Json => {
                let mut cur = current.ok_or_else(|| ApiError::not_found(scope.target(name)))?;
                let p: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut cur, &p.0).map_err(|e| ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ),
                    details: None,
                })?;
                self.replace(scope, name, cur, status_write, opts)
            }
        }
    }

    /// DELETE of one object. Returns the object as the apiserver does (still present when
    /// finalizers hold it).
    pub fn delete(
        &mut self,
        scope: &Scope,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Value, ApiError> {
        let key = scope.key();
        let obj = self
            .get_obj(&key, &scope.namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(scope.target(name)))?;
        if let Some(uid) = &opts.precondition_uid
            && uid != meta_str(&obj, "uid")
        {
            return Err(ApiError::conflict(
                scope.target(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&obj, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != meta_str(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict(
                scope.target(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&obj, "resourceVersion")
                ),
            ));
        }
        let mut marked = obj.clone();
        if marked.pointer("/metadata/deletionTimestamp").is_none() {
            let m = meta_mut(&mut marked);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        if is_namespace(scope) {
            if let Some(o) = marked.as_object_mut() {
                let st = o.entry("status").or_insert_with(|| json!({}));
                if let Some(s) = st.as_object_mut() {
                    s.insert("phase".into(), json!("Terminating"));
                }
            }
            if opts.dry_run || marked == obj {
                return Ok(marked);
            }
            // The namespace controller (the reconciler) empties and then removes it.
            return Ok(self.put(&key, marked, Some(obj)));
        }
        let policy = opts.propagation.unwrap_or_default();
        let mut fins = finalizers(&obj);
        if policy == Propagation::Foreground && !fins.iter().any(|f| f == "foregroundDeletion") {
            fins.push("foregroundDeletion".into());
        }
        if opts.dry_run {
            if !fins.is_empty() {
                set_finalizers(&mut marked, &fins);
                return Ok(marked);
            }
            return Ok(obj);
        }
        if policy == Propagation::Orphan {
            self.orphan_dependents(meta_str(&obj, "uid"));
        }
        if !fins.is_empty() {
            set_finalizers(&mut marked, &fins);
            if marked == obj {
                return Ok(obj);
            }
            return Ok(self.put(&key, marked, Some(obj)));
        }
        Ok(self.remove(&key, &scope.namespace, name).unwrap_or(obj))
    }

    fn orphan_dependents(&mut self, uid: &str) {
        let mut changes = Vec::new();
        for (res, objs) in &self.objects {
            for o in objs.values() {
                if owner_uids(o).iter().any(|u| u == uid) {
                    let mut n = o.clone();
                    if let Some(refs) = n
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                        if refs.is_empty() {
                            meta_mut(&mut n).remove("ownerReferences");
                        }
                    }
                    changes.push((res.clone(), n, o.clone()));
                }
            }
        }
        for (res, n, o) in changes {
            self.put(&res, n, Some(o));
        }
    }

    /// Marks a CRD's status as the establishing controller would, or rejects a bad CRD.
    fn prepare_crd(&self, obj: &mut Value) -> Result<(), ApiError> {
        let def = registry::from_crd(obj).map_err(|e| {
            ApiError::invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                meta_str(obj, "name"),
                &[FieldError {
                    field: String::new(),
                    reason: "FieldValueInvalid",
                    message: e,
                }],
            )
        })?;
        let name = meta_str(obj, "name").to_string();
        let established = (self.establishes)(&name);
        let status = crd_status(obj, &def, established);
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), status);
        }
        Ok(())
    }

    /// Starts (or updates) serving the resource a stored CRD defines, if it is Established.
    fn install_crd(&mut self, crd: &Value) {
        let Ok(def) = registry::from_crd(crd) else {
            return;
        };
        let established = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Established")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        let key = (def.group.clone(), def.plural.clone());
        if established && !def.versions.is_empty() {
            self.resources.insert(key, Arc::new(def));
        } else {
            self.resources.remove(&key);
        }
    }

    /// Stops serving a deleted CRD's resource and deletes its objects.
    fn uninstall_crd(&mut self, crd: &Value) {
        let Ok(def) = registry::from_crd(crd) else {
            return;
        };
        let key = (def.group.clone(), def.plural.clone());
        self.resources.remove(&key);
        let keys: Vec<(String, String)> = self
            .objects
            .get(&key)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.remove(&key, &ns, &name);
        }
        self.objects.remove(&key);
    }

    /// Events after `rv` (for resuming a watch), or 410 when the history no longer has them.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, ApiError> {
        // The oldest event still held; resuming from just before it is fine (watch_cache.go).
        let oldest = self.history.front().map_or(self.rv + 1, |e| e.rv);
        if rv + 1 < oldest {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                oldest - 1
            )));
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// One pass of the background controllers kube-controller-manager runs for the store:
    /// namespace cascade, default ServiceAccounts, garbage collection, foreground deletion.
    /// Returns whether anything changed (run until it returns false).
    pub fn reconcile(&mut self) -> bool {
        let mut changed = self.sync_terminating_namespaces();
        changed |= self.sync_service_accounts();
        changed |= self.collect_garbage();
        changed
    }

    /// Names of the namespaces in `phase`.
    fn namespaces_in_phase(&self, phase: &str) -> Vec<String> {
        self.objects
            .get(&namespace_key())
            .map(|m| {
                m.values()
                    .filter(|n| n.pointer("/status/phase").and_then(Value::as_str) == Some(phase))
                    .map(|n| meta_str(n, "name").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The scope of `res` in `namespace` at the storage version, if still served.
    fn storage_scope(&self, res: &ResKey, namespace: String) -> Option<Scope> {
        let def = self.resources.get(res).cloned()?;
        Some(Scope {
            version: def.storage_version.clone(),
            def,
            namespace,
        })
    }

    /// The namespace controller: deletes the content of Terminating namespaces, then, once
    /// empty and without finalizers, the namespace itself.
    fn sync_terminating_namespaces(&mut self) -> bool {
        let mut changed = false;
        let ns_key = namespace_key();
        for ns in self.namespaces_in_phase("Terminating") {
            let mut remaining = 0usize;
            let mut to_delete = Vec::new();
            for (res, objs) in &self.objects {
                for ((ons, name), o) in objs {
                    if *ons == ns {
                        remaining += 1;
                        if o.pointer("/metadata/deletionTimestamp").is_none() {
                            to_delete.push((res.clone(), name.clone()));
                        }
                    }
                }
            }
            for (res, name) in to_delete {
                if let Some(scope) = self.storage_scope(&res, ns.clone()) {
                    let _ = self.delete(&scope, &name, &DeleteOpts::default());
                    changed = true;
                }
            }
            if remaining == 0
                && let Some(nso) = self.get_obj(&ns_key, "", &ns).cloned()
            {
                let mut fin = nso.clone();
                if let Some(o) = fin.as_object_mut() {
                    o.insert("spec".into(), json!({}));
                }
                if finalizers(&fin).is_empty() {
                    self.put(&ns_key, fin, Some(nso));
                    self.remove(&ns_key, "", &ns);
                    changed = true;
                }
            }
        }
        changed
    }

    /// The serviceaccount controller: every Active namespace has a "default" ServiceAccount.
    fn sync_service_accounts(&mut self) -> bool {
        let mut changed = false;
        let sa_key: ResKey = (String::new(), "serviceaccounts".into());
        for ns in self.namespaces_in_phase("Active") {
            if self.get_obj(&sa_key, &ns, "default").is_none()
                && let Some(scope) = self.storage_scope(&sa_key, ns.clone())
            {
                let sa = json!({"metadata": {"name": "default", "namespace": ns}});
                if self.create(&scope, sa, &WriteOpts::default()).is_ok() {
                    changed = true;
                }
            }
        }
        changed
    }

    /// The garbage collector's view of ownership, taken before it acts.
    fn owner_graph(&self) -> OwnerGraph {
        let mut graph = OwnerGraph::default();
        for objs in self.objects.values() {
            for o in objs.values() {
                let fg = o.pointer("/metadata/deletionTimestamp").is_some()
                    && finalizers(o).iter().any(|f| f == "foregroundDeletion");
                graph.live.insert(meta_str(o, "uid").to_string(), fg);
            }
        }
        for (res, objs) in &self.objects {
            for ((ns, name), o) in objs {
                let owners = owner_uids(o);
                if owners.is_empty() {
                    continue;
                }
                for u in &owners {
                    graph.has_dependents.insert(u.clone());
                }
                if o.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let existing: Vec<&String> = owners
                    .iter()
                    .filter(|u| graph.live.contains_key(*u))
                    .collect();
                let fg_owner = existing.iter().any(|u| graph.live.get(*u) == Some(&true));
                if existing.is_empty() || fg_owner {
                    graph.orphans.push((res.clone(), ns.clone(), name.clone()));
                } else if existing.len() < owners.len() {
                    graph.dangling.push((res.clone(), o.clone()));
                }
            }
        }
        graph
    }

    /// Garbage collection by ownerReferences: deletes dependents whose owners are all gone (or
    /// being deleted in the foreground), drops references to owners that are gone, then
    /// completes foreground deletions with no dependents left.
    fn collect_garbage(&mut self) -> bool {
        let mut changed = false;
        let graph = self.owner_graph();
        for (res, ns, name) in &graph.orphans {
            if let Some(scope) = self.storage_scope(res, ns.clone()) {
                let _ = self.delete(&scope, name, &DeleteOpts::default());
                changed = true;
            }
        }
        for (res, o) in &graph.dangling {
            let mut n = o.clone();
            if let Some(refs) = n
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| {
                    r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| graph.live.contains_key(u))
                });
            }
            self.put(res, n, Some(o.clone()));
            changed = true;
        }
        changed |= self.finish_foreground_deletions(&graph);
        changed
    }

    /// Foreground deletion completes when no dependents are left (as of `graph`): the
    /// `foregroundDeletion` finalizer goes, and with it the object if it was the last.
    fn finish_foreground_deletions(&mut self, graph: &OwnerGraph) -> bool {
        let mut finish = Vec::new();
        for (res, objs) in &self.objects {
            for ((ns, name), o) in objs {
                if graph.live.get(meta_str(o, "uid")) == Some(&true)
                    && !graph.has_dependents.contains(meta_str(o, "uid"))
                {
                    finish.push((res.clone(), ns.clone(), name.clone(), o.clone()));
                }
            }
        }
        let changed = !finish.is_empty();
        for (res, ns, name, o) in finish {
            let mut n = o.clone();
            let fins: Vec<String> = finalizers(&o)
                .into_iter()
                .filter(|f| f != "foregroundDeletion")
                .collect();
            set_finalizers(&mut n, &fins);
            self.put(&res, n, Some(o));
            if fins.is_empty() {
                self.remove(&res, &ns, &name);
            }
        }
        changed
    }

    /// The scope of `(group, plural)` in `namespace` ("" for cluster-scoped), at the storage
    /// version. For controllers, which address resources by name rather than by URL.
    pub fn scope_for(&self, group: &str, plural: &str, namespace: &str) -> Option<Scope> {
        let def = self
            .resources
            .get(&(group.to_string(), plural.to_string()))?
            .clone();
        Some(Scope {
            version: def.storage_version.clone(),
            namespace: if def.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            def,
        })
    }

    /// Every stored object of `(group, plural)` (all namespaces, storage version, key order).
    pub fn objects_of(&self, group: &str, plural: &str) -> Vec<Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One stored object, if present.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.get_obj(&(group.to_string(), plural.to_string()), namespace, name)
            .cloned()
    }

    fn controller_scope(&self, group: &str, plural: &str, obj: &Value) -> Result<Scope, ApiError> {
        self.scope_for(group, plural, meta_str(obj, "namespace"))
            .ok_or_else(ApiError::no_route)
    }

    /// Creates an object as a controller would through the API (namespace from metadata).
    pub fn create_object(
        &mut self,
        group: &str,
        plural: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        let scope = self.controller_scope(group, plural, &obj)?;
        self.create(&scope, obj, &WriteOpts::default())
            .map(|w| w.object)
    }

    /// Replaces an object (or, with `status`, its status subresource) as a controller would.
    /// A stale resourceVersion gets a Conflict, as through the API.
    pub fn update_object(
        &mut self,
        group: &str,
        plural: &str,
        obj: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let scope = self.controller_scope(group, plural, &obj)?;
        let name = meta_str(&obj, "name").to_string();
        self.update(&scope, &name, obj, status, &WriteOpts::default())
            .map(|w| w.object)
    }

    /// Deletes an object (background propagation) as a controller would.
    pub fn delete_object(
        &mut self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let scope = self
            .scope_for(group, plural, namespace)
            .ok_or_else(ApiError::no_route)?;
        self.delete(&scope, name, &DeleteOpts::default())
    }

    /// Creates an object at start-up (system namespaces, fixture CRDs) as if through the API.
    pub fn bootstrap(&mut self, group: &str, plural: &str, obj: Value) -> Result<(), ApiError> {
        let def = self
            .resources
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        let namespace = if def.namespaced {
            meta_str(&obj, "namespace").to_string()
        } else {
            String::new()
        };
        let scope = Scope {
            version: def.storage_version.clone(),
            def,
            namespace,
        };
        self.create(&scope, obj, &WriteOpts::default()).map(|_| ())
    }
}

/// The checks an update body must pass before anything is carried over: it is an object of
/// the resource's type, names the object of the URL, and is not stale.
fn check_update_body(scope: &Scope, name: &str, new: &Value, old: &Value) -> Result<(), ApiError> {
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format",
        ));
    }
    check_type(scope, new)?;
    let body_name = meta_str(new, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if scope.def.namespaced {
        let ns = meta_str(new, "namespace");
        if !ns.is_empty() && ns != scope.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let want_rv = meta_str(new, "resourceVersion");
    if !want_rv.is_empty() && want_rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::conflict(scope.target(name), ApiError::MODIFIED));
    }
    Ok(())
}

/// The status half of the strategies' PrepareForUpdate: a /status write changes status (and
/// nothing else) of the current object; with a status subresource, a main-resource write
/// keeps the stored status.
fn carry_status(new: Value, old: &Value, status_write: bool, status_sub: bool) -> Value {
    if status_write {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let Some(o) = merged.as_object_mut() {
            match status {
                Some(s) => o.insert("status".into(), s),
                None => o.remove("status"),
            };
        }
        return merged;
    }
    let mut new = new;
    if status_sub && let Some(o) = new.as_object_mut() {
        match old.get("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.remove("status"),
        };
    }
    new
}

/// Server-owned metadata is carried over from the stored object (rest.BeforeUpdate).
fn carry_system_metadata(new: &mut Value, old: &Value, name: &str) {
    let om = meta(old).cloned().unwrap_or_default();
    let m = meta_mut(new);
    m.insert("name".into(), json!(name));
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
    ] {
        match om.get(f) {
            Some(v) => m.insert(f.into(), v.clone()),
            None => m.remove(f),
        };
    }
    m.remove("resourceVersion");
}

/// The namespace strategy's PrepareForUpdate: spec.finalizers is only changed through
/// /finalize, status.phase by the server, and the name label is kept.
fn namespace_update(new: &mut Value, old: &Value, name: &str) {
    if let Some(o) = new.as_object_mut() {
        if let Some(s) = old.get("spec") {
            o.insert("spec".into(), s.clone());
        }
        if let Some(p) = old.pointer("/status/phase") {
            o.insert("status".into(), json!({"phase": p}));
        }
    }
    if let Some(l) = meta_mut(new)
        .entry("labels")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

/// ValidateObjectMetaUpdate: an object being deleted may lose finalizers but not gain any.
fn check_added_finalizers(
    scope: &Scope,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if old.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let before: BTreeSet<String> = finalizers(old).into_iter().collect();
    let Some(added) = finalizers(new).into_iter().find(|f| !before.contains(f)) else {
        return Ok(());
    };
    let err = FieldError {
        field: "metadata.finalizers".into(),
        reason: "FieldValueForbidden",
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{added:?}}}"
        ),
    };
    Err(ApiError::invalid(
        &scope.def.kind,
        &scope.def.group,
        name,
        &[err],
    ))
}

/// metadata.generation counts changes of everything but metadata (and status, when it is a
/// subresource).
fn bump_generation(scope: &Scope, new: &mut Value, old: &Value, status_sub: bool) {
    if scope.def.generation && spec_part(new, status_sub) != spec_part(old, status_sub) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(new).insert("generation".into(), json!(g + 1));
    }
}

fn namespace_key() -> ResKey {
    (String::new(), "namespaces".into())
}

/// Ownership as the garbage collector sees it at the start of a pass.
#[derive(Default)]
struct OwnerGraph {
    /// Every object's uid, and whether it is being deleted in the foreground.
    live: BTreeMap<String, bool>,
    /// Uids some object names as its owner.
    has_dependents: BTreeSet<String>,
    /// Dependents to delete: every owner is gone, or one is being deleted in the foreground.
    orphans: Vec<(ResKey, String, String)>,
    /// Dependents some of whose owners are gone: their references to those are dropped.
    dangling: Vec<(ResKey, Value)>,
}

fn is_namespace(scope: &Scope) -> bool {
    scope.def.group.is_empty() && scope.def.plural == "namespaces"
}

/// Rejects a body whose apiVersion/kind name another type (the decoder does this).
fn check_type(scope: &Scope, obj: &Value) -> Result<(), ApiError> {
    let want_av = scope.def.api_version(&scope.version);
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
        && av != want_av
        && av != scope.def.api_version(&scope.def.storage_version)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want_av})"
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != scope.def.kind
    {
        return Err(ApiError::bad_request(format!(
            "{k} in version {:?} cannot be handled as a {}: the kind in the data does not match the expected kind",
            scope.version, scope.def.kind
        )));
    }
    Ok(())
}

/// The few CRD rules worth enforcing (the name must be `<plural>.<group>`).
fn crd_errors(obj: &Value) -> Vec<FieldError> {
    let name = meta_str(obj, "name");
    let plural = obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != format!("{plural}.{group}") {
        return vec![FieldError {
            field: "metadata.name".into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        }];
    }
    Vec::new()
}

/// Patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    /// Strategic merge for built-in kinds ([`crate::strategic`]); a merge patch for custom
    /// resources.
    StrategicMerge,
    /// Server-side apply, simplified to create-or-merge.
    Apply,
}

impl PatchKind {
    /// From a Content-Type header.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn names() {
        assert!(is_subdomain("a.b-c"));
        assert!(!is_subdomain("Bad"));
        assert!(!is_label("a.b"));
    }
}
