//! Discovery documents (`/version`, `/api`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`) shaped as
//! kube-apiserver returns them, and a minimal `/openapi/v3` for kubectl.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::defects::Defect;
use crate::registry::{ResourceDef, compare_versions};
use crate::store::State;

/// `/version`.
pub fn version(defects: &[Defect]) -> Value {
    let (minor, release) = super::defects::platform::reported_version(defects, ("34", "v1.34.2"));
    // The build metadata says what serves the API, as distributions' builds do
    // (`v1.29.4+k3s1`): a report then records that it was made against the emulator, even
    // one started as its own process, and `kfconform verify` can tell.
    let git = format!("{release}+{}", kfconform_core::contract::EMULATOR_BUILD);
    json!({
        "major": "1",
        "minor": minor,
        "emulationMajor": "1",
        "emulationMinor": minor,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": minor,
        "gitVersion": git,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-11-12T00:00:00Z",
        "goVersion": "go1.24.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

/// Served groups (non-core) and their versions, highest priority first.
fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for def in state.resources.values() {
        if def.group.is_empty() {
            continue;
        }
        let vs = by_group.entry(def.group.clone()).or_default();
        for v in &def.versions {
            if !vs.contains(&v.name) {
                vs.push(v.name.clone());
            }
        }
    }
    let mut out: Vec<(String, Vec<String>)> = by_group
        .into_iter()
        .map(|(g, mut vs)| {
            vs.sort_by(|a, b| compare_versions(a, b));
            (g, vs)
        })
        .collect();
    // Built-in groups come before extension groups, like the real aggregator's ordering.
    out.sort_by_key(|(g, _)| (!g.ends_with(".k8s.io"), g.clone()));
    out
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

/// `/apis`.
pub fn group_list(state: &State) -> Value {
    let gs: Vec<Value> = groups(state)
        .iter()
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/{group}`, if served.
pub fn group(state: &State, group: &str) -> Option<Value> {
    let (g, vs) = groups(state).into_iter().find(|(g, _)| g == group)?;
    let mut doc = group_doc(&g, &vs);
    if let Some(o) = doc.as_object_mut() {
        o.insert("kind".into(), json!("APIGroup"));
        o.insert("apiVersion".into(), json!("v1"));
    }
    Some(doc)
}

fn resource_entries(def: &ResourceDef, version: &str) -> Vec<Value> {
    let mut main = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs,
    });
    if let Some(o) = main.as_object_mut() {
        if !def.short_names.is_empty() {
            o.insert("shortNames".into(), json!(def.short_names));
        }
        if !def.categories.is_empty() {
            o.insert("categories".into(), json!(def.categories));
        }
    }
    let mut out = vec![main];
    if def.has_status(version) {
        out.push(json!({
            "name": format!("{}/status", def.plural),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for sub in &def.subresources {
        let mut e = json!({
            "name": format!("{}/{}", def.plural, sub.name),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": sub.kind,
            "verbs": sub.verbs,
        });
        if !sub.group.is_empty()
            && let Some(o) = e.as_object_mut()
        {
            o.insert("group".into(), json!(sub.group));
            o.insert("version".into(), json!(sub.version));
        }
        out.push(e);
    }
    if def.group.is_empty() && def.plural == "namespaces" {
        out.push(json!({
            "name": "namespaces/finalize",
            "singularName": "",
            "namespaced": false,
            "kind": "Namespace",
            "verbs": ["update"],
        }));
    }
    out
}

/// `/api/v1` or `/apis/{g}/{v}`, if served.
pub fn resource_list(state: &State, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for def in state.resources.values() {
        if def.group == group && def.version(version).is_some() {
            resources.extend(resource_entries(def, version));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// Every served group/version as `(group, version)`, core first.
fn group_versions(state: &State) -> Vec<(String, String)> {
    let mut out = vec![(String::new(), "v1".to_string())];
    for (g, vs) in groups(state) {
        for v in vs {
            out.push((g.clone(), v));
        }
    }
    out
}

fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_index(state: &State) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in group_versions(state) {
        let p = openapi_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", gv_hash(state, &g, &v))}),
        );
    }
    json!({"paths": paths})
}

/// A content hash of a group/version's document, so clients can cache it.
fn gv_hash(state: &State, group: &str, version: &str) -> String {
    use sha2::{Digest, Sha256};
    let doc = openapi_gv(state, group, version).unwrap_or(Value::Null);
    let digest = Sha256::digest(doc.to_string().as_bytes());
    hex::encode(&digest[..16]).to_uppercase()
}

/// Reverse-domain schema name (`org.kubeflow.v1.PyTorchJob`), as the apiserver builds for CRDs.
fn schema_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        return format!("io.k8s.api.core.{version}.{kind}");
    }
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

/// `/openapi/v3/{api/v1 | apis/g/v}`: schemas of the group/version's kinds and a PATCH
/// operation per resource advertising `fieldValidation`, which is how kubectl decides to
/// leave validation to the server.
pub fn openapi_gv(state: &State, group: &str, version: &str) -> Option<Value> {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let mut any = false;
    for def in state.resources.values() {
        let Some(v) = def.version(version) else {
            continue;
        };
        if def.group != group {
            continue;
        }
        any = true;
        let gvk = json!([{"group": group, "version": version, "kind": def.kind}]);
        let name = schema_name(group, version, &def.kind);
        let mut schema = v.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(o) = schema.as_object_mut() {
            o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        }
        schemas.insert(name.clone(), schema);
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let item_path = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", def.plural)
        } else {
            format!("{base}/{}/{{name}}", def.plural)
        };
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let response = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}});
        paths.insert(
            item_path,
            json!({
                "get": {"operationId": format!("read{}", def.kind), "responses": response,
                        "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk[0]},
                "put": {"operationId": format!("replace{}", def.kind), "parameters": params, "responses": response,
                        "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk[0]},
                "patch": {"operationId": format!("patch{}", def.kind), "parameters": params, "responses": response,
                          "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk[0]},
            }),
        );
    }
    if !any {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
