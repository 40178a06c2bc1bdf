//! Strategic merge patch for built-in kinds, after k8s.io/apimachinery
//! `pkg/util/strategicpatch/patch.go`: maps merge like a JSON merge patch, but lists whose Go
//! field carries `patchStrategy:"merge"` merge element by element on their `patchMergeKey`
//! (containers by `name`, env by `name`, container ports by `containerPort`...), primitive
//! merge lists (finalizers) are unions, and the directives `$patch` (replace, delete, merge),
//! `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` apply. This is
//! what `kubectl set env|image|resources`, `kubectl edit` and `kubectl apply` send.
//!
//! The merge keys come from the core/v1 and apps/v1 struct tags, looked up by field name (the
//! emulator has no Go types): a field name means the same list wherever it appears in those
//! kinds, except `ports`, whose key is `containerPort` in containers and `port` in Services.

use serde_json::{Map, Value};

/// The merge key of a list field with the merge strategy, if it has one.
fn merge_key(field: &str, patch_items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "ports" => {
            if patch_items.iter().any(|p| p.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Lists of scalars merged as sets (`patchStrategy:"merge"` on `[]string`).
fn primitive_merge(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge `patch` to `target`.
pub fn merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) =
                (t.get_mut(field).and_then(Value::as_array_mut), v.as_array())
            {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            Value::Object(_) => merge(t.entry(k.clone()).or_insert(Value::Null), v),
            Value::Array(items) => {
                let merged = merge_list(k, t.get(k), items);
                t.insert(k.clone(), merged);
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    for (k, order) in p {
        if let (Some(field), Some(order)) = (k.strip_prefix("$setElementOrder/"), order.as_array())
            && let Some(list) = t.get_mut(field).and_then(Value::as_array_mut)
        {
            reorder(field, list, order);
        }
    }
}

/// The patch without its directives (what a replaced or added value stores).
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Merges a patch list into the current one by the field's strategy.
fn merge_list(field: &str, current: Option<&Value>, items: &[Value]) -> Value {
    let current: Vec<Value> = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if primitive_merge(field) {
        let mut out = current;
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Value::Array(out);
    }
    let Some(key) = merge_key(field, items).filter(|_| items.iter().all(Value::is_object)) else {
        return strip(&Value::Array(items.to_vec()));
    };
    // `$patch: replace` as an element replaces the whole list with the other elements.
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let rest: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip)
            .collect();
        return Value::Array(rest);
    }
    let mut out = current;
    for item in items {
        let id = item.get(key);
        let at = out.iter().position(|c| c.get(key) == id && id.is_some());
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (at, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => merge(&mut out[i], item),
            (None, false) => out.push(strip(item)),
        }
    }
    Value::Array(out)
}

/// `$setElementOrder`: the listed elements in the given order, the rest after them.
fn reorder(field: &str, list: &mut Vec<Value>, order: &[Value]) {
    let key = merge_key(field, order);
    let id = |v: &Value| match key {
        Some(k) if v.is_object() => v.get(k).cloned(),
        _ => Some(v.clone()),
    };
    let mut rest = std::mem::take(list);
    for o in order {
        if let Some(i) = rest.iter().position(|x| id(x) == id(o)) {
            list.push(rest.remove(i));
        }
    }
    list.append(&mut rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let mut d = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
            {"name": "b", "image": "y"}]}});
        // What `kubectl set env deployment/d K2=2 -c a` sends (shape).
        let p = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "env": [{"name": "K2", "value": "2"}]}]}});
        merge(&mut d, &p);
        assert_eq!(d["spec"]["containers"][0]["image"], "x");
        assert_eq!(
            d["spec"]["containers"][0]["env"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(d["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn directives_delete_replace_and_primitive_lists() {
        let mut o = json!({"metadata": {"finalizers": ["a", "b"]},
            "spec": {"env": [{"name": "A"}, {"name": "B"}], "tolerations": [{"key": "t"}]}});
        let p = json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"env": [{"name": "A", "$patch": "delete"}], "tolerations": [{"key": "u"}]}});
        merge(&mut o, &p);
        assert_eq!(o["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(o["spec"]["env"], json!([{"name": "B"}]));
        assert_eq!(
            o["spec"]["tolerations"],
            json!([{"key": "u"}]),
            "no merge key: replaced"
        );
        let mut r = json!({"spec": {"a": 1, "b": 2}});
        merge(&mut r, &json!({"spec": {"$patch": "replace", "c": 3}}));
        assert_eq!(r, json!({"spec": {"c": 3}}));
    }
}
