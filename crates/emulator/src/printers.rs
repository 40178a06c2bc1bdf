//! Server-side print columns of built-in kinds whose rows are not just Name and Age, after
//! kubernetes `pkg/printers/internalversion/printers.go` (`AddHandlers`: the column
//! definitions; `printEvent`, `printDeployment`, `printReplicaSet`). The apiserver prints with
//! `Wide: true`, so every column is sent and kubectl hides priority 1 unless `-o wide`.

use serde_json::{Value, json};

use crate::registry::ResourceDef;

/// One column definition: name, type, format, priority, description.
pub type ColumnDef = (&'static str, &'static str, &'static str, i64, &'static str);

/// How a built-in kind prints: its columns and the cells of one object's row.
pub struct Printer {
    pub columns: &'static [ColumnDef],
    pub cells: fn(&Value) -> Vec<Value>,
}

const NAME: ColumnDef = (
    "Name",
    "string",
    "name",
    0,
    "Name must be unique within a namespace.",
);
const AGE: ColumnDef = (
    "Age",
    "string",
    "",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

const EVENT_COLUMNS: &[ColumnDef] = &[
    (
        "Last Seen",
        "string",
        "",
        0,
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    (
        "Type",
        "string",
        "",
        0,
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    (
        "Reason",
        "string",
        "",
        0,
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    (
        "Object",
        "string",
        "",
        0,
        "The object that this event is about.",
    ),
    (
        "Subobject",
        "string",
        "",
        1,
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    (
        "Source",
        "string",
        "",
        1,
        "The component reporting this event.",
    ),
    (
        "Message",
        "string",
        "",
        0,
        "A human-readable description of the status of this operation.",
    ),
    (
        "First Seen",
        "string",
        "",
        1,
        "The time at which the event was first recorded.",
    ),
    (
        "Count",
        "string",
        "",
        1,
        "The number of times this event has occurred.",
    ),
    (
        "Name",
        "string",
        "name",
        1,
        "Name must be unique within a namespace.",
    ),
];

const DEPLOYMENT_COLUMNS: &[ColumnDef] = &[
    NAME,
    (
        "Ready",
        "string",
        "",
        0,
        "Number of the pod with ready state",
    ),
    (
        "Up-to-date",
        "string",
        "",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    (
        "Available",
        "string",
        "",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    (
        "Containers",
        "string",
        "",
        1,
        "Names of each container in the template.",
    ),
    (
        "Images",
        "string",
        "",
        1,
        "Images referenced by each container in the template.",
    ),
    (
        "Selector",
        "string",
        "",
        1,
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

const REPLICASET_COLUMNS: &[ColumnDef] = &[
    NAME,
    (
        "Desired",
        "integer",
        "",
        0,
        "Replicas is the number of desired replicas.",
    ),
    (
        "Current",
        "integer",
        "",
        0,
        "Replicas is the most recently observed number of replicas.",
    ),
    (
        "Ready",
        "integer",
        "",
        0,
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    (
        "Containers",
        "string",
        "",
        1,
        "Names of each container in the template.",
    ),
    (
        "Images",
        "string",
        "",
        1,
        "Images referenced by each container in the template.",
    ),
    (
        "Selector",
        "string",
        "",
        1,
        "Selector is a label query over pods that should match the replica count.",
    ),
];

/// The printer of a built-in kind, when it has its own columns.
pub fn builtin(def: &ResourceDef) -> Option<Printer> {
    if def.crd.is_some() {
        return None;
    }
    let p = |columns, cells| Some(Printer { columns, cells });
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "events") => p(EVENT_COLUMNS, event_cells),
        ("apps", "deployments") => p(DEPLOYMENT_COLUMNS, deployment_cells),
        ("apps", "replicasets") => p(REPLICASET_COLUMNS, replicaset_cells),
        _ => None,
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn since(ts: &str) -> String {
    if ts.is_empty() {
        "<unknown>".into()
    } else {
        super::table::human_age(ts)
    }
}

/// `printEvent`.
fn event_cells(e: &Value) -> Vec<Value> {
    let first_ts = match s(e, "/firstTimestamp") {
        "" => s(e, "/eventTime"),
        t => t,
    };
    let first = since(first_ts);
    let last = match s(e, "/lastTimestamp") {
        "" => first.clone(),
        t => since(t),
    };
    let count = match n(e, "/count") {
        0 => 1,
        c => c,
    };
    let kind = s(e, "/involvedObject/kind").to_lowercase();
    let target = match s(e, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = match s(e, "/source/component") {
        "" => s(e, "/reportingComponent"),
        c => c,
    };
    let host = match s(e, "/source/host") {
        "" => s(e, "/reportingInstance"),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(s(e, "/type")),
        json!(s(e, "/reason")),
        json!(target),
        json!(s(e, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(e, "/message").trim()),
        json!(first),
        json!(count),
        json!(s(e, "/metadata/name")),
    ]
}

/// Container names, images and the selector of a workload's template (`layoutContainerCells`).
fn template_cells(obj: &Value) -> [Value; 3] {
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let join = |k: &str| {
        containers
            .iter()
            .map(|c| c.get(k).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let selector = obj
        .pointer("/spec/selector")
        .and_then(format_label_selector)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into());
    [json!(join("name")), json!(join("image")), json!(selector)]
}

/// `printDeployment`.
fn deployment_cells(d: &Value) -> Vec<Value> {
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut cells = vec![
        json!(s(d, "/metadata/name")),
        json!(format!("{}/{want}", n(d, "/status/readyReplicas"))),
        json!(n(d, "/status/updatedReplicas")),
        json!(n(d, "/status/availableReplicas")),
        json!(since(s(d, "/metadata/creationTimestamp"))),
    ];
    cells.extend(template_cells(d));
    cells
}

/// `printReplicaSet`.
fn replicaset_cells(rs: &Value) -> Vec<Value> {
    let mut cells = vec![
        json!(s(rs, "/metadata/name")),
        json!(
            rs.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        ),
        json!(n(rs, "/status/replicas")),
        json!(n(rs, "/status/readyReplicas")),
        json!(since(s(rs, "/metadata/creationTimestamp"))),
    ];
    cells.extend(template_cells(rs));
    cells
}

/// A metav1.LabelSelector as `LabelSelectorAsSelector(..).String()` renders it: requirements
/// sorted by key, set values sorted; "" for an empty selector, None when an operator is
/// unknown.
pub fn format_label_selector(sel: &Value) -> Option<String> {
    let mut parts: Vec<(String, String)> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e.get("operator").and_then(Value::as_str)? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        parts.push((key.to_string(), text));
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        parts
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_like_kubectl() {
        let e = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "ScalingReplicaSet",
            "involvedObject": {"kind": "Deployment", "name": "web"},
            "source": {"component": "deployment-controller"}, "message": "Scaled up ",
            "count": 2, "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": ""});
        let cells = event_cells(&e);
        assert_eq!(cells.len(), EVENT_COLUMNS.len());
        assert_eq!(cells[3], "deployment/web");
        assert_eq!(cells[5], "deployment-controller");
        assert_eq!(cells[6], "Scaled up");
        assert_eq!(cells[8], 2);
    }

    #[test]
    fn selectors_sort_by_key() {
        let sel = json!({"matchLabels": {"z": "1"},
            "matchExpressions": [{"key": "b", "operator": "In", "values": ["y", "x"]}]});
        assert_eq!(
            format_label_selector(&sel).as_deref(),
            Some("b in (x,y),z=1")
        );
    }
}
