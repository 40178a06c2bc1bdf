//! The node's own objects: the `Node` (registration and status as kubernetes
//! pkg/kubelet/kubelet_node_status.go and pkg/kubelet/nodestatus/setters.go build them: labels,
//! capacity and allocatable, the pressure and Ready conditions with their reasons and
//! messages, addresses, nodeInfo) and its `Lease` in `kube-node-lease`
//! (pkg/kubelet/nodelease, component-helpers/apimachinery/lease), both renewed every
//! [`super::KubeletConfig::heartbeat`]. Capacity and nodeInfo come from the host.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

use super::NODE_NAME;
use crate::cluster::App;
use crate::events::{self, Record};
use crate::store::{State, meta_str, now};

/// Pods per node (the kubelet's default --max-pods).
const MAX_PODS: u32 = 110;
/// The Lease's leaseDurationSeconds (kubelet default nodeLeaseDurationSeconds).
const LEASE_SECONDS: u64 = 40;

/// What the node reports about its host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Logical CPUs (capacity `cpu`).
    pub cpus: usize,
    /// MemTotal (capacity `memory`).
    pub memory_ki: u64,
    /// Size of the temp directory's filesystem (capacity `ephemeral-storage`).
    pub ephemeral_ki: u64,
    /// /etc/machine-id.
    pub machine_id: String,
    /// The kernel's boot_id.
    pub boot_id: String,
    /// The DMI product UUID when readable, else made up for this run.
    pub system_uuid: String,
    /// The kernel release.
    pub kernel: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os_image: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// MemTotal of /proc/meminfo, in KiB.
fn mem_total_ki() -> u64 {
    read_trimmed("/proc/meminfo")
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Size of the filesystem holding `dir`, in KiB (cadvisor's rootfs capacity).
fn fs_capacity_ki(dir: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 0;
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    (st.f_blocks as u64).saturating_mul(st.f_frsize as u64) / 1024
}

/// PRETTY_NAME of /etc/os-release (the osImage the kubelet reports).
fn os_image() -> String {
    read_trimmed("/etc/os-release")
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Unknown".into())
}

impl HostFacts {
    /// Reads the host (missing files give neutral values, never an error).
    pub fn read() -> Self {
        let generated = || uuid::Uuid::new_v4().to_string();
        HostFacts {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_ki: mem_total_ki(),
            ephemeral_ki: fs_capacity_ki(&std::env::temp_dir()),
            machine_id: read_trimmed("/etc/machine-id")
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_else(generated),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid")
                .map(|s| s.to_lowercase())
                .unwrap_or_else(generated),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            os_image: os_image(),
        }
    }
}

/// GOARCH of this host (what kubernetes.io/arch and nodeInfo.architecture carry).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// One node condition (setters.go MemoryPressureCondition, DiskPressureCondition,
/// PIDPressureCondition, ReadyCondition: healthy reasons and messages).
fn condition(ty: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({"type": ty, "status": status, "lastHeartbeatTime": at, "lastTransitionTime": at,
           "reason": reason, "message": message})
}

/// The Node object as first registered.
pub fn node_object(facts: &HostFacts, host_ip: Ipv4Addr, kubelet_version: &str) -> Value {
    let at = now();
    let arch = go_arch();
    let capacity = json!({
        "cpu": facts.cpus.to_string(),
        "memory": format!("{}Ki", facts.memory_ki),
        "ephemeral-storage": format!("{}Ki", facts.ephemeral_ki),
        "pods": MAX_PODS.to_string(),
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "beta.kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "kfconform-emulator",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available", &at),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure", &at),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available", &at),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", &at),
            ],
            "addresses": [
                {"type": "InternalIP", "address": host_ip.to_string()},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": facts.machine_id,
                "systemUUID": facts.system_uuid,
                "bootID": facts.boot_id,
                "kernelVersion": facts.kernel,
                "osImage": facts.os_image,
                "containerRuntimeVersion": format!("kfconform://{}", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": kubelet_version,
                "operatingSystem": "linux",
                "architecture": arch,
            },
        },
    })
}

/// The reference the kubelet's node events carry: its nodeRef uses the node name as UID
/// (pkg/kubelet/kubelet.go), which `kubectl describe node` searches for.
fn node_ref() -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE_NAME, "uid": NODE_NAME}})
}

