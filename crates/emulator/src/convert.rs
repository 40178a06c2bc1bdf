//! Conversion between a resource's served form and its stored form, for built-in resources
//! that kube-apiserver stores once and serves under two groups. The one such resource here is
//! `events.k8s.io/v1` Event, stored as core/v1 Event (the apiserver's storage for both is
//! the `events` resource; `kubernetes/pkg/apis/events/v1/conversion.go` maps the fields).
//! Every other resource converts by rewriting `apiVersion` only (conversion strategy None).

use serde_json::{Map, Value, json};

use crate::registry::ResourceDef;

/// Field pairs (`events.k8s.io/v1`, core/v1) that carry the same value under another name.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_v1(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.plural == "events"
}

fn rename(obj: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let mut moved = Map::new();
    for (from, to) in pairs {
        if let Some(v) = o.remove(from) {
            moved.insert(to.to_string(), v);
        }
    }
    o.extend(moved);
}

/// The served form of a stored object of `def` at `version` (apiVersion and, for
/// `events.k8s.io`, the field names).
pub fn from_storage(def: &ResourceDef, version: &str, mut obj: Value) -> Value {
    if is_events_v1(def) {
        rename(
            &mut obj,
            EVENT_RENAMES.iter().map(|(v1, core)| (*core, *v1)),
        );
        // events.k8s.io/v1 requires eventTime; core events recorded the old way have only
        // first/lastTimestamp, which the v1 form shows as eventTime (MicroTime).
        if obj.get("eventTime").is_none_or(Value::is_null)
            && let Some(first) = obj.get("deprecatedFirstTimestamp").cloned()
        {
            let micro = first
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                });
            obj["eventTime"] = micro.map(Value::String).unwrap_or(first);
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(def.api_version(version)));
    }
    obj
}

/// The stored form of an object written to `def` (the storage resource's apiVersion and
/// kind; for `events.k8s.io`, core/v1 field names).
pub fn to_storage(def: &ResourceDef, mut obj: Value) -> Value {
    let (api_version, kind) = match &def.storage_alias {
        Some(_) if is_events_v1(def) => {
            rename(&mut obj, EVENT_RENAMES.iter().copied());
            ("v1".to_string(), "Event".to_string())
        }
        _ => (def.api_version(&def.storage_version), def.kind.clone()),
    };
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_v1() -> ResourceDef {
        crate::registry::builtins()
            .into_iter()
            .find(is_events_v1)
            .expect("events.k8s.io is served")
    }

    #[test]
    fn events_round_trip_between_the_two_groups() {
        let def = events_v1();
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Started container",
            "reason": "Started", "source": {"component": "kubelet"}, "count": 2,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
            "reportingComponent": "kubelet", "type": "Normal"});
        let v1 = from_storage(&def, "v1", core.clone());
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "Started container");
        assert_eq!(v1["reportingController"], "kubelet");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["eventTime"], "2026-01-01T00:00:00.000000Z");
        assert!(v1.get("involvedObject").is_none());
        let back = to_storage(&def, v1);
        assert_eq!(back["involvedObject"], core["involvedObject"]);
        assert_eq!(back["message"], core["message"]);
        assert_eq!(back["apiVersion"], "v1");
        assert_eq!(back["count"], 2);
    }
}
