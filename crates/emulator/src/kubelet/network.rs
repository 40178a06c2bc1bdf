//! The pod network on loopback (see ARCHITECTURE.md, "Pod network"): every pod gets its own
//! 127.x.y.z address (Linux routes all of 127/8 to lo), and cluster DNS is replaced by a hosts
//! map of fully qualified service and pod names that the kubelet keeps current and hands to
//! probe processes, together with the search domains a pod's resolv.conf would list.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use rand::Rng;
use serde_json::Value;

use crate::store::meta_str;

/// The cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Offsets above this are not handed out: 4094 pods at once is plenty for one node.
const MAX_OFFSET: u32 = 4096;

/// Pod addresses of one node: a random /20-sized block of 127/8, so emulators running side by
/// side (parallel tests) almost never share addresses.
#[derive(Debug)]
pub struct IpPool {
    base: u32,
    used: BTreeSet<u32>,
}

impl IpPool {
    /// A pool at a random place in 127/8.
    pub fn new() -> Self {
        let mut rng = rand::rng();
        let a: u8 = rng.random_range(1..=254);
        let b: u8 = rng.random_range(0..=239);
        IpPool {
            base: u32::from(Ipv4Addr::new(127, a, b, 0)),
            used: BTreeSet::new(),
        }
    }

    /// The node's own address (hostIP).
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// A free pod address.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let n = (2..MAX_OFFSET).find(|n| {
            let last = (self.base + n) & 0xff;
            last != 0 && last != 255 && !self.used.contains(n)
        })?;
        self.used.insert(n);
        Some(Ipv4Addr::from(self.base + n))
    }

    /// Returns an address to the pool.
    pub fn release(&mut self, ip: Ipv4Addr) {
        let n = u32::from(ip).wrapping_sub(self.base);
        self.used.remove(&n);
    }
}

/// The prefix length of the Service address block.
pub const SERVICE_PREFIX: u8 = 16;

/// A random Service address block (`127.c.0.0/16`) outside the pod block of the node whose
/// address is `host_ip`: Services get loopback cluster IPs the service proxy can listen on,
/// reachable from pods and from the host alike.
pub fn service_cidr(host_ip: Ipv4Addr) -> String {
    let pods = host_ip.octets()[1];
    let mut rng = rand::rng();
    let mut c: u8 = rng.random_range(1..=253);
    if c >= pods {
        c += 1;
    }
    format!("{}/{SERVICE_PREFIX}", Ipv4Addr::new(127, c, 0, 0))
}

impl Default for IpPool {
    fn default() -> Self {
        Self::new()
    }
}

/// The search domains of a pod in `ns` (dnsPolicy ClusterFirst).
pub fn search_domains(ns: &str) -> String {
    format!("{ns}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}")
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(ty)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Whether a pod is an endpoint of a service (the EndpointSlice controller's rules): it has an
/// IP, is not terminating or terminal, and is ready unless the service publishes not-ready
/// addresses.
fn is_endpoint(pod: &Value, publish_not_ready: bool) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    pod.pointer("/status/podIP")
        .and_then(Value::as_str)
        .is_some_and(|ip| !ip.is_empty())
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(phase, Some("Succeeded" | "Failed"))
        && (publish_not_ready || condition_true(pod, "Ready"))
}

/// Whether every selector pair is among the object's labels.
pub fn labels_match(selector: &BTreeMap<String, String>, obj: &Value) -> bool {
    let labels = obj.pointer("/metadata/labels");
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str()))
}

/// The hosts map text for the current pods and services, as cluster DNS answers (the
/// kubernetes/dns specification): a Service `s` in `ns` with a cluster IP gets
/// `s.ns.svc.cluster.local` → that IP (the service proxy listens there); a headless Service
/// with a selector maps the name to its endpoints' IPs and additionally gives each endpoint
/// pod with `hostname` and `subdomain: s` the name `hostname.s.ns.svc.cluster.local`.
pub fn hosts_map(pods: &[Value], services: &[Value]) -> String {
    let mut by_ns: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for p in pods {
        by_ns.entry(meta_str(p, "namespace")).or_default().push(p);
    }
    let mut entries: BTreeSet<(String, String)> = BTreeSet::new();
    for svc in services {
        let ns = meta_str(svc, "namespace");
        let name = meta_str(svc, "name");
        let fqdn = format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}");
        let cluster_ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if cluster_ip != "None" {
            if cluster_ip.parse::<Ipv4Addr>().is_ok() {
                entries.insert((cluster_ip.to_string(), fqdn));
            }
            continue;
        }
        let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        if selector.is_empty() {
            continue;
        }
        let labels: BTreeMap<String, String> = selector
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        let publish = svc
            .pointer("/spec/publishNotReadyAddresses")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let members = by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .copied()
            .filter(|p| labels_match(&labels, p) && is_endpoint(p, publish));
        for p in members {
            let Some(ip) = p.pointer("/status/podIP").and_then(Value::as_str) else {
                continue;
            };
            entries.insert((ip.to_string(), fqdn.clone()));
            let hostname = p.pointer("/spec/hostname").and_then(Value::as_str);
            let subdomain = p.pointer("/spec/subdomain").and_then(Value::as_str);
            if let (Some(h), Some(sub)) = (hostname, subdomain)
                && sub == name
                && !h.is_empty()
            {
                entries.insert((ip.to_string(), format!("{h}.{fqdn}")));
            }
        }
    }
    let mut out = String::from("# kfconform emulator: cluster DNS as a hosts map\n");
    for (ip, name) in entries {
        out.push_str(&ip);
        out.push('\t');
        out.push_str(&name);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, extra: Value) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {"app": "x"}},
            "spec": {},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        });
        json_patch::merge(&mut p, &extra);
        p
    }

    #[test]
    fn headless_and_cluster_ip_services() {
        let pods = vec![
            pod(
                "b",
                "127.0.0.3",
                true,
                json!({"spec": {"hostname": "b", "subdomain": "h"}}),
            ),
            pod("a", "127.0.0.2", true, json!({})),
            pod("c", "127.0.0.4", false, json!({})),
            pod(
                "d",
                "127.0.0.5",
                true,
                json!({"status": {"phase": "Succeeded"}}),
            ),
        ];
        let services = vec![
            json!({"metadata": {"name": "h", "namespace": "ns"},
                   "spec": {"clusterIP": "None", "selector": {"app": "x"}}}),
            json!({"metadata": {"name": "c", "namespace": "ns"},
                   "spec": {"clusterIP": "127.9.0.11", "selector": {"app": "x"}}}),
            json!({"metadata": {"name": "n", "namespace": "ns"},
                   "spec": {"clusterIP": "None", "publishNotReadyAddresses": true,
                            "selector": {"app": "x"}}}),
        ];
        let text = hosts_map(&pods, &services);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            vec![
                "127.0.0.2\th.ns.svc.cluster.local",
                "127.0.0.2\tn.ns.svc.cluster.local",
                "127.0.0.3\tb.h.ns.svc.cluster.local",
                "127.0.0.3\th.ns.svc.cluster.local",
                "127.0.0.3\tn.ns.svc.cluster.local",
                "127.0.0.4\tn.ns.svc.cluster.local",
                "127.9.0.11\tc.ns.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn pool_hands_out_distinct_addresses_and_reuses_released_ones() {
        let mut p = IpPool::new();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, p.host_ip());
        assert_eq!(a.octets()[0], 127);
        p.release(a);
        assert_eq!(p.allocate(), Some(a));
    }
}
