//! Server-side printing: `meta.k8s.io/v1` Table responses (what `kubectl get` asks for), with
//! a CRD's additionalPrinterColumns, built-in kinds' columns ([`printers`]), and
//! PartialObjectMetadata conversion.

pub mod printers;

use serde_json::{Value, json};

use super::registry::ResourceDef;

/// What the client asked the object(s) to be rendered as (from the Accept header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Table { include: Include },
    Metadata,
}

/// `includeObject` of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Output {
    /// Picks the first representation in `accept` that the emulator can produce.
    pub fn from_accept(accept: &str, include_object: Option<&str>) -> Output {
        for part in accept.split(',') {
            let p = part.replace(' ', "");
            if p.contains("as=Table") && p.contains("g=meta.k8s.io") {
                let include = match include_object {
                    Some("None") => Include::None,
                    Some("Object") => Include::Object,
                    _ => Include::Metadata,
                };
                return Output::Table { include };
            }
            if p.contains("as=PartialObjectMetadata") && p.contains("g=meta.k8s.io") {
                return Output::Metadata;
            }
            if p.starts_with("application/json") || p.starts_with("*/*") || p.is_empty() {
                return Output::Json;
            }
        }
        Output::Json
    }
}

/// The PartialObjectMetadata form of an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

struct Column {
    name: String,
    type_: String,
    format: String,
    description: String,
    priority: i64,
    path: Option<String>,
}

fn columns(def: &ResourceDef, version: &str) -> Vec<Column> {
    let mut cols = vec![Column {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".into(),
        priority: 0,
        path: None,
    }];
    let printer = def
        .version(version)
        .map(|v| v.printer_columns.clone())
        .unwrap_or_default();
    if printer.is_empty() {
        if def.group.is_empty() && def.plural == "namespaces" {
            cols.push(Column {
                name: "Status".into(),
                type_: "string".into(),
                format: String::new(),
                description: "The status of the namespace".into(),
                priority: 0,
                path: Some(".status.phase".into()),
            });
        }
        cols.push(Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
            priority: 0,
            path: Some(".metadata.creationTimestamp".into()),
        });
    } else {
        for c in printer {
            cols.push(Column {
                format: String::new(),
                name: c.name,
                type_: c.type_,
                description: c.description,
                priority: c.priority,
                path: Some(c.json_path),
            });
        }
    }
    cols
}

/// Evaluates the simple JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[-1:]`.
pub fn eval_path(obj: &Value, path: &str) -> Option<Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = vec![obj.clone()];
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        let (seg, tail) = match rest.find(['.', '[']) {
            Some(0) if rest.starts_with('[') => {
                let end = rest.find(']')?;
                let idx = &rest[1..end];
                let mut next = Vec::new();
                for v in &cur {
                    let arr = v.as_array()?;
                    if idx == "*" {
                        next.extend(arr.iter().cloned());
                    } else if let Some(from) = idx.strip_suffix(':') {
                        let n: i64 = from.parse().ok()?;
                        let start = if n < 0 {
                            arr.len().saturating_sub(n.unsigned_abs() as usize)
                        } else {
                            n as usize
                        };
                        next.extend(arr.iter().skip(start).cloned());
                    } else {
                        let n: i64 = idx.parse().ok()?;
                        let i = if n < 0 {
                            arr.len().checked_sub(n.unsigned_abs() as usize)?
                        } else {
                            n as usize
                        };
                        next.push(arr.get(i)?.clone());
                    }
                }
                cur = next;
                rest = rest[end + 1..].trim_start_matches('.');
                continue;
            }
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        cur = cur.iter().filter_map(|v| v.get(seg).cloned()).collect();
        rest = tail.trim_start_matches('.');
    }
    match cur.len() {
        0 => None,
        1 => cur.pop(),
        _ => Some(Value::Array(cur)),
    }
}

/// `duration.HumanDuration`-style age ("5s", "3m2s", "4h", "2d").
pub fn human_age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    human_duration(secs)
}

/// `duration.HumanDuration` of `secs` seconds.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

fn cell(obj: &Value, col: &Column) -> Value {
    let Some(path) = &col.path else {
        return obj.pointer("/metadata/name").cloned().unwrap_or(json!(""));
    };
    let Some(v) = eval_path(obj, path) else {
        return Value::Null;
    };
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (col.type_.as_str(), &v) {
        ("date", Value::String(s)) => json!(human_age(s)),
        (_, Value::Array(a)) => json!(a.iter().map(scalar).collect::<Vec<_>>().join(",")),
        ("integer" | "number" | "boolean", _) => v,
        _ => json!(scalar(&v)),
    }
}

/// A Table's `columnDefinitions` entry.
fn column_def(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format,
           "description": description, "priority": priority})
}

/// Column definitions and one row of cells per object: a built-in kind's printer, else the
/// CRD's printer columns (or NAME and AGE).
fn rows_of(def: &ResourceDef, version: &str, objects: &[Value]) -> (Vec<Value>, Vec<Vec<Value>>) {
    if def.crd.is_none()
        && let Some(p) = printers::printer(&def.group, &def.plural)
    {
        let defs = p
            .columns
            .iter()
            .map(|c| column_def(c.name, c.type_, c.format, c.description, c.priority))
            .collect();
        return (defs, objects.iter().map(p.cells).collect());
    }
    let cols = columns(def, version);
    let defs = cols
        .iter()
        .map(|c| column_def(&c.name, &c.type_, &c.format, &c.description, c.priority))
        .collect();
    let rows = objects
        .iter()
        .map(|o| cols.iter().map(|c| cell(o, c)).collect())
        .collect();
    (defs, rows)
}

/// A Table of `objects` (already at the request version).
pub fn table(
    def: &ResourceDef,
    version: &str,
    objects: &[Value],
    include: Include,
    list_meta: Value,
) -> Value {
    let (defs, cells) = rows_of(def, version, objects);
    let rows: Vec<Value> = objects
        .iter()
        .zip(cells)
        .map(|(o, cells)| {
            let mut row = json!({"cells": cells});
            if let (Some(obj), Some(r)) = (included(o, include), row.as_object_mut()) {
                r.insert("object".into(), obj);
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// The object as a Table row's `object` field, per `includeObject`.
fn included(o: &Value, include: Include) -> Option<Value> {
    match include {
        Include::None => None,
        Include::Metadata => Some(partial(o)),
        Include::Object => Some(o.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let o = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}, "spec": {"n": 2}});
        assert_eq!(
            eval_path(&o, ".status.conditions[-1:].type"),
            Some(json!("B"))
        );
        assert_eq!(
            eval_path(&o, ".status.conditions[0].type"),
            Some(json!("A"))
        );
        assert_eq!(eval_path(&o, ".spec.n"), Some(json!(2)));
        assert_eq!(eval_path(&o, ".spec.missing"), None);
    }

    #[test]
    fn accept_header() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            Output::from_accept(a, None),
            Output::Table {
                include: Include::Metadata
            }
        );
        assert_eq!(Output::from_accept("application/json", None), Output::Json);
    }
}
