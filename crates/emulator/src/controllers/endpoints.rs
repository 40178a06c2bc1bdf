//! The two controllers that turn a Service's selector and the ready pods behind it into
//! addresses: the Endpoints controller (kubernetes/kubernetes
//! `pkg/controller/endpoint/endpoints_controller.go`, `syncService`, with
//! `pkg/api/v1/endpoints/util.go` `RepackSubsets`) and the EndpointSlice controller
//! (`pkg/controller/endpointslice/endpointslice_controller.go` and
//! `staging/src/k8s.io/endpointslice/reconciler.go`, `utils.go`; pod rules from
//! `staging/src/k8s.io/endpointslice/util/controller_utils.go` `ShouldPodBeInEndpoints`,
//! `ShouldSetHostname`; ports from `pkg/api/v1/pod/util.go` `FindPort`).
//!
//! Both skip Services without a selector (their addresses are someone else's to write).
//! Endpoints carry no ownerReference, so the Endpoints controller deletes them with their
//! Service; EndpointSlices are owned by the Service and go through garbage collection.
//!
//! Simplifications: no `endpoints.kubernetes.io/last-change-trigger-time` annotation, no
//! 1000-address truncation of Endpoints, no 100-endpoint cap per slice, IPv4 only, no zone
//! hints (one node without topology labels). Subsets are ordered by address, ports by name and
//! number, where upstream orders them by a hash.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::objects::{deleting, in_namespace, pod_ready, str_at, terminal};
use crate::events::{self, Record};
use crate::runtime::builtin::{ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str};

/// `discovery.LabelServiceName`: the Service an EndpointSlice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `discovery.LabelManagedBy`: which controller manages an EndpointSlice.
pub const LABEL_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The EndpointSlice controller's name in [`LABEL_SLICE_MANAGED_BY`].
pub const SLICE_CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The Endpoints controller's `LabelManagedBy`.
pub const LABEL_ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// The Endpoints controller's name in [`LABEL_ENDPOINTS_MANAGED_BY`].
pub const ENDPOINTS_CONTROLLER_NAME: &str = "endpoint-controller";
/// The Endpoints controller's event source.
const ENDPOINTS_COMPONENT: &str = "endpoint-controller";
/// The EndpointSlice controller's event source.
const SLICES_COMPONENT: &str = "endpoint-slice-controller";
/// `v1.IsHeadlessService` label both controllers put on a headless Service's objects.
const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// The Service's selector, or None when it has none (an empty selector is none: the
/// apiserver stores it as nil).
fn selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let sel: BTreeMap<String, String> = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)?
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    (!sel.is_empty()).then_some(sel)
}

fn selects(sel: &BTreeMap<String, String>, pod: &Value) -> bool {
    crate::kubelet::network::labels_match(sel, pod)
}

/// The Services in the pod's namespace whose selector matches it (the controllers'
/// `getPodServiceMemberships`).
fn services_of_pod(state: &State, pod: &Value) -> Vec<ObjectKey> {
    in_namespace(state, "", "services", meta_str(pod, "namespace"))
        .filter(|svc| selector(svc).is_some_and(|sel| selects(&sel, pod)))
        .map(ObjectKey::of)
        .collect()
}

/// `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless asked.
fn pod_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    !terminal(pod)
        && !str_at(pod, "/status/podIP").is_empty()
        && (include_terminating || !deleting(pod))
}

/// `ShouldSetHostname`: the pod's hostname names it under this Service's subdomain.
fn hostname_for(pod: &Value, svc: &Value) -> Option<String> {
    let h = str_at(pod, "/spec/hostname");
    (!h.is_empty()
        && str_at(pod, "/spec/subdomain") == meta_str(svc, "name")
        && meta_str(pod, "namespace") == meta_str(svc, "namespace"))
    .then(|| h.to_string())
}

/// `podutil.FindPort`: a numeric targetPort as is; a named one is the containerPort of that
/// name and the service port's protocol (regular containers, then restartable init
/// containers).
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = svc_port
        .get("targetPort")
        .or_else(|| svc_port.get("port"))?;
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let protocol = svc_port
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP");
    let sidecars = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"));
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(sidecars)
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| {
            p.get("name").and_then(Value::as_str) == Some(name)
                && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
        })
        .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
}

