//! Status and conditions as every controller's status update handles them: the status taken
//! from the stored object, rebuilt by the reconcile, and written through `/status` only when
//! it changed; conditions looked up by type and set with lastTransitionTime semantics.

use serde_json::{Map, Value, json};

use crate::runtime::Kind;
use crate::store::{State, meta_str, now};

/// An object's status as a reconcile rebuilds it: its fields, and its conditions apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// Every status field (a stale `conditions` among them is replaced on write).
    pub fields: Map<String, Value>,
    /// `status.conditions`.
    pub conditions: Vec<Value>,
}

impl Status {
    /// The stored object's status (empty when it has none).
    pub fn of(obj: &Value) -> Self {
        let fields = obj
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let conditions = fields
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Self { fields, conditions }
    }

    /// Puts the conditions into the fields now (removing the key when there are none), so
    /// fields inserted afterwards follow them in the stored object, as the upstream status
    /// struct orders them.
    pub fn settle_conditions(&mut self) {
        if self.conditions.is_empty() {
            self.fields.remove("conditions");
        } else {
            self.fields
                .insert("conditions".into(), Value::Array(self.conditions.clone()));
        }
    }

    /// The status as stored: without `conditions` when there are none.
    pub fn into_value(mut self) -> Value {
        self.settle_conditions();
        Value::Object(self.fields)
    }

    /// Writes the status of `obj` (re-read: earlier steps may have written it) when it
    /// differs from the stored one; returns whether it wrote.
    pub fn write(self, state: &mut State, kind: Kind, obj: &Value) -> bool {
        let current = state
            .object(
                kind.group,
                kind.plural,
                meta_str(obj, "namespace"),
                meta_str(obj, "name"),
            )
            .unwrap_or_else(|| obj.clone());
        write_status(state, kind, &current, self.into_value())
    }
}

/// Replaces the object's status when it differs; returns whether it wrote.
pub(crate) fn write_status(state: &mut State, kind: Kind, obj: &Value, status: Value) -> bool {
    if obj.get("status") == Some(&status) {
        return false;
    }
    let mut new = obj.clone();
    if let Some(o) = new.as_object_mut() {
        o.insert("status".into(), status);
    }
    match state.update_object(kind.group, kind.plural, new, true) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(kind = kind.kind, name = meta_str(obj, "name"), error = %e.message,
                "status update failed");
            false
        }
    }
}

/// The condition of `ctype` in a conditions list.
pub(crate) fn find<'a>(conditions: &'a [Value], ctype: &str) -> Option<&'a Value> {
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
}

/// The condition of `ctype` in `status.conditions`, if any.
pub(crate) fn condition<'a>(obj: &'a Value, ctype: &str) -> Option<&'a Value> {
    find(
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        ctype,
    )
}

/// Whether a condition has status True.
pub(crate) fn true_condition(c: &Value) -> bool {
    c.get("status").and_then(Value::as_str) == Some("True")
}

/// Whether the object's condition of `ctype` has status True.
pub(crate) fn is_true(obj: &Value, ctype: &str) -> bool {
    condition(obj, ctype).is_some_and(true_condition)
}

/// The lastTransitionTime a condition set to `status` at `now` gets: the previous one's when
/// the status does not change, else `now`.
pub(crate) fn transition_time(previous: Option<&Value>, status: &str, now: &str) -> Value {
    previous
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime"))
        .cloned()
        .unwrap_or_else(|| json!(now))
}

/// apimachinery's `meta.SetStatusCondition` on a `metav1.Condition` list: reason and message
/// follow, lastTransitionTime only moves when the status does; returns whether it changed.
pub(crate) fn set_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let fresh = |ltt: Value| {
        json!({
            "type": ctype, "status": status, "lastTransitionTime": ltt,
            "reason": reason, "message": message,
        })
    };
    let Some(c) = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
    else {
        conditions.push(fresh(json!(now())));
        return true;
    };
    let same = |k: &str, v: &str| c.get(k).and_then(Value::as_str) == Some(v);
    let same_status = same("status", status);
    if same_status && same("reason", reason) && same("message", message) {
        return false;
    }
    c["status"] = json!(status);
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    if !same_status {
        c["lastTransitionTime"] = json!(now());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_condition_keeps_the_transition_time_while_the_status_holds() {
        let mut c = Vec::new();
        assert!(set_condition(&mut c, "Ready", "True", "Up", "m"));
        c[0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        assert!(!set_condition(&mut c, "Ready", "True", "Up", "m"));
        assert!(set_condition(&mut c, "Ready", "True", "Up", "other"));
        assert_eq!(c[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c[0]["message"], "other");
        assert!(set_condition(&mut c, "Ready", "False", "Down", "m"));
        assert_ne!(c[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn status_round_trips_and_drops_empty_conditions() {
        let obj = json!({"status": {"active": 1, "conditions": [{"type": "A", "status": "True"}]}});
        let s = Status::of(&obj);
        assert_eq!(s.conditions.len(), 1);
        assert!(is_true(&obj, "A") && !is_true(&obj, "B"));
        assert_eq!(s.clone().into_value(), obj["status"]);
        let mut empty = s;
        empty.conditions.clear();
        assert_eq!(empty.into_value(), json!({"active": 1}));
    }
}
