//! The columns kube-apiserver prints for built-in kinds (`kubectl get pods` READY, STATUS,
//! RESTARTS, ...), following kubernetes `pkg/printers/internalversion/printers.go`
//! (`AddHandlers` for the column definitions, `printPod`, `printDeployment`, `printJob`,
//! `printService`, `printEvent`, `printNode`, ... for the cells). Kinds without a printer get
//! NAME and AGE, as upstream's default handler prints them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{human_age, human_duration};

/// One column definition of a built-in printer.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub name: &'static str,
    pub type_: &'static str,
    /// `name` for the object's name column, else empty.
    pub format: &'static str,
    /// 0: shown by default; 1: only with `-o wide`.
    pub priority: i64,
    pub description: &'static str,
}

/// A built-in kind's columns and how to fill one row.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub columns: &'static [Col],
    pub cells: fn(&Value) -> Vec<Value>,
}

const fn col(name: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_: "string",
        format: "",
        priority: 0,
        description,
    }
}

const fn wide(name: &'static str, description: &'static str) -> Col {
    Col {
        priority: 1,
        ..col(name, description)
    }
}

const fn int(name: &'static str, description: &'static str) -> Col {
    Col {
        type_: "integer",
        ..col(name, description)
    }
}

const NAME: Col = Col {
    format: "name",
    ..col(
        "Name",
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    )
};
const AGE: Col = col(
    "Age",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);
const CONTAINERS: Col = wide("Containers", "Names of each container in the template.");
const IMAGES: Col = wide(
    "Images",
    "Images referenced by each container in the template.",
);
const SELECTOR: Col = wide("Selector", "A label query over pods.");

