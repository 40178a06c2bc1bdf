//! Recording core/v1 Events, as client-go's `record.EventRecorder` does for the kubelet and the
//! controllers: one Event per (source, involved object, type, reason, message), whose `count`
//! and `lastTimestamp` grow when the same thing happens again (client-go's EventCorrelator,
//! `tools/record/events_cache.go`, aggregates the same way). Events are evidence, so a failure
//! to record one is logged and never fails the caller's write.

use serde_json::{Value, json};

use crate::store::{State, meta_str, now};

/// Event types (`type`): `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What to record: who reports it (`source.component`, e.g. `kubelet`,
/// `deployment-controller`), about which object, and what happened.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The reporting component, e.g. `kubelet`, `replicaset-controller`, `job-controller`.
    pub component: &'a str,
    /// The reporting host (`source.host`), e.g. the node name for the kubelet.
    pub host: &'a str,
    /// The object the event is about (a stored object, with apiVersion, kind and metadata).
    pub regarding: &'a Value,
    /// `involvedObject.fieldPath`, e.g. `spec.containers{main}` for container events.
    pub field_path: Option<String>,
    pub type_: EventType,
    /// The CamelCase reason, e.g. `Scheduled`, `BackOff`, `SuccessfulCreate`.
    pub reason: &'a str,
    pub message: String,
}

impl<'a> Record<'a> {
    /// A Normal event about `regarding` from `component`.
    pub fn normal(
        component: &'a str,
        regarding: &'a Value,
        reason: &'a str,
        message: impl Into<String>,
    ) -> Self {
        Record {
            component,
            host: "",
            regarding,
            field_path: None,
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }

    /// A Warning event about `regarding` from `component`.
    pub fn warning(
        component: &'a str,
        regarding: &'a Value,
        reason: &'a str,
        message: impl Into<String>,
    ) -> Self {
        Record {
            type_: EventType::Warning,
            ..Record::normal(component, regarding, reason, message)
        }
    }

    /// The same event about a field of the object (e.g. `spec.containers{main}`).
    pub fn at(mut self, field_path: impl Into<String>) -> Self {
        self.field_path = Some(field_path.into());
        self
    }

    /// The same event reported from `host`.
    pub fn on_host(mut self, host: &'a str) -> Self {
        self.host = host;
        self
    }
}

/// The `involvedObject` reference of an event about `obj`.
fn involved(obj: &Value, field_path: Option<&str>) -> Value {
    let mut r = json!({
        "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
        "name": meta_str(obj, "name"),
        "uid": meta_str(obj, "uid"),
        "resourceVersion": meta_str(obj, "resourceVersion"),
    });
    let ns = meta_str(obj, "namespace");
    if !ns.is_empty() {
        r["namespace"] = json!(ns);
    }
    if let Some(fp) = field_path {
        r["fieldPath"] = json!(fp);
    }
    r
}

/// Records `rec`: a new Event, or one more occurrence of the same one (count + 1).
pub fn record(state: &mut State, rec: Record<'_>) {
    let ns = match meta_str(rec.regarding, "namespace") {
        // Events about cluster-scoped objects live in `default`, as client-go records them.
        "" => "default".to_string(),
        ns => ns.to_string(),
    };
    let target = involved(rec.regarding, rec.field_path.as_deref());
    let same = |e: &&Value| {
        e.pointer("/involvedObject/uid") == target.get("uid")
            && e.pointer("/involvedObject/fieldPath") == target.get("fieldPath")
            && e.pointer("/source/component").and_then(Value::as_str) == Some(rec.component)
            && e.get("type").and_then(Value::as_str) == Some(rec.type_.as_str())
            && e.get("reason").and_then(Value::as_str) == Some(rec.reason)
            && e.get("message").and_then(Value::as_str) == Some(rec.message.as_str())
    };
    let ts = now();
    let existing = state
        .objects
        .get(&(String::new(), "events".to_string()))
        .and_then(|m| {
            m.range((ns.clone(), String::new())..)
                .take_while(|((o_ns, _), _)| *o_ns == ns)
                .map(|(_, o)| o)
                .find(same)
                .cloned()
        });
    let result = match existing {
        Some(mut e) => {
            let count = e.get("count").and_then(Value::as_i64).unwrap_or(1);
            e["count"] = json!(count + 1);
            e["lastTimestamp"] = json!(ts);
            state.update_object("", "events", e, false).map(drop)
        }
        None => {
            let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
            let mut source = json!({"component": rec.component});
            if !rec.host.is_empty() {
                source["host"] = json!(rec.host);
            }
            let ev = json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": format!("{}.{:x}", meta_str(rec.regarding, "name"), nanos),
                    "namespace": ns,
                },
                "involvedObject": target,
                "reason": rec.reason,
                "message": rec.message,
                "source": source,
                "firstTimestamp": ts,
                "lastTimestamp": ts,
                "count": 1,
                "type": rec.type_.as_str(),
                "eventTime": null,
                "reportingComponent": rec.component,
                "reportingInstance": rec.host,
            });
            state.create_object("", "events", ev).map(drop)
        }
    };
    if let Err(e) = result {
        tracing::debug!(reason = rec.reason, error = %e.message, "event not recorded");
    }
}
