//! Reading and writing objects as the controllers do: JSON accessors, ownership, pods, and the
//! writes controllers make through the store (delete, remove a finalizer).

use serde_json::{Value, json};

use crate::events::{Record, record};
use crate::store::{State, meta_str};

/// The string at a JSON pointer, or "".
pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer.
pub(crate) fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// The boolean at a JSON pointer is `true`.
pub(crate) fn flag_at(v: &Value, ptr: &str) -> bool {
    v.pointer(ptr).and_then(Value::as_bool) == Some(true)
}

/// The label `key` of an object, or "".
pub(crate) fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether the object is being deleted.
pub(crate) fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// Whether the object carries `finalizer`.
pub(crate) fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
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

/// The stored objects of `(group, plural)` in `namespace`, by reference (look before cloning).
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

/// Objects of `(group, plural)` in `namespace` whose controller is `uid` (what an informer's
/// owner index yields).
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
    super::status::is_true(pod, "Ready")
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

/// Removes `finalizer` from a stored object; returns whether it wrote.
pub(crate) fn remove_finalizer(
    state: &mut State,
    group: &str,
    plural: &str,
    obj: &Value,
    finalizer: &str,
) -> bool {
    if !has_finalizer(obj, finalizer) {
        return false;
    }
    // Work on the current version: an earlier write in this reconcile may have changed it.
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

/// The event reasons a controller's pod (or service) control records, and the noun of its
/// messages ("Created pod: NAME").
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control {
    pub created: &'static str,
    pub create_failed: &'static str,
    pub deleted: &'static str,
    pub delete_failed: &'static str,
    pub noun: &'static str,
}

/// kubernetes `pkg/controller/controller_utils.go` (`RealPodControl`): the Job and ReplicaSet
/// controllers' pods.
pub(crate) const POD_CONTROL: Control = Control {
    created: "SuccessfulCreate",
    create_failed: "FailedCreate",
    deleted: "SuccessfulDelete",
    delete_failed: "FailedDelete",
    noun: "pod",
};

/// Training Operator `pkg/controller.v1/control/pod_control.go`.
pub(crate) const TRAINING_POD_CONTROL: Control = Control {
    created: "SuccessfulCreatePod",
    create_failed: "FailedCreatePod",
    deleted: "SuccessfulDeletePod",
    delete_failed: "FailedDeletePod",
    noun: "pod",
};

/// Training Operator `pkg/controller.v1/control/service_control.go`.
pub(crate) const TRAINING_SERVICE_CONTROL: Control = Control {
    created: "SuccessfulCreateService",
    create_failed: "FailedCreateService",
    deleted: "SuccessfulDeleteService",
    delete_failed: "FailedDeleteService",
    noun: "service",
};

/// Creates a core/v1 object (`plural`) for `owner` through `control`, recording
/// "Created NOUN: NAME" or "Error creating: ERR" on the owner as `component`; returns it.
pub(crate) fn create_recorded(
    state: &mut State,
    control: &Control,
    component: &str,
    owner: &Value,
    plural: &str,
    obj: Value,
) -> Option<Value> {
    match state.create_object("", plural, obj) {
        Ok(o) => {
            let msg = format!("Created {}: {}", control.noun, meta_str(&o, "name"));
            record(
                state,
                Record::normal(component, owner, control.created, msg),
            );
            Some(o)
        }
        Err(e) => {
            let msg = format!("Error creating: {}", e.message);
            let rec = Record::warning(component, owner, control.create_failed, msg);
            record(state, rec);
            None
        }
    }
}

/// Deletes a core/v1 object through `control` (nothing when it is already going), recording
/// "Deleted NOUN: NAME" or "Error deleting: ERR" on the owner; returns whether it deleted.
pub(crate) fn delete_recorded(
    state: &mut State,
    control: &Control,
    component: &str,
    owner: &Value,
    plural: &str,
    obj: &Value,
) -> bool {
    if deleting(obj) {
        return false;
    }
    let name = meta_str(obj, "name").to_string();
    match state.delete_object("", plural, meta_str(obj, "namespace"), &name) {
        Ok(_) => {
            let msg = format!("Deleted {}: {name}", control.noun);
            record(
                state,
                Record::normal(component, owner, control.deleted, msg),
            );
            true
        }
        Err(e) => {
            let msg = format!("Error deleting: {}", e.message);
            let rec = Record::warning(component, owner, control.delete_failed, msg);
            record(state, rec);
            false
        }
    }
}

/// [`create_recorded`] of a pod with the Kubernetes pod control's reasons.
pub(crate) fn create_pod_recorded(
    state: &mut State,
    component: &str,
    owner: &Value,
    pod: Value,
) -> Option<Value> {
    create_recorded(state, &POD_CONTROL, component, owner, "pods", pod)
}

/// [`delete_recorded`] of a pod with the Kubernetes pod control's reasons.
pub(crate) fn delete_pod_recorded(
    state: &mut State,
    component: &str,
    owner: &Value,
    pod: &Value,
) -> bool {
    delete_recorded(state, &POD_CONTROL, component, owner, "pods", pod)
}