const POD: &[Col] = &[
    NAME,
    col(
        "Ready",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "podIP address allocated to the pod."),
    wide(
        "Node",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    wide(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
    ),
    wide(
        "Readiness Gates",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];
const DEPLOYMENT: &[Col] = &[
    NAME,
    col("Ready", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const REPLICASET: &[Col] = &[
    NAME,
    int("Desired", "Replicas is the number of desired pods."),
    int(
        "Current",
        "Replicas is the most recently observed number of non-terminating pods.",
    ),
    int(
        "Ready",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const JOB: &[Col] = &[
    NAME,
    col("Status", "Status of the job."),
    col(
        "Completions",
        "The desired number of successfully finished pods the job should be run with.",
    ),
    col("Duration", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const SERVICE: &[Col] = &[
    NAME,
    col("Type", "type determines how the Service is exposed."),
    col("Cluster-IP", "clusterIP is the IP address of the service."),
    col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col(
        "Port(s)",
        "The list of ports that are exposed by this service.",
    ),
    AGE,
    wide(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];
const EVENT: &[Col] = &[
    col(
        "Last Seen",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "The object that this event is about."),
    wide(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    wide("Source", "The component reporting this event."),
    col(
        "Message",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "The time at which the event was first recorded.",
    ),
    wide("Count", "The number of times this event has occurred."),
    Col {
        priority: 1,
        ..NAME
    },
];
const NODE: &[Col] = &[
    NAME,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE,
    col("Version", "Kubelet Version reported by the node."),
    wide("Internal-IP", "List of addresses reachable to the node."),
    wide("External-IP", "List of addresses reachable to the node."),
    wide(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];
const CONFIGMAP: &[Col] = &[
    NAME,
    int("Data", "Data contains the configuration data."),
    AGE,
];
const SECRET: &[Col] = &[
    NAME,
    col(
        "Type",
        "Used to facilitate programmatic handling of secret data.",
    ),
    int("Data", "Data contains the secret data."),
    AGE,
];
const ENDPOINTS: &[Col] = &[
    NAME,
    col(
        "Endpoints",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];
const ENDPOINTSLICE: &[Col] = &[
    NAME,
    col(
        "AddressType",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    col(
        "Ports",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    col(
        "Endpoints",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];
const BINDING: &[Col] = &[
    NAME,
    col(
        "Role",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    AGE,
    wide("Users", "Users in the roleBinding"),
    wide("Groups", "Groups in the roleBinding"),
    wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
];

/// The printer of a built-in resource, if upstream has one the emulator reproduces.
pub fn printer(group: &str, plural: &str) -> Option<Printer> {
    let p = |columns, cells| Some(Printer { columns, cells });
    match (group, plural) {
        ("", "pods") => p(POD, pod_cells),
        ("apps", "deployments") => p(DEPLOYMENT, deployment_cells),
        ("apps", "replicasets") => p(REPLICASET, replicaset_cells),
        ("batch", "jobs") => p(JOB, job_cells),
        ("", "services") => p(SERVICE, service_cells),
        ("", "events") => p(EVENT, event_cells),
        ("", "nodes") => p(NODE, node_cells),
        ("", "configmaps") => p(CONFIGMAP, configmap_cells),
        ("", "secrets") => p(SECRET, secret_cells),
        ("", "endpoints") => p(ENDPOINTS, endpoints_cells),
        ("discovery.k8s.io", "endpointslices") => p(ENDPOINTSLICE, endpointslice_cells),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            p(BINDING, binding_cells)
        }
        _ => None,
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn name(o: &Value) -> Value {
    json!(s(o, "/metadata/name"))
}

fn age(o: &Value) -> Value {
    match s(o, "/metadata/creationTimestamp") {
        "" => json!("<unknown>"),
        ts => json!(human_age(ts)),
    }
}

fn or_none(x: String) -> String {
    if x.is_empty() { "<none>".into() } else { x }
}

/// `k=v,k2=v2` of a label map (sorted, as labels.Set.String renders it).
fn label_map(m: Option<&Value>) -> String {
    let Some(m) = m.and_then(Value::as_object) else {
        return String::new();
    };
    let sorted: BTreeMap<&String, &Value> = m.iter().collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A LabelSelector as metav1.LabelSelectorAsSelector renders it, `<none>` when absent.
fn selector(sel: Option<&Value>) -> String {
    or_none(
        sel.and_then(crate::selectors::format_label_selector)
            .unwrap_or_default(),
    )
}

/// Containers and images of a pod template, comma-joined.
fn template_cells(o: &Value, template: &str) -> (Value, Value) {
    let cs = arr(o, &format!("{template}/spec/containers"));
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// Restart count and the latest restart time of a container status.
fn restarts_of(c: &Value, restarts: &mut i64, last: &mut String) {
    *restarts += n(c, "/restartCount");
    let at = s(c, "/lastState/terminated/finishedAt");
    if at > last.as_str() {
        *last = at.to_string();
    }
}

/// The `Init:...` reason while init containers have not all finished (None when they have),
/// counting ready restartable (sidecar) init containers into `ready`, as `printPod` does.
fn init_reason(
    o: &Value,
    ready: &mut i64,
    restarts: &mut i64,
    last: &mut String,
) -> Option<String> {
    let total = arr(o, "/spec/initContainers");
    for (i, c) in arr(o, "/status/initContainerStatuses").iter().enumerate() {
        restarts_of(c, restarts, last);
        let sidecar = total
            .iter()
            .any(|ic| s(ic, "/name") == s(c, "/name") && s(ic, "/restartPolicy") == "Always");
        let term = c.pointer("/state/terminated");
        let waiting = s(c, "/state/waiting/reason");
        if term.is_some_and(|t| n(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && c.pointer("/started").and_then(Value::as_bool) == Some(true) {
            if c.pointer("/ready").and_then(Value::as_bool) == Some(true) {
                *ready += 1;
            }
            continue;
        }
        return Some(match term {
            Some(t) => match (s(t, "/reason"), n(t, "/signal")) {
                ("", 0) => format!("Init:ExitCode:{}", n(t, "/exitCode")),
                ("", sig) => format!("Init:Signal:{sig}"),
                (r, _) => format!("Init:{r}"),
            },
            None if !waiting.is_empty() && waiting != "PodInitializing" => {
                format!("Init:{waiting}")
            }
            None => format!("Init:{i}/{}", total.len()),
        });
    }
    None
}

/// A pod's STATUS, READY and RESTARTS as `printPod` derives them: the phase (or
/// `status.reason`), overridden by init containers' and containers' waiting/terminated
/// reasons, `Completed` with a running container shown as Running/NotReady, `Terminating`.
fn pod_status(o: &Value) -> (String, i64, i64, String) {
    let mut reason = match s(o, "/status/reason") {
        "" => s(o, "/status/phase").to_string(),
        r => r.to_string(),
    };
    let (mut ready, mut restarts, mut last) = (0, 0, String::new());
    let init = init_reason(o, &mut ready, &mut restarts, &mut last);
    let initialized = has_condition(o, "Initialized");
    if let Some(r) = &init {
        reason = r.clone();
    }
    if init.is_none() || initialized {
        let mut running = false;
        for c in arr(o, "/status/containerStatuses").iter().rev() {
            restarts_of(c, &mut restarts, &mut last);
            let (w, t) = (
                s(c, "/state/waiting/reason"),
                s(c, "/state/terminated/reason"),
            );
            if !w.is_empty() {
                reason = w.to_string();
            } else if !t.is_empty() {
                reason = t.to_string();
            } else if let Some(term) = c.pointer("/state/terminated") {
                reason = match n(term, "/signal") {
                    0 => format!("ExitCode:{}", n(term, "/exitCode")),
                    sig => format!("Signal:{sig}"),
                };
            } else if c.pointer("/ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            reason = if pod_ready(o) { "Running" } else { "NotReady" }.into();
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(o, "/status/reason") == "NodeLost" {
            "Unknown"
        } else {
            "Terminating"
        }
        .into();
    }
    (reason, ready, restarts, last)
}

fn pod_ready(o: &Value) -> bool {
    arr(o, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
}

fn pod_cells(o: &Value) -> Vec<Value> {
    let (status, ready, restarts, last) = pod_status(o);
    let total = arr(o, "/spec/containers").len();
    let restarts = if restarts > 0 && !last.is_empty() {
        format!("{restarts} ({} ago)", human_age(&last))
    } else {
        restarts.to_string()
    };
    let gates = arr(o, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(o, "/status/conditions");
        let true_gates = gates
            .iter()
            .filter(|g| {
                conds
                    .iter()
                    .any(|c| s(c, "/type") == s(g, "/conditionType") && s(c, "/status") == "True")
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    vec![
        name(o),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        age(o),
        json!(or_none(s(o, "/status/podIP").into())),
        json!(or_none(s(o, "/spec/nodeName").into())),
        json!(or_none(s(o, "/status/nominatedNodeName").into())),
        json!(gates),
    ]
}

fn deployment_cells(o: &Value) -> Vec<Value> {
    let desired = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = template_cells(o, "/spec/template");
    vec![
        name(o),
        json!(format!("{}/{desired}", n(o, "/status/readyReplicas"))),
        json!(n(o, "/status/updatedReplicas")),
        json!(n(o, "/status/availableReplicas")),
        age(o),
        containers,
        images,
        json!(selector(o.pointer("/spec/selector"))),
    ]
}

fn replicaset_cells(o: &Value) -> Vec<Value> {
    let desired = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = template_cells(o, "/spec/template");
    vec![
        name(o),
        json!(desired),
        json!(n(o, "/status/replicas")),
        json!(n(o, "/status/readyReplicas")),
        age(o),
        containers,
        images,
        json!(selector(o.pointer("/spec/selector"))),
    ]
}

fn has_condition(o: &Value, type_: &str) -> bool {
    arr(o, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == type_ && s(c, "/status") == "True")
}

/// A Job's STATUS as `printJob` picks it, in upstream's order.
fn job_status(o: &Value) -> &'static str {
    if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

/// `duration.HumanDuration` of the span between two RFC 3339 times.
fn span(from: &str, to: &str) -> String {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(from), parse(to)) {
        (Some(a), Some(b)) => human_duration((b - a).num_seconds()),
        _ => String::new(),
    }
}

fn job_cells(o: &Value) -> Vec<Value> {
    let succeeded = n(o, "/status/succeeded");
    let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match o.pointer("/spec/parallelism").and_then(Value::as_i64) {
            Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = s(o, "/status/startTime");
    let duration = match (start, s(o, "/status/completionTime")) {
        ("", _) => String::new(),
        (st, "") => human_age(st),
        (st, done) => span(st, done),
    };
    let (containers, images) = template_cells(o, "/spec/template");
    vec![
        name(o),
        json!(job_status(o)),
        json!(completions),
        json!(duration),
        age(o),
        containers,
        images,
        json!(selector(o.pointer("/spec/selector"))),
    ]
}

/// EXTERNAL-IP as `getServiceExternalIP` renders it per service type.
fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = arr(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match s(o, "/spec/type") {
        "ExternalName" => s(o, "/spec/externalName").to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<&str> = arr(o, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match s(i, "/ip") {
                    "" => s(i, "/hostname"),
                    ip => ip,
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ => or_none(external.join(",")),
    }
}

fn service_cells(o: &Value) -> Vec<Value> {
    let ports: Vec<String> = arr(o, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = match s(p, "/protocol") {
                "" => "TCP",
                x => x,
            };
            match n(p, "/nodePort") {
                0 => format!("{}/{proto}", n(p, "/port")),
                np => format!("{}:{np}/{proto}", n(p, "/port")),
            }
        })
        .collect();
    let type_ = match s(o, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    vec![
        name(o),
        json!(type_),
        json!(or_none(s(o, "/spec/clusterIP").into())),
        json!(service_external_ip(o)),
        json!(or_none(ports.join(","))),
        age(o),
        json!(or_none(label_map(o.pointer("/spec/selector")))),
    ]
}

fn event_cells(o: &Value) -> Vec<Value> {
    let first = s(o, "/firstTimestamp");
    let last = match s(o, "/lastTimestamp") {
        "" => first,
        l => l,
    };
    let count = n(o, "/count");
    let since = |t: &str| {
        if t.is_empty() {
            "<unknown>".into()
        } else {
            human_age(t)
        }
    };
    let last_seen = if count > 1 {
        format!("{} (x{count} over {})", since(last), since(first))
    } else {
        since(last)
    };
    let source = match (s(o, "/source/component"), s(o, "/source/host")) {
        (c, "") => c.to_string(),
        (c, h) => format!("{c}, {h}"),
    };
    vec![
        json!(last_seen),
        json!(s(o, "/type")),
        json!(s(o, "/reason")),
        json!(format!(
            "{}/{}",
            s(o, "/involvedObject/kind").to_lowercase(),
            s(o, "/involvedObject/name")
        )),
        json!(s(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(o, "/message").trim()),
        json!(since(first)),
        json!(count.to_string()),
        name(o),
    ]
}

/// STATUS of a node: its Ready condition (`Ready`, `NotReady`, `Unknown`), plus
/// `SchedulingDisabled` when cordoned.
fn node_status(o: &Value) -> String {
    let ready = arr(o, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == "Ready")
        .map(|c| match s(c, "/status") {
            "True" => "Ready",
            "False" => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    let mut out = ready.to_string();
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        out.push_str(",SchedulingDisabled");
    }
    out
}

fn node_cells(o: &Value) -> Vec<Value> {
    let roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(r.to_string())
            } else if k == "kubernetes.io/role" {
                v.as_str().map(str::to_string)
            } else {
                None
            }
        })
        .collect();
    let address = |t: &str| {
        arr(o, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == t)
            .map(|a| s(a, "/address").to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        name(o),
        json!(node_status(o)),
        json!(or_none(roles.join(","))),
        age(o),
        json!(s(o, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(or_none(s(o, "/status/nodeInfo/osImage").into())),
        json!(or_none(s(o, "/status/nodeInfo/kernelVersion").into())),
        json!(or_none(
            s(o, "/status/nodeInfo/containerRuntimeVersion").into()
        )),
    ]
}

fn count_of(o: &Value, field: &str) -> usize {
    o.get(field)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
}

fn configmap_cells(o: &Value) -> Vec<Value> {
    let data = count_of(o, "data") + count_of(o, "binaryData");
    vec![name(o), json!(data), age(o)]
}

fn secret_cells(o: &Value) -> Vec<Value> {
    let type_ = match s(o, "/type") {
        "" => "Opaque",
        t => t,
    };
    vec![name(o), json!(type_), json!(count_of(o, "data")), age(o)]
}

/// `formatEndpoints`: up to three `ip:port`, then `+ N more...`.
fn endpoint_list(addrs: Vec<String>) -> String {
    const MAX: usize = 3;
    if addrs.is_empty() {
        return "<none>".into();
    }
    let shown = addrs
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if addrs.len() > MAX {
        format!("{shown} + {} more...", addrs.len() - MAX)
    } else {
        shown
    }
}

fn endpoints_cells(o: &Value) -> Vec<Value> {
    let mut list = Vec::new();
    for ss in arr(o, "/subsets") {
        for p in arr(ss, "/ports") {
            for a in arr(ss, "/addresses") {
                list.push(format!("{}:{}", s(a, "/ip"), n(p, "/port")));
            }
        }
    }
    vec![name(o), json!(endpoint_list(list)), age(o)]
}

fn endpointslice_cells(o: &Value) -> Vec<Value> {
    let ports: Vec<String> = arr(o, "/ports")
        .iter()
        .map(|p| n(p, "/port").to_string())
        .collect();
    let addrs: Vec<String> = arr(o, "/endpoints")
        .iter()
        .flat_map(|e| arr(e, "/addresses").iter().filter_map(Value::as_str))
        .map(str::to_string)
        .collect();
    vec![
        name(o),
        json!(s(o, "/addressType")),
        json!(or_none(ports.join(","))),
        json!(endpoint_list(addrs)),
        age(o),
    ]
}

fn binding_cells(o: &Value) -> Vec<Value> {
    let subjects = |kind: &str| -> String {
        arr(o, "/subjects")
            .iter()
            .filter(|x| s(x, "/kind") == kind)
            .map(|x| match (kind, s(x, "/namespace")) {
                ("ServiceAccount", ns) => format!("{ns}/{}", s(x, "/name")),
                _ => s(x, "/name").to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            s(o, "/roleRef/kind"),
            s(o, "/roleRef/name")
        )),
        age(o),
        json!(subjects("User")),
        json!(subjects("Group")),
        json!(subjects("ServiceAccount")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printer_fills_every_column() {
        for (g, p) in [
            ("", "pods"),
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("batch", "jobs"),
            ("", "services"),
            ("", "events"),
            ("", "nodes"),
            ("", "configmaps"),
            ("", "secrets"),
            ("", "endpoints"),
            ("discovery.k8s.io", "endpointslices"),
            ("rbac.authorization.k8s.io", "rolebindings"),
        ] {
            let pr = printer(g, p).expect("printer");
            assert_eq!((pr.cells)(&json!({})).len(), pr.columns.len(), "{g}/{p}");
        }
    }

    #[test]
    fn pod_status_follows_container_states() {
        let pod = |statuses: Value, phase: &str| {
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": phase, "containerStatuses": statuses}})
        };
        let waiting = pod(
            json!([{"name": "a", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                   {"name": "b", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]),
            "Pending",
        );
        let cells = pod_cells(&waiting);
        assert_eq!(cells[1], json!("1/2"));
        assert_eq!(cells[2], json!("ImagePullBackOff"));
        let crashed = pod(
            json!([{"name": "a", "ready": false, "restartCount": 3,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:00:00Z"}},
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
            "Running",
        );
        let cells = pod_cells(&crashed);
        assert_eq!(cells[2], json!("CrashLoopBackOff"));
        assert!(
            cells[3].as_str().is_some_and(|r| r.starts_with("3 (")),
            "{}",
            cells[3]
        );
        let mut deleting = pod(json!([]), "Running");
        deleting["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:00:00Z"});
        assert_eq!(pod_cells(&deleting)[2], json!("Terminating"));
        let done = pod(
            json!([{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]),
            "Succeeded",
        );
        assert_eq!(pod_cells(&done)[2], json!("Completed"));
    }

    #[test]
    fn services_jobs_and_events() {
        let svc = json!({"spec": {"type": "ClusterIP", "clusterIP": "127.0.0.9",
            "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "x"}}});
        let cells = service_cells(&svc);
        assert_eq!(cells[2], json!("127.0.0.9"));
        assert_eq!(cells[3], json!("<none>"));
        assert_eq!(cells[4], json!("80/TCP"));
        assert_eq!(cells[6], json!("app=x"));
        let job = json!({"spec": {"completions": 2}, "status": {"succeeded": 1,
            "conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(job_cells(&job)[1], json!("Failed"));
        assert_eq!(job_cells(&job)[2], json!("1/2"));
        let ev = json!({"type": "Normal", "reason": "Started", "count": 1,
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Started container a",
            "source": {"component": "kubelet", "host": "n"}});
        let cells = event_cells(&ev);
        assert_eq!(cells[3], json!("pod/p"));
        assert_eq!(cells[5], json!("kubelet, n"));
    }
}