/// Creates the Node (or adopts one left by a user) and records the kubelet's start-up events
/// (kubelet.go "Starting kubelet."; kubelet_node_status.go recordNodeStatusEvent
/// "Node %s status is now: %s").
pub fn register(st: &mut State, node: Value) {
    if st.object("", "nodes", "", NODE_NAME).is_none() {
        // Created, then its status written (create ignores status, as the apiserver does).
        let created = st
            .create_object("", "nodes", node.clone())
            .and_then(|mut n| {
                n["status"] = node["status"].clone();
                st.update_object("", "nodes", n, true)
            });
        if let Err(e) = created {
            tracing::warn!(error = %e.message, "kubelet cannot register its node");
            return;
        }
    }
    let r = node_ref();
    let ev = |st: &mut State, reason: &str, message: String| {
        events::record(
            st,
            Record::normal("kubelet", &r, reason, message).on_host(NODE_NAME),
        );
    };
    ev(st, "Starting", "Starting kubelet.".into());
    ev(
        st,
        "NodeAllocatableEnforced",
        "Updated Node Allocatable limit across pods".into(),
    );
    for status in [
        "NodeHasSufficientMemory",
        "NodeHasNoDiskPressure",
        "NodeHasSufficientPID",
        "NodeReady",
    ] {
        ev(
            st,
            status,
            format!("Node {NODE_NAME} status is now: {status}"),
        );
    }
    heartbeat(st, None);
}

/// MicroTime (metav1.MicroTime's RFC 3339 with microseconds).
fn micro_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One heartbeat: the Lease renewed (created if missing) and the conditions'
/// lastHeartbeatTime refreshed; a Node deleted meanwhile is registered again from `fresh`.
pub fn heartbeat(st: &mut State, fresh: Option<&Value>) {
    let Some(mut node) = st.object("", "nodes", "", NODE_NAME) else {
        if let Some(n) = fresh {
            register(st, n.clone());
        }
        return;
    };
    let at = now();
    if let Some(conds) = node
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds {
            c["lastHeartbeatTime"] = json!(at);
        }
    }
    let uid = meta_str(&node, "uid").to_string();
    if let Err(e) = st.update_object("", "nodes", node, true) {
        tracing::debug!(error = %e.message, "node heartbeat not written");
    }
    renew_lease(st, &uid);
}

fn renew_lease(st: &mut State, node_uid: &str) {
    let renew = micro_now();
    match st.object(
        "coordination.k8s.io",
        "leases",
        "kube-node-lease",
        NODE_NAME,
    ) {
        Some(mut lease) => {
            lease["spec"]["renewTime"] = json!(renew);
            lease["spec"]["holderIdentity"] = json!(NODE_NAME);
            if let Err(e) = st.update_object("coordination.k8s.io", "leases", lease, false) {
                tracing::debug!(error = %e.message, "node lease not renewed");
            }
        }
        None => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": NODE_NAME,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": NODE_NAME,
                                         "uid": node_uid}],
                },
                "spec": {
                    "holderIdentity": NODE_NAME,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": renew,
                },
            });
            if let Err(e) = st.create_object("coordination.k8s.io", "leases", lease) {
                tracing::debug!(error = %e.message, "node lease not created");
            }
        }
    }
}

/// Registers the node and keeps its heartbeat until the emulator stops.
pub(crate) async fn run(app: App, node: Value, every: Duration) {
    register(&mut app.lock(), node.clone());
    let every = every.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = app.cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        heartbeat(&mut app.lock(), Some(&node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_reports_the_host() {
        let facts = HostFacts::read();
        assert!(facts.cpus >= 1);
        let n = node_object(&facts, Ipv4Addr::new(127, 9, 0, 1), "v1.34.2");
        assert_eq!(n["status"]["capacity"]["pods"], "110");
        assert_eq!(n["status"]["allocatable"], n["status"]["capacity"]);
        assert_eq!(n["status"]["addresses"][0]["address"], "127.9.0.1");
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.34.2");
        assert_eq!(n["status"]["conditions"][3]["reason"], "KubeletReady");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/arch"], go_arch());
    }

    #[test]
    fn registration_writes_the_status_and_the_lease() {
        let mut st = State::new(1000);
        for ns in ["default", "kube-node-lease"] {
            st.bootstrap("", "namespaces", json!({"metadata": {"name": ns}}))
                .unwrap();
        }
        let n = node_object(&HostFacts::read(), Ipv4Addr::new(127, 9, 0, 1), "v1.34.2");
        register(&mut st, n);
        let stored = st.object("", "nodes", "", NODE_NAME).unwrap();
        assert_eq!(stored["status"]["capacity"]["pods"], "110");
        let lease = st
            .object(
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                NODE_NAME,
            )
            .unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], NODE_NAME);
        assert_eq!(
            lease["metadata"]["ownerReferences"][0]["uid"],
            stored["metadata"]["uid"]
        );
        let starting = st
            .objects_of("", "events")
            .into_iter()
            .find(|e| e["reason"] == "Starting")
            .unwrap();
        assert_eq!(starting["involvedObject"]["uid"], NODE_NAME);
        assert_eq!(starting["source"]["host"], NODE_NAME);
    }
}