/// The ports a pod serves for the Service (`endpointPortFromServicePort` for each port
/// `FindPort` resolves).
fn endpoint_ports(svc: &Value, pod: &Value) -> Vec<Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            let mut p = json!({
                "name": sp.get("name").and_then(Value::as_str).unwrap_or(""),
                "port": port,
                "protocol": sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
            });
            if let (Some(ap), Some(o)) = (sp.get("appProtocol"), p.as_object_mut()) {
                o.insert("appProtocol".into(), ap.clone());
            }
            Some(p)
        })
        .collect()
}

fn sort_ports(ports: &mut [Value]) {
    ports.sort_by(|a, b| {
        (str_at(a, "/name"), a.get("port").and_then(Value::as_i64))
            .cmp(&(str_at(b, "/name"), b.get("port").and_then(Value::as_i64)))
    });
}

fn target_ref(pod: &Value) -> Value {
    json!({
        "kind": "Pod",
        "namespace": meta_str(pod, "namespace"),
        "name": meta_str(pod, "name"),
        "uid": meta_str(pod, "uid"),
    })
}

/// The labels both controllers derive from the Service's: its own, plus the headless mark.
fn service_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = svc
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if str_at(svc, "/spec/clusterIP") == "None" {
        labels.insert(LABEL_HEADLESS.into(), json!(""));
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    labels
}

fn selected_pods<'a>(
    state: &'a State,
    svc: &Value,
    sel: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a Value> {
    in_namespace(state, "", "pods", meta_str(svc, "namespace")).filter(|p| selects(sel, p))
}

/// A failed write: whether it was a create, and the apiserver's message.
struct WriteFailure {
    created: bool,
    message: String,
}

/// Writes `desired` as the object `(group, plural)` named like it: creates it, or updates
/// the stored one when labels or `fields` differ.
fn apply(
    state: &mut State,
    kind: Kind,
    desired: Value,
    fields: &[&str],
) -> Result<(), WriteFailure> {
    let (ns, name) = (meta_str(&desired, "namespace"), meta_str(&desired, "name"));
    let res = (kind.group.to_string(), kind.plural.to_string());
    let Some(cur) = state.get_obj(&res, ns, name).cloned() else {
        return state
            .create_object(kind.group, kind.plural, desired)
            .map(|_| ())
            .map_err(|e| WriteFailure {
                created: true,
                message: e.message,
            });
    };
    let same = fields.iter().all(|f| cur.get(*f) == desired.get(*f))
        && cur.pointer("/metadata/labels") == desired.pointer("/metadata/labels");
    if same {
        return Ok(());
    }
    let mut next = cur;
    if let Some(o) = next.as_object_mut() {
        for f in fields {
            match desired.get(*f) {
                Some(v) => o.insert((*f).to_string(), v.clone()),
                None => o.remove(*f),
            };
        }
    }
    if let (Some(m), Some(l)) = (
        next.get_mut("metadata").and_then(Value::as_object_mut),
        desired.pointer("/metadata/labels"),
    ) {
        m.insert("labels".into(), l.clone());
    }
    state
        .update_object(kind.group, kind.plural, next, false)
        .map(|_| ())
        .map_err(|e| WriteFailure {
            created: false,
            message: e.message,
        })
}

/// The Endpoints controller: one Endpoints object per selector-based Service, named like it.
#[derive(Debug, Default)]
pub struct EndpointsController;

impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint"
    }

    fn owns(&self) -> Kind {
        SERVICES
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(PODS, Mapper::Func(services_of_pod)),
            Watch::new(ENDPOINTS, Mapper::Name),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let res = ("".to_string(), "services".to_string());
        let Some(svc) = state.get_obj(&res, &key.namespace, &key.name).cloned() else {
            // Endpoints have no owner: the controller deletes them with their Service.
            let eps = ("".to_string(), "endpoints".to_string());
            if state.get_obj(&eps, &key.namespace, &key.name).is_some() {
                let _ = state.delete_object("", "endpoints", &key.namespace, &key.name);
            }
            return Action::Done;
        };
        let Some(sel) = selector(&svc) else {
            return Action::Done;
        };
        if deleting(&svc) {
            return Action::Done;
        }
        let subsets = endpoint_subsets(state, &svc, &sel);
        let mut labels = service_labels(&svc);
        labels.insert(
            LABEL_ENDPOINTS_MANAGED_BY.into(),
            json!(ENDPOINTS_CONTROLLER_NAME),
        );
        let mut desired = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": key.name, "namespace": key.namespace, "labels": labels},
        });
        if !subsets.is_empty()
            && let Some(o) = desired.as_object_mut()
        {
            o.insert("subsets".into(), Value::Array(subsets));
        }
        match apply(state, ENDPOINTS, desired.clone(), &["subsets"]) {
            Ok(()) => Action::Done,
            Err(f) => {
                // endpoints_controller.go's events on a failed write, about the Endpoints.
                let (reason, message) = if f.created {
                    (
                        "FailedToCreateEndpoint",
                        format!(
                            "Failed to create endpoint for service {}/{}: {}",
                            key.namespace, key.name, f.message
                        ),
                    )
                } else {
                    (
                        "FailedToUpdateEndpoint",
                        format!(
                            "Failed to update endpoint {}/{}: {}",
                            key.namespace, key.name, f.message
                        ),
                    )
                };
                let rec = Record::warning(ENDPOINTS_COMPONENT, &desired, reason, message);
                events::record(state, rec);
                Action::Retry
            }
        }
    }
}

/// One Endpoints subset being built: its ports and addresses.
struct Subset {
    ports: Vec<Value>,
    ready: Vec<Value>,
    not_ready: Vec<Value>,
}

/// `syncService`'s subsets, repacked (`RepackSubsets`): addresses offering the same ports
/// share a subset; a pod is a ready address when Ready (or when the Service publishes
/// not-ready addresses), else a not-ready one.
fn endpoint_subsets(state: &State, svc: &Value, sel: &BTreeMap<String, String>) -> Vec<Value> {
    let publish = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let has_ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let headless = str_at(svc, "/spec/clusterIP") == "None";
    // Port set (as JSON text) → its subset.
    let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
    for pod in selected_pods(state, svc, sel) {
        if !pod_in_endpoints(pod, publish) {
            continue;
        }
        let mut ports = endpoint_ports(svc, pod);
        // A headless Service may have no ports; otherwise a pod serving none is left out.
        if ports.is_empty() && (has_ports || !headless) {
            continue;
        }
        sort_ports(&mut ports);
        let mut addr = json!({"ip": str_at(pod, "/status/podIP"), "targetRef": target_ref(pod)});
        if let Some(o) = addr.as_object_mut() {
            let node = str_at(pod, "/spec/nodeName");
            if !node.is_empty() {
                o.insert("nodeName".into(), json!(node));
            }
            if let Some(h) = hostname_for(pod, svc) {
                o.insert("hostname".into(), json!(h));
            }
        }
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let g = groups.entry(key).or_insert_with(|| Subset {
            ports,
            ready: Vec::new(),
            not_ready: Vec::new(),
        });
        if publish || pod_ready(pod) {
            g.ready.push(addr);
        } else {
            g.not_ready.push(addr);
        }
    }
    let by_ip = |a: &Value, b: &Value| {
        (str_at(a, "/ip"), str_at(a, "/targetRef/uid"))
            .cmp(&(str_at(b, "/ip"), str_at(b, "/targetRef/uid")))
    };
    let mut subsets: Vec<Value> = groups
        .into_values()
        .map(
            |Subset {
                 ports,
                 mut ready,
                 mut not_ready,
             }| {
                ready.sort_by(by_ip);
                not_ready.sort_by(by_ip);
                let mut s = Map::new();
                if !ready.is_empty() {
                    s.insert("addresses".into(), Value::Array(ready));
                }
                if !not_ready.is_empty() {
                    s.insert("notReadyAddresses".into(), Value::Array(not_ready));
                }
                if !ports.is_empty() {
                    s.insert("ports".into(), Value::Array(ports));
                }
                Value::Object(s)
            },
        )
        .collect();
    subsets.sort_by(|a, b| {
        let first = |s: &Value| {
            s.pointer("/addresses/0/ip")
                .or_else(|| s.pointer("/notReadyAddresses/0/ip"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        first(a).cmp(&first(b))
    });
    subsets
}

/// The EndpointSlice controller: the Service's endpoints as `discovery.k8s.io/v1`
/// EndpointSlices, one per distinct port set (a placeholder without endpoints when there
/// are none), owned by the Service.
#[derive(Debug, Default)]
pub struct EndpointSliceController;

impl Reconciler for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpointslice"
    }

    fn owns(&self) -> Kind {
        SERVICES
    }

    fn watches(&self) -> Vec<Watch> {
        vec![
            Watch::new(PODS, Mapper::Func(services_of_pod)),
            Watch::new(ENDPOINTSLICES, Mapper::Label(LABEL_SERVICE_NAME)),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let res = ("".to_string(), "services".to_string());
        let Some(svc) = state.get_obj(&res, &key.namespace, &key.name).cloned() else {
            // Owned slices go with the Service through garbage collection.
            return Action::Done;
        };
        let Some(sel) = selector(&svc) else {
            return Action::Done;
        };
        if deleting(&svc) {
            return Action::Done;
        }
        match reconcile_slices(state, &svc, &sel) {
            Ok(()) => Action::Done,
            Err(message) => {
                // endpointslice_controller.go's event on a failed sync, about the Service.
                let text = format!(
                    "Error updating Endpoint Slices for Service {}/{}: {message}",
                    key.namespace, key.name
                );
                let rec =
                    Record::warning(SLICES_COMPONENT, &svc, "FailedToUpdateEndpointSlices", text);
                events::record(state, rec);
                Action::Retry
            }
        }
    }
}

/// `podToEndpoint`: the pod's address with its conditions. Ready only when the pod is Ready
/// and not terminating, unless the Service publishes not-ready addresses; serving is the
/// pod's readiness whether terminating or not.
fn slice_endpoint(pod: &Value, svc: &Value) -> Value {
    let publish = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let terminating = deleting(pod);
    let serving = pod_ready(pod);
    let ready = publish || (serving && !terminating);
    let mut ep = json!({
        "addresses": [str_at(pod, "/status/podIP")],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": target_ref(pod),
    });
    if let Some(o) = ep.as_object_mut() {
        let node = str_at(pod, "/spec/nodeName");
        if !node.is_empty() {
            o.insert("nodeName".into(), json!(node));
        }
        if let Some(h) = hostname_for(pod, svc) {
            o.insert("hostname".into(), json!(h));
        }
    }
    ep
}

/// The desired slices by port set (JSON text of the sorted ports, `null` for the
/// placeholder): ports and endpoints.
fn desired_slices(
    state: &State,
    svc: &Value,
    sel: &BTreeMap<String, String>,
) -> BTreeMap<String, (Value, Vec<Value>)> {
    let mut out: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for pod in selected_pods(state, svc, sel) {
        // Slices keep terminating pods (with `terminating: true`).
        if !pod_in_endpoints(pod, true) {
            continue;
        }
        let mut ports = endpoint_ports(svc, pod);
        sort_ports(&mut ports);
        let ports = if ports.is_empty() {
            Value::Null
        } else {
            Value::Array(ports)
        };
        let key = ports.to_string();
        out.entry(key)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(slice_endpoint(pod, svc));
    }
    for (_, eps) in out.values_mut() {
        eps.sort_by(|a, b| {
            (str_at(a, "/addresses/0"), str_at(a, "/targetRef/uid"))
                .cmp(&(str_at(b, "/addresses/0"), str_at(b, "/targetRef/uid")))
        });
    }
    if out.is_empty() {
        out.insert("null".into(), (Value::Null, Vec::new()));
    }
    out
}

/// `reconciler.reconcile`: keeps one slice per desired port set (reusing a stored slice with
/// the same ports), creates the missing ones (`generateName: <service>-`), deletes the rest.
/// Returns the first failed write's message.
fn reconcile_slices(
    state: &mut State,
    svc: &Value,
    sel: &BTreeMap<String, String>,
) -> Result<(), String> {
    let (ns, name) = (meta_str(svc, "namespace"), meta_str(svc, "name"));
    let existing: Vec<Value> = in_namespace(state, "discovery.k8s.io", "endpointslices", ns)
        .filter(|s| {
            super::objects::label(s, LABEL_SERVICE_NAME) == name
                && super::objects::label(s, LABEL_SLICE_MANAGED_BY) == SLICE_CONTROLLER_NAME
        })
        .cloned()
        .collect();
    let mut labels = service_labels(svc);
    labels.insert(LABEL_SERVICE_NAME.into(), json!(name));
    labels.insert(LABEL_SLICE_MANAGED_BY.into(), json!(SLICE_CONTROLLER_NAME));
    let owner = json!([{
        "apiVersion": "v1", "kind": "Service", "name": name, "uid": meta_str(svc, "uid"),
        "controller": true, "blockOwnerDeletion": true,
    }]);
    let mut failed: Option<String> = None;
    let mut kept: Vec<String> = Vec::new();
    for (ports, endpoints) in desired_slices(state, svc, sel).into_values() {
        let endpoints = if endpoints.is_empty() {
            Value::Null
        } else {
            Value::Array(endpoints)
        };
        let reuse = existing.iter().find(|s| {
            !kept.contains(&meta_str(s, "name").to_string())
                && s.get("ports").unwrap_or(&Value::Null) == &ports
        });
        let mut metadata = json!({
            "namespace": ns, "labels": labels, "ownerReferences": owner,
        });
        match reuse {
            Some(s) => {
                let slice_name = meta_str(s, "name").to_string();
                metadata["name"] = json!(slice_name);
                kept.push(slice_name);
            }
            None => metadata["generateName"] = json!(format!("{name}-")),
        }
        let desired = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        });
        // reconciler.go's wrapping of a failed write.
        let res = match reuse {
            Some(s) => {
                let slice_name = meta_str(s, "name").to_string();
                let fields = ["addressType", "endpoints", "ports"];
                apply(state, ENDPOINTSLICES, desired, &fields).map_err(|f| {
                    format!(
                        "failed to update {slice_name} EndpointSlice for Service {ns}/{name}: {}",
                        f.message
                    )
                })
            }
            None => state
                .create_object("discovery.k8s.io", "endpointslices", desired)
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "failed to create EndpointSlice for Service {ns}/{name}: {}",
                        e.message
                    )
                }),
        };
        if let Err(m) = res {
            failed.get_or_insert(m);
        }
    }
    for s in &existing {
        let slice_name = meta_str(s, "name");
        if kept.iter().any(|k| k == slice_name) {
            continue;
        }
        if let Err(e) = state.delete_object("discovery.k8s.io", "endpointslices", ns, slice_name) {
            failed.get_or_insert(format!(
                "failed to delete {slice_name} EndpointSlice for Service {ns}/{name}: {}",
                e.message
            ));
        }
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    fn cluster() -> (State, Runtime) {
        let mut s = State::new(1000);
        s.bootstrap("", "namespaces", json!({"metadata": {"name": "ns"}}))
            .unwrap();
        let rt = Runtime::new(vec![
            Box::new(EndpointsController),
            Box::new(EndpointSliceController),
        ]);
        (s, rt)
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "x"}},
               "spec": {"nodeName": "n", "hostname": name, "subdomain": "h",
                        "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": port}]}]},
               "status": {"phase": "Running", "podIP": ip, "conditions": [
                   {"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn endpoints_split_ready_and_not_ready_and_group_by_ports() {
        let (mut s, mut rt) = cluster();
        let svc = json!({"metadata": {"name": "h", "namespace": "ns"},
            "spec": {"clusterIP": "None", "selector": {"app": "x"},
                     "ports": [{"name": "p", "port": 80, "targetPort": "web", "protocol": "TCP"}]}});
        s.create_object("", "services", svc).unwrap();
        for p in [
            pod("a", "127.0.0.2", true, 8080),
            pod("b", "127.0.0.3", false, 8080),
            pod("c", "127.0.0.4", true, 9090),
        ] {
            // Status is not taken on create: write it as the kubelet does.
            let status = p["status"].clone();
            let mut stored = s.create_object("", "pods", p).unwrap();
            stored["status"] = status;
            s.update_object("", "pods", stored, true).unwrap();
        }
        rt.settle(&mut s);
        let ep = s.object("", "endpoints", "ns", "h").unwrap();
        let subsets = ep["subsets"].as_array().unwrap();
        assert_eq!(subsets.len(), 2, "one subset per port set: {ep:#}");
        assert_eq!(subsets[0]["addresses"][0]["ip"], "127.0.0.2");
        assert_eq!(subsets[0]["addresses"][0]["hostname"], "a");
        assert_eq!(subsets[0]["notReadyAddresses"][0]["ip"], "127.0.0.3");
        assert_eq!(
            subsets[0]["ports"],
            json!([{"name": "p", "port": 8080, "protocol": "TCP"}])
        );
        assert_eq!(subsets[1]["addresses"][0]["ip"], "127.0.0.4");
        assert_eq!(subsets[1]["ports"][0]["port"], 9090);
        assert_eq!(
            ep["metadata"]["labels"]["service.kubernetes.io/headless"],
            ""
        );
        let slices = s.objects_of("discovery.k8s.io", "endpointslices");
        assert_eq!(slices.len(), 2, "one slice per port set");
        // Publishing not-ready addresses makes every pod ready in both.
        let mut svc = s.object("", "services", "ns", "h").unwrap();
        svc["spec"]["publishNotReadyAddresses"] = json!(true);
        s.update_object("", "services", svc, false).unwrap();
        rt.settle(&mut s);
        let ep = s.object("", "endpoints", "ns", "h").unwrap();
        assert_eq!(
            ep["subsets"][0]["addresses"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(ep["subsets"][0].get("notReadyAddresses").is_none());
        let ready: usize = s
            .objects_of("discovery.k8s.io", "endpointslices")
            .iter()
            .flat_map(|sl| sl["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .count();
        assert_eq!(ready, 3);
    }

    #[test]
    fn services_without_selector_are_left_alone() {
        let (mut s, mut rt) = cluster();
        let svc = json!({"metadata": {"name": "ext", "namespace": "ns"},
            "spec": {"ports": [{"port": 80}]}});
        s.create_object("", "services", svc).unwrap();
        let mine = json!({"metadata": {"name": "ext", "namespace": "ns"},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]});
        s.create_object("", "endpoints", mine.clone()).unwrap();
        rt.settle(&mut s);
        let ep = s.object("", "endpoints", "ns", "ext").unwrap();
        assert_eq!(ep["subsets"], mine["subsets"]);
        assert!(
            s.objects_of("discovery.k8s.io", "endpointslices")
                .is_empty()
        );
    }

    #[test]
    fn named_and_numeric_target_ports() {
        let pod = json!({"spec": {"containers": [{"ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        ]}]}});
        let port = |p: Value| find_port(&pod, &p);
        assert_eq!(port(json!({"port": 80, "targetPort": 9000})), Some(9000));
        assert_eq!(port(json!({"port": 80, "targetPort": "http"})), Some(8080));
        assert_eq!(port(json!({"port": 80})), Some(80));
        assert_eq!(port(json!({"port": 53, "targetPort": "dns"})), None);
        assert_eq!(
            port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"})),
            Some(53)
        );
        assert_eq!(port(json!({"port": 80, "targetPort": "none"})), None);
    }

    #[test]
    fn slice_conditions_follow_readiness_and_termination() {
        let svc = json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {}});
        let pod = |ready: &str, deleting: bool| {
            let mut p = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
                "spec": {"nodeName": "n"},
                "status": {"podIP": "127.0.0.2",
                    "conditions": [{"type": "Ready", "status": ready}]}});
            if deleting {
                p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            p
        };
        let c = |p: Value| slice_endpoint(&p, &svc)["conditions"].clone();
        assert_eq!(
            c(pod("True", false)),
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(
            c(pod("True", true)),
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert_eq!(
            c(pod("False", false)),
            json!({"ready": false, "serving": false, "terminating": false})
        );
    }
}
